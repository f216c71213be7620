/* test_cleanup.c - nothing outlives corral (design §1.4, §3): a SIGKILLed
 * driver's tasks and cgroups are removed by the watchdog within a second;
 * stale batch cgroups of dead owners are swept by the next executor, live
 * ones are left alone; with no cgroup_parent the batch goes beneath the
 * caller's own cgroup (on v2 through <batch>/supervisor, which corral must
 * leave again, also when it is SIGKILLed).
 *
 * The own-cgroup tests run the driver in a child that first moves itself
 * into <private parent>/own: everything stays inside the private parent.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#define MiB   (1024ull * 1024ull)
#define NPIDS (1 + 1 + 3 + 31) /* the pids the driver's four tasks print */

static const char *P;

/* Read up to max pid lines from fd within timeout_ms. Returns the count. */
static int read_pids(int fd, int *pids, int max, int timeout_ms)
{
	char buf[512];
	size_t len = 0;
	int n = 0;
	double until = tl_now() + timeout_ms / 1000.0;

	while (n < max && tl_now() < until) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) != 1)
			continue;
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		char *nl;
		while (n < max && (nl = strchr(buf, '\n'))) {
			*nl = '\0';
			pids[n++] = atoi(buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
	return n;
}

/* The driver: runs an executor beneath parent, its tasks print their pids
 * on out_fd; never returns. Exit codes tell the test what went wrong. */
__attribute__((noreturn)) static void driver(const struct tl_parent *p, int out_fd)
{
	const char *one[] = {P, "pid", NULL};
	const char *tree[] = {P, "pid-tree", "2", NULL};
	const char *forest[] = {P, "pid-tree", "30", NULL};
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;

	tl_options(p, &o);
	o.jobs = 4;
	o.memory_max = 64 * MiB;
	if (corral_executor_new(&o, &ex, &err) < 0)
		_exit(2);
	corral_task_init(&t);
	t.stdout_fd = out_fd;
	t.argv = one;
	if (corral_submit(ex, &t, &err) < 0 || corral_submit(ex, &t, &err) < 0)
		_exit(3);
	/* Leaders with children: the children outlive the leader (which dies
	 * of PR_SET_PDEATHSIG with the driver); only the watchdog kills them. */
	t.argv = tree;
	if (corral_submit(ex, &t, &err) < 0)
		_exit(3);
	t.argv = forest;
	if (corral_submit(ex, &t, &err) < 0)
		_exit(3);
	corral_close(ex);
	for (;;)
		if (corral_next(ex, &r, -1, &err) < 0)
			_exit(4);
}

static void sigkill_of_driver(void **state)
{
	struct tl_parent *p = *state;
	char pids_base[PATH_MAX];
	int fds[2], pids[NPIDS], status;

	tl_pids_base(p, pids_base, sizeof(pids_base));
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid_t drv = fork();
	assert_true(drv >= 0);
	if (drv == 0) {
		close(fds[0]);
		driver(p, fds[1]);
	}
	close(fds[1]);
	int n = read_pids(fds[0], pids, NPIDS, 20000);
	close(fds[0]);
	if (n != NPIDS) {
		kill(drv, SIGKILL);
		waitpid(drv, NULL, 0);
		fail_msg("the driver's tasks printed %d pids, not %d", n, NPIDS);
	}
	for (int i = 0; i < n; i++)
		assert_true(tl_pid_alive(pids[i]));
	assert_int_equal(tl_count_corral_cgroups(p->dir), 1);
	if (pids_base[0])
		assert_int_equal(tl_count_batches_of(pids_base, drv), 1);

	double t0 = tl_now();
	assert_int_equal(kill(drv, SIGKILL), 0);
	assert_int_equal(waitpid(drv, &status, 0), drv);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	double procs_gone = -1, cgroups_gone = -1;
	while (tl_now() - t0 < 5.0 && (procs_gone < 0 || cgroups_gone < 0)) {
		if (procs_gone < 0) {
			bool any = false;
			for (int i = 0; i < n; i++)
				any |= tl_pid_alive(pids[i]);
			if (!any)
				procs_gone = tl_now() - t0;
		}
		if (cgroups_gone < 0 && tl_count_corral_cgroups(p->dir) == 0 &&
		    tl_count_batches_of(pids_base, drv) == 0)
			cgroups_gone = tl_now() - t0;
		usleep(1000);
	}
	print_message("# SIGKILL of the driver: task processes gone after %.3f s, cgroups "
	              "after %.3f s\n",
	              procs_gone, cgroups_gone);
	assert_true(procs_gone >= 0 && procs_gone <= 1.0);
	assert_true(cgroups_gone >= 0 && cgroups_gone <= 1.0);
	/* The watchdog has exited (a zombie of init at most). */
	assert_int_equal(tl_count_payload_procs(), 0);
}

/* A pid that does not exist now, above pid_max / 2. */
static int unused_pid(void)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	int max = 32768;

	if (f) {
		if (fscanf(f, "%d", &max) != 1)
			max = 32768;
		fclose(f);
	}
	for (int pid = max / 2 + 777; pid < max; pid++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (kill(pid, 0) < 0 && errno == ESRCH && access(path, F_OK) < 0)
			return pid;
	}
	fail_msg("no unused pid");
	return -1;
}

static unsigned long long starttime(int pid)
{
	char path[64], buf[1024];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	assert_non_null(s);
	s++; /* the space before field 3 */
	for (int field = 3; field < 22; field++)
		s = strchr(s + 1, ' ');
	return strtoull(s + 1, NULL, 10);
}

static bool dir_exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void stale_batches_swept(void **state)
{
	struct tl_parent *p = *state;
	char pids_base[PATH_MAX], dead[96], reused[96], live[96], sub[128];
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	int pid = unused_pid();
	struct stat nsst;
	unsigned ns = stat("/proc/self/ns/pid", &nsst) == 0 ? (unsigned)nsst.st_ino : 0;
	char other_ns[96];

	tl_pids_base(p, pids_base, sizeof(pids_base));
	/* Owner gone. */
	snprintf(dead, sizeof(dead), "corral-%d-12345-%08xdeadbeef", pid, ns);
	/* Owner's pid reused by another process (pid 1, other start time). */
	snprintf(reused, sizeof(reused), "corral-1-%llu-%08x0badf00d", starttime(1) + 4242, ns);
	/* Owner alive: this process. */
	snprintf(live, sizeof(live), "corral-%d-%llu-%08x0000abcd", (int)getpid(),
	         starttime((int)getpid()), ns);
	/* Owner in another pid namespace: never ours to judge, even if its pid
	 * means nothing here. */
	snprintf(other_ns, sizeof(other_ns), "corral-%d-12345-%08xdeadbeef", pid, ns ^ 0x5a5a5a5a);
	tl_mkdir_p(p->dir, other_ns);
	snprintf(sub, sizeof(sub), "%s/t1-a1", dead);
	tl_mkdir_p(p->dir, sub);
	tl_mkdir_p(p->dir, reused);
	tl_mkdir_p(p->dir, live);
	assert_true(dir_exists(p->dir, sub));
	if (pids_base[0]) {
		/* v1: the pids batch of the dead owner, beside other cgroups. */
		tl_mkdir_p(pids_base, sub);
		assert_true(dir_exists(pids_base, sub));
	}

	tl_options(p, &o);
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	assert_false(dir_exists(p->dir, dead));
	assert_false(dir_exists(p->dir, reused));
	assert_true(dir_exists(p->dir, live));
	assert_true(dir_exists(p->dir, other_ns));
	if (pids_base[0])
		assert_false(dir_exists(pids_base, dead));
	corral_executor_free(ex);
	/* Our live one is still there: ours to remove. */
	assert_true(dir_exists(p->dir, live));
	char path[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/%s", p->dir, live);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/%s", p->dir, other_ns);
	assert_int_equal(rmdir(path), 0);
}

/* Read the cgroup path of this process in the hierarchy of mode (v2: the
 * "0::" line, v1: the memory line). */
static void self_cgroup(corral_cgroup_mode_t mode, char *out, size_t size)
{
	char line[4200];
	FILE *f = fopen("/proc/self/cgroup", "r");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		bool want = mode == CORRAL_CG_V2 ? !strncmp(line, "0:", 2) && c1 + 1 == c2
		                                 : strstr(c1 + 1, "memory") != NULL;
		if (want)
			snprintf(out, size, "%s", c2 + 1);
	}
	if (f)
		fclose(f);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* The child's part: move into <parent>/own and run an executor there with
 * no cgroup_parent. With out_fd >= 0 it also starts tasks that print their
 * pids on out_fd and never ends (the test SIGKILLs it). Returns an exit
 * code: 0 when everything was as expected. */
static int own_cgroup_driver(const struct tl_parent *p, int out_fd)
{
	const char *oom[] = {P, "alloc", "128", NULL};
	const char *ok[] = {P, "exit", "0", NULL};
	const char *tree[] = {P, "pid-tree", "2", NULL};
	char own[PATH_MAX + 8], path[4200];
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	int bad = 0;

	snprintf(own, sizeof(own), "%s/own", p->dir);
	snprintf(path, sizeof(path), "%s/cgroup.procs", own);
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "0\n") < 0 || fclose(f) != 0)
		return 10;
	corral_options_init(&o);
	o.jobs = 4;
	o.memory_max = 32 * MiB;
	o.halt = CORRAL_HALT_NEVER; /* task 1's OOM must not cut the others */
	if (corral_executor_new(&o, &ex, &err) < 0) {
		fprintf(stderr, "own cgroup: %s\n", err.msg);
		return 11;
	}
	self_cgroup(p->mode, path, sizeof(path));
	if (p->mode == CORRAL_CG_V2 && !ends_with(path, "/supervisor"))
		return 12; /* v2: the no-internal-process rule needs the move */
	if (p->mode != CORRAL_CG_V2 && !ends_with(path, "/own"))
		return 12;
	if (tl_count_corral_cgroups(own) != 1)
		return 13;
	corral_task_init(&t);
	t.argv = oom;
	corral_submit(ex, &t, &err);
	t.argv = ok;
	corral_submit(ex, &t, &err);
	if (out_fd >= 0) {
		t.argv = tree;
		t.stdout_fd = out_fd;
		corral_submit(ex, &t, &err);
	}
	corral_close(ex);
	while (corral_next(ex, &r, -1, &err) > 0) {
		if ((r.seq == 1 && r.outcome != CORRAL_OOM) ||
		    (r.seq == 2 && r.outcome != CORRAL_OK) || r.seq == 3) {
			bad = r.seq == 1 ? 14 : r.seq == 2 ? 15 : 18;
			fprintf(stderr, "own cgroup driver: %s (%s)\n", r.sentence,
			        corral_outcome_name(r.outcome));
		}
		corral_result_release(&r);
	}
	corral_executor_free(ex);
	if (bad)
		return bad;
	self_cgroup(p->mode, path, sizeof(path));
	if (!ends_with(path, "/own"))
		return 16; /* back where it started */
	if (tl_count_corral_cgroups(own) != 0)
		return 17;
	return 0;
}

/* Wait (bounded) until <parent>/own is empty, then remove it. */
static void remove_own(const struct tl_parent *p)
{
	char own[PATH_MAX + 8], procs[PATH_MAX + 32], buf[64];

	snprintf(own, sizeof(own), "%s/own", p->dir);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", own);
	for (int i = 0; i < 2000; i++) {
		FILE *f = fopen(procs, "r");
		bool empty = !f || !fgets(buf, sizeof(buf), f);
		if (f)
			fclose(f);
		if (empty)
			break;
		usleep(1000);
	}
	assert_int_equal(rmdir(own), 0);
}

static void own_cgroup_as_base(void **state)
{
	struct tl_parent *p = *state;
	char pids_base[PATH_MAX];
	int status;

	tl_mkdir_p(p->dir, "own");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(own_cgroup_driver(p, -1));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	remove_own(p);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	tl_pids_base(p, pids_base, sizeof(pids_base));
	assert_int_equal(tl_count_batches_of(pids_base, pid), 0);
}

/* The same driver SIGKILLed while it sits in <batch>/supervisor: the
 * watchdog (in the supervisor too) must leave it and remove everything. */
static void own_cgroup_sigkill(void **state)
{
	struct tl_parent *p = *state;
	char own[PATH_MAX + 8], pids_base[PATH_MAX];
	int fds[2], pids[3], status;

	tl_pids_base(p, pids_base, sizeof(pids_base));
	snprintf(own, sizeof(own), "%s/own", p->dir);
	tl_mkdir_p(p->dir, "own");
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid_t drv = fork();
	assert_true(drv >= 0);
	if (drv == 0) {
		close(fds[0]);
		_exit(own_cgroup_driver(p, fds[1]));
	}
	close(fds[1]);
	int n = read_pids(fds[0], pids, 3, 20000);
	close(fds[0]);
	if (n != 3) {
		kill(drv, SIGKILL);
		waitpid(drv, &status, 0);
		remove_own(p);
		fail_msg("the driver's tasks printed %d pids, not 3 (driver status 0x%x)", n,
		         status);
	}
	double t0 = tl_now();
	assert_int_equal(kill(drv, SIGKILL), 0);
	assert_int_equal(waitpid(drv, &status, 0), drv);
	double gone = -1;
	while (tl_now() - t0 < 5.0 && gone < 0) {
		bool any = false;
		for (int i = 0; i < n; i++)
			any |= tl_pid_alive(pids[i]);
		if (!any && tl_count_corral_cgroups(own) == 0 &&
		    tl_count_batches_of(pids_base, drv) == 0)
			gone = tl_now() - t0;
		usleep(1000);
	}
	print_message("# SIGKILL of a driver in its own cgroup (%s): clean after %.3f s\n",
	              p->mode == CORRAL_CG_V2 ? "v2, supervisor" : "v1", gone);
	remove_own(p);
	assert_true(gone >= 0 && gone <= 1.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(sigkill_of_driver, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(stale_batches_swept, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(own_cgroup_as_base, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(own_cgroup_sigkill, tl_setup_parent,
	                                    tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
