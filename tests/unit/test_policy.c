/* test_policy.c - the batch policy (policy.c) driven through a fake site:
 * no processes, no cgroups. The test decides when and how every attempt
 * ends, and checks what the policy starts, kills, retries, cancels and
 * delivers, and its verdict: admission per site (slots, memory budget, in
 * order), ordered/now/never halting, retries with memory growth, a site
 * excluded or a task lost on one, cancel and abort, the hint to ready the
 * next start (prepare), and a site that ends an attempt before its start()
 * returns (a spawn that fails at once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "loop.h"
#include "outcome.h"
#include "policy.h"

struct fake_attempt {
	struct corral__attempt base;
	bool killed, abort;
	struct fake_attempt *next; /* the site's list */
};

struct fake_site {
	struct corral__site site;
	struct fake_attempt *list;
	unsigned started;
	int fail_at_start; /* > 0: the next start ends at once with spawn_error */
	/* prepare() hints (fake_ops_prepare): how many, and the last one. */
	unsigned prepared;
	uint64_t prep_seq, prep_mem;
	unsigned prep_no;
};

static struct fake_attempt *fake_find(struct fake_site *fs, uint64_t seq)
{
	for (struct fake_attempt *a = fs->list; a; a = a->next)
		if (a->base.task && a->base.task->seq == seq)
			return a;
	return NULL;
}

static void fake_unlist(struct fake_site *fs, struct fake_attempt *a)
{
	for (struct fake_attempt **pp = &fs->list; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			return;
		}
}

/* End attempt a with outcome o (status per design §4). */
static void fake_end(struct fake_site *fs, struct fake_attempt *a, corral_outcome_t o,
                     bool own_limit)
{
	struct corral__result_node *n = corral__result_new();

	assert_non_null(n);
	n->r.seq = a->base.task->seq;
	n->r.attempt = a->base.no;
	n->r.memory_max = a->base.memory_max;
	n->r.outcome = o;
	n->r.own_limit_hit = own_limit;
	n->r.status = o == CORRAL_OK        ? 0
	              : o == CORRAL_EXIT    ? 3
	              : o == CORRAL_TIMEOUT ? 124
	              : o == CORRAL_ABORTED ? -1
	              : o == CORRAL_LOST    ? 255
	              : o == CORRAL_SIGNAL  ? 137
	                                    : 137;
	corral__sentence(&n->r, 0);
	fake_unlist(fs, a);
	corral__policy_done(fs->site.pol, &a->base, n, &n->r);
	free(a);
}

static int fake_start(struct corral__site *s, struct corral__task *t, unsigned no, uint64_t mem)
{
	struct fake_site *fs = (struct fake_site *)s;
	struct fake_attempt *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	corral__policy_begin(s, &a->base, t, no, mem);
	a->next = fs->list;
	fs->list = a;
	fs->started++;
	if (fs->fail_at_start > 0) {
		fs->fail_at_start--;
		fake_end(fs, a, CORRAL_SPAWN_ERROR, false);
	}
	return 0;
}

static void fake_kill(struct corral__site *s, struct corral__attempt *base, bool abort)
{
	struct fake_attempt *a = (struct fake_attempt *)base;

	(void)s;
	a->killed = true;
	a->abort |= abort;
}

static int fake_signal(struct corral__site *s, struct corral__attempt *a, int sig)
{
	(void)s;
	(void)a;
	(void)sig;
	return 0;
}

static const struct corral__site_ops fake_ops = {
    .start = fake_start, .kill = fake_kill, .signal = fake_signal};

static void fake_prepare(struct corral__site *s, const struct corral__task *t, unsigned no,
                         uint64_t mem)
{
	struct fake_site *fs = (struct fake_site *)s;

	fs->prepared++;
	fs->prep_seq = t->seq;
	fs->prep_no = no;
	fs->prep_mem = mem;
}

static const struct corral__site_ops fake_ops_prepare = {
    .start = fake_start, .kill = fake_kill, .signal = fake_signal, .prepare = fake_prepare};

struct world {
	corral_options_t o;
	struct corral__loop loop;
	struct corral__policy pol;
	struct fake_site sites[2];
};

static void world_init(struct world *w, int n_sites, unsigned slots, corral_halt_t halt)
{
	corral_error_t err;

	memset(w, 0, sizeof(*w));
	corral_options_init(&w->o);
	w->o.halt = halt;
	assert_int_equal(corral__loop_init(&w->loop, &err), 0);
	corral__policy_init(&w->pol, &w->o, &w->loop);
	for (int i = 0; i < n_sites; i++) {
		w->sites[i].site.ops = &fake_ops;
		w->sites[i].site.slots = slots;
		w->sites[i].site.budget = CORRAL_UNLIMITED;
		assert_int_equal(corral__policy_add_site(&w->pol, &w->sites[i].site), 0);
	}
}

static void world_free(struct world *w)
{
	assert_null(w->pol.run_head);
	corral__policy_free(&w->pol);
	corral__loop_free(&w->loop);
}

static void submit(struct world *w, uint64_t seq, uint64_t mem)
{
	struct corral__task *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->seq = seq;
	t->memory_max = mem;
	t->fds[0] = t->fds[1] = t->fds[2] = CORRAL_FD_NULL;
	corral__policy_submit(&w->pol, t);
}

/* Deliver every queued result; returns how many, and the outcome of each
 * final one in out[seq] (CORRAL_OUTCOME_COUNT = none). */
static int drain(struct world *w, corral_outcome_t *out, unsigned *attempts)
{
	corral_result_t r;
	int n = 0;

	while (corral__policy_next(&w->pol, &r) > 0) {
		if (r.final && out)
			out[r.seq] = r.outcome;
		if (attempts && r.attempt > attempts[r.seq])
			attempts[r.seq] = r.attempt;
		corral_result_release(&r);
		n++;
	}
	return n;
}

static void ordered_halt(void **state)
{
	struct world w;
	corral_outcome_t out[8];

	(void)state;
	for (int i = 0; i < 8; i++)
		out[i] = CORRAL_OUTCOME_COUNT;
	world_init(&w, 1, 2, CORRAL_HALT_ORDERED);
	struct fake_site *s = &w.sites[0];
	for (uint64_t seq = 1; seq <= 6; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 2); /* 1 and 2 */
	fake_end(s, fake_find(s, 1), CORRAL_OK, false);
	corral__policy_schedule(&w.pol);
	assert_non_null(fake_find(s, 3));
	/* 3 fails while 2 runs: 4.. are beyond the halt. */
	fake_end(s, fake_find(s, 3), CORRAL_EXIT, false);
	assert_true(w.pol.halt.halted);
	corral__policy_schedule(&w.pol);
	assert_null(fake_find(s, 4)); /* cancelled, never started */
	assert_false(fake_find(s, 2)->killed);
	/* 2 fails later: it becomes the verdict. */
	fake_end(s, fake_find(s, 2), CORRAL_OOM, true);
	w.pol.closed = true;
	drain(&w, out, NULL);
	assert_int_equal(out[1], CORRAL_OK);
	assert_int_equal(out[2], CORRAL_OOM);
	assert_int_equal(out[3], CORRAL_EXIT);
	for (int seq = 4; seq <= 6; seq++)
		assert_int_equal(out[seq], CORRAL_CANCELLED);
	corral_summary_t sum;
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.verdict_seq, 2);
	assert_int_equal(sum.exit_code, 137);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);
}

/* The policy's hint (policy.h, prepare): the task at the head of the queue,
 * when no slot can take it, with its next attempt number and limit; never
 * a task beyond the halt, never one that can start at once. */
static void prepare_hint(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, 1, 1, CORRAL_HALT_ORDERED);
	struct fake_site *s = &w.sites[0];
	s->site.ops = &fake_ops_prepare;
	for (uint64_t seq = 1; seq <= 3; seq++)
		submit(&w, seq, 64u << 20);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 1);
	assert_int_equal(s->prepared, 1);
	assert_int_equal(s->prep_seq, 2);
	assert_int_equal(s->prep_no, 1);
	assert_int_equal(s->prep_mem, 64u << 20);
	/* Nothing new: the same hint again (the site keeps what it readied). */
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->prep_seq, 2);
	fake_end(s, fake_find(s, 1), CORRAL_OK, false);
	corral__policy_schedule(&w.pol);
	assert_non_null(fake_find(s, 2));
	assert_int_equal(s->prep_seq, 3);
	unsigned before = s->prepared;
	/* 2 fails: 3 is beyond the halt, cancelled, never hinted again. */
	fake_end(s, fake_find(s, 2), CORRAL_EXIT, false);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->prepared, before);
	assert_int_equal(s->started, 2);
	w.pol.closed = true;
	drain(&w, NULL, NULL);
	world_free(&w);
}

static void now_and_never(void **state)
{
	struct world w;

	(void)state;
	/* now: the first failure kills every other running attempt. */
	world_init(&w, 1, 3, CORRAL_HALT_NOW);
	struct fake_site *s = &w.sites[0];
	for (uint64_t seq = 1; seq <= 4; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	fake_end(s, fake_find(s, 3), CORRAL_SIGNAL, false);
	assert_true(fake_find(s, 1)->killed && fake_find(s, 1)->abort);
	assert_true(fake_find(s, 2)->killed);
	fake_end(s, fake_find(s, 1), CORRAL_ABORTED, false);
	fake_end(s, fake_find(s, 2), CORRAL_ABORTED, false);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 3);
	drain(&w, NULL, NULL);
	corral_summary_t sum;
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.verdict_seq, 3);
	assert_int_equal(sum.count[CORRAL_CANCELLED], 1);
	world_free(&w);

	/* never: everything runs; the verdict is the lowest failure. */
	world_init(&w, 1, 1, CORRAL_HALT_NEVER);
	s = &w.sites[0];
	for (uint64_t seq = 1; seq <= 3; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	for (uint64_t seq = 1; seq <= 3; seq++) {
		corral__policy_schedule(&w.pol);
		fake_end(s, fake_find(s, seq), seq == 1 ? CORRAL_OK : CORRAL_EXIT, false);
	}
	drain(&w, NULL, NULL);
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.verdict_seq, 2);
	assert_int_equal(s->started, 3);
	world_free(&w);
}

static void retries_grow_memory(void **state)
{
	struct world w;
	corral_outcome_t out[4] = {CORRAL_OUTCOME_COUNT, CORRAL_OUTCOME_COUNT, CORRAL_OUTCOME_COUNT,
	                           CORRAL_OUTCOME_COUNT};
	unsigned att[4] = {0};

	(void)state;
	world_init(&w, 1, 1, CORRAL_HALT_ORDERED);
	w.o.retries = 2;
	w.o.memory_growth = 2.0;
	w.o.memory_ceiling = 300;
	struct fake_site *s = &w.sites[0];
	submit(&w, 1, 100);
	submit(&w, 2, 100);
	corral__policy_schedule(&w.pol);
	assert_int_equal(fake_find(s, 1)->base.memory_max, 100);
	fake_end(s, fake_find(s, 1), CORRAL_OOM, true);
	/* The retry goes before task 2, with twice the limit. */
	corral__policy_schedule(&w.pol);
	assert_non_null(fake_find(s, 1));
	assert_null(fake_find(s, 2));
	assert_int_equal(fake_find(s, 1)->base.memory_max, 200);
	assert_int_equal(fake_find(s, 1)->base.no, 2);
	fake_end(s, fake_find(s, 1), CORRAL_OOM, true);
	corral__policy_schedule(&w.pol);
	assert_int_equal(fake_find(s, 1)->base.memory_max, 300); /* the ceiling */
	fake_end(s, fake_find(s, 1), CORRAL_OK, false);
	corral__policy_schedule(&w.pol);
	fake_end(s, fake_find(s, 2), CORRAL_EXIT, false); /* exit: not in retry_on */
	w.pol.closed = true;
	assert_int_equal(drain(&w, out, att), 4);
	assert_int_equal(out[1], CORRAL_OK);
	assert_int_equal(att[1], 3);
	assert_int_equal(out[2], CORRAL_EXIT);
	assert_int_equal(att[2], 1);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);
}

static void admission(void **state)
{
	struct world w;

	(void)state;
	/* A budget of 100 per site: 60 + 60 do not fit, 60 + 40 do; strictly in
	 * order, so the 40 behind a waiting 60 waits too. */
	world_init(&w, 1, 4, CORRAL_HALT_NEVER);
	struct fake_site *s = &w.sites[0];
	s->site.budget = 100;
	submit(&w, 1, 60);
	submit(&w, 2, 60);
	submit(&w, 3, 40);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 1);
	fake_end(s, fake_find(s, 1), CORRAL_OK, false);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 3); /* 2 (60) and 3 (40) */
	assert_int_equal(s->site.mem_running, 100);
	fake_end(s, fake_find(s, 2), CORRAL_OK, false);
	fake_end(s, fake_find(s, 3), CORRAL_OK, false);
	assert_int_equal(s->site.mem_running, 0);
	assert_int_equal(s->site.running, 0);
	drain(&w, NULL, NULL);
	world_free(&w);
}

static void two_sites(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, 2, 2, CORRAL_HALT_NEVER);
	struct fake_site *a = &w.sites[0], *b = &w.sites[1];
	for (uint64_t seq = 1; seq <= 5; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	assert_int_equal(a->started, 2);
	assert_int_equal(b->started, 2);
	/* The least loaded site first: they take turns. */
	assert_non_null(fake_find(a, 1));
	assert_non_null(fake_find(b, 2));
	assert_non_null(fake_find(a, 3));
	assert_non_null(fake_find(b, 4));
	/* Site a is lost: nothing more starts there; task 5 was lost on b
	 * (say) and must not go there again. */
	a->site.excluded = true;
	fake_end(b, fake_find(b, 2), CORRAL_OK, false);
	w.pol.q_head->lost_on |= 1u << b->site.index;
	corral__policy_schedule(&w.pol);
	assert_int_equal(a->started, 2);
	assert_int_equal(b->started, 2); /* 5 may go nowhere now */
	w.pol.q_head->lost_on = 0;
	corral__policy_schedule(&w.pol);
	assert_int_equal(b->started, 3);
	fake_end(a, fake_find(a, 1), CORRAL_OK, false);
	fake_end(a, fake_find(a, 3), CORRAL_OK, false);
	fake_end(b, fake_find(b, 4), CORRAL_OK, false);
	fake_end(b, fake_find(b, 5), CORRAL_OK, false);
	w.pol.closed = true;
	assert_int_equal(drain(&w, NULL, NULL), 5);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);
}

/* A site lost with its attempts: they end lost, and run again on another
 * site (not counted in retries), up to lost_retries times; with no site
 * left, the batch aborts and says why. */
static void lost_and_retried(void **state)
{
	struct world w;
	corral_outcome_t out[8];
	unsigned att[8] = {0};

	(void)state;
	for (int i = 0; i < 8; i++)
		out[i] = CORRAL_OUTCOME_COUNT;
	world_init(&w, 2, 1, CORRAL_HALT_ORDERED);
	w.o.lost_retries = 1;
	struct fake_site *a = &w.sites[0], *b = &w.sites[1];
	for (uint64_t seq = 1; seq <= 4; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	/* a runs 1, b runs 2. a is lost: 1 ends lost, and goes to b. */
	a->site.excluded = true;
	fake_end(a, fake_find(a, 1), CORRAL_LOST, false);
	assert_false(w.pol.halt.halted); /* not final: no verdict yet */
	fake_end(b, fake_find(b, 2), CORRAL_OK, false);
	corral__policy_schedule(&w.pol);
	struct fake_attempt *again = fake_find(b, 1);
	assert_non_null(again);
	assert_int_equal(again->base.no, 2);
	/* Lost once more: lost_retries (1) is used up, so it is final and the
	 * verdict (exit 255); ordered halting cancels 3 and 4. */
	fake_end(b, again, CORRAL_LOST, false);
	w.pol.closed = true;
	drain(&w, out, att);
	assert_int_equal(out[1], CORRAL_LOST);
	assert_int_equal(att[1], 2);
	assert_int_equal(out[2], CORRAL_OK);
	assert_int_equal(out[3], CORRAL_CANCELLED);
	corral_summary_t sum;
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.verdict_seq, 1);
	assert_int_equal(sum.exit_code, 255);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);

	/* The last site lost: what is queued is cancelled, the batch aborts
	 * with the reason as its sentence; a lost attempt that has nowhere
	 * else to go is final at once. */
	for (int i = 0; i < 8; i++)
		out[i] = CORRAL_OUTCOME_COUNT;
	world_init(&w, 1, 1, CORRAL_HALT_NEVER);
	a = &w.sites[0];
	for (uint64_t seq = 1; seq <= 3; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	a->site.excluded = true;
	fake_end(a, fake_find(a, 1), CORRAL_LOST, false);
	corral__policy_site_lost(&w.pol, "no worker is left: node1 was lost");
	w.pol.closed = true;
	drain(&w, out, NULL);
	assert_int_equal(out[1], CORRAL_LOST);
	assert_int_equal(out[2], CORRAL_CANCELLED);
	assert_int_equal(out[3], CORRAL_CANCELLED);
	corral__policy_summary(&w.pol, &sum);
	assert_true(sum.aborted);
	assert_int_equal(sum.verdict_seq, 1);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);

	/* No task lost, every site gone: the reason is the sentence. */
	world_init(&w, 1, 1, CORRAL_HALT_ORDERED);
	submit(&w, 1, CORRAL_UNLIMITED);
	w.sites[0].site.excluded = true;
	corral__policy_site_lost(&w.pol, "no worker is left: node1 was lost");
	w.pol.closed = true;
	drain(&w, NULL, NULL);
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.verdict_seq, 0);
	assert_int_equal(sum.exit_code, 125);
	assert_string_equal(sum.sentence, "no worker is left: node1 was lost");
	world_free(&w);
}

static void cancel_abort_and_sync_end(void **state)
{
	struct world w;
	corral_outcome_t out[6];

	(void)state;
	for (int i = 0; i < 6; i++)
		out[i] = CORRAL_OUTCOME_COUNT;
	world_init(&w, 1, 1, CORRAL_HALT_NEVER);
	struct fake_site *s = &w.sites[0];
	/* A start that ends at once (spawn error) before it returns. */
	s->fail_at_start = 1;
	for (uint64_t seq = 1; seq <= 5; seq++)
		submit(&w, seq, CORRAL_UNLIMITED);
	corral__policy_schedule(&w.pol);
	assert_int_equal(s->started, 2); /* 1 failed at once, 2 runs */
	/* Cancel the running one, and a queued one. */
	assert_int_equal(corral__policy_cancel(&w.pol, 2), 0);
	assert_true(fake_find(s, 2)->killed && fake_find(s, 2)->abort);
	assert_int_equal(corral__policy_cancel(&w.pol, 4), 0);
	assert_int_equal(corral__policy_cancel(&w.pol, 99), -ESRCH);
	w.o.retries = 5;
	w.o.retry_on = CORRAL_RETRY_SIGNAL;
	fake_end(s, fake_find(s, 2), CORRAL_SIGNAL, false); /* a cancelled task: no retry */
	corral__policy_schedule(&w.pol);
	assert_non_null(fake_find(s, 3));
	corral__policy_abort(&w.pol);
	assert_true(fake_find(s, 3)->killed);
	fake_end(s, fake_find(s, 3), CORRAL_ABORTED, false);
	w.pol.closed = true;
	drain(&w, out, NULL);
	assert_int_equal(out[1], CORRAL_SPAWN_ERROR);
	assert_int_equal(out[2], CORRAL_SIGNAL);
	assert_int_equal(out[3], CORRAL_ABORTED);
	assert_int_equal(out[4], CORRAL_CANCELLED);
	assert_int_equal(out[5], CORRAL_CANCELLED);
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);
}

/* A worker ends an attempt it still held queued as cancelled when the halt
 * kills it: the record is the one of a task that never started (attempt 0,
 * no status), and says which attempt did run - as for a retry cancelled in
 * the head's own queue. */
static void cancelled_on_a_worker(void **state)
{
	struct world w;
	corral_result_t r;
	int seen = 0;

	(void)state;
	world_init(&w, 1, 2, CORRAL_HALT_ORDERED);
	w.o.retries = 1;
	struct fake_site *s = &w.sites[0];
	submit(&w, 1, 100);
	submit(&w, 2, 100);
	corral__policy_schedule(&w.pol);
	fake_end(s, fake_find(s, 2), CORRAL_OOM, true);
	corral__policy_schedule(&w.pol);
	struct fake_attempt *again = fake_find(s, 2);
	assert_non_null(again);
	assert_int_equal(again->base.no, 2);
	fake_end(s, fake_find(s, 1), CORRAL_EXIT, false); /* the verdict: 2 is beyond */
	assert_true(again->killed && again->abort);
	fake_end(s, again, CORRAL_CANCELLED, false);
	w.pol.closed = true;
	while (corral__policy_next(&w.pol, &r) > 0) {
		if (r.seq == 2 && r.final) {
			assert_int_equal(r.outcome, CORRAL_CANCELLED);
			assert_int_equal(r.attempt, 0);
			assert_int_equal(r.status, -1);
			assert_int_equal(r.pid, 0);
			assert_non_null(
			    strstr(r.sentence, "before its attempt 2 started (attempt 1 ran"));
			seen++;
		}
		corral_result_release(&r);
	}
	assert_int_equal(seen, 1);
	corral_summary_t sum;
	corral__policy_summary(&w.pol, &sum);
	assert_int_equal(sum.attempts, 2); /* 1's, and 2's first; not the one never started */
	assert_true(corral__policy_finished(&w.pol));
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ordered_halt),        cmocka_unit_test(now_and_never),
	    cmocka_unit_test(retries_grow_memory), cmocka_unit_test(admission),
	    cmocka_unit_test(two_sites),           cmocka_unit_test(cancel_abort_and_sync_end),
	    cmocka_unit_test(lost_and_retried),    cmocka_unit_test(cancelled_on_a_worker),
	    cmocka_unit_test(prepare_hint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
