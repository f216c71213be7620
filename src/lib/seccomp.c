/* seccomp.c - seccomp profiles and their compilation.
 *
 * libseccomp (2.5.4) is used only as a compiler, in the parent: it allocates
 * inside seccomp_load(), which is unsafe after fork in a threaded caller, and
 * 2.5.4 has no seccomp_export_bpf_mem(). So the filter is exported once with
 * seccomp_export_bpf() into a memfd, read back into a sock_filter array, and
 * the child loads it with the raw seccomp() syscall (child.c).
 *
 * Architectures (the bad-arch decision). A seccomp filter sees the syscall
 * number together with the ABI it came through (seccomp_data.arch), and the
 * numbers differ between ABIs: i386 `mount` is 21 through `int $0x80`, x86_64
 * `mount` is 165, x32 `mount` is 165 | 0x40000000. On x86_64 the filter is
 * therefore built for three arches (X86_64, X86, X32), so that every rule is
 * translated for each of them: a denied call gets the same EPERM (or kill)
 * whichever ABI a task uses, and an i386 or x32 binary (or inline
 * `int $0x80`) runs normally otherwise. Every other arch value goes to the
 * bad-arch action, KILL_PROCESS (libseccomp's default would be KILL_THREAD,
 * which leaves the rest of the process running): failing closed is the only
 * safe answer for an ABI the rules were not translated for. On x86_64 no such
 * ABI is reachable; on other build arches (aarch64 with 32-bit compat, ...)
 * the compat ABI is not added, so 32-bit binaries die of SIGSYS there.
 * Both are tested: tests/integration/test_sandbox.c runs i386 `mount`,
 * `swapoff` and `setns` through `int $0x80` and x32 `swapoff` under the
 * default profile (EPERM, while i386 `getpid` works), and
 * tests/unit/test_seccomp_filter.c runs the compiled programs in a BPF
 * interpreter over every syscall number of the three ABIs and a foreign arch.
 *
 * The default profile is a deny-list (systemd's groups plus a few calls, see
 * groups[] below). Two calls are in it for the cgroup confinement of design §7
 * rather than for their own sake: `mount`/`umount2` (@mount), which keep the
 * read-only cgroupfs read-only, and `setns`, which would otherwise let a root
 * task join the mount namespace of its parent (nsenter -t $PPID -m), where the
 * cgroupfs is writable, and move itself out of its cgroup (checked on the v1
 * hosts: it worked). corral__sc_confine() adds both to any other profile when
 * the cgroup namespace is on. `unshare` stays allowed: a new mount namespace
 * is a copy of the task's own, read-only cgroupfs included, and mount is
 * denied there.
 *
 * Failing closed. libseccomp can only judge the calls its table names (2.5.4:
 * up to futex_requeue, 456), and a newer kernel brings calls that no profile
 * could deny: open_tree_attr (Linux 6.15) with attr_clr = MOUNT_ATTR_RDONLY
 * cloned the read-only cgroup mount into a writable one. So every filter
 * starts with a prologue of corral's own (compile_prologue()): on each x86
 * ABI every number above CORRAL_SC_JUDGED_MAX gets ENOSYS (as for a kernel
 * that lacks the call: libc falls back), and the calls between libseccomp's
 * table and that number (newer_calls[]) are judged by number. Whatever the
 * profile, the filter also refuses the TIOCSTI and TIOCLINUX ioctls (a task
 * typing into the terminal corral runs in), the userfaultfd device's ioctl
 * where the system call is denied, and (default profile, cgroup namespace)
 * clone3 with ENOSYS: its CLONE_INTO_CGROUP takes a cgroup directory fd and
 * the kernel checks the inode's permission, not the read-only mount. io_uring
 * is denied with ENOSYS unless allowed, and allowed only where the profile
 * denies nothing an io_uring can do (corral__sc_io_uring()).
 *
 * Profile files (see README, "Seccomp profiles"):
 *     # comment
 *     default allow|deny      what unlisted syscalls get (default: allow)
 *     action errno [NAME|N]   denied calls fail with EPERM (or the errno given)
 *     action kill             denied calls kill the task (SIGSYS)
 *     io_uring allow|deny     io_uring (default: denied, with ENOSYS)
 *     [deny]                  the lines below are denied ...
 *     [allow]                 ... or allowed (with "default deny")
 *     mount                   a syscall name, or @group (@mount, @default, ...)
 */
#include <ctype.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>

#include "seccomp_profile.h"

#define G(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct {
	const char *name;
	const char *const *calls;
} groups[] = {
    /* open_tree_attr (Linux 6.15) is unknown to libseccomp 2.5.4: denied by
     * number (newer_calls[] below). With attr_clr = MOUNT_ATTR_RDONLY it
     * cloned the read-only cgroup mount into a writable one. */
    {"@mount", G("chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr",
                 "move_mount", "open_tree", "open_tree_attr", "pivot_root", "umount", "umount2")},
    {"@module", G("delete_module", "finit_module", "init_module")},
    {"@reboot", G("kexec_file_load", "kexec_load", "reboot")},
    {"@swap", G("swapoff", "swapon")},
    {"@raw-io", G("ioperm", "iopl", "pciconfig_iobase", "pciconfig_read", "pciconfig_write")},
    {"@clock", G("adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64",
                 "settimeofday")},
    {"@cpu-emulation", G("modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old")},
    {"@obsolete", G("_sysctl", "afs_syscall", "bdflush", "break", "create_module", "ftime",
                    "get_kernel_syms", "getpmsg", "gtty", "idle", "lock", "mpx", "prof", "profil",
                    "putpmsg", "query_module", "security", "sgetmask", "ssetmask", "stime", "stty",
                    "sysfs", "tuxcall", "ulimit", "uselib", "ustat", "vserver")},
    {"@keyring", G("add_key", "keyctl", "request_key")},
    {"@privileged-misc", G("bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "acct",
                           "quotactl", "quotactl_fd")},
    {"@debug", G("ptrace", "process_vm_readv", "process_vm_writev")},
    {"@io_uring", G("io_uring_setup", "io_uring_enter", "io_uring_register")},
    /* setns: see the top of the file. */
    {"@default", G("@mount", "@module", "@reboot", "@swap", "@raw-io", "@clock", "@cpu-emulation",
                   "@obsolete", "@keyring", "@privileged-misc", "ptrace", "setns")},
};

/* Calls newer than libseccomp 2.5.4's table (it knows up to futex_requeue,
 * 456), up to CORRAL_SC_JUDGED_MAX. Since Linux 5.1 a new call has the same
 * number on every arch (x32: | 0x40000000), so one number serves the three
 * x86 ABIs. Each was looked at: the default profile allows them all but
 * open_tree_attr (in @mount); profiles may name any of them. The numbers are
 * those of Linux 6.18's syscall_64.tbl, checked on a 6.18 host. */
static const struct {
	const char *name;
	int nr;
} newer_calls[] = {
    {"statmount", 457},         {"listmount", 458},        {"lsm_get_self_attr", 459},
    {"lsm_set_self_attr", 460}, {"lsm_list_modules", 461}, {"mseal", 462},
    {"setxattrat", 463},        {"getxattrat", 464},       {"listxattrat", 465},
    {"removexattrat", 466},     {"open_tree_attr", 467},   {"file_getattr", 468},
    {"file_setattr", 469},
};

/* What an io_uring can do without making the system call (its opcodes, as
 * of Linux 6.18): a profile that denies any of these must keep io_uring
 * denied, or the denial is a formality. */
static const char *const io_uring_reach[] = {"read",
                                             "readv",
                                             "pread64",
                                             "preadv",
                                             "preadv2",
                                             "write",
                                             "writev",
                                             "pwrite64",
                                             "pwritev",
                                             "pwritev2",
                                             "fsync",
                                             "fdatasync",
                                             "sync_file_range",
                                             "poll",
                                             "ppoll",
                                             "epoll_ctl",
                                             "epoll_wait",
                                             "epoll_pwait",
                                             "sendmsg",
                                             "sendto",
                                             "recvmsg",
                                             "recvfrom",
                                             "accept",
                                             "accept4",
                                             "connect",
                                             "close",
                                             "openat",
                                             "openat2",
                                             "statx",
                                             "fadvise64",
                                             "madvise",
                                             "splice",
                                             "tee",
                                             "shutdown",
                                             "renameat",
                                             "renameat2",
                                             "unlinkat",
                                             "mkdirat",
                                             "symlinkat",
                                             "linkat",
                                             "fsetxattr",
                                             "setxattr",
                                             "fgetxattr",
                                             "getxattr",
                                             "socket",
                                             "bind",
                                             "listen",
                                             "ftruncate",
                                             "futex",
                                             "futex_waitv",
                                             "futex_wake",
                                             "futex_wait",
                                             "waitid",
                                             "fallocate",
                                             "pipe2",
                                             "getsockopt",
                                             "setsockopt",
                                             "ioctl",
                                             NULL};

int corral__sc_resolve(const char *name, uint32_t scmp_arch)
{
	int nr = seccomp_syscall_resolve_name_arch(scmp_arch, name);

	if (nr != __NR_SCMP_ERROR)
		return nr;
	for (size_t i = 0; i < ARRAY_SIZE(newer_calls); i++)
		if (!strcmp(newer_calls[i].name, name))
			return scmp_arch == SCMP_ARCH_X32 ? newer_calls[i].nr | 0x40000000
			                                  : newer_calls[i].nr;
	return -1;
}

const char *const *corral__sc_group(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		if (!strcmp(groups[i].name, name))
			return groups[i].calls;
	return NULL;
}

static int add_entry(struct corral__sc_profile *p, const char *name, int line, bool allow,
                     int errno_value)
{
	if (strlen(name) >= sizeof(p->entries[0].name))
		return -ENAMETOOLONG;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		void *ne = realloc(p->entries, ncap * sizeof(*p->entries));
		if (!ne)
			return -ENOMEM;
		p->entries = ne;
		p->cap = ncap;
	}
	struct corral__sc_entry *e = &p->entries[p->n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->line = line;
	e->allow = allow;
	e->errno_value = errno_value;
	return 0;
}

void corral__sc_free(struct corral__sc_profile *p)
{
	free(p->entries);
	memset(p, 0, sizeof(*p));
}

int corral__sc_default(struct corral__sc_profile *p, bool allow_ptrace, bool allow_io_uring)
{
	int rc = 0;

	memset(p, 0, sizeof(*p));
	p->default_allow = true;
	p->action = SC_ACT_ERRNO;
	p->errno_value = EPERM;
	p->io_uring = allow_io_uring;
	const char *const *calls = corral__sc_group("@default");
	for (size_t i = 0; rc == 0 && calls[i]; i++) {
		if (allow_ptrace && !strcmp(calls[i], "ptrace"))
			continue;
		rc = add_entry(p, calls[i], 0, false, 0);
	}
	/* clone3's struct is out of seccomp's reach, and its CLONE_INTO_CGROUP
	 * takes a cgroup directory fd whose write permission the kernel checks
	 * on the inode, not on the (read-only) mount: ENOSYS, from which libc
	 * falls back to clone(), as container runtimes do. */
	if (rc == 0)
		rc = add_entry(p, "clone3", 0, false, ENOSYS);
	if (rc < 0)
		corral__sc_free(p);
	return rc;
}

/* Does the entry name (a syscall or @group) cover the syscall call? */
static bool covers(const char *name, const char *call, int depth)
{
	if (!strcmp(name, call))
		return true;
	if (name[0] != '@' || depth > 4)
		return false;
	const char *const *members = corral__sc_group(name);
	for (size_t i = 0; members && members[i]; i++)
		if (covers(members[i], call, depth + 1))
			return true;
	return false;
}

/* What the read-only cgroupfs of the cgroup namespace rests on (sandbox.c):
 * no remounting it read-write (@mount), no joining a mount namespace where it
 * is writable (setns), no child born in another cgroup through a directory fd
 * of the read-only mount (clone3's CLONE_INTO_CGROUP: the kernel checks the
 * inode's permission, not the mount flag; ENOSYS, libc falls back). */
static const struct {
	const char *name;
	int errno_value;
} confine_entries[] = {{"@mount", 0}, {"setns", 0}, {"clone3", ENOSYS}};

int corral__sc_confine(struct corral__sc_profile *p, corral_error_t *err)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		bool allowed = false;
		for (size_t k = 0; e->allow && !allowed && k < ARRAY_SIZE(confine_entries); k++) {
			const char *c = confine_entries[k].name;
			const char *const *members = c[0] == '@' ? corral__sc_group(c) : NULL;
			if (!members)
				allowed = covers(e->name, c, 0);
			for (size_t m = 0; members && !allowed && members[m]; m++)
				allowed = covers(e->name, members[m], 0);
		}
		if (allowed)
			return corral__err(err, EINVAL,
			                   "line %d: `%s` is allowed, but the cgroup namespace's "
			                   "read-only cgroupfs needs @mount, setns and clone3 "
			                   "denied (turn the cgroup namespace off to allow them)",
			                   e->line, e->name);
	}
	for (size_t k = 0; k < ARRAY_SIZE(confine_entries); k++) {
		int rc =
		    add_entry(p, confine_entries[k].name, 0, false, confine_entries[k].errno_value);
		if (rc < 0)
			return corral__err(err, -rc, "seccomp profile: add `%s`",
			                   confine_entries[k].name);
	}
	return 0;
}

int corral__sc_io_uring(struct corral__sc_profile *p, corral_error_t *err)
{
	const char *const *ring = corral__sc_group("@io_uring");

	/* Allowed in a default-deny profile's [allow] section? */
	for (size_t i = 0; !p->default_allow && i < p->n && !p->io_uring; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		for (size_t k = 0; e->allow && ring[k]; k++) {
			if (covers(e->name, ring[k], 0)) {
				p->io_uring = true;
				p->io_uring_line = e->line;
				break;
			}
		}
	}
	if (p->io_uring && !p->default_allow) {
		/* `io_uring allow` in a default-deny profile: allow the calls. */
		for (size_t k = 0; ring[k]; k++) {
			int rc = add_entry(p, ring[k], p->io_uring_line, true, 0);
			if (rc < 0)
				return corral__err(err, -rc, "seccomp profile: add `%s`", ring[k]);
		}
	}
	if (!p->io_uring) {
		/* Denied, with ENOSYS: liburing and its users fall back to
		 * plain system calls, as under Docker's default profile. */
		for (size_t k = 0; ring[k]; k++) {
			int rc = add_entry(p, ring[k], 0, false, ENOSYS);
			if (rc < 0)
				return corral__err(err, -rc, "seccomp profile: add `%s`", ring[k]);
		}
		return 0;
	}
	for (size_t k = 0; io_uring_reach[k]; k++) {
		const char *call = io_uring_reach[k];
		bool allowed = p->default_allow, denied_by = false;
		int line = 0;
		const char *name = NULL;
		for (size_t i = 0; i < p->n; i++) {
			const struct corral__sc_entry *e = &p->entries[i];
			if (!covers(e->name, call, 0))
				continue;
			if (e->allow) {
				allowed = true;
			} else {
				denied_by = true;
				line = e->line;
				name = e->name;
			}
		}
		if (denied_by || !allowed) {
			char where[64] = "";
			if (p->io_uring_line > 0)
				snprintf(where, sizeof(where), "line %d: ", p->io_uring_line);
			if (denied_by && line > 0)
				return corral__err(
				    err, EINVAL,
				    "%sio_uring is allowed, but line %d denies `%s`, "
				    "which io_uring can do without the system call "
				    "(`%s`): deny io_uring or allow `%s`",
				    where, line, name, call, name);
			return corral__err(err, EINVAL,
			                   "%sio_uring is allowed, but `%s` is not, and io_uring "
			                   "can do it without the system call: deny io_uring or "
			                   "allow `%s`",
			                   where, call, call);
		}
	}
	return 0;
}

static const struct {
	const char *name;
	int value;
} errnos[] = {
    {"EPERM", EPERM},   {"EACCES", EACCES},   {"ENOSYS", ENOSYS},
    {"EINVAL", EINVAL}, {"ENOTSUP", ENOTSUP}, {"EOPNOTSUPP", EOPNOTSUPP},
};

static bool valid_name(const char *s)
{
	if (*s == '@')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

int corral__sc_parse(const char *text, struct corral__sc_profile *p, corral_error_t *err)
{
	enum {
		NONE,
		ALLOW,
		DENY
	} section = NONE;
	bool seen_default = false, seen_action = false;
	int lineno = 0, rc;
	const char *line = text;

	memset(p, 0, sizeof(*p));
	p->default_allow = true;
	p->action = SC_ACT_ERRNO;
	p->errno_value = EPERM;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[256], *w[4];
		int nw = 0;

		lineno++;
		if (len >= sizeof(buf)) {
			rc = corral__err(err, EINVAL, "line %d: line too long", lineno);
			goto fail;
		}
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl ? nl + 1 : NULL;
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		for (char *s = strtok(buf, " \t\r"); s; s = strtok(NULL, " \t\r")) {
			if (nw == (int)ARRAY_SIZE(w)) {
				rc = corral__err(err, EINVAL, "line %d: too many words", lineno);
				goto fail;
			}
			w[nw++] = s;
		}
		if (nw == 0)
			continue;
		if (!strcmp(w[0], "[allow]") || !strcmp(w[0], "[deny]")) {
			if (nw != 1) {
				rc = corral__err(err, EINVAL, "line %d: text after %s", lineno,
				                 w[0]);
				goto fail;
			}
			section = w[0][1] == 'a' ? ALLOW : DENY;
			continue;
		}
		if (!strcmp(w[0], "default")) {
			if (seen_default || p->n) {
				rc = corral__err(err, EINVAL,
				                 "line %d: `default` must come once, before the "
				                 "syscall lists",
				                 lineno);
				goto fail;
			}
			if (nw != 2 || (strcmp(w[1], "allow") && strcmp(w[1], "deny"))) {
				rc = corral__err(
				    err, EINVAL,
				    "line %d: expected `default allow` or `default deny`", lineno);
				goto fail;
			}
			p->default_allow = w[1][0] == 'a';
			seen_default = true;
			continue;
		}
		if (!strcmp(w[0], "io_uring")) {
			if (nw != 2 || (strcmp(w[1], "allow") && strcmp(w[1], "deny"))) {
				rc = corral__err(
				    err, EINVAL,
				    "line %d: expected `io_uring allow` or `io_uring deny`",
				    lineno);
				goto fail;
			}
			p->io_uring = w[1][0] == 'a';
			p->io_uring_line = p->io_uring ? lineno : 0;
			continue;
		}
		if (!strcmp(w[0], "action")) {
			if (seen_action) {
				rc = corral__err(err, EINVAL, "line %d: a second `action`", lineno);
				goto fail;
			}
			seen_action = true;
			if (nw == 2 && !strcmp(w[1], "kill")) {
				p->action = SC_ACT_KILL;
			} else if ((nw == 2 || nw == 3) && !strcmp(w[1], "errno")) {
				p->action = SC_ACT_ERRNO;
				if (nw == 3) {
					char *end;
					long v = strtol(w[2], &end, 10);
					/* The kernel caps errno at 4095 (MAX_ERRNO), but
					 * libseccomp 2.5 rejects ERRNO(4095) in seccomp_init()
					 * and seccomp_rule_add(): 4094 is the largest. */
					bool ok = *end == '\0' && v > 0 && v < 4095;
					for (size_t i = 0; !ok && i < ARRAY_SIZE(errnos); i++)
						if (!strcmp(errnos[i].name, w[2])) {
							v = errnos[i].value;
							ok = true;
						}
					if (!ok) {
						rc = corral__err(err, EINVAL,
						                 "line %d: unknown errno `%s` (use "
						                 "EPERM, EACCES, ENOSYS, EINVAL, "
						                 "ENOTSUP or a number 1-4094)",
						                 lineno, w[2]);
						goto fail;
					}
					p->errno_value = (int)v;
				}
			} else {
				rc = corral__err(
				    err, EINVAL,
				    "line %d: expected `action errno [ERRNO]` or `action "
				    "kill`",
				    lineno);
				goto fail;
			}
			continue;
		}
		if (nw != 1 || !valid_name(w[0])) {
			rc = corral__err(
			    err, EINVAL,
			    "line %d: expected one syscall name, @group, [allow], [deny], "
			    "`default` or `action`, got `%s`",
			    lineno, w[0]);
			goto fail;
		}
		if (section == NONE) {
			rc =
			    corral__err(err, EINVAL,
			                "line %d: `%s` is outside a section: put [deny] or [allow] "
			                "above it",
			                lineno, w[0]);
			goto fail;
		}
		if (w[0][0] == '@' && !corral__sc_group(w[0])) {
			rc = corral__err(err, EINVAL, "line %d: unknown group `%s`", lineno, w[0]);
			goto fail;
		}
		for (size_t i = 0; i < p->n; i++) {
			if (!strcmp(p->entries[i].name, w[0])) {
				rc = corral__err(err, EINVAL,
				                 "line %d: `%s` is already listed on line %d",
				                 lineno, w[0], p->entries[i].line);
				goto fail;
			}
		}
		rc = add_entry(p, w[0], lineno, section == ALLOW, 0);
		if (rc < 0) {
			rc = corral__err(err, -rc, "line %d", lineno);
			goto fail;
		}
	}
	if (!p->default_allow) {
		bool any_allow = false;
		for (size_t i = 0; i < p->n; i++)
			any_allow |= p->entries[i].allow;
		if (!any_allow) {
			rc = corral__err(
			    err, EINVAL,
			    "`default deny` without an [allow] section would deny every "
			    "syscall, execve included");
			goto fail;
		}
	} else {
		for (size_t i = 0; i < p->n; i++) {
			if (p->entries[i].allow) {
				rc = corral__err(
				    err, EINVAL,
				    "line %d: [allow] entries need `default deny` (everything "
				    "is allowed already)",
				    p->entries[i].line);
				goto fail;
			}
		}
	}
	return 0;
fail:
	corral__sc_free(p);
	return rc;
}

/* A rule libseccomp cannot place: a call newer than its table, matched by
 * number in the prologue (compile_prologue()). */
struct num_rule {
	uint32_t nr;     /* the common number (x32 adds its bit) */
	uint32_t action; /* SECCOMP_RET_* value */
};

struct compile_ctx {
	scmp_filter_ctx ctx;
	struct num_rule nums[64];
	size_t n_nums;
};

/* Add a rule for name (expanding groups); unknown names are an error only for
 * profile files (line > 0): the built-in list names calls of other arches. A
 * call that libseccomp does not know but corral's table does is matched by
 * number in the prologue. */
static int add_rule(struct compile_ctx *cc, uint32_t action, const char *name, int line, int depth,
                    corral_error_t *err)
{
	if (name[0] == '@') {
		const char *const *calls = corral__sc_group(name);
		if (!calls || depth > 4)
			return corral__err(err, EINVAL, "line %d: unknown group `%s`", line, name);
		for (size_t i = 0; calls[i]; i++) {
			int rc = add_rule(cc, action, calls[i], 0, depth + 1, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR) {
		nr = corral__sc_resolve(name, SCMP_ARCH_X86_64);
		if (nr < 0) {
			if (line > 0)
				return corral__err(err, EINVAL, "line %d: unknown syscall `%s`",
				                   line, name);
			return 0;
		}
		for (size_t i = 0; i < cc->n_nums; i++)
			if (cc->nums[i].nr == (uint32_t)nr)
				return 0; /* the first rule wins, as libseccomp's -EEXIST */
		if (cc->n_nums == ARRAY_SIZE(cc->nums))
			return corral__err(err, E2BIG,
			                   "too many rules for calls newer than libseccomp");
		cc->nums[cc->n_nums++] = (struct num_rule){.nr = (uint32_t)nr, .action = action};
		return 0;
	}
	int rc = seccomp_rule_add(cc->ctx, action, nr, 0);
	/* -EDOM/-EFAULT: the call does not exist on one of the arches (e.g.
	 * vm86 on x86_64); -EACCES: the action equals the default. */
	if (rc < 0 && rc != -EDOM && rc != -EFAULT && rc != -EACCES && rc != -EEXIST)
		return corral__err(err, -rc, "add a seccomp rule for `%s`", name);
	return 0;
}

/* ioctl requests that no task may make, whatever its profile (as bubblewrap
 * does): TIOCSTI pushes bytes into a terminal's input (a task typing into the
 * shell that started corral), TIOCLINUX can do the same on a virtual
 * console. The request is an unsigned int: only the low 32 bits count, so a
 * task cannot dodge the rule by setting the high ones. */
#ifndef TIOCSTI
#define TIOCSTI 0x5412
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
/* /dev/userfaultfd (Linux 6.1) hands out a userfaultfd through this ioctl:
 * denied wherever the userfaultfd system call is. */
#define CORRAL_USERFAULTFD_IOC_NEW 0xAA00

static int deny_ioctl(struct compile_ctx *cc, unsigned long request, corral_error_t *err)
{
	int rc = seccomp_rule_add(cc->ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request));
	/* -EACCES: EPERM is the default action already. */
	if (rc < 0 && rc != -EACCES && rc != -EEXIST)
		return corral__err(err, -rc, "add a seccomp rule for ioctl %#lx", request);
	return 0;
}

/* Does the profile deny the call (directly or through a group)? */
static bool profile_denies(const struct corral__sc_profile *p, const char *call)
{
	bool listed_allow = false;

	for (size_t i = 0; i < p->n; i++) {
		if (!covers(p->entries[i].name, call, 0))
			continue;
		if (!p->entries[i].allow)
			return true;
		listed_allow = true;
	}
	return !p->default_allow && !listed_allow;
}

bool corral__sc_denies(const struct corral__sc_profile *p, const char *call)
{
	return profile_denies(p, call);
}

/* Instructions of the prologue at most: its fixed part, two per rule and one
 * return per action, with room to spare. */
#define PROLOGUE_MAX 512

#if defined(__x86_64__)
#define LOAD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LOAD_NR   BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define X32_BIT   0x40000000u

/* The prologue, run before libseccomp's program: per x86 ABI, every number
 * above CORRAL_SC_JUDGED_MAX gets ENOSYS (x32: above its own calls too, and
 * the common numbers above the judged ones), then the rules of calls newer
 * than libseccomp, by number; everything else falls through to libseccomp's
 * program, which starts with its own arch check (foreign arches are killed
 * there). Jumps are relative and forward, so prepending leaves libseccomp's
 * program intact. Returns the length or -errno. */
static int compile_prologue(const struct compile_ctx *cc, struct sock_filter *out)
{
	/* Forward jumps are resolved in a second pass: labels by index. */
	enum {
		L_X32,
		L_I386,
		L_NOSYS,
		L_BODY,
		L_ACT0
	};
	struct {
		int at;      /* instruction index */
		int label;   /* for conditional jumps: jt; ja: k */
		int label_f; /* jf (-1: fall through) */
	} fix[PROLOGUE_MAX];
	int nfix = 0, n = 0, label_at[L_ACT0 + 64];
	uint32_t acts[64];
	int n_acts = 0;

	if (cc->n_nums > 64)
		return -E2BIG;
	for (size_t i = 0; i < cc->n_nums; i++) {
		int k;
		for (k = 0; k < n_acts && acts[k] != cc->nums[i].action; k++)
			;
		if (k == n_acts)
			acts[n_acts++] = cc->nums[i].action;
	}
#define EMIT(insn) (out[n++] = (struct sock_filter)insn)
#define JUMP(code, kval, lt, lf)                                                                   \
	do {                                                                                       \
		fix[nfix++] = (typeof(fix[0])){n, (lt), (lf)};                                     \
		EMIT(BPF_JUMP(code, (kval), 0, 0));                                                \
	} while (0)
#define RULES(bit)                                                                                 \
	do {                                                                                       \
		for (size_t i_ = 0; i_ < cc->n_nums; i_++) {                                       \
			int a_;                                                                    \
			for (a_ = 0; acts[a_] != cc->nums[i_].action; a_++)                        \
				;                                                                  \
			JUMP(BPF_JMP | BPF_JEQ | BPF_K, cc->nums[i_].nr | (bit), L_ACT0 + a_, -1); \
		}                                                                                  \
		JUMP(BPF_JMP | BPF_JA, 0, L_BODY, -1);                                             \
	} while (0)

	EMIT(LOAD_ARCH);
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, L_I386, -1);
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, -1, L_BODY);
	/* x86_64 and x32 (the same arch token, x32 numbers carry a bit) */
	EMIT(LOAD_NR);
	JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT, L_X32, -1);
	JUMP(BPF_JMP | BPF_JGT | BPF_K, CORRAL_SC_JUDGED_MAX, L_NOSYS, -1);
	RULES(0);
	label_at[L_X32] = n;
	JUMP(BPF_JMP | BPF_JGT | BPF_K, X32_BIT | CORRAL_SC_X32_MAX, L_NOSYS, -1);
	JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT | 512, L_BODY, -1);
	JUMP(BPF_JMP | BPF_JGT | BPF_K, X32_BIT | CORRAL_SC_JUDGED_MAX, L_NOSYS, -1);
	RULES(X32_BIT);
	label_at[L_I386] = n;
	EMIT(LOAD_NR);
	JUMP(BPF_JMP | BPF_JGT | BPF_K, CORRAL_SC_JUDGED_MAX, L_NOSYS, -1);
	RULES(0);
	label_at[L_NOSYS] = n;
	EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
	for (int a = 0; a < n_acts; a++) {
		label_at[L_ACT0 + a] = n;
		EMIT(BPF_STMT(BPF_RET | BPF_K, acts[a]));
	}
	label_at[L_BODY] = n;
#undef RULES
#undef JUMP
#undef EMIT
	for (int i = 0; i < nfix; i++) {
		struct sock_filter *f = &out[fix[i].at];
		int from = fix[i].at + 1;
		if (BPF_OP(f->code) == BPF_JA) {
			f->k = (uint32_t)(label_at[fix[i].label] - from);
			continue;
		}
		int jt = fix[i].label < 0 ? 0 : label_at[fix[i].label] - from;
		int jf = fix[i].label_f < 0 ? 0 : label_at[fix[i].label_f] - from;
		if (jt < 0 || jt > 255 || jf < 0 || jf > 255)
			return -E2BIG;
		f->jt = (uint8_t)jt;
		f->jf = (uint8_t)jf;
	}
	return n;
}
#endif

int corral__sc_compile(const struct corral__sc_profile *p, struct sock_fprog *prog,
                       corral_error_t *err)
{
	uint32_t deny = p->action == SC_ACT_KILL ? SCMP_ACT_KILL_PROCESS
	                                         : SCMP_ACT_ERRNO((uint32_t)p->errno_value);
	uint32_t def = p->default_allow ? SCMP_ACT_ALLOW : deny;
	struct compile_ctx cc = {0};
	int rc, fd = -1, pro = 0;
	struct sock_filter *body = NULL;

	memset(prog, 0, sizeof(*prog));
	cc.ctx = seccomp_init(def);
	if (!cc.ctx)
		return corral__err(err, ENOMEM, "seccomp_init");
	rc = seccomp_attr_set(cc.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0) {
		rc = corral__err(err, -rc, "set the seccomp bad-arch action");
		goto out;
	}
	/* A binary tree of syscall numbers instead of libseccomp's default
	 * linear chain: 210 instructions instead of 171 for the default
	 * profile, but loading it, which every task pays, drops from ~200 to
	 * ~70 us of CPU (measured on the v1 hosts). When it loads a filter the
	 * kernel runs it for every syscall number of both x86 arches (~900) to
	 * cache the always-allowed ones, and an allowed number walks the whole
	 * chain of ~60 comparisons but only ~7 levels of the tree. Calls that
	 * are not cached get the same speed-up at run time. Optimisation
	 * only: a libseccomp without it is fine. */
	(void)seccomp_attr_set(cc.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#if defined(__x86_64__)
	rc = seccomp_arch_add(cc.ctx, SCMP_ARCH_X86);
	if (rc < 0 && rc != -EEXIST) {
		rc = corral__err(err, -rc, "add the i386 arch to the seccomp filter");
		goto out;
	}
	rc = seccomp_arch_add(cc.ctx, SCMP_ARCH_X32);
	if (rc < 0 && rc != -EEXIST) {
		rc = corral__err(err, -rc, "add the x32 arch to the seccomp filter");
		goto out;
	}
#endif
	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		uint32_t act = e->allow         ? SCMP_ACT_ALLOW
		               : e->errno_value ? SCMP_ACT_ERRNO((uint32_t)e->errno_value)
		                                : deny;
		rc = add_rule(&cc, act, e->name, e->line, 0, err);
		if (rc < 0)
			goto out;
	}
	/* Whatever the profile: no terminal injection; no userfaultfd through
	 * its device where the system call is denied. */
	if ((rc = deny_ioctl(&cc, TIOCSTI, err)) < 0 || (rc = deny_ioctl(&cc, TIOCLINUX, err)) < 0)
		goto out;
	if (profile_denies(p, "userfaultfd") &&
	    (rc = deny_ioctl(&cc, CORRAL_USERFAULTFD_IOC_NEW, err)) < 0)
		goto out;
	/* Export into a memfd and read it back: 2.5.4 has no export to memory. */
	fd = memfd_create("corral-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = corral__err(err, errno, "memfd_create for the seccomp filter");
		goto out;
	}
	rc = seccomp_export_bpf(cc.ctx, fd);
	if (rc < 0) {
		rc = corral__err(err, -rc, "seccomp_export_bpf");
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	size_t nbody = (size_t)size / sizeof(struct sock_filter);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
	    nbody + PROLOGUE_MAX > BPF_MAXINSNS) {
		rc = corral__err(err, EINVAL, "exported seccomp filter has a bad size %lld",
		                 (long long)size);
		goto out;
	}
	body = malloc((nbody + PROLOGUE_MAX) * sizeof(struct sock_filter));
	if (!body) {
		rc = corral__err(err, ENOMEM, "allocate the seccomp filter");
		goto out;
	}
#if defined(__x86_64__)
	pro = compile_prologue(&cc, body);
	if (pro < 0) {
		rc = corral__err(err, -pro, "build the seccomp prologue");
		goto out;
	}
#endif
	if (pread(fd, body + pro, (size_t)size, 0) != size) {
		rc = corral__err(err, EIO, "read back the seccomp filter");
		goto out;
	}
	prog->filter = take_ptr(&body);
	prog->len = (unsigned short)(nbody + (size_t)pro);
	rc = 0;
out:
	free(body);
	if (fd >= 0)
		close(fd);
	seccomp_release(cc.ctx);
	return rc;
}
