/* report_read.c - lines of a --report file, and one record per line.
 *
 * A line is read whole into a buffer that grows up to max_line bytes (a record
 * is written with one write(), so a line is a record or a torn piece of one).
 * A longer line is an error, not a reason to grow without end. The decoder
 * accepts records of any schema version: fields it does not know are skipped,
 * optional fields may be absent, and a field of the wrong type is an error
 * that names it.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define LR_CHUNK (64u << 10)

void lr_init(struct line_reader *lr, int fd, size_t max_line)
{
	memset(lr, 0, sizeof(*lr));
	lr->fd = fd;
	lr->max_line = max_line;
}

void lr_free(struct line_reader *lr)
{
	free(lr->buf);
	lr->buf = NULL;
	lr->cap = 0;
}

int lr_rewind(struct line_reader *lr)
{
	if (lseek(lr->fd, 0, SEEK_SET) < 0)
		return -errno;
	lr->start = lr->end = lr->scanned = 0;
	lr->eof = false;
	lr->lineno = 0;
	lr->offset = 0;
	return 0;
}

/* Make room to read at least LR_CHUNK more bytes (or up to max_line + 1 bytes
 * of the current line). */
static int lr_room(struct line_reader *lr)
{
	size_t pending = lr->end - lr->start;

	if (lr->start > 0 && (lr->cap - lr->end < LR_CHUNK || pending == 0)) {
		memmove(lr->buf, lr->buf + lr->start, pending);
		lr->offset += lr->start;
		lr->scanned -= lr->start;
		lr->start = 0;
		lr->end = pending;
	}
	if (lr->cap - lr->end >= LR_CHUNK)
		return 0;
	/* The line so far plus its '\n' and the NUL must fit in max_line + 2. */
	size_t limit = lr->max_line + 2;
	if (limit < LR_CHUNK)
		limit = LR_CHUNK;
	if (lr->cap >= limit + LR_CHUNK)
		return lr->end < lr->cap ? 0 : -E2BIG;
	size_t ncap = lr->cap ? lr->cap * 2 : 2 * LR_CHUNK;
	if (ncap > limit + LR_CHUNK)
		ncap = limit + LR_CHUNK;
	char *nb = realloc(lr->buf, ncap);
	if (!nb)
		return -ENOMEM;
	lr->buf = nb;
	lr->cap = ncap;
	return 0;
}

int lr_next(struct line_reader *lr, char **line, size_t *len, bool *torn)
{
	for (;;) {
		char *nl = NULL;
		if (lr->scanned < lr->start)
			lr->scanned = lr->start;
		if (lr->end > lr->scanned)
			nl = memchr(lr->buf + lr->scanned, '\n', lr->end - lr->scanned);
		if (nl) {
			size_t n = (size_t)(nl - (lr->buf + lr->start));
			if (n > lr->max_line)
				return -E2BIG;
			*nl = '\0';
			*line = lr->buf + lr->start;
			*len = n;
			*torn = false;
			lr->start += n + 1;
			lr->scanned = lr->start;
			lr->lineno++;
			return 1;
		}
		lr->scanned = lr->end;
		if (lr->end - lr->start > lr->max_line)
			return -E2BIG;
		if (lr->eof) {
			size_t n = lr->end - lr->start;
			if (n == 0)
				return 0;
			/* The last line has no '\n': hand it out as torn. There is
			 * always room for the NUL (lr_room keeps a spare byte). */
			lr->buf[lr->end] = '\0';
			*line = lr->buf + lr->start;
			*len = n;
			*torn = true;
			lr->start = lr->end;
			lr->lineno++;
			return 1;
		}
		int rc = lr_room(lr);
		if (rc < 0)
			return rc;
		/* Keep one byte spare for the NUL of a torn last line. */
		size_t want = lr->cap - lr->end - 1;
		ssize_t got = read(lr->fd, lr->buf + lr->end, want);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			lr->eof = true;
		lr->end += (size_t)got;
	}
}

/* ---------------------------------------------------------------- records */

static int bad(char *err, size_t errlen, const char *field, const char *what)
{
	snprintf(err, errlen, "\"%s\" %s", field, what);
	return -EINVAL;
}

static int get_u64(struct json_val o, const char *name, bool required, bool nullable, bool *present,
                   uint64_t *out, char *err, size_t errlen)
{
	struct json_val v;

	*present = false;
	if (!json_member(o, name, &v))
		return required ? bad(err, errlen, name, "is missing") : 0;
	if (v.type == JSON_NULL) {
		if (!nullable)
			return bad(err, errlen, name, "is null");
		return 0;
	}
	int rc = json_u64(v, out);
	if (rc == -ERANGE)
		return bad(err, errlen, name, "is out of range");
	if (rc < 0)
		return bad(err, errlen, name, "is not a whole number");
	*present = true;
	return 0;
}

/* A number of seconds: absent or null is 0; negative or not finite is an
 * error (the writer never produces one). */
static int get_seconds(struct json_val o, const char *name, bool *present, double *out, char *err,
                       size_t errlen)
{
	struct json_val v;

	*out = 0;
	*present = false;
	if (!json_member(o, name, &v) || v.type == JSON_NULL)
		return 0;
	if (v.type != JSON_NUMBER || json_double(v, out) < 0)
		return bad(err, errlen, name, "is not a number");
	if (!isfinite(*out) || *out < 0 || *out > 1e15)
		return bad(err, errlen, name, "is out of range");
	*present = true;
	return 0;
}

static int get_bool(struct json_val o, const char *name, bool required, bool *out, char *err,
                    size_t errlen)
{
	struct json_val v;

	*out = false;
	if (!json_member(o, name, &v))
		return required ? bad(err, errlen, name, "is missing") : 0;
	if (v.type != JSON_BOOL)
		return bad(err, errlen, name, "is not true or false");
	*out = *v.p == 't';
	return 0;
}

/* An optional member of the given type (null counts as absent). */
static int get_typed(struct json_val o, const char *name, enum json_type t, struct json_val *out,
                     char *err, size_t errlen)
{
	static const char *const names[] = {
	    [JSON_STRING] = "is not a string",
	    [JSON_ARRAY] = "is not an array",
	    [JSON_OBJECT] = "is not an object",
	};

	out->type = JSON_INVALID;
	struct json_val v;
	if (!json_member(o, name, &v) || v.type == JSON_NULL)
		return 0;
	if (v.type != t)
		return bad(err, errlen, name, names[t] ? names[t] : "has the wrong type");
	*out = v;
	return 0;
}

static int decode_summary(struct json_val s, struct rec *r, char *err, size_t errlen)
{
	bool present;
	int rc;

	if (s.type != JSON_OBJECT)
		return bad(err, errlen, "summary", "is not an object");
	r->obj = s;
	rc = get_u64(s, "schema_version", false, false, &present, &r->schema_version, err, errlen);
	if (rc < 0)
		return rc;
	r->has_schema_version = present;
	return get_typed(s, "provider", JSON_STRING, &r->provider, err, errlen);
}

int rec_decode(const char *line, size_t len, struct rec *r, char *err, size_t errlen)
{
	struct json_val root = json_root(line, len), v;
	bool present;
	uint64_t u;
	int rc;

	memset(r, 0, sizeof(*r));
	if (root.type != JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	if (json_member(root, "summary", &v)) {
		r->kind = REC_SUMMARY;
		return decode_summary(v, r, err, errlen);
	}
	r->kind = REC_ATTEMPT;
	r->obj = root;
	if (!json_member(root, "seq", &v)) {
		snprintf(err, errlen, "neither an attempt record (no \"seq\") nor a summary");
		return -EINVAL;
	}
	if ((rc = get_u64(root, "seq", true, false, &present, &r->seq, err, errlen)) < 0)
		return rc;
	if ((rc = get_u64(root, "attempt", true, false, &present, &u, err, errlen)) < 0)
		return rc;
	if (u > UINT32_MAX)
		return bad(err, errlen, "attempt", "is out of range");
	r->attempt = (uint32_t)u;
	if ((rc = get_bool(root, "final", true, &r->final, err, errlen)) < 0)
		return rc;
	if (!json_member(root, "outcome", &v))
		return bad(err, errlen, "outcome", "is missing");
	if (v.type != JSON_STRING)
		return bad(err, errlen, "outcome", "is not a string");
	r->outcome = RPT_OUTCOME_OTHER;
	for (int i = 0; i < CORRAL_OUTCOME_COUNT; i++) {
		if (json_string_is(v, corral_outcome_name((corral_outcome_t)i))) {
			r->outcome = i;
			break;
		}
	}
	/* memory_max: a number, or null for no limit; absent: not known. */
	if (json_member(root, "memory_max", &v)) {
		r->has_limit = true;
		r->memory_max = CORRAL_UNLIMITED;
		if (v.type != JSON_NULL) {
			rc = json_u64(v, &r->memory_max);
			if (rc < 0 || r->memory_max == CORRAL_UNLIMITED)
				return bad(err, errlen, "memory_max",
				           rc == -ERANGE || rc == 0 ? "is out of range"
				                                    : "is not a whole number");
		}
	}
	if ((rc = get_u64(root, "memory_peak", false, true, &r->has_peak, &r->memory_peak, err,
	                  errlen)) < 0)
		return rc;
	if ((rc = get_bool(root, "own_limit_hit", false, &r->own_limit_hit, err, errlen)) < 0)
		return rc;
	if ((rc = get_seconds(root, "start_time", &present, &r->start_time, err, errlen)) < 0)
		return rc;
	if ((rc = get_seconds(root, "wall_time", &present, &r->wall_time, err, errlen)) < 0)
		return rc;
	if ((rc = get_typed(root, "command", JSON_ARRAY, &r->command, err, errlen)) < 0)
		return rc;
	if (r->command.type == JSON_ARRAY) {
		struct json_iter it;
		json_iter_init(&it, r->command);
		while (json_iter_next(&it, NULL, &v))
			if (v.type != JSON_STRING)
				return bad(err, errlen, "command",
				           "holds something else than strings");
	}
	if ((rc = get_typed(root, "sentence", JSON_STRING, &r->sentence, err, errlen)) < 0 ||
	    (rc = get_typed(root, "host", JSON_STRING, &r->host, err, errlen)) < 0 ||
	    (rc = get_typed(root, "oom_victims", JSON_ARRAY, &r->oom_victims, err, errlen)) < 0 ||
	    (rc = get_typed(root, "oom_memcg", JSON_STRING, &r->oom_memcg, err, errlen)) < 0 ||
	    (rc = get_typed(root, "memory_timeline", JSON_OBJECT, &r->timeline, err, errlen)) < 0)
		return rc;
	bool some, full;
	if ((rc = get_seconds(root, "memory_stall_some", &some, &r->stall_some, err, errlen)) < 0 ||
	    (rc = get_seconds(root, "memory_stall_full", &full, &r->stall_full, err, errlen)) < 0)
		return rc;
	r->has_stall = some || full;
	return 0;
}
