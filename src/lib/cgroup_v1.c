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

static int v1_create(const struct corral__batch *b, struct corral__cg_task *t,
                     const struct corral__limits *l, bool need_procs, corral_error_t *err)
{
	int rc;

	(void)need_procs; /* always: v1 has no CLONE_INTO_CGROUP */
	rc = mk(b->dirfd, b->dir, t->name, err);
	if (rc < 0)
		return rc;
	t->created = true;
	t->limit_mem = t->limit_memsw = CORRAL_UNLIMITED;
	t->dirfd = openat(b->dirfd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return corral__err(err, errno, "open task cgroup %s/%s", b->dir, t->name);
	if (l->memory_max != CORRAL_UNLIMITED) {
		t->limit_mem = l->memory_max;
		rc = write_u64(t->dirfd, "memory.limit_in_bytes", l->memory_max);
		if (rc < 0)
			return corral__err(err, -rc, "write memory.limit_in_bytes of %s", t->name);
		if (b->swap_accounting) {
			uint64_t memsw =
			    l->swap_max == CORRAL_UNLIMITED || l->swap_max > UINT64_MAX / 2
			        ? CORRAL_UNLIMITED
			        : l->memory_max + l->swap_max;
			rc = write_u64(t->dirfd, "memory.memsw.limit_in_bytes", memsw);
			t->limit_memsw = memsw;
			if (rc < 0)
				return corral__err(
				    err, -rc, "write memory.memsw.limit_in_bytes of %s", t->name);
		}
	}
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
		if (l->pids_max != CORRAL_UNLIMITED) {
			rc = write_u64(t->pids_dirfd, "pids.max", l->pids_max);
			if (rc < 0)
				return corral__err(err, -rc, "write pids.max of %s", t->name);
		}
		t->pids_procs_fd = openat(t->pids_dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (t->pids_procs_fd < 0)
			return corral__err(err, errno, "open pids %s/cgroup.procs", t->name);
	}
	return 0;
}

static int v1_read(const struct corral__batch *b, struct corral__cg_task *t,
                   struct corral__counters *c)
{
	char buf[1024];
	uint64_t v;

	memset(c, 0, sizeof(*c));
	if (corral__read_at(t->dirfd, "memory.oom_control", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "oom_kill", &v) == 0)
		c->oom_kill = v;
	if (corral__read_at(t->dirfd, "memory.max_usage_in_bytes", buf, sizeof(buf)) >= 0)
		corral__parse_u64_or_max(buf, &c->peak);
	if (t->pids_dirfd >= 0 &&
	    corral__read_at(t->pids_dirfd, "pids.events", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "max", &v) == 0)
		c->pids_max_hits = v;
	if (t->limit_mem == CORRAL_UNLIMITED)
		return 0; /* no own limit: any OOM kill came from outside */
	/* Within one page of the limit counts as reaching it. */
	if (c->peak + 4096 >= t->limit_mem)
		c->oom = 1;
	else if (corral__read_at(t->dirfd, "memory.failcnt", buf, sizeof(buf)) >= 0 &&
	         corral__parse_u64_or_max(buf, &v) == 0 && v > 0)
		c->oom = 1;
	else if (t->limit_memsw != CORRAL_UNLIMITED &&
	         corral__read_at(t->dirfd, "memory.memsw.failcnt", buf, sizeof(buf)) >= 0 &&
	         corral__parse_u64_or_max(buf, &v) == 0 && v > 0)
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
	int rc;

	(void)b;
	rc = procs_nonempty(t->dirfd);
	if (rc != 0)
		return rc;
	return procs_nonempty(t->pids_dirfd);
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

const struct corral__cg_ops corral__cg_v1_ops = {
    .create = v1_create,
    .read = v1_read,
    .populated = v1_populated,
    .kill = v1_kill,
    .remove = v1_remove,
};
