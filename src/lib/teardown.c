/* teardown.c - kill and remove cgroups; async-signal-safe.
 *
 * This code runs in two places: in the executor (corral_executor_free) and in
 * the watchdog, a child forked from a possibly multi-threaded caller, after
 * the caller died. So it uses only raw syscalls and the stack: no malloc, no
 * stdio, no libcgroup, no snprintf (corral__write_at() from io.c qualifies:
 * openat, write, close). Every wait is bounded by a deadline.
 */
#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "cgroup.h"
#include "syscalls.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe (POSIX.1-2008) */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* SIGKILL every pid listed in dirfd/cgroup.procs. Returns how many it saw. */
int corral__cg_kill_procs(int dirfd)
{
	char buf[4096];
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	int count = 0;
	long pid = 0;
	bool in_num = false;

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				in_num = true;
			} else if (in_num) {
				if (pid > 0)
					kill((pid_t)pid, SIGKILL);
				count++;
				pid = 0;
				in_num = false;
			}
		}
	}
	if (in_num && pid > 0) {
		kill((pid_t)pid, SIGKILL);
		count++;
	}
	close(fd);
	return count;
}

static void kill_cgroup(int dirfd, bool v2)
{
	/* cgroup.kill (5.14+) is atomic against concurrent forks; the pid walk
	 * is the fallback, repeated by the callers until the cgroup is empty. */
	if (v2 && corral__write_at(dirfd, "cgroup.kill", "1") == 0)
		return;
	corral__cg_kill_procs(dirfd);
}

static bool is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static int destroy_at(int parent_fd, const char *name, bool v2, uint64_t deadline, int depth)
{
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[2048];
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Children first: a task may have made sub-cgroups. */
	if (depth < 16) {
		for (;;) {
			long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			for (long off = 0; off < n;) {
				struct corral__dirent64 *d = (void *)(buf + off);
				off += d->d_reclen;
				if (d->d_type != DT_DIR || is_dot(d->d_name))
					continue;
				if (destroy_at(fd, d->d_name, v2, deadline, depth + 1) < 0)
					rc = -EBUSY;
			}
		}
	}
	for (unsigned attempt = 0;; attempt++) {
		if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
			break;
		}
		if (errno != EBUSY && errno != EAGAIN) {
			rc = -errno;
			break;
		}
		if (now_ns() >= deadline) {
			rc = -EBUSY;
			break;
		}
		kill_cgroup(fd, v2);
		sleep_ms(attempt < 10 ? 1 : 5);
	}
	close(fd);
	return rc;
}

int corral__cg_destroy_tree(int parent_fd, const char *name, bool v2, uint64_t deadline_ns)
{
	return destroy_at(parent_fd, name, v2, deadline_ns, 0);
}

/* Destroy every task cgroup below dirfd (everything but "supervisor"). */
static int destroy_children(int dirfd, bool v2, uint64_t deadline)
{
	char buf[2048];
	int rc = 0;

	if (dirfd < 0)
		return 0;
	for (int pass = 0; pass < 4; pass++) {
		bool any = false;
		lseek(dirfd, 0, SEEK_SET);
		for (;;) {
			long n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
			if (n <= 0)
				break;
			for (long off = 0; off < n;) {
				struct corral__dirent64 *d = (void *)(buf + off);
				off += d->d_reclen;
				if (d->d_type != DT_DIR || is_dot(d->d_name) ||
				    !strcmp(d->d_name, "supervisor"))
					continue;
				any = true;
				rc =
				    destroy_at(dirfd, d->d_name, v2, deadline, 1) < 0 ? -EBUSY : rc;
			}
		}
		if (!any)
			return 0;
		if (now_ns() >= deadline)
			break;
	}
	return rc;
}

/* Write each "-ctrl" token of list into dirfd/cgroup.subtree_control. */
static void disable_controllers(int dirfd, const char *list)
{
	char tok[32];
	size_t t = 0;

	for (const char *p = list;; p++) {
		if (*p == ' ' || *p == '\0') {
			if (t > 0 && t < sizeof(tok)) {
				tok[t] = '\0';
				corral__write_at(dirfd, "cgroup.subtree_control", tok);
			}
			t = 0;
			if (*p == '\0')
				break;
		} else if (t + 1 < sizeof(tok)) {
			tok[t++] = *p;
		}
	}
}

static int open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int corral__teardown(const struct corral__batch *b, int budget_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)budget_ms * 1000000u;
	bool v2 = b->mode == CORRAL_CG_V2;
	int rc = 0, base;

	if (b->dirfd < 0 && !b->dir[0])
		return 0;
	rc = destroy_children(b->dirfd, v2, deadline);
	if (!v2)
		rc = destroy_children(b->pids_dirfd, false, deadline) < 0 ? -EBUSY : rc;

	base = open_dir(b->base_dir);
	if (base < 0)
		return -errno;
	if (v2 && b->supervisor) {
		/* Leave the supervisor: give back what we enabled so that the base
		 * may hold a process again, then move into it. This fails when
		 * another batch still uses the controllers; then the empty batch
		 * stays for the next start's sweep (its owner is gone by then). */
		disable_controllers(b->dirfd, "-memory -pids -cpu");
		disable_controllers(base, b->enabled_in_base);
		if (corral__write_at(base, "cgroup.procs", "0") == 0) {
			while (unlinkat(b->dirfd, "supervisor", AT_REMOVEDIR) < 0 &&
			       errno == EBUSY && now_ns() < deadline)
				sleep_ms(1);
		}
	}
	if (rc == 0) {
		for (;;) {
			if (unlinkat(base, b->name, AT_REMOVEDIR) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY || now_ns() >= deadline) {
				rc = -errno;
				break;
			}
			sleep_ms(1);
		}
	}
	close(base);
	if (!v2 && b->pids_dir[0]) {
		/* pids_dir is "<pids base>/<name>": remove it through its parent. */
		char parent[PATH_MAX];
		size_t len = strlen(b->pids_dir), nl = strlen(b->name);
		if (len > nl + 1 && len < sizeof(parent)) {
			memcpy(parent, b->pids_dir, len - nl - 1);
			parent[len - nl - 1] = '\0';
			int pfd = open_dir(parent);
			if (pfd >= 0) {
				if (unlinkat(pfd, b->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
					rc = -errno;
				close(pfd);
			}
		}
	}
	return rc;
}
