/* executor.c - the public API of an executor: the batch policy (policy.c)
 * driving attempts on this node (attempt_local.c) or on workers of other
 * nodes (attempt_remote.c), over one event loop (loop.c).
 *
 * A round of the loop (loop_once): start what may start, arm the timer to
 * the earliest deadline any site wants, wait for events (pidfds, pipes,
 * cgroup events, workers' channels, the timer) and dispatch them, start what
 * their ends made room for, let each site finish its round (the local one
 * readies recycled cgroups; a remote one writes its frames in one write).
 * Before it returns to the caller, the driving thread is back in its own
 * PID namespace for children (attempt_local.c spawns into the batch's).
 */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "local.h"
#include "loop.h"
#include "policy.h"
#include "remote.h"

struct strings {
	char *cgroup_parent, *cgroupfs, *tmpdir, *seccomp_file, *user;
};

struct corral_executor {
	corral_options_t o;
	struct strings st; /* copies of the option strings */
	struct corral__loop loop;
	struct corral__policy pol;
	struct corral__local *local; /* this node; NULL with options.no_local */
	struct corral__remote *remotes[CORRAL_MAX_SITES]; /* workers of other nodes */
	int n_remotes;
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
	o->lost_retries = 3;
	o->worker_timeout_ns = 10ull * 1000000000u;
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
	    {"sandbox", sizeof(corral_sandbox_t)}, {"provider", sizeof(corral_provider_t)},
	};
	for (size_t i = 0; name && i < ARRAY_SIZE(sizes); i++)
		if (!strcmp(sizes[i].name, name))
			return sizes[i].size;
	return 0;
}

/* ------------------------------------------------------------ the loop */

static uint64_t ms_to_ns(uint64_t ms)
{
	return ms * 1000000u;
}

/* The earliest deadline any site wants. */
static uint64_t deadline(const corral_executor_t *ex)
{
	uint64_t at = UINT64_MAX;

	for (int i = 0; i < ex->pol.n_sites; i++) {
		const struct corral__site *s = ex->pol.sites[i];
		if (s->ops->deadline) {
			uint64_t d = s->ops->deadline(s);
			if (d < at)
				at = d;
		}
	}
	return at;
}

/* One round: start what may start, wait up to timeout_ms, handle events. */
static int loop_once(corral_executor_t *ex, int timeout_ms)
{
	struct corral__policy *p = &ex->pol;

	corral__policy_schedule(p);
	corral__loop_arm(&ex->loop, deadline(ex));
	if (p->r_head)
		timeout_ms = 0;
	for (int i = 0; i < p->n_sites; i++)
		if (p->sites[i]->ops->before_wait)
			p->sites[i]->ops->before_wait(p->sites[i]);
	int rc = corral__loop_run(&ex->loop, timeout_ms);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		uint64_t now = corral__now_ns();
		for (int i = 0; i < p->n_sites; i++)
			if (p->sites[i]->ops->timer)
				p->sites[i]->ops->timer(p->sites[i], now);
	}
	corral__policy_schedule(p);
	for (int i = 0; i < p->n_sites; i++)
		if (p->sites[i]->ops->after_round)
			p->sites[i]->ops->after_round(p->sites[i]);
	/* Arm the timer for what this round changed (a reaped attempt that
	 * now drains, a started attempt's timeout): a caller that poll()s
	 * corral_fd() between corral_next(ex, &r, 0) calls relies on it, and
	 * would otherwise wait forever for a recheck that was never armed. */
	corral__loop_arm(&ex->loop, deadline(ex));
	return 0;
}

int corral_next(corral_executor_t *ex, corral_result_t *r, int timeout_ms, corral_error_t *err)
{
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX : corral__now_ns() + ms_to_ns((uint64_t)timeout_ms);

	for (;;) {
		if (corral__policy_next(&ex->pol, r) > 0)
			return 1;
		if (corral__policy_finished(&ex->pol))
			return -ECHILD;
		if (ex->pol.n_sites == 0 && !ex->pol.halt.aborted)
			corral__policy_site_lost(&ex->pol, "no worker was added to run the tasks "
			                                   "(corral_add_worker)");
		if (corral__policy_next(&ex->pol, r) > 0)
			return 1;
		if (!ex->pol.run_head && !ex->pol.q_head && !ex->pol.closed && timeout_ms < 0)
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
		if (!ex->pol.r_head && corral__now_ns() >= deadline)
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

int corral_executor_new(const corral_options_t *o, corral_executor_t **out, corral_error_t *err)
{
	corral_executor_t *ex;
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
	if (!ex)
		return corral__err(err, ENOMEM, "allocate the executor");
	ex->o = *o;
	ex->loop.epfd = ex->loop.timerfd = -1;
	ex->o.cgroup_parent = dup_opt(&ex->st.cgroup_parent, o->cgroup_parent);
	ex->o.cgroupfs = dup_opt(&ex->st.cgroupfs, o->cgroupfs);
	ex->o.tmpdir = dup_opt(&ex->st.tmpdir, o->tmpdir ? o->tmpdir : getenv("TMPDIR"));
	if (!ex->o.tmpdir)
		ex->o.tmpdir = "/tmp";
	ex->o.sandbox.seccomp_file = dup_opt(&ex->st.seccomp_file, o->sandbox.seccomp_file);
	ex->o.sandbox.user = dup_opt(&ex->st.user, o->sandbox.user);
	if (ex->o.jobs == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ex->o.jobs = n > 0 ? (unsigned)n : 1;
	}
	if (ex->o.capture_max == 0)
		ex->o.capture_max = 16384;
	corral__policy_init(&ex->pol, &ex->o, &ex->loop);

	rc = corral__loop_init(&ex->loop, err);
	if (rc < 0)
		goto fail;
	if (!ex->o.no_local) {
		rc = corral__local_new(&ex->o, &ex->loop, &ex->local, err);
		if (rc < 0)
			goto fail;
		rc = corral__policy_add_site(&ex->pol, &ex->local->site);
		if (rc < 0) {
			rc = corral__err(err, -rc, "add the local site");
			goto fail;
		}
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
	struct corral__task *t;

	if (ex->pol.closed)
		return corral__err(err, EPIPE, "the executor is closed");
	if (!in || (!in->fn && (!in->argv || !in->argv[0])) || (in->fn && in->argv))
		return corral__err(err, EINVAL, "a task needs either argv (non-empty) or fn");
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? in->stdin_fd : i == 1 ? in->stdout_fd : in->stderr_fd;
		if (fd < CORRAL_FD_CAPTURE || (i == 0 && fd == CORRAL_FD_CAPTURE))
			return corral__err(err, EINVAL, "bad fd %d for stream %d", fd, i);
	}
	uint64_t mem = in->memory_max ? in->memory_max : ex->o.memory_max;
	if (mem != CORRAL_UNLIMITED && ex->local && !ex->local->ops)
		return corral__err(err, EINVAL, "a memory limit needs cgroups");
	if (!ex->local) {
		/* Workers run commands with the worker's environment and
		 * directory; output comes back captured (corral_add_worker). */
		if (in->fn)
			return corral__err(err, EINVAL,
			                   "a function task runs on this node only, and "
			                   "this executor runs tasks on workers");
		if (in->envp || in->cwd)
			return corral__err(err, EINVAL,
			                   "a task on workers runs with the worker's "
			                   "environment and working directory");
		if (in->stdin_fd != CORRAL_FD_NULL || in->stdout_fd >= 0 || in->stderr_fd >= 0)
			return corral__err(err, EINVAL,
			                   "a task on workers has no stdin and its output is "
			                   "captured (CORRAL_FD_CAPTURE) or discarded");
	}
	if (ex->o.memory_budget != CORRAL_UNLIMITED && mem > ex->o.memory_budget)
		return corral__err(err, EINVAL,
		                   "the task's memory limit exceeds the memory budget: it could "
		                   "never start");
	if (in->seq && in->seq <= ex->pol.last_seq)
		return corral__err(err, EINVAL,
		                   "task number %llu is not above the last one (%llu): numbers "
		                   "must increase",
		                   (unsigned long long)in->seq,
		                   (unsigned long long)ex->pol.last_seq);
	t = calloc(1, sizeof(*t));
	if (!t)
		return corral__err(err, ENOMEM, "allocate a task");
	if (in->argv && !(t->argv = copy_strv(in->argv))) {
		free(t);
		return corral__err(err, ENOMEM, "copy a task's argv");
	}
	if (in->envp && !(t->envp = copy_strv(in->envp))) {
		corral__task_free(t);
		return corral__err(err, ENOMEM, "copy a task's environment");
	}
	if (in->cwd && !(t->cwd = strdup(in->cwd))) {
		corral__task_free(t);
		return corral__err(err, ENOMEM, "copy a task's cwd");
	}
	t->fds[0] = in->stdin_fd;
	t->fds[1] = in->stdout_fd;
	t->fds[2] = in->stderr_fd;
	t->fn = in->fn;
	t->fn_arg = in->fn_arg;
	t->data = in->data;
	t->memory_max = mem;
	t->seq = in->seq ? in->seq : ex->pol.last_seq + 1;
	uint64_t seq = t->seq; /* a task beyond the halt is freed at once */
	corral__policy_submit(&ex->pol, t);
	return (int64_t)seq;
}

void corral_close(corral_executor_t *ex)
{
	ex->pol.closed = true;
	if (ex->pol.r_head || (!ex->pol.run_head && !ex->pol.q_head))
		corral__loop_kick(&ex->loop);
}

int corral_fd(const corral_executor_t *ex)
{
	return ex->loop.epfd;
}

uint64_t corral_pending(const corral_executor_t *ex)
{
	return ex->pol.submitted - ex->pol.finals_delivered;
}

unsigned corral_running(const corral_executor_t *ex)
{
	return ex->pol.running;
}

void corral_get_profile(const corral_executor_t *ex, corral_profile_t *p)
{
	memset(p, 0, sizeof(*p));
	if (ex->local)
		corral__local_profile(ex->local, p);
	p->attempts = ex->pol.attempts;
}

int corral_signal(corral_executor_t *ex, uint64_t seq, int sig)
{
	struct corral__attempt *a = corral__policy_running(&ex->pol, seq);

	return a ? a->site->ops->signal(a->site, a, sig) : -ESRCH;
}

bool corral_halted(const corral_executor_t *ex)
{
	return ex->pol.halt.halted;
}

void corral_abort(corral_executor_t *ex)
{
	corral__policy_abort(&ex->pol);
}

void corral_summary(const corral_executor_t *ex, corral_summary_t *s)
{
	corral__policy_summary(&ex->pol, s);
	if (ex->local)
		s->provider = ex->local->prov;
	s->workers = (unsigned)ex->n_remotes;
	for (int i = 0; i < ex->n_remotes; i++)
		if (ex->remotes[i]->state == CORRAL_WORKER_LOST)
			s->workers_lost++;
	if (ex->local || !ex->n_remotes)
		return;
	/* No task ran here: the task cgroups are the workers', one provider
	 * per node (their HELLO). Limits: when every worker that answered has
	 * them. */
	corral_provider_t *p = &s->provider;
	size_t pos = 0;
	bool all = true, any = false;
	memset(p, 0, sizeof(*p));
	snprintf(p->platform, sizeof(p->platform), "workers on %d nodes", ex->n_remotes);
	for (int i = 0; i < ex->n_remotes; i++) {
		const struct corral__remote *r = ex->remotes[i];
		if (!r->have_hello)
			continue;
		any = true;
		all &= r->hello.memory_limits;
		if (pos < sizeof(p->found))
			pos += (size_t)snprintf(p->found + pos, sizeof(p->found) - pos, "%s%s: %s",
			                        pos ? ", " : "task cgroups on each node: ",
			                        r->hello.node[0] ? r->hello.node : r->name,
			                        r->hello.provider);
	}
	p->limits = any && all;
	p->used = p->limits ? CORRAL_CGROUPS_OWN : CORRAL_CGROUPS_OFF;
}

int corral_add_worker(corral_executor_t *ex, const char *name, const char *const *argv,
                      unsigned jobs, corral_error_t *err)
{
	struct corral__remote *r;
	char fallback[32];
	int rc;

	if (!ex->o.no_local)
		return corral__err(err, EINVAL,
		                   "workers need an executor that runs no task here "
		                   "(options.no_local)");
	if (ex->pol.closed && !ex->pol.run_head && !ex->pol.q_head)
		return corral__err(err, EPIPE, "the executor is closed and done");
	if (ex->n_remotes == CORRAL_MAX_SITES)
		return corral__err(err, E2BIG, "at most %d workers", CORRAL_MAX_SITES);
	if (!name || !*name) {
		snprintf(fallback, sizeof(fallback), "worker%d", ex->n_remotes + 1);
		name = fallback;
	}
	rc = corral__remote_new(&ex->o, &ex->loop, name, argv, jobs, &r, err);
	if (rc < 0)
		return rc;
	rc = corral__policy_add_site(&ex->pol, &r->site);
	if (rc < 0) {
		corral__remote_shutdown(&r, 1, 0);
		corral__remote_free(r);
		return corral__err(err, -rc, "add worker '%s'", name);
	}
	ex->remotes[ex->n_remotes] = r;
	return ex->n_remotes++;
}

int corral_worker_info(const corral_executor_t *ex, unsigned i, corral_worker_info_t *w)
{
	if (i >= (unsigned)ex->n_remotes)
		return -ENOENT;
	corral__remote_info(ex->remotes[i], w);
	return 0;
}

void corral_executor_free(corral_executor_t *ex)
{
	if (!ex)
		return;
	/* Kill what runs and let the loop reap it, bounded. */
	if (ex->pol.n_sites && (ex->pol.run_head || ex->pol.q_head)) {
		corral_abort(ex);
		uint64_t until = corral__now_ns() + ms_to_ns(5000);
		while (ex->pol.run_head && corral__now_ns() < until)
			if (loop_once(ex, 50) < 0)
				break;
		/* Stragglers (a pidfd that never fired? a worker that does not
		 * answer its KILLs?): force them out. */
		for (int i = 0; i < ex->pol.n_sites; i++)
			if (ex->pol.sites[i]->ops->force_out)
				ex->pol.sites[i]->ops->force_out(ex->pol.sites[i]);
	}
	/* The workers: QUIT, then SIGTERM and SIGKILL to their commands if
	 * they do not go (each reaped). */
	if (ex->n_remotes)
		corral__remote_shutdown(ex->remotes, ex->n_remotes, 10000);
	corral__policy_free(&ex->pol);
	for (int i = 0; i < ex->n_remotes; i++)
		corral__remote_free(ex->remotes[i]);
	corral__local_free(ex->local);
	corral__loop_free(&ex->loop);
	free(ex->st.cgroup_parent);
	free(ex->st.cgroupfs);
	free(ex->st.tmpdir);
	free(ex->st.seccomp_file);
	free(ex->st.user);
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

/* ------------------------------------------------------------ one task */

/* For the worker of `corral run --slurm` (worker.c): the head's KILL stops
 * one attempt, and its STARTED names the process. */
int corral_cancel(corral_executor_t *ex, uint64_t seq)
{
	return corral__policy_cancel(&ex->pol, seq);
}

int corral_task_started(const corral_executor_t *ex, uint64_t seq, pid_t *pid, double *start_time)
{
	struct corral__attempt *a = corral__policy_running((struct corral__policy *)&ex->pol, seq);

	if (!a || a->site != &ex->local->site)
		return -ESRCH;
	return corral__local_started(a, pid, start_time);
}

/* corral_task_memory(): see corral.h; the work is the site's (attempt_local.c,
 * corral__local_task_memory). */
int corral_task_memory(corral_executor_t *ex, uint64_t seq, uint64_t *current, uint64_t *peak,
                       bool reset_peak)
{
	struct corral__attempt *a = corral__policy_running(&ex->pol, seq);

	if (!a)
		return -ESRCH;
	if (!ex->local || a->site != &ex->local->site)
		return -EOPNOTSUPP; /* an attempt of another node */
	return corral__local_task_memory(ex->local, a, current, peak, reset_peak);
}
