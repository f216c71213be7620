/* cgroup.h - the cgroup layer, shared by hierarchy.c, cgroup_v1.c, cgroup_v2.c,
 * teardown.c and the executor.
 *
 * Every function that touches cgroupfs works from paths and directory fds
 * found by discovery, never from a compiled-in "/sys/fs/cgroup", so unit tests
 * point the whole layer at a fake tree in a temp dir.
 */
#ifndef CORRAL_CGROUP_H
#define CORRAL_CGROUP_H

#include <limits.h>
#include <sys/types.h>

#include "internal.h"

/* What discovery found out, without changing anything. */
struct corral__hier {
	corral_cgroup_mode_t mode;
	struct corral__mounts mounts;
	struct corral__proc_cgroup self;

	/* The base: where the batch cgroup is created. */
	char base_path[PATH_MAX];     /* as /proc/self/cgroup shows it ("/a/b") */
	char base_dir[PATH_MAX];      /* v2 dir, or v1 memory dir */
	char pids_base_dir[PATH_MAX]; /* v1 pids dir; "" when pids is not on v1 */
	char own_dir[PATH_MAX];       /* our own cgroup's dir in the same hierarchy */
	bool base_exists;
	bool base_is_own;                   /* base == our own cgroup */
	bool base_is_root;                  /* base is the hierarchy's real root */
	bool writable;                      /* we may mkdir in base (and write its control files) */
	bool need_supervisor;               /* v2: we must leave base for <batch>/supervisor */
	bool in_supervisor;                 /* v2: an earlier executor of this process moved us into
	                                       <home>/corral-<pid>-.../supervisor; "own" means <home> */
	bool in_cgroupns;                   /* we run in a non-initial cgroup namespace */
	char controllers[256];              /* v2: base's cgroup.controllers */
	char subtree_control[256];          /* v2: base's cgroup.subtree_control */
	bool has_memory, has_pids, has_cpu; /* controllers usable for task cgroups */

	/* Kernel features. */
	bool clone3;            /* the clone3 syscall exists */
	bool clone_into_cgroup; /* Linux >= 5.7 and v2 */
	bool pidfd;             /* pidfd_open works */
	bool waitid_pidfd;      /* waitid(P_PIDFD) works (5.4) */
	bool cgroup_kill;       /* v2 cgroup.kill (5.14) */
	bool memory_peak;       /* v2 memory.peak (5.19); v1 max_usage_in_bytes always */
	bool peak_reset;        /* the peak can be reset: task cgroups are recycled (v1; v2 6.12) */
	bool events_local;      /* v2 memory.events.local */
	bool oom_group;         /* v2 memory.oom.group */
	bool swap_accounting;   /* v1 memsw files / v2 memory.swap.max */
	bool seccomp;           /* seccomp filters can be loaded */
	bool cgroupns;          /* the kernel has cgroup namespaces */
	int kernel_major, kernel_minor;
	char kernel_release[128];
};

/* Inputs of discovery; tests replace the defaults with fake texts and trees. */
struct corral__hier_env {
	const char *proc_self_cgroup; /* text; NULL = read /proc/self/cgroup */
	const char *mountinfo;        /* text; NULL = read /proc/self/mountinfo */
	bool probe_kernel;            /* probe syscalls and uname (false in unit tests) */
};

/* Discover the hierarchy and the base (cgroup_parent or our own cgroup).
 * Fills *h even when the host has no usable memory controller (mode NONE);
 * returns -errno only on an internal error or a malformed cgroup_parent. */
int corral__hier_discover(const struct corral__hier_env *env, const char *cgroup_parent,
                          struct corral__hier *h, corral_error_t *err);

/* Limits of one task attempt; CORRAL_UNLIMITED = none. */
struct corral__limits {
	uint64_t memory_max;
	uint64_t swap_max;
	uint64_t pids_max;
	double cpus;
	bool oom_group;
};

/* Counters of a task cgroup (absolute values; deltas are taken by the caller). */
struct corral__counters {
	uint64_t oom;           /* the task's own limit fired: v2 memory.events.local "oom";
	                           v1 failcnt or peak at the limit (see cgroup_v1.c) */
	uint64_t oom_kill;      /* processes OOM-killed */
	uint64_t peak;          /* bytes */
	uint64_t pids_max_hits; /* pids.events "max" */
	uint64_t user_usec, system_usec;
	bool have_cpu;
};

/* The batch: our cgroup(s) under the base. Plain data, so the teardown can run
 * in the watchdog after fork (async-signal-safe, see teardown.c). */
struct corral__batch {
	corral_cgroup_mode_t mode;
	char name[96];            /* corral-<pid>-<starttime>-<n> */
	char dir[PATH_MAX];       /* v2 batch dir, or v1 memory batch dir */
	char pids_dir[PATH_MAX];  /* v1 pids batch dir, or "" */
	char base_dir[PATH_MAX];  /* to move back into at the end (v2 supervisor) */
	int dirfd;                /* open on dir */
	int pids_dirfd;           /* open on pids_dir, or -1 */
	bool supervisor;          /* we moved into <dir>/supervisor */
	char enabled_in_base[64]; /* "+memory +pids" we wrote into base's subtree_control */
	bool has_pids, has_cpu, has_memory;
	bool cgroup_kill, memory_peak, events_local, oom_group, swap_accounting;
	bool clone_into_cgroup;
	bool peak_reset; /* v2: memory.peak resets through an fd (Linux 6.12): recycling */
	bool cache_fds;  /* v1: keep counter files open (enough fds: see attempt_local.c) */
};

/* Create the batch cgroup under h's base (sweeping stale ones first). */
int corral__batch_create(const struct corral__hier *h, const corral_options_t *o,
                         struct corral__batch *b, corral_error_t *err);

/* Counter files a recycled v1 task cgroup keeps open between its attempts
 * (read with pread at offset 0: kernfs makes the content anew at offset 0).
 * Never cgroup.procs: v1 keeps the pid list of an open file for a second and
 * would serve a stale one. */
enum corral__cg_file {
	CGF_OOM_CONTROL,
	CGF_MAX_USAGE, /* opened read-write: the peak is also reset through it
	                * (v2: memory.peak, whose reset holds for that fd alone) */
	CGF_USAGE,
	CGF_FAILCNT,
	CGF_MEMSW_FAILCNT,
	CGF_PIDS_EVENTS,
	CGF_PIDS_CURRENT,
	CGF_N
};

/* A task attempt's cgroup. */
struct corral__cg_task {
	char name[32];     /* t<seq>-a<attempt>, a warm child's t<seq>-a<attempt>-w<n> */
	int dirfd;         /* v2 dir / v1 memory dir (O_DIRECTORY), -1 after close */
	int pids_dirfd;    /* v1 pids dir, -1 if none */
	int procs_fd;      /* cgroup.procs to write "0" into from the child, or -1 */
	int pids_procs_fd; /* v1 pids cgroup.procs, or -1 */
	int events_fd;     /* v2 cgroup.events (populated), opened on demand, or -1 */
	bool created;
	uint64_t limit_mem, limit_memsw; /* the limits written (v1: for own-limit detection) */
	uint64_t limit_pids;             /* pids.max written (CORRAL_UNLIMITED = none) */
	uint64_t limit_swap, limit_cpu;  /* v2: memory.swap.max, cpu.max quota (0 = max) */
	bool limit_oom_group;            /* v2: memory.oom.group is 1 */
	/* Recycling: counters as they were when this attempt began. A fresh
	 * cgroup starts at 0; a recycled one carries its earlier tasks' counts,
	 * and every counter corral reads is taken as a delta from these. */
	uint64_t base_oom_kill, base_failcnt, base_memsw_failcnt, base_pids_max;
	uint64_t base_oom, base_group_kill, base_user_usec, base_system_usec; /* v2 */
	uint64_t base_some_us, base_full_us;                                  /* v2 pressure */
	unsigned uses;    /* attempts run in this cgroup */
	int cache[CGF_N]; /* v1: open counter files, or -1 (see enum corral__cg_file) */
	/* v1: the raw counters of the last read, and whether that read found
	 * the cgroup empty (then they are final: the next attempt's baselines). */
	uint64_t last_oom_kill, last_failcnt, last_memsw_failcnt, last_pids_max;
	bool empty;      /* the last populated() found no process */
	bool pids_clear; /* ... and pids.current 0: no zombie either, for good */
	bool settled;    /* the last read came after that: its values are final */
	bool prepared;   /* prepare() ran; the next reuse() need not */
};

/* v2 and v1 backends behind one small interface (cgroup_v2.c, cgroup_v1.c). */
struct corral__cg_ops {
	/* mkdir the task cgroup and write its limits. need_procs: open
	 * cgroup.procs fds for the child to join (no CLONE_INTO_CGROUP). */
	int (*create)(const struct corral__batch *b, struct corral__cg_task *t,
	              const struct corral__limits *l, bool need_procs, corral_error_t *err);
	/* Read the counters. */
	int (*read)(const struct corral__batch *b, struct corral__cg_task *t,
	            struct corral__counters *c);
	/* Does any process remain? 1 yes, 0 no, -errno. An empty cgroup
	 * whose counters are read next is "settled" (see struct above). */
	int (*populated)(const struct corral__batch *b, struct corral__cg_task *t);
	/* SIGKILL every process of the task. */
	int (*kill)(const struct corral__batch *b, struct corral__cg_task *t);
	/* rmdir; -EBUSY while processes remain. Closes the fds on success. */
	int (*remove)(const struct corral__batch *b, struct corral__cg_task *t);
	/* Recycling (NULL where unsupported): may this empty cgroup serve the
	 * next attempt (nothing of its tasks left in it, its memory charge
	 * released)? */
	bool (*recyclable)(const struct corral__batch *b, struct corral__cg_task *t);
	/* Ready a recyclable cgroup for its next attempt (reset the peak, take
	 * the baselines) off the critical path, and set t->prepared. Required
	 * with recyclable. */
	int (*prepare)(const struct corral__batch *b, struct corral__cg_task *t);
	/* Claim it for an attempt with limits l: rewrite the limits that
	 * differ, prepare() if that did not run, clear t->prepared. */
	int (*reuse)(const struct corral__batch *b, struct corral__cg_task *t,
	             const struct corral__limits *l, corral_error_t *err);
	/* The memory charged now: v2 memory.current, v1 memory.usage_in_bytes
	 * (the file stays open, one pread per call). For timelines. */
	int (*current)(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *bytes);
	/* v2 memory.pressure: microseconds some / all of its processes stalled
	 * on memory. NULL on v1 (no pressure files). */
	int (*pressure)(const struct corral__batch *b, struct corral__cg_task *t, uint64_t *some_us,
	                uint64_t *full_us);
};
extern const struct corral__cg_ops corral__cg_v2_ops;
extern const struct corral__cg_ops corral__cg_v1_ops;

/* Recycling, v1 and v2: past this much memory still charged after its task
 * (page cache, kernel objects) a cgroup is retired and a fresh one made, so
 * that the next task's peak stays within that of a fresh cgroup's. */
#define CORRAL_RECYCLE_MAX_CHARGE (1u << 20)

/* Has the cgroup directory dirfd no sub-cgroup? kernfs counts subdirectories
 * in a directory's link count. A sub-cgroup a task made (possible without
 * the sandbox) would carry its own processes and charges: not recycled. */
bool corral__cg_no_children(int dirfd);

void corral__cg_task_init(struct corral__cg_task *t);
void corral__cg_task_close(struct corral__cg_task *t);

/* Tear the batch down: kill every task cgroup, remove them, leave the
 * supervisor (restoring base's subtree_control) and remove the batch cgroup.
 * Async-signal-safe (no malloc, no stdio): the watchdog runs it after fork.
 * budget_ms bounds the waiting. Returns 0 when everything was removed. */
int corral__teardown(const struct corral__batch *b, int budget_ms);

/* Kill and remove one cgroup directory tree (children first), async-signal-
 * safe, bounded by deadline_ns (CLOCK_MONOTONIC). Skips "supervisor". */
int corral__cg_destroy_tree(int parent_fd, const char *name, bool v2, uint64_t deadline_ns);

/* Start time (clock ticks, /proc/<pid>/stat field 22) of pid. */
int corral__proc_starttime(pid_t pid, unsigned long long *out);

/* SIGKILL every pid in dirfd/cgroup.procs (async-signal-safe); returns the
 * number of pids seen. */
int corral__cg_kill_procs(int dirfd);

#endif
