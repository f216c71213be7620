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
 *   2. non-dumpable (see below), reset signal dispositions, unblock signals,
 *      the scheduling policy (a spawner's child: zygote.c)
 *   3. PR_SET_PDEATHSIG(SIGKILL), then re-check that the parent still lives
 *   4. a session of its own (setsid; `corral exec`: the caller's process
 *      group and terminal instead)
 *   5. stdin/stdout/stderr
 *   6. working directory
 *   7. rlimits (RLIMIT_CORE 0 unless core dumps are wanted)
 *   8. namespaces: cgroup (+ read-only cgroupfs in a mount namespace of its
 *      own, or joined: the executor's template), network (only loopback)
 *   9. close every other fd
 *  10. drop CAP_SYS_PTRACE (sandbox.c says why)
 *  11. user and groups
 *  12. no_new_privs
 *  13. seccomp, the last step, so the filter need not allow the steps above
 *  14. a child made ahead (a spawner's "warm child", attempt_local.c):
 *      wait at its gate until corral lets it go
 *  15. execve (or the function, then _exit)
 *
 * Siblings are hostile (an escape audit showed it): until its execve a child
 * holds every fd of corral (writable cgroup directories among them) and, in
 * the CLONE_VM modes, corral's own memory. A root task without
 * CAP_SYS_PTRACE can reach another process of its uid through
 * /proc/<pid>/{fd,mem} or pidfd_getfd() when that process is dumpable and
 * its permitted capabilities are a subset of the task's. So: the child is
 * non-dumpable from its first instruction (corral is too, sandbox.c: a
 * CLONE_VM child shares corral's mm and its flag), every fd but the few it
 * needs is closed BEFORE it gives up CAP_SYS_PTRACE (until then no task can
 * reach it), and a --user child keeps its saved gid 0 until execve (which
 * sets it to the effective gid): the uid change makes the kernel set
 * dumpability to fs.suid_dumpable, which could be 1, and the gid mismatch
 * keeps a task of the same user away all the same.
 *
 * A failing step writes {step, errno} on the CLOEXEC error pipe and exits 127;
 * EOF on the pipe tells the parent that exec succeeded. A child that shares
 * the parent's memory until exec stores {step, errno} in the plan instead.
 *
 * Every step is a raw system call (ks() below), never a libc wrapper: a child
 * that shares the parent's memory runs beside the parent (spawn.c), and
 * libc's wrappers write errno, which lives in the parent thread's TLS. A
 * raw call touches nothing but its arguments and this stack. The compiled
 * exec path calls no libc function at all (objdump: only the function-task
 * path's close, fflush and _exit), and corral links with -z now, so that
 * not even a compiler-made memcpy could enter the lazy PLT resolver.
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

/* A raw system call: the result, or -errno. No TLS, no errno. */
#if defined(__x86_64__)
static inline long k6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}
#else
/* Elsewhere the child never shares our memory (spawn.c): errno is its own. */
static inline long k6(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}
#endif
#define ks_(n, a, b, c, d, e, f, ...)                                                              \
	k6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define ks(...) ks_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

/* The kernel's struct sigaction (x86-64, arm64, riscv64 layout). */
struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

__attribute__((noreturn)) static void die127(void)
{
	for (;;)
		ks(SYS_exit_group, 127);
}

static const char *const step_names[STEP_COUNT] = {
    [STEP_CGROUP] = "join cgroup",
    [STEP_SIGNALS] = "reset signals",
    [STEP_PDEATHSIG] = "set parent-death signal",
    [STEP_SETPGID] = "setsid",
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
    [STEP_SPAWNER] = "spawner",
    [STEP_SCHED] = "restore the scheduling policy",
    [STEP_GATE] = "wait for its turn",
};

const char *corral__step_name(int step)
{
	if (step <= 0 || step >= STEP_COUNT || !step_names[step])
		return "spawn";
	return step_names[step];
}

__attribute__((noreturn)) static void fail(const struct corral__child_plan *p, int step, long e)
{
	struct corral__child_report r = {.step = step, .err = (int32_t)-e};
	long n;

	if (p->report) {
		/* Our parent reads this once we are gone. */
		*p->report = r;
		die127();
	}
	do
		n = ks(SYS_write, p->err_fd, &r, sizeof(r));
	while (n == -EINTR);
	/* If the write failed the parent is gone; nothing else to do. */
	die127();
}

/* Run a raw call; on failure report step with its errno and exit. */
#define TRY(p, step, call)                                                                         \
	do {                                                                                       \
		long rc_ = (call);                                                                 \
		if (rc_ < 0)                                                                       \
			fail(p, step, rc_);                                                        \
	} while (0)

static long write0(int fd)
{
	long n;

	do
		n = ks(SYS_write, fd, "0", 1);
	while (n == -EINTR);
	return n == 1 ? 0 : n < 0 ? n : -EIO;
}

static void reset_signals(const struct corral__child_plan *p)
{
	struct ksigaction sa = {.handler = SIG_DFL};
	unsigned long none = 0;

	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* A spawner's child inherits its dispositions, known to the
		 * bit: only those it ignores need a call (a handler would be
		 * reset by execve, and it has none). 64 calls were 12 us. */
		if (p->sig_reset && !(p->sig_reset & (1ull << (sig - 1))))
			continue;
		/* A function task goes on running glibc, which keeps its two
		 * real-time signals (32, 33) to itself. */
		if (p->fn && (sig == 32 || sig == 33))
			continue;
		(void)ks(SYS_rt_sigaction, sig, &sa, NULL, sizeof(sa.mask));
	}
	TRY(p, STEP_SIGNALS, ks(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none)));
}

static void setup_stdio(const struct corral__child_plan *p)
{
	long tmp[3];

	/* Every source above 2 (a spawner's always are): dup3 cannot clobber
	 * one, no copies needed. */
	if (p->stdio[0] > 2 && p->stdio[1] > 2 && p->stdio[2] > 2) {
		for (int i = 0; i < 3; i++)
			TRY(p, STEP_STDIO, ks(SYS_dup3, p->stdio[i], i, 0));
		return;
	}
	/* Copy every source above 2 first so that the dups below cannot
	 * clobber a source that is itself 0, 1 or 2. */
	for (int i = 0; i < 3; i++) {
		tmp[i] = ks(SYS_fcntl, p->stdio[i], F_DUPFD_CLOEXEC, 3);
		if (tmp[i] < 0)
			fail(p, STEP_STDIO, tmp[i]);
	}
	for (int i = 0; i < 3; i++)
		TRY(p, STEP_STDIO, ks(SYS_dup3, tmp[i], i, 0)); /* tmp[i] > 2: never equal */
}

static void loopback_up(const struct corral__child_plan *p)
{
	struct ifreq ifr;
	long s = ks(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		fail(p, STEP_NETWORK, s);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	TRY(p, STEP_NETWORK, ks(SYS_ioctl, s, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	TRY(p, STEP_NETWORK, ks(SYS_ioctl, s, SIOCSIFFLAGS, &ifr));
	ks(SYS_close, s);
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

	TRY(p, STEP_CHDIR, ks(SYS_getcwd, cwd, sizeof(cwd)));
	TRY(p, STEP_CHDIR, ks(SYS_newfstatat, AT_FDCWD, ".", &before, 0));
	if (cwd[0] != '/') /* "(unreachable)/...": outside our root */
		fail(p, STEP_CHDIR, -ENOENT);
	TRY(p, STEP_SETNS, ks(SYS_setns, sb->mnt_ns_fd, CLONE_NEWNS));
	TRY(p, STEP_SETNS, ks(SYS_fchdir, sb->mnt_root_fd));
	TRY(p, STEP_SETNS, ks(SYS_chroot, "."));
	TRY(p, STEP_CHDIR, ks(SYS_chdir, cwd));
	TRY(p, STEP_CHDIR, ks(SYS_newfstatat, AT_FDCWD, ".", &after, 0));
	if (after.st_dev != before.st_dev || after.st_ino != before.st_ino)
		fail(p, STEP_CHDIR, -ENOENT);
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
	if (flags)
		TRY(p, STEP_UNSHARE, ks(SYS_unshare, flags));
	if (flags & CLONE_NEWNS) {
		/* Our mounts must not propagate back to the host. EINVAL: our
		 * root is no mount point (a chroot); harmless, as flag changes
		 * never propagate and the task cannot mount. */
		long rc = ks(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
		if (rc < 0 && rc != -EINVAL)
			fail(p, STEP_MOUNT, rc);
		for (int i = 0; i < sb->n_ro; i++) {
			rc = ks(SYS_mount, NULL, sb->ro_mounts[i], NULL,
			        MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			        NULL);
			if (rc < 0 && rc != -ENOENT)
				fail(p, STEP_MOUNT, rc);
		}
		/* As the template's (sandbox.c): hidepid=ptraceable where the
		 * kernel has it (5.8). */
		if (sb->mount_proc &&
		    ks(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		       "hidepid=ptraceable") < 0)
			TRY(p, STEP_MOUNT,
			    ks(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			       NULL));
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

	if (ks(SYS_prctl, PR_CAPBSET_READ, CAP_SYS_PTRACE) > 0)
		TRY(p, STEP_CAPS, ks(SYS_prctl, PR_CAPBSET_DROP, CAP_SYS_PTRACE));
	TRY(p, STEP_CAPS, ks(SYS_capget, &h, d));
	if ((w->effective | w->permitted | w->inheritable) & bit) {
		w->effective &= ~bit;
		w->permitted &= ~bit;
		w->inheritable &= ~bit;
		TRY(p, STEP_CAPS, ks(SYS_capset, &h, d));
	}
}

static void drop_user(const struct corral__child_plan *p, const struct corral__sandbox_plan *sb)
{
	if (!sb->drop_user)
		return;
	/* The saved gid stays 0 until execve sets it to the effective one (the
	 * top of this file says why); a function task never execs and gets
	 * its final ids at once (a saved gid 0 would let it regain gid 0). */
	gid_t sgid = p->fn ? sb->gid : 0;
	TRY(p, STEP_USER, ks(SYS_setgroups, (size_t)sb->ngroups, sb->groups));
	TRY(p, STEP_USER, ks(SYS_setresgid, sb->gid, sb->gid, sgid));
	TRY(p, STEP_USER, ks(SYS_setresuid, sb->uid, sb->uid, sb->uid));
	/* The uid change set dumpability to fs.suid_dumpable: back to 0. */
	TRY(p, STEP_USER, ks(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0));
}

/* A warm child tells corral who it is: a pidfd of itself over its gate,
 * so that corral can see, when it lets it go, whether it still lives (a
 * task can kill it meanwhile) and wake it (or stop it). Best effort: no
 * pidfd (an old kernel, a filter that denies it), no message. */
static void gate_send_pidfd(int gate)
{
#ifdef SYS_pidfd_open
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr m;
	char byte = 0;
	long fd = ks(SYS_pidfd_open, ks(SYS_getpid), 0);

	if (fd < 0)
		return;
	/* Field by field: no memset (no libc call in the child). */
	iov.iov_base = &byte;
	iov.iov_len = 1;
	m.msg_name = NULL;
	m.msg_namelen = 0;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof(u.buf);
	m.msg_flags = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	int ifd = (int)fd;
	__builtin_memcpy(CMSG_DATA(c), &ifd, sizeof(int));
	(void)ks(SYS_sendmsg, gate, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)ks(SYS_close, fd);
#else
	(void)gate;
#endif
}

/* Keep 0, 1, 2 and the fds in keep[] (moved to 3, 4, ...); close the rest. */
static void close_fds(const struct corral__child_plan *p, int *keep, int nkeep)
{
	long tmp[3];

	for (int i = 0; i < nkeep; i++) {
		tmp[i] = ks(SYS_fcntl, keep[i], F_DUPFD_CLOEXEC, 3 + nkeep);
		if (tmp[i] < 0)
			fail(p, STEP_CLOSE_FDS, tmp[i]);
	}
	for (int i = 0; i < nkeep; i++) {
		TRY(p, STEP_CLOSE_FDS, ks(SYS_dup3, tmp[i], 3 + i, O_CLOEXEC));
		keep[i] = 3 + i;
	}
#ifdef SYS_close_range
	if (ks(SYS_close_range, 3 + nkeep, ~0u, 0) == 0)
		return;
#endif
	struct rlimit rl;
	long max = 65536;
	if (ks(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur < 1u << 20)
		max = (long)rl.rlim_cur;
	for (long fd = 3 + nkeep; fd < max; fd++)
		ks(SYS_close, fd);
}

__attribute__((noreturn)) void corral__child_main(const struct corral__child_plan *p)
{
	const struct corral__sandbox_plan *sb = p->sb;
	int keep[3], nkeep = 0;
	long rc;

	/* 1. Join the task cgroup before anything else runs. */
	if (p->procs_fd >= 0 && (rc = write0(p->procs_fd)) < 0)
		fail(p, STEP_CGROUP, rc);
	if (p->pids_procs_fd >= 0 && (rc = write0(p->pids_procs_fd)) < 0)
		fail(p, STEP_CGROUP, rc);
	/* 2. No sibling may read our fds or memory (the top of the file). */
	if (sb && !p->nondumpable)
		TRY(p, STEP_SIGNALS, ks(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0));
	reset_signals(p);
	/* The policy corral's caller gave it, which the spawner left. */
	if (p->sched_other) {
		struct sched_param sp = {0};
		TRY(p, STEP_SCHED, ks(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp));
	}
	/* 3. Die with the parent; it may have died before the prctl. In a PID
	 * namespace of the batch's own, our parent (outside it) shows as 0. */
	TRY(p, STEP_PDEATHSIG, ks(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL));
	if (ks(SYS_getppid) != p->parent_pid)
		die127();
	/* 4. A session of our own: no controlling terminal to type into. */
	if (p->new_pgroup)
		TRY(p, STEP_SETPGID, ks(SYS_setsid));
	/* 5. */
	setup_stdio(p);
	/* 6. From a zygote, which lives in the template mount namespace, the
	 * directory must be the one corral meant (a directory on a mount the
	 * template never saw would be another or none). */
	if (p->cwd)
		TRY(p, STEP_CHDIR, ks(SYS_chdir, p->cwd));
	if (p->cwd_check) {
		struct stat here;
		TRY(p, STEP_CHDIR, ks(SYS_newfstatat, AT_FDCWD, ".", &here, 0));
		if ((uint64_t)here.st_dev != p->cwd_dev || (uint64_t)here.st_ino != p->cwd_ino)
			fail(p, STEP_CHDIR, -ENOENT);
	}
	/* 7. */
	if (sb && !sb->core_dumps) {
		struct rlimit rl = {0, 0};
		TRY(p, STEP_RLIMIT, ks(SYS_prlimit64, 0, RLIMIT_CORE, &rl, NULL));
	}
	/* 8. */
	if (sb)
		apply_namespaces(p, sb);
	/* 9. Before any privilege is given up: until then no task can reach
	 * us, after it nothing of corral's is left to take. */
	if (p->err_fd >= 0)
		keep[nkeep++] = p->err_fd;
	if (p->gated)
		keep[nkeep++] = p->gate_fd;
	if (p->fn)
		keep[nkeep++] = p->fn_out_fd; /* last: see 15 */
	close_fds(p, keep, nkeep);
	struct corral__child_plan moved = *p;
	if (p->err_fd >= 0)
		moved.err_fd = keep[0];
	if (p->gated)
		moved.gate_fd = keep[p->err_fd >= 0 ? 1 : 0];
	if (sb) {
		/* 10, 11, 12. */
		if (sb->drop_cap_ptrace)
			drop_cap_ptrace(&moved);
		drop_user(&moved, sb);
		if (sb->no_new_privs || sb->has_filter)
			TRY(&moved, STEP_NO_NEW_PRIVS,
			    ks(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	}
	/* 13. */
	if (sb && sb->has_filter)
		TRY(&moved, STEP_SECCOMP, ks(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sb->prog));
	if (p->filter2)
		TRY(&moved, STEP_SECCOMP, ks(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p->filter2));
	/* 14. A child made ahead waits here, with every step done and the
	 * task's own privileges, until corral lets it go (one byte) or tells
	 * it to exit (EOF: corral closed the gate, or died). The gate is
	 * CLOEXEC: the task never sees it. */
	if (p->gated) {
		char go;
		gate_send_pidfd(moved.gate_fd);
		do
			rc = ks(SYS_read, moved.gate_fd, &go, 1);
		while (rc == -EINTR);
		if (rc != 1)
			fail(&moved, STEP_GATE, rc < 0 ? rc : -ECANCELED);
	}
	/* 15. */
	if (p->fn) {
		int ret;
		if (p->after_fork_child)
			p->after_fork_child();
		/* EOF on the error pipe now means "started". */
		close(moved.err_fd);
		ret = p->fn(p->fn_arg, keep[nkeep - 1]);
		/* The function ran arbitrary code after a real fork(); flushing
		 * its stdio is its business and ours only as a courtesy. */
		fflush(NULL);
		_exit(ret & 0xff);
	}
	rc = ks(SYS_execve, p->path, p->argv, p->envp);
	fail(&moved, STEP_EXEC, rc);
}
