/* fuzz_keyed.c - the flat-keyed and single-value cgroup files:
 * corral__parse_keyed() (memory.events, memory.oom_control, pids.events,
 * cgroup.events, cpu.stat) with the keys the library reads,
 * corral__parse_u64_or_max() (memory.max, memory.peak, pids.max, ...) and
 * corral__list_has() (cgroup.controllers, cgroup.subtree_control).
 *
 * Every result is compared with a straightforward reference: the first line
 * that is "<key> <digits>" (optionally followed by " ..."), exact key match.
 */
#include <errno.h>

#include "fuzz.h"
#include "internal.h"

static const char *const keys[] = {
    "oom",        "oom_kill",         "oom_group_kill", "max",          "low",
    "high",       "populated",        "frozen",         "user_usec",    "system_usec",
    "usage_usec", "oom_kill_disable", "under_oom",      "nr_throttled", "throttled_usec",
};

/* -ENOENT, -EINVAL or 0 with *out, like corral__parse_keyed(). */
static int ref_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		const char *eol = nl ? nl : line + strlen(line);
		if ((size_t)(eol - line) > klen && !strncmp(line, key, klen) && line[klen] == ' ') {
			const char *p = line + klen + 1;
			unsigned __int128 v = 0;
			if (p == eol || *p < '0' || *p > '9')
				return -EINVAL;
			for (; p < eol && *p >= '0' && *p <= '9'; p++) {
				v = v * 10 + (unsigned)(*p - '0');
				if (v > UINT64_MAX)
					return -EINVAL;
			}
			if (p != eol && *p != ' ')
				return -EINVAL;
			*out = (uint64_t)v;
			return 0;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return -ENOENT;
}

static int ref_u64_or_max(const char *text, uint64_t *out)
{
	size_t n = strlen(text);
	unsigned __int128 v = 0;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (n == 3 && !strncmp(text, "max", 3)) {
		*out = UINT64_MAX;
		return 0;
	}
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(text[i] - '0');
		if (v > UINT64_MAX)
			return -EINVAL;
	}
	*out = (uint64_t)v;
	return 0;
}

static bool ref_list_has(const char *list, const char *name)
{
	char *copy = strdup(list), *save = NULL;
	bool found = false;

	if (!copy)
		abort();
	for (char *w = strtok_r(copy, " ,\n", &save); w && !found;
	     w = strtok_r(NULL, " ,\n", &save))
		found = !strcmp(w, name);
	free(copy);
	return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	uint64_t v, ref;
	int rc, want;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		v = 4242;
		ref = 0;
		rc = corral__parse_keyed(text, keys[i], &v);
		want = ref_keyed(text, keys[i], &ref);
		FUZZ_CHECK(rc == want, "key %s: rc %d, expected %d", keys[i], rc, want);
		if (rc == 0)
			FUZZ_CHECK(v == ref, "key %s: %llu, expected %llu", keys[i],
			           (unsigned long long)v, (unsigned long long)ref);
		else
			FUZZ_CHECK(v == 4242, "key %s: *out written on failure", keys[i]);
	}

	v = 4242;
	rc = corral__parse_u64_or_max(text, &v);
	want = ref_u64_or_max(text, &ref);
	FUZZ_CHECK(rc == want, "u64_or_max: rc %d, expected %d", rc, want);
	if (rc == 0)
		FUZZ_CHECK(v == ref, "u64_or_max: %llu, expected %llu", (unsigned long long)v,
		           (unsigned long long)ref);
	else
		FUZZ_CHECK(v == 4242, "u64_or_max: *out written on failure");

	static const char *const ctls[] = {"memory", "pids", "cpu", "io"};
	for (size_t i = 0; i < sizeof(ctls) / sizeof(ctls[0]); i++)
		FUZZ_CHECK(corral__list_has(text, ctls[i]) == ref_list_has(text, ctls[i]),
		           "list_has(%s)", ctls[i]);
	free(text);
	return 0;
}
