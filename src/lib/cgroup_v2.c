/* cgroup_v2.c - one task cgroup on the unified hierarchy.
 *
 * <batch>/t<seq>-a<attempt>/ with memory.max, memory.swap.max,
 * memory.oom.group, pids.max, cpu.max. The task is born inside it with
 * clone3(CLONE_INTO_CGROUP) using the directory fd opened here; without that,
 * the child writes "0" into cgroup.procs (procs_fd) before it runs task code.
 * Counters come from memory.events.local: "oom" rises in the cgroup whose own
 * limit fired, "oom_kill" in the cgroup of the process that was killed.
 *
 * Recycling, as on v1 (cgroup_v1.c): an empty task cgroup serves the next
 * attempt instead of an rmdir and a mkdir (a memcg's creation, offlining and
 * freeing are corral's largest cost per task on v2 too: in the v2 VM ~1 ms of
 * its own per attempt for the mkdir alone). Only where memory.peak can be
 * reset (Linux 6.12: writing to it resets the peak for reads through the
 * same fd; the batch probes it once), so that every attempt's peak is its
 * own: older kernels get a fresh cgroup per attempt, as before. The limits
 * are rewritten where they differ; memory.events(.local), pids.events,
 * cpu.stat and memory.pressure are cumulative, so prepare() takes them as
 * baselines and every read is a delta. The rules of what may serve again
 * are v1's: no process, no zombie in pids.current, no sub-cgroup, at most
 * 1 MiB still charged.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cgroup.h"

void corral__cg_task_init(struct corral__cg_task *t)
{
	memset(t, 0, sizeof(*t));
	t->dirfd = t->pids_dirfd = t->procs_fd = t->pids_procs_fd = t->events_fd = -1;
	for (int i = 0; i < CGF_N; i++)
		t->cache[i] = -1;
}

void corral__cg_task_close(struct corral__cg_task *t)
{
	corral__close(t->dirfd);
	corral__close(t->pids_dirfd);
	corral__close(t->procs_fd);
	corral__close(t->pids_procs_fd);
	corral__close(t->events_fd);
	t->dirfd = t->pids_dirfd = t->procs_fd = t->pids_procs_fd = t->events_fd = -1;
	for (int i = 0; i < CGF_N; i++) {
		corral__close(t->cache[i]);
		t->cache[i] = -1;
	}
}

static int write_u64(int dirfd, const char *file, uint64_t v)
{
	char buf[32];

	if (v == CORRAL_UNLIMITED)
		return corral__write_at(dirfd, file, "max");
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return corral__write_at(dirfd, file, buf);
}

static uint64_t cpu_quota(const struct corral__limits *l)
{
	if (l->cpus <= 0)
		return 0;
	unsigned long long quota = (unsigned long long)(l->cpus * 100000.0 + 0.5);
	return quota < 1000 ? 1000 : quota; /* the kernel's minimum quota is 1 ms */
}

/* Write the limits of l: all of them into a fresh cgroup (fresh: its
 * defaults are "max" and 0), into a recycled one those that differ from
 * what was written last. */
static int set_limits(const struct corral__batch *b, struct corral__cg_task *t,
                      const struct corral__limits *l, bool fresh, corral_error_t *err)
{
	uint64_t quota = b->has_cpu ? cpu_quota(l) : 0;
	bool group = l->oom_group && b->oom_group;
	int rc;

	if (fresh) {
		t->limit_mem = t->limit_swap = t->limit_pids = CORRAL_UNLIMITED;
		t->limit_cpu = 0;
		t->limit_oom_group = false;
	}
	if (l->memory_max != t->limit_mem) {
		rc = write_u64(t->dirfd, "memory.max", l->memory_max);
		if (rc < 0)
			return corral__err(err, -rc, "write memory.max of %s", t->name);
		t->limit_mem = l->memory_max;
	}
	if (b->swap_accounting && (fresh || l->swap_max != t->limit_swap)) {
		rc = write_u64(t->dirfd, "memory.swap.max", l->swap_max);
		if (rc < 0 && rc != -ENOENT)
			return corral__err(err, -rc, "write memory.swap.max of %s", t->name);
		t->limit_swap = l->swap_max;
	}
	if (group != t->limit_oom_group) {
		rc = corral__write_at(t->dirfd, "memory.oom.group", group ? "1" : "0");
		if (rc < 0)
			return corral__err(err, -rc, "write memory.oom.group of %s", t->name);
		t->limit_oom_group = group;
	}
	if (b->has_pids && l->pids_max != t->limit_pids) {
		rc = write_u64(t->dirfd, "pids.max", l->pids_max);
		if (rc < 0)
			return corral__err(err, -rc, "write pids.max of %s", t->name);
		t->limit_pids = l->pids_max;
	}
	if (quota != t->limit_cpu) {
		char buf[64];
		if (quota)
			snprintf(buf, sizeof(buf), "%llu 100000", (unsigned long long)quota);
		else
			snprintf(buf, sizeof(buf), "max 100000");
		rc = corral__write_at(t->dirfd, "cpu.max", buf);
		if (rc < 0)
			return corral__err(err, -rc, "write cpu.max of %s", t->name);
		t->limit_cpu = quota;
	}
	return 0;
}

static int v2_create(const struct corral__batch *b, struct corral__cg_task *t,
                     const struct corral__limits *l, bool need_procs, corral_error_t *err)
{
	int rc;

	if (mkdirat(b->dirfd, t->name, 0755) < 0) {
		if (errno != EEXIST)
			return corral__err(err, errno, "create task cgroup %s/%s", b->dir, t->name);
		/* A leftover of an earlier executor with our name cannot exist
		 * (the nonce differs); a leftover of this one is a bug. Be safe. */
		corral__cg_destroy_tree(b->dirfd, t->name, true, corral__now_ns() + 100000000u);
		if (mkdirat(b->dirfd, t->name, 0755) < 0)
			return corral__err(err, errno, "create task cgroup %s/%s", b->dir, t->name);
	}
	t->created = true;
	/* A new cgroup: every counter at 0. */
	t->base_oom = t->base_oom_kill = t->base_group_kill = t->base_pids_max = 0;
	t->base_user_usec = t->base_system_usec = t->base_some_us = t->base_full_us = 0;
	t->prepared = false;
	t->uses = 1;
	t->dirfd = openat(b->dirfd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return corral__err(err, errno, "open task cgroup %s/%s", b->dir, t->name);
	rc = set_limits(b, t, l, true, err);
	if (rc < 0)
		return rc;
	if (need_procs) {
		t->procs_fd = openat(t->dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (t->procs_fd < 0)
			return corral__err(err, errno, "open %s/cgroup.procs", t->name);
	}
	return 0;
}

/* The cumulative counters of a v2 task cgroup. */
struct raw {
	uint64_t oom, oom_kill, group_kill, pids_max, user_usec, system_usec;
	bool have_cpu;
};

static void read_raw(const struct corral__batch *b, struct corral__cg_task *t, struct raw *r)
{
	char buf[1024];
	uint64_t v;

	memset(r, 0, sizeof(*r));
	if (corral__read_value_at(t->dirfd,
	                          b->events_local ? "memory.events.local" : "memory.events", buf,
	                          sizeof(buf)) >= 0) {
		if (corral__parse_keyed(buf, "oom", &v) == 0)
			r->oom = v;
		if (corral__parse_keyed(buf, "oom_kill", &v) == 0)
			r->oom_kill = v;
		if (corral__parse_keyed(buf, "oom_group_kill", &v) == 0)
			r->group_kill = v;
	}
	if (b->has_pids && corral__read_value_at(t->dirfd, "pids.events", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "max", &v) == 0)
		r->pids_max = v;
	if (corral__read_value_at(t->dirfd, "cpu.stat", buf, sizeof(buf)) >= 0)
		r->have_cpu = corral__parse_keyed(buf, "user_usec", &r->user_usec) == 0 &&
		              corral__parse_keyed(buf, "system_usec", &r->system_usec) == 0;
}

static uint64_t since(uint64_t now, uint64_t base)
{
	return now >= base ? now - base : 0;
}

static int v2_read(const struct corral__batch *b, struct corral__cg_task *t,
                   struct corral__counters *c)
{
	char buf[64];
	struct raw r;

	memset(c, 0, sizeof(*c));
	read_raw(b, t, &r);
	c->oom = since(r.oom, t->base_oom);
	c->oom_kill = since(r.oom_kill, t->base_oom_kill);
	/* With memory.oom.group=1 the kernel counts the victim twice: once
	 * when it is chosen, and again when the group kill walks every
	 * member, the victim included (mm/oom_kill.c, oom_kill_process():
	 * __oom_kill_process(victim), then
	 * mem_cgroup_scan_tasks(oom_kill_memcg_member)). A lone process killed
	 * at its limit reads "oom_kill 2". Each group kill (oom_group_kill,
	 * 5.17+) adds one such extra count. */
	uint64_t group_kills = since(r.group_kill, t->base_group_kill);
	if (group_kills > 0 && c->oom_kill > group_kills)
		c->oom_kill -= group_kills;
	/* The peak through the fd it was reset through (recycled), else the
	 * file's: a fresh cgroup's peak is its task's. */
	if (b->memory_peak &&
	    (t->cache[CGF_MAX_USAGE] >= 0
	         ? corral__pread_value(t->cache[CGF_MAX_USAGE], buf, sizeof(buf))
	         : corral__read_value_at(t->dirfd, "memory.peak", buf, sizeof(buf))) >= 0)
		corral__parse_u64_or_max(buf, &c->peak);
	c->pids_max_hits = since(r.pids_max, t->base_pids_max);
	if (r.have_cpu) {
		c->user_usec = since(r.user_usec, t->base_user_usec);
		c->system_usec = since(r.system_usec, t->base_system_usec);
		c->have_cpu = true;
	}
	return 0;
}

static int v2_populated(const struct corral__batch *b, struct corral__cg_task *t)
{
	char buf[256];
	uint64_t v;
	ssize_t n;

	(void)b;
	if (t->events_fd < 0) {
		t->events_fd = openat(t->dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
		if (t->events_fd < 0)
			return -errno;
	}
	n = corral__pread_value(t->events_fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (corral__parse_keyed(buf, "populated", &v) < 0)
		return -EINVAL;
	return v ? 1 : 0;
}

static int v2_kill(const struct corral__batch *b, struct corral__cg_task *t)
{
	if (b->cgroup_kill && corral__write_at(t->dirfd, "cgroup.kill", "1") == 0)
		return 0;
	/* Before 5.14: SIGKILL the pids we see; the caller repeats until the
	 * cgroup is empty, which catches processes forked meanwhile. */
	corral__cg_kill_procs(t->dirfd);
	return 0;
}

static int v2_remove(const struct corral__batch *b, struct corral__cg_task *t)
{
	if (unlinkat(b->dirfd, t->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	t->created = false;
	corral__cg_task_close(t);
	return 0;
}

static int v2_current(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *bytes)
{
	char buf[64];
	ssize_t n;

	(void)b;
	/* cache[] serves the v1 counter files; on v2 its usage slot keeps
	 * memory.current open. */
	n = corral__read_value_cached(&t->cache[CGF_USAGE], t->dirfd, "memory.current", O_RDONLY,
	                              buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return corral__parse_u64_or_max(buf, bytes);
}

static int raw_pressure(struct corral__cg_task *t, uint64_t *some_us, uint64_t *full_us)
{
	char buf[512];
	ssize_t n;

	/* Absent without CONFIG_PSI, or with psi=0 on the kernel command line
	 * (some distributions' default): then unknown. */
	n = corral__read_at(t->dirfd, "memory.pressure", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return corral__parse_psi(buf, some_us, full_us);
}

static int v2_pressure(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *some_us,
                       uint64_t *full_us)
{
	(void)b;
	int rc = raw_pressure(t, some_us, full_us);
	if (rc < 0)
		return rc;
	*some_us = since(*some_us, t->base_some_us);
	*full_us = since(*full_us, t->base_full_us);
	return 0;
}

bool corral__cg_no_children(int dirfd)
{
	struct stat st;

	return fstat(dirfd, &st) == 0 && st.st_nlink == 2;
}

static bool v2_recyclable(const struct corral__batch *b, struct corral__cg_task *t)
{
	char buf[64];
	uint64_t v;

	/* Each attempt's peak must be its own (its fd stays open). */
	if (!b->peak_reset || t->dirfd < 0 || !corral__cg_no_children(t->dirfd))
		return false;
	if (v2_populated(b, t) != 0)
		return false;
	/* pids.current counts zombies (cgroup.events does not): each would be
	 * one pid less of --pids for the next task (cgroup_v1.c). */
	if (b->has_pids && (corral__read_value_at(t->dirfd, "pids.current", buf, sizeof(buf)) < 0 ||
	                    corral__parse_u64_or_max(buf, &v) < 0 || v != 0))
		return false;
	return v2_current(b, t, &v) == 0 && v <= CORRAL_RECYCLE_MAX_CHARGE;
}

/* Ready an empty, recyclable cgroup for its next attempt, off the critical
 * path: reset the peak (for reads through this fd) and take the baselines. */
static int v2_prepare(const struct corral__batch *b, struct corral__cg_task *t)
{
	struct raw r;
	uint64_t some, full;
	ssize_t n;

	if (t->cache[CGF_MAX_USAGE] < 0 &&
	    (t->cache[CGF_MAX_USAGE] = openat(t->dirfd, "memory.peak", O_RDWR | O_CLOEXEC)) < 0)
		return -errno;
	do
		n = write(t->cache[CGF_MAX_USAGE], "reset\n", 6);
	while (n < 0 && errno == EINTR);
	if (n != 6)
		return n < 0 ? -errno : -EIO;
	read_raw(b, t, &r);
	t->base_oom = r.oom;
	t->base_oom_kill = r.oom_kill;
	t->base_group_kill = r.group_kill;
	t->base_pids_max = r.pids_max;
	t->base_user_usec = r.user_usec;
	t->base_system_usec = r.system_usec;
	if (raw_pressure(t, &some, &full) == 0) {
		t->base_some_us = some;
		t->base_full_us = full;
	}
	t->prepared = true;
	return 0;
}

static int v2_reuse(const struct corral__batch *b, struct corral__cg_task *t,
                    const struct corral__limits *l, corral_error_t *err)
{
	uint64_t was = t->limit_mem;
	int rc = set_limits(b, t, l, false, err);

	if (rc < 0)
		return rc;
	/* A lower memory.max reclaims what the last task left charged, and
	 * where that cannot go below it counts an "oom" event of the empty
	 * cgroup: baselines taken after the write keep it out of the task's
	 * counters. */
	if (l->memory_max < was)
		t->prepared = false;
	if (!t->prepared && (rc = v2_prepare(b, t)) < 0)
		return corral__err(err, -rc, "reset memory.peak of %s", t->name);
	t->prepared = false;
	t->uses++;
	return 0;
}

const struct corral__cg_ops corral__cg_v2_ops = {
    .create = v2_create,
    .read = v2_read,
    .populated = v2_populated,
    .kill = v2_kill,
    .remove = v2_remove,
    .current = v2_current,
    .pressure = v2_pressure,
    .recyclable = v2_recyclable,
    .prepare = v2_prepare,
    .reuse = v2_reuse,
};
