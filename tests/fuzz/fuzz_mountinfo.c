/* fuzz_mountinfo.c - corral__parse_mountinfo() and
 * corral__parse_cgroup_mount_points() on /proc/self/mountinfo text.
 *
 * Checks: no crash or uninitialized field use; the v2 / memory / pids mounts
 * found are cgroup mounts with the right flags and also appear in the list of
 * cgroup mount points; both functions agree on how many cgroup mounts there
 * are (the list may only be cut at its maximum).
 */
#include <errno.h>

#include "fuzz.h"
#include "internal.h"

#define MAX_POINTS 512

static char points[MAX_POINTS][4096];

static void check_mount(const struct corral__cg_mount *m, const char *what, int n, int max)
{
	FUZZ_CHECK(strnlen(m->mount_point, sizeof(m->mount_point)) < sizeof(m->mount_point),
	           "%s: mount point not terminated", what);
	FUZZ_CHECK(strnlen(m->root, sizeof(m->root)) < sizeof(m->root), "%s: root not terminated",
	           what);
	if (n >= max)
		return; /* the list may have been cut before this mount */
	for (int i = 0; i < n; i++)
		if (!strcmp(points[i], m->mount_point))
			return;
	FUZZ_CHECK(false, "%s mount point '%s' is not among the %d cgroup mount points", what,
	           m->mount_point, n);
}

/* Known answers, checked once: lines the kernel really writes. */
static void known_answers(void)
{
	struct corral__mounts *m = malloc(sizeof(*m));

	if (!m)
		abort();
	/* A mount with an empty source (mount -t cgroup2 "" DIR) has an empty
	 * field: "cgroup2  rw,...". Its super options must still be found. */
	corral__parse_mountinfo("42 27 0:38 / /tmp/mt rw,relatime - cgroup2  rw,nsdelegate\n"
	                        "43 27 0:39 / /tmp/m1 rw,relatime - cgroup  rw,memory,pids\n",
	                        m);
	FUZZ_CHECK(m->has_v2 && m->v2.nsdelegate && !strcmp(m->v2.mount_point, "/tmp/mt"),
	           "empty-source cgroup2 mount");
	FUZZ_CHECK(m->has_memory && m->has_pids && !strcmp(m->memory.mount_point, "/tmp/m1"),
	           "empty-source cgroup v1 mount");
	FUZZ_CHECK(corral__parse_cgroup_mount_points("42 27 0:38 / /a\\040b rw - cgroup2  rw\n",
	                                             points, 4) == 1 &&
	               !strcmp(points[0], "/a b"),
	           "mount points");
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool checked;

	if (!checked) {
		known_answers();
		checked = true;
	}
	char *text = fuzz_cstr(data, size);
	struct corral__mounts *m = malloc(sizeof(*m));
	int max = size > 0 ? 1 + data[0] % MAX_POINTS : MAX_POINTS;

	if (!m)
		abort();
	memset(m, 0xa5, sizeof(*m));
	int rc = corral__parse_mountinfo(text, m);
	FUZZ_CHECK(rc == 0, "rc %d", rc);
	int n = corral__parse_cgroup_mount_points(text, points, max);
	FUZZ_CHECK(n >= 0 && n <= max, "%d mount points (max %d)", n, max);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(strnlen(points[i], 4096) < 4096, "point %d not terminated", i);
	FUZZ_CHECK(m->n_cgroup_mounts >= 0, "n_cgroup_mounts %d", m->n_cgroup_mounts);
	FUZZ_CHECK(n == (m->n_cgroup_mounts < max ? m->n_cgroup_mounts : max),
	           "%d mount points but %d cgroup mounts (max %d)", n, m->n_cgroup_mounts, max);
	FUZZ_CHECK(m->n_cgroup_mounts >= (int)m->has_v2 + (m->has_memory || m->has_pids),
	           "n_cgroup_mounts %d", m->n_cgroup_mounts);
	if (m->has_v2) {
		FUZZ_CHECK(m->v2.v2 && !m->v2.memory && !m->v2.pids, "v2 flags");
		check_mount(&m->v2, "v2", n, max);
	}
	if (m->has_memory) {
		FUZZ_CHECK(!m->memory.v2 && m->memory.memory, "memory flags");
		check_mount(&m->memory, "memory", n, max);
	}
	if (m->has_pids) {
		FUZZ_CHECK(!m->pids.v2 && m->pids.pids, "pids flags");
		check_mount(&m->pids, "pids", n, max);
	}
	free(m);
	free(text);
	return 0;
}
