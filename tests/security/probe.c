/* probe.c - corral-probe, the escape probes of the security suite.
 *
 * Each subcommand (but the helpers) runs as a corral task (`corral run` or
 * `corral exec`, default sandbox, as root or --user nobody) and tries one way
 * out of what README's "Security model" promises: a cgroup write that raises
 * the task's limits or moves it out of its cgroup, corral's memory or fds, the
 * controlling terminal, a process that outlives corral, a syscall the filter
 * does not judge. tests/security/run_security.py runs them and prints the
 * table (issue 12).
 *
 * The verdict is the last line on stdout and the exit status:
 *   BLOCKED: why     0   every attempt failed (the errnos say how)
 *   ESCAPED: what    1   what the probe got, in one line
 *   ERROR: why       2   the probe could not judge (a broken set-up)
 *   N/A: why         77  the hole cannot exist here (kernel, cgroup mode)
 * Details go to stderr as "probe: ..." lines.
 *
 * What a probe touches (they run in CI, on shared machines):
 *  - cgroups: only the test's own. The driver makes a private parent
 *    (CORRAL_PROBE_PARENT) and gives it to corral as --cgroup-parent. A probe
 *    writes only inside it: its own task cgroup's limit (raised by a page, or
 *    by one pid, then restored), its pid into the batch cgroup or the parent
 *    (then back), the batch's limit rewritten with its own value. A writable
 *    cgroup directory outside that tree is reported, never written.
 *  - memory: a writable /proc/<pid>/mem is reported, never written.
 *  - signals: kill-corral kills only corral (CORRAL_PROBE_CORRAL_PID, which
 *    must be its parent), corral's watchdog (a child of that pid named
 *    corral-watchdog) and the init of a PID namespace that is not the
 *    driver's.
 *
 * Environment (set by the driver, passed on by corral):
 *   CORRAL_PROBE_PARENT      the private parent cgroup, as /proc/self/cgroup
 *                            writes it (the same path on v1 memory and pids)
 *   CORRAL_PROBE_STATE       a directory the probe may write (hand-shakes)
 *   CORRAL_PROBE_CORRAL_PID  corral's pid
 *   CORRAL_PROBE_PIDNS       the driver's PID namespace (/proc/self/ns/pid)
 *   CORRAL_PROBE_TTY         1: corral runs on a terminal the driver owns
 *   CORRAL_PROBE_MOUNT       where the driver mounts a cgroupfs once we run
 *   CORRAL_PROBE_SYSCALLS    `corral-probe syscall-baseline` run outside corral
 *   CORRAL_PROBE_RACE_SECONDS, CORRAL_PROBE_RACE_MIN, CORRAL_PROBE_RACE_WANT
 *                            the spawn race's budget (see probe_spawn_race)
 *
 * Raw system calls where glibc 2.36 has no wrapper; i386 calls go through
 * `int $0x80` with their arguments in memory below 4 GiB, x32 calls are the
 * x86_64 instruction with bit 30 set in the number.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef TIOCL_GETSHIFTSTATE
#define TIOCL_GETSHIFTSTATE 6
#endif

/* x86_64 numbers (the new ones are the same on i386 and x32). */
enum {
	NR_OPEN_TREE = 428,
	NR_MOVE_MOUNT = 429,
	NR_FSOPEN = 430,
	NR_FSCONFIG = 431,
	NR_FSMOUNT = 432,
	NR_FSPICK = 433,
	NR_PIDFD_OPEN = 434,
	NR_CLONE3 = 435,
	NR_PIDFD_GETFD = 438,
	NR_MOUNT_SETATTR = 442,
	NR_OPEN_TREE_ATTR = 467, /* Linux 6.15 */
	NR_IO_URING_SETUP = 425,
	NR_IO_URING_ENTER = 426,
	NR_USERFAULTFD = 323,
	NR_MOUNT = 165,
	NR_UMOUNT2 = 166,
	NR32_MOUNT = 21,
	NR32_UMOUNT2 = 52,
	NR32_GETPID = 20,
	NR_HIGH = 1023, /* above every syscall of every kernel so far */
	X32_BIT = 0x40000000,
};

/* ---------------------------------------------------------------- verdicts */

static const char *ename(int e)
{
	const char *s = strerrorname_np(e);
	return s ? s : "E?";
}

__attribute__((format(printf, 3, 0))) static int verdict(int code, const char *tag, const char *fmt,
                                                         va_list ap)
{
	fflush(stderr);
	printf("%s: ", tag);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	return code;
}

#define VERDICT(name, code, tag)                                                                   \
	__attribute__((format(printf, 1, 2))) static int name(const char *fmt, ...)                \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		int rc_ = verdict(code, tag, fmt, ap);                                             \
		va_end(ap);                                                                        \
		return rc_;                                                                        \
	}
VERDICT(blocked, 0, "BLOCKED")
VERDICT(escaped, 1, "ESCAPED")
VERDICT(broken, 2, "ERROR")
VERDICT(na, 77, "N/A")

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("probe: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Append to a message buffer. */
__attribute__((format(printf, 3, 4))) static void cat(char *buf, size_t n, const char *fmt, ...)
{
	size_t l = strlen(buf);
	va_list ap;

	if (l + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + l, n - l, fmt, ap);
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double env_num(const char *name, double def)
{
	const char *s = getenv(name);
	char *end;
	double v;

	if (!s || !*s)
		return def;
	v = strtod(s, &end);
	return *end ? def : v;
}

/* ---------------------------------------------------------------- raw calls */

static long sys(long nr, long a, long b, long c, long d, long e)
{
	long r = syscall(nr, a, b, c, d, e);
	return r < 0 ? -errno : r;
}

static int pidfd_open_(pid_t pid)
{
	return (int)sys(NR_PIDFD_OPEN, pid, 0, 0, 0, 0);
}

static int pidfd_getfd_(int pidfd, int fd)
{
	return (int)sys(NR_PIDFD_GETFD, pidfd, fd, 0, 0, 0);
}

/* The three x86 ABIs. */
enum abi {
	ABI_64,
	ABI_32,
	ABI_X32,
	ABI_COUNT
};
static const char *const abi_names[ABI_COUNT] = {"x86_64", "i386", "x32"};

#if defined(__x86_64__)
static long int80(long nr, long a, long b, long c, long d, long e)
{
	long ret;

	__asm__ volatile("int $0x80"
	                 : "=a"(ret)
	                 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
	                 : "memory", "cc", "r8", "r9", "r10", "r11");
	return (int)ret; /* a 32-bit result */
}

static long x32call(long nr, long a, long b, long c, long d, long e)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(nr | X32_BIT), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
	                 : "memory", "cc", "rcx", "r11");
	return ret;
}
#else
/* Elsewhere only the native ABI is probed (abi_ok() says no to the others). */
static long int80(long nr, long a, long b, long c, long d, long e)
{
	(void)nr, (void)a, (void)b, (void)c, (void)d, (void)e;
	return -ENOSYS;
}
#define x32call int80
#ifndef MAP_32BIT
#define MAP_32BIT 0
#endif
#endif

/* A call through an ABI: the result or -errno. i386 pointers must lie below
 * 4 GiB (low_str(), low_alloc()). */
static long abi_call(enum abi a, long nr64, long nr32, long a1, long a2, long a3, long a4, long a5)
{
	switch (a) {
	case ABI_64:
		return sys(nr64, a1, a2, a3, a4, a5);
	case ABI_32:
		return int80(nr32, a1, a2, a3, a4, a5);
	default:
		return x32call(nr64, a1, a2, a3, a4, a5);
	}
}

/* Is the ABI there? i386 needs IA32 emulation (int $0x80 faults without it:
 * tried in a child), x32 a kernel with the x32 ABI on (ENOSYS otherwise). */
static bool abi_ok(enum abi a)
{
	static int cache[ABI_COUNT]; /* 0 unknown, 1 yes, 2 no */

	if (a == ABI_64)
		return true;
#if !defined(__x86_64__)
	return false;
#endif
	if (!cache[a]) {
		if (a == ABI_X32) {
			cache[a] = x32call(39 /* getpid */, 0, 0, 0, 0, 0) == getpid() ? 1 : 2;
		} else {
			int st;
			pid_t c = fork();
			if (c == 0)
				_exit(int80(NR32_GETPID, 0, 0, 0, 0, 0) == getpid() ? 0 : 1);
			cache[a] = c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) &&
			                   WEXITSTATUS(st) == 0
			               ? 1
			               : 2;
		}
	}
	return cache[a] == 1;
}

/* Memory below 2 GiB for i386 arguments. */
static char *low_arena;
static size_t low_used;

static void *low_alloc(size_t n)
{
	if (!low_arena) {
		void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
		if (p == MAP_FAILED) {
			note("mmap(MAP_32BIT): %s", ename(errno));
			exit(2);
		}
		low_arena = p;
	}
	n = (n + 15) & ~(size_t)15;
	if (low_used + n > (1 << 16)) {
		note("low arena full");
		exit(2);
	}
	void *r = low_arena + low_used;
	low_used += n;
	memset(r, 0, n);
	return r;
}

static long low_str(const char *s)
{
	if (!s)
		return 0;
	char *p = low_alloc(strlen(s) + 1);
	strcpy(p, s);
	return (long)(uintptr_t)p;
}

/* ---------------------------------------------------------------- small files */

static ssize_t read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -errno;
	k = read(fd, buf, n - 1);
	if (k < 0)
		k = -errno;
	else
		buf[k] = '\0';
	close(fd);
	return k;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t k;

	if (fd < 0)
		return -errno;
	k = write(fd, s, strlen(s));
	close(fd);
	return k == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* Write s to dirfd/path (open, one write, close): 0 or -errno. */
static int write_at(int dirfd, const char *path, const char *s)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	ssize_t k;
	int e;

	if (fd < 0)
		return -errno;
	k = write(fd, s, strlen(s));
	e = errno;
	close(fd);
	if (k < 0)
		return -e;
	return k == (ssize_t)strlen(s) ? 0 : -EIO;
}

static ssize_t read_at(int dirfd, const char *path, char *buf, size_t n)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -errno;
	k = read(fd, buf, n - 1);
	if (k < 0)
		k = -errno;
	else
		buf[k] = '\0';
	close(fd);
	return k;
}

static void chomp(char *s)
{
	size_t l = strlen(s);

	while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
		s[--l] = '\0';
}

static long fs_magic(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 ? (long)sf.f_type : 0;
}

static bool is_cgroup_magic(long m)
{
	return m == CGROUP_SUPER_MAGIC || m == CGROUP2_SUPER_MAGIC;
}

/* /proc/<pid>/stat: ppid, comm, vsize. False if gone. */
static bool proc_stat(pid_t pid, pid_t *ppid, char *comm, size_t cn, unsigned long *vsize)
{
	char path[64], buf[1024];
	char *l, *r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return false;
	l = strchr(buf, '(');
	r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return false;
	if (comm)
		snprintf(comm, cn, "%.*s", (int)(r - l - 1), l + 1);
	/* After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice num_threads
	 * itrealvalue starttime vsize (fields 3..23). */
	char st;
	int pp;
	unsigned long vs = 0;
	if (sscanf(r + 1,
	           " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
	           "%*d %*u %lu",
	           &st, &pp, &vs) < 2)
		return false;
	if (ppid)
		*ppid = pp;
	if (vsize)
		*vsize = vs;
	return st != 'Z' && st != 'X';
}

static const char *fd_name(int fd, char *buf, size_t n)
{
	char p[64];
	ssize_t k;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	k = readlink(p, buf, n - 1);
	if (k < 0)
		k = 0;
	buf[k] = '\0';
	return buf;
}

/* ---------------------------------------------------------------- our cgroups */

enum hkind {
	H_MEMORY, /* v1 memory */
	H_PIDS,   /* v1 pids */
	H_V2
};

struct hier {
	enum hkind kind;
	const char *name;  /* for messages */
	const char *mnt;   /* the task's (read-only) mount of it */
	const char *limit; /* the limit file a task would raise */
	dev_t dev;
	char own[PATH_MAX];   /* the task's cgroup, relative to the hierarchy root */
	char batch[PATH_MAX]; /* its parent: corral's batch cgroup */
};

static struct hier H[2];
static int nh;
static bool cg_v2;
static char parent_rel[PATH_MAX]; /* CORRAL_PROBE_PARENT without the '/' */

/* Does dir/cgroup.procs list pid? */
static bool procs_has(const char *dir, pid_t pid)
{
	char path[PATH_MAX + 16], buf[1 << 16];
	char *s, *save = NULL;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return false;
	for (s = strtok_r(buf, "\n", &save); s; s = strtok_r(NULL, "\n", &save))
		if (atoi(s) == pid)
			return true;
	return false;
}

static bool search_own(char *path, size_t cap, int depth, pid_t pid)
{
	struct dirent *e;
	size_t len = strlen(path);
	DIR *d;

	if (procs_has(path, pid))
		return true;
	if (depth == 0 || !(d = opendir(path)))
		return false;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path + len, cap - len, "/%s", e->d_name);
		if (search_own(path, cap, depth - 1, pid)) {
			closedir(d);
			return true;
		}
		path[len] = '\0';
	}
	closedir(d);
	return false;
}

static void add_hier(enum hkind k, const char *name, const char *mnt, const char *limit)
{
	struct hier *h = &H[nh];
	char path[PATH_MAX];
	struct stat st;

	if (stat(mnt, &st) < 0)
		return;
	memset(h, 0, sizeof(*h));
	h->kind = k;
	h->name = name;
	h->mnt = mnt;
	h->limit = limit;
	h->dev = st.st_dev;
	snprintf(path, sizeof(path), "%s/%s", mnt, parent_rel);
	if (!search_own(path, sizeof(path), 3, getpid())) {
		note("%s: our cgroup is not under %s", name, path);
		return;
	}
	snprintf(h->own, sizeof(h->own), "%s", path + strlen(mnt) + 1);
	memcpy(h->batch, h->own, sizeof(h->batch));
	char *slash = strrchr(h->batch, '/');
	if (slash)
		*slash = '\0';
	note("%s: own cgroup /%s", name, h->own);
	nh++;
}

/* Find the task's cgroups under CORRAL_PROBE_PARENT through the task's
 * cgroup mounts. -1 with the reason in why. */
static int cg_init(char *why, size_t n)
{
	const char *p = getenv("CORRAL_PROBE_PARENT");

	if (!p || p[0] != '/' || !p[1]) {
		snprintf(why, n, "CORRAL_PROBE_PARENT is not set (the driver sets it)");
		return -1;
	}
	snprintf(parent_rel, sizeof(parent_rel), "%s", p + 1);
	chomp(parent_rel);
	if (fs_magic("/sys/fs/cgroup/memory") == CGROUP_SUPER_MAGIC) {
		add_hier(H_MEMORY, "memory", "/sys/fs/cgroup/memory", "memory.limit_in_bytes");
		if (nh == 0) {
			snprintf(why, n, "our memory cgroup is not below %s", p);
			return -1;
		}
		if (fs_magic("/sys/fs/cgroup/pids") == CGROUP_SUPER_MAGIC)
			add_hier(H_PIDS, "pids", "/sys/fs/cgroup/pids", "pids.max");
	} else if (fs_magic("/sys/fs/cgroup") == CGROUP2_SUPER_MAGIC) {
		cg_v2 = true;
		add_hier(H_V2, "cgroup2", "/sys/fs/cgroup", "memory.max");
		if (nh == 0) {
			snprintf(why, n, "our cgroup is not below %s", p);
			return -1;
		}
	} else {
		snprintf(why, n, "no memory cgroup mount at /sys/fs/cgroup");
		return -1;
	}
	return 0;
}

static bool same_as(const struct stat *a, const char *path)
{
	struct stat b;

	return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

/* Where is the cgroup directory D in our tree? The paths from D to our own
 * cgroup, to the batch cgroup and to the private parent. */
struct loc {
	char own[PATH_MAX], batch[PATH_MAX], parent[PATH_MAX];
	const char *what;
};

static bool locate(int D, const struct hier *h, struct loc *l)
{
	char p[PATH_MAX * 2];
	const char *base = strrchr(h->own, '/') ? strrchr(h->own, '/') + 1 : h->own;
	size_t plen = strlen(parent_rel);
	struct stat st;

	if (fstat(D, &st) < 0 || st.st_dev != h->dev)
		return false;
	if (same_as(&st, h->mnt)) {
		snprintf(l->own, sizeof(l->own), "%s", h->own);
		snprintf(l->batch, sizeof(l->batch), "%s", h->batch);
		snprintf(l->parent, sizeof(l->parent), "%s", parent_rel);
		l->what = "the hierarchy's root";
		return true;
	}
	snprintf(p, sizeof(p), "%s/%s", h->mnt, parent_rel);
	if (same_as(&st, p)) {
		snprintf(l->own, sizeof(l->own), "%s", h->own + plen + 1);
		snprintf(l->batch, sizeof(l->batch), "%s", h->batch + plen + 1);
		snprintf(l->parent, sizeof(l->parent), ".");
		l->what = "the private parent cgroup";
		return true;
	}
	snprintf(p, sizeof(p), "%s/%s", h->mnt, h->batch);
	if (same_as(&st, p)) {
		snprintf(l->own, sizeof(l->own), "%s", base);
		snprintf(l->batch, sizeof(l->batch), ".");
		snprintf(l->parent, sizeof(l->parent), "..");
		l->what = "the batch cgroup";
		return true;
	}
	snprintf(p, sizeof(p), "%s/%s", h->mnt, h->own);
	if (same_as(&st, p)) {
		snprintf(l->own, sizeof(l->own), ".");
		snprintf(l->batch, sizeof(l->batch), "..");
		snprintf(l->parent, sizeof(l->parent), "../..");
		l->what = "the task's own cgroup";
		return true;
	}
	/* A sibling task's cgroup. */
	snprintf(p, sizeof(p), "%s/%s", h->mnt, h->batch);
	DIR *d = opendir(p);
	struct dirent *e;
	bool found = false;
	size_t len = strlen(p);
	while (d && (e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(p + len, sizeof(p) - len, "/%s", e->d_name);
		if (same_as(&st, p)) {
			snprintf(l->own, sizeof(l->own), "../%s", base);
			snprintf(l->batch, sizeof(l->batch), "..");
			snprintf(l->parent, sizeof(l->parent), "../..");
			l->what = "a sibling task's cgroup";
			found = true;
			break;
		}
		p[len] = '\0';
	}
	if (d)
		closedir(d);
	return found;
}

/* Is D/rel the directory at h->mnt/path (the read-only view)? */
static bool is_dir_at(int D, const char *rel, const struct hier *h, const char *path)
{
	char p[PATH_MAX * 2];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", h->mnt, path);
	return fstatat(D, rel, &st, 0) == 0 && same_as(&st, p);
}

/* Raise D/dir/name by delta ("max" is written back as "max"). The old and
 * new values in old/nw. 0 or -errno. */
static int bump(int D, const char *dir, const char *name, long long delta, char *old, char *nw)
{
	char p[PATH_MAX * 2];
	ssize_t k;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	k = read_at(D, p, old, 64);
	if (k < 0)
		return (int)k;
	chomp(old);
	if (!strcmp(old, "max"))
		snprintf(nw, 64, "max");
	else
		snprintf(nw, 64, "%lld", atoll(old) + delta);
	return write_at(D, p, nw);
}

enum {
	DEMO_LIMIT = 1, /* raise the task's own limit (and restore it) */
	DEMO_MOVE = 2,  /* move the task into the batch or the private parent (and back) */
	DEMO_BATCH = 4, /* rewrite the batch cgroup's limit with its own value */
	DEMO_ALL = 7,
};

/* The harmless writes inside the test's cgroups, through the cgroup directory
 * D of hierarchy h (however the probe got it). True, with what happened in
 * out, if a write went through; else the errnos are appended to out. */
static bool demo(int D, const struct hier *h, const char *how, int what, char *out, size_t n)
{
	char old[64], nw[64], sw_old[64], sw_nw[64], p[PATH_MAX * 2], pid[32];
	struct loc l;
	int r;

	if (!locate(D, h, &l)) {
		struct statvfs sv;
		bool rw = fstatvfs(D, &sv) == 0 && !(sv.f_flag & ST_RDONLY);
		snprintf(out, n,
		         "%s: a %s cgroup directory outside the test's cgroups on a %s mount", how,
		         h->name, rw ? "read-write" : "read-only");
		return rw;
	}
	note("%s: %s, %s", how, h->name, l.what);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	out[0] = '\0';
	if (what & DEMO_LIMIT) {
		int sw = -ENOENT;
		if (h->kind == H_MEMORY) /* memsw must stay >= the limit: raise it first */
			sw = bump(D, l.own, "memory.memsw.limit_in_bytes", 4096, sw_old, sw_nw);
		r = bump(D, l.own, h->limit, h->kind == H_PIDS ? 1 : 4096, old, nw);
		if (r == 0) {
			char seen[64] = "";
			snprintf(p, sizeof(p), "%s/%s/%s", h->mnt, h->own, h->limit);
			read_file(p, seen, sizeof(seen));
			chomp(seen);
			snprintf(p, sizeof(p), "%s/%s", l.own, h->limit);
			int back = write_at(D, p, old);
			if (sw == 0) {
				snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", l.own);
				write_at(D, p, sw_old);
			}
			snprintf(out, n,
			         "%s: raised its own %s %s -> %s (read back: %s; restored: %s)",
			         how, h->limit, old, nw, seen, back == 0 ? "yes" : ename(-back));
			return true;
		}
		if (sw == 0) {
			snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", l.own);
			write_at(D, p, sw_old);
		}
		cat(out, n, "own %s: %s", h->limit, ename(-r));
	}
	if (what & DEMO_MOVE) {
		/* Targets: the batch (cgroup.procs, and v1's "tasks"), the private
		 * parent, and on v2 the driver's unlimited leaf <parent>/target. */
		static const struct {
			int level; /* 0 batch, 1 parent, 2 parent/target */
			const char *file;
		} targets[] = {
		    {0, "cgroup.procs"}, {0, "tasks"}, {1, "cgroup.procs"}, {2, "cgroup.procs"}};
		for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
			char rel[PATH_MAX + 16], path[PATH_MAX + 16];
			const char *f = targets[i].file;
			if (!strcmp(f, "tasks") && h->kind == H_V2)
				continue;
			if (targets[i].level == 0) {
				snprintf(rel, sizeof(rel), "%s", l.batch);
				snprintf(path, sizeof(path), "%s", h->batch);
			} else if (targets[i].level == 1) {
				snprintf(rel, sizeof(rel), "%s", l.parent);
				snprintf(path, sizeof(path), "%s", parent_rel);
			} else {
				snprintf(rel, sizeof(rel), "%s/target", l.parent);
				snprintf(path, sizeof(path), "%s/target", parent_rel);
			}
			if (!is_dir_at(D, rel, h, path))
				continue;
			snprintf(p, sizeof(p), "%s/%s", rel, f);
			r = write_at(D, p, pid);
			if (r == 0) {
				char full[PATH_MAX * 2];
				snprintf(full, sizeof(full), "%s/%s", h->mnt, path);
				bool moved = procs_has(full, getpid());
				snprintf(p, sizeof(p), "%s/cgroup.procs", l.own);
				int back = write_at(D, p, pid);
				snprintf(out, n,
				         "%s: wrote its pid into /%s/%s (%s; moved back: %s)", how,
				         path, f, moved ? "it moved there" : "but did not move",
				         back == 0 ? "yes" : ename(-back));
				return true;
			}
			cat(out, n, "%s%s %s: %s", out[0] ? ", " : "",
			    targets[i].level == 0   ? "move to batch"
			    : targets[i].level == 1 ? "move to parent"
			                            : "move to parent/target",
			    f, ename(-r));
		}
	}
	if ((what & DEMO_BATCH) && is_dir_at(D, l.batch, h, h->batch)) {
		r = bump(D, l.batch, h->limit, 0, old, nw);
		if (r == 0) {
			snprintf(out, n, "%s: rewrote the batch cgroup's %s (its own value %s)",
			         how, h->limit, old);
			return true;
		}
		cat(out, n, "%sbatch %s: %s", out[0] ? ", " : "", h->limit, ename(-r));
	}
	return false;
}

static const struct hier *hier_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	for (int i = 0; i < nh; i++)
		if (H[i].dev == st.st_dev)
			return &H[i];
	return NULL;
}

/* A cgroup mount the probe got hold of (a clone, a fresh mount, a remount):
 * its root D. The root is our hierarchy's root, or in a cgroup namespace the
 * task's own cgroup; demo() finds out which. */
static bool demo_mount(int D, const char *how, char *out, size_t n)
{
	const struct hier *h = hier_of(D);
	struct statvfs sv;

	if (!h) {
		long m = 0;
		struct statfs sf;
		if (fstatfs(D, &sf) == 0)
			m = (long)sf.f_type;
		snprintf(out, n, "%s: a mount of another filesystem (magic %#lx)", how, m);
		return false;
	}
	if (fstatvfs(D, &sv) == 0 && (sv.f_flag & ST_RDONLY)) {
		snprintf(out, n, "%s: the mount is read-only", how);
		return false;
	}
	return demo(D, h, how, DEMO_ALL, out, n);
}

/* An fd taken from another process. A cgroup directory: demo(). A cgroup
 * file: the task's own cgroup.procs or limit file gets its own value written
 * back; any other file is only reported. */
static bool judge_fd(int fd, const char *how, char *out, size_t n)
{
	char name[PATH_MAX], p[PATH_MAX * 2];
	const struct hier *h;
	struct statfs sf;
	struct stat st;

	if (fstatfs(fd, &sf) < 0 || !is_cgroup_magic((long)sf.f_type) || fstat(fd, &st) < 0)
		return false;
	fd_name(fd, name, sizeof(name));
	h = hier_of(fd);
	if (!h) {
		note("%s: %s, a cgroup fd of a hierarchy without our task", how, name);
		return false;
	}
	if (S_ISDIR(st.st_mode))
		return demo(fd, h, how, DEMO_ALL, out, n);
	int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
	if (acc == O_RDONLY) {
		note("%s: %s, read-only", how, name);
		return false;
	}
	snprintf(p, sizeof(p), "%s/%s/cgroup.procs", h->mnt, h->own);
	const char *val = NULL;
	char pid[32], cur[64] = "";
	if (same_as(&st, p)) {
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		val = pid;
	} else {
		snprintf(p, sizeof(p), "%s/%s/%s", h->mnt, h->own, h->limit);
		if (same_as(&st, p) && read_file(p, cur, sizeof(cur)) > 0) {
			chomp(cur);
			val = cur;
		}
	}
	if (!val) {
		struct statvfs sv;
		if (fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY))
			return false;
		snprintf(out, n, "%s: %s, a writable cgroup file of another cgroup (not written)",
		         how, name);
		return true;
	}
	if (pwrite(fd, val, strlen(val), 0) == (ssize_t)strlen(val)) {
		snprintf(out, n, "%s: wrote its own %s back into %s", how,
		         val == pid ? "pid" : "limit", name);
		return true;
	}
	note("%s: %s: %s", how, name, ename(errno));
	return false;
}

/* ---------------------------------------------------------------- corral and its watchdog */

/* Corral's pid: our parent, and the pid the driver started. 0 when corral is
 * not visible as such (then nothing is signalled by pid). */
static pid_t corral_pid(char *why, size_t n)
{
	const char *s = getenv("CORRAL_PROBE_CORRAL_PID");
	pid_t want = s ? (pid_t)atoi(s) : 0, pp = getppid();
	char comm[64];

	if (want <= 0) {
		snprintf(why, n, "CORRAL_PROBE_CORRAL_PID is not set");
		return -1;
	}
	if (pp != want) {
		snprintf(why, n, "our parent is pid %d, not corral's %d (another PID namespace?)",
		         (int)pp, (int)want);
		return 0;
	}
	if (!proc_stat(want, NULL, comm, sizeof(comm), NULL) || strcmp(comm, "corral")) {
		snprintf(why, n, "pid %d is not visible as corral", (int)want);
		return 0;
	}
	return want;
}

/* Corral's children named name, up to max of them in out; how many. */
static int children_named(pid_t cp, const char *name, pid_t *out, int max)
{
	struct dirent *e;
	int n = 0;
	DIR *d;

	if (cp <= 0 || !(d = opendir("/proc")))
		return 0;
	while (n < max && (e = readdir(d))) {
		char comm[64];
		pid_t pid = (pid_t)atoi(e->d_name), pp;
		if (pid <= 0 || !proc_stat(pid, &pp, comm, sizeof(comm), NULL))
			continue;
		if (pp == cp && !strcmp(comm, name))
			out[n++] = pid;
	}
	closedir(d);
	return n;
}

/* Corral's watchdog: its child named corral-watchdog. 0 if not visible. */
static pid_t watchdog_pid(pid_t cp)
{
	pid_t wd = 0;

	children_named(cp, "corral-watchdog", &wd, 1);
	return wd;
}

/* Everything a task may try against a process that holds corral's state:
 * its memory, its fds (pidfd_getfd, /proc/<pid>/fd) and its root. Every
 * way is tried: what worked goes to out (true), what failed to errs. */
static bool attack_process(pid_t t, const char *who, char *out, size_t n, char *errs, size_t en)
{
	char path[PATH_MAX], how[256], o[1024];
	int fd, first = 0;
	bool got = false;

#define GOT(...)                                                                                   \
	do {                                                                                       \
		cat(out, n, "%s", got ? "; " : "");                                                \
		cat(out, n, __VA_ARGS__);                                                          \
		got = true;                                                                        \
	} while (0)
#define FAILED(...)                                                                                \
	do {                                                                                       \
		cat(errs, en, "%s", errs[0] ? ", " : "");                                          \
		cat(errs, en, __VA_ARGS__);                                                        \
	} while (0)

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)t);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd); /* never written */
		GOT("opened %s's %s for writing (not written)", who, path);
	} else {
		FAILED("mem: %s", ename(errno));
	}

	int pfd = pidfd_open_(t);
	if (pfd < 0) {
		FAILED("pidfd_open: %s", ename(-pfd));
	} else {
		int taken = 0;
		for (int k = 0; k < 256; k++) {
			int g = pidfd_getfd_(pfd, k);
			if (g < 0) {
				if (!first)
					first = g;
				if (g != -EBADF)
					break;
				continue;
			}
			snprintf(how, sizeof(how), "pidfd_getfd of %s's fd %d", who, k);
			if (judge_fd(g, how, o, sizeof(o)))
				GOT("%s", o);
			taken++;
			close(g);
		}
		if (taken)
			GOT("took %d of %s's fds with pidfd_getfd", taken, who);
		else
			FAILED("pidfd_getfd: %s", ename(-first));
		close(pfd);
	}

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)t);
	DIR *d = opendir(path);
	if (!d) {
		FAILED("%s: %s", path, ename(errno));
	} else {
		struct dirent *e;
		int opened = 0, last = 0;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)t, e->d_name);
			/* O_NONBLOCK: reopening a pipe must not wait for a writer. */
			fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0) {
				last = errno;
				continue;
			}
			opened++;
			snprintf(how, sizeof(how), "open(%s)", path);
			if (judge_fd(fd, how, o, sizeof(o)))
				GOT("%s", o);
			close(fd);
		}
		closedir(d);
		if (opened)
			GOT("reopened %d of %s's fds through /proc/%d/fd", opened, who, (int)t);
		else
			FAILED("/proc/%d/fd/N: %s", (int)t, ename(last));
	}

	for (int i = 0; i < nh; i++) {
		snprintf(path, sizeof(path), "/proc/%d/root%s", (int)t, H[i].mnt);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			FAILED("%s: %s", path, ename(errno));
			continue;
		}
		struct statvfs sv;
		bool rw = fstatvfs(fd, &sv) == 0 && !(sv.f_flag & ST_RDONLY);
		if (demo(fd, &H[i], path, DEMO_ALL, o, sizeof(o)))
			GOT("%s", o);
		else if (rw)
			GOT("%s: reached a read-write cgroup mount (%s)", path, o);
		else
			FAILED("%s: read-only", path);
		close(fd);
	}

	/* Reported, not counted: some kernels (the 6.18 host's) let a root
	 * task without CAP_SYS_PTRACE read the environment and memory map of
	 * any other root process, dumpable or not, but never its memory. */
	static const char *const leaks[] = {"environ", "maps"};
	for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
		char buf[256];
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)t, leaks[i]);
		ssize_t k = read_file(path, buf, sizeof(buf));
		FAILED("%s: %s", leaks[i],
		       k > 0    ? "readable (not counted)"
		       : k == 0 ? "empty"
		                : ename((int)-k));
	}
#undef GOT
#undef FAILED
	return got;
}

/* ---------------------------------------------------------------- 1. spawn race */

enum {
	W_MEM = 1,
	W_GETFD = 2,
	W_PROCFD = 4,
};

struct race {
	pid_t me, cp;
	int want;
	unsigned long caught, hidden, scanned, missed, tries[3];
	double t0;
};

static bool pre_exec(pid_t pid, pid_t cp, unsigned long *vsize)
{
	char comm[64];
	pid_t pp;

	/* A child of corral before its exec: still named corral, or, when the
	 * spawner made it (zygote.c: CLONE_PARENT, corral is still its parent),
	 * named as the spawner. */
	return proc_stat(pid, &pp, comm, sizeof(comm), vsize) && pp == cp &&
	       (!strcmp(comm, "corral") || !strcmp(comm, "corral-spawner"));
}

/* Take every fd of a sibling whose window is open (fd 3 came through), then
 * judge them: directories first (demo() writes through them), then files. */
static bool race_fds(pid_t pid, int first, int pfd, const char *via, char *out, size_t n)
{
	int got[64], ng = 0;
	char how[256];
	bool won = false;

	got[ng++] = first;
	for (int k = 4; k < 64 && ng < 64; k++) {
		int g;
		if (pfd >= 0) {
			g = pidfd_getfd_(pfd, k);
		} else {
			char p[64];
			snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int)pid, k);
			g = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		}
		if (g >= 0)
			got[ng++] = g;
	}
	note("%s: took %d fds of pre-exec sibling %d", via, ng, (int)pid);
	snprintf(how, sizeof(how), "%s of pre-exec sibling %d", via, (int)pid);
	for (int pass = 0; pass < 2 && !won; pass++) {
		for (int i = 0; i < ng && !won; i++) {
			struct stat st;
			if (fstat(got[i], &st) == 0 && S_ISDIR(st.st_mode) == (pass == 0))
				won = judge_fd(got[i], how, out, n);
		}
	}
	for (int i = 0; i < ng; i++)
		close(got[i]);
	return won;
}

/* Race the process pid, opened as pfd (closed here). */
static bool race_one(struct race *r, pid_t pid, int pfd, char *out, size_t n)
{
	char mem[64], fd3[64];
	unsigned long vs = 0, vc = 0;
	bool fds_done = !(r->want & (W_GETFD | W_PROCFD));

	if (pid == r->me) {
		close(pfd);
		return false;
	}
	if (!pre_exec(pid, r->cp, NULL)) {
		/* A process of our namespace that /proc does not show: hidden
		 * because we may not ptrace it (hidepid=ptraceable), which a
		 * pre-exec sibling is (non-dumpable). pidfd_getfd() does not go
		 * through /proc: spin on that for as long as on a visible one. */
		char d[64];
		snprintf(d, sizeof(d), "/proc/%d", (int)pid);
		if (pid != 1 && access(d, F_OK) < 0 && errno == ENOENT && (r->want & W_GETFD)) {
			r->hidden++;
			double stop = now() + 0.005;
			while (now() < stop) {
				r->tries[1]++;
				int g = pidfd_getfd_(pfd, 3);
				if (g >= 0) {
					bool won =
					    race_fds(pid, g, pfd, "pidfd_getfd (hidden)", out, n);
					close(pfd);
					return won;
				}
				if (g == -ESRCH || g == -EBADF)
					break;
			}
		}
		close(pfd);
		return false;
	}
	r->caught++;
	snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)pid);
	snprintf(fd3, sizeof(fd3), "/proc/%d/fd/3", (int)pid);
	/* Spin on the sibling for at most 5 ms: a sibling that gets no CPU
	 * meanwhile is left for the next one. */
	double until = now() + 0.005;
	for (unsigned i = 0;; i++) {
		if (!fds_done && (r->want & W_GETFD)) {
			r->tries[1]++;
			int g = pidfd_getfd_(pfd, 3);
			if (g >= 0) {
				if (race_fds(pid, g, pfd, "pidfd_getfd", out, n)) {
					close(pfd);
					return true;
				}
				fds_done = true;
			} else if (g == -EBADF) {
				fds_done = true; /* past close_range: nothing to take */
			} else if (g == -ESRCH) {
				break;
			}
		}
		if (!fds_done && (r->want & W_PROCFD)) {
			r->tries[2]++;
			int g = open(fd3, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (g >= 0) {
				if (race_fds(pid, g, -1, "/proc/<pid>/fd", out, n)) {
					close(pfd);
					return true;
				}
				fds_done = true;
			} else if (errno == ENOENT) {
				fds_done = true; /* closed, or gone */
			}
		}
		if (r->want & W_MEM) {
			r->tries[0]++;
			int fd = open(mem, O_RDWR | O_CLOEXEC);
			if (fd >= 0) {
				/* exec swaps the memory and the name under one lock
				 * that opening mem takes too: still named corral
				 * afterwards means we got the memory before exec. */
				bool still = pre_exec(pid, r->cp, &vs);
				close(fd); /* never written */
				if (still) {
					proc_stat(r->cp, NULL, NULL, 0, &vc);
					snprintf(out, n,
					         "opened %s of a pre-exec sibling for writing (not "
					         "written; its vsize %lu %s corral's%s)",
					         mem, vs, vs == vc ? "equals" : "differs from",
					         vs == vc ? ": it is corral's memory (CLONE_VM)"
					                  : "");
					close(pfd);
					return true;
				}
				break;
			}
			if (errno == ENOENT || errno == ESRCH)
				break;
		} else if (fds_done) {
			break;
		}
		/* Before the window every call fails with EPERM/EACCES, after
		 * it with EBADF/ENOENT or the open succeeds on the exec'd
		 * program: no need to read the name in the loop. */
		if ((i & 63) == 63 && now() > until)
			break;
	}
	close(pfd);
	return false;
}

static long read_last_pid(int fd)
{
	char buf[32];
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);

	if (k <= 0)
		return -1;
	buf[k] = '\0';
	return atol(buf);
}

/* Run as task 1 of `corral run -j N` whose other tasks are thousands of
 * `corral-probe noop`: catch the siblings between fork and exec (children of
 * corral still named corral) and try to reach through them what corral holds:
 * pidfd_getfd and /proc/<pid>/fd of their fds (corral's writable cgroup
 * directories), and /proc/<pid>/mem for writing (corral's own memory while
 * the child shares it). Until a win, CORRAL_PROBE_RACE_SECONDS (10) pass, or
 * no new sibling came for 2 s. Fewer than CORRAL_PROBE_RACE_MIN (50)
 * siblings caught before their exec is an ERROR: too little racing to say
 * BLOCKED. CORRAL_PROBE_RACE_WANT: any (default), mem, fd (getfd and procfd),
 * getfd, procfd.
 *
 * The next sibling is taken as early as the kernel lets anyone have it: in
 * the batch's PID namespace only corral forks while the race runs (the noop
 * siblings do not, nor do we), so pids come in order, and pidfd_open() of
 * the next one succeeds from the moment the kernel attaches the new process
 * to it, before that process first runs. Reading ns_last_pid first and then
 * opening the pid is too late on a loaded machine: a noop sibling has often
 * exec'd, exited and been reaped by then. */
static int probe_spawn_race(void)
{
	struct race r = {.me = getpid(), .cp = getppid(), .t0 = now()};
	double budget = env_num("CORRAL_PROBE_RACE_SECONDS", 10);
	double min = env_num("CORRAL_PROBE_RACE_MIN", 50);
	const char *want = getenv("CORRAL_PROBE_RACE_WANT");
	char why[PATH_MAX], out[2048] = "";
	double last_caught = r.t0, pending = 0;
	long last, cur;
	int lp;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (!want || !strcmp(want, "any"))
		r.want = W_MEM | W_GETFD | W_PROCFD;
	else if (!strcmp(want, "mem"))
		r.want = W_MEM;
	else if (!strcmp(want, "fd"))
		r.want = W_GETFD | W_PROCFD;
	else if (!strcmp(want, "getfd"))
		r.want = W_GETFD;
	else if (!strcmp(want, "procfd"))
		r.want = W_PROCFD;
	else
		return broken("CORRAL_PROBE_RACE_WANT=%s (any, mem, fd, getfd, procfd)", want);
	lp = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
	if (lp < 0)
		return broken("open /proc/sys/kernel/ns_last_pid: %s", ename(errno));
	last = read_last_pid(lp);
	if (last < 0)
		return broken("read ns_last_pid");
	for (unsigned long loop = 0;; loop++) {
		long next = last + 1;
		int pfd = pidfd_open_((pid_t)next);
		if (pfd >= 0) {
			unsigned long before = r.caught + r.hidden;
			r.scanned++;
			pending = 0;
			last = next;
			if (race_one(&r, (pid_t)next, pfd, out, sizeof(out)))
				return escaped("after %.2f s and %lu pre-exec siblings (%lu pids "
				               "scanned): %s",
				               now() - r.t0, r.caught + r.hidden, r.scanned, out);
			if (r.caught + r.hidden != before)
				last_caught = now();
		} else {
			cur = read_last_pid(lp);
			if (cur < 0)
				return broken("read ns_last_pid");
			if (cur < last) {
				last = cur; /* wrapped around pid_max */
			} else if (cur - last > 8) {
				/* Fell behind: the newest pids only (older
				 * siblings have exec'd by now). */
				r.missed += (unsigned long)(cur - 8 - last);
				last = cur - 8;
				pending = 0;
			} else if (cur > next) {
				/* A later pid is out: next is gone already. */
				r.scanned++;
				r.missed++;
				last = next;
				pending = 0;
			} else if (cur == next) {
				/* Allocated, not attached yet (or gone): give
				 * the kernel 2 ms to attach it. */
				double t = now();
				if (!pending) {
					pending = t;
				} else if (t - pending > 0.002) {
					r.scanned++;
					r.missed++;
					last = next;
					pending = 0;
				}
			}
		}
		if ((loop & 255) == 0) {
			double t = now();
			if (t - r.t0 > budget || (r.caught + r.hidden && t - last_caught > 2.0) ||
			    (!(r.caught + r.hidden) && t - r.t0 > 5.0))
				break;
		}
	}
	note("%lu pids scanned, %lu gone before we could open them, %lu pre-exec siblings "
	     "visible, %lu hidden",
	     r.scanned, r.missed, r.caught, r.hidden);
	if (r.caught + r.hidden < (unsigned long)min)
		return broken(
		    "caught only %lu pre-exec siblings (%lu of them hidden) of %lu pids in "
		    "%.1f s (want %.0f): too little racing to judge",
		    r.caught + r.hidden, r.hidden, r.scanned, now() - r.t0, min);
	if (r.hidden)
		return blocked("%lu pre-exec siblings raced over %.1f s, %lu of them hidden from "
		               "/proc (hidepid=ptraceable: non-dumpable before exec): %lu mem "
		               "opens, %lu pidfd_getfd, %lu /proc fd opens refused",
		               r.caught + r.hidden, now() - r.t0, r.hidden, r.tries[0], r.tries[1],
		               r.tries[2]);
	return blocked("%lu pre-exec siblings raced over %.1f s (%lu mem opens, %lu "
	               "pidfd_getfd, %lu /proc fd opens): no writable cgroup fd, no writable mem",
	               r.caught, now() - r.t0, r.tries[0], r.tries[1], r.tries[2]);
}

/* ---------------------------------------------------------------- 2. open_tree_attr */

static int kernel_at_least(int maj, int min)
{
	char buf[256];
	int a = 0, b = 0;

	if (read_file("/proc/sys/kernel/osrelease", buf, sizeof(buf)) <= 0)
		return -1;
	if (sscanf(buf, "%d.%d", &a, &b) != 2)
		return -1;
	return a > maj || (a == maj && b >= min);
}

/* open_tree_attr(OPEN_TREE_CLONE, attr_clr=RDONLY) of each cgroup mount,
 * through each ABI; every way in is tried and reported. */
static int probe_open_tree_attr(void)
{
	char why[PATH_MAX], first[2048] = "", res[1024] = "", won[256] = "";
	bool any_call = false;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	for (int a = 0; a < ABI_COUNT; a++) {
		if (!abi_ok((enum abi)a)) {
			cat(res, sizeof(res), "%s%s: no such ABI here", res[0] ? "; " : "",
			    abi_names[a]);
			continue;
		}
		for (int i = 0; i < nh; i++) {
			struct mount_attr *attr = low_alloc(sizeof(*attr));
			char how[256], out[2048] = "";
			attr->attr_clr = MOUNT_ATTR_RDONLY;
			long fd =
			    abi_call((enum abi)a, NR_OPEN_TREE_ATTR, NR_OPEN_TREE_ATTR, AT_FDCWD,
			             low_str(H[i].mnt), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
			             (long)(uintptr_t)attr, sizeof(*attr));
			snprintf(how, sizeof(how),
			         "open_tree_attr(%s, OPEN_TREE_CLONE, attr_clr=RDONLY) via %s",
			         H[i].mnt, abi_names[a]);
			if (fd < 0) {
				cat(res, sizeof(res), "%s%s %s: %s", res[0] ? "; " : "",
				    abi_names[a], H[i].name, ename((int)-fd));
				if (fd != -ENOSYS)
					any_call = true;
				continue;
			}
			any_call = true;
			bool w = demo_mount((int)fd, how, out, sizeof(out));
			close((int)fd);
			if (w) {
				if (!first[0])
					snprintf(first, sizeof(first), "%s", out);
				cat(won, sizeof(won), "%s%s/%s", won[0] ? " " : "", abi_names[a],
				    H[i].name);
			} else {
				cat(res, sizeof(res), "%s%s %s: a clone, but %s",
				    res[0] ? "; " : "", abi_names[a], H[i].name, out);
			}
		}
	}
	if (won[0])
		return escaped("%s [writable clones through: %s; %s]", first, won, res);
	if (!any_call && kernel_at_least(6, 15) == 0)
		return na("the kernel predates open_tree_attr (Linux 6.15): %s", res);
	return blocked("%s", res);
}

/* ---------------------------------------------------------------- 3. clone3 into a cgroup */

struct clone_args_ {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
	    set_tid_size, cgroup;
};

static int probe_clone3_cgroup(void)
{
	char why[PATH_MAX], res[1024] = "";
	static const char *const what[] = {"target", "", "batch"};

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (!cg_v2)
		return na("CLONE_INTO_CGROUP takes cgroup2 directories; memory is on v1 here");
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		char rel[PATH_MAX], dir[PATH_MAX * 2];
		if (!strcmp(what[i], "batch"))
			snprintf(rel, sizeof(rel), "%s", H[0].batch);
		else if (what[i][0])
			snprintf(rel, sizeof(rel), "%s/%s", parent_rel, what[i]);
		else
			snprintf(rel, sizeof(rel), "%s", parent_rel);
		snprintf(dir, sizeof(dir), "%s/%s", H[0].mnt, rel);
		int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cfd < 0) {
			cat(res, sizeof(res), "%sopen /%s: %s", res[0] ? "; " : "", rel,
			    ename(errno));
			continue;
		}
		/* Every x86 ABI: the spawner's own filter allows clone3 on v2
		 * (zygote.c), and its children's filter must deny it on all of
		 * them (the arguments below 4 GiB for i386 and x32). */
		struct clone_args_ *a = low_alloc(sizeof(*a));
		long pid = -ENOSYS;
		enum abi abi;
		for (abi = ABI_64; abi < ABI_COUNT; abi++) {
			if (!abi_ok(abi))
				continue;
			memset(a, 0, sizeof(*a));
			a->flags = CLONE_INTO_CGROUP;
			a->exit_signal = SIGCHLD;
			a->cgroup = (uint64_t)cfd;
			pid = abi_call(abi, NR_CLONE3, NR_CLONE3, (long)a, sizeof(*a), 0, 0, 0);
			if (pid == 0) {
				for (;;)
					pause();
			}
			if (pid > 0)
				break;
			cat(res, sizeof(res), "%sclone3 (%s) into /%s: %s", res[0] ? "; " : "",
			    abi_names[abi], rel, ename((int)-pid));
		}
		close(cfd);
		if (pid < 0)
			continue;
		bool there = procs_has(dir, (pid_t)pid);
		kill((pid_t)pid, SIGKILL);
		waitpid((pid_t)pid, NULL, 0);
		return escaped(
		    "clone3(CLONE_INTO_CGROUP) (%s) with a dir fd of the read-only mount "
		    "put child %ld into /%s%s (outside the task's cgroup)",
		    abi_names[abi], pid, rel, there ? "" : " (not seen in its cgroup.procs)");
	}
	return blocked("%s", res);
}

/* ---------------------------------------------------------------- 4. the terminal */

static int tty_fd(const char **what)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd >= 0) {
		*what = "/dev/tty";
		return fd;
	}
	for (int i = 0; i < 3; i++)
		if (isatty(i)) {
			*what = i == 0 ? "stdin" : i == 1 ? "stdout" : "stderr";
			return i;
		}
	return -1;
}

#define STI_MARKER "#corral-tiocsti#"

static int probe_tiocsti(void)
{
	const char *what = NULL;
	bool driver_tty = getenv("CORRAL_PROBE_TTY") && !strcmp(getenv("CORRAL_PROBE_TTY"), "1");
	int fd = tty_fd(&what), pushed = 0, err = 0;

	if (fd < 0) {
		int e = errno;
		if (driver_tty)
			return blocked("no terminal to reach (open /dev/tty: %s; stdio is no tty)",
			               ename(e));
		return na("no controlling terminal (run by the driver on a pty)");
	}
	for (const char *c = STI_MARKER; *c; c++) {
		if (ioctl(fd, TIOCSTI, c) < 0) {
			err = errno;
			break;
		}
		pushed++;
	}
	if (pushed)
		return escaped("TIOCSTI pushed %d bytes (\"%.*s\") into the input of the terminal "
		               "of corral's session (%s)",
		               pushed, pushed, STI_MARKER, what);
	return blocked("TIOCSTI on %s: %s", what, ename(err));
}

static int probe_tioclinux(void)
{
	const char *what = NULL;
	int fd = tty_fd(&what);
	char sub = TIOCL_GETSHIFTSTATE;

	if (fd < 0) {
		/* The filter judges the request number whatever the fd. */
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		what = "/dev/null";
	}
	if (ioctl(fd, TIOCLINUX, &sub) == 0)
		return escaped("TIOCLINUX(GETSHIFTSTATE) on %s succeeded: the filter lets it "
		               "through",
		               what);
	if (errno == EPERM)
		return blocked("TIOCLINUX on %s: EPERM (refused before the driver)", what);
	return escaped("TIOCLINUX on %s reached the tty layer (%s, not the filter's EPERM)", what,
	               ename(errno));
}

/* ---------------------------------------------------------------- 5. mount propagation */

static int probe_mount_propagation(void)
{
	const char *mnt = getenv("CORRAL_PROBE_MOUNT"), *state = getenv("CORRAL_PROBE_STATE");
	char why[PATH_MAX], p[PATH_MAX], out[2048] = "";
	double t0 = now(), wait_s = env_num("CORRAL_PROBE_WAIT_SECONDS", 30);

	if (!mnt || !state)
		return broken("CORRAL_PROBE_MOUNT and CORRAL_PROBE_STATE must be set");
	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (is_cgroup_magic(fs_magic(mnt)))
		return broken("%s is a cgroup mount already before the driver mounted it", mnt);
	snprintf(p, sizeof(p), "%s/prop.ready", state);
	if (write_file(p, "1\n") < 0)
		return broken("write %s: %s", p, ename(errno));
	snprintf(p, sizeof(p), "%s/prop.mounted", state);
	while (access(p, F_OK) < 0) {
		if (now() - t0 > wait_s)
			return broken("the driver did not mount within %.0f s", wait_s);
		sleep_ms(10);
	}
	if (!is_cgroup_magic(fs_magic(mnt)))
		return blocked("the cgroup mount the host made at %s after the task started does "
		               "not show in the task",
		               mnt);
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return broken("open %s: %s", mnt, ename(errno));
	struct statvfs sv;
	if (fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY))
		return blocked("the host's later cgroup mount at %s shows in the task read-only",
		               mnt);
	char how[PATH_MAX + 64];
	snprintf(how, sizeof(how), "the host's later cgroup mount at %s", mnt);
	if (demo_mount(fd, how, out, sizeof(out)))
		return escaped("%s (it reached the task read-write)", out);
	return blocked("%s reached the task read-write, but the writes failed: %s", mnt, out);
}

/* ---------------------------------------------------------------- 6. io_uring */

struct uring {
	int fd;
	struct io_uring_params p;
	char *sq, *cq;
	struct io_uring_sqe *sqes;
};

static int uring_setup(struct uring *u)
{
	size_t sqsz, cqsz;

	memset(u, 0, sizeof(*u));
	u->fd = (int)sys(NR_IO_URING_SETUP, 4, (long)&u->p, 0, 0, 0);
	if (u->fd < 0)
		return u->fd;
	sqsz = u->p.sq_off.array + u->p.sq_entries * sizeof(unsigned);
	cqsz = u->p.cq_off.cqes + u->p.cq_entries * sizeof(struct io_uring_cqe);
	if (u->p.features & IORING_FEAT_SINGLE_MMAP)
		sqsz = cqsz = sqsz > cqsz ? sqsz : cqsz;
	u->sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
	             IORING_OFF_SQ_RING);
	if (u->sq == MAP_FAILED)
		return -errno;
	u->cq = u->sq;
	if (!(u->p.features & IORING_FEAT_SINGLE_MMAP)) {
		u->cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
		             IORING_OFF_CQ_RING);
		if (u->cq == MAP_FAILED)
			return -errno;
	}
	u->sqes = mmap(NULL, u->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		return -errno;
	return 0;
}

/* Submit one sqe and wait for its completion: 0 and its res, or -errno. */
static int uring_run(struct uring *u, const struct io_uring_sqe *sqe, int *res)
{
	unsigned *tail = (unsigned *)(u->sq + u->p.sq_off.tail);
	unsigned *mask = (unsigned *)(u->sq + u->p.sq_off.ring_mask);
	unsigned *array = (unsigned *)(u->sq + u->p.sq_off.array);
	unsigned *head = (unsigned *)(u->cq + u->p.cq_off.head);
	unsigned *ctail = (unsigned *)(u->cq + u->p.cq_off.tail);
	unsigned *cmask = (unsigned *)(u->cq + u->p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(u->cq + u->p.cq_off.cqes);
	unsigned t = *tail, idx = t & *mask;
	long r;

	u->sqes[idx] = *sqe;
	array[idx] = idx;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	r = sys(NR_IO_URING_ENTER, u->fd, 1, 1, IORING_ENTER_GETEVENTS, 0);
	if (r < 0)
		return (int)r;
	unsigned h = *head;
	if (h == __atomic_load_n(ctail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	*res = cqes[h & *cmask].res;
	__atomic_store_n(head, h + 1, __ATOMIC_RELEASE);
	return 0;
}

static int io_uring_disabled(void)
{
	char buf[16];

	return read_file("/proc/sys/kernel/io_uring_disabled", buf, sizeof(buf)) > 0 ? atoi(buf)
	                                                                             : 0;
}

static int probe_io_uring(void)
{
	struct io_uring_params p;
	long fd;

	if (io_uring_disabled() == 2)
		return na("io_uring is disabled on this host (kernel.io_uring_disabled=2)");
	memset(&p, 0, sizeof(p));
	fd = sys(NR_IO_URING_SETUP, 4, (long)&p, 0, 0, 0);
	if (fd >= 0) {
		close((int)fd);
		return escaped("io_uring_setup works under the default profile (io_uring "
		               "operations bypass the seccomp filter)");
	}
	return blocked("io_uring_setup: %s", ename((int)-fd));
}

/* Run with a profile that denies socket(): io_uring must not make one. */
static int probe_io_uring_socket(void)
{
	struct io_uring_sqe sqe;
	struct uring u;
	int r, res = 0;
	long s;

	s = sys(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0);
	if (s >= 0)
		return broken("socket() works: run this probe with a profile that denies socket");
	if (s != -EPERM)
		note("socket(): %s", ename((int)-s));
	if (io_uring_disabled() == 2)
		return na("io_uring is disabled on this host (kernel.io_uring_disabled=2)");
	r = uring_setup(&u);
	if (r < 0)
		return blocked("socket() %s; io_uring_setup: %s", ename((int)-s), ename(-r));
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = IORING_OP_SOCKET;
	sqe.fd = AF_UNIX;
	sqe.off = SOCK_STREAM;
	r = uring_run(&u, &sqe, &res);
	if (r < 0)
		return blocked("socket() %s; io_uring_enter: %s", ename((int)-s), ename(-r));
	if (res >= 0)
		return escaped("io_uring IORING_OP_SOCKET made socket fd %d although the profile "
		               "denies socket() (%s)",
		               res, ename((int)-s));
	if (res == -EINVAL || res == -EOPNOTSUPP)
		return na("this kernel's io_uring has no IORING_OP_SOCKET (%s)", ename(-res));
	return blocked("socket() %s; IORING_OP_SOCKET: %s", ename((int)-s), ename(-res));
}

/* ---------------------------------------------------------------- 7. userfaultfd */

static int probe_userfaultfd(void)
{
	long r = sys(NR_USERFAULTFD, O_CLOEXEC, 0, 0, 0, 0);
	char res[256];

	if (r >= 0) {
		close((int)r);
		return escaped("the userfaultfd syscall works");
	}
	snprintf(res, sizeof(res), "userfaultfd(): %s", ename((int)-r));
	int fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && r == -ENOSYS)
			return na("no userfaultfd in this kernel");
		return blocked("%s; open /dev/userfaultfd: %s", res, ename(errno));
	}
	int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC);
	int e = errno;
	close(fd);
	if (u >= 0) {
		close(u);
		return escaped("/dev/userfaultfd USERFAULTFD_IOC_NEW gave a userfaultfd (%s)", res);
	}
	return blocked("%s; USERFAULTFD_IOC_NEW: %s", res, ename(e));
}

/* ---------------------------------------------------------------- 8. kill corral */

/* Double fork, setsid: a daemon that writes its pid to pidfile and sleeps
 * seconds (bounded, so that a failed clean-up ends by itself). */
static pid_t start_daemon(const char *pidfile, int seconds)
{
	int p[2];
	pid_t c, d = -1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	c = fork();
	if (c == 0) {
		setsid();
		if (fork() == 0) {
			char buf[32];
			int nul = open("/dev/null", O_RDWR);
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			pid_t me = getpid();
			snprintf(buf, sizeof(buf), "%d\n", (int)me);
			write_file(pidfile, buf);
			(void)!write(p[1], &me, sizeof(me));
			for (int i = 0; i < seconds * 10; i++)
				sleep_ms(100);
			_exit(0);
		}
		_exit(0);
	}
	close(p[1]);
	if (c > 0) {
		waitpid(c, NULL, 0);
		if (read(p[0], &d, sizeof(d)) != sizeof(d))
			d = -1;
	}
	close(p[0]);
	return d;
}

static int probe_kill_corral(void)
{
	const char *state = getenv("CORRAL_PROBE_STATE"), *drv_ns = getenv("CORRAL_PROBE_PIDNS");
	char why[256] = "", p[PATH_MAX], log[1024] = "", ns[128] = "";
	pid_t cp, wd = 0, d;
	int logfd;

	if (!state)
		return broken("CORRAL_PROBE_STATE is not set");
	cp = corral_pid(why, sizeof(why));
	if (cp < 0)
		return broken("%s", why);
	snprintf(p, sizeof(p), "%s/daemon.pid", state);
	d = start_daemon(p, 60);
	if (d <= 0)
		return broken("could not start the daemon");
	snprintf(p, sizeof(p), "%s/kill.log", state);
	logfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cat(log, sizeof(log), "daemon %d\n", (int)d);
	/* A PID namespace of corral's (not the driver's): its init. */
	ssize_t k = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[k > 0 ? k : 0] = '\0';
	if (drv_ns && ns[0] && strcmp(ns, drv_ns)) {
		int r = kill(1, SIGKILL);
		cat(log, sizeof(log), "init %s\n", r == 0 ? "sent" : ename(errno));
	}
	if (cp > 0) {
		wd = watchdog_pid(cp);
		if (wd > 0) {
			int r = kill(wd, SIGKILL);
			cat(log, sizeof(log), "watchdog %d %s\n", (int)wd,
			    r == 0 ? "killed" : ename(errno));
		} else {
			cat(log, sizeof(log), "watchdog not visible\n");
		}
	} else {
		cat(log, sizeof(log), "corral not visible: %s\n", why);
	}
	if (logfd >= 0)
		(void)!write(logfd, log, strlen(log));
	if (cp > 0) {
		int r = kill(cp, SIGKILL);
		char line[128];
		snprintf(line, sizeof(line), "corral %d %s\n", (int)cp,
		         r == 0 ? "killed" : ename(errno));
		cat(log, sizeof(log), "%s", line);
		if (logfd >= 0)
			(void)!write(logfd, line, strlen(line));
	}
	if (logfd >= 0)
		close(logfd);
	/* With corral dead, our parent-death signal ends us here. */
	sleep_ms(200);
	for (char *s = log; *s; s++)
		if (*s == '\n')
			*s = ';';
	if (strstr(log, "killed"))
		return escaped("%s", log);
	return blocked("%s (the driver looks for daemon %d, our pid for it, by its environment)",
	               log, (int)d);
}

/* ---------------------------------------------------------------- 9. --user environment */

static int probe_user_env(void)
{
	uid_t uid = getuid();
	struct passwd *pw;
	char bad[512] = "";

	if (uid == 0)
		return na("the task runs as root: nothing to compare");
	pw = getpwuid(uid);
	if (!pw)
		return na("uid %d has no passwd entry", (int)uid);
	const char *home = getenv("HOME"), *user = getenv("USER"), *logname = getenv("LOGNAME");
	if (!home || strcmp(home, pw->pw_dir))
		cat(bad, sizeof(bad), " HOME=%s", home ? home : "(unset)");
	if (!user || strcmp(user, pw->pw_name))
		cat(bad, sizeof(bad), " USER=%s", user ? user : "(unset)");
	if (!logname || strcmp(logname, pw->pw_name))
		cat(bad, sizeof(bad), " LOGNAME=%s", logname ? logname : "(unset)");
	if (bad[0])
		return escaped("a task of uid %d (%s, home %s) got%s", (int)uid, pw->pw_name,
		               pw->pw_dir, bad);
	return blocked("HOME, USER and LOGNAME are %s's", pw->pw_name);
}

/* ---------------------------------------------------------------- 10. the classes around them */

static int probe_proc_target(bool watchdog)
{
	char why[PATH_MAX], out[2048] = "", errs[2048] = "";
	pid_t cp, t;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	cp = corral_pid(why, sizeof(why));
	if (cp < 0)
		return broken("%s", why);
	if (cp == 0)
		return blocked("corral is not visible: %s", why);
	t = watchdog ? watchdog_pid(cp) : cp;
	if (t <= 0)
		return blocked("corral's watchdog is not visible to the task");
	if (attack_process(t, watchdog ? "the watchdog" : "corral", out, sizeof(out), errs,
	                   sizeof(errs)))
		return escaped("%s", out);
	return blocked("%s", errs);
}

/* The spawners (zygote.c: one per CPU, up to -j): processes that carry the
 * sandbox and clone every task. Where the task can see corral (no PID
 * namespace), it looks for them and tries each way in. */
static int probe_proc_spawner(void)
{
	char why[PATH_MAX], out[2048] = "", errs[2048] = "";
	pid_t cp, sp[16];
	int n;

	cp = corral_pid(why, sizeof(why));
	if (cp < 0)
		return broken("%s", why);
	if (cp == 0)
		return blocked("corral and its spawners are not visible: %s", why);
	n = children_named(cp, "corral-spawner", sp, 16);
	if (!n)
		return blocked("no spawner of corral is visible to the task");
	for (int i = 0; i < n; i++) {
		char who[64];
		snprintf(who, sizeof(who), "spawner %d", (int)sp[i]);
		if (attack_process(sp[i], who, out, sizeof(out), errs, sizeof(errs)))
			return escaped("%s", out);
	}
	return blocked("%d spawner(s): %s", n, errs);
}

/* Task 1 of `corral run -j 1` with a sibling after it: on v2 with two
 * CPUs or more corral makes that sibling's child while we run, and it
 * waits before its exec (the warm child, attempt_local.c) with its task's
 * privileges, a CLOEXEC gate and its stdio. Hidden from /proc (hidepid,
 * non-dumpable), it can be named all the same: the batch's PID namespace
 * holds only the watchdog (1), us, and it. Every way in is tried on it:
 * its memory, its fds (pidfd_getfd: the gate would let us steal its go or
 * forge its pidfd message), its root. No other process within
 * CORRAL_PROBE_WARM_SECONDS (3): N/A (v1, or one CPU). */
static int probe_warm_child(void)
{
	char why[PATH_MAX], out[2048] = "", errs[2048] = "";
	double t0 = now(), budget = env_num("CORRAL_PROBE_WARM_SECONDS", 3);
	pid_t me = getpid(), w = 0;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (me > 16)
		return na("not in a PID namespace of the batch's (pid %d)", (int)me);
	while (!w && now() - t0 < budget) {
		for (pid_t p = 2; p < 64 && !w; p++) {
			int pfd = p == me ? -1 : pidfd_open_(p);
			if (pfd >= 0) {
				w = p;
				close(pfd);
			}
		}
		if (!w)
			usleep(20000);
	}
	if (!w)
		return na("no warm child beside the task (cgroup v1, or -j not below the CPUs)");
	if (attack_process(w, "the warm child", out, sizeof(out), errs, sizeof(errs)))
		return escaped("pid %d: %s", (int)w, out);
	return blocked("the warm child (pid %d in the batch's namespace): %s", (int)w, errs);
}

static int probe_proc_corral(void)
{
	return probe_proc_target(false);
}

static int probe_proc_watchdog(void)
{
	return probe_proc_target(true);
}

/* The private copy of the mount namespace, if unshare allows it: a remount or
 * umount that went through then changes nothing outside the probe. */
static bool private_mount_ns(void)
{
	if (unshare(CLONE_NEWNS) == 0)
		return true;
	note("unshare(CLONE_NEWNS): %s: mount calls run in the shared namespace", ename(errno));
	return false;
}

static int make_mountpoint(char *dir, size_t n)
{
	const char *state = getenv("CORRAL_PROBE_STATE");

	snprintf(dir, n, "%s/mnt-%d", state ? state : "/tmp", (int)getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int probe_old_mount(void)
{
	char why[PATH_MAX], out[2048] = "", res[2048] = "", dir[PATH_MAX];
	bool escaped_ = false;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (make_mountpoint(dir, sizeof(dir)) < 0)
		return broken("mkdir %s: %s", dir, ename(errno));
	bool priv = private_mount_ns();
	for (int i = 0; i < nh && !escaped_; i++) {
		for (int a = 0; a < ABI_COUNT && !escaped_; a++) {
			char how[256];
			long r;
			if (!abi_ok((enum abi)a))
				continue;
			/* Remount read-write. */
			r = abi_call((enum abi)a, NR_MOUNT, NR32_MOUNT, 0, low_str(H[i].mnt), 0,
			             MS_REMOUNT | MS_BIND, 0);
			snprintf(how, sizeof(how), "mount(MS_REMOUNT|MS_BIND) of %s via %s",
			         H[i].mnt, abi_names[a]);
			if (r == 0) {
				int fd = open(H[i].mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				escaped_ = demo_mount(fd, how, out, sizeof(out));
				if (!escaped_) {
					snprintf(out, sizeof(out), "%s succeeded", how);
					escaped_ = true;
				}
				close(fd);
				break;
			}
			cat(res, sizeof(res), "%sremount %s %s: %s", res[0] ? ", " : "", H[i].name,
			    abi_names[a], ename((int)-r));
			/* A fresh mount of the hierarchy. */
			const char *fs = cg_v2 ? "cgroup2" : "cgroup";
			const char *opt = cg_v2 ? NULL : H[i].kind == H_MEMORY ? "memory" : "pids";
			r = abi_call((enum abi)a, NR_MOUNT, NR32_MOUNT, low_str(fs), low_str(dir),
			             low_str(fs), 0, low_str(opt));
			snprintf(how, sizeof(how), "mount -t %s%s%s via %s", fs, opt ? " -o " : "",
			         opt ? opt : "", abi_names[a]);
			if (r == 0) {
				int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				escaped_ = demo_mount(fd, how, out, sizeof(out));
				if (!escaped_) {
					snprintf(out, sizeof(out), "%s succeeded", how);
					escaped_ = true;
				}
				close(fd);
				umount2(dir, MNT_DETACH);
				break;
			}
			cat(res, sizeof(res), ", fresh %s %s: %s", H[i].name, abi_names[a],
			    ename((int)-r));
			/* Unmount it: umount2 is denied with the rest of @mount. */
			r = abi_call((enum abi)a, NR_UMOUNT2, NR32_UMOUNT2, low_str(H[i].mnt),
			             MNT_DETACH, 0, 0, 0);
			if (r == 0) {
				snprintf(out, sizeof(out), "umount2(%s) via %s succeeded%s",
				         H[i].mnt, abi_names[a],
				         priv ? " (in a private copy of the namespace)" : "");
				escaped_ = true;
				break;
			}
			cat(res, sizeof(res), ", umount2 %s %s: %s", H[i].name, abi_names[a],
			    ename((int)-r));
		}
	}
	rmdir(dir);
	if (escaped_)
		return escaped("%s", out);
	return blocked("%s", res);
}

static int probe_new_mount(void)
{
	char why[PATH_MAX], out[2048] = "", res[2048] = "";

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	private_mount_ns();
	for (int i = 0; i < nh; i++) {
		for (int a = 0; a < ABI_COUNT; a++) {
			char how[256];
			long fs, r;
			if (!abi_ok((enum abi)a))
				continue;
			const char *an = abi_names[a];
			/* fsopen, fsconfig, fsmount: a fresh mount. */
			fs = abi_call((enum abi)a, NR_FSOPEN, NR_FSOPEN,
			              low_str(cg_v2 ? "cgroup2" : "cgroup"), FSOPEN_CLOEXEC, 0, 0,
			              0);
			if (fs >= 0) {
				if (!cg_v2)
					sys(NR_FSCONFIG, fs, FSCONFIG_SET_FLAG,
					    (long)(H[i].kind == H_MEMORY ? "memory" : "pids"), 0,
					    0);
				r = sys(NR_FSCONFIG, fs, FSCONFIG_CMD_CREATE, 0, 0, 0);
				long m = r < 0 ? r : sys(NR_FSMOUNT, fs, FSMOUNT_CLOEXEC, 0, 0, 0);
				close((int)fs);
				snprintf(how, sizeof(how), "fsopen+fsmount of %s via %s", H[i].name,
				         an);
				if (m >= 0) {
					bool w = demo_mount((int)m, how, out, sizeof(out));
					close((int)m);
					return escaped("%s%s", out, w ? "" : " (fsopen worked)");
				}
				return escaped("%s: fsopen worked (fsconfig/fsmount: %s)", how,
				               ename((int)-m));
			}
			cat(res, sizeof(res), "%sfsopen %s %s: %s", res[0] ? ", " : "", H[i].name,
			    an, ename((int)-fs));
			/* open_tree(OPEN_TREE_CLONE) then mount_setattr(attr_clr=RDONLY). */
			long t =
			    abi_call((enum abi)a, NR_OPEN_TREE, NR_OPEN_TREE, AT_FDCWD,
			             low_str(H[i].mnt), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC, 0, 0);
			if (t >= 0) {
				struct mount_attr *attr = low_alloc(sizeof(*attr));
				attr->attr_clr = MOUNT_ATTR_RDONLY;
				r = abi_call((enum abi)a, NR_MOUNT_SETATTR, NR_MOUNT_SETATTR, t,
				             low_str(""), AT_EMPTY_PATH, (long)(uintptr_t)attr,
				             sizeof(*attr));
				snprintf(how, sizeof(how),
				         "open_tree(CLONE)+mount_setattr of %s via %s", H[i].mnt,
				         an);
				demo_mount((int)t, how, out, sizeof(out));
				close((int)t);
				return escaped("%s (open_tree worked; mount_setattr: %s)", out,
				               r == 0 ? "ok" : ename((int)-r));
			}
			cat(res, sizeof(res), ", open_tree %s %s: %s", H[i].name, an,
			    ename((int)-t));
			/* mount_setattr on the task's own mount. */
			struct mount_attr *attr = low_alloc(sizeof(*attr));
			attr->attr_clr = MOUNT_ATTR_RDONLY;
			r = abi_call((enum abi)a, NR_MOUNT_SETATTR, NR_MOUNT_SETATTR, AT_FDCWD,
			             low_str(H[i].mnt), 0, (long)(uintptr_t)attr, sizeof(*attr));
			if (r == 0) {
				int fd = open(H[i].mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				snprintf(how, sizeof(how),
				         "mount_setattr(%s, attr_clr=RDONLY) via %s", H[i].mnt, an);
				demo_mount(fd, how, out, sizeof(out));
				close(fd);
				return escaped("%s (mount_setattr worked)", out);
			}
			cat(res, sizeof(res), ", mount_setattr %s %s: %s", H[i].name, an,
			    ename((int)-r));
			/* fspick: a context on the live cgroup superblock. */
			r = abi_call((enum abi)a, NR_FSPICK, NR_FSPICK, AT_FDCWD, low_str(H[i].mnt),
			             FSPICK_CLOEXEC, 0, 0);
			if (r >= 0) {
				close((int)r);
				return escaped(
				    "fspick(%s) via %s gave a context on the live cgroup "
				    "superblock (not reconfigured)",
				    H[i].mnt, an);
			}
			cat(res, sizeof(res), ", fspick %s %s: %s", H[i].name, an, ename((int)-r));
			/* move_mount of the task's own mount somewhere else. */
			char dir[PATH_MAX];
			if (make_mountpoint(dir, sizeof(dir)) == 0) {
				r = abi_call((enum abi)a, NR_MOVE_MOUNT, NR_MOVE_MOUNT, AT_FDCWD,
				             low_str(H[i].mnt), AT_FDCWD, low_str(dir), 0);
				rmdir(dir);
				if (r == 0)
					return escaped("move_mount(%s) via %s worked", H[i].mnt,
					               an);
				cat(res, sizeof(res), ", move_mount %s %s: %s", H[i].name, an,
				    ename((int)-r));
			}
		}
	}
	return blocked("%s", res);
}

/* A user namespace of its own (full capabilities there), a cgroup namespace
 * owned by it, and a fresh cgroup mount in its mount namespace. */
static int probe_userns_mount(void)
{
	char why[PATH_MAX], out[2048] = "", res[1024] = "", dir[PATH_MAX];

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	if (make_mountpoint(dir, sizeof(dir)) < 0)
		return broken("mkdir %s: %s", dir, ename(errno));
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) < 0) {
		int e = errno;
		rmdir(dir);
		return blocked("unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWCGROUP): %s", ename(e));
	}
	const char *fs = cg_v2 ? "cgroup2" : "cgroup";
	const char *opt = cg_v2 ? NULL : "memory";
	if (mount(fs, dir, fs, 0, opt) == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		bool w = demo_mount(fd, "a cgroup mount in a user namespace of its own", out,
		                    sizeof(out));
		close(fd);
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		return escaped("%s%s", out, w ? "" : " (the mount itself worked)");
	}
	cat(res, sizeof(res), "in a new user+mount+cgroup namespace: mount -t %s: %s", fs,
	    ename(errno));
	long f = sys(NR_FSOPEN, (long)fs, FSOPEN_CLOEXEC, 0, 0, 0);
	if (f >= 0) {
		close((int)f);
		rmdir(dir);
		return escaped("fsopen(%s) works in a user namespace of its own", fs);
	}
	cat(res, sizeof(res), ", fsopen: %s", ename((int)-f));
	rmdir(dir);
	return blocked("%s", res);
}

/* Write its pid into the cgroup.procs (and tasks, threads) of the batch, the
 * private parent and the v2 leaf <parent>/target, through every root a task
 * can name: its own mount, /proc/self/root, /proc/1/root, corral's and the
 * watchdog's /proc/<pid>/root. */
static int probe_cgroup_files(int what)
{
	char why[PATH_MAX], res[4096] = "";
	char roots[6][64];
	int nr = 0;
	pid_t cp;

	if (cg_init(why, sizeof(why)) < 0)
		return broken("%s", why);
	cp = corral_pid(why, sizeof(why));
	snprintf(roots[nr++], sizeof(roots[0]), "%s", "");
	snprintf(roots[nr++], sizeof(roots[0]), "%s", "/proc/self/root");
	snprintf(roots[nr++], sizeof(roots[0]), "%s", "/proc/thread-self/root");
	snprintf(roots[nr++], sizeof(roots[0]), "%s", "/proc/1/root");
	if (cp > 0) {
		pid_t wd = watchdog_pid(cp);
		snprintf(roots[nr++], sizeof(roots[0]), "/proc/%d/root", (int)cp);
		if (wd > 0)
			snprintf(roots[nr++], sizeof(roots[0]), "/proc/%d/root", (int)wd);
	}
	for (int r = 0; r < nr; r++) {
		for (int i = 0; i < nh; i++) {
			char path[PATH_MAX], how[PATH_MAX + 64], o[1024] = "";
			snprintf(path, sizeof(path), "%s%s", roots[r], H[i].mnt);
			int D = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (D < 0) {
				cat(res, sizeof(res), "%s%s: %s", res[0] ? "; " : "", path,
				    ename(errno));
				continue;
			}
			snprintf(how, sizeof(how), "%s", path);
			if (demo(D, &H[i], how, what, o, sizeof(o))) {
				close(D);
				return escaped("%s", o);
			}
			close(D);
			cat(res, sizeof(res), "%s%s: %s", res[0] ? "; " : "", path, o);
		}
	}
	return blocked("%s", res);
}

static int probe_cgroup_move(void)
{
	return probe_cgroup_files(DEMO_MOVE);
}

static int probe_limit_raise(void)
{
	return probe_cgroup_files(DEMO_LIMIT | DEMO_BATCH);
}

/* Join corral's (or the watchdog's, or pid 1's) namespaces: by
 * /proc/<pid>/ns/<type> and by pidfd. */
static int probe_setns(void)
{
	static const struct {
		const char *name;
		int flag;
	} types[] = {{"mnt", CLONE_NEWNS},   {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID},
	             {"net", CLONE_NEWNET},  {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},
	             {"user", CLONE_NEWUSER}};
	char why[256], res[4096] = "", own[8][128];
	pid_t cp = corral_pid(why, sizeof(why)), targets[3];
	const char *names[3] = {"corral", "the watchdog", "pid 1"};
	int nt = 0;

	if (cp < 0)
		return broken("%s", why);
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/ns/%s", types[k].name);
		ssize_t l = readlink(p, own[k], sizeof(own[k]) - 1);
		own[k][l > 0 ? l : 0] = '\0';
	}
	targets[nt++] = cp;
	targets[nt++] = cp > 0 ? watchdog_pid(cp) : 0;
	targets[nt++] = 1;
	for (int t = 0; t < nt; t++) {
		if (targets[t] <= 0) {
			cat(res, sizeof(res), "%s%s: not visible", res[0] ? "; " : "", names[t]);
			continue;
		}
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
			char p[64], link[128] = "";
			snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)targets[t], types[k].name);
			ssize_t l = readlink(p, link, sizeof(link) - 1);
			link[l > 0 ? l : 0] = '\0';
			if (l > 0 && !strcmp(link, own[k]))
				continue; /* shared with us already: joining changes nothing */
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				cat(res, sizeof(res), "%s%s: %s", res[0] ? ", " : "", p,
				    ename(errno));
				continue;
			}
			long r = sys(SYS_setns, fd, 0, 0, 0, 0);
			close(fd);
			if (r == 0)
				return escaped("setns(%s) joined %s's %s namespace", p, names[t],
				               types[k].name);
			cat(res, sizeof(res), "%ssetns %s: %s", res[0] ? ", " : "", p,
			    ename((int)-r));
		}
		int pfd = pidfd_open_(targets[t]);
		if (pfd < 0) {
			cat(res, sizeof(res), ", pidfd_open %s: %s", names[t], ename(-pfd));
			continue;
		}
		long r = sys(SYS_setns, pfd, CLONE_NEWNS | CLONE_NEWCGROUP, 0, 0, 0);
		close(pfd);
		if (r == 0)
			return escaped("setns(pidfd of %s, CLONE_NEWNS|CLONE_NEWCGROUP) joined its "
			               "namespaces",
			               names[t]);
		cat(res, sizeof(res), ", setns(pidfd of %s): %s", names[t], ename((int)-r));
	}
	return blocked("%s", res);
}

/* ---------------------------------------------------------------- unknown syscall numbers */

enum {
	UNK_FIRST = 451,
	UNK_LAST = 469,
};

/* The kernel's answer to each number with zero arguments (every one of
 * 451..469 fails on NULL pointers or zero sizes, or does nothing: mseal of
 * an empty range). */
static long unk_call(enum abi a, long nr)
{
	return abi_call(a, nr, nr, 0, 0, 0, 0, 0);
}

static int cmd_syscall_baseline(void)
{
	for (int a = 0; a < ABI_COUNT; a++) {
		if (!abi_ok((enum abi)a))
			continue;
		for (long nr = UNK_FIRST; nr <= UNK_LAST; nr++)
			printf("%s:%ld:%ld\n", abi_names[a], nr, unk_call((enum abi)a, nr));
		printf("%s:%d:%ld\n", abi_names[a], NR_HIGH, unk_call((enum abi)a, NR_HIGH));
	}
	return 0;
}

/* Does corral's filter let these numbers reach the kernel? A filter of our
 * own, stacked on corral's, answers SECCOMP_RET_USER_NOTIF for them; our
 * listener thread (made before the filter, so not under it) sees the call
 * only when corral's filter allowed it: an ERRNO or KILL of corral's takes
 * precedence over USER_NOTIF and ends the call first. So "reached the
 * kernel" is observed, not inferred from an errno that the kernel gives for
 * a number it does not have as well. */
struct unk_seen {
	int fd; /* the listener */
	volatile int stop;
	uint32_t seen_arch[256];
	int seen_nr[256];
	volatile int n_seen;
};

static void *unk_listener(void *arg)
{
	struct unk_seen *s = arg;
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;

	while (!s->stop) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		memset(&req, 0, sizeof(req));
		if (ioctl(s->fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			continue;
		int k = s->n_seen;
		if (k < 256) {
			s->seen_arch[k] = req.data.arch;
			s->seen_nr[k] = req.data.nr;
			s->n_seen = k + 1;
		}
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		resp.error = -ENOSYS;
		ioctl(s->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
	return NULL;
}

/* The filter: nr in [lo, hi] (and hi2) of each x86 ABI -> USER_NOTIF. */
static int unk_filter(long lo, long hi, long high)
{
	struct sock_filter f[] = {
	    /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 1, 0),
	    /* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
	    /* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    /* 4 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~X32_BIT), /* x32: the common number */
	    /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)high, 4, 0),
	    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 1),
	    /* 7 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)hi, 0, 2),
	    /* 8 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    /* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	};

	struct sock_fprog prog = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};

	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return (int)sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
	                (long)&prog, 0, 0);
}

static int probe_unknown_syscalls(void)
{
	/* The highest number the filter was built to judge: corral check's, or,
	 * before it said, libseccomp's own table. */
	const char *jm = getenv("CORRAL_PROBE_JUDGED_MAX");
	long judged = jm && *jm ? atol(jm) : 0;
	if (judged <= 0) {
		for (long nr = 1; nr < 1024; nr++) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, (int)nr);
			if (name)
				judged = nr;
			free(name);
		}
	}
	long lo = judged + 1, hi = judged + 60;
	struct unk_seen s;
	pthread_t th;
	int pfd[2];

	memset(&s, 0, sizeof(s));
	s.fd = -1;
	if (pipe(pfd) < 0)
		return broken("pipe: %s", strerror(errno));
	/* The listener first (it must not be under our filter). */
	if (pthread_create(&th, NULL, unk_listener, &s) != 0)
		return broken("pthread_create");
	int lfd = unk_filter(lo, hi, NR_HIGH);
	if (lfd < 0) {
		s.stop = 1;
		pthread_join(th, NULL);
		if (lfd == -ENOSYS || lfd == -EINVAL)
			return na("no seccomp user notification here (%s)", ename(-lfd));
		return broken("load our filter: %s", ename(-lfd));
	}
	s.fd = lfd;
	char tried[256] = "";
	for (int a = 0; a < ABI_COUNT; a++) {
		if (!abi_ok((enum abi)a))
			continue;
		for (long nr = lo; nr <= hi; nr++)
			(void)unk_call((enum abi)a, nr);
		(void)unk_call((enum abi)a, NR_HIGH);
		cat(tried, sizeof(tried), " %s", abi_names[a]);
	}
	struct timespec ts = {0, 100 * 1000000};
	nanosleep(&ts, NULL);
	s.stop = 1;
	pthread_join(th, NULL);
	close(lfd);
	close(pfd[0]);
	close(pfd[1]);
	if (s.n_seen) {
		char through[1024] = "";
		for (int i = 0; i < s.n_seen; i++)
			cat(through, sizeof(through), " %s:%d",
			    s.seen_arch[i] == AUDIT_ARCH_I386  ? "i386"
			    : (uint32_t)s.seen_nr[i] & X32_BIT ? "x32"
			                                       : "x86_64",
			    s.seen_nr[i] & ~(int)X32_BIT);
		return escaped("%d calls above the highest number the filter judges (%ld) reached "
		               "the kernel:%s",
		               s.n_seen, judged, through);
	}
	return blocked("no number above %ld (the filter judges up to it) reached the kernel: "
	               "%ld..%ld and %d tried on%s",
	               judged, lo, hi, NR_HIGH, tried);
}

/* ---------------------------------------------------------------- main */

static int cmd_noop(void)
{
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
	const char *what;
} cmds[] = {
    {"spawn-race", probe_spawn_race, "steal corral's fds or memory through a pre-exec sibling"},
    {"open-tree-attr", probe_open_tree_attr, "a writable clone of the cgroup mount (6.15+)"},
    {"clone3-cgroup", probe_clone3_cgroup, "clone3(CLONE_INTO_CGROUP) out of the task's cgroup"},
    {"tiocsti", probe_tiocsti, "inject input into corral's terminal"},
    {"tioclinux", probe_tioclinux, "TIOCLINUX must be refused by the filter"},
    {"mount-propagation", probe_mount_propagation, "a later host cgroup mount, read-write"},
    {"io-uring", probe_io_uring, "io_uring under the default profile"},
    {"io-uring-socket", probe_io_uring_socket, "io_uring socket under a profile denying socket"},
    {"userfaultfd", probe_userfaultfd, "a userfaultfd through /dev/userfaultfd"},
    {"kill-corral", probe_kill_corral, "kill the watchdog and corral, leave a daemon"},
    {"user-env", probe_user_env, "--user: HOME, USER, LOGNAME of the target user"},
    {"proc-corral", probe_proc_corral, "corral's mem, fds, root, environ through /proc"},
    {"proc-watchdog", probe_proc_watchdog, "the watchdog's mem, fds, root, environ"},
    {"proc-spawner", probe_proc_spawner, "every spawner's mem, fds, root, environ"},
    {"warm-child", probe_warm_child, "the next task's child waiting before its exec"},
    {"old-mount", probe_old_mount, "remount, fresh mount, umount2 (3 ABIs)"},
    {"new-mount", probe_new_mount, "fsopen/fsmount, open_tree, mount_setattr, fspick"},
    {"userns-mount", probe_userns_mount, "a cgroup mount in a user namespace of its own"},
    {"cgroup-move", probe_cgroup_move, "move itself out of its cgroup through every root"},
    {"limit-raise", probe_limit_raise, "raise its own limits through every root"},
    {"setns", probe_setns, "join corral's, the watchdog's or pid 1's namespaces"},
    {"unknown-syscalls", probe_unknown_syscalls, "syscalls newer than libseccomp's table"},
    {"syscall-baseline", cmd_syscall_baseline, "(helper, outside corral) the kernel's answers"},
    {"noop", cmd_noop, "(helper) exit 0: the spawn race's siblings"},
};

int main(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (!strcmp(argv[1], cmds[i].name))
				return cmds[i].fn();
	}
	fprintf(stderr, "usage: corral-probe PROBE (run as a corral task by run_security.py)\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %-18s %s\n", cmds[i].name, cmds[i].what);
	return 2;
}
