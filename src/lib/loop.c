/* loop.c - the event loop under an executor (loop.h says what it promises). */
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "loop.h"

int corral__loop_init(struct corral__loop *l, corral_error_t *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};

	memset(l, 0, sizeof(*l));
	l->free_head = UINT32_MAX;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->epfd < 0 || l->timerfd < 0) {
		int e = errno;
		corral__loop_free(l);
		return corral__err(err, e, "create the event loop");
	}
	/* The timer is the source with handle 0. */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev) < 0) {
		int e = errno;
		corral__loop_free(l);
		return corral__err(err, e, "register the timer");
	}
	return 0;
}

void corral__loop_free(struct corral__loop *l)
{
	corral__close(l->epfd);
	corral__close(l->timerfd);
	free(l->slots);
	memset(l, 0, sizeof(*l));
	l->epfd = l->timerfd = -1;
}

int64_t corral__loop_add(struct corral__loop *l, int fd, uint32_t events, bool late,
                         corral__loop_cb cb, void *ctx, int arg)
{
	uint32_t i;

	if (l->free_head != UINT32_MAX) {
		i = l->free_head;
		l->free_head = l->slots[i].next;
	} else {
		if (l->n_slots == l->cap_slots) {
			uint32_t ncap = l->cap_slots ? l->cap_slots * 2 : 64;
			struct corral__loop_slot *ns = realloc(l->slots, ncap * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			l->slots = ns;
			l->cap_slots = ncap;
		}
		i = l->n_slots++;
		l->slots[i].gen = 1;
	}
	struct corral__loop_slot *s = &l->slots[i];
	uint64_t h = ((uint64_t)s->gen << 32) | (uint64_t)(i + 1);
	struct epoll_event ev = {.events = events, .data.u64 = h};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		s->cb = NULL;
		s->fd = -1;
		s->next = l->free_head;
		l->free_head = i;
		return -e;
	}
	s->cb = cb;
	s->ctx = ctx;
	s->arg = arg;
	s->fd = fd;
	s->late = late;
	return (int64_t)h;
}

/* The slot an event or a handle names, NULL when it is stale. */
static struct corral__loop_slot *lookup(struct corral__loop *l, uint64_t h)
{
	uint32_t i = (uint32_t)h, gen = (uint32_t)(h >> 32);

	if (i == 0 || i > l->n_slots)
		return NULL;
	struct corral__loop_slot *s = &l->slots[i - 1];
	return s->cb && s->gen == gen ? s : NULL;
}

static void release(struct corral__loop *l, corral__loop_handle *h, bool epoll_del)
{
	struct corral__loop_slot *s = *h ? lookup(l, *h) : NULL;

	*h = 0;
	if (!s)
		return;
	if (epoll_del && s->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->cb = NULL;
	s->fd = -1;
	s->gen++;
	if (s->gen == 0)
		s->gen = 1;
	uint32_t i = (uint32_t)(s - l->slots);
	s->next = l->free_head;
	l->free_head = i;
}

void corral__loop_del(struct corral__loop *l, corral__loop_handle *h)
{
	release(l, h, true);
}

void corral__loop_forget(struct corral__loop *l, corral__loop_handle *h)
{
	release(l, h, false);
}

int corral__loop_mod(struct corral__loop *l, corral__loop_handle h, uint32_t events)
{
	struct corral__loop_slot *s = h ? lookup(l, h) : NULL;

	if (!s)
		return -ENOENT;
	struct epoll_event ev = {.events = events, .data.u64 = h};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? -errno : 0;
}

void corral__loop_arm(struct corral__loop *l, uint64_t at)
{
	struct itimerspec its;

	if (at == l->timer_at)
		return;
	memset(&its, 0, sizeof(its));
	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / 1000000000u);
		its.it_value.tv_nsec = (long)(at % 1000000000u);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
	l->timer_at = at;
}

void corral__loop_kick(struct corral__loop *l)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = 1; /* an absolute time long past: fires at once */
	timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
	l->timer_at = 1;
}

int corral__loop_run(struct corral__loop *l, int timeout_ms)
{
	struct epoll_event evs[64];
	int n, fired = 0;

	n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0) {
				if (pass == 0) {
					uint64_t x;
					(void)!read(l->timerfd, &x, sizeof(x));
					l->timer_at = 0; /* force re-arming */
					fired = 1;
				}
				continue;
			}
			/* Looked up again for each event: a callback may have
			 * removed any source, this one included. */
			struct corral__loop_slot *s = lookup(l, evs[i].data.u64);
			if (!s || (pass == 0) == s->late)
				continue;
			s->cb(s->ctx, s->arg, evs[i].events);
		}
	}
	return fired;
}
