/* cgroup_v2.c - one task cgroup on the unified hierarchy.
 *
 * <batch>/t<seq>-a<attempt>/ with memory.max, memory.swap.max,
 * memory.oom.group, pids.max, cpu.max. The task is born inside it with
 * clone3(CLONE_INTO_CGROUP) using the directory fd opened here; without that,
 * the child writes "0" into cgroup.procs (procs_fd) before it runs task code.
 * Counters come from memory.events.local: "oom" rises in the cgroup whose own
 * limit fired, "oom_kill" in the cgroup of the process that was killed.
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
	t->dirfd = openat(b->dirfd, t->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return corral__err(err, errno, "open task cgroup %s/%s", b->dir, t->name);
	if (l->memory_max != CORRAL_UNLIMITED) {
		rc = write_u64(t->dirfd, "memory.max", l->memory_max);
		if (rc < 0)
			return corral__err(err, -rc, "write memory.max of %s", t->name);
	}
	if (b->swap_accounting) {
		rc = write_u64(t->dirfd, "memory.swap.max", l->swap_max);
		if (rc < 0 && rc != -ENOENT)
			return corral__err(err, -rc, "write memory.swap.max of %s", t->name);
	}
	if (l->oom_group && b->oom_group) {
		rc = corral__write_at(t->dirfd, "memory.oom.group", "1");
		if (rc < 0)
			return corral__err(err, -rc, "write memory.oom.group of %s", t->name);
	}
	if (b->has_pids && l->pids_max != CORRAL_UNLIMITED) {
		rc = write_u64(t->dirfd, "pids.max", l->pids_max);
		if (rc < 0)
			return corral__err(err, -rc, "write pids.max of %s", t->name);
	}
	if (b->has_cpu && l->cpus > 0) {
		char buf[64];
		unsigned long long quota = (unsigned long long)(l->cpus * 100000.0 + 0.5);
		if (quota < 1000)
			quota = 1000; /* the kernel's minimum quota is 1 ms */
		snprintf(buf, sizeof(buf), "%llu 100000", quota);
		rc = corral__write_at(t->dirfd, "cpu.max", buf);
		if (rc < 0)
			return corral__err(err, -rc, "write cpu.max of %s", t->name);
	}
	if (need_procs) {
		t->procs_fd = openat(t->dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (t->procs_fd < 0)
			return corral__err(err, errno, "open %s/cgroup.procs", t->name);
	}
	return 0;
}

static int v2_read(const struct corral__batch *b, struct corral__cg_task *t,
                   struct corral__counters *c)
{
	char buf[1024];
	uint64_t v;

	memset(c, 0, sizeof(*c));
	if (corral__read_value_at(t->dirfd,
	                          b->events_local ? "memory.events.local" : "memory.events", buf,
	                          sizeof(buf)) >= 0) {
		if (corral__parse_keyed(buf, "oom", &v) == 0)
			c->oom = v;
		if (corral__parse_keyed(buf, "oom_kill", &v) == 0)
			c->oom_kill = v;
		/* With memory.oom.group=1 the kernel counts the victim twice:
		 * once when it is chosen, and again when the group kill walks
		 * every member, the victim included (mm/oom_kill.c,
		 * oom_kill_process(): __oom_kill_process(victim), then
		 * mem_cgroup_scan_tasks(oom_kill_memcg_member)). A lone process
		 * killed at its limit reads "oom_kill 2". Each group kill
		 * (oom_group_kill, 5.17+) adds one such extra count. */
		if (corral__parse_keyed(buf, "oom_group_kill", &v) == 0 && v > 0 && c->oom_kill > v)
			c->oom_kill -= v;
	}
	if (b->memory_peak && corral__read_value_at(t->dirfd, "memory.peak", buf, sizeof(buf)) >= 0)
		corral__parse_u64_or_max(buf, &c->peak);
	if (b->has_pids && corral__read_value_at(t->dirfd, "pids.events", buf, sizeof(buf)) >= 0 &&
	    corral__parse_keyed(buf, "max", &v) == 0)
		c->pids_max_hits = v;
	if (corral__read_value_at(t->dirfd, "cpu.stat", buf, sizeof(buf)) >= 0) {
		if (corral__parse_keyed(buf, "user_usec", &c->user_usec) == 0 &&
		    corral__parse_keyed(buf, "system_usec", &c->system_usec) == 0)
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

static int v2_pressure(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *some_us,
                       uint64_t *full_us)
{
	char buf[512];
	ssize_t n;

	(void)b;
	/* Absent without CONFIG_PSI, or with psi=0 on the kernel command line
	 * (some distributions' default): then unknown. */
	n = corral__read_at(t->dirfd, "memory.pressure", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return corral__parse_psi(buf, some_us, full_us);
}

const struct corral__cg_ops corral__cg_v2_ops = {
    .create = v2_create,
    .read = v2_read,
    .populated = v2_populated,
    .kill = v2_kill,
    .remove = v2_remove,
    .current = v2_current,
    .pressure = v2_pressure,
};
