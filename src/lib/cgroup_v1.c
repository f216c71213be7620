/* cgroup_v1.c - one task cgroup on the v1 memory hierarchy (+ v1 pids).
 *
 * Hybrid and legacy hosts (RHEL 8-era nodes) keep the memory controller on
 * v1: <memory batch>/t<seq>-a<attempt>/ with memory.limit_in_bytes and, where
 * swap accounting exists, memory.memsw.limit_in_bytes = limit + swap; the same
 * name under the pids batch with pids.max. There is no CLONE_INTO_CGROUP on
 * v1: the child writes "0" into both cgroup.procs files before it runs any
 * task code. memory.oom_control's oom_kill counts the task's processes the
 * OOM killer took (v1 events are not hierarchical). v1 has no local "oom"
 * event; the signs that the task's *own* limit fired are memory.failcnt or
 * memory.memsw.failcnt rising, or the peak having reached the limit. The
 * peak is needed too: on the 6.x kernels we run on, neither failcnt moves
 * when memory.memsw.limit_in_bytes equals the memory limit (the memsw charge
 * fails first and is not counted), while max_usage_in_bytes is exactly the
 * limit. A task that reached its own limit, reclaimed, and was later killed
 * for an ancestor's shortage would be misread as "oom": that is the price
 * of v1.
 *
 * Recycling: creating and removing a v1 memcg (and its pids twin) is the
 * largest part of corral's own cost per task on v1 (mkdir + rmdir of two
 * cgroups, and the kernel's asynchronous offlining of each memcg). So an
 * empty task cgroup serves the next attempt: its limits are rewritten where
 * they differ, memory.max_usage_in_bytes is reset, and the cumulative
 * counters (oom_kill, failcnt, pids.events) are read as baselines, every
 * later read being a delta from them. It is recycled only when nothing of
 * its task is left in it: no process, no zombie still charged to
 * pids.current (the next task would get fewer pids than --pids), no
 * sub-cgroup, and at most 1 MiB of memory still charged (page cache the task
 * read, kernel objects it made), so the next task's peak starts where a
 * fresh cgroup's would, give or take that MiB. The executor readies it
 * (prepare) after the next spawns, off the critical path; its counter files
 * stay open where the fd limit allows (enum corral__cg_file, executor.c),
 * and the counters read after its last task, when it was already empty, are
 * the next baselines without a second read.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cgroup.h"

static int write_u64(int dirfd, const char *file, uint64_t v)
{
	char buf[32];

	if (v == CORRAL_UNLIMITED)
		return corral__write_at(dirfd, file, "-1");
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return corral__write_at(dirfd, file, buf);
}

static int mk(int parent, const char *dir, const char *name, corral_error_t *err)
{
	if (mkdirat(parent, name, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return corral__err(err, errno, "create task cgroup %s/%s", dir, name);
	corral__cg_destroy_tree(parent, name, false, corral__now_ns() + 100000000u);
	if (mkdirat(parent, name, 0755) < 0)
		return corral__err(err, errno, "create task cgroup %s/%s", dir, name);
	return 0;
}

static int write_pids(int dirfd, uint64_t v)
{
	char buf[32];

	if (v == CORRAL_UNLIMITED)
		return corral__write_at(dirfd, "pids.max", "max");
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return corral__write_at(dirfd, "pids.max", buf);
}

/* Write the limits that differ from what the cgroup has. The kernel wants
 * memsw >= memory at every moment: when the memory limit grows, memsw moves
 * first; when it shrinks, memory does. */
static int set_limits(const struct corral__batch *b, struct corral__cg_task *t,
                      const struct corral__limits *l, corral_error_t *err)
{
	uint64_t mem = l->memory_max, memsw = CORRAL_UNLIMITED;
	bool grow = mem > t->limit_mem; /* CORRAL_UNLIMITED is the largest value */
	int rc;

	if (b->swap_accounting && mem != CORRAL_UNLIMITED)
		memsw = l->swap_max == CORRAL_UNLIMITED || l->swap_max > UINT64_MAX / 2
		            ? CORRAL_UNLIMITED
		            : mem + l->swap_max;
	for (int pass = 0; pass < 2; pass++) {
		bool do_mem = (pass == 0) != grow;
		if (do_mem && mem != t->limit_mem) {
			rc = write_u64(t->dirfd, "memory.limit_in_bytes", mem);
			if (rc < 0)
				return corral__err(err, -rc, "write memory.limit_in_bytes of %s",
				                   t->name);
			t->limit_mem = mem;
		}
		if (!do_mem && b->swap_accounting && memsw != t->limit_memsw) {
			rc = write_u64(t->dirfd, "memory.memsw.limit_in_bytes", memsw);
			if (rc < 0)
				return corral__err(
				    err, -rc, "write memory.memsw.limit_in_bytes of %s", t->name);
			t->limit_memsw = memsw;
		}
	}
	if (t->pids_dirfd >= 0 && l->pids_max != t->limit_pids) {
		rc = write_pids(t->pids_dirfd, l->pids_max);
		if (rc < 0)
			return corral__err(err, -rc, "write pids.max of %s", t->name);
		t->limit_pids = l->pids_max;
	}
	return 0;
}

static int v1_create(const struct corral__batch *b, struct corral__cg_task *t,
                     const struct corral__limits *l, bool need_procs, corral_error_t *err)
{
	int rc;

	(void)need_procs; /* always: v1 has no CLONE_INTO_CGROUP */
	rc = mk(b->dirfd, b->dir, t->name, err);
	if (rc < 0)
		return rc;
	t->created = true;
	/* A new cgroup: no limits, every counter at 0. */
	t->limit_mem = t->limit_memsw = t->limit_pids = CORRAL_UNLIMITED;
	t->base_oom_kill = t->base_failcnt = t->base_memsw_failcnt = t->base_pids_max = 0;
	t->prepared = t->empty = t->settled = t->pids_clear = false;
	t->uses = 1;
	t->dirfd = openat(b->dirfd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return corral__err(err, errno, "open task cgroup %s/%s", b->dir, t->name);
	t->procs_fd = openat(t->dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (t->procs_fd < 0)
		return corral__err(err, errno, "open %s/cgroup.procs", t->name);
	if (b->has_pids && b->pids_dirfd >= 0) {
		rc = mk(b->pids_dirfd, b->pids_dir, t->name, err);
		if (rc < 0)
			return rc;
		t->pids_dirfd = openat(b->pids_dirfd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (t->pids_dirfd < 0)
			return corral__err(err, errno, "open pids cgroup %s/%s", b->pids_dir,
			                   t->name);
		t->pids_procs_fd = openat(t->pids_dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (t->pids_procs_fd < 0)
			return corral__err(err, errno, "open pids %s/cgroup.procs", t->name);
	}
	return set_limits(b, t, l, err);
}

/* The raw (cumulative) counters of a v1 task cgroup. */
struct raw {
	uint64_t oom_kill, failcnt, memsw_failcnt, pids_max, peak;
};

static ssize_t rd(const struct corral__batch *b, struct corral__cg_task *t, enum corral__cg_file f,
                  int dirfd, const char *name, char *buf, size_t size)
{
	if (!b->cache_fds)
		return corral__read_value_at(dirfd, name, buf, size);
	return corral__read_value_cached(&t->cache[f], dirfd, name,
	                                 f == CGF_MAX_USAGE ? O_RDWR : O_RDONLY, buf, size);
}

/* Every counter, whatever this attempt's limits: the values serve as the
 * next attempt's baselines too, and its limits may differ. */
static void read_raw(const struct corral__batch *b, struct corral__cg_task *t, struct raw *r,
                     bool want_peak)
{
	char buf[256];
	uint64_t v;

	memset(r, 0, sizeof(*r));
	if (rd(b, t, CGF_OOM_CONTROL, t->dirfd, "memory.oom_control", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "oom_kill", &v) == 0)
		r->oom_kill = v;
	if (want_peak &&
	    rd(b, t, CGF_MAX_USAGE, t->dirfd, "memory.max_usage_in_bytes", buf, sizeof(buf)) >= 0)
		corral__parse_u64_or_max(buf, &r->peak);
	if (t->pids_dirfd >= 0 &&
	    rd(b, t, CGF_PIDS_EVENTS, t->pids_dirfd, "pids.events", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "max", &v) == 0)
		r->pids_max = v;
	if (rd(b, t, CGF_FAILCNT, t->dirfd, "memory.failcnt", buf, sizeof(buf)) >= 0 &&
	    corral__parse_u64_or_max(buf, &v) == 0)
		r->failcnt = v;
	if (b->swap_accounting &&
	    rd(b, t, CGF_MEMSW_FAILCNT, t->dirfd, "memory.memsw.failcnt", buf, sizeof(buf)) >= 0 &&
	    corral__parse_u64_or_max(buf, &v) == 0)
		r->memsw_failcnt = v;
}

static int v1_read(const struct corral__batch *b, struct corral__cg_task *t,
                   struct corral__counters *c)
{
	struct raw r;
	bool hit;

	memset(c, 0, sizeof(*c));
	read_raw(b, t, &r, true);
	/* Read after the cgroup was found empty: nothing can move these any
	 * more, they are the next attempt's baselines. */
	t->settled = t->empty;
	t->last_oom_kill = r.oom_kill;
	t->last_failcnt = r.failcnt;
	t->last_memsw_failcnt = r.memsw_failcnt;
	t->last_pids_max = r.pids_max;
	c->oom_kill = r.oom_kill - t->base_oom_kill;
	c->pids_max_hits = r.pids_max - t->base_pids_max;
	c->peak = r.peak;
	if (t->limit_mem == CORRAL_UNLIMITED)
		return 0; /* no own limit: any OOM kill came from outside */
	/* memsw.failcnt says something only under a memsw limit of ours.
	 * Within one page of the limit counts as reaching it. */
	hit = r.failcnt > t->base_failcnt ||
	      (t->limit_memsw != CORRAL_UNLIMITED && r.memsw_failcnt > t->base_memsw_failcnt);
	if (c->peak + 4096 >= t->limit_mem || hit)
		c->oom = 1;
	return 0;
}

static int procs_nonempty(int dirfd)
{
	char buf[64];
	ssize_t n;

	if (dirfd < 0)
		return 0;
	n = corral__read_at(dirfd, "cgroup.procs", buf, sizeof(buf));
	if (n == -EFBIG)
		return 1;
	if (n < 0)
		return (int)n;
	return n > 0;
}

static int v1_populated(const struct corral__batch *b, struct corral__cg_task *t)
{
	char buf[32];
	uint64_t v;
	bool pids_empty = t->pids_dirfd < 0;
	int rc;

	(void)b;
	t->empty = t->pids_clear = false;
	/* pids.current 0 says in one cached read that the pids twin is empty;
	 * more is not "populated": it counts zombies, which cgroup.procs
	 * leaves out (a killed daemon waits there for its reaper). */
	if (!pids_empty &&
	    rd(b, t, CGF_PIDS_CURRENT, t->pids_dirfd, "pids.current", buf, sizeof(buf)) >= 0 &&
	    corral__parse_u64_or_max(buf, &v) == 0 && v == 0)
		pids_empty = t->pids_clear = true;
	rc = procs_nonempty(t->dirfd);
	if (rc == 0 && !pids_empty)
		rc = procs_nonempty(t->pids_dirfd);
	t->empty = rc == 0;
	t->pids_clear = t->pids_clear && t->empty;
	return rc;
}

static int v1_kill(const struct corral__batch *b, struct corral__cg_task *t)
{
	(void)b;
	corral__cg_kill_procs(t->dirfd);
	if (t->pids_dirfd >= 0)
		corral__cg_kill_procs(t->pids_dirfd);
	return 0;
}

static int v1_remove(const struct corral__batch *b, struct corral__cg_task *t)
{
	if (unlinkat(b->dirfd, t->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	if (t->pids_dirfd >= 0 && unlinkat(b->pids_dirfd, t->name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		return -errno;
	t->created = false;
	corral__cg_task_close(t);
	return 0;
}

static bool v1_recyclable(const struct corral__batch *b, struct corral__cg_task *t)
{
	char buf[64];
	uint64_t usage;

	/* Only a cgroup made whole: a creation that failed half-way may lack
	 * the cgroup.procs fds a child joins through (it would then run
	 * outside any cgroup) or its pids twin (no pids limit). */
	if (t->dirfd < 0 || t->procs_fd < 0 ||
	    (b->has_pids && b->pids_dirfd >= 0 && (t->pids_dirfd < 0 || t->pids_procs_fd < 0)))
		return false;
	if (!corral__cg_no_children(t->dirfd) ||
	    (t->pids_dirfd >= 0 && !corral__cg_no_children(t->pids_dirfd)))
		return false;
	/* No pid may still be charged: pids.current counts zombies (a killed
	 * fork bomb's children wait there for their reaper, init or a
	 * subreaper, for as long as it takes), and each would be one pid less
	 * of --pids for the next task (measured: a fork bomb's successor got
	 * 22 of 24, and a task's fork() failed). A fresh pair then. Not read
	 * again when populated() found 0: nothing is left that could fork. */
	if (t->pids_dirfd >= 0 && !t->pids_clear &&
	    (rd(b, t, CGF_PIDS_CURRENT, t->pids_dirfd, "pids.current", buf, sizeof(buf)) < 0 ||
	     corral__parse_u64_or_max(buf, &usage) < 0 || usage != 0))
		return false;
	if (rd(b, t, CGF_USAGE, t->dirfd, "memory.usage_in_bytes", buf, sizeof(buf)) < 0 ||
	    corral__parse_u64_or_max(buf, &usage) < 0)
		return false;
	/* What stays charged after the task: page cache it read, and kernel
	 * objects (dentries, inodes) it made, some 30 KiB per run of a small
	 * program. Past 1 MiB the cgroup is retired and a fresh one made: a
	 * mkdir + rmdir every few dozen tasks costs far less than
	 * memory.force_empty's reclaim (measured: it made recycling slower
	 * than no recycling), and the next task's peak stays within 1 MiB of
	 * what a fresh cgroup would show. */
	return usage <= CORRAL_RECYCLE_MAX_CHARGE;
}

/* Ready an empty, recyclable cgroup for its next attempt, off the critical
 * path: reset the peak to the current usage and take the counter baselines
 * (those of the last read when it found the cgroup already empty). */
static int v1_prepare(const struct corral__batch *b, struct corral__cg_task *t)
{
	struct raw r;
	ssize_t n = -1;

	if (t->cache[CGF_MAX_USAGE] >= 0) {
		do
			n = pwrite(t->cache[CGF_MAX_USAGE], "0", 1, 0);
		while (n < 0 && errno == EINTR);
	}
	if (n != 1) {
		int rc = corral__write_at(t->dirfd, "memory.max_usage_in_bytes", "0");
		if (rc < 0)
			return rc;
	}
	if (t->settled) {
		t->base_oom_kill = t->last_oom_kill;
		t->base_failcnt = t->last_failcnt;
		t->base_memsw_failcnt = t->last_memsw_failcnt;
		t->base_pids_max = t->last_pids_max;
	} else {
		read_raw(b, t, &r, false);
		t->base_oom_kill = r.oom_kill;
		t->base_failcnt = r.failcnt;
		t->base_memsw_failcnt = r.memsw_failcnt;
		t->base_pids_max = r.pids_max;
	}
	t->prepared = true;
	return 0;
}

static int v1_reuse(const struct corral__batch *b, struct corral__cg_task *t,
                    const struct corral__limits *l, corral_error_t *err)
{
	int rc = set_limits(b, t, l, err);

	if (rc < 0)
		return rc;
	if (!t->prepared && (rc = v1_prepare(b, t)) < 0)
		return corral__err(err, -rc, "reset memory.max_usage_in_bytes of %s", t->name);
	t->prepared = t->empty = t->settled = t->pids_clear = false;
	t->uses++;
	return 0;
}

static int v1_current(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *bytes)
{
	char buf[64];

	if (rd(b, t, CGF_USAGE, t->dirfd, "memory.usage_in_bytes", buf, sizeof(buf)) < 0)
		return -EIO;
	return corral__parse_u64_or_max(buf, bytes);
}

const struct corral__cg_ops corral__cg_v1_ops = {
    .current = v1_current,
    .create = v1_create,
    .read = v1_read,
    .populated = v1_populated,
    .kill = v1_kill,
    .remove = v1_remove,
    .recyclable = v1_recyclable,
    .prepare = v1_prepare,
    .reuse = v1_reuse,
};
