/* fuzz_report.c - corral_report_result(): one JSON Lines record of a result
 * with a fuzzed command (argv of arbitrary bytes), sentence and numbers.
 *
 * Input layout: a HEADER_SIZE-byte header with the numeric fields (zero-padded
 * when the input is shorter, see read_header()), then NUL-separated pieces:
 * every piece but the last is an argv word, the last one is the sentence.
 *
 * The record is written into a memfd and checked with a small strict JSON
 * parser written here: exactly one line, valid UTF-8, valid JSON (RFC 8259
 * grammar), the expected keys in order, and every value equal to the input:
 * strings are decoded back to bytes (\udcXX -> the byte 0xXX, Python's
 * "surrogateescape") and compared byte for byte, integers exactly, times to
 * within the %.6f rounding.
 */
#include <errno.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral.h"
#include "fuzz.h"

/* ---------------------------------------------------------------- a strict JSON parser */

enum jtype {
	J_NULL,
	J_BOOL,
	J_NUM,
	J_STR,
	J_ARR,
	J_OBJ
};

struct jv {
	enum jtype t;
	bool b;
	const char *num; /* J_NUM: the number's text (not terminated) */
	size_t num_len;
	char *s; /* J_STR: decoded bytes (NUL-terminated for convenience) */
	size_t slen;
	struct jv *items; /* J_ARR, J_OBJ (values) */
	struct jv *keys;  /* J_OBJ: J_STR keys */
	size_t n;
};

struct jp {
	const char *p, *end;
	const char *err;
};

static void jv_free(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jv_free(&v->items[i]);
		if (v->keys)
			jv_free(&v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
}

static void ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool fail(struct jp *j, const char *why)
{
	if (!j->err)
		j->err = why;
	return false;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string, decoded with surrogateescape: a lone \udc80-\udcff is that byte. */
static bool parse_string(struct jp *j, struct jv *v)
{
	if (j->p >= j->end || *j->p != '"')
		return fail(j, "expected a string");
	j->p++;
	/* Decoding never grows the text. */
	char *o = malloc((size_t)(j->end - j->p) + 1);
	size_t n = 0;
	if (!o)
		abort();
	v->t = J_STR;
	v->s = o;
	for (;;) {
		if (j->p >= j->end)
			return fail(j, "unterminated string");
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20)
			return fail(j, "raw control character in a string");
		if (c != '\\') {
			o[n++] = (char)c;
			j->p++;
			continue;
		}
		if (j->end - j->p < 2)
			return fail(j, "truncated escape");
		char e = j->p[1];
		j->p += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			o[n++] = e;
			break;
		case 'b':
			o[n++] = '\b';
			break;
		case 'f':
			o[n++] = '\f';
			break;
		case 'n':
			o[n++] = '\n';
			break;
		case 'r':
			o[n++] = '\r';
			break;
		case 't':
			o[n++] = '\t';
			break;
		case 'u': {
			int u = j->end - j->p >= 4 ? hex4(j->p) : -1;
			if (u < 0)
				return fail(j, "bad \\u escape");
			j->p += 4;
			if (u >= 0xd800 && u <= 0xdbff) {
				int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u'
				             ? hex4(j->p + 2)
				             : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(j, "lone high surrogate");
				j->p += 6;
				n += put_utf8(o + n, 0x10000 + (((uint32_t)u - 0xd800) << 10) +
				                         ((uint32_t)lo - 0xdc00));
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				/* surrogateescape: only \udc80-\udcff stand for bytes */
				if (u < 0xdc80 || u > 0xdcff)
					return fail(j, "lone surrogate outside \\udc80-\\udcff");
				o[n++] = (char)(u - 0xdc00);
			} else {
				n += put_utf8(o + n, (uint32_t)u);
			}
			break;
		}
		default:
			return fail(j, "unknown escape");
		}
	}
	o[n] = '\0';
	v->slen = n;
	return true;
}

static bool digits(struct jp *j)
{
	const char *s = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

static bool parse_number(struct jp *j, struct jv *v)
{
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0') {
		j->p++;
	} else if (j->p < j->end && *j->p >= '1' && *j->p <= '9') {
		digits(j);
	} else {
		return fail(j, "bad number");
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!digits(j))
			return fail(j, "bad fraction");
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!digits(j))
			return fail(j, "bad exponent");
	}
	v->t = J_NUM;
	v->num = s;
	v->num_len = (size_t)(j->p - s);
	return true;
}

static bool literal(struct jp *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
		return fail(j, "bad literal");
	j->p += n;
	return true;
}

static bool parse_value(struct jp *j, struct jv *v, int depth);

static bool push(struct jv *v, size_t *cap)
{
	if (v->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		v->items = realloc(v->items, *cap * sizeof(*v->items));
		if (!v->items)
			abort();
		if (v->t == J_OBJ) {
			v->keys = realloc(v->keys, *cap * sizeof(*v->keys));
			if (!v->keys)
				abort();
		}
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	if (v->t == J_OBJ)
		memset(&v->keys[v->n], 0, sizeof(v->keys[0]));
	v->n++;
	return true;
}

static bool parse_container(struct jp *j, struct jv *v, int depth, bool obj)
{
	size_t cap = 0;

	v->t = obj ? J_OBJ : J_ARR;
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
		j->p++;
		return true;
	}
	for (;;) {
		push(v, &cap);
		if (obj) {
			ws(j);
			if (!parse_string(j, &v->keys[v->n - 1]))
				return false;
			ws(j);
			if (j->p >= j->end || *j->p != ':')
				return fail(j, "expected ':'");
			j->p++;
		}
		if (!parse_value(j, &v->items[v->n - 1], depth + 1))
			return false;
		ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
			j->p++;
			return true;
		}
		return fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static bool parse_value(struct jp *j, struct jv *v, int depth)
{
	if (depth > 8)
		return fail(j, "too deep");
	ws(j);
	if (j->p >= j->end)
		return fail(j, "expected a value");
	switch (*j->p) {
	case '{':
		return parse_container(j, v, depth, true);
	case '[':
		return parse_container(j, v, depth, false);
	case '"':
		return parse_string(j, v);
	case 't':
		v->t = J_BOOL;
		v->b = true;
		return literal(j, "true");
	case 'f':
		v->t = J_BOOL;
		v->b = false;
		return literal(j, "false");
	case 'n':
		v->t = J_NULL;
		return literal(j, "null");
	default:
		return parse_number(j, v);
	}
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const unsigned char *s, size_t len, size_t *bad)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc0 && c < 0xe0) {
			n = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c < 0xf0) {
			n = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c < 0xf8) {
			n = 4, cp = c & 0x07, min = 0x10000;
		} else {
			*bad = i;
			return false;
		}
		if (i + n > len) {
			*bad = i;
			return false;
		}
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				*bad = i;
				return false;
			}
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*bad = i;
			return false;
		}
		i += n;
	}
	return true;
}

/* ---------------------------------------------------------------- the input */

#define HEADER_SIZE 106

struct reader {
	const uint8_t *p;
	size_t left;
};

static void take(struct reader *r, void *dst, size_t n)
{
	size_t k = n < r->left ? n : r->left;

	memset(dst, 0, n);
	memcpy(dst, r->p, k);
	r->p += k;
	r->left -= k;
}

#define TAKE(r, var) take((r), &(var), sizeof(var))

struct input {
	corral_result_t r;
	corral_oom_victim_t victim;
	corral_sample_t tl[3];
	bool no_command;
	char **words;
	size_t nw;
	char *buf;
};

static void read_input(const uint8_t *data, size_t size, struct input *in)
{
	struct reader rd = {data, size < HEADER_SIZE ? size : HEADER_SIZE};
	corral_result_t *r = &in->r;
	uint8_t flags, outcome;
	int32_t i32;

	memset(in, 0, sizeof(*in));
	TAKE(&rd, r->seq);                    /* 8 */
	TAKE(&rd, r->attempt);                /* 4 */
	TAKE(&rd, flags);                     /* 1 */
	TAKE(&rd, outcome);                   /* 1 */
	TAKE(&rd, i32), r->status = i32;      /* 4 */
	TAKE(&rd, i32), r->exit_code = i32;   /* 4 */
	TAKE(&rd, i32), r->signal = i32;      /* 4 */
	TAKE(&rd, i32), r->pid = i32;         /* 4 */
	TAKE(&rd, r->memory_max);             /* 8 */
	TAKE(&rd, r->memory_peak);            /* 8 */
	TAKE(&rd, r->oom_kills);              /* 8 */
	TAKE(&rd, i32), r->spawn_errno = i32; /* 4 */
	TAKE(&rd, r->start_time);             /* 8 */
	TAKE(&rd, r->wall_s);                 /* 8 */
	TAKE(&rd, r->user_s);                 /* 8 */
	TAKE(&rd, r->sys_s);                  /* 8 */
	TAKE(&rd, r->out.len);                /* 8 */
	TAKE(&rd, r->err.len);                /* 8 = 106 */
	TAKE(&rd, r->out.lost);
	TAKE(&rd, r->err.lost);
	r->final = flags & 1;
	r->own_limit_hit = flags & 2;
	r->pids_limit_hit = flags & 4;
	r->seccomp_kill = flags & 8;
	in->no_command = flags & 16;
	/* Two values past the last outcome: the record must say "?". */
	r->outcome = (corral_outcome_t)(outcome % (CORRAL_OUTCOME_COUNT + 2));

	/* The rest: argv words and the sentence, separated by NULs. */
	size_t rest = size > HEADER_SIZE ? size - HEADER_SIZE : 0;
	in->buf = fuzz_cstr(data + (size - rest), rest);
	in->words = calloc(rest + 2, sizeof(char *));
	if (!in->words)
		abort();
	char *p = in->buf, *end = in->buf + rest;
	for (;;) {
		char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z || z == end)
			break;
		in->words[in->nw++] = p;
		p = z + 1;
	}
	snprintf(r->sentence, sizeof(r->sentence), "%s", p);
	r->spawn_step = (flags & 32) || in->nw == 0 ? NULL : in->words[0];
	/* Seeing memory (optional keys): stalls and a timeline with flag 64, an
	 * OOM victim named by the first word (any bytes, up to 15) with 128. */
	r->memory_stall_some = r->memory_stall_full = -1;
	if (flags & 64) {
		r->memory_stall_some = isfinite(r->wall_s) ? fabs(r->wall_s) / 2 : 1;
		r->memory_stall_full = r->memory_stall_some / 2;
		for (int k = 0; k < 3; k++) {
			in->tl[k].t = (double)k * 0.125;
			in->tl[k].bytes = r->memory_peak >> (2 - k);
		}
		r->timeline = in->tl;
		r->n_timeline = 3;
		r->timeline_peak = 2;
	}
	if ((flags & 128) && in->nw > 0) {
		in->victim.pid = r->pid > 0 ? r->pid : 1;
		snprintf(in->victim.comm, sizeof(in->victim.comm), "%s", in->words[0]);
		in->victim.anon_rss = r->memory_peak;
		in->victim.detailed = flags & 1;
		r->oom_victims = &in->victim;
		r->n_oom_victims = 1;
		if (in->nw > 1)
			snprintf(r->oom_memcg, sizeof(r->oom_memcg), "%s", in->words[1]);
	}
}

/* ---------------------------------------------------------------- the checks */

static const struct jv *field(const struct jv *obj, size_t *i, const char *key)
{
	FUZZ_CHECK(*i < obj->n, "missing key %s (only %zu keys)", key, obj->n);
	FUZZ_CHECK(!strcmp(obj->keys[*i].s, key), "key %zu is '%s', expected '%s'", *i,
	           obj->keys[*i].s, key);
	return &obj->items[(*i)++];
}

static void check_str(const struct jv *v, const char *want, const char *what)
{
	FUZZ_CHECK(v->t == J_STR, "%s: not a string", what);
	FUZZ_CHECK(v->slen == strlen(want) && !memcmp(v->s, want, v->slen),
	           "%s: decodes to '%s' (%zu bytes), expected '%s' (%zu bytes)", what, v->s,
	           v->slen, want, strlen(want));
}

static void check_bool(const struct jv *v, bool want, const char *what)
{
	FUZZ_CHECK(v->t == J_BOOL && v->b == want, "%s: expected %s", what,
	           want ? "true" : "false");
}

static void check_null(const struct jv *v, const char *what)
{
	FUZZ_CHECK(v->t == J_NULL, "%s: expected null", what);
}

static void num_text(const struct jv *v, char *buf, size_t size, const char *what)
{
	FUZZ_CHECK(v->t == J_NUM, "%s: not a number", what);
	FUZZ_CHECK(v->num_len < size, "%s: number of %zu characters", what, v->num_len);
	memcpy(buf, v->num, v->num_len);
	buf[v->num_len] = '\0';
}

static void check_u64(const struct jv *v, uint64_t want, const char *what)
{
	char buf[64], *end;

	num_text(v, buf, sizeof(buf), what);
	errno = 0;
	unsigned long long got = strtoull(buf, &end, 10);
	FUZZ_CHECK(*end == '\0' && errno == 0 && buf[0] != '-' && got == want,
	           "%s: '%s', expected %llu", what, buf, (unsigned long long)want);
}

static void check_int(const struct jv *v, long long want, const char *what)
{
	char buf[64], *end;

	num_text(v, buf, sizeof(buf), what);
	errno = 0;
	long long got = strtoll(buf, &end, 10);
	FUZZ_CHECK(*end == '\0' && errno == 0 && got == want, "%s: '%s', expected %lld", what, buf,
	           want);
}

static void check_int_or_null(const struct jv *v, long long want, bool is_null, const char *what)
{
	if (is_null)
		check_null(v, what);
	else
		check_int(v, want, what);
}

static void check_size(const struct jv *v, uint64_t want, bool zero_is_null, const char *what)
{
	if (want == CORRAL_UNLIMITED || (zero_is_null && want == 0))
		check_null(v, what);
	else
		check_u64(v, want, what);
}

static void check_time(const struct jv *v, double want, const char *what)
{
	char *buf, *end;

	if (!isfinite(want)) {
		check_null(v, what);
		return;
	}
	FUZZ_CHECK(v->t == J_NUM, "%s: not a number", what);
	buf = strndup(v->num, v->num_len);
	if (!buf)
		abort();
	double got = strtod(buf, &end);
	FUZZ_CHECK(*end == '\0', "%s: '%s'", what, buf);
	/* %.6f rounds to 6 decimals; large values are printed exactly. */
	FUZZ_CHECK(fabs(got - want) <= 5e-7 + fabs(want) * 1e-15, "%s: '%s', expected %.17g", what,
	           buf, want);
	free(buf);
}

static void check_record(const char *line, size_t len, const struct input *in)
{
	const corral_result_t *r = &in->r;
	struct jp j = {line, line + len, NULL};
	struct jv root;
	size_t i = 0;

	memset(&root, 0, sizeof(root));
	bool ok = parse_value(&j, &root, 0);
	if (ok) {
		ws(&j);
		if (j.p != j.end)
			ok = fail(&j, "text after the value");
	}
	FUZZ_CHECK(ok, "invalid JSON (%s) at offset %zu of: %.*s", j.err, (size_t)(j.p - line),
	           (int)len, line);
	FUZZ_CHECK(root.t == J_OBJ, "not an object");

	check_u64(field(&root, &i, "seq"), r->seq, "seq");
	check_u64(field(&root, &i, "attempt"), r->attempt, "attempt");
	check_bool(field(&root, &i, "final"), r->final, "final");
	const char *oname = corral_outcome_name(r->outcome);
	check_str(field(&root, &i, "outcome"), oname ? oname : "?", "outcome");
	check_int_or_null(field(&root, &i, "status"), r->status, r->status < 0, "status");
	check_int_or_null(field(&root, &i, "exit_code"), r->exit_code, r->exit_code < 0,
	                  "exit_code");
	check_int_or_null(field(&root, &i, "signal"), r->signal, r->signal <= 0, "signal");
	check_int_or_null(field(&root, &i, "pid"), r->pid, r->pid <= 0, "pid");
	const struct jv *cmd = field(&root, &i, "command");
	if (in->no_command) {
		check_null(cmd, "command");
	} else {
		FUZZ_CHECK(cmd->t == J_ARR && cmd->n == in->nw, "command: %zu words, expected %zu",
		           cmd->n, in->nw);
		for (size_t k = 0; k < in->nw; k++)
			check_str(&cmd->items[k], in->words[k], "command word");
	}
	check_size(field(&root, &i, "memory_max"), r->memory_max, false, "memory_max");
	check_size(field(&root, &i, "memory_peak"), r->memory_peak, true, "memory_peak");
	check_u64(field(&root, &i, "oom_kills"), r->oom_kills, "oom_kills");
	check_bool(field(&root, &i, "own_limit_hit"), r->own_limit_hit, "own_limit_hit");
	check_bool(field(&root, &i, "pids_limit_hit"), r->pids_limit_hit, "pids_limit_hit");
	check_bool(field(&root, &i, "seccomp_kill"), r->seccomp_kill, "seccomp_kill");
	if (r->outcome == CORRAL_SPAWN_ERROR) {
		const struct jv *se = field(&root, &i, "spawn_error");
		size_t k = 0;
		FUZZ_CHECK(se->t == J_OBJ, "spawn_error: not an object");
		check_str(field(se, &k, "step"), r->spawn_step ? r->spawn_step : "spawn",
		          "spawn_error.step");
		check_int(field(se, &k, "errno"), r->spawn_errno, "spawn_error.errno");
		check_str(field(se, &k, "message"), strerror(r->spawn_errno),
		          "spawn_error.message");
		FUZZ_CHECK(k == se->n, "spawn_error: %zu keys", se->n);
	}
	check_time(field(&root, &i, "start_time"), r->start_time, "start_time");
	check_time(field(&root, &i, "wall_time"), r->wall_s, "wall_time");
	check_time(field(&root, &i, "user_time"), r->user_s, "user_time");
	check_time(field(&root, &i, "system_time"), r->sys_s, "system_time");
	check_u64(field(&root, &i, "stdout_bytes"), r->out.len, "stdout_bytes");
	check_u64(field(&root, &i, "stderr_bytes"), r->err.len, "stderr_bytes");
	check_u64(field(&root, &i, "stdout_lost_bytes"), r->out.lost, "stdout_lost_bytes");
	check_u64(field(&root, &i, "stderr_lost_bytes"), r->err.lost, "stderr_lost_bytes");
	if (r->memory_stall_some >= 0 && r->attempt > 0) {
		check_time(field(&root, &i, "memory_stall_some"), r->memory_stall_some,
		           "memory_stall_some");
		check_time(field(&root, &i, "memory_stall_full"), r->memory_stall_full,
		           "memory_stall_full");
	}
	if (r->n_oom_victims) {
		const struct jv *vs = field(&root, &i, "oom_victims");
		FUZZ_CHECK(vs->t == J_ARR && vs->n == 1, "oom_victims");
		size_t k = 0;
		const struct jv *v = &vs->items[0];
		FUZZ_CHECK(v->t == J_OBJ, "oom_victims[0]");
		check_int(field(v, &k, "pid"), r->oom_victims[0].pid, "victim pid");
		check_str(field(v, &k, "comm"), r->oom_victims[0].comm, "victim comm");
		if (r->oom_victims[0].detailed) {
			check_u64(field(v, &k, "total_vm"), 0, "total_vm");
			check_u64(field(v, &k, "anon_rss"), r->oom_victims[0].anon_rss, "anon_rss");
			check_u64(field(v, &k, "file_rss"), 0, "file_rss");
			check_u64(field(v, &k, "shmem_rss"), 0, "shmem_rss");
			check_int(field(v, &k, "oom_score_adj"), 0, "oom_score_adj");
		}
		FUZZ_CHECK(k == v->n, "victim: %zu keys", v->n);
		if (r->oom_memcg[0])
			check_str(field(&root, &i, "oom_memcg"), r->oom_memcg, "oom_memcg");
	}
	if (r->n_timeline) {
		const struct jv *tl = field(&root, &i, "memory_timeline");
		size_t k = 0;
		FUZZ_CHECK(tl->t == J_OBJ, "memory_timeline");
		const struct jv *t = field(tl, &k, "t"), *cur = field(tl, &k, "current");
		FUZZ_CHECK(t->t == J_ARR && t->n == 3 && cur->t == J_ARR && cur->n == 3, "arrays");
		for (size_t q = 0; q < 3; q++)
			check_u64(&cur->items[q], r->timeline[q].bytes, "current");
		check_u64(field(tl, &k, "peak_index"), 2, "peak_index");
		FUZZ_CHECK(k == tl->n, "memory_timeline: %zu keys", tl->n);
	}
	check_str(field(&root, &i, "sentence"), r->sentence, "sentence");
	FUZZ_CHECK(i == root.n, "%zu keys, expected %zu", root.n, i);
	jv_free(&root);
}

static int out_fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	struct stat st;

	if (out_fd < 0) {
		out_fd = memfd_create("fuzz-report", MFD_CLOEXEC);
		FUZZ_CHECK(out_fd >= 0, "memfd_create: %s", strerror(errno));
	}
	FUZZ_CHECK(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0, "reset memfd");

	read_input(data, size, &in);
	int rc = corral_report_result(out_fd, &in.r,
	                              in.no_command ? NULL : (const char *const *)in.words);
	FUZZ_CHECK(rc == 0, "corral_report_result: %d", rc);

	FUZZ_CHECK(fstat(out_fd, &st) == 0 && st.st_size > 0, "empty record");
	size_t len = (size_t)st.st_size;
	char *out = malloc(len + 1);
	if (!out)
		abort();
	FUZZ_CHECK(pread(out_fd, out, len, 0) == (ssize_t)len, "read back the record");
	out[len] = '\0';

	/* One line: a single '\n', at the end. */
	FUZZ_CHECK(out[len - 1] == '\n', "record does not end with a newline");
	char *nl = memchr(out, '\n', len);
	FUZZ_CHECK(nl == out + len - 1, "newline at offset %zu of %zu", (size_t)(nl - out), len);
	FUZZ_CHECK(memchr(out, '\0', len) == NULL, "NUL byte in the record");
	size_t bad = 0;
	FUZZ_CHECK(valid_utf8((const unsigned char *)out, len, &bad),
	           "invalid UTF-8 at offset %zu: %.*s", bad, (int)len, out);

	check_record(out, len - 1, &in);

	free(out);
	free(in.words);
	free(in.buf);
	return 0;
}
