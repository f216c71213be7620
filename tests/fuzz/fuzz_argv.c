/* fuzz_argv.c - the argv of a task (src/cli/template.c) against a reference:
 * GNU parallel's own algorithm, transcribed step by step from parallel
 * 20221122 (CommandLineQueue::new, CommandLine::replace_placeholders,
 * Arg::replace, File::Basename) with its Perl regexes matched the slow way,
 * position by position. template.c is written differently (one scan, direct
 * rules); the two must agree byte for byte. GNU parallel itself checks both
 * in tests/cli/test_cli_parallel.py, on a smaller corpus.
 *
 * Also: GNU parallel's shell quoting, checked by unquoting it as sh would,
 * and the Perl escapes of --tagstring (unquote_printf).
 *
 * Input layout: byte 0: flags (bit 0: -N/-L context replace, bits 1-2:
 * --trim, bit 3: -N 0); byte 1: the task's number; byte 2: its slot; byte
 * 3: how many template words (0-7); the rest split at NUL bytes: the
 * template words, then the arguments (at most 12). So
 * "\x00\x05\x01\x02" "echo\0x{}y\0a b\0c" is the template [echo, x{}y] with
 * the arguments (a b, c), task 5, slot 1.
 */
#include <stdarg.h>

#include "cli.h"
#include "fuzz.h"

/* template.c calls die() on out-of-memory only. */
void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void warnx_(const char *fmt, ...)
{
	(void)fmt;
}

/* ---------------------------------------------------------------- strings */

struct str {
	char *p;
	size_t len, cap;
};

static void add(struct str *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			abort();
	}
	if (n)
		memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

static struct str mk(const char *p, size_t n)
{
	struct str s = {0};
	add(&s, p, n);
	return s;
}

/* ---------------------------------------------------------------- the template */

/* A word after GNU parallel's rpl passes: text pieces and replacement
 * markers (\257<PERLEXPR\257>), here kept as (position string, kind). */
enum {
	K_ARG,
	K_NOEXT,
	K_BASE,
	K_DIR,
	K_BASE_NOEXT,
	K_SEQ,
	K_SLOT
};

struct seg {
	bool repl;
	struct str text; /* text, or the position digits of a marker */
	int kind;
};

struct word {
	struct seg s[1024];
	int n;
};

static const struct {
	const char *rpl; /* the shorthand, as %Global::replace has it */
	int kind;
	bool code_starts_1; /* its Perl code starts with "1 " ({#}, {%}) */
} RPL[] = {
    /* sorted by length, longest first, as GNU parallel processes them */
    {"{//}", K_DIR, false}, {"{/.}", K_BASE_NOEXT, false}, {"{#}", K_SEQ, true},
    {"{%}", K_SLOT, true},  {"{/}", K_BASE, false},        {"{.}", K_NOEXT, false},
    {"{}", K_ARG, false},
};

static bool pspace(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Replace every occurrence of rpl (and, second, of its positional form
 * {-?\d+\s*REST}) in the text segments of w. */
static void rpl_pass(struct word *w, int r)
{
	const char *rp = RPL[r].rpl;
	size_t rl = strlen(rp);

	for (int positional = 0; positional < 2; positional++) {
		for (int i = 0; i < w->n; i++) {
			if (w->s[i].repl)
				continue;
			const char *t = w->s[i].text.p;
			size_t tl = w->s[i].text.len;
			for (size_t at = 0; at < tl; at++) {
				size_t end = 0, ds = 0, de = 0;
				if (!positional) {
					if (tl - at >= rl && !memcmp(t + at, rp, rl))
						end = at + rl;
				} else if (t[at] == '{') {
					size_t k = at + 1;
					if (k < tl && t[k] == '-')
						k++;
					ds = at + 1;
					while (k < tl && t[k] >= '0' && t[k] <= '9')
						k++;
					de = k;
					bool digits = de > ds + (t[ds] == '-');
					while (k < tl && pspace((unsigned char)t[k]))
						k++;
					if (digits && tl - k >= rl - 1 &&
					    !memcmp(t + k, rp + 1, rl - 1))
						end = k + rl - 1;
				}
				if (!end)
					continue;
				/* split: text[0..at) marker text[end..) */
				if (w->n + 2 > 1024)
					abort(); /* the input is small enough (see the harness) */
				struct str before = mk(t, at), after = mk(t + end, tl - end);
				struct seg m = {.repl = true, .kind = RPL[r].kind};
				m.text = positional ? mk(t + ds, de - ds) : mk("", 0);
				free(w->s[i].text.p);
				memmove(&w->s[i + 3], &w->s[i + 1],
				        (size_t)(w->n - i - 1) * sizeof(w->s[0]));
				w->s[i] = (struct seg){.text = before};
				w->s[i + 1] = m;
				w->s[i + 2] = (struct seg){.text = after};
				w->n += 2;
				break; /* go on in the text after the marker (i + 2) */
			}
		}
	}
}

/* ---------------------------------------------------------------- values */

static struct str ref_basename(struct str a)
{
	/* s:.*\/:: by trying every start, then the longest end. */
	for (size_t st = 0; st <= a.len; st++) {
		for (size_t e = a.len; e > st; e--) {
			bool ok = a.p[e - 1] == '/';
			for (size_t k = st; ok && k < e; k++)
				ok = a.p[k] != '\n';
			if (ok) {
				struct str r = mk(a.p, st);
				add(&r, a.p + e, a.len - e);
				return r;
			}
		}
	}
	return mk(a.p, a.len);
}

static struct str ref_noext(struct str a)
{
	/* s:\.[^/.]*$:: by trying every start, then the longest end where $
	 * matches (the end, or before a newline that ends the string). */
	for (size_t st = 0; st < a.len; st++) {
		if (a.p[st] != '.')
			continue;
		for (size_t e = a.len; e > st; e--) {
			bool ok = e == a.len || (e == a.len - 1 && a.p[a.len - 1] == '\n');
			for (size_t k = st + 1; ok && k < e; k++)
				ok = a.p[k] != '/' && a.p[k] != '.';
			if (ok) {
				struct str r = mk(a.p, st);
				add(&r, a.p + e, a.len - e);
				return r;
			}
		}
	}
	return mk(a.p, a.len);
}

static void ref_fileparse(struct str in, struct str *dir, struct str *base)
{
	/* m{^(.*\/)?(.*)}s: greedy, so (.*\/) ends at the last '/'. */
	size_t cut = 0;
	for (size_t k = 0; k < in.len; k++)
		if (in.p[k] == '/')
			cut = k + 1;
	*dir = cut ? mk(in.p, cut) : mk("./", 2);
	*base = mk(in.p + cut, in.len - cut);
}

static void ref_strip(struct str *d)
{
	/* s{(.)/+\z}{$1}s (the * of Perl, here +): the leftmost byte after which only '/' follow.
	 */
	for (size_t k = 0; k < d->len; k++) {
		bool ok = true;
		for (size_t m = k + 1; ok && m < d->len; m++)
			ok = d->p[m] == '/';
		if (ok) {
			d->len = k + 1;
			d->p[d->len] = '\0';
			return;
		}
	}
}

static struct str ref_dirname(struct str a)
{
	struct str dir, base;

	ref_fileparse(a, &dir, &base);
	ref_strip(&dir);
	if (base.len == 0) {
		struct str d2, b2;
		ref_fileparse(dir, &d2, &b2);
		free(dir.p);
		free(b2.p);
		dir = d2;
		ref_strip(&dir);
	}
	free(base.p);
	return dir;
}

static struct str ref_trim(struct str a, int trim)
{
	size_t s = 0, e = a.len;
	if (trim & 1)
		while (s < e && pspace((unsigned char)a.p[s]))
			s++;
	if (trim & 2)
		while (e > s && pspace((unsigned char)a.p[e - 1]))
			e--;
	return mk(a.p + s, e - s);
}

/* ---------------------------------------------------------------- replace_placeholders */

#define SPC   ((char *)1) /* \0spc */
#define IGN   ((char *)2) /* \0ign */
#define NOARG ((char *)3)

struct el {
	char *p; /* SPC, IGN, NOARG or a string */
	size_t len;
};

struct els {
	struct el *v;
	size_t n, cap;
};

static void push(struct els *e, char *p, size_t len)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		if (!e->v)
			abort();
	}
	e->v[e->n++] = (struct el){p, len};
}

static void pushs(struct els *e, const char *p, size_t len)
{
	char *c = malloc(len + 1);
	if (!c)
		abort();
	memcpy(c, p, len);
	c[len] = '\0';
	push(e, c, len);
}

struct task {
	struct str *args;
	size_t n;
	bool noarg;
	int trim;
	char seq[24], slot[24];
};

/* Arg::replace for the marker m on argument a (perlexpr with its position
 * stripped). */
static void arg_replace(const struct task *t, const struct seg *m, size_t a, struct els *out)
{
	if (m->kind == K_SEQ) {
		pushs(out, t->seq, strlen(t->seq));
		return;
	}
	if (m->kind == K_SLOT) {
		pushs(out, t->slot, strlen(t->slot));
		return;
	}
	if (t->noarg) {
		push(out, NOARG, 0);
		return;
	}
	struct str none = {"", 0, 0};
	struct str v = ref_trim(t->n ? t->args[a] : none, t->trim), r;
	switch (m->kind) {
	case K_NOEXT:
		r = ref_noext(v);
		break;
	case K_BASE:
		r = ref_basename(v);
		break;
	case K_DIR:
		r = ref_dirname(v);
		break;
	case K_BASE_NOEXT: {
		struct str b = ref_basename(v);
		r = ref_noext(b);
		free(b.p);
		break;
	}
	default:
		r = mk(v.p, v.len);
	}
	free(v.p);
	push(out, r.p, r.len);
}

/* The marker's "$1" of s{\257<(-?\d+)?(.*)\257>}: the position string
 * followed by the Perl code ("1 $_=..." for {#} and {%}). */
static struct str marker_pos(const struct seg *m)
{
	struct str expr = mk(m->text.p, m->text.len);
	size_t k = 0;

	if (m->kind == K_SEQ || m->kind == K_SLOT)
		add(&expr, "1 $_=$job->seq()", 16);
	else
		add(&expr, "s:\\.[^/.]*$::", 13);
	if (expr.p[k] == '-' && expr.p[k + 1] >= '0' && expr.p[k + 1] <= '9')
		k++;
	while (expr.p[k] >= '0' && expr.p[k] <= '9')
		k++;
	if (k == 1 && expr.p[0] == '-')
		k = 0;
	expr.len = k;
	expr.p[k] = '\0';
	return expr;
}

/* Perl: true unless "" or "0". */
static bool perl_true(const char *s)
{
	return *s && strcmp(s, "0") != 0;
}

static long long perl_num(const char *s)
{
	long double v = 0;
	bool neg = *s == '-';
	for (s += neg; *s; s++)
		v = v * 10 + (*s - '0');
	if (v > 1e18L)
		v = 1e18L;
	return neg ? -(long long)v : (long long)v;
}

/* Evaluate one marker for argument index a of a copy. normal: set when
 * the marker is not positional. */
static void eval_marker(const struct task *t, const struct seg *m, size_t a, bool *normal,
                        struct els *out)
{
	struct str pos = marker_pos(m);
	size_t n = t->n ? t->n : 1;

	if (perl_true(pos.p)) {
		long long p = perl_num(pos.p);
		long long idx = p > 0 ? p - 1 : (long long)n + p;
		if (idx < 0)
			idx += (long long)n;
		if (idx >= 0 && idx < (long long)n)
			arg_replace(t, m, (size_t)idx, out);
		else
			pushs(out, "", 0);
	} else {
		*normal = true;
		arg_replace(t, m, a, out);
	}
	free(pos.p);
}

struct tok {
	bool repl;
	const struct seg *m;
	struct str text; /* not owned */
	bool spc;        /* \0spc between words */
	bool empty;      /* \0empty */
};

static void ref_expand(struct word *words, int nw, const struct task *t, bool context,
                       struct els *out)
{
	struct tok toks[4096];
	size_t nt = 0;

	/* Tokens: words with \0spc between, \0empty for "", each whitespace
	 * byte of a text its own token, markers their own. */
	for (int w = 0; w < nw; w++) {
		if (w && nt < 4096)
			toks[nt++] = (struct tok){.spc = true};
		bool empty = true;
		for (int i = 0; i < words[w].n; i++)
			if (words[w].s[i].repl || words[w].s[i].text.len)
				empty = false;
		if (empty) {
			if (nt < 4096)
				toks[nt++] = (struct tok){.empty = true};
			continue;
		}
		for (int i = 0; i < words[w].n; i++) {
			const struct seg *s = &words[w].s[i];
			if (s->repl) {
				if (nt < 4096)
					toks[nt++] = (struct tok){.repl = true, .m = s};
				continue;
			}
			size_t a = 0;
			for (size_t k = 0; k <= s->text.len; k++) {
				bool ws = k < s->text.len && pspace((unsigned char)s->text.p[k]);
				if (k == s->text.len || ws) {
					if (k > a && nt < 4096)
						toks[nt++] =
						    (struct tok){.text = {s->text.p + a, k - a, 0}};
					if (ws && nt < 4096)
						toks[nt++] =
						    (struct tok){.text = {s->text.p + k, 1, 0}};
					a = k + 1;
				}
			}
		}
	}
	size_t n = t->n ? t->n : 1;
	if (!context) {
		for (size_t i = 0; i < nt; i++) {
			if (toks[i].spc) {
				push(out, SPC, 0);
			} else if (toks[i].empty) {
				pushs(out, "", 0);
			} else if (!toks[i].repl) {
				pushs(out, toks[i].text.p, toks[i].text.len);
			} else {
				char *space = IGN;
				for (size_t a = 0; a < n; a++) {
					bool normal = false;
					push(out, space, 0);
					eval_marker(t, toks[i].m, a, &normal, out);
					if (!normal)
						break;
					space = SPC;
				}
			}
		}
		return;
	}
	/* Context groups end at " ", "\t", \0spc and the end. */
	size_t gs = 0;
	for (size_t i = 0; i <= nt; i++) {
		bool end = i == nt;
		bool sp = !end && !toks[i].repl && !toks[i].spc && !toks[i].empty &&
		          toks[i].text.len == 1 && toks[i].text.p[0] == ' ';
		bool tab = !end && !toks[i].repl && !toks[i].spc && !toks[i].empty &&
		           toks[i].text.len == 1 && toks[i].text.p[0] == '\t';
		if (!(end || sp || tab || toks[i].spc))
			continue;
		bool has = false;
		for (size_t k = gs; k < i; k++)
			has = has || toks[k].repl;
		if (has) {
			char *space = IGN;
			for (size_t a = 0; a < n; a++) {
				bool normal = false;
				push(out, space, 0);
				for (size_t k = gs; k < i; k++) {
					if (toks[k].repl)
						eval_marker(t, toks[k].m, a, &normal, out);
					else if (toks[k].empty)
						pushs(out, "", 0);
					else
						pushs(out, toks[k].text.p, toks[k].text.len);
				}
				if (!normal)
					break;
				space = SPC;
			}
		} else {
			for (size_t k = gs; k < i; k++) {
				if (toks[k].empty)
					pushs(out, "", 0);
				else
					pushs(out, toks[k].text.p, toks[k].text.len);
			}
		}
		if (!end && (sp || toks[i].spc))
			push(out, toks[i].spc ? SPC : strdup(" "), 1);
		gs = tab ? i : i + 1;
	}
}

/* The quote groups: elements between \0spc, without \0ign and \0noarg. */
struct group {
	struct str s;
	bool any;
};

static size_t ref_groups(const struct els *e, struct group *g, size_t max)
{
	size_t n = 0;
	g[0] = (struct group){0};
	add(&g[0].s, "", 0);
	for (size_t i = 0; i < e->n; i++) {
		const struct el *x = &e->v[i];
		if (x->p == IGN || x->p == NOARG)
			continue;
		if (x->p == SPC) {
			if (n + 1 < max) {
				n++;
				g[n] = (struct group){0};
				add(&g[n].s, "", 0);
			}
			continue;
		}
		add(&g[n].s, x->p, x->len);
		g[n].any = true;
	}
	return n + 1;
}

/* ---------------------------------------------------------------- shell quoting */

/* Undo sh's quoting of a word made of '...' and "'" parts and plain bytes. */
static bool sh_unquote(const char *q, size_t n, struct str *out)
{
	for (size_t i = 0; i < n;) {
		if (q[i] == '\'') {
			const char *e = memchr(q + i + 1, '\'', n - i - 1);
			if (!e)
				return false;
			add(out, q + i + 1, (size_t)(e - q - i - 1));
			i = (size_t)(e - q) + 1;
		} else if (q[i] == '"') {
			if (i + 2 >= n || q[i + 1] != '\'' || q[i + 2] != '"')
				return false;
			add(out, "'", 1);
			i += 3;
		} else {
			unsigned char c = (unsigned char)q[i];
			if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
			    !(c >= '0' && c <= '9') && !strchr("-_.+/", c))
				return false;
			add(out, q + i, 1);
			i++;
		}
	}
	return true;
}

/* ---------------------------------------------------------------- the harness */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum {
		MAX_ARGS = 12
	};
	char *pieces[8 + MAX_ARGS];
	int np = 0;

	if (size < 4 || size > 600)
		return 0; /* larger inputs find nothing new and outgrow the reference's arrays */
	int flags = data[0];
	bool context = flags & 1, noarg = flags & 8;
	int trim = (flags >> 1) & 3;
	int nw = data[3] % 8;
	char *buf = fuzz_cstr(data + 4, size - 4);
	for (char *p = buf, *end = buf + (size - 4);;) {
		if (np == nw + MAX_ARGS)
			break;
		pieces[np++] = p;
		char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z || z == end)
			break;
		p = z + 1;
	}
	if (np < nw)
		nw = np;

	/* template.c */
	struct tmpl *tm = tmpl_compile(pieces, nw, context, NULL, 0);
	if (!tm) {
		/* a {= ... =}: refused, not expanded */
		free(buf);
		return 0;
	}
	struct job j = {.seq = data[1], .noarg = noarg};
	j.nargs = (size_t)(np - nw);
	j.args = pieces + nw;
	size_t lens[MAX_ARGS];
	for (size_t i = 0; i < j.nargs; i++)
		lens[i] = strlen(j.args[i]);
	j.lens = lens;
	unsigned slot = data[2];
	char **av = tmpl_argv(tm, &j, trim, slot);
	struct sbuf line = {0};
	sbuf_add(&line, "", 0);
	tmpl_string(tm, &j, trim, slot, &line);

	/* The reference. */
	static struct word words[9];
	int nwords = nw;
	bool any = false;
	for (int w = 0; w < nw; w++) {
		words[w].n = 1;
		words[w].s[0] = (struct seg){.text = mk(pieces[w], strlen(pieces[w]))};
		for (size_t r = 0; r < sizeof(RPL) / sizeof(RPL[0]); r++)
			rpl_pass(&words[w], (int)r);
		for (int i = 0; i < words[w].n; i++)
			any = any || words[w].s[i].repl;
	}
	if (!any) {
		/* "Add {} if no replacement strings in @command"; no command at
		 * all is the shell-mode template "{}". */
		words[nwords].n = 1;
		words[nwords].s[0] = (struct seg){.text = mk("{}", 2)};
		rpl_pass(&words[nwords], 6);
		nwords++;
	}
	struct task t = {.n = j.nargs, .noarg = noarg, .trim = trim};
	struct str args[MAX_ARGS];
	for (size_t i = 0; i < j.nargs; i++)
		args[i] = mk(j.args[i], lens[i]);
	t.args = args;
	snprintf(t.seq, sizeof(t.seq), "%u", data[1]);
	snprintf(t.slot, sizeof(t.slot), "%u", slot);
	struct els e = {0};
	ref_expand(words, nwords, &t, context, &e);
	static struct group g[8192];
	size_t ng = ref_groups(&e, g, 8192);

	/* argv: the groups that got something (-q mode). */
	size_t k = 0;
	for (size_t i = 0; i < ng; i++) {
		if (!g[i].any)
			continue;
		FUZZ_CHECK(av[k] != NULL, "argv has %zu words, the reference more", k);
		FUZZ_CHECK(strlen(av[k]) == g[i].s.len && !memcmp(av[k], g[i].s.p, g[i].s.len),
		           "word %zu is '%s', GNU parallel's '%s'", k, av[k], g[i].s.p);
		k++;
	}
	FUZZ_CHECK(av[k] == NULL, "argv has more than the reference's %zu words", k);
	/* The string (--tagstring, shell mode): every group, joined by spaces. */
	struct str want = {0};
	add(&want, "", 0);
	for (size_t i = 0; i < ng; i++) {
		if (i)
			add(&want, " ", 1);
		add(&want, g[i].s.p, g[i].s.len);
	}
	FUZZ_CHECK(line.len == want.len && !memcmp(line.p, want.p, want.len),
	           "string '%s', GNU parallel's '%s'", line.p, want.p);

	/* Shell quoting gives the word back through sh, and stays plain when it
	 * can (GNU parallel's exact form is compared in the CLI tests). */
	for (size_t i = 0; av[i]; i++) {
		struct sbuf q = {0};
		struct str back = {0};
		sbuf_add(&q, "", 0);
		shell_quote(av[i], strlen(av[i]), &q);
		add(&back, "", 0);
		FUZZ_CHECK(sh_unquote(q.p, q.len, &back), "quoted '%s' is not sh-safe: %s", av[i],
		           q.p);
		FUZZ_CHECK(!strcmp(back.p, av[i]), "'%s' quoted as %s comes back as '%s'", av[i],
		           q.p, back.p);
		sbuf_free(&q);
		free(back.p);
	}
	/* unquote_printf never grows a string and never reads past it. */
	if (nw) {
		char *u = unquote_printf(pieces[0]);
		FUZZ_CHECK(strlen(u) <= strlen(pieces[0]), "unquote_printf grew '%s'", pieces[0]);
		free(u);
	}

	for (size_t i = 0; i < ng; i++)
		free(g[i].s.p);
	for (size_t i = 0; i < e.n; i++)
		if (e.v[i].p != SPC && e.v[i].p != IGN && e.v[i].p != NOARG)
			free(e.v[i].p);
	free(e.v);
	for (int w = 0; w < nwords; w++)
		for (int i = 0; i < words[w].n; i++)
			free(words[w].s[i].text.p);
	for (size_t i = 0; i < j.nargs; i++)
		free(args[i].p);
	free(want.p);
	sbuf_free(&line);
	free(av);
	tmpl_free(tm);
	free(buf);
	return 0;
}
