/* test_recycle.c - a task cgroup that serves several attempts in turn (v1:
 * cgroup_v1.c, "Recycling") must give every attempt the outcome, counters
 * and limits a fresh cgroup would: OOM kills, pids.max hits and the peak are
 * the attempt's own, and a limit that shrinks or grows between attempts is
 * the one enforced. One job, so every attempt after the first reuses the
 * cgroup of the one before it (on v2 before Linux 6.12, where cgroups are
 * not recycled, the same assertions hold for fresh cgroups).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;

static void counters_are_each_attempts_own(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t[7];
	corral_result_t res[8];
	corral_summary_t sum;
	const char *a_oom[] = {P, "alloc", "128", NULL};
	const char *a_bomb[] = {P, "forkbomb", "100", NULL};
	const char *a_idle[] = {P, "exit", "0", NULL};
	const char *a_16[] = {P, "alloc", "16", NULL};
	const char *a_48[] = {P, "alloc", "48", NULL};

	tl_options(p, &o);
	o.jobs = 1;
	o.memory_max = 32 * MiB;
	o.pids_max = 16;
	o.halt = CORRAL_HALT_NEVER;
	for (int i = 0; i < 7; i++)
		corral_task_init(&t[i]);
	t[0].argv = a_oom;  /* oom at 32 MiB */
	t[1].argv = a_idle; /* right after an OOM kill in the same cgroup: ok */
	t[2].argv = a_bomb; /* hits pids.max */
	t[3].argv = a_idle; /* right after: no pids hit */
	t[4].argv = a_16;   /* peak of its own 16 MiB, not the 32 MiB of task 1 */
	t[5].argv = a_48;   /* a grown limit: 64 MiB fits 48 */
	t[5].memory_max = 64 * MiB;
	t[6].argv = a_48; /* and shrunk again: 32 MiB does not */
	int n = tl_run_batch(&o, t, 7, res, 8, &sum);
	assert_int_equal(n, 7);
	corral_result_t *r[8] = {0};
	for (int i = 0; i < n; i++)
		r[res[i].seq] = &res[i];
	for (int i = 1; i <= 7; i++)
		print_message("# task %d: %s oom_kills %llu pids_hit %d max %llu peak %llu\n", i,
		              corral_outcome_name(r[i]->outcome),
		              (unsigned long long)r[i]->oom_kills, r[i]->pids_limit_hit,
		              (unsigned long long)r[i]->memory_max,
		              (unsigned long long)r[i]->memory_peak);
	assert_outcome(r[1], "oom");
	assert_true(r[1]->oom_kills >= 1);
	assert_outcome(r[2], "ok");
	assert_int_equal(r[2]->oom_kills, 0);
	assert_true(r[2]->memory_peak < 4 * MiB);
	assert_true(r[3]->pids_limit_hit);
	assert_outcome(r[4], "ok");
	assert_false(r[4]->pids_limit_hit);
	assert_outcome(r[5], "ok");
	assert_true(r[5]->memory_peak >= 16 * MiB);
	assert_true(r[5]->memory_peak < 24 * MiB);
	assert_outcome(r[6], "ok");
	assert_int_equal(r[6]->memory_max, 64 * MiB);
	assert_true(r[6]->memory_peak >= 48 * MiB);
	assert_outcome(r[7], "oom");
	assert_int_equal(r[7]->memory_max, 32 * MiB);
	assert_true(r[7]->own_limit_hit);
	assert_int_equal(sum.verdict_seq, 1);
	for (int i = 0; i < n; i++)
		corral_result_release(&res[i]);
}

/* The zombies of a killed fork bomb wait in pids.current for their reaper
 * (init, or a subreaper, when it gets to it). A cgroup that still has them
 * must not serve the next task: it would get fewer pids than --pids (the
 * soak saw a child-alloc's fork() fail there). Here this process is the
 * subreaper and reaps only after the batch, so the zombies stay for all of
 * it; every fork bomb must find its whole --pids. */
static void pids_are_each_attempts_own(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t[4];
	corral_result_t res[4];
	corral_summary_t sum;
	const char *a_bomb[] = {P, "forkbomb", "10", NULL};

	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	tl_options(p, &o);
	o.jobs = 1;
	o.memory_max = 64 * MiB;
	/* The leader and 3 children: 7 of 10 forks fail. Few zombies, so
	 * that the cgroup stays under recycling's 1 MiB of charged memory
	 * (7 zombies' kernel objects come near it), and the pids are what
	 * would keep it from serving again. */
	o.pids_max = 4;
	o.halt = CORRAL_HALT_NEVER;
	for (int i = 0; i < 4; i++) {
		corral_task_init(&t[i]);
		t[i].argv = a_bomb;
		t[i].stdout_fd = CORRAL_FD_CAPTURE;
	}
	int n = tl_run_batch(&o, t, 4, res, 4, &sum);
	int zombies = 0;
	while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
		zombies++;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	print_message("# %d orphans reaped after the batch\n", zombies);
	assert_int_equal(n, 4);
	for (int i = 0; i < n; i++) {
		const corral_result_t *r = &res[i];
		print_message("# task %llu: %s pids_hit %d: %.*s", (unsigned long long)r->seq,
		              corral_outcome_name(r->outcome), r->pids_limit_hit,
		              (int)r->out.data_len, r->out.data ? r->out.data : "");
		assert_outcome(r, "ok");
		assert_true(r->pids_limit_hit);
		assert_int_equal(r->out.data_len, strlen("failed 7\n"));
		assert_memory_equal(r->out.data, "failed 7\n", r->out.data_len);
	}
	assert_true(zombies >= 9); /* the test saw what it is about */
	for (int i = 0; i < n; i++)
		corral_result_release(&res[i]);
}

/* Would corral recycle here? Always on v1; on v2 where memory.peak can be
 * reset (cgroup_v2.c), which the parent's own file tells. */
static bool recycling_expected(const struct tl_parent *p)
{
	char path[PATH_MAX + 16];
	int fd;
	ssize_t n;

	if (p->mode != CORRAL_CG_V2)
		return true; /* v1 or hybrid: memory on v1 */
	snprintf(path, sizeof(path), "%s/memory.peak", p->dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = write(fd, "reset\n", 6);
	close(fd);
	return n == 6;
}

/* The cgroup a task found itself in: the last component of the memory
 * hierarchy's line (v1) or the unified one's (v2) of /proc/self/cgroup. */
static void task_cgroup(const corral_result_t *r, char *out, size_t size)
{
	char text[4096];
	size_t len = r->out.data_len < sizeof(text) - 1 ? r->out.data_len : sizeof(text) - 1;

	memcpy(text, r->out.data ? r->out.data : "", len);
	text[len] = 0;
	out[0] = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		bool memory = strstr(line, ":memory:") != NULL;
		if (!memory && (strncmp(line, "0::", 3) || out[0]))
			continue; /* the unified line only where no memory line came */
		const char *slash = strrchr(line, '/');
		snprintf(out, size, "%s", slash ? slash + 1 : line);
		if (memory)
			return;
	}
}

/* Recycling happens where it should (so the tests above test it), and not
 * where it should not (v2 without a peak reset): over 4 tasks at -j 1 some
 * cgroup serves twice, or none does. (Which one serves which task depends on
 * when each is readied: cgroups made ahead and recycled ones take turns.) */
static void cgroups_serve_again_where_they_may(void **state)
{
	enum {
		N = 6
	};
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t[N];
	corral_result_t res[N];
	corral_summary_t sum;
	const char *a_cg[] = {P, "cgroup", NULL};
	char name[N][64];
	bool expect = recycling_expected(p);
	int distinct = 0;

	tl_options(p, &o);
	o.jobs = 1;
	o.memory_max = 64 * MiB;
	for (int i = 0; i < N; i++) {
		corral_task_init(&t[i]);
		t[i].argv = a_cg;
		t[i].stdout_fd = CORRAL_FD_CAPTURE;
	}
	int n = tl_run_batch(&o, t, N, res, N, &sum);
	assert_int_equal(n, N);
	for (int i = 0; i < n; i++) {
		assert_outcome(&res[i], "ok");
		task_cgroup(&res[i], name[res[i].seq - 1], sizeof(name[0]));
	}
	print_message("# recycling %s: %s %s %s %s %s %s\n", expect ? "expected" : "not expected",
	              name[0], name[1], name[2], name[3], name[4], name[5]);
	for (int i = 0; i < N; i++) {
		bool seen = false;
		assert_int_equal(name[i][0], 't'); /* t<seq>-a<attempt>[-p<n>] */
		for (int k = 0; k < i; k++)
			seen |= !strcmp(name[i], name[k]);
		distinct += !seen;
	}
	/* At -j 1 two cgroups take turns where they are recycled: the running
	 * task's, and the one readied for the next (made ahead at the start,
	 * then the last task's). A third means one was made and another thrown
	 * away, a mkdir and an rmdir per task, the rmdir on the critical path
	 * (seen: the made-ahead one filled the pool and each finished task's
	 * cgroup was removed before the next could start). Elsewhere each
	 * attempt has its own. */
	if (expect)
		assert_int_equal(distinct, 2);
	else
		assert_int_equal(distinct, N);
	for (int i = 0; i < n; i++)
		corral_result_release(&res[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(counters_are_each_attempts_own, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(pids_are_each_attempts_own, tl_setup_parent,
	                                    tl_teardown_parent),
	    cmocka_unit_test_setup_teardown(cgroups_serve_again_where_they_may, tl_setup_parent,
	                                    tl_teardown_parent),
	};
	tl_integration_preflight();
	P = tl_payload();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
