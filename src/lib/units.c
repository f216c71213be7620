/* units.c - sizes ("512M", "1.5G", "max"), durations ("30s", "1h30m"), and the
 * small enumerations of the options (halt policy, retry-on list).
 *
 * Parsing is strict: the whole string must be consumed, no sign, no exponent,
 * no surrounding spaces. Decimal fractions are computed in integers so that
 * "1.5G" is exactly 1610612736 and the result never depends on the locale.
 */
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "internal.h"

/* Parse "<digits>[.<digits>]" at *p: value = int_part + frac/frac_div. */
static int parse_decimal(const char **p, uint64_t *ip, uint64_t *frac, uint64_t *frac_div)
{
	const char *s = *p;
	uint64_t v = 0, f = 0, d = 1;
	bool any = false;

	while (isdigit((unsigned char)*s)) {
		unsigned dig = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - dig) / 10)
			return -ERANGE;
		v = v * 10 + dig;
		s++;
		any = true;
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s)) {
			if (d < 1000000000000000000ull) { /* 18 digits of precision are plenty */
				f = f * 10 + (uint64_t)(*s - '0');
				d *= 10;
			}
			s++;
			any = true;
		}
	}
	if (!any)
		return -EINVAL;
	*p = s;
	*ip = v;
	*frac = f;
	*frac_div = d;
	return 0;
}

/* v * mult + frac * mult / div, with overflow checks. */
static int scale(uint64_t v, uint64_t frac, uint64_t div, uint64_t mult, uint64_t *out)
{
	unsigned __int128 r = (unsigned __int128)v * mult;

	r += ((unsigned __int128)frac * mult) / div;
	if (r > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)r;
	return 0;
}

int corral_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, frac, div, mult = 1, r;
	const char *p = s;
	int rc;

	if (!s || !*s)
		return -EINVAL;
	if (!strcasecmp(s, "max") || !strcasecmp(s, "unlimited") || !strcasecmp(s, "infinity")) {
		*out = CORRAL_UNLIMITED;
		return 0;
	}
	rc = parse_decimal(&p, &v, &frac, &div);
	if (rc < 0)
		return rc;
	switch (tolower((unsigned char)*p)) {
	case '\0':
		break;
	case 'b':
		p++;
		break;
	case 'k':
		mult = 1ull << 10;
		break;
	case 'm':
		mult = 1ull << 20;
		break;
	case 'g':
		mult = 1ull << 30;
		break;
	case 't':
		mult = 1ull << 40;
		break;
	case 'p':
		mult = 1ull << 50;
		break;
	case 'e':
		mult = 1ull << 60;
		break;
	default:
		return -EINVAL;
	}
	if (mult > 1) {
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
		if (*p == 'b' || *p == 'B')
			p++;
	}
	if (*p)
		return -EINVAL;
	rc = scale(v, frac, div, mult, &r);
	if (rc < 0)
		return rc;
	if (r > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = r;
	return 0;
}

int corral_parse_duration(const char *s, uint64_t *out_ns)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
	    /* Longest names first so "ms" is not read as "m". */
	    {"ns", 1},
	    {"us", 1000},
	    {"ms", 1000000},
	    {"s", 1000000000ull},
	    {"m", 60ull * 1000000000ull},
	    {"h", 3600ull * 1000000000ull},
	    {"d", 86400ull * 1000000000ull},
	};
	const char *p = s;
	uint64_t total = 0;
	int parts = 0;

	if (!s || !*s)
		return -EINVAL;
	if (!strcasecmp(s, "max") || !strcasecmp(s, "infinity") || !strcasecmp(s, "unlimited")) {
		*out_ns = CORRAL_UNLIMITED;
		return 0;
	}
	while (*p) {
		uint64_t v, frac, div, mult = 0, part;
		int rc = parse_decimal(&p, &v, &frac, &div);
		if (rc < 0)
			return rc;
		if (*p == '\0') {
			if (parts > 0)
				return -EINVAL; /* "1h30" is ambiguous */
			mult = 1000000000ull;
		} else {
			for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
				size_t n = strlen(units[i].name);
				if (strncmp(p, units[i].name, n) == 0 &&
				    !isalpha((unsigned char)p[n])) {
					mult = units[i].ns;
					p += n;
					break;
				}
			}
			if (!mult)
				return -EINVAL;
		}
		rc = scale(v, frac, div, mult, &part);
		if (rc < 0)
			return rc;
		/* A finite sum must stay below CORRAL_UNLIMITED ("no timeout"); test
		 * part first, UINT64_MAX - 1 - part would wrap for part == UINT64_MAX. */
		if (part >= CORRAL_UNLIMITED || total > CORRAL_UNLIMITED - 1 - part)
			return -ERANGE;
		total += part;
		parts++;
	}
	*out_ns = total;
	return 0;
}

char *corral_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const suffix[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

	if (bytes == CORRAL_UNLIMITED) {
		snprintf(buf, len, "max");
	} else if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	} else {
		double v = (double)bytes / 1024.0;
		size_t i = 0;
		/* Choose the unit on the value as printed: 1 MiB - 1 is "1.0 MiB",
		 * not "1024.0 KiB". */
		while (v >= 1023.95 && i + 1 < ARRAY_SIZE(suffix)) {
			v /= 1024.0;
			i++;
		}
		snprintf(buf, len, "%.1f %s", v, suffix[i]);
	}
	return buf;
}

int corral_parse_retry_on(const char *s, unsigned *out)
{
	unsigned bits = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 3 && !strncmp(p, "oom", 3))
			bits |= CORRAL_RETRY_OOM;
		else if (n == 7 && !strncmp(p, "timeout", 7))
			bits |= CORRAL_RETRY_TIMEOUT;
		else if (n == 6 && !strncmp(p, "signal", 6))
			bits |= CORRAL_RETRY_SIGNAL;
		else if (n == 4 && !strncmp(p, "exit", 4))
			bits |= CORRAL_RETRY_EXIT;
		else if (n == 3 && !strncmp(p, "all", 3))
			bits |= CORRAL_RETRY_OOM | CORRAL_RETRY_TIMEOUT | CORRAL_RETRY_SIGNAL |
			        CORRAL_RETRY_EXIT;
		else if (n == 4 && !strncmp(p, "none", 4))
			;
		else
			return -EINVAL;
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return -EINVAL;
		}
	}
	*out = bits;
	return 0;
}

int corral_parse_halt(const char *s, corral_halt_t *out)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "ordered"))
		*out = CORRAL_HALT_ORDERED;
	else if (!strcmp(s, "now"))
		*out = CORRAL_HALT_NOW;
	else if (!strcmp(s, "never"))
		*out = CORRAL_HALT_NEVER;
	else
		return -EINVAL;
	return 0;
}

/* The rungs of the provider chain (provider.c). */
static const char *const cgroups_names[CORRAL_CGROUPS_COUNT] = {
    [CORRAL_CGROUPS_AUTO] = "auto",       [CORRAL_CGROUPS_OWN] = "own",
    [CORRAL_CGROUPS_SYSTEMD] = "systemd", [CORRAL_CGROUPS_SLURM] = "slurm",
    [CORRAL_CGROUPS_OBSERVE] = "observe", [CORRAL_CGROUPS_OFF] = "off",
};

const char *corral_cgroups_name(corral_cgroups_t c)
{
	return (unsigned)c < CORRAL_CGROUPS_COUNT ? cgroups_names[c] : NULL;
}

int corral_parse_cgroups(const char *s, corral_cgroups_t *out)
{
	for (unsigned i = 0; s && i < CORRAL_CGROUPS_COUNT; i++) {
		if (!strcmp(s, cgroups_names[i])) {
			*out = (corral_cgroups_t)i;
			return 0;
		}
	}
	return -EINVAL;
}
