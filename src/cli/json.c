/* json.c - see json.h: a validating JSON reader that walks the text in place,
 * and a writer. The reader is fuzzed (tests/fuzz/fuzz_report_read.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---------------------------------------------------------------- checking */

struct checker {
	const char *s, *p, *end;
	const char *why;
};

static bool ck_fail(struct checker *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return false;
}

static void ck_ws(struct checker *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int hex4(const char *p, const char *end)
{
	int v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = (v << 4) | h;
	}
	return v;
}

static bool ck_string(struct checker *c)
{
	c->p++; /* the opening quote */
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return true;
		}
		if (ch < 0x20)
			return ck_fail(c, "control character in a string");
		if (ch != '\\') {
			c->p++;
			continue;
		}
		if (c->end - c->p < 2)
			return ck_fail(c, "unterminated string");
		switch (c->p[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			c->p += 2;
			break;
		case 'u':
			if (hex4(c->p + 2, c->end) < 0)
				return ck_fail(c, "bad \\u escape");
			c->p += 6;
			break;
		default:
			return ck_fail(c, "unknown escape in a string");
		}
	}
	return ck_fail(c, "unterminated string");
}

static bool ck_digits(struct checker *c)
{
	const char *s = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > s;
}

static bool ck_number(struct checker *c)
{
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (!(c->p < c->end && *c->p >= '1' && *c->p <= '9' && ck_digits(c)))
		return ck_fail(c, "expected a value");
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (!ck_digits(c))
			return ck_fail(c, "bad number: no digits after '.'");
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (!ck_digits(c))
			return ck_fail(c, "bad number: no digits in the exponent");
	}
	return true;
}

static bool ck_literal(struct checker *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n))
		return ck_fail(c, "expected a value");
	c->p += n;
	return true;
}

static bool ck_value(struct checker *c, int depth)
{
	ck_ws(c);
	if (c->p >= c->end)
		return ck_fail(c, "unexpected end of line");
	switch (*c->p) {
	case '{':
	case '[': {
		char close = *c->p == '{' ? '}' : ']';
		bool obj = close == '}';
		if (depth >= JSON_MAX_DEPTH)
			return ck_fail(c, "nested too deeply");
		c->p++;
		ck_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return true;
		}
		for (;;) {
			if (obj) {
				ck_ws(c);
				if (c->p >= c->end || *c->p != '"')
					return ck_fail(c, "expected a member name");
				if (!ck_string(c))
					return false;
				ck_ws(c);
				if (c->p >= c->end || *c->p != ':')
					return ck_fail(c, "expected ':'");
				c->p++;
			}
			if (!ck_value(c, depth + 1))
				return false;
			ck_ws(c);
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			if (c->p < c->end && *c->p == close) {
				c->p++;
				return true;
			}
			return ck_fail(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	case '"':
		return ck_string(c);
	case 't':
		return ck_literal(c, "true");
	case 'f':
		return ck_literal(c, "false");
	case 'n':
		return ck_literal(c, "null");
	default:
		return ck_number(c);
	}
}

int json_check(const char *text, size_t len, const char **why, size_t *at)
{
	struct checker c = {text, text, text + len, NULL};

	if (ck_value(&c, 0)) {
		ck_ws(&c);
		if (c.p == c.end)
			return 0;
		ck_fail(&c, "text after the value");
	}
	*why = c.why;
	*at = (size_t)(c.p - text);
	return -EINVAL;
}

/* ---------------------------------------------------------------- walking */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* End of the (checked) value at p. Iterative: depth needs no recursion. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	p = skip_ws(p, end);
	do {
		if (p >= end)
			return end;
		switch (*p) {
		case '{':
		case '[':
			depth++;
			p++;
			break;
		case '}':
		case ']':
			depth--;
			p++;
			break;
		case '"':
			p++;
			while (p < end && *p != '"')
				p += *p == '\\' ? 2 : 1;
			p = p < end ? p + 1 : end;
			break;
		default:
			/* a number, a literal, ',' ':' or whitespace inside a container */
			if (depth == 0) {
				while (p < end && *p != ',' && *p != ']' && *p != '}' &&
				       *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
					p++;
				return p;
			}
			p++;
		}
	} while (depth > 0);
	return p;
}

static struct json_val make_val(const char *p, const char *end)
{
	struct json_val v = {JSON_INVALID, p, p};

	p = skip_ws(p, end);
	v.p = p;
	if (p >= end)
		return v;
	switch (*p) {
	case '{':
		v.type = JSON_OBJECT;
		break;
	case '[':
		v.type = JSON_ARRAY;
		break;
	case '"':
		v.type = JSON_STRING;
		break;
	case 't':
	case 'f':
		v.type = JSON_BOOL;
		break;
	case 'n':
		v.type = JSON_NULL;
		break;
	default:
		v.type = JSON_NUMBER;
	}
	v.end = skip_value(p, end);
	return v;
}

struct json_val json_root(const char *text, size_t len)
{
	return make_val(text, text + len);
}

void json_iter_init(struct json_iter *it, struct json_val container)
{
	it->p = container.p + 1;
	it->end = container.end > container.p ? container.end - 1 : container.p;
	if (container.type != JSON_ARRAY && container.type != JSON_OBJECT)
		it->p = it->end;
}

bool json_iter_next(struct json_iter *it, struct json_val *key, struct json_val *val)
{
	const char *p = skip_ws(it->p, it->end);

	if (p < it->end && *p == ',')
		p = skip_ws(p + 1, it->end);
	if (p >= it->end)
		return false;
	if (key) {
		*key = make_val(p, it->end);
		p = skip_ws(key->end, it->end);
		if (p < it->end && *p == ':')
			p++;
	}
	*val = make_val(p, it->end);
	it->p = val->end;
	return val->type != JSON_INVALID;
}

bool json_string_is(struct json_val v, const char *s)
{
	size_t n = strlen(s);
	const char *p;

	if (v.type != JSON_STRING)
		return false;
	p = v.p + 1;
	/* Member names of records are plain ASCII without escapes; a name
	 * written with escapes is decoded first. */
	if (memchr(p, '\\', (size_t)(v.end - v.p)) == NULL)
		return (size_t)(v.end - v.p) == n + 2 && !memcmp(p, s, n);
	char small[64];
	if ((size_t)(v.end - v.p) > sizeof(small))
		return false;
	size_t len = json_string(v, small);
	return len == n && !memcmp(small, s, n);
}

bool json_member(struct json_val obj, const char *name, struct json_val *val)
{
	struct json_iter it;
	struct json_val k, v;

	val->type = JSON_INVALID;
	if (obj.type != JSON_OBJECT)
		return false;
	json_iter_init(&it, obj);
	while (json_iter_next(&it, &k, &v)) {
		if (json_string_is(k, name)) {
			*val = v;
			return true;
		}
	}
	return false;
}

size_t json_count(struct json_val arr)
{
	struct json_iter it;
	struct json_val v;
	size_t n = 0;

	json_iter_init(&it, arr);
	while (json_iter_next(&it, NULL, &v))
		n++;
	return n;
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

size_t json_string(struct json_val v, char *buf)
{
	const char *p = v.p + 1, *end = v.end > v.p ? v.end - 1 : v.p;
	size_t n = 0;

	if (v.type != JSON_STRING) {
		buf[0] = '\0';
		return 0;
	}
	while (p < end) {
		if (*p != '\\') {
			buf[n++] = *p++;
			continue;
		}
		char e = end - p >= 2 ? p[1] : '\\';
		p += 2;
		switch (e) {
		case 'b':
			buf[n++] = '\b';
			break;
		case 'f':
			buf[n++] = '\f';
			break;
		case 'n':
			buf[n++] = '\n';
			break;
		case 'r':
			buf[n++] = '\r';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case 'u': {
			int u = hex4(p, end);
			if (u < 0) { /* cannot happen in a checked text */
				p = end;
				break;
			}
			p += 4;
			if (u >= 0xd800 && u <= 0xdbff) {
				int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u'
				             ? hex4(p + 2, end)
				             : -1;
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					p += 6;
					n += put_utf8(buf + n, 0x10000 +
					                           (((uint32_t)u - 0xd800) << 10) +
					                           ((uint32_t)lo - 0xdc00));
				} else {
					n += put_utf8(buf + n, 0xfffd);
				}
			} else if (u >= 0xdc80 && u <= 0xdcff) {
				buf[n++] = (char)(u - 0xdc00); /* surrogateescape */
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				n += put_utf8(buf + n, 0xfffd);
			} else {
				n += put_utf8(buf + n, (uint32_t)u);
			}
			break;
		}
		default: /* '"', '\\', '/' */
			buf[n++] = e;
		}
	}
	buf[n] = '\0';
	return n;
}

static bool is_plain_integer(struct json_val v, bool *neg, const char **digits)
{
	const char *p = v.p;

	if (v.type != JSON_NUMBER)
		return false;
	*neg = p < v.end && *p == '-';
	if (*neg)
		p++;
	*digits = p;
	for (const char *q = p; q < v.end; q++)
		if (*q < '0' || *q > '9')
			return false;
	return p < v.end;
}

int json_u64(struct json_val v, uint64_t *out)
{
	const char *d;
	bool neg;
	uint64_t r = 0;

	if (!is_plain_integer(v, &neg, &d))
		return -EINVAL;
	for (; d < v.end; d++) {
		unsigned dig = (unsigned)(*d - '0');
		if (r > (UINT64_MAX - dig) / 10)
			return -ERANGE;
		r = r * 10 + dig;
	}
	if (neg && r)
		return -ERANGE;
	*out = r;
	return 0;
}

int json_i64(struct json_val v, int64_t *out)
{
	const char *d;
	bool neg;
	uint64_t r = 0;

	if (!is_plain_integer(v, &neg, &d))
		return -EINVAL;
	for (; d < v.end; d++) {
		unsigned dig = (unsigned)(*d - '0');
		if (r > ((uint64_t)INT64_MAX + 1 - dig) / 10)
			return -ERANGE;
		r = r * 10 + dig;
	}
	if (!neg && r > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = neg ? (r == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)r) : (int64_t)r;
	return 0;
}

int json_double(struct json_val v, double *out)
{
	char small[128], *buf = small, *e;
	size_t n = (size_t)(v.end - v.p);
	int rc = 0;

	if (v.type != JSON_NUMBER)
		return -EINVAL;
	/* strtod() needs a terminated copy; a number longer than small only
	 * comes from a hostile file, and the line bounds it. */
	if (n >= sizeof(small)) {
		buf = malloc(n + 1);
		if (!buf)
			return -ENOMEM;
	}
	memcpy(buf, v.p, n);
	buf[n] = '\0';
	*out = strtod(buf, &e);
	if (*e)
		rc = -EINVAL;
	if (buf != small)
		free(buf);
	return rc;
}

/* ---------------------------------------------------------------- writing */

void json_out_init(struct json_out *o, FILE *f)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
}

static void before_value(struct json_out *o)
{
	if (o->after_key) {
		o->after_key = false;
		return;
	}
	if (o->need_comma[o->depth])
		fputc(',', o->f);
	o->need_comma[o->depth] = true;
}

static void open_(struct json_out *o, char ch)
{
	before_value(o);
	fputc(ch, o->f);
	if (o->depth < JSON_MAX_DEPTH)
		o->depth++;
	o->need_comma[o->depth] = false;
}

static void close_(struct json_out *o, char ch)
{
	fputc(ch, o->f);
	if (o->depth > 0)
		o->depth--;
}

void json_obj_begin(struct json_out *o)
{
	open_(o, '{');
}

void json_obj_end(struct json_out *o)
{
	close_(o, '}');
}

void json_arr_begin(struct json_out *o)
{
	open_(o, '[');
}

void json_arr_end(struct json_out *o)
{
	close_(o, ']');
}

void json_key(struct json_out *o, const char *key)
{
	before_value(o);
	fputc('"', o->f);
	json_escape(o->f, key, strlen(key));
	fputs("\":", o->f);
	o->after_key = true;
}

/* Length of the valid UTF-8 sequence at s, or 0 (the rules of report.c). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_escape(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc((int)c, f);
			i++;
		} else if (c == '\n') {
			fputs("\\n", f);
			i++;
		} else if (c == '\t') {
			fputs("\\t", f);
			i++;
		} else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
			fprintf(f, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			fputc((int)c, f);
			i++;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n) {
				fwrite(s + i, 1, n, f);
				i += n;
			} else {
				fprintf(f, "\\udc%02x", c);
				i++;
			}
		}
	}
}

void json_str(struct json_out *o, const char *s, size_t len)
{
	before_value(o);
	fputc('"', o->f);
	json_escape(o->f, s, len);
	fputc('"', o->f);
}

void json_cstr(struct json_out *o, const char *s)
{
	if (s)
		json_str(o, s, strlen(s));
	else
		json_null_out(o);
}

void json_u64_out(struct json_out *o, uint64_t v)
{
	before_value(o);
	fprintf(o->f, "%llu", (unsigned long long)v);
}

void json_i64_out(struct json_out *o, int64_t v)
{
	before_value(o);
	fprintf(o->f, "%lld", (long long)v);
}

void json_num_out(struct json_out *o, double v)
{
	before_value(o);
	if (!isfinite(v)) {
		fputs("null", o->f);
		return;
	}
	/* Whole numbers below 2^53 exactly; anything else in the shortest of
	 * %.15g and %.17g that reads back as the same double (%g never writes
	 * a form JSON rejects: no "inf", no leading '.'). */
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		fprintf(o->f, "%.0f", v);
		return;
	}
	char buf[40];
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, o->f);
}

void json_bool_out(struct json_out *o, bool v)
{
	before_value(o);
	fputs(v ? "true" : "false", o->f);
}

void json_null_out(struct json_out *o)
{
	before_value(o);
	fputs("null", o->f);
}

void json_raw(struct json_out *o, const char *text)
{
	before_value(o);
	fputs(text, o->f);
}
