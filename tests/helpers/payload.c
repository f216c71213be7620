/* payload.c - corral-payload, the workloads of the integration and CLI tests.
 *
 *   alloc MIB [HOLD_MS]   allocate MIB MiB and touch every page, then sleep
 *   child-alloc MIB       fork a child that allocates MIB MiB; exit 0 whatever
 *                         happens to it (a pipeline stage that gets OOM-killed);
 *                         a failed fork prints "fork failed: ERRNO", exits 1
 *   sleep SECONDS         sleep (fractions allowed)
 *   exit CODE             exit with CODE
 *   signal SIG            kill ourselves with signal SIG (e.g. 11)
 *   forkbomb N            fork up to N sleeping children; print how many forks
 *                         failed; exit 0
 *   daemon PIDFILE SEC    double-fork a daemon (setsid) that sleeps SEC; write
 *                         its pid to PIDFILE; exit 0 at once
 *   write BYTES [FD]      write BYTES bytes of a repeating pattern to FD (1)
 *   fds                   print every open fd number, one per line
 *   escape CGROUP_DIR     try to move ourselves into CGROUP_DIR/cgroup.procs;
 *                         print "escaped" and exit 0 if it worked, else print
 *                         the errno name and exit 1
 *   syscall NAME          try a harmless call of a denied syscall; print the
 *                         errno name ("EPERM") or "ok"
 *   pid                   print our pid, then sleep forever
 *   cgroup                print /proc/self/cgroup
 *   sleep-exit SEC CODE   sleep SEC seconds, then exit with CODE
 *   write-alloc BYTES MIB write BYTES bytes of the `write` pattern to stdout,
 *                         then allocate and touch MIB MiB (output of a task
 *                         that is OOM-killed afterwards)
 *   alloc-steps MIB N MS  allocate MIB MiB in N equal steps, MS ms apart (and
 *                         touch them), then hold for MS ms (a memory timeline)
 *   victim-alloc MIB      as child-alloc, printing "victim PID" first
 *   pid-tree N            fork N children; each prints its pid and sleeps
 *                         forever, and so does the leader (after them): N+1
 *                         pid lines in all (the leader's last)
 *
 * The `write` pattern: byte k of the stream is 'a' + (k % 65536) % 26.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
	                      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int alloc_mib(long mib)
{
	size_t size = (size_t)mib << 20;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	return 0;
}

/* Write len bytes of the pattern (see the header) to fd. */
static int write_pattern(int fd, long long left)
{
	static char buf[65536];
	size_t off = 0;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	while (left > 0) {
		size_t n = sizeof(buf) - off;
		if ((long long)n > left)
			n = (size_t)left;
		ssize_t w = write(fd, buf + off, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		left -= w;
		off = (off + (size_t)w) % sizeof(buf);
	}
	return 0;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

static int try_syscall(const char *name)
{
	long rc;
	errno = 0;
	if (!strcmp(name, "mount"))
		rc = mount("none", "/nonexistent-corral", "tmpfs", 0, NULL);
	else if (!strcmp(name, "umount2"))
		rc = umount2("/nonexistent-corral", 0);
	else if (!strcmp(name, "swapon"))
		rc = swapon("/nonexistent-corral", 0);
	else if (!strcmp(name, "swapoff"))
		rc = swapoff("/nonexistent-corral");
	else if (!strcmp(name, "init_module"))
		rc = syscall(SYS_init_module, NULL, 0, "");
	else if (!strcmp(name, "reboot"))
		rc = syscall(SYS_reboot, 0, 0, 0, NULL); /* bad magic: EINVAL if allowed */
	else if (!strcmp(name, "bpf"))
		rc = syscall(SYS_bpf, -1, NULL, 0);
	else if (!strcmp(name, "perf_event_open"))
		rc = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	else if (!strcmp(name, "ptrace"))
		rc = ptrace(PTRACE_PEEKDATA, getppid(), NULL, NULL);
	else if (!strcmp(name, "kexec_load"))
		rc = syscall(SYS_kexec_load, 0, 0, NULL, 0xdeadbeef);
	else if (!strcmp(name, "settimeofday"))
		rc = syscall(SYS_settimeofday, NULL, NULL);
	else if (!strcmp(name, "keyctl"))
		rc = syscall(SYS_keyctl, -1, 0, 0, 0, 0);
	else if (!strcmp(name, "userfaultfd"))
		rc = syscall(SYS_userfaultfd, 0x7fffffff);
	else if (!strcmp(name, "acct"))
		rc = syscall(SYS_acct, "/nonexistent-corral");
	else if (!strcmp(name, "getpid"))
		rc = syscall(SYS_getpid);
	else if (!strcmp(name, "clone3"))
		rc = syscall(SYS_clone3, NULL, 0); /* size 0: EINVAL where it is allowed */
	else {
		fprintf(stderr, "payload: unknown syscall %s\n", name);
		return 2;
	}
	if (rc >= 0 && errno == 0)
		printf("ok\n");
	else
		printf("%s\n", errname(errno));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: corral-payload CMD [ARG...]\n");
		return 2;
	}
	const char *cmd = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "alloc") && argc >= 3) {
		int rc = alloc_mib(atol(argv[2]));
		if (argc >= 4)
			sleep_s(atof(argv[3]) / 1000.0);
		return rc;
	}
	if (!strcmp(cmd, "alloc-steps") && argc >= 5) {
		long mib = atol(argv[2]), n = atol(argv[3]);
		double ms = atof(argv[4]);
		for (long i = 0; i < n; i++) {
			if (alloc_mib(mib / (n > 0 ? n : 1)) < 0)
				return 1;
			sleep_s(ms / 1000.0);
		}
		sleep_s(ms / 1000.0);
		return 0;
	}
	if ((!strcmp(cmd, "child-alloc") || !strcmp(cmd, "victim-alloc")) && argc >= 3) {
		bool show = !strcmp(cmd, "victim-alloc");
		int sync[2];
		if (show && pipe(sync) < 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0 && show) {
			/* Our own pid, before anything is allocated. */
			close(sync[0]);
			printf("victim %d\n", (int)getpid());
			fflush(stdout);
			close(sync[1]);
		}
		if (pid == 0)
			_exit(alloc_mib(atol(argv[2])));
		/* Never a status made up: a failed fork (pids.max) or wait says
		 * so and fails the task. */
		if (pid < 0) {
			printf("fork failed: %s\n", errname(errno));
			return 1;
		}
		if (show) {
			char c;
			close(sync[1]);
			(void)!read(sync[0], &c, 1);
			close(sync[0]);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0) {
			if (errno != EINTR) {
				printf("waitpid failed: %s\n", errname(errno));
				return 1;
			}
		}
		printf("child %s\n", WIFSIGNALED(st) ? "killed" : "exited");
		return 0;
	}
	if (!strcmp(cmd, "sleep") && argc >= 3) {
		sleep_s(atof(argv[2]));
		return 0;
	}
	if (!strcmp(cmd, "exit") && argc >= 3)
		return atoi(argv[2]);
	if (!strcmp(cmd, "signal") && argc >= 3) {
		signal(atoi(argv[2]), SIG_DFL);
		kill(getpid(), atoi(argv[2]));
		sleep_s(5);
		return 99;
	}
	if (!strcmp(cmd, "forkbomb") && argc >= 3) {
		long n = atol(argv[2]), failed = 0;
		for (long i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				sleep_s(30);
				_exit(0);
			}
			if (pid < 0)
				failed++;
		}
		printf("failed %ld\n", failed);
		return 0;
	}
	if (!strcmp(cmd, "daemon") && argc >= 4) {
		int p[2];
		if (pipe(p) < 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			setsid();
			if (fork() == 0) {
				FILE *f = fopen(argv[2], "w");
				if (f) {
					fprintf(f, "%d\n", getpid());
					fclose(f);
				}
				(void)!write(p[1], "x", 1);
				for (int fd = 0; fd < 3; fd++)
					close(fd);
				sleep_s(atof(argv[3]));
				_exit(0);
			}
			_exit(0);
		}
		char c;
		close(p[1]);
		(void)!read(p[0], &c, 1); /* the pid file is written */
		waitpid(pid, NULL, 0);
		return 0;
	}
	if (!strcmp(cmd, "write") && argc >= 3)
		return write_pattern(argc >= 4 ? atoi(argv[3]) : 1, atoll(argv[2]));
	if (!strcmp(cmd, "fds")) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		int self = dirfd(d);
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && atoi(e->d_name) != self)
				printf("%s\n", e->d_name);
		closedir(d);
		return 0;
	}
	if (!strcmp(cmd, "escape") && argc >= 3) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/cgroup.procs", argv[2]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) < 0) {
			printf("%s\n", errname(errno));
			return 1;
		}
		printf("escaped\n");
		return 0;
	}
	if (!strcmp(cmd, "syscall") && argc >= 3)
		return try_syscall(argv[2]);
	if (!strcmp(cmd, "pid")) {
		printf("%d\n", getpid());
		for (;;)
			pause();
	}
	if (!strcmp(cmd, "cgroup")) {
		FILE *f = fopen("/proc/self/cgroup", "r");
		int c;
		while (f && (c = fgetc(f)) != EOF)
			putchar(c);
		return 0;
	}
	if (!strcmp(cmd, "sleep-exit") && argc >= 4) {
		sleep_s(atof(argv[2]));
		return atoi(argv[3]);
	}
	if (!strcmp(cmd, "write-alloc") && argc >= 4) {
		if (write_pattern(1, atoll(argv[2])))
			return 1;
		return alloc_mib(atol(argv[3]));
	}
	if (!strcmp(cmd, "pid-tree") && argc >= 3) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				printf("%d\n", getpid());
				for (;;)
					pause();
			}
			if (pid < 0)
				return 1;
		}
		printf("%d\n", getpid());
		for (;;)
			pause();
	}
	fprintf(stderr, "payload: bad command %s\n", cmd);
	return 2;
}
