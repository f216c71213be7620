/* attempt_remote.c - attempts run by a worker on another node, over the
 * wire protocol (remote.h; design §10; the protocol in wire.h).
 *
 * Each worker is a site of the policy. Its launcher (srun, ssh, any
 * command) is started with one end of a socketpair as its stdin and stdout
 * and a pipe as its stderr, in a session of its own: a terminal's Ctrl-C
 * reaches the head only, which then ends the batch in order (KILL, RESULT,
 * QUIT) instead of srun tearing the step down under the worker.
 *
 * The conversation: HELLO -> CONFIG (the executor's options) -> READY (the
 * slots appear in the policy) -> RUN/KILL out, STARTED/OUTPUT/RESULT in,
 * heartbeats both ways. Frames queued during a loop round leave in one
 * write at its end (wire.h: through srun, separate writes are separate
 * messages and Nagle holds the second for ~40 ms).
 *
 * Loss is decided here and nowhere else (design §10: "by the protocol, not
 * by EOF or srun's exit code", research/slurm-multinode.md: a dead node's
 * srun says nothing for 25-30 s): nothing received for worker_timeout_ns
 * (60 s at least before HELLO: srun may wait for its step), none of our
 * bytes taken for as long, the channel closed, or a frame that breaks the
 * protocol. Then every running attempt ends as outcome lost, the site is
 * excluded, the channel is closed (the worker, if alive, kills its tasks
 * and exits when it sees EOF) and the launcher's process group gets
 * SIGTERM (srun forwards it to the step). Nothing here waits on a launcher
 * except the bounded shutdown at the end.
 *
 * Signals go to the launcher's process group, not to its pid alone: a
 * template runs under /bin/sh -c, and Debian's dash forks even a lone
 * command, so SIGTERM to the shell alone left its command (an ssh, the
 * test's stopped launcher) running after the head was gone. The group's
 * id is the launcher's pid, which names nothing else while the launcher is
 * unreaped: its exit is read with WNOWAIT and it is reaped at the
 * shutdown, after a last SIGKILL to what is left of its group.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "capture.h"
#include "outcome.h"
#include "remote.h"
#include "spawn.h"
#include "syscalls.h"

#define CONNECT_MS  60000u /* HELLO, at least: srun may wait for its step */
#define READS_MAX   16     /* reads per event, so one chatty worker cannot starve the loop */
#define ERRTAIL_MAX (sizeof(((struct corral__remote *)0)->errtail))

extern char **environ;

/* An attempt on a worker. */
struct ratt {
	struct corral__attempt base; /* first: the policy's part */
	struct ratt *prev, *next;
	uint64_t id;
	pid_t pid; /* on the worker's node */
	double start_time;
	bool kill_sent;
	struct corral__capture cap[2]; /* stdout, stderr: rfd unused */
};

static uint64_t ms_ns(uint64_t ms)
{
	return ms * 1000000u;
}

static const char *host_of(const struct corral__remote *r)
{
	return r->hello.node[0] ? r->hello.node : r->name;
}

static void lose(struct corral__remote *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void wait_exit(struct corral__remote *r, int ms);

/* ---------------------------------------------------------------- sending */

/* Queue a frame. A frame that cannot be made (no memory) loses the worker,
 * but at the next timer, not here: queue() runs inside the policy's walks
 * over its attempts (kill), which a loss would change under them. */
static void queue(struct corral__remote *r, const struct corral__wire_msg *m)
{
	corral_error_t e;

	if (r->fd < 0)
		return;
	int rc = corral__wire_encode(&r->out, m, &e);
	if (rc < 0 && !r->broken[0]) {
		snprintf(r->broken, sizeof(r->broken), "a %s frame for it could not be made: %s",
		         corral__wire_type_name(m->type), e.msg);
		corral__loop_arm(r->loop, 0);
	}
}

static void want_out(struct corral__remote *r, bool on)
{
	if (r->want_out == on || !r->h_fd)
		return;
	if (corral__loop_mod(r->loop, r->h_fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0)) == 0)
		r->want_out = on;
}

/* Write what waits, once; what the channel does not take waits for EPOLLOUT. */
static void flush(struct corral__remote *r)
{
	if (r->fd < 0)
		return;
	if (!corral__wire_buf_pending(&r->out)) {
		r->tx_blocked_since = 0;
		want_out(r, false);
		return;
	}
	ssize_t n = corral__wire_buf_flush(&r->out, r->fd);
	if (n == -EPIPE || n == -ECONNRESET) {
		wait_exit(r, 100); /* its status and last words, as at EOF */
		lose(r, "its channel closed");
		return;
	}
	if (n < 0 && n != -EAGAIN) {
		lose(r, "its channel could not be written: %s", strerror((int)-n));
		return;
	}
	if (!corral__wire_buf_pending(&r->out)) {
		r->tx_blocked_since = 0;
		want_out(r, false);
	} else {
		if (n > 0 || !r->tx_blocked_since)
			r->tx_blocked_since = corral__now_ns();
		want_out(r, true);
	}
}

static void send_heartbeat(struct corral__remote *r)
{
	struct corral__wire_msg m;

	corral__wire_msg_init(&m, WIRE_HEARTBEAT);
	m.u.heartbeat.seq = ++r->hb_seq;
	m.u.heartbeat.mono_ns = corral__now_ns();
	queue(r, &m);
}

static void send_config(struct corral__remote *r)
{
	const corral_options_t *o = r->o;
	const corral_sandbox_t *sb = &o->sandbox;
	struct corral__wire_msg m;
	struct corral__wire_config *c = &m.u.config;

	corral__wire_msg_init(&m, WIRE_CONFIG);
	c->proto = 1;
	c->jobs = r->jobs_wanted ? r->jobs_wanted : (r->hello.cpus ? r->hello.cpus : 1);
	if (c->jobs > 100000)
		c->jobs = 100000;
	c->memory_max = o->memory_max;
	c->swap_max = o->swap_max;
	c->pids_max = o->pids_max;
	c->cpus = o->cpus;
	c->timeout_ns = o->timeout_ns;
	c->kill_grace_ns = o->kill_grace_ns;
	c->oom_group = o->oom_group;
	c->allow_subprocess_oom = o->allow_subprocess_oom;
	c->seccomp = sb->seccomp == CORRAL_SECCOMP_FILE      ? WIRE_SECCOMP_PROFILE
	             : sb->seccomp == CORRAL_SECCOMP_DEFAULT ? WIRE_SECCOMP_DEFAULT
	                                                     : WIRE_SECCOMP_OFF;
	c->seccomp_profile.data = r->profile;
	c->seccomp_profile.len = r->profile_len;
	c->allow_ptrace = sb->allow_ptrace;
	c->no_new_privs = sb->no_new_privs;
	c->no_network = sb->no_network;
	snprintf(c->user, sizeof(c->user), "%s", sb->user ? sb->user : "");
	c->core_dumps = sb->core_dumps;
	c->cgroup_ns = sb->cgroup_ns;
	c->capture_max = o->capture_max;
	c->heartbeat_ms = (uint32_t)r->hb_ms;
	c->heartbeat_misses = (uint32_t)(r->lost_ms / r->hb_ms);
	c->timeline = o->timeline;
	c->allow_io_uring = sb->allow_io_uring;
	c->pid_ns = sb->pid_ns;
	queue(r, &m);
	r->configured = true;
}

/* ---------------------------------------------------------------- attempts */

static struct ratt *find_att(struct corral__remote *r, uint64_t id)
{
	for (struct ratt *a = r->atts; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

static void unlink_att(struct corral__remote *r, struct ratt *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		r->atts = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
}

/* A spawn step name that outlives the frame it came in (results point to
 * static names). */
static const char *step_static(const char *s)
{
	if (!s[0])
		return NULL;
	for (int i = 1; i < STEP_COUNT; i++)
		if (!strcmp(s, corral__step_name(i)))
			return corral__step_name(i);
	return !strcmp(s, "submit") ? "submit" : "spawn (on the worker)";
}

/* The result of attempt a: taken from x (a RESULT), or lost (x NULL). */
static void finish(struct corral__remote *r, struct ratt *a, const struct corral__wire_result *x)
{
	struct corral__task *t = a->base.task;
	struct corral__result_node *n = corral__result_new();
	corral_result_t tmp, *res = n ? &n->r : &tmp;

	if (!n) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.out.fd = tmp.err.fd = tmp.fn_result.fd = -1;
		tmp.memory_stall_some = tmp.memory_stall_full = -1;
	}
	unlink_att(r, a);
	r->attempts++;
	res->seq = t->seq;
	res->attempt = a->base.no;
	res->data = t->data;
	if (t->argv)
		snprintf(res->command, sizeof(res->command), "%s", t->argv[0]);
	snprintf(res->host, sizeof(res->host), "%s", host_of(r));
	res->memory_max = a->base.memory_max;
	res->pid = a->pid > 0 ? a->pid : 0;
	res->start_time = a->start_time;
	if (x) {
		res->outcome = (corral_outcome_t)x->outcome;
		res->exit_code = x->exit_code;
		res->signal = x->signal;
		res->status = x->status;
		res->pid = x->pid > 0 ? x->pid : res->pid;
		res->oom_kills = x->oom_kills;
		res->own_limit_hit = x->own_limit_hit;
		if (x->memory_max)
			res->memory_max = x->memory_max;
		res->memory_peak = x->memory_peak;
		res->pids_limit_hit = x->pids_limit_hit;
		res->seccomp_kill = x->seccomp_kill;
		res->spawn_errno = x->spawn_errno;
		res->spawn_step = step_static(x->spawn_step);
		if (x->start_time > 0)
			res->start_time = x->start_time;
		res->wall_s = x->wall_s;
		res->user_s = x->user_s;
		res->sys_s = x->sys_s;
		snprintf(res->oom_memcg, sizeof(res->oom_memcg), "%s", x->oom_memcg);
		res->memory_stall_some = x->memory_stall_some;
		res->memory_stall_full = x->memory_stall_full;
		corral_oom_victim_t *v;
		unsigned nv;
		if (corral__wire_unpack_victims(&x->oom_victims, &v, &nv) == 0) {
			res->oom_victims = v;
			res->n_oom_victims = nv;
		}
		corral_sample_t *s;
		unsigned ns;
		if (corral__wire_unpack_timeline(&x->timeline, &s, &ns) == 0) {
			res->timeline = s;
			res->n_timeline = ns;
			res->timeline_peak = x->timeline_peak < ns ? x->timeline_peak : 0;
		}
	} else {
		r->lost++;
		res->outcome = CORRAL_LOST;
		res->status = 255;
		res->exit_code = -1;
		if (res->start_time > 0)
			res->wall_s = corral__wall_now() - res->start_time;
		else
			res->start_time = corral__wall_now();
	}
	corral__capture_take(&a->cap[0], &res->out);
	corral__capture_take(&a->cap[1], &res->err);
	if (x) {
		res->out.lost += x->out_lost;
		res->err.lost += x->err_lost;
	}
	/* The worker's sentence where it says more than the fields do (observe
	 * mode, lost bytes), with the node; else ours, which names it. */
	char plain[sizeof(res->sentence)];
	char host[sizeof(res->host)];
	memcpy(host, res->host, sizeof(host));
	res->host[0] = '\0';
	corral_result_sentence(res, plain, sizeof(plain));
	memcpy(res->host, host, sizeof(host));
	if (x && x->sentence[0] && strcmp(x->sentence, plain)) {
		snprintf(res->sentence, sizeof(res->sentence), "%s (on %s)", x->sentence, host);
	} else {
		corral__sentence(res, r->o->timeout_ns);
	}
	corral__policy_done(r->site.pol, &a->base, n, res);
	corral__capture_free(&a->cap[0]);
	corral__capture_free(&a->cap[1]);
	free(a);
}

static int site_start(struct corral__site *s, struct corral__task *t, unsigned no,
                      uint64_t memory_max)
{
	struct corral__remote *r = (struct corral__remote *)s;
	struct corral__wire_msg m;
	corral_error_t e;
	struct ratt *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	corral__policy_begin(s, &a->base, t, no, memory_max);
	corral__capture_init(&a->cap[0]);
	corral__capture_init(&a->cap[1]);
	a->id = ++r->next_id;
	a->next = r->atts;
	if (r->atts)
		r->atts->prev = a;
	r->atts = a;

	uint32_t n = 0;
	while (t->argv[n])
		n++;
	corral__wire_msg_init(&m, WIRE_RUN);
	m.u.run.id = a->id;
	m.u.run.seq = t->seq;
	m.u.run.attempt = no;
	m.u.run.memory_max = memory_max;
	m.u.run.argv.v = t->argv;
	m.u.run.argv.n = n;
	int rc = corral__wire_encode(&r->out, &m, &e);
	if (rc < 0) {
		/* Too big for a frame (argv over 4 MiB), or no memory: that
		 * attempt could not be started; nothing was sent. */
		struct corral__wire_result x;
		memset(&x, 0, sizeof(x));
		x.id = a->id;
		x.outcome = CORRAL_SPAWN_ERROR;
		x.exit_code = -1;
		x.status = 125;
		x.spawn_errno = -rc;
		snprintf(x.spawn_step, sizeof(x.spawn_step), "submit");
		x.memory_stall_some = x.memory_stall_full = -1;
		a->start_time = corral__wall_now();
		finish(r, a, &x);
	}
	return 0;
}

static void site_kill(struct corral__site *s, struct corral__attempt *base, bool abort)
{
	struct corral__remote *r = (struct corral__remote *)s;
	struct ratt *a = (struct ratt *)base;
	struct corral__wire_msg m;

	if (a->kill_sent || r->state != CORRAL_WORKER_READY)
		return;
	a->kill_sent = true;
	corral__wire_msg_init(&m, WIRE_KILL);
	m.u.kill.id = a->id;
	m.u.kill.reason = abort ? WIRE_KILL_ABORT : WIRE_KILL_TIMEOUT;
	queue(r, &m);
}

static int site_signal(struct corral__site *s, struct corral__attempt *a, int sig)
{
	(void)s;
	(void)a;
	(void)sig;
	return -ENOTSUP; /* protocol 1 has no signal frame */
}

/* ---------------------------------------------------------------- loss */

static void on_err(void *ctx, int arg, uint32_t events);
static void note_exit(struct corral__remote *r);

/* sig to the launcher's process group (launcher_child made it a session
 * and group leader), while the launcher is unreaped: until then the group's
 * id can name no other group, and the group is never empty (its leader, a
 * zombie at worst, is in it), so the kill cannot miss. */
static void signal_launcher(struct corral__remote *r, int sig)
{
	if (r->reaped || r->pid <= 0)
		return;
	kill(-r->pid, sig);
}

static void lose(struct corral__remote *r, const char *fmt, ...)
{
	va_list ap;

	if (r->state == CORRAL_WORKER_LOST || r->state == CORRAL_WORKER_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->state = CORRAL_WORKER_LOST;
	r->lost_ns = corral__now_ns();
	/* How it ended and what it said last, if that is known by now. */
	note_exit(r);
	if (r->errfd >= 0)
		on_err(r, 0, 0);
	r->site.excluded = true;
	r->site.pending = false;
	r->site.slots = 0;
	/* The worker, if it lives, sees EOF: it kills its tasks and exits. */
	corral__loop_del(r->loop, &r->h_fd);
	corral__close(r->fd);
	r->fd = -1;
	corral__wire_buf_free(&r->out);
	signal_launcher(r, SIGTERM);
	while (r->atts)
		finish(r, r->atts, NULL);
	corral_worker_info_t *w = malloc(sizeof(*w));
	char why[256] = "no worker is left";
	if (w) {
		corral__remote_info(r, w);
		snprintf(why, sizeof(why), "no worker is left: the last one, %s, was lost: %s",
		         r->name, w->why);
		free(w);
	}
	corral__policy_site_lost(r->site.pol, why);
}

/* ---------------------------------------------------------------- receiving */

static void protocol(struct corral__remote *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void protocol(struct corral__remote *r, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Tell it why, best effort, before the channel closes. */
	struct corral__wire_msg m;
	corral__wire_msg_init(&m, WIRE_ERROR);
	m.u.error.code = EPROTO;
	snprintf(m.u.error.message, sizeof(m.u.error.message), "%s", msg);
	if (r->fd >= 0 && corral__wire_encode(&r->out, &m, NULL) == 0)
		(void)corral__wire_buf_flush(&r->out, r->fd);
	lose(r, "it broke the protocol: %s", msg);
}

static void on_hello(struct corral__remote *r, const struct corral__wire_hello *h)
{
	if (r->have_hello) {
		protocol(r, "a second HELLO");
		return;
	}
	r->hello = *h;
	r->have_hello = true;
	if (h->proto_min > 1 || h->proto_max < 1) {
		protocol(r,
		         "it speaks protocols %u..%u, this head speaks 1 (corral %s there, %s "
		         "here)",
		         h->proto_min, h->proto_max, h->version, CORRAL_VERSION_STRING);
		return;
	}
	send_config(r);
}

static void on_ready(struct corral__remote *r, const struct corral__wire_ready *rd)
{
	if (!r->configured || r->state != CORRAL_WORKER_STARTING) {
		protocol(r, "READY %s", r->configured ? "twice" : "before CONFIG");
		return;
	}
	r->state = CORRAL_WORKER_READY;
	r->site.slots = rd->jobs ? rd->jobs : 1;
	r->site.pending = false;
	snprintf(r->notice, sizeof(r->notice), "%s", rd->notice);
}

static void on_output(struct corral__remote *r, const struct corral__wire_output *o)
{
	struct ratt *a = find_att(r, o->id);

	if (!a) {
		protocol(r, "OUTPUT for attempt %llu, which does not run there",
		         (unsigned long long)o->id);
		return;
	}
	struct corral__capture *c = &a->cap[o->stream == WIRE_STDOUT ? 0 : 1];
	uint64_t have = c->total + c->dropped;
	if (o->offset != have) {
		protocol(r, "OUTPUT of attempt %llu at offset %llu, expected %llu",
		         (unsigned long long)o->id, (unsigned long long)o->offset,
		         (unsigned long long)have);
		return;
	}
	if (corral__capture_append(c, o->data.data, o->data.len, r->o->capture_max, r->o->tmpdir) <
	    0)
		lose(r, "no memory for the output of attempt %llu", (unsigned long long)o->id);
}

static void on_result(struct corral__remote *r, const struct corral__wire_result *x)
{
	struct ratt *a = find_att(r, x->id);

	if (!a) {
		protocol(r, "RESULT for attempt %llu, which does not run there",
		         (unsigned long long)x->id);
		return;
	}
	if (x->out_len != a->cap[0].total + a->cap[0].dropped ||
	    x->err_len != a->cap[1].total + a->cap[1].dropped) {
		protocol(r, "RESULT of attempt %llu counts %llu+%llu output bytes, %llu+%llu came",
		         (unsigned long long)x->id, (unsigned long long)x->out_len,
		         (unsigned long long)x->err_len,
		         (unsigned long long)(a->cap[0].total + a->cap[0].dropped),
		         (unsigned long long)(a->cap[1].total + a->cap[1].dropped));
		return;
	}
	finish(r, a, x);
}

static void on_message(struct corral__remote *r, struct corral__wire_msg *m)
{
	switch (m->type) {
	case WIRE_HEARTBEAT:
		return;
	case WIRE_ERROR:
		lose(r, "it gave up: %s (%s)", m->u.error.message, strerror(m->u.error.code));
		return;
	case WIRE_HELLO:
		on_hello(r, &m->u.hello);
		return;
	case WIRE_READY:
		on_ready(r, &m->u.ready);
		return;
	default:
		break;
	}
	if (m->type != WIRE_STARTED && m->type != WIRE_OUTPUT && m->type != WIRE_RESULT) {
		protocol(r, "it sent a %s frame, which only a head sends",
		         corral__wire_type_name(m->type));
		return;
	}
	if (r->state != CORRAL_WORKER_READY) {
		protocol(r, "%s before READY", corral__wire_type_name(m->type));
		return;
	}
	if (m->type == WIRE_STARTED) {
		struct ratt *a = find_att(r, m->u.started.id);
		if (!a) {
			protocol(r, "STARTED for attempt %llu, which does not run there",
			         (unsigned long long)m->u.started.id);
			return;
		}
		a->pid = m->u.started.pid;
		a->start_time = m->u.started.start_time;
	} else if (m->type == WIRE_OUTPUT) {
		on_output(r, &m->u.output);
	} else {
		on_result(r, &m->u.result);
	}
}

static void on_chan(void *ctx, int arg, uint32_t events)
{
	struct corral__remote *r = ctx;
	corral_error_t e;
	(void)arg;

	if (events & EPOLLOUT)
		flush(r);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		return;
	for (int i = 0; i < READS_MAX && r->fd >= 0; i++) {
		ssize_t n = corral__wire_reader_fill(&r->rd, r->fd);
		if (n == -EAGAIN)
			return;
		if (n < 0 && n != -ECONNRESET) {
			lose(r, "its channel could not be read: %s", strerror((int)-n));
			return;
		}
		if (n <= 0) {
			/* Closed (reset: with our bytes unread). Its command is
			 * usually gone by now or a moment later: its status and
			 * last words say why. */
			wait_exit(r, 100);
			lose(r, "its channel closed%s",
			     corral__wire_reader_pending(&r->rd) ? " inside a frame" : "");
			return;
		}
		r->last_rx = corral__now_ns();
		struct corral__wire_msg m;
		int rc = 0;
		while (r->fd >= 0 && (rc = corral__wire_reader_next(&r->rd, &m, &e)) > 0) {
			on_message(r, &m);
			corral__wire_msg_free(&m);
		}
		if (r->fd >= 0 && rc < 0) {
			protocol(r, "%s", e.msg);
			return;
		}
	}
}

/* The launcher's stderr: its last bytes are kept for the reason of a loss. */
static void on_err(void *ctx, int arg, uint32_t events)
{
	struct corral__remote *r = ctx;
	char buf[4096];
	(void)arg;
	(void)events;

	for (int i = 0; i < READS_MAX; i++) {
		ssize_t n = read(r->errfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				corral__loop_del(r->loop, &r->h_err);
				corral__close(r->errfd);
				r->errfd = -1;
			}
			return;
		}
		size_t k = (size_t)n;
		if (k >= ERRTAIL_MAX) {
			memcpy(r->errtail, buf + k - ERRTAIL_MAX, ERRTAIL_MAX);
			r->errlen = ERRTAIL_MAX;
		} else {
			if (r->errlen + k > ERRTAIL_MAX) {
				size_t drop = r->errlen + k - ERRTAIL_MAX;
				memmove(r->errtail, r->errtail + drop, r->errlen - drop);
				r->errlen -= drop;
			}
			memcpy(r->errtail + r->errlen, buf, k);
			r->errlen += k;
		}
	}
}

static void note_exit(struct corral__remote *r)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (r->exited || r->pidfd < 0)
		return;
	/* WNOWAIT: the status only; the zombie keeps its pid (and the group's
	 * id) ours until the shutdown reaps it. */
	if (corral__waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si, WEXITED | WNOHANG | WNOWAIT,
	                   NULL) < 0 ||
	    si.si_pid == 0)
		return;
	/* Read before any store through r: gcc 12 at -O3 otherwise warns that
	 * a dangling pointer to si may be used (-Wdangling-pointer). */
	int code = si.si_code, status = si.si_status;
	r->exited = true;
	if (code == CLD_EXITED)
		r->exit_code = status;
	else
		r->exit_signal = status;
	corral__loop_del(r->loop, &r->h_pid);
}

/* Wait up to ms for the launcher to exit (it closed the channel). */
static void wait_exit(struct corral__remote *r, int ms)
{
	struct pollfd p = {.fd = r->pidfd, .events = POLLIN};

	if (r->exited || r->pidfd < 0)
		return;
	while (poll(&p, 1, ms) < 0 && errno == EINTR)
		;
	note_exit(r);
}

static void on_pid(void *ctx, int arg, uint32_t events)
{
	struct corral__remote *r = ctx;
	(void)arg;
	(void)events;

	note_exit(r);
	/* Its channel says the rest (EOF after the frames it sent); a
	 * launcher whose child holds the channel on is caught by silence. */
}

/* ---------------------------------------------------------------- the loop round */

static uint64_t loss_at(const struct corral__remote *r)
{
	uint64_t bound = r->have_hello ? ms_ns(r->lost_ms)
	                               : ms_ns(r->lost_ms > CONNECT_MS ? r->lost_ms : CONNECT_MS);
	return r->last_rx + bound;
}

static uint64_t site_deadline(const struct corral__site *s)
{
	const struct corral__remote *r = (const struct corral__remote *)s;

	if (r->fd < 0)
		return UINT64_MAX;
	if (r->broken[0])
		return 0;
	uint64_t at = loss_at(r);
	if (r->next_hb < at)
		at = r->next_hb;
	if (r->tx_blocked_since && r->tx_blocked_since + ms_ns(r->lost_ms) < at)
		at = r->tx_blocked_since + ms_ns(r->lost_ms);
	return at;
}

static void site_timer(struct corral__site *s, uint64_t now)
{
	struct corral__remote *r = (struct corral__remote *)s;

	if (r->fd < 0)
		return;
	if (r->broken[0]) {
		lose(r, "%s", r->broken);
		return;
	}
	if (now >= loss_at(r)) {
		lose(r, "nothing came from it for %.1f s%s", (double)(now - r->last_rx) / 1e9,
		     r->have_hello ? "" : " (no HELLO: did the worker start?)");
		return;
	}
	if (r->tx_blocked_since && now >= r->tx_blocked_since + ms_ns(r->lost_ms)) {
		lose(r, "it took none of our %zu waiting bytes for %.1f s",
		     corral__wire_buf_pending(&r->out), (double)(now - r->tx_blocked_since) / 1e9);
		return;
	}
	if (now >= r->next_hb) {
		send_heartbeat(r);
		r->next_hb = now + ms_ns(r->hb_ms);
	}
}

static void site_after_round(struct corral__site *s)
{
	flush((struct corral__remote *)s);
}

static void site_force_out(struct corral__site *s)
{
	struct corral__remote *r = (struct corral__remote *)s;

	if (r->atts)
		lose(r, "its attempts did not end after they were killed");
}

static const struct corral__site_ops remote_ops = {
    .start = site_start,
    .kill = site_kill,
    .signal = site_signal,
    .deadline = site_deadline,
    .timer = site_timer,
    .after_round = site_after_round,
    .force_out = site_force_out,
};

/* ---------------------------------------------------------------- the launcher */

/* The child between clone and exec: async-signal-safe only. */
__attribute__((noreturn)) static void launcher_child(const char *path, char *const *argv, int chan,
                                                     int errw)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL); /* ignored ones (SIGPIPE) survive exec */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	/* Above 2 first, so that none of the three is overwritten early. */
	int c = fcntl(chan, F_DUPFD, 3), e = fcntl(errw, F_DUPFD, 3);
	if (c < 0 || e < 0 || dup2(c, 0) < 0 || dup2(c, 1) < 0 || dup2(e, 2) < 0)
		_exit(126);
	corral__close_range(3, ~0u);
	execve(path, argv, environ);
	_exit(127);
}

static char **copy_argv(const char *const *v)
{
	size_t n, bytes = 0;

	for (n = 0; v[n]; n++)
		bytes += strlen(v[n]) + 1;
	char **out = malloc((n + 1) * sizeof(char *) + bytes);
	if (!out)
		return NULL;
	char *p = (char *)(out + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(p, v[i], l);
		out[i] = p;
		p += l;
	}
	out[n] = NULL;
	return out;
}

static int read_profile(struct corral__remote *r, const char *path, corral_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return corral__err(err, errno, "read the seccomp profile '%s' for the workers",
		                   path);
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)CORRAL_WIRE_MAX_PROFILE)
		return corral__err(err, EFBIG, "the seccomp profile '%s' is over %u bytes", path,
		                   CORRAL_WIRE_MAX_PROFILE);
	r->profile = malloc((size_t)st.st_size + 1);
	if (!r->profile)
		return corral__err(err, ENOMEM, "read the seccomp profile");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, r->profile + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return corral__err(err, n < 0 ? errno : EIO,
			                   "read the seccomp profile '%s'", path);
		got += (size_t)n;
	}
	r->profile_len = got;
	return 0;
}

int corral__remote_new(const corral_options_t *o, struct corral__loop *loop, const char *name,
                       const char *const *argv, unsigned jobs, struct corral__remote **out,
                       corral_error_t *err)
{
	struct corral__remote *r;
	char path[PATH_MAX];
	int sv[2] = {-1, -1}, ep[2] = {-1, -1};
	char **av = NULL;
	int rc;

	*out = NULL;
	if (!argv || !argv[0] || !argv[0][0])
		return corral__err(err, EINVAL, "worker '%s': no command to start it", name);
	rc = corral__resolve_exe(argv[0], getenv("PATH"), path, sizeof(path));
	if (rc < 0)
		return corral__err(err, -rc, "worker '%s': cannot run '%s'%s", name, argv[0],
		                   rc == -ENOENT && !strchr(argv[0], '/') ? " (not found in PATH)"
		                                                          : "");
	r = calloc(1, sizeof(*r));
	if (!r)
		return corral__err(err, ENOMEM, "allocate a worker");
	r->site.ops = &remote_ops;
	r->site.budget = o->memory_budget;
	r->site.pending = true;
	snprintf(r->site.host, sizeof(r->site.host), "%s", name);
	r->o = o;
	r->loop = loop;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->jobs_wanted = jobs;
	r->pid = -1;
	r->pidfd = r->fd = r->errfd = -1;
	r->state = CORRAL_WORKER_STARTING;
	corral__wire_reader_init(&r->rd);
	uint64_t timeout_ms = o->worker_timeout_ns / 1000000u;
	if (timeout_ms < 100)
		timeout_ms = 100;
	if (timeout_ms > 600000u * 10)
		timeout_ms = 600000u * 10;
	r->hb_ms = timeout_ms / 10;
	r->lost_ms = r->hb_ms * 10;

	if (o->sandbox.seccomp == CORRAL_SECCOMP_FILE && o->sandbox.seccomp_file) {
		rc = read_profile(r, o->sandbox.seccomp_file, err);
		if (rc < 0)
			goto fail;
	}
	av = copy_argv(argv);
	if (!av) {
		rc = corral__err(err, ENOMEM, "copy a worker's command");
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		rc = corral__err(err, errno, "worker '%s': make its channel", name);
		goto fail;
	}
	struct corral__clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&r->pidfd;
	ca.exit_signal = SIGCHLD;
	long pid = corral__clone3(&ca);
	if (pid < 0 && errno == ENOSYS) {
		pid = fork();
		if (pid > 0)
			r->pidfd = corral__pidfd_open((pid_t)pid, 0);
	}
	if (pid == 0)
		launcher_child(path, av, sv[1], ep[1]);
	if (pid < 0) {
		rc = corral__err(err, errno, "worker '%s': start '%s'", name, argv[0]);
		goto fail;
	}
	r->pid = (pid_t)pid;
	corral__close(sv[1]);
	corral__close(ep[1]);
	sv[1] = ep[1] = -1;
	r->fd = sv[0];
	r->errfd = ep[0];
	sv[0] = ep[0] = -1;
	free(av);
	av = NULL;
	if (r->pidfd < 0) {
		/* Without a pidfd (before Linux 5.3) the launcher is reaped at
		 * shutdown only; its end shows as EOF on the channel. */
	}
	if (fcntl(r->fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(r->errfd, F_SETFL, O_NONBLOCK) < 0) {
		rc = corral__err(err, errno, "worker '%s': make its channel non-blocking", name);
		goto fail;
	}
	int64_t h = corral__loop_add(loop, r->fd, EPOLLIN | EPOLLRDHUP, false, on_chan, r, 0);
	if (h < 0) {
		rc = corral__err(err, (int)-h, "worker '%s': watch its channel", name);
		goto fail;
	}
	r->h_fd = (corral__loop_handle)h;
	h = corral__loop_add(loop, r->errfd, EPOLLIN, false, on_err, r, 0);
	if (h < 0) {
		rc = corral__err(err, (int)-h, "worker '%s': watch its stderr", name);
		goto fail;
	}
	r->h_err = (corral__loop_handle)h;
	if (r->pidfd >= 0) {
		h = corral__loop_add(loop, r->pidfd, EPOLLIN, true, on_pid, r, 0);
		if (h < 0) {
			rc = corral__err(err, (int)-h, "worker '%s': watch its process", name);
			goto fail;
		}
		r->h_pid = (corral__loop_handle)h;
	}
	r->started_ns = r->last_rx = corral__now_ns();
	r->next_hb = r->started_ns + ms_ns(r->hb_ms);
	*out = r;
	return 0;
fail:
	corral__close(sv[0]);
	corral__close(sv[1]);
	corral__close(ep[0]);
	corral__close(ep[1]);
	free(av);
	if (r->pid > 0) {
		corral__remote_shutdown(&r, 1, 0);
		corral__remote_free(r);
	} else {
		corral__wire_reader_free(&r->rd);
		free(r->profile);
		free(r);
	}
	return rc;
}

/* ---------------------------------------------------------------- the end */

/* Read and drop what a quitting worker still sends (so that it is never
 * blocked on a full channel), until EOF. */
static void drain_quit(struct corral__remote *r)
{
	char buf[65536];

	while (r->fd >= 0) {
		ssize_t n = read(r->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		corral__loop_del(r->loop, &r->h_fd);
		corral__close(r->fd);
		r->fd = -1;
	}
}

void corral__remote_shutdown(struct corral__remote **rs, int n, unsigned bound_ms)
{
	struct corral__wire_msg m;
	uint64_t now = corral__now_ns(), bound = ms_ns(bound_ms);

	corral__wire_msg_init(&m, WIRE_QUIT);
	for (int i = 0; i < n; i++) {
		struct corral__remote *r = rs[i];
		if (r->state == CORRAL_WORKER_LOST) {
			/* SIGTERM went out when it was lost: SIGKILL once that is
			 * bound_ms old. */
			r->term_at = 0;
			r->kill_at = r->lost_ns + bound > now ? r->lost_ns + bound : now;
			continue;
		}
		if (r->fd >= 0) {
			/* QUIT, then EOF: either ends it. */
			if (corral__wire_encode(&r->out, &m, NULL) == 0)
				(void)corral__wire_buf_flush(&r->out, r->fd);
			shutdown(r->fd, SHUT_WR);
		}
		r->state = CORRAL_WORKER_DONE;
		r->site.excluded = true;
		/* One that never said HELLO has nothing to clean up: SIGTERM
		 * now (an srun still waiting for its step, say). */
		r->term_at = r->have_hello ? now + bound : now;
		r->kill_at = r->term_at + bound;
	}
	/* Until every launcher has exited: SIGTERM at term_at (srun forwards it
	 * to the worker, which cleans up), SIGKILL at kill_at (srun: Slurm then
	 * kills the whole step at once; never first), then reaped for sure. */
	for (;;) {
		struct pollfd pfd[2 * CORRAL_MAX_SITES];
		uint64_t next = UINT64_MAX;
		int k = 0;
		now = corral__now_ns();
		for (int i = 0; i < n; i++) {
			struct corral__remote *r = rs[i];
			drain_quit(r);
			note_exit(r);
			if (r->exited || r->pidfd < 0)
				continue;
			if (r->term_at && now >= r->term_at) {
				signal_launcher(r, SIGTERM);
				r->term_at = 0;
			}
			if (r->kill_at && now >= r->kill_at) {
				signal_launcher(r, SIGKILL);
				r->kill_at = 0;
			}
			uint64_t at = r->term_at   ? r->term_at
			              : r->kill_at ? r->kill_at
			                           : now + bound;
			if (at < next)
				next = at;
			if (k + 2 <= (int)ARRAY_SIZE(pfd)) {
				pfd[k++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
				if (r->fd >= 0)
					pfd[k++] = (struct pollfd){.fd = r->fd, .events = POLLIN};
			}
		}
		if (!k)
			break;
		int ms = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
		if (ms > 1000)
			ms = 1000;
		if (poll(pfd, (nfds_t)k, ms) < 0 && errno != EINTR)
			break;
	}
	for (int i = 0; i < n; i++) {
		struct corral__remote *r = rs[i];
		if (!r->reaped && r->pid > 0) {
			/* What is left of its group (what sh -c forked, a child it
			 * left behind), and the launcher itself where it has no
			 * pidfd: the group's id is ours until this reaps it. */
			signal_launcher(r, SIGKILL);
			while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
				;
			r->reaped = true;
		}
		corral__loop_del(r->loop, &r->h_fd);
		corral__close(r->fd);
		r->fd = -1;
	}
}

void corral__remote_free(struct corral__remote *r)
{
	if (!r)
		return;
	while (r->atts) {
		struct ratt *a = r->atts;
		unlink_att(r, a);
		corral__capture_free(&a->cap[0]);
		corral__capture_free(&a->cap[1]);
		free(a);
	}
	corral__loop_del(r->loop, &r->h_fd);
	corral__loop_del(r->loop, &r->h_err);
	corral__loop_del(r->loop, &r->h_pid);
	corral__close(r->fd);
	corral__close(r->errfd);
	corral__close(r->pidfd);
	corral__wire_reader_free(&r->rd);
	corral__wire_buf_free(&r->out);
	free(r->profile);
	free(r);
}

/* The last non-empty line of the launcher's stderr, into buf. */
static void last_line(const struct corral__remote *r, char *buf, size_t len)
{
	size_t end = r->errlen;

	buf[0] = '\0';
	while (end > 0 && (r->errtail[end - 1] == '\n' || r->errtail[end - 1] == '\r'))
		end--;
	size_t start = end;
	while (start > 0 && r->errtail[start - 1] != '\n')
		start--;
	size_t n = end - start < len - 1 ? end - start : len - 1;
	memcpy(buf, r->errtail + start, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20)
			buf[i] = ' ';
}

void corral__remote_info(const struct corral__remote *r, corral_worker_info_t *w)
{
	char line[200];

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", r->name);
	snprintf(w->node, sizeof(w->node), "%s", r->hello.node);
	w->state = r->state;
	w->jobs = r->state == CORRAL_WORKER_READY ? r->site.slots : 0;
	w->attempts = r->attempts;
	w->lost = r->lost;
	w->memory_limits = r->hello.memory_limits;
	w->cgroup_mode = r->hello.cgroup_mode;
	snprintf(w->provider, sizeof(w->provider), "%s", r->hello.provider);
	snprintf(w->kernel, sizeof(w->kernel), "%s", r->hello.kernel);
	if (r->state != CORRAL_WORKER_LOST) {
		snprintf(w->why, sizeof(w->why), "%s", r->notice);
		return;
	}
	size_t pos = (size_t)snprintf(w->why, sizeof(w->why), "%s", r->reason);
	if (pos < sizeof(w->why) && r->exited)
		pos += (size_t)snprintf(w->why + pos, sizeof(w->why) - pos, "; its command %s %d",
		                        r->exit_signal ? "died of signal" : "exited with status",
		                        r->exit_signal ? r->exit_signal : r->exit_code);
	last_line(r, line, sizeof(line));
	if (pos < sizeof(w->why) && line[0])
		snprintf(w->why + pos, sizeof(w->why) - pos, "; it said: %s", line);
}
