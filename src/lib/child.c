/* child.c - the only code that runs between fork and exec.
 *
 * Async-signal-safe only: raw syscalls and the few libc functions POSIX lists
 * as async-signal-safe (sigaction, sigprocmask, dup2, open, write, chdir,
 * execve, _exit, ...). No malloc, no stdio, no locks, no libcgroup, no
 * libseccomp, and no glibc set*id() wrappers (they signal the parent's other
 * threads, which do not exist here): the parent prepared everything in the
 * plan. The order is the policy:
 *
 *   1. join the task cgroup (unless born in it by CLONE_INTO_CGROUP)
 *   2. reset signal dispositions, then unblock every signal
 *   3. PR_SET_PDEATHSIG(SIGKILL), then re-check that the parent still lives
 *   4. own process group (unless foreground)
 *   5. stdin/stdout/stderr
 *   6. working directory
 *   7. rlimits (RLIMIT_CORE 0 unless core dumps are wanted)
 *   8. namespaces: cgroup (+ read-only cgroupfs in a mount namespace of its
 *      own, or joined: the executor's template), network (only loopback);
 *      then drop CAP_SYS_PTRACE (sandbox.c says why)
 *   9. user and groups
 *  10. no_new_privs
 *  11. close every other fd
 *  12. seccomp, the last step, so the filter need not allow the steps above
 *  13. execve (or the function, then _exit)
 *
 * A failing step writes {step, errno} on the CLOEXEC error pipe and exits 127;
 * EOF on the pipe tells the parent that exec succeeded. A child that shares
 * the parent's memory until exec stores {step, errno} in the plan instead.
 */
#include <fcntl.h>
#include <sched.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "spawn.h"
#include "syscalls.h"

static const char *const step_names[STEP_COUNT] = {
    [STEP_CGROUP] = "join cgroup",
    [STEP_SIGNALS] = "reset signals",
    [STEP_PDEATHSIG] = "set parent-death signal",
    [STEP_SETPGID] = "setpgid",
    [STEP_STDIO] = "set up stdio",
    [STEP_CHDIR] = "chdir",
    [STEP_RLIMIT] = "setrlimit",
    [STEP_UNSHARE] = "unshare namespaces",
    [STEP_SETNS] = "join the read-only mount namespace",
    [STEP_MOUNT] = "remount cgroupfs read-only",
    [STEP_NETWORK] = "bring up loopback",
    [STEP_CAPS] = "drop CAP_SYS_PTRACE",
    [STEP_USER] = "switch user",
    [STEP_NO_NEW_PRIVS] = "set no_new_privs",
    [STEP_CLOSE_FDS] = "close fds",
    [STEP_SECCOMP] = "load seccomp filter",
    [STEP_EXEC] = "exec",
    [STEP_FN] = "start function",
};

const char *corral__step_name(int step)
{
	if (step <= 0 || step >= STEP_COUNT || !step_names[step])
		return "spawn";
	return step_names[step];
}

__attribute__((noreturn)) static void fail(const struct corral__child_plan *p, int step, int e)
{
	struct corral__child_report r = {.step = step, .err = e};
	ssize_t n;

	if (p->report) {
		/* Our parent sleeps until we exit, and reads this then. */
		*p->report = r;
		_exit(127);
	}
	do
		n = write(p->err_fd, &r, sizeof(r));
	while (n < 0 && errno == EINTR);
	/* If the write failed the parent is gone; nothing else to do. */
	_exit(127);
}

static int write0(int fd)
{
	ssize_t n;

	do
		n = write(fd, "0", 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static void reset_signals(const struct corral__child_plan *p)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* glibc reserves two real-time signals and answers EINVAL. */
		(void)sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		fail(p, STEP_SIGNALS, errno);
}

static void setup_stdio(const struct corral__child_plan *p)
{
	int tmp[3];

	/* Copy every source above 2 first so that the dup2()s below cannot
	 * clobber a source that is itself 0, 1 or 2. */
	for (int i = 0; i < 3; i++) {
		tmp[i] = fcntl(p->stdio[i], F_DUPFD_CLOEXEC, 3);
		if (tmp[i] < 0)
			fail(p, STEP_STDIO, errno);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			fail(p, STEP_STDIO, errno);
}

static void loopback_up(const struct corral__child_plan *p)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		fail(p, STEP_NETWORK, errno);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		fail(p, STEP_NETWORK, errno);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fail(p, STEP_NETWORK, errno);
	close(s);
}

/* Join the template mount namespace (sandbox.c). setns() moves the root and
 * the working directory to the namespace's root. The root comes back by
 * mnt_root_fd, our root's copy inside the template (it differs from the
 * namespace's root in a chroot, or after an initramfs's switch_root). The
 * working directory comes back by its path, resolved in the template, and
 * must be the same directory. Never by an fd of the old namespace: ".." from
 * there would climb the old mount tree, where the cgroupfs is writable. */
static void join_mount_ns(const struct corral__child_plan *p, const struct corral__sandbox_plan *sb)
{
	char cwd[PATH_MAX];
	struct stat before, after;

	if (syscall(SYS_getcwd, cwd, sizeof(cwd)) < 0 || stat(".", &before) < 0)
		fail(p, STEP_CHDIR, errno);
	if (cwd[0] != '/') /* "(unreachable)/...": outside our root */
		fail(p, STEP_CHDIR, ENOENT);
	if (setns(sb->mnt_ns_fd, CLONE_NEWNS) < 0 || fchdir(sb->mnt_root_fd) < 0 || chroot(".") < 0)
		fail(p, STEP_SETNS, errno);
	if (chdir(cwd) < 0 || stat(".", &after) < 0)
		fail(p, STEP_CHDIR, errno);
	if (after.st_dev != before.st_dev || after.st_ino != before.st_ino)
		fail(p, STEP_CHDIR, ENOENT);
}

static void apply_namespaces(const struct corral__child_plan *p,
                             const struct corral__sandbox_plan *sb)
{
	int flags = sb->unshare_flags;

	if (!flags)
		return;
	if ((flags & CLONE_NEWNS) && sb->mnt_ns_fd >= 0) {
		join_mount_ns(p, sb);
		flags &= ~CLONE_NEWNS;
	}
	if (flags && unshare(flags) < 0)
		fail(p, STEP_UNSHARE, errno);
	if (flags & CLONE_NEWNS) {
		/* Our mounts must not propagate back to the host. EINVAL: our
		 * root is no mount point (a chroot); harmless, as flag changes
		 * never propagate and the task cannot mount. */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 && errno != EINVAL)
			fail(p, STEP_MOUNT, errno);
		for (int i = 0; i < sb->n_ro; i++) {
			if (mount(NULL, sb->ro_mounts[i], NULL,
			          MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
			              MS_NOEXEC,
			          NULL) < 0 &&
			    errno != ENOENT)
				fail(p, STEP_MOUNT, errno);
		}
	}
	if ((sb->unshare_flags & CLONE_NEWNET) && sb->lo_up)
		loopback_up(p);
}

/* Drop CAP_SYS_PTRACE from the bounding set (root regains every bounding-set
 * capability at execve) and from the effective, permitted and inheritable
 * sets (function tasks do not exec). Raw capget/capset: no libcap here. */
static void drop_cap_ptrace(const struct corral__child_plan *p)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	const unsigned bit = 1u << (CAP_SYS_PTRACE % 32);
	struct __user_cap_data_struct *w = &d[CAP_SYS_PTRACE / 32];

	if (prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0) > 0 &&
	    prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) < 0)
		fail(p, STEP_CAPS, errno);
	if (syscall(SYS_capget, &h, d) < 0)
		fail(p, STEP_CAPS, errno);
	if ((w->effective | w->permitted | w->inheritable) & bit) {
		w->effective &= ~bit;
		w->permitted &= ~bit;
		w->inheritable &= ~bit;
		if (syscall(SYS_capset, &h, d) < 0)
			fail(p, STEP_CAPS, errno);
	}
}

static void drop_user(const struct corral__child_plan *p, const struct corral__sandbox_plan *sb)
{
	if (!sb->drop_user)
		return;
	/* Raw syscalls: glibc's wrappers would broadcast to the parent's
	 * threads through its copied thread list. */
	if (syscall(SYS_setgroups, (size_t)sb->ngroups, sb->groups) < 0)
		fail(p, STEP_USER, errno);
	if (syscall(SYS_setresgid, sb->gid, sb->gid, sb->gid) < 0)
		fail(p, STEP_USER, errno);
	if (syscall(SYS_setresuid, sb->uid, sb->uid, sb->uid) < 0)
		fail(p, STEP_USER, errno);
}

/* Keep 0, 1, 2 and the fds in keep[] (moved to 3, 4, ...); close the rest. */
static void close_fds(const struct corral__child_plan *p, int *keep, int nkeep)
{
	int tmp[2];

	for (int i = 0; i < nkeep; i++) {
		tmp[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 3 + nkeep);
		if (tmp[i] < 0)
			fail(p, STEP_CLOSE_FDS, errno);
	}
	for (int i = 0; i < nkeep; i++) {
		if (dup3(tmp[i], 3 + i, O_CLOEXEC) < 0)
			fail(p, STEP_CLOSE_FDS, errno);
		keep[i] = 3 + i;
	}
	if (corral__close_range((unsigned)(3 + nkeep), ~0u) < 0) {
		struct rlimit rl;
		int max = 65536;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20)
			max = (int)rl.rlim_cur;
		for (int fd = 3 + nkeep; fd < max; fd++)
			close(fd);
	}
}

__attribute__((noreturn)) void corral__child_main(const struct corral__child_plan *p)
{
	const struct corral__sandbox_plan *sb = p->sb;
	int keep[2], nkeep = 0;

	/* 1. Join the task cgroup before anything else runs. */
	if (p->procs_fd >= 0 && write0(p->procs_fd) < 0)
		fail(p, STEP_CGROUP, errno);
	if (p->pids_procs_fd >= 0 && write0(p->pids_procs_fd) < 0)
		fail(p, STEP_CGROUP, errno);
	/* 2. */
	reset_signals(p);
	/* 3. Die with the parent; it may have died before the prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(p, STEP_PDEATHSIG, errno);
	if (getppid() != p->parent_pid)
		_exit(127);
	/* 4. */
	if (p->new_pgroup && setpgid(0, 0) < 0)
		fail(p, STEP_SETPGID, errno);
	/* 5. */
	setup_stdio(p);
	/* 6. */
	if (p->cwd && chdir(p->cwd) < 0)
		fail(p, STEP_CHDIR, errno);
	/* 7. */
	if (sb && !sb->core_dumps) {
		struct rlimit rl = {0, 0};
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			fail(p, STEP_RLIMIT, errno);
	}
	if (sb) {
		/* 8, 9, 10. */
		apply_namespaces(p, sb);
		if (sb->drop_cap_ptrace)
			drop_cap_ptrace(p);
		drop_user(p, sb);
		if ((sb->no_new_privs || sb->has_filter) &&
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			fail(p, STEP_NO_NEW_PRIVS, errno);
	}
	/* 11. */
	if (p->err_fd >= 0)
		keep[nkeep++] = p->err_fd;
	if (p->fn)
		keep[nkeep++] = p->fn_out_fd;
	close_fds(p, keep, nkeep);
	struct corral__child_plan moved = *p;
	if (p->err_fd >= 0)
		moved.err_fd = keep[0];
	/* 12. */
	if (sb && sb->has_filter && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sb->prog) < 0)
		fail(&moved, STEP_SECCOMP, errno);
	/* 13. */
	if (p->fn) {
		int rc;
		if (p->after_fork_child)
			p->after_fork_child();
		/* EOF on the error pipe now means "started". */
		close(moved.err_fd);
		rc = p->fn(p->fn_arg, keep[nkeep - 1]);
		/* The function ran arbitrary code after a real fork(); flushing
		 * its stdio is its business and ours only as a courtesy. */
		fflush(NULL);
		_exit(rc & 0xff);
	}
	execve(p->path, p->argv, p->envp);
	fail(&moved, STEP_EXEC, errno);
}
