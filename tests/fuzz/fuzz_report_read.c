/* fuzz_report_read.c - the reader of `corral report` (src/cli/json.c,
 * report_read.c, report_agg.c, report_out.c) on untrusted files.
 *
 * The first byte chooses:
 *
 *   even: the rest is a report file. It is read with a 4 KiB --max-line, in
 *         both passes, with the chart data on. The reader must end (no loop:
 *         libFuzzer's -timeout), return 0 or an error with a message naming
 *         the file, and on success its --json output must be valid JSON
 *         (json_check) and valid UTF-8, and its text output must hold no
 *         control character but '\n'.
 *
 *   odd:  a round trip. The rest gives an attempt's numbers and its argv
 *         (NUL-separated); corral_report_result() (src/lib/report.c) writes
 *         the record, and the reader must decode every field back: the argv
 *         bytes exactly (surrogateescape both ways), integers exactly, times
 *         within the %.6f rounding.
 */
#include <errno.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral.h"
#include "fuzz.h"
#include "json.h"
#include "report.h"

static int file_fd = -1, out_fd = -1;

static void reset(int fd)
{
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0, "reset memfd");
}

static char *slurp(int fd, size_t *len)
{
	struct stat st;

	FUZZ_CHECK(fstat(fd, &st) == 0, "fstat");
	*len = (size_t)st.st_size;
	char *s = malloc(*len + 1);
	if (!s)
		abort();
	FUZZ_CHECK(pread(fd, s, *len, 0) == (ssize_t)*len, "pread");
	s[*len] = '\0';
	return s;
}

static bool valid_utf8(const unsigned char *s, size_t len)
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
			return false;
		}
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	char path[64], err[1024] = "";
	struct rpt_opts o = {.max_line = 4096,
	                     .headroom = 1.2,
	                     .top = 3,
	                     .suggest = true,
	                     .json = true,
	                     .want_chart_data = true};
	struct rpt *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	reset(file_fd);
	FUZZ_CHECK(pwrite(file_fd, data, size, 0) == (ssize_t)size, "pwrite");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", file_fd);
	o.path = path;
	int rc = rpt_build(r, &o, err, sizeof(err));
	if (rc < 0) {
		FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG, "rpt_build: %d (%s)", rc, err);
		FUZZ_CHECK(!strncmp(err, path, strlen(path)), "error without the file: '%s'", err);
		FUZZ_CHECK(!strchr(err, '\n'), "error of more than one line: '%s'", err);
		rpt_free(r);
		free(r);
		return;
	}
	/* --json: one valid JSON value, valid UTF-8. */
	reset(out_fd);
	FILE *f = fdopen(dup(out_fd), "w");
	FUZZ_CHECK(f, "fdopen");
	rpt_print_json(r, f);
	FUZZ_CHECK(fclose(f) == 0, "fclose");
	size_t len;
	char *out = slurp(out_fd, &len);
	const char *jwhy;
	size_t at;
	FUZZ_CHECK(json_check(out, len, &jwhy, &at) == 0, "invalid --json output (%s at %zu): %.*s",
	           jwhy, at, (int)(len < 2000 ? len : 2000), out);
	FUZZ_CHECK(valid_utf8((unsigned char *)out, len), "--json output is not UTF-8");
	free(out);
	/* the text: nothing that could drive a terminal */
	reset(out_fd);
	f = fdopen(dup(out_fd), "w");
	FUZZ_CHECK(f, "fdopen");
	rpt_print_text(r, f);
	FUZZ_CHECK(fclose(f) == 0, "fclose");
	out = slurp(out_fd, &len);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(out[i] == '\n' || ((unsigned char)out[i] >= 0x20 && out[i] != 0x7f),
		           "control character 0x%02x at %zu of the text", (unsigned char)out[i], i);
	free(out);
	rpt_free(r);
	free(r);
}

/* ---------------------------------------------------------------- round trip */

struct reader {
	const uint8_t *p;
	size_t left;
};

static void take(struct reader *rd, void *dst, size_t n)
{
	size_t k = n < rd->left ? n : rd->left;

	memset(dst, 0, n);
	memcpy(dst, rd->p, k);
	rd->p += k;
	rd->left -= k;
}

#define TAKE(rd, v) take((rd), &(v), sizeof(v))

/* A time the writer prints and the reader accepts: finite, in [0, 1e12]. */
static double a_time(uint32_t raw)
{
	return (double)raw / 1024.0;
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct reader rd = {data, size < 48 ? size : 48};
	corral_result_t res;
	uint8_t flags, outcome;
	uint32_t attempt, t1, t2;
	uint64_t seq;
	char err[256];

	memset(&res, 0, sizeof(res));
	TAKE(&rd, seq);
	TAKE(&rd, attempt);
	TAKE(&rd, flags);
	TAKE(&rd, outcome);
	TAKE(&rd, res.memory_max);
	TAKE(&rd, res.memory_peak);
	TAKE(&rd, t1);
	TAKE(&rd, t2);
	res.seq = seq;
	res.attempt = attempt;
	res.final = flags & 1;
	res.own_limit_hit = flags & 2;
	res.outcome = (corral_outcome_t)(outcome % CORRAL_OUTCOME_COUNT);
	res.status = res.exit_code = res.signal = -1;
	res.pid = 0;
	res.start_time = a_time(t1) * 1000.0;
	res.wall_s = a_time(t2);
	if (flags & 4)
		res.memory_max = CORRAL_UNLIMITED;
	snprintf(res.sentence, sizeof(res.sentence), "task");

	/* argv: the rest, NUL-separated (the last piece too). */
	size_t rest = size > 48 ? size - 48 : 0;
	char *buf = fuzz_cstr(data + 48 * (size > 48), rest);
	char **argv = calloc(rest + 2, sizeof(char *));
	size_t argc = 0;
	if (!argv)
		abort();
	for (char *p = buf, *end = buf + rest; p < end;) {
		argv[argc++] = p;
		p += strlen(p) + 1;
	}
	argv[argc] = NULL;

	reset(file_fd);
	FUZZ_CHECK(corral_report_result(file_fd, &res, (const char *const *)argv) == 0, "write");
	size_t len;
	char *line = slurp(file_fd, &len);
	FUZZ_CHECK(len > 0 && line[len - 1] == '\n', "no newline");
	line[--len] = '\0';
	const char *jwhy;
	size_t at;
	FUZZ_CHECK(json_check(line, len, &jwhy, &at) == 0, "the writer's line fails json_check");
	struct rec rec;
	int rc = rec_decode(line, len, &rec, err, sizeof(err));
	FUZZ_CHECK(rc == 0, "rec_decode: %s: %s", err, line);
	FUZZ_CHECK(rec.kind == REC_ATTEMPT && rec.seq == seq && rec.attempt == attempt &&
	               rec.final == res.final && rec.outcome == (int)res.outcome &&
	               rec.own_limit_hit == res.own_limit_hit,
	           "fields differ: %s", line);
	FUZZ_CHECK(rec.has_limit && rec.memory_max == res.memory_max, "memory_max: %s", line);
	FUZZ_CHECK(rec.has_peak == (res.memory_peak != 0 && res.memory_peak != CORRAL_UNLIMITED) &&
	               (!rec.has_peak || rec.memory_peak == res.memory_peak),
	           "memory_peak: %s", line);
	FUZZ_CHECK(fabs(rec.start_time - res.start_time) <= 5e-7 + res.start_time * 1e-15,
	           "start_time %.17g vs %.17g", rec.start_time, res.start_time);
	FUZZ_CHECK(fabs(rec.wall_time - res.wall_s) <= 5e-7 + res.wall_s * 1e-15, "wall_time");
	/* the argv, byte for byte */
	FUZZ_CHECK(rec.command.type == JSON_ARRAY && json_count(rec.command) == argc, "argc");
	char *word = malloc(len + 1);
	if (!word)
		abort();
	struct json_iter it;
	struct json_val v;
	size_t i = 0;
	json_iter_init(&it, rec.command);
	while (json_iter_next(&it, NULL, &v)) {
		size_t wl = json_string(v, word);
		FUZZ_CHECK(wl == strlen(argv[i]) && !memcmp(word, argv[i], wl),
		           "argv[%zu] decodes to %zu bytes, expected %zu", i, wl, strlen(argv[i]));
		i++;
	}
	free(word);
	free(line);
	free(argv);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (file_fd < 0) {
		file_fd = memfd_create("fuzz-report-read", MFD_CLOEXEC);
		out_fd = memfd_create("fuzz-report-out", MFD_CLOEXEC);
		FUZZ_CHECK(file_fd >= 0 && out_fd >= 0, "memfd_create: %s", strerror(errno));
	}
	if (size == 0)
		return 0;
	if (data[0] & 1)
		fuzz_roundtrip(data + 1, size - 1);
	else
		fuzz_file(data + 1, size - 1);
	return 0;
}
