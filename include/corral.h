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
 * started, through their pidfds: it never calls wait(-1).
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
	CORRAL_OUTCOME_COUNT
} corral_outcome_t;

/* "ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout", "signal",
 * "spawn_error", "cancelled", "aborted"; NULL for an unknown value. */
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
} corral_sandbox_t;

/* ---------------------------------------------------------------- options */

typedef struct corral_options {
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
} corral_options_t;

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
} corral_summary_t;

/* ---------------------------------------------------------------- executor */

typedef struct corral_executor corral_executor_t;

/* Create an executor: discover the cgroup hierarchy, create the batch cgroup
 * beneath the base (moving the caller into <batch>/supervisor when cgroup v2's
 * no-internal-process rule requires it), and start the watchdog, a small
 * child process that kills every task and removes every cgroup of the batch
 * when the caller dies without calling corral_executor_free() (even SIGKILL).
 * Stale batch cgroups left by dead owners under the base are removed. */
CORRAL_API int corral_executor_new(const corral_options_t *o, corral_executor_t **out,
                                   corral_error_t *err);

/* Queue a task. Everything it points to is copied. Returns its seq (>= 1) or
 * -errno (-EINVAL for a malformed task, -ENOENT/-EACCES are NOT reported here:
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
/* GNU parallel's --joblog: the header line, and one line per attempt
 * (Seq Host Starttime JobRuntime Send Receive Exitval Signal Command). */
CORRAL_API int corral_joblog_header(int fd);
CORRAL_API int corral_joblog_result(int fd, const corral_result_t *r, const char *const *command);

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
