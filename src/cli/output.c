/* output.c - where results go: grouped task output (in completion or input
 * order), --line-buffer, --tag, --results DIR/<seq>/{stdout,stderr,outcome},
 * the --report JSON Lines and the --joblog.
 *
 * Records are written as results arrive, with one write() each, so a crash
 * of corral loses no finished record. The report has a record per attempt;
 * the joblog a line per task, when its final attempt ended, and none for a
 * task corral cancelled or aborted: GNU parallel's rule, which --resume
 * relies on (a line means "this task ended"). With --resume both files are
 * appended to.
 *
 * Task output is emitted whole when the task ends: never interleaved with
 * another task's. With -k a finished task waits (its output in memory up to
 * 16 KiB, beyond that in a temp file) until every task submitted before it
 * was emitted; run.c bounds how many may wait. With --line-buffer the task
 * writes into a pipe of ours and every complete line is printed as it
 * arrives (a line longer than 1 MiB is printed in pieces: memory stays
 * bounded). --tag puts the task's tag before each line of stdout and stderr.
 *
 * With workers on other nodes (--slurm, --workers) task output is written by
 * a thread of its own, in the order results are handed to it: a reader of
 * our stdout that stops reading (a pager, a slow pipe) then blocks that
 * thread only, while the main loop goes on heartbeating and reading the
 * workers' frames (a head blocked in write() for worker_timeout would lose
 * every worker, and each kills its tasks). run.c counts what waits for the
 * thread in its window, so the memory stays bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define LINE_MAX_HELD (1u << 20)

struct held {
	bool present;
	corral_result_t r;
	struct task_ctx *ctx;
};

/* A result handed to the writer thread. */
struct wq_item {
	struct wq_item *next;
	corral_result_t r;
	struct task_ctx *ctx;
};

struct output {
	struct cli *c;
	int results_fd;
	bool stdout_gone; /* written by the writer thread when there is one */
	/* -k: a ring of held results indexed by submission order. */
	uint64_t next_emit;
	struct held *ring;
	size_t ring_cap;
	uint64_t held;
	/* The writer thread (workers only). */
	bool threaded;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wq_item *qh, *qt;
	uint64_t queued; /* handed over, not yet written */
	bool closing;
};

static void *writer_main(void *arg);

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

struct output *output_open(struct cli *c)
{
	struct output *out = calloc(1, sizeof(*out));
	/* --resume: the records of this run go after the earlier ones. */
	int keep = c->resume ? O_APPEND : O_TRUNC;

	if (!out)
		die("out of memory");
	out->c = c;
	out->results_fd = -1;
	out->next_emit = 1;
	if (c->o.no_local && c->mode == MODE_RUN && !c->ungroup && !c->line_buffer) {
		pthread_mutex_init(&out->mu, NULL);
		pthread_cond_init(&out->cv, NULL);
		/* The writer must not take the signals run.c reads through its
		 * signalfd: it inherits their blocking only if they are blocked
		 * already, so block them around its creation. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		int rc = pthread_create(&out->th, NULL, writer_main, out);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			die("cannot start the output thread: %s", strerror(rc));
		out->threaded = true;
	}
	if (c->results_dir) {
		int rc = mkdir_p(c->results_dir);
		if (rc < 0)
			die("cannot create --results directory '%s': %s", c->results_dir,
			    strerror(-rc));
		out->results_fd = open(c->results_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (out->results_fd < 0 || faccessat(out->results_fd, ".", W_OK, AT_EACCESS) < 0)
			die("cannot write into --results directory '%s': %s", c->results_dir,
			    strerror(errno));
	}
	if (c->report_path) {
		c->report_fd = open(c->report_path, O_WRONLY | O_CREAT | keep | O_CLOEXEC, 0644);
		if (c->report_fd < 0)
			die("cannot open --report file '%s': %s", c->report_path, strerror(errno));
	}
	if (c->joblog_path) {
		struct stat st;
		c->joblog_fd = open(c->joblog_path, O_WRONLY | O_CREAT | keep | O_CLOEXEC, 0644);
		if (c->joblog_fd < 0)
			die("cannot open --joblog file '%s': %s", c->joblog_path, strerror(errno));
		if ((fstat(c->joblog_fd, &st) < 0 || st.st_size == 0) &&
		    corral_joblog_header(c->joblog_fd) < 0)
			die("cannot write --joblog file '%s': %s", c->joblog_path, strerror(errno));
	}
	return out;
}

static void save_results(struct output *out, const corral_result_t *r, char **argv)
{
	char dir[32];
	int dfd, fd;

	snprintf(dir, sizeof(dir), "%llu", (unsigned long long)r->seq);
	if (mkdirat(out->results_fd, dir, 0755) < 0 && errno != EEXIST) {
		warnx_("--results: cannot create %s/%s: %s", out->c->results_dir, dir,
		       strerror(errno));
		return;
	}
	dfd = openat(out->results_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	const struct {
		const char *name;
		const corral_output_t *o;
	} files[] = {{"stdout", &r->out}, {"stderr", &r->err}};
	for (size_t i = 0; i < 2; i++) {
		fd = openat(dfd, files[i].name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || corral_output_write(files[i].o, fd) < 0)
			warnx_("--results: cannot write %s/%s/%s: %s", out->c->results_dir, dir,
			       files[i].name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	fd = openat(dfd, "outcome", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || corral_report_result(fd, r, (const char *const *)argv) < 0)
		warnx_("--results: cannot write %s/%s/outcome", out->c->results_dir, dir);
	if (fd >= 0)
		close(fd);
	close(dfd);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write bytes of one stream to fd with the tag before every line; *mid:
 * the last byte written did not end a line. Buffers into b (flushed when
 * large). Returns 0 or -errno. */
static int tagged(struct sbuf *b, int fd, const char *tag, size_t tag_len, const char *p, size_t n,
                  bool *mid)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) + 1 : n;
		if (!*mid)
			sbuf_add(b, tag, tag_len);
		sbuf_add(b, p, k);
		*mid = !nl;
		p += k;
		n -= k;
		if (b->len >= 65536) {
			int rc = write_all(fd, b->p, b->len);
			b->len = 0;
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* A captured stream with --tag: read it back (inline or from its spill
 * file) and write it tagged. */
static int write_tagged(const corral_output_t *o, int fd, const struct task_ctx *ctx)
{
	struct sbuf b = {0};
	char chunk[65536];
	bool mid = false;
	int rc = 0;

	sbuf_add(&b, "", 0);
	if (o->fd < 0) {
		rc = tagged(&b, fd, ctx->tag, ctx->tag_len, o->data, o->data_len, &mid);
	} else {
		for (uint64_t off = 0; off < o->len && rc == 0;) {
			size_t want =
			    o->len - off < sizeof(chunk) ? (size_t)(o->len - off) : sizeof(chunk);
			ssize_t n = pread(o->fd, chunk, want, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = n < 0 ? -errno : -EIO;
				break;
			}
			rc = tagged(&b, fd, ctx->tag, ctx->tag_len, chunk, (size_t)n, &mid);
			off += (uint64_t)n;
		}
	}
	if (rc == 0 && b.len)
		rc = write_all(fd, b.p, b.len);
	sbuf_free(&b);
	return rc;
}

/* Write the task's captured output to our stdout/stderr. */
static void emit(struct output *out, corral_result_t *r, const struct task_ctx *ctx)
{
	if (out->c->mode == MODE_EXEC || out->c->ungroup || out->c->line_buffer)
		return;
	if (ctx && ctx->tag) {
		if (!__atomic_load_n(&out->stdout_gone, __ATOMIC_RELAXED) &&
		    write_tagged(&r->out, 1, ctx) == -EPIPE)
			__atomic_store_n(&out->stdout_gone, true, __ATOMIC_RELAXED);
		write_tagged(&r->err, 2, ctx);
		return;
	}
	if (!__atomic_load_n(&out->stdout_gone, __ATOMIC_RELAXED) &&
	    corral_output_write(&r->out, 1) == -EPIPE)
		__atomic_store_n(&out->stdout_gone, true, __ATOMIC_RELAXED);
	corral_output_write(&r->err, 2);
}

void task_ctx_free(struct task_ctx *ctx)
{
	if (!ctx)
		return;
	int *fds[] = {&ctx->out_rd, &ctx->out_wr, &ctx->err_rd, &ctx->err_wr};
	for (size_t i = 0; i < 4; i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	sbuf_free(&ctx->out_line);
	sbuf_free(&ctx->err_line);
	free(ctx->tag);
	free(ctx->argv);
	free(ctx);
}

static void release(corral_result_t *r, struct task_ctx *ctx)
{
	corral_result_release(r);
	task_ctx_free(ctx);
}

static void *writer_main(void *arg)
{
	struct output *out = arg;

	pthread_mutex_lock(&out->mu);
	for (;;) {
		while (!out->qh && !out->closing)
			pthread_cond_wait(&out->cv, &out->mu);
		struct wq_item *it = out->qh;
		if (!it)
			break; /* closing, and everything is written */
		out->qh = it->next;
		if (!out->qh)
			out->qt = NULL;
		pthread_mutex_unlock(&out->mu);
		emit(out, &it->r, it->ctx);
		release(&it->r, it->ctx);
		free(it);
		pthread_mutex_lock(&out->mu);
		out->queued--;
	}
	pthread_mutex_unlock(&out->mu);
	return NULL;
}

/* Write a finished task's output and free it: here, or by the writer. */
static void emit_release(struct output *out, corral_result_t *r, struct task_ctx *ctx)
{
	if (!out->threaded) {
		emit(out, r, ctx);
		release(r, ctx);
		return;
	}
	struct wq_item *it = calloc(1, sizeof(*it));
	if (!it)
		die("out of memory");
	it->r = *r;
	it->ctx = ctx;
	pthread_mutex_lock(&out->mu);
	if (out->qt)
		out->qt->next = it;
	else
		out->qh = it;
	out->qt = it;
	out->queued++;
	pthread_cond_signal(&out->cv);
	pthread_mutex_unlock(&out->mu);
}

/* Everything handed over is written; the writer is gone. */
static void writer_join(struct output *out)
{
	if (!out->threaded)
		return;
	pthread_mutex_lock(&out->mu);
	out->closing = true;
	pthread_cond_signal(&out->cv);
	pthread_mutex_unlock(&out->mu);
	pthread_join(out->th, NULL);
	pthread_mutex_destroy(&out->mu);
	pthread_cond_destroy(&out->cv);
	out->threaded = false;
}

static void emit_ready(struct output *out)
{
	while (out->held) {
		struct held *h = &out->ring[out->next_emit % out->ring_cap];
		if (!h->present || h->ctx->idx != out->next_emit)
			return;
		emit_release(out, &h->r, h->ctx);
		h->present = false;
		out->held--;
		out->next_emit++;
	}
}

static void hold(struct output *out, corral_result_t *r, struct task_ctx *ctx)
{
	uint64_t span = ctx->idx - out->next_emit + 1;

	if (span > out->ring_cap) {
		size_t ncap = out->ring_cap ? out->ring_cap : 64;
		while (ncap < span)
			ncap *= 2;
		struct held *nr = calloc(ncap, sizeof(*nr));
		if (!nr)
			die("out of memory");
		for (size_t i = 0; i < out->ring_cap; i++)
			if (out->ring[i].present)
				nr[out->ring[i].ctx->idx % ncap] = out->ring[i];
		free(out->ring);
		out->ring = nr;
		out->ring_cap = ncap;
	}
	struct held *h = &out->ring[ctx->idx % out->ring_cap];
	h->present = true;
	h->r = *r;
	h->ctx = ctx;
	out->held++;
}

/* --line-buffer: one stream of a task. */
static bool line_stream(struct output *out, struct task_ctx *ctx, int *rd, struct sbuf *line,
                        bool *mid, int fd, bool final)
{
	char chunk[65536];
	bool eof = false;
	/* At most 1 MiB per call: a task that writes without pause does not
	 * hold up the loop (at its end the pipe holds at most that much, unless
	 * a process it left, without cgroups, still writes). */
	int reads = 16;

	while (*rd >= 0 && !eof && reads-- > 0) {
		ssize_t n = read(*rd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* EAGAIN: nothing more now (after the task, a process it
			 * left may still hold the pipe: do not wait for it). */
			eof = true;
			break;
		}
		sbuf_add(line, chunk, (size_t)n);
		/* Print up to the last newline; keep the unfinished line unless
		 * it grew too long. */
		char *last = NULL;
		for (char *p = line->p + line->len; p > line->p; p--) {
			if (p[-1] == '\n') {
				last = p;
				break;
			}
		}
		size_t k = last ? (size_t)(last - line->p) : 0;
		if (!last && line->len >= LINE_MAX_HELD)
			k = line->len;
		if (k) {
			struct sbuf b = {0};
			sbuf_add(&b, "", 0);
			int rc = tagged(&b, fd, ctx->tag ? ctx->tag : "",
			                ctx->tag ? ctx->tag_len : 0, line->p, k, mid);
			if (rc == 0 && b.len)
				rc = write_all(fd, b.p, b.len);
			sbuf_free(&b);
			if (rc == -EPIPE && fd == 1)
				out->stdout_gone = true;
			memmove(line->p, line->p + k, line->len - k);
			line->len -= k;
		}
	}
	if (final) {
		if (line->len) {
			struct sbuf b = {0};
			sbuf_add(&b, "", 0);
			int rc = tagged(&b, fd, ctx->tag ? ctx->tag : "",
			                ctx->tag ? ctx->tag_len : 0, line->p, line->len, mid);
			if (rc == 0 && b.len)
				rc = write_all(fd, b.p, b.len);
			sbuf_free(&b);
			if (rc == -EPIPE && fd == 1)
				out->stdout_gone = true;
			line->len = 0;
		}
		if (*rd >= 0)
			close(*rd);
		*rd = -1;
	}
	return !out->stdout_gone;
}

bool output_line_buffer(struct output *out, struct task_ctx *ctx, bool final)
{
	if (final) {
		/* The task ended: what is in the pipes is all there is. */
		if (ctx->out_wr >= 0)
			close(ctx->out_wr);
		if (ctx->err_wr >= 0)
			close(ctx->err_wr);
		ctx->out_wr = ctx->err_wr = -1;
	}
	line_stream(out, ctx, &ctx->out_rd, &ctx->out_line, &ctx->out_mid, 1, final);
	line_stream(out, ctx, &ctx->err_rd, &ctx->err_line, &ctx->err_mid, 2, final);
	return !out->stdout_gone;
}

bool output_result(struct output *out, corral_result_t *r, struct task_ctx *ctx, char **argv)
{
	struct cli *c = out->c;

	if (ctx)
		argv = ctx->argv;
	if (c->report_fd >= 0 &&
	    corral_report_result(c->report_fd, r, (const char *const *)argv) < 0)
		warnx_("cannot write --report file '%s': %s", c->report_path, strerror(errno));
	/* The joblog: a line per task that ended (GNU parallel's rule). */
	if (c->joblog_fd >= 0 && r->final && r->outcome != CORRAL_CANCELLED &&
	    r->outcome != CORRAL_ABORTED &&
	    corral_joblog_result(c->joblog_fd, r, (const char *const *)argv) < 0)
		warnx_("cannot write --joblog file '%s': %s", c->joblog_path, strerror(errno));
	/* Output the task wrote but that could not be kept (no space for the
	 * temp file): say so, the outcome alone would not. */
	if (r->final && !c->quiet && (r->out.lost || r->err.lost))
		warnx_("%s", r->sentence);
	if (!r->final) {
		/* An attempt that will be retried: its output is not the task's. */
		corral_result_release(r);
		return !__atomic_load_n(&out->stdout_gone, __ATOMIC_RELAXED);
	}
	if (ctx && c->line_buffer)
		output_line_buffer(out, ctx, true);
	if (out->results_fd >= 0 && r->outcome != CORRAL_CANCELLED)
		save_results(out, r, argv);
	if (c->keep_order && ctx) {
		hold(out, r, ctx);
		emit_ready(out);
	} else {
		emit_release(out, r, ctx);
	}
	return !__atomic_load_n(&out->stdout_gone, __ATOMIC_RELAXED);
}

uint64_t output_buffered(const struct output *out)
{
	return out->held;
}

uint64_t output_queued(struct output *out)
{
	uint64_t n;

	if (!out->threaded)
		return 0;
	pthread_mutex_lock(&out->mu);
	n = out->queued;
	pthread_mutex_unlock(&out->mu);
	return n;
}

void output_finish(struct output *out)
{
	/* After an abort some tasks never come: emit the rest in order. */
	while (out->held) {
		struct held *h = &out->ring[out->next_emit % out->ring_cap];
		if (h->present && h->ctx->idx == out->next_emit) {
			emit_release(out, &h->r, h->ctx);
			h->present = false;
			out->held--;
		}
		out->next_emit++;
	}
	writer_join(out);
}

void output_close(struct output *out)
{
	if (!out)
		return;
	output_finish(out);
	free(out->ring);
	if (out->results_fd >= 0)
		close(out->results_fd);
	free(out);
}
