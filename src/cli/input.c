/* input.c - the tasks' arguments, streamed from the input sources, as GNU
 * parallel makes them (MultifileQueue, RecordColQueue, -N/-L):
 *
 *   sources   stdin (when no other is given), each -a FILE, each ::: group of
 *             words and each :::: FILE ("-" = stdin), in that order. Items are
 *             separated by '\n' (or NUL with -0); the separator is removed,
 *             every other byte is kept (a '\r' too). A ::: word is one item
 *             as it is (GNU parallel would split it at newlines).
 *   records   one item from each source: all the combinations, the first
 *             source changing slowest; with --link the n-th items together,
 *             a shorter source starting over. A source with no item at all
 *             gives one empty item (when another source has some).
 *   args      with --colsep each item is split into columns (Perl's split
 *             with limit -1; an empty item is one empty column).
 *   tasks     one record per task, or -N n records (the last task may get
 *             fewer); -N 0 reads one record and inserts no argument; -L n is
 *             -N n where an item ending in whitespace continues with the next.
 *
 * Streaming: a single source is read as the tasks need it, so a 10-million
 * line input costs the memory of a window of tasks. Sources read more than
 * once (those after the first in combinations; all of them with --link) are
 * read again from the start when they are regular files, or kept in memory
 * (stdin, pipes: GNU parallel keeps every source in memory).
 *
 * Reading never blocks: an item is read only when poll() says its source is
 * readable; otherwise input_next_job() returns -EAGAIN and run.c waits for
 * input_fd() in the same poll() as for the tasks and for signals. So a task
 * starts as soon as its line arrives, and running tasks are still watched
 * while a slow producer (`tail -f`, a pipeline) has not written the next one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define READ_CHUNK 65536

struct src {
	const struct cli_source *def;
	const char *name; /* for messages */
	int wpos;         /* ::: words: the next one */
	/* A file or stdin. */
	int fd; /* -1 before it is opened */
	bool own_fd, opened, ended;
	bool seekable; /* a regular file: read it again from origin */
	off_t origin;
	char *buf;
	size_t cap, start, end; /* unconsumed bytes: buf[start..end) */
	bool eof;
	/* Passes over the source. */
	bool rewindable;   /* it will be read more than once */
	bool first_done;   /* its first pass ended */
	uint64_t count;    /* items of the current pass */
	bool empty;        /* its first pass had no item: it gives one "" */
	bool empty_given;  /* ... which this pass already gave */
	struct sbuf *hist; /* items of the first pass (not seekable, rewindable) */
	size_t hn, hcap, hpos;
	bool replay;
	/* -L: an item ending in whitespace continues with the next one. */
	struct sbuf cont;
	bool in_cont;
};

struct input {
	const struct cli *c;
	struct src *src;
	int n;
	char sep;
	bool continued; /* -L */
	int wait_fd;
	const char *wait_name;
	char err[256];
	/* Records: the current item of every source. */
	struct sbuf *cur;
	int phase;    /* 0: the first record, 1: the next ones, 2: done */
	int fill;     /* the next source to fill */
	int adv;      /* combinations: the source being advanced (-1: none yet) */
	bool filling; /* combinations: refilling the sources after adv */
	bool rewound; /* ... the one at fill was rewound already */
	bool fresh;   /* --link: some source gave an item of its first pass */
	/* The task being assembled. */
	struct sbuf arena;
	size_t *off, *len;
	char **args;
	size_t nargs, argcap;
	long nrec;
	uint64_t seq;
};

/* ---------------------------------------------------------------- sources */

static void check_file(const char *name)
{
	/* Open every file now: an unreadable one is an error before any task
	 * starts (a directory opens; reading it would fail only later). */
	int fd = strcmp(name, "-") ? open(name, O_RDONLY | O_CLOEXEC) : 0;
	struct stat st;

	if (fd < 0)
		die("cannot read input file '%s': %s", name, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
		die("cannot read input file '%s': %s", name, strerror(EISDIR));
	if (fd != 0)
		close(fd);
}

struct input *input_open(const struct cli *c)
{
	static const struct cli_source stdin_src = {.path = "-"};
	struct input *in = calloc(1, sizeof(*in));

	if (!in)
		die("out of memory");
	in->c = c;
	in->sep = c->null_sep ? '\0' : '\n';
	in->continued = c->max_lines > 0;
	in->wait_fd = -1;
	in->n = c->n_sources ? c->n_sources : 1;
	in->src = calloc((size_t)in->n, sizeof(*in->src));
	in->cur = calloc((size_t)in->n, sizeof(*in->cur));
	if (!in->src || !in->cur)
		die("out of memory");
	for (int i = 0; i < in->n; i++) {
		struct src *s = &in->src[i];
		s->def = c->n_sources ? &c->sources[i] : &stdin_src;
		s->fd = -1;
		s->name = s->def->words               ? ":::"
		          : strcmp(s->def->path, "-") ? s->def->path
		                                      : "stdin";
		/* Combinations read every source but the first once per item of
		 * the ones before it; --link starts a shorter source over. */
		s->rewindable = in->n > 1 && (c->link || i > 0);
		if (!s->def->words)
			check_file(s->def->path);
	}
	in->adv = -1;
	return in;
}

static int open_src(struct src *s)
{
	struct stat st;

	s->opened = true;
	if (strcmp(s->def->path, "-")) {
		s->fd = open(s->def->path, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0)
			die("cannot read input file '%s': %s", s->def->path, strerror(errno));
		s->own_fd = true;
	} else {
		s->fd = 0;
	}
	if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		s->origin = lseek(s->fd, 0, SEEK_CUR);
		s->seekable = s->origin >= 0;
	}
	return 0;
}

/* One read() of s, only if it would not block. Returns 1 when bytes or EOF
 * arrived, -EAGAIN when nothing is there yet, -errno. */
static int fill_buf(struct src *s)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};

	if (s->start > 0) {
		memmove(s->buf, s->buf + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	if (s->cap - s->end < READ_CHUNK + 1) {
		size_t ncap = s->cap ? s->cap : READ_CHUNK * 2;
		while (ncap - s->end < READ_CHUNK + 1)
			ncap *= 2;
		char *nb = realloc(s->buf, ncap);
		if (!nb)
			die("out of memory");
		s->buf = nb;
		s->cap = ncap;
	}
	if (!s->seekable) {
		for (;;) {
			int n = poll(&pfd, 1, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EAGAIN;
			break;
		}
	}
	for (;;) {
		ssize_t n = read(s->fd, s->buf + s->end, s->cap - s->end - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			s->eof = true;
		s->end += (size_t)n;
		return 1;
	}
}

/* The next raw item of s in this pass: 1, 0 at its end, -EAGAIN, -errno,
 * -EILSEQ (a NUL in a newline-separated item). */
static int raw_next(struct input *in, struct src *s, const char **p, size_t *len)
{
	if (s->def->words) {
		if (s->wpos >= s->def->n_words)
			return 0;
		*p = s->def->words[s->wpos++];
		*len = strlen(*p);
		return 1;
	}
	if (s->ended)
		return 0;
	if (!s->opened)
		open_src(s);
	for (;;) {
		char *b = s->buf + s->start;
		size_t avail = s->end - s->start;
		char *q = avail ? memchr(b, in->sep, avail) : NULL;
		if (q || (s->eof && avail)) {
			size_t n = q ? (size_t)(q - b) : avail;
			b[n] = '\0'; /* the separator, or the spare byte after end */
			s->start += q ? n + 1 : n;
			if (in->sep == '\n' && memchr(b, '\0', n)) {
				snprintf(
				    in->err, sizeof(in->err),
				    "input item %llu from %s contains a NUL byte, which cannot "
				    "be passed as an argument (use -0 for NUL-separated input)",
				    (unsigned long long)s->count + 1, s->name);
				return -EILSEQ;
			}
			*p = b;
			*len = n;
			return 1;
		}
		if (s->eof) {
			s->ended = true;
			if (!s->seekable || !s->rewindable) {
				if (s->own_fd)
					close(s->fd);
				s->fd = -1;
				free(s->buf);
				s->buf = NULL;
				s->cap = s->start = s->end = 0;
			}
			return 0;
		}
		in->wait_fd = s->fd;
		in->wait_name = s->name;
		int rc = fill_buf(s);
		if (rc < 0)
			return rc;
	}
}

static void hist_add(struct src *s, const char *p, size_t len)
{
	if (s->hn == s->hcap) {
		size_t ncap = s->hcap ? s->hcap * 2 : 64;
		struct sbuf *nh = realloc(s->hist, ncap * sizeof(*nh));
		if (!nh)
			die("out of memory");
		memset(nh + s->hcap, 0, (ncap - s->hcap) * sizeof(*nh));
		s->hist = nh;
		s->hcap = ncap;
	}
	sbuf_add(&s->hist[s->hn++], p, len);
}

/* The next item of s in this pass, with -L continuation, kept for the next
 * passes when s cannot be read again. */
static int src_next(struct input *in, struct src *s, const char **p, size_t *len)
{
	if (s->replay) {
		if (s->hpos >= s->hn)
			return 0;
		*p = s->hist[s->hpos].p;
		*len = s->hist[s->hpos++].len;
		return 1;
	}
	for (;;) {
		int rc = raw_next(in, s, p, len);
		if (rc < 0)
			return rc;
		if (rc == 0 && !s->in_cont)
			return 0;
		if (rc == 0) {
			s->in_cont = false; /* the input ended inside a continued item */
		} else if (in->continued && *len &&
		           ((*p)[*len - 1] == ' ' ||
		            ((*p)[*len - 1] >= '\t' && (*p)[*len - 1] <= '\r'))) {
			if (!s->in_cont)
				sbuf_reset(&s->cont);
			sbuf_add(&s->cont, *p, *len);
			s->in_cont = true;
			continue;
		} else if (s->in_cont) {
			sbuf_add(&s->cont, *p, *len);
			s->in_cont = false;
		} else {
			break;
		}
		*p = s->cont.p;
		*len = s->cont.len;
		break;
	}
	if (s->rewindable && !s->seekable && !s->def->words && !s->first_done)
		hist_add(s, *p, *len);
	return 1;
}

static void src_rewind(struct src *s)
{
	if (!s->first_done) {
		s->first_done = true;
		s->empty = s->count == 0;
	}
	s->count = 0;
	s->empty_given = false;
	if (s->def->words) {
		s->wpos = 0;
	} else if (s->seekable) {
		if (lseek(s->fd, s->origin, SEEK_SET) < 0)
			die("cannot read input file '%s' again: %s", s->name, strerror(errno));
		s->start = s->end = 0;
		s->eof = s->ended = false;
	} else {
		s->replay = true;
		s->hpos = 0;
	}
}

/* The next item of source i in this pass; a source without any item gives
 * one empty item per pass. */
static int get(struct input *in, int i, const char **p, size_t *len)
{
	struct src *s = &in->src[i];
	int rc;

	if (s->empty) {
		if (s->empty_given)
			return 0;
		s->empty_given = true;
		*p = "";
		*len = 0;
		return 1;
	}
	in->wait_name = s->name;
	rc = src_next(in, s, p, len);
	if (rc == 1) {
		s->count++;
	} else if (rc == 0 && !s->first_done && s->count == 0) {
		s->first_done = true;
		s->empty = s->empty_given = true;
		*p = "";
		*len = 0;
		return 1;
	}
	return rc;
}

static void set_cur(struct input *in, int i, const char *p, size_t len)
{
	sbuf_reset(&in->cur[i]);
	sbuf_add(&in->cur[i], p, len);
}

/* The next record into in->cur: 1, 0 at the end, -EAGAIN, -errno. */
static int next_record(struct input *in)
{
	const char *p;
	size_t len;
	int rc;

	if (in->phase == 2)
		return 0;
	if (in->phase == 0) {
		/* The first item of every source. */
		for (; in->fill < in->n; in->fill++) {
			rc = get(in, in->fill, &p, &len);
			if (rc < 0)
				return rc;
			set_cur(in, in->fill, p, len);
		}
		in->phase = 1;
		bool all_empty = true;
		for (int i = 0; i < in->n; i++)
			all_empty = all_empty && in->src[i].empty;
		if (all_empty) {
			in->phase = 2;
			return 0;
		}
		return 1;
	}
	if (in->n == 1) {
		rc = get(in, 0, &p, &len);
		if (rc <= 0) {
			if (rc == 0)
				in->phase = 2;
			return rc;
		}
		set_cur(in, 0, p, len);
		return 1;
	}
	if (in->c->link) {
		/* The n-th item of every source; a source at its end starts over.
		 * Done when none of them gave an item of its first pass. */
		if (in->fill >= in->n) {
			in->fill = 0;
			in->fresh = false;
		}
		for (; in->fill < in->n; in->fill++) {
			struct src *s = &in->src[in->fill];
			rc = get(in, in->fill, &p, &len);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				src_rewind(s);
				rc = get(in, in->fill, &p, &len);
				if (rc < 0)
					return rc;
			} else {
				in->fresh = in->fresh || (!s->first_done && !s->empty);
			}
			set_cur(in, in->fill, p, len);
		}
		if (!in->fresh) {
			in->phase = 2;
			return 0;
		}
		return 1;
	}
	/* Combinations, the last source fastest: advance the last source that
	 * has a next item, then start every source after it over. */
	for (;;) {
		if (!in->filling) {
			if (in->adv < 0)
				in->adv = in->n - 1;
			rc = get(in, in->adv, &p, &len);
			if (rc < 0)
				return rc;
			if (rc == 0) {
				if (--in->adv < 0) {
					in->phase = 2;
					return 0;
				}
				continue;
			}
			set_cur(in, in->adv, p, len);
			in->filling = true;
			in->fill = in->adv + 1;
			in->rewound = false;
		}
		for (; in->fill < in->n; in->fill++) {
			if (!in->rewound) {
				src_rewind(&in->src[in->fill]);
				in->rewound = true;
			}
			rc = get(in, in->fill, &p, &len);
			if (rc < 0)
				return rc;
			if (rc == 0) { /* a file that shrank since its first pass */
				p = "";
				len = 0;
			}
			set_cur(in, in->fill, p, len);
			in->rewound = false;
		}
		in->filling = false;
		in->adv = -1;
		return 1;
	}
}

/* ---------------------------------------------------------------- --colsep */

static void add_arg(void *ctx, const char *s, size_t len)
{
	struct input *in = ctx;

	if (in->nargs == in->argcap) {
		size_t ncap = in->argcap ? in->argcap * 2 : 16;
		size_t *no = realloc(in->off, ncap * sizeof(*no));
		size_t *nl = no ? realloc(in->len, ncap * sizeof(*nl)) : NULL;
		char **na = nl ? realloc(in->args, ncap * sizeof(*na)) : NULL;
		if (no)
			in->off = no;
		if (nl)
			in->len = nl;
		if (!na)
			die("out of memory");
		in->args = na;
		in->argcap = ncap;
	}
	in->off[in->nargs] = in->arena.len;
	in->len[in->nargs] = len;
	in->nargs++;
	sbuf_add(&in->arena, s, len);
	sbuf_addc(&in->arena, '\0');
}

void colsep_split(const regex_t *re, const char *s, size_t len,
                  void (*add)(void *ctx, const char *s, size_t len), void *ctx)
{
	size_t fs = 0, pos = 0; /* the current field's start; where to search */

	if (len == 0) {
		add(ctx, s, 0); /* GNU parallel: an empty line is one empty column */
		return;
	}
	while (pos <= len) {
		regmatch_t m = {.rm_so = (regoff_t)pos, .rm_eo = (regoff_t)len};
		if (regexec(re, s, 1, &m, REG_STARTEND | (pos ? REG_NOTBOL : 0)) != 0)
			break;
		size_t ms = (size_t)m.rm_so, me = (size_t)m.rm_eo;
		if (me == ms && ms == fs) {
			/* Perl: an empty match where a field starts splits nothing. */
			pos = ms + 1;
			continue;
		}
		add(ctx, s + fs, ms - fs);
		fs = me;
		pos = me;
	}
	/* The rest; with limit -1 an empty last field is kept when a match
	 * ended there. */
	add(ctx, s + fs, len - fs);
}

/* Append the ERE form of a Perl class escape (\d \s \w and negations) or
 * of one byte, inside or outside a bracket expression. */
static bool class_escape(char c, bool bracket, struct sbuf *o)
{
	const char *set = NULL;
	bool neg = false;

	switch (c) {
	case 'd':
	case 'D':
		set = "0-9";
		break;
	case 's':
	case 'S':
		set = " \t\n\r\f\v";
		break;
	case 'w':
	case 'W':
		set = "A-Za-z0-9_";
		break;
	default:
		return false;
	}
	neg = c >= 'A' && c <= 'Z';
	if (bracket && neg)
		return false; /* [\D] cannot be written as one ERE bracket */
	if (!bracket)
		sbuf_add(o, neg ? "[^" : "[", neg ? 2 : 1);
	sbuf_add(o, set, strlen(set));
	if (!bracket)
		sbuf_addc(o, ']');
	return true;
}

/* A Perl escape standing for one byte: \t \n \r \f \e \a \0NN \xHH \x{HH}
 * \cX. Returns the number of chars consumed after the backslash (0: none). */
static size_t byte_escape(const char *p, int *out)
{
	static const char simple[] = "tnrfea";
	static const char value[] = "\t\n\r\f\x1b\a";
	const char *q = strchr(simple, *p);
	size_t n;

	if (*p && q) {
		*out = (unsigned char)value[q - simple];
		return 1;
	}
	if (*p == '0') {
		int v = 0;
		for (n = 1; n < 3 && p[n] >= '0' && p[n] <= '7'; n++)
			v = v * 8 + p[n] - '0';
		*out = v;
		return n;
	}
	if (*p == 'x') {
		int v = 0;
		if (p[1] == '{') {
			for (n = 2; isxdigit((unsigned char)p[n]); n++)
				v = v * 16 + (isdigit((unsigned char)p[n])
				                  ? p[n] - '0'
				                  : (p[n] | 0x20) - 'a' + 10);
			if (p[n] != '}' || v > 0xff)
				return 0;
			*out = v;
			return n + 1;
		}
		for (n = 1; n < 3 && isxdigit((unsigned char)p[n]); n++)
			v = v * 16 +
			    (isdigit((unsigned char)p[n]) ? p[n] - '0' : (p[n] | 0x20) - 'a' + 10);
		*out = v;
		return n;
	}
	if (*p == 'c' && p[1] && p[1] >= '?' && p[1] <= '~') {
		*out = (p[1] >= 'a' && p[1] <= 'z' ? p[1] - 32 : p[1]) ^ 64;
		return 2;
	}
	return 0;
}

/* One literal byte outside a bracket expression. */
static void literal_byte(int b, struct sbuf *o)
{
	if (b == 0)
		return; /* an argument holds no NUL: it never matches */
	if (strchr("\\.[()*+?{|^$", b)) {
		if (b == '^' || b == '\\') {
			sbuf_addc(o, '\\');
			sbuf_addc(o, (char)b);
		} else {
			sbuf_addc(o, '[');
			sbuf_addc(o, (char)b);
			sbuf_addc(o, ']');
		}
	} else {
		sbuf_addc(o, (char)b);
	}
}

int colsep_compile(const char *perl, regex_t *re, char *err, size_t errlen)
{
	struct sbuf o = {0};
	const char *p = perl;
	int rc;

	sbuf_add(&o, "", 0);
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		sbuf_free(&o);                                                                     \
		return -1;                                                                         \
	} while (0)
	while (*p) {
		int b;
		size_t n;
		if (*p == '\\') {
			p++;
			if (!*p)
				FAIL("it ends with a backslash");
			if (class_escape(*p, false, &o)) {
				p++;
			} else if ((n = byte_escape(p, &b))) {
				literal_byte(b, &o);
				p += n;
			} else if (*p == 'b' || *p == 'B') {
				sbuf_addc(&o, '\\');
				sbuf_addc(&o, *p++);
			} else if (isalnum((unsigned char)*p)) {
				FAIL("the Perl escape \\%c is not supported (corral compiles "
				     "--colsep as "
				     "a POSIX extended regex with Perl's \\t \\n \\s \\d \\w \\xHH "
				     "escapes)",
				     *p);
			} else {
				literal_byte((unsigned char)*p++, &o);
			}
		} else if (*p == '[') {
			/* A bracket expression: Perl's escapes inside it become bytes. */
			const char *q = p + 1;
			sbuf_addc(&o, '[');
			if (*q == '^')
				sbuf_addc(&o, *q++);
			if (*q == ']')
				sbuf_addc(&o, *q++);
			for (;;) {
				if (!*q)
					FAIL("a '[' is not closed");
				if (*q == ']')
					break;
				if (q[0] == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
					const char *e = strchr(q + 2, q[1]);
					if (!e || e[1] != ']')
						FAIL("a '[%c' is not closed", q[1]);
					sbuf_add(&o, q, (size_t)(e + 2 - q));
					q = e + 2;
					continue;
				}
				if (*q == '\\') {
					q++;
					if (class_escape(*q, true, &o)) {
						q++;
					} else if ((n = byte_escape(q, &b))) {
						if (b == ']' || b == '\\' || b == '^' || b == '-' ||
						    b == 0 || b == '[')
							FAIL("this escape inside [...] is not "
							     "supported: write the "
							     "character itself (']' first, '-' "
							     "last)");
						sbuf_addc(&o, (char)b);
						q += n;
					} else if (*q == '\\' || *q == ']' || *q == '^' ||
					           *q == '-' || *q == '[') {
						FAIL("'\\%c' inside [...] is not supported: write "
						     "it plainly "
						     "(']' first, '-' last)",
						     *q);
					} else if (!*q || isalnum((unsigned char)*q)) {
						FAIL("the escape '\\%c' inside [...] is not "
						     "supported",
						     *q);
					} else {
						sbuf_addc(&o, *q++);
					}
					continue;
				}
				sbuf_addc(&o, *q++);
			}
			sbuf_addc(&o, ']');
			p = q + 1;
		} else if (*p == '.') {
			sbuf_add(&o, "[^\n]", 4); /* Perl's . does not match a newline */
			p++;
		} else if (*p == '(' && p[1] == '?') {
			FAIL("Perl's (?...) groups are not supported");
		} else if (*p == '{') {
			/* A quantifier {n}, {n,}, {n,m}; otherwise a '{' (Perl). */
			const char *q = p + 1;
			while (isdigit((unsigned char)*q))
				q++;
			bool quant = q > p + 1;
			if (quant && *q == ',') {
				q++;
				while (isdigit((unsigned char)*q))
					q++;
			}
			if (quant && *q == '}') {
				sbuf_add(&o, p, (size_t)(q + 1 - p));
				p = q + 1;
				if (*p == '?' || *p == '+')
					FAIL("lazy and possessive quantifiers are not supported");
			} else {
				literal_byte('{', &o);
				p++;
			}
		} else if (*p == '}') {
			literal_byte('}', &o);
			p++;
		} else if (*p == '*' || *p == '+' || *p == '?') {
			sbuf_addc(&o, *p++);
			if (*p == '?' || *p == '+')
				FAIL("lazy and possessive quantifiers (*? +? ?? *+ ...) are not "
				     "supported");
		} else {
			sbuf_addc(&o, *p++);
		}
	}
#undef FAIL
	rc = regcomp(re, o.p, REG_EXTENDED);
	if (rc != 0) {
		char msg[128];
		regerror(rc, re, msg, sizeof(msg));
		snprintf(err, errlen, "%s", msg);
		sbuf_free(&o);
		return -1;
	}
	sbuf_free(&o);
	return 0;
}

/* ---------------------------------------------------------------- tasks */

static void add_record(struct input *in)
{
	const struct cli *c = in->c;

	for (int i = 0; i < in->n; i++) {
		if (c->has_colsep)
			colsep_split(&c->colsep, in->cur[i].p, in->cur[i].len, add_arg, in);
		else
			add_arg(in, in->cur[i].p, in->cur[i].len);
	}
	in->nrec++;
}

int input_next_job(struct input *in, struct job *job)
{
	const struct cli *c = in->c;
	long want = c->max_args >= 0 ? c->max_args : c->max_lines > 0 ? c->max_lines : 1;
	int rc;

	if (want < 1)
		want = 1; /* -N 0: one record, no argument */
	if (in->nrec == 0) {
		in->nargs = 0;
		sbuf_reset(&in->arena);
	}
	while (in->nrec < want) {
		rc = next_record(in);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		add_record(in);
	}
	if (in->nrec == 0)
		return 0;
	for (size_t i = 0; i < in->nargs; i++)
		in->args[i] = in->arena.p + in->off[i];
	memset(job, 0, sizeof(*job));
	job->seq = ++in->seq;
	job->nargs = in->nargs;
	job->args = in->args;
	job->lens = in->len;
	job->noarg = c->max_args == 0;
	in->nrec = 0;
	return 1;
}

int input_fd(const struct input *in)
{
	return in ? in->wait_fd : -1;
}

const char *input_name(const struct input *in)
{
	return in && in->wait_name ? in->wait_name : "stdin";
}

const char *input_error(const struct input *in)
{
	return in->err;
}

void input_close(struct input *in)
{
	if (!in)
		return;
	for (int i = 0; i < in->n; i++) {
		struct src *s = &in->src[i];
		if (s->fd >= 0 && s->own_fd)
			close(s->fd);
		free(s->buf);
		for (size_t k = 0; k < s->hn; k++)
			sbuf_free(&s->hist[k]);
		free(s->hist);
		sbuf_free(&s->cont);
		sbuf_free(&in->cur[i]);
	}
	free(in->src);
	free(in->cur);
	sbuf_free(&in->arena);
	free(in->off);
	free(in->len);
	free(in->args);
	free(in);
}
