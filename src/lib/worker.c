/* worker.c - corral_worker_serve(): one node's side of `corral run --slurm`
 * (design §10; the protocol is in wire.h).
 *
 * The worker is a local executor driven by frames instead of input lines:
 * RUN submits one task, its result goes back as STARTED, OUTPUT chunks and
 * RESULT. The head owns the batch policy, so the executor here never retries
 * and never halts; it only runs, limits, attributes and cleans up.
 *
 * One thread, one poll() over: the head's channel (rfd), our channel (wfd,
 * only while something waits to be sent), the executor's fd, and a signalfd.
 * Every wait is bounded by the next heartbeat or the loss deadline, so the
 * worker can neither hang on a silent head nor stall on a slow one:
 *   - writes are non-blocking, from one send buffer; task output is not
 *     copied into it whole but pulled from the captured result (memory or
 *     temp file) in 64 KiB chunks whenever less than SEND_LOW waits, so a
 *     head that reads slowly costs memory for one window, not for the output;
 *   - the head is lost when nothing arrived from it for heartbeat_ms *
 *     heartbeat_misses, or when it took none of our bytes for that long
 *     while some were waiting. EOF on rfd means it is gone. Either way every
 *     task is killed and every cgroup removed (corral_executor_free()).
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include "cgroup.h"
#include "wire.h"

#define HANDSHAKE_MS 30000u       /* the head's silence bound before CONFIG */
#define HELLO_HB_MS  1000u        /* heartbeat interval before CONFIG */
#define SEND_LOW     (256u << 10) /* pull more output below this many bytes waiting */
#define QUIT_MS      10000u       /* after QUIT: bound of sending what is left */
#define ERROR_MS     1000u        /* bound of flushing an ERROR before leaving */
/* STARTED waits this long (or goes with the RESULT of an attempt that ends
 * sooner). Through srun, every separate write of ours becomes one message
 * from slurmstepd, and the second of two messages sent within ~40 ms waits
 * for the first's delayed ACK (Nagle: measured 44 ms per RUN -> RESULT of
 * `true` when STARTED went out alone, tests/slurm). A short attempt's frames
 * in one write (up to 1024 bytes) are one message and arrive at once. */
#define STARTED_DEFER_MS 50u

/* An attempt the head asked for, still running here. */
struct watt {
	struct watt *prev, *next;
	bool linked;
	uint64_t id;       /* the head's attempt id */
	uint64_t seq;      /* the head's task number (for the sentence) */
	uint32_t attempt;  /* the head's attempt number */
	uint64_t local;    /* seq in our executor */
	bool started_sent; /* STARTED is out (or queued) */
	uint64_t seen_ms;  /* when we first saw its process run; 0 = not yet */
	uint8_t kill_reason;
};

/* A finished attempt whose frames are still to be sent: STARTED (when the
 * process ended before we saw it run), stdout chunks, stderr chunks, RESULT. */
struct outq {
	struct outq *next;
	corral_result_t r;
	struct corral__wire_msg res;
	bool send_started;
	struct corral__wire_msg started;
	int stream;   /* 0 stdout, 1 stderr, 2 the RESULT */
	uint64_t off; /* next byte of the stream */
	uint64_t sent[2], unread[2];
};

struct worker {
	int rfd, wfd, sigfd;
	int rfd_flags, wfd_flags; /* to put back; -1 = untouched */
	corral_options_t o;       /* defaults, then CONFIG on top */
	char user[256];
	corral_executor_t *ex;
	bool ex_done; /* the executor delivered its last result (after QUIT) */
	struct corral__wire_reader rd;
	struct corral__wire_buf out;
	uint64_t appended, written; /* bytes ever queued in / written from out */
	struct watt *atts;
	unsigned unstarted;
	struct outq *q_head, *q_tail;
	struct corral__wire_hello hello;
	bool configured, quitting;
	uint64_t hb_ms, lost_ms;
	uint64_t last_rx, tx_blocked_since, next_hb, hb_seq, hb_end, quit_deadline;
	uint64_t next_started; /* earliest deferred STARTED due; 0 = none */
	uint8_t chunk[CORRAL_WIRE_MAX_CHUNK];
};

static uint64_t now_ms(void)
{
	return corral__now_ns() / 1000000u;
}

/* ---------------------------------------------------------------- sending */

static int queue_msg(struct worker *w, const struct corral__wire_msg *m, corral_error_t *err)
{
	size_t before = corral__wire_buf_pending(&w->out);
	int rc = corral__wire_encode(&w->out, m, err);

	if (rc < 0)
		return corral__err_wrap(err, rc, "send a %s message",
		                        corral__wire_type_name(m->type));
	w->appended += corral__wire_buf_pending(&w->out) - before;
	return 0;
}

/* Write what waits; -EPIPE & co. when the head closed its end. */
static int flush_out(struct worker *w, corral_error_t *err)
{
	if (!corral__wire_buf_pending(&w->out)) {
		w->tx_blocked_since = 0;
		return 0;
	}
	ssize_t n = corral__wire_buf_flush(&w->out, w->wfd);
	if (n < 0 && n != -EAGAIN)
		return corral__err(err, (int)-n, "write to the head");
	uint64_t now = now_ms();
	if (n > 0)
		w->written += (uint64_t)n;
	if (!corral__wire_buf_pending(&w->out))
		w->tx_blocked_since = 0;
	else if (n > 0 || !w->tx_blocked_since)
		w->tx_blocked_since = now;
	return 0;
}

/* Best effort, bounded: get what waits (an ERROR frame) out before leaving. */
static void flush_bounded(struct worker *w, unsigned ms)
{
	uint64_t until = now_ms() + ms;

	while (corral__wire_buf_pending(&w->out)) {
		uint64_t now = now_ms();
		if (now >= until || flush_out(w, NULL) < 0)
			return;
		if (!corral__wire_buf_pending(&w->out))
			return;
		struct pollfd p = {.fd = w->wfd, .events = POLLOUT};
		if (poll(&p, 1, (int)(until - now)) < 0 && errno != EINTR)
			return;
	}
}

static void send_error(struct worker *w, int code, const char *msg)
{
	struct corral__wire_msg m;

	corral__wire_msg_init(&m, WIRE_ERROR);
	m.u.error.code = code;
	snprintf(m.u.error.message, sizeof(m.u.error.message), "%s", msg);
	if (queue_msg(w, &m, NULL) == 0)
		flush_bounded(w, ERROR_MS);
}

static int send_heartbeat(struct worker *w, corral_error_t *err)
{
	struct corral__wire_msg m;

	if (w->written < w->hb_end)
		return 0; /* the last one is not out yet: one is enough */
	corral__wire_msg_init(&m, WIRE_HEARTBEAT);
	m.u.heartbeat.seq = ++w->hb_seq;
	m.u.heartbeat.mono_ns = corral__now_ns();
	int rc = queue_msg(w, &m, err);
	w->hb_end = w->appended;
	return rc;
}

/* ---------------------------------------------------------------- HELLO */

static void fill_hello(struct worker *w)
{
	struct corral__wire_hello *h = &w->hello;
	struct utsname u;
	cpu_set_t set;
	struct sysinfo si;
	const char *s;

	h->proto_min = CORRAL_WIRE_PROTO_MIN;
	h->proto_max = CORRAL_WIRE_PROTO_MAX;
	snprintf(h->version, sizeof(h->version), "%s", CORRAL_VERSION_STRING);
	if (uname(&u) == 0)
		snprintf(h->kernel, sizeof(h->kernel), "%s", u.release);
	else
		u.nodename[0] = '\0';
	/* Several slurmd may share a host (slurmd -N): Slurm's name is the one. */
	s = getenv("SLURMD_NODENAME");
	snprintf(h->node, sizeof(h->node), "%s", s && *s ? s : u.nodename);
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		h->cpus_affinity = (uint32_t)CPU_COUNT(&set);
	if (!h->cpus_affinity) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		h->cpus_affinity = n > 0 ? (uint32_t)n : 1;
	}
	h->cpus = h->cpus_affinity;
	s = getenv("SLURM_CPUS_ON_NODE");
	if (s && *s) {
		char *end;
		unsigned long n = strtoul(s, &end, 10);
		if (!*end && n > 0 && n < h->cpus)
			h->cpus = (uint32_t)n;
	}
	if (sysinfo(&si) == 0)
		h->memory_total = (uint64_t)si.totalram * si.mem_unit;
	h->pid = (int32_t)getpid();

	/* What `corral check` would say of the cgroups here. */
	struct corral__hier *hier = calloc(1, sizeof(*hier));
	struct corral__hier_env env = {.probe_kernel = false};
	if (hier && corral__hier_discover(&env, w->o.cgroup_parent, hier, NULL) == 0)
		h->cgroup_mode = (uint8_t)hier->mode;
	free(hier);
	/* And where the provider chain would get task cgroups (a dry run: on
	 * a systemd host the scope is asked for at CONFIG, not now). */
	corral_provider_t *plan = calloc(1, sizeof(*plan));
	corral_error_t e;
	bool planned = !w->o.no_cgroups && plan && corral_provider_plan(&w->o, plan, &e) == 0;
	h->memory_limits = planned && plan->limits;
	snprintf(h->provider, sizeof(h->provider), "%s",
	         w->o.no_cgroups      ? "off"
	         : !planned           ? "none"
	         : w->o.cgroup_parent ? (h->memory_limits ? "parent" : "none")
	                              : corral_cgroups_name(plan->used));
	free(plan);
}

/* ---------------------------------------------------------------- results */

static struct watt *find_att(struct worker *w, uint64_t id)
{
	for (struct watt *a = w->atts; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

static void unlink_att(struct worker *w, struct watt *a)
{
	if (!a->linked)
		return;
	if (a->prev)
		a->prev->next = a->next;
	else
		w->atts = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->linked = false;
	if (!a->started_sent)
		w->unstarted--;
}

/* A result of the executor (or made up for a failed submit): becomes frames
 * in the send queue. Takes ownership of *r. */
static int on_result(struct worker *w, corral_result_t *r, corral_error_t *err)
{
	struct watt *a = r->data;
	struct outq *q = calloc(1, sizeof(*q));

	if (!q) {
		corral_result_release(r);
		return corral__err(err, ENOMEM, "queue a result");
	}
	q->r = *r;
	r = &q->r;
	if (a->kill_reason == WIRE_KILL_TIMEOUT && r->outcome == CORRAL_ABORTED) {
		/* The head's deadline, not a halt: say so in its terms. */
		r->outcome = CORRAL_TIMEOUT;
		r->status = 124;
	}
	/* The sentence, numbered as the head numbers its tasks. */
	r->seq = a->seq;
	r->attempt = a->attempt;
	corral__wire_msg_init(&q->res, WIRE_RESULT);
	struct corral__wire_result *x = &q->res.u.result;
	x->id = a->id;
	x->outcome = (uint8_t)r->outcome;
	x->exit_code = r->exit_code;
	x->signal = r->signal;
	x->status = r->status;
	x->pid = (int32_t)r->pid;
	x->oom_kills = r->oom_kills;
	x->own_limit_hit = r->own_limit_hit;
	x->memory_max = r->memory_max;
	x->memory_peak = r->memory_peak;
	x->pids_limit_hit = r->pids_limit_hit;
	x->seccomp_kill = r->seccomp_kill;
	x->spawn_errno = r->spawn_errno;
	snprintf(x->spawn_step, sizeof(x->spawn_step), "%s", r->spawn_step ? r->spawn_step : "");
	x->start_time = r->start_time;
	x->wall_s = r->wall_s > 0 ? r->wall_s : 0;
	x->user_s = r->user_s > 0 ? r->user_s : 0;
	x->sys_s = r->sys_s > 0 ? r->sys_s : 0;
	snprintf(x->node, sizeof(x->node), "%s", w->hello.node);
	corral_result_sentence(r, x->sentence, sizeof(x->sentence));
	snprintf(x->oom_memcg, sizeof(x->oom_memcg), "%s", r->oom_memcg);
	x->memory_stall_some = r->memory_stall_some >= 0 ? r->memory_stall_some : -1;
	x->memory_stall_full = r->memory_stall_full >= 0 ? r->memory_stall_full : -1;
	/* Out of memory for a blob: the record goes without it. */
	(void)corral__wire_pack_victims(r->oom_victims, r->n_oom_victims, &x->oom_victims);
	if (corral__wire_pack_timeline(r->timeline, r->n_timeline, &x->timeline) == 0 &&
	    x->timeline.len)
		x->timeline_peak = r->timeline_peak < r->n_timeline ? r->timeline_peak : 0;
	if (r->pid > 0 && !a->started_sent) {
		corral__wire_msg_init(&q->started, WIRE_STARTED);
		q->started.u.started.id = a->id;
		q->started.u.started.pid = (int32_t)r->pid;
		q->started.u.started.start_time = r->start_time;
		q->send_started = true;
	}
	unlink_att(w, a);
	free(a);
	r->data = NULL;
	if (w->q_tail)
		w->q_tail->next = q;
	else
		w->q_head = q;
	w->q_tail = q;
	return 0;
}

static void free_outq(struct outq *q)
{
	corral__wire_msg_free(&q->res);
	corral_result_release(&q->r);
	free(q);
}

/* Move frames of finished attempts into the send buffer while it is low. */
static int refill(struct worker *w, corral_error_t *err)
{
	struct corral__wire_msg m;
	int rc;

	while (corral__wire_buf_pending(&w->out) < SEND_LOW && w->q_head) {
		struct outq *q = w->q_head;
		if (q->send_started) {
			q->send_started = false;
			rc = queue_msg(w, &q->started, err);
			if (rc < 0)
				return rc;
			continue;
		}
		if (q->stream < 2) {
			const corral_output_t *o = q->stream == 0 ? &q->r.out : &q->r.err;
			if (q->off >= o->len) {
				q->stream++;
				q->off = 0;
				continue;
			}
			uint64_t left = o->len - q->off;
			size_t n = left < sizeof(w->chunk) ? (size_t)left : sizeof(w->chunk);
			ssize_t got;
			if (o->fd >= 0) {
				do
					got = pread(o->fd, w->chunk, n, (off_t)q->off);
				while (got < 0 && errno == EINTR);
			} else {
				got = q->off < o->data_len ? (ssize_t)(o->data_len - q->off) : 0;
				if ((size_t)got > n)
					got = (ssize_t)n;
				if (got > 0)
					memcpy(w->chunk, o->data + q->off, (size_t)got);
			}
			if (got <= 0) {
				/* The temp file lost bytes (or cannot be read): what
				 * is missing is reported as lost, never invented. */
				q->unread[q->stream] = left;
				q->stream++;
				q->off = 0;
				continue;
			}
			corral__wire_msg_init(&m, WIRE_OUTPUT);
			m.u.output.id = q->res.u.result.id;
			m.u.output.stream = q->stream == 0 ? WIRE_STDOUT : WIRE_STDERR;
			m.u.output.offset = q->off;
			m.u.output.data.data = w->chunk;
			m.u.output.data.len = (size_t)got;
			rc = queue_msg(w, &m, err);
			if (rc < 0)
				return rc;
			q->sent[q->stream] += (uint64_t)got;
			q->off += (uint64_t)got;
			continue;
		}
		struct corral__wire_result *x = &q->res.u.result;
		x->out_len = q->sent[0];
		x->out_lost = q->r.out.lost + q->unread[0];
		x->err_len = q->sent[1];
		x->err_lost = q->r.err.lost + q->unread[1];
		for (int i = 0; i < 2; i++) {
			uint64_t lost = i ? x->err_lost : x->out_lost;
			size_t l = strlen(x->sentence);
			if (lost && l < sizeof(x->sentence))
				snprintf(x->sentence + l, sizeof(x->sentence) - l,
				         " (%llu bytes of its %s were lost)",
				         (unsigned long long)lost, i ? "stderr" : "stdout");
		}
		rc = queue_msg(w, &q->res, err);
		if (rc < 0)
			return rc;
		w->q_head = q->next;
		if (!w->q_head)
			w->q_tail = NULL;
		free_outq(q);
	}
	return 0;
}

/* Take every result the executor has; announce attempts that started. */
static int drain_executor(struct worker *w, corral_error_t *err)
{
	corral_result_t r;
	corral_error_t e;
	int rc;

	while ((rc = corral_next(w->ex, &r, 0, &e)) > 0) {
		rc = on_result(w, &r, err);
		if (rc < 0)
			return rc;
	}
	if (rc == -ECHILD)
		w->ex_done = true;
	else if (rc < 0)
		return corral__err(err, -rc, "executor: %s", e.msg);
	uint64_t now = now_ms();
	w->next_started = 0;
	for (struct watt *a = w->atts; a && w->unstarted; a = a->next) {
		pid_t pid;
		double t;
		if (a->started_sent || corral_task_started(w->ex, a->local, &pid, &t) < 0)
			continue;
		if (!a->seen_ms)
			a->seen_ms = now;
		if (now - a->seen_ms < STARTED_DEFER_MS) {
			uint64_t due = a->seen_ms + STARTED_DEFER_MS;
			if (!w->next_started || due < w->next_started)
				w->next_started = due;
			continue;
		}
		struct corral__wire_msg m;
		corral__wire_msg_init(&m, WIRE_STARTED);
		m.u.started.id = a->id;
		m.u.started.pid = (int32_t)pid;
		m.u.started.start_time = t;
		a->started_sent = true;
		w->unstarted--;
		rc = queue_msg(w, &m, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- requests */

static int proto_error(struct worker *w, corral_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int proto_error(struct worker *w, corral_error_t *err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_error(w, EPROTO, msg);
	return corral__err(err, EPROTO, "%s", msg);
}

/* Is this failure of corral_executor_new() one that `corral run` also
 * answers by running without cgroups (run.c, make_executor())? */
static bool cgroups_unusable(int code)
{
	return code == ENOTSUP || code == EACCES || code == EROFS || code == EBUSY ||
	       code == ENOENT;
}

static int on_config(struct worker *w, const struct corral__wire_config *c, corral_error_t *err)
{
	struct corral__wire_msg m;
	corral_error_t e;
	char notice[sizeof(m.u.ready.notice)] = "";
	cleanup_close int memfd = -1;
	char profile_path[64];
	int rc;

	if (c->proto < w->hello.proto_min || c->proto > w->hello.proto_max) {
		char msg[200];
		snprintf(msg, sizeof(msg), "protocol %u is not spoken here (%u..%u)", c->proto,
		         w->hello.proto_min, w->hello.proto_max);
		send_error(w, EPROTONOSUPPORT, msg);
		return corral__err(err, EPROTONOSUPPORT, "%s", msg);
	}
	corral_options_t *o = &w->o;
	o->jobs = c->jobs;
	o->memory_max = c->memory_max;
	o->swap_max = c->swap_max;
	o->pids_max = c->pids_max;
	o->cpus = c->cpus;
	o->timeout_ns = c->timeout_ns;
	o->kill_grace_ns = c->kill_grace_ns;
	o->oom_group = c->oom_group;
	o->allow_subprocess_oom = c->allow_subprocess_oom;
	o->timeline = c->timeline;
	/* The head owns the policy: every attempt is final here. */
	o->halt = CORRAL_HALT_NEVER;
	o->retries = 0;
	o->memory_budget = CORRAL_UNLIMITED;
	o->memory_ceiling = CORRAL_UNLIMITED;
	o->foreground = false;
	if (c->capture_max)
		o->capture_max = (size_t)c->capture_max; /* size_t is 64 bits on Linux */
	o->sandbox.seccomp = c->seccomp == WIRE_SECCOMP_PROFILE   ? CORRAL_SECCOMP_FILE
	                     : c->seccomp == WIRE_SECCOMP_DEFAULT ? CORRAL_SECCOMP_DEFAULT
	                                                          : CORRAL_SECCOMP_OFF;
	o->sandbox.seccomp_file = NULL;
	if (o->sandbox.seccomp == CORRAL_SECCOMP_FILE) {
		/* The head sent the profile's text; the executor reads a path. */
		memfd = memfd_create("corral-seccomp-profile", MFD_CLOEXEC);
		if (memfd < 0 ||
		    corral__write_all(memfd, c->seccomp_profile.data, c->seccomp_profile.len) < 0) {
			rc = corral__err(err, errno, "keep the seccomp profile in a memfd");
			send_error(w, -rc, err ? err->msg : "memfd");
			return rc;
		}
		snprintf(profile_path, sizeof(profile_path), "/proc/self/fd/%d", memfd);
		o->sandbox.seccomp_file = profile_path;
	}
	o->sandbox.allow_ptrace = c->allow_ptrace;
	o->sandbox.no_new_privs = c->no_new_privs;
	o->sandbox.no_network = c->no_network;
	o->sandbox.core_dumps = c->core_dumps;
	o->sandbox.allow_io_uring = c->allow_io_uring;
	/* A PID namespace needs CAP_SYS_ADMIN here (root, as for cgroup_ns). */
	o->sandbox.pid_ns = c->pid_ns && geteuid() == 0;
	snprintf(w->user, sizeof(w->user), "%s", c->user);
	o->sandbox.user = w->user[0] ? w->user : NULL;
	/* Namespaces need root here, whatever the head's node allows. */
	o->sandbox.cgroup_ns = c->cgroup_ns && !o->no_cgroups && geteuid() == 0;
	w->hb_ms = c->heartbeat_ms;
	w->lost_ms = (uint64_t)c->heartbeat_ms * c->heartbeat_misses;
	w->next_hb = now_ms() + w->hb_ms;

	rc = corral_executor_new(o, &w->ex, &e);
	if (rc < 0 && o->memory_max == CORRAL_UNLIMITED && !o->no_cgroups && !o->cgroup_parent &&
	    cgroups_unusable(e.code)) {
		/* No limit asked for: run without cgroups, as `corral run` does,
		 * and tell the head why. */
		snprintf(notice, sizeof(notice),
		         "running WITHOUT cgroups (%s): no memory limits, no OOM attribution",
		         e.msg);
		o->no_cgroups = true;
		o->sandbox.cgroup_ns = false;
		rc = corral_executor_new(o, &w->ex, &e);
	}
	o->sandbox.seccomp_file = NULL; /* read by now; memfd closes on return */
	if (rc < 0) {
		send_error(w, e.code, e.msg);
		return corral__err(err, e.code, "set up the executor: %s", e.msg);
	}
	w->configured = true;
	corral__wire_msg_init(&m, WIRE_READY);
	m.u.ready.jobs = o->jobs;
	corral_summary_t *sum = calloc(1, sizeof(*sum));
	if (sum)
		corral_summary(w->ex, sum);
	m.u.ready.memory_limits = sum ? sum->provider.limits : !o->no_cgroups;
	free(sum);
	snprintf(m.u.ready.notice, sizeof(m.u.ready.notice), "%s", notice);
	return queue_msg(w, &m, err);
}

static int on_run(struct worker *w, const struct corral__wire_run *run, corral_error_t *err)
{
	corral_error_t e;
	corral_task_t t;

	if (find_att(w, run->id))
		return proto_error(w, err, "RUN of attempt id %llu, which is still running",
		                   (unsigned long long)run->id);
	struct watt *a = calloc(1, sizeof(*a));
	if (!a)
		return corral__err(err, ENOMEM, "keep an attempt");
	a->id = run->id;
	a->seq = run->seq;
	a->attempt = run->attempt;
	corral_task_init(&t);
	t.argv = (const char *const *)run->argv.v;
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.stderr_fd = CORRAL_FD_CAPTURE;
	t.memory_max = run->memory_max;
	t.data = a;
	int64_t s = corral_submit(w->ex, &t, &e);
	if (s < 0) {
		/* Refused (a memory limit without cgroups, ...): that attempt
		 * failed to start, and the head hears it as such. */
		corral_result_t r;
		memset(&r, 0, sizeof(r));
		r.out.fd = r.err.fd = r.fn_result.fd = -1;
		r.exit_code = -1;
		r.outcome = CORRAL_SPAWN_ERROR;
		r.status = 125;
		r.spawn_errno = (int)-s;
		r.spawn_step = "submit";
		r.memory_max = run->memory_max ? run->memory_max : w->o.memory_max;
		r.start_time = corral__wall_now();
		snprintf(r.command, sizeof(r.command), "%s", run->argv.v[0]);
		r.data = a;
		return on_result(w, &r, err);
	}
	a->local = (uint64_t)s;
	a->linked = true;
	a->next = w->atts;
	if (w->atts)
		w->atts->prev = a;
	w->atts = a;
	w->unstarted++;
	return 0;
}

static void start_quit(struct worker *w)
{
	w->quitting = true;
	w->quit_deadline = now_ms() + QUIT_MS;
	corral_abort(w->ex);
	corral_close(w->ex);
}

/* One message from the head. Returns 0, 1 when the service ends well (QUIT
 * before CONFIG), or -errno. */
static int on_message(struct worker *w, struct corral__wire_msg *m, corral_error_t *err)
{
	switch (m->type) {
	case WIRE_HEARTBEAT:
		return 0;
	case WIRE_CONFIG:
		if (w->configured)
			return proto_error(w, err, "a second CONFIG");
		return on_config(w, &m->u.config, err);
	case WIRE_QUIT:
		if (!w->configured)
			return 1;
		if (!w->quitting)
			start_quit(w);
		return 0;
	case WIRE_ERROR:
		return corral__err(err, ECONNABORTED, "the head gave up: %s (%s)",
		                   m->u.error.message, strerror(m->u.error.code));
	default:
		break;
	}
	if (m->type != WIRE_RUN && m->type != WIRE_KILL)
		return proto_error(w, err, "the head sent a %s message, which only a worker sends",
		                   corral__wire_type_name(m->type));
	if (!w->configured)
		return proto_error(w, err, "%s before CONFIG", corral__wire_type_name(m->type));
	if (m->type == WIRE_KILL) {
		struct watt *a = find_att(w, m->u.kill.id);
		if (!a)
			return 0; /* it ended: its RESULT is on its way */
		if (!a->kill_reason)
			a->kill_reason = m->u.kill.reason;
		corral_cancel(w->ex, a->local);
		return 0;
	}
	if (w->quitting)
		return proto_error(w, err, "RUN after QUIT");
	return on_run(w, &m->u.run, err);
}

/* ---------------------------------------------------------------- the loop */

static int set_nonblock(int fd, int *saved)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	*saved = fl;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* A signalfd for those of SIGINT/SIGTERM/SIGHUP the caller blocked. */
static int open_sigfd(void)
{
	sigset_t cur, want;
	int n = 0;

	if (sigprocmask(SIG_BLOCK, NULL, &cur) < 0)
		return -1;
	sigemptyset(&want);
	for (int s = 1; s < NSIG; s++) {
		if ((s == SIGINT || s == SIGTERM || s == SIGHUP) && sigismember(&cur, s) == 1) {
			sigaddset(&want, s);
			n++;
		}
	}
	return n ? signalfd(-1, &want, SFD_CLOEXEC | SFD_NONBLOCK) : -1;
}

static int min_timeout(uint64_t now, uint64_t at, int cur)
{
	if (!at)
		return cur;
	int ms = at <= now ? 0 : (at - now > 60000 ? 60000 : (int)(at - now));
	return cur < 0 || ms < cur ? ms : cur;
}

static int serve(struct worker *w, corral_error_t *err)
{
	struct corral__wire_msg m;
	int rc;

	fill_hello(w);
	corral__wire_msg_init(&m, WIRE_HELLO);
	m.u.hello = w->hello;
	rc = queue_msg(w, &m, err);
	if (rc < 0)
		return rc;
	w->hb_ms = HELLO_HB_MS;
	w->lost_ms = HANDSHAKE_MS;
	w->last_rx = now_ms();
	w->next_hb = w->last_rx + w->hb_ms;

	for (;;) {
		if (w->ex) {
			rc = drain_executor(w, err);
			if (rc < 0)
				return rc;
		}
		rc = refill(w, err);
		if (rc < 0)
			return rc;
		rc = flush_out(w, err);
		if (rc < 0)
			return rc;
		uint64_t now = now_ms();
		if (w->quitting && w->ex_done && !w->q_head && !corral__wire_buf_pending(&w->out))
			return 0;
		if (w->quitting && now >= w->quit_deadline)
			return corral__err(err, ETIMEDOUT,
			                   "after QUIT the head did not take our last %zu bytes "
			                   "within %u ms",
			                   corral__wire_buf_pending(&w->out), QUIT_MS);
		if (now - w->last_rx >= w->lost_ms)
			return corral__err(err, ETIMEDOUT,
			                   "the head is lost: nothing came from it for %llu ms",
			                   (unsigned long long)(now - w->last_rx));
		if (w->tx_blocked_since && now - w->tx_blocked_since >= w->lost_ms)
			return corral__err(
			    err, ETIMEDOUT,
			    "the head is lost: it took none of our %zu waiting bytes "
			    "for %llu ms",
			    corral__wire_buf_pending(&w->out),
			    (unsigned long long)(now - w->tx_blocked_since));
		if (now >= w->next_hb) {
			rc = send_heartbeat(w, err);
			if (rc < 0)
				return rc;
			w->next_hb = now + w->hb_ms;
			rc = flush_out(w, err);
			if (rc < 0)
				return rc;
		}

		int timeout = min_timeout(now, w->next_hb, -1);
		timeout = min_timeout(now, w->last_rx + w->lost_ms, timeout);
		if (w->tx_blocked_since)
			timeout = min_timeout(now, w->tx_blocked_since + w->lost_ms, timeout);
		if (w->quitting)
			timeout = min_timeout(now, w->quit_deadline, timeout);
		timeout = min_timeout(now, w->next_started, timeout);
		if (w->q_head && corral__wire_buf_pending(&w->out) < SEND_LOW)
			timeout = 0;
		struct pollfd pfd[4] = {
		    {.fd = w->rfd, .events = POLLIN},
		    {.fd = corral__wire_buf_pending(&w->out) ? w->wfd : -1, .events = POLLOUT},
		    {.fd = w->ex ? corral_fd(w->ex) : -1, .events = POLLIN},
		    {.fd = w->sigfd, .events = POLLIN},
		};
		if (poll(pfd, 4, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return corral__err(err, errno, "poll");
		}
		if (pfd[3].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				return 128 + (int)si.ssi_signo;
		}
		if (!pfd[0].revents)
			continue;
		ssize_t n = corral__wire_reader_fill(&w->rd, w->rfd);
		if (n == -EAGAIN)
			continue;
		if (n < 0)
			return corral__err(err, (int)-n, "read from the head");
		if (n == 0) {
			if (corral__wire_reader_pending(&w->rd))
				return corral__err(
				    err, EPROTO,
				    "the head's channel closed inside a frame (%zu bytes "
				    "of it came)",
				    corral__wire_reader_pending(&w->rd));
			return 0; /* the head is gone: the end */
		}
		w->last_rx = now_ms();
		while ((rc = corral__wire_reader_next(&w->rd, &m, err)) > 0) {
			rc = on_message(w, &m, err);
			corral__wire_msg_free(&m);
			if (rc != 0)
				return rc < 0 ? rc : 0;
		}
		if (rc < 0) {
			if (rc == -EPROTO && err)
				send_error(w, EPROTO, err->msg);
			return rc;
		}
	}
}

int corral_worker_serve(int rfd, int wfd, const corral_options_t *defaults, corral_error_t *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return corral__err(err, ENOMEM, "allocate the worker");
	w->rfd = rfd;
	w->wfd = wfd;
	w->rfd_flags = w->wfd_flags = -1;
	if (defaults)
		w->o = *defaults;
	else
		corral_options_init(&w->o);
	corral__wire_reader_init(&w->rd);
	w->sigfd = open_sigfd();
	rc = set_nonblock(rfd, &w->rfd_flags);
	if (rc == 0 && wfd != rfd)
		rc = set_nonblock(wfd, &w->wfd_flags);
	if (rc < 0)
		rc = corral__err(err, -rc, "make the channel non-blocking");
	else
		rc = serve(w, err);

	/* Kill what runs, remove the cgroups, stop the watchdog. */
	corral_executor_free(w->ex);
	while (w->q_head) {
		struct outq *q = w->q_head;
		w->q_head = q->next;
		free_outq(q);
	}
	while (w->atts) {
		struct watt *a = w->atts;
		w->atts = a->next;
		free(a);
	}
	corral__wire_reader_free(&w->rd);
	corral__wire_buf_free(&w->out);
	if (w->rfd_flags >= 0)
		fcntl(rfd, F_SETFL, w->rfd_flags);
	if (w->wfd_flags >= 0 && wfd != rfd)
		fcntl(wfd, F_SETFL, w->wfd_flags);
	corral__close(w->sigfd);
	free(w);
	return rc;
}
