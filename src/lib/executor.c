/* executor.c - the event loop: admission, spawning, reaping, attribution,
 * halting, retries and cleanup of task attempts.
 *
 * One epoll set holds, per running attempt, its pidfd and its capture pipes
 * (and, while it drains, its cgroup.events on v2), plus one timerfd for every
 * deadline (timeouts, kill grace, bounded waits). Every wait is on something
 * that fires: a pidfd, a pipe, a timer. Nothing polls without a bound.
 *
 * Life of an attempt:
 *   queued -> start_attempt(): task cgroup created with its limits, child
 *             spawned into it, pidfd + pipes registered
 *   RUNNING -> the pidfd is readable: reap_attempt() reaps the leader with
 *             waitid(P_PIDFD), reads the cgroup's counters *before* killing
 *             anything else, then kills what remains of the task
 *   DRAINING -> wait (bounded) until the cgroup is empty and every pipe hit EOF
 *   finish_attempt(): classify (outcome.c), queue the result, remove the
 *             cgroup (leftovers are retried off the critical path), then retry
 *             or finalise the task, which may halt the batch.
 *
 * Halting (design §5): with "ordered", the first final failure with seq k
 * sets the halt point to k; tasks after k are cancelled (queued) or aborted
 * (running); tasks before k run to their end and may move the halt point
 * down. The verdict is therefore the lowest failing seq for any timing.
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "executor.h"
#include "halt.h"
#include "syscalls.h"

extern char **environ;

enum src_kind {
	SRC_PID = 1,
	SRC_CAP,
	SRC_CGEV,
	SRC_TIMER
};

struct attempt;
struct src {
	enum src_kind kind;
	int index; /* capture index for SRC_CAP */
	struct attempt *a;
};

struct task {
	struct task *next; /* queue link */
	uint64_t seq;
	unsigned attempts;   /* attempts started so far */
	uint64_t memory_max; /* limit of the next attempt */
	char **argv;         /* NULL for a function task */
	char **envp;         /* NULL = environ at spawn time */
	char *cwd;
	int fds[3];
	corral_fn_t fn;
	void *fn_arg;
	void *data;
};

enum {
	CAP_OUT,
	CAP_ERR,
	CAP_RES,
	CAP_N
};

struct attempt {
	struct attempt *prev, *next; /* running list; next also links the graveyard */
	bool dead;                   /* finished: events still queued for it are ignored */
	struct task *task;
	unsigned no;
	uint64_t memory_max;
	pid_t pid;
	int pidfd;
	int err_rfd;
	struct corral__cg_task cg;
	struct corral__capture cap[CAP_N];
	struct src s_pid, s_cap[CAP_N], s_cgev;
	bool cgev_registered;
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
};

struct result_node {
	struct result_node *next;
	corral_result_t r;
};

struct leftover {
	struct leftover *next;
	char name[32];
	unsigned tries;
};

struct corral_executor {
	corral_options_t o;
	char *strings; /* copies of the option strings */
	struct corral__hier hier;
	struct corral__batch batch;
	const struct corral__cg_ops *ops; /* NULL: running without cgroups */
	bool have_batch;
	struct corral__watchdog wd;
	struct corral__spawn_cache scache;
	struct corral__sandbox_plan sb;
	bool sb_on;
	int epfd, timerfd, devnull;
	struct src s_timer;
	uint64_t timer_at;
	/* Queue (FIFO; retries go to the head). */
	struct task *q_head, *q_tail;
	uint64_t queued;
	/* Running attempts. */
	struct attempt *run_head;
	unsigned running;
	uint64_t mem_running;
	/* Results ready for delivery. */
	struct result_node *r_head, *r_tail;
	/* Attempts finished during this loop round, freed at its end (epoll may
	 * still hold events that point into them). */
	struct attempt *graveyard;
	/* Empty task cgroups kept for the next attempts (v1: see cgroup_v1.c,
	 * "Recycling"); at most 2 x `jobs` of them. A finished attempt's cgroup
	 * enters unprepared and is checked and readied (prepare_pool) after the
	 * next attempts have started: at -j 1 two cgroups take turns, and none
	 * of that work delays a spawn. */
	struct corral__cg_task *pool;
	unsigned pool_n, pool_cap;
	/* Task cgroups that could not be removed yet. */
	struct leftover *leftovers;
	uint64_t leftover_at;
	/* Counters. */
	uint64_t next_seq;  /* the highest seq submitted so far */
	uint64_t submitted; /* tasks submitted (seqs may have gaps: corral_task_t.seq) */
	uint64_t finals_queued, finals_delivered, attempts;
	corral_profile_t prof;
	bool closed;
	struct corral__halt halt;
	corral_summary_t sum;
	/* One-entry cache of the PATH lookup (a batch runs one command). */
	char exe_argv0[256];
	char exe_pathenv[1024];
	char exe_path[PATH_MAX];
	int exe_rc;
};

/* ------------------------------------------------------------ options */

void corral_options_init(corral_options_t *o)
{
	memset(o, 0, sizeof(*o));
	o->jobs = 0;
	o->memory_max = CORRAL_UNLIMITED;
	o->swap_max = 0;
	o->pids_max = 4096;
	o->cpus = 0;
	o->timeout_ns = CORRAL_UNLIMITED;
	o->kill_grace_ns = 0;
	o->halt = CORRAL_HALT_ORDERED;
	o->retries = 0;
	o->retry_on = CORRAL_RETRY_OOM;
	o->memory_growth = 2.0;
	o->memory_ceiling = CORRAL_UNLIMITED;
	o->memory_budget = CORRAL_UNLIMITED;
	o->oom_group = true;
	o->capture_max = 16384;
	o->fn_result_max = 64u << 20;
	o->sandbox.seccomp = CORRAL_SECCOMP_OFF;
}

void corral_task_init(corral_task_t *t)
{
	memset(t, 0, sizeof(*t));
	t->stdin_fd = CORRAL_FD_NULL;
	t->stdout_fd = CORRAL_FD_NULL;
	t->stderr_fd = CORRAL_FD_NULL;
}

const char *corral_version(void)
{
	return CORRAL_VERSION_STRING;
}

size_t corral_struct_size(const char *name)
{
	static const struct {
		const char *name;
		size_t size;
	} sizes[] = {
	    {"options", sizeof(corral_options_t)}, {"task", sizeof(corral_task_t)},
	    {"result", sizeof(corral_result_t)},   {"summary", sizeof(corral_summary_t)},
	    {"error", sizeof(corral_error_t)},     {"output", sizeof(corral_output_t)},
	    {"sandbox", sizeof(corral_sandbox_t)},
	};
	for (size_t i = 0; name && i < ARRAY_SIZE(sizes); i++)
		if (!strcmp(sizes[i].name, name))
			return sizes[i].size;
	return 0;
}

/* ------------------------------------------------------------ small helpers */

static uint64_t ms_to_ns(uint64_t ms)
{
	return ms * 1000000u;
}

static int ep_add(corral_executor_t *ex, int fd, uint32_t events, struct src *s)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	return epoll_ctl(ex->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void ep_del(corral_executor_t *ex, int fd)
{
	if (fd >= 0)
		epoll_ctl(ex->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void push_result(corral_executor_t *ex, struct result_node *n)
{
	n->next = NULL;
	if (ex->r_tail)
		ex->r_tail->next = n;
	else
		ex->r_head = n;
	ex->r_tail = n;
}

static struct result_node *new_result(void)
{
	struct result_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->r.out.fd = n->r.err.fd = n->r.fn_result.fd = -1;
	n->r.exit_code = -1;
	return n;
}

static void free_task(struct task *t)
{
	if (!t)
		return;
	free(t->argv); /* one block holds the array and the strings */
	free(t->envp);
	free(t->cwd);
	free(t);
}

/* Must a task with this seq be cancelled/aborted now? */
static bool beyond_halt(const corral_executor_t *ex, uint64_t seq)
{
	return corral__halt_beyond(&ex->halt, seq);
}

/* ------------------------------------------------------------ verdict & halting */

static void kill_attempt(corral_executor_t *ex, struct attempt *a, bool abort);
static void cancel_queued(corral_executor_t *ex);

static void record_final(corral_executor_t *ex, const corral_result_t *r)
{
	uint64_t before = ex->halt.verdict_seq;

	ex->sum.count[r->outcome]++;
	if (!corral__halt_final(&ex->halt, r->seq, r->outcome, r->status)) {
		if (ex->halt.verdict_seq != before)
			memcpy(ex->sum.sentence, r->sentence, sizeof(ex->sum.sentence));
		return;
	}
	if (ex->halt.verdict_seq != before)
		memcpy(ex->sum.sentence, r->sentence, sizeof(ex->sum.sentence));
	for (struct attempt *a = ex->run_head; a; a = a->next)
		if (beyond_halt(ex, a->task->seq) && !a->reaped)
			kill_attempt(ex, a, true);
	cancel_queued(ex);
}

static void queue_cancelled(corral_executor_t *ex, struct task *t)
{
	struct result_node *n = new_result();

	if (n) {
		n->r.seq = t->seq;
		n->r.attempt = 0;
		n->r.final = true;
		n->r.outcome = CORRAL_CANCELLED;
		n->r.status = -1;
		n->r.memory_max = t->memory_max;
		n->r.data = t->data;
		n->r.start_time = corral__wall_now();
		corral__sentence(&n->r, 0);
		record_final(ex, &n->r);
		push_result(ex, n);
	} else {
		/* Out of memory: count it anyway so the batch still ends. */
		ex->sum.count[CORRAL_CANCELLED]++;
	}
	ex->finals_queued++;
	free_task(t);
}

static void cancel_queued(corral_executor_t *ex)
{
	struct task **pp = &ex->q_head, *t;

	ex->q_tail = NULL;
	while ((t = *pp)) {
		if (beyond_halt(ex, t->seq)) {
			*pp = t->next;
			ex->queued--;
			queue_cancelled(ex, t);
		} else {
			ex->q_tail = t;
			pp = &t->next;
		}
	}
}

/* ------------------------------------------------------------ timer */

static void arm_timer(corral_executor_t *ex)
{
	uint64_t at = UINT64_MAX;
	struct itimerspec its;

	for (struct attempt *a = ex->run_head; a; a = a->next) {
		if (a->deadline_ns && !a->reaped && a->deadline_ns < at)
			at = a->deadline_ns;
		if (a->kill_at_ns && a->kill_at_ns < at)
			at = a->kill_at_ns;
		if (a->draining && a->recheck_ns && a->recheck_ns < at)
			at = a->recheck_ns;
	}
	if (ex->leftovers && ex->leftover_at && ex->leftover_at < at)
		at = ex->leftover_at;
	if (at == ex->timer_at)
		return;
	memset(&its, 0, sizeof(its));
	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / 1000000000u);
		its.it_value.tv_nsec = (long)(at % 1000000000u);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(ex->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
	ex->timer_at = at;
}

/* Make corral_fd() readable now: results were queued outside the loop
 * (corral_abort(), a submission after the halt) or the batch ended, and a
 * caller polling corral_fd() must come back to corral_next(). */
static void kick(corral_executor_t *ex)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = 1; /* an absolute time long past: fires at once */
	timerfd_settime(ex->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
	ex->timer_at = 1;
}

/* ------------------------------------------------------------ attempts */

static void attempt_unlink(corral_executor_t *ex, struct attempt *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		ex->run_head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
	ex->running--;
	if (a->memory_max != CORRAL_UNLIMITED)
		ex->mem_running -= a->memory_max;
}

static void attempt_close_fds(corral_executor_t *ex, struct attempt *a)
{
	ep_del(ex, a->pidfd);
	corral__close(a->pidfd);
	a->pidfd = -1;
	corral__close(a->err_rfd);
	a->err_rfd = -1;
	for (int i = 0; i < CAP_N; i++)
		corral__capture_free(&a->cap[i]); /* leaves the epoll set first */
	if (a->cgev_registered)
		ep_del(ex, a->cg.events_fd);
	a->cgev_registered = false;
}

/* Remove a task cgroup; one that resists goes to the leftovers, retried off
 * the critical path. Closes its fds either way. */
static void discard_task_cgroup(corral_executor_t *ex, struct corral__cg_task *cg)
{
	if (ex->ops->remove(&ex->batch, cg) == 0)
		return;
	/* Still busy (a process is slow to die): retry off the critical path. */
	struct leftover *l = calloc(1, sizeof(*l));
	if (l) {
		snprintf(l->name, sizeof(l->name), "%s", cg->name);
		l->next = ex->leftovers;
		ex->leftovers = l;
		if (!ex->leftover_at)
			ex->leftover_at = corral__now_ns() + ms_to_ns(5);
	}
	corral__cg_task_close(cg);
}

static void remove_task_cgroup(corral_executor_t *ex, struct attempt *a)
{
	if (!ex->ops || !a->cg.created) {
		corral__cg_task_close(&a->cg);
		return;
	}
	if (a->cgev_registered) {
		ep_del(ex, a->cg.events_fd);
		a->cgev_registered = false;
	}
	/* Keep it for a later attempt; prepare_pool() decides whether it may
	 * serve (empty and clean) once the next attempts are started. */
	if (ex->ops->recyclable && !a->cleanup_incomplete && ex->pool &&
	    ex->pool_n < ex->pool_cap) {
		ex->pool[ex->pool_n++] = a->cg; /* unprepared: reuse() cleared the flag */
		corral__cg_task_init(&a->cg);
		return;
	}
	discard_task_cgroup(ex, &a->cg);
}

/* Ready the pool's new arrivals, or remove those that may not serve again. */
static void prepare_pool(corral_executor_t *ex)
{
	uint64_t t0 = 0;

	for (unsigned i = 0; i < ex->pool_n;) {
		struct corral__cg_task *cg = &ex->pool[i];
		if (cg->prepared) {
			i++;
			continue;
		}
		if (!t0)
			t0 = corral__now_ns();
		if (ex->ops->recyclable(&ex->batch, cg) && ex->ops->prepare(&ex->batch, cg) == 0) {
			i++; /* prepare() set cg->prepared */
			continue;
		}
		discard_task_cgroup(ex, cg);
		*cg = ex->pool[--ex->pool_n];
	}
	if (t0)
		ex->prof.recycle_ns += corral__now_ns() - t0;
}

/* A prepared cgroup from the pool into *cg; false when there is none. */
static bool take_pooled(corral_executor_t *ex, struct corral__cg_task *cg)
{
	for (unsigned i = ex->pool_n; i-- > 0;) {
		if (!ex->pool[i].prepared)
			continue;
		*cg = ex->pool[i];
		ex->pool[i] = ex->pool[--ex->pool_n];
		return true;
	}
	return false;
}

static void retry_leftovers(corral_executor_t *ex)
{
	struct leftover **pp = &ex->leftovers, *l;
	bool v2 = ex->batch.mode == CORRAL_CG_V2;

	while ((l = *pp)) {
		bool gone = true;
		if (unlinkat(ex->batch.dirfd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			gone = false;
		if (ex->batch.pids_dirfd >= 0 &&
		    unlinkat(ex->batch.pids_dirfd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			gone = false;
		if (!gone && ++l->tries < 200) {
			/* Kill again: whatever is inside is ours. */
			cleanup_close int fd =
			    openat(ex->batch.dirfd, l->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0) {
				if (!v2 || corral__write_at(fd, "cgroup.kill", "1") < 0)
					corral__cg_kill_procs(fd);
			}
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		free(l);
	}
	ex->leftover_at = ex->leftovers ? corral__now_ns() + ms_to_ns(20) : 0;
}

/* SIGKILL the whole task: its cgroup, and its leader through the pidfd. The
 * leader is needed too: a child that has not yet written itself into
 * cgroup.procs (v1, or v2 without CLONE_INTO_CGROUP) is not in the cgroup,
 * so a kill of the cgroup alone misses it, and it would then exec and run
 * to its end. Until it has joined it has no children, so killing it is
 * enough; once it has, the cgroup kill takes the rest. */
static void kill_task(corral_executor_t *ex, struct attempt *a)
{
	if (ex->ops)
		ex->ops->kill(&ex->batch, &a->cg);
	if (!a->reaped && a->pidfd >= 0)
		corral__pidfd_send_signal(a->pidfd, SIGKILL);
}

static void kill_attempt(corral_executor_t *ex, struct attempt *a, bool abort)
{
	if (a->reaped && !a->draining)
		return;
	if (abort)
		a->killed_abort = true;
	/* Was something already OOM-killed before we decided to kill? Then the
	 * OOM stays the cause (outcome.c). */
	if (ex->ops && !a->killed_cgroup && !a->killed_timeout && !a->reaped) {
		struct corral__counters c;
		if (ex->ops->read(&ex->batch, &a->cg, &c) == 0)
			a->oom_at_kill = c.oom_kill;
	}
	a->killed_cgroup = true;
	a->kill_at_ns = 0;
	kill_task(ex, a);
	if (!ex->ops && a->pid > 0 && !ex->o.foreground)
		kill(-a->pid, SIGKILL); /* its process group, the best we have */
}

static void on_timeout(corral_executor_t *ex, struct attempt *a)
{
	a->deadline_ns = 0;
	if (a->reaped)
		return;
	a->killed_timeout = true;
	if (ex->ops) {
		struct corral__counters c;
		if (ex->ops->read(&ex->batch, &a->cg, &c) == 0)
			a->oom_at_kill = c.oom_kill;
	}
	if (ex->o.kill_grace_ns && a->pidfd >= 0) {
		/* timeout(1)'s manners: TERM to the leader first, KILL for all later. */
		corral__pidfd_send_signal(a->pidfd, SIGTERM);
		a->kill_at_ns = corral__now_ns() + ex->o.kill_grace_ns;
		return;
	}
	a->killed_cgroup = true;
	if (ex->ops)
		kill_task(ex, a);
	else
		kill_attempt(ex, a, false);
}

static bool retry_wanted(const corral_executor_t *ex, const struct attempt *a,
                         const corral_result_t *r)
{
	unsigned bit = 0;

	if (a->no > ex->o.retries || beyond_halt(ex, a->task->seq))
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
	return (ex->o.retry_on & bit) != 0;
}

static uint64_t grow_memory(const corral_executor_t *ex, uint64_t cur)
{
	long double g;
	uint64_t cap = ex->o.memory_ceiling;

	if (cur == CORRAL_UNLIMITED)
		return cur;
	if (ex->o.memory_budget < cap)
		cap = ex->o.memory_budget;
	g = (long double)cur * (long double)ex->o.memory_growth;
	if (g >= (long double)cap)
		return cap;
	return (uint64_t)ceill(g);
}

static void requeue_front(corral_executor_t *ex, struct task *t)
{
	t->next = ex->q_head;
	ex->q_head = t;
	if (!ex->q_tail)
		ex->q_tail = t;
	ex->queued++;
}

static void finish_attempt(corral_executor_t *ex, struct attempt *a)
{
	struct corral__facts f;
	struct result_node *n = new_result();
	struct task *t = a->task;
	corral_result_t tmp;
	corral_result_t *r = n ? &n->r : &tmp;

	if (!n) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.out.fd = tmp.err.fd = tmp.fn_result.fd = -1;
	}
	/* Last bytes: the writers are gone, so this does not block. */
	for (int i = 0; i < CAP_N; i++)
		if (a->cap[i].rfd >= 0)
			corral__capture_drain(&a->cap[i], ex->o.capture_max, ex->o.tmpdir);

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
	f.allow_subprocess_oom = ex->o.allow_subprocess_oom;
	f.seccomp_kills = ex->sb_on && ex->sb.filter_kills;

	r->seq = t->seq;
	if (t->argv)
		snprintf(r->command, sizeof(r->command), "%s", t->argv[0]);
	r->attempt = a->no;
	r->pid = a->pid > 0 ? a->pid : 0; /* 0: never started (corral.h) */
	r->data = t->data;
	r->memory_max = a->memory_max;
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
	corral__sentence(r, ex->o.timeout_ns);
	if (t->fn && a->cap[CAP_RES].overflow) {
		size_t l = strlen(r->sentence);
		snprintf(r->sentence + l, sizeof(r->sentence) - l,
		         " (its result exceeded the %zu-byte cap)", ex->o.fn_result_max);
	}
	for (int i = 0; i < CAP_N; i++) {
		if (!a->cap[i].dropped)
			continue;
		size_t l = strlen(r->sentence);
		snprintf(r->sentence + l, sizeof(r->sentence) - l,
		         " (%llu bytes of its %s after the first %llu were lost: %s)",
		         (unsigned long long)a->cap[i].dropped,
		         i == CAP_OUT   ? "stdout"
		         : i == CAP_ERR ? "stderr"
		                        : "result",
		         (unsigned long long)a->cap[i].total, strerror(a->cap[i].error));
	}

	attempt_close_fds(ex, a);
	/* The child is gone: its spawn block (stack, plan) is free again. */
	corral__spawn_block_release(&ex->scache, a->blk);
	a->blk = NULL;
	remove_task_cgroup(ex, a);
	attempt_unlink(ex, a);

	bool retry = retry_wanted(ex, a, r);
	r->final = !retry;
	if (retry) {
		if (r->own_limit_hit || r->outcome == CORRAL_OOM)
			t->memory_max = grow_memory(ex, a->memory_max);
		requeue_front(ex, t);
	} else {
		ex->finals_queued++;
		record_final(ex, r);
	}
	if (n)
		push_result(ex, n);
	else
		corral_result_release(&tmp);
	if (!retry)
		free_task(t);
	a->task = NULL;
	a->dead = true;
	a->next = ex->graveyard;
	ex->graveyard = a;
}

static void bury(corral_executor_t *ex)
{
	while (ex->graveyard) {
		struct attempt *a = ex->graveyard;
		ex->graveyard = a->next;
		free(a);
	}
}

/* Keep draining until the cgroup is empty and the pipes are closed, within a
 * bound; then finish. */
static void try_finish(corral_executor_t *ex, struct attempt *a)
{
	uint64_t now = corral__now_ns();
	uint64_t t0 = now;
	bool pipes_open = false;
	int populated = 0;

	for (int i = 0; i < CAP_N; i++) {
		if (a->cap[i].rfd >= 0 &&
		    corral__capture_drain(&a->cap[i], ex->o.capture_max, ex->o.tmpdir) == 0)
			pipes_open = true;
	}
	if (ex->ops && a->cg.created) {
		populated = ex->ops->populated(&ex->batch, &a->cg);
		if (populated < 0)
			populated = 0; /* unreadable: rmdir will tell */
	}
	if (ex->ops && !a->counted) {
		/* The counters, once, before anything else of the task is
		 * killed. Asked after populated(): those of a cgroup found empty
		 * are final, and serve as its next attempt's baselines. */
		uint64_t t1 = corral__now_ns();
		ex->ops->read(&ex->batch, &a->cg, &a->ctr);
		a->counted = true;
		ex->prof.counters_ns += corral__now_ns() - t1;
	}
	if (populated) {
		/* Whatever is left of the task dies with it (a daemon it
		 * double-forked, a pipe stage). */
		ex->ops->kill(&ex->batch, &a->cg);
		if (!a->cgev_registered && ex->batch.mode == CORRAL_CG_V2 && a->cg.events_fd >= 0 &&
		    ep_add(ex, a->cg.events_fd, EPOLLPRI, &a->s_cgev) == 0)
			a->cgev_registered = true;
	}
	if ((!pipes_open && !populated) || now >= a->give_up_ns) {
		if (pipes_open || populated)
			a->cleanup_incomplete = true;
		uint64_t t1 = corral__now_ns();
		ex->prof.drain_ns += t1 - t0;
		finish_attempt(ex, a);
		ex->prof.cleanup_ns += corral__now_ns() - t1;
		return;
	}
	ex->prof.drain_ns += corral__now_ns() - t0;
	/* Re-check with backoff: 1, 2, 4 ... 64 ms (pipes and cgroup.events
	 * wake us earlier). */
	a->recheck_ms = a->recheck_ms ? (a->recheck_ms < 64 ? a->recheck_ms * 2 : 64) : 1;
	a->recheck_ns = now + ms_to_ns(a->recheck_ms);
}

static void reap_attempt(corral_executor_t *ex, struct attempt *a)
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
	ep_del(ex, a->pidfd);

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
	ex->prof.reap_ns += corral__now_ns() - t0;
	a->draining = true;
	a->give_up_ns = a->end_ns + ms_to_ns(5000);
	try_finish(ex, a);
}

static int need_procs_cb(void *ctx)
{
	struct attempt *a = ctx;

	if (a->cg.procs_fd >= 0)
		return a->cg.procs_fd;
	a->cg.procs_fd = openat(a->cg.dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	return a->cg.procs_fd < 0 ? -errno : a->cg.procs_fd;
}

static void spawn_failed(corral_executor_t *ex, struct attempt *a, int step, int e)
{
	a->spawned = false;
	a->spawn_step = step;
	a->spawn_errno = e;
	a->reaped = true;
	a->end_ns = corral__now_ns();
	finish_attempt(ex, a);
}

/* The fd the child gets for stream i of task t. */
static int stdio_fd(corral_executor_t *ex, int fd)
{
	return fd >= 0 ? fd : ex->devnull;
}

static void start_attempt(corral_executor_t *ex, struct task *t)
{
	struct attempt *a = calloc(1, sizeof(*a));
	struct corral__spawn_req req;
	int child_w[CAP_N] = {-1, -1, -1};
	corral_error_t err;
	int rc;

	if (!a) {
		/* Put it back; the next loop iteration retries. */
		requeue_front(ex, t);
		return;
	}
	a->task = t;
	a->no = ++t->attempts;
	ex->attempts++;
	a->memory_max = t->memory_max;
	a->pid = -1;
	a->pidfd = a->err_rfd = -1;
	corral__cg_task_init(&a->cg);
	for (int i = 0; i < CAP_N; i++) {
		corral__capture_init(&a->cap[i]);
		a->s_cap[i] = (struct src){.kind = SRC_CAP, .index = i, .a = a};
	}
	a->cap[CAP_RES].limit = ex->o.fn_result_max;
	a->s_pid = (struct src){.kind = SRC_PID, .a = a};
	a->s_cgev = (struct src){.kind = SRC_CGEV, .a = a};
	a->start_ns = corral__now_ns();
	a->start_wall = corral__wall_now();
	/* Link it first: every exit path below goes through finish_attempt(). */
	a->next = ex->run_head;
	if (ex->run_head)
		ex->run_head->prev = a;
	ex->run_head = a;
	ex->running++;
	if (a->memory_max != CORRAL_UNLIMITED)
		ex->mem_running += a->memory_max;

	/* Resolve the command in the parent: execvp is not async-signal-safe. */
	memset(&req, 0, sizeof(req));
	if (!t->fn) {
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
		if (strcmp(ex->exe_argv0, t->argv[0]) != 0 ||
		    strcmp(ex->exe_pathenv, pathenv) != 0 || strchr(t->argv[0], '/')) {
			ex->exe_rc = corral__resolve_exe(t->argv[0], pathenv, ex->exe_path,
			                                 sizeof(ex->exe_path));
			if (strlen(t->argv[0]) < sizeof(ex->exe_argv0) &&
			    strlen(pathenv) < sizeof(ex->exe_pathenv)) {
				snprintf(ex->exe_argv0, sizeof(ex->exe_argv0), "%s", t->argv[0]);
				snprintf(ex->exe_pathenv, sizeof(ex->exe_pathenv), "%s", pathenv);
			} else {
				ex->exe_argv0[0] = '\0';
			}
		}
		if (ex->exe_rc < 0) {
			spawn_failed(ex, a, STEP_EXEC, -ex->exe_rc);
			return;
		}
	}

	if (ex->ops) {
		struct corral__limits l = {
		    .memory_max = a->memory_max,
		    .swap_max = ex->o.swap_max,
		    .pids_max = ex->o.pids_max,
		    .cpus = ex->o.cpus,
		    .oom_group = ex->o.oom_group,
		};
		bool into = ex->batch.clone_into_cgroup && !ex->scache.no_into_cgroup && !t->fn;
		uint64_t t0 = corral__now_ns();
		rc = -ENOENT;
		if (take_pooled(ex, &a->cg)) {
			/* An empty cgroup of an earlier attempt (it keeps its name). */
			rc = ex->ops->reuse(&ex->batch, &a->cg, &l, &err);
			if (rc < 0) {
				discard_task_cgroup(ex, &a->cg);
				corral__cg_task_init(&a->cg);
			}
		}
		if (rc < 0) {
			snprintf(a->cg.name, sizeof(a->cg.name), "t%llu-a%u",
			         (unsigned long long)t->seq, a->no);
			rc = ex->ops->create(&ex->batch, &a->cg, &l, !into, &err);
		}
		ex->prof.cgroup_create_ns += corral__now_ns() - t0;
		if (rc < 0) {
			spawn_failed(ex, a, STEP_CGROUP, -rc);
			return;
		}
	}

	for (int i = 0; i < CAP_N; i++) {
		bool want = i == CAP_RES ? t->fn != NULL : t->fds[i + 1] == CORRAL_FD_CAPTURE;
		if (!want)
			continue;
		rc = corral__capture_open(&a->cap[i], &child_w[i], &err);
		if (rc < 0) {
			for (int j = 0; j < CAP_N; j++)
				corral__close(child_w[j]);
			spawn_failed(ex, a, STEP_STDIO, -rc);
			return;
		}
	}

	struct corral__child_plan *p = &req.plan;
	p->path = ex->exe_path;
	p->argv = t->argv;
	p->envp = t->envp ? t->envp : environ;
	p->fn = t->fn;
	p->fn_arg = t->fn_arg;
	p->fn_out_fd = child_w[CAP_RES];
	p->cwd = t->cwd;
	p->stdio[0] = stdio_fd(ex, t->fds[0]);
	p->stdio[1] = child_w[CAP_OUT] >= 0 ? child_w[CAP_OUT] : stdio_fd(ex, t->fds[1]);
	p->stdio[2] = child_w[CAP_ERR] >= 0 ? child_w[CAP_ERR] : stdio_fd(ex, t->fds[2]);
	p->procs_fd = a->cg.procs_fd;
	p->pids_procs_fd = a->cg.pids_procs_fd;
	p->new_pgroup = !ex->o.foreground;
	p->sb = ex->sb_on ? &ex->sb : NULL;
	p->after_fork_child = ex->o.after_fork_child;
	req.cgroup_dirfd = ex->ops && ex->batch.mode == CORRAL_CG_V2 ? a->cg.dirfd : -1;
	req.use_fork = t->fn != NULL;
	req.before_fork = ex->o.before_fork;
	req.after_fork_parent = ex->o.after_fork_parent;

	if (ex->sb_on)
		corral__sandbox_refresh(&ex->sb);
	uint64_t t_spawn = corral__now_ns();
	rc = corral__spawn(&req, &ex->scache, need_procs_cb, a, &a->pid, &a->pidfd, &a->err_rfd,
	                   &a->report, &a->blk, &err);
	ex->prof.spawn_ns += corral__now_ns() - t_spawn;
	for (int j = 0; j < CAP_N; j++)
		corral__close(child_w[j]);
	if (rc < 0) {
		spawn_failed(ex, a, STEP_EXEC, -rc);
		return;
	}
	/* The parent no longer needs the cgroup.procs fds (and the child has
	 * used or inherited them), unless the cgroup may serve again. */
	if (!ex->ops || !ex->ops->reuse) {
		corral__close(a->cg.procs_fd);
		corral__close(a->cg.pids_procs_fd);
		a->cg.procs_fd = a->cg.pids_procs_fd = -1;
	}

	if (ep_add(ex, a->pidfd, EPOLLIN, &a->s_pid) < 0) {
		kill_attempt(ex, a, false);
		/* Without the pidfd in the set we would never notice the exit:
		 * wait for it here (it was just SIGKILLed). */
		siginfo_t si;
		corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si, WEXITED | __WALL, &a->ru);
		corral__close(a->pidfd);
		a->pidfd = -1;
		spawn_failed(ex, a, STEP_EXEC, ENOMEM);
		return;
	}
	for (int i = 0; i < CAP_N; i++) {
		if (a->cap[i].rfd < 0)
			continue;
		if (ep_add(ex, a->cap[i].rfd, EPOLLIN, &a->s_cap[i]) < 0)
			corral__capture_close(&a->cap[i]); /* lose output rather than hang */
		else
			a->cap[i].epfd = ex->epfd;
	}
	if (ex->o.timeout_ns != CORRAL_UNLIMITED && ex->o.timeout_ns > 0)
		a->deadline_ns = a->start_ns + ex->o.timeout_ns;
}

static bool admit(const corral_executor_t *ex, const struct task *t)
{
	if (ex->running >= ex->o.jobs)
		return false;
	if (ex->o.memory_budget == CORRAL_UNLIMITED || t->memory_max == CORRAL_UNLIMITED)
		return true;
	/* Strict FIFO: a big task at the head waits rather than being
	 * overtaken forever by small ones. */
	return ex->mem_running + t->memory_max <= ex->o.memory_budget;
}

static void schedule(corral_executor_t *ex)
{
	while (ex->q_head && admit(ex, ex->q_head)) {
		struct task *t = ex->q_head;
		ex->q_head = t->next;
		if (!ex->q_head)
			ex->q_tail = NULL;
		ex->queued--;
		t->next = NULL;
		if (beyond_halt(ex, t->seq)) {
			queue_cancelled(ex, t);
			continue;
		}
		start_attempt(ex, t);
	}
}

/* ------------------------------------------------------------ event loop */

static void on_timer(corral_executor_t *ex)
{
	uint64_t expirations, now = corral__now_ns();
	struct attempt *a, *next;

	(void)!read(ex->timerfd, &expirations, sizeof(expirations));
	ex->timer_at = 0; /* force re-arming */
	for (a = ex->run_head; a; a = next) {
		next = a->next; /* finish_attempt() may free a */
		if (a->deadline_ns && now >= a->deadline_ns)
			on_timeout(ex, a);
		if (a->kill_at_ns && now >= a->kill_at_ns) {
			a->kill_at_ns = 0;
			a->killed_cgroup = true;
			if (ex->ops)
				kill_task(ex, a);
			else
				kill_attempt(ex, a, false);
		}
		if (a->draining && a->recheck_ns && now >= a->recheck_ns) {
			a->recheck_ns = 0;
			try_finish(ex, a);
		}
	}
	if (ex->leftovers && ex->leftover_at && now >= ex->leftover_at)
		retry_leftovers(ex);
}

/* Does s point into the timer or into an attempt that is still running?
 * Decided by address only, never by reading *s: an event may outlive its
 * attempt. Closing a registered fd does not remove it from the epoll set
 * while another process holds a copy of the same open file (a function
 * task's fork() child does until it closes its fds, step 11 of child.c).
 * Every fd is removed from the set before it is closed (capture.c does it
 * for the pipes), so this is a second line of defence. */
static bool src_live(const corral_executor_t *ex, const struct src *s)
{
	if (s == &ex->s_timer)
		return true;
	for (const struct attempt *a = ex->run_head; a; a = a->next)
		if ((const char *)s >= (const char *)a && (const char *)s < (const char *)(a + 1))
			return !a->dead;
	return false;
}

static void dispatch(corral_executor_t *ex, struct src *s, uint32_t events)
{
	struct attempt *a = s->a;

	switch (s->kind) {
	case SRC_TIMER:
		on_timer(ex);
		break;
	case SRC_PID:
		if (!a->reaped)
			reap_attempt(ex, a);
		break;
	case SRC_CAP: {
		int rc = corral__capture_drain(&a->cap[s->index], ex->o.capture_max, ex->o.tmpdir);
		if (rc != 0) {
			/* EOF or error: the fd is closed (and left the epoll set). */
			if (a->draining)
				try_finish(ex, a);
		}
		(void)events;
		break;
	}
	case SRC_CGEV:
		if (a->draining)
			try_finish(ex, a);
		break;
	}
}

/* One round: start what may start, wait up to timeout_ms, handle events. */
static int loop_once(corral_executor_t *ex, int timeout_ms)
{
	struct epoll_event evs[64];
	int n;

	schedule(ex);
	arm_timer(ex);
	if (ex->r_head)
		timeout_ms = 0;
	n = epoll_wait(ex->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	/* Pidfds last, so that output read in this round is drained before
	 * an attempt finishes. An attempt finished in this round stays in the
	 * graveyard (marked dead) until the round ends: later events that point
	 * into it are skipped, never dereferenced after a free. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			if (!src_live(ex, s))
				continue;
			if ((pass == 0) == (s->kind == SRC_PID))
				continue;
			dispatch(ex, s, evs[i].events);
		}
	}
	bury(ex);
	schedule(ex);
	if (ex->pool)
		prepare_pool(ex);
	/* Arm the timer for what this round changed (a reaped attempt that
	 * now drains, a started attempt's timeout): a caller that poll()s
	 * corral_fd() between corral_next(ex, &r, 0) calls relies on it, and
	 * would otherwise wait forever for a recheck that was never armed. */
	arm_timer(ex);
	return 0;
}

int corral_next(corral_executor_t *ex, corral_result_t *r, int timeout_ms, corral_error_t *err)
{
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX : corral__now_ns() + ms_to_ns((uint64_t)timeout_ms);

	for (;;) {
		if (ex->r_head) {
			struct result_node *n = ex->r_head;
			ex->r_head = n->next;
			if (!ex->r_head)
				ex->r_tail = NULL;
			*r = n->r;
			free(n);
			if (r->final)
				ex->finals_delivered++;
			return 1;
		}
		if (ex->closed && ex->finals_delivered == ex->submitted && !ex->run_head &&
		    !ex->q_head)
			return -ECHILD;
		if (!ex->run_head && !ex->q_head && !ex->closed && timeout_ms < 0)
			return corral__err(err, EDEADLK,
			                   "corral_next() would wait forever: nothing is queued "
			                   "or running and the executor is not closed");
		uint64_t now = corral__now_ns();
		int wait_ms;
		if (now >= deadline)
			wait_ms = 0;
		else if (deadline == UINT64_MAX)
			wait_ms = -1;
		else
			wait_ms = (int)((deadline - now + 999999) / 1000000);
		int rc = loop_once(ex, wait_ms);
		if (rc < 0)
			return corral__err(err, -rc, "epoll_wait");
		if (!ex->r_head && corral__now_ns() >= deadline)
			return 0;
	}
}

/* ------------------------------------------------------------ public API */

static char *dup_opt(char **dst, const char *s)
{
	if (!s)
		return NULL;
	*dst = strdup(s);
	return *dst;
}

struct strings {
	char *cgroup_parent, *cgroupfs, *tmpdir, *seccomp_file, *user;
};

int corral_executor_new(const corral_options_t *o, corral_executor_t **out, corral_error_t *err)
{
	corral_executor_t *ex;
	struct strings *st;
	int rc;

	*out = NULL;
	if (!o)
		return corral__err(err, EINVAL, "no options");
	if (o->memory_growth < 1.0 || isnan(o->memory_growth))
		return corral__err(err, EINVAL, "memory growth %g must be >= 1", o->memory_growth);
	if (o->memory_budget != CORRAL_UNLIMITED && o->memory_max != CORRAL_UNLIMITED &&
	    o->memory_max > o->memory_budget)
		return corral__err(err, EINVAL,
		                   "the memory limit per task exceeds the memory budget: no task "
		                   "could ever start");
	if (o->memory_budget != CORRAL_UNLIMITED && o->memory_max == CORRAL_UNLIMITED)
		return corral__err(err, EINVAL,
		                   "a memory budget needs a memory limit per task (--memory)");
	if (o->cpus < 0 || isnan(o->cpus))
		return corral__err(err, EINVAL, "cpus %g must be >= 0", o->cpus);
	ex = calloc(1, sizeof(*ex));
	st = calloc(1, sizeof(*st));
	if (!ex || !st) {
		free(ex);
		free(st);
		return corral__err(err, ENOMEM, "allocate the executor");
	}
	ex->o = *o;
	ex->strings = (char *)st;
	ex->epfd = ex->timerfd = ex->devnull = -1;
	ex->batch.dirfd = ex->batch.pids_dirfd = -1;
	ex->wd.pid = -1;
	ex->wd.pidfd = ex->wd.wfd = -1;
	ex->o.cgroup_parent = dup_opt(&st->cgroup_parent, o->cgroup_parent);
	ex->o.cgroupfs = dup_opt(&st->cgroupfs, o->cgroupfs);
	ex->o.tmpdir = dup_opt(&st->tmpdir, o->tmpdir ? o->tmpdir : getenv("TMPDIR"));
	if (!ex->o.tmpdir)
		ex->o.tmpdir = "/tmp";
	ex->o.sandbox.seccomp_file = dup_opt(&st->seccomp_file, o->sandbox.seccomp_file);
	ex->o.sandbox.user = dup_opt(&st->user, o->sandbox.user);
	if (ex->o.jobs == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ex->o.jobs = n > 0 ? (unsigned)n : 1;
	}
	if (ex->o.capture_max == 0)
		ex->o.capture_max = 16384;
	corral__halt_init(&ex->halt, ex->o.halt);

	ex->epfd = epoll_create1(EPOLL_CLOEXEC);
	ex->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ex->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (ex->epfd < 0 || ex->timerfd < 0 || ex->devnull < 0) {
		rc = corral__err(err, errno, "create the event loop");
		goto fail;
	}
	ex->s_timer = (struct src){.kind = SRC_TIMER};
	rc = ep_add(ex, ex->timerfd, EPOLLIN, &ex->s_timer);
	if (rc < 0) {
		rc = corral__err(err, -rc, "register the timer");
		goto fail;
	}

	struct corral__hier_env env = {.probe_kernel = true};
	rc = corral__hier_discover(&env, ex->o.cgroup_parent, &ex->hier, err);
	if (rc < 0)
		goto fail;
	if (!ex->o.no_cgroups) {
		rc = corral__batch_create(&ex->hier, &ex->o, &ex->batch, err);
		if (rc < 0)
			goto fail;
		ex->have_batch = true;
		ex->ops = ex->batch.mode == CORRAL_CG_V2 ? &corral__cg_v2_ops : &corral__cg_v1_ops;
		/* v1 keeps up to 11 fds per task cgroup (dirs, cgroup.procs,
		 * counter files), and up to 3 x jobs task cgroups exist (running
		 * and pooled): counter files stay open only where the fd limit
		 * leaves that and 1024 more; elsewhere they are opened per read. */
		struct rlimit nofile;
		ex->batch.cache_fds =
		    getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
		    (nofile.rlim_cur == RLIM_INFINITY ||
		     nofile.rlim_cur >= (rlim_t)ex->o.jobs * 3 * (4 + CGF_N) + 1024);
		if (ex->ops->reuse && !getenv("CORRAL_NO_RECYCLE")) {
			ex->pool_cap = ex->o.jobs * 2;
			ex->pool = calloc(ex->pool_cap, sizeof(*ex->pool));
		}
		rc = corral__watchdog_start(&ex->batch, &ex->wd, err);
		if (rc < 0)
			goto fail;
	} else if (o->memory_max != CORRAL_UNLIMITED) {
		rc = corral__err(err, EINVAL, "a memory limit needs cgroups (no_cgroups is set)");
		goto fail;
	}
	if (corral__sandbox_enabled(&ex->o.sandbox)) {
		rc = corral__sandbox_prepare(&ex->o.sandbox, &ex->hier, &ex->sb, err);
		if (rc < 0)
			goto fail;
		ex->sb_on = true;
	}
	*out = ex;
	return 0;
fail:
	corral_executor_free(ex);
	return rc;
}

/* A NULL-terminated string vector copied into one allocation (free() it). */
static char **copy_strv(const char *const *v)
{
	size_t n, bytes = 0;

	for (n = 0; v[n]; n++)
		bytes += strlen(v[n]) + 1;
	char **out = malloc((n + 1) * sizeof(char *) + bytes);
	if (!out)
		return NULL;
	char *s = (char *)(out + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(s, v[i], l);
		out[i] = s;
		s += l;
	}
	out[n] = NULL;
	return out;
}

int64_t corral_submit(corral_executor_t *ex, const corral_task_t *in, corral_error_t *err)
{
	struct task *t;

	if (ex->closed)
		return corral__err(err, EPIPE, "the executor is closed");
	if (!in || (!in->fn && (!in->argv || !in->argv[0])) || (in->fn && in->argv))
		return corral__err(err, EINVAL, "a task needs either argv (non-empty) or fn");
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? in->stdin_fd : i == 1 ? in->stdout_fd : in->stderr_fd;
		if (fd < CORRAL_FD_CAPTURE || (i == 0 && fd == CORRAL_FD_CAPTURE))
			return corral__err(err, EINVAL, "bad fd %d for stream %d", fd, i);
	}
	uint64_t mem = in->memory_max ? in->memory_max : ex->o.memory_max;
	if (mem != CORRAL_UNLIMITED && !ex->ops)
		return corral__err(err, EINVAL, "a memory limit needs cgroups");
	if (ex->o.memory_budget != CORRAL_UNLIMITED && mem > ex->o.memory_budget)
		return corral__err(err, EINVAL,
		                   "the task's memory limit exceeds the memory budget: it could "
		                   "never start");
	if (in->seq && in->seq <= ex->next_seq)
		return corral__err(err, EINVAL,
		                   "task number %llu is not above the last one (%llu): numbers "
		                   "must increase",
		                   (unsigned long long)in->seq, (unsigned long long)ex->next_seq);
	t = calloc(1, sizeof(*t));
	if (!t)
		return corral__err(err, ENOMEM, "allocate a task");
	if (in->argv && !(t->argv = copy_strv(in->argv))) {
		free(t);
		return corral__err(err, ENOMEM, "copy a task's argv");
	}
	if (in->envp && !(t->envp = copy_strv(in->envp))) {
		free_task(t);
		return corral__err(err, ENOMEM, "copy a task's environment");
	}
	if (in->cwd && !(t->cwd = strdup(in->cwd))) {
		free_task(t);
		return corral__err(err, ENOMEM, "copy a task's cwd");
	}
	t->fds[0] = in->stdin_fd;
	t->fds[1] = in->stdout_fd;
	t->fds[2] = in->stderr_fd;
	t->fn = in->fn;
	t->fn_arg = in->fn_arg;
	t->data = in->data;
	t->memory_max = mem;
	t->seq = ex->next_seq = in->seq ? in->seq : ex->next_seq + 1;
	ex->submitted++;
	ex->sum.tasks++;
	if (beyond_halt(ex, t->seq)) {
		queue_cancelled(ex, t);
		kick(ex);
	} else {
		t->next = NULL;
		if (ex->q_tail)
			ex->q_tail->next = t;
		else
			ex->q_head = t;
		ex->q_tail = t;
		ex->queued++;
	}
	return (int64_t)t->seq;
}

void corral_close(corral_executor_t *ex)
{
	ex->closed = true;
	if (ex->r_head || (!ex->run_head && !ex->q_head))
		kick(ex);
}

int corral_fd(const corral_executor_t *ex)
{
	return ex->epfd;
}

uint64_t corral_pending(const corral_executor_t *ex)
{
	return ex->submitted - ex->finals_delivered;
}

unsigned corral_running(const corral_executor_t *ex)
{
	return ex->running;
}

void corral_get_profile(const corral_executor_t *ex, corral_profile_t *p)
{
	*p = ex->prof;
	p->attempts = ex->attempts;
}

int corral_signal(corral_executor_t *ex, uint64_t seq, int sig)
{
	for (struct attempt *a = ex->run_head; a; a = a->next) {
		if (a->task->seq == seq && !a->reaped && a->pidfd >= 0)
			return corral__pidfd_send_signal(a->pidfd, sig) < 0 ? -errno : 0;
	}
	return -ESRCH;
}

bool corral_halted(const corral_executor_t *ex)
{
	return ex->halt.halted;
}

void corral_abort(corral_executor_t *ex)
{
	if (ex->halt.aborted)
		return;
	corral__halt_abort(&ex->halt);
	for (struct attempt *a = ex->run_head; a; a = a->next)
		if (!a->reaped)
			kill_attempt(ex, a, true);
	cancel_queued(ex);
	if (ex->r_head)
		kick(ex);
}

void corral_summary(const corral_executor_t *ex, corral_summary_t *s)
{
	*s = ex->sum;
	s->aborted = ex->halt.aborted;
	s->attempts = ex->attempts;
	s->verdict_seq = ex->halt.verdict_seq;
	s->verdict = ex->halt.verdict;
	s->exit_code = ex->halt.verdict_status;
	if (s->verdict_seq == 0) {
		s->exit_code = ex->halt.aborted ? 125 : 0;
		s->sentence[0] = '\0';
	}
}

void corral_executor_free(corral_executor_t *ex)
{
	if (!ex)
		return;
	/* Kill what runs and let the loop reap it, bounded. */
	if (ex->run_head || ex->q_head) {
		corral_abort(ex);
		uint64_t until = corral__now_ns() + ms_to_ns(5000);
		while (ex->run_head && corral__now_ns() < until)
			if (loop_once(ex, 50) < 0)
				break;
		/* Stragglers (a pidfd that never fired?): force them out. */
		while (ex->run_head) {
			struct attempt *a = ex->run_head;
			if (a->pidfd >= 0) {
				corral__pidfd_send_signal(a->pidfd, SIGKILL);
				siginfo_t si;
				corral__waitid((idtype_t)P_PIDFD, (id_t)a->pidfd, &si,
				               WEXITED | __WALL, &a->ru);
			}
			a->reaped = true;
			finish_attempt(ex, a);
		}
	}
	bury(ex);
	while (ex->r_head) {
		struct result_node *n = ex->r_head;
		ex->r_head = n->next;
		corral_result_release(&n->r);
		free(n);
	}
	while (ex->q_head) {
		struct task *t = ex->q_head;
		ex->q_head = t->next;
		free_task(t);
	}
	while (ex->leftovers) {
		struct leftover *l = ex->leftovers;
		ex->leftovers = l->next;
		free(l);
	}
	/* The recycled cgroups are empty; the teardown removes their dirs. */
	for (unsigned i = 0; i < ex->pool_n; i++)
		corral__cg_task_close(&ex->pool[i]);
	free(ex->pool);
	ex->pool = NULL;
	ex->pool_n = 0;
	/* The watchdog lives in our cgroup: with a v2 supervisor the teardown
	 * must leave that empty, so it goes first; otherwise it goes last, so
	 * that a SIGKILL during the teardown still leaves it to finish the job
	 * (stopping it before left the batch cgroup behind then). */
	if (ex->batch.supervisor)
		corral__watchdog_stop(&ex->wd);
	if (ex->have_batch)
		corral__teardown(&ex->batch, 2000);
	corral__watchdog_stop(&ex->wd);
	corral__close(ex->batch.dirfd);
	corral__close(ex->batch.pids_dirfd);
	if (ex->sb_on)
		corral__sandbox_free(&ex->sb);
	corral__spawn_cache_free(&ex->scache);
	corral__close(ex->epfd);
	corral__close(ex->timerfd);
	corral__close(ex->devnull);
	if (ex->strings) {
		struct strings *st = (struct strings *)ex->strings;
		free(st->cgroup_parent);
		free(st->cgroupfs);
		free(st->tmpdir);
		free(st->seccomp_file);
		free(st->user);
		free(st);
	}
	free(ex);
}

int corral_run(corral_executor_t *ex, corral_result_cb cb, void *ctx, corral_error_t *err)
{
	corral_result_t r;
	corral_summary_t s;
	int rc;

	corral_close(ex);
	while ((rc = corral_next(ex, &r, -1, err)) > 0) {
		if (cb)
			cb(&r, ctx);
		corral_result_release(&r);
	}
	if (rc != -ECHILD)
		return rc;
	corral_summary(ex, &s);
	return s.exit_code;
}

int corral_map(const corral_options_t *o, corral_fn_t fn, void *const *args, size_t n,
               corral_result_t *results, corral_summary_t *summary, corral_error_t *err)
{
	corral_executor_t *ex;
	corral_result_t r;
	corral_summary_t s;
	int rc;

	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof(results[i]));
		results[i].out.fd = results[i].err.fd = results[i].fn_result.fd = -1;
	}
	rc = corral_executor_new(o, &ex, err);
	if (rc < 0)
		return rc;
	/* Submit lazily: a window keeps memory flat for huge inputs. */
	size_t next = 0;
	uint64_t window = (uint64_t)ex->o.jobs * 4 + 16;
	for (;;) {
		while (next < n && corral_pending(ex) < window) {
			corral_task_t t;
			corral_task_init(&t);
			t.fn = fn;
			t.fn_arg = args[next];
			t.data = (void *)(uintptr_t)next;
			if (corral_submit(ex, &t, err) < 0) {
				corral_executor_free(ex);
				return -(err ? err->code : EIO);
			}
			next++;
		}
		if (next == n)
			corral_close(ex);
		rc = corral_next(ex, &r, -1, err);
		if (rc == -ECHILD)
			break;
		if (rc < 0) {
			corral_executor_free(ex);
			return rc;
		}
		if (!r.final) {
			corral_result_release(&r);
			continue;
		}
		size_t i = (size_t)(uintptr_t)r.data;
		results[i] = r;
	}
	corral_summary(ex, &s);
	if (summary)
		*summary = s;
	corral_executor_free(ex);
	return s.exit_code;
}
