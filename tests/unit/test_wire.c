/* test_wire.c - the head <-> worker protocol codec (wire.c): the exact bytes
 * of a frame, round trips of every message type, and every rule a received
 * frame must keep (wire.h), each broken on purpose.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"
#include "wire.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A frame made by hand: header for type, the given payload, '\n'. */
static size_t frame(uint8_t *out, unsigned type, const void *payload, size_t n)
{
	memcpy(out, "CRL\x01", 4);
	out[4] = (uint8_t)type;
	put32(out + 5, (uint32_t)n);
	memcpy(out + 9, payload, n);
	out[9 + n] = '\n';
	return 10 + n;
}

/* Append field tag with value to p. */
static size_t fld(uint8_t *p, uint8_t tag, const void *v, uint32_t n)
{
	p[0] = tag;
	put32(p + 1, n);
	memcpy(p + 5, v, n);
	return 5 + n;
}

static size_t fld64(uint8_t *p, uint8_t tag, uint64_t v)
{
	uint8_t b[8];
	put32(b, (uint32_t)(v >> 32));
	put32(b + 4, (uint32_t)v);
	return fld(p, tag, b, 8);
}

static int decode_bytes(const uint8_t *f, size_t n, struct corral__wire_msg *m, corral_error_t *e)
{
	memset(e, 0, sizeof(*e));
	return corral__wire_decode(f, n, m, e);
}

/* ---------------------------------------------------------------- exact bytes */

static void heartbeat_bytes(void **state)
{
	struct corral__wire_buf b = {0};
	struct corral__wire_msg m;
	static const uint8_t want[] = {
	    'C', 'R', 'L', 1, 10, 0, 0, 0, 26,                /* header: HEARTBEAT, 26 bytes */
	    1,   0,   0,   0, 8,  0, 0, 0, 0,  0, 0, 0, 0x2a, /* seq = 42 */
	    2,   0,   0,   0, 8,  0, 0, 0, 1,  2, 3, 4, 5,    /* mono_ns */
	    '\n'};

	(void)state;
	corral__wire_msg_init(&m, WIRE_HEARTBEAT);
	m.u.heartbeat.seq = 42;
	m.u.heartbeat.mono_ns = 0x0102030405ull;
	assert_int_equal(corral__wire_encode(&b, &m, NULL), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	corral__wire_buf_free(&b);
}

static void quit_bytes(void **state)
{
	struct corral__wire_buf b = {0};
	struct corral__wire_msg m, d;
	corral_error_t e;

	(void)state;
	corral__wire_msg_init(&m, WIRE_QUIT);
	assert_int_equal(corral__wire_encode(&b, &m, NULL), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "CRL\x01\x09\0\0\0\0\n", 10);
	assert_int_equal(decode_bytes(b.data, b.len, &d, &e), 0);
	assert_int_equal(d.type, WIRE_QUIT);
	corral__wire_buf_free(&b);
}

/* ---------------------------------------------------------------- round trips */

static char *argv_block[] = {"/bin/sh", "-c", "printf '%s\\n' \"$@\"", "", "\xff\x01\n", NULL};

static void fill_all(struct corral__wire_msg *msgs, uint8_t *blob, size_t blob_len)
{
	struct corral__wire_msg *m = msgs;

	corral__wire_msg_init(m, WIRE_HELLO);
	m->u.hello.proto_min = 1;
	m->u.hello.proto_max = 3;
	strcpy(m->u.hello.version, "0.1.0");
	strcpy(m->u.hello.node, "node2");
	m->u.hello.cpus = 2;
	m->u.hello.cpus_affinity = 64;
	m->u.hello.memory_total = 24ull << 30;
	m->u.hello.cgroup_mode = CORRAL_CG_V2;
	strcpy(m->u.hello.provider, "own");
	m->u.hello.memory_limits = true;
	strcpy(m->u.hello.kernel, "6.1.0-18-amd64");
	m->u.hello.pid = 4242;

	m++;
	corral__wire_msg_init(m, WIRE_CONFIG);
	m->u.config.proto = 1;
	m->u.config.jobs = 100000;
	m->u.config.memory_max = CORRAL_UNLIMITED;
	m->u.config.swap_max = 0;
	m->u.config.pids_max = 4096;
	m->u.config.cpus = 1.5;
	m->u.config.timeout_ns = 30000000000ull;
	m->u.config.kill_grace_ns = 1;
	m->u.config.oom_group = true;
	m->u.config.seccomp = WIRE_SECCOMP_PROFILE;
	m->u.config.seccomp_profile.data = blob;
	m->u.config.seccomp_profile.len = blob_len;
	m->u.config.no_new_privs = true;
	strcpy(m->u.config.user, "nobody:nogroup");
	m->u.config.cgroup_ns = true;
	m->u.config.capture_max = 16384;
	m->u.config.heartbeat_ms = 1000;
	m->u.config.heartbeat_misses = 10;
	m->u.config.timeline = true;
	m->u.config.pid_ns = true;

	m++;
	corral__wire_msg_init(m, WIRE_READY);
	m->u.ready.jobs = 7;
	strcpy(m->u.ready.notice, "running WITHOUT cgroups");

	m++;
	corral__wire_msg_init(m, WIRE_RUN);
	m->u.run.id = UINT64_MAX;
	m->u.run.seq = 12345678901ull;
	m->u.run.attempt = 3;
	m->u.run.memory_max = 1ull << 40;
	m->u.run.argv.v = argv_block;
	m->u.run.argv.n = 5;

	m++;
	corral__wire_msg_init(m, WIRE_STARTED);
	m->u.started.id = 9;
	m->u.started.pid = 1;
	m->u.started.start_time = 1.7e9 + 0.123456789;

	m++;
	corral__wire_msg_init(m, WIRE_OUTPUT);
	m->u.output.id = 9;
	m->u.output.stream = WIRE_STDERR;
	m->u.output.offset = 1ull << 33;
	m->u.output.data.data = blob;
	m->u.output.data.len = blob_len < CORRAL_WIRE_MAX_CHUNK ? blob_len : CORRAL_WIRE_MAX_CHUNK;

	m++;
	corral__wire_msg_init(m, WIRE_RESULT);
	m->u.result.id = 9;
	m->u.result.outcome = CORRAL_OOM;
	m->u.result.exit_code = -1;
	m->u.result.signal = 9;
	m->u.result.status = 137;
	m->u.result.pid = 77;
	m->u.result.oom_kills = 3;
	m->u.result.own_limit_hit = true;
	m->u.result.memory_max = 64 << 20;
	m->u.result.memory_peak = (64 << 20) - 4096;
	m->u.result.seccomp_kill = true;
	m->u.result.spawn_errno = 2;
	strcpy(m->u.result.spawn_step, "exec");
	m->u.result.start_time = 1.7e9;
	m->u.result.wall_s = 0.25;
	m->u.result.user_s = 0.125;
	m->u.result.sys_s = -0.0 + 0.0;
	m->u.result.out_len = 5;
	m->u.result.out_lost = 6;
	m->u.result.err_len = 7;
	m->u.result.err_lost = 8;
	strcpy(m->u.result.node, "node1");
	strcpy(m->u.result.sentence, "task 9 was OOM-killed: it exceeded its memory limit");
	strcpy(m->u.result.oom_memcg, "/corral-1-ab/t9-a1");
	m->u.result.memory_stall_some = 0.5;
	m->u.result.memory_stall_full = -1;
	m->u.result.oom_victims.data = blob;
	m->u.result.oom_victims.len = 2 * CORRAL_WIRE_VICTIM_SIZE;
	m->u.result.timeline.data = blob;
	m->u.result.timeline.len = 3 * CORRAL_WIRE_SAMPLE_SIZE;
	m->u.result.timeline_peak = 2;

	m++;
	corral__wire_msg_init(m, WIRE_KILL);
	m->u.kill.id = 9;
	m->u.kill.reason = WIRE_KILL_TIMEOUT;

	m++;
	corral__wire_msg_init(m, WIRE_QUIT);

	m++;
	corral__wire_msg_init(m, WIRE_HEARTBEAT);
	m->u.heartbeat.seq = 1;
	m->u.heartbeat.mono_ns = 123456789;

	m++;
	corral__wire_msg_init(m, WIRE_ERROR);
	m->u.error.code = EPROTO;
	strcpy(m->u.error.message, "bad frame");
}

static void round_trip_every_type(void **state)
{
	struct corral__wire_msg msgs[WIRE_TYPE_MAX];
	struct corral__wire_buf b = {0};
	struct corral__wire_reader r;
	uint8_t blob[70000];
	corral_error_t e;

	(void)state;
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7 + (i >> 8)); /* every byte value, '\n' and NUL too */
	fill_all(msgs, blob, sizeof(blob));
	for (int i = 0; i < WIRE_TYPE_MAX; i++) {
		assert_int_equal(msgs[i].type, i + 1);
		assert_int_equal(corral__wire_encode(&b, &msgs[i], &e), 0);
	}
	assert_int_equal(b.data[b.len - 1], '\n');
	/* The whole stream, fed in the 1024-byte pieces slurmstepd makes. */
	corral__wire_reader_init(&r);
	int got = 0;
	for (size_t off = 0; off < b.len; off += 1024) {
		size_t n = b.len - off < 1024 ? b.len - off : 1024;
		assert_int_equal(corral__wire_reader_feed(&r, b.data + off, n), 0);
		struct corral__wire_msg d;
		int rc;
		while ((rc = corral__wire_reader_next(&r, &d, &e)) == 1) {
			assert_true(corral__wire_msg_equal(&d, &msgs[got]));
			corral__wire_msg_free(&d);
			got++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(got, WIRE_TYPE_MAX);
	assert_int_equal(corral__wire_reader_pending(&r), 0);
	corral__wire_reader_free(&r);

	/* Byte by byte too. */
	corral__wire_reader_init(&r);
	got = 0;
	for (size_t off = 0; off < b.len; off++) {
		struct corral__wire_msg d;
		assert_int_equal(corral__wire_reader_feed(&r, b.data + off, 1), 0);
		if (corral__wire_reader_next(&r, &d, &e) == 1) {
			assert_true(corral__wire_msg_equal(&d, &msgs[got]));
			corral__wire_msg_free(&d);
			got++;
		}
	}
	assert_int_equal(got, WIRE_TYPE_MAX);
	corral__wire_reader_free(&r);
	corral__wire_buf_free(&b);
}

static void decoded_strings_are_owned(void **state)
{
	struct corral__wire_msg m, d;
	struct corral__wire_buf b = {0};
	corral_error_t e;

	(void)state;
	corral__wire_msg_init(&m, WIRE_RUN);
	m.u.run.id = 1;
	m.u.run.argv.v = argv_block;
	m.u.run.argv.n = 5;
	assert_int_equal(corral__wire_encode(&b, &m, NULL), 0);
	assert_int_equal(decode_bytes(b.data, b.len, &d, &e), 0);
	memset(b.data, 0, b.len); /* the frame is gone: the message keeps its copy */
	assert_int_equal(d.u.run.argv.n, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(d.u.run.argv.v[i], argv_block[i]);
	assert_null(d.u.run.argv.v[5]);
	corral__wire_msg_free(&d);
	corral__wire_msg_free(&d); /* twice is fine */
	corral__wire_buf_free(&b);
}

/* ---------------------------------------------------------------- what encode refuses */

static void encode_refuses(void **state)
{
	struct corral__wire_buf b = {0};
	struct corral__wire_msg m;
	corral_error_t e;
	uint8_t *big = calloc(1, CORRAL_WIRE_MAX_PROFILE + 1);

	(void)state;
	assert_non_null(big);
	corral__wire_msg_init(&m, WIRE_RUN);
	m.u.run.id = 1; /* no argv */
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "no argv"));

	corral__wire_msg_init(&m, WIRE_CONFIG);
	m.u.config.proto = 1;
	m.u.config.jobs = 0;
	m.u.config.heartbeat_ms = 1000;
	m.u.config.heartbeat_misses = 10;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "jobs 0"));
	m.u.config.jobs = 1;
	m.u.config.cpus = NAN;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	m.u.config.cpus = 0;
	m.u.config.seccomp_profile.data = big;
	m.u.config.seccomp_profile.len = CORRAL_WIRE_MAX_PROFILE + 1;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	m.u.config.seccomp_profile.len = 0;
	m.u.config.heartbeat_ms = 5;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);

	corral__wire_msg_init(&m, WIRE_OUTPUT);
	m.u.output.stream = 3;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	m.u.output.stream = WIRE_STDOUT;
	m.u.output.data.data = big;
	m.u.output.data.len = CORRAL_WIRE_MAX_CHUNK + 1;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	m.u.output.data.len = 10;
	m.u.output.offset = UINT64_MAX - 5;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);

	corral__wire_msg_init(&m, WIRE_RESULT);
	m.u.result.outcome = CORRAL_OUTCOME_COUNT;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);
	m.u.result.outcome = CORRAL_OK;
	memset(m.u.result.node, 'x', sizeof(m.u.result.node)); /* no NUL */
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL);

	corral__wire_msg_init(&m, WIRE_KILL);
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EINVAL); /* reason 0 */

	/* A RUN whose argv makes a frame above the limit. */
	size_t n = CORRAL_WIRE_MAX_PAYLOAD / 65536 + 2;
	char **v = calloc(n + 1, sizeof(char *));
	char *s = malloc(65536);
	assert_non_null(v);
	assert_non_null(s);
	memset(s, 'a', 65535);
	s[65535] = '\0';
	for (size_t i = 0; i < n; i++)
		v[i] = s;
	corral__wire_msg_init(&m, WIRE_RUN);
	m.u.run.argv.v = v;
	m.u.run.argv.n = (uint32_t)n;
	assert_int_equal(corral__wire_encode(&b, &m, &e), -EMSGSIZE);
	assert_int_equal(b.len, 0); /* nothing half-written */
	free(v);
	free(s);
	free(big);
	corral__wire_buf_free(&b);
}

/* ---------------------------------------------------------------- what decode refuses */

static void expect_proto(const uint8_t *f, size_t n, const char *needle)
{
	struct corral__wire_msg m;
	corral_error_t e;
	int rc = decode_bytes(f, n, &m, &e);

	if (rc != -EPROTO || !strstr(e.msg, needle))
		fail_msg("decode: rc %d, message '%s', expected -EPROTO with '%s'", rc, e.msg,
		         needle);
	/* A failed decode owns nothing. */
	assert_null(m.u.run.argv.v);
}

static void decode_refuses(void **state)
{
	uint8_t f[512], p[256];
	size_t n, k;
	uint8_t two = 2;

	(void)state;
	/* Header. */
	n = frame(f, WIRE_QUIT, "", 0);
	f[0] = 'X';
	expect_proto(f, n, "not a corral frame");
	n = frame(f, WIRE_QUIT, "", 0);
	f[3] = 2;
	expect_proto(f, n, "frame format version 2");
	n = frame(f, 0, "", 0);
	expect_proto(f, n, "unknown message type 0");
	n = frame(f, WIRE_TYPE_MAX + 1, "", 0);
	expect_proto(f, n, "unknown message type");
	n = frame(f, WIRE_QUIT, "", 0);
	put32(f + 5, CORRAL_WIRE_MAX_PAYLOAD + 1);
	expect_proto(f, n, "exceeds");
	n = frame(f, WIRE_QUIT, "", 0);
	f[n - 1] = 'x';
	expect_proto(f, n, "does not end with a newline");
	n = frame(f, WIRE_QUIT, "", 0);
	expect_proto(f, n - 1, "shorter than a header");
	expect_proto(f, 5, "shorter than a header");

	/* Fields. */
	k = fld64(p, 1, 5);
	k += 3; /* a cut field header */
	n = frame(f, WIRE_HEARTBEAT, p, k);
	expect_proto(f, n, "field header is cut");
	k = fld64(p, 1, 5);
	p[k] = 2;
	put32(p + k + 1, 100); /* claims more than is left */
	k += 5;
	n = frame(f, WIRE_HEARTBEAT, p, k);
	expect_proto(f, n, "claims 100 bytes");
	k = fld(p, 1, "abcd", 4); /* seq is u64 */
	n = frame(f, WIRE_HEARTBEAT, p, k);
	expect_proto(f, n, "seq has 4 bytes");
	k = fld64(p, 1, 5);
	k += fld64(p + k, 1, 6);
	n = frame(f, WIRE_HEARTBEAT, p, k);
	expect_proto(f, n, "appears twice");
	k = fld64(p, 2, 5); /* no seq */
	n = frame(f, WIRE_HEARTBEAT, p, k);
	expect_proto(f, n, "required field seq");

	/* Values. */
	k = fld(p, 1, "\0\0\0\1", 4);
	k += fld(p + k, 2, "\0\0\0\1", 4);
	k += fld(p + k, 10, &two, 1); /* memory_limits = 2 */
	n = frame(f, WIRE_HELLO, p, k);
	expect_proto(f, n, "not a bool");
	k = fld(p, 1, "\0\0\0\2", 4);
	k += fld(p + k, 2, "\0\0\0\1", 4);
	n = frame(f, WIRE_HELLO, p, k);
	expect_proto(f, n, "protocol range 2..1");
	k = fld(p, 1, "\0\0\0\1", 4);
	k += fld(p + k, 2, "\0\0\0\1", 4);
	k += fld(p + k, 4, "no\0de", 5);
	n = frame(f, WIRE_HELLO, p, k);
	expect_proto(f, n, "contains a NUL byte");
	k = fld(p, 1, "\0\0\0\1", 4);
	k += fld(p + k, 2, "\0\0\0\1", 4);
	memset(p + k + 5, 'v', 32);
	k += fld(p + k, 3, p + k + 5, 32); /* version is char[32]: 31 at most */
	n = frame(f, WIRE_HELLO, p, k);
	expect_proto(f, n, "longer than 31 bytes");
	k = fld64(p, 1, 9);
	k += fld64(p + k, 3, 0x7ff0000000000000ull); /* start_time = +inf */
	n = frame(f, WIRE_STARTED, p, k);
	expect_proto(f, n, "not a finite number");
	k = fld64(p, 1, 9);
	k += fld64(p + k, 3, 0x7ff8000000000000ull); /* NaN */
	n = frame(f, WIRE_STARTED, p, k);
	expect_proto(f, n, "not a finite number");
	k = fld64(p, 1, 9);
	k += fld(p + k, 2, "\x0b", 1); /* outcome 11 */
	n = frame(f, WIRE_RESULT, p, k);
	expect_proto(f, n, "unknown outcome 11");
	k = fld64(p, 1, 9);
	k += fld(p + k, 2, "\x03", 1);
	n = frame(f, WIRE_KILL, p, k);
	expect_proto(f, n, "unknown kill reason 3");
	k = fld64(p, 1, 9);
	n = frame(f, WIRE_RUN, p, k);
	expect_proto(f, n, "required field argv");
	k = fld64(p, 1, 9);
	k += fld(p + k, 5, "a\0b", 3);
	n = frame(f, WIRE_RUN, p, k);
	expect_proto(f, n, "contains a NUL byte");
	k = fld(p, 1, "\0\0\0\1", 4);
	k += fld(p + k, 2, "\0\0\0\0", 4); /* jobs 0 */
	k += fld(p + k, 20, "\0\0\x03\xe8", 4);
	k += fld(p + k, 21, "\0\0\0\x0a", 4);
	n = frame(f, WIRE_CONFIG, p, k);
	expect_proto(f, n, "jobs 0");
	k = fld(p, 1, "\xff\xff\xff\xff", 4); /* negative errno */
	n = frame(f, WIRE_ERROR, p, k);
	expect_proto(f, n, "negative errno");
}

static void unknown_fields_are_skipped(void **state)
{
	uint8_t f[512], p[256];
	struct corral__wire_msg m;
	corral_error_t e;
	size_t k, n;

	(void)state;
	k = fld(p, 99, "whatever\n", 9); /* before, between, after */
	k += fld64(p + k, 2, 77);
	k += fld(p + k, 255, "", 0);
	k += fld64(p + k, 1, 5);
	k += fld(p + k, 3, "\0\0\0", 3);
	n = frame(f, WIRE_HEARTBEAT, p, k);
	assert_int_equal(decode_bytes(f, n, &m, &e), 0);
	assert_int_equal(m.u.heartbeat.seq, 5);
	assert_int_equal(m.u.heartbeat.mono_ns, 77);
	/* QUIT with fields it does not know: still QUIT. */
	n = frame(f, WIRE_QUIT, p, 14);
	assert_int_equal(decode_bytes(f, n, &m, &e), 0);
	assert_int_equal(m.type, WIRE_QUIT);
}

/* ---------------------------------------------------------------- the reader */

static void reader_refuses_garbage_early(void **state)
{
	struct corral__wire_reader r;
	struct corral__wire_msg m;
	corral_error_t e;

	(void)state;
	/* One wrong byte is enough: no waiting for a header. */
	corral__wire_reader_init(&r);
	assert_int_equal(corral__wire_reader_feed(&r, "G", 1), 0);
	assert_int_equal(corral__wire_reader_next(&r, &m, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "not a corral frame"));
	corral__wire_reader_free(&r);
	/* A header claiming 2 GiB is refused at once, nothing allocated for it. */
	corral__wire_reader_init(&r);
	assert_int_equal(corral__wire_reader_feed(&r, "CRL\x01\x04\x7f\xff\xff\xff", 9), 0);
	assert_int_equal(corral__wire_reader_next(&r, &m, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "exceeds"));
	assert_true(r.cap <= 65536);
	corral__wire_reader_free(&r);
	/* A partial header that is right so far waits. */
	corral__wire_reader_init(&r);
	assert_int_equal(corral__wire_reader_feed(&r, "CR", 2), 0);
	assert_int_equal(corral__wire_reader_next(&r, &m, &e), 0);
	assert_int_equal(corral__wire_reader_pending(&r), 2);
	corral__wire_reader_free(&r);
}

static void reader_bounds_its_memory(void **state)
{
	struct corral__wire_reader r;
	uint8_t *junk = calloc(1, 128 << 10);

	(void)state;
	assert_non_null(junk);
	corral__wire_reader_init(&r);
	/* The largest frame plus one read fits; more than that is refused. */
	size_t fed = 0;
	int rc = 0;
	while (rc == 0 && fed < (64u << 20)) {
		rc = corral__wire_reader_feed(&r, junk, 128 << 10);
		fed += 128 << 10;
	}
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(r.cap <= CORRAL_WIRE_MAX_FRAME + (64u << 10));
	corral__wire_reader_free(&r);
	free(junk);
}

static void reader_and_flush_over_a_pipe(void **state)
{
	struct corral__wire_buf b = {0};
	struct corral__wire_reader r;
	struct corral__wire_msg m, d;
	corral_error_t e;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		corral__wire_msg_init(&m, WIRE_HEARTBEAT);
		m.u.heartbeat.seq = i;
		assert_int_equal(corral__wire_encode(&b, &m, NULL), 0);
	}
	assert_int_equal(corral__wire_buf_flush(&b, p[1]), 3 * 36);
	assert_int_equal(corral__wire_buf_pending(&b), 0);
	assert_int_equal(corral__wire_buf_flush(&b, p[1]), 0);
	corral__wire_reader_init(&r);
	assert_int_equal(corral__wire_reader_fill(&r, p[0]), 3 * 36);
	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(corral__wire_reader_next(&r, &d, &e), 1);
		assert_int_equal(d.u.heartbeat.seq, i);
	}
	assert_int_equal(corral__wire_reader_next(&r, &d, &e), 0);
	assert_int_equal(corral__wire_reader_fill(&r, p[0]), -EAGAIN);
	close(p[1]);
	assert_int_equal(corral__wire_reader_fill(&r, p[0]), 0); /* EOF */
	close(p[0]);
	/* A full pipe: flush writes what fits, keeps the rest, says EAGAIN once
	 * nothing fits. */
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	uint8_t blob[60000];
	memset(blob, 'z', sizeof(blob));
	for (int i = 0; i < 4; i++) {
		corral__wire_msg_init(&m, WIRE_OUTPUT);
		m.u.output.id = 1;
		m.u.output.stream = WIRE_STDOUT;
		m.u.output.data.data = blob;
		m.u.output.data.len = sizeof(blob);
		assert_int_equal(corral__wire_encode(&b, &m, NULL), 0);
	}
	ssize_t w = corral__wire_buf_flush(&b, p[1]);
	assert_true(w > 0);
	assert_true(corral__wire_buf_pending(&b) > 0);
	assert_int_equal(corral__wire_buf_flush(&b, p[1]), -EAGAIN);
	close(p[0]);
	assert_int_equal(corral__wire_buf_flush(&b, p[1]), -EPIPE);
	close(p[1]);
	corral__wire_reader_free(&r);
	corral__wire_buf_free(&b);
}

/* RESULT's blobs: victims and timelines come back as they went, a record
 * size that does not divide the blob is refused, and so is a lost outcome
 * (a head's, never a worker's) or a peak beyond the timeline. */
static void result_blobs(void **state)
{
	static const corral_oom_victim_t v[2] = {
	    {.pid = 4242,
	     .comm = "python3",
	     .total_vm = 1ull << 40,
	     .anon_rss = 480 << 20,
	     .file_rss = 4096,
	     .shmem_rss = 1,
	     .oom_score_adj = -1000,
	     .detailed = true},
	    {.pid = 7, .comm = "0123456789abcde", .oom_score_adj = 1000},
	};
	static const corral_sample_t t[3] = {{0.01, 1}, {0.02, UINT64_MAX}, {1e9, 0}};
	struct corral__wire_bytes b;
	corral_oom_victim_t *v2;
	corral_sample_t *t2;
	unsigned n;

	(void)state;
	assert_int_equal(corral__wire_pack_victims(v, 2, &b), 0);
	assert_int_equal(b.len, 2 * CORRAL_WIRE_VICTIM_SIZE);
	assert_int_equal(corral__wire_unpack_victims(&b, &v2, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(v, v2, sizeof(v));
	free(v2);
	b.len--;
	assert_int_equal(corral__wire_unpack_victims(&b, &v2, &n), -EPROTO);
	free(b.data);
	assert_int_equal(corral__wire_pack_victims(NULL, 0, &b), 0);
	assert_null(b.data);
	assert_int_equal(corral__wire_unpack_victims(&b, &v2, &n), 0);
	assert_null(v2);
	assert_int_equal(n, 0);

	assert_int_equal(corral__wire_pack_timeline(t, 3, &b), 0);
	assert_int_equal(corral__wire_unpack_timeline(&b, &t2, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(t, t2, sizeof(t));
	free(t2);
	free(b.data);

	struct corral__wire_msg m;
	struct corral__wire_buf out = {0};
	corral_error_t e;
	uint8_t blob[64] = {0};
	corral__wire_msg_init(&m, WIRE_RESULT);
	m.u.result.id = 1;
	m.u.result.outcome = CORRAL_LOST;
	assert_int_equal(corral__wire_encode(&out, &m, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "lost"));
	m.u.result.outcome = CORRAL_OK;
	m.u.result.timeline.data = blob;
	m.u.result.timeline.len = 17;
	assert_int_equal(corral__wire_encode(&out, &m, &e), -EINVAL);
	m.u.result.timeline.len = 32;
	m.u.result.timeline_peak = 2;
	assert_int_equal(corral__wire_encode(&out, &m, &e), -EINVAL);
	m.u.result.timeline_peak = 1;
	assert_int_equal(corral__wire_encode(&out, &m, &e), 0);
	corral__wire_buf_free(&out);
}

static void type_names(void **state)
{
	(void)state;
	assert_string_equal(corral__wire_type_name(WIRE_HELLO), "HELLO");
	assert_string_equal(corral__wire_type_name(WIRE_ERROR), "ERROR");
	assert_string_equal(corral__wire_type_name(0), "?");
	assert_string_equal(corral__wire_type_name(200), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(heartbeat_bytes),
	    cmocka_unit_test(quit_bytes),
	    cmocka_unit_test(round_trip_every_type),
	    cmocka_unit_test(decoded_strings_are_owned),
	    cmocka_unit_test(encode_refuses),
	    cmocka_unit_test(decode_refuses),
	    cmocka_unit_test(unknown_fields_are_skipped),
	    cmocka_unit_test(reader_refuses_garbage_early),
	    cmocka_unit_test(reader_bounds_its_memory),
	    cmocka_unit_test(reader_and_flush_over_a_pipe),
	    cmocka_unit_test(type_names),
	    cmocka_unit_test(result_blobs),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
