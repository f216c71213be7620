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

/* The members the reader uses, found in one walk over the record (a lookup
 * per field would walk it once per field). */
enum field {
	F_SEQ,
	F_ATTEMPT,
	F_FINAL,
	F_OUTCOME,
	F_MEMORY_MAX,
	F_MEMORY_PEAK,
	F_OWN_LIMIT_HIT,
	F_START_TIME,
	F_WALL_TIME,
	F_COMMAND,
	F_SENTENCE,
	F_HOST,
	F_OOM_VICTIMS,
	F_OOM_MEMCG,
	F_TIMELINE,
	F_STALL_SOME,
	F_STALL_FULL,
	F_SUMMARY,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_SEQ] = "seq",
    [F_ATTEMPT] = "attempt",
    [F_FINAL] = "final",
    [F_OUTCOME] = "outcome",
    [F_MEMORY_MAX] = "memory_max",
    [F_MEMORY_PEAK] = "memory_peak",
    [F_OWN_LIMIT_HIT] = "own_limit_hit",
    [F_START_TIME] = "start_time",
    [F_WALL_TIME] = "wall_time",
    [F_COMMAND] = "command",
    [F_SENTENCE] = "sentence",
    [F_HOST] = "host",
    [F_OOM_VICTIMS] = "oom_victims",
    [F_OOM_MEMCG] = "oom_memcg",
    [F_TIMELINE] = "memory_timeline",
    [F_STALL_SOME] = "memory_stall_some",
    [F_STALL_FULL] = "memory_stall_full",
    [F_SUMMARY] = "summary",
};

/* Fill f[] with the members of obj that the reader knows (the last of equal
 * names wins, as in Python's json); the others stay JSON_INVALID. */
static void fields(struct json_val obj, struct json_val *f)
{
	struct json_iter it;
	struct json_val k, v;

	for (int i = 0; i < F_COUNT; i++)
		f[i].type = JSON_INVALID;
	json_iter_init(&it, obj);
	while (json_iter_next(&it, &k, &v)) {
		size_t n = (size_t)(k.end - k.p);
		if (n < 3 || n > 20)
			continue;
		for (int i = 0; i < F_COUNT; i++) {
			/* a quick test on the first letter and the length first */
			if (field_names[i][0] == k.p[1] && strlen(field_names[i]) + 2 == n &&
			    json_string_is(k, field_names[i])) {
				f[i] = v;
				break;
			}
		}
	}
}

static int bad(char *err, size_t errlen, const char *field, const char *what)
{
	snprintf(err, errlen, "\"%s\" %s", field, what);
	return -EINVAL;
}

static int get_u64(const struct json_val *f, int i, bool required, bool nullable, bool *present,
                   uint64_t *out, char *err, size_t errlen)
{
	const char *name = field_names[i];

	*present = false;
	if (f[i].type == JSON_INVALID)
		return required ? bad(err, errlen, name, "is missing") : 0;
	if (f[i].type == JSON_NULL) {
		if (!nullable)
			return bad(err, errlen, name, "is null");
		return 0;
	}
	int rc = json_u64(f[i], out);
	if (rc == -ERANGE)
		return bad(err, errlen, name, "is out of range");
	if (rc < 0)
		return bad(err, errlen, name, "is not a whole number");
	*present = true;
	return 0;
}

/* A number of seconds: absent or null is 0; negative or not finite is an
 * error (the writer never produces one). */
static int get_seconds(const struct json_val *f, int i, bool *present, double *out, char *err,
                       size_t errlen)
{
	const char *name = field_names[i];

	*out = 0;
	*present = false;
	if (f[i].type == JSON_INVALID || f[i].type == JSON_NULL)
		return 0;
	if (f[i].type != JSON_NUMBER || json_double(f[i], out) < 0)
		return bad(err, errlen, name, "is not a number");
	if (!isfinite(*out) || *out < 0 || *out > 1e15)
		return bad(err, errlen, name, "is out of range");
	*present = true;
	return 0;
}

static int get_bool(const struct json_val *f, int i, bool required, bool *out, char *err,
                    size_t errlen)
{
	*out = false;
	if (f[i].type == JSON_INVALID)
		return required ? bad(err, errlen, field_names[i], "is missing") : 0;
	if (f[i].type != JSON_BOOL)
		return bad(err, errlen, field_names[i], "is not true or false");
	*out = *f[i].p == 't';
	return 0;
}

/* An optional member of the given type (null counts as absent). */
static int get_typed(const struct json_val *f, int i, enum json_type t, struct json_val *out,
                     char *err, size_t errlen)
{
	static const char *const names[] = {
	    [JSON_STRING] = "is not a string",
	    [JSON_ARRAY] = "is not an array",
	    [JSON_OBJECT] = "is not an object",
	};

	out->type = JSON_INVALID;
	if (f[i].type == JSON_INVALID || f[i].type == JSON_NULL)
		return 0;
	if (f[i].type != t)
		return bad(err, errlen, field_names[i], names[t] ? names[t] : "has the wrong type");
	*out = f[i];
	return 0;
}

static int decode_summary(struct json_val s, struct rec *r, char *err, size_t errlen)
{
	struct json_val v;
	int rc;

	if (s.type != JSON_OBJECT)
		return bad(err, errlen, "summary", "is not an object");
	r->obj = s;
	if (json_member(s, "schema_version", &v) && v.type != JSON_NULL) {
		rc = json_u64(v, &r->schema_version);
		if (rc < 0)
			return bad(err, errlen, "schema_version", "is not a whole number");
		r->has_schema_version = true;
	}
	if (json_member(s, "provider", &v) && v.type != JSON_NULL) {
		/* The provider block (corral_report_summary): its name. A bare
		 * string is taken as the name too. */
		struct json_val name;
		if (v.type == JSON_OBJECT && json_member(v, "name", &name) &&
		    name.type == JSON_STRING)
			v = name;
		if (v.type != JSON_STRING)
			return bad(err, errlen, "provider",
			           "is neither an object with a name nor a string");
		r->provider = v;
	}
	return 0;
}

int rec_decode(const char *line, size_t len, struct rec *r, char *err, size_t errlen)
{
	struct json_val root = json_root(line, len), f[F_COUNT], v;
	bool present, some, full;
	uint64_t u;
	int rc;

	memset(r, 0, sizeof(*r));
	if (root.type != JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	fields(root, f);
	if (f[F_SUMMARY].type != JSON_INVALID) {
		r->kind = REC_SUMMARY;
		return decode_summary(f[F_SUMMARY], r, err, errlen);
	}
	r->kind = REC_ATTEMPT;
	r->obj = root;
	if (f[F_SEQ].type == JSON_INVALID) {
		snprintf(err, errlen, "neither an attempt record (no \"seq\") nor a summary");
		return -EINVAL;
	}
	if ((rc = get_u64(f, F_SEQ, true, false, &present, &r->seq, err, errlen)) < 0)
		return rc;
	if ((rc = get_u64(f, F_ATTEMPT, true, false, &present, &u, err, errlen)) < 0)
		return rc;
	if (u > UINT32_MAX)
		return bad(err, errlen, "attempt", "is out of range");
	r->attempt = (uint32_t)u;
	if ((rc = get_bool(f, F_FINAL, true, &r->final, err, errlen)) < 0)
		return rc;
	v = f[F_OUTCOME];
	if (v.type == JSON_INVALID)
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
	v = f[F_MEMORY_MAX];
	if (v.type != JSON_INVALID) {
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
	if ((rc = get_u64(f, F_MEMORY_PEAK, false, true, &r->has_peak, &r->memory_peak, err,
	                  errlen)) < 0)
		return rc;
	if ((rc = get_bool(f, F_OWN_LIMIT_HIT, false, &r->own_limit_hit, err, errlen)) < 0)
		return rc;
	if ((rc = get_seconds(f, F_START_TIME, &present, &r->start_time, err, errlen)) < 0)
		return rc;
	if ((rc = get_seconds(f, F_WALL_TIME, &present, &r->wall_time, err, errlen)) < 0)
		return rc;
	if ((rc = get_typed(f, F_COMMAND, JSON_ARRAY, &r->command, err, errlen)) < 0)
		return rc;
	if (r->command.type == JSON_ARRAY) {
		struct json_iter it;
		json_iter_init(&it, r->command);
		while (json_iter_next(&it, NULL, &v))
			if (v.type != JSON_STRING)
				return bad(err, errlen, "command",
				           "holds something else than strings");
	}
	if ((rc = get_typed(f, F_SENTENCE, JSON_STRING, &r->sentence, err, errlen)) < 0 ||
	    (rc = get_typed(f, F_HOST, JSON_STRING, &r->host, err, errlen)) < 0 ||
	    (rc = get_typed(f, F_OOM_VICTIMS, JSON_ARRAY, &r->oom_victims, err, errlen)) < 0 ||
	    (rc = get_typed(f, F_OOM_MEMCG, JSON_STRING, &r->oom_memcg, err, errlen)) < 0 ||
	    (rc = get_typed(f, F_TIMELINE, JSON_OBJECT, &r->timeline, err, errlen)) < 0)
		return rc;
	if ((rc = get_seconds(f, F_STALL_SOME, &some, &r->stall_some, err, errlen)) < 0 ||
	    (rc = get_seconds(f, F_STALL_FULL, &full, &r->stall_full, err, errlen)) < 0)
		return rc;
	r->has_stall = some || full;
	return 0;
}
