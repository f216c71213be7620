/* policy.c - the batch policy: queue, admission, halting, retries, verdict
 * (policy.h states the contract with the sites that run the attempts).
 *
 * Halting (design §5): with "ordered", the first final failure with seq k
 * sets the halt point to k; tasks after k are cancelled (queued) or aborted
 * (running); tasks before k run to their end and may move the halt point
 * down. The verdict is therefore the lowest failing seq for any timing and
 * any number of sites.
 */
#include <math.h>
#include <stdio.h>

#include "loop.h"
#include "outcome.h"
#include "policy.h"

void corral__task_free(struct corral__task *t)
{
	if (!t)
		return;
	free(t->argv);
	free(t->envp);
	free(t->cwd);
	free(t);
}

struct corral__result_node *corral__result_new(void)
{
	struct corral__result_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->r.out.fd = n->r.err.fd = n->r.fn_result.fd = -1;
	n->r.exit_code = -1;
	n->r.memory_stall_some = n->r.memory_stall_full = -1;
	return n;
}

void corral__policy_init(struct corral__policy *p, const corral_options_t *o,
                         struct corral__loop *loop)
{
	memset(p, 0, sizeof(*p));
	p->o = o;
	p->loop = loop;
	corral__halt_init(&p->halt, o->halt);
}

int corral__policy_add_site(struct corral__policy *p, struct corral__site *s)
{
	if (p->n_sites == CORRAL_MAX_SITES)
		return -E2BIG;
	s->pol = p;
	s->index = p->n_sites;
	p->sites[p->n_sites++] = s;
	return 0;
}

void corral__policy_free(struct corral__policy *p)
{
	while (p->r_head) {
		struct corral__result_node *n = p->r_head;
		p->r_head = n->next;
		corral_result_release(&n->r);
		free(n);
	}
	while (p->q_head) {
		struct corral__task *t = p->q_head;
		p->q_head = t->next;
		corral__task_free(t);
	}
	p->r_tail = NULL;
	p->q_tail = NULL;
}

static void push_result(struct corral__policy *p, struct corral__result_node *n)
{
	n->next = NULL;
	if (p->r_tail)
		p->r_tail->next = n;
	else
		p->r_head = n;
	p->r_tail = n;
}

static bool beyond_halt(const struct corral__policy *p, const struct corral__task *t)
{
	return t->cancelled || corral__halt_beyond(&p->halt, t->seq);
}

/* ------------------------------------------------------------ verdict & halting */

static void cancel_queued(struct corral__policy *p);

static void record_final(struct corral__policy *p, const corral_result_t *r)
{
	uint64_t before = p->halt.verdict_seq;
	bool halted = corral__halt_final(&p->halt, r->seq, r->outcome, r->status);

	p->sum.count[r->outcome]++;
	if (p->halt.verdict_seq != before)
		memcpy(p->sum.sentence, r->sentence, sizeof(p->sum.sentence));
	if (!halted)
		return;
	for (struct corral__attempt *a = p->run_head; a; a = a->next)
		if (corral__halt_beyond(&p->halt, a->task->seq))
			a->site->ops->kill(a->site, a, true);
	cancel_queued(p);
}

/* The sentence of a cancelled task whose attempts 1..ran did run. */
static void cancelled_sentence(corral_result_t *r, unsigned ran)
{
	corral__sentence(r, 0);
	if (ran)
		/* A retry that never started: the task did run before (its
		 * earlier records say how it ended), which matters for a task
		 * that must not run twice. */
		snprintf(r->sentence, sizeof(r->sentence),
		         "task %llu was cancelled: the batch halted before its attempt %u "
		         "started (attempt %u ran: see its record)",
		         (unsigned long long)r->seq, ran + 1, ran);
}

static void queue_cancelled(struct corral__policy *p, struct corral__task *t)
{
	struct corral__result_node *n = corral__result_new();

	if (n) {
		n->r.seq = t->seq;
		n->r.attempt = 0;
		n->r.final = true;
		n->r.outcome = CORRAL_CANCELLED;
		n->r.status = -1;
		n->r.memory_max = t->memory_max;
		n->r.data = t->data;
		n->r.start_time = corral__wall_now();
		cancelled_sentence(&n->r, t->attempts);
		record_final(p, &n->r);
		push_result(p, n);
	} else {
		/* Out of memory: count it anyway so the batch still ends. */
		p->sum.count[CORRAL_CANCELLED]++;
	}
	p->finals_queued++;
	corral__task_free(t);
}

static void cancel_queued(struct corral__policy *p)
{
	struct corral__task **pp = &p->q_head, *t;

	p->q_tail = NULL;
	while ((t = *pp)) {
		if (beyond_halt(p, t)) {
			*pp = t->next;
			p->queued--;
			queue_cancelled(p, t);
		} else {
			p->q_tail = t;
			pp = &t->next;
		}
	}
}

/* ------------------------------------------------------------ the queue */

void corral__policy_submit(struct corral__policy *p, struct corral__task *t)
{
	p->submitted++;
	p->sum.tasks++;
	p->last_seq = t->seq;
	if (beyond_halt(p, t)) {
		queue_cancelled(p, t);
		corral__loop_kick(p->loop);
		return;
	}
	t->next = NULL;
	if (p->q_tail)
		p->q_tail->next = t;
	else
		p->q_head = t;
	p->q_tail = t;
	p->queued++;
}

static void requeue_front(struct corral__policy *p, struct corral__task *t)
{
	t->next = p->q_head;
	p->q_head = t;
	if (!p->q_tail)
		p->q_tail = t;
	p->queued++;
}

/* A site where t may start now, NULL if none: of those with room, the
 * least loaded (running / slots; the first on a tie), so that a small batch
 * spreads over the nodes. Strict FIFO: a big task at the head waits rather
 * than being overtaken forever by small ones. */
static struct corral__site *admit(const struct corral__policy *p, const struct corral__task *t)
{
	struct corral__site *best = NULL;

	for (int i = 0; i < p->n_sites; i++) {
		struct corral__site *s = p->sites[i];
		if (s->excluded || s->running >= s->slots || (t->lost_on >> (i & 63)) & 1)
			continue;
		if (s->budget != CORRAL_UNLIMITED && t->memory_max != CORRAL_UNLIMITED &&
		    s->mem_running + t->memory_max > s->budget)
			continue;
		/* s->running / s->slots < best->running / best->slots */
		if (!best ||
		    (uint64_t)s->running * best->slots < (uint64_t)best->running * s->slots)
			best = s;
	}
	return best;
}

void corral__policy_schedule(struct corral__policy *p)
{
	struct corral__site *s;

	while (p->q_head && (s = admit(p, p->q_head))) {
		struct corral__task *t = p->q_head;
		p->q_head = t->next;
		if (!p->q_head)
			p->q_tail = NULL;
		p->queued--;
		t->next = NULL;
		if (beyond_halt(p, t)) {
			queue_cancelled(p, t);
			continue;
		}
		unsigned no = t->attempts + 1;
		uint64_t mem = t->memory_max;
		/* Counted first: a spawn that fails at once reports done()
		 * before start() returns. */
		s->running++;
		p->running++;
		if (mem != CORRAL_UNLIMITED)
			s->mem_running += mem;
		t->attempts = no;
		p->attempts++;
		if (s->ops->start(s, t, no, mem) < 0) {
			/* No memory for an attempt: back to the head, tried again
			 * in the next round. */
			s->running--;
			p->running--;
			if (mem != CORRAL_UNLIMITED)
				s->mem_running -= mem;
			t->attempts = no - 1;
			p->attempts--;
			requeue_front(p, t);
			return;
		}
	}
	/* The head waits for a slot: a site may ready its start meanwhile. */
	struct corral__task *t = p->q_head;
	if (!t || beyond_halt(p, t))
		return;
	for (int i = 0; i < p->n_sites; i++) {
		struct corral__site *s2 = p->sites[i];
		if (s2->ops->prepare && !s2->excluded && !((t->lost_on >> (i & 63)) & 1))
			s2->ops->prepare(s2, t, t->attempts + 1, t->memory_max);
	}
}

void corral__policy_begin(struct corral__site *s, struct corral__attempt *a, struct corral__task *t,
                          unsigned no, uint64_t memory_max)
{
	struct corral__policy *p = s->pol;

	a->task = t;
	a->site = s;
	a->no = no;
	a->memory_max = memory_max;
	a->prev = NULL;
	a->next = p->run_head;
	if (p->run_head)
		p->run_head->prev = a;
	p->run_head = a;
}

static void unlink_attempt(struct corral__policy *p, struct corral__attempt *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		p->run_head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
	a->site->running--;
	p->running--;
	if (a->memory_max != CORRAL_UNLIMITED)
		a->site->mem_running -= a->memory_max;
}

/* ------------------------------------------------------------ retries */

/* Another site where t may still run (ready or not yet). */
static bool site_for(const struct corral__policy *p, const struct corral__task *t)
{
	for (int i = 0; i < p->n_sites; i++)
		if (!p->sites[i]->excluded && !((t->lost_on >> (i & 63)) & 1))
			return true;
	return false;
}

static bool retry_wanted(const struct corral__policy *p, const struct corral__attempt *a,
                         const corral_result_t *r)
{
	unsigned bit = 0;

	if (beyond_halt(p, a->task))
		return false;
	/* Lost with its node: the node failed, not the task; a budget of its
	 * own (a task that kills every node it runs on stops somewhere). */
	if (r->outcome == CORRAL_LOST)
		return a->task->lost <= p->o->lost_retries && site_for(p, a->task);
	if (a->no - a->task->lost > p->o->retries)
		return false;
	switch (r->outcome) {
	case CORRAL_OOM:
	case CORRAL_OOM_OUTSIDE:
	case CORRAL_SUBPROCESS_OOM:
		bit = CORRAL_RETRY_OOM;
		break;
	case CORRAL_TIMEOUT:
		bit = CORRAL_RETRY_TIMEOUT;
		break;
	case CORRAL_SIGNAL:
		bit = CORRAL_RETRY_SIGNAL;
		break;
	case CORRAL_EXIT:
		bit = CORRAL_RETRY_EXIT;
		break;
	default:
		return false;
	}
	return (p->o->retry_on & bit) != 0;
}

static uint64_t grow_memory(const struct corral__policy *p, uint64_t cur)
{
	long double g;
	uint64_t cap = p->o->memory_ceiling;

	if (cur == CORRAL_UNLIMITED)
		return cur;
	if (p->o->memory_budget < cap)
		cap = p->o->memory_budget;
	g = (long double)cur * (long double)p->o->memory_growth;
	if (g >= (long double)cap)
		return cap;
	return (uint64_t)ceill(g);
}

void corral__policy_done(struct corral__policy *p, struct corral__attempt *a,
                         struct corral__result_node *n, corral_result_t *r)
{
	struct corral__task *t = a->task;

	unlink_attempt(p, a);
	if (r->outcome == CORRAL_CANCELLED) {
		/* An attempt a worker still held queued when the halt came: it
		 * never started, and its record says so as queue_cancelled()'s
		 * does (attempt 0), whatever node it was meant for. */
		r->attempt = 0;
		r->pid = 0;
		r->status = -1;
		cancelled_sentence(r, a->no - 1);
		p->attempts--; /* counted at dispatch; it never started */
	}
	if (r->outcome == CORRAL_LOST) {
		t->lost++;
		t->lost_on |= 1ull << (a->site->index & 63);
	}
	bool retry = retry_wanted(p, a, r);
	r->final = !retry;
	if (retry) {
		if (r->own_limit_hit || r->outcome == CORRAL_OOM)
			t->memory_max = grow_memory(p, a->memory_max);
		requeue_front(p, t);
	} else {
		p->finals_queued++;
		record_final(p, r);
	}
	if (n)
		push_result(p, n);
	else
		corral_result_release(r);
	if (!retry)
		corral__task_free(t);
	a->task = NULL;
}

/* ------------------------------------------------------------ control */

void corral__policy_abort(struct corral__policy *p)
{
	if (p->halt.aborted)
		return;
	corral__halt_abort(&p->halt);
	for (struct corral__attempt *a = p->run_head; a; a = a->next)
		a->site->ops->kill(a->site, a, true);
	cancel_queued(p);
	if (p->r_head)
		corral__loop_kick(p->loop);
}

void corral__policy_site_lost(struct corral__policy *p, const char *why)
{
	for (int i = 0; i < p->n_sites; i++)
		if (!p->sites[i]->excluded)
			return;
	if (!p->why[0])
		snprintf(p->why, sizeof(p->why), "%s", why);
	corral__policy_abort(p);
}

struct corral__attempt *corral__policy_running(struct corral__policy *p, uint64_t seq)
{
	for (struct corral__attempt *a = p->run_head; a; a = a->next)
		if (a->task->seq == seq)
			return a;
	return NULL;
}

int corral__policy_cancel(struct corral__policy *p, uint64_t seq)
{
	struct corral__attempt *a = corral__policy_running(p, seq);

	if (a) {
		a->task->cancelled = true;
		a->site->ops->kill(a->site, a, true);
		return 0;
	}
	for (struct corral__task *t = p->q_head; t; t = t->next) {
		if (t->seq == seq) {
			t->cancelled = true;
			cancel_queued(p);
			corral__loop_kick(p->loop);
			return 0;
		}
	}
	return -ESRCH;
}

int corral__policy_next(struct corral__policy *p, corral_result_t *r)
{
	struct corral__result_node *n = p->r_head;

	if (!n)
		return 0;
	p->r_head = n->next;
	if (!p->r_head)
		p->r_tail = NULL;
	*r = n->r;
	free(n);
	if (r->final)
		p->finals_delivered++;
	return 1;
}

bool corral__policy_finished(const struct corral__policy *p)
{
	return p->closed && p->finals_delivered == p->submitted && !p->run_head && !p->q_head &&
	       !p->r_head;
}

void corral__policy_summary(const struct corral__policy *p, corral_summary_t *s)
{
	*s = p->sum;
	s->aborted = p->halt.aborted;
	s->attempts = p->attempts;
	s->verdict_seq = p->halt.verdict_seq;
	s->verdict = p->halt.verdict;
	s->exit_code = p->halt.verdict_status;
	if (s->verdict_seq == 0) {
		s->exit_code = p->halt.aborted ? 125 : 0;
		snprintf(s->sentence, sizeof(s->sentence), "%s", p->why);
	}
}
