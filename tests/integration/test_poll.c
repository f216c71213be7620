/* test_poll.c - driving the executor through corral_fd() the way an event
 * loop (the CLI, a binding) does: corral_next(ex, &r, 0) until it returns 0,
 * then poll() on corral_fd(). The fd must become readable whenever
 * corral_next() has work to do: a timeout to enforce, a task to drain after
 * its leader exited, results queued by corral_abort(). A poll() that times
 * out here is a hang of such a caller.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

/* A new executor with n copies of the task argv queued; closed when close_it. */
static corral_executor_t *start(const corral_options_t *o, const char **argv, int n, bool close_it)
{
	corral_executor_t *ex;
	corral_error_t err;
	corral_task_t t;

	corral_task_init(&t);
	t.argv = argv;
	assert_int_equal(corral_executor_new(o, &ex, &err), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(corral_submit(ex, &t, &err), i + 1);
	if (close_it)
		corral_close(ex);
	return ex;
}

/* Run ex to the end through corral_fd(); fail if a poll() waits 10 s.
 * Returns the number of final results; res[] receives up to max of them. */
static int fd_driven(corral_executor_t *ex, corral_result_t *res, int max)
{
	corral_error_t err;
	corral_result_t r;
	int n = 0, rc;

	for (;;) {
		while ((rc = corral_next(ex, &r, 0, &err)) > 0) {
			if (r.final && n < max)
				res[n++] = r;
			else
				corral_result_release(&r);
		}
		if (rc == -ECHILD)
			return n;
		assert_int_equal(rc, 0);
		struct pollfd pfd = {.fd = corral_fd(ex), .events = POLLIN};
		int pr = poll(&pfd, 1, 10000);
		if (pr == 0)
			fail_msg("corral_fd() stayed silent for 10 s with %u running, %llu pending",
			         corral_running(ex), (unsigned long long)corral_pending(ex));
		assert_int_equal(pr, 1);
	}
}

/* The leader exits, a child it left behind is killed and drained: on v1
 * only the recheck timer wakes the executor (no capture pipes here). */
static void drain_after_leader_exit(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_result_t r;
	char *dir = tl_tmpdir(), pidfile[4200];
	const char *argv[] = {P, "daemon", pidfile, "100", NULL};

	snprintf(pidfile, sizeof(pidfile), "%s/daemon.pid", dir);
	tl_options(p, &o);
	ex = start(&o, argv, 1, true);
	double t0 = tl_now();
	assert_int_equal(fd_driven(ex, &r, 1), 1);
	assert_outcome(&r, "ok");
	assert_true(tl_now() - t0 < 2.0);
	corral_result_release(&r);
	corral_executor_free(ex);
	tl_rm_rf(dir);
	free(dir);
}

/* A timeout must be enforced although the task never wakes the executor. */
static void timeout_enforced(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_result_t r;
	const char *argv[] = {P, "sleep", "100", NULL};

	tl_options(p, &o);
	o.timeout_ns = 500000000ull;
	ex = start(&o, argv, 1, true);
	assert_int_equal(fd_driven(ex, &r, 1), 1);
	assert_outcome(&r, "timeout");
	assert_true(r.wall_s >= 0.5 && r.wall_s < 1.5);
	corral_result_release(&r);
	corral_executor_free(ex);
}

/* corral_abort() while tasks run and others are queued. */
static void abort_while_running(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t res[8];
	const char *argv[] = {P, "sleep", "100", NULL};
	int aborted = 0, cancelled = 0;

	tl_options(p, &o);
	o.jobs = 2;
	ex = start(&o, argv, 5, true);
	assert_int_equal(corral_next(ex, &res[0], 0, &err), 0);
	assert_int_equal(corral_running(ex), 2);
	corral_abort(ex);
	int n = fd_driven(ex, res, 8);
	assert_int_equal(n, 5);
	for (int i = 0; i < n; i++) {
		aborted += res[i].outcome == CORRAL_ABORTED;
		cancelled += res[i].outcome == CORRAL_CANCELLED;
		corral_result_release(&res[i]);
	}
	assert_int_equal(aborted, 2);
	assert_int_equal(cancelled, 3);
	corral_executor_free(ex);
}

/* Only queued tasks: corral_abort() cancels them without any process
 * exiting; the fd must still wake the caller. */
static void abort_queued_only(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	const char *argv[] = {P, "sleep", "100", NULL};

	tl_options(p, &o);
	ex = start(&o, argv, 3, false);
	corral_abort(ex); /* nothing started yet */
	corral_close(ex);
	struct pollfd pfd = {.fd = corral_fd(ex), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	int got = 0;
	while (corral_next(ex, &r, 0, &err) > 0) {
		assert_outcome(&r, "cancelled");
		got++;
		corral_result_release(&r);
	}
	assert_int_equal(got, 3);
	assert_int_equal(corral_next(ex, &r, 0, &err), -ECHILD);
	corral_executor_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(drain_after_leader_exit, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(timeout_enforced, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(abort_while_running, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(abort_queued_only, tl_setup_parent, tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
