/* template.c - GNU parallel's replacement strings and shell quoting, with
 * exactly GNU parallel's meaning (read from parallel 20221122:
 * CommandLineQueue::new, CommandLine::replace_placeholders, Arg::replace,
 * shell_quote_scalar_default, unquote_printf; File::Basename::dirname).
 *
 * corral runs a task's command without a shell, so its argv is what GNU
 * parallel gives the shell with -q (--quote): every word of the template
 * stays one word, and a replacement string puts its value in as it is.
 * `corral run --dry-run` prints the words quoted as GNU parallel quotes them,
 * so that its output is `parallel -q --dry-run`'s, byte for byte.
 *
 * Replacement strings ("{" BODY "}", BODY holds no brace):
 *   {}  the argument          {.}  without its extension: s:\.[^/.]*$::
 *   {/} its basename: s:.*\/:: (Perl: "." does not match a newline)
 *   {//} its dirname (File::Basename)   {/.}  basename without extension
 *   {#} the task's number     {%}  its job slot
 *   {n} {n.} {n/} {n//} {n/.}  the same of argument n; n < 0 counts from the
 *       end; spaces may follow n ({1 .}); "{0}" is {} (Perl's "0" is false).
 *   {#} and {%} are positional in GNU parallel (their Perl code starts with
 *   "1 "): they give the number when argument 1 exists (always). {n#} reads
 *   as position "n1" (n then that "1"): the number if argument n1 exists,
 *   else nothing. We do the same: a quirk, not a feature.
 * A task's arguments: one per input source, then per --colsep column, then
 * per record with -N. A word is split where a non-positional replacement
 * string meets several arguments: "x{}y" with (a, b) gives the words "xa"
 * and "by" (GNU parallel joins the arguments with unquoted spaces). With -N
 * or -L (GNU parallel's context replace) the part of the word between
 * spaces/tabs that holds the replacement string is repeated per argument
 * instead: "x{}y" gives "xay" "xby". A value is the argument after --trim
 * (--colsep implies --trim lr). Without any replacement string, "{}" is
 * appended as a word of its own.
 *
 * Every function here is pure (no I/O) and is fuzzed against an independent
 * implementation (tests/fuzz/fuzz_argv.c) and compared with GNU parallel
 * itself (tests/cli/test_cli_parallel.py).
 */
#include "cli.h"

enum rkind {
	RK_ARG,        /* {}   */
	RK_NOEXT,      /* {.}  */
	RK_BASE,       /* {/}  */
	RK_DIR,        /* {//} */
	RK_BASE_NOEXT, /* {/.} */
	RK_SEQ,        /* {#}  */
	RK_SLOT,       /* {%}  */
};

enum tok_type {
	TK_TEXT,  /* literal bytes of a word */
	TK_SPACE, /* one ' ' of a word (ends a context group, stays in the word) */
	TK_TAB,   /* one '\t' of a word (ends a context group, starts the next) */
	TK_EMPTY, /* an empty word: one empty argument */
	TK_REPL,  /* a replacement string */
	TK_BREAK, /* between two words of the template */
};

struct tok {
	enum tok_type type;
	const char *s; /* TK_TEXT */
	size_t len;
	enum rkind kind; /* TK_REPL */
	bool positional;
	long long pos; /* as Perl reads the position: 1 = first, -1 = last */
};

struct tmpl {
	struct tok *t;
	size_t n, cap;
	bool context;
	bool uses_slot;
	bool first_varies;
};

#define POS_MAX (1LL << 60)

static bool perl_space(unsigned char c)
{
	/* Perl's \s on bytes: space, \t, \n, \v, \f, \r. */
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static void push(struct tmpl *t, struct tok k)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct tok *nt = realloc(t->t, ncap * sizeof(*nt));
		if (!nt)
			die("out of memory");
		t->t = nt;
		t->cap = ncap;
	}
	t->t[t->n++] = k;
}

static bool parse_suffix(const char *b, size_t n, enum rkind *k)
{
	static const struct {
		const char *s;
		enum rkind k;
	} sfx[] = {{"", RK_ARG},          {".", RK_NOEXT}, {"/", RK_BASE}, {"//", RK_DIR},
	           {"/.", RK_BASE_NOEXT}, {"#", RK_SEQ},   {"%", RK_SLOT}};

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (strlen(sfx[i].s) == n && !memcmp(b, sfx[i].s, n)) {
			*k = sfx[i].k;
			return true;
		}
	}
	return false;
}

/* Perl's numeric value of "-?[0-9]+", saturated (any |n| this large is out
 * of range for every task). */
static long long perl_number(const char *s, size_t n)
{
	bool neg = n && s[0] == '-';
	long long v = 0;

	for (size_t i = neg; i < n; i++) {
		if (v < POS_MAX / 10)
			v = v * 10 + (s[i] - '0');
		else
			v = POS_MAX;
	}
	return neg ? -v : v;
}

/* BODY of "{BODY}": is it a replacement string? */
static bool parse_body(const char *b, size_t n, struct tok *t)
{
	size_t i = 0, j;

	memset(t, 0, sizeof(*t));
	t->type = TK_REPL;
	if (parse_suffix(b, n, &t->kind)) {
		/* {#} and {%}: GNU parallel's Perl code starts with "1 ", which it
		 * then reads as position 1. */
		if (t->kind == RK_SEQ || t->kind == RK_SLOT) {
			t->positional = true;
			t->pos = 1;
		}
		return true;
	}
	if (i < n && b[i] == '-')
		i++;
	j = i;
	while (j < n && b[j] >= '0' && b[j] <= '9')
		j++;
	if (j == i)
		return false;
	size_t numlen = j;
	while (j < n && perl_space((unsigned char)b[j]))
		j++;
	if (!parse_suffix(b + j, n - j, &t->kind))
		return false;
	t->positional = true;
	t->pos = perl_number(b, numlen);
	if (t->kind == RK_SEQ || t->kind == RK_SLOT) {
		/* The position GNU parallel ends up reading for {n#} and {n%}:
		 * the digits of n followed by the "1" of their Perl code. */
		long long a = t->pos < 0 ? -t->pos : t->pos;
		a = a < POS_MAX / 10 ? a * 10 + 1 : POS_MAX;
		t->pos = t->pos < 0 || b[0] == '-' ? -a : a;
	} else if (numlen == 1 && b[0] == '0') {
		/* "0" is false in Perl: {0}, {0.} ... are the non-positional forms. */
		t->positional = false;
		t->pos = 0;
	}
	return true;
}

static void push_text(struct tmpl *t, const char *w, size_t from, size_t to)
{
	if (to > from)
		push(t, (struct tok){.type = TK_TEXT, .s = w + from, .len = to - from});
}

static void tokenize_word(struct tmpl *t, const char *w)
{
	size_t len = strlen(w), i = 0, text = 0;

	if (len == 0) {
		push(t, (struct tok){.type = TK_EMPTY});
		return;
	}
	while (i < len) {
		if (w[i] == '{') {
			size_t k = i + 1;
			struct tok r;
			while (k < len && w[k] != '}' && w[k] != '{')
				k++;
			if (k < len && w[k] == '}' && parse_body(w + i + 1, k - i - 1, &r)) {
				push_text(t, w, text, i);
				push(t, r);
				i = k + 1;
				text = i;
				continue;
			}
		} else if (w[i] == ' ' || w[i] == '\t') {
			push_text(t, w, text, i);
			push(t, (struct tok){
			            .type = w[i] == ' ' ? TK_SPACE : TK_TAB, .s = w + i, .len = 1});
			text = ++i;
			continue;
		}
		i++;
	}
	push_text(t, w, text, len);
}

static struct tmpl *compile(char *const *words, int n, bool context, bool append_brace, char *err,
                            size_t errlen)
{
	static char *const shell[] = {"{}"};
	static char append[] = "{}";
	struct tmpl *t = calloc(1, sizeof(*t));
	bool any = false;

	if (!t)
		die("out of memory");
	if (!words || n == 0) {
		words = shell;
		n = 1;
	}
	/* {= perl expression =}: GNU parallel evaluates it; we cannot. */
	for (int i = 0; i < n; i++) {
		const char *open = strstr(words[i], "{=");
		if (!open)
			continue;
		bool closed = strstr(open + 2, "=}") != NULL;
		for (int k = i + 1; k < n && !closed; k++)
			closed = strstr(words[k], "=}") != NULL;
		if (closed) {
			snprintf(
			    err, errlen,
			    "'%s': corral does not evaluate GNU parallel's {= perl expression =}",
			    words[i]);
			tmpl_free(t);
			return NULL;
		}
	}
	t->context = context;
	for (int i = 0; i < n; i++) {
		size_t before = t->n;
		if (i)
			push(t, (struct tok){.type = TK_BREAK});
		tokenize_word(t, words[i]);
		for (size_t k = before; k < t->n; k++) {
			if (t->t[k].type != TK_REPL)
				continue;
			any = true;
			if (i == 0)
				t->first_varies = true;
			if (t->t[k].kind == RK_SLOT)
				t->uses_slot = true;
		}
	}
	if (!any && append_brace) {
		push(t, (struct tok){.type = TK_BREAK});
		tokenize_word(t, append);
	}
	return t;
}

struct tmpl *tmpl_compile(char *const *words, int n, bool context, char *err, size_t errlen)
{
	return compile(words, n, context, true, err, errlen);
}

struct tmpl *tmpl_compile_tag(char *s, bool context, char *err, size_t errlen)
{
	char *w[] = {s};

	return compile(w, 1, context, false, err, errlen);
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	free(t->t);
	free(t);
}

bool tmpl_uses_slot(const struct tmpl *t)
{
	return t && t->uses_slot;
}

bool tmpl_command_varies(const struct tmpl *t)
{
	return t && t->first_varies;
}

/* ---------------------------------------------------------------- values */

void rpl_trim(const char **s, size_t *len, int trim)
{
	if (trim & TRIM_LEFT)
		while (*len && perl_space((unsigned char)**s))
			(*s)++, (*len)--;
	if (trim & TRIM_RIGHT)
		while (*len && perl_space((unsigned char)(*s)[*len - 1]))
			(*len)--;
}

void rpl_basename(const char *s, size_t len, struct sbuf *out)
{
	/* s:.*\/:: - the leftmost match of .*\/ where "." is any byte but a
	 * newline: in the first line (of the newline-separated ones) holding a
	 * '/', from its start to its last '/'. Only that one is removed. */
	for (size_t ls = 0; ls <= len;) {
		size_t le = ls, k;
		while (le < len && s[le] != '\n')
			le++;
		for (k = le; k > ls && s[k - 1] != '/'; k--)
			;
		if (k > ls) {
			sbuf_add(out, s, ls);
			sbuf_add(out, s + k, len - k);
			return;
		}
		ls = le + 1;
	}
	sbuf_add(out, s, len);
}

void rpl_noext(const char *s, size_t len, struct sbuf *out)
{
	/* s:\.[^/.]*$:: - only the last '.' can start a match ([^/.] cannot
	 * pass another one), and it does unless a '/' follows it ($ would need
	 * the end, or the newline that ends the string, and [^/.]* takes that
	 * newline too). */
	size_t dot = len;

	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == '.') {
			dot = i - 1;
			break;
		}
	}
	if (dot < len && !memchr(s + dot, '/', len - dot)) {
		sbuf_add(out, s, dot);
		return;
	}
	sbuf_add(out, s, len);
}

/* File::Basename::fileparse on Unix: m{^(.*\/)?(.*)}s, "./" when no '/'. */
static void fileparse(const char *s, size_t len, const char **dir, size_t *dlen, size_t *blen)
{
	size_t k = len;

	while (k > 0 && s[k - 1] != '/')
		k--;
	if (k == 0) {
		*dir = "./";
		*dlen = 2;
	} else {
		*dir = s;
		*dlen = k;
	}
	*blen = len - k;
}

/* _strip_trailing_sep: s{(.)/+\z}{$1}s - trailing slashes, keeping one byte. */
static void strip_sep(size_t *len, const char *s)
{
	while (*len > 1 && s[*len - 1] == '/')
		(*len)--;
}

void rpl_dirname(const char *s, size_t len, struct sbuf *out)
{
	const char *dir;
	size_t dlen, blen;

	fileparse(s, len, &dir, &dlen, &blen);
	strip_sep(&dlen, dir);
	if (blen == 0) {
		size_t b2;
		fileparse(dir, dlen, &dir, &dlen, &b2);
		strip_sep(&dlen, dir);
	}
	sbuf_add(out, dir, dlen);
}

void shell_quote(const char *s, size_t len, struct sbuf *out)
{
	static const char safe[] = "-_.+/";
	bool plain = true;

	if (len == 0) {
		sbuf_add(out, "''", 2);
		return;
	}
	for (size_t i = 0; i < len && plain; i++) {
		unsigned char c = (unsigned char)s[i];
		plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || (c && strchr(safe, c));
	}
	if (plain) {
		sbuf_add(out, s, len);
		return;
	}
	/* '...' with each ' as '"'"', then a leading '' and a trailing '' go. */
	struct sbuf q = {0};
	sbuf_addc(&q, '\'');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'')
			sbuf_add(&q, "'\"'\"'", 5);
		else
			sbuf_addc(&q, s[i]);
	}
	sbuf_addc(&q, '\'');
	const char *p = q.p;
	size_t n = q.len;
	if (n >= 2 && p[0] == '\'' && p[1] == '\'')
		p += 2, n -= 2;
	if (n >= 2 && p[n - 1] == '\'' && p[n - 2] == '\'')
		n -= 2;
	sbuf_add(out, p, n);
	sbuf_free(&q);
}

/* One pass of unquote_printf: s/\\(\d{ndig})/sprintf "\\$1"/ge. Perl reads
 * "\DDD" in a string as an octal escape of the leading [0-7] digits (at most
 * three); a code above 255 is printed as UTF-8; "\8" is just "8". */
static void octal_pass(struct sbuf *in, size_t ndig)
{
	struct sbuf out = {0};
	size_t i = 0;

	sbuf_add(&out, "", 0);
	while (i < in->len) {
		bool match = in->p[i] == '\\' && i + ndig < in->len;
		for (size_t k = 1; match && k <= ndig; k++)
			match = in->p[i + k] >= '0' && in->p[i + k] <= '9';
		if (!match) {
			sbuf_addc(&out, in->p[i++]);
			continue;
		}
		const char *d = in->p + i + 1;
		size_t o = 0;
		unsigned v = 0;
		while (o < ndig && d[o] >= '0' && d[o] <= '7')
			v = v * 8 + (unsigned)(d[o++] - '0');
		if (o == 0) {
			sbuf_addc(&out, d[0]); /* "\8": the backslash goes */
			o = 1;
		} else if (v <= 0xff) {
			sbuf_addc(&out, (char)v);
		} else {
			sbuf_addc(&out, (char)(0xc0 | (v >> 6)));
			sbuf_addc(&out, (char)(0x80 | (v & 0x3f)));
		}
		sbuf_add(&out, d + o, ndig - o);
		i += 1 + ndig;
	}
	sbuf_free(in);
	*in = out;
}

char *unquote_printf(const char *s)
{
	static const char pairs[][2] = {{'t', '\t'}, {'n', '\n'}, {'r', '\r'}};
	struct sbuf b = {0};

	sbuf_add(&b, s, strlen(s));
	for (size_t p = 0; p < 3; p++) {
		struct sbuf out = {0};
		sbuf_add(&out, "", 0);
		for (size_t i = 0; i < b.len; i++) {
			if (b.p[i] == '\\' && i + 1 < b.len && b.p[i + 1] == pairs[p][0]) {
				sbuf_addc(&out, pairs[p][1]);
				i++;
			} else {
				sbuf_addc(&out, b.p[i]);
			}
		}
		sbuf_free(&b);
		b = out;
	}
	octal_pass(&b, 3);
	octal_pass(&b, 1);
	return b.p;
}

/* ---------------------------------------------------------------- expansion */

/* The words being built: groups of bytes separated by breaks. A group is
 * "filled" when some piece (maybe empty) went into it: GNU parallel's -q
 * drops groups that got nothing (an argument of -N 0), keeps '' ones. */
struct exp {
	struct sbuf text; /* the groups' bytes, each followed by a NUL */
	size_t *start;
	bool *filled;
	size_t n, cap;
	size_t cur;
	bool cur_filled;
	/* for the values */
	const struct job *job;
	int trim;
	char seq[24], slot[24];
};

static void piece(struct exp *e, const char *s, size_t n)
{
	sbuf_add(&e->text, s, n);
	e->cur_filled = true;
}

static void brk(struct exp *e)
{
	if (e->n == e->cap) {
		size_t ncap = e->cap ? e->cap * 2 : 16;
		size_t *ns = realloc(e->start, ncap * sizeof(*ns));
		bool *nf = ns ? realloc(e->filled, ncap * sizeof(*nf)) : NULL;
		if (!ns || !nf)
			die("out of memory");
		e->start = ns;
		e->filled = nf;
		e->cap = ncap;
	}
	e->start[e->n] = e->cur;
	e->filled[e->n] = e->cur_filled;
	e->n++;
	sbuf_addc(&e->text, '\0');
	e->cur = e->text.len;
	e->cur_filled = false;
}

static void value(struct exp *e, const struct tok *t, size_t argi)
{
	const struct job *j = e->job;

	if (t->kind == RK_SEQ) {
		piece(e, e->seq, strlen(e->seq));
		return;
	}
	if (t->kind == RK_SLOT) {
		piece(e, e->slot, strlen(e->slot));
		return;
	}
	if (j->noarg)
		return; /* -N 0: no argument is inserted */
	const char *s = j->nargs ? j->args[argi] : "";
	size_t len = j->nargs ? j->lens[argi] : 0;
	rpl_trim(&s, &len, e->trim);
	e->cur_filled = true;
	switch (t->kind) {
	case RK_NOEXT:
		rpl_noext(s, len, &e->text);
		break;
	case RK_BASE:
		rpl_basename(s, len, &e->text);
		break;
	case RK_DIR:
		rpl_dirname(s, len, &e->text);
		break;
	case RK_BASE_NOEXT: {
		struct sbuf b = {0};
		sbuf_add(&b, "", 0);
		rpl_basename(s, len, &b);
		rpl_noext(b.p, b.len, &e->text);
		sbuf_free(&b);
		break;
	}
	default:
		sbuf_add(&e->text, s, len);
	}
}

/* Perl's $argref->[$pos > 0 ? $pos-1 : $n+$pos], negative indexes counting
 * from the end once more. */
static bool resolve(long long pos, size_t n, size_t *idx)
{
	long long i = pos > 0 ? pos - 1 : (long long)n + pos;

	if (i < 0)
		i += (long long)n;
	if (i < 0 || i >= (long long)n)
		return false;
	*idx = (size_t)i;
	return true;
}

static size_t nargs(const struct exp *e)
{
	return e->job->nargs ? e->job->nargs : 1; /* no argument: one empty one */
}

static void positional(struct exp *e, const struct tok *t)
{
	size_t idx;

	if (resolve(t->pos, nargs(e), &idx))
		value(e, t, idx);
	else
		piece(e, "", 0);
}

static void literal(struct exp *e, const struct tok *t)
{
	piece(e, t->s, t->type == TK_EMPTY ? 0 : t->len);
}

/* A context group (-N/-L): tokens [a, b) of one word between spaces/tabs. */
static void context_group(struct exp *e, const struct tok *t, size_t a, size_t b)
{
	bool repl = false, normal = false;

	for (size_t k = a; k < b; k++) {
		if (t[k].type == TK_REPL) {
			repl = true;
			normal = normal || !t[k].positional;
		}
	}
	if (!repl) {
		for (size_t k = a; k < b; k++)
			literal(e, &t[k]);
		return;
	}
	for (size_t i = 0; i < nargs(e); i++) {
		if (i)
			brk(e);
		for (size_t k = a; k < b; k++) {
			if (t[k].type != TK_REPL)
				literal(e, &t[k]);
			else if (t[k].positional)
				positional(e, &t[k]);
			else
				value(e, &t[k], i);
		}
		if (!normal)
			break;
	}
}

static void expand(const struct tmpl *t, const struct job *j, int trim, unsigned slot,
                   struct exp *e)
{
	memset(e, 0, sizeof(*e));
	sbuf_add(&e->text, "", 0);
	e->job = j;
	e->trim = trim;
	snprintf(e->seq, sizeof(e->seq), "%llu", (unsigned long long)j->seq);
	snprintf(e->slot, sizeof(e->slot), "%u", slot);
	for (size_t w = 0; w < t->n;) {
		size_t end = w;
		while (end < t->n && t->t[end].type != TK_BREAK)
			end++;
		if (t->context) {
			size_t gs = w;
			for (size_t k = w; k <= end; k++) {
				enum tok_type ty = k < end ? t->t[k].type : TK_BREAK;
				if (ty != TK_SPACE && ty != TK_TAB && ty != TK_BREAK)
					continue;
				context_group(e, t->t, gs, k);
				if (ty == TK_SPACE)
					literal(e, &t->t[k]);
				gs = ty == TK_TAB ? k : k + 1;
			}
		} else {
			for (size_t k = w; k < end; k++) {
				const struct tok *tk = &t->t[k];
				if (tk->type != TK_REPL) {
					literal(e, tk);
				} else if (tk->positional) {
					positional(e, tk);
				} else {
					for (size_t i = 0; i < nargs(e); i++) {
						if (i)
							brk(e);
						value(e, tk, i);
					}
				}
			}
		}
		if (end < t->n)
			brk(e);
		w = end + 1;
	}
	brk(e);
}

static void exp_free(struct exp *e)
{
	sbuf_free(&e->text);
	free(e->start);
	free(e->filled);
}

char **tmpl_argv(const struct tmpl *t, const struct job *j, int trim, unsigned slot)
{
	struct exp e;
	size_t n = 0, bytes = 0;

	expand(t, j, trim, slot, &e);
	for (size_t i = 0; i < e.n; i++) {
		if (!e.filled[i])
			continue;
		n++;
		bytes += strlen(e.text.p + e.start[i]) + 1;
	}
	char **av = malloc((n + 1) * sizeof(char *) + bytes);
	if (!av)
		die("out of memory");
	char *p = (char *)(av + n + 1);
	size_t k = 0;
	for (size_t i = 0; i < e.n; i++) {
		if (!e.filled[i])
			continue;
		size_t l = strlen(e.text.p + e.start[i]) + 1;
		memcpy(p, e.text.p + e.start[i], l);
		av[k++] = p;
		p += l;
	}
	av[n] = NULL;
	exp_free(&e);
	return av;
}

void tmpl_string(const struct tmpl *t, const struct job *j, int trim, unsigned slot,
                 struct sbuf *out)
{
	struct exp e;

	expand(t, j, trim, slot, &e);
	for (size_t i = 0; i < e.n; i++) {
		if (i)
			sbuf_addc(out, ' ');
		sbuf_add(out, e.text.p + e.start[i], strlen(e.text.p + e.start[i]));
	}
	exp_free(&e);
}
