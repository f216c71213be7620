/* outcome.h - attribution: kernel facts about one attempt -> outcome. */
#ifndef CORRAL_OUTCOME_H
#define CORRAL_OUTCOME_H

#include "internal.h"

/* Everything corral knows about how an attempt ended. */
struct corral__facts {
	bool spawned;               /* the child reached exec (or fn) */
	int spawn_errno;            /* when !spawned */
	const char *spawn_step;     /* when !spawned */
	bool exited;                /* leader exited (else it was killed by term_signal) */
	int exit_code;              /* when exited */
	int term_signal;            /* when !exited */
	uint64_t oom_kills;         /* oom_kill delta of the task cgroup */
	uint64_t oom_kills_at_kill; /* oom_kill delta seen just before corral killed it */
	bool own_limit_hit;         /* v2: "oom" rose in memory.events.local; v1: failcnt rose */
	bool killed_timeout;        /* corral sent the kill because of the timeout */
	bool killed_abort;          /* corral sent the kill because the batch halted */
	bool allow_subprocess_oom;
	bool seccomp_kills; /* the task's seccomp profile has kill actions */
	/* Observe mode (no task cgroup, observer.c): the enclosing cgroup. */
	bool observed;              /* these facts replace the task cgroup's */
	uint64_t observed_kills;    /* its oom_kill rose this much during the task's life */
	unsigned observed_rivals;   /* other tasks died of SIGKILL in the same window */
	const char *observed_where; /* "memory.max 200.0 MiB of /" */
};

/* Fill r->outcome, r->status, r->exit_code, r->signal, r->oom_kills,
 * r->own_limit_hit, r->seccomp_kill from f. */
void corral__classify(const struct corral__facts *f, corral_result_t *r);

/* Exit code of a spawn failure from its errno: 127 not found, 126 not
 * executable, 125 anything else. */
int corral__spawn_status(int err);

/* Fill r->sentence (uses r's fields; timeout_ns for the timeout sentence). */
void corral__sentence(corral_result_t *r, uint64_t timeout_ns);

/* Observe mode: replace r->sentence by one that says what the enclosing
 * cgroup showed (f->observed), when that is what decided the outcome. */
void corral__observed_sentence(const struct corral__facts *f, corral_result_t *r);

#endif
