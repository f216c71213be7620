/* test_outcomes.c - every outcome of design §4 from real kernel facts: own
 * OOM, ancestor OOM, subprocess OOM, external signals, timeout, crash, spawn
 * errors; and what a task leaves behind (daemons, fork bombs).
 *
 * Each test runs under its own private parent cgroup (tl_setup_parent) and
 * fails in its teardown if corral left a cgroup or a payload process behind.
 * The same assertions hold on cgroup v1 (hybrid host) and v2 (the VM).
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

#define MiB                     (1024ull * 1024ull)
#define PAGE                    4096ull
#define ARGV(...)               ((const char *const[]){__VA_ARGS__, NULL})
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

static bool is_v2(const struct tl_parent *p)
{
	return p->mode == CORRAL_CG_V2;
}

static void show(const char *what, const corral_result_t *r)
{
	print_message("# %s: %s status %d exit %d signal %d oom_kills %llu own %d max %llu "
	              "peak %llu wall %.3f: %s\n",
	              what, corral_outcome_name(r->outcome), r->status, r->exit_code, r->signal,
	              (unsigned long long)r->oom_kills, r->own_limit_hit,
	              (unsigned long long)r->memory_max, (unsigned long long)r->memory_peak,
	              r->wall_s, r->sentence);
}

/* A task touching 4x its limit dies at its own limit. */
static void oom_own_limit(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "alloc", "128");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("oom", &r);
	assert_outcome(&r, "oom");
	assert_int_equal(r.status, 137);
	assert_int_equal(r.signal, 9);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.oom_kills, 1);
	assert_true(r.own_limit_hit);
	assert_int_equal(r.memory_max, 32 * MiB);
	/* The peak is the limit, within a few pages (charges come in batches). */
	assert_true(r.memory_peak <= 32 * MiB);
	assert_true(r.memory_peak >= 32 * MiB - 16 * PAGE);
	assert_false(r.pids_limit_hit);
	assert_true(r.pid > 0);
	assert_int_equal(r.attempt, 1);
	assert_true(strstr(r.sentence, "exceeded its memory limit") != NULL);
	corral_result_release(&r);
}

/* The leader survives and exits 0, its child is OOM-killed. */
static void run_child_oom(struct tl_parent *p, bool oom_group, bool allow, bool shell,
                          corral_result_t *r)
{
	const char *sh[] = {"/bin/sh", "-c", "\"$0\" alloc 128; exit 0", P, NULL};
	const char *direct[] = {P, "child-alloc", "128", NULL};
	corral_options_t o;
	corral_task_t t;

	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	o.oom_group = oom_group;
	o.allow_subprocess_oom = allow;
	corral_task_init(&t);
	t.argv = shell ? sh : direct;
	assert_int_equal(tl_run_one(&o, &t, r), 1);
}

static void subprocess_oom(void **state)
{
	struct tl_parent *p = *state;
	corral_result_t r;

	for (int shell = 0; shell < 2; shell++) {
		run_child_oom(p, false, false, shell, &r);
		show(shell ? "subprocess_oom (sh)" : "subprocess_oom", &r);
		assert_outcome(&r, "subprocess_oom");
		assert_int_equal(r.status, 137);
		assert_int_equal(r.exit_code, 0);
		assert_int_equal(r.signal, 0);
		assert_int_equal(r.oom_kills, 1);
		corral_result_release(&r);
	}
}

static void subprocess_oom_allowed(void **state)
{
	struct tl_parent *p = *state;
	corral_result_t r;

	run_child_oom(p, false, true, false, &r);
	show("subprocess_oom allowed", &r);
	assert_outcome(&r, "ok");
	assert_int_equal(r.status, 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.oom_kills, 1); /* still reported */
	corral_result_release(&r);
}

/* With memory.oom.group=1 (v2) the OOM takes the whole task, leader too. */
static void subprocess_oom_group(void **state)
{
	struct tl_parent *p = *state;
	corral_result_t r;

	run_child_oom(p, true, false, false, &r);
	show("child oom, oom_group", &r);
	if (is_v2(p)) {
		assert_outcome(&r, "oom");
		assert_int_equal(r.signal, 9);
		/* Leader and child (the kernel's double count of the victim
		 * is taken out, see cgroup_v2.c). */
		assert_int_equal(r.oom_kills, 2);
	} else {
		/* v1 has no memory.oom.group. */
		assert_outcome(&r, "subprocess_oom");
		assert_int_equal(r.exit_code, 0);
		assert_int_equal(r.oom_kills, 1);
	}
	assert_int_equal(r.status, 137);
	corral_result_release(&r);
}

/* The private parent's limit is smaller than the task's. */
static void oom_outside(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	assert_int_equal(
	    tl_parent_write(p, is_v2(p) ? "memory.max" : "memory.limit_in_bytes", "48M"), 0);
	tl_options(p, &o);
	o.memory_max = 256 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "alloc", "128");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("oom_outside", &r);
	assert_outcome(&r, "oom_outside");
	assert_int_equal(r.status, 137);
	assert_int_equal(r.signal, 9);
	assert_int_equal(r.oom_kills, 1);
	assert_false(r.own_limit_hit);
	assert_int_equal(r.memory_max, 256 * MiB);
	/* Near the ancestor's limit, far below its own. Not exact: the task's
	 * counter is charged before the ancestor's and keeps its watermark
	 * when the ancestor's charge fails (64-page batches; observed up to
	 * 0.2 MiB over on v1, 1.7 MiB over on v2). */
	assert_true(r.memory_peak >= 32 * MiB);
	assert_true(r.memory_peak <= 56 * MiB);
	assert_true(strstr(r.sentence, "ancestor") != NULL);
	corral_result_release(&r);
}

/* Drive ex until a line (a pid) can be read from fd. */
static int read_pid_while_running(corral_executor_t *ex, int fd)
{
	char buf[64];
	size_t len = 0;
	corral_result_t r;
	corral_error_t err;

	for (int i = 0; i < 1000; i++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		assert_int_equal(corral_next(ex, &r, 10, &err), 0);
		if (poll(&pfd, 1, 0) == 1) {
			ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
			assert_true(n > 0);
			len += (size_t)n;
			buf[len] = '\0';
			if (strchr(buf, '\n'))
				return atoi(buf);
		}
	}
	fail_msg("the task did not print its pid within 10 s");
	return -1;
}

static void external_kill(struct tl_parent *p, int sig)
{
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	corral_executor_t *ex;
	corral_error_t err;
	int pfd[2];

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "pid");
	t.stdout_fd = pfd[1];
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	assert_int_equal(corral_submit(ex, &t, &err), 1);
	corral_close(ex);
	int pid = read_pid_while_running(ex, pfd[0]);
	close(pfd[1]);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, sig), 0);
	assert_int_equal(corral_next(ex, &r, 10000, &err), 1);
	show(sig == SIGTERM ? "kill -TERM" : "kill -KILL", &r);
	assert_outcome(&r, "signal");
	assert_int_equal(r.signal, sig);
	assert_int_equal(r.status, 128 + sig);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.oom_kills, 0);
	assert_int_equal(r.pid, pid);
	assert_true(r.final);
	corral_result_release(&r);
	assert_int_equal(corral_next(ex, &r, -1, &err), -ECHILD);
	corral_executor_free(ex);
	close(pfd[0]);
}

static void external_sigterm(void **state)
{
	external_kill(*state, SIGTERM);
}

static void external_sigkill(void **state)
{
	external_kill(*state, SIGKILL);
}

static void timeout(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	tl_options(p, &o);
	o.timeout_ns = 1000000000ull;
	corral_task_init(&t);
	t.argv = ARGV(P, "sleep", "100");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("timeout", &r);
	assert_outcome(&r, "timeout");
	assert_int_equal(r.status, 124);
	assert_int_equal(r.signal, 9);
	assert_true(r.wall_s >= 1.0);
	assert_true(r.wall_s < 1.5);
	corral_result_release(&r);
}

/* timeout(1)'s manners: TERM first, KILL after the grace for a task that
 * ignores it. */
static void timeout_grace(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	const char *polite[] = {P, "sleep", "100", NULL};
	const char *deaf[] = {"/bin/sh", "-c", "trap '' TERM; exec \"$0\" sleep 100", P, NULL};

	tl_options(p, &o);
	o.timeout_ns = 500000000ull;
	o.kill_grace_ns = 500000000ull;
	corral_task_init(&t);
	t.argv = polite;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("timeout, TERM", &r);
	assert_outcome(&r, "timeout");
	assert_int_equal(r.status, 124);
	assert_int_equal(r.signal, SIGTERM);
	assert_true(r.wall_s >= 0.5 && r.wall_s < 1.0); /* TERM, before the KILL */
	corral_result_release(&r);

	t.argv = deaf;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("timeout, TERM ignored", &r);
	assert_outcome(&r, "timeout");
	assert_int_equal(r.status, 124);
	assert_int_equal(r.signal, SIGKILL);
	assert_true(r.wall_s >= 1.0 && r.wall_s < 1.5);
	corral_result_release(&r);
}

static void segv(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	tl_options(p, &o);
	corral_task_init(&t);
	t.argv = ARGV(P, "signal", "11");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("segv", &r);
	assert_outcome(&r, "signal");
	assert_int_equal(r.signal, 11);
	assert_int_equal(r.status, 139);
	assert_int_equal(r.exit_code, -1);
	corral_result_release(&r);
}

static void exit_code(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "exit", "42");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "exit");
	assert_int_equal(r.status, 42);
	assert_int_equal(r.exit_code, 42);
	assert_int_equal(r.signal, 0);
	assert_int_equal(r.oom_kills, 0);
	assert_false(r.own_limit_hit);
	corral_result_release(&r);
}

static volatile sig_atomic_t sigchlds;
static void count_sigchld(int sig)
{
	(void)sig;
	sigchlds++;
}

/* A caller that reaps with waitpid(-1) takes a task's status away (the
 * kernel gives an exec'd task SIGCHLD back, corral.h): the attempt is then
 * an exit with 255, never a success; and the caller did get SIGCHLD. */
static void status_taken_by_caller(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	corral_executor_t *ex;
	corral_error_t err;
	struct sigaction sa, old;
	int stolen = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = count_sigchld;
	sigaction(SIGCHLD, &sa, &old);
	sigchlds = 0;
	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	corral_task_init(&t);
	t.argv = ARGV(P, "sleep-exit", "0.2", "0");
	assert_true(corral_submit(ex, &t, &err) > 0);
	corral_close(ex);
	assert_int_equal(corral_next(ex, &r, 0, &err), 0); /* it starts */
	assert_int_equal(corral_running(ex), 1);
	/* Reap everything, as a careless SIGCHLD handler would, until the
	 * task's status is ours. */
	double until = tl_now() + 10;
	while (!stolen && tl_now() < until) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG | __WALL);
		if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			stolen = 1;
		else
			usleep(1000);
	}
	assert_true(stolen);
	assert_int_equal(corral_next(ex, &r, 10000, &err), 1);
	assert_outcome(&r, "exit");
	assert_int_equal(r.status, 255);
	assert_true(sigchlds >= 1);
	corral_result_release(&r);
	corral_executor_free(ex);
	sigaction(SIGCHLD, &old, NULL);
}

static void spawn_errors(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	char *dir = tl_tmpdir(), file[4200];

	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	corral_task_init(&t);

	/* A path that does not exist: execve fails in the child. */
	t.argv = ARGV("/nonexistent-corral/no-such-binary");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("missing binary", &r);
	assert_outcome(&r, "spawn_error");
	assert_int_equal(r.status, 127);
	assert_int_equal(r.spawn_errno, ENOENT);
	assert_string_equal(r.spawn_step, "exec");
	corral_result_release(&r);

	/* A name not in PATH: found out in the parent, nothing is started. */
	t.argv = ARGV("corral-no-such-command-xyzzy");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("not in PATH", &r);
	assert_outcome(&r, "spawn_error");
	assert_int_equal(r.status, 127);
	assert_int_equal(r.spawn_errno, ENOENT);
	assert_int_equal(r.pid, 0);
	assert_true(strstr(r.sentence, "not found in PATH") != NULL);
	corral_result_release(&r);

	/* A file that is not executable. */
	snprintf(file, sizeof(file), "%s/not-executable", dir);
	tl_write(dir, "not-executable", "#!/bin/sh\nexit 0\n");
	assert_int_equal(chmod(file, 0644), 0);
	t.argv = ARGV(file);
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("not executable", &r);
	assert_outcome(&r, "spawn_error");
	assert_int_equal(r.status, 126);
	assert_int_equal(r.spawn_errno, EACCES);
	corral_result_release(&r);

	tl_rm_rf(dir);
	free(dir);
}

/* A double-forked daemon (setsid) dies with its task. */
static void daemon_killed(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	char *dir = tl_tmpdir(), pidfile[4200], buf[32] = "";

	snprintf(pidfile, sizeof(pidfile), "%s/daemon.pid", dir);
	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "daemon", pidfile, "100");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("daemon", &r);
	assert_outcome(&r, "ok");
	assert_int_equal(r.status, 0);
	corral_result_release(&r);

	FILE *f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	int pid = atoi(buf);
	assert_true(pid > 0);
	/* Gone when the result is delivered, not some time later. */
	assert_false(tl_pid_alive(pid));
	tl_rm_rf(dir);
	free(dir);
}

/* A fork bomb stops at pids.max; nothing of it survives the task. */
static void fork_bomb(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	char out[64] = "";

	tl_options(p, &o);
	o.memory_max = 256 * MiB;
	o.pids_max = 32;
	corral_task_init(&t);
	t.argv = ARGV(P, "forkbomb", "200");
	t.stdout_fd = CORRAL_FD_CAPTURE;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("forkbomb", &r);
	assert_outcome(&r, "ok");
	assert_true(r.pids_limit_hit);
	assert_true(r.out.fd < 0 && r.out.data_len < sizeof(out));
	memcpy(out, r.out.data, r.out.data_len);
	/* The leader and 31 children fill pids.max = 32. */
	assert_string_equal(out, "failed 169\n");
	assert_int_equal(tl_count_payload_procs(), 0);
	corral_result_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(oom_own_limit, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(subprocess_oom, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(subprocess_oom_allowed, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(subprocess_oom_group, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(oom_outside, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(external_sigterm, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(external_sigkill, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(timeout, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(timeout_grace, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(segv, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(exit_code, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(status_taken_by_caller, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(spawn_errors, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(daemon_killed, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(fork_bomb, tl_setup_parent, tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
