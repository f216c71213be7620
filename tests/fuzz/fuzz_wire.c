/* fuzz_wire.c - the head <-> worker protocol codec (wire.c).
 *
 * The first input byte picks one of two checks:
 *
 *   even: the rest is a byte stream from a hostile peer. It goes into a
 *         reader in pieces whose sizes come from the stream itself; every
 *         message that decodes must encode again (a decoded message is a
 *         valid one), decode to an equal message, and re-encode to the very
 *         same bytes (one canonical form). Errors are -EPROTO with a message;
 *         the reader's memory stays within one frame plus one read. Crashes,
 *         hangs and huge allocations are libFuzzer's to catch (-timeout,
 *         -rss_limit_mb, -malloc_limit_mb).
 *   odd:  the rest seeds a generator of valid messages of every type, with
 *         fields at their bounds (empty and longest strings, blobs with every
 *         byte value, 0 and UINT64_MAX); decode(encode(m)) must equal m, also
 *         through a reader fed in 1024-byte and odd-sized pieces, and every
 *         frame must end with '\n'.
 */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "wire.h"

struct src {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct src *s, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++) {
		v = v << 8 | (s->n ? *s->p : 0);
		if (s->n) {
			s->p++;
			s->n--;
		}
	}
	return v;
}

/* Some edge values more often than chance would give them. */
static uint64_t take_u64(struct src *s)
{
	switch (take(s, 1) % 5) {
	case 0:
		return 0;
	case 1:
		return UINT64_MAX;
	case 2:
		return take(s, 1);
	default:
		return take(s, 8);
	}
}

static double take_f64(struct src *s)
{
	uint64_t bits = take(s, 8);
	double d;

	memcpy(&d, &bits, 8);
	return isfinite(d) ? d : (double)(bits >> 11);
}

static void take_str(struct src *s, char *dst, size_t cap)
{
	size_t want = take(s, 1) % 4 == 0 ? cap - 1 : (size_t)take(s, 2) % cap;

	for (size_t i = 0; i < want; i++) {
		uint8_t c = (uint8_t)take(s, 1);
		dst[i] = c ? (char)c : 'x';
	}
	dst[want] = '\0';
}

/* A blob of up to max bytes (owned: free it). */
static void take_bytes(struct src *s, struct corral__wire_bytes *b, size_t max)
{
	/* Sizes spread over every order of magnitude, the bound now and then. */
	size_t n =
	    take(s, 1) % 32 == 0 ? max : ((size_t)take(s, 3) % (max + 1)) >> (take(s, 1) % 21);

	b->len = n;
	b->data = n ? malloc(n) : NULL;
	if (n && !b->data)
		abort();
	for (size_t i = 0; i < n; i++)
		b->data[i] = (uint8_t)(s->n ? take(s, 1) : i * 31 + (i >> 8));
}

static void gen(struct src *s, struct corral__wire_msg *m)
{
	unsigned type = 1 + (unsigned)(take(s, 1) % WIRE_TYPE_MAX);

	corral__wire_msg_init(m, type);
	switch (type) {
	case WIRE_HELLO: {
		struct corral__wire_hello *h = &m->u.hello;
		h->proto_min = 1 + (uint32_t)(take(s, 4) % 1000);
		h->proto_max = h->proto_min + (uint32_t)take(s, 1);
		take_str(s, h->version, sizeof(h->version));
		take_str(s, h->node, sizeof(h->node));
		h->cpus = (uint32_t)take(s, 4);
		h->cpus_affinity = (uint32_t)take(s, 4);
		h->memory_total = take_u64(s);
		h->cgroup_mode = (uint8_t)(take(s, 1) % 4);
		take_str(s, h->provider, sizeof(h->provider));
		h->memory_limits = take(s, 1) & 1;
		take_str(s, h->kernel, sizeof(h->kernel));
		h->pid = (int32_t)take(s, 4);
		break;
	}
	case WIRE_CONFIG: {
		struct corral__wire_config *c = &m->u.config;
		c->proto = 1 + (uint32_t)(take(s, 4) % 0xfffffffe);
		c->jobs = 1 + (uint32_t)(take(s, 4) % 100000);
		c->memory_max = take_u64(s);
		c->swap_max = take_u64(s);
		c->pids_max = take_u64(s);
		c->cpus = fabs(take_f64(s));
		c->timeout_ns = take_u64(s);
		c->kill_grace_ns = take_u64(s);
		c->oom_group = take(s, 1) & 1;
		c->allow_subprocess_oom = take(s, 1) & 1;
		c->seccomp = (uint8_t)(take(s, 1) % 3);
		take_bytes(s, &c->seccomp_profile, take(s, 1) & 1 ? 4096 : CORRAL_WIRE_MAX_PROFILE);
		if (c->seccomp == WIRE_SECCOMP_PROFILE && !c->seccomp_profile.len)
			c->seccomp = WIRE_SECCOMP_DEFAULT;
		c->allow_ptrace = take(s, 1) & 1;
		c->no_new_privs = take(s, 1) & 1;
		c->no_network = take(s, 1) & 1;
		take_str(s, c->user, sizeof(c->user));
		c->core_dumps = take(s, 1) & 1;
		c->cgroup_ns = take(s, 1) & 1;
		c->capture_max = take_u64(s);
		c->heartbeat_ms = 10 + (uint32_t)(take(s, 4) % 599991);
		c->heartbeat_misses = 2 + (uint32_t)(take(s, 2) % 9999);
		c->timeline = take(s, 1) & 1;
		c->allow_io_uring = take(s, 1) & 1;
		c->pid_ns = take(s, 1) & 1;
		break;
	}
	case WIRE_READY:
		m->u.ready.jobs = (uint32_t)take(s, 4);
		m->u.ready.memory_limits = take(s, 1) & 1;
		take_str(s, m->u.ready.notice, sizeof(m->u.ready.notice));
		break;
	case WIRE_RUN: {
		struct corral__wire_run *r = &m->u.run;
		uint32_t n = 1 + (uint32_t)(take(s, 1) % 12);
		size_t each = 1 + (size_t)(take(s, 2) % 3000);
		r->id = take_u64(s);
		r->seq = take_u64(s);
		r->attempt = (uint32_t)take(s, 4);
		r->memory_max = take_u64(s);
		r->argv.v = malloc((n + 1) * sizeof(char *) + n * each);
		if (!r->argv.v)
			abort();
		char *str = (char *)(r->argv.v + n + 1);
		for (uint32_t i = 0; i < n; i++) {
			r->argv.v[i] = str;
			take_str(s, str, each);
			str += each;
		}
		r->argv.v[n] = NULL;
		r->argv.n = n;
		break;
	}
	case WIRE_STARTED:
		m->u.started.id = take_u64(s);
		m->u.started.pid = (int32_t)take(s, 4);
		m->u.started.start_time = take_f64(s);
		break;
	case WIRE_OUTPUT:
		m->u.output.id = take_u64(s);
		m->u.output.stream = take(s, 1) & 1 ? WIRE_STDERR : WIRE_STDOUT;
		take_bytes(s, &m->u.output.data, CORRAL_WIRE_MAX_CHUNK);
		m->u.output.offset = take_u64(s);
		if (m->u.output.offset > UINT64_MAX - m->u.output.data.len)
			m->u.output.offset -= m->u.output.data.len;
		break;
	case WIRE_RESULT: {
		struct corral__wire_result *r = &m->u.result;
		r->id = take_u64(s);
		r->outcome = (uint8_t)(take(s, 1) % CORRAL_LOST); /* lost: a head's, never sent */
		r->exit_code = (int32_t)take(s, 4);
		r->signal = (int32_t)take(s, 4);
		r->status = (int32_t)take(s, 4);
		r->pid = (int32_t)take(s, 4);
		r->oom_kills = take_u64(s);
		r->own_limit_hit = take(s, 1) & 1;
		r->memory_max = take_u64(s);
		r->memory_peak = take_u64(s);
		r->pids_limit_hit = take(s, 1) & 1;
		r->seccomp_kill = take(s, 1) & 1;
		r->spawn_errno = (int32_t)take(s, 4);
		take_str(s, r->spawn_step, sizeof(r->spawn_step));
		r->start_time = take_f64(s);
		r->wall_s = fabs(take_f64(s));
		r->user_s = fabs(take_f64(s));
		r->sys_s = fabs(take_f64(s));
		r->out_len = take_u64(s);
		r->out_lost = take_u64(s);
		r->err_len = take_u64(s);
		r->err_lost = take_u64(s);
		take_str(s, r->node, sizeof(r->node));
		take_str(s, r->sentence, sizeof(r->sentence));
		take_str(s, r->oom_memcg, sizeof(r->oom_memcg));
		r->memory_stall_some = take(s, 1) & 1 ? -1 : fabs(take_f64(s));
		r->memory_stall_full = take(s, 1) & 1 ? -1 : fabs(take_f64(s));
		take_bytes(s, &r->oom_victims, CORRAL_WIRE_MAX_VICTIMS * CORRAL_WIRE_VICTIM_SIZE);
		r->oom_victims.len -= r->oom_victims.len % CORRAL_WIRE_VICTIM_SIZE;
		take_bytes(s, &r->timeline, CORRAL_WIRE_MAX_SAMPLES * CORRAL_WIRE_SAMPLE_SIZE);
		r->timeline.len -= r->timeline.len % CORRAL_WIRE_SAMPLE_SIZE;
		if (r->timeline.len)
			r->timeline_peak =
			    (uint32_t)(take(s, 4) % (r->timeline.len / CORRAL_WIRE_SAMPLE_SIZE));
		break;
	}
	case WIRE_KILL:
		m->u.kill.id = take_u64(s);
		m->u.kill.reason = take(s, 1) & 1 ? WIRE_KILL_TIMEOUT : WIRE_KILL_ABORT;
		break;
	case WIRE_HEARTBEAT:
		m->u.heartbeat.seq = take_u64(s);
		m->u.heartbeat.mono_ns = take_u64(s);
		break;
	case WIRE_ERROR:
		m->u.error.code = (int32_t)(take(s, 4) & 0x7fffffff);
		take_str(s, m->u.error.message, sizeof(m->u.error.message));
		break;
	default:
		break;
	}
}

/* Free what gen() allocated (RUN's argv is one block, as a decoder's). */
static void gen_free(struct corral__wire_msg *m)
{
	corral__wire_msg_free(m);
}

static void check_generated(const uint8_t *data, size_t size)
{
	struct src s = {data, size};
	struct corral__wire_msg msgs[4], d;
	struct corral__wire_buf b = {0};
	corral_error_t e;
	int n = 1 + (int)(take(&s, 1) % 4);

	for (int i = 0; i < n; i++) {
		gen(&s, &msgs[i]);
		size_t before = b.len;
		int rc = corral__wire_encode(&b, &msgs[i], &e);
		FUZZ_CHECK(rc == 0, "encode of a valid %s: %d %s",
		           corral__wire_type_name(msgs[i].type), rc, e.msg);
		FUZZ_CHECK(b.data[b.len - 1] == '\n', "frame does not end with a newline");
		rc = corral__wire_decode(b.data + before, b.len - before, &d, &e);
		FUZZ_CHECK(rc == 0, "decode of an encoded %s: %d %s",
		           corral__wire_type_name(msgs[i].type), rc, e.msg);
		FUZZ_CHECK(corral__wire_msg_equal(&d, &msgs[i]), "decode(encode(%s)) differs",
		           corral__wire_type_name(msgs[i].type));
		corral__wire_msg_free(&d);
	}
	/* The stream of frames through a reader, in 1024-byte pieces (what
	 * slurmstepd does to long lines) and in pieces of a drawn size. */
	for (int pass = 0; pass < 2; pass++) {
		size_t piece = pass == 0 ? 1024 : 1 + (size_t)(take(&s, 2) % 5000);
		if (b.len / piece > 4096) /* a 1 MiB frame byte by byte: too slow to fuzz */
			piece = b.len / 4096 + 1;
		struct corral__wire_reader r;
		int got = 0, rc = 0;
		corral__wire_reader_init(&r);
		for (size_t off = 0; off < b.len; off += piece) {
			size_t k = b.len - off < piece ? b.len - off : piece;
			FUZZ_CHECK(corral__wire_reader_feed(&r, b.data + off, k) == 0, "feed");
			while ((rc = corral__wire_reader_next(&r, &d, &e)) == 1) {
				FUZZ_CHECK(got < n, "more messages than were sent");
				FUZZ_CHECK(corral__wire_msg_equal(&d, &msgs[got]),
				           "message %d differs after the reader (piece %zu)", got,
				           piece);
				corral__wire_msg_free(&d);
				got++;
			}
			FUZZ_CHECK(rc == 0, "reader: %d %s", rc, e.msg);
		}
		FUZZ_CHECK(got == n && corral__wire_reader_pending(&r) == 0, "%d of %d messages",
		           got, n);
		corral__wire_reader_free(&r);
	}
	for (int i = 0; i < n; i++)
		gen_free(&msgs[i]);
	corral__wire_buf_free(&b);
}

static void check_hostile(const uint8_t *data, size_t size)
{
	struct corral__wire_reader r;
	struct corral__wire_msg m, d;
	corral_error_t e;
	size_t off = 0;
	int rc = 0;

	corral__wire_reader_init(&r);
	while (off < size && rc >= 0) {
		/* Piece sizes from the data: 1..256, or all that is left. */
		size_t piece = data[off] == 0xff ? size - off : 1 + data[off] % 256;
		if (piece > size - off)
			piece = size - off;
		if (corral__wire_reader_feed(&r, data + off, piece) < 0)
			break;
		off += piece;
		FUZZ_CHECK(r.cap <= CORRAL_WIRE_MAX_FRAME + (64u << 10), "reader holds %zu bytes",
		           r.cap);
		while ((rc = corral__wire_reader_next(&r, &m, &e)) == 1) {
			struct corral__wire_buf b = {0}, b2 = {0};
			int erc = corral__wire_encode(&b, &m, &e);
			FUZZ_CHECK(erc == 0, "a decoded %s does not encode: %d %s",
			           corral__wire_type_name(m.type), erc, e.msg);
			FUZZ_CHECK(corral__wire_decode(b.data, b.len, &d, &e) == 0,
			           "re-encoded %s does not decode: %s",
			           corral__wire_type_name(m.type), e.msg);
			FUZZ_CHECK(corral__wire_msg_equal(&m, &d), "re-encoded %s differs",
			           corral__wire_type_name(m.type));
			FUZZ_CHECK(corral__wire_encode(&b2, &d, &e) == 0 && b2.len == b.len &&
			               !memcmp(b.data, b2.data, b.len),
			           "%s has two encodings", corral__wire_type_name(m.type));
			corral__wire_msg_free(&d);
			corral__wire_msg_free(&m);
			corral__wire_buf_free(&b);
			corral__wire_buf_free(&b2);
		}
		if (rc < 0)
			FUZZ_CHECK((rc == -EPROTO || rc == -ENOMEM) && e.msg[0],
			           "reader error %d '%s'", rc, e.msg);
	}
	corral__wire_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		check_generated(data + 1, size - 1);
	else
		check_hostile(data + 1, size - 1);
	return 0;
}
