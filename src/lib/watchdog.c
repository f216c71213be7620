/* watchdog.c - the process that outlives a SIGKILLed corral just long enough
 * to kill its tasks and remove its cgroups.
 *
 * Started at executor creation, it blocks in read() on a pipe whose only write
 * end the executor holds (CLOEXEC, and closed in every task child). When the
 * executor frees itself, it writes 'q' first: the watchdog exits at once. When
 * the process driving the executor dies by any means, the kernel closes the
 * write end: read() returns 0 and the watchdog runs corral__teardown() (kill
 * every task cgroup, remove them and the batch cgroup), then exits. A pipe is
 * used rather than PR_SET_PDEATHSIG because the death signal fires when the
 * *thread* that forked exits, which in a threaded caller (Python) is not the
 * death of the process.
 *
 * With the sandbox's PID namespace (corral_sandbox_t.pid_ns) the watchdog is
 * born as the init (pid 1) of a new PID namespace, and the executor's tasks
 * are born into it (executor.c, setns(CLONE_NEWPID) around its spawns):
 *  - tasks cannot see corral (outside the namespace) nor signal it, and they
 *    cannot kill their init: the kernel drops every signal sent to a
 *    namespace's init from inside unless it installed a handler (it installs
 *    none: SIG_IGN or the default);
 *  - orphans of the tasks are reparented to the watchdog, which reaps them at
 *    once (SIGCHLD ignored: the kernel auto-reaps);
 *  - when the watchdog exits, for whatever reason, the kernel SIGKILLs every
 *    process left in the namespace: nothing of the batch outlives it, even
 *    without cgroups, even when a task found a way to leave its cgroup.
 *
 * The child is forked from a possibly multi-threaded process, so it runs only
 * async-signal-safe code; teardown.c is written for that.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "executor.h"
#include "syscalls.h"

__attribute__((noreturn)) static void watchdog_main(const struct corral__batch *b, int rfd,
                                                    bool init)
{
	struct sigaction sa;
	sigset_t none;
	char c;
	ssize_t n;

	memset(&sa, 0, sizeof(sa));
	/* Ctrl-C, hangups and a polite TERM to the process group go to corral,
	 * which tears down itself; the watchdog must survive them. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
	sigaction(SIGTTIN, &sa, NULL);
	sigaction(SIGTTOU, &sa, NULL);
	/* The init of the batch's PID namespace: orphans are reaped at once. */
	if (init)
		sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, "corral-watchdog", 0, 0, 0);
	/* It holds the batch's cgroup directories: no task reads our fds. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Out of corral's process group: `kill -KILL -<pgid>` must not take
	 * the watchdog with it. */
	setpgid(0, 0);
	/* Only the pipe, stdin/out/err pointing to /dev/null would be nicer, but
	 * keeping 0-2 is harmless: we never write to them. */
	int keep = fcntl(rfd, F_DUPFD_CLOEXEC, 3);
	if (keep != 3) {
		dup3(keep, 3, O_CLOEXEC);
		keep = 3;
	}
	corral__close_range(4, ~0u);
	/* The batch struct holds fds of the parent's; reopen what we need. */
	struct corral__batch local;
	if (b) {
		local = *b;
		local.dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		local.pids_dirfd =
		    b->pids_dir[0] ? open(b->pids_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	}

	do
		n = read(keep, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && c == 'q')
		_exit(0);
	/* The owner died: tear down within about a second (as the init, our
	 * exit then kills whatever is left in the namespace). */
	if (b)
		corral__teardown(&local, 900);
	_exit(0);
}

int corral__watchdog_start(const struct corral__batch *b, bool pid_ns, struct corral__watchdog *w,
                           corral_error_t *err)
{
	struct corral__clone_args a;
	int p[2], pidfd = -1;
	sigset_t all, old;
	pid_t pid;

	w->pid = -1;
	w->pidfd = w->wfd = w->pidns_fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return corral__err(err, errno, "create the watchdog pipe");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	memset(&a, 0, sizeof(a));
	a.flags = CLONE_PIDFD | (pid_ns ? CLONE_NEWPID : 0);
	a.pidfd = (uint64_t)(uintptr_t)&pidfd;
	a.exit_signal = 0;
	pid = (pid_t)corral__clone3(&a);
	if (pid < 0 && errno == ENOSYS && !pid_ns) {
		pid = fork();
		if (pid > 0)
			pidfd = corral__pidfd_open(pid, 0);
	}
	if (pid == 0) {
		close(p[1]);
		watchdog_main(b, p[0], pid_ns);
	}
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		if (pid_ns)
			return corral__err(err, e,
			                   "start the watchdog as the init of the batch's PID "
			                   "namespace%s",
			                   e == EPERM ? " (needs CAP_SYS_ADMIN: run as root, or "
			                                "turn the PID namespace off)"
			                              : "");
		return corral__err(err, e, "start the watchdog process");
	}
	w->pid = pid;
	w->pidfd = pidfd;
	w->wfd = p[1];
	if (pid_ns) {
		/* The namespace, by an fd, while the watchdog waits for us. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
		w->pidns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (w->pidns_fd < 0) {
			e = errno;
			corral__watchdog_stop(w);
			return corral__err(err, e, "open the batch's PID namespace (%s)", path);
		}
	}
	return 0;
}

void corral__watchdog_stop(struct corral__watchdog *w)
{
	if (w->pidns_fd >= 0) {
		close(w->pidns_fd);
		w->pidns_fd = -1;
	}
	if (w->pid <= 0)
		return;
	if (w->wfd >= 0) {
		(void)!write(w->wfd, "q", 1);
		close(w->wfd);
		w->wfd = -1;
	}
	if (w->pidfd >= 0) {
		struct pollfd pfd = {.fd = w->pidfd, .events = POLLIN};
		siginfo_t si;
		if (poll(&pfd, 1, 2000) <= 0)
			corral__pidfd_send_signal(w->pidfd, SIGKILL);
		corral__waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED | __WALL, NULL);
		close(w->pidfd);
	} else {
		waitpid(w->pid, NULL, __WALL);
	}
	w->pidfd = -1;
	w->pid = -1;
}
