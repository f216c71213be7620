/* test_task_memory.c - corral_task_memory(): the current usage and peak of a
 * running task's cgroup, and the reset of the peak between two units of work
 * done by one long-lived task (the Python pool's persistent workers). On
 * cgroup v1 and v2 from Linux 6.12 the second unit's peak excludes the
 * first's; before 6.12 on v2 the call says it could not reset (returns 1).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testlib.h"

#define MiB (1024ull * 1024ull)

/* The task: for each byte read from fd 0 (a size in MiB), map that much,
 * touch every page, unmap it, and answer one byte on fd 1. */
static int worker(void *arg, int out_fd)
{
	unsigned char mib;

	(void)arg;
	(void)out_fd;
	while (read(0, &mib, 1) == 1) {
		size_t len = (size_t)mib * MiB;
		char *p =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 3;
		for (size_t i = 0; i < len; i += 4096)
			p[i] = 1;
		munmap(p, len);
		if (write(1, &mib, 1) != 1)
			return 4;
	}
	return 0;
}

static void unit(int cmd_w, int ack_r, unsigned char mib)
{
	unsigned char got = 0;

	assert_int_equal(write(cmd_w, &mib, 1), 1);
	assert_int_equal(read(ack_r, &got, 1), 1);
	assert_int_equal(got, mib);
}

static void peak_per_unit(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	corral_task_t t;
	corral_result_t r;
	int cmd[2], ack[2];
	uint64_t cur = 0, peak = 0;

	tl_options(p, &o);
	o.memory_max = 256 * MiB;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	assert_int_equal(pipe2(cmd, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ack, O_CLOEXEC), 0);
	corral_task_init(&t);
	t.fn = worker;
	t.stdin_fd = cmd[0];
	t.stdout_fd = ack[1];
	int64_t seq = corral_submit(ex, &t, &err);
	assert_int_equal(seq, 1);
	assert_int_equal(corral_task_memory(ex, 1, &cur, &peak, false), -ESRCH); /* not started */
	assert_int_equal(corral_next(ex, &r, 0, &err), 0);                       /* starts it */
	close(cmd[0]);
	close(ack[1]);

	unit(cmd[1], ack[0], 48);
	int rc = corral_task_memory(ex, 1, &cur, &peak, true);
	print_message("# after 48 MiB: rc %d current %llu peak %llu\n", rc, (unsigned long long)cur,
	              (unsigned long long)peak);
	assert_true(rc == 0 || rc == 1);
	if (rc == 1)
		assert_int_equal(p->mode, CORRAL_CG_V2); /* only v2 before 6.12 cannot reset */
	assert_true(peak >= 48 * MiB);
	assert_true(cur < 40 * MiB); /* unmapped again */

	unit(cmd[1], ack[0], 8);
	assert_true(corral_task_memory(ex, 1, &cur, &peak, false) >= 0);
	print_message("# after 8 MiB: current %llu peak %llu\n", (unsigned long long)cur,
	              (unsigned long long)peak);
	if (rc == 0) {
		assert_true(peak >= 8 * MiB);
		assert_true(peak < 40 * MiB); /* the first unit's 48 MiB are not in it */
	} else {
		assert_true(peak >= 48 * MiB); /* the attempt's peak, as documented */
	}
	assert_int_equal(corral_task_memory(ex, 99, NULL, NULL, false), -ESRCH);

	close(cmd[1]); /* EOF: the task returns 0 */
	corral_close(ex);
	assert_int_equal(corral_next(ex, &r, -1, &err), 1);
	assert_string_equal(corral_outcome_name(r.outcome), "ok");
	corral_result_release(&r);
	assert_int_equal(corral_task_memory(ex, 1, NULL, NULL, false), -ESRCH); /* reaped */
	close(ack[0]);
	corral_executor_free(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(peak_per_unit, tl_setup_parent, tl_teardown_parent),
	};

	tl_integration_preflight();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
