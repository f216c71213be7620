/* attempt_local.c - attempts on this node: the local site of the policy.
 *
 * The loop (loop.c) watches, per running attempt, its pidfd and its capture
 * pipes (and, while it drains, its cgroup.events on v2); the executor's one
 * timer serves every deadline (timeouts, kill grace, bounded waits). Every
 * wait is on something that fires: a pidfd, a pipe, a timer. Nothing polls
 * without a bound.
 *
 * Life of an attempt:
 *   start(): task cgroup created (or a recycled one claimed) with its
 *            limits, child spawned into it, pidfd + pipes registered
 *   RUNNING -> the pidfd is readable: reap() reaps the leader with
 *            waitid(P_PIDFD), then try_finish() reads the cgroup's counters
 *            *before* killing anything else, then kills what remains
 *   DRAINING -> wait (bounded) until the cgroup is empty and every pipe hit
 *            EOF
 *   finish(): classify (outcome.c), hand the result to the policy, remove
 *            the cgroup (leftovers are retried off the critical path).
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "local.h"
#include "syscalls.h"

extern char **environ;

enum {
	CAP_OUT,
	CAP_ERR,
	CAP_RES,
	CAP_N
};

struct lattempt {
	struct corral__attempt base; /* first: the policy's part */
	struct corral__local *l;
	struct lattempt *lprev, *lnext; /* the site's list, for timers */
	pid_t pid;
	int pidfd;
	int err_rfd;
	corral__loop_handle h_pid, h_cap[CAP_N], h_cgev;
	struct corral__cg_task cg;
	struct corral__capture cap[CAP_N];
	uint64_t start_ns, end_ns;
	double start_wall;
	uint64_t deadline_ns; /* timeout; 0 = none */
	uint64_t kill_at_ns;  /* SIGKILL after the grace; 0 = none */
	uint64_t recheck_ns;  /* while draining; 0 = none */
	uint64_t give_up_ns;  /* bound of draining */
	unsigned recheck_ms;
	bool draining;
	bool killed_timeout, killed_abort, killed_cgroup;
	uint64_t oom_at_kill;
	/* Facts gathered at reap time. */
	bool reaped, exited;
	int code, sig;
	struct rusage ru;
	struct corral__counters ctr;
	bool spawned;
	int spawn_errno, spawn_step;
	bool cleanup_incomplete;
	bool counted;                       /* ctr holds the counters read after the reap */
	struct corral__child_report report; /* a vfork-style child's failure (no error pipe) */
	struct corral__spawn_block *blk;    /* a child that ran beside us: its plan and report */
	/* The kernel's OOM reports naming this attempt's cgroup (kmsg). */
	corral_oom_victim_t victims[8];
	unsigned n_victims;
	char oom_memcg[256];
	/* Memory over time (options.timeline): at most CORRAL_TIMELINE_POINTS
	 * points, sampled every tl_every_ns; when full, every pair becomes its
	 * higher point and the interval doubles (the peak is never lost). */
	corral_sample_t *tl;
	unsigned tl_n;
	uint64_t tl_every_ns, tl_next_ns;
	/* Observe mode (provider.h): the enclosing cgroup's counter over its
	 * life, and how long it waits for rivals before it is judged. */
	struct corral__obs_attempt obs;
	uint64_t obs_hold_ns;
	/* Spawned by the zygote: waiting for its reply (no pid yet). */
	bool zyg_wait;
	bool kill_pending; /* a kill came while it waited: SIGKILL once the pidfd is here */
	int sig_pending;   /* corral_signal() came while it waited: sent then */
	uint64_t zyg_cookie;
	struct lattempt *zyg_next;
	struct corral__zslot *zs; /* the spawner it asked */
	/* A warm child (see "the warm child" below): made for the task the
	 * policy will start next, before it starts. Not the policy's until
	 * then (base.task is NULL), and never reported if it is not started. */
	bool warm;
	int gate_wfd; /* >= 0: its child waits at the gate */
	uint64_t warm_seq;
	unsigned warm_no;
	uint64_t warm_mem;
	bool was_warm;     /* started from a warm child */
	bool stall_killed; /* let go, it did not exec in time: its cgroup was killed */
};

#define ZYG_REPLY_NS (5000 * 1000000ull) /* a request unanswered this long: it is stuck */

#define TIMELINE_FIRST_NS (10 * 1000000ull) /* 10 ms */
#define VICTIM_WAIT_MS    100               /* for the kernel's second line */

static uint64_t ms_to_ns(uint64_t ms)
{
	return ms * 1000000u;
}

/* ------------------------------------------------------------ the batch's PID namespace */

/* The driving thread's children are born in the batch's PID namespace from
 * here until pidns_leave() (the executor leaves before any API call returns:
 * the caller's own forks stay in its namespace). */
static int pidns_enter(struct corral__local *l)
{
	if (l->wd.pidns_fd < 0 || l->pidns_saved >= 0)
		return 0;
	int fd = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(l->wd.pidns_fd, CLONE_NEWPID) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	l->pidns_saved = fd;
	return 0;
}

static void pidns_leave(struct corral__local *l)
{
	if (l->pidns_saved < 0)
		return;
	/* Back to a namespace we were in: cannot fail but for a kernel bug. */
	(void)setns(l->pidns_saved, CLONE_NEWPID);
	close(l->pidns_saved);
	l->pidns_saved = -1;
}

void corral__local_before_wait(struct corral__local *l)
{
	pidns_leave(l);
}

/* ------------------------------------------------------------ task cgroups */

static void attempt_close_fds(struct corral__local *l, struct lattempt *a)
{
	corral__loop_del(l->loop, &a->h_pid);
	corral__close(a->pidfd);
	a->pidfd = -1;
	corral__close(a->err_rfd);
	a->err_rfd = -1;
	for (int i = 0; i < CAP_N; i++) {
		if (a->cap[i].rfd >= 0)
			corral__loop_del(l->loop, &a->h_cap[i]);
		else
			corral__loop_forget(l->loop, &a->h_cap[i]);
		corral__capture_free(&a->cap[i]);
	}
	corral__loop_del(l->loop, &a->h_cgev);
}

/* Remove a task cgroup; one that resists goes to the leftovers, retried off
 * the critical path. Closes its fds either way. */
static void discard_task_cgroup(struct corral__local *l, struct corral__cg_task *cg)
{
	if (l->ops->remove(&l->batch, cg) == 0)
		return;
	/* Still busy (a process is slow to die): retry off the critical path. */
	struct leftover *lo = calloc(1, sizeof(*lo));
	if (lo) {
		snprintf(lo->name, sizeof(lo->name), "%s", cg->name);
		lo->next = l->leftovers;
		l->leftovers = lo;
		if (!l->leftover_at)
			l->leftover_at = corral__now_ns() + ms_to_ns(5);
	}
	corral__cg_task_close(cg);
}

static void remove_task_cgroup(struct corral__local *l, struct lattempt *a)
{
	if (!l->ops || !a->cg.created) {
		corral__cg_task_close(&a->cg);
		return;
	}
	corral__loop_del(l->loop, &a->h_cgev);
	/* Keep it for a later attempt; prepare_pool() decides whether it may
	 * serve (empty and clean) once the next attempts are started. */
	if (l->ops->recyclable && !a->cleanup_incomplete && l->pool && l->pool_n < l->pool_cap) {
		l->pool[l->pool_n++] = a->cg; /* unprepared: reuse() cleared the flag */
		corral__cg_task_init(&a->cg);
		return;
	}
	discard_task_cgroup(l, &a->cg);
}

/* Ready the pool's new arrivals, or remove those that may not serve again. */
static void prepare_pool(struct corral__local *l)
{
	uint64_t t0 = 0;

	for (unsigned i = 0; i < l->pool_n;) {
		struct corral__cg_task *cg = &l->pool[i];
		if (cg->prepared) {
			i++;
			continue;
		}
		if (!t0)
			t0 = corral__now_ns();
		if (l->ops->recyclable(&l->batch, cg) && l->ops->prepare(&l->batch, cg) == 0) {
			i++; /* prepare() set cg->prepared */
			continue;
		}
		discard_task_cgroup(l, cg);
		*cg = l->pool[--l->pool_n];
	}
	if (t0)
		l->prof.recycle_ns += corral__now_ns() - t0;
}

/* A prepared cgroup from the pool into *cg; false when there is none. */
static bool take_pooled(struct corral__local *l, struct corral__cg_task *cg)
{
	for (unsigned i = l->pool_n; i-- > 0;) {
		if (!l->pool[i].prepared)
			continue;
		*cg = l->pool[i];
		l->pool[i] = l->pool[--l->pool_n];
		return true;
	}
	return false;
}

static void retry_leftovers(struct corral__local *l)
{
	struct leftover **pp = &l->leftovers, *lo;
	bool v2 = l->batch.mode == CORRAL_CG_V2;

	while ((lo = *pp)) {
		bool gone = true;
		if (unlinkat(l->batch.dirfd, lo->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			gone = false;
		if (l->batch.pids_dirfd >= 0 &&
		    unlinkat(l->batch.pids_dirfd, lo->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			gone = false;
		if (!gone && ++lo->tries < 200) {
			/* Kill again: whatever is inside is ours. */
			cleanup_close int fd =
			    openat(l->batch.dirfd, lo->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0) {
				if (!v2 || corral__write_at(fd, "cgroup.kill", "1") < 0)
					corral__cg_kill_procs(fd);
			}
			pp = &lo->next;
			continue;
		}
		*pp = lo->next;
		free(lo);
	}
	l->leftover_at = l->leftovers ? corral__now_ns() + ms_to_ns(20) : 0;
}

/* ------------------------------------------------------------ killing */

/* SIGKILL the whole task: its cgroup, and its leader through the pidfd. The
 * leader is needed too: a child that has not yet written itself into
 * cgroup.procs (v1, or v2 without CLONE_INTO_CGROUP) is not in the cgroup,
 * so a kill of the cgroup alone misses it, and it would then exec and run
 * to its end. Until it has joined it has no children, so killing it is
 * enough; once it has, the cgroup kill takes the rest. */
static void kill_task(struct corral__local *l, struct lattempt *a)
{
	if (l->ops)
		l->ops->kill(&l->batch, &a->cg);
	if (!a->reaped && a->pidfd >= 0)
		corral__pidfd_send_signal(a->pidfd, SIGKILL);
	if (a->zyg_wait)
		a->kill_pending = true; /* its child may not have joined the cgroup yet */
}

static void kill_attempt(struct corral__local *l, struct lattempt *a, bool abort)
{
	if (a->reaped && !a->draining)
		return;
	if (abort)
		a->killed_abort = true;
	/* Was something already OOM-killed before we decided to kill? Then the
	 * OOM stays the cause (outcome.c). */
	if (l->ops && !a->killed_cgroup && !a->killed_timeout && !a->reaped) {
		struct corral__counters c;
		if (l->ops->read(&l->batch, &a->cg, &c) == 0)
			a->oom_at_kill = c.oom_kill;
	}
	a->killed_cgroup = true;
	a->kill_at_ns = 0;
	kill_task(l, a);
	if (!l->ops && a->pid > 0 && !l->o->foreground)
		kill(-a->pid, SIGKILL); /* its process group, the best we have */
}

static void site_kill(struct corral__site *s, struct corral__attempt *base, bool abort)
{
	struct corral__local *l = (struct corral__local *)s;
	struct lattempt *a = (struct lattempt *)base;

	if (a->reaped)
		return; /* its end is known: draining, or done */
	kill_attempt(l, a, abort);
}

static int site_signal(struct corral__site *s, struct corral__attempt *base, int sig)
{
	struct lattempt *a = (struct lattempt *)base;

	(void)s;
	if (a->zyg_wait && !a->reaped) {
		/* Its process runs, maybe, but the zygote's reply with its pidfd
		 * is still on the way: the signal goes with it. */
		a->sig_pending = sig;
		return 0;
	}
	if (a->reaped || a->pidfd < 0)
		return -ESRCH;
	return corral__pidfd_send_signal(a->pidfd, sig) < 0 ? -errno : 0;
}

static void on_timeout(struct corral__local *l, struct lattempt *a)
{
	a->deadline_ns = 0;
	if (a->reaped)
		return;
	a->killed_timeout = true;
	if (l->ops) {
		struct corral__counters c;
		if (l->ops->read(&l->batch, &a->cg, &c) == 0)
			a->oom_at_kill = c.oom_kill;
	}
	if (l->o->kill_grace_ns && a->pidfd >= 0) {
		/* timeout(1)'s manners: TERM to the leader first, KILL for all later. */
		corral__pidfd_send_signal(a->pidfd, SIGTERM);
		a->kill_at_ns = corral__now_ns() + l->o->kill_grace_ns;
		return;
	}
	a->killed_cgroup = true;
	if (l->ops)
		kill_task(l, a);
	else
		kill_attempt(l, a, false);
}

/* ------------------------------------------------------------ the end of an attempt */

static void unlink_local(struct corral__local *l, struct lattempt *a)
{
	if (a->lprev)
		a->lprev->lnext = a->lnext;
	else
		l->run_head = a->lnext;
	if (a->lnext)
		a->lnext->lprev = a->lprev;
	a->lprev = a->lnext = NULL;
}

static void warm_end(struct corral__local *l, struct lattempt *a);
static void warm_drop(struct corral__local *l);
static bool warm_stale(struct corral__local *l);

static void finish(struct corral__local *l, struct lattempt *a)
{
	if (a->warm) {
		warm_end(l, a); /* never started: nothing to report */
		return;
	}
	struct corral__facts f;
	struct corral__result_node *n = corral__result_new();
	struct corral__task *t = a->base.task;
	corral_result_t tmp;
	corral_result_t *r = n ? &n->r : &tmp;

	if (!n) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.out.fd = tmp.err.fd = tmp.fn_result.fd = -1;
	}
	/* Last bytes: the writers are gone, so this does not block. */
	for (int i = 0; i < CAP_N; i++)
		if (a->cap[i].rfd >= 0)
			corral__capture_drain(&a->cap[i], l->o->capture_max, l->o->tmpdir);

	memset(&f, 0, sizeof(f));
	f.spawned = a->spawned;
	f.spawn_errno = a->spawn_errno;
	f.spawn_step = corral__step_name(a->spawn_step);
	f.exited = a->exited;
	f.exit_code = a->code;
	f.term_signal = a->sig;
	f.oom_kills = a->ctr.oom_kill;
	f.oom_kills_at_kill = a->oom_at_kill;
	f.own_limit_hit = a->ctr.oom > 0;
	f.killed_timeout = a->killed_timeout;
	f.killed_abort = a->killed_abort;
	f.allow_subprocess_oom = l->o->allow_subprocess_oom;
	f.seccomp_kills = l->sb_on && l->sb.filter_kills;
	if (l->obs.on)
		corral__observer_facts(&l->obs, &a->obs, t->seq, &f);

	r->seq = t->seq;
	if (t->argv)
		snprintf(r->command, sizeof(r->command), "%s", t->argv[0]);
	r->attempt = a->base.no;
	r->pid = a->pid > 0 ? a->pid : 0; /* 0: never started (corral.h) */
	r->data = t->data;
	r->memory_max = a->base.memory_max;
	r->memory_peak = a->ctr.peak;
	r->pids_limit_hit = a->ctr.pids_max_hits > 0;
	r->start_time = a->start_wall;
	r->wall_s = a->end_ns > a->start_ns ? (double)(a->end_ns - a->start_ns) / 1e9 : 0;
	if (a->ctr.have_cpu) {
		r->user_s = (double)a->ctr.user_usec / 1e6;
		r->sys_s = (double)a->ctr.system_usec / 1e6;
	} else {
		r->user_s = (double)a->ru.ru_utime.tv_sec + (double)a->ru.ru_utime.tv_usec / 1e6;
		r->sys_s = (double)a->ru.ru_stime.tv_sec + (double)a->ru.ru_stime.tv_usec / 1e6;
	}
	corral__classify(&f, r);
	/* Seeing memory: the OOM victims, stalls, the timeline. */
	r->memory_stall_some = r->memory_stall_full = -1;
	uint64_t some_us, full_us;
	if (l->ops && l->ops->pressure && a->cg.created && a->spawned &&
	    l->ops->pressure(&l->batch, &a->cg, &some_us, &full_us) == 0) {
		r->memory_stall_some = (double)some_us / 1e6;
		r->memory_stall_full = (double)full_us / 1e6;
	}
	if (a->n_victims) {
		corral_oom_victim_t *v = malloc(a->n_victims * sizeof(*v));
		if (v) {
			memcpy(v, a->victims, a->n_victims * sizeof(*v));
			r->oom_victims = v;
			r->n_oom_victims = a->n_victims;
		}
		snprintf(r->oom_memcg, sizeof(r->oom_memcg), "%s", a->oom_memcg);
	}
	if (a->tl && a->tl_n) {
		r->n_timeline = a->tl_n;
		r->timeline = take_ptr(&a->tl);
		for (unsigned i = 1; i < r->n_timeline; i++)
			if (r->timeline[i].bytes > r->timeline[r->timeline_peak].bytes)
				r->timeline_peak = i;
	}
	free(a->tl);
	a->tl = NULL;
	if (t->fn && a->cap[CAP_RES].overflow && r->outcome == CORRAL_OK) {
		/* fn finished although we stopped reading: its result is cut. */
		r->outcome = CORRAL_EXIT;
		r->status = r->exit_code = 1;
	}
	for (int i = 0; i < CAP_N; i++) {
		corral_output_t *o = i == CAP_OUT   ? &r->out
		                     : i == CAP_ERR ? &r->err
		                                    : &r->fn_result;
		corral__capture_take(&a->cap[i], o);
	}
	corral__sentence(r, l->o->timeout_ns);
	if (f.observed)
		corral__observed_sentence(&f, r);
	if (t->fn && a->cap[CAP_RES].overflow) {
		size_t len = strlen(r->sentence);
		snprintf(r->sentence + len, sizeof(r->sentence) - len,
		         " (its result exceeded the %zu-byte cap)", l->o->fn_result_max);
	}
	for (int i = 0; i < CAP_N; i++) {
		if (!a->cap[i].dropped)
			continue;
		size_t len = strlen(r->sentence);
		snprintf(r->sentence + len, sizeof(r->sentence) - len,
		         " (%llu bytes of its %s after the first %llu were lost: %s)",
		         (unsigned long long)a->cap[i].dropped,
		         i == CAP_OUT   ? "stdout"
		         : i == CAP_ERR ? "stderr"
		                        : "result",
		         (unsigned long long)a->cap[i].total, strerror(a->cap[i].error));
	}

	attempt_close_fds(l, a);
	/* The child is gone: its spawn block (stack, plan) is free again. */
	corral__spawn_block_release(&l->scache, a->blk);
	a->blk = NULL;
	remove_task_cgroup(l, a);
	unlink_local(l, a);
	corral__policy_done(l->site.pol, &a->base, n, r);
	free(a);
}

/* ------------------------------------------------------------ the kernel's OOM reports */

/* The running attempt whose task cgroup the kernel named (task_memcg ends in
 * /<our batch>/<its cgroup>), NULL if none of ours. */
static struct lattempt *by_memcg(struct corral__local *l, const char *memcg)
{
	char pat[sizeof(l->batch.name) + 2];
	const char *p;

	snprintf(pat, sizeof(pat), "/%s/", l->batch.name);
	if (!l->batch.name[0] || !(p = strstr(memcg, pat)))
		return NULL;
	p += strlen(pat);
	for (struct lattempt *a = l->run_head; a; a = a->lnext)
		if (a->cg.created && !strcmp(a->cg.name, p))
			return a;
	return NULL;
}

static void kmsg_event(struct corral__local *l, const struct corral__kmsg_oom *ev)
{
	if (ev->kind == KMSG_OOM_KILL) {
		struct lattempt *a = by_memcg(l, ev->task_memcg);
		if (!a || a->n_victims == ARRAY_SIZE(a->victims))
			return;
		corral_oom_victim_t *v = &a->victims[a->n_victims++];
		memset(v, 0, sizeof(*v));
		v->pid = ev->pid;
		snprintf(v->comm, sizeof(v->comm), "%s", ev->comm);
		snprintf(a->oom_memcg, sizeof(a->oom_memcg), "%s",
		         ev->global ? "global" : ev->oom_memcg);
		return;
	}
	for (struct lattempt *a = l->run_head; a; a = a->lnext) {
		for (unsigned i = 0; i < a->n_victims; i++) {
			corral_oom_victim_t *v = &a->victims[i];
			if (v->pid != ev->pid || v->detailed)
				continue;
			v->total_vm = ev->total_vm;
			v->anon_rss = ev->anon_rss;
			v->file_rss = ev->file_rss;
			v->shmem_rss = ev->shmem_rss;
			v->oom_score_adj = ev->oom_score_adj;
			v->detailed = true;
			return;
		}
	}
}

/* Read what /dev/kmsg has, at most a bounded number of records (the loop
 * comes back for the rest): it never blocks and never starves the loop. */
static void kmsg_drain(struct corral__local *l)
{
	char rec[2048];

	for (int i = 0; l->kmsg_fd >= 0 && i < 512; i++) {
		ssize_t n = read(l->kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue; /* EPIPE: records were overwritten before we read them */
		if (n <= 0)
			return; /* EAGAIN: nothing more now */
		struct corral__kmsg_oom ev;
		if (corral__parse_kmsg_oom(rec, (size_t)n, &ev) == 0)
			kmsg_event(l, &ev);
	}
}

static void on_kmsg(void *ctx, int arg, uint32_t events)
{
	(void)arg;
	(void)events;
	kmsg_drain(ctx);
}

/* Is the kernel's second line of a victim still to come? */
static bool victims_pending(const struct lattempt *a)
{
	for (unsigned i = 0; i < a->n_victims; i++)
		if (!a->victims[i].detailed)
			return true;
	return false;
}

/* ------------------------------------------------------------ timelines */

static void timeline_add(struct lattempt *a, uint64_t now, uint64_t bytes)
{
	if (a->tl_n == CORRAL_TIMELINE_POINTS) {
		/* Full: each pair becomes its higher point, twice the interval. */
		unsigned k = 0;
		for (unsigned i = 0; i + 1 < a->tl_n; i += 2)
			a->tl[k++] = a->tl[i].bytes >= a->tl[i + 1].bytes ? a->tl[i] : a->tl[i + 1];
		a->tl_n = k;
		a->tl_every_ns *= 2;
	}
	a->tl[a->tl_n].t = (double)(now - a->start_ns) / 1e9;
	a->tl[a->tl_n].bytes = bytes;
	a->tl_n++;
}

static void timeline_sample(struct corral__local *l, struct lattempt *a, uint64_t now)
{
	uint64_t bytes;

	if (l->ops->current(&l->batch, &a->cg, &bytes) == 0)
		timeline_add(a, now, bytes);
	/* On a grid of the interval: attempts with the same interval are
	 * sampled in one wake-up. */
	a->tl_next_ns = (now / a->tl_every_ns + 1) * a->tl_every_ns;
}

static void on_cgev(void *ctx, int arg, uint32_t events);

/* Keep draining until the cgroup is empty and the pipes are closed, within a
 * bound; then finish. */
static void try_finish(struct corral__local *l, struct lattempt *a)
{
	uint64_t now = corral__now_ns();
	uint64_t t0 = now;
	bool pipes_open = false;
	int populated = 0;

	for (int i = 0; i < CAP_N; i++) {
		if (a->cap[i].rfd >= 0 &&
		    corral__capture_drain(&a->cap[i], l->o->capture_max, l->o->tmpdir) == 0)
			pipes_open = true;
		if (a->cap[i].rfd < 0) /* closed by the capture, out of the set */
			corral__loop_forget(l->loop, &a->h_cap[i]);
	}
	if (l->ops && a->cg.created) {
		populated = l->ops->populated(&l->batch, &a->cg);
		if (populated < 0)
			populated = 0; /* unreadable: rmdir will tell */
	}
	if (l->ops && !a->counted) {
		/* The counters, once, before anything else of the task is
		 * killed. Asked after populated(): those of a cgroup found empty
		 * are final, and serve as its next attempt's baselines. */
		uint64_t t1 = corral__now_ns();
		l->ops->read(&l->batch, &a->cg, &a->ctr);
		a->counted = true;
		l->prof.counters_ns += corral__now_ns() - t1;
	}
	/* The kernel's OOM report: its first line came before the kill, its
	 * second right after; wait a little for it, never long. */
	bool victims_wait = false;
	if (l->kmsg_fd >= 0 && a->ctr.oom_kill > 0) {
		kmsg_drain(l);
		victims_wait = victims_pending(a) && now < a->end_ns + ms_to_ns(VICTIM_WAIT_MS);
	}
	if (populated) {
		/* Whatever is left of the task dies with it (a daemon it
		 * double-forked, a pipe stage). */
		l->ops->kill(&l->batch, &a->cg);
		if (!a->h_cgev && l->batch.mode == CORRAL_CG_V2 && a->cg.events_fd >= 0) {
			int64_t h = corral__loop_add(l->loop, a->cg.events_fd, EPOLLPRI, false,
			                             on_cgev, a, 0);
			if (h > 0)
				a->h_cgev = (corral__loop_handle)h;
		}
	}
	/* Observe mode: a SIGKILLed task waits for rivals (observer.c). */
	bool held = a->obs_hold_ns > now && now < a->give_up_ns;
	if ((!pipes_open && !populated && !victims_wait && !held) || now >= a->give_up_ns) {
		if (pipes_open || populated)
			a->cleanup_incomplete = true;
		uint64_t t1 = corral__now_ns();
		l->prof.drain_ns += t1 - t0;
		finish(l, a);
		l->prof.cleanup_ns += corral__now_ns() - t1;
		return;
	}
	l->prof.drain_ns += corral__now_ns() - t0;
	/* Re-check with backoff: 1, 2, 4 ... 64 ms (pipes and cgroup.events
	 * wake us earlier). */
	a->recheck_ms = a->recheck_ms ? (a->recheck_ms < 64 ? a->recheck_ms * 2 : 64) : 1;
	a->recheck_ns = now + ms_to_ns(a->recheck_ms);
	if (held && !pipes_open && !populated && !victims_wait)
		a->recheck_ns = a->obs_hold_ns;
}

static void reap(struct corral__local *l, struct lattempt *a)
{
	siginfo_t si;
	struct corral__child_report rep;
	ssize_t n;
	uint64_t t0 = corral__now_ns();

	memset(&si, 0, sizeof(si));
	if (corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | WNOHANG | __WALL,
	                   &a->ru) < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		/* ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN by the
		 * caller, for fork()ed function tasks). The status is lost:
		 * record it as an exit with 255, a failure, never as success. */
		a->exited = true;
		a->code = 255;
	} else if (si.si_pid == 0) {
		return; /* not yet */
	} else if (si.si_code == CLD_EXITED) {
		a->exited = true;
		a->code = si.si_status;
	} else {
		a->exited = false;
		a->sig = si.si_status;
	}
	a->end_ns = corral__now_ns();
	a->reaped = true;
	a->deadline_ns = 0;
	a->kill_at_ns = 0;
	corral__loop_del(l->loop, &a->h_pid);

	/* Did the child fail before exec? EOF means it got there. */
	a->spawned = true;
	if (a->err_rfd < 0) {
		rep = a->blk ? a->blk->report : a->report; /* it shared our memory until exec */
		n = rep.step ? (ssize_t)sizeof(rep) : 0;
	} else {
		do
			n = read(a->err_rfd, &rep, sizeof(rep));
		while (n < 0 && errno == EINTR);
	}
	if (n == (ssize_t)sizeof(rep)) {
		a->spawned = false;
		a->spawn_step = rep.step;
		a->spawn_errno = rep.err;
	}
	l->prof.reap_ns += corral__now_ns() - t0;
	if (l->obs.on && !a->warm)
		a->obs_hold_ns = corral__observer_reaped(
		    &l->obs, &a->obs, a->base.task->seq,
		    !a->exited && a->sig == SIGKILL && !a->killed_cgroup && !a->killed_timeout);
	a->draining = true;
	a->give_up_ns = a->end_ns + ms_to_ns(5000);
	try_finish(l, a);
}

/* ------------------------------------------------------------ loop callbacks */

static void on_pid(void *ctx, int arg, uint32_t events)
{
	struct lattempt *a = ctx;

	(void)arg;
	(void)events;
	if (!a->reaped)
		reap(a->l, a);
}

static void on_cap(void *ctx, int i, uint32_t events)
{
	struct lattempt *a = ctx;
	struct corral__local *l = a->l;

	(void)events;
	if (corral__capture_drain(&a->cap[i], l->o->capture_max, l->o->tmpdir) != 0) {
		/* EOF or error: the capture closed the fd (and took it out of
		 * the epoll set first). */
		corral__loop_forget(l->loop, &a->h_cap[i]);
		if (a->draining)
			try_finish(l, a);
	}
}

static void on_cgev(void *ctx, int arg, uint32_t events)
{
	struct lattempt *a = ctx;

	(void)arg;
	(void)events;
	if (a->draining)
		try_finish(a->l, a);
}

/* ------------------------------------------------------------ starting */

static int need_procs_cb(void *ctx)
{
	struct lattempt *a = ctx;

	if (a->cg.procs_fd >= 0)
		return a->cg.procs_fd;
	a->cg.procs_fd = openat(a->cg.dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	return a->cg.procs_fd < 0 ? -errno : a->cg.procs_fd;
}

static void spawn_failed(struct corral__local *l, struct lattempt *a, int step, int e)
{
	a->spawned = false;
	a->spawn_step = step;
	a->spawn_errno = e;
	a->reaped = true;
	a->end_ns = corral__now_ns();
	finish(l, a);
}

/* The fd the child gets for a stream of the task. */
static int stdio_fd(struct corral__local *l, int fd)
{
	return fd >= 0 ? fd : l->devnull;
}

/* --user: the environment with the user's HOME, USER and LOGNAME instead of
 * the caller's. One allocation (free() it); NULL when out of memory. */
static char **user_env(const struct corral__sandbox_plan *sb, char *const *base)
{
	size_t n = 0, k = 0;

	for (; base[n]; n++)
		;
	char **out = malloc((n + ARRAY_SIZE(sb->user_env)) * sizeof(char *));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(base[i], "HOME=", 5) || !strncmp(base[i], "USER=", 5) ||
		    !strncmp(base[i], "LOGNAME=", 8))
			continue;
		out[k++] = base[i];
	}
	for (size_t i = 0; sb->user_env[i]; i++)
		out[k++] = sb->user_env[i];
	out[k] = NULL;
	return out;
}

/* Resolve the command in the parent (execvp is not async-signal-safe), with
 * a one-entry cache. Returns 0 or -errno. */
static int resolve(struct corral__local *l, const struct corral__task *t)
{
	const char *pathenv = NULL;

	if (t->envp) {
		for (char **e = t->envp; *e; e++)
			if (!strncmp(*e, "PATH=", 5))
				pathenv = *e + 5;
	} else {
		pathenv = getenv("PATH");
	}
	if (!pathenv)
		pathenv = "";
	if (strcmp(l->exe_argv0, t->argv[0]) != 0 || strcmp(l->exe_pathenv, pathenv) != 0 ||
	    strchr(t->argv[0], '/')) {
		l->exe_rc =
		    corral__resolve_exe(t->argv[0], pathenv, l->exe_path, sizeof(l->exe_path));
		if (strlen(t->argv[0]) < sizeof(l->exe_argv0) &&
		    strlen(pathenv) < sizeof(l->exe_pathenv)) {
			snprintf(l->exe_argv0, sizeof(l->exe_argv0), "%s", t->argv[0]);
			snprintf(l->exe_pathenv, sizeof(l->exe_pathenv), "%s", pathenv);
		} else {
			l->exe_argv0[0] = '\0';
		}
	}
	return l->exe_rc;
}

/* The limits of a task cgroup for an attempt with memory_max. */
static struct corral__limits task_limits(const struct corral__local *l, uint64_t memory_max)
{
	return (struct corral__limits){
	    .memory_max = memory_max,
	    .swap_max = l->o->swap_max,
	    .pids_max = l->o->pids_max,
	    .cpus = l->o->cpus,
	    .oom_group = l->o->oom_group,
	};
}

/* The task cgroup of a: a recycled one, or a new one. */
static int make_cgroup(struct corral__local *l, struct lattempt *a, bool via_zyg,
                       corral_error_t *err)
{
	struct corral__task *t = a->base.task;
	struct corral__limits lim = task_limits(l, a->base.memory_max);
	/* The zygote's children join through cgroup.procs (no clone3). */
	bool into = l->batch.clone_into_cgroup && !l->scache.no_into_cgroup && !t->fn && !via_zyg;
	uint64_t t0 = corral__now_ns();
	int rc = -ENOENT;

	if (take_pooled(l, &a->cg)) {
		/* An empty cgroup of an earlier attempt (it keeps its name). */
		rc = l->ops->reuse(&l->batch, &a->cg, &lim, err);
		if (rc < 0) {
			discard_task_cgroup(l, &a->cg);
			corral__cg_task_init(&a->cg);
		}
	}
	if (rc < 0) {
		/* A warm child's own name (numbered): the same attempt made
		 * again, warm or not, while a dropped one is still being
		 * reaped must not find its cgroup. */
		if (a->warm)
			snprintf(a->cg.name, sizeof(a->cg.name), "t%llu-a%u-w%u",
			         (unsigned long long)t->seq, a->base.no, ++l->warm_made);
		else
			snprintf(a->cg.name, sizeof(a->cg.name), "t%llu-a%u",
			         (unsigned long long)t->seq, a->base.no);
		rc = l->ops->create(&l->batch, &a->cg, &lim, !into, err);
	}
	l->prof.cgroup_create_ns += corral__now_ns() - t0;
	return rc;
}

/* ------------------------------------------------------------ the zygote */

static void on_zyg(void *ctx, int arg, uint32_t events);

/* Are the spawners' children born in their task cgroups (v2)? */
static bool zyg_into(const struct corral__local *l)
{
	return l->ops && l->batch.mode == CORRAL_CG_V2 && l->batch.clone_into_cgroup &&
	       !l->scache.no_into_cgroup;
}

/* Start the spawners; with none running, tasks are spawned directly. */
static void zyg_start(struct corral__local *l)
{
	corral_error_t err;
	int64_t h;

	for (unsigned i = 0; i < l->n_zyg; i++) {
		struct corral__zslot *z = &l->zyg[i];
		if (corral__zygote_start(&z->z, &l->sb, l->wd.pidns_fd, zyg_into(l), l->warm_off,
		                         &err) < 0) {
			l->zyg_errno = err.code;
			break; /* what fails for one fails for the next */
		}
		h = corral__loop_add(l->loop, corral__zygote_fd(z->z), EPOLLIN, false, on_zyg, l,
		                     (int)i);
		if (h < 0) {
			corral__zygote_stop(z->z);
			z->z = NULL;
			l->zyg_errno = (int)-h;
			break;
		}
		z->h = (corral__loop_handle)h;
	}
	l->zyg_off = !l->zyg[0].z;
	l->zyg_stale = false;
}

static void zyg_stop_one(struct corral__local *l, struct corral__zslot *z)
{
	corral__loop_del(l->loop, &z->h);
	corral__zygote_stop(z->z);
	z->z = NULL;
	z->deadline = 0;
}

static void zyg_stop(struct corral__local *l)
{
	for (unsigned i = 0; i < CORRAL_ZYG_MAX; i++)
		if (l->zyg[i].z)
			zyg_stop_one(l, &l->zyg[i]);
}

/* Should this task come from a spawner? Command tasks under a filter,
 * with a spawner up and its template current. */
static bool zyg_use(const struct corral__local *l, const struct corral__task *t)
{
	return !l->zyg_off && !l->zyg_stale && !t->fn;
}

/* A spawner is gone (died, stuck, or spoke nonsense): the attempts it held
 * end as spawn errors, their cgroups killed (a child it made may have joined
 * one); later tasks go to the others, or, with none left, are spawned
 * directly. */
static void spawn_failed(struct corral__local *l, struct lattempt *a, int step, int e);

static void zyg_dead(struct corral__local *l, struct corral__zslot *z, int e)
{
	zyg_stop_one(l, z);
	l->zyg_errno = e;
	l->zyg_off = true;
	for (unsigned i = 0; i < l->n_zyg; i++)
		if (l->zyg[i].z)
			l->zyg_off = false;
	while (z->head) {
		struct lattempt *a = z->head;
		z->head = a->zyg_next;
		a->zyg_wait = false;
		if (l->ops && a->cg.created)
			l->ops->kill(&l->batch, &a->cg);
		a->cleanup_incomplete = true; /* not recycled: something may still run */
		spawn_failed(l, a, STEP_SPAWNER, e);
	}
	z->tail = NULL;
	z->waiting = 0;
}

/* The answer due from z: its oldest request's, unless that child waits at
 * its gate (it answers once let go, which may be hours away). */
static void zyg_arm(struct corral__zslot *z)
{
	if (!z->head || z->head->gate_wfd >= 0)
		z->deadline = 0;
	else if (!z->deadline)
		z->deadline = corral__now_ns() + ZYG_REPLY_NS;
}

/* Close a warm child's gate: it exits (EOF) unless it was let go. */
static void warm_close_gate(struct corral__local *l, struct lattempt *a)
{
	(void)l;
	if (a->gate_wfd >= 0) {
		corral__close(a->gate_wfd);
		a->gate_wfd = -1;
	}
	if (a->zs && a->zs->gated == a)
		a->zs->gated = NULL;
	if (a->zs)
		zyg_arm(a->zs);
}

static void on_zyg(void *ctx, int arg, uint32_t events)
{
	struct corral__local *l = ctx;
	struct corral__zslot *z = &l->zyg[arg];

	(void)events;
	while (z->z) {
		uint64_t cookie;
		pid_t pid;
		int pidfd, clone_err, rc;
		struct corral__child_report rep;
		rc = corral__zygote_recv(z->z, &cookie, &pid, &pidfd, &rep, &clone_err);
		if (rc == -EAGAIN)
			break;
		struct lattempt *a = z->head;
		if (rc < 0 || !a || a->zyg_cookie != cookie) {
			corral__close(rc > 0 ? pidfd : -1);
			zyg_dead(l, z, rc < 0 ? -rc : EPROTO);
			return;
		}
		z->head = a->zyg_next;
		if (!z->head)
			z->tail = NULL;
		z->waiting--;
		a->zyg_wait = false;
		z->deadline = 0;
		zyg_arm(z);
		if (a->warm) {
			/* It ended before it was let go. Closed by us: as meant;
			 * anything else (a signal from outside, a filter that
			 * denies the gate's read): no more warm children here. */
			if (a->gate_wfd >= 0)
				l->warm_off = true;
			warm_close_gate(l, a);
		}
		if (clone_err) {
			spawn_failed(l, a, STEP_EXEC, clone_err);
			continue;
		}
		a->pid = pid;
		a->pidfd = pidfd;
		a->report = rep; /* step 0: it exec'd */
		int64_t h = corral__loop_add(l->loop, a->pidfd, EPOLLIN, true, on_pid, a, 0);
		if (h < 0) {
			siginfo_t si;
			corral__pidfd_send_signal(a->pidfd, SIGKILL);
			corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | __WALL,
			               &a->ru);
			corral__close(a->pidfd);
			a->pidfd = -1;
			spawn_failed(l, a, STEP_EXEC, ENOMEM);
			continue;
		}
		a->h_pid = (corral__loop_handle)h;
		if (a->sig_pending)
			corral__pidfd_send_signal(a->pidfd, a->sig_pending);
		if (a->kill_pending)
			corral__pidfd_send_signal(a->pidfd, SIGKILL);
	}
}

/* Hand the plan to the least busy spawner. 0, or -errno: then spawn
 * directly. */
static int zyg_submit(struct corral__local *l, struct lattempt *a, struct corral__child_plan *p)
{
	char cwd[PATH_MAX];
	const char *dir = a->base.task->cwd;
	struct corral__zslot *z = NULL;
	struct stat st;
	int rc;

	/* Not one whose child waits at its gate: it serves nothing until
	 * then. With none other, that child goes (and the request waits for
	 * its answer). */
	for (unsigned i = 0; i < l->n_zyg; i++)
		if (l->zyg[i].z && !l->zyg[i].gated && (!z || l->zyg[i].waiting < z->waiting))
			z = &l->zyg[i];
	if (!z && !a->warm && l->warm && l->warm->zs && l->warm->zs->z) {
		z = l->warm->zs;
		warm_drop(l);
	}
	if (!z)
		return -ESRCH;
	/* The directory as corral sees it, by path (resolved again in the
	 * template, and checked to be the same there). */
	if (!dir || dir[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if (dir) {
			size_t n = strlen(cwd);
			if (n + 1 + strlen(dir) + 1 > sizeof(cwd))
				return -ENAMETOOLONG;
			snprintf(cwd + n, sizeof(cwd) - n, "/%s", dir);
		}
		dir = cwd;
	}
	if (stat(dir, &st) < 0)
		return -errno;
	/* On v2 the spawner clones into the task cgroup (cgroup.procs stays
	 * its fallback). */
	int cgfd = zyg_into(l) ? a->cg.dirfd : -1;
	rc = corral__zygote_send(z->z, p, cgfd, dir, &st, ++l->zyg_cookie);
	if (rc < 0)
		return rc;
	a->zyg_wait = true;
	a->zyg_cookie = l->zyg_cookie;
	a->zyg_next = NULL;
	a->zs = z;
	if (z->tail)
		z->tail->zyg_next = a;
	else
		z->head = a;
	z->tail = a;
	z->waiting++;
	if (a->gate_wfd >= 0)
		z->gated = a;
	zyg_arm(z);
	return 0;
}

static void close3(int *fds)
{
	for (int j = 0; j < CAP_N; j++)
		corral__close(fds[j]);
}

static void launch(struct corral__local *l, struct lattempt *a);

static void spawn(struct corral__local *l, struct lattempt *a)
{
	struct corral__task *t = a->base.task;
	struct corral__spawn_req req;
	int child_w[CAP_N] = {-1, -1, -1};
	corral_error_t err;
	cleanup_free char **envp = NULL;
	int rc;

	if (!t->fn && (rc = resolve(l, t)) < 0) {
		spawn_failed(l, a, STEP_EXEC, -rc);
		return;
	}
	bool via_zyg = zyg_use(l, t);
	if (l->ops && (rc = make_cgroup(l, a, via_zyg, &err)) < 0) {
		spawn_failed(l, a, STEP_CGROUP, -rc);
		return;
	}
	for (int i = 0; i < CAP_N; i++) {
		bool want = i == CAP_RES ? t->fn != NULL : t->fds[i + 1] == CORRAL_FD_CAPTURE;
		if (!want)
			continue;
		rc = corral__capture_open(&a->cap[i], &child_w[i], &err);
		if (rc < 0) {
			close3(child_w);
			spawn_failed(l, a, STEP_STDIO, -rc);
			return;
		}
	}

	memset(&req, 0, sizeof(req));
	struct corral__child_plan *p = &req.plan;
	p->path = l->exe_path;
	p->argv = t->argv;
	p->envp = t->envp ? t->envp : environ;
	if (l->sb_on && l->sb.drop_user) {
		if (!(envp = user_env(&l->sb, p->envp))) {
			close3(child_w);
			spawn_failed(l, a, STEP_USER, ENOMEM);
			return;
		}
		p->envp = envp;
	}
	p->fn = t->fn;
	p->fn_arg = t->fn_arg;
	p->fn_out_fd = child_w[CAP_RES];
	p->cwd = t->cwd;
	p->stdio[0] = stdio_fd(l, t->fds[0]);
	p->stdio[1] = child_w[CAP_OUT] >= 0 ? child_w[CAP_OUT] : stdio_fd(l, t->fds[1]);
	p->stdio[2] = child_w[CAP_ERR] >= 0 ? child_w[CAP_ERR] : stdio_fd(l, t->fds[2]);
	p->procs_fd = a->cg.procs_fd;
	p->pids_procs_fd = a->cg.pids_procs_fd;
	p->new_pgroup = !l->o->foreground;
	p->sb = l->sb_on ? &l->sb : NULL;
	p->after_fork_child = l->o->after_fork_child;
	req.cgroup_dirfd = l->ops && l->batch.mode == CORRAL_CG_V2 ? a->cg.dirfd : -1;
	req.use_fork = t->fn != NULL;
	req.before_fork = l->o->before_fork;
	req.after_fork_parent = l->o->after_fork_parent;
	/* A warm child waits at its gate: one end for it, one for us
	 * (a socket: a send to a child that is gone is EPIPE, not SIGPIPE). */
	int gate[2] = {-1, -1};
	if (a->warm) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate) < 0) {
			close3(child_w);
			spawn_failed(l, a, STEP_GATE, errno);
			return;
		}
		p->gated = true;
		p->gate_fd = gate[0];
		a->gate_wfd = gate[1];
	}

	/* Into the batch's PID namespace: for our own children, and for the
	 * template's helper when the template must be made again; the zygote's
	 * children are born there from the zygote. */
	bool stale = l->sb_on && (l->sb_news || corral__sandbox_stale(&l->sb));
	l->sb_news = false;
	if ((!via_zyg || stale) && (rc = pidns_enter(l)) < 0) {
		close3(child_w);
		corral__close(gate[0]);
		spawn_failed(l, a, STEP_SETNS, -rc);
		return;
	}
	req.in_pid_ns = l->wd.pidns_fd >= 0;
	if (stale && corral__sandbox_refresh(&l->sb) && !l->zyg_off) {
		/* A new template: the spawners live in the old one. */
		l->zyg_stale = true;
		via_zyg = false;
	}
	uint64_t t_spawn = corral__now_ns();
	bool direct = true;
	if (via_zyg) {
		req.plan.parent_pid = req.in_pid_ns ? 0 : getpid();
		if (!req.plan.procs_fd || req.plan.procs_fd < 0) {
			int fd = need_procs_cb(a);
			req.plan.procs_fd = fd >= 0 ? fd : -1;
		}
		direct = zyg_submit(l, a, &req.plan) < 0;
	}
	corral__close(gate[0]);
	if (a->warm && (direct || !via_zyg)) {
		/* Only from a spawner; else the task starts as any other. */
		close3(child_w);
		spawn_failed(l, a, STEP_GATE, ESRCH);
		return;
	}
	rc = 0;
	if (direct && (rc = pidns_enter(l)) < 0) {
		close3(child_w);
		spawn_failed(l, a, STEP_SETNS, -rc);
		return;
	}
	if (direct)
		rc = corral__spawn(&req, &l->scache, need_procs_cb, a, &a->pid, &a->pidfd,
		                   &a->err_rfd, &a->report, &a->blk, &err);
	l->prof.spawn_ns += corral__now_ns() - t_spawn;
	close3(child_w);
	if (rc < 0) {
		spawn_failed(l, a, STEP_EXEC, -rc);
		return;
	}
	/* The parent no longer needs the cgroup.procs fds (and the child has
	 * used or inherited them), unless the cgroup may serve again. */
	if (!l->ops || !l->ops->reuse) {
		corral__close(a->cg.procs_fd);
		corral__close(a->cg.pids_procs_fd);
		a->cg.procs_fd = a->cg.pids_procs_fd = -1;
	}
	if (!a->warm)
		launch(l, a);
}

/* The spawned attempt into the loop: its pidfd (once the spawner's answer
 * brings it), its pipes, its deadlines. */
static void launch(struct corral__local *l, struct lattempt *a)
{
	int64_t h = 0;
	if (!a->zyg_wait)
		h = corral__loop_add(l->loop, a->pidfd, EPOLLIN, true, on_pid, a, 0);
	if (h < 0) {
		kill_attempt(l, a, false);
		/* Without the pidfd in the set we would never notice the exit:
		 * wait for it here (it was just SIGKILLed). */
		siginfo_t si;
		corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | __WALL, &a->ru);
		corral__close(a->pidfd);
		a->pidfd = -1;
		spawn_failed(l, a, STEP_EXEC, ENOMEM);
		return;
	}
	a->h_pid = (corral__loop_handle)h; /* 0 while the zygote's reply is due */
	for (int i = 0; i < CAP_N; i++) {
		if (a->cap[i].rfd < 0)
			continue;
		h = corral__loop_add(l->loop, a->cap[i].rfd, EPOLLIN, false, on_cap, a, i);
		if (h < 0) {
			corral__capture_close(&a->cap[i]); /* lose output rather than hang */
		} else {
			a->h_cap[i] = (corral__loop_handle)h;
			a->cap[i].epfd = l->loop->epfd;
		}
	}
	if (l->o->timeout_ns != CORRAL_UNLIMITED && l->o->timeout_ns > 0)
		a->deadline_ns = a->start_ns + l->o->timeout_ns;
	if (l->obs.on)
		corral__observer_started(&l->obs, &a->obs);
	if (l->o->timeline && l->ops && (a->tl = malloc(CORRAL_TIMELINE_POINTS * sizeof(*a->tl)))) {
		a->tl_every_ns = TIMELINE_FIRST_NS;
		a->tl_next_ns = (a->start_ns / a->tl_every_ns + 1) * a->tl_every_ns;
	}
}

static struct lattempt *attempt_new(struct corral__local *l)
{
	struct lattempt *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->l = l;
	a->pid = -1;
	a->pidfd = a->err_rfd = a->gate_wfd = -1;
	corral__cg_task_init(&a->cg);
	for (int i = 0; i < CAP_N; i++)
		corral__capture_init(&a->cap[i]);
	a->cap[CAP_RES].limit = l->o->fn_result_max;
	/* Linked first: every exit path goes through finish(). */
	a->lnext = l->run_head;
	if (l->run_head)
		l->run_head->lprev = a;
	l->run_head = a;
	return a;
}

/* ------------------------------------------------------------ the warm child
 *
 * At -j 1 a task cannot start before the one before it ended (the ordered
 * verdict needs its outcome first), and its spawn lay on the critical path:
 * the spawner's round trip, the clone and the child's steps. So while every
 * slot is busy, the task at the head of the queue is readied ahead
 * (policy.h, prepare): its cgroup, pipes and a spawner's child that has
 * done every step up to its exec, the task's privileges and filter
 * included, and waits at a gate (child.c, step 14). When the policy starts
 * that task (same seq, attempt and limit), one byte lets it go: the exec is
 * all that is left. Anything else (another task starts, the batch halts or
 * ends) closes the gate and the child exits without an exec; its spawner's
 * answer then ends it here, reaped and its cgroup recycled, never reported.
 *
 * Where it pays (README, issue 17): with fewer slots than CPUs (it is made
 * on a CPU the running tasks leave idle; at -j 2 on 2 CPUs it took 1.28x ->
 * 1.40x the floor), and where the child is born in its cgroup (v2,
 * CLONE_INTO_CGROUP). On v1 its two cgroup.procs writes are migrations
 * (the cgroup threadgroup lock for writing, an RCU grace period) done
 * while the running task runs, and that task ran slower by about what the
 * next one gained (perf: exit -> next exec ~35 us shorter, exec -> exit
 * longer; end to end no gain in 9 rounds); the cause is likely, not proven.
 * In the v2 VM at -j 1 it was faster in 7 of 8 rounds, by 8 % (median).
 *
 * At most one at a time, only from a spawner (a direct spawn would hold
 * corral's memory), and its spawner serves nothing else meanwhile (CLONE_VFORK:
 * it waits for the exec): another request closes the gate when no other
 * spawner is free. Nothing of it is the task's before it is let go: the
 * task's start time, timeout, and the policy's attempt begin then. A warm
 * child that ends unbidden (a signal: the running task, in the same PID
 * namespace and of the same user, can name it; a filter that denies the
 * read) turns warm children off for the batch, and its task starts as any
 * other. At its gate it sends corral a pidfd of itself (child.c): when let
 * go, one that died meanwhile is seen (its task starts as any other) and
 * one that was stopped is woken (SIGCONT). One stopped again after that
 * does not exec: its cgroup is killed after ZYG_REPLY_NS (local_timer),
 * and its task ends killed, as a task a sibling stops and kills at -j 2.
 * A changed mount table (a new template) drops it. CORRAL_WARM=0 turns
 * them off.
 */

/* The warm child is not wanted: its gate closes; the spawner's answer for
 * it ends it (finish -> warm_end). */
static void warm_drop(struct corral__local *l)
{
	struct lattempt *a = l->warm;

	if (!a)
		return;
	l->warm = NULL;
	warm_close_gate(l, a);
}

static void warm_end(struct corral__local *l, struct lattempt *a)
{
	if (l->warm == a)
		l->warm = NULL;
	warm_close_gate(l, a);
	attempt_close_fds(l, a);
	corral__spawn_block_release(&l->scache, a->blk);
	a->blk = NULL;
	remove_task_cgroup(l, a);
	unlink_local(l, a);
	free(a);
}

/* Where no warm child is made: while every slot is busy, the cgroup of the
 * task at the head of the queue is made now, off the critical path, unless
 * the pool has one ready. Where cgroups are recycled that happens at the
 * batch's start only (then the pool keeps one ready); where they are not
 * (v2 before Linux 6.12) it moves every task's mkdir off the critical path.
 * A cgroup that never ran anything has counters at 0 and a peak of its own:
 * it serves as prepared. Its name is that task's, numbered, as a warm
 * child's: another task may take it, and its own name stays free. */
static void cgroup_ahead(struct corral__local *l, const struct corral__task *t, unsigned no,
                         uint64_t memory_max)
{
	struct corral__limits lim = task_limits(l, memory_max);
	struct corral__cg_task cg;
	corral_error_t err;

	if (!l->ops || !l->pool || l->ahead_off || l->pool_n >= l->pool_cap)
		return;
	/* Where cgroups are recycled, a finished one in the pool serves too
	 * (readied after this round's spawns): one made besides it would fill
	 * the pool, and the cgroup of a task that finds it full is removed on
	 * the critical path. Elsewhere a finished one is only waiting to be
	 * removed. */
	bool recycled = l->batch.mode != CORRAL_CG_V2 || l->batch.peak_reset;
	for (unsigned i = 0; i < l->pool_n; i++)
		if (l->pool[i].prepared || recycled)
			return;
	uint64_t t0 = corral__now_ns();
	corral__cg_task_init(&cg);
	snprintf(cg.name, sizeof(cg.name), "t%llu-a%u-p%u", (unsigned long long)t->seq, no,
	         ++l->ahead_made);
	if (l->ops->create(&l->batch, &cg, &lim, false, &err) < 0) {
		l->ahead_off = true; /* it would fail again every round */
		if (cg.created)
			discard_task_cgroup(l, &cg);
		else
			corral__cg_task_close(&cg);
		return;
	}
	cg.prepared = true;
	l->pool[l->pool_n++] = cg;
	l->prof.recycle_ns += corral__now_ns() - t0;
}

static void site_prepare(struct corral__site *s, const struct corral__task *t, unsigned no,
                         uint64_t memory_max)
{
	struct corral__local *l = (struct corral__local *)s;
	struct lattempt *w = l->warm;

	if (l->warm_off || !zyg_use(l, t) || l->o->foreground || l->obs.on) {
		warm_drop(l);
		cgroup_ahead(l, t, no, memory_max);
		return;
	}
	if (w && w->warm_seq == t->seq && w->warm_no == no && w->warm_mem == memory_max)
		return; /* ready */
	warm_drop(l);
	if (warm_stale(l)) {
		cgroup_ahead(l, t, no, memory_max);
		return;
	}
	bool free_spawner = false;
	for (unsigned i = 0; i < l->n_zyg; i++)
		free_spawner |= l->zyg[i].z && !l->zyg[i].gated;
	if (!free_spawner || !(w = attempt_new(l))) {
		cgroup_ahead(l, t, no, memory_max);
		return;
	}
	w->warm = true;
	w->warm_seq = t->seq;
	w->warm_no = w->base.no = no;
	w->warm_mem = w->base.memory_max = memory_max;
	w->base.task = (struct corral__task *)t; /* for spawn() only */
	l->warm = w;
	spawn(l, w); /* may end it (finish -> warm_end) */
	if (l->warm == w)
		w->base.task = NULL; /* the policy's until it starts */
}

/* Has the mount table changed since the spawners' template was made? Then
 * no warm child is made or let go: spawn() makes a new template, and new
 * spawners once the old ones have answered. */
static bool warm_stale(struct corral__local *l)
{
	/* poll() takes the news once: keep it for spawn(). */
	if (l->sb_on && !l->sb_news && corral__sandbox_stale(&l->sb))
		l->sb_news = true;
	return l->sb_news;
}

/* The pidfd a warm child sent of itself once at its gate (child.c), or -1:
 * not there yet (or it could not send one). */
static int gate_pidfd(int gate)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	int fd = -1;
	ssize_t n;

	do
		n = recvmsg(gate, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Let the warm child go: true, or false when it is gone (killed at its
 * gate by someone: its spawner's answer will end it, unreported). */
static bool warm_go(struct corral__local *l, struct lattempt *a, struct corral__task *t)
{
	uint64_t now = corral__now_ns();
	ssize_t n = -1;

	l->warm = NULL;
	/* Still there? (Its spawner holds the other end of the gate until
	 * it answers, so a send alone would not tell.) A stopped one is
	 * woken: a task may have stopped it. */
	int pfd = gate_pidfd(a->gate_wfd);
	bool gone = false;
	if (pfd >= 0) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		gone = corral__waitid((idtype_t)P_PIDFD, (id_t)pfd, &si,
		                      WEXITED | WNOHANG | WNOWAIT | __WALL, NULL) < 0 ||
		       si.si_pid != 0;
		if (!gone)
			corral__pidfd_send_signal(pfd, SIGCONT);
		close(pfd);
	}
	if (!gone)
		do
			n = send(a->gate_wfd, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
	if (n != 1) {
		l->warm_off = true;
		warm_close_gate(l, a);
		return false;
	}
	corral__policy_begin(&l->site, &a->base, t, a->warm_no, a->warm_mem);
	a->warm = false;
	a->was_warm = true;
	a->start_ns = now;
	a->start_wall = corral__wall_now();
	warm_close_gate(l, a);
	launch(l, a);
	return true;
}

static int site_start(struct corral__site *s, struct corral__task *t, unsigned no,
                      uint64_t memory_max)
{
	struct corral__local *l = (struct corral__local *)s;
	struct lattempt *w = l->warm;

	if (w && w->gate_wfd >= 0 && w->warm_seq == t->seq && w->warm_no == no &&
	    w->warm_mem == memory_max && !warm_stale(l) && warm_go(l, w, t))
		return 0;
	warm_drop(l);
	struct lattempt *a = attempt_new(l);
	if (!a)
		return -ENOMEM;
	corral__policy_begin(s, &a->base, t, no, memory_max);
	a->start_ns = corral__now_ns();
	a->start_wall = corral__wall_now();
	spawn(l, a); /* a may be gone when it returns (a spawn that failed) */
	return 0;
}

/* The loop round, as the policy's site interface has it. */
static void site_before_wait(struct corral__site *s)
{
	corral__local_before_wait((struct corral__local *)s);
}

static uint64_t site_deadline(const struct corral__site *s)
{
	return corral__local_deadline((const struct corral__local *)s);
}

static void site_timer(struct corral__site *s, uint64_t now)
{
	corral__local_timer((struct corral__local *)s, now);
}

static void site_after_round(struct corral__site *s)
{
	corral__local_after_round((struct corral__local *)s);
}

static void site_force_out(struct corral__site *s)
{
	corral__local_force_out((struct corral__local *)s);
}

static const struct corral__site_ops local_ops = {
    .start = site_start,
    .kill = site_kill,
    .signal = site_signal,
    .before_wait = site_before_wait,
    .deadline = site_deadline,
    .timer = site_timer,
    .after_round = site_after_round,
    .force_out = site_force_out,
    .prepare = site_prepare,
};

/* ------------------------------------------------------------ the loop round */

uint64_t corral__local_deadline(const struct corral__local *l)
{
	uint64_t at = UINT64_MAX;

	for (const struct lattempt *a = l->run_head; a; a = a->lnext) {
		if (a->deadline_ns && !a->reaped && a->deadline_ns < at)
			at = a->deadline_ns;
		if (a->kill_at_ns && a->kill_at_ns < at)
			at = a->kill_at_ns;
		if (a->draining && a->recheck_ns && a->recheck_ns < at)
			at = a->recheck_ns;
		if (a->tl && !a->reaped && a->tl_next_ns < at)
			at = a->tl_next_ns;
	}
	if (l->leftovers && l->leftover_at && l->leftover_at < at)
		at = l->leftover_at;
	for (unsigned i = 0; i < l->n_zyg; i++)
		if (l->zyg[i].deadline && l->zyg[i].deadline < at)
			at = l->zyg[i].deadline;
	return at;
}

void corral__local_timer(struct corral__local *l, uint64_t now)
{
	struct lattempt *a, *next;

	for (a = l->run_head; a; a = next) {
		next = a->lnext; /* try_finish() may free a */
		if (a->deadline_ns && now >= a->deadline_ns)
			on_timeout(l, a);
		if (a->kill_at_ns && now >= a->kill_at_ns) {
			a->kill_at_ns = 0;
			a->killed_cgroup = true;
			if (l->ops)
				kill_task(l, a);
			else
				kill_attempt(l, a, false);
		}
		if (a->tl && !a->reaped && now >= a->tl_next_ns)
			timeline_sample(l, a, now);
		if (a->draining && a->recheck_ns && now >= a->recheck_ns) {
			a->recheck_ns = 0;
			try_finish(l, a);
		}
	}
	if (l->leftovers && l->leftover_at && now >= l->leftover_at)
		retry_leftovers(l);
	for (unsigned i = 0; i < l->n_zyg; i++) {
		struct corral__zslot *z = &l->zyg[i];
		if (z->z && z->deadline && now >= z->deadline && z->head) {
			struct lattempt *h = z->head;
			if (h->was_warm && !h->stall_killed && l->ops) {
				/* A warm child let go that does not exec: stopped
				 * at its gate by someone (a task can see it).
				 * Its cgroup, which it joined before the gate,
				 * dies; the spawner is not to blame (yet). */
				h->stall_killed = true;
				l->ops->kill(&l->batch, &h->cg);
				z->deadline = now + ZYG_REPLY_NS;
				continue;
			}
			/* Stuck (stopped by someone, or a child that never
			 * execs): kill it; the attempts it held fail. */
			corral__zygote_kill(z->z);
			zyg_dead(l, z, ETIMEDOUT);
		}
	}
}

void corral__local_after_round(struct corral__local *l)
{
	pidns_leave(l);
	if (l->pool)
		prepare_pool(l);
	/* A new template came: once the old spawners have answered
	 * everything, new ones in the new template (out of the batch's
	 * namespace). */
	if (l->zyg_stale) {
		bool busy = false;
		for (unsigned i = 0; i < l->n_zyg; i++)
			busy |= l->zyg[i].head != NULL;
		if (!busy) {
			zyg_stop(l);
			zyg_start(l);
		}
	}
}

/* ------------------------------------------------------------ making and freeing the site */

int corral__local_new(corral_options_t *o, struct corral__loop *loop, struct corral__local **out,
                      corral_error_t *err)
{
	struct corral__local *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l)
		return corral__err(err, ENOMEM, "allocate the executor");
	l->site.ops = &local_ops;
	l->site.slots = o->jobs;
	l->site.budget = o->memory_budget;
	l->o = o;
	l->loop = loop;
	l->batch.dirfd = l->batch.pids_dirfd = -1;
	l->wd.pid = -1;
	l->wd.pidfd = l->wd.wfd = l->wd.pidns_fd = -1;
	l->pidns_saved = -1;
	l->kmsg_fd = -1;
	l->obs.fd = -1;
	l->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (l->devnull < 0) {
		rc = corral__err(err, errno, "open /dev/null");
		goto fail;
	}

	/* Where the task cgroups come from (provider.c): a batch cgroup, an
	 * observer of the enclosing cgroup, or nothing. */
	rc = corral__provide(o, &l->hier, &l->batch, &l->obs, &l->prov, err);
	if (rc < 0)
		goto fail;
	if (l->prov.limits) {
		l->have_batch = true;
		l->ops = l->batch.mode == CORRAL_CG_V2 ? &corral__cg_v2_ops : &corral__cg_v1_ops;
		/* v1 keeps up to 11 fds per task cgroup (dirs, cgroup.procs,
		 * counter files), and up to 3 x jobs task cgroups exist (running
		 * and pooled): counter files stay open only where the fd limit
		 * leaves that and 1024 more; elsewhere they are opened per read. */
		struct rlimit nofile;
		l->batch.cache_fds = getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
		                     (nofile.rlim_cur == RLIM_INFINITY ||
		                      nofile.rlim_cur >= (rlim_t)o->jobs * 3 * (4 + CGF_N) + 1024);
		if (l->ops->reuse && !getenv("CORRAL_NO_RECYCLE")) {
			l->pool_cap = o->jobs * 2;
			l->pool = calloc(l->pool_cap, sizeof(*l->pool));
		}
	} else {
		/* No cgroups of ours: nothing for the read-only cgroup namespace
		 * to protect (the CLI asks for it by default). */
		o->no_cgroups = true;
		o->sandbox.cgroup_ns = false;
	}
	/* The kernel's OOM reports, from now on (root or CAP_SYSLOG where
	 * kernel.dmesg_restrict is 1). */
	if (l->have_batch) {
		l->kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (l->kmsg_fd < 0 || lseek(l->kmsg_fd, 0, SEEK_END) < 0) {
			l->kmsg_errno = errno;
			corral__close(l->kmsg_fd);
			l->kmsg_fd = -1;
		} else {
			int64_t h =
			    corral__loop_add(loop, l->kmsg_fd, EPOLLIN, false, on_kmsg, l, 0);
			if (h > 0)
				l->h_kmsg = (corral__loop_handle)h;
		}
	}
	/* The watchdog: it removes the batch's cgroups when we die, and with the
	 * sandbox's PID namespace it is that namespace's init (watchdog.c). */
	if (l->have_batch || o->sandbox.pid_ns) {
		rc = corral__watchdog_start(l->have_batch ? &l->batch : NULL, o->sandbox.pid_ns,
		                            &l->wd, err);
		if (rc < 0)
			goto fail;
	}
	if (corral__sandbox_enabled(&o->sandbox)) {
		/* The template mount namespace's helper mounts a /proc of the
		 * batch's PID namespace: it is born there. */
		rc = pidns_enter(l);
		if (rc < 0) {
			rc = corral__err(err, -rc, "enter the batch's PID namespace");
			goto fail;
		}
		rc = corral__sandbox_prepare(&o->sandbox, &l->hier, &l->sb, err);
		pidns_leave(l);
		if (rc < 0)
			goto fail;
		l->sb_on = true;
	}
	/* The spawner: worth it where a task would load a filter (and join the
	 * template); CORRAL_SPAWN=direct (or fork, vfork) spawns every task
	 * itself. */
	const char *mode = getenv("CORRAL_SPAWN");
	const char *warm = getenv("CORRAL_WARM");
	l->warm_off = warm && !strcmp(warm, "0");
	l->zyg_off = true;
	if (l->sb_on && l->sb.has_filter &&
	    (!(l->sb.unshare_flags & CLONE_NEWNS) || l->sb.mnt_ns_fd >= 0) && !(mode && *mode)) {
		/* One per CPU we may run on, no more than tasks run at once. */
		cpu_set_t set;
		unsigned cpus = 1;
		if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
			cpus = (unsigned)CPU_COUNT(&set);
		l->n_zyg = cpus < o->jobs ? cpus : o->jobs;
		/* Warm children: see there for where they pay. */
		if (o->jobs >= cpus || !zyg_into(l))
			l->warm_off = true;
		if (l->n_zyg > CORRAL_ZYG_MAX)
			l->n_zyg = CORRAL_ZYG_MAX;
		if (!l->n_zyg)
			l->n_zyg = 1;
		zyg_start(l);
	}
	*out = l;
	return 0;
fail:
	corral__local_free(l);
	return rc;
}

void corral__local_force_out(struct corral__local *l)
{
	/* The spawners' answers still due, bounded: they bring the pidfds of
	 * children to kill and reap here (a warm one exits once its gate is
	 * closed), which would otherwise stay zombies. */
	warm_drop(l);
	uint64_t until = corral__now_ns() + ms_to_ns(1000);
	for (unsigned i = 0; i < CORRAL_ZYG_MAX; i++) {
		struct corral__zslot *z = &l->zyg[i];
		while (z->z && z->head) {
			uint64_t now = corral__now_ns();
			if (now >= until)
				break;
			struct pollfd pfd = {.fd = corral__zygote_fd(z->z), .events = POLLIN};
			if (poll(&pfd, 1, (int)((until - now) / 1000000) + 1) <= 0)
				break;
			on_zyg(l, (int)i, 0);
		}
	}
	for (unsigned i = 0; i < CORRAL_ZYG_MAX; i++) {
		/* their children die with their cgroups */
		l->zyg[i].head = l->zyg[i].tail = NULL;
		l->zyg[i].waiting = 0;
	}
	while (l->run_head) {
		struct lattempt *a = l->run_head;
		a->zyg_wait = false;
		if (a->pidfd >= 0 && !a->reaped) {
			corral__pidfd_send_signal(a->pidfd, SIGKILL);
			siginfo_t si;
			corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | __WALL,
			               &a->ru);
		}
		a->reaped = true;
		finish(l, a);
	}
}

void corral__local_free(struct corral__local *l)
{
	if (!l)
		return;
	corral__local_force_out(l);
	zyg_stop(l); /* it lives in our cgroup: before the teardown */
	pidns_leave(l);
	while (l->leftovers) {
		struct leftover *lo = l->leftovers;
		l->leftovers = lo->next;
		free(lo);
	}
	/* The recycled cgroups are empty; the teardown removes their dirs. */
	for (unsigned i = 0; i < l->pool_n; i++)
		corral__cg_task_close(&l->pool[i]);
	free(l->pool);
	l->pool = NULL;
	l->pool_n = 0;
	/* The watchdog lives in our cgroup: with a v2 supervisor the teardown
	 * must leave that empty, so it goes first; otherwise it goes last, so
	 * that a SIGKILL during the teardown still leaves it to finish the job
	 * (stopping it before left the batch cgroup behind then). */
	if (l->batch.supervisor)
		corral__watchdog_stop(&l->wd);
	if (l->have_batch)
		corral__teardown(&l->batch, 2000);
	corral__watchdog_stop(&l->wd);
	corral__close(l->batch.dirfd);
	corral__close(l->batch.pids_dirfd);
	if (l->sb_on)
		corral__sandbox_free(&l->sb);
	corral__spawn_cache_free(&l->scache);
	corral__close(l->devnull);
	corral__loop_del(l->loop, &l->h_kmsg);
	corral__close(l->kmsg_fd);
	corral__observer_close(&l->obs);
	free(l);
}

void corral__local_profile(const struct corral__local *l, corral_profile_t *p)
{
	*p = l->prof;
}

int corral__local_started(const struct corral__attempt *a, pid_t *pid, double *start_time)
{
	const struct lattempt *la = (const struct lattempt *)a;

	if (la->pid <= 0)
		return -ESRCH;
	if (pid)
		*pid = la->pid;
	if (start_time)
		*start_time = la->start_wall;
	return 0;
}

/* ------------------------------------------------------------ task memory */

/* corral__local_task_memory(), behind corral_task_memory(): the memory of a running task's cgroup,
 * and a reset of its peak, for callers that run several units of work one after the other in one
 * task (the Python pool's persistent workers) and want the peak of each.
 *
 *   v1: memory.usage_in_bytes and memory.max_usage_in_bytes; writing "0" to
 *       the latter resets it to the current usage. Through the attempt's
 *       kept counter files when the cgroup has them (cgroup_v1.c).
 *   v2: memory.current and memory.peak. Since Linux 6.12 a write to
 *       memory.peak resets the peak *as seen through that open file*: the
 *       fd is opened read-write on the first reset and kept in the
 *       attempt's cache slot of the peak file (unused on v2; closed with the
 *       cgroup), so later reads see the peak since the last reset. Before
 *       6.12 the file is read-only (open for writing fails, EACCES): the
 *       peak then counts from the start of the attempt and we return 1.
 *
 * The peak is read before it is reset: a call at each boundary between two
 * units returns the peak of the unit that just ended. The executor's own
 * record of the attempt reads memory.peak through a fresh fd on v2 (the
 * attempt's peak) and max_usage_in_bytes on v1 (the peak since the last
 * reset). */
int corral__local_task_memory(struct corral__local *l, struct corral__attempt *base,
                              uint64_t *current, uint64_t *peak, bool reset_peak)
{
	struct lattempt *a = (struct lattempt *)base;
	char buf[64];
	uint64_t cur = 0, pk = 0;
	ssize_t n;
	int rc = 0;

	if (a->reaped)
		return -ESRCH;
	if (!l->ops || !a->cg.created || a->cg.dirfd < 0 || !l->batch.has_memory)
		return -EOPNOTSUPP;
	int *slot = &a->cg.cache[CGF_MAX_USAGE];
	if (l->batch.mode == CORRAL_CG_V2) {
		n = corral__read_value_at(a->cg.dirfd, "memory.current", buf, sizeof(buf));
		if (n < 0 || corral__parse_u64_or_max(buf, &cur) < 0)
			return n < 0 ? (int)n : -EINVAL;
		if (*slot < 0 && reset_peak)
			*slot = openat(a->cg.dirfd, "memory.peak", O_RDWR | O_CLOEXEC);
		if (*slot >= 0)
			n = corral__pread_value(*slot, buf, sizeof(buf));
		else
			n = corral__read_value_at(a->cg.dirfd, "memory.peak", buf, sizeof(buf));
		if (n >= 0 && corral__parse_u64_or_max(buf, &pk) < 0)
			n = -EINVAL;
		if (n < 0 && n != -ENOENT) /* ENOENT: no memory.peak before 5.19 */
			return (int)n;
		if (reset_peak) {
			if (*slot < 0) {
				rc = 1; /* read-only memory.peak: Linux < 6.12 */
			} else {
				do
					n = pwrite(*slot, "reset\n", 6, 0);
				while (n < 0 && errno == EINTR);
				if (n < 0)
					rc = errno == EINVAL || errno == EACCES ? 1 : -errno;
			}
		}
	} else {
		bool cached = l->batch.cache_fds;
		n = cached ? corral__read_value_cached(&a->cg.cache[CGF_USAGE], a->cg.dirfd,
		                                       "memory.usage_in_bytes", O_RDONLY, buf,
		                                       sizeof(buf))
		           : corral__read_value_at(a->cg.dirfd, "memory.usage_in_bytes", buf,
		                                   sizeof(buf));
		if (n < 0 || corral__parse_u64_or_max(buf, &cur) < 0)
			return n < 0 ? (int)n : -EINVAL;
		n = cached
		        ? corral__read_value_cached(slot, a->cg.dirfd, "memory.max_usage_in_bytes",
		                                    O_RDWR, buf, sizeof(buf))
		        : corral__read_value_at(a->cg.dirfd, "memory.max_usage_in_bytes", buf,
		                                sizeof(buf));
		if (n < 0 || corral__parse_u64_or_max(buf, &pk) < 0)
			return n < 0 ? (int)n : -EINVAL;
		if (reset_peak) {
			n = -1;
			if (*slot >= 0) {
				do
					n = pwrite(*slot, "0", 1, 0);
				while (n < 0 && errno == EINTR);
			}
			if (n != 1)
				rc =
				    corral__write_at(a->cg.dirfd, "memory.max_usage_in_bytes", "0");
		}
	}
	if (current)
		*current = cur;
	if (peak)
		*peak = pk;
	return rc;
}
