/* joblog.c - --resume and --resume-failed: what an existing --joblog says.
 *
 * The joblog has GNU parallel's columns (Seq Host Starttime JobRuntime Send
 * Receive Exitval Signal Command) and one line per task, written when its
 * final attempt ended (GNU parallel's rule: a retried job has one line; a
 * task corral cancelled or aborted has none, like a job GNU parallel killed).
 * A task is known by its sequence number, as GNU parallel knows it:
 *   --resume         a task with any line is done; it does not run again.
 *   --resume-failed  a task is done when a line says it succeeded (Exitval
 *                    0, Signal 0); the others run again.
 * With --resume, the task's latest line says whether it failed: the lowest
 * failed task is the verdict the whole batch already has (run.c halts there
 * as an uninterrupted run would have).
 *
 * Sequence numbers are kept in a paged bitmap (4096 tasks a page, pages only
 * where the joblog has tasks): 2 bits per task, not per line.
 *
 * A corral killed by SIGKILL may leave a torn last line (no newline). Its
 * task ended (the line is written after that), so when the line holds its
 * exit value and signal (8 complete columns) it counts, and a newline
 * completes it; a shorter fragment tells nothing: it is cut off and its task
 * runs again. Either way the lines appended next start on a line of their
 * own, and GNU parallel can still read the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define PAGE_TASKS 4096
#define PAGE_WORDS (PAGE_TASKS / 64)

static const char header[] =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

struct page {
	uint64_t no;
	uint64_t done[PAGE_WORDS];
	uint64_t fail[PAGE_WORDS];
};

struct joblog_state {
	struct page *pages; /* sorted by no */
	size_t n, cap;
	bool failed_only;
	uint64_t ndone;
	/* The lowest failed task seen since the last line that cleared it. */
	bool cand_ok;
	uint64_t cand;
	int cand_exit, cand_sig;
};

struct line {
	uint64_t seq;
	int exitval, signal;
};

static struct page *page_get(struct joblog_state *st, uint64_t no, bool create)
{
	size_t lo = 0, hi = st->n;

	if (st->n && st->pages[st->n - 1].no == no)
		return &st->pages[st->n - 1];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->pages[mid].no < no)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < st->n && st->pages[lo].no == no)
		return &st->pages[lo];
	if (!create)
		return NULL;
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		struct page *np = realloc(st->pages, ncap * sizeof(*np));
		if (!np)
			die("out of memory");
		st->pages = np;
		st->cap = ncap;
	}
	memmove(&st->pages[lo + 1], &st->pages[lo], (st->n - lo) * sizeof(*st->pages));
	memset(&st->pages[lo], 0, sizeof(*st->pages));
	st->pages[lo].no = no;
	st->n++;
	return &st->pages[lo];
}

static bool bit(const uint64_t *w, uint64_t i)
{
	return (w[i / 64] >> (i % 64)) & 1;
}

static void set_bit(uint64_t *w, uint64_t i, bool v)
{
	if (v)
		w[i / 64] |= 1ull << (i % 64);
	else
		w[i / 64] &= ~(1ull << (i % 64));
}

/* A decimal number in [s, e): -?DIGITS(.DIGITS)? (the fraction only when
 * frac_ok), blanks around allowed (GNU parallel pads JobRuntime). *out gets
 * its whole part (saturated). False if it is not one. */
static bool number(const char *s, const char *e, bool neg_ok, bool frac_ok, long long *out)
{
	long long v = 0;
	bool neg = false;
	const char *d;

	while (s < e && *s == ' ')
		s++;
	while (e > s && e[-1] == ' ')
		e--;
	if (s < e && *s == '-' && neg_ok)
		neg = true, s++;
	for (d = s; s < e && *s >= '0' && *s <= '9'; s++)
		if (v < (1LL << 59))
			v = v * 10 + (*s - '0');
	if (s == d)
		return false;
	if (s < e && *s == '.' && frac_ok) {
		for (d = ++s; s < e && *s >= '0' && *s <= '9'; s++)
			;
		if (s == d)
			return false;
	}
	if (s != e)
		return false;
	*out = neg ? -v : v;
	return true;
}

/* Parse the first 8 columns of a joblog line [s, e); false if malformed.
 * The Command column (the rest) is not needed. */
static bool parse_line(const char *s, const char *e, struct line *l)
{
	const char *f[9];
	int n = 0;
	long long v;

	f[n++] = s;
	for (const char *p = s; p < e && n < 9; p++)
		if (*p == '\t')
			f[n++] = p + 1;
	if (n < 9)
		return false; /* 8 tab-terminated columns are needed */
	if (!number(f[0], f[1] - 1, false, false, &v) || v < 1)
		return false;
	l->seq = (uint64_t)v;
	if (f[2] - 1 == f[1])
		return false; /* an empty Host */
	for (int i = 2; i < 6; i++)
		if (!number(f[i], f[i + 1] - 1, true, true, &v))
			return false;
	if (!number(f[6], f[7] - 1, true, false, &v) || v < INT32_MIN || v > INT32_MAX)
		return false;
	l->exitval = (int)v;
	if (!number(f[7], f[8] - 1, false, false, &v) || v > 255)
		return false;
	l->signal = (int)v;
	return true;
}

static void record(struct joblog_state *st, const struct line *l)
{
	struct page *pg = page_get(st, l->seq / PAGE_TASKS, true);
	uint64_t i = l->seq % PAGE_TASKS;
	bool failed = l->exitval != 0 || l->signal != 0;

	if (st->failed_only) {
		if (!failed && !bit(pg->done, i)) {
			set_bit(pg->done, i, true);
			st->ndone++;
		}
		return;
	}
	if (!bit(pg->done, i)) {
		set_bit(pg->done, i, true);
		st->ndone++;
	}
	set_bit(pg->fail, i, failed);
	if (failed && (!st->cand_ok || l->seq <= st->cand)) {
		st->cand_ok = true;
		st->cand = l->seq;
		st->cand_exit = l->exitval;
		st->cand_sig = l->signal;
	} else if (!failed && st->cand_ok && l->seq == st->cand) {
		st->cand_ok = false;
	}
}

/* Read path line by line: each complete line to fn (line number, bounds);
 * returns the offset where a last line without a newline starts (the file
 * size when there is none) and sets *size. */
static off_t each_line(int fd, const char *path,
                       void (*fn)(void *, uint64_t, const char *, const char *), void *ctx,
                       off_t *size)
{
	struct sbuf b = {0};
	char chunk[65536];
	off_t consumed = 0;
	uint64_t lineno = 0;

	sbuf_add(&b, "", 0);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("cannot read --joblog file '%s': %s", path, strerror(errno));
		if (n == 0)
			break;
		sbuf_add(&b, chunk, (size_t)n);
		char *start = b.p, *nl;
		while ((nl = memchr(start, '\n', b.len - (size_t)(start - b.p)))) {
			fn(ctx, ++lineno, start, nl);
			consumed += nl + 1 - start;
			start = nl + 1;
		}
		size_t rest = b.len - (size_t)(start - b.p);
		memmove(b.p, start, rest);
		b.len = rest;
	}
	*size = consumed + (off_t)b.len;
	if (b.len)
		fn(ctx, 0, b.p, b.p + b.len); /* line 0: the torn last line */
	sbuf_free(&b);
	return consumed;
}

struct reader {
	struct joblog_state *st;
	const char *path;
	bool torn_ok;      /* the torn last line was usable */
	uint64_t find_seq; /* second pass: the latest line of this task */
	struct line found;
	bool header_seen;
};

static void read_line(void *ctx, uint64_t lineno, const char *s, const char *e)
{
	struct reader *r = ctx;
	struct line l;

	if (lineno == 1) {
		if ((size_t)(e - s) != strlen(header) || memcmp(s, header, strlen(header)))
			die("--joblog file '%s' is not a joblog: its first line is not GNU "
			    "parallel's header (Seq Host Starttime ...); give another file",
			    r->path);
		r->header_seen = true;
		return;
	}
	if (lineno == 0) {
		/* The torn last line: a joblog line or the header cut short. */
		if (!r->header_seen) {
			if ((size_t)(e - s) > strlen(header) || memcmp(s, header, (size_t)(e - s)))
				die("--joblog file '%s' is not a joblog: it does not start with "
				    "GNU "
				    "parallel's header (Seq Host Starttime ...); give another file",
				    r->path);
			return;
		}
		if (!parse_line(s, e, &l))
			return;
		r->torn_ok = true;
	} else if (!parse_line(s, e, &l)) {
		die("--joblog file '%s' line %llu is not a joblog line (Seq Host Starttime "
		    "JobRuntime Send Receive Exitval Signal Command): '%.*s'",
		    r->path, (unsigned long long)lineno, (int)(e - s > 80 ? 80 : e - s), s);
	}
	if (r->find_seq) {
		if (l.seq == r->find_seq)
			r->found = l;
		return;
	}
	record(r->st, &l);
}

struct joblog_state *joblog_read(const char *path, bool failed_only, bool repair)
{
	struct joblog_state *st = calloc(1, sizeof(*st));
	struct reader r = {.st = st, .path = path};
	off_t size, good;
	int fd;

	if (!st)
		die("out of memory");
	st->failed_only = failed_only;
	fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return st; /* nothing ran yet */
	if (fd < 0)
		die("cannot open --joblog file '%s': %s", path, strerror(errno));
	good = each_line(fd, path, read_line, &r, &size);
	if (good < size && repair) {
		/* A torn last line (see the top of this file). */
		if (r.torn_ok) {
			if (pwrite(fd, "\n", 1, size) != 1)
				die("cannot repair --joblog file '%s': %s", path, strerror(errno));
			warnx_(
			    "--joblog '%s': its last line had no newline (the run writing it was "
			    "killed); completed it",
			    path);
		} else {
			if (ftruncate(fd, good) < 0)
				die("cannot repair --joblog file '%s': %s", path, strerror(errno));
			warnx_(
			    "--joblog '%s': dropped an incomplete last line (%lld bytes) that an "
			    "interrupted run left; its task runs again",
			    path, (long long)(size - good));
		}
	}
	/* The latest line of the lowest failed task, when the first pass could
	 * not keep it. */
	uint64_t f = 0;
	int ex, sig;
	f = joblog_failed(st, &ex, &sig);
	if (f && !(st->cand_ok && st->cand == f)) {
		r.find_seq = f;
		if (lseek(fd, 0, SEEK_SET) < 0)
			die("cannot read --joblog file '%s': %s", path, strerror(errno));
		each_line(fd, path, read_line, &r, &size);
		st->cand_ok = true;
		st->cand = f;
		st->cand_exit = r.found.exitval;
		st->cand_sig = r.found.signal;
	}
	close(fd);
	return st;
}

bool joblog_done(const struct joblog_state *st, uint64_t seq)
{
	struct page *pg = page_get((struct joblog_state *)st, seq / PAGE_TASKS, false);

	return pg && bit(pg->done, seq % PAGE_TASKS);
}

uint64_t joblog_failed(const struct joblog_state *st, int *exitval, int *signal)
{
	if (st->failed_only)
		return 0;
	for (size_t p = 0; p < st->n; p++) {
		for (size_t w = 0; w < PAGE_WORDS; w++) {
			uint64_t x = st->pages[p].fail[w];
			if (!x)
				continue;
			uint64_t seq =
			    st->pages[p].no * PAGE_TASKS + w * 64 + (uint64_t)__builtin_ctzll(x);
			*exitval = st->cand_ok && st->cand == seq ? st->cand_exit : 0;
			*signal = st->cand_ok && st->cand == seq ? st->cand_sig : 0;
			return seq;
		}
	}
	return 0;
}

uint64_t joblog_count_done(const struct joblog_state *st)
{
	return st->ndone;
}

void joblog_free(struct joblog_state *st)
{
	if (!st)
		return;
	free(st->pages);
	free(st);
}

void joblog_verdict(uint64_t seq, int exitval, int signal, corral_summary_t *s)
{
	/* corral's joblog writes the task's exit code (design §4) as Exitval:
	 * 137 for an OOM kill, 124 for a timeout, 128+s for signal s; GNU
	 * parallel writes 0 or -1 for a job killed by a signal. */
	int status = signal ? (exitval > 0 ? exitval : 128 + signal) : exitval;
	const char *abbrev = signal ? sigabbrev_np(signal) : NULL;

	if (status <= 0 || status > 255)
		status = status == 0 ? 1 : 255;
	s->verdict_seq = seq;
	s->verdict = !signal ? CORRAL_EXIT : exitval == 124 ? CORRAL_TIMEOUT : CORRAL_SIGNAL;
	s->exit_code = status;
	if (signal)
		snprintf(s->sentence, sizeof(s->sentence),
		         "task %llu failed in an earlier run: the joblog records exit value %d, "
		         "signal %d (SIG%s)",
		         (unsigned long long)seq, exitval, signal, abbrev ? abbrev : "?");
	else
		snprintf(s->sentence, sizeof(s->sentence),
		         "task %llu failed in an earlier run: the joblog records exit value %d",
		         (unsigned long long)seq, exitval);
}
