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
 * Profile files (see README, "Seccomp profiles"):
 *     # comment
 *     default allow|deny      what unlisted syscalls get (default: allow)
 *     action errno [NAME|N]   denied calls fail with EPERM (or the errno given)
 *     action kill             denied calls kill the task (SIGSYS)
 *     [deny]                  the lines below are denied ...
 *     [allow]                 ... or allowed (with "default deny")
 *     mount                   a syscall name, or @group (@mount, @default, ...)
 */
#include <ctype.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/mman.h>

#include "seccomp_profile.h"

#define G(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct {
	const char *name;
	const char *const *calls;
} groups[] = {
    {"@mount", G("chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr",
                 "move_mount", "open_tree", "pivot_root", "umount", "umount2")},
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
    /* setns: see the top of the file. */
    {"@default", G("@mount", "@module", "@reboot", "@swap", "@raw-io", "@clock", "@cpu-emulation",
                   "@obsolete", "@keyring", "@privileged-misc", "ptrace", "setns")},
};

const char *const *corral__sc_group(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		if (!strcmp(groups[i].name, name))
			return groups[i].calls;
	return NULL;
}

static int add_entry(struct corral__sc_profile *p, const char *name, int line, bool allow)
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
	return 0;
}

void corral__sc_free(struct corral__sc_profile *p)
{
	free(p->entries);
	memset(p, 0, sizeof(*p));
}

int corral__sc_default(struct corral__sc_profile *p, bool allow_ptrace)
{
	memset(p, 0, sizeof(*p));
	p->default_allow = true;
	p->action = SC_ACT_ERRNO;
	p->errno_value = EPERM;
	const char *const *calls = corral__sc_group("@default");
	for (size_t i = 0; calls[i]; i++) {
		if (allow_ptrace && !strcmp(calls[i], "ptrace"))
			continue;
		int rc = add_entry(p, calls[i], 0, false);
		if (rc < 0) {
			corral__sc_free(p);
			return rc;
		}
	}
	return 0;
}

/* What the read-only cgroupfs of the cgroup namespace rests on (sandbox.c):
 * no remounting it read-write, and no joining a mount namespace where it is
 * writable. */
static const char *const confine_entries[] = {"@mount", "setns"};

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

int corral__sc_confine(struct corral__sc_profile *p, corral_error_t *err)
{
	const char *const *mount_calls = corral__sc_group("@mount");

	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		bool allowed = e->allow && covers(e->name, "setns", 0);
		for (size_t k = 0; e->allow && !allowed && mount_calls[k]; k++)
			allowed = covers(e->name, mount_calls[k], 0);
		if (allowed)
			return corral__err(err, EINVAL,
			                   "line %d: `%s` is allowed, but the cgroup namespace's "
			                   "read-only cgroupfs needs @mount and setns denied (turn "
			                   "the cgroup namespace off to allow them)",
			                   e->line, e->name);
	}
	for (size_t k = 0; k < ARRAY_SIZE(confine_entries); k++) {
		int rc = add_entry(p, confine_entries[k], 0, false);
		if (rc < 0)
			return corral__err(err, -rc, "seccomp profile: add `%s`",
			                   confine_entries[k]);
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
		rc = add_entry(p, w[0], lineno, section == ALLOW);
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

/* Add a rule for name (expanding groups); unknown names are an error only for
 * profile files (line > 0): the built-in list names calls of other arches. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, int line, int depth,
                    corral_error_t *err)
{
	if (name[0] == '@') {
		const char *const *calls = corral__sc_group(name);
		if (!calls || depth > 4)
			return corral__err(err, EINVAL, "line %d: unknown group `%s`", line, name);
		for (size_t i = 0; calls[i]; i++) {
			int rc = add_rule(ctx, action, calls[i], 0, depth + 1, err);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR) {
		if (line > 0)
			return corral__err(err, EINVAL, "line %d: unknown syscall `%s`", line,
			                   name);
		return 0;
	}
	int rc = seccomp_rule_add(ctx, action, nr, 0);
	/* -EDOM/-EFAULT: the call does not exist on one of the arches (e.g.
	 * vm86 on x86_64); -EACCES: the action equals the default. */
	if (rc < 0 && rc != -EDOM && rc != -EFAULT && rc != -EACCES && rc != -EEXIST)
		return corral__err(err, -rc, "add a seccomp rule for `%s`", name);
	return 0;
}

int corral__sc_compile(const struct corral__sc_profile *p, struct sock_fprog *prog,
                       corral_error_t *err)
{
	uint32_t deny = p->action == SC_ACT_KILL ? SCMP_ACT_KILL_PROCESS
	                                         : SCMP_ACT_ERRNO((uint32_t)p->errno_value);
	uint32_t def = p->default_allow ? SCMP_ACT_ALLOW : deny;
	scmp_filter_ctx ctx;
	int rc, fd = -1;

	memset(prog, 0, sizeof(*prog));
	ctx = seccomp_init(def);
	if (!ctx)
		return corral__err(err, ENOMEM, "seccomp_init");
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
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
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#if defined(__x86_64__)
	rc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (rc < 0 && rc != -EEXIST) {
		rc = corral__err(err, -rc, "add the i386 arch to the seccomp filter");
		goto out;
	}
	rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
	if (rc < 0 && rc != -EEXIST) {
		rc = corral__err(err, -rc, "add the x32 arch to the seccomp filter");
		goto out;
	}
#endif
	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		uint32_t act = e->allow ? SCMP_ACT_ALLOW : deny;
		rc = add_rule(ctx, act, e->name, e->line, 0, err);
		if (rc < 0)
			goto out;
	}
	/* Export into a memfd and read it back: 2.5.4 has no export to memory. */
	fd = memfd_create("corral-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = corral__err(err, errno, "memfd_create for the seccomp filter");
		goto out;
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0) {
		rc = corral__err(err, -rc, "seccomp_export_bpf");
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
	    size / (off_t)sizeof(struct sock_filter) > 65535) {
		rc = corral__err(err, EINVAL, "exported seccomp filter has a bad size %lld",
		                 (long long)size);
		goto out;
	}
	prog->filter = malloc((size_t)size);
	if (!prog->filter) {
		rc = corral__err(err, ENOMEM, "allocate the seccomp filter");
		goto out;
	}
	if (pread(fd, prog->filter, (size_t)size, 0) != size) {
		free(prog->filter);
		prog->filter = NULL;
		rc = corral__err(err, EIO, "read back the seccomp filter");
		goto out;
	}
	prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}
