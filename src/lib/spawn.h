/* spawn.h - starting one task attempt: the parent side (spawn.c) and the child
 * side (child.c), and the plan the parent prepares for the child. */
#ifndef CORRAL_SPAWN_H
#define CORRAL_SPAWN_H

#include <limits.h>
#include <linux/filter.h>
#include <sys/types.h>

#include "internal.h"

/* Everything the sandbox needs in the child, prepared in the parent
 * (sandbox.c): the child only copies values into syscalls. */
struct corral__sandbox_plan {
	bool no_new_privs;
	bool has_filter;
	struct sock_fprog prog; /* precompiled BPF (libseccomp, in the parent) */
	bool filter_kills;      /* the filter has kill actions (SIGSYS attribution) */
	/* The spawner's filter (zygote.c): prog with clone3 allowed, so that
	 * it can clone into a v2 task cgroup (CLONE_INTO_CGROUP); its children
	 * add a filter that denies clone3 again. Only for deny-list profiles
	 * that deny clone3 by name. */
	bool has_spawner_prog;
	struct sock_fprog spawner_prog;
	int unshare_flags; /* CLONE_NEWCGROUP | CLONE_NEWNS | CLONE_NEWNET */
	int n_ro;          /* cgroup mounts to remount read-only (with CLONE_NEWNS) */
	char (*ro_mounts)[PATH_MAX];
	int mnt_ns_fd;        /* >= 0: join this read-only template mount namespace
	                         instead of unsharing and remounting (sandbox.c) */
	int mnt_root_fd;      /* with mnt_ns_fd: our root in it (O_PATH), to chroot to */
	int mountinfo_fd;     /* our /proc/self/mountinfo: poll() tells a change */
	bool lo_up;           /* with CLONE_NEWNET */
	bool mount_proc;      /* with CLONE_NEWNS and the batch's PID namespace: a /proc
	                         of that namespace (the template's, or the child's own) */
	bool drop_cap_ptrace; /* drop CAP_SYS_PTRACE, bounding set too (sandbox.c) */
	bool drop_user;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t *groups;
	char *user_env[4]; /* with drop_user: "HOME=..", "USER=..", "LOGNAME=..", NULL */
	bool core_dumps;
	bool holds_dumpable; /* counted in sandbox.c's non-dumpable holders */
};

/* Steps of the child, reported with errno (error pipe or shared report). */
enum corral__child_step {
	STEP_CGROUP = 1,
	STEP_SIGNALS,
	STEP_PDEATHSIG,
	STEP_SETPGID,
	STEP_STDIO,
	STEP_CHDIR,
	STEP_RLIMIT,
	STEP_UNSHARE,
	STEP_SETNS,
	STEP_MOUNT,
	STEP_NETWORK,
	STEP_CAPS,
	STEP_USER,
	STEP_NO_NEW_PRIVS,
	STEP_CLOSE_FDS,
	STEP_SECCOMP,
	STEP_EXEC,
	STEP_FN,
	STEP_SPAWNER, /* the spawner (zygote.c) died or stalled with the request */
	STEP_SCHED,   /* back to SCHED_OTHER from the spawner's SCHED_BATCH */
	STEP_GATE,    /* a child made ahead was let go (or told to exit): attempt_local.c */
	STEP_COUNT
};
const char *corral__step_name(int step);

struct corral__child_report {
	int32_t step;
	int32_t err;
};

/* The plan: everything the child does, fully prepared. */
struct corral__child_plan {
	const char *path; /* resolved executable (exec tasks) */
	char *const *argv;
	char *const *envp;
	corral_fn_t fn; /* function task */
	void *fn_arg;
	int fn_out_fd;   /* write end of the result pipe (function tasks) */
	const char *cwd; /* NULL = inherit */
	bool cwd_check;  /* after chdir(cwd): the same directory as corral's (zygote.c) */
	uint64_t cwd_dev, cwd_ino;
	int stdio[3];      /* fds to put on 0, 1, 2 */
	int procs_fd;      /* write "0" here to join the task cgroup, or -1 */
	int pids_procs_fd; /* v1 pids cgroup.procs, or -1 */
	int err_fd;        /* write end of the CLOEXEC error pipe, or -1 with report */
	/* A child that shares our memory until exec (CLONE_VM) reports a
	 * failure here instead, and exits: the parent reads it once the child
	 * is gone (reaped, or resumed from CLONE_VFORK). NULL otherwise. */
	struct corral__child_report *report;
	pid_t parent_pid; /* what getppid() must say: 0 in the batch's PID namespace */
	bool new_pgroup;  /* a session of its own (setsid) */
	/* The signals whose disposition is not SIG_DFL where the child is
	 * cloned (bit sig - 1), when the cloner knows them exactly (zygote.c:
	 * the spawner sets its own); 0: unknown, every signal is reset. */
	uint64_t sig_reset;
	bool nondumpable; /* born non-dumpable (the spawner's mm): no prctl */
	bool sched_other; /* back to SCHED_OTHER (the spawner runs SCHED_BATCH, zygote.c) */
	/* Made ahead (attempt_local.c, "warm child"): after every other step,
	 * wait for one byte on gate_fd before the exec; EOF: exit instead. */
	bool gated;
	int gate_fd;
	/* A filter to add before exec (a spawner's child: clone3 denied). */
	const struct sock_fprog *filter2;
	const struct corral__sandbox_plan *sb; /* may be NULL */
	void (*after_fork_child)(void);        /* function tasks, e.g. PyOS_AfterFork_Child */
};

/* The child's entry point: never returns. Async-signal-safe (child.c). */
__attribute__((noreturn)) void corral__child_main(const struct corral__child_plan *p);

struct corral__clone_args;
/* clone3(a) of a child that runs fn(arg) on a->stack, or (no CLONE_VM and
 * no stack) on its copy of the caller's: never returns in the child. The
 * pid, or -1 with errno (ENOSYS where there is no clone3 entry for this
 * architecture). Async-signal-safe. */
long corral__clone3_run(struct corral__clone_args *a, int (*fn)(void *), void *arg);

/* How to start the child. */
struct corral__spawn_req {
	struct corral__child_plan plan;
	int cgroup_dirfd; /* for CLONE_INTO_CGROUP, or -1 */
	bool in_pid_ns;   /* the caller's thread spawns into the batch's PID namespace */
	bool use_fork;    /* function tasks: glibc fork() (atfork handlers) */
	void (*before_fork)(void);
	void (*after_fork_parent)(void);
};

/* A child that shares our memory and runs beside us until its exec (spawn.c):
 * its stack, its own copy of the plan and of what the plan points to that we
 * might change meanwhile, and its failure report. The executor keeps it
 * until the child is reaped, then gives it back. */
#define CORRAL_SPAWN_STACK (64 * 1024)
#define CORRAL_SPAWN_ENV   (32 * 1024)
struct corral__spawn_block {
	struct corral__spawn_block *next; /* the cache's free list */
	struct corral__child_plan plan;
	struct corral__sandbox_plan sb;
	struct corral__child_report report;
	char path[PATH_MAX];
	_Alignas(16) char env[CORRAL_SPAWN_ENV]; /* envp array, then its strings */
	_Alignas(64) char stack[CORRAL_SPAWN_STACK];
};

/* Spawn state cached by the executor: what worked before. */
struct corral__spawn_cache {
	bool no_clone3;
	bool no_into_cgroup;
	bool no_vfork; /* CLONE_VM|CLONE_VFORK failed once, or CORRAL_SPAWN=fork */
	bool no_async; /* CLONE_VM beside us failed once, or CORRAL_SPAWN=vfork|fork */
	bool checked_env;
	void *stack; /* the vfork child's stack (CLONE_VFORK serialises) */
	struct corral__spawn_block *free_blocks; /* blocks of reaped children, for reuse */
};
void corral__spawn_cache_free(struct corral__spawn_cache *cache);
/* Give back a block corral__spawn() handed out, once its child is reaped. */
void corral__spawn_block_release(struct corral__spawn_cache *cache, struct corral__spawn_block *b);

/* Start the child. On success *pid, *pidfd and *err_rfd (read end of the error
 * pipe; EOF = exec succeeded / fn started) are set; *err_rfd is -1 when the
 * child shared our memory until its exec: then its failure shows in *report
 * (step 0: it exec'd) once it is reaped, or in (*block)->report when *block
 * is set (a child that runs beside us; release the block after reaping it).
 * When the child must join its cgroup through cgroup.procs (no
 * CLONE_INTO_CGROUP, or it failed), need_procs returns the fd to write to. */
int corral__spawn(struct corral__spawn_req *req, struct corral__spawn_cache *cache,
                  int (*need_procs)(void *ctx), void *ctx, pid_t *pid, int *pidfd, int *err_rfd,
                  struct corral__child_report *report, struct corral__spawn_block **block,
                  corral_error_t *err);

/* The spawner (zygote.c): a process that carries the sandbox once; task
 * children inherit it. Requests and replies are datagrams; corral never
 * waits on it but at its start (bounded). */
struct corral__zygote;
struct stat;
/* into_cgroup: its children are to be born in their v2 task cgroups
 * (CLONE_INTO_CGROUP), so it carries sb's spawner_prog where there is one.
 * batch: it runs SCHED_BATCH (where its answer is on the critical path;
 * not where it makes warm children, attempt_local.c). */
int corral__zygote_start(struct corral__zygote **out, const struct corral__sandbox_plan *sb,
                         int pidns_fd, bool into_cgroup, bool batch, corral_error_t *err);
int corral__zygote_fd(const struct corral__zygote *z);
unsigned corral__zygote_pending(const struct corral__zygote *z);
/* Ask for a child per plan p (its fds go with the request), cwd resolved in
 * its mount namespace and checked against cwd_st. 0, -E2BIG (too big for a
 * request: spawn directly), -EAGAIN, -EPIPE, ... */
int corral__zygote_send(struct corral__zygote *z, const struct corral__child_plan *p,
                        int cgroup_dirfd, const char *cwd, const struct stat *cwd_st,
                        uint64_t cookie);
/* A reply: 1 with the cookie, the child's pid and pidfd (pid 0 and
 * clone_err when the clone failed) and its report (step 0: it exec'd);
 * -EAGAIN none yet; -EPIPE the zygote is gone; -EPROTO. */
int corral__zygote_recv(struct corral__zygote *z, uint64_t *cookie, pid_t *pid, int *pidfd,
                        struct corral__child_report *rep, int *clone_err);
void corral__zygote_kill(struct corral__zygote *z);
void corral__zygote_stop(struct corral__zygote *z);

/* Resolve argv0 through PATH like execvp, in the parent. Returns 0 with the
 * path in out, -ENOENT (not found) or -EACCES (found, not executable). */
int corral__resolve_exe(const char *file, const char *path_env, char *out, size_t size);

#endif
