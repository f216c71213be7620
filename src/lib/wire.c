/* wire.c - encoder and decoder of the head <-> worker protocol (wire.h).
 *
 * Every message type is described by one table of fields (tag, kind, where
 * it lives in the struct, bounds); encoding, decoding, freeing and comparing
 * all walk those tables, so the rules are written once. The decoder assumes
 * nothing of its input: each field's header is checked against the bytes
 * left before it is read, each value against its kind's width and its
 * bounds, and nothing is allocated for a field before its bytes are known to
 * be there.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "wire.h"

enum kind {
	K_BOOL = 1,
	K_U8,
	K_U32,
	K_I32,
	K_U64,
	K_F64,
	K_STR,   /* char[max]: at most max-1 bytes, no NUL */
	K_BYTES, /* struct corral__wire_bytes, at most max bytes */
	K_STRV,  /* struct corral__wire_strv, repeated tag, at most max elements */
};

struct field {
	uint8_t tag;
	uint8_t kind;
	bool required;
	uint16_t offset; /* in the message struct */
	uint32_t max;    /* K_STR: array size; K_BYTES: bytes; K_STRV: elements */
	const char *name;
};

#define F(type, member, tag_, kind_, req, max_)                                                    \
	{                                                                                          \
		.tag = (tag_), .kind = (kind_), .required = (req),                                 \
		.offset = (uint16_t)offsetof(struct corral__wire_##type, member), .max = (max_),   \
		.name = #member                                                                    \
	}
#define S(type, member, tag_)                                                                      \
	F(type, member, tag_, K_STR, false, sizeof(((struct corral__wire_##type *)0)->member))

static const struct field hello_fields[] = {
    F(hello, proto_min, 1, K_U32, true, 0),
    F(hello, proto_max, 2, K_U32, true, 0),
    S(hello, version, 3),
    S(hello, node, 4),
    F(hello, cpus, 5, K_U32, false, 0),
    F(hello, cpus_affinity, 6, K_U32, false, 0),
    F(hello, memory_total, 7, K_U64, false, 0),
    F(hello, cgroup_mode, 8, K_U8, false, 0),
    S(hello, provider, 9),
    F(hello, memory_limits, 10, K_BOOL, false, 0),
    S(hello, kernel, 11),
    F(hello, pid, 12, K_I32, false, 0),
};

static const struct field config_fields[] = {
    F(config, proto, 1, K_U32, true, 0),
    F(config, jobs, 2, K_U32, true, 0),
    F(config, memory_max, 3, K_U64, false, 0),
    F(config, swap_max, 4, K_U64, false, 0),
    F(config, pids_max, 5, K_U64, false, 0),
    F(config, cpus, 6, K_F64, false, 0),
    F(config, timeout_ns, 7, K_U64, false, 0),
    F(config, kill_grace_ns, 8, K_U64, false, 0),
    F(config, oom_group, 9, K_BOOL, false, 0),
    F(config, allow_subprocess_oom, 10, K_BOOL, false, 0),
    F(config, seccomp, 11, K_U8, false, 0),
    F(config, seccomp_profile, 12, K_BYTES, false, CORRAL_WIRE_MAX_PROFILE),
    F(config, allow_ptrace, 13, K_BOOL, false, 0),
    F(config, no_new_privs, 14, K_BOOL, false, 0),
    F(config, no_network, 15, K_BOOL, false, 0),
    S(config, user, 16),
    F(config, core_dumps, 17, K_BOOL, false, 0),
    F(config, cgroup_ns, 18, K_BOOL, false, 0),
    F(config, capture_max, 19, K_U64, false, 0),
    F(config, heartbeat_ms, 20, K_U32, true, 0),
    F(config, heartbeat_misses, 21, K_U32, true, 0),
    F(config, timeline, 22, K_BOOL, false, 0),
    F(config, allow_io_uring, 23, K_BOOL, false, 0),
    F(config, pid_ns, 24, K_BOOL, false, 0),
};

static const struct field ready_fields[] = {
    F(ready, jobs, 1, K_U32, true, 0),
    F(ready, memory_limits, 2, K_BOOL, false, 0),
    S(ready, notice, 3),
};

static const struct field run_fields[] = {
    F(run, id, 1, K_U64, true, 0),
    F(run, seq, 2, K_U64, false, 0),
    F(run, attempt, 3, K_U32, false, 0),
    F(run, memory_max, 4, K_U64, false, 0),
    F(run, argv, 5, K_STRV, true, CORRAL_WIRE_MAX_ARGS),
};

static const struct field started_fields[] = {
    F(started, id, 1, K_U64, true, 0),
    F(started, pid, 2, K_I32, false, 0),
    F(started, start_time, 3, K_F64, false, 0),
};

static const struct field output_fields[] = {
    F(output, id, 1, K_U64, true, 0),
    F(output, stream, 2, K_U8, true, 0),
    F(output, offset, 3, K_U64, true, 0),
    F(output, data, 4, K_BYTES, true, CORRAL_WIRE_MAX_CHUNK),
};

static const struct field result_fields[] = {
    F(result, id, 1, K_U64, true, 0),
    F(result, outcome, 2, K_U8, true, 0),
    F(result, exit_code, 3, K_I32, false, 0),
    F(result, signal, 4, K_I32, false, 0),
    F(result, status, 5, K_I32, false, 0),
    F(result, pid, 6, K_I32, false, 0),
    F(result, oom_kills, 7, K_U64, false, 0),
    F(result, own_limit_hit, 8, K_BOOL, false, 0),
    F(result, memory_max, 9, K_U64, false, 0),
    F(result, memory_peak, 10, K_U64, false, 0),
    F(result, pids_limit_hit, 11, K_BOOL, false, 0),
    F(result, seccomp_kill, 12, K_BOOL, false, 0),
    F(result, spawn_errno, 13, K_I32, false, 0),
    S(result, spawn_step, 14),
    F(result, start_time, 15, K_F64, false, 0),
    F(result, wall_s, 16, K_F64, false, 0),
    F(result, user_s, 17, K_F64, false, 0),
    F(result, sys_s, 18, K_F64, false, 0),
    F(result, out_len, 19, K_U64, false, 0),
    F(result, out_lost, 20, K_U64, false, 0),
    F(result, err_len, 21, K_U64, false, 0),
    F(result, err_lost, 22, K_U64, false, 0),
    S(result, node, 23),
    S(result, sentence, 24),
    S(result, oom_memcg, 25),
    F(result, memory_stall_some, 26, K_F64, false, 0),
    F(result, memory_stall_full, 27, K_F64, false, 0),
    F(result, oom_victims, 28, K_BYTES, false, CORRAL_WIRE_MAX_VICTIMS *CORRAL_WIRE_VICTIM_SIZE),
    F(result, timeline, 29, K_BYTES, false, CORRAL_WIRE_MAX_SAMPLES *CORRAL_WIRE_SAMPLE_SIZE),
    F(result, timeline_peak, 30, K_U32, false, 0),
};

static const struct field kill_fields[] = {
    F(kill, id, 1, K_U64, true, 0),
    F(kill, reason, 2, K_U8, true, 0),
};

static const struct field heartbeat_fields[] = {
    F(heartbeat, seq, 1, K_U64, true, 0),
    F(heartbeat, mono_ns, 2, K_U64, false, 0),
};

static const struct field error_fields[] = {
    F(error, code, 1, K_I32, true, 0),
    S(error, message, 2),
};

#undef S
#undef F

static const struct {
	const char *name;
	const struct field *fields;
	size_t n;
} types[WIRE_TYPE_MAX + 1] = {
    [WIRE_HELLO] = {"HELLO", hello_fields, ARRAY_SIZE(hello_fields)},
    [WIRE_CONFIG] = {"CONFIG", config_fields, ARRAY_SIZE(config_fields)},
    [WIRE_READY] = {"READY", ready_fields, ARRAY_SIZE(ready_fields)},
    [WIRE_RUN] = {"RUN", run_fields, ARRAY_SIZE(run_fields)},
    [WIRE_STARTED] = {"STARTED", started_fields, ARRAY_SIZE(started_fields)},
    [WIRE_OUTPUT] = {"OUTPUT", output_fields, ARRAY_SIZE(output_fields)},
    [WIRE_RESULT] = {"RESULT", result_fields, ARRAY_SIZE(result_fields)},
    [WIRE_KILL] = {"KILL", kill_fields, ARRAY_SIZE(kill_fields)},
    [WIRE_QUIT] = {"QUIT", NULL, 0},
    [WIRE_HEARTBEAT] = {"HEARTBEAT", heartbeat_fields, ARRAY_SIZE(heartbeat_fields)},
    [WIRE_ERROR] = {"ERROR", error_fields, ARRAY_SIZE(error_fields)},
};

const char *corral__wire_type_name(unsigned type)
{
	return type >= 1 && type <= WIRE_TYPE_MAX ? types[type].name : "?";
}

static bool known_type(unsigned type)
{
	return type >= 1 && type <= WIRE_TYPE_MAX;
}

void corral__wire_msg_init(struct corral__wire_msg *m, unsigned type)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint8_t)type;
}

static void *at(const void *base, const struct field *f)
{
	return (char *)base + f->offset;
}

void corral__wire_msg_free(struct corral__wire_msg *m)
{
	if (!known_type(m->type))
		return;
	for (size_t i = 0; i < types[m->type].n; i++) {
		const struct field *f = &types[m->type].fields[i];
		if (f->kind == K_BYTES) {
			struct corral__wire_bytes *b = at(&m->u, f);
			free(b->data);
		} else if (f->kind == K_STRV) {
			struct corral__wire_strv *v = at(&m->u, f);
			free(v->v);
		}
	}
	unsigned type = m->type;
	corral__wire_msg_init(m, type);
}

bool corral__wire_msg_equal(const struct corral__wire_msg *a, const struct corral__wire_msg *b)
{
	if (a->type != b->type)
		return false;
	if (!known_type(a->type))
		return true;
	for (size_t i = 0; i < types[a->type].n; i++) {
		const struct field *f = &types[a->type].fields[i];
		const void *x = at(&a->u, f), *y = at(&b->u, f);
		switch (f->kind) {
		case K_BOOL:
			if (*(const bool *)x != *(const bool *)y)
				return false;
			break;
		case K_U8:
			if (*(const uint8_t *)x != *(const uint8_t *)y)
				return false;
			break;
		case K_U32:
		case K_I32:
			if (memcmp(x, y, 4))
				return false;
			break;
		case K_U64:
			if (memcmp(x, y, 8))
				return false;
			break;
		case K_F64: {
			/* Bit patterns: 0.0 and -0.0 differ on the wire too. */
			uint64_t p, q;
			memcpy(&p, x, 8);
			memcpy(&q, y, 8);
			if (p != q)
				return false;
			break;
		}
		case K_STR:
			if (strcmp(x, y))
				return false;
			break;
		case K_BYTES: {
			const struct corral__wire_bytes *p = x, *q = y;
			if (p->len != q->len || (p->len && memcmp(p->data, q->data, p->len)))
				return false;
			break;
		}
		case K_STRV: {
			const struct corral__wire_strv *p = x, *q = y;
			if (p->n != q->n)
				return false;
			for (uint32_t k = 0; k < p->n; k++)
				if (strcmp(p->v[k], q->v[k]))
					return false;
			break;
		}
		}
	}
	return true;
}

/* ---------------------------------------------------------------- rules */

static int bad(corral_error_t *err, int code, unsigned type, const char *what, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(corral_error_t *err, int code, unsigned type, const char *what, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, what);
	vsnprintf(msg, sizeof(msg), what, ap);
	va_end(ap);
	return corral__err(err, code, "%s message: %s", corral__wire_type_name(type), msg);
}

/* The value rules of each message, beyond each field's kind and size. The
 * same on both sides: an encoder never sends what a decoder would refuse. */
static int check_values(const struct corral__wire_msg *m, int code, corral_error_t *err)
{
	const unsigned t = m->type;

	switch (t) {
	case WIRE_HELLO: {
		const struct corral__wire_hello *h = &m->u.hello;
		if (h->proto_min < 1 || h->proto_min > h->proto_max)
			return bad(err, code, t, "protocol range %u..%u is empty", h->proto_min,
			           h->proto_max);
		if (h->cgroup_mode > CORRAL_CG_V2)
			return bad(err, code, t, "unknown cgroup_mode %u", h->cgroup_mode);
		break;
	}
	case WIRE_CONFIG: {
		const struct corral__wire_config *c = &m->u.config;
		if (c->proto < 1)
			return bad(err, code, t, "protocol version 0");
		if (c->jobs < 1 || c->jobs > 100000)
			return bad(err, code, t, "jobs %u is not within 1..100000", c->jobs);
		if (c->cpus < 0)
			return bad(err, code, t, "cpus %g is negative", c->cpus);
		if (c->seccomp > WIRE_SECCOMP_PROFILE)
			return bad(err, code, t, "unknown seccomp mode %u", c->seccomp);
		if (c->seccomp == WIRE_SECCOMP_PROFILE && c->seccomp_profile.len == 0)
			return bad(err, code, t, "seccomp mode 2 without a profile");
		if (c->heartbeat_ms < 10 || c->heartbeat_ms > 600000)
			return bad(err, code, t, "heartbeat_ms %u is not within 10..600000",
			           c->heartbeat_ms);
		if (c->heartbeat_misses < 2 || c->heartbeat_misses > 10000)
			return bad(err, code, t, "heartbeat_misses %u is not within 2..10000",
			           c->heartbeat_misses);
		break;
	}
	case WIRE_RUN:
		if (m->u.run.argv.n < 1)
			return bad(err, code, t, "no argv");
		break;
	case WIRE_OUTPUT: {
		const struct corral__wire_output *o = &m->u.output;
		if (o->stream != WIRE_STDOUT && o->stream != WIRE_STDERR)
			return bad(err, code, t, "unknown stream %u", o->stream);
		if (o->offset > UINT64_MAX - o->data.len)
			return bad(err, code, t, "offset %llu + length overflows",
			           (unsigned long long)o->offset);
		break;
	}
	case WIRE_RESULT: {
		const struct corral__wire_result *r = &m->u.result;
		if (r->outcome >= CORRAL_OUTCOME_COUNT)
			return bad(err, code, t, "unknown outcome %u", r->outcome);
		if (r->outcome == CORRAL_LOST)
			return bad(err, code, t, "outcome lost, which only a head decides");
		if (r->wall_s < 0 || r->user_s < 0 || r->sys_s < 0)
			return bad(err, code, t, "a negative time");
		if (r->memory_stall_some < -1 || r->memory_stall_full < -1)
			return bad(err, code, t, "a memory stall below -1");
		if (r->oom_victims.len % CORRAL_WIRE_VICTIM_SIZE)
			return bad(err, code, t, "oom_victims of %zu bytes, not a multiple of %u",
			           r->oom_victims.len, CORRAL_WIRE_VICTIM_SIZE);
		if (r->timeline.len % CORRAL_WIRE_SAMPLE_SIZE)
			return bad(err, code, t, "timeline of %zu bytes, not a multiple of %u",
			           r->timeline.len, CORRAL_WIRE_SAMPLE_SIZE);
		if (r->timeline.len &&
		    r->timeline_peak >= r->timeline.len / CORRAL_WIRE_SAMPLE_SIZE)
			return bad(err, code, t, "timeline_peak %u beyond the timeline",
			           r->timeline_peak);
		break;
	}
	case WIRE_KILL:
		if (m->u.kill.reason != WIRE_KILL_ABORT && m->u.kill.reason != WIRE_KILL_TIMEOUT)
			return bad(err, code, t, "unknown kill reason %u", m->u.kill.reason);
		break;
	case WIRE_ERROR:
		if (m->u.error.code < 0)
			return bad(err, code, t, "negative errno %d", m->u.error.code);
		break;
	default:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- encoding */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int buf_reserve(struct corral__wire_buf *b, size_t more)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->cap - b->len >= more)
		return 0;
	if (b->off) {
		/* Reclaim what was sent before growing. */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= more)
			return 0;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	uint8_t *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

/* Width of a field's value, or the bytes of a string/blob element. */
static size_t field_size(const struct field *f, const void *v, uint32_t k)
{
	switch (f->kind) {
	case K_BOOL:
	case K_U8:
		return 1;
	case K_U32:
	case K_I32:
		return 4;
	case K_U64:
	case K_F64:
		return 8;
	case K_STR:
		return strnlen(v, f->max);
	case K_BYTES:
		return ((const struct corral__wire_bytes *)v)->len;
	case K_STRV:
		return strlen(((const struct corral__wire_strv *)v)->v[k]);
	}
	return 0;
}

/* Is field f of the message to be sent valid as a value of its kind? */
static int check_field_out(unsigned type, const struct field *f, const void *v, corral_error_t *err)
{
	switch (f->kind) {
	case K_BOOL: {
		uint8_t raw;
		memcpy(&raw, v, 1);
		if (raw > 1)
			return bad(err, EINVAL, type, "%s is not a bool", f->name);
		break;
	}
	case K_F64:
		if (!isfinite(*(const double *)v))
			return bad(err, EINVAL, type, "%s is not finite", f->name);
		break;
	case K_STR:
		if (strnlen(v, f->max) >= f->max)
			return bad(err, EINVAL, type, "%s is not NUL-terminated within %u bytes",
			           f->name, f->max);
		break;
	case K_BYTES: {
		const struct corral__wire_bytes *b = v;
		if (b->len > f->max)
			return bad(err, EINVAL, type, "%s has %zu bytes, more than %u", f->name,
			           b->len, f->max);
		if (b->len && !b->data)
			return bad(err, EINVAL, type, "%s has no data", f->name);
		break;
	}
	case K_STRV: {
		const struct corral__wire_strv *s = v;
		if (s->n > f->max)
			return bad(err, EINVAL, type, "%s has %u elements, more than %u", f->name,
			           s->n, f->max);
		for (uint32_t k = 0; k < s->n; k++)
			if (!s->v || !s->v[k])
				return bad(err, EINVAL, type, "%s[%u] is NULL", f->name, k);
		break;
	}
	default:
		break;
	}
	return 0;
}

int corral__wire_encode(struct corral__wire_buf *b, const struct corral__wire_msg *m,
                        corral_error_t *err)
{
	const unsigned t = m->type;
	uint64_t payload = 0;
	int rc;

	if (!known_type(t))
		return corral__err(err, EINVAL, "cannot encode message type %u", t);
	/* First pass: check everything and size the payload. */
	for (size_t i = 0; i < types[t].n; i++) {
		const struct field *f = &types[t].fields[i];
		const void *v = at(&m->u, f);
		rc = check_field_out(t, f, v, err);
		if (rc < 0)
			return rc;
		uint32_t count = f->kind == K_STRV ? ((const struct corral__wire_strv *)v)->n : 1;
		for (uint32_t k = 0; k < count; k++)
			payload += 5 + field_size(f, v, k);
	}
	rc = check_values(m, EINVAL, err);
	if (rc < 0)
		return rc;
	if (payload > CORRAL_WIRE_MAX_PAYLOAD)
		return corral__err(
		    err, EMSGSIZE, "%s message of %llu bytes exceeds the %u-byte frame limit",
		    types[t].name, (unsigned long long)payload, CORRAL_WIRE_MAX_PAYLOAD);
	size_t total = CORRAL_WIRE_HEADER + (size_t)payload + 1;
	if (buf_reserve(b, total) < 0)
		return corral__err(err, ENOMEM, "encode a %s message", types[t].name);

	/* Second pass: write. */
	uint8_t *p = b->data + b->len;
	memcpy(p, CORRAL_WIRE_MAGIC, 3);
	p[3] = CORRAL_WIRE_FRAME_VERSION;
	p[4] = (uint8_t)t;
	put32(p + 5, (uint32_t)payload);
	p += CORRAL_WIRE_HEADER;
	for (size_t i = 0; i < types[t].n; i++) {
		const struct field *f = &types[t].fields[i];
		const void *v = at(&m->u, f);
		uint32_t count = f->kind == K_STRV ? ((const struct corral__wire_strv *)v)->n : 1;
		for (uint32_t k = 0; k < count; k++) {
			size_t n = field_size(f, v, k);
			p[0] = f->tag;
			put32(p + 1, (uint32_t)n);
			p += 5;
			switch (f->kind) {
			case K_BOOL:
			case K_U8:
				memcpy(p, v, 1);
				break;
			case K_U32:
			case K_I32: {
				uint32_t x;
				memcpy(&x, v, 4);
				put32(p, x);
				break;
			}
			case K_U64:
			case K_F64: {
				uint64_t x;
				memcpy(&x, v, 8);
				put64(p, x);
				break;
			}
			case K_STR:
				memcpy(p, v, n);
				break;
			case K_BYTES:
				if (n)
					memcpy(p, ((const struct corral__wire_bytes *)v)->data, n);
				break;
			case K_STRV:
				memcpy(p, ((const struct corral__wire_strv *)v)->v[k], n);
				break;
			}
			p += n;
		}
	}
	*p++ = '\n';
	b->len += total;
	return 0;
}

ssize_t corral__wire_buf_flush(struct corral__wire_buf *b, int fd)
{
	size_t done = 0;

	while (b->off < b->len) {
		ssize_t n = write(fd, b->data + b->off, b->len - b->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && done)
				break;
			return -errno;
		}
		b->off += (size_t)n;
		done += (size_t)n;
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	return (ssize_t)done;
}

void corral__wire_buf_free(struct corral__wire_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- decoding */

/* Check the 9-byte header; *plen gets the payload length. */
static int check_header(const uint8_t *h, uint32_t *plen, corral_error_t *err)
{
	if (memcmp(h, CORRAL_WIRE_MAGIC, 3) != 0)
		return corral__err(err, EPROTO,
		                   "not a corral frame: it starts with bytes %02x %02x %02x, not "
		                   "\"CRL\"",
		                   h[0], h[1], h[2]);
	if (h[3] != CORRAL_WIRE_FRAME_VERSION)
		return corral__err(err, EPROTO, "frame format version %u (this corral reads %u)",
		                   h[3], CORRAL_WIRE_FRAME_VERSION);
	if (!known_type(h[4]))
		return corral__err(err, EPROTO, "unknown message type %u", h[4]);
	*plen = get32(h + 5);
	if (*plen > CORRAL_WIRE_MAX_PAYLOAD)
		return corral__err(err, EPROTO, "%s message of %u bytes exceeds the %u-byte limit",
		                   types[h[4]].name, *plen, CORRAL_WIRE_MAX_PAYLOAD);
	return 0;
}

static const struct field *find_field(unsigned type, uint8_t tag)
{
	for (size_t i = 0; i < types[type].n; i++)
		if (types[type].fields[i].tag == tag)
			return &types[type].fields[i];
	return NULL;
}

int corral__wire_decode(const uint8_t *frame, size_t len, struct corral__wire_msg *m,
                        corral_error_t *err)
{
	uint32_t plen;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len < CORRAL_WIRE_HEADER + 1)
		return corral__err(err, EPROTO, "a frame of %zu bytes is shorter than a header",
		                   len);
	rc = check_header(frame, &plen, err);
	if (rc < 0)
		return rc;
	if (len != CORRAL_WIRE_HEADER + (size_t)plen + 1)
		return corral__err(err, EPROTO, "frame of %zu bytes, its header says %zu", len,
		                   CORRAL_WIRE_HEADER + (size_t)plen + 1);
	if (frame[len - 1] != '\n')
		return corral__err(err, EPROTO,
		                   "%s frame does not end with a newline (byte %02x): the stream "
		                   "is out of step",
		                   types[frame[4]].name, frame[len - 1]);
	const unsigned t = frame[4];
	const uint8_t *p = frame + CORRAL_WIRE_HEADER, *end = p + plen;
	uint64_t seen = 0; /* bit i: field i of the table was present (tables have <= 64) */
	uint32_t strv_n = 0;
	size_t strv_bytes = 0;
	const struct field *strv_f = NULL;

	m->type = (uint8_t)t;
	/* Pass 1: walk the fields; check framing, sizes and repetition; fill
	 * the fixed-size ones; count the repeated strings. */
	while (p < end) {
		if ((size_t)(end - p) < 5) {
			rc = bad(err, EPROTO, t, "a field header is cut (%zu bytes left)",
			         (size_t)(end - p));
			goto fail;
		}
		uint8_t tag = p[0];
		uint32_t n = get32(p + 1);
		p += 5;
		if (n > (size_t)(end - p)) {
			rc = bad(err, EPROTO, t, "field %u claims %u bytes, %zu are left", tag, n,
			         (size_t)(end - p));
			goto fail;
		}
		const struct field *f = find_field(t, tag);
		if (!f) { /* a newer peer's field: skip it */
			p += n;
			continue;
		}
		uint64_t bit = 1ull << (f - types[t].fields);
		if ((seen & bit) && f->kind != K_STRV) {
			rc = bad(err, EPROTO, t, "field %s (%u) appears twice", f->name, tag);
			goto fail;
		}
		seen |= bit;
		void *v = at(&m->u, f);
		size_t want = f->kind == K_BOOL || f->kind == K_U8   ? 1
		              : f->kind == K_U32 || f->kind == K_I32 ? 4
		              : f->kind == K_U64 || f->kind == K_F64 ? 8
		                                                     : 0;
		if (want && n != want) {
			rc =
			    bad(err, EPROTO, t, "field %s has %u bytes, not %zu", f->name, n, want);
			goto fail;
		}
		switch (f->kind) {
		case K_BOOL:
			if (p[0] > 1) {
				rc = bad(err, EPROTO, t, "field %s is %u, not a bool", f->name,
				         p[0]);
				goto fail;
			}
			*(bool *)v = p[0] == 1;
			break;
		case K_U8:
			*(uint8_t *)v = p[0];
			break;
		case K_U32:
		case K_I32: {
			uint32_t x = get32(p);
			memcpy(v, &x, 4);
			break;
		}
		case K_U64:
			*(uint64_t *)v = get64(p);
			break;
		case K_F64: {
			uint64_t x = get64(p);
			double d;
			memcpy(&d, &x, 8);
			if (!isfinite(d)) {
				rc =
				    bad(err, EPROTO, t, "field %s is not a finite number", f->name);
				goto fail;
			}
			*(double *)v = d;
			break;
		}
		case K_STR:
			if (n >= f->max || memchr(p, '\0', n)) {
				rc = bad(err, EPROTO, t,
				         n >= f->max ? "field %s is longer than %u bytes"
				                     : "field %s contains a NUL byte",
				         f->name, f->max - 1);
				goto fail;
			}
			memcpy(v, p, n);
			((char *)v)[n] = '\0';
			break;
		case K_BYTES:
			if (n > f->max) {
				rc = bad(err, EPROTO, t, "field %s has %u bytes, more than %u",
				         f->name, n, f->max);
				goto fail;
			}
			break; /* copied in pass 2 */
		case K_STRV:
			if (strv_n >= f->max) {
				rc = bad(err, EPROTO, t, "more than %u %s fields", f->max, f->name);
				goto fail;
			}
			if (memchr(p, '\0', n)) {
				rc = bad(err, EPROTO, t, "%s %u contains a NUL byte", f->name,
				         strv_n);
				goto fail;
			}
			strv_f = f;
			strv_n++;
			strv_bytes += n + 1;
			break;
		}
		p += n;
	}
	for (size_t i = 0; i < types[t].n; i++) {
		if (types[t].fields[i].required && !(seen & (1ull << i))) {
			rc = bad(err, EPROTO, t, "required field %s (%u) is missing",
			         types[t].fields[i].name, types[t].fields[i].tag);
			goto fail;
		}
	}
	/* Pass 2: the variable-size fields, now that their sizes are known
	 * (bounded by the payload, itself bounded). */
	if (strv_f) {
		struct corral__wire_strv *sv = at(&m->u, strv_f);
		sv->v = malloc(((size_t)strv_n + 1) * sizeof(char *) + strv_bytes);
		if (!sv->v) {
			rc = corral__err(err, ENOMEM, "decode a %s message", types[t].name);
			goto fail;
		}
		char *s = (char *)(sv->v + strv_n + 1);
		sv->n = 0;
		for (p = frame + CORRAL_WIRE_HEADER; p < end;) {
			uint32_t n = get32(p + 1);
			if (p[0] == strv_f->tag) {
				memcpy(s, p + 5, n);
				s[n] = '\0';
				sv->v[sv->n++] = s;
				s += n + 1;
			}
			p += 5 + n;
		}
		sv->v[sv->n] = NULL;
	}
	for (p = frame + CORRAL_WIRE_HEADER; p < end;) {
		uint32_t n = get32(p + 1);
		const struct field *f = find_field(t, p[0]);
		if (f && f->kind == K_BYTES && n) {
			struct corral__wire_bytes *b = at(&m->u, f);
			b->data = malloc(n);
			if (!b->data) {
				rc = corral__err(err, ENOMEM, "decode a %s message", types[t].name);
				goto fail;
			}
			memcpy(b->data, p + 5, n);
			b->len = n;
		}
		p += 5 + n;
	}
	rc = check_values(m, EPROTO, err);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	corral__wire_msg_free(m);
	return rc;
}

/* ---------------------------------------------------------------- reader */

#define READ_CHUNK (64u << 10)
#define READER_MAX (CORRAL_WIRE_MAX_FRAME + READ_CHUNK)

void corral__wire_reader_init(struct corral__wire_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void corral__wire_reader_free(struct corral__wire_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* Room for at least want more bytes (never beyond READER_MAX in all). */
static int reader_room(struct corral__wire_reader *r, size_t want)
{
	if (r->off) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len + want > READER_MAX)
		return -EMSGSIZE;
	if (r->cap - r->len >= want)
		return 0;
	size_t cap = r->cap ? r->cap : READ_CHUNK;
	while (cap - r->len < want)
		cap *= 2;
	if (cap > READER_MAX)
		cap = READER_MAX;
	uint8_t *b = realloc(r->buf, cap);
	if (!b)
		return -ENOMEM;
	r->buf = b;
	r->cap = cap;
	return 0;
}

ssize_t corral__wire_reader_fill(struct corral__wire_reader *r, int fd)
{
	/* The caller takes every whole frame out after each fill, so what is
	 * held is less than one frame: READ_CHUNK more always fits. */
	int rc = reader_room(r, READ_CHUNK);
	if (rc < 0)
		return rc;
	for (;;) {
		ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		r->len += (size_t)n;
		return n;
	}
}

int corral__wire_reader_feed(struct corral__wire_reader *r, const void *data, size_t len)
{
	if (!len)
		return 0;
	int rc = reader_room(r, len);
	if (rc < 0)
		return rc;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

int corral__wire_reader_next(struct corral__wire_reader *r, struct corral__wire_msg *m,
                             corral_error_t *err)
{
	size_t have = r->len - r->off;
	uint32_t plen;
	int rc;

	memset(m, 0, sizeof(*m));
	if (have < CORRAL_WIRE_HEADER) {
		/* Refuse garbage as early as its first bytes show it. */
		size_t k = have < 3 ? have : 3;
		if (k && memcmp(r->buf + r->off, CORRAL_WIRE_MAGIC, k) != 0) {
			uint8_t h[CORRAL_WIRE_HEADER] = {0};
			memcpy(h, r->buf + r->off, k);
			return corral__err(
			    err, EPROTO,
			    "not a corral frame at byte %llu of the stream: it starts "
			    "with %02x, not \"CRL\"",
			    (unsigned long long)r->consumed, h[0]);
		}
		return 0;
	}
	rc = check_header(r->buf + r->off, &plen, err);
	if (rc < 0)
		return corral__err_wrap(err, rc, "at byte %llu of the stream",
		                        (unsigned long long)r->consumed);
	size_t total = CORRAL_WIRE_HEADER + (size_t)plen + 1;
	if (have < total)
		return 0;
	rc = corral__wire_decode(r->buf + r->off, total, m, err);
	if (rc < 0)
		return corral__err_wrap(err, rc, "at byte %llu of the stream",
		                        (unsigned long long)r->consumed);
	r->off += total;
	r->consumed += total;
	if (r->off == r->len)
		r->off = r->len = 0;
	return 1;
}

/* ---------------------------------------------------------------- RESULT blobs */

static void put_be(uint8_t *p, uint64_t v, unsigned width)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned width)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < width; i++)
		v = v << 8 | p[i];
	return v;
}

int corral__wire_pack_victims(const corral_oom_victim_t *v, unsigned n,
                              struct corral__wire_bytes *b)
{
	b->data = NULL;
	b->len = 0;
	if (n > CORRAL_WIRE_MAX_VICTIMS)
		n = CORRAL_WIRE_MAX_VICTIMS;
	if (!n)
		return 0;
	uint8_t *p = malloc((size_t)n * CORRAL_WIRE_VICTIM_SIZE);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->len = (size_t)n * CORRAL_WIRE_VICTIM_SIZE;
	for (unsigned i = 0; i < n; i++, p += CORRAL_WIRE_VICTIM_SIZE) {
		put_be(p, (uint32_t)v[i].pid, 4);
		memset(p + 4, 0, 16);
		memcpy(p + 4, v[i].comm, strnlen(v[i].comm, sizeof(v[i].comm) - 1));
		put_be(p + 20, v[i].total_vm, 8);
		put_be(p + 28, v[i].anon_rss, 8);
		put_be(p + 36, v[i].file_rss, 8);
		put_be(p + 44, v[i].shmem_rss, 8);
		put_be(p + 52, (uint32_t)v[i].oom_score_adj, 4);
		p[56] = v[i].detailed ? 1 : 0;
	}
	return 0;
}

int corral__wire_unpack_victims(const struct corral__wire_bytes *b, corral_oom_victim_t **out,
                                unsigned *n)
{
	*out = NULL;
	*n = 0;
	if (b->len % CORRAL_WIRE_VICTIM_SIZE)
		return -EPROTO;
	size_t k = b->len / CORRAL_WIRE_VICTIM_SIZE;
	if (!k)
		return 0;
	corral_oom_victim_t *v = calloc(k, sizeof(*v));
	if (!v)
		return -ENOMEM;
	const uint8_t *p = b->data;
	for (size_t i = 0; i < k; i++, p += CORRAL_WIRE_VICTIM_SIZE) {
		v[i].pid = (int)(int32_t)(uint32_t)get_be(p, 4);
		memcpy(v[i].comm, p + 4, sizeof(v[i].comm) - 1);
		v[i].comm[sizeof(v[i].comm) - 1] = '\0';
		v[i].total_vm = get_be(p + 20, 8);
		v[i].anon_rss = get_be(p + 28, 8);
		v[i].file_rss = get_be(p + 36, 8);
		v[i].shmem_rss = get_be(p + 44, 8);
		v[i].oom_score_adj = (int)(int32_t)(uint32_t)get_be(p + 52, 4);
		v[i].detailed = p[56] != 0;
	}
	*out = v;
	*n = (unsigned)k;
	return 0;
}

int corral__wire_pack_timeline(const corral_sample_t *s, unsigned n, struct corral__wire_bytes *b)
{
	b->data = NULL;
	b->len = 0;
	if (n > CORRAL_WIRE_MAX_SAMPLES)
		n = CORRAL_WIRE_MAX_SAMPLES;
	if (!n)
		return 0;
	uint8_t *p = malloc((size_t)n * CORRAL_WIRE_SAMPLE_SIZE);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->len = (size_t)n * CORRAL_WIRE_SAMPLE_SIZE;
	for (unsigned i = 0; i < n; i++, p += CORRAL_WIRE_SAMPLE_SIZE) {
		uint64_t bits;
		double t = isfinite(s[i].t) ? s[i].t : 0;
		memcpy(&bits, &t, 8);
		put_be(p, bits, 8);
		put_be(p + 8, s[i].bytes, 8);
	}
	return 0;
}

int corral__wire_unpack_timeline(const struct corral__wire_bytes *b, corral_sample_t **out,
                                 unsigned *n)
{
	*out = NULL;
	*n = 0;
	if (b->len % CORRAL_WIRE_SAMPLE_SIZE)
		return -EPROTO;
	size_t k = b->len / CORRAL_WIRE_SAMPLE_SIZE;
	if (!k)
		return 0;
	corral_sample_t *s = calloc(k, sizeof(*s));
	if (!s)
		return -ENOMEM;
	const uint8_t *p = b->data;
	for (size_t i = 0; i < k; i++, p += CORRAL_WIRE_SAMPLE_SIZE) {
		uint64_t bits = get_be(p, 8);
		memcpy(&s[i].t, &bits, 8);
		if (!isfinite(s[i].t))
			s[i].t = 0;
		s[i].bytes = get_be(p + 8, 8);
	}
	*out = s;
	*n = (unsigned)k;
	return 0;
}
