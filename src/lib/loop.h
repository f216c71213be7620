/* loop.h - the event loop under an executor: one epoll set and one timerfd.
 *
 * Sources are fds with a callback. An epoll event carries a source's slot
 * and generation, never a pointer: a source removed during a round (its
 * attempt finished, its fd closed) bumps its slot's generation, so an event
 * still queued for it in the same round, or one that the kernel reports
 * later because another process holds a copy of the open file (a forked
 * function task before it closes its fds), is recognised and dropped
 * without touching freed memory.
 *
 * Within a round, "late" sources (pidfds) are dispatched after the others,
 * so that output read in the round is drained before an attempt finishes.
 * Every wait is on something that fires: the fds, or the timer, armed to the
 * earliest deadline its owner asks for (corral__loop_arm()).
 */
#ifndef CORRAL_LOOP_H
#define CORRAL_LOOP_H

#include <stdint.h>

#include "internal.h"

/* A source's callback: events are EPOLLIN/EPOLLPRI/EPOLLHUP/... */
typedef void (*corral__loop_cb)(void *ctx, int arg, uint32_t events);

struct corral__loop_slot {
	corral__loop_cb cb; /* NULL: free */
	void *ctx;
	int arg;       /* passed back (e.g. which stream) */
	int fd;        /* registered fd, -1 for a free slot */
	uint32_t gen;  /* bumped on removal */
	bool late;     /* dispatched after the others in a round */
	uint32_t next; /* free list */
};

struct corral__loop {
	int epfd, timerfd;
	uint64_t timer_at; /* what the timerfd is armed to (0: unknown, re-arm) */
	struct corral__loop_slot *slots;
	uint32_t n_slots, cap_slots, free_head; /* free_head: UINT32_MAX = none */
};

/* A handle: slot + 1 in the low 32 bits, generation in the high ones; 0 =
 * none. */
typedef uint64_t corral__loop_handle;

int corral__loop_init(struct corral__loop *l, corral_error_t *err);
void corral__loop_free(struct corral__loop *l);

/* Watch fd for events; cb(ctx, arg, events) runs when they fire. Returns
 * the handle (> 0) or -errno. */
int64_t corral__loop_add(struct corral__loop *l, int fd, uint32_t events, bool late,
                         corral__loop_cb cb, void *ctx, int arg);
/* Stop watching (before the fd is closed); *h becomes 0. Harmless for 0. */
void corral__loop_del(struct corral__loop *l, corral__loop_handle *h);
/* The same for a source whose fd left the epoll set and was closed already
 * (by its owner, right before): only the slot is freed. */
void corral__loop_forget(struct corral__loop *l, corral__loop_handle *h);

/* Change the events a source waits for: 0 or -errno. */
int corral__loop_mod(struct corral__loop *l, corral__loop_handle h, uint32_t events);

/* Arm the timer to fire at `at` (CLOCK_MONOTONIC ns; UINT64_MAX = never). */
void corral__loop_arm(struct corral__loop *l, uint64_t at);
/* Make the loop's fd readable now (results queued outside a round). */
void corral__loop_kick(struct corral__loop *l);

/* Wait up to timeout_ms for events and dispatch them. Returns 1 when the
 * timer fired (the caller runs its deadlines), 0 otherwise, -errno on an
 * epoll error. EINTR is not an error (0). */
int corral__loop_run(struct corral__loop *l, int timeout_ms);

#endif
