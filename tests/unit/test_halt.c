/* test_halt.c - the halt state machine of halt.c, and a simulated scheduler
 * with fake children that checks design §1.3 / §5 exhaustively.
 *
 * The model scheduler does what the executor does with the state machine:
 * it starts queued tasks in seq order while fewer than j run (cancelling a
 * task that is beyond the halt point instead of starting it), records every
 * final outcome with corral__halt_final(), and when that moves the halt
 * point it aborts the running tasks and cancels the queued ones for which
 * corral__halt_beyond() holds. Completions are not driven by a clock: every
 * possible order in which the running children can end is enumerated by
 * backtracking. A child that corral decided to kill may still end with its
 * own outcome (it had ended before the kill landed), so both endings are
 * enumerated for it. A second model drives the same scheduler with a fake
 * clock and per-task durations to check the timing promise.
 */
#include <stdio.h>
#include <string.h>

#include "testlib.h"
#include "halt.h"

/* ------------------------------------------------------------ the state machine */

static void halt_init_state(void **state)
{
	struct corral__halt h;

	(void)state;
	memset(&h, 0x5a, sizeof(h));
	corral__halt_init(&h, CORRAL_HALT_NEVER);
	assert_int_equal(h.policy, CORRAL_HALT_NEVER);
	assert_false(h.halted);
	assert_false(h.aborted);
	assert_int_equal(h.halt_seq, 0);
	assert_int_equal(h.verdict_seq, 0);
	assert_int_equal(h.verdict_status, 0);
	for (uint64_t s = 1; s < 5; s++)
		assert_false(corral__halt_beyond(&h, s));
}

static void halt_is_failure(void **state)
{
	(void)state;
	for (int o = 0; o < CORRAL_OUTCOME_COUNT; o++) {
		bool want = o != CORRAL_OK && o != CORRAL_CANCELLED && o != CORRAL_ABORTED;
		assert_int_equal(corral__halt_is_failure((corral_outcome_t)o), want);
	}
}

static void halt_ordered(void **state)
{
	struct corral__halt h;

	(void)state;
	corral__halt_init(&h, CORRAL_HALT_ORDERED);
	assert_false(corral__halt_final(&h, 1, CORRAL_OK, 0));
	assert_false(h.halted);
	assert_false(corral__halt_final(&h, 7, CORRAL_CANCELLED, -1));
	assert_false(corral__halt_final(&h, 8, CORRAL_ABORTED, -1));
	assert_false(h.halted);
	assert_int_equal(h.verdict_seq, 0);

	/* Task 5 fails: everything after 5 is cut. */
	assert_true(corral__halt_final(&h, 5, CORRAL_EXIT, 3));
	assert_true(h.halted);
	assert_int_equal(h.halt_seq, 5);
	assert_int_equal(h.verdict_seq, 5);
	assert_int_equal(h.verdict, CORRAL_EXIT);
	assert_int_equal(h.verdict_status, 3);
	assert_false(corral__halt_beyond(&h, 1));
	assert_false(corral__halt_beyond(&h, 4));
	assert_false(corral__halt_beyond(&h, 5));
	assert_true(corral__halt_beyond(&h, 6));
	assert_true(corral__halt_beyond(&h, 100));

	/* A later task that had already ended fails too: nothing moves. */
	assert_false(corral__halt_final(&h, 6, CORRAL_OOM, 137));
	assert_int_equal(h.verdict_seq, 5);
	assert_int_equal(h.halt_seq, 5);
	/* An earlier task ends fine: nothing moves. */
	assert_false(corral__halt_final(&h, 4, CORRAL_OK, 0));
	/* An earlier task fails: the halt point and the verdict move down. */
	assert_true(corral__halt_final(&h, 3, CORRAL_SIGNAL, 139));
	assert_int_equal(h.halt_seq, 3);
	assert_int_equal(h.verdict_seq, 3);
	assert_int_equal(h.verdict, CORRAL_SIGNAL);
	assert_int_equal(h.verdict_status, 139);
	assert_true(corral__halt_beyond(&h, 4));
	assert_false(corral__halt_beyond(&h, 3));
	/* Aborted and cancelled tasks never become the verdict. */
	assert_false(corral__halt_final(&h, 1, CORRAL_ABORTED, -1));
	assert_false(corral__halt_final(&h, 2, CORRAL_CANCELLED, -1));
	assert_int_equal(h.verdict_seq, 3);
	assert_false(h.aborted);
}

static void halt_now(void **state)
{
	struct corral__halt h;

	(void)state;
	corral__halt_init(&h, CORRAL_HALT_NOW);
	assert_false(corral__halt_final(&h, 2, CORRAL_OK, 0));
	assert_false(h.halted);
	assert_true(corral__halt_final(&h, 4, CORRAL_TIMEOUT, 124));
	assert_true(h.halted);
	assert_int_equal(h.verdict_seq, 4);
	assert_int_equal(h.verdict, CORRAL_TIMEOUT);
	assert_int_equal(h.verdict_status, 124);
	/* Everything is cut, before and after the failure. */
	assert_true(corral__halt_beyond(&h, 1));
	assert_true(corral__halt_beyond(&h, 3));
	assert_true(corral__halt_beyond(&h, 5));
	/* A lower failure observed later does not take over the verdict, and
	 * does not halt again. */
	assert_false(corral__halt_final(&h, 1, CORRAL_EXIT, 1));
	assert_int_equal(h.verdict_seq, 4);
	assert_int_equal(h.verdict, CORRAL_TIMEOUT);
	assert_int_equal(h.verdict_status, 124);
	assert_false(h.aborted);
}

static void halt_never(void **state)
{
	struct corral__halt h;

	(void)state;
	corral__halt_init(&h, CORRAL_HALT_NEVER);
	assert_false(corral__halt_final(&h, 4, CORRAL_EXIT, 4));
	assert_false(h.halted);
	assert_int_equal(h.verdict_seq, 4);
	assert_int_equal(h.verdict_status, 4);
	assert_false(corral__halt_final(&h, 6, CORRAL_OOM, 137));
	assert_int_equal(h.verdict_seq, 4);
	assert_false(corral__halt_final(&h, 2, CORRAL_SPAWN_ERROR, 127));
	assert_int_equal(h.verdict_seq, 2);
	assert_int_equal(h.verdict, CORRAL_SPAWN_ERROR);
	assert_int_equal(h.verdict_status, 127);
	for (uint64_t s = 1; s < 10; s++)
		assert_false(corral__halt_beyond(&h, s));
}

static void halt_abort(void **state)
{
	static const corral_halt_t policies[] = {CORRAL_HALT_ORDERED, CORRAL_HALT_NOW,
	                                         CORRAL_HALT_NEVER};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct corral__halt h;
		corral__halt_init(&h, policies[i]);
		assert_false(corral__halt_final(&h, 1, CORRAL_OK, 0));
		corral__halt_abort(&h);
		assert_true(h.aborted);
		assert_true(h.halted);
		/* Everything is cut, whatever the policy. */
		for (uint64_t s = 1; s < 10; s++)
			assert_true(corral__halt_beyond(&h, s));
		/* Idempotent. */
		corral__halt_abort(&h);
		assert_true(h.aborted);
		assert_true(corral__halt_beyond(&h, 1));
		/* Aborting is not a failure: there is no verdict task. */
		assert_int_equal(h.verdict_seq, 0);
		/* A task that ended on its own meanwhile with a failure is still
		 * recorded as the verdict, but halts nothing more. */
		assert_false(corral__halt_final(&h, 3, CORRAL_EXIT, 9));
		assert_int_equal(h.verdict_seq, 3);
		assert_int_equal(h.verdict_status, 9);
		assert_true(corral__halt_beyond(&h, 1));
		assert_true(h.aborted);
	}

	/* Abort after an ordered halt: the halt point drops to 0. */
	struct corral__halt h;
	corral__halt_init(&h, CORRAL_HALT_ORDERED);
	assert_true(corral__halt_final(&h, 5, CORRAL_EXIT, 2));
	assert_false(corral__halt_beyond(&h, 3));
	corral__halt_abort(&h);
	assert_true(corral__halt_beyond(&h, 3));
	assert_int_equal(h.verdict_seq, 5);
	assert_int_equal(h.verdict_status, 2);
}

/* ------------------------------------------------------------ the model */

#define MAXN 6

enum tstate {
	QUEUED,
	RUNNING,
	KILLING, /* corral sent the abort kill; the child has not been reaped */
	DONE
};

struct sim {
	/* Inputs. */
	int n, j;
	corral_halt_t policy;
	corral_outcome_t natural[MAXN + 1]; /* what each task ends with on its own */
	int natural_status[MAXN + 1];
	/* State. */
	struct corral__halt h;
	enum tstate st[MAXN + 1];
	corral_outcome_t final[MAXN + 1];
	int next; /* lowest queued seq (tasks start in seq order) */
	int running;
	int finals;
	int started_after_halt; /* a start while halted: must never happen */
	int first_failure;      /* seq of the first failure recorded, 0 if none */
	int first_failure_status;
};

/* Failing outcomes and their status, varied per seq so that a wrong verdict
 * is visible in the outcome or the status. */
static void failure_of(int seq, corral_outcome_t *o, int *status)
{
	switch (seq % 6) {
	case 0:
		*o = CORRAL_OOM, *status = 137;
		break;
	case 1:
		*o = CORRAL_EXIT, *status = 100 + seq;
		break;
	case 2:
		*o = CORRAL_SIGNAL, *status = 139;
		break;
	case 3:
		*o = CORRAL_EXIT, *status = 100 + seq;
		break;
	case 4:
		*o = CORRAL_TIMEOUT, *status = 124;
		break;
	default:
		*o = CORRAL_SPAWN_ERROR, *status = 127;
		break;
	}
}

static void sim_init(struct sim *s, int n, int j, corral_halt_t policy, unsigned fail_mask)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->j = j;
	s->policy = policy;
	s->next = 1;
	corral__halt_init(&s->h, policy);
	for (int q = 1; q <= n; q++) {
		s->st[q] = QUEUED;
		if (fail_mask & (1u << (q - 1))) {
			failure_of(q, &s->natural[q], &s->natural_status[q]);
		} else {
			s->natural[q] = CORRAL_OK;
			s->natural_status[q] = 0;
		}
	}
}

static void sim_finalize(struct sim *s, int q, corral_outcome_t o, int status);

/* The halt point moved: abort running tasks beyond it, cancel queued ones. */
static void sim_cut(struct sim *s)
{
	for (int q = 1; q <= s->n; q++)
		if (s->st[q] == RUNNING && corral__halt_beyond(&s->h, (uint64_t)q))
			s->st[q] = KILLING;
	for (int q = s->next; q <= s->n; q++) {
		if (s->st[q] == QUEUED && corral__halt_beyond(&s->h, (uint64_t)q))
			sim_finalize(s, q, CORRAL_CANCELLED, -1);
	}
}

static void sim_finalize(struct sim *s, int q, corral_outcome_t o, int status)
{
	if (s->st[q] == RUNNING || s->st[q] == KILLING)
		s->running--;
	s->st[q] = DONE;
	s->final[q] = o;
	s->finals++;
	if (corral__halt_is_failure(o) && !s->first_failure) {
		s->first_failure = q;
		s->first_failure_status = status;
	}
	if (corral__halt_final(&s->h, (uint64_t)q, o, status))
		sim_cut(s);
}

static void sim_schedule(struct sim *s)
{
	while (s->running < s->j && s->next <= s->n) {
		int q = s->next;
		if (s->st[q] != QUEUED) { /* cancelled meanwhile */
			s->next++;
			continue;
		}
		s->next++;
		if (corral__halt_beyond(&s->h, (uint64_t)q)) {
			sim_finalize(s, q, CORRAL_CANCELLED, -1);
			continue;
		}
		if (s->h.halted && s->policy != CORRAL_HALT_ORDERED)
			s->started_after_halt++;
		s->st[q] = RUNNING;
		s->running++;
	}
}

/* The sequential `set -e` expectation: the lowest failing seq. */
static int lowest_failure(const struct sim *s)
{
	for (int q = 1; q <= s->n; q++)
		if (s->natural[q] != CORRAL_OK)
			return q;
	return 0;
}

static unsigned long long n_interleavings[3];
static unsigned long long n_leaves_with_race;

static void sim_check_end(const struct sim *s)
{
	const char *pn = s->policy == CORRAL_HALT_ORDERED ? "ordered"
	                 : s->policy == CORRAL_HALT_NOW   ? "now"
	                                                  : "never";
	int low = lowest_failure(s);

	if (s->finals != s->n || s->running != 0)
		fail_msg("%s n=%d j=%d: %d finals, %d running", pn, s->n, s->j, s->finals,
		         s->running);
	for (int q = 1; q <= s->n; q++)
		if (s->st[q] != DONE)
			fail_msg("%s n=%d j=%d: task %d never ended", pn, s->n, s->j, q);
	if (s->started_after_halt)
		fail_msg("%s n=%d j=%d: a task started after the halt", pn, s->n, s->j);

	int want_seq = s->policy == CORRAL_HALT_NOW ? s->first_failure : low;
	if ((int)s->h.verdict_seq != want_seq)
		fail_msg("%s n=%d j=%d: verdict task %d, want %d", pn, s->n, s->j,
		         (int)s->h.verdict_seq, want_seq);
	if (want_seq) {
		if (s->h.verdict != s->natural[want_seq] ||
		    s->h.verdict_status != s->natural_status[want_seq])
			fail_msg("%s n=%d j=%d: verdict %s/%d, want %s/%d", pn, s->n, s->j,
			         corral_outcome_name(s->h.verdict), s->h.verdict_status,
			         corral_outcome_name(s->natural[want_seq]),
			         s->natural_status[want_seq]);
		/* The verdict task itself ran to its own end. */
		if (s->final[want_seq] != s->natural[want_seq])
			fail_msg("%s n=%d j=%d: verdict task %d ended %s", pn, s->n, s->j, want_seq,
			         corral_outcome_name(s->final[want_seq]));
	} else if (s->h.halted) {
		fail_msg("%s n=%d j=%d: halted without a failure", pn, s->n, s->j);
	}

	switch (s->policy) {
	case CORRAL_HALT_ORDERED:
		/* As under `set -e`: every task before the verdict ran to its end
		 * (and succeeded), every task after it either ran to its own end or
		 * was cancelled/aborted. */
		for (int q = 1; q <= s->n; q++) {
			bool before = !low || q < low;
			if (before && s->final[q] != s->natural[q])
				fail_msg(
				    "ordered n=%d j=%d: task %d before the verdict %d ended %s",
				    s->n, s->j, q, low, corral_outcome_name(s->final[q]));
			if (!before && q != low && s->final[q] != s->natural[q] &&
			    s->final[q] != CORRAL_CANCELLED && s->final[q] != CORRAL_ABORTED)
				fail_msg("ordered n=%d j=%d: task %d ended %s", s->n, s->j, q,
				         corral_outcome_name(s->final[q]));
		}
		if (low && s->h.halt_seq != (uint64_t)low)
			fail_msg("ordered n=%d j=%d: halt point %d, want %d", s->n, s->j,
			         (int)s->h.halt_seq, low);
		break;
	case CORRAL_HALT_NEVER:
		/* Nothing is cut. */
		for (int q = 1; q <= s->n; q++)
			if (s->final[q] != s->natural[q])
				fail_msg("never n=%d j=%d: task %d ended %s", s->n, s->j, q,
				         corral_outcome_name(s->final[q]));
		break;
	case CORRAL_HALT_NOW:
		if (s->first_failure && s->h.verdict_status != s->first_failure_status)
			fail_msg("now n=%d j=%d: verdict status %d, want %d", s->n, s->j,
			         s->h.verdict_status, s->first_failure_status);
		break;
	}
}

/* Enumerate every order in which the running children can end. */
static void sim_explore(const struct sim *s0, bool raced)
{
	struct sim s;
	bool any = false;

	for (int q = 1; q <= s0->n; q++) {
		if (s0->st[q] != RUNNING && s0->st[q] != KILLING)
			continue;
		any = true;
		/* Ending with its own outcome: a running child, or one that had
		 * already ended when corral decided to kill it. */
		s = *s0;
		sim_finalize(&s, q, s.natural[q], s.natural_status[q]);
		sim_schedule(&s);
		sim_explore(&s, raced || s0->st[q] == KILLING);
		if (s0->st[q] == KILLING) {
			/* The kill landed. */
			s = *s0;
			sim_finalize(&s, q, CORRAL_ABORTED, -1);
			sim_schedule(&s);
			sim_explore(&s, raced);
		}
	}
	if (!any) {
		n_interleavings[s0->policy]++;
		if (raced)
			n_leaves_with_race++;
		sim_check_end(s0);
	}
}

static void scheduler_all_interleavings(void **state)
{
	static const corral_halt_t policies[] = {CORRAL_HALT_ORDERED, CORRAL_HALT_NEVER,
	                                         CORRAL_HALT_NOW};
	unsigned long long batches = 0;

	(void)state;
	for (int n = 1; n <= MAXN; n++)
		for (unsigned mask = 0; mask < (1u << n); mask++)
			for (int j = 1; j <= n; j++)
				for (size_t p = 0; p < 3; p++) {
					struct sim s;
					sim_init(&s, n, j, policies[p], mask);
					sim_schedule(&s);
					sim_explore(&s, false);
					batches++;
				}
	printf("halt model: %llu batches (n <= %d, every failure pattern, j = 1..n); "
	       "interleavings checked: ordered %llu, never %llu, now %llu (total %llu; %llu "
	       "with a child ending on its own after corral decided to kill it)\n",
	       batches, MAXN, n_interleavings[CORRAL_HALT_ORDERED],
	       n_interleavings[CORRAL_HALT_NEVER], n_interleavings[CORRAL_HALT_NOW],
	       n_interleavings[0] + n_interleavings[1] + n_interleavings[2], n_leaves_with_race);
	/* With j = 1 there is one order; the count is fixed by the model. */
	assert_true(n_interleavings[CORRAL_HALT_ORDERED] > 100000);
	assert_true(n_interleavings[CORRAL_HALT_NOW] > 0);
	assert_true(n_leaves_with_race > 0);
}

/* ------------------------------------------------------------ fake clock */

/* The same scheduler driven by time: task q runs for dur[q] ticks; all
 * children that end at the same tick are reaped in seq order (or in reverse
 * order); an abort kill lands at once. Checks the verdicts again and the
 * timing promise of "ordered": the batch never takes longer than running the
 * tasks one by one up to the verdict task, as `set -e` would. */
static void clock_mark_started(const struct sim *s, int *start, int now)
{
	for (int q = 1; q <= s->n; q++)
		if (s->st[q] == RUNNING && start[q] < 0)
			start[q] = now;
}

static void clock_run(int n, int j, corral_halt_t policy, unsigned mask, const int *dur,
                      bool reverse_ties, unsigned long long *runs)
{
	struct sim s;
	int start[MAXN + 1];
	int now = 0;

	for (int q = 0; q <= MAXN; q++)
		start[q] = -1;
	sim_init(&s, n, j, policy, mask);
	sim_schedule(&s);
	clock_mark_started(&s, start, now);
	while (s.running > 0) {
		/* Abort kills land immediately. */
		bool killed = false;
		for (int q = 1; q <= n; q++)
			if (s.st[q] == KILLING) {
				sim_finalize(&s, q, CORRAL_ABORTED, -1);
				killed = true;
			}
		if (killed) {
			sim_schedule(&s);
			clock_mark_started(&s, start, now);
			continue;
		}
		int t = -1;
		for (int q = 1; q <= n; q++)
			if (s.st[q] == RUNNING && (t < 0 || start[q] + dur[q] < t))
				t = start[q] + dur[q];
		now = t;
		for (int k = 0; k < n; k++) {
			int q = reverse_ties ? n - k : k + 1;
			if (s.st[q] == RUNNING && start[q] + dur[q] == now)
				sim_finalize(&s, q, s.natural[q], s.natural_status[q]);
		}
		sim_schedule(&s);
		clock_mark_started(&s, start, now);
	}
	(*runs)++;
	sim_check_end(&s);

	if (policy == CORRAL_HALT_ORDERED) {
		int low = lowest_failure(&s), seq_time = 0;
		for (int q = 1; q <= (low ? low : n); q++)
			seq_time += dur[q];
		if (now > seq_time)
			fail_msg("ordered n=%d j=%d mask=%x: took %d ticks, sequential %d", n, j,
			         mask, now, seq_time);
		if (j == 1 && now != seq_time)
			fail_msg("ordered n=%d j=1 mask=%x: took %d ticks, want %d", n, mask, now,
			         seq_time);
	}
}

static void scheduler_fake_clock(void **state)
{
	static const corral_halt_t policies[] = {CORRAL_HALT_ORDERED, CORRAL_HALT_NEVER,
	                                         CORRAL_HALT_NOW};
	unsigned long long runs = 0;
	int dur[MAXN + 1] = {0};

	(void)state;
	for (int n = 1; n <= 5; n++) {
		int combos = 1;
		for (int q = 0; q < n; q++)
			combos *= 3;
		for (int c = 0; c < combos; c++) {
			int x = c;
			for (int q = 1; q <= n; q++) {
				dur[q] = 1 + x % 3;
				x /= 3;
			}
			for (unsigned mask = 0; mask < (1u << n); mask++)
				for (int j = 1; j <= n; j++)
					for (size_t p = 0; p < 3; p++)
						for (int rev = 0; rev < 2; rev++)
							clock_run(n, j, policies[p], mask, dur, rev,
							          &runs);
		}
	}
	printf("halt model: %llu fake-clock schedules checked (n <= 5, durations 1..3)\n", runs);
	assert_true(runs > 0);
}

/* A worked example with a fake clock, checked step by step: 4 tasks, j = 2,
 * task 3 fails fast while task 2 (which also fails) is still running. */
static void scheduler_worked_example(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s, 4, 2, CORRAL_HALT_ORDERED, (1u << 1) | (1u << 2)); /* 2 and 3 fail */
	sim_schedule(&s);
	assert_int_equal(s.st[1], RUNNING);
	assert_int_equal(s.st[2], RUNNING);
	assert_int_equal(s.st[3], QUEUED);
	sim_finalize(&s, 1, CORRAL_OK, 0); /* t=1 */
	sim_schedule(&s);
	assert_int_equal(s.st[3], RUNNING);
	sim_finalize(&s, 3, s.natural[3], s.natural_status[3]); /* t=2: 3 fails first */
	assert_true(s.h.halted);
	assert_int_equal(s.h.halt_seq, 3);
	assert_int_equal(s.h.verdict_seq, 3);
	assert_int_equal(s.st[4], DONE); /* cancelled, never started */
	assert_int_equal(s.final[4], CORRAL_CANCELLED);
	assert_int_equal(s.st[2], RUNNING);                     /* before the halt point: runs on */
	sim_finalize(&s, 2, s.natural[2], s.natural_status[2]); /* t=5: 2 fails */
	assert_int_equal(s.h.verdict_seq, 2);
	assert_int_equal(s.h.halt_seq, 2);
	assert_int_equal(s.h.verdict, s.natural[2]);
	assert_int_equal(s.h.verdict_status, s.natural_status[2]);
	assert_int_equal(s.finals, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(halt_init_state),
	    cmocka_unit_test(halt_is_failure),
	    cmocka_unit_test(halt_ordered),
	    cmocka_unit_test(halt_now),
	    cmocka_unit_test(halt_never),
	    cmocka_unit_test(halt_abort),
	    cmocka_unit_test(scheduler_worked_example),
	    cmocka_unit_test(scheduler_all_interleavings),
	    cmocka_unit_test(scheduler_fake_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
