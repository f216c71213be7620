/* sandbox.c - the parent side of the sandbox: everything the child will need,
 * prepared before fork (child.c applies it with raw syscalls).
 *
 *  - seccomp: compiled once per executor (seccomp.c);
 *  - no_new_privs (implied by a filter);
 *  - a cgroup namespace plus a private mount namespace in which every cgroup
 *    mount is read-only: on cgroup v1 a cgroup namespace alone does not stop a
 *    root task from writing its pid into an ancestor's cgroup.procs (design
 *    §7); the read-only mount does, on v1 and v2. It holds only while a root
 *    task can neither remount it (mount, umount2, ... of @mount) nor join a
 *    mount namespace where it is writable (setns), so the cgroup namespace
 *    adds those rules to every filter, even with seccomp off, and refuses a
 *    profile that allows them (corral__sc_confine());
 *  - with that read-only cgroupfs, CAP_SYS_PTRACE is dropped (bounding set
 *    too): through /proc/<pid>/root or /proc/<pid>/ns/mnt a root task could
 *    otherwise reach the cgroupfs of a process outside its mount namespace
 *    (its parent corral's, say), where it is writable, and write its pid into
 *    an ancestor's cgroup.procs. Both need ptrace access to that process,
 *    which a task without CAP_SYS_PTRACE lacks to every process that holds it
 *    and to every other user's. Checked on the v1 hosts: `nsenter -t $PPID -m`
 *    and `echo $$ > /proc/$PPID/root/sys/fs/cgroup/memory/.../cgroup.procs`
 *    both escaped before. What stays open for a root task: processes outside
 *    the namespace that run as root without CAP_SYS_PTRACE themselves, and
 *    what root can do to the host anyway (sysctls such as core_pattern,
 *    devices): against a hostile task use --user (or a container);
 *  - the read-only mount namespace is made once per executor, as a template
 *    (make_template()): a helper child clones itself into a new mount
 *    namespace, makes every mount private (nothing propagates in or out: as
 *    a slave, a cgroup mount made on the host after a task started reached
 *    the task read-write; host mounts made later reach new tasks when the
 *    template is made again, corral__sandbox_refresh()) and every cgroup
 *    mount read-only, and, with the batch's PID namespace, mounts a /proc of
 *    that namespace (tasks see only the batch's processes), and the executor
 *    keeps that namespace and the helper's root in it by fds. Each task joins
 *    it with setns(), chroots to that root (the caller's root, which is not
 *    the namespace's in a chroot or after an initramfs's switch_root) and
 *    returns to its working directory by path, checked to be the same
 *    directory (else a spawn error at "chdir": a directory on a mount the
 *    template never saw). Before, each task unshared and remounted: a copy of
 *    the whole mount table at its start and a teardown (an RCU grace period)
 *    at its exit, ~3.5 ms per task with 1000 mounts (x3.5 the cost of a
 *    task without the sandbox; x1.15 with the template). Sound because the
 *    tasks cannot change it: @mount (mount, umount2, chroot, pivot_root,
 *    move_mount, ...) is denied to all of them. The template reflects the
 *    caller's namespace and root at executor creation. When it cannot be
 *    made, tasks make their own namespace as before;
 *  - a network namespace with only loopback;
 *  - RLIMIT_CORE 0 unless core dumps are wanted (so the sandbox is "on" even
 *    with every other field off: corral.h documents 0 as the default);
 *  - a user/group switch (root only), resolved here with getpwnam_r(), which
 *    may read files and allocate, so it cannot run in the child.
 *
 * The namespaces need CAP_SYS_ADMIN: without it corral__sandbox_prepare()
 * fails (a protection that was asked for is never silently dropped).
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "executor.h"
#include "seccomp_profile.h"
#include "syscalls.h"

/* The process is non-dumpable while an executor with a sandbox lives: a task
 * child shares our memory until its execve (spawn.c), and a hostile sibling
 * must not read or write it through /proc/<child>/mem, nor take our fds
 * (child.c, the top). Process-wide, so counted: the first sandboxed executor
 * turns it off, the last one freed restores what it found. */
static pthread_mutex_t dumpable_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned dumpable_holders;
static int dumpable_before;

static void hold_nondumpable(void)
{
	pthread_mutex_lock(&dumpable_lock);
	if (dumpable_holders++ == 0)
		dumpable_before = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	/* Every time: a child that changed its ids under CLONE_VM may have set
	 * our (shared) dumpability to fs.suid_dumpable meanwhile. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	pthread_mutex_unlock(&dumpable_lock);
}

static void release_nondumpable(void)
{
	pthread_mutex_lock(&dumpable_lock);
	if (dumpable_holders > 0 && --dumpable_holders == 0 && dumpable_before > 0)
		prctl(PR_SET_DUMPABLE, dumpable_before, 0, 0, 0);
	pthread_mutex_unlock(&dumpable_lock);
}

bool corral__sandbox_enabled(const corral_sandbox_t *s)
{
	return s->seccomp != CORRAL_SECCOMP_OFF || s->no_new_privs || s->cgroup_ns ||
	       s->no_network || s->user || !s->core_dumps;
}

/* Is cap in our effective set? */
static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return geteuid() == 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1u;
}

static int read_file(const char *path, char **out, corral_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;

	if (fd < 0)
		return corral__err(err, errno, "open `%s`", path);
	buf = malloc(cap);
	if (!buf)
		return corral__err(err, ENOMEM, "read `%s`", path);
	for (;;) {
		if (len + 1 == cap) {
			if (cap > (1u << 20)) {
				free(buf);
				return corral__err(err, EFBIG, "`%s` is larger than 1 MiB", path);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return corral__err(err, ENOMEM, "read `%s`", path);
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return corral__err(err, e, "read `%s`", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* A uid or gid written in decimal: digits only (strtoul() would take "-1",
 * which is (uid_t)-1, "leave unchanged" for setresuid(): the task would keep
 * running as root), and below (uid_t)-1. */
static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && errno == 0 && *out < (unsigned long)(uid_t)-1;
}

/* USER[:GROUP] or UID[:GID]. The gid is GROUP's, else the user's primary
 * group (a uid without a passwd entry: gid = uid). Supplementary groups: the
 * user's (getgrouplist) when no GROUP is given; with an explicit GROUP only
 * that group, as runc does for `--user user:group`. */
static int resolve_user(const char *spec, struct corral__sandbox_plan *p, corral_error_t *err)
{
	char user[256], *group = NULL, buf[16384];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	unsigned long id;
	int rc;

	if (geteuid() != 0)
		return corral__err(err, EPERM, "--user `%s` needs corral to run as root", spec);
	if (snprintf(user, sizeof(user), "%s", spec) >= (int)sizeof(user))
		return corral__err(err, ENAMETOOLONG, "--user `%s`", spec);
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';

	if (parse_id(user, &id)) {
		p->uid = (uid_t)id;
		/* A passwd entry is optional for a numeric uid. */
		if (getpwuid_r(p->uid, &pw, buf, sizeof(buf), &pwp) != 0)
			pwp = NULL;
	} else {
		rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
		if (rc != 0)
			return corral__err(err, rc, "--user: look up user `%s`", user);
		if (!pwp || !*user)
			return corral__err(err, ENOENT,
			                   "--user: no user named `%s` (give a name from "
			                   "/etc/passwd or a numeric uid)",
			                   user);
		p->uid = pwp->pw_uid;
	}
	p->gid = pwp ? pwp->pw_gid : (gid_t)p->uid;
	if (group) {
		if (parse_id(group, &id)) {
			p->gid = (gid_t)id;
		} else {
			char gbuf[16384];
			rc = getgrnam_r(group, &gr, gbuf, sizeof(gbuf), &grp);
			if (rc != 0)
				return corral__err(err, rc, "--user: look up group `%s`", group);
			if (!grp || !*group)
				return corral__err(err, ENOENT,
				                   "--user: no group named `%s` (give a name "
				                   "from /etc/group or a numeric gid)",
				                   group);
			p->gid = grp->gr_gid;
		}
	}
	/* Supplementary groups. */
	int ng = 64;
	p->groups = malloc(sizeof(gid_t) * (size_t)ng);
	if (!p->groups)
		return corral__err(err, ENOMEM, "--user: groups");
	if (pwp && !group) {
		if (getgrouplist(pwp->pw_name, p->gid, p->groups, &ng) < 0) {
			gid_t *ng2 = realloc(p->groups, sizeof(gid_t) * (size_t)ng);
			if (!ng2)
				return corral__err(err, ENOMEM, "--user: groups");
			p->groups = ng2;
			if (getgrouplist(pwp->pw_name, p->gid, p->groups, &ng) < 0) {
				p->groups[0] = p->gid;
				ng = 1;
			}
		}
		p->ngroups = ng;
	} else {
		p->groups[0] = p->gid;
		p->ngroups = 1;
	}
	/* The user's own HOME, USER and LOGNAME, as runuser and sudo -i give
	 * them (a uid without a passwd entry: HOME=/, the number as its name). */
	char uid_name[24];
	snprintf(uid_name, sizeof(uid_name), "%lu", (unsigned long)p->uid);
	const char *name = pwp ? pwp->pw_name : uid_name;
	const char *home = pwp && pwp->pw_dir && *pwp->pw_dir ? pwp->pw_dir : "/";
	const char *const keys[3] = {"HOME=", "USER=", "LOGNAME="};
	const char *const vals[3] = {home, name, name};
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(keys[i]) + strlen(vals[i]) + 1;
		if (!(p->user_env[i] = malloc(l)))
			return corral__err(err, ENOMEM, "--user: environment");
		snprintf(p->user_env[i], l, "%s%s", keys[i], vals[i]);
	}
	p->drop_user = true;
	return 0;
}

/* Every cgroup/cgroup2 mount point, from /proc/self/mountinfo. */
static int collect_cgroup_mounts(struct corral__sandbox_plan *p, corral_error_t *err)
{
	char *text = NULL;
	int rc;

	/* Opened first: a change from here on shows in poll(). */
	if (p->mountinfo_fd < 0)
		p->mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	rc = read_file("/proc/self/mountinfo", &text, err);

	if (rc < 0)
		return rc;
	/* Every one of them: a mount left out would stay writable. Grow the
	 * list until the parser stops short of its end. */
	for (int max = 16;; max *= 2) {
		free(p->ro_mounts);
		p->ro_mounts = calloc((size_t)max, sizeof(*p->ro_mounts));
		if (!p->ro_mounts) {
			free(text);
			return corral__err(err, ENOMEM, "cgroup mount list");
		}
		p->n_ro = corral__parse_cgroup_mount_points(text, p->ro_mounts, max);
		if (p->n_ro < max)
			break;
	}
	free(text);
	if (p->n_ro == 0)
		return corral__err(
		    err, ENOENT, "no cgroup filesystem in /proc/self/mountinfo to make read-only");
	return 0;
}

/* The template: the helper, a clone3(CLONE_NEWNS) child, so async-signal-safe
 * only. It makes its new mount namespace what each task's used to be, writes
 * 0 or an errno on fd, then waits for EOF on go: by then the parent holds the
 * namespace, and the helper's root in it, by fds. */
__attribute__((noreturn)) static void template_helper(const struct corral__sandbox_plan *p, int fd,
                                                      int go)
{
	int e = 0;
	ssize_t n;
	char c;

	/* Private: a mount the host makes later must not reach a running task
	 * (a new cgroup mount would arrive read-write). EINVAL: our root is no
	 * mount point (a chroot); harmless, as flag changes never propagate and
	 * tasks cannot mount. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 && errno != EINVAL)
		e = errno;
	for (int i = 0; !e && i < p->n_ro; i++)
		if (mount(NULL, p->ro_mounts[i], NULL,
		          MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		          NULL) < 0 &&
		    errno != ENOENT)
			e = errno;
	/* Born in the batch's PID namespace: a /proc of it, where a task sees
	 * only the processes it may ptrace (Linux 5.8): its own and its
	 * siblings', not the watchdog, its namespace's init (whose environ and
	 * maps a root task could read otherwise). Older kernels: all of them. */
	if (!e && p->mount_proc &&
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=ptraceable") <
	        0 &&
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		e = errno;
	do
		n = write(fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	do
		n = read(go, &c, 1);
	while (n < 0 && errno == EINTR);
	_exit(0);
}

/* The spawner's variant of the filter (spawn.h): the same profile but for
 * its clone3 entries, where a deny-list denies clone3 by name and by nothing
 * else (a group that covers it could kill the spawner). Best effort: without
 * it the spawner carries the task filter, and its children join their
 * cgroups by cgroup.procs. */
static void spawner_filter(const struct corral__sc_profile *prof, struct corral__sandbox_plan *p)
{
	struct corral__sc_profile q = *prof;
	corral_error_t err;
	size_t n = 0;

	if (!prof->default_allow)
		return;
	q.entries = calloc(prof->n ? prof->n : 1, sizeof(*q.entries));
	if (!q.entries)
		return;
	for (size_t i = 0; i < prof->n; i++)
		if (strcmp(prof->entries[i].name, "clone3") != 0)
			q.entries[n++] = prof->entries[i];
	q.n = q.cap = n;
	if (n < prof->n && !corral__sc_denies(&q, "clone3") &&
	    corral__sc_compile(&q, &p->spawner_prog, &err) == 0)
		p->has_spawner_prog = true;
	free(q.entries);
}

/* Build the template mount namespace: p->mnt_ns_fd and p->mnt_root_fd, our
 * root's copy in it (the kernel moves a new namespace's members to the copies
 * of their root and cwd, so the helper's root is that copy). On any failure
 * (no clone3, ...) both stay -1 and the tasks make their own namespace as
 * before, meeting the same errors, if any, as spawn errors. */
static void make_template(struct corral__sandbox_plan *p)
{
	struct corral__clone_args a;
	int st[2], go[2], pidfd = -1, e = -1;
	sigset_t all, old;
	pid_t pid;

	if (pipe2(st, O_CLOEXEC) < 0)
		return;
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(st[0]);
		close(st[1]);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.flags = CLONE_PIDFD | CLONE_NEWNS;
	a.pidfd = (uint64_t)(uintptr_t)&pidfd;
	a.exit_signal = 0; /* no SIGCHLD for the caller */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = (pid_t)corral__clone3(&a);
	if (pid == 0) {
		close(go[1]);
		template_helper(p, st[1], go[0]);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(st[1]);
	close(go[0]);
	if (pid > 0) {
		char path[64];
		ssize_t n;
		do
			n = read(st[0], &e, sizeof(e));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)sizeof(e) && e == 0) {
			/* The helper waits for us: its pid is still its own. */
			snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
			p->mnt_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
			snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
			p->mnt_root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (p->mnt_ns_fd < 0 || p->mnt_root_fd < 0) {
				corral__close(p->mnt_ns_fd);
				corral__close(p->mnt_root_fd);
				p->mnt_ns_fd = p->mnt_root_fd = p->mountinfo_fd = -1;
			}
		}
	}
	close(go[1]); /* the helper exits */
	close(st[0]);
	if (pid > 0) {
		siginfo_t si;
		while (corral__waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL, NULL) <
		           0 &&
		       errno == EINTR)
			;
		close(pidfd);
	}
}

int corral__sandbox_prepare(const corral_sandbox_t *s, const struct corral__hier *h,
                            struct corral__sandbox_plan *p, corral_error_t *err)
{
	int rc;

	(void)h;
	memset(p, 0, sizeof(*p));
	p->mnt_ns_fd = p->mnt_root_fd = p->mountinfo_fd = -1;
	p->core_dumps = s->core_dumps;
	p->no_new_privs = s->no_new_privs;
	/* The cgroup namespace needs a filter even with seccomp off: its
	 * read-only cgroupfs holds only while mount and setns are denied. */
	if (s->seccomp != CORRAL_SECCOMP_OFF || s->cgroup_ns) {
		struct corral__sc_profile prof;
		bool file = s->seccomp == CORRAL_SECCOMP_FILE;
		if (s->seccomp == CORRAL_SECCOMP_DEFAULT) {
			rc = corral__sc_default(&prof, s->allow_ptrace, s->allow_io_uring);
			if (rc < 0)
				return corral__err(err, -rc, "build the default seccomp profile");
		} else if (file) {
			char *text = NULL;
			if (!s->seccomp_file)
				return corral__err(err, EINVAL, "no seccomp profile file given");
			rc = read_file(s->seccomp_file, &text, err);
			if (rc < 0)
				return rc;
			rc = corral__sc_parse(text, &prof, err);
			free(text);
			if (rc < 0)
				return corral__err_wrap(err, rc, "seccomp profile `%s`",
				                        s->seccomp_file);
		} else {
			/* seccomp off: only what the cgroup namespace needs. */
			memset(&prof, 0, sizeof(prof));
			prof.default_allow = true;
			prof.action = SC_ACT_ERRNO;
			prof.errno_value = EPERM;
			/* io_uring cannot mount, setns or clone: without a
			 * profile to bypass, nothing to deny it for. */
			prof.io_uring = true;
		}
		if (s->allow_io_uring)
			prof.io_uring = true;
		rc = s->cgroup_ns ? corral__sc_confine(&prof, err) : 0;
		if (rc == 0)
			rc = corral__sc_io_uring(&prof, err);
		if (rc == 0)
			rc = corral__sc_compile(&prof, &p->prog, err);
		if (rc == 0)
			spawner_filter(&prof, p);
		p->filter_kills = prof.action == SC_ACT_KILL;
		corral__sc_free(&prof);
		if (rc < 0) {
			if (file)
				corral__err_wrap(err, rc, "seccomp profile `%s`", s->seccomp_file);
			corral__sandbox_free(p);
			return rc;
		}
		p->has_filter = true;
		p->no_new_privs = true;
	}
	if ((s->cgroup_ns || s->no_network || s->pid_ns) && !have_cap(CAP_SYS_ADMIN)) {
		corral__sandbox_free(p);
		return corral__err(err, EPERM, "%s need%s CAP_SYS_ADMIN (run corral as root%s)",
		                   s->cgroup_ns ? "the cgroup namespace and read-only cgroupfs"
		                   : s->pid_ns  ? "the batch's PID namespace"
		                                : "the network namespace",
		                   s->cgroup_ns ? "" : "s",
		                   s->cgroup_ns ? ", or turn the sandbox's cgroup_ns off"
		                   : s->pid_ns  ? ", or turn the sandbox's pid_ns off"
		                                : "");
	}
	p->mount_proc = s->pid_ns && s->cgroup_ns;
	if (s->cgroup_ns) {
		p->unshare_flags |= CLONE_NEWCGROUP | CLONE_NEWNS;
		rc = collect_cgroup_mounts(p, err);
		if (rc < 0) {
			corral__sandbox_free(p);
			return rc;
		}
		p->drop_cap_ptrace = true;
		/* Joining it needs CAP_SYS_CHROOT too (setns, chroot). */
		if (have_cap(CAP_SYS_CHROOT))
			make_template(p);
	}
	if (s->no_network) {
		p->unshare_flags |= CLONE_NEWNET;
		p->lo_up = true;
	}
	if (s->user) {
		rc = resolve_user(s->user, p, err);
		if (rc < 0) {
			corral__sandbox_free(p);
			return rc;
		}
	}
	hold_nondumpable();
	p->holds_dumpable = true;
	return 0;
}

bool corral__sandbox_stale(const struct corral__sandbox_plan *p)
{
	struct pollfd pfd = {.fd = p->mountinfo_fd, .events = POLLPRI};

	/* The kernel flags POLLPRI | POLLERR on a mounts file once the mount
	 * table changed since the last poll (or the open): once, the poll
	 * takes the news. */
	return p->mountinfo_fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLPRI | POLLERR));
}

bool corral__sandbox_refresh(struct corral__sandbox_plan *p)
{
	struct corral__sandbox_plan fresh;

	/* A cgroup mount made since must be read-only too, a mount the template
	 * has not seen (where propagation does not bring it) must show. On
	 * failure keep what we have. */
	memset(&fresh, 0, sizeof(fresh));
	fresh.mnt_ns_fd = fresh.mnt_root_fd = -1;
	fresh.mount_proc = p->mount_proc;
	fresh.mountinfo_fd = p->mountinfo_fd;
	if (collect_cgroup_mounts(&fresh, NULL) < 0) {
		free(fresh.ro_mounts);
		return false;
	}
	if (p->mnt_ns_fd >= 0)
		make_template(&fresh);
	free(p->ro_mounts);
	p->ro_mounts = fresh.ro_mounts;
	p->n_ro = fresh.n_ro;
	corral__close(p->mnt_ns_fd);
	corral__close(p->mnt_root_fd);
	p->mnt_ns_fd = fresh.mnt_ns_fd;
	p->mnt_root_fd = fresh.mnt_root_fd;
	return true;
}

void corral__sandbox_free(struct corral__sandbox_plan *p)
{
	if (p->holds_dumpable)
		release_nondumpable();
	if (p->mnt_ns_fd >= 0)
		close(p->mnt_ns_fd);
	if (p->mnt_root_fd >= 0)
		close(p->mnt_root_fd);
	if (p->mountinfo_fd >= 0)
		close(p->mountinfo_fd);
	free(p->prog.filter);
	free(p->spawner_prog.filter);
	free(p->ro_mounts);
	free(p->groups);
	for (size_t i = 0; i < ARRAY_SIZE(p->user_env); i++)
		free(p->user_env[i]);
	memset(p, 0, sizeof(*p));
}
