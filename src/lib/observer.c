/* observer.c - observe mode: no cgroup per task, but the OOM kills of the
 * enclosing cgroup, read through the pidfd verdicts of the tasks.
 *
 * Where corral may read the cgroupfs but not write it (Docker, Podman,
 * containerd and CRI mount it read-only by default; Slurm's cgroup/v2 steps),
 * the tasks live in corral's own cgroup. Its oom_kill counter (v2
 * memory.events, hierarchical; v1 memory.oom_control, kernel >= 4.13) counts
 * every process the OOM killer took there. The kernel raises it before it
 * sends the SIGKILL (mm/oom_kill.c), so when a task's pidfd reports a death
 * by SIGKILL the rise, if any, is already visible.
 *
 * Attribution (corral__observer_judge): a task that died of a SIGKILL corral
 * did not send, while the counter rose during its life, is oom_outside —
 * unless other tasks died of SIGKILL in an overlapping window and there were
 * fewer kills than such deaths: then which one the OOM killer took is
 * ambiguous, and the outcome stays `signal` with a sentence saying so. A
 * SIGKILLed attempt is held unfinished for settle_ns after its reap, so that
 * a rival killed at the same moment has been reaped (and is known) before
 * either is judged. What cannot be known here: a kill of a process that was
 * no task (corral's own helpers, another process of the container) during a
 * task's life looks the same; the sentence says "the enclosing cgroup".
 */
#include <fcntl.h>
#include <stdio.h>

#include "provider.h"

uint64_t corral__observer_count(struct corral__observer *ob)
{
	char buf[1024];
	uint64_t v = 0;

	if (!ob->on || ob->fd < 0 || corral__pread_all(ob->fd, buf, sizeof(buf)) < 0)
		return 0;
	if (corral__parse_keyed(buf, "oom_kill", &v) < 0)
		return 0;
	return v;
}

/* "memory.max 200.0 MiB of /docker/x": the nearest limit at or above dir
 * that we can see (v2: memory.max walking up while the files exist; v1: the
 * effective hierarchical_memory_limit of memory.stat). */
static void describe_limit(struct corral__observer *ob, const char *dir, const char *path)
{
	char d[PATH_MAX], p[512], buf[8192], sz[32];
	uint64_t v = CORRAL_UNLIMITED;

	snprintf(d, sizeof(d), "%s", dir);
	snprintf(p, sizeof(p), "%s", path);
	if (!ob->v2) {
		cleanup_close int fd = -1;
		char f[PATH_MAX + 32];
		snprintf(f, sizeof(f), "%s/memory.stat", d);
		fd = open(f, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && corral__pread_all(fd, buf, sizeof(buf)) >= 0 &&
		    corral__parse_keyed(buf, "hierarchical_memory_limit", &v) == 0 &&
		    v < (1ull << 62)) {
			snprintf(ob->limit_desc, sizeof(ob->limit_desc),
			         "its memory limit %s (hierarchical_memory_limit of %s)",
			         corral_format_size(v, sz, sizeof(sz)), p);
			return;
		}
		snprintf(ob->limit_desc, sizeof(ob->limit_desc),
		         "no memory limit on %s: only the host's memory bounds it", p);
		return;
	}
	for (int depth = 0; depth < 32; depth++) {
		cleanup_close int fd = -1;
		char f[PATH_MAX + 32];
		snprintf(f, sizeof(f), "%s/memory.max", d);
		fd = open(f, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break; /* the root (or the top of what we see) has none */
		if (corral__pread_all(fd, buf, sizeof(buf)) >= 0 &&
		    corral__parse_u64_or_max(buf, &v) == 0 && v != CORRAL_UNLIMITED) {
			snprintf(ob->limit_desc, sizeof(ob->limit_desc), "memory.max %s of %s",
			         corral_format_size(v, sz, sizeof(sz)), p);
			return;
		}
		/* Up one level, in the directory and in the cgroup path. */
		char *s = strrchr(d, '/'), *t = strrchr(p, '/');
		if (!s || s == d || !t)
			break;
		*s = '\0';
		if (t == p)
			snprintf(p, sizeof(p), "/");
		else
			*t = '\0';
	}
	snprintf(ob->limit_desc, sizeof(ob->limit_desc),
	         "no memory.max at or above %s that corral can see: an ancestor's limit or "
	         "the host ran out",
	         path);
}

int corral__observer_open(struct corral__observer *ob, bool v2, const char *dir, const char *path,
                          corral_error_t *err)
{
	char f[PATH_MAX + 32], buf[1024];
	uint64_t v;

	memset(ob, 0, sizeof(*ob));
	ob->fd = -1;
	ob->v2 = v2;
	snprintf(f, sizeof(f), "%s/%s", dir, v2 ? "memory.events" : "memory.oom_control");
	ob->fd = open(f, O_RDONLY | O_CLOEXEC);
	if (ob->fd < 0)
		return corral__err(err, errno, "cannot read %s", f);
	if (corral__pread_all(ob->fd, buf, sizeof(buf)) < 0 ||
	    corral__parse_keyed(buf, "oom_kill", &v) < 0) {
		corral__close(ob->fd);
		ob->fd = -1;
		return corral__err(err, ENOTSUP,
		                   "%s has no oom_kill counter (Linux >= 4.13 needed)", f);
	}
	snprintf(ob->path, sizeof(ob->path), "%s", path);
	describe_limit(ob, dir, path);
	ob->settle_ns = 200 * 1000000ull;
	ob->on = true;
	return 0;
}

void corral__observer_close(struct corral__observer *ob)
{
	if (ob->fd >= 0)
		close(ob->fd);
	ob->fd = -1;
	ob->on = false;
}

void corral__observer_started(struct corral__observer *ob, struct corral__obs_attempt *oa)
{
	memset(oa, 0, sizeof(*oa));
	if (!ob->on)
		return;
	oa->started = true;
	oa->count_at_start = corral__observer_count(ob);
	oa->start_ns = corral__now_ns();
}

uint64_t corral__observer_reaped(struct corral__observer *ob, struct corral__obs_attempt *oa,
                                 uint64_t seq, bool killed_by_sigkill)
{
	if (!ob->on || !oa->started)
		return 0;
	oa->end_ns = corral__now_ns();
	oa->count_at_end = corral__observer_count(ob);
	oa->killed = killed_by_sigkill;
	if (!killed_by_sigkill)
		return 0;
	struct corral__obs_death *d = &ob->deaths[ob->n_deaths++ % CORRAL__OBS_DEATHS];
	d->seq = seq;
	d->start_ns = oa->start_ns;
	d->end_ns = oa->end_ns;
	/* Only a death with a rise needs its rivals; hold it for them. */
	return oa->count_at_end > oa->count_at_start ? oa->end_ns + ob->settle_ns : 0;
}

int corral__observer_judge(uint64_t kills, unsigned rivals)
{
	if (kills == 0)
		return 0;
	return kills > rivals ? 1 : -1;
}

void corral__observer_facts(const struct corral__observer *ob, const struct corral__obs_attempt *oa,
                            uint64_t seq, struct corral__facts *f)
{
	unsigned n, rivals = 0;

	if (!ob->on || !oa->started)
		return;
	f->observed = true;
	f->observed_where = ob->limit_desc;
	if (!oa->killed || oa->count_at_end <= oa->count_at_start)
		return;
	f->observed_kills = oa->count_at_end - oa->count_at_start;
	/* Rivals: other SIGKILL deaths whose lives overlap this one. Those
	 * that died during the settle time are in the ring by now. */
	n = ob->n_deaths < CORRAL__OBS_DEATHS ? ob->n_deaths : CORRAL__OBS_DEATHS;
	for (unsigned i = 0; i < n; i++) {
		const struct corral__obs_death *d = &ob->deaths[i];
		if (d->seq == seq && d->start_ns == oa->start_ns)
			continue; /* this attempt */
		if (d->end_ns >= oa->start_ns && d->start_ns <= oa->end_ns + ob->settle_ns)
			rivals++;
	}
	f->observed_rivals = rivals;
}
