/* corral.h - the public C API of libcorral.
 *
 * corral runs batches of tasks on Linux. Each task is a forked child that is
 * born inside its own cgroup (memory.max, pids.max, ...) and is watched through
 * a pidfd, so that every task ends with exactly one outcome that says precisely
 * why it ended (exited, crashed, OOM-killed at its own limit, OOM-killed by an
 * ancestor's or the host's shortage, timed out, killed from outside, ...).
 *
 * Lifecycle
 * ---------
 *   corral_options_t o;
 *   corral_options_init(&o);            defaults: see corral_options_init()
 *   o.memory_max = 64 << 20;
 *   corral_executor_t *ex;
 *   if (corral_executor_new(&o, &ex, &err) < 0) ...   nothing to free on failure
 *   corral_submit(ex, &task, &err);     as many as you like, in input order
 *   corral_close(ex);                   no more submissions (optional)
 *   while ((r = corral_next(ex, &res, -1, &err)) > 0) {
 *           ... use res ...
 *           corral_result_release(&res);
 *   }
 *   corral_summary(ex, &sum);           the batch verdict
 *   corral_executor_free(ex);           kills what still runs, removes cgroups
 *
 * If corral_executor_new() succeeds you must call corral_executor_free().
 * A call that fails produces no result and leaves the executor usable.
 *
 * Threads and signals
 * -------------------
 * One executor is driven by one thread at a time; calls on different
 * executors are independent. The library installs no signal handlers, never
 * calls exit() and never prints. It starts one helper process per executor
 * (the watchdog, see corral_executor_new()) and reaps only the processes it
 * started, through their pidfds: it never calls wait(-1). Tasks are created
 * with no exit signal, but the kernel gives a process SIGCHLD back when it
 * execs (measured on Linux 6.1 and 6.18): the caller gets a SIGCHLD for each
 * command task that ends, and a caller that reaps with wait(-1) or
 * waitpid(-1, ...) (asyncio's FastChildWatcher, a SIGCHLD handler that
 * reaps everything) takes a task's exit status away: corral then records
 * that attempt as an exit with status 255, a failure, never a success.
 *
 * Errors
 * ------
 * Functions returning int return >= 0 on success and -errno on failure. They
 * take an optional corral_error_t * (may be NULL) that receives the errno and
 * a one-line message with context; it is written only on failure.
 */
#ifndef CORRAL_H
#define CORRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CORRAL_BUILDING) || !defined(CORRAL_STATIC)
#define CORRAL_API __attribute__((visibility("default")))
#else
#define CORRAL_API
#endif

#define CORRAL_VERSION_MAJOR  0
#define CORRAL_VERSION_MINOR  1
#define CORRAL_VERSION_PATCH  0
#define CORRAL_VERSION_STRING "0.1.0"

/* "no limit" for every size, count and duration field below. */
#define CORRAL_UNLIMITED UINT64_MAX

/* ---------------------------------------------------------------- errors */

typedef struct corral_error {
	int code;      /* positive errno value */
	char msg[512]; /* one line, no trailing newline, with context */
} corral_error_t;

/* Returns the version string of the library that is linked. */
CORRAL_API const char *corral_version(void);

/* sizeof of the public structs as the library was built, so that bindings
 * (ctypes) can check their mirror of the layout: "options", "task",
 * "result", "summary", "error", "output", "sandbox"; 0 for other names. */
CORRAL_API size_t corral_struct_size(const char *name);

/* ---------------------------------------------------------------- units */

/* Parse a size: "512", "512K", "64M", "1.5G", "2T", "64MiB", "1GB" (binary
 * multiples of 1024 in every spelling) or "max"/"unlimited" (CORRAL_UNLIMITED).
 * Returns 0, or -EINVAL (malformed, negative) / -ERANGE (above 2^63). */
CORRAL_API int corral_parse_size(const char *s, uint64_t *out);

/* Parse a duration into nanoseconds: "30" (seconds), "1.5s", "250ms", "5m",
 * "1h30m", "2d", "100us", "max"/"infinity" (CORRAL_UNLIMITED). */
CORRAL_API int corral_parse_duration(const char *s, uint64_t *out_ns);

/* Format a byte count as "64.0 MiB" (or "512 B", "max"). Returns buf. */
CORRAL_API char *corral_format_size(uint64_t bytes, char *buf, size_t len);

/* ---------------------------------------------------------------- outcomes */

typedef enum corral_outcome {
	CORRAL_OK = 0,         /* leader exited 0, nothing of the task OOM-killed */
	CORRAL_EXIT,           /* leader exited with a non-zero status */
	CORRAL_OOM,            /* OOM-killed at the task's own memory limit */
	CORRAL_OOM_OUTSIDE,    /* OOM-killed, but an ancestor's limit or the host ran out */
	CORRAL_SUBPROCESS_OOM, /* leader exited but another process of the task was OOM-killed */
	CORRAL_TIMEOUT,        /* corral killed it at its timeout */
	CORRAL_SIGNAL,         /* killed by a signal that was none of the above */
	CORRAL_SPAWN_ERROR,    /* could not be started */
	CORRAL_CANCELLED,      /* never started because the batch halted */
	CORRAL_ABORTED,        /* killed by corral because the batch halted */
	CORRAL_LOST,           /* the worker (node) running it was lost: its end is unknown */
	CORRAL_OUTCOME_COUNT
} corral_outcome_t;

/* "ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout", "signal",
 * "spawn_error", "cancelled", "aborted", "lost"; NULL for an unknown value. */
CORRAL_API const char *corral_outcome_name(corral_outcome_t o);
/* The reverse; returns -EINVAL for an unknown name. */
CORRAL_API int corral_outcome_from_name(const char *name, corral_outcome_t *out);

/* Bits for corral_options_t.retry_on. */
#define CORRAL_RETRY_OOM     (1u << 0) /* oom, oom_outside, subprocess_oom */
#define CORRAL_RETRY_TIMEOUT (1u << 1)
#define CORRAL_RETRY_SIGNAL  (1u << 2)
#define CORRAL_RETRY_EXIT    (1u << 3)
/* Parse "oom,timeout,signal,exit" (or "all", "none"). */
CORRAL_API int corral_parse_retry_on(const char *s, unsigned *out);

typedef enum corral_halt {
	CORRAL_HALT_ORDERED = 0, /* verdict = lowest-numbered failure, whatever the timing */
	CORRAL_HALT_NOW,         /* kill everything at the first observed failure */
	CORRAL_HALT_NEVER,       /* run everything; verdict = lowest-numbered failure */
} corral_halt_t;

CORRAL_API int corral_parse_halt(const char *s, corral_halt_t *out);

/* ---------------------------------------------------------------- sandbox */

typedef enum corral_seccomp_mode {
	CORRAL_SECCOMP_OFF = 0,
	CORRAL_SECCOMP_DEFAULT, /* the built-in deny-list (see README, "Security model") */
	CORRAL_SECCOMP_FILE,    /* a profile file, see corral_sandbox_t.seccomp_file */
} corral_seccomp_mode_t;

typedef struct corral_sandbox {
	corral_seccomp_mode_t seccomp; /* default CORRAL_SECCOMP_OFF in the library */
	const char *seccomp_file;      /* with CORRAL_SECCOMP_FILE */
	bool allow_ptrace;             /* keep ptrace & co. allowed by the default profile */
	bool no_new_privs;             /* PR_SET_NO_NEW_PRIVS (implied by any seccomp filter) */
	bool cgroup_ns;                /* new cgroup namespace + read-only cgroupfs (design §7) */
	bool no_network;               /* new network namespace with only loopback */
	const char *user;              /* "USER[:GROUP]" or "UID[:GID]"; needs root; NULL = keep */
	bool core_dumps;               /* keep RLIMIT_CORE; default: set to 0 */
	bool allow_io_uring;           /* keep io_uring allowed by the default profile (it is
	                                  denied with ENOSYS otherwise: seccomp cannot see what
	                                  its operations do) */
	bool pid_ns;                   /* the batch's tasks in a PID namespace of their own whose
	                                  init is the watchdog (needs CAP_SYS_ADMIN): they cannot
	                                  see or signal the caller, and nothing of theirs outlives
	                                  the watchdog */
} corral_sandbox_t;

/* ---------------------------------------------------------------- cgroup providers */

/* Where task cgroups come from (README, "Where corral gets its cgroups").
 * CORRAL_CGROUPS_AUTO tries the providers in this order and takes the first
 * that works; any other value pins one provider (and fails when it does not
 * work). OWN, SYSTEMD and SLURM give per-task limits; OBSERVE and OFF do not,
 * so they are never chosen when a memory limit is asked for. */
typedef enum corral_cgroups {
	CORRAL_CGROUPS_AUTO = 0, /* the chain below */
	CORRAL_CGROUPS_OWN,      /* cgroup_parent, or our own cgroup when it is writable */
	CORRAL_CGROUPS_SYSTEMD,  /* a transient scope with Delegate=yes from systemd (pure
	                            v2; the user manager, or PID 1 as root), over sd-bus */
	CORRAL_CGROUPS_SLURM,    /* inside a Slurm job: the step's cgroup where it is ours */
	CORRAL_CGROUPS_OBSERVE,  /* no task cgroups: watch the enclosing cgroup's OOM kills */
	CORRAL_CGROUPS_OFF,      /* no cgroups at all (no limits, no OOM attribution) */
	CORRAL_CGROUPS_COUNT
} corral_cgroups_t;

/* "auto", "own", "systemd", "slurm", "observe", "off"; NULL for an unknown value. */
CORRAL_API const char *corral_cgroups_name(corral_cgroups_t c);
/* The reverse; returns -EINVAL for an unknown name. */
CORRAL_API int corral_parse_cgroups(const char *s, corral_cgroups_t *out);

typedef struct corral_options corral_options_t;

#define CORRAL_PROVIDER_STEPS 6

/* One provider of the chain as it was considered. */
typedef struct corral_provider_step {
	corral_cgroups_t provider;
	int code;      /* 0: this one was used; else a positive errno saying why not */
	char why[256]; /* one line: what was found, or why it did not work */
} corral_provider_step_t;

/* What the chain found and did (corral_summary_t.provider, corral_provider_plan()). */
typedef struct corral_provider {
	corral_cgroups_t used; /* the provider in use (never AUTO); OFF when none */
	bool limits;           /* per-task limits are enforced (OWN, SYSTEMD, SLURM) */
	char cgroup[512];      /* the base of the batch; observe: the watched cgroup */
	char unit[128];        /* systemd: the transient scope's unit name */
	char platform[64];     /* "systemd host", "docker container", "slurm job", ... */
	char found[512];       /* one line of facts about this host */
	char warning[320];     /* e.g. memory.oom.group=1 above us; "" if none */
	char fixes[1024];      /* what would give per-task limits, one fix per line;
	                          "" when they are on */
	unsigned n_steps;      /* steps[0..n_steps): in chain order, the used one last */
	corral_provider_step_t steps[CORRAL_PROVIDER_STEPS];
} corral_provider_t;

/* The chain for options o without side effects (no scope is made, nothing is
 * created): what corral_executor_new() would use and why. `corral check`
 * shows it. Returns 0, or -errno on an internal error. */
CORRAL_API int corral_provider_plan(const corral_options_t *o, corral_provider_t *out,
                                    corral_error_t *err);

/* Write p as text into buf (always NUL-terminated): with limits off, one
 * block (per-task limits OFF, what was found, what was tried, the fixes);
 * with verbose, every step of the chain. Returns the length it needed. */
CORRAL_API int corral_provider_text(const corral_provider_t *p, bool verbose, char *buf,
                                    size_t len);

/* ---------------------------------------------------------------- options */

struct corral_options {
	unsigned jobs;             /* max running tasks; 0 = number of online CPUs */
	uint64_t memory_max;       /* bytes, memory.max of each task; CORRAL_UNLIMITED = none */
	uint64_t swap_max;         /* bytes of swap per task (v2 memory.swap.max); default 0 */
	uint64_t pids_max;         /* pids.max per task; CORRAL_UNLIMITED = none (default 4096) */
	double cpus;               /* cpu.max quota in CPUs (1.5 = 150%); 0 = none */
	uint64_t timeout_ns;       /* per attempt; CORRAL_UNLIMITED = none */
	uint64_t kill_grace_ns;    /* at timeout: SIGTERM, then SIGKILL after this (default 0:
	                              SIGKILL at once, as the whole cgroup must die) */
	corral_halt_t halt;        /* default CORRAL_HALT_ORDERED */
	unsigned retries;          /* extra attempts of a failed task (default 0) */
	unsigned retry_on;         /* CORRAL_RETRY_* bits (default CORRAL_RETRY_OOM) */
	double memory_growth;      /* memory_max multiplier per OOM retry (default 2.0) */
	uint64_t memory_ceiling;   /* cap of the grown limit (default CORRAL_UNLIMITED) */
	uint64_t memory_budget;    /* sum of running tasks' memory_max; CORRAL_UNLIMITED = none */
	bool oom_group;            /* memory.oom.group=1 (v2): an OOM kills the whole task
	                              (default true) */
	bool allow_subprocess_oom; /* a subprocess OOM with leader exit 0 counts as ok */
	bool foreground;           /* tasks stay in the caller's process group (corral exec) */
	bool no_cgroups;           /* run without cgroups (no limits, no OOM attribution) */
	const char *cgroup_parent; /* base cgroup path as /proc/self/cgroup shows it;
	                              NULL = our own cgroup */
	const char *cgroupfs;      /* cgroupfs mount prefix (default "/sys/fs/cgroup"); tests */
	size_t capture_max;        /* bytes kept in memory per captured stream before it
	                              spills to a temp file (default 16 KiB) */
	size_t fn_result_max;      /* cap of a function task's result (default 64 MiB) */
	const char *tmpdir;        /* where captured output spills (default $TMPDIR or /tmp) */
	corral_sandbox_t sandbox;
	/* Function tasks are started with fork(); these run around it (e.g.
	 * PyOS_BeforeFork, PyOS_AfterFork_Parent, PyOS_AfterFork_Child). The
	 * child hook runs in the child before fn. */
	void (*before_fork)(void);
	void (*after_fork_parent)(void);
	void (*after_fork_child)(void);
	bool timeline;            /* sample each running task's memory over time, into
	                             corral_result_t.timeline (an adaptive interval, at most
	                             CORRAL_TIMELINE_POINTS points per attempt, the peak kept) */
	corral_cgroups_t cgroups; /* where task cgroups come from (default AUTO); no_cgroups
	                             = CORRAL_CGROUPS_OFF */
	/* Many nodes (design §10; README "Many nodes with Slurm"). */
	bool no_local;              /* run no task on this node: only on the workers added
	                               with corral_add_worker() (no cgroup, no watchdog here) */
	unsigned lost_retries;      /* how many times a task may be lost with its worker
	                               and run again elsewhere (default 3; not counted in
	                               retries: the node failed, not the task) */
	uint64_t worker_timeout_ns; /* a worker that sends nothing for this long is lost
	                               (default 10 s; heartbeats every tenth of it) */
};

/* The point budget of a memory timeline. */
#define CORRAL_TIMELINE_POINTS 256

/* Fill *o with the defaults documented above. */
CORRAL_API void corral_options_init(corral_options_t *o);

/* ---------------------------------------------------------------- tasks */

/* A function task: runs in the forked child (no exec). It writes its result
 * bytes to out_fd; the child exits with the returned value (0..255). See the
 * README, "Function tasks", for what is safe to do in fn. */
typedef int (*corral_fn_t)(void *arg, int out_fd);

/* How a task's stdout/stderr is wired. */
#define CORRAL_FD_CAPTURE (-2) /* collected by corral, delivered with the result */
#define CORRAL_FD_NULL    (-1) /* /dev/null */
/* Any fd >= 0 is passed to the task as is (e.g. 1 to pass stdout through). */

typedef struct corral_task {
	const char *const *argv; /* NULL-terminated; argv[0] searched in PATH unless it has
	                            a '/'; NULL for a function task */
	const char *const *envp; /* NULL-terminated, or NULL = the caller's environ */
	const char *cwd;         /* NULL = the caller's */
	int stdin_fd;            /* >= 0: passed as is; CORRAL_FD_NULL: /dev/null */
	int stdout_fd;           /* >= 0, CORRAL_FD_NULL or CORRAL_FD_CAPTURE */
	int stderr_fd;           /* >= 0, CORRAL_FD_NULL or CORRAL_FD_CAPTURE */
	corral_fn_t fn;          /* function task (then argv must be NULL) */
	void *fn_arg;            /* passed to fn in the child */
	void *data;              /* caller's pointer, returned in every result */
	uint64_t memory_max;     /* 0 = the executor's; else this task's first limit */
	uint64_t seq;            /* 0 = the next number; else this task's number, greater than
	                            every earlier one (a resumed batch keeps its input's
	                            numbers: the gaps are tasks it does not run) */
} corral_task_t;

/* Zero *t and set stdin/stdout/stderr to /dev/null, /dev/null, /dev/null. */
CORRAL_API void corral_task_init(corral_task_t *t);

/* ---------------------------------------------------------------- results */

/* Captured output of one stream. Either everything is in data[0..len), or
 * (len > inline part) it spilled: then fd >= 0 is a read-only temp file holding
 * all len bytes from offset 0. Use corral_output_write() to copy it out. */
typedef struct corral_output {
	const char *data; /* first bytes (all of them when fd < 0) */
	size_t data_len;
	int fd;        /* -1, or a file with all len bytes */
	uint64_t len;  /* total bytes */
	uint64_t lost; /* bytes written after those that could not be kept (no space
	                  for the temp file): read and dropped, so that the task was
	                  not killed by SIGPIPE; 0 normally */
} corral_output_t;

/* A process of a task that the OOM killer took, from the kernel's report in
 * /dev/kmsg (readable by root or CAP_SYSLOG); sizes in bytes. */
typedef struct corral_oom_victim {
	int pid;       /* as corral sees it (the kernel's global pid) */
	char comm[16]; /* its command name */
	uint64_t total_vm, anon_rss, file_rss, shmem_rss; /* 0 when the kernel's second
	                                                     line was not seen */
	int oom_score_adj;
	bool detailed; /* the sizes are known */
} corral_oom_victim_t;

/* A point of a memory timeline: seconds since the attempt started, and the
 * task cgroup's memory.current (v1: memory.usage_in_bytes) then. */
typedef struct corral_sample {
	double t;
	uint64_t bytes;
} corral_sample_t;

typedef struct corral_result {
	uint64_t seq;     /* 1-based submission number */
	unsigned attempt; /* 1-based; 0 for a task that never started */
	bool final;       /* this attempt decides the task's outcome */
	corral_outcome_t outcome;
	int exit_code;             /* leader's exit status, -1 if it did not exit */
	int signal;                /* signal that ended the leader, 0 if none */
	int status;                /* the exit code per design §4 (0, k, 137, 124, 128+s, ...);
	                              -1 for cancelled/aborted */
	pid_t pid;                 /* 0 if it never started */
	uint64_t oom_kills;        /* processes of the task OOM-killed (delta) */
	bool own_limit_hit;        /* the task's own memory limit fired */
	uint64_t memory_max;       /* the limit this attempt ran with; CORRAL_UNLIMITED = none */
	uint64_t memory_peak;      /* bytes, 0 if unknown */
	bool pids_limit_hit;       /* a fork failed at pids.max */
	bool seccomp_kill;         /* SIGSYS from a seccomp kill action */
	int spawn_errno;           /* spawn_error: errno of the failed step */
	const char *spawn_step;    /* spawn_error: "exec", "chdir", "join cgroup", ... */
	char command[256];         /* argv[0] of a command task (truncated), "" for fn tasks */
	double start_time;         /* wall clock, seconds since the epoch */
	double wall_s;             /* elapsed seconds */
	double user_s, sys_s;      /* CPU seconds of the whole task cgroup */
	void *data;                /* the task's data pointer */
	corral_output_t out, err;  /* with CORRAL_FD_CAPTURE */
	corral_output_t fn_result; /* function tasks: the bytes fn wrote to out_fd */
	char sentence[320];        /* one-line human explanation */
	void *priv_;               /* owned resources; freed by corral_result_release() */
	/* Seeing memory (design §11); each may be absent. */
	double memory_stall_some; /* v2 memory.pressure: seconds some of its processes
	                             stalled on memory; -1 unknown */
	double memory_stall_full; /* seconds all of them stalled at once; -1 unknown */
	const corral_oom_victim_t *oom_victims; /* the kernel's OOM reports that name this
	                                           task's cgroup (NULL when /dev/kmsg is
	                                           unreadable or none) */
	unsigned n_oom_victims;
	char oom_memcg[256];             /* the cgroup whose limit fired, as the kernel named it
	                                    ("" unknown; "global" for a host-wide OOM) */
	const corral_sample_t *timeline; /* memory over time (options.timeline), else NULL */
	unsigned n_timeline;
	unsigned timeline_peak; /* index of the highest sample */
	char host[64];          /* the node that ran it ("" = this one) */
} corral_result_t;

/* Free the resources a result owns (captured output). Safe to call twice. */
CORRAL_API void corral_result_release(corral_result_t *r);

/* Write all of out to fd (looping, EINTR-safe). Returns 0 or -errno. */
CORRAL_API int corral_output_write(const corral_output_t *out, int fd);

/* Write the one-line human sentence for r into buf (always NUL-terminated).
 * Returns the length it needed, like snprintf. */
CORRAL_API int corral_result_sentence(const corral_result_t *r, char *buf, size_t len);

typedef struct corral_summary {
	uint64_t tasks;                       /* submitted */
	uint64_t attempts;                    /* started attempts */
	uint64_t count[CORRAL_OUTCOME_COUNT]; /* final outcome per task */
	uint64_t verdict_seq;                 /* 0 when the batch succeeded */
	corral_outcome_t verdict;             /* outcome of task verdict_seq */
	int exit_code;                        /* the batch's exit code per design §4 */
	bool aborted;                         /* corral_abort() was called */
	char sentence[320];                   /* verdict sentence (empty on success) */
	corral_provider_t provider;           /* where the task cgroups came from */
	unsigned workers, workers_lost;       /* corral_add_worker(): added, lost */
} corral_summary_t;

/* ---------------------------------------------------------------- executor */

typedef struct corral_executor corral_executor_t;

/* Create an executor: find where task cgroups come from (o->cgroups: the
 * provider chain, README "Where corral gets its cgroups"; with the systemd
 * provider the calling process is moved into a transient delegated scope for
 * the rest of its life), create the batch cgroup beneath the base (moving
 * the caller into <batch>/supervisor when cgroup v2's no-internal-process
 * rule requires it; a second executor of the same process puts its batch
 * next to the first one's), and start the watchdog, a small
 * child process that kills every task and removes every cgroup of the batch
 * when the caller dies without calling corral_executor_free() (even SIGKILL).
 * Stale batch cgroups left by dead owners under the base are removed. */
CORRAL_API int corral_executor_new(const corral_options_t *o, corral_executor_t **out,
                                   corral_error_t *err);

/* Queue a task. Everything it points to is copied. Returns its seq (>= 1) or
 * -errno (-EINVAL for a malformed task or a t->seq not above every earlier
 * task's; -ENOENT/-EACCES are NOT reported here:
 * a missing command becomes a spawn_error result). After a halt, queued and
 * newly submitted tasks become cancelled results. */
CORRAL_API int64_t corral_submit(corral_executor_t *ex, const corral_task_t *t,
                                 corral_error_t *err);

/* No more submissions: lets corral_next() report the end of the batch. */
CORRAL_API void corral_close(corral_executor_t *ex);

/* Run the event loop until a result is ready or timeout_ms passes (-1 = no
 * timeout, 0 = poll). Returns 1 with *r filled (release it with
 * corral_result_release()), 0 on timeout, -ECHILD when the executor is closed
 * and every result has been delivered, or -errno. A result is produced for
 * every attempt; r->final marks the one that decides the task. */
CORRAL_API int corral_next(corral_executor_t *ex, corral_result_t *r, int timeout_ms,
                           corral_error_t *err);

/* A file descriptor that becomes readable when corral_next() has work to do;
 * for callers that multiplex corral with other fds. */
CORRAL_API int corral_fd(const corral_executor_t *ex);

/* Number of submitted tasks whose final result has not been delivered yet. */
CORRAL_API uint64_t corral_pending(const corral_executor_t *ex);

/* Number of attempts running right now. */
CORRAL_API unsigned corral_running(const corral_executor_t *ex);

/* Abort the batch: kill every running task (outcome aborted), cancel every
 * queued one. Results keep coming from corral_next(). Idempotent. */
CORRAL_API void corral_abort(corral_executor_t *ex);

/* True once the batch has halted (a failure under ordered/now, or abort). */
CORRAL_API bool corral_halted(const corral_executor_t *ex);

/* The batch verdict so far (final once corral_next() returned -ECHILD). */
CORRAL_API void corral_summary(const corral_executor_t *ex, corral_summary_t *s);

/* Kill whatever still runs, remove every cgroup, stop the watchdog, free. */
CORRAL_API void corral_executor_free(corral_executor_t *ex);

/* Convenience: close the executor and run it to the end, calling cb (may be
 * NULL) for every result. Returns the batch exit code (>= 0) or -errno. */
typedef void (*corral_result_cb)(const corral_result_t *r, void *ctx);
CORRAL_API int corral_run(corral_executor_t *ex, corral_result_cb cb, void *ctx,
                          corral_error_t *err);

/* Apply fn to every element of args over a new executor made from o. results[i]
 * receives the result of args[i] (release each one). Returns the batch exit
 * code (0 = all ok) or -errno. */
CORRAL_API int corral_map(const corral_options_t *o, corral_fn_t fn, void *const *args, size_t n,
                          corral_result_t *results, corral_summary_t *summary, corral_error_t *err);

/* Where the executor's own time went, summed over attempts (nanoseconds of
 * CLOCK_MONOTONIC spent in corral, not in the tasks). For benchmarks. */
typedef struct corral_profile {
	uint64_t attempts;
	uint64_t cgroup_create_ns; /* mkdir + limits of task cgroups, or claiming a recycled one */
	uint64_t spawn_ns;         /* pipes + clone3/fork until the parent returns */
	uint64_t reap_ns;          /* waitid + the child's spawn report */
	uint64_t counters_ns;      /* reading the task cgroup's counters */
	uint64_t drain_ns;         /* populated checks, kills of leftovers, last reads */
	uint64_t cleanup_ns;       /* rmdir of task cgroups, building the result */
	uint64_t recycle_ns;       /* readying finished cgroups for reuse, after the spawns */
} corral_profile_t;
CORRAL_API void corral_get_profile(const corral_executor_t *ex, corral_profile_t *p);

/* Send sig to the main process of the running task seq (e.g. to forward a
 * SIGTERM in `corral exec`). Returns 0, -ESRCH if it does not run. */
CORRAL_API int corral_signal(corral_executor_t *ex, uint64_t seq, int sig);

/* Stop task seq alone, without halting the batch: kill its running attempt
 * (its result: outcome aborted, unless it had already ended on its own or an
 * OOM kill had already hit it, which then stays the cause) or cancel it while
 * it is queued (outcome cancelled). A cancelled task is never retried.
 * Results keep coming from corral_next(). Returns 0, or -ESRCH when seq is
 * neither running nor queued (unknown, or its final result is on its way). */
CORRAL_API int corral_cancel(corral_executor_t *ex, uint64_t seq);

/* The running attempt of task seq: the pid of its main process and the wall
 * clock time it started (seconds since the epoch); either pointer may be
 * NULL. Returns 0, or -ESRCH when task seq has no started attempt in the
 * running set (queued, finished, or a spawn that failed before fork). */
CORRAL_API int corral_task_started(const corral_executor_t *ex, uint64_t seq, pid_t *pid,
                                   double *start_time);
/* Memory of the running task seq (bytes): its cgroup's current usage and
 * its peak, read before the peak is reset when reset_peak is true, so that
 * one call at each boundary between units of work done by one long-lived
 * task returns the peak of the unit that ended. Either pointer may be NULL.
 * Returns 0; 1 when a reset was asked but the kernel cannot reset the peak
 * (cgroup v2 before Linux 6.12: the peak then counts from the task's start;
 * the values are still filled); -ESRCH when seq does not run (never started,
 * or already reaped); -EOPNOTSUPP without a memory cgroup; or -errno. */
CORRAL_API int corral_task_memory(corral_executor_t *ex, uint64_t seq, uint64_t *current,
                                  uint64_t *peak, bool reset_peak);

/* ---------------------------------------------------------------- workers */

/* Add a worker on another node (design §10): argv is a command whose stdin
 * and stdout reach `corral worker` there, e.g. {"srun", "--nodes=1", ...,
 * "/usr/bin/corral", "worker", NULL} or {"ssh", "node7", "corral",
 * "worker", NULL}. It is started at once (argv[0] searched in PATH; in its
 * own session, so that a terminal's Ctrl-C reaches only the caller, which
 * then ends the batch in order; its stderr is kept, the last lines of it
 * say why a worker failed). Tasks start there once it has said HELLO and
 * READY; it runs jobs tasks at once (0: as many as its node's CPUs, as it
 * reports them). Only for an executor made with options.no_local; only
 * command tasks whose stdout/stderr are captured or /dev/null, and whose
 * stdin is /dev/null, run on workers (the environment and working
 * directory are the worker's). Returns the worker's index (>= 0) or -errno.
 *
 * A worker is lost when nothing comes from it for worker_timeout_ns (60 s
 * before its HELLO), when its channel closes, or when it breaks the
 * protocol: its running attempts end as outcome lost, the task runs again
 * on another worker (up to options.lost_retries times), and nothing more
 * starts there. With no worker left, the batch aborts (summary.sentence
 * says why). corral_executor_free() ends the workers: QUIT, then SIGTERM to
 * the command after 10 s, SIGKILL 10 s after that. When the caller dies, the
 * channel closes and each worker kills its tasks and exits by itself. The
 * heartbeats are the executor's loop's work: a caller must come back to
 * corral_next() (or poll corral_fd()) well within worker_timeout_ns, or the
 * workers take it for lost and kill their tasks (corral's CLI writes task
 * output from a thread of its own for that reason). */
CORRAL_API int corral_add_worker(corral_executor_t *ex, const char *name, const char *const *argv,
                                 unsigned jobs, corral_error_t *err);

typedef enum corral_worker_state {
	CORRAL_WORKER_STARTING = 0, /* started, before READY */
	CORRAL_WORKER_READY,        /* taking tasks */
	CORRAL_WORKER_LOST,         /* lost (see why) */
	CORRAL_WORKER_DONE,         /* ended by corral_executor_free() */
} corral_worker_state_t;

typedef struct corral_worker_info {
	char name[64]; /* as given to corral_add_worker() */
	char node[64]; /* as the worker named its node ("" before HELLO) */
	corral_worker_state_t state;
	unsigned jobs;      /* tasks at once (0 before READY) */
	uint64_t attempts;  /* attempts that ended there */
	uint64_t lost;      /* of them, lost */
	bool memory_limits; /* task memory limits work there */
	int cgroup_mode;    /* corral_cgroup_mode_t (below) */
	char provider[32];  /* "own", "parent", "off", "none" */
	char kernel[64];
	char why[512]; /* lost: why (with the command's last stderr line);
	                  ready: a notice (e.g. no cgroups there), else "" */
} corral_worker_info_t;

/* What worker i is and does. Returns 0, or -ENOENT beyond the last one. */
CORRAL_API int corral_worker_info(const corral_executor_t *ex, unsigned i, corral_worker_info_t *w);

/* ---------------------------------------------------------------- reports */

/* The version of the JSON Lines schema of report files (src/lib/report.schema.json,
 * installed in share/corral/), written in every summary as "schema_version". It
 * only grows: a new version adds optional fields, never removes or retypes one. */
#define CORRAL_REPORT_SCHEMA_VERSION 1

/* Write r as one JSON object on one line (JSON Lines) to fd, with one write().
 * command: the task's argv (may be NULL). Strings are UTF-8; bytes that are
 * not valid UTF-8 are written as \udcXX escapes (Python's "surrogateescape"),
 * so the original bytes can be recovered exactly. Returns 0 or -errno. */
CORRAL_API int corral_report_result(int fd, const corral_result_t *r, const char *const *command);
/* Write {"summary": {"schema_version": N, ...}} on one line. signal: the signal
 * that made corral abort the batch (0 = none). */
CORRAL_API int corral_report_summary(int fd, const corral_summary_t *s, int signal);
/* GNU parallel's --joblog: the header line, and the line of a result (Seq
 * Host Starttime JobRuntime Send Receive Exitval Signal Command; Exitval is
 * r->status, the exit code of the outcome table). GNU parallel writes one
 * line per job that ended: the final attempt of each task, none for a task
 * cancelled or aborted (its --resume skips every job with a line). */
CORRAL_API int corral_joblog_header(int fd);
CORRAL_API int corral_joblog_result(int fd, const corral_result_t *r, const char *const *command);

/* ---------------------------------------------------------------- worker */

/* Serve as a worker of `corral run --slurm` (design §10; the protocol is
 * described in src/lib/wire.h): read the head's frames from rfd, write ours
 * to wfd (stdin and stdout of `corral worker`). Sends HELLO, waits for
 * CONFIG, then runs a local executor on this node whose options are
 * defaults (node-local: cgroup_parent, cgroupfs, tmpdir, no_cgroups) with
 * CONFIG's on top (jobs, limits, timeout, sandbox, ...; retries 0 and halt
 * never: the head owns the batch policy), one task per RUN, and reports each
 * attempt with STARTED, OUTPUT and RESULT frames. KILL kills one attempt,
 * QUIT kills what runs and ends the service. Heartbeats go both ways.
 *
 * rfd and wfd are made non-blocking for the duration (their flags are put
 * back). Ends, after killing every task and removing every cgroup, when:
 *   QUIT, or EOF on rfd at a frame boundary   returns 0
 *   SIGINT, SIGTERM or SIGHUP                   returns 128 + the signal
 *       (taken through a signalfd when the caller has blocked them, as
 *       `corral worker` does; unblocked, their default action ends the
 *       process and the watchdog cleans up)
 *   the head lost: nothing from it within heartbeat_ms * heartbeat_misses
 *       (30 s before CONFIG), or nothing of ours taken for as long
 *                                               returns -ETIMEDOUT
 *   a frame that breaks the protocol            returns -EPROTO (an ERROR
 *       frame is sent first)
 *   any other failure                           returns -errno
 * The caller should ignore SIGPIPE (a closed channel is then EPIPE). Never
 * prints; err says why on failure. Under Slurm, a step SIGKILLed as a whole
 * (measured when its srun is SIGKILLed) takes the watchdog with the worker:
 * the empty batch cgroup then stays until the next corral under the same
 * base sweeps it (a stale batch of a dead owner); scancel's SIGTERM lets
 * the worker clean up itself. */
CORRAL_API int corral_worker_serve(int rfd, int wfd, const corral_options_t *defaults,
                                   corral_error_t *err);

/* ---------------------------------------------------------------- host check */

typedef enum corral_cgroup_mode {
	CORRAL_CG_NONE = 0, /* no usable memory controller */
	CORRAL_CG_V1,       /* legacy: every controller on v1 */
	CORRAL_CG_HYBRID,   /* memory on v1, cgroup2 mounted for the rest */
	CORRAL_CG_V2,       /* pure unified hierarchy */
} corral_cgroup_mode_t;

CORRAL_API const char *corral_cgroup_mode_name(corral_cgroup_mode_t m);

/* Write a human-readable (json=false) or JSON (json=true) report of what this
 * host offers to fd. Returns 0 when corral can run tasks with memory limits
 * here, 1 when only without, -errno on internal error. */
CORRAL_API int corral_check(const corral_options_t *o, bool json, int fd, corral_error_t *err);

#ifdef __cplusplus
}
#endif
#endif /* CORRAL_H */
