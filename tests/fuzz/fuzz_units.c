/* fuzz_units.c - corral_parse_size, corral_parse_duration, corral_parse_retry_on
 * and corral_parse_halt (units.c) on the same input string.
 *
 * Besides "no crash, no UB", every result is checked against a reference
 * written independently of units.c:
 *   size      grammar DIGITS[.DIGITS][SUFFIX] evaluated exactly in 128 bits;
 *             a parsed size re-parses to itself from its decimal form, and
 *             corral_format_size() of it parses back to within 5%;
 *   duration  never CORRAL_UNLIMITED unless spelled max/infinity/unlimited;
 *             "AxBy" is the sum of "Ax" and "By" (or -ERANGE);
 *   retry-on  a comma list of known words, compared bit for bit;
 *   halt      exactly ordered/now/never.
 */
#include <ctype.h>
#include <errno.h>
#include <strings.h>

#include "corral.h"
#include "fuzz.h"

static bool is_keyword(const char *s)
{
	return !strcasecmp(s, "max") || !strcasecmp(s, "unlimited") || !strcasecmp(s, "infinity");
}

/* ---------------------------------------------------------------- sizes */

enum ref_rc {
	REF_OK,
	REF_SYNTAX, /* malformed: any error (a huge integer part may say ERANGE first) */
	REF_RANGE,  /* well-formed but above 2^63-1 */
};

static enum ref_rc ref_size(const char *s, uint64_t *out)
{
	unsigned __int128 ip = 0, frac = 0, div = 1, mult = 1;
	const char *p = s;
	size_t nint = 0, nfrac = 0;
	bool big = false;

	for (; *p >= '0' && *p <= '9'; p++, nint++) {
		ip = ip * 10 + (unsigned)(*p - '0');
		if (ip > UINT64_MAX)
			big = true, ip = (unsigned __int128)UINT64_MAX + 1;
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, nfrac++) {
			if (nfrac < 18) { /* units.c keeps 18 fractional digits */
				frac = frac * 10 + (unsigned)(*p - '0');
				div *= 10;
			}
		}
		if (nfrac == 0)
			return REF_SYNTAX;
	}
	if (nint + nfrac == 0)
		return REF_SYNTAX;
	static const char units[] = "kmgtpe";
	const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
	if (u) {
		mult = (unsigned __int128)1 << (10 * (u - units + 1));
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
		if (*p == 'b' || *p == 'B')
			p++;
	} else if (*p == 'b' || *p == 'B') {
		p++;
	}
	if (*p)
		return REF_SYNTAX;
	if (big)
		return REF_RANGE;
	unsigned __int128 v = ip * mult + frac * mult / div;
	if (v > INT64_MAX)
		return REF_RANGE;
	*out = (uint64_t)v;
	return REF_OK;
}

static void check_size(const char *s)
{
	uint64_t v = 12345, ref = 0, again;
	int rc = corral_parse_size(s, &v);
	char buf[64];

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE, "size '%s': rc %d", s, rc);
	if (rc < 0)
		FUZZ_CHECK(v == 12345, "size '%s': *out written on failure", s);
	if (*s && is_keyword(s)) {
		FUZZ_CHECK(rc == 0 && v == CORRAL_UNLIMITED, "size '%s': rc %d v %llu", s, rc,
		           (unsigned long long)v);
		return;
	}
	switch (ref_size(s, &ref)) {
	case REF_OK:
		FUZZ_CHECK(rc == 0 && v == ref, "size '%s': rc %d v %llu, expected %llu", s, rc,
		           (unsigned long long)v, (unsigned long long)ref);
		break;
	case REF_SYNTAX:
		FUZZ_CHECK(rc < 0, "size '%s': accepted as %llu", s, (unsigned long long)v);
		break;
	case REF_RANGE:
		FUZZ_CHECK(rc == -ERANGE, "size '%s': rc %d v %llu, expected -ERANGE", s, rc,
		           (unsigned long long)v);
		break;
	}
	if (rc < 0)
		return;
	FUZZ_CHECK(v <= (uint64_t)INT64_MAX, "size '%s' = %llu", s, (unsigned long long)v);

	/* The decimal form parses to the same value. */
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	FUZZ_CHECK(corral_parse_size(buf, &again) == 0 && again == v, "size '%s': %llu -> '%s'", s,
	           (unsigned long long)v, buf);
	/* So does an exact binary-suffixed form. */
	if (v && v % 1024 == 0) {
		snprintf(buf, sizeof(buf), "%lluKiB", (unsigned long long)(v / 1024));
		FUZZ_CHECK(corral_parse_size(buf, &again) == 0 && again == v,
		           "size '%s': %llu -> '%s'", s, (unsigned long long)v, buf);
	}
	/* corral_format_size() ("64.0 MiB") parses back, without the space, to
	 * within its rounding (0.05 of the unit, at least 1 unit). */
	corral_format_size(v, buf, sizeof(buf));
	char *sp = strchr(buf, ' ');
	FUZZ_CHECK(sp != NULL, "format_size(%llu) = '%s'", (unsigned long long)v, buf);
	memmove(sp, sp + 1, strlen(sp));
	rc = corral_parse_size(buf, &again);
	FUZZ_CHECK(rc == 0 || rc == -ERANGE, "format_size(%llu) = '%s' does not parse: %d",
	           (unsigned long long)v, buf, rc);
	if (rc == 0) {
		double d = (double)again - (double)v;
		FUZZ_CHECK(d <= 0.05 * (double)v + 1 && -d <= 0.05 * (double)v + 1,
		           "format_size(%llu) = '%s' parses to %llu", (unsigned long long)v, buf,
		           (unsigned long long)again);
	}
}

/* ---------------------------------------------------------------- durations */

static void check_duration(const char *s)
{
	uint64_t v = 12345;
	int rc = corral_parse_duration(s, &v);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE, "duration '%s': rc %d", s, rc);
	if (rc < 0) {
		FUZZ_CHECK(v == 12345, "duration '%s': *out written on failure", s);
		return;
	}
	if (is_keyword(s)) {
		FUZZ_CHECK(v == CORRAL_UNLIMITED, "duration '%s' = %llu", s, (unsigned long long)v);
		return;
	}
	/* A finite duration must never read as "no timeout". */
	FUZZ_CHECK(v != CORRAL_UNLIMITED, "finite duration '%s' parsed as CORRAL_UNLIMITED", s);

	/* A bare number is seconds. */
	size_t n = strlen(s);
	if (n <= 9 && strspn(s, "0123456789") == n)
		FUZZ_CHECK(v == strtoull(s, NULL, 10) * 1000000000ull, "duration '%s' = %llu", s,
		           (unsigned long long)v);

	/* Additivity: at every boundary "...<unit><digit>..." the whole is the
	 * sum of both sides (when both sides parse on their own). */
	char *a = malloc(n + 1);
	if (!a)
		abort();
	for (size_t k = 1; k < n; k++) {
		if (!isalpha((unsigned char)s[k - 1]) ||
		    !(isdigit((unsigned char)s[k]) || s[k] == '.'))
			continue;
		uint64_t x, y;
		memcpy(a, s, k);
		a[k] = '\0';
		if (corral_parse_duration(a, &x) < 0 || corral_parse_duration(s + k, &y) < 0)
			continue;
		FUZZ_CHECK(x != CORRAL_UNLIMITED && y != CORRAL_UNLIMITED,
		           "duration '%s': a part parsed as CORRAL_UNLIMITED", s);
		FUZZ_CHECK(x <= CORRAL_UNLIMITED - 1 - y && v == x + y,
		           "duration '%s' = %llu, but '%s' = %llu and '%s' = %llu", s,
		           (unsigned long long)v, a, (unsigned long long)x, s + k,
		           (unsigned long long)y);
	}
	free(a);
}

/* Parts of a duration that overflow together must fail with -ERANGE. Only
 * for strings made of <number><unit> parts: "1h30" is ambiguous (-EINVAL). */
static void check_duration_sum(const char *s)
{
	size_t n = strlen(s);
	uint64_t v;

	if (n == 0 || !isalpha((unsigned char)s[n - 1]))
		return;
	for (size_t k = 1; k < n; k++) {
		if (!isalpha((unsigned char)s[k - 1]) ||
		    !(isdigit((unsigned char)s[k]) || s[k] == '.'))
			continue;
		char *a = strndup(s, k);
		uint64_t x, y;
		if (!a)
			abort();
		if (corral_parse_duration(a, &x) == 0 && corral_parse_duration(s + k, &y) == 0 &&
		    !is_keyword(a) && !is_keyword(s + k)) {
			int rc = corral_parse_duration(s, &v);
			if (x > CORRAL_UNLIMITED - 1 - y || y == CORRAL_UNLIMITED)
				FUZZ_CHECK(rc == -ERANGE,
				           "duration '%s': rc %d v %llu, parts %llu + %llu", s, rc,
				           (unsigned long long)v, (unsigned long long)x,
				           (unsigned long long)y);
		}
		free(a);
	}
}

/* ---------------------------------------------------------------- enums */

static void check_retry_on(const char *s)
{
	unsigned bits = 0xdead, ref = 0;
	int rc = corral_parse_retry_on(s, &bits);
	bool ok = *s != '\0';
	const unsigned all =
	    CORRAL_RETRY_OOM | CORRAL_RETRY_TIMEOUT | CORRAL_RETRY_SIGNAL | CORRAL_RETRY_EXIT;

	/* Reference: split at every comma; each piece must be a known word. */
	for (const char *p = s; ok;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char w[16] = "";
		if (n < sizeof(w))
			memcpy(w, p, n), w[n] = '\0';
		if (!strcmp(w, "oom"))
			ref |= CORRAL_RETRY_OOM;
		else if (!strcmp(w, "timeout"))
			ref |= CORRAL_RETRY_TIMEOUT;
		else if (!strcmp(w, "signal"))
			ref |= CORRAL_RETRY_SIGNAL;
		else if (!strcmp(w, "exit"))
			ref |= CORRAL_RETRY_EXIT;
		else if (!strcmp(w, "all"))
			ref |= all;
		else if (strcmp(w, "none") || n >= sizeof(w))
			ok = false;
		if (!e)
			break;
		p = e + 1;
	}
	if (ok)
		FUZZ_CHECK(rc == 0 && bits == ref, "retry-on '%s': rc %d bits %#x, expected %#x", s,
		           rc, bits, ref);
	else
		FUZZ_CHECK(rc == -EINVAL && bits == 0xdead, "retry-on '%s': rc %d bits %#x", s, rc,
		           bits);
}

static void check_halt(const char *s)
{
	corral_halt_t h = (corral_halt_t)77;
	int rc = corral_parse_halt(s, &h);

	if (!strcmp(s, "ordered"))
		FUZZ_CHECK(rc == 0 && h == CORRAL_HALT_ORDERED, "halt '%s'", s);
	else if (!strcmp(s, "now"))
		FUZZ_CHECK(rc == 0 && h == CORRAL_HALT_NOW, "halt '%s'", s);
	else if (!strcmp(s, "never"))
		FUZZ_CHECK(rc == 0 && h == CORRAL_HALT_NEVER, "halt '%s'", s);
	else
		FUZZ_CHECK(rc == -EINVAL && h == (corral_halt_t)77, "halt '%s': rc %d", s, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	check_size(s);
	check_duration(s);
	check_duration_sum(s);
	check_retry_on(s);
	check_halt(s);
	free(s);
	return 0;
}
