/* test_retry.c - retries with memory growth and admission (design §5): an
 * OOM-killed attempt is re-run with its limit multiplied, up to the ceiling;
 * other failures are retried only when retry_on says so; a retried failure
 * does not halt the batch; the memory budget bounds what runs at once.
 */
#include <stdio.h>
#include <string.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

static void release_all(corral_result_t *res, int n)
{
	for (int i = 0; i < n; i++)
		corral_result_release(&res[i]);
}

/* 48 MiB do not fit in 32 MiB, but in 2 x 32 MiB. */
static void oom_then_grown_ok(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t res[4];
	corral_summary_t sum;
	const char *argv[] = {P, "alloc", "48", NULL};

	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	o.retries = 1;
	o.memory_growth = 2.0;
	corral_task_init(&t);
	t.argv = argv;
	int n = tl_run_batch(&o, &t, 1, res, 4, &sum);
	assert_int_equal(n, 2);
	print_message("# retry: attempt 1 %s (max %llu, peak %llu), attempt 2 %s (max %llu, "
	              "peak %llu)\n",
	              corral_outcome_name(res[0].outcome), (unsigned long long)res[0].memory_max,
	              (unsigned long long)res[0].memory_peak, corral_outcome_name(res[1].outcome),
	              (unsigned long long)res[1].memory_max,
	              (unsigned long long)res[1].memory_peak);
	assert_outcome(&res[0], "oom");
	assert_false(res[0].final);
	assert_int_equal(res[0].attempt, 1);
	assert_int_equal(res[0].seq, 1);
	assert_int_equal(res[0].memory_max, 32 * MiB);
	assert_int_equal(res[0].status, 137);
	assert_outcome(&res[1], "ok");
	assert_true(res[1].final);
	assert_int_equal(res[1].attempt, 2);
	assert_int_equal(res[1].seq, 1);
	assert_int_equal(res[1].memory_max, 64 * MiB);
	assert_int_equal(res[1].oom_kills, 0); /* a delta of the new attempt's cgroup */
	assert_true(res[1].memory_peak >= 48 * MiB);
	assert_true(strstr(res[1].sentence, "[attempt 2]") != NULL);
	assert_int_equal(sum.tasks, 1);
	assert_int_equal(sum.attempts, 2);
	assert_int_equal(sum.count[CORRAL_OK], 1);
	assert_int_equal(sum.count[CORRAL_OOM], 0); /* only final outcomes count */
	assert_int_equal(sum.exit_code, 0);
	assert_int_equal(sum.verdict_seq, 0);
	release_all(res, n);
}

/* The ceiling caps the growth: 32 -> 40 MiB is still too small. */
static void growth_capped(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t res[4];
	corral_summary_t sum;
	const char *argv[] = {P, "alloc", "48", NULL};

	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	o.retries = 2;
	o.memory_ceiling = 40 * MiB;
	corral_task_init(&t);
	t.argv = argv;
	int n = tl_run_batch(&o, &t, 1, res, 4, &sum);
	assert_int_equal(n, 3);
	assert_int_equal(res[0].memory_max, 32 * MiB);
	assert_int_equal(res[1].memory_max, 40 * MiB);
	assert_int_equal(res[2].memory_max, 40 * MiB);
	for (int i = 0; i < 3; i++) {
		assert_outcome(&res[i], "oom");
		assert_int_equal(res[i].attempt, i + 1);
		assert_true(res[i].final == (i == 2));
	}
	assert_true(strstr(res[2].sentence, "[attempt 3]") != NULL);
	assert_int_equal(sum.verdict_seq, 1);
	assert_int_equal(sum.verdict, CORRAL_OOM);
	assert_int_equal(sum.exit_code, 137);
	assert_int_equal(sum.attempts, 3);
	release_all(res, n);
}

/* retry_on defaults to oom: an exit is not retried; with "exit" it is. */
static void retry_on(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t res[4];
	corral_summary_t sum;
	const char *argv[] = {P, "exit", "3", NULL};

	tl_options(p, &o);
	o.retries = 2;
	corral_task_init(&t);
	t.argv = argv;
	int n = tl_run_batch(&o, &t, 1, res, 4, &sum);
	assert_int_equal(n, 1);
	assert_outcome(&res[0], "exit");
	assert_true(res[0].final);
	release_all(res, n);

	o.retry_on = CORRAL_RETRY_EXIT;
	n = tl_run_batch(&o, &t, 1, res, 4, &sum);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_outcome(&res[i], "exit");
		assert_int_equal(res[i].memory_max, CORRAL_UNLIMITED); /* no growth */
	}
	assert_true(res[2].final);
	assert_int_equal(sum.exit_code, 3);
	release_all(res, n);
}

/* Only a final failure halts: task 2 needs a retry, then all succeed. */
static void retry_does_not_halt(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t[3];
	corral_result_t res[8];
	corral_summary_t sum;
	const char *small[] = {P, "sleep-exit", "0.2", "0", NULL};
	const char *big[] = {P, "alloc", "48", NULL};

	tl_options(p, &o);
	o.jobs = 3;
	o.memory_max = 32 * MiB;
	o.retries = 1;
	for (int i = 0; i < 3; i++) {
		corral_task_init(&t[i]);
		t[i].argv = i == 1 ? big : small;
	}
	int n = tl_run_batch(&o, t, 3, res, 8, &sum);
	assert_int_equal(n, 4);
	assert_int_equal(sum.verdict_seq, 0);
	assert_int_equal(sum.exit_code, 0);
	assert_int_equal(sum.count[CORRAL_OK], 3);
	assert_int_equal(sum.count[CORRAL_CANCELLED], 0);
	assert_int_equal(sum.count[CORRAL_ABORTED], 0);
	assert_int_equal(sum.attempts, 4);
	for (int i = 0; i < n; i++) {
		if (!res[i].final) {
			assert_int_equal(res[i].seq, 2);
			assert_outcome(&res[i], "oom");
		} else {
			assert_outcome(&res[i], "ok");
		}
	}
	release_all(res, n);
}

/* With a budget of 2 x memory_max, at most two tasks run at once. */
static void memory_budget(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	const char *argv[] = {P, "sleep", "0.2", NULL};
	unsigned most = 0;
	int got = 0, rc;

	tl_options(p, &o);
	o.jobs = 8;
	o.memory_max = 32 * MiB;
	o.memory_budget = 64 * MiB;
	corral_task_init(&t);
	t.argv = argv;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(corral_submit(ex, &t, &err), i + 1);
	/* A task above the budget could never start: refused at submit. */
	t.memory_max = 65 * MiB;
	assert_int_equal(corral_submit(ex, &t, &err), -EINVAL);
	corral_close(ex);
	double t0 = tl_now();
	while ((rc = corral_next(ex, &r, 20, &err)) >= 0) {
		if (corral_running(ex) > most)
			most = corral_running(ex);
		if (rc == 1) {
			assert_outcome(&r, "ok");
			got++;
			corral_result_release(&r);
		}
	}
	assert_int_equal(rc, -ECHILD);
	assert_int_equal(got, 6);
	assert_int_equal(most, 2);
	assert_true(tl_now() - t0 >= 0.6); /* three rounds of two */
	corral_executor_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(oom_then_grown_ok, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(growth_capped, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(retry_on, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(retry_does_not_halt, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(memory_budget, tl_setup_parent, tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
