/* testlib.c - helpers shared by the unit and integration tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "testlib.h"

void tl_skip(const char *fmt, ...)
{
	va_list ap;
	/* CI (scripts/test.sh as root) must run the real lanes: there a skip
	 * is a failure. */
	bool no_skip = getenv("CORRAL_NO_SKIP") && !strcmp(getenv("CORRAL_NO_SKIP"), "1");

	fprintf(stderr, no_skip ? "FAILED (CORRAL_NO_SKIP=1, would skip): " : "SKIPPED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(no_skip ? 1 : 77);
}

char *tl_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/corral-unit-XXXXXX", base) < 0)
		abort();
	if (!mkdtemp(p))
		abort();
	return p;
}

static void rm_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rm_at(dirfd(d), e->d_name);
		}
		if (d)
			closedir(d);
		unlinkat(dfd, name, AT_REMOVEDIR);
	} else {
		unlinkat(dfd, name, 0);
	}
}

void tl_rm_rf(const char *path)
{
	rm_at(AT_FDCWD, path);
}

void tl_mkdir_p(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	for (char *s = p + strlen(dir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

void tl_write(const char *dir, const char *rel, const char *content)
{
	char p[PATH_MAX], d[PATH_MAX];
	FILE *f;

	snprintf(d, sizeof(d), "%s", rel);
	char *slash = strrchr(d, '/');
	if (slash) {
		*slash = '\0';
		tl_mkdir_p(dir, d);
	}
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	if (!f)
		abort();
	fputs(content, f);
	fclose(f);
}

const char *tl_payload(void)
{
	const char *p = getenv("CORRAL_PAYLOAD");
	return p ? p : "corral-payload";
}

void tl_parent_create(struct tl_parent *p)
{
	struct corral__hier h;
	struct corral__hier_env env = {.probe_kernel = true};
	corral_error_t err;
	uint32_t r = 0;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0)
		tl_skip("integration tests create cgroups and need root");
	if (corral__hier_discover(&env, NULL, &h, &err) < 0)
		tl_skip("cgroup discovery failed: %s", err.msg);
	if (h.mode == CORRAL_CG_NONE || !h.has_memory)
		tl_skip("no usable memory controller here (corral check tells why)");
	if (!h.writable)
		tl_skip("our own cgroup %s is not writable", h.base_dir);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	p->mode = h.mode;
	snprintf(p->path, sizeof(p->path), "%s%scorral-test-%d-%08x",
	         strcmp(h.base_path, "/") ? h.base_path : "", "/", (int)getpid(), r);
	snprintf(p->dir, sizeof(p->dir), "%s/corral-test-%d-%08x", h.base_dir, (int)getpid(), r);
	if (mkdir(p->dir, 0755) < 0)
		tl_skip("cannot create %s: %s", p->dir, strerror(errno));
	if (h.mode == CORRAL_CG_V2) {
		/* Hand the controllers down so that corral can use them below. */
		const char *want[] = {"memory", "pids", "cpu"};
		for (size_t i = 0; i < 3; i++) {
			char v[32];
			if (!corral__list_has(h.controllers, want[i]) ||
			    !corral__list_has(h.subtree_control, want[i]))
				continue;
			snprintf(v, sizeof(v), "+%s", want[i]);
			tl_parent_write(p, "cgroup.subtree_control", v);
		}
	}
}

int tl_parent_write(const struct tl_parent *p, const char *file, const char *value)
{
	char path[PATH_MAX + 64];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", p->dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int count_dirs(const char *dir, bool corral_only)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!corral_only || !strncmp(e->d_name, "corral-", 7))
			n++;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		n += count_dirs(sub, corral_only);
	}
	closedir(d);
	return n;
}

int tl_count_corral_cgroups(const char *dir)
{
	return count_dirs(dir, true);
}

int tl_parent_destroy(struct tl_parent *p)
{
	int left;
	int fd;
	char parent[PATH_MAX], *slash;

	if (!p->dir[0])
		return 0;
	left = count_dirs(p->dir, false);
	snprintf(parent, sizeof(parent), "%s", p->dir);
	slash = strrchr(parent, '/');
	*slash = '\0';
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		corral__cg_destroy_tree(fd, slash + 1, p->mode == CORRAL_CG_V2,
		                        corral__now_ns() + 3000000000ull);
		close(fd);
	}
	p->dir[0] = '\0';
	return left;
}

bool tl_pid_alive(int pid)
{
	char path[64], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* ---------------------------------------------------------------- integration */

void tl_integration_preflight(void)
{
	struct tl_parent p;
	struct stat st;
	struct rlimit no_core = {0, 0};

	if (stat(tl_payload(), &st) < 0 || !(st.st_mode & S_IXUSR))
		tl_skip("payload program %s not found (set CORRAL_PAYLOAD)", tl_payload());
	tl_parent_create(&p); /* exits 77 with the reason */
	if (tl_parent_destroy(&p) != 0)
		tl_skip("cannot remove the private parent cgroup cleanly");
	/* Crash tests (SIGSEGV) must not drop core files anywhere. */
	setrlimit(RLIMIT_CORE, &no_core);
}

void tl_options(const struct tl_parent *p, corral_options_t *o)
{
	corral_options_init(o);
	o->cgroup_parent = p->path;
	o->jobs = 1;
}

int tl_run_batch(const corral_options_t *o, const corral_task_t *tasks, int n, corral_result_t *res,
                 int max, corral_summary_t *sum)
{
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_result_t r;
	int got = 0, rc;

	rc = corral_executor_new(o, &ex, &err);
	if (rc < 0)
		fail_msg("corral_executor_new: %s", err.msg);
	for (int i = 0; i < n; i++) {
		int64_t seq = corral_submit(ex, &tasks[i], &err);
		if (seq != i + 1)
			fail_msg("corral_submit: %lld (%s)", (long long)seq, err.msg);
	}
	corral_close(ex);
	while ((rc = corral_next(ex, &r, -1, &err)) > 0) {
		if (got < max)
			res[got] = r;
		else
			corral_result_release(&r);
		got++;
	}
	if (rc != -ECHILD)
		fail_msg("corral_next: %d (%s)", rc, err.msg);
	if (sum)
		corral_summary(ex, sum);
	corral_executor_free(ex);
	return got;
}

int tl_run_one(const corral_options_t *o, const corral_task_t *t, corral_result_t *r)
{
	corral_result_t res[8];
	int n = tl_run_batch(o, t, 1, res, 8, NULL);

	assert_true(n >= 1 && n <= 8);
	for (int i = 0; i < n - 1; i++) {
		assert_false(res[i].final);
		corral_result_release(&res[i]);
	}
	assert_true(res[n - 1].final);
	*r = res[n - 1];
	return n;
}

void tl_pids_base(const struct tl_parent *p, char *out, size_t size)
{
	struct corral__hier h;
	struct corral__hier_env env = {.probe_kernel = false};
	corral_error_t err;

	out[0] = '\0';
	if (corral__hier_discover(&env, p->path, &h, &err) == 0 && h.mode != CORRAL_CG_V2)
		snprintf(out, size, "%s", h.pids_base_dir);
}

int tl_count_batches_of(const char *dir, int owner)
{
	char prefix[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (!dir[0] || !(d = opendir(dir)))
		return 0;
	snprintf(prefix, sizeof(prefix), "corral-%d-", owner);
	while ((e = readdir(d)))
		if (e->d_type == DT_DIR && !strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

void tl_remove_batches_of(const char *dir, int owner)
{
	char prefix[64];
	DIR *d;
	struct dirent *e;

	if (!dir[0] || !(d = opendir(dir)))
		return;
	snprintf(prefix, sizeof(prefix), "corral-%d-", owner);
	while ((e = readdir(d)))
		if (e->d_type == DT_DIR && !strncmp(e->d_name, prefix, strlen(prefix)))
			corral__cg_destroy_tree(dirfd(d), e->d_name, false,
			                        corral__now_ns() + 1000000000ull);
	closedir(d);
}

int tl_count_payload_procs(void)
{
	char want[PATH_MAX], path[64], exe[PATH_MAX];
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (!realpath(tl_payload(), want))
		return 0;
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		ssize_t l = readlink(path, exe, sizeof(exe) - 1);
		if (l <= 0)
			continue; /* gone, a zombie or a kernel thread */
		exe[l] = '\0';
		if (!strcmp(exe, want) && tl_pid_alive(pid))
			n++;
	}
	closedir(d);
	return n;
}

double tl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool tl_wait_gone(int pid, int timeout_ms)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i <= timeout_ms; i++) {
		if (!tl_pid_alive(pid))
			return true;
		nanosleep(&ts, NULL);
	}
	return !tl_pid_alive(pid);
}

long long tl_check_pattern(const corral_output_t *out, unsigned long long len)
{
	char *dir = tl_tmpdir(), path[PATH_MAX];
	static char buf[65536];
	unsigned long long k = 0;
	long long bad = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/out", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corral_output_write(out, fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		assert_true(n >= 0);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n && bad < 0; i++, k++)
			if (buf[i] != (char)('a' + (k % 65536) % 26))
				bad = (long long)k;
		if (bad >= 0)
			break;
	}
	close(fd);
	tl_rm_rf(dir);
	free(dir);
	if (bad < 0 && k != len)
		bad = (long long)k;
	return bad;
}

int tl_setup_parent(void **state)
{
	struct tl_parent *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	tl_parent_create(p);
	*state = p;
	return 0;
}

int tl_teardown_parent(void **state)
{
	struct tl_parent *p = *state;
	char pids[PATH_MAX];
	int left, pids_left, procs;

	tl_pids_base(p, pids, sizeof(pids));
	procs = tl_count_payload_procs();
	left = tl_parent_destroy(p);
	pids_left = tl_count_batches_of(pids, (int)getpid());
	if (pids_left)
		tl_remove_batches_of(pids, (int)getpid());
	free(p);
	*state = NULL;
	if (left || pids_left || procs) {
		fprintf(stderr,
		        "LEAK: %d cgroup(s) left below the private parent, %d pids batch "
		        "cgroup(s) in %s, %d payload process(es) alive\n",
		        left, pids_left, pids[0] ? pids : "-", procs);
		return -1;
	}
	return 0;
}
