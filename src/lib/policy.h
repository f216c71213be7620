/* policy.h - the batch policy (policy.c) and the interface through which it
 * drives attempts on sites (design §2, §5, §10).
 *
 * The policy owns the batch: the queue of tasks (FIFO; retries go to the
 * head), admission (slots and memory budget per site, strictly in order),
 * the halt policies and the verdict (halt.c), retries with memory growth,
 * and the queue of results. It runs no process and reads no cgroup: a site
 * does. This node is one site (attempt_local.c); a worker on another node is
 * another (attempt_remote.c). One machine and many run the same policy code,
 * and the policy is unit-tested with a fake site (tests/unit/test_policy.c).
 *
 * The contract between them:
 *  - the policy calls site->ops->start() with a task; the site makes an
 *    attempt (its own struct, starting with struct corral__attempt, filled
 *    and linked by corral__policy_begin()), or returns -ENOMEM when it cannot
 *    even allocate one (the task goes back to the head of the queue);
 *  - every attempt a site returned ends exactly once with
 *    corral__policy_done(): a complete result (outcome classified, output
 *    taken), also for a spawn that failed at once (possibly before start()
 *    returns) or an attempt killed at the policy's request; after done()
 *    the policy never touches the attempt again, the site frees it;
 *  - site->ops->kill() may be called for an attempt at any time until done()
 *    (abort: the batch halted or the task was cancelled); the site makes it
 *    end soon, and ignores the call once the attempt's end is known.
 */
#ifndef CORRAL_POLICY_H
#define CORRAL_POLICY_H

#include "halt.h"
#include "internal.h"

struct corral__loop;

/* A submitted task; owned by the policy until its final result. */
struct corral__task {
	struct corral__task *next; /* queue link */
	uint64_t seq;
	unsigned attempts;   /* attempts started so far */
	uint64_t memory_max; /* limit of the next attempt */
	char **argv;         /* NULL for a function task; one block with its strings */
	char **envp;         /* NULL = environ at spawn time; one block */
	char *cwd;
	int fds[3];
	corral_fn_t fn;
	void *fn_arg;
	void *data;
	bool cancelled;   /* corral_cancel(): aborted, never retried */
	uint64_t lost_on; /* bit i: lost on site i (remote): not sent there again */
	unsigned lost;    /* attempts lost with their site (not counted in retries) */
};

struct corral__site;

/* The policy's part of an attempt; a site's attempt struct begins with it. */
struct corral__attempt {
	struct corral__attempt *prev, *next; /* the policy's running list */
	struct corral__task *task;
	struct corral__site *site;
	unsigned no;         /* 1-based */
	uint64_t memory_max; /* this attempt's limit */
};

struct corral__site_ops {
	/* Start an attempt of t with limit memory_max (attempt number no): 0,
	 * or -ENOMEM when no attempt could even be made (nothing happened). */
	int (*start)(struct corral__site *s, struct corral__task *t, unsigned no,
	             uint64_t memory_max);
	/* Make it end (abort: because the batch halted or the task was
	 * cancelled; its outcome is then aborted). */
	void (*kill)(struct corral__site *s, struct corral__attempt *a, bool abort);
	/* Send sig to its main process: 0, or -ESRCH when it does not run. */
	int (*signal)(struct corral__site *s, struct corral__attempt *a, int sig);
	/* The loop round (each may be NULL): before waiting, the earliest
	 * deadline wanted (CLOCK_MONOTONIC ns, UINT64_MAX: none), the timer
	 * fired, after the round's events. */
	void (*before_wait)(struct corral__site *s);
	uint64_t (*deadline)(const struct corral__site *s);
	void (*timer)(struct corral__site *s, uint64_t now);
	void (*after_round)(struct corral__site *s);
	/* End every attempt whose end never showed (after a bounded wait). */
	void (*force_out)(struct corral__site *s);
	/* May be NULL. t heads the queue and no slot can take it now: the
	 * site may ready its start ahead (attempt_local.c, the warm child). A
	 * hint only: start() may come with another task, or never; the site
	 * undoes what it readied then, or when it is freed. */
	void (*prepare)(struct corral__site *s, const struct corral__task *t, unsigned no,
	                uint64_t memory_max);
};

/* A place where attempts run. */
struct corral__site {
	const struct corral__site_ops *ops;
	struct corral__policy *pol;
	int index;        /* in the policy's site list */
	unsigned slots;   /* attempts at once */
	uint64_t budget;  /* sum of running memory limits; CORRAL_UNLIMITED = none */
	unsigned running; /* attempts started here and not done */
	uint64_t mem_running;
	bool excluded; /* lost: nothing more starts here */
	bool pending;  /* not ready yet, but it may be (a worker before READY) */
	char host[64]; /* for records; "" = this node */
};

#define CORRAL_MAX_SITES 64

/* A result on its way to the caller. */
struct corral__result_node {
	struct corral__result_node *next;
	corral_result_t r;
};

struct corral__policy {
	const corral_options_t *o; /* the executor's copy */
	struct corral__loop *loop; /* kicked when results are queued outside a round */
	struct corral__site *sites[CORRAL_MAX_SITES];
	int n_sites;
	/* Queue (FIFO; retries go to the head). */
	struct corral__task *q_head, *q_tail;
	uint64_t queued;
	/* Running attempts, over every site. */
	struct corral__attempt *run_head;
	unsigned running;
	/* Results ready for delivery. */
	struct corral__result_node *r_head, *r_tail;
	uint64_t submitted, last_seq;
	uint64_t finals_queued, finals_delivered, attempts;
	bool closed;
	struct corral__halt halt;
	corral_summary_t sum;
	char why[256]; /* why the batch was aborted by the policy itself ("" none) */
};

void corral__policy_init(struct corral__policy *p, const corral_options_t *o,
                         struct corral__loop *loop);
/* Free what is queued (tasks, undelivered results); attempts must be done. */
void corral__policy_free(struct corral__policy *p);
int corral__policy_add_site(struct corral__policy *p, struct corral__site *s);

/* Queue t (seq set by the caller, increasing); after a halt it is cancelled
 * at once. Takes ownership. */
void corral__policy_submit(struct corral__policy *p, struct corral__task *t);
/* For a site's start(): fill the policy's part of a new attempt and link it
 * (before anything can end it). */
void corral__policy_begin(struct corral__site *s, struct corral__attempt *a, struct corral__task *t,
                          unsigned no, uint64_t memory_max);
/* Start what may start now. */
void corral__policy_schedule(struct corral__policy *p);
/* An attempt ended: n's result (n may be NULL when out of memory: then r
 * points to a result the caller releases). */
void corral__policy_done(struct corral__policy *p, struct corral__attempt *a,
                         struct corral__result_node *n, corral_result_t *r);
/* Abort the batch: kill every running attempt, cancel every queued task. */
void corral__policy_abort(struct corral__policy *p);
/* A site was lost (excluded): with no site left that is or may become
 * ready, abort the batch, saying why in the summary. */
void corral__policy_site_lost(struct corral__policy *p, const char *why);
/* Cancel one task: -ESRCH when it is not queued or running. */
int corral__policy_cancel(struct corral__policy *p, uint64_t seq);
/* The running attempt of task seq, NULL if none. */
struct corral__attempt *corral__policy_running(struct corral__policy *p, uint64_t seq);
/* Next result for the caller (0: none ready). */
int corral__policy_next(struct corral__policy *p, corral_result_t *r);
/* Every result delivered and nothing left to do (after close). */
bool corral__policy_finished(const struct corral__policy *p);
void corral__policy_summary(const struct corral__policy *p, corral_summary_t *s);

/* A zeroed result node (fds -1, exit_code -1), NULL when out of memory. */
struct corral__result_node *corral__result_new(void);
void corral__task_free(struct corral__task *t);

#endif
