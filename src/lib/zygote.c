/* zygote.c - the spawner: a process that carries the sandbox once, so that
 * task children inherit it instead of building it each (issue 17).
 *
 * Without it every task child loads the seccomp filter (the kernel converts
 * and JIT-compiles the program, then runs it for every syscall number of
 * both x86 arches to build its cache of always-allowed calls: ~65 us of
 * kernel CPU per task), joins the template mount namespace and chroots, and
 * drops CAP_SYS_PTRACE. The zygote does all of that once, at its start, and
 * its children inherit it: a filter, namespaces, capabilities, no_new_privs
 * and rlimits pass to children as they are. A child then only joins its task
 * cgroup, gets its session, stdio, working directory, its cgroup (and
 * network) namespace and user, closes fds and execs (child.c, with the
 * inherited steps turned off in its plan).
 *
 * What keeps every promise:
 *  - tasks stay corral's children: the zygote clones with CLONE_PARENT, so
 *    corral reaps them through their pidfds as any other (the pidfd comes
 *    back over the socket, SCM_RIGHTS), and they get no SIGCHLD to send;
 *  - tasks are born in the batch's PID namespace (the zygote's
 *    pid_for_children), while the zygote itself stays in corral's: tasks can
 *    neither see nor signal it, as corral;
 *  - nothing is shared between tasks that a task can reach: the zygote is
 *    non-dumpable and without CAP_SYS_PTRACE, and holds a task's fds only
 *    until its child has exec'd (vfork-style: it waits, then closes them);
 *  - clone3 stays denied to tasks. On v1 the zygote uses the old clone()
 *    (the filter allows it) and a child joins its task cgroups by writing
 *    cgroup.procs. On v2 a child is born in its task cgroup
 *    (clone3 CLONE_INTO_CGROUP): a cgroup.procs write is a migration,
 *    which waits for an RCU grace period (in the v2 VM the default mode
 *    took 1.63x the floor at -j 1 that way, 1.28x born in place). So there
 *    the zygote carries the task filter but for clone3 (sandbox.c,
 *    spawner_prog), and each child adds a filter of its own that denies
 *    clone3 with ENOSYS before its exec (filters stack; the strictest
 *    answer wins): a task has exactly the task filter's answers. Where
 *    clone3 into the cgroup fails, the child joins by cgroup.procs;
 *  - corral never waits for it: a request is one datagram (SOCK_SEQPACKET),
 *    the reply another, read when the loop finds the socket readable; a
 *    zygote that dies or stalls (5 s without a reply to a request) is
 *    killed, the attempts it held end as spawn errors with their cgroups
 *    killed, and later tasks go to another spawner or are spawned directly.
 *
 * A spawner serializes its children's pre-exec steps (CLONE_VFORK: it waits
 * for each exec), so attempt_local.c runs one per CPU the batch may use, up
 * to -j (at most CORRAL_ZYG_MAX), and hands each request to the one with the
 * fewest unanswered: with one spawner on 2 CPUs, -j 2 took 1.14x the time
 * of the code before the hardening (abab886); with two, 0.99x (README,
 * Benchmarks).
 *
 * The zygote is a fork of a possibly multi-threaded process: after the fork
 * it runs only async-signal-safe code, with static buffers (its own copy).
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "spawn.h"
#include "syscalls.h"

#define ZYG_BUF   (256 * 1024) /* a request: path, argv, envp and cwd */
#define ZYG_STACK (64 * 1024)
#define ZYG_MAXFD 7 /* stdin, stdout, stderr, cgroup.procs, pids cgroup.procs, cgroup dir, gate */

/* A request: this header, then path, argv strings, envp strings and cwd,
 * each NUL-terminated, in that order; fds in SCM_RIGHTS, in order of the
 * bits of fd_mask (stdio 0-2 always, 3 procs, 4 pids procs, 5 the v2 task
 * cgroup's directory: clone into it, or join by 3 where that fails, 6 a
 * gate: the child waits on it before its exec, and we with it). */
struct zyg_req {
	uint64_t cookie;
	uint32_t argc, envc;
	uint32_t fd_mask;
	uint32_t flags;
	int32_t parent_pid;
	uint64_t cwd_dev, cwd_ino;
};
/* The signals the spawner ignores (zmain); every other is SIG_DFL. */
#define ZYG_SIG_BIT(s) (1ull << ((s)-1))
#define ZYG_SIG_IGNORED                                                                            \
	(ZYG_SIG_BIT(SIGPIPE) | ZYG_SIG_BIT(SIGINT) | ZYG_SIG_BIT(SIGHUP) | ZYG_SIG_BIT(SIGTERM))
#define ZYG_NEW_SESSION 1u
#define ZYG_CWD_CHECK   2u

struct zyg_reply {
	uint64_t cookie;
	int32_t pid;  /* > 0: a pidfd comes with it */
	int32_t err;  /* the clone failed: its errno */
	int32_t step; /* the child failed before exec: its step and errno */
	int32_t step_err;
};

struct corral__zygote {
	pid_t pid;
	int pidfd;
	int sock;
	unsigned pending; /* requests without a reply */
};

/* ------------------------------------------------------------ the zygote process */

static char zbuf[ZYG_BUF];
static char *zargv[ZYG_BUF / 16];
#if !defined(__SANITIZE_ADDRESS__)
_Alignas(64) static char zstack[ZYG_STACK];
#endif
static struct corral__sandbox_plan zsb;
static struct corral__child_plan zplan;
/* Shared with the child even when it does not share our memory (ASan). */
static struct corral__child_report *zrep;
static bool zbatch; /* we run SCHED_BATCH, our children go back to SCHED_OTHER */
/* We carry the spawner's filter (clone3 allowed, spawn.h): our children
 * deny clone3 again before their exec, with this (ENOSYS, as the task
 * filter: libc falls back to clone). Filters stack, and the strictest
 * answer wins. */
static bool zsplit;
static bool zno_into; /* clone3 into a cgroup failed once: join by cgroup.procs */
static struct sock_filter zdeny_clone3[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40000000u | SYS_clone3, 1, 0), /* x32 */
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
};
static struct sock_fprog zdeny_prog = {.len = sizeof(zdeny_clone3) / sizeof(zdeny_clone3[0]),
                                       .filter = zdeny_clone3};

__attribute__((noreturn)) static void zdie(void)
{
	for (;;)
		syscall(SYS_exit_group, 1);
}

static int zchild(void *arg)
{
	corral__child_main(arg);
}

/* clone() (the filter denies clone3) of a child that runs zchild(&zplan)
 * until its exec (CLONE_VFORK: we wait), on stack (or, if NULL, on a copy
 * of ours: only without CLONE_VM). */
static long zclone(unsigned long flags, char *stack, int *pidfd)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = 0; /* child_tid */
	register long r8 __asm__("r8") = 0;   /* tls */
	register long r12 __asm__("r12") = (long)zchild;
	register long r13 __asm__("r13") = (long)&zplan;
	long ret;

	__asm__ volatile("syscall\n\t" CORRAL__CLONE_CHILD_ASM
	                 : "=a"(ret)
	                 : "0"((long)SYS_clone), "D"(flags), "S"(stack), "d"(pidfd), "r"(r10),
	                   "r"(r8), "r"(r12), "r"(r13)
	                 : "rcx", "r11", "memory");
	return ret;
#else
	(void)flags;
	(void)stack;
	(void)pidfd;
	return -ENOSYS;
#endif
}

/* clone3() of the same child, into the cgroup of the directory fd cgfd
 * (CLONE_INTO_CGROUP: born there, no migration); -errno on failure. */
static long zclone3(unsigned long flags, char *stack, size_t stack_size, int *pidfd, int cgfd)
{
	struct corral__clone_args a;

	memset(&a, 0, sizeof(a));
	a.flags = flags | CLONE_INTO_CGROUP;
	a.pidfd = (uint64_t)(uintptr_t)pidfd;
	a.stack = (uint64_t)(uintptr_t)stack;
	a.stack_size = stack ? stack_size : 0;
	a.cgroup = (uint64_t)cgfd;
	long ret = corral__clone3_run(&a, zchild, &zplan);
	return ret < 0 ? -errno : ret;
}

/* Drop CAP_SYS_PTRACE from the bounding set and every set (sandbox.c). */
static int zdrop_ptrace(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	const unsigned bit = 1u << (CAP_SYS_PTRACE % 32);

	if (prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE) > 0 &&
	    prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE) < 0)
		return -errno;
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[CAP_SYS_PTRACE / 32].effective &= ~bit;
	d[CAP_SYS_PTRACE / 32].permitted &= ~bit;
	d[CAP_SYS_PTRACE / 32].inheritable &= ~bit;
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static void zsend(int sock, const struct zyg_reply *r, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)r, .iov_len = sizeof(*r)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* One request: build the child's plan in our static memory, clone, wait
 * (vfork) for its exec or its failure, reply. */
static void zserve(int sock, const struct zyg_req *q, size_t len, int *fds, int nfds)
{
	struct zyg_reply r = {.cookie = q->cookie};
	const char *p = zbuf + sizeof(*q), *end = zbuf + len;
	int fdv[ZYG_MAXFD] = {-1, -1, -1, -1, -1, -1, -1}, k = 0;
	int pidfd = -1;

	for (int i = 0; i < ZYG_MAXFD; i++)
		if (q->fd_mask & (1u << i))
			fdv[i] = k < nfds ? fds[k++] : -1;
	/* Strings: path, argv, envp, cwd; all within what arrived. */
	size_t nstr = 1 + (size_t)q->argc + 1 + (size_t)q->envc + 1 + 1;
	if (k != nfds || fdv[0] < 0 || fdv[1] < 0 || fdv[2] < 0 ||
	    nstr > sizeof(zargv) / sizeof(zargv[0])) {
		r.err = EPROTO;
		goto reply;
	}
	const char *path = NULL, *cwd = NULL;
	char **argv = zargv, **envp = zargv + q->argc + 1;
	for (size_t i = 0; i < (size_t)q->argc + q->envc + 2; i++) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z) {
			r.err = EPROTO;
			goto reply;
		}
		if (i == 0)
			path = p;
		else if (i <= q->argc)
			argv[i - 1] = (char *)p;
		else if (i <= (size_t)q->argc + q->envc)
			envp[i - 1 - q->argc] = (char *)p;
		else
			cwd = p;
		p = z + 1;
	}
	argv[q->argc] = NULL;
	envp[q->envc] = NULL;
	memset(&zplan, 0, sizeof(zplan));
	memset(zrep, 0, sizeof(*zrep));
	zplan.path = path;
	zplan.argv = argv;
	zplan.envp = envp;
	zplan.cwd = *cwd ? cwd : NULL;
	zplan.cwd_check = (q->flags & ZYG_CWD_CHECK) != 0;
	zplan.cwd_dev = q->cwd_dev;
	zplan.cwd_ino = q->cwd_ino;
	for (int i = 0; i < 3; i++)
		zplan.stdio[i] = fdv[i];
	zplan.procs_fd = fdv[3];
	zplan.pids_procs_fd = fdv[4];
	zplan.gated = fdv[6] >= 0;
	zplan.gate_fd = fdv[6];
	zplan.err_fd = -1;
	zplan.report = zrep;
	zplan.parent_pid = q->parent_pid;
	zplan.new_pgroup = (q->flags & ZYG_NEW_SESSION) != 0;
	zplan.sig_reset = ZYG_SIG_IGNORED;
	zplan.sched_other = zbatch;
	zplan.nondumpable = true; /* our mm's flag (zmain): CLONE_VM shares it, a copy keeps it */
	zplan.filter2 = zsplit ? &zdeny_prog : NULL;
	zplan.sb = &zsb;
	long pid = -ENOSYS;
	if (fdv[5] >= 0 && zsplit && !zno_into) {
		/* Born in its cgroup: no cgroup.procs write (a migration, which
		 * waits for an RCU grace period). */
		zplan.procs_fd = zplan.pids_procs_fd = -1;
#if defined(__SANITIZE_ADDRESS__)
		pid = zclone3(CLONE_VFORK | CLONE_PARENT | CLONE_PIDFD, NULL, 0, &pidfd, fdv[5]);
#else
		pid = zclone3(CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_PIDFD, zstack,
		              sizeof(zstack), &pidfd, fdv[5]);
#endif
		if (pid == -ENOSYS || pid == -EINVAL || pid == -E2BIG || pid == -EOPNOTSUPP ||
		    pid == -EPERM)
			zno_into = true; /* not here: as before, from now on */
		if (pid < 0) {
			zplan.procs_fd = fdv[3];
			zplan.pids_procs_fd = fdv[4];
		}
	}
	if (pid < 0) {
#if defined(__SANITIZE_ADDRESS__)
		/* ASan cannot follow a child onto a stack of its own (its
		 * frames on zstack never return, their scopes stay poisoned for
		 * the next child, and noreturn calls warn): under ASan the child
		 * gets a copy of our memory, as spawn.c's fork-style clone. */
		pid = zclone(CLONE_VFORK | CLONE_PARENT | CLONE_PIDFD, NULL, &pidfd);
#else
		pid = zclone(CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_PIDFD,
		             zstack + sizeof(zstack), &pidfd);
#endif
	}
	if (pid < 0) {
		r.err = (int32_t)-pid;
		goto reply;
	}
	r.pid = (int32_t)pid;
	r.step = zrep->step;
	r.step_err = zrep->err;
reply:
	zsend(sock, &r, r.pid > 0 ? pidfd : -1);
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

__attribute__((noreturn)) static void zmain(int sock, const struct corral__sandbox_plan *sb,
                                            int pidns_fd, pid_t parent, bool into_cgroup,
                                            bool batch)
{
	struct sigaction sa;
	sigset_t none;
	int e = 0;

	/* Out of the caller's ways: its signals, its fds. */
	/* Every signal to SIG_DFL by the raw call: glibc's sigaction()
	 * refuses its own two (32, 33), whose handlers corral may have, and
	 * our children reset only ZYG_SIG_IGNORED. */
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} ksa = {.handler = SIG_DFL};
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			syscall(SYS_rt_sigaction, s, &ksa, NULL, sizeof(ksa.mask));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN; /* ZYG_SIG_IGNORED: its children reset these */
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGINT, &sa, NULL); /* a terminal's Ctrl-C is corral's to handle */
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		zdie();
	prctl(PR_SET_NAME, "corral-spawner");
	prctl(PR_SET_DUMPABLE, 0);
	/* The fds it keeps: the socket, the namespaces (joined next). */
	int keep[3] = {sock, sb->mnt_ns_fd, sb->mnt_root_fd}, moved[3];
	for (int i = 0; i < 3; i++)
		moved[i] = keep[i] >= 0 ? fcntl(keep[i], F_DUPFD_CLOEXEC, 10) : -1;
	int pns = pidns_fd >= 0 ? fcntl(pidns_fd, F_DUPFD_CLOEXEC, 10) : -1;
	for (int fd = 3; fd < 10; fd++)
		close(fd);
	/* Every other fd above the moved ones. */
	int top = moved[0];
	for (int i = 1; i < 3; i++)
		top = moved[i] > top ? moved[i] : top;
	top = pns > top ? pns : top;
	for (int fd = 10; fd < top; fd++) {
		bool mine = fd == pns;
		for (int i = 0; i < 3; i++)
			mine |= fd == moved[i];
		if (!mine)
			close(fd);
	}
	corral__close_range((unsigned)top + 1, ~0u);
	sock = moved[0];

	/* The sandbox, once: the batch's PID namespace for our children (we
	 * stay in corral's), the template mount namespace, no CAP_SYS_PTRACE,
	 * RLIMIT_CORE, no_new_privs, then the filter: after it, no setns. */
	if (!e && pns >= 0 && setns(pns, CLONE_NEWPID) < 0)
		e = errno;
	if (!e && moved[1] >= 0 &&
	    (setns(moved[1], CLONE_NEWNS) < 0 || fchdir(moved[2]) < 0 || chroot(".") < 0))
		e = errno;
	if (!e && sb->drop_cap_ptrace && (e = -zdrop_ptrace()) < 0)
		e = -e;
	if (!e && !sb->core_dumps) {
		struct rlimit rl = {0, 0};
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			e = errno;
	}
	if (!e && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		e = errno;
	if (!e && sb->has_filter) {
		zsplit = into_cgroup && sb->has_spawner_prog;
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0,
		            zsplit ? &sb->spawner_prog : &sb->prog) < 0)
			e = errno;
	}
	/* SCHED_BATCH: woken when a child execs (CLONE_VFORK), we do not
	 * preempt the task it became, nor at any later wake-up; our reply
	 * waits for the next scheduling point (on 2 CPUs: -j 1 and -j 2 5-10 %
	 * faster, README). Not where we make warm children (fewer slots
	 * than CPUs, attempt_local.c): our work is then off the critical
	 * path, on a CPU the tasks leave idle, and must be done before the
	 * running task ends (in the v2 VM at -j 1: 1.06x the floor as
	 * SCHED_OTHER, 1.11x as SCHED_BATCH). Only from SCHED_OTHER, and
	 * only where the filter (a profile of the user's) lets our
	 * children switch back, which they do first thing (child.c). */
	if (!e && batch && sched_getscheduler(0) == SCHED_OTHER) {
		struct sched_param sp = {0};
		zbatch = sched_setscheduler(0, SCHED_BATCH, &sp) == 0 &&
		         sched_setscheduler(0, SCHED_OTHER, &sp) == 0 &&
		         sched_setscheduler(0, SCHED_BATCH, &sp) == 0;
		if (!zbatch)
			sched_setscheduler(0, SCHED_OTHER, &sp);
	}
	if (!e) {
		zrep = mmap(NULL, sizeof(*zrep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		            -1, 0);
		if (zrep == MAP_FAILED)
			e = errno;
	}
	for (int i = 1; i < 3; i++)
		if (moved[i] >= 0)
			close(moved[i]);
	if (pns >= 0)
		close(pns);
	/* What its children still do themselves (child.c): the cgroup and
	 * network namespaces, the user; nothing that is inherited. */
	zsb = *sb;
	zsb.has_filter = false;
	zsb.no_new_privs = false;
	zsb.drop_cap_ptrace = false;
	zsb.core_dumps = true;
	zsb.unshare_flags &= ~CLONE_NEWNS;
	zsb.mnt_ns_fd = zsb.mnt_root_fd = zsb.mountinfo_fd = -1;
	zsb.mount_proc = false;
	zsb.n_ro = 0;
	zsb.ro_mounts = NULL;
	struct zyg_reply hello = {.cookie = 0, .err = e};
	zsend(sock, &hello, -1);
	if (e)
		zdie();

	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int) * ZYG_MAXFD)];
		struct iovec iov = {.iov_base = zbuf, .iov_len = sizeof(zbuf)};
		struct msghdr m = {.msg_iov = &iov,
		                   .msg_iovlen = 1,
		                   .msg_control = cbuf,
		                   .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			zdie(); /* corral is gone (EOF), or said so */
		int fds[ZYG_MAXFD], nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < cnt; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
				if (nfds < ZYG_MAXFD)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
		if ((size_t)n < sizeof(struct zyg_req) ||
		    (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			struct zyg_reply bad = {.err = EPROTO};
			if ((size_t)n >= sizeof(uint64_t))
				memcpy(&bad.cookie, zbuf, sizeof(uint64_t));
			zsend(sock, &bad, -1);
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		struct zyg_req q;
		memcpy(&q, zbuf, sizeof(q));
		zserve(sock, &q, (size_t)n, fds, nfds);
	}
}

/* ------------------------------------------------------------ corral's side */

int corral__zygote_start(struct corral__zygote **out, const struct corral__sandbox_plan *sb,
                         int pidns_fd, bool into_cgroup, bool batch, corral_error_t *err)
{
	struct corral__zygote *z = calloc(1, sizeof(*z));
	struct corral__clone_args a;
	int sp[2], pidfd = -1;
	sigset_t all, old;
	pid_t parent = getpid();

	*out = NULL;
	if (!z)
		return corral__err(err, ENOMEM, "allocate the spawner");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		free(z);
		return corral__err(err, errno, "socketpair for the spawner");
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	memset(&a, 0, sizeof(a));
	a.flags = CLONE_PIDFD;
	a.pidfd = (uint64_t)(uintptr_t)&pidfd;
	a.exit_signal = 0; /* no SIGCHLD for the caller */
	pid_t pid = (pid_t)corral__clone3(&a);
	if (pid == 0) {
		close(sp[0]);
		zmain(sp[1], sb, pidns_fd, parent, into_cgroup, batch);
	}
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	if (pid < 0) {
		close(sp[0]);
		free(z);
		return corral__err(err, e, "start the spawner");
	}
	z->pid = pid;
	z->pidfd = pidfd;
	z->sock = sp[0];
	/* Its first word: the sandbox is on (0) or why not. Blocking, bounded. */
	struct zyg_reply hello;
	struct pollfd pfd = {.fd = z->sock, .events = POLLIN};
	ssize_t n = -1;
	if (poll(&pfd, 1, 5000) == 1)
		n = recv(z->sock, &hello, sizeof(hello), 0);
	if (n != (ssize_t)sizeof(hello) || hello.err) {
		e = n == (ssize_t)sizeof(hello) ? hello.err : EPROTO;
		corral__zygote_stop(z);
		return corral__err(err, e, "the spawner could not set up the sandbox");
	}
	*out = z;
	return 0;
}

int corral__zygote_fd(const struct corral__zygote *z)
{
	return z->sock;
}

unsigned corral__zygote_pending(const struct corral__zygote *z)
{
	return z->pending;
}

int corral__zygote_send(struct corral__zygote *z, const struct corral__child_plan *p,
                        int cgroup_dirfd, const char *cwd, const struct stat *cwd_st,
                        uint64_t cookie)
{
	struct zyg_req q;
	struct iovec iov[ZYG_BUF / 16];
	char cbuf[CMSG_SPACE(sizeof(int) * ZYG_MAXFD)];
	int fds[ZYG_MAXFD], nfds = 0;
	size_t total = sizeof(q), niov = 0;

	memset(&q, 0, sizeof(q));
	q.cookie = cookie;
	q.parent_pid = p->parent_pid;
	q.flags = (p->new_pgroup ? ZYG_NEW_SESSION : 0) | (cwd_st ? ZYG_CWD_CHECK : 0);
	if (cwd_st) {
		q.cwd_dev = (uint64_t)cwd_st->st_dev;
		q.cwd_ino = (uint64_t)cwd_st->st_ino;
	}
	iov[niov++] = (struct iovec){.iov_base = &q, .iov_len = sizeof(q)};
#define ADD(s)                                                                                     \
	do {                                                                                       \
		size_t l_ = strlen(s) + 1;                                                         \
		if (niov == ARRAY_SIZE(iov) || total + l_ > ZYG_BUF)                               \
			return -E2BIG;                                                             \
		iov[niov++] = (struct iovec){.iov_base = (void *)(s), .iov_len = l_};              \
		total += l_;                                                                       \
	} while (0)
	ADD(p->path);
	for (; p->argv[q.argc]; q.argc++)
		ADD(p->argv[q.argc]);
	for (; p->envp[q.envc]; q.envc++)
		ADD(p->envp[q.envc]);
	ADD(cwd ? cwd : "");
#undef ADD
	int src[ZYG_MAXFD] = {p->stdio[0],
	                      p->stdio[1],
	                      p->stdio[2],
	                      p->procs_fd,
	                      p->pids_procs_fd,
	                      cgroup_dirfd,
	                      p->gated ? p->gate_fd : -1};
	for (int i = 0; i < ZYG_MAXFD; i++)
		if (src[i] >= 0) {
			q.fd_mask |= 1u << i;
			fds[nfds++] = src[i];
		}
	memset(cbuf, 0, sizeof(cbuf));
	struct msghdr m = {.msg_iov = iov,
	                   .msg_iovlen = niov,
	                   .msg_control = cbuf,
	                   .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	ssize_t n;
	do
		n = sendmsg(z->sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno; /* EAGAIN: its queue is full; the caller spawns directly */
	z->pending++;
	return 0;
}

int corral__zygote_recv(struct corral__zygote *z, uint64_t *cookie, pid_t *pid, int *pidfd,
                        struct corral__child_report *rep, int *clone_err)
{
	struct zyg_reply r;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &r, .iov_len = sizeof(r)};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n;

	do
		n = recvmsg(z->sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE; /* it is gone */
	int fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (n != (ssize_t)sizeof(r) || (r.pid > 0) != (fd >= 0)) {
		corral__close(fd);
		return -EPROTO;
	}
	if (z->pending)
		z->pending--;
	*cookie = r.cookie;
	*pid = r.pid;
	*pidfd = fd;
	rep->step = r.step;
	rep->err = r.step_err;
	*clone_err = r.err;
	return 1;
}

void corral__zygote_stop(struct corral__zygote *z)
{
	if (!z)
		return;
	/* EOF ends it; a stuck one is killed. */
	corral__close(z->sock);
	if (z->pidfd >= 0) {
		struct pollfd pfd = {.fd = z->pidfd, .events = POLLIN};
		siginfo_t si;
		if (poll(&pfd, 1, 1000) <= 0)
			corral__pidfd_send_signal(z->pidfd, SIGKILL);
		corral__waitid((idtype_t)P_PIDFD, (id_t)z->pidfd, &si, WEXITED | __WALL, NULL);
		close(z->pidfd);
	}
	free(z);
}

void corral__zygote_kill(struct corral__zygote *z)
{
	if (z && z->pidfd >= 0)
		corral__pidfd_send_signal(z->pidfd, SIGKILL);
}
