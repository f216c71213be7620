/* provider.h - where task cgroups come from (design §9): the provider chain
 * (provider.c), its systemd rung (provider_systemd.c) and the observer of
 * observe mode (observer.c).
 *
 * The executor calls corral__provide() once, at creation; it leaves either a
 * batch cgroup (own, systemd, slurm), an open observer (observe) or nothing
 * (off). The executor's other hooks are the four corral__observer_* calls.
 */
#ifndef CORRAL_PROVIDER_H
#define CORRAL_PROVIDER_H

#include "cgroup.h"
#include "outcome.h"

/* ------------------------------------------------------------ observer.c */

/* A task that died of a SIGKILL corral did not send, remembered for a while:
 * two such deaths whose windows overlap compete for the same OOM kills. */
struct corral__obs_death {
	uint64_t seq;
	uint64_t start_ns, end_ns; /* the attempt's life */
};

#define CORRAL__OBS_DEATHS 64

/* Observe mode: no task cgroups; the enclosing cgroup's OOM-kill counter. */
struct corral__observer {
	bool on;
	bool v2;
	int fd;               /* v2 memory.events, v1 memory.oom_control; -1 */
	char path[512];       /* the watched cgroup, as /proc/self/cgroup shows it */
	char limit_desc[256]; /* "memory.max 200.0 MiB of /docker/x", or what is known */
	uint64_t settle_ns;   /* how long a SIGKILLed attempt waits for its rivals */
	struct corral__obs_death deaths[CORRAL__OBS_DEATHS]; /* a ring */
	unsigned n_deaths;                                   /* ever recorded */
};

/* Per attempt. */
struct corral__obs_attempt {
	bool started;
	uint64_t count_at_start; /* oom_kill of the watched cgroup at spawn */
	uint64_t count_at_end;   /* ... at the reap */
	uint64_t start_ns, end_ns;
	bool killed; /* died of SIGKILL that corral did not send */
};

/* Watch dir (the enclosing cgroup, mapped from path). Returns 0 or -errno
 * with a message saying what is missing. */
int corral__observer_open(struct corral__observer *ob, bool v2, const char *dir, const char *path,
                          corral_error_t *err);
void corral__observer_close(struct corral__observer *ob);
/* The enclosing cgroup's oom_kill now (0 when unreadable). */
uint64_t corral__observer_count(struct corral__observer *ob);
/* Hook: the attempt was spawned. */
void corral__observer_started(struct corral__observer *ob, struct corral__obs_attempt *oa);
/* Hook: the attempt's leader was reaped. killed_by_sigkill: it died of a
 * SIGKILL that corral did not send. Returns the time (CLOCK_MONOTONIC ns)
 * until which the attempt should stay unfinished, so that a rival killed
 * at the same moment is reaped before either is judged; 0 = no need. */
uint64_t corral__observer_reaped(struct corral__observer *ob, struct corral__obs_attempt *oa,
                                 uint64_t seq, bool killed_by_sigkill);
/* Hook: the attempt is being classified: fill f's observe fields. */
void corral__observer_facts(const struct corral__observer *ob, const struct corral__obs_attempt *oa,
                            uint64_t seq, struct corral__facts *f);
/* The attribution itself, on plain numbers (unit-tested): kills = the rise
 * of oom_kill over the attempt's life, rivals = other SIGKILL deaths whose
 * lives overlap it. 1: oom_outside; 0: not an OOM kill; -1: ambiguous. */
int corral__observer_judge(uint64_t kills, unsigned rivals);

/* ------------------------------------------------------------ provider_systemd.c */

/* Is a systemd manager reachable, and does it have the memory controller to
 * delegate? system: PID 1 over /run/systemd/private (root), else the user
 * manager ($XDG_RUNTIME_DIR/systemd/private, then the session bus). Changes
 * nothing. Returns 0, or -errno with why[] saying what is missing. */
int corral__systemd_probe(bool system, const char *cgroupfs, char *why, size_t len);
/* Ask it for a transient scope "corral-<pid>-<nonce>.scope" with
 * Delegate=yes and CollectMode=inactive-or-failed containing this process,
 * and wait (bounded) until the job is done and we are in it. unit[] gets the
 * name. Returns 0, or -errno with why[]. */
int corral__systemd_scope(bool system, char *unit, size_t unit_len, char *why, size_t len);
/* Was corral built with libsystemd? */
bool corral__systemd_built(void);

/* ------------------------------------------------------------ provider.c */

/* Where we run, found without side effects. */
struct corral__where {
	bool root;
	bool slurm; /* SLURM_JOB_ID is set, or our cgroup is Slurm's */
	char slurm_job[32];
	bool systemd_booted;  /* /run/systemd/system: PID 1 is systemd */
	bool cgroupfs_ro;     /* the cgroup mount we would use is read-only */
	const char *platform; /* "docker container", "systemd host", ... */
	enum {
		W_HOST,
		W_DOCKER,
		W_PODMAN,
		W_KUBERNETES,
		W_CONTAINER,
		W_APPTAINER,
		W_SLURM
	} kind;
};

/* The chain: discover, then try the providers in order (or the one pinned by
 * o->cgroups / o->no_cgroups / o->cgroup_parent). On success *h describes
 * the base, and either *b is a created batch (p->limits), *ob is open
 * (observe) or neither (off). On failure -errno, err says why in one line
 * and *p still tells the whole story. */
int corral__provide(const corral_options_t *o, struct corral__hier *h, struct corral__batch *b,
                    struct corral__observer *ob, corral_provider_t *p, corral_error_t *err);

#endif
