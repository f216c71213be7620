/* local.h - this node as a site of the policy (attempt_local.c): task
 * cgroups under the batch cgroup, the watchdog, the sandbox, and the life of
 * each attempt (spawn, reap, counters, drain, attribution). */
#ifndef CORRAL_LOCAL_H
#define CORRAL_LOCAL_H

#include "capture.h"
#include "cgroup.h"
#include "executor.h"
#include "loop.h"
#include "outcome.h"
#include "policy.h"
#include "provider.h"
#include "spawn.h"

struct lattempt;

struct leftover {
	struct leftover *next;
	char name[32];
	unsigned tries;
};

/* One spawner and the requests it has not answered (it answers in order). */
#define CORRAL_ZYG_MAX 8
struct corral__zslot {
	struct corral__zygote *z; /* NULL: not running */
	corral__loop_handle h;
	uint64_t deadline; /* its oldest request's answer is overdue then (0: none) */
	struct lattempt *head, *tail;
	unsigned waiting;
	struct lattempt *gated; /* its child waits at its gate: it serves nothing else */
};

struct corral__local {
	struct corral__site site;    /* first: the policy sees this */
	corral_options_t *o;         /* the executor's copy (the provider may turn
	                                cgroups and the cgroup namespace off) */
	corral_provider_t prov;      /* where the cgroups came from (provider.c) */
	struct corral__observer obs; /* observe mode: the enclosing cgroup */
	struct corral__loop *loop;
	struct corral__hier hier;
	struct corral__batch batch;
	const struct corral__cg_ops *ops; /* NULL: running without cgroups */
	bool have_batch;
	struct corral__watchdog wd;
	int pidns_saved; /* while spawning into the batch's PID namespace: the driving
	                    thread's own pid_for_children, to go back to; else -1 */
	struct corral__spawn_cache scache;
	struct corral__sandbox_plan sb;
	bool sb_on;
	int devnull;
	/* Attempts whose end is not reported yet. */
	struct lattempt *run_head;
	/* Empty task cgroups kept for the next attempts (v1: see cgroup_v1.c,
	 * "Recycling"); at most 2 x `jobs` of them. A finished attempt's cgroup
	 * enters unprepared and is checked and readied (prepare_pool) after the
	 * next attempts have started: at -j 1 two cgroups take turns, and none
	 * of that work delays a spawn. */
	struct corral__cg_task *pool;
	unsigned pool_n, pool_cap;
	/* Task cgroups that could not be removed yet. */
	struct leftover *leftovers;
	uint64_t leftover_at;
	corral_profile_t prof;
	/* /dev/kmsg, non-blocking, read from its end: the kernel's OOM reports
	 * name the task cgroup of each victim. -1 when unreadable. */
	int kmsg_fd;
	corral__loop_handle h_kmsg;
	int kmsg_errno; /* why it is unreadable (0: readable) */
	/* The spawners (zygote.c): the sandbox once, inherited by the tasks;
	 * one per CPU the batch can use (up to jobs), so that one task's
	 * pre-exec work does not wait for another's. */
	struct corral__zslot zyg[CORRAL_ZYG_MAX];
	unsigned n_zyg;      /* how many to run */
	bool zyg_stale;      /* the template changed: new ones when these are answered */
	bool zyg_off;        /* none in use (never started, failed, or all died) */
	int zyg_errno;       /* why the last one stopped */
	uint64_t zyg_cookie; /* of the last request */
	/* The warm child (attempt_local.c): the queue's head made ready up to
	 * its exec while the slots are busy; NULL: none. */
	struct lattempt *warm;
	bool warm_off;       /* none for this batch (CORRAL_WARM=0, or one died unbidden) */
	bool sb_news;        /* the mount table changed (news taken before a spawn could) */
	unsigned warm_made;  /* warm children made: their cgroups' names */
	unsigned ahead_made; /* cgroups made ahead (cgroup_ahead): their names */
	bool ahead_off;      /* making one ahead failed: no more for this batch */
	/* One-entry cache of the PATH lookup (a batch runs one command). */
	char exe_argv0[256];
	char exe_pathenv[1024];
	char exe_path[PATH_MAX];
	int exe_rc;
};

/* Discover the hierarchy, create the batch cgroup, start the watchdog,
 * prepare the sandbox (o is the executor's copy, it outlives the site).
 * On failure nothing is left (the partly made site is freed). */
int corral__local_new(corral_options_t *o, struct corral__loop *loop, struct corral__local **out,
                      corral_error_t *err);
/* Kill what runs (attempts end through the policy), remove every cgroup,
 * stop the watchdog, free. Call after every attempt is done. */
void corral__local_free(struct corral__local *l);
/* Force out attempts whose end never showed (after a bounded wait). */
void corral__local_force_out(struct corral__local *l);

/* The loop round: before waiting (leave the batch's PID namespace), the
 * earliest deadline wanted (UINT64_MAX: none), the timer, after the round. */
void corral__local_before_wait(struct corral__local *l);
uint64_t corral__local_deadline(const struct corral__local *l);
void corral__local_timer(struct corral__local *l, uint64_t now);
void corral__local_after_round(struct corral__local *l);
void corral__local_profile(const struct corral__local *l, corral_profile_t *p);
/* A running attempt of this site: the pid of its main process and its start
 * (wall clock). 0, or -ESRCH when no process was started (yet). */
int corral__local_started(const struct corral__attempt *a, pid_t *pid, double *start_time);
/* corral_task_memory() for a running attempt of this site (see corral.h). */
int corral__local_task_memory(struct corral__local *l, struct corral__attempt *a, uint64_t *current,
                              uint64_t *peak, bool reset_peak);

#endif
