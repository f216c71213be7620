/* test_halt.c - the batch verdict and the halt policies (design §1.3, §5)
 * with real tasks, and corral_abort() in the middle of a batch.
 *
 * The batch: 20 tasks; task 4 fails slowly (exit 5 after 0.4 s), task 7
 * fails at once (exit 3), the others succeed after a short sleep. With
 * "ordered" the verdict must be task 4 for any -j and any timing, although
 * task 7's failure is usually observed first.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define NTASKS                  20
#define SLOW_FAIL               4
#define FAST_FAIL               7
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

/* other_sleep: how long the succeeding tasks sleep. */
static void make_batch(corral_task_t *t, const char *(*argv)[5], const char *other_sleep,
                       const char *slow_sleep)
{
	for (int i = 0; i < NTASKS; i++) {
		int seq = i + 1;
		argv[i][0] = P;
		if (seq == SLOW_FAIL) {
			argv[i][1] = "sleep-exit";
			argv[i][2] = slow_sleep;
			argv[i][3] = "5";
		} else if (seq == FAST_FAIL) {
			argv[i][1] = "exit";
			argv[i][2] = "3";
			argv[i][3] = NULL;
		} else {
			argv[i][1] = "sleep-exit";
			argv[i][2] = other_sleep;
			argv[i][3] = "0";
		}
		argv[i][4] = NULL;
		corral_task_init(&t[i]);
		t[i].argv = argv[i];
		t[i].data = (void *)(uintptr_t)seq;
	}
}

/* Final results by seq; fails on duplicates and on non-final results. */
static void by_seq(corral_result_t *res, int n, corral_result_t **out)
{
	memset(out, 0, sizeof(*out) * (NTASKS + 1));
	assert_int_equal(n, NTASKS);
	for (int i = 0; i < n; i++) {
		assert_true(res[i].final);
		assert_true(res[i].seq >= 1 && res[i].seq <= NTASKS);
		assert_null(out[res[i].seq]);
		assert_int_equal((uintptr_t)res[i].data, res[i].seq);
		out[res[i].seq] = &res[i];
	}
}

static void release_all(corral_result_t *res, int n)
{
	for (int i = 0; i < n; i++)
		corral_result_release(&res[i]);
}

static void ordered_is_deterministic(void **state)
{
	struct tl_parent *p = *state;
	const unsigned jobs[] = {1, 2, 8};
	const char *argv[NTASKS][5];
	corral_task_t t[NTASKS];
	corral_result_t res[NTASKS + 4], *s[NTASKS + 1];
	corral_summary_t sum;
	corral_options_t o;

	make_batch(t, argv, "0.05", "0.4");
	for (size_t j = 0; j < 3; j++) {
		for (int run = 0; run < 3; run++) {
			tl_options(p, &o);
			o.jobs = jobs[j];
			o.memory_max = 64 * MiB;
			o.halt = CORRAL_HALT_ORDERED;
			int n = tl_run_batch(&o, t, NTASKS, res, NTASKS + 4, &sum);
			by_seq(res, n, s);
			print_message("# ordered -j%u run %d: verdict %llu (%s, %d); ok %llu exit "
			              "%llu cancelled %llu aborted %llu\n",
			              jobs[j], run, (unsigned long long)sum.verdict_seq,
			              corral_outcome_name(sum.verdict), sum.exit_code,
			              (unsigned long long)sum.count[CORRAL_OK],
			              (unsigned long long)sum.count[CORRAL_EXIT],
			              (unsigned long long)sum.count[CORRAL_CANCELLED],
			              (unsigned long long)sum.count[CORRAL_ABORTED]);
			assert_int_equal(sum.verdict_seq, SLOW_FAIL);
			assert_int_equal(sum.verdict, CORRAL_EXIT);
			assert_int_equal(sum.exit_code, 5);
			assert_false(sum.aborted);
			assert_int_equal(sum.tasks, NTASKS);
			assert_true(strstr(sum.sentence, "task 4 failed") != NULL);
			/* Everything before the verdict ran to its end. */
			for (int q = 1; q < SLOW_FAIL; q++) {
				assert_outcome(s[q], "ok");
				assert_int_equal(s[q]->status, 0);
			}
			assert_outcome(s[SLOW_FAIL], "exit");
			assert_int_equal(s[SLOW_FAIL]->status, 5);
			/* After it: cancelled, aborted, or finished before the halt. */
			uint64_t cut = 0;
			for (int q = SLOW_FAIL + 1; q <= NTASKS; q++) {
				corral_outcome_t oc = s[q]->outcome;
				if (oc == CORRAL_CANCELLED || oc == CORRAL_ABORTED) {
					assert_int_equal(s[q]->status, -1);
					cut++;
				} else if (q == FAST_FAIL) {
					assert_outcome(s[q], "exit");
					assert_int_equal(s[q]->status, 3);
				} else {
					assert_outcome(s[q], "ok");
				}
				if (oc == CORRAL_CANCELLED) {
					assert_int_equal(s[q]->attempt, 0);
					assert_int_equal(s[q]->pid, 0);
				}
			}
			/* How many were cut depends on the timing (fast tasks that
			 * ended before the halt freed slots for later ones); the
			 * promise is only the verdict and the shape above. */
			(void)cut;
			if (jobs[j] == 1) {
				/* One at a time: exactly `set -e`. */
				assert_int_equal(sum.count[CORRAL_CANCELLED], NTASKS - SLOW_FAIL);
				assert_int_equal(sum.count[CORRAL_ABORTED], 0);
				assert_int_equal(sum.attempts, SLOW_FAIL);
			}
			release_all(res, n);
		}
	}
}

static void never_runs_everything(void **state)
{
	struct tl_parent *p = *state;
	const char *argv[NTASKS][5];
	corral_task_t t[NTASKS];
	corral_result_t res[NTASKS + 4], *s[NTASKS + 1];
	corral_summary_t sum;
	corral_options_t o;

	make_batch(t, argv, "0.05", "0.4");
	tl_options(p, &o);
	o.jobs = 8;
	o.memory_max = 64 * MiB;
	o.halt = CORRAL_HALT_NEVER;
	int n = tl_run_batch(&o, t, NTASKS, res, NTASKS + 4, &sum);
	by_seq(res, n, s);
	assert_int_equal(sum.verdict_seq, SLOW_FAIL);
	assert_int_equal(sum.exit_code, 5);
	assert_int_equal(sum.count[CORRAL_OK], NTASKS - 2);
	assert_int_equal(sum.count[CORRAL_EXIT], 2);
	assert_int_equal(sum.count[CORRAL_CANCELLED], 0);
	assert_int_equal(sum.count[CORRAL_ABORTED], 0);
	assert_int_equal(sum.attempts, NTASKS);
	assert_int_equal(s[FAST_FAIL]->status, 3);
	assert_int_equal(s[SLOW_FAIL]->status, 5);
	release_all(res, n);
}

static void now_kills_everything(void **state)
{
	struct tl_parent *p = *state;
	const char *argv[NTASKS][5];
	corral_task_t t[NTASKS];
	corral_result_t res[NTASKS + 4], *s[NTASKS + 1];
	corral_summary_t sum;
	corral_options_t o;

	/* The others sleep long enough that task 7's instant failure is
	 * surely observed while tasks 1-8 still run. */
	make_batch(t, argv, "5", "5");
	tl_options(p, &o);
	o.jobs = 8;
	o.memory_max = 64 * MiB;
	o.halt = CORRAL_HALT_NOW;
	double t0 = tl_now();
	int n = tl_run_batch(&o, t, NTASKS, res, NTASKS + 4, &sum);
	double took = tl_now() - t0;
	by_seq(res, n, s);
	print_message("# now: verdict %llu in %.3f s; aborted %llu cancelled %llu\n",
	              (unsigned long long)sum.verdict_seq, took,
	              (unsigned long long)sum.count[CORRAL_ABORTED],
	              (unsigned long long)sum.count[CORRAL_CANCELLED]);
	assert_int_equal(sum.verdict_seq, FAST_FAIL);
	assert_int_equal(sum.verdict, CORRAL_EXIT);
	assert_int_equal(sum.exit_code, 3);
	assert_int_equal(sum.count[CORRAL_EXIT], 1);
	assert_int_equal(sum.count[CORRAL_OK], 0);
	assert_int_equal(sum.count[CORRAL_ABORTED], 7);            /* 1-6 and 8 */
	assert_int_equal(sum.count[CORRAL_CANCELLED], NTASKS - 8); /* 9-20 */
	for (int q = 1; q <= 8; q++)
		if (q != FAST_FAIL) {
			assert_outcome(s[q], "aborted");
			assert_int_equal(s[q]->signal, SIGKILL);
			assert_true(s[q]->pid > 0);
		}
	for (int q = 9; q <= NTASKS; q++)
		assert_outcome(s[q], "cancelled");
	assert_true(took < 4.5); /* the others sleep 5 s */
	release_all(res, n);
}

/* corral_abort(): running tasks aborted, queued ones cancelled. */
static void abort_mid_batch(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	corral_summary_t sum;
	const char *argv[] = {P, "sleep", "100", NULL};
	int aborted = 0, cancelled = 0, i;

	tl_options(p, &o);
	o.jobs = 3;
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = argv;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(corral_submit(ex, &t, &err), i + 1);
	for (i = 0; i < 100 && corral_running(ex) < 3; i++)
		assert_int_equal(corral_next(ex, &r, 10, &err), 0);
	assert_int_equal(corral_running(ex), 3);
	assert_false(corral_halted(ex));
	double t0 = tl_now();
	corral_abort(ex);
	corral_abort(ex); /* idempotent */
	assert_true(corral_halted(ex));
	/* Submissions after the halt are cancelled at once. */
	assert_int_equal(corral_submit(ex, &t, &err), 11);
	corral_close(ex);
	while ((i = corral_next(ex, &r, 5000, &err)) > 0) {
		assert_true(r.final);
		if (r.outcome == CORRAL_ABORTED) {
			aborted++;
			assert_true(r.seq <= 3);
			assert_int_equal(r.status, -1);
			assert_int_equal(r.attempt, 1);
			assert_true(r.pid > 0);
			assert_false(tl_pid_alive(r.pid));
		} else {
			assert_outcome(&r, "cancelled");
			cancelled++;
			assert_true(r.seq > 3);
			assert_int_equal(r.attempt, 0);
			assert_int_equal(r.pid, 0);
		}
		corral_result_release(&r);
	}
	assert_int_equal(i, -ECHILD);
	double took = tl_now() - t0;
	print_message("# abort: %d aborted, %d cancelled in %.3f s\n", aborted, cancelled, took);
	assert_int_equal(aborted, 3);
	assert_int_equal(cancelled, 8);
	assert_true(took < 2.0);
	corral_summary(ex, &sum);
	assert_true(sum.aborted);
	assert_int_equal(sum.exit_code, 125);
	assert_int_equal(sum.verdict_seq, 0);
	assert_int_equal(sum.count[CORRAL_ABORTED], 3);
	assert_int_equal(sum.count[CORRAL_CANCELLED], 8);
	assert_int_equal(corral_pending(ex), 0);
	corral_executor_free(ex);
}

/* Abort in the same breath as the spawn: the children may not have joined
 * their cgroups yet (v1 joins through cgroup.procs after the fork), and must
 * die all the same (this used to leave them running to their end). */
static void abort_right_after_start(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	const char *argv[] = {P, "sleep", "100", NULL};

	for (int round = 0; round < 5; round++) {
		int aborted = 0, rc;
		tl_options(p, &o);
		o.jobs = 4;
		o.memory_max = 64 * MiB;
		corral_task_init(&t);
		t.argv = argv;
		assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
		for (int i = 0; i < 4; i++)
			assert_int_equal(corral_submit(ex, &t, &err), i + 1);
		corral_close(ex);
		assert_int_equal(corral_next(ex, &r, 0, &err), 0);
		assert_int_equal(corral_running(ex), 4);
		double t0 = tl_now();
		corral_abort(ex);
		while ((rc = corral_next(ex, &r, 3000, &err)) > 0) {
			assert_outcome(&r, "aborted");
			aborted++;
			corral_result_release(&r);
		}
		assert_int_equal(rc, -ECHILD);
		assert_int_equal(aborted, 4);
		assert_true(tl_now() - t0 < 2.0);
		corral_executor_free(ex);
	}
}

/* corral_executor_free() with tasks still running and queued. */
static void free_while_running(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	const char *argv[] = {P, "sleep", "100", NULL};

	tl_options(p, &o);
	o.jobs = 2;
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = argv;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(corral_submit(ex, &t, &err), i + 1);
	for (int i = 0; i < 100 && corral_running(ex) < 2; i++)
		assert_int_equal(corral_next(ex, &r, 10, &err), 0);
	assert_int_equal(corral_running(ex), 2);
	double t0 = tl_now();
	corral_executor_free(ex);
	double took = tl_now() - t0;
	print_message("# free while running: %.3f s\n", took);
	assert_true(took < 2.0);
}

/* corral_task_t.seq: a caller's own numbers (a resumed batch keeps its
 * input's). Tasks 3, 5, 9, 12: 5 fails slowly, 9 at once; "ordered" still
 * gives 5, the results carry the given numbers, 12 is cut, and a number not
 * above the last one is refused. */
static void own_numbers(void **state)
{
	struct tl_parent *p = *state;
	static const uint64_t seqs[] = {3, 5, 9, 12};
	const char *argv[4][5] = {{P, "sleep-exit", "0.05", "0", NULL},
	                          {P, "sleep-exit", "0.4", "5", NULL},
	                          {P, "exit", "3", NULL, NULL},
	                          {P, "sleep-exit", "5", "0", NULL}};
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_options_t o;
	corral_result_t r;
	corral_summary_t sum;
	int rc, got = 0;

	tl_options(p, &o);
	o.jobs = 4;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	for (int i = 0; i < 4; i++) {
		corral_task_t t;
		corral_task_init(&t);
		t.argv = argv[i];
		t.seq = seqs[i];
		t.data = (void *)(uintptr_t)seqs[i];
		assert_int_equal(corral_submit(ex, &t, &err), (int64_t)seqs[i]);
	}
	corral_task_t late;
	corral_task_init(&late);
	late.argv = argv[0];
	late.seq = 12;
	assert_int_equal(corral_submit(ex, &late, &err), -EINVAL);
	assert_int_equal(corral_pending(ex), 4);
	late.seq = 0; /* the next number: 13 */
	assert_int_equal(corral_submit(ex, &late, &err), 13);
	corral_close(ex);
	while ((rc = corral_next(ex, &r, -1, &err)) > 0) {
		assert_true(r.final);
		assert_int_equal((uintptr_t)r.data ? (uintptr_t)r.data : 13, r.seq);
		if (r.seq == 12 || r.seq == 13)
			assert_true(r.outcome == CORRAL_CANCELLED || r.outcome == CORRAL_ABORTED);
		char want[32];
		snprintf(want, sizeof(want), "task %llu ", (unsigned long long)r.seq);
		assert_true(!strncmp(r.sentence, want, strlen(want)));
		corral_result_release(&r);
		got++;
	}
	assert_int_equal(rc, -ECHILD);
	assert_int_equal(got, 5);
	corral_summary(ex, &sum);
	assert_int_equal(sum.tasks, 5);
	assert_int_equal(sum.verdict_seq, 5);
	assert_int_equal(sum.exit_code, 5);
	corral_executor_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(ordered_is_deterministic, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(never_runs_everything, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(now_kills_everything, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(abort_mid_batch, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(abort_right_after_start, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(own_numbers, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(free_while_running, tl_setup_parent,
	                                    tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
