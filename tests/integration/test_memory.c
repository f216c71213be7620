/* test_memory.c - seeing memory (design §11, issue 15 items 1-3) from real
 * kernel facts: the OOM killer's victims by name and pid (the kernel's
 * report in /dev/kmsg, matched to the task's cgroup), the ancestor whose
 * limit fired, memory timelines (monotone in time, bounded in points,
 * containing the peak), and memory stalls (v2 memory.pressure).
 *
 * As every integration test: beneath a private parent cgroup, on v1 (the
 * hybrid host) and v2 (the VM); /dev/kmsg needs root (CI runs as root).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define ARGV(...)               ((const char *const[]){__VA_ARGS__, NULL})
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

static bool is_v2(const struct tl_parent *p)
{
	return p->mode == CORRAL_CG_V2;
}

static bool kmsg_readable(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void show(const char *what, const corral_result_t *r)
{
	print_message("# %s: %s victims %u memcg '%s' timeline %u stall %.3f/%.3f: %s\n", what,
	              corral_outcome_name(r->outcome), r->n_oom_victims, r->oom_memcg,
	              r->n_timeline, r->memory_stall_some, r->memory_stall_full, r->sentence);
}

static const char *out_text(const corral_result_t *r)
{
	return r->out.data ? r->out.data : "";
}

/* A subprocess is OOM-killed: the record names it, with its pid and what it
 * held; the sentence says so. */
static void victim_of_subprocess_oom(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	if (!kmsg_readable())
		tl_skip("/dev/kmsg is not readable here (needs root or CAP_SYSLOG)");
	tl_options(p, &o);
	o.memory_max = 32 * MiB;
	o.oom_group = false; /* the leader survives on v2 too */
	corral_task_init(&t);
	t.argv = ARGV(P, "victim-alloc", "128");
	t.stdout_fd = CORRAL_FD_CAPTURE;
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("subprocess oom", &r);
	assert_outcome(&r, "subprocess_oom");
	int victim = 0;
	assert_int_equal(sscanf(out_text(&r), "victim %d", &victim), 1);
	assert_int_equal(r.n_oom_victims, 1);
	assert_non_null(r.oom_victims);
	assert_int_equal(r.oom_victims[0].pid, victim);
	assert_string_equal(r.oom_victims[0].comm, "corral-payload");
	assert_true(r.oom_victims[0].detailed);
	/* It held about the limit when it was killed. */
	assert_true(r.oom_victims[0].anon_rss > 16 * MiB);
	assert_true(r.oom_victims[0].anon_rss <= 33 * MiB);
	char want[64];
	snprintf(want, sizeof(want), "corral-payload (pid %d,", victim);
	assert_non_null(strstr(r.sentence, want));
	assert_non_null(strstr(r.sentence, "lost a subprocess to the OOM killer"));
	corral_result_release(&r);
}

/* A Python task over its own limit: the kernel took python3. */
static void victim_python(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	if (!kmsg_readable())
		tl_skip("/dev/kmsg is not readable here (needs root or CAP_SYSLOG)");
	if (access("/usr/bin/python3", X_OK) < 0)
		tl_skip("no /usr/bin/python3");
	tl_options(p, &o);
	o.memory_max = 48 * MiB;
	corral_task_init(&t);
	t.argv = ARGV("/usr/bin/python3", "-c", "x = bytearray(400 << 20)");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("python oom", &r);
	assert_outcome(&r, "oom");
	assert_true(r.n_oom_victims >= 1);
	assert_string_equal(r.oom_victims[0].comm, "python3");
	assert_int_equal(r.oom_victims[0].pid, r.pid);
	assert_non_null(strstr(r.sentence, "the kernel took python3 (pid"));
	corral_result_release(&r);
}

/* An ancestor's limit fires: the record names the ancestor. */
static void victim_of_ancestor_limit(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	if (!kmsg_readable())
		tl_skip("/dev/kmsg is not readable here (needs root or CAP_SYSLOG)");
	assert_int_equal(
	    tl_parent_write(p, is_v2(p) ? "memory.max" : "memory.limit_in_bytes", "48M"), 0);
	tl_options(p, &o);
	o.memory_max = 256 * MiB;
	corral_task_init(&t);
	t.argv = ARGV(P, "alloc", "128");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("oom outside", &r);
	assert_outcome(&r, "oom_outside");
	assert_true(r.n_oom_victims >= 1);
	assert_int_equal(r.oom_victims[0].pid, r.pid);
	/* The kernel names the cgroup whose limit fired: our private parent. */
	const char *tail = strrchr(p->path, '/');
	assert_non_null(tail);
	size_t n = strlen(r.oom_memcg), k = strlen(tail);
	assert_true(n >= k && !strcmp(r.oom_memcg + n - k, tail));
	assert_non_null(strstr(r.sentence, "an ancestor cgroup's limit fired (/"));
	corral_result_release(&r);
}

/* A task that grows in steps: its timeline rises with time, stays within its
 * point budget, and contains the peak (within what sampling can miss). */
static void timeline(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;

	tl_options(p, &o);
	o.memory_max = 256 * MiB;
	o.timeline = true;
	corral_task_init(&t);
	t.argv = ARGV(P, "alloc-steps", "96", "8", "120");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("timeline", &r);
	assert_outcome(&r, "ok");
	assert_non_null(r.timeline);
	assert_true(r.n_timeline >= 20);
	assert_true(r.n_timeline <= CORRAL_TIMELINE_POINTS);
	for (unsigned i = 1; i < r.n_timeline; i++)
		assert_true(r.timeline[i].t > r.timeline[i - 1].t);
	assert_true(r.timeline[r.n_timeline - 1].t <= r.wall_s);
	uint64_t top = 0;
	for (unsigned i = 0; i < r.n_timeline; i++)
		top = r.timeline[i].bytes > top ? r.timeline[i].bytes : top;
	assert_int_equal(r.timeline[r.timeline_peak].bytes, top);
	/* It held all 96 MiB for 120 ms at the end: sampled every 10-20 ms. */
	assert_true(top >= 96 * MiB);
	assert_true(top <= r.memory_peak);
	/* It grew: the first samples are far below the top. */
	assert_true(r.timeline[0].bytes < top / 2);
	corral_result_release(&r);

	/* A long task decimates: still within the budget, the peak kept. */
	o.memory_max = 64 * MiB;
	t.argv = ARGV(P, "alloc-steps", "32", "2", "3500");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("timeline, decimated", &r);
	assert_true(r.n_timeline <= CORRAL_TIMELINE_POINTS);
	assert_true(r.n_timeline >= CORRAL_TIMELINE_POINTS / 2);
	assert_true(r.timeline[r.timeline_peak].bytes >= 32 * MiB);
	for (unsigned i = 1; i < r.n_timeline; i++)
		assert_true(r.timeline[i].t > r.timeline[i - 1].t);
	corral_result_release(&r);
	/* Off by default. */
	o.timeline = false;
	t.argv = ARGV(P, "alloc", "1");
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	assert_null(r.timeline);
	assert_int_equal(r.n_timeline, 0);
	corral_result_release(&r);
}

/* v2: memory.pressure. A task that rereads a file bigger than its limit
 * stalls on reclaim and refaults; the record says for how long. */
static void stalls(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t;
	corral_result_t r;
	char file[PATH_MAX];

	if (!is_v2(p)) {
		/* v1 has no pressure files: unknown, never made up. */
		tl_options(p, &o);
		corral_task_init(&t);
		t.argv = ARGV(P, "alloc", "1");
		assert_int_equal(tl_run_one(&o, &t, &r), 1);
		assert_true(r.memory_stall_some < 0);
		corral_result_release(&r);
		return;
	}
	if (access("/proc/pressure/memory", R_OK) < 0)
		tl_skip("no PSI on this kernel (CONFIG_PSI off, or psi=0)");
	char *dir = tl_tmpdir();
	snprintf(file, sizeof(file), "%s/big", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	static char buf[1 << 20];
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 96; i++)
		assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	tl_options(p, &o);
	o.memory_max = 16 * MiB;
	corral_task_init(&t);
	t.argv = ARGV("/bin/sh", "-c",
	              "for i in 1 2 3 4 5 6; do cat \"$0\" > /dev/null; done; "
	              "\"$1\" alloc-steps 15 5 20",
	              file, P);
	assert_int_equal(tl_run_one(&o, &t, &r), 1);
	show("stalls", &r);
	assert_true(r.memory_stall_some >= 0);
	assert_true(r.memory_stall_full >= 0);
	assert_true(r.memory_stall_full <= r.memory_stall_some + 1e-6);
	assert_true(r.memory_stall_some <= r.wall_s + 0.01);
	print_message("# stalled %.3f s of %.3f s (%.0f%%)\n", r.memory_stall_some, r.wall_s,
	              100 * r.memory_stall_some / r.wall_s);
	corral_result_release(&r);
	tl_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(victim_of_subprocess_oom, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(victim_python, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(victim_of_ancestor_limit, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(timeline, tl_setup_parent, tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(stalls, tl_setup_parent, tl_teardown_parent),
	};

	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
