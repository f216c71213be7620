/* spawn_floor.c - the floor of the spawn-throughput benchmark: N runs of a
 * command with posix_spawn, at most J at a time, reaped with wait. No
 * cgroups, no pipes, no bookkeeping: what any runner must at least pay.
 *   corral-bench-floor [--cgroup|--clone] N J COMMAND [ARG...]
 * Run i (1..N) gets i as its last argument, as every runner in the benchmark
 * appends its input line (`seq N | xargs -n 1 COMMAND`): the work must be the
 * same. It is not free: coreutils' true with one argument sets up its locale
 * (some 30 file opens), and costs a third more than without one.
 *
 * --cgroup: the kernel's price of a cgroup per task, and nothing else. Each
 * of the J slots gets a memory (+ pids) cgroup of its own, made once beneath
 * this process's own cgroup (corral-floor-<pid>/s<k>, -m 64M, --pids 4096,
 * no swap: corral's limits in the benchmark) and reused by every run in that
 * slot, as corral recycles an empty task cgroup. A run is born in its slot's
 * cgroup where the kernel can (v2: clone3 CLONE_INTO_CGROUP), else it joins
 * it before its exec (v1: one cgroup.procs write per hierarchy, memory and
 * pids, as corral's child does). Otherwise the same vfork-style clone as
 * posix_spawn's. No runner that puts each task in a cgroup of its own can
 * spawn for less on this kernel; corral's own cost is what it adds on top.
 * The cgroups are removed at exit, and stale ones of a dead floor at start.
 * --clone: the same clone and exec without the cgroups, the reference that
 * --cgroup is measured against (glibc's posix_spawn does more: it maps a
 * stack and masks and resets signals per run).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* corral's own (not <spawn.h>): corral__clone3_run */
#include "../../src/lib/internal.h"
#include "../../src/lib/spawn.h"
#include "../../src/lib/syscalls.h"

extern char **environ;

#define FLOOR_MEM  "67108864" /* -m 64M */
#define FLOOR_PIDS "4096"     /* corral's default --pids */
#define STACK_SIZE (64 * 1024)

/* One hierarchy the slots live in: v2's, or v1's memory or pids. */
struct hier {
	char dir[4096]; /* <mount><own cgroup>/corral-floor-<pid> */
	bool made;
};

struct slot {
	pid_t pid;       /* running there, or 0 */
	int dirfd;       /* v2: CLONE_INTO_CGROUP */
	int procs_fd[2]; /* v1: memory's and pids' cgroup.procs */
};

static struct {
	bool v2;
	struct hier h[2]; /* v2: h[0]; v1: memory, pids */
	int nh;
	long j;
	struct slot *slots;
	const char *path; /* the command, resolved */
	char **argv;
	char *stack;
} cg;

/* corral__write_at on a directory named by path. */
static int write_file(const char *dir, const char *name, const char *v)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = corral__write_at(fd, name, v);
	close(fd);
	return rc;
}

/* This process's cgroup in the v1 hierarchy of controller `ctrl` ("memory"
 * or "pids"), or in v2's (ctrl ""): parse.c's reading of /proc/self/cgroup. */
static int own_cgroup(const char *ctrl, char *out, size_t sz)
{
	static struct corral__proc_cgroup pc;
	static bool parsed;
	char text[8192];

	if (!parsed) {
		int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return -EIO;
		text[n] = '\0';
		if (corral__parse_proc_cgroup(text, &pc) < 0)
			return -EINVAL;
		parsed = true;
	}
	const char *path = !*ctrl                    ? (pc.has_v2 ? pc.v2_path : NULL)
	                   : !strcmp(ctrl, "memory") ? (pc.has_memory_v1 ? pc.memory_path : NULL)
	                                             : (pc.has_pids_v1 ? pc.pids_path : NULL);
	if (!path)
		return -ENOENT;
	snprintf(out, sz, "%s", path);
	return 0;
}

/* Remove <parent>/corral-floor-<pid> trees whose floor is gone. */
static void remove_stale(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		long pid;
		char end;
		if (sscanf(e->d_name, "corral-floor-%ld%c", &pid, &end) != 1 || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char p[4200];
		snprintf(p, sizeof(p), "%s/%s", parent, e->d_name);
		DIR *s = opendir(p);
		struct dirent *c;
		while (s && (c = readdir(s))) {
			if (c->d_name[0] == 's' && c->d_type == DT_DIR) {
				char q[4400];
				snprintf(q, sizeof(q), "%s/%s", p, c->d_name);
				rmdir(q);
			}
		}
		if (s)
			closedir(s);
		rmdir(p);
	}
	closedir(d);
}

static void cg_remove(void)
{
	for (int i = 0; i < cg.nh; i++) {
		if (!cg.h[i].made)
			continue;
		for (long k = 0; k < cg.j; k++) {
			char p[4200];
			snprintf(p, sizeof(p), "%s/s%ld", cg.h[i].dir, k);
			/* A run killed with us may still be leaving: a few tries. */
			for (int t = 0; t < 100 && rmdir(p) < 0 && errno == EBUSY; t++)
				usleep(10000);
		}
		rmdir(cg.h[i].dir);
		cg.h[i].made = false;
	}
}

static volatile sig_atomic_t stop;

/* SIGINT/SIGTERM: main's loop ends its runs and removes the cgroups. */
static void on_signal(int sig)
{
	stop = sig;
}

static int hier_make(struct hier *h, const char *mount, const char *ctrl)
{
	char own[4096], parent[4200];
	int rc = own_cgroup(ctrl, own, sizeof(own));

	if (rc < 0) {
		fprintf(stderr, "corral-bench-floor: no %s cgroup in /proc/self/cgroup\n",
		        *ctrl ? ctrl : "v2");
		return rc;
	}
	snprintf(parent, sizeof(parent), "%s%s", mount, strcmp(own, "/") ? own : "");
	remove_stale(parent);
	snprintf(h->dir, sizeof(h->dir), "%s/corral-floor-%ld", parent, (long)getpid());
	if (mkdir(h->dir, 0755) < 0) {
		rc = -errno;
		fprintf(stderr, "corral-bench-floor: mkdir %s: %s\n", h->dir, strerror(errno));
		return rc;
	}
	h->made = true;
	return 0;
}

static int slot_make(long k)
{
	struct slot *s = &cg.slots[k];
	char p[4200];
	int rc;

	s->dirfd = s->procs_fd[0] = s->procs_fd[1] = -1;
	for (int i = 0; i < cg.nh; i++) {
		snprintf(p, sizeof(p), "%s/s%ld", cg.h[i].dir, k);
		if (mkdir(p, 0755) < 0)
			return -errno;
		if (cg.v2) {
			if ((rc = write_file(p, "memory.max", FLOOR_MEM)) < 0 ||
			    (rc = write_file(p, "memory.swap.max", "0")) < 0 ||
			    (rc = write_file(p, "pids.max", FLOOR_PIDS)) < 0)
				return rc;
			s->dirfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (s->dirfd < 0)
				return -errno;
		} else {
			if (i == 0 && (rc = write_file(p, "memory.limit_in_bytes", FLOOR_MEM)) < 0)
				return rc;
			/* memsw exists only with swap accounting; corral sets it too. */
			if (i == 0)
				(void)write_file(p, "memory.memsw.limit_in_bytes", FLOOR_MEM);
			if (i == 1 && (rc = write_file(p, "pids.max", FLOOR_PIDS)) < 0)
				return rc;
			char q[4300];
			snprintf(q, sizeof(q), "%s/cgroup.procs", p);
			s->procs_fd[i] = open(q, O_WRONLY | O_CLOEXEC);
			if (s->procs_fd[i] < 0)
				return -errno;
		}
	}
	return 0;
}

static int cg_setup(long j, bool clone_only)
{
	struct stat st;
	char ctl[256] = "";
	int rc;

	cg.j = j;
	cg.slots = calloc((size_t)j, sizeof(*cg.slots));
	cg.stack = malloc(STACK_SIZE);
	if (!cg.slots || !cg.stack)
		return -ENOMEM;
	for (long k = 0; k < j; k++)
		cg.slots[k].dirfd = cg.slots[k].procs_fd[0] = cg.slots[k].procs_fd[1] = -1;
	if (clone_only)
		return 0;
	int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, ctl, sizeof(ctl) - 1);
		ctl[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	cg.v2 = strstr(ctl, "memory") != NULL;
	if (cg.v2) {
		cg.nh = 1;
		if ((rc = hier_make(&cg.h[0], "/sys/fs/cgroup", "")) < 0)
			return rc;
		rc = write_file(cg.h[0].dir, "cgroup.subtree_control", "+memory +pids");
		if (rc < 0) {
			fprintf(stderr,
			        "corral-bench-floor: enable +memory +pids in %s: %s (are they "
			        "delegated to this cgroup?)\n",
			        cg.h[0].dir, strerror(-rc));
			return rc;
		}
	} else {
		if (stat("/sys/fs/cgroup/memory/cgroup.procs", &st) < 0 ||
		    stat("/sys/fs/cgroup/pids/cgroup.procs", &st) < 0) {
			fprintf(stderr,
			        "corral-bench-floor: no v2 memory controller and no v1 memory "
			        "and pids hierarchies under /sys/fs/cgroup\n");
			return -ENOENT;
		}
		cg.nh = 2;
		if ((rc = hier_make(&cg.h[0], "/sys/fs/cgroup/memory", "memory")) < 0 ||
		    (rc = hier_make(&cg.h[1], "/sys/fs/cgroup/pids", "pids")) < 0)
			return rc;
	}
	for (long k = 0; k < j; k++) {
		if ((rc = slot_make(k)) < 0) {
			fprintf(stderr, "corral-bench-floor: slot cgroup s%ld: %s\n", k,
			        strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* The child of a --cgroup run: on v1 it joins its slot's cgroups, then execs.
 * Async-signal-safe only (it shares our memory until the exec). */
static int cg_child(void *arg)
{
	struct slot *s = arg;

	for (int i = 0; i < 2; i++)
		if (s->procs_fd[i] >= 0 && write(s->procs_fd[i], "0", 1) < 0)
			_exit(126);
	execve(cg.path, cg.argv, environ);
	_exit(127);
}

static pid_t cg_spawn(struct slot *s)
{
	struct corral__clone_args a = {
	    .flags = CLONE_VM | CLONE_VFORK,
	    .exit_signal = SIGCHLD,
	    .stack = (uint64_t)(uintptr_t)cg.stack,
	    .stack_size = STACK_SIZE,
	};
	if (cg.v2) {
		a.flags |= CLONE_INTO_CGROUP;
		a.cgroup = (uint64_t)s->dirfd;
	}
	return (pid_t)corral__clone3_run(&a, cg_child, s);
}

/* PATH lookup once, in the parent (posix_spawnp does it per run). */
static const char *resolve(const char *cmd)
{
	static char buf[4096];
	const char *path = getenv("PATH");

	if (strchr(cmd, '/') || !path)
		return cmd;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, cmd);
		if (access(buf, X_OK) == 0)
			return buf;
		p += n + (p[n] == ':');
	}
	return cmd;
}

int main(int argc, char **argv)
{
	bool cgroup = argc > 1 && !strcmp(argv[1], "--cgroup");
	bool clone_only = argc > 1 && !strcmp(argv[1], "--clone");

	argv += cgroup || clone_only;
	argc -= cgroup || clone_only;
	if (argc < 4) {
		fprintf(stderr,
		        "usage: corral-bench-floor [--cgroup|--clone] N J COMMAND [ARG...]\n");
		return 2;
	}
	long n = atol(argv[1]), j = atol(argv[2]), started = 0, running = 0, failed = 0;
	int cargc = argc - 3;
	char **cargv = calloc((size_t)cargc + 2, sizeof(*cargv));
	char num[32];
	posix_spawnattr_t attr;

	if (!cargv || n < 0 || j < 1)
		return 2;
	memcpy(cargv, argv + 3, (size_t)cargc * sizeof(*cargv));
	cargv[cargc] = num;
	posix_spawnattr_init(&attr);
	if (cgroup || clone_only) {
		cgroup = true; /* the same loop; --clone makes no cgroups */
		struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wait wakes */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		cg.path = resolve(cargv[0]);
		cg.argv = cargv;
		if (cg_setup(j, clone_only) < 0) {
			cg_remove();
			return 1;
		}
	}
	while (started < n || running > 0) {
		if (stop && n != -1) {
			n = started = -1; /* start no more; end the running ones */
			for (long k = 0; k < j; k++)
				if (cg.slots[k].pid)
					kill(cg.slots[k].pid, SIGKILL);
		}
		while (started < n && running < j) {
			pid_t pid;
			snprintf(num, sizeof(num), "%ld", started + 1);
			if (cgroup) {
				long k = 0;
				while (cg.slots[k].pid)
					k++;
				pid = cg_spawn(&cg.slots[k]);
				if (pid < 0) {
					perror("clone3");
					cg_remove();
					return 1;
				}
				cg.slots[k].pid = pid;
			} else if (posix_spawnp(&pid, cargv[0], NULL, &attr, cargv, environ) != 0) {
				perror("posix_spawnp");
				return 1;
			}
			started++;
			running++;
		}
		int st;
		pid_t pid = wait(&st);
		if (pid > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				failed++;
			for (long k = 0; cgroup && k < j; k++)
				if (cg.slots[k].pid == pid)
					cg.slots[k].pid = 0;
		}
	}
	if (cgroup)
		cg_remove();
	free(cargv);
	return stop ? 128 + stop : failed ? 1 : 0;
}
