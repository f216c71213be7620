/* test_parse.c - the kernel-text parsers of parse.c: flat-keyed cgroup files,
 * "max"-or-number files, /proc/self/cgroup, /proc/self/mountinfo and
 * controller lists. Every input is a literal string: no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "internal.h"

/* ------------------------------------------------------------ parse_keyed */

static void keyed_exact_key(void **state)
{
	/* oom_kill comes first so that a prefix match of "oom" would find it. */
	const char *ev = "oom_kill 7\noom_group_kill 2\noom 3\n";
	uint64_t v = 99;

	(void)state;
	assert_int_equal(corral__parse_keyed(ev, "oom", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(corral__parse_keyed(ev, "oom_kill", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(corral__parse_keyed(ev, "oom_group_kill", &v), 0);
	assert_int_equal(v, 2);
	/* A key that is only a prefix of a present key is missing. */
	v = 99;
	assert_int_equal(corral__parse_keyed(ev, "oom_", &v), -ENOENT);
	assert_int_equal(corral__parse_keyed(ev, "oo", &v), -ENOENT);
	assert_int_equal(corral__parse_keyed(ev, "kill", &v), -ENOENT);
	assert_int_equal(v, 99); /* untouched on failure */
	/* Only "oom_kill" present: "oom" must not match it. */
	assert_int_equal(corral__parse_keyed("oom_kill 5\n", "oom", &v), -ENOENT);
	assert_int_equal(corral__parse_keyed("", "oom", &v), -ENOENT);
	/* Keys are case-sensitive. */
	assert_int_equal(corral__parse_keyed("OOM 1\n", "oom", &v), -ENOENT);
}

static void keyed_garbage(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(corral__parse_keyed("oom x\n", "oom", &v), -EINVAL);
	assert_int_equal(corral__parse_keyed("oom 5x\n", "oom", &v), -EINVAL);
	assert_int_equal(corral__parse_keyed("oom -1\n", "oom", &v), -EINVAL);
	assert_int_equal(corral__parse_keyed("oom \n", "oom", &v), -EINVAL);
	assert_int_equal(corral__parse_keyed("oom  5\n", "oom", &v), -EINVAL);
	assert_int_equal(corral__parse_keyed("oom 5.5\n", "oom", &v), -EINVAL);
	/* Beyond 2^64 - 1. */
	assert_int_equal(corral__parse_keyed("oom 18446744073709551616\n", "oom", &v), -EINVAL);
	assert_int_equal(v, 42);
	/* A key without any value is not the key followed by a number. */
	assert_int_equal(corral__parse_keyed("oom\n", "oom", &v), -ENOENT);
	/* The largest value fits; a trailing space after the number is fine. */
	assert_int_equal(corral__parse_keyed("oom 18446744073709551615\n", "oom", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(corral__parse_keyed("oom 12 \n", "oom", &v), 0);
	assert_int_equal(v, 12);
	/* No final newline. */
	assert_int_equal(corral__parse_keyed("max 1\noom 4", "oom", &v), 0);
	assert_int_equal(v, 4);
	/* The first occurrence wins; garbage on another line does not matter. */
	assert_int_equal(corral__parse_keyed("junk line\noom 1\noom 2\n", "oom", &v), 0);
	assert_int_equal(v, 1);
}

static void keyed_v2_memory_events(void **state)
{
	const char *ev = "low 0\nhigh 0\nmax 1234\noom 2\noom_kill 3\noom_group_kill 1\n";
	uint64_t v;

	(void)state;
	assert_int_equal(corral__parse_keyed(ev, "low", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(corral__parse_keyed(ev, "max", &v), 0);
	assert_int_equal(v, 1234);
	assert_int_equal(corral__parse_keyed(ev, "oom", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(corral__parse_keyed(ev, "oom_kill", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(corral__parse_keyed(ev, "oom_group_kill", &v), 0);
	assert_int_equal(v, 1);
	/* Older kernels have no oom_group_kill line. */
	assert_int_equal(
	    corral__parse_keyed("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "oom_group_kill", &v),
	    -ENOENT);
}

static void keyed_v1_oom_control(void **state)
{
	const char *oc = "oom_kill_disable 0\nunder_oom 1\noom_kill 4\n";
	uint64_t v;

	(void)state;
	assert_int_equal(corral__parse_keyed(oc, "oom_kill", &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(corral__parse_keyed(oc, "oom_kill_disable", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(corral__parse_keyed(oc, "under_oom", &v), 0);
	assert_int_equal(v, 1);
	/* Before 4.13 there is no oom_kill line: oom_kill_disable must not match. */
	assert_int_equal(corral__parse_keyed("oom_kill_disable 1\nunder_oom 0\n", "oom_kill", &v),
	                 -ENOENT);
}

static void keyed_pids_cpu_cgroup_events(void **state)
{
	uint64_t v;

	(void)state;
	/* pids.events; 6.x adds max.imposed. */
	assert_int_equal(corral__parse_keyed("max 17\n", "max", &v), 0);
	assert_int_equal(v, 17);
	assert_int_equal(corral__parse_keyed("max.imposed 5\nmax 2\n", "max", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(corral__parse_keyed("max.imposed 5\n", "max", &v), -ENOENT);
	/* cpu.stat */
	const char *cs = "usage_usec 1500123\nuser_usec 1000100\nsystem_usec 500023\n"
	                 "core_sched.force_idle_usec 0\nnr_periods 10\nnr_throttled 2\n"
	                 "throttled_usec 3000\nnr_bursts 0\nburst_usec 0\n";
	assert_int_equal(corral__parse_keyed(cs, "usage_usec", &v), 0);
	assert_int_equal(v, 1500123);
	assert_int_equal(corral__parse_keyed(cs, "user_usec", &v), 0);
	assert_int_equal(v, 1000100);
	assert_int_equal(corral__parse_keyed(cs, "system_usec", &v), 0);
	assert_int_equal(v, 500023);
	assert_int_equal(corral__parse_keyed(cs, "throttled_usec", &v), 0);
	assert_int_equal(v, 3000);
	assert_int_equal(corral__parse_keyed(cs, "usec", &v), -ENOENT);
	/* cgroup.events */
	assert_int_equal(corral__parse_keyed("populated 1\nfrozen 0\n", "populated", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(corral__parse_keyed("populated 0\nfrozen 1\n", "populated", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(corral__parse_keyed("populated 0\nfrozen 1\n", "frozen", &v), 0);
	assert_int_equal(v, 1);
}

/* ------------------------------------------------------------ u64_or_max */

static void u64_or_max(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(corral__parse_u64_or_max("max\n", &v), 0);
	assert_true(v == CORRAL_UNLIMITED);
	assert_int_equal(corral__parse_u64_or_max("max", &v), 0);
	assert_true(v == CORRAL_UNLIMITED);
	assert_int_equal(corral__parse_u64_or_max("67108864\n", &v), 0);
	assert_int_equal(v, 67108864);
	assert_int_equal(corral__parse_u64_or_max("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(corral__parse_u64_or_max("9223372036854771712\n", &v), 0);
	assert_true(v == 9223372036854771712ull);
	v = 7;
	assert_int_equal(corral__parse_u64_or_max("", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("\n", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("maxx", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("ma", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("MAX", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max(" 12", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("-1", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("12 34", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("12abc", &v), -EINVAL);
	assert_int_equal(corral__parse_u64_or_max("18446744073709551616", &v), -EINVAL);
	assert_int_equal(v, 7);
}

/* ------------------------------------------------------------ proc cgroup */

static void proc_cgroup_v2_only(void **state)
{
	struct corral__proc_cgroup pc;

	(void)state;
	assert_int_equal(corral__parse_proc_cgroup("0::/a/b\n", &pc), 0);
	assert_true(pc.has_v2);
	assert_string_equal(pc.v2_path, "/a/b");
	assert_false(pc.has_memory_v1);
	assert_false(pc.has_pids_v1);
	assert_string_equal(pc.memory_path, "");
	assert_string_equal(pc.pids_path, "");

	assert_int_equal(corral__parse_proc_cgroup("0::/\n", &pc), 0);
	assert_true(pc.has_v2);
	assert_string_equal(pc.v2_path, "/");

	/* No final newline, and a path with spaces and a colon. */
	assert_int_equal(corral__parse_proc_cgroup("0::/user.slice/my app:1.scope", &pc), 0);
	assert_string_equal(pc.v2_path, "/user.slice/my app:1.scope");
}

static void proc_cgroup_hybrid(void **state)
{
	const char *text = "12:rdma:/\n"
	                   "11:hugetlb:/\n"
	                   "10:devices:/user.slice\n"
	                   "9:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"
	                   "8:pids:/user.slice/user-1000.slice/session-2.scope\n"
	                   "7:net_cls,net_prio:/\n"
	                   "4:memory:/x\n"
	                   "2:cpu,cpuacct:/user.slice\n"
	                   "1:cpuset:/\n"
	                   "0::/user.slice/user-1000.slice/session-2.scope\n";
	struct corral__proc_cgroup pc;

	(void)state;
	assert_int_equal(corral__parse_proc_cgroup(text, &pc), 0);
	assert_true(pc.has_v2);
	assert_string_equal(pc.v2_path, "/user.slice/user-1000.slice/session-2.scope");
	assert_true(pc.has_memory_v1);
	assert_string_equal(pc.memory_path, "/x");
	assert_true(pc.has_pids_v1);
	assert_string_equal(pc.pids_path, "/user.slice/user-1000.slice/session-2.scope");

	/* Controllers listed together with memory and pids. */
	assert_int_equal(corral__parse_proc_cgroup("3:memory,pids:/m\n9:name=systemd:/\n", &pc), 0);
	assert_true(pc.has_memory_v1);
	assert_true(pc.has_pids_v1);
	assert_string_equal(pc.memory_path, "/m");
	assert_string_equal(pc.pids_path, "/m");
	assert_false(pc.has_v2);

	/* A named hierarchy called like a controller is not that controller. */
	assert_int_equal(corral__parse_proc_cgroup("9:name=memory:/\n8:pids:/\n", &pc), 0);
	assert_false(pc.has_memory_v1);
	assert_true(pc.has_pids_v1);
	assert_string_equal(pc.pids_path, "/");
}

static void proc_cgroup_v1_only(void **state)
{
	/* The shape of this very host (v1 with a v2 "0::/" line from systemd's
	 * empty unified mount would be hybrid); here a pure v1 listing. */
	const char *text = "9:name=systemd:/\n"
	                   "8:pids:/\n"
	                   "7:blkio:/\n"
	                   "4:memory:/process_api/144da656\n"
	                   "2:cpuacct:/\n"
	                   "1:cpu:/\n";
	struct corral__proc_cgroup pc;

	(void)state;
	assert_int_equal(corral__parse_proc_cgroup(text, &pc), 0);
	assert_false(pc.has_v2);
	assert_string_equal(pc.v2_path, "");
	assert_true(pc.has_memory_v1);
	assert_string_equal(pc.memory_path, "/process_api/144da656");
	assert_true(pc.has_pids_v1);
	assert_string_equal(pc.pids_path, "/");

	/* Empty text: nothing known, but not an error. */
	assert_int_equal(corral__parse_proc_cgroup("", &pc), 0);
	assert_false(pc.has_v2);
	assert_false(pc.has_memory_v1);
	assert_false(pc.has_pids_v1);
}

static void proc_cgroup_malformed(void **state)
{
	struct corral__proc_cgroup pc;

	(void)state;
	assert_int_equal(corral__parse_proc_cgroup("garbage\n", &pc), -EINVAL);
	assert_int_equal(corral__parse_proc_cgroup("0:/a\n", &pc), -EINVAL);
	assert_int_equal(corral__parse_proc_cgroup("0::\n", &pc), -EINVAL);
	assert_int_equal(corral__parse_proc_cgroup("0::relative\n", &pc), -EINVAL);
	assert_int_equal(corral__parse_proc_cgroup("4:memory:\n", &pc), -EINVAL);
	assert_int_equal(corral__parse_proc_cgroup("0::/a\n\n4:memory:/\n", &pc), -EINVAL);
	/* A bad line after good ones fails the whole text. */
	assert_int_equal(corral__parse_proc_cgroup("4:memory:/m\n0::/a\nbroken\n", &pc), -EINVAL);
	/* "1::/x" has no controllers but is not the v2 line (id must be 0). */
	assert_int_equal(corral__parse_proc_cgroup("1::/x\n", &pc), 0);
	assert_false(pc.has_v2);
	assert_int_equal(corral__parse_proc_cgroup("00::/x\n", &pc), 0);
	assert_false(pc.has_v2);
}

/* ------------------------------------------------------------ mountinfo */

static const char *mi_v2 =
    "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"
    "24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n"
    "25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
    "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "31 25 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw\n";

static void mountinfo_pure_v2(void **state)
{
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(mi_v2, &m), 0);
	assert_true(m.has_v2);
	assert_false(m.has_memory);
	assert_false(m.has_pids);
	assert_int_equal(m.n_cgroup_mounts, 1);
	assert_string_equal(m.v2.mount_point, "/sys/fs/cgroup");
	assert_string_equal(m.v2.root, "/");
	assert_true(m.v2.v2);
	assert_true(m.v2.nsdelegate);
	assert_false(m.v2.read_only);
	assert_false(m.v2.memory);
	assert_false(m.v2.pids);
}

static const char *mi_hybrid =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - "
    "cgroup cgroup rw,cpu,cpuacct\n"
    "30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup "
    "cgroup rw,memory\n"
    "31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup "
    "cgroup rw,pids\n"
    "32 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime "
    "shared:16 - cgroup cgroup rw,net_cls,net_prio\n";

static void mountinfo_hybrid(void **state)
{
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(mi_hybrid, &m), 0);
	assert_int_equal(m.n_cgroup_mounts, 6); /* the tmpfs is not a cgroup mount */
	assert_true(m.has_v2);
	assert_string_equal(m.v2.mount_point, "/sys/fs/cgroup/unified");
	assert_true(m.v2.nsdelegate);
	assert_true(m.has_memory);
	assert_string_equal(m.memory.mount_point, "/sys/fs/cgroup/memory");
	assert_string_equal(m.memory.root, "/");
	assert_true(m.memory.memory);
	assert_false(m.memory.pids);
	assert_false(m.memory.v2);
	assert_false(m.memory.read_only);
	assert_false(m.memory.nsdelegate);
	assert_true(m.has_pids);
	assert_string_equal(m.pids.mount_point, "/sys/fs/cgroup/pids");
	assert_true(m.pids.pids);
	assert_false(m.pids.memory);
}

static void mountinfo_v1_and_none(void **state)
{
	/* This host's own shape: v1 only, no optional fields at all. */
	const char *v1 = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	                 "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	                 "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup "
	                 "rw,memory\n"
	                 "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	                 "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
	                 "rw,name=systemd\n";
	const char *none = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	                   "24 22 0:22 / /proc rw,nosuid shared:13 - proc proc rw\n"
	                   "40 22 0:37 / /mnt/cgroup-like rw - tmpfs cgroup rw\n";
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(v1, &m), 0);
	assert_false(m.has_v2);
	assert_true(m.has_memory);
	assert_true(m.has_pids);
	assert_int_equal(m.n_cgroup_mounts, 4);
	assert_string_equal(m.memory.mount_point, "/sys/fs/cgroup/memory");
	assert_string_equal(m.pids.mount_point, "/sys/fs/cgroup/pids");

	/* A tmpfs whose *source* is called "cgroup" is not a cgroup mount. */
	assert_int_equal(corral__parse_mountinfo(none, &m), 0);
	assert_false(m.has_v2);
	assert_false(m.has_memory);
	assert_false(m.has_pids);
	assert_int_equal(m.n_cgroup_mounts, 0);
	assert_int_equal(corral__parse_mountinfo("", &m), 0);
	assert_int_equal(m.n_cgroup_mounts, 0);
}

static void mountinfo_optional_fields(void **state)
{
	/* Several optional fields (shared, master, propagate_from, unbindable)
	 * before the separator; and none at all. */
	const char *mi = "30 25 0:26 / /cg2 rw,relatime shared:4 master:1 propagate_from:2 "
	                 "unbindable - cgroup2 cgroup2 rw\n"
	                 "31 25 0:27 / /cgm rw,relatime - cgroup cgroup rw,memory\n";
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(mi, &m), 0);
	assert_true(m.has_v2);
	assert_string_equal(m.v2.mount_point, "/cg2");
	assert_true(m.has_memory);
	assert_string_equal(m.memory.mount_point, "/cgm");
	assert_int_equal(m.n_cgroup_mounts, 2);
}

static void mountinfo_escapes_ro_container(void **state)
{
	/* A mount point with a space, a tab and a backslash, read-only, and a
	 * container's mount whose root is its own cgroup, not "/". */
	const char *mi = "50 40 0:26 /docker/abc123 /run/my\\040cgroups\\011x\\134y ro,nosuid "
	                 "shared:7 - cgroup2 cgroup2 rw,nsdelegate\n"
	                 "51 40 0:27 /kubepods/pod1/c2 /sys/fs/cgroup/memory ro,nosuid,nodev - "
	                 "cgroup cgroup rw,memory\n"
	                 "52 40 0:28 /a\\040b /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(mi, &m), 0);
	assert_true(m.has_v2);
	assert_string_equal(m.v2.mount_point, "/run/my cgroups\tx\\y");
	assert_string_equal(m.v2.root, "/docker/abc123");
	assert_true(m.v2.read_only);
	assert_true(m.v2.nsdelegate);
	assert_true(m.has_memory);
	assert_string_equal(m.memory.root, "/kubepods/pod1/c2");
	assert_true(m.memory.read_only);
	assert_false(m.memory.nsdelegate);
	assert_true(m.has_pids);
	assert_string_equal(m.pids.root, "/a b");
	assert_false(m.pids.read_only);

	/* "ro" in the super options alone does not make the mount read-only
	 * for us, and "rox" is not "ro". */
	assert_int_equal(corral__parse_mountinfo("1 0 0:1 / /c rw,rox - cgroup2 cgroup2 ro\n", &m),
	                 0);
	assert_false(m.v2.read_only);
	/* The first cgroup2 mount wins (a second bind mount of it is ignored). */
	assert_int_equal(corral__parse_mountinfo("1 0 0:1 / /first rw - cgroup2 cgroup2 rw\n"
	                                         "2 0 0:1 / /second rw - cgroup2 cgroup2 rw\n",
	                                         &m),
	                 0);
	assert_string_equal(m.v2.mount_point, "/first");
	assert_int_equal(m.n_cgroup_mounts, 2);
}

static void mountinfo_malformed_lines(void **state)
{
	/* Lines without a separator or with too few fields are skipped. */
	const char *mi = "garbage\n"
	                 "1 2 3 4 5 6 7\n"
	                 "30 25 0:26 / /nosep rw cgroup2 cgroup2 rw\n"
	                 "30 25 0:26 / /short rw -\n"
	                 "31 25 0:27 / /good rw - cgroup cgroup rw,pids\n";
	struct corral__mounts m;

	(void)state;
	assert_int_equal(corral__parse_mountinfo(mi, &m), 0);
	assert_false(m.has_v2);
	assert_false(m.has_memory);
	assert_true(m.has_pids);
	assert_string_equal(m.pids.mount_point, "/good");
	assert_int_equal(m.n_cgroup_mounts, 1);
}

static void cgroup_mount_points(void **state)
{
	char pts[8][4096];

	(void)state;
	assert_int_equal(corral__parse_cgroup_mount_points(mi_hybrid, pts, 8), 6);
	assert_string_equal(pts[0], "/sys/fs/cgroup/unified");
	assert_string_equal(pts[1], "/sys/fs/cgroup/systemd");
	assert_string_equal(pts[2], "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(pts[3], "/sys/fs/cgroup/memory");
	assert_string_equal(pts[4], "/sys/fs/cgroup/pids");
	assert_string_equal(pts[5], "/sys/fs/cgroup/net_cls,net_prio");
	/* At most max. */
	assert_int_equal(corral__parse_cgroup_mount_points(mi_hybrid, pts, 2), 2);
	assert_string_equal(pts[1], "/sys/fs/cgroup/systemd");
	assert_int_equal(corral__parse_cgroup_mount_points(mi_v2, pts, 8), 1);
	assert_string_equal(pts[0], "/sys/fs/cgroup");
	/* Escapes decoded; non-cgroup and malformed lines skipped. */
	assert_int_equal(corral__parse_cgroup_mount_points(
	                     "garbage\n1 0 0:1 / /a\\040b rw - cgroup2 cgroup2 rw\n"
	                     "2 0 0:2 / /t rw - tmpfs tmpfs rw\n",
	                     pts, 8),
	                 1);
	assert_string_equal(pts[0], "/a b");
	assert_int_equal(corral__parse_cgroup_mount_points("", pts, 8), 0);
}

static void list_has(void **state)
{
	(void)state;
	const char *ctl = "cpuset cpu io memory hugetlb pids rdma misc\n";
	assert_true(corral__list_has(ctl, "cpu"));
	assert_true(corral__list_has(ctl, "cpuset"));
	assert_true(corral__list_has(ctl, "memory"));
	assert_true(corral__list_has(ctl, "pids"));
	assert_true(corral__list_has(ctl, "misc"));
	assert_false(corral__list_has(ctl, "mem"));
	assert_false(corral__list_has(ctl, "cpus"));
	assert_false(corral__list_has(ctl, "memoryx"));
	assert_false(corral__list_has(ctl, "Memory"));
	assert_false(corral__list_has("", "memory"));
	assert_false(corral__list_has("\n", "memory"));
	/* Comma-separated lists (mount options, /proc/self/cgroup). */
	assert_true(corral__list_has("rw,nosuid,memory", "memory"));
	assert_true(corral__list_has("cpu,cpuacct", "cpuacct"));
	assert_false(corral__list_has("cpu,cpuacct", "acct"));
	assert_false(corral__list_has("name=systemd", "systemd"));
	assert_true(corral__list_has("  memory  ", "memory"));
}

/* ------------------------------------------------------------ /dev/kmsg */

#define KMEMCG "/process_api/0146/corral-14558-300221-effffffc9c2a7d23/t1-a1"

static int kmsg(const char *rec, struct corral__kmsg_oom *ev)
{
	return corral__parse_kmsg_oom(rec, strlen(rec), ev);
}

static void kmsg_oom_reports(void **state)
{
	struct corral__kmsg_oom ev;

	(void)state;
	/* Both lines, as the v1 hosts print them (records of /dev/kmsg). */
	assert_int_equal(kmsg("6,125937,3002265083,-;oom-kill:constraint=CONSTRAINT_MEMCG,"
	                      "nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=" KMEMCG
	                      ",task_memcg=" KMEMCG ",task=corral-payload,pid=14561,uid=0\n",
	                      &ev),
	                 0);
	assert_int_equal(ev.kind, KMSG_OOM_KILL);
	assert_int_equal(ev.pid, 14561);
	assert_string_equal(ev.comm, "corral-payload");
	assert_string_equal(ev.task_memcg, KMEMCG);
	assert_string_equal(ev.oom_memcg, KMEMCG);
	assert_false(ev.global);
	assert_int_equal(kmsg("3,125938,3002265093,-;Memory cgroup out of memory: Killed process "
	                      "14561 (corral-payload) total-vm:104812kB, anon-rss:32640kB, "
	                      "file-rss:1132kB, shmem-rss:0kB, UID:0 pgtables:108kB "
	                      "oom_score_adj:-17",
	                      &ev),
	                 0);
	assert_int_equal(ev.kind, KMSG_KILLED);
	assert_int_equal(ev.pid, 14561);
	assert_string_equal(ev.comm, "corral-payload");
	assert_int_equal(ev.total_vm, 104812ull * 1024);
	assert_int_equal(ev.anon_rss, 32640ull * 1024);
	assert_int_equal(ev.file_rss, 1132ull * 1024);
	assert_int_equal(ev.shmem_rss, 0);
	assert_int_equal(ev.oom_score_adj, -17);
	/* A host-wide OOM, an ancestor's limit, continuation lines after it. */
	assert_int_equal(kmsg("6,1,2,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),"
	                      "cpuset=/,mems_allowed=0,global_oom,task_memcg=/a/t2-a1,task=sort,"
	                      "pid=7,uid=1000\n SUBSYSTEM=x\n",
	                      &ev),
	                 0);
	assert_true(ev.global);
	assert_string_equal(ev.oom_memcg, "");
	assert_string_equal(ev.task_memcg, "/a/t2-a1");
	assert_string_equal(ev.comm, "sort");
	assert_int_equal(kmsg("6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
	                      "cpuset=/,mems_allowed=0,oom_memcg=/jobs,task_memcg=/jobs/c/t3-a2,"
	                      "task=python3,pid=99,uid=0",
	                      &ev),
	                 0);
	assert_string_equal(ev.oom_memcg, "/jobs");
	assert_int_equal(kmsg("4,1,2,-;Out of memory: Killed process 5 (x) total-vm:1kB, "
	                      "anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:0 pgtables:0kB "
	                      "oom_score_adj:0",
	                      &ev),
	                 0);
	assert_int_equal(ev.shmem_rss, 4096);
}

/* A task names itself (prctl PR_SET_NAME, 15 bytes of anything): the kernel's
 * fields around the name still win. */
static void kmsg_forged_names(void **state)
{
	struct corral__kmsg_oom ev;

	(void)state;
	assert_int_equal(kmsg("6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
	                      "cpuset=/,mems_allowed=0,oom_memcg=/b,task_memcg=/b/t1-a1,"
	                      "task=,task=x,pid=1,pid=42,uid=0",
	                      &ev),
	                 0);
	assert_int_equal(ev.pid, 42);
	assert_string_equal(ev.comm, ",task=x,pid=1");
	assert_string_equal(ev.task_memcg, "/b/t1-a1");
	assert_int_equal(kmsg("3,1,2,-;Killed process 42 () total-vm:1kB) total-vm:8kB, "
	                      "anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB "
	                      "oom_score_adj:0",
	                      &ev),
	                 0);
	assert_int_equal(ev.pid, 42);
	assert_string_equal(ev.comm, ") total-vm:1kB");
	assert_int_equal(ev.total_vm, 8192);
	/* Not OOM reports, or broken ones. */
	assert_int_equal(kmsg("6,1,2,-;eth0: link up", &ev), -ENOENT);
	assert_int_equal(kmsg("no semicolon", &ev), -EINVAL);
	assert_int_equal(kmsg("6,1,2,-;oom-kill:constraint=X,task=a,pid=1", &ev), -EINVAL);
	assert_int_equal(kmsg("6,1,2,-;oom-kill:task_memcg=/a,task=a,pid=0,uid=0", &ev), -EINVAL);
	assert_int_equal(kmsg("6,1,2,-;oom-kill:task_memcg=/a,task=a,pid=9,uid=0x", &ev), -EINVAL);
	assert_int_equal(kmsg("3,1,2,-;Killed process 5 (x) total-vm:1MB, anon-rss:1kB", &ev),
	                 -EINVAL);
	assert_int_equal(kmsg("3,1,2,-;Killed process x (y)", &ev), -EINVAL);
	assert_int_equal(kmsg("3,1,2,-;Killed process 99999999999999999999 (y) total-vm:1kB", &ev),
	                 -EINVAL);
}

static void psi(void **state)
{
	uint64_t some, full;

	(void)state;
	assert_int_equal(corral__parse_psi("some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\n"
	                                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=789\n",
	                                   &some, &full),
	                 0);
	assert_int_equal(some, 123456);
	assert_int_equal(full, 789);
	assert_int_equal(
	    corral__parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=5", &some, &full), 0);
	assert_int_equal(some, 5);
	assert_int_equal(full, 0);
	assert_int_equal(corral__parse_psi("", &some, &full), -ENOENT);
	assert_int_equal(corral__parse_psi("some total=x\n", &some, &full), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(kmsg_oom_reports),
	    cmocka_unit_test(kmsg_forged_names),
	    cmocka_unit_test(psi),
	    cmocka_unit_test(keyed_exact_key),
	    cmocka_unit_test(keyed_garbage),
	    cmocka_unit_test(keyed_v2_memory_events),
	    cmocka_unit_test(keyed_v1_oom_control),
	    cmocka_unit_test(keyed_pids_cpu_cgroup_events),
	    cmocka_unit_test(u64_or_max),
	    cmocka_unit_test(proc_cgroup_v2_only),
	    cmocka_unit_test(proc_cgroup_hybrid),
	    cmocka_unit_test(proc_cgroup_v1_only),
	    cmocka_unit_test(proc_cgroup_malformed),
	    cmocka_unit_test(mountinfo_pure_v2),
	    cmocka_unit_test(mountinfo_hybrid),
	    cmocka_unit_test(mountinfo_v1_and_none),
	    cmocka_unit_test(mountinfo_optional_fields),
	    cmocka_unit_test(mountinfo_escapes_ro_container),
	    cmocka_unit_test(mountinfo_malformed_lines),
	    cmocka_unit_test(cgroup_mount_points),
	    cmocka_unit_test(list_has),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
