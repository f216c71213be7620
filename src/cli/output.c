/* output.c - where results go: grouped task output (in completion or input
 * order), --results DIR/<seq>/{stdout,stderr,outcome}, the --report JSON
 * Lines and the --joblog.
 *
 * Records are written as results arrive, with one write() each, so a crash
 * of corral loses no finished record. Task output is emitted whole when the
 * task ends: never interleaved with another task's. With -k a finished task
 * waits (its output in memory up to 16 KiB, beyond that in a temp file) until
 * every task before it was emitted; run.c bounds how many may wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

struct held {
	bool present;
	corral_result_t r;
	char **argv;
};

struct output {
	struct cli *c;
	int results_fd;
	bool stdout_gone;
	/* -k: a ring of held results indexed by seq. */
	uint64_t next_emit;
	struct held *ring;
	size_t ring_cap;
	uint64_t held;
};

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

	if (!out)
		die("out of memory");
	out->c = c;
	out->results_fd = -1;
	out->next_emit = 1;
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
		c->report_fd = open(c->report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->report_fd < 0)
			die("cannot open --report file '%s': %s", c->report_path, strerror(errno));
	}
	if (c->joblog_path) {
		c->joblog_fd = open(c->joblog_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->joblog_fd < 0)
			die("cannot open --joblog file '%s': %s", c->joblog_path, strerror(errno));
		if (corral_joblog_header(c->joblog_fd) < 0)
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

/* Write the task's captured output to our stdout/stderr. */
static void emit(struct output *out, corral_result_t *r)
{
	if (out->c->mode == MODE_EXEC || out->c->ungroup)
		return;
	if (!out->stdout_gone && corral_output_write(&r->out, 1) == -EPIPE)
		out->stdout_gone = true;
	corral_output_write(&r->err, 2);
}

static void release(corral_result_t *r, char **argv)
{
	corral_result_release(r);
	free(argv);
}

static void emit_ready(struct output *out)
{
	while (out->held) {
		struct held *h = &out->ring[out->next_emit % out->ring_cap];
		if (!h->present || h->r.seq != out->next_emit)
			return;
		emit(out, &h->r);
		release(&h->r, h->argv);
		h->present = false;
		out->held--;
		out->next_emit++;
	}
}

static void hold(struct output *out, corral_result_t *r, char **argv)
{
	uint64_t span = r->seq - out->next_emit + 1;

	if (span > out->ring_cap) {
		size_t ncap = out->ring_cap ? out->ring_cap : 64;
		while (ncap < span)
			ncap *= 2;
		struct held *nr = calloc(ncap, sizeof(*nr));
		if (!nr)
			die("out of memory");
		for (size_t i = 0; i < out->ring_cap; i++)
			if (out->ring[i].present)
				nr[out->ring[i].r.seq % ncap] = out->ring[i];
		free(out->ring);
		out->ring = nr;
		out->ring_cap = ncap;
	}
	struct held *h = &out->ring[r->seq % out->ring_cap];
	h->present = true;
	h->r = *r;
	h->argv = argv;
	out->held++;
}

bool output_result(struct output *out, corral_result_t *r, char **argv)
{
	struct cli *c = out->c;
	/* `corral exec`'s command is main()'s argv: recorded, never freed. */
	char **owned = c->mode == MODE_EXEC ? NULL : argv;

	if (c->report_fd >= 0 &&
	    corral_report_result(c->report_fd, r, (const char *const *)argv) < 0)
		warnx_("cannot write --report file '%s': %s", c->report_path, strerror(errno));
	if (c->joblog_fd >= 0 && r->outcome != CORRAL_CANCELLED &&
	    corral_joblog_result(c->joblog_fd, r, (const char *const *)argv) < 0)
		warnx_("cannot write --joblog file '%s': %s", c->joblog_path, strerror(errno));
	/* Output the task wrote but that could not be kept (no space for the
	 * temp file): say so, the outcome alone would not. */
	if (r->final && !c->quiet && (r->out.lost || r->err.lost))
		warnx_("%s", r->sentence);
	if (!r->final) {
		/* An attempt that will be retried: its output is not the task's. */
		corral_result_release(r);
		return !out->stdout_gone;
	}
	if (out->results_fd >= 0 && r->outcome != CORRAL_CANCELLED)
		save_results(out, r, argv);
	if (c->keep_order) {
		hold(out, r, owned);
		emit_ready(out);
	} else {
		emit(out, r);
		release(r, owned);
	}
	return !out->stdout_gone;
}

uint64_t output_buffered(const struct output *out)
{
	return out->held;
}

void output_finish(struct output *out)
{
	/* After an abort some seqs never come: emit the rest in order. */
	while (out->held) {
		struct held *h = &out->ring[out->next_emit % out->ring_cap];
		if (h->present && h->r.seq == out->next_emit) {
			emit(out, &h->r);
			release(&h->r, h->argv);
			h->present = false;
			out->held--;
		}
		out->next_emit++;
	}
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
