/* test_hierarchy.c - corral__hier_discover() on fake cgroupfs trees.
 *
 * Each test builds a temp dir holding fake cgroup mounts (plain directories
 * with the interface files discovery looks at), and hands discovery a fake
 * /proc/self/cgroup and a fake mountinfo whose mount points lie inside that
 * temp dir. probe_kernel is off: nothing of the real host is consulted.
 * Note that the files are regular files, so `writable` (access(W_OK)) is
 * true wherever they exist; this suite runs as root here, so a read-only
 * mode on them would not be seen either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "cgroup.h"

struct fx {
	char *root;
	char mi[8192];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->root = tl_tmpdir();
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	tl_rm_rf(f->root);
	free(f->root);
	free(f);
	return 0;
}

/* root/rel as a path. */
static const char *P(const struct fx *f, const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *b = buf[i++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", f->root, rel);
	return b;
}

/* Append a mountinfo line for a cgroup mount at root/rel. */
static void mount_line(struct fx *f, const char *fsroot, const char *rel, const char *fstype,
                       const char *super_opts)
{
	size_t l = strlen(f->mi);

	snprintf(f->mi + l, sizeof(f->mi) - l,
	         "%zu 25 0:%zu %s %s/%s rw,nosuid,nodev,noexec,relatime shared:%zu - %s %s %s\n",
	         30 + l % 97, 26 + l % 13, fsroot, f->root, rel, 4 + l % 7, fstype, fstype,
	         super_opts);
}

static void add_other_mounts(struct fx *f)
{
	size_t l = strlen(f->mi);

	snprintf(f->mi + l, sizeof(f->mi) - l,
	         "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
	         "24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n");
}

/* A non-root v2 cgroup dir with the usual files of a recent kernel. */
static void v2_cgroup(struct fx *f, const char *rel, const char *controllers, const char *subtree)
{
	char p[PATH_MAX];

	tl_mkdir_p(f->root, rel);
#define F(name, content)                                                                           \
	do {                                                                                       \
		snprintf(p, sizeof(p), "%s/%s", rel, name);                                        \
		tl_write(f->root, p, content);                                                     \
	} while (0)
	F("cgroup.type", "domain\n");
	F("cgroup.controllers", controllers);
	F("cgroup.subtree_control", subtree);
	F("cgroup.procs", "");
	F("cgroup.kill", "");
	F("cgroup.events", "populated 1\nfrozen 0\n");
	F("memory.peak", "0\n");
	F("memory.events.local", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	F("memory.swap.max", "max\n");
#undef F
}

/* The real root of a v2 hierarchy: no cgroup.type and few files. */
static void v2_root(struct fx *f, const char *rel, const char *controllers, const char *subtree)
{
	char p[PATH_MAX];

	tl_mkdir_p(f->root, rel);
	snprintf(p, sizeof(p), "%s/cgroup.controllers", rel);
	tl_write(f->root, p, controllers);
	snprintf(p, sizeof(p), "%s/cgroup.subtree_control", rel);
	tl_write(f->root, p, subtree);
	snprintf(p, sizeof(p), "%s/cgroup.procs", rel);
	tl_write(f->root, p, "1\n");
}

static int discover(struct fx *f, const char *proc_self_cgroup, const char *parent,
                    struct corral__hier *h, corral_error_t *err)
{
	struct corral__hier_env env = {
	    .proc_self_cgroup = proc_self_cgroup,
	    .mountinfo = f->mi,
	    .probe_kernel = false,
	};

	memset(err, 0, sizeof(*err));
	return corral__hier_discover(&env, parent, h, err);
}

/* ------------------------------------------------------------ cgroup v2 */

static void v2_own_cgroup(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	add_other_mounts(f);
	mount_line(f, "/", "cg", "cgroup2", "rw,nsdelegate,memory_recursiveprot");
	v2_root(f, "cg", "cpuset cpu io memory hugetlb pids rdma misc\n", "cpu memory pids\n");
	v2_cgroup(f, "cg/user.slice", "cpu memory pids\n", "cpu memory pids\n");
	v2_cgroup(f, "cg/user.slice/app.scope", "cpu memory pids\n", "\n");

	assert_int_equal(discover(f, "0::/user.slice/app.scope\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_true(h.mounts.has_v2);
	assert_true(h.mounts.v2.nsdelegate);
	assert_true(h.self.has_v2);
	assert_string_equal(h.base_path, "/user.slice/app.scope");
	assert_string_equal(h.base_dir, P(f, "cg/user.slice/app.scope"));
	assert_string_equal(h.own_dir, P(f, "cg/user.slice/app.scope"));
	assert_string_equal(h.pids_base_dir, "");
	assert_true(h.base_exists);
	assert_true(h.base_is_own);
	assert_false(h.base_is_root);
	assert_true(h.writable);
	assert_true(h.need_supervisor);
	assert_false(h.in_cgroupns);
	assert_string_equal(h.controllers, "cpu memory pids");
	assert_string_equal(h.subtree_control, "");
	assert_true(h.has_memory);
	assert_true(h.has_pids);
	assert_true(h.has_cpu);
	/* Kernel features from the files of a non-root cgroup. */
	assert_true(h.cgroup_kill);
	assert_true(h.memory_peak);
	assert_true(h.events_local);
	assert_false(h.oom_group); /* no memory.oom.group file */
	assert_true(h.swap_accounting);
	/* Nothing probed. */
	assert_false(h.clone3);
	assert_false(h.pidfd);
	assert_int_equal(h.kernel_major, 0);
}

static void v2_old_kernel_files(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	/* A 5.4-era cgroup: no cgroup.kill, no memory.peak, but oom.group. */
	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "cpu memory pids\n", "memory pids\n");
	tl_mkdir_p(f->root, "cg/job");
	tl_write(f->root, "cg/job/cgroup.type", "domain\n");
	tl_write(f->root, "cg/job/cgroup.controllers", "memory pids\n");
	tl_write(f->root, "cg/job/cgroup.subtree_control", "");
	tl_write(f->root, "cg/job/memory.oom.group", "0\n");
	tl_write(f->root, "cg/job/memory.events", "low 0\n");

	assert_int_equal(discover(f, "0::/job\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_false(h.mounts.v2.nsdelegate);
	assert_false(h.cgroup_kill);
	assert_false(h.memory_peak);
	assert_false(h.events_local);
	assert_true(h.oom_group);
	assert_false(h.swap_accounting);
	assert_true(h.has_memory);
	assert_true(h.has_pids);
	assert_false(h.has_cpu);
	assert_string_equal(h.subtree_control, "");
}

static void v2_at_root(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	mount_line(f, "/", "cg", "cgroup2", "rw,nsdelegate");
	v2_root(f, "cg", "cpu io memory pids\n", "\n");

	assert_int_equal(discover(f, "0::/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_string_equal(h.base_path, "/");
	assert_string_equal(h.base_dir, P(f, "cg"));
	assert_string_equal(h.own_dir, P(f, "cg"));
	assert_true(h.base_exists);
	assert_true(h.base_is_own);
	assert_true(h.base_is_root);
	assert_false(h.need_supervisor); /* the root is exempt from the no-internal rule */
	assert_false(h.in_cgroupns);
	assert_true(h.writable);
	assert_true(h.has_memory);
	assert_true(h.has_pids);
	assert_true(h.has_cpu);
	assert_string_equal(h.controllers, "cpu io memory pids");
}

static void v2_cgroupns_root(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	/* Inside a cgroup namespace we see ourselves at "/", but the directory
	 * is a non-root cgroup: it has cgroup.type. */
	mount_line(f, "/", "cg", "cgroup2", "rw,nsdelegate");
	v2_cgroup(f, "cg", "memory pids\n", "\n");

	assert_int_equal(discover(f, "0::/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_string_equal(h.base_path, "/");
	assert_string_equal(h.base_dir, P(f, "cg"));
	assert_true(h.base_is_own);
	assert_false(h.base_is_root);
	assert_true(h.in_cgroupns);
	assert_true(h.need_supervisor);
	assert_true(h.has_memory);
	assert_false(h.has_cpu);
	assert_true(h.cgroup_kill);
}

static void v2_without_memory(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "cpu io memory pids\n", "cpu pids\n");
	v2_cgroup(f, "cg/user.slice", "cpu pids\n", "\n");

	assert_int_equal(discover(f, "0::/user.slice\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_false(h.has_memory);
	assert_true(h.has_pids);
	assert_true(h.has_cpu);
	assert_string_equal(h.controllers, "cpu pids");

	/* "memory" must be a whole word: "memoryx" and "nomemory" are not it. */
	tl_write(f->root, "cg/user.slice/cgroup.controllers", "memoryx nomemory pids\n");
	assert_int_equal(discover(f, "0::/user.slice\n", NULL, &h, &err), 0);
	assert_false(h.has_memory);

	/* An empty cgroup.controllers (nothing delegated). */
	tl_write(f->root, "cg/user.slice/cgroup.controllers", "");
	assert_int_equal(discover(f, "0::/user.slice\n", NULL, &h, &err), 0);
	assert_false(h.has_memory);
	assert_false(h.has_pids);
	assert_false(h.has_cpu);
	assert_string_equal(h.controllers, "");
}

static void v2_escaped_mount_point_and_container_root(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;
	char line[PATH_MAX + 256];

	/* The mount point has a space (written \040 in mountinfo), and the
	 * mount's root is the container's cgroup, not "/". */
	tl_mkdir_p(f->root, "my cg");
	v2_cgroup(f, "my cg", "memory pids\n", "\n");
	v2_cgroup(f, "my cg/inner", "memory pids\n", "\n");
	snprintf(line, sizeof(line),
	         "40 30 0:26 /docker/abc %s/my\\040cg ro,nosuid,nodev,noexec,relatime - cgroup2 "
	         "cgroup2 rw,nsdelegate\n",
	         f->root);
	snprintf(f->mi, sizeof(f->mi), "%s", line);

	assert_int_equal(discover(f, "0::/docker/abc/inner\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_true(h.mounts.v2.read_only);
	assert_string_equal(h.mounts.v2.root, "/docker/abc");
	assert_string_equal(h.base_path, "/docker/abc/inner");
	assert_string_equal(h.base_dir, P(f, "my cg/inner"));
	assert_true(h.base_exists);
	assert_true(h.need_supervisor);

	/* Our cgroup is the mount's root itself. */
	assert_int_equal(discover(f, "0::/docker/abc\n", NULL, &h, &err), 0);
	assert_string_equal(h.base_dir, P(f, "my cg"));
	assert_false(h.base_is_root); /* it has cgroup.type: not the real root */

	/* A --cgroup-parent outside the mount is reported, naming the mount. */
	assert_int_equal(discover(f, "0::/docker/abc\n", "/docker/abcd", &h, &err), -EXDEV);
	assert_int_equal(err.code, EXDEV);
	assert_non_null(strstr(err.msg, "cgroup `/docker/abcd` is not visible under the cgroup2 "
	                                "mount at "));
	assert_non_null(strstr(err.msg, "(mount root /docker/abc)"));
	assert_int_equal(discover(f, "0::/docker/abc\n", "/other", &h, &err), -EXDEV);
}

/* A second executor of this process: the first one moved us into
 * <home>/corral-<ourpid>-.../supervisor. Home is our own cgroup then, and the
 * new batch needs no supervisor of its own. Another pid's batch is not. */
static void v2_second_executor(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;
	char pc[512], rel[256];

	add_other_mounts(f);
	mount_line(f, "/", "cg", "cgroup2", "rw,nsdelegate");
	v2_root(f, "cg", "cpu memory pids\n", "cpu memory pids\n");
	v2_cgroup(f, "cg/app.scope", "cpu memory pids\n", "memory pids\n");
	snprintf(rel, sizeof(rel), "cg/app.scope/corral-%d-77-0000000100000002/supervisor",
	         (int)getpid());
	v2_cgroup(f, rel, "memory pids\n", "\n");
	snprintf(pc, sizeof(pc), "0::/app.scope/corral-%d-77-0000000100000002/supervisor\n",
	         (int)getpid());
	assert_int_equal(discover(f, pc, NULL, &h, &err), 0);
	assert_string_equal(h.base_path, "/app.scope");
	assert_true(h.in_supervisor);
	assert_true(h.base_is_own);
	assert_false(h.need_supervisor);
	/* An explicit parent is taken as it is. */
	assert_int_equal(discover(f, pc, "/app.scope", &h, &err), 0);
	assert_false(h.in_supervisor);
	/* Someone else's batch: our cgroup is that supervisor. */
	snprintf(rel, sizeof(rel), "cg/app.scope/corral-%d-77-0000000100000002/supervisor",
	         (int)getpid() + 1);
	v2_cgroup(f, rel, "memory pids\n", "\n");
	snprintf(pc, sizeof(pc), "0::/app.scope/corral-%d-77-0000000100000002/supervisor\n",
	         (int)getpid() + 1);
	assert_int_equal(discover(f, pc, NULL, &h, &err), 0);
	assert_false(h.in_supervisor);
	assert_true(h.need_supervisor);
}

static void v2_not_writable(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	/* Without cgroup.subtree_control we could not enable controllers. */
	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "memory pids\n", "memory pids\n");
	tl_mkdir_p(f->root, "cg/ro");
	tl_write(f->root, "cg/ro/cgroup.type", "domain\n");
	tl_write(f->root, "cg/ro/cgroup.controllers", "memory pids\n");

	assert_int_equal(discover(f, "0::/ro\n", NULL, &h, &err), 0);
	assert_true(h.base_exists);
	assert_false(h.writable);
	assert_string_equal(h.subtree_control, "");
	assert_true(h.has_memory);
}

static void v2_cgroup_parent(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "memory pids\n", "memory pids\n");
	v2_cgroup(f, "cg/user.slice", "memory pids\n", "memory pids\n");
	v2_cgroup(f, "cg/jobs.slice", "memory pids\n", "memory pids\n");
	v2_cgroup(f, "cg/jobs.slice/batch", "memory\n", "\n");

	assert_int_equal(discover(f, "0::/user.slice\n", "/jobs.slice/batch", &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V2);
	assert_string_equal(h.base_path, "/jobs.slice/batch");
	assert_string_equal(h.base_dir, P(f, "cg/jobs.slice/batch"));
	assert_string_equal(h.own_dir, P(f, "cg/user.slice"));
	assert_true(h.base_exists);
	assert_false(h.base_is_own);
	assert_false(h.need_supervisor); /* we do not live in a parent we were given */
	assert_true(h.has_memory);
	assert_false(h.has_pids); /* the parent's controllers count, not ours */

	/* Our own cgroup, named explicitly, is still our own. */
	assert_int_equal(discover(f, "0::/user.slice\n", "/user.slice", &h, &err), 0);
	assert_true(h.base_is_own);
	assert_true(h.need_supervisor);

	/* The hierarchy root. */
	assert_int_equal(discover(f, "0::/user.slice\n", "/", &h, &err), 0);
	assert_string_equal(h.base_dir, P(f, "cg"));
	assert_true(h.base_is_root);
	assert_false(h.need_supervisor);

	/* A clean path that does not exist: discovery succeeds, it is just not
	 * usable (batch creation reports it). */
	assert_int_equal(discover(f, "0::/user.slice\n", "/nope/x", &h, &err), 0);
	assert_false(h.base_exists);
	assert_false(h.writable);
	assert_false(h.need_supervisor);
	assert_false(h.has_memory);
	assert_int_equal(err.code, 0);
}

static void cgroup_parent_rejected(void **state)
{
	static const char *const bad[] = {
	    "relative", "jobs.slice/batch", "/a/../b", "/a//b", "/a/", "/./a", "/a/.", "/..", "//",
	    "",
	};
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "memory pids\n", "memory pids\n");
	v2_cgroup(f, "cg/a", "memory\n", "\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];
		int rc = discover(f, "0::/a\n", bad[i], &h, &err);
		if (rc != -EINVAL)
			fail_msg("--cgroup-parent \"%s\": rc %d, want -EINVAL", bad[i], rc);
		assert_int_equal(err.code, EINVAL);
		snprintf(want, sizeof(want),
		         "--cgroup-parent `%s` is not a clean absolute cgroup path (like "
		         "/jobs.slice/batch, as /proc/self/cgroup shows paths): Invalid argument",
		         bad[i]);
		assert_string_equal(err.msg, want);
	}
	/* Names that merely contain dots are fine. */
	static const char *const good[] = {"/a", "/a.b", "/..a", "/a/...", "/.hidden"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = discover(f, "0::/a\n", good[i], &h, &err);
		if (rc != 0)
			fail_msg("--cgroup-parent \"%s\": rc %d (%s)", good[i], rc, err.msg);
		assert_string_equal(h.base_path, good[i]);
	}
}

static void malformed_proc_self_cgroup(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "memory\n", "\n");
	assert_int_equal(discover(f, "garbage\n", NULL, &h, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "parse /proc/self/cgroup: Invalid argument");
}

/* ------------------------------------------------------------ hybrid and v1 */

static const char *hybrid_self = "12:rdma:/\n"
                                 "9:name=systemd:/user.slice/s.scope\n"
                                 "8:pids:/user.slice/s.scope\n"
                                 "4:memory:/user.slice/s.scope\n"
                                 "2:cpu,cpuacct:/user.slice\n"
                                 "0::/user.slice/s.scope\n";

static void hybrid_tree(struct fx *f, bool with_unified)
{
	size_t l = strlen(f->mi);

	snprintf(f->mi + l, sizeof(f->mi) - l,
	         "25 22 0:22 / %s/sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs "
	         "ro,mode=755\n",
	         f->root);
	tl_mkdir_p(f->root, "sys/fs/cgroup");
	if (with_unified) {
		mount_line(f, "/", "sys/fs/cgroup/unified", "cgroup2", "rw,nsdelegate");
		/* Hybrid: the unified hierarchy holds no controllers. */
		v2_root(f, "sys/fs/cgroup/unified", "", "");
		v2_cgroup(f, "sys/fs/cgroup/unified/user.slice/s.scope", "", "");
	}
	mount_line(f, "/", "sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd");
	mount_line(f, "/", "sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct");
	mount_line(f, "/", "sys/fs/cgroup/memory", "cgroup", "rw,memory");
	mount_line(f, "/", "sys/fs/cgroup/pids", "cgroup", "rw,pids");
	tl_write(f->root, "sys/fs/cgroup/memory/user.slice/s.scope/memory.limit_in_bytes",
	         "9223372036854771712\n");
	tl_write(f->root, "sys/fs/cgroup/memory/user.slice/s.scope/memory.memsw.limit_in_bytes",
	         "9223372036854771712\n");
	tl_write(f->root, "sys/fs/cgroup/memory/user.slice/s.scope/cgroup.procs", "");
	tl_write(f->root, "sys/fs/cgroup/pids/user.slice/s.scope/pids.max", "max\n");
	tl_write(f->root, "sys/fs/cgroup/pids/user.slice/s.scope/cgroup.procs", "");
}

static void hybrid(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	hybrid_tree(f, true);
	assert_int_equal(discover(f, hybrid_self, NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_HYBRID);
	assert_true(h.mounts.has_v2);
	assert_true(h.mounts.has_memory);
	assert_true(h.mounts.has_pids);
	assert_int_equal(h.mounts.n_cgroup_mounts, 5);
	assert_string_equal(h.base_path, "/user.slice/s.scope");
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory/user.slice/s.scope"));
	assert_string_equal(h.own_dir, P(f, "sys/fs/cgroup/memory/user.slice/s.scope"));
	assert_string_equal(h.pids_base_dir, P(f, "sys/fs/cgroup/pids/user.slice/s.scope"));
	assert_true(h.base_exists);
	assert_true(h.base_is_own);
	assert_false(h.base_is_root);
	assert_true(h.writable);
	assert_false(h.need_supervisor); /* v1 has no no-internal-process rule */
	assert_true(h.has_memory);
	assert_true(h.has_pids);
	assert_true(h.memory_peak);
	assert_true(h.swap_accounting);
	assert_false(h.in_cgroupns);

	/* Without swap accounting (no memsw files). */
	tl_rm_rf(P(f, "sys/fs/cgroup/memory/user.slice/s.scope/memory.memsw.limit_in_bytes"));
	assert_int_equal(discover(f, hybrid_self, NULL, &h, &err), 0);
	assert_false(h.swap_accounting);
}

static void hybrid_cgroup_parent(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	hybrid_tree(f, true);
	tl_mkdir_p(f->root, "sys/fs/cgroup/memory/jobs/batch");
	tl_mkdir_p(f->root, "sys/fs/cgroup/memory/jobs/memonly");
	tl_mkdir_p(f->root, "sys/fs/cgroup/pids/jobs/batch");

	/* The parent exists in both hierarchies (Slurm's layout). */
	assert_int_equal(discover(f, hybrid_self, "/jobs/batch", &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_HYBRID);
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory/jobs/batch"));
	assert_string_equal(h.pids_base_dir, P(f, "sys/fs/cgroup/pids/jobs/batch"));
	assert_false(h.base_is_own);
	assert_true(h.has_pids);

	/* Not in the pids hierarchy: fall back to our own pids cgroup. */
	assert_int_equal(discover(f, hybrid_self, "/jobs/memonly", &h, &err), 0);
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory/jobs/memonly"));
	assert_string_equal(h.pids_base_dir, P(f, "sys/fs/cgroup/pids/user.slice/s.scope"));
	assert_true(h.has_pids);

	/* Our own pids cgroup missing too: no pids at all. */
	tl_rm_rf(P(f, "sys/fs/cgroup/pids/user.slice"));
	assert_int_equal(discover(f, hybrid_self, "/jobs/memonly", &h, &err), 0);
	assert_string_equal(h.pids_base_dir, "");
	assert_false(h.has_pids);
	assert_true(h.has_memory);

	/* The memory hierarchy's root. */
	assert_int_equal(discover(f, hybrid_self, "/", &h, &err), 0);
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory"));
	assert_true(h.base_is_root);

	/* Bad parents are rejected on hybrid hosts too. */
	assert_int_equal(discover(f, hybrid_self, "/jobs/../batch", &h, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "`/jobs/../batch`"));
}

static void v1_only(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;
	const char *self = "9:name=systemd:/\n"
	                   "8:pids:/\n"
	                   "4:memory:/process_api/144da656\n"
	                   "2:cpuacct:/\n"
	                   "1:cpu:/\n";

	hybrid_tree(f, false);
	tl_mkdir_p(f->root, "sys/fs/cgroup/memory/process_api/144da656");
	assert_int_equal(discover(f, self, NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V1);
	assert_false(h.mounts.has_v2);
	assert_string_equal(h.base_path, "/process_api/144da656");
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory/process_api/144da656"));
	/* pids at the hierarchy root: our own pids cgroup is "/". */
	assert_string_equal(h.pids_base_dir, P(f, "sys/fs/cgroup/pids"));
	assert_true(h.has_pids);
	assert_true(h.has_memory);
	assert_false(h.base_is_root);
	assert_true(h.base_is_own);
	assert_false(h.need_supervisor);
	assert_false(h.swap_accounting);

	/* We sit at the memory root. */
	assert_int_equal(discover(f, "8:pids:/\n4:memory:/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V1);
	assert_string_equal(h.base_dir, P(f, "sys/fs/cgroup/memory"));
	assert_true(h.base_is_root);

	/* No pids line in /proc/self/cgroup: no pids. */
	assert_int_equal(discover(f, "4:memory:/\n", NULL, &h, &err), 0);
	assert_false(h.has_pids);
	assert_string_equal(h.pids_base_dir, "");

	/* Our memory cgroup vanished: discovery still succeeds. */
	assert_int_equal(discover(f, "4:memory:/gone\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V1);
	assert_false(h.base_exists);
	assert_false(h.has_memory);
	assert_false(h.writable);
}

static void v1_container_mount_root(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;
	char line[PATH_MAX + 256];

	/* A container without its own cgroup namespace: the v1 memory mount's
	 * root is the container's cgroup, and /proc/self/cgroup shows the full
	 * path. */
	snprintf(line, sizeof(line),
	         "51 40 0:27 /docker/abc %s/memory ro,nosuid,nodev,noexec,relatime master:14 - "
	         "cgroup cgroup rw,memory\n",
	         f->root);
	snprintf(f->mi, sizeof(f->mi), "%s", line);
	tl_mkdir_p(f->root, "memory/sub");
	tl_write(f->root, "memory/memory.limit_in_bytes", "67108864\n");

	assert_int_equal(discover(f, "4:memory:/docker/abc\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_V1);
	assert_true(h.mounts.memory.read_only);
	assert_string_equal(h.base_dir, P(f, "memory"));
	assert_true(h.base_exists);
	assert_true(h.has_memory);
	assert_false(h.base_is_root);

	assert_int_equal(discover(f, "4:memory:/docker/abc/sub\n", NULL, &h, &err), 0);
	assert_string_equal(h.base_dir, P(f, "memory/sub"));
	assert_false(h.base_is_root);
	assert_int_equal(discover(f, "4:memory:/docker/other\n", NULL, &h, &err), -EXDEV);
	assert_non_null(strstr(err.msg, "cgroup `/docker/other` is not visible under the memory "
	                                "mount at "));
}

static void none(void **state)
{
	struct fx *f = *state;
	struct corral__hier h;
	corral_error_t err;

	/* No cgroup mounts at all. */
	add_other_mounts(f);
	assert_int_equal(discover(f, "0::/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_NONE);
	assert_false(h.has_memory);
	assert_string_equal(h.base_dir, "");
	assert_int_equal(h.mounts.n_cgroup_mounts, 0);

	/* A v1 memory mount but /proc/self/cgroup has no memory line, and no
	 * cgroup2: nothing usable. */
	mount_line(f, "/", "m", "cgroup", "rw,memory");
	tl_mkdir_p(f->root, "m");
	assert_int_equal(discover(f, "8:pids:/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_NONE);
	assert_false(h.has_memory);

	/* A cgroup2 mount without a "0::" line: not usable either. */
	f->mi[0] = '\0';
	mount_line(f, "/", "cg", "cgroup2", "rw");
	v2_root(f, "cg", "memory\n", "\n");
	assert_int_equal(discover(f, "4:cpu:/\n", NULL, &h, &err), 0);
	assert_int_equal(h.mode, CORRAL_CG_NONE);

	/* --cgroup-parent is still checked. */
	assert_int_equal(discover(f, "4:cpu:/\n", "bad", &h, &err), -EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	    T(v2_own_cgroup),
	    T(v2_old_kernel_files),
	    T(v2_at_root),
	    T(v2_cgroupns_root),
	    T(v2_without_memory),
	    T(v2_escaped_mount_point_and_container_root),
	    T(v2_second_executor),
	    T(v2_not_writable),
	    T(v2_cgroup_parent),
	    T(cgroup_parent_rejected),
	    T(malformed_proc_self_cgroup),
	    T(hybrid),
	    T(hybrid_cgroup_parent),
	    T(v1_only),
	    T(v1_container_mount_root),
	    T(none),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
