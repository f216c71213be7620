/* spawn.c - the parent side of starting a task attempt.
 *
 * Command tasks: clone3(CLONE_PIDFD | CLONE_INTO_CGROUP) on v2, so that the
 * child is born inside its cgroup; plain clone3(CLONE_PIDFD) on v1 or when
 * CLONE_INTO_CGROUP fails (the child then joins through cgroup.procs before it
 * runs any task code); fork() + pidfd_open() without clone3. What failed once
 * is cached and not tried again. clone3 children get exit_signal 0, so that
 * one that fails before exec sends no SIGCHLD and a caller's wait(-1) cannot
 * reap it (it needs __WALL); the kernel sets a process's exit signal back to
 * SIGCHLD when it execs, though (measured), so the caller does get SIGCHLD
 * for an exec'd task, and a caller's wait(-1) can take its status (reap()
 * then records an exit with 255: corral.h, "Threads and signals"). The
 * library itself only ever reaps through its own pidfds.
 *
 * Command tasks on x86-64 share the parent's memory until exec: clone3 with
 * CLONE_VM, the child on a stack of its own (a small assembly trampoline, as
 * glibc's clone3.S: the raw syscall cannot return into a C frame on another
 * stack). This saves copying the page tables and the copy-on-write faults
 * that follow in the parent (measured on the v1 host, 2000 x /bin/true,
 * -m 64M: the fork-style clone took 2.04 s against 1.70 s at -j 1, 1.31
 * against 1.05 s at -j 2).
 *
 * By default without CLONE_VFORK: the child runs beside us while it joins its
 * cgroup, sets itself up and execs, and we go on reaping and starting others.
 * posix_spawn()'s CLONE_VFORK would hold us for all of that (on v1 the
 * child's cgroup.procs writes alone take ~25-50 us): at -j 2 the parent slept
 * ~190 us per spawn and a core idled. What makes it safe:
 *  - the child makes raw system calls only (child.c): libc's wrappers write
 *    errno, which is the parent thread's (TLS), now running;
 *  - it reads nothing we may change or free before it is reaped: a block
 *    (struct corral__spawn_block) holds its stack, its copy of the plan, of
 *    the executable's path and of the environment (the caller may setenv()
 *    as soon as we return), and its failure report; the executor gives the
 *    block back only after reaping the child. The task's argv and cwd belong
 *    to the task, which lives as long. A child that would remount the cgroup
 *    mounts itself (no template namespace) reads a list that we replace on a
 *    mount table change: that one, and an environment over 32 KiB, go the
 *    vfork way;
 *  - fds are copied at clone, so closing ours after the clone is harmless.
 * CORRAL_SPAWN=vfork selects CLONE_VM | CLONE_VFORK (the child stores a
 * failure in the plan, read when we resume after its exec or exit); a kernel
 * that refuses CLONE_VM without CLONE_VFORK gets it too. A child whose exec
 * blocks in the kernel (a hung network filesystem) then holds us, as
 * posix_spawn would. CORRAL_SPAWN=fork selects the fork-style clone3.

 * Function tasks use glibc's fork(), which runs the pthread_atfork handlers
 * (malloc's among them): the function runs arbitrary code in the child.
 *
 * All signals are blocked around the clone, so that no handler of the caller
 * runs in the child before it resets them (libuv does the same).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "spawn.h"
#include "syscalls.h"

int corral__resolve_exe(const char *file, const char *path_env, char *out, size_t size)
{
	bool seen_eacces = false;
	struct stat st;

	if (!file || !*file)
		return -ENOENT;
	if (strchr(file, '/')) {
		if ((size_t)snprintf(out, size, "%s", file) >= size)
			return -ENAMETOOLONG;
		return 0; /* execve tells the exact error */
	}
	if (!path_env || !*path_env)
		path_env = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path_env;;) {
		const char *e = strchrnul(p, ':');
		size_t dl = (size_t)(e - p);
		int n;
		if (dl == 0)
			n = snprintf(out, size, "%s", file); /* empty entry = cwd */
		else
			n = snprintf(out, size, "%.*s/%s", (int)dl, p, file);
		if (n > 0 && (size_t)n < size && stat(out, &st) == 0 && !S_ISDIR(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			seen_eacces = true;
		}
		if (!*e)
			break;
		p = e + 1;
	}
	return seen_eacces ? -EACCES : -ENOENT;
}

#define VFORK_STACK_SIZE (256 * 1024)

void corral__spawn_cache_free(struct corral__spawn_cache *cache)
{
	free(cache->stack);
	cache->stack = NULL;
	while (cache->free_blocks) {
		struct corral__spawn_block *b = cache->free_blocks;
		cache->free_blocks = b->next;
		free(b);
	}
}

void corral__spawn_block_release(struct corral__spawn_cache *cache, struct corral__spawn_block *b)
{
	if (!b)
		return;
	b->next = cache->free_blocks;
	cache->free_blocks = b;
}

/* clone3 for a child that runs fn(arg) on the stack in a->stack (or, where
 * a->stack is 0 and there is no CLONE_VM, on its copy of ours): the syscall
 * returns in the child with the stack pointer at the top of that stack, so
 * the child path must not touch the C frame it came from. fn and arg travel
 * in r12/r13, which the syscall preserves. Returns the pid, or -1 with errno.
 * Used here and by the spawner (zygote.c). */
#if defined(__x86_64__) && defined(SYS_clone3)
__attribute__((noinline)) long corral__clone3_run(struct corral__clone_args *a, int (*fn)(void *),
                                                  void *arg)
{
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	long ret;

	__asm__ volatile("syscall\n\t" CORRAL__CLONE_CHILD_ASM
	                 : "=a"(ret)
	                 : "0"((long)SYS_clone3), "D"(a), "S"(sizeof(*a)), "r"(r12), "r"(r13)
	                 : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#else
long corral__clone3_run(struct corral__clone_args *a, int (*fn)(void *), void *arg)
{
	(void)a;
	(void)fn;
	(void)arg;
	errno = ENOSYS;
	return -1;
}
#endif

#if defined(__x86_64__) && defined(SYS_clone3)
/* The vfork child's entry: runs on its own stack, never returns. */
static int vfork_child(void *plan)
{
	corral__child_main(plan);
}
#endif

/* May the child share our memory until exec (beside us, or vfork-style)?
 * Reads CORRAL_SPAWN once. */
static bool shares_memory(struct corral__spawn_cache *cache)
{
#if defined(__x86_64__) && defined(SYS_clone3)
	if (!cache->checked_env) {
		const char *m = getenv("CORRAL_SPAWN");
		cache->no_vfork = m && !strcmp(m, "fork");
		cache->no_async = m && (!strcmp(m, "fork") || !strcmp(m, "vfork"));
#if defined(__SANITIZE_ADDRESS__)
		/* ASan cannot follow the switch to the child's own stack. */
		cache->no_vfork = cache->no_async = true;
#endif
		cache->checked_env = true;
	}
	return !cache->no_vfork || !cache->no_async;
#else
	(void)cache;
	return false;
#endif
}

/* A block for a child that runs beside us, with its own copy of the plan:
 * the path (our buffer is the next spawn's), the environment (the caller may
 * setenv() once we return), the sandbox plan's values. NULL when the child
 * must run the vfork way: the environment does not fit, or the child would
 * remount the cgroup mounts itself (no template namespace), reading a list
 * that a mount table change makes us replace. */
static struct corral__spawn_block *block_prepare(struct corral__spawn_cache *cache,
                                                 const struct corral__child_plan *p)
{
	const struct corral__sandbox_plan *sb = p->sb;
	struct corral__spawn_block *b;
	size_t n = 0, plen = strlen(p->path) + 1;

	if (sb && (sb->unshare_flags & CLONE_NEWNS) && sb->mnt_ns_fd < 0)
		return NULL;
	if (plen > sizeof(b->path))
		return NULL;
	while (p->envp[n])
		n++;
	size_t vec = (n + 1) * sizeof(char *);
	if (vec > CORRAL_SPAWN_ENV)
		return NULL;
	b = cache->free_blocks;
	if (b)
		cache->free_blocks = b->next;
	else if (!(b = aligned_alloc(64, sizeof(*b))))
		return NULL;
	b->next = NULL;
	/* The environment: its vector, then its strings, each measured once. */
	char **env = (char **)(void *)b->env;
	char *str = b->env + vec, *end = b->env + CORRAL_SPAWN_ENV;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(p->envp[i]) + 1;
		if (l > (size_t)(end - str)) {
			corral__spawn_block_release(cache, b);
			return NULL;
		}
		memcpy(str, p->envp[i], l);
		env[i] = str;
		str += l;
	}
	env[n] = NULL;
	b->plan = *p;
	memcpy(b->path, p->path, plen);
	b->plan.path = b->path;
	b->plan.envp = env;
	if (sb) {
		b->sb = *sb;
		b->plan.sb = &b->sb;
	}
	memset(&b->report, 0, sizeof(b->report));
	b->plan.report = &b->report;
	b->plan.err_fd = -1;
	return b;
}

#if defined(__x86_64__) && defined(SYS_clone3)
/* clone3(CLONE_VM) without CLONE_VFORK: the child runs on the block's stack
 * beside us. Returns the pid, -1 with errno. */
static pid_t clone3_beside(struct corral__spawn_req *req, struct corral__spawn_block *b, bool into,
                           int *pidfd)
{
	struct corral__clone_args a;

	memset(&a, 0, sizeof(a));
	a.flags = CLONE_PIDFD | CLONE_VM | (into ? CLONE_INTO_CGROUP : 0);
	a.pidfd = (uint64_t)(uintptr_t)pidfd;
	a.exit_signal = 0;
	a.cgroup = into ? (uint64_t)req->cgroup_dirfd : 0;
	a.stack = (uint64_t)(uintptr_t)b->stack;
	a.stack_size = sizeof(b->stack);
	return (pid_t)corral__clone3_run(&a, vfork_child, &b->plan);
}
#endif

/* The vfork-style child reports a failure through req->plan.report; any
 * other child through the error pipe, made here on first need. Returns the
 * pid, -1 with errno. */
static pid_t do_clone3(struct corral__spawn_req *req, struct corral__spawn_cache *cache, bool into,
                       int *pidfd, int pipefd[2])
{
	struct corral__clone_args a;

	memset(&a, 0, sizeof(a));
	a.flags = CLONE_PIDFD | (into ? CLONE_INTO_CGROUP : 0);
	a.pidfd = (uint64_t)(uintptr_t)pidfd;
	a.exit_signal = 0;
	a.cgroup = into ? (uint64_t)req->cgroup_dirfd : 0;
#if defined(__x86_64__) && defined(SYS_clone3)
	if (!cache->no_vfork && !cache->stack)
		cache->stack = aligned_alloc(64, VFORK_STACK_SIZE);
	if (!cache->no_vfork && cache->stack && pipefd[1] < 0) {
		a.flags |= CLONE_VM | CLONE_VFORK;
		a.stack = (uint64_t)(uintptr_t)cache->stack;
		a.stack_size = VFORK_STACK_SIZE;
		long pid = corral__clone3_run(&a, vfork_child, &req->plan);
		if (pid >= 0 || errno != EINVAL)
			return (pid_t)pid;
		/* A kernel or seccomp policy that refuses the combination: fork. */
		cache->no_vfork = true;
		a.flags &= ~(uint64_t)(CLONE_VM | CLONE_VFORK);
		a.stack = a.stack_size = 0;
	}
#else
	(void)cache;
#endif
	if (pipefd[1] < 0) {
		if (pipe2(pipefd, O_CLOEXEC) < 0)
			return -1;
		req->plan.err_fd = pipefd[1];
		req->plan.report = NULL;
	}
	return (pid_t)corral__clone3(&a);
}

/* The cgroup.procs fd the child joins through, into the plan. */
static int get_procs(struct corral__spawn_req *req, int (*need_procs)(void *ctx), void *ctx)
{
	int fd;

	if (req->plan.procs_fd >= 0)
		return 0;
	fd = need_procs(ctx);
	if (fd < 0)
		return fd;
	req->plan.procs_fd = fd;
	return 0;
}

int corral__spawn(struct corral__spawn_req *req, struct corral__spawn_cache *cache,
                  int (*need_procs)(void *ctx), void *ctx, pid_t *pid_out, int *pidfd_out,
                  int *err_rfd, struct corral__child_report *report,
                  struct corral__spawn_block **block, corral_error_t *err)
{
	int pipefd[2] = {-1, -1};
	sigset_t all, old;
	pid_t pid = -1;
	int pidfd = -1, rc = 0;
	struct corral__spawn_block *b = NULL;

	*block = NULL;
	memset(report, 0, sizeof(*report));
	req->plan.err_fd = -1;
	req->plan.report = report;
	/* Our children in the batch's PID namespace see their parent as 0. */
	req->plan.parent_pid = req->in_pid_ns ? 0 : getpid();
	if (req->use_fork || cache->no_clone3 || !shares_memory(cache)) {
		if (pipe2(pipefd, O_CLOEXEC) < 0)
			return corral__err(err, errno, "create the spawn error pipe");
		req->plan.err_fd = pipefd[1];
		req->plan.report = NULL;
	}

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);

	if (req->use_fork || cache->no_clone3) {
		/* fork() has no CLONE_INTO_CGROUP: the child joins through
		 * cgroup.procs (opened before the caller's fork hooks, which
		 * must run in pairs). */
		if (req->cgroup_dirfd >= 0 && (rc = get_procs(req, need_procs, ctx)) < 0)
			goto out;
		if (req->use_fork && req->before_fork)
			req->before_fork();
		pid = fork();
		if (pid == 0)
			corral__child_main(&req->plan);
		if (req->use_fork && req->after_fork_parent)
			req->after_fork_parent();
		if (pid < 0) {
			rc = corral__err(err, errno, "fork");
			goto out;
		}
		pidfd = corral__pidfd_open(pid, 0);
		if (pidfd < 0) {
			/* Cannot watch it: do not leave it running. */
			rc = corral__err(err, errno, "pidfd_open of pid %d", (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto out;
		}
		goto out;
	}

	bool into = req->cgroup_dirfd >= 0 && !cache->no_into_cgroup;
	if (!into && req->cgroup_dirfd >= 0 && (rc = get_procs(req, need_procs, ctx)) < 0)
		goto out;
#if defined(__x86_64__) && defined(SYS_clone3)
	/* The child beside us: we go on while it sets up and execs. */
	if (pipefd[1] < 0 && !cache->no_async && (b = block_prepare(cache, &req->plan))) {
		pid = clone3_beside(req, b, into, &pidfd);
		if (pid < 0 && into && errno != ENOSYS) {
			cache->no_into_cgroup = true;
			if ((rc = get_procs(req, need_procs, ctx)) < 0) {
				corral__spawn_block_release(cache, b);
				goto out;
			}
			b->plan.procs_fd = req->plan.procs_fd;
			pid = clone3_beside(req, b, false, &pidfd);
		}
		if (pid >= 0) {
			*block = b;
			b = NULL;
			goto out;
		}
		corral__spawn_block_release(cache, b);
		b = NULL;
		if (errno != EINVAL && errno != ENOSYS) {
			rc = corral__err(err, errno, "clone3");
			goto out;
		}
		/* A kernel or policy that refuses it: the vfork way. */
		if (errno == EINVAL)
			cache->no_async = true;
		into = req->cgroup_dirfd >= 0 && !cache->no_into_cgroup;
	}
#endif
	pid = do_clone3(req, cache, into, &pidfd, pipefd);
	if (pid == 0)
		corral__child_main(&req->plan);
	if (pid < 0 && into) {
		/* Any failure of CLONE_INTO_CGROUP (old kernel, EBUSY on a
		 * "domain invalid" cgroup, ...): join through cgroup.procs. */
		cache->no_into_cgroup = true;
		if ((rc = get_procs(req, need_procs, ctx)) < 0)
			goto out;
		pid = do_clone3(req, cache, false, &pidfd, pipefd);
		if (pid == 0)
			corral__child_main(&req->plan);
	}
	if (pid < 0 && errno == ENOSYS) {
		cache->no_clone3 = true;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		corral__close(pipefd[0]);
		corral__close(pipefd[1]);
		req->plan.err_fd = -1;
		return corral__spawn(req, cache, need_procs, ctx, pid_out, pidfd_out, err_rfd,
		                     report, block, err);
	}
	if (pid < 0)
		rc = corral__err(err, errno, "clone3");
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	corral__close(pipefd[1]);
	req->plan.err_fd = -1;
	if (rc < 0) {
		corral__close(pipefd[0]);
		return rc;
	}
	*pid_out = pid;
	*pidfd_out = pidfd;
	*err_rfd = pipefd[0];
	return 0;
}
