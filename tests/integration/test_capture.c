/* test_capture.c - captured output (CORRAL_FD_CAPTURE): large outputs spill
 * to a temp file and come back byte for byte; a task that is OOM-killed
 * still delivers what it wrote before it died (design §1.5).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

static void five_mib_exact(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	const char *argv[] = {P, "write", "5242880", NULL};

	tl_options(p, &o);
	o.memory_max = 64 * MiB;
	corral_task_init(&t);
	t.argv = argv;
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.stderr_fd = CORRAL_FD_CAPTURE;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "ok");
	assert_int_equal(r.out.len, 5242880);
	assert_true(r.out.fd >= 0); /* spilled to a temp file */
	assert_int_equal(tl_check_pattern(&r.out, 5242880), -1);
	assert_int_equal(r.err.len, 0);
	print_message("# 5 MiB: len %llu inline %zu fd %d\n", (unsigned long long)r.out.len,
	              r.out.data_len, r.out.fd);
	corral_result_release(&r);
	corral_result_release(&r); /* safe twice */
}

/* Both streams at once, so that neither pipe can block the other. */
static void both_streams(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	const char *argv[] = {"/bin/sh", "-c", "\"$0\" write 3000000 2 & \"$0\" write 1000; wait",
	                      P, NULL};

	tl_options(p, &o);
	corral_task_init(&t);
	t.argv = argv;
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.stderr_fd = CORRAL_FD_CAPTURE;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "ok");
	assert_int_equal(r.out.len, 1000);
	assert_int_equal(r.out.fd, -1); /* small: kept in memory */
	assert_int_equal(r.out.data_len, 1000);
	assert_int_equal(tl_check_pattern(&r.out, 1000), -1);
	assert_int_equal(r.err.len, 3000000);
	assert_int_equal(tl_check_pattern(&r.err, 3000000), -1);
	corral_result_release(&r);
}

/* What an OOM-killed task wrote before it died is delivered. */
static void output_of_oom_killed_task(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	const char *small[] = {P, "write-alloc", "1000", "128", NULL};
	const char *big[] = {P, "write-alloc", "300000", "128", NULL};

	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	corral_task_init(&t);
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.argv = small;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "oom");
	assert_int_equal(r.out.len, 1000);
	assert_int_equal(tl_check_pattern(&r.out, 1000), -1);
	corral_result_release(&r);

	t.argv = big;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "oom");
	assert_int_equal(r.out.len, 300000);
	assert_int_equal(tl_check_pattern(&r.out, 300000), -1);
	corral_result_release(&r);
}

/* Output of a task that is killed at its timeout, and of a spawn error. */
static void output_of_timeout_and_spawn_error(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	const char *argv[] = {"/bin/sh", "-c", "\"$0\" write 70000; exec \"$0\" sleep 100", P,
	                      NULL};
	const char *missing[] = {"/nonexistent-corral/x", NULL};

	tl_options(p, &o);
	o.timeout_ns = 500000000ull;
	corral_task_init(&t);
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.stderr_fd = CORRAL_FD_CAPTURE;
	t.argv = argv;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "timeout");
	assert_int_equal(r.out.len, 70000);
	assert_int_equal(tl_check_pattern(&r.out, 70000), -1);
	corral_result_release(&r);

	t.argv = missing;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_outcome(&r, "spawn_error");
	assert_int_equal(r.out.len, 0);
	assert_int_equal(r.err.len, 0);
	corral_result_release(&r);
}

/* A task gets the environment as it was when it started, although the caller
 * rewrites its own (setenv reallocates environ, unsetenv shifts it) while the
 * children start: a child that runs beside corral until its exec reads a
 * copy, never the caller's array. And a step that fails before exec (a
 * missing working directory) is still reported with its step and errno. */
static void environment_at_spawn(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	corral_task_t t;
	corral_result_t r;
	const char *argv[] = {"/bin/sh", "-c", "printf %s \"$CORRAL_T_ENV\"", NULL};
	char name[64], value[300];
	int n = 0, churn = 0, rc;

	setenv("CORRAL_T_ENV", "before", 1);
	tl_options(p, &o);
	o.jobs = 4;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	corral_task_init(&t);
	t.argv = argv;
	t.stdout_fd = CORRAL_FD_CAPTURE;
	for (int i = 0; i < 40; i++)
		assert_true(corral_submit(ex, &t, &err) > 0);
	t.cwd = "/nonexistent-corral-dir";
	assert_true(corral_submit(ex, &t, &err) > 0);
	corral_close(ex);
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	while ((rc = corral_next(ex, &r, 0, &err)) >= 0) {
		if (rc == 1) {
			if (r.seq <= 40) {
				assert_outcome(&r, "ok");
				assert_int_equal(r.out.data_len, 6);
				assert_memory_equal(r.out.data, "before", 6);
			} else {
				assert_outcome(&r, "spawn_error");
				assert_non_null(strstr(r.sentence, "chdir"));
				assert_non_null(strstr(r.sentence, strerror(ENOENT)));
			}
			n++;
			corral_result_release(&r);
		}
		/* Churn: grow environ (a new array each time), then shrink it. */
		for (int k = 0; k < 20; k++, churn++) {
			snprintf(name, sizeof(name), "CORRAL_T_CHURN_%d", churn);
			setenv(name, value, 1);
		}
		for (int k = churn - 20; k < churn - 10; k++) {
			snprintf(name, sizeof(name), "CORRAL_T_CHURN_%d", k);
			unsetenv(name);
		}
		if (rc == 0)
			usleep(200);
	}
	assert_int_equal(rc, -ECHILD);
	assert_int_equal(n, 41);
	corral_executor_free(ex);
	for (int k = 0; k < churn; k++) {
		snprintf(name, sizeof(name), "CORRAL_T_CHURN_%d", k);
		unsetenv(name);
	}
	unsetenv("CORRAL_T_ENV");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(five_mib_exact, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(environment_at_spawn, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(both_streams, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(output_of_oom_killed_task, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(output_of_timeout_and_spawn_error, tl_setup_parent,
	                                    tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
