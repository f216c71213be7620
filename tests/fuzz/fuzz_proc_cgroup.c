/* fuzz_proc_cgroup.c - corral__parse_proc_cgroup() on /proc/self/cgroup text
 * ("id:controllers:path" lines; "0::/path" for cgroup v2).
 *
 * Checks: -EINVAL or 0; every path found is a NUL-terminated absolute path
 * that is a line's path field (possibly truncated to the buffer), and the
 * flags agree with the paths.
 */
#include <errno.h>

#include "fuzz.h"
#include "internal.h"

static void check_path(const char *text, const char *path, size_t size, bool has, const char *what)
{
	size_t len = strnlen(path, size);

	FUZZ_CHECK(len < size, "%s path not NUL-terminated", what);
	if (!has) {
		FUZZ_CHECK(len == 0, "%s path '%s' without the flag", what, path);
		return;
	}
	FUZZ_CHECK(path[0] == '/', "%s path '%s' is not absolute", what, path);
	/* It is a ":/..." field of the text (or its truncated prefix). */
	char *needle = malloc(len + 2);
	if (!needle)
		abort();
	needle[0] = ':';
	memcpy(needle + 1, path, len + 1);
	FUZZ_CHECK(strstr(text, needle) != NULL, "%s path '%s' is not in the text", what, path);
	free(needle);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct corral__proc_cgroup *pc = malloc(sizeof(*pc));

	if (!pc)
		abort();
	int rc = corral__parse_proc_cgroup(text, pc);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	if (rc == 0) {
		check_path(text, pc->v2_path, sizeof(pc->v2_path), pc->has_v2, "v2");
		check_path(text, pc->memory_path, sizeof(pc->memory_path), pc->has_memory_v1,
		           "memory");
		check_path(text, pc->pids_path, sizeof(pc->pids_path), pc->has_pids_v1, "pids");
		if (pc->has_v2)
			FUZZ_CHECK(strstr(text, "0::/") != NULL, "v2 without a 0:: line");
		if (pc->has_memory_v1)
			FUZZ_CHECK(strstr(text, "memory") != NULL, "memory without 'memory'");
		if (pc->has_pids_v1)
			FUZZ_CHECK(strstr(text, "pids") != NULL, "pids without 'pids'");
	}
	free(pc);
	free(text);
	return 0;
}
