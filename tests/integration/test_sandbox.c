/* test_sandbox.c - the sandbox end to end, through the library API, with the
 * CLI's defaults (no_new_privs, the default seccomp profile, a cgroup
 * namespace with a read-only cgroupfs): what is denied and what still runs,
 * seccomp kill actions and profile errors, the i386/x32 ABIs, --user,
 * --no-network, the ways a root task could leave its cgroup, pids.max,
 * RLIMIT_CORE, fds, signals and the process group; and the executor's
 * template mount namespace (working directories, mounts made later, a
 * chrooted caller). Mounts the tests make are in mount namespaces of their
 * own: nothing is mounted on the host.
 *
 * TEST_FILTER=name (or a pattern with * and ?) runs only the tests it names.
 *
 * Each test runs under its own private parent cgroup and fails in its
 * teardown if anything was left below it or a payload process survived.
 * Escape attempts aim only at the private parent and a leaf this test
 * creates inside it, never at the machine's cgroups above.
 *
 * This binary is also its own helper (argv[1] == "helper"): raw i386 and x32
 * system calls and setns() through a pidfd, which the payload has no use for.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "testlib.h"

#define MiB                     (1024ull * 1024ull)
#define ARGV(...)               ((const char *const[]){__VA_ARGS__, NULL})
#define assert_outcome(r, name) assert_string_equal(corral_outcome_name((r)->outcome), name)

static const char *P;       /* the payload */
static char SELF[PATH_MAX]; /* this binary, for the helper mode */

/* ---------------------------------------------------------------- helper mode */

static const char *errname(long e)
{
	const char *n = strerrorname_np((int)e);
	return n ? n : "E?";
}

/* A syscall's raw return value as the payload prints it. */
static int print_ret(long ret)
{
	if (ret < 0 && ret > -4096)
		printf("%s\n", errname(-ret));
	else
		printf("ok\n");
	return 0;
}

#if defined(__x86_64__)
/* An i386 system call through int $0x80 (the compat entry clobbers r8-r11). */
static long int80(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80"
	                 : "=a"(ret)
	                 : "a"(nr), "b"(a), "c"(b), "d"(c)
	                 : "memory", "cc", "r8", "r9", "r10", "r11");
	return (int)ret; /* the compat return value is 32 bits */
}

/* An x32 system call: the x86_64 instruction, with bit 30 set in the number. */
static long x32(long nr, long a)
{
	long ret;

	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(nr | 0x40000000L), "D"(a)
	                 : "memory", "cc", "rcx", "r11");
	return ret;
}
#endif

static int helper(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(__x86_64__)
	if (argc == 2 && !strcmp(argv[0], "int80")) {
		/* i386 numbers: getpid 20, mount 21, swapoff 115, setns 346. The
		 * arguments are harmless: NULL paths (EFAULT) and fd -1 (EBADF). */
		if (!strcmp(argv[1], "getpid"))
			return print_ret(int80(20, 0, 0, 0));
		if (!strcmp(argv[1], "mount"))
			return print_ret(int80(21, 0, 0, 0));
		if (!strcmp(argv[1], "swapoff"))
			return print_ret(int80(115, 0, 0, 0));
		if (!strcmp(argv[1], "setns"))
			return print_ret(int80(346, -1, 0, 0));
	}
	if (argc == 2 && !strcmp(argv[0], "x32")) {
		/* x32 numbers are the x86_64 ones: getpid 39, swapoff 168. */
		if (!strcmp(argv[1], "getpid"))
			return print_ret(x32(39, 0));
		if (!strcmp(argv[1], "swapoff"))
			return print_ret(x32(168, 0));
	}
#endif
	if (argc == 1 && !strcmp(argv[0], "setns-pidfd")) {
		/* Join the parent's (corral's) mount namespace through a pidfd. */
		long fd = syscall(SYS_pidfd_open, getppid(), 0);
		if (fd < 0)
			return print_ret(-errno);
		long rc = syscall(SYS_setns, fd, CLONE_NEWNS);
		return print_ret(rc < 0 ? -errno : 0);
	}
	fprintf(stderr, "helper: bad arguments\n");
	return 2;
}

/* ---------------------------------------------------------------- running tasks */

/* The CLI's default sandbox. */
static void sb_options(const struct tl_parent *p, corral_options_t *o)
{
	corral_options_init(o);
	o->cgroup_parent = p->path;
	o->jobs = 2;
	o->halt = CORRAL_HALT_NEVER;
	o->sandbox.seccomp = CORRAL_SECCOMP_DEFAULT;
	o->sandbox.no_new_privs = true;
	o->sandbox.cgroup_ns = true;
}

/* No sandbox at all (core dumps kept, so that nothing of it is on). */
static void bare_options(const struct tl_parent *p, corral_options_t *o)
{
	corral_options_init(o);
	o->cgroup_parent = p->path;
	o->jobs = 2;
	o->halt = CORRAL_HALT_NEVER;
	o->sandbox.core_dumps = true;
}

/* A task whose stdout and stderr are captured together. */
static corral_task_t task(const char *const *argv)
{
	corral_task_t t;

	corral_task_init(&t);
	t.argv = argv;
	t.stdout_fd = CORRAL_FD_CAPTURE;
	t.stderr_fd = CORRAL_FD_CAPTURE;
	return t;
}

static void show(const char *what, const corral_result_t *r)
{
	print_message("# %s: %s status %d exit %d signal %d step %s errno %d: %s\n#   out: %.*s\n",
	              what, corral_outcome_name(r->outcome), r->status, r->exit_code, r->signal,
	              r->spawn_step ? r->spawn_step : "-", r->spawn_errno, r->sentence,
	              (int)r->out.data_len, r->out.data ? r->out.data : "");
	if (r->err.data_len)
		print_message("#   err: %.*s\n", (int)r->err.data_len, r->err.data);
}

/* Run n tasks in one batch; res[i] receives task i's (only) result. */
static void run(const corral_options_t *o, const corral_task_t *t, int n, corral_result_t *res)
{
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_result_t r;
	int rc, got = 0;

	if (corral_executor_new(o, &ex, &err) < 0)
		fail_msg("corral_executor_new: %s", err.msg);
	for (int i = 0; i < n; i++)
		if (corral_submit(ex, &t[i], &err) != i + 1)
			fail_msg("corral_submit: %s", err.msg);
	corral_close(ex);
	while ((rc = corral_next(ex, &r, -1, &err)) > 0) {
		assert_true(r.final);
		assert_true(r.seq >= 1 && r.seq <= (uint64_t)n);
		res[r.seq - 1] = r;
		got++;
	}
	if (rc != -ECHILD)
		fail_msg("corral_next: %d (%s)", rc, err.msg);
	assert_int_equal(got, n);
	corral_executor_free(ex);
}

static void run_one(const corral_options_t *o, const corral_task_t *t, corral_result_t *r)
{
	run(o, t, 1, r);
}

/* The captured stdout as a string (all of it is inline: small outputs). */
static const char *out(const corral_result_t *r)
{
	static char buf[8][16384];
	static int k;
	char *b = buf[k++ % 8];

	assert_true(r->out.fd < 0);
	assert_true(r->out.data_len < sizeof(buf[0]));
	memcpy(b, r->out.data ? r->out.data : "", r->out.data_len);
	b[r->out.data_len] = '\0';
	return b;
}

/* Run a shell script in one task ($0 = arg0, $1.. = the rest). */
static void run_sh(const corral_options_t *o, const char *script, const char *const *args,
                   corral_result_t *r)
{
	const char *argv[16] = {"/bin/sh", "-c", script};
	int n = 3;

	for (int i = 0; args && args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	corral_task_t t = task(argv);
	run_one(o, &t, r);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void release(corral_result_t *r, int n)
{
	for (int i = 0; i < n; i++)
		corral_result_release(&r[i]);
}

/* ---------------------------------------------------------------- fixtures */

static int count_procs_of(const char *exe)
{
	char want[PATH_MAX], path[64], got[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (!realpath(exe, want) || !(d = opendir("/proc")))
		return 0;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		ssize_t l = readlink(path, got, sizeof(got) - 1);
		if (l <= 0)
			continue;
		got[l] = '\0';
		if (!strcmp(got, want) && tl_pid_alive(pid))
			n++;
	}
	closedir(d);
	return n;
}

static int leaf_destroy(const char *leaf);

static int setup(void **state)
{
	struct tl_parent *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	tl_parent_create(p);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct tl_parent *p = *state;
	char leaf[PATH_MAX + 8];
	int procs = count_procs_of(P) + count_procs_of(SELF);

	/* A test that failed half-way may have left its leaf. */
	snprintf(leaf, sizeof(leaf), "%s/leaf", p->dir);
	if (access(leaf, F_OK) == 0)
		leaf_destroy(leaf);
	int left = tl_parent_destroy(p);

	free(p);
	if (left || procs) {
		fprintf(stderr,
		        "LEAK: %d cgroup(s) left below the private parent, %d process(es)\n", left,
		        procs);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- seccomp */

static const char *const denied[] = {
    "mount",       "umount2", "swapon",          "swapoff", "init_module",  "reboot",
    "kexec_load",  "bpf",     "perf_event_open", "ptrace",  "settimeofday", "keyctl",
    "userfaultfd", "acct",
};
#define N_DENIED (sizeof(denied) / sizeof(denied[0]))

/* Every group of the default profile answers EPERM; getpid still works. The
 * same probes without the sandbox show that they reach the kernel. */
static void denied_syscalls(void **state)
{
	struct tl_parent *p = *state;
	const char *argv[N_DENIED + 1][4];
	corral_task_t t[N_DENIED + 1];
	corral_result_t r[N_DENIED + 1];
	corral_options_t o;

	for (size_t i = 0; i <= N_DENIED; i++) {
		argv[i][0] = P;
		argv[i][1] = "syscall";
		argv[i][2] = i < N_DENIED ? denied[i] : "getpid";
		argv[i][3] = NULL;
		t[i] = task(argv[i]);
	}
	sb_options(p, &o);
	run(&o, t, N_DENIED + 1, r);
	for (size_t i = 0; i <= N_DENIED; i++) {
		show(argv[i][2], &r[i]);
		assert_outcome(&r[i], "ok");
		assert_string_equal(out(&r[i]), i < N_DENIED ? "EPERM\n" : "ok\n");
	}
	release(r, N_DENIED + 1);

	/* Control: these reach the kernel, which answers something else. */
	bare_options(p, &o);
	run(&o, t, N_DENIED + 1, r);
	for (size_t i = 0; i <= N_DENIED; i++) {
		show(argv[i][2], &r[i]);
		assert_outcome(&r[i], "ok");
		static const char *const sure[] = {"mount",  "umount2", "swapon", "swapoff",
		                                   "reboot", "acct",    "ptrace", "getpid"};
		for (size_t k = 0; k < sizeof(sure) / sizeof(sure[0]); k++)
			if (!strcmp(argv[i][2], sure[k]))
				assert_string_not_equal(out(&r[i]), "EPERM\n");
	}
	release(r, N_DENIED + 1);
}

/* clone3 is denied to tasks with ENOSYS (its CLONE_INTO_CGROUP could reach a
 * cgroup outside the task's; libc falls back to clone), also where the
 * spawner itself clones with it (v2: its filter allows clone3, its children
 * add a filter that denies it); without a filter the kernel answers. */
static void clone3_denied(void **state)
{
	struct tl_parent *p = *state;
	corral_task_t t[2];
	corral_result_t r[2];
	corral_options_t o;

	/* Two: the second from a spawner that has served one before. */
	t[0] = task(ARGV(P, "syscall", "clone3"));
	t[1] = task(ARGV(P, "syscall", "clone3"));
	sb_options(p, &o);
	run(&o, t, 2, r);
	for (int i = 0; i < 2; i++) {
		show("sandbox", &r[i]);
		assert_outcome(&r[i], "ok");
		assert_string_equal(out(&r[i]), "ENOSYS\n");
	}
	release(r, 2);
	bare_options(p, &o);
	run(&o, t, 1, r);
	show("no sandbox", &r[0]);
	assert_string_equal(out(&r[0]), "EINVAL\n");
	release(r, 1);
}

/* allow_ptrace: ptrace is allowed (a trace of one's own child works, even
 * without CAP_SYS_PTRACE), the rest stays denied. */
static void allow_ptrace(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t[3];
	corral_result_t r[3];
	bool have_strace = access("/usr/bin/strace", X_OK) == 0;

	t[0] = task(ARGV(P, "syscall", "ptrace"));
	t[1] = task(ARGV(P, "syscall", "mount"));
	t[2] = task(have_strace ? ARGV("/usr/bin/strace", "-f", "-o", "/dev/null", "/bin/true")
	                        : ARGV("/bin/true"));
	sb_options(p, &o);
	o.sandbox.allow_ptrace = true;
	run(&o, t, 3, r);
	for (int i = 0; i < 3; i++)
		show("allow_ptrace", &r[i]);
	assert_string_equal(out(&r[0]), "ESRCH\n"); /* reached the kernel: not traced */
	assert_string_equal(out(&r[1]), "EPERM\n");
	assert_outcome(&r[2], "ok");
	release(r, 3);

	if (have_strace) {
		/* Without allow_ptrace strace cannot work. */
		sb_options(p, &o);
		run(&o, &t[2], 1, r);
		show("strace without allow_ptrace", r);
		assert_outcome(r, "exit");
		release(r, 1);
	}
}

/* Everyday workloads run unchanged under the sandbox. */
static void workloads(void **state)
{
	struct tl_parent *p = *state;
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	corral_options_t o;
	corral_task_t t[3];
	corral_result_t r[3];

	t[0] = task(ARGV("/bin/sh", "-c", "echo hello world | tr a-z A-Z"));
	t[1] = task(ARGV("/bin/sh", "-c", "printf 'b\\nc\\na\\n' | sort"));
	t[2] = task(ARGV(py, "-c",
	                 "import threading, subprocess, json\n"
	                 "out = []\n"
	                 "th = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
	                 "[x.start() for x in th]; [x.join() for x in th]\n"
	                 "s = subprocess.run(['sh', '-c', 'echo sub'], capture_output=True)\n"
	                 "print(json.dumps([sorted(out), s.stdout.decode().strip()]))"));
	sb_options(p, &o);
	run(&o, t, 3, r);
	for (int i = 0; i < 3; i++) {
		show("workload", &r[i]);
		assert_outcome(&r[i], "ok");
	}
	assert_string_equal(out(&r[0]), "HELLO WORLD\n");
	assert_string_equal(out(&r[1]), "a\nb\nc\n");
	assert_string_equal(out(&r[2]), "[[0, 1, 2, 3], \"sub\"]\n");
	release(r, 3);
}

static char *write_profile(const char *dir, const char *text)
{
	static char path[PATH_MAX];

	tl_write(dir, "profile", text);
	snprintf(path, sizeof(path), "%s/profile", dir);
	return path;
}

/* action kill: the denied call kills the task with SIGSYS, and says so. */
static void kill_profile(void **state)
{
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir();
	corral_options_t o;
	corral_task_t t[2];
	corral_result_t r[2];

	sb_options(p, &o);
	o.sandbox.seccomp = CORRAL_SECCOMP_FILE;
	o.sandbox.seccomp_file = write_profile(dir, "action kill\n[deny]\nswapoff\n");
	t[0] = task(ARGV(P, "syscall", "getpid"));
	t[1] = task(ARGV(P, "syscall", "swapoff"));
	run(&o, t, 2, r);
	show("kill: getpid", &r[0]);
	show("kill: swapoff", &r[1]);
	assert_outcome(&r[0], "ok");
	assert_string_equal(out(&r[0]), "ok\n");
	assert_outcome(&r[1], "signal");
	assert_int_equal(r[1].signal, SIGSYS);
	assert_int_equal(r[1].status, 128 + SIGSYS);
	assert_true(r[1].seccomp_kill);
	assert_non_null(strstr(r[1].sentence, "blocked by seccomp"));
	release(r, 2);

	/* The cgroup namespace adds @mount and setns to a profile that does
	 * not name them, with its action: mount kills too. */
	t[0] = task(ARGV(P, "syscall", "mount"));
	run(&o, t, 1, r);
	show("kill: mount", r);
	assert_outcome(r, "signal");
	assert_true(r->seccomp_kill);
	release(r, 1);
	tl_rm_rf(dir);
	free(dir);
}

/* Profile mistakes fail executor creation, with the file and line. */
static void profile_errors(void **state)
{
	static const struct {
		const char *text, *want;
		bool cgroup_ns;
	} cases[] = {
	    {"[deny]\nmount\nfrobnicate\n", "line 3: unknown syscall `frobnicate`", false},
	    {"# x\n[deny]\nmount now\n", "line 3:", false},
	    {"default deny\n[allow]\nread\nwrite\nexit_group\nexecve\n@mount\n",
	     "line 7: `@mount` is allowed, but the cgroup namespace's read-only cgroupfs needs "
	     "@mount, setns and clone3 denied",
	     true},
	    {"default deny\n[allow]\nexecve\nsetns\n", "line 4: `setns` is allowed", true},
	    {"default deny\n[allow]\nexecve\nclone3\n", "line 4: `clone3` is allowed", true},
	    {"io_uring allow\n[deny]\nconnect\n", "line 1: io_uring is allowed, but line 3 denies",
	     false},
	};
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir();
	corral_options_t o;
	corral_executor_t *ex = NULL;
	corral_error_t err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb_options(p, &o);
		o.sandbox.cgroup_ns = cases[i].cgroup_ns;
		o.sandbox.seccomp = CORRAL_SECCOMP_FILE;
		o.sandbox.seccomp_file = write_profile(dir, cases[i].text);
		memset(&err, 0, sizeof(err));
		assert_int_equal(corral_executor_new(&o, &ex, &err), -EINVAL);
		print_message("# profile error: %s\n", err.msg);
		assert_int_equal(err.code, EINVAL);
		assert_non_null(strstr(err.msg, cases[i].want));
		assert_non_null(strstr(err.msg, o.sandbox.seccomp_file));
		assert_int_equal(tl_count_corral_cgroups(p->dir), 0);
	}
	/* Without the cgroup namespace a profile may allow mount. */
	sb_options(p, &o);
	o.sandbox.cgroup_ns = false;
	o.sandbox.seccomp = CORRAL_SECCOMP_FILE;
	o.sandbox.seccomp_file = write_profile(dir, cases[2].text);
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	corral_executor_free(ex);
	tl_rm_rf(dir);
	free(dir);
}

/* A profile that denies execve: a spawn_error at step "exec", not a hang. */
static void profile_denies_exec(void **state)
{
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir();
	corral_options_t o;
	corral_task_t t = task(ARGV("/bin/true"));
	corral_result_t r;

	sb_options(p, &o);
	o.sandbox.seccomp = CORRAL_SECCOMP_FILE;
	o.sandbox.seccomp_file = write_profile(dir, "default deny\n[allow]\nwrite\nexit_group\n");
	run_one(&o, &t, &r);
	show("execve denied", &r);
	assert_outcome(&r, "spawn_error");
	assert_string_equal(r.spawn_step, "exec");
	assert_int_equal(r.spawn_errno, EPERM);
	corral_result_release(&r);
	tl_rm_rf(dir);
	free(dir);
}

/* Every child step has a name of its own in spawn_error results. */
static void step_names(void **state)
{
	(void)state;
	for (int s = 1; s < STEP_COUNT; s++) {
		const char *n = corral__step_name(s);
		assert_non_null(n);
		assert_string_not_equal(n, "spawn");
		for (int k = 1; k < s; k++)
			assert_string_not_equal(n, corral__step_name(k));
	}
	assert_string_equal(corral__step_name(STEP_CAPS), "drop CAP_SYS_PTRACE");
	assert_string_equal(corral__step_name(STEP_MOUNT), "remount cgroupfs read-only");
}

/* ---------------------------------------------------------------- bad arch */

/* i386 (int $0x80) and x32 calls meet the same rules: the filter is built for
 * the three x86 ABIs, so a denied call is EPERM through each of them. */
static void compat_abis(void **state)
{
#if defined(__x86_64__)
	static const char *const calls[][2] = {
	    {"int80", "getpid"}, {"int80", "swapoff"}, {"int80", "setns"},
	    {"int80", "mount"},  {"x32", "getpid"},    {"x32", "swapoff"},
	};
	enum {
		N = sizeof(calls) / sizeof(calls[0])
	};
	struct tl_parent *p = *state;
	const char *argv[N][5];
	corral_task_t t[N];
	corral_result_t bare[N], sb[N];
	corral_options_t o;

	for (int i = 0; i < N; i++) {
		argv[i][0] = SELF;
		argv[i][1] = "helper";
		argv[i][2] = calls[i][0];
		argv[i][3] = calls[i][1];
		argv[i][4] = NULL;
		t[i] = task(argv[i]);
	}
	bare_options(p, &o);
	run(&o, t, 3, bare); /* no mount without a filter: NULL args, but still */
	for (int i = 0; i < 3; i++)
		show("no filter", &bare[i]);
	if (bare[0].outcome == CORRAL_SIGNAL) {
		release(bare, 3);
		skip(); /* no IA32 emulation in this kernel: int $0x80 faults */
	}
	run(&o, &t[4], 2, &bare[4]);
	for (int i = 4; i < N; i++)
		show("no filter", &bare[i]);
	/* Unfiltered, the calls reach the kernel. */
	assert_string_equal(out(&bare[0]), "ok\n");
	assert_string_equal(out(&bare[1]), "EFAULT\n");
	assert_string_equal(out(&bare[2]), "EBADF\n");
	/* x32: ENOSYS on a kernel without the x32 ABI, EFAULT with it. */
	assert_string_not_equal(out(&bare[5]), "EPERM\n");

	sb_options(p, &o);
	run(&o, t, N, sb);
	for (int i = 0; i < N; i++) {
		show(calls[i][0], &sb[i]);
		assert_outcome(&sb[i], "ok");
	}
	assert_string_equal(out(&sb[0]), "ok\n");
	assert_string_equal(out(&sb[1]), "EPERM\n");
	assert_string_equal(out(&sb[2]), "EPERM\n");
	assert_string_equal(out(&sb[3]), "EPERM\n");
	assert_string_equal(out(&sb[4]), out(&bare[4])); /* allowed: as without a filter */
	assert_string_equal(out(&sb[5]), "EPERM\n");
	release(bare, 3);
	release(&bare[4], 2);
	release(sb, N);
#else
	(void)state;
	skip();
#endif
}

/* ---------------------------------------------------------------- user, network */

static void user_nobody(void **state)
{
	struct tl_parent *p = *state;
	struct passwd *pw = getpwnam("nobody");
	char want[64];
	corral_options_t o;
	corral_task_t t[4];
	corral_result_t r[4];

	if (!pw)
		skip();
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	sb_options(p, &o);
	o.sandbox.user = "nobody";
	t[0] = task(ARGV("id", "-u"));
	t[1] = task(ARGV("id", "-g"));
	t[2] = task(ARGV("id", "-G"));
	t[3] = task(ARGV("/bin/sh", "-c",
	                 "grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' "
	                 "/proc/self/status"));
	run(&o, t, 4, r);
	for (int i = 0; i < 4; i++) {
		show("nobody", &r[i]);
		assert_outcome(&r[i], "ok");
	}
	snprintf(want, sizeof(want), "%u\n", (unsigned)uid);
	assert_string_equal(out(&r[0]), want);
	assert_string_equal(out(&r[0]), "65534\n");
	snprintf(want, sizeof(want), "%u\n", (unsigned)gid);
	assert_string_equal(out(&r[1]), want);
	assert_string_equal(out(&r[2]), want); /* nobody is in no other group */
	assert_string_equal(out(&r[3]), "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
	                                "NoNewPrivs:\t1\nSeccomp:\t2\n");
	release(r, 4);

	/* USER:GROUP and UID:GID: that group only. */
	static const char *const specs[] = {"nobody:0", "65534:0", "65534:root"};
	for (size_t i = 0; i < 3; i++) {
		o.sandbox.user = specs[i];
		t[0] = task(ARGV("/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G)"));
		run(&o, t, 1, r);
		show(specs[i], r);
		assert_string_equal(out(r), "65534 0 0\n");
		release(r, 1);
	}

	/* Bad specs fail at executor creation; "-1" would be setresuid(-1),
	 * i.e. stay root. */
	static const char *const bad[] = {
	    "-1:0",   "-1",        "4294967295",          " 0",
	    "+65534", "nobody:-1", "no-such-user-corral", "nobody:no-such-group-corral"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		corral_executor_t *ex = NULL;
		corral_error_t err = {0};
		o.sandbox.user = bad[i];
		assert_true(corral_executor_new(&o, &ex, &err) < 0);
		print_message("# --user `%s`: %s\n", bad[i], err.msg);
	}
}

/* A user with supplementary groups gets them (with no GROUP given). */
static void user_groups(void **state)
{
	struct tl_parent *p = *state;
	struct group *g;
	char name[256] = "", want[1024] = "";
	gid_t groups[256];
	int ng = 256;
	corral_options_t o;
	corral_result_t r;

	setgrent();
	while (!name[0] && (g = getgrent()))
		for (int i = 0; g->gr_mem[i] && !name[0]; i++) {
			struct passwd *pw = getpwnam(g->gr_mem[i]);
			if (pw && pw->pw_uid != 0 && pw->pw_gid != g->gr_gid)
				snprintf(name, sizeof(name), "%s", g->gr_mem[i]);
		}
	endgrent();
	if (!name[0])
		skip(); /* no user with a supplementary group here */
	struct passwd *pw = getpwnam(name);
	assert_non_null(pw);
	assert_true(getgrouplist(name, pw->pw_gid, groups, &ng) > 0);
	/* id -G prints the effective gid first, then the others. */
	snprintf(want, sizeof(want), "%u", (unsigned)pw->pw_gid);
	for (int i = 0; i < ng; i++)
		if (groups[i] != pw->pw_gid)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), " %u",
			         (unsigned)groups[i]);
	strcat(want, "\n");
	sb_options(p, &o);
	o.sandbox.user = name;
	corral_task_t t = task(ARGV("id", "-G"));
	run_one(&o, &t, &r);
	show(name, &r);
	assert_outcome(&r, "ok");
	assert_string_equal(out(&r), want);
	corral_result_release(&r);
}

static void no_network(void **state)
{
	struct tl_parent *p = *state;
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char own[64] = "", want[80];
	corral_options_t o;
	corral_task_t t[3];
	corral_result_t r[3];

	assert_true(readlink("/proc/self/ns/net", own, sizeof(own) - 1) > 0);
	sb_options(p, &o);
	o.sandbox.no_network = true;
	/* /proc/net/dev is the task's own namespace (/sys/class/net would be
	 * the one of whoever mounted /sys). */
	t[0] = task(ARGV("/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"));
	t[1] = task(ARGV("readlink", "/proc/self/ns/net"));
	t[2] = task(ARGV(py, "-c",
	                 "import socket\n"
	                 "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
	                 "c = socket.create_connection(s.getsockname(), timeout=5)\n"
	                 "a, _ = s.accept(); c.sendall(b'lo up'); print(a.recv(5).decode())"));
	run(&o, t, 3, r);
	for (int i = 0; i < 3; i++) {
		show("no_network", &r[i]);
		assert_outcome(&r[i], "ok");
	}
	assert_string_equal(out(&r[0]), "lo\n");
	snprintf(want, sizeof(want), "%s\n", own);
	assert_string_not_equal(out(&r[1]), want);
	assert_string_equal(out(&r[2]), "lo up\n");
	release(r, 3);
}

/* ---------------------------------------------------------------- cgroup escapes */

/* A leaf cgroup inside the private parent: a valid target on v2 too (the
 * parent itself has controllers enabled, so v2 refuses processes in it). */
static void leaf_create(const struct tl_parent *p, char *leaf, size_t size)
{
	snprintf(leaf, size, "%s/leaf", p->dir);
	assert_int_equal(mkdir(leaf, 0755), 0);
}

/* Kill whatever got into the leaf (only our own escaped tasks can), remove it. */
static int leaf_destroy(const char *leaf)
{
	char path[PATH_MAX + 16], line[64];
	int n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", leaf);
	for (int round = 0; round < 100; round++) {
		FILE *f = fopen(path, "r");
		int live = 0;
		while (f && fgets(line, sizeof(line), f)) {
			int pid = atoi(line);
			if (pid > 0 && pid != getpid()) {
				kill(pid, SIGKILL);
				live++;
			}
		}
		if (f)
			fclose(f);
		n += round == 0 ? live : 0;
		if (!live)
			break;
		usleep(10000);
	}
	for (int i = 0; i < 100 && rmdir(leaf) < 0 && errno == EBUSY; i++)
		usleep(10000);
	return n;
}

/* Number of pids in dir/cgroup.procs. */
static int procs_in(const char *dir)
{
	char path[PATH_MAX + 16], line[64];
	int n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	return n;
}

/* The cgroup mount point holding dir (the longest mount point prefix). */
static void mount_of(const char *dir, char *out_mp, size_t size)
{
	static char mps[256][4096];
	char buf[1 << 16];
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	size_t best = 0;

	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	int k = corral__parse_cgroup_mount_points(buf, mps, 256);
	for (int i = 0; i < k; i++) {
		size_t l = strlen(mps[i]);
		if (l > best && !strncmp(dir, mps[i], l) && dir[l] == '/') {
			best = l;
			snprintf(out_mp, size, "%s", mps[i]);
		}
	}
	assert_true(best > 0);
}

/* Every line of /proc/self/cgroup output ends in ":/": with the cgroup
 * namespace the task sees its own cgroup as the root. */
static void assert_cgroup_root(const char *text)
{
	int lines = 0;

	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		int len = nl ? (int)(nl - l) : (int)strlen(l);
		if (len < 2 || l[len - 1] != '/' || l[len - 2] != ':')
			fail_msg("not at the root of its cgroup namespace: `%.*s`", len, l);
		lines++;
		l = nl ? nl + 1 : NULL;
	}
	assert_true(lines >= 1);
}

/* A root task writes its pid into the private parent's cgroup.procs and into
 * a leaf's: both fail (EROFS), it is still at the root of its cgroup
 * namespace, and its memory limit still holds. */
static void escape_blocked(void **state)
{
	struct tl_parent *p = *state;
	char leaf[PATH_MAX];
	corral_options_t o;
	corral_result_t r;

	leaf_create(p, leaf, sizeof(leaf));
	sb_options(p, &o);
	o.memory_max = 32 * MiB;
	run_sh(&o,
	       "\"$0\" escape \"$1\"; \"$0\" escape \"$2\"; \"$0\" cgroup; "
	       "grep -E ' - cgroup2? ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1 | "
	       "sort -u; exec \"$0\" alloc 128",
	       ARGV(P, p->dir, leaf), &r);
	show("escape with the sandbox", &r);
	assert_outcome(&r, "oom");
	assert_true(r.own_limit_hit);
	const char *o1 = out(&r);
	assert_true(!strncmp(o1, "EROFS\nEROFS\n", 12));
	/* Every cgroup mount the task sees is read-only. */
	const char *ro = strstr(o1 + 12, "\nro\n");
	assert_non_null(ro);
	assert_string_equal(ro, "\nro\n");
	char cg[4096];
	snprintf(cg, sizeof(cg), "%.*s", (int)(ro + 1 - (o1 + 12)), o1 + 12);
	assert_cgroup_root(cg);
	corral_result_release(&r);
	assert_int_equal(procs_in(leaf), 0);
	assert_int_equal(procs_in(p->dir), 0);
	assert_int_equal(leaf_destroy(leaf), 0);
}

/* The other ways out for a root task: join corral's mount namespace (setns
 * by /proc/PID/ns or pidfd, nsenter), walk into it through /proc/PID/root
 * (from a new user namespace too, where the task has every capability),
 * remount the cgroupfs read-write in a new mount namespace (with or without
 * a user namespace). All fail; then with seccomp off (the cgroup namespace
 * still adds its own rules). */
static void escape_routes(void **state)
{
	static const char *const script =
	    "L=$1 M=$2\n"
	    "echo $$ > /proc/$PPID/root$L/cgroup.procs 2>/dev/null && echo ESCAPED-proc-root\n"
	    "nsenter -t $PPID -m -C sh -c 'echo $$ > \"$0\"/cgroup.procs' \"$L\" 2>/dev/null "
	    "  && echo ESCAPED-nsenter\n"
	    "\"$0\" helper setns-pidfd\n"
	    "unshare -Ur sh -c 'echo $$ > /proc/$0/root$1/cgroup.procs' $PPID \"$L\" 2>/dev/null "
	    "  && echo ESCAPED-userns-proc-root\n"
	    "unshare -m --propagation unchanged sh -c "
	    "  'mount -o remount,bind,rw \"$1\" && echo $$ > \"$0\"/cgroup.procs' \"$L\" \"$M\" "
	    "  2>/dev/null && echo ESCAPED-remount\n"
	    "unshare -Urm --propagation unchanged sh -c "
	    "  'mount -o remount,bind,rw \"$1\" && echo $$ > \"$0\"/cgroup.procs' \"$L\" \"$M\" "
	    "  2>/dev/null && echo ESCAPED-userns-remount\n"
	    "mount -o remount,bind,rw \"$M\" 2>/dev/null && echo ESCAPED-remount-here\n"
	    "echo $$ > $L/cgroup.procs 2>/dev/null && echo ESCAPED-direct\n"
	    "grep -E '^(CapBnd|CapEff):' /proc/self/status\n"
	    "cat /proc/self/cgroup\n";
	struct tl_parent *p = *state;
	char leaf[PATH_MAX], mp[4096];
	corral_options_t o;
	corral_result_t r;

	leaf_create(p, leaf, sizeof(leaf));
	mount_of(leaf, mp, sizeof(mp));
	for (int off = 0; off < 2; off++) {
		sb_options(p, &o);
		if (off)
			o.sandbox.seccomp = CORRAL_SECCOMP_OFF;
		run_sh(&o, script, ARGV(SELF, leaf, mp), &r);
		show(off ? "escape routes, seccomp off" : "escape routes", &r);
		assert_outcome(&r, "ok");
		const char *text = out(&r);
		assert_null(strstr(text, "ESCAPED"));
		/* setns is denied by seccomp (EPERM). */
		assert_true(!strncmp(text, "EPERM\n", 6));
		/* CAP_SYS_PTRACE (bit 19) is gone, bounding set included. */
		const char *bnd = strstr(text, "CapBnd:\t");
		assert_non_null(bnd);
		unsigned long long caps = strtoull(bnd + 8, NULL, 16);
		assert_int_equal(caps & (1ull << 19), 0);
		assert_true(caps & (1ull << 21)); /* still root: CAP_SYS_ADMIN */
		assert_cgroup_root(strchr(bnd, '\n') + 1);
		corral_result_release(&r);
		assert_int_equal(procs_in(leaf), 0);
	}
	assert_int_equal(leaf_destroy(leaf), 0);
}

/* Why the sandbox is needed: without it, the same escape works. The escaped
 * process is the payload's `escape`, which exits at once; anything left in
 * the leaf is killed by pid. */
static void escape_without_sandbox(void **state)
{
	struct tl_parent *p = *state;
	char leaf[PATH_MAX];
	corral_options_t o;
	corral_result_t r;

	leaf_create(p, leaf, sizeof(leaf));
	bare_options(p, &o);
	o.memory_max = 32 * MiB;
	run_sh(&o, "echo $$ > \"$1\"/cgroup.procs && echo escaped && exec \"$0\" alloc 64",
	       ARGV(P, leaf), &r);
	show("escape without the sandbox", &r);
	int left = leaf_destroy(leaf);
	/* Out of its cgroup, the task is no longer held to its limit. */
	assert_string_equal(out(&r), "escaped\n");
	assert_outcome(&r, "ok");
	assert_int_equal(left, 0);
	corral_result_release(&r);
}

/* ---------------------------------------------------------------- limits, fds, signals */

static void fork_bomb(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_task_t t = task(ARGV(P, "forkbomb", "200"));
	corral_result_t r;

	sb_options(p, &o);
	o.memory_max = 256 * MiB;
	o.pids_max = 64;
	run_one(&o, &t, &r);
	show("fork bomb", &r);
	assert_outcome(&r, "ok");
	assert_true(r.pids_limit_hit);
	assert_true(!strncmp(out(&r), "failed ", 7));
	assert_true(atoi(out(&r) + 7) >= 200 - 64);
	corral_result_release(&r);
	assert_int_equal(count_procs_of(P), 0);
}

static void rlimit_core(void **state)
{
	struct tl_parent *p = *state;
	struct rlimit old, big;
	corral_options_t o;
	corral_task_t t = task(ARGV("/bin/sh", "-c", "ulimit -c"));
	corral_result_t r;

	/* Our soft limit as high as the hard one allows, so that "kept" shows. */
	assert_int_equal(getrlimit(RLIMIT_CORE, &old), 0);
	if (old.rlim_max == 0)
		skip(); /* hard limit 0: nothing to keep */
	big = old;
	big.rlim_cur = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_CORE, &big), 0);
	for (int mode = 0; mode < 3; mode++) {
		if (mode == 0)
			sb_options(p, &o); /* the sandbox */
		else
			bare_options(p, &o);
		/* 1: core_dumps; 2: the library's defaults, nothing else on */
		o.sandbox.core_dumps = mode == 1;
		run_one(&o, &t, &r);
		show("ulimit -c", &r);
		assert_outcome(&r, "ok");
		if (mode == 1)
			assert_string_not_equal(out(&r), "0\n");
		else
			assert_string_equal(out(&r), "0\n");
		if (mode == 1 && big.rlim_cur == RLIM_INFINITY)
			assert_string_equal(out(&r), "unlimited\n");
		corral_result_release(&r);
	}
	setrlimit(RLIMIT_CORE, &old);
}

static int list_fds_fn(void *arg, int out_fd)
{
	char buf[512];
	size_t len = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	(void)arg;
	if (!d)
		return 1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && len < sizeof(buf) - 16)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s ", e->d_name);
	closedir(d);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "out=%d", out_fd);
	return write(out_fd, buf, len) == (ssize_t)len ? 0 : 1;
}

/* No fd but 0, 1, 2 reaches a task (a function task: and its result fd),
 * even one the caller left without O_CLOEXEC. */
static void fds(void **state)
{
	struct tl_parent *p = *state;
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
	corral_options_t o;
	corral_task_t t[2];
	corral_result_t r[2];
	char want[64];

	assert_true(leak > 2);
	t[0] = task(ARGV(P, "fds"));
	corral_task_init(&t[1]);
	t[1].fn = list_fds_fn;
	for (int mode = 0; mode < 2; mode++) {
		if (mode)
			bare_options(p, &o);
		else
			sb_options(p, &o);
		run(&o, t, 2, r);
		show("fds", &r[0]);
		assert_outcome(&r[0], "ok");
		assert_string_equal(out(&r[0]), "0\n1\n2\n");
		assert_outcome(&r[1], "ok");
		char got[512];
		snprintf(got, sizeof(got), "%.*s", (int)r[1].fn_result.data_len,
		         r[1].fn_result.data);
		print_message("# fn fds: %s\n", got);
		const char *eq = strstr(got, "out=");
		assert_non_null(eq);
		int fd = atoi(eq + 4);
		assert_true(fd > 2);
		snprintf(want, sizeof(want), "0 1 2 %d out=%d", fd, fd);
		assert_string_equal(got, want);
		release(r, 2);
	}
	close(leak);
}

/* Signals: a caller that blocks and ignores signals (SIGTERM among them)
 * does not pass that on; SIGTERM kills the task. */
static void signals(void **state)
{
	struct tl_parent *p = *state;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_term, old_usr1;
	sigset_t set, old_mask;
	corral_options_t o;
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_task_t t[2];
	corral_result_t r;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &old_mask);
	sigaction(SIGTERM, &ign, &old_term);
	sigaction(SIGUSR1, &ign, &old_usr1);

	sb_options(p, &o);
	t[0] = task(ARGV("/bin/sh", "-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status"));
	run(&o, t, 1, &r);
	show("signal state", &r);
	assert_string_equal(out(&r), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	corral_result_release(&r);

	t[1] = task(ARGV(P, "sleep", "60"));
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	assert_int_equal(corral_submit(ex, &t[1], &err), 1);
	corral_close(ex);
	double t0 = now_s();
	bool sent = false;
	while ((rc = corral_next(ex, &r, 100, &err)) == 0) {
		if (!sent && corral_running(ex) == 1 && now_s() - t0 > 0.3) {
			assert_int_equal(corral_signal(ex, 1, SIGTERM), 0);
			sent = true;
		}
		assert_true(now_s() - t0 < 30);
	}
	assert_int_equal(rc, 1);
	show("SIGTERM", &r);
	assert_outcome(&r, "signal");
	assert_int_equal(r.signal, SIGTERM);
	corral_result_release(&r);
	corral_executor_free(ex);

	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGUSR1, &old_usr1, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
}

/* The scheduling policy and nice value of the caller pass to its tasks,
 * though the spawners run SCHED_BATCH (zygote.c): a caller under
 * SCHED_OTHER gets tasks under SCHED_OTHER, one under SCHED_BATCH tasks
 * under SCHED_BATCH; a nice value is kept either way. */
static void scheduling_policy(void **state)
{
	struct tl_parent *p = *state;
	struct sched_param sp = {0};
	corral_options_t o;
	corral_task_t t[1];
	corral_result_t r;
	char want[64];
	int old_policy = sched_getscheduler(0);
	int old_nice = getpriority(PRIO_PROCESS, 0);

	if (old_policy != SCHED_OTHER) {
		print_message(
		    "SKIPPED: the test runs under scheduling policy %d, not SCHED_OTHER\n",
		    old_policy);
		return;
	}
	/* Raising nice needs no privilege; lowering it back does (root). */
	int nice = old_nice;
	if (geteuid() == 0 && old_nice < 19)
		nice = old_nice + 2;
	assert_int_equal(setpriority(PRIO_PROCESS, 0, nice), 0);
	sb_options(p, &o);
	t[0] = task(ARGV("/bin/sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"));
	run(&o, t, 1, &r);
	show("SCHED_OTHER", &r);
	snprintf(want, sizeof(want), "%d 0\n", nice);
	assert_string_equal(out(&r), want);
	corral_result_release(&r);

	assert_int_equal(sched_setscheduler(0, SCHED_BATCH, &sp), 0);
	t[0] = task(ARGV("/bin/sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"));
	run(&o, t, 1, &r);
	show("SCHED_BATCH", &r);
	snprintf(want, sizeof(want), "%d %d\n", nice, SCHED_BATCH);
	assert_string_equal(out(&r), want);
	corral_result_release(&r);
	assert_int_equal(sched_setscheduler(0, SCHED_OTHER, &sp), 0);
	if (nice != old_nice)
		assert_int_equal(setpriority(PRIO_PROCESS, 0, old_nice), 0);
}

/* Each task leads its own process group. */
static void process_group(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_result_t r;

	sb_options(p, &o);
	run_sh(&o, "read pid comm state ppid pgrp rest < /proc/$$/stat; echo $pid $pgrp", NULL, &r);
	show("pgid", &r);
	assert_outcome(&r, "ok");
	int pid = 0, pgrp = -1;
	assert_int_equal(sscanf(out(&r), "%d %d", &pid, &pgrp), 2);
	assert_int_equal(pid, r.pid);
	assert_int_equal(pgrp, pid);
	corral_result_release(&r);
}

/* ---------------------------------------------------------------- the template mount namespace */

/* Tasks join one read-only mount namespace made per executor (sandbox.c) and
 * keep their working directory: the caller's, or the task's own. */
static void template_cwd(void **state)
{
	struct tl_parent *p = *state;
	char own[64] = "", here[PATH_MAX], want[PATH_MAX + 2];
	char *dir = tl_tmpdir();
	corral_options_t o;
	corral_task_t t[3];
	corral_result_t r[3];

	assert_true(readlink("/proc/self/ns/mnt", own, sizeof(own) - 1) > 0);
	assert_non_null(getcwd(here, sizeof(here)));
	sb_options(p, &o);
	t[0] = task(ARGV("/bin/sh", "-c", "readlink /proc/self/cwd; readlink /proc/self/ns/mnt"));
	t[1] = t[0];
	t[1].cwd = dir;
	t[2] = t[0];
	t[2].cwd = "..";
	run(&o, t, 3, r);
	for (int i = 0; i < 3; i++) {
		show("cwd", &r[i]);
		assert_outcome(&r[i], "ok");
	}
	char ns[3][64];
	for (int i = 0; i < 3; i++)
		assert_non_null(strchr(out(&r[i]), '\n'));
	snprintf(want, sizeof(want), "%s\n", here);
	assert_true(!strncmp(out(&r[0]), want, strlen(want)));
	snprintf(want, sizeof(want), "%s\n", dir);
	assert_true(!strncmp(out(&r[1]), want, strlen(want)));
	snprintf(want, sizeof(want), "%s", here);
	*strrchr(want, '/') = '\0';
	strcat(want, "\n");
	if (want[0] == '\n')
		snprintf(want, sizeof(want), "/\n");
	assert_true(!strncmp(out(&r[2]), want, strlen(want)));
	/* One namespace for all, not the caller's: the template is in use. */
	for (int i = 0; i < 3; i++)
		snprintf(ns[i], sizeof(ns[i]), "%s", strchr(out(&r[i]), '\n') + 1);
	assert_string_equal(ns[0], ns[1]);
	assert_string_equal(ns[0], ns[2]);
	snprintf(want, sizeof(want), "%s\n", own);
	assert_string_not_equal(ns[0], want);
	release(r, 3);
	tl_rm_rf(dir);
	free(dir);
}

/* A private mount namespace of the test's own, and the way back home:
 * setns() back moves root and cwd to the namespace's root, which is not ours
 * after an initramfs's switch_root (the VM), so both are restored. */
struct own_mnt_ns {
	int home, root, cwd;
};

static void own_mnt_ns_enter(struct own_mnt_ns *ns)
{
	ns->home = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	ns->root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ns->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(ns->home >= 0 && ns->root >= 0 && ns->cwd >= 0);
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

static void own_mnt_ns_leave(struct own_mnt_ns *ns)
{
	assert_int_equal(setns(ns->home, CLONE_NEWNS), 0);
	assert_int_equal(fchdir(ns->root), 0);
	assert_int_equal(chroot("."), 0);
	assert_int_equal(fchdir(ns->cwd), 0);
	close(ns->home);
	close(ns->root);
	close(ns->cwd);
}

/* Mounts made after the executor was created. Made before a task starts,
 * they show in it (the template is made again when the mount table changed),
 * and a cgroup filesystem among them is read-only there too. Made while a
 * task runs, they never reach it, even from a shared mount: the template is
 * private (as a slave it let a cgroup mount made on the host while a task
 * ran reach the task read-write). All of it in a mount namespace of this
 * test's own, left at the end: nothing is mounted on the host. */
static void template_late_mounts(void **state)
{
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir(), late[PATH_MAX], cg[PATH_MAX];
	struct own_mnt_ns ns;
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_options_t o;
	corral_result_t r;

	own_mnt_ns_enter(&ns);
	snprintf(late, sizeof(late), "%s/late", dir);
	snprintf(cg, sizeof(cg), "%s/cg", dir);
	assert_int_equal(mkdir(late, 0755), 0);
	assert_int_equal(mkdir(cg, 0755), 0);
	sb_options(p, &o);
	for (int shared = 0; shared < 2; shared++) {
		const char *mode = shared ? "shared" : "private";
		if (shared)
			assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL), 0);
		assert_int_equal(corral_executor_new(&o, &ex, &err), 0);

		/* 1. Before the task starts. */
		assert_int_equal(mount("corral-test", late, "tmpfs", 0, "size=64k"), 0);
		tl_write(late, "marker", "before\n");
		assert_int_equal(mount("corral-test", cg, "cgroup2", 0, NULL), 0);
		corral_task_t t1 =
		    task(ARGV("/bin/sh", "-c",
		              "cat \"$0\"/marker; grep \" $1 \" /proc/self/mountinfo | "
		              "cut -d' ' -f6 | cut -d, -f1",
		              late, cg));
		assert_int_equal(corral_submit(ex, &t1, &err), 1);
		assert_int_equal(corral_next(ex, &r, -1, &err), 1);
		print_message("# %s: ", mode);
		show("mounted before the task", &r);
		assert_outcome(&r, "ok");
		assert_string_equal(out(&r), "before\nro\n");
		corral_result_release(&r);
		assert_int_equal(umount2(cg, MNT_DETACH), 0);
		assert_int_equal(umount2(late, MNT_DETACH), 0);

		/* 2. While it runs: a tmpfs with the marker, and a cgroup2. */
		corral_task_t t2 =
		    task(ARGV("/bin/sh", "-c",
		              "for i in $(seq 40); do [ -e \"$0\"/marker ] && exec cat "
		              "\"$0\"/marker; sleep 0.05; done; echo missing",
		              late));
		assert_int_equal(corral_submit(ex, &t2, &err), 2);
		corral_close(ex);
		double t0 = now_s();
		while (corral_running(ex) == 0 || now_s() - t0 < 0.2)
			assert_int_equal(corral_next(ex, &r, 50, &err), 0);
		assert_int_equal(mount("corral-test", late, "tmpfs", 0, "size=64k"), 0);
		tl_write(late, "marker", "during\n");
		assert_int_equal(corral_next(ex, &r, -1, &err), 1);
		print_message("# %s: ", mode);
		show("mounted while the task runs", &r);
		assert_outcome(&r, "ok");
		assert_string_equal(out(&r), "missing\n");
		corral_result_release(&r);
		assert_int_equal(corral_next(ex, &r, -1, &err), -ECHILD);
		corral_executor_free(ex);
		assert_int_equal(umount2(late, MNT_DETACH), 0);
	}
	own_mnt_ns_leave(&ns);
	tl_rm_rf(dir);
	free(dir);
}

/* -j 1, v2: the next task's child is made ahead and waits at its gate
 * while the task before it runs (the warm child, attempt_local.c), in the
 * spawners' template. A mount made meanwhile must show in that task all
 * the same: the warm child is dropped and the task made in a new template.
 * (On v1 no warm child is made: the same is checked without one.) */
static void template_warm_child_dropped(void **state)
{
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir(), late[PATH_MAX], flag[PATH_MAX];
	struct own_mnt_ns ns;
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_options_t o;
	corral_result_t r;

	own_mnt_ns_enter(&ns);
	snprintf(late, sizeof(late), "%s/late", dir);
	assert_int_equal(mkdir(late, 0755), 0);
	sb_options(p, &o);
	o.jobs = 1;
	assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
	/* Task 1 runs until the test says go; task 2 reads the late mount. */
	corral_task_t t1 = task(ARGV("/bin/sh", "-c",
	                             "touch \"$0\"/started; for i in $(seq 600); do "
	                             "[ -e \"$0\"/go ] && exit 0; sleep 0.05; done; exit 1",
	                             dir));
	corral_task_t t2 = task(ARGV("/bin/sh", "-c", "cat \"$0\"/marker || echo missing", late));
	assert_int_equal(corral_submit(ex, &t1, &err), 1);
	assert_int_equal(corral_submit(ex, &t2, &err), 2);
	corral_close(ex);
	snprintf(flag, sizeof(flag), "%s/started", dir);
	double t0 = now_s();
	/* Task 1 started, and a second more for task 2's child to get ready. */
	while (access(flag, F_OK) < 0 || now_s() - t0 < 1.0) {
		assert_int_equal(corral_next(ex, &r, 50, &err), 0);
		assert_true(now_s() - t0 < 30);
	}
	assert_int_equal(mount("corral-test", late, "tmpfs", 0, "size=64k"), 0);
	tl_write(late, "marker", "late\n");
	tl_write(dir, "go", "");
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(corral_next(ex, &r, -1, &err), 1);
		print_message("# ");
		show(i == 1 ? "task 1" : "the task whose child waited", &r);
		assert_outcome(&r, "ok");
		if (r.seq == 2)
			assert_string_equal(out(&r), "late\n");
		corral_result_release(&r);
	}
	assert_int_equal(corral_next(ex, &r, -1, &err), -ECHILD);
	corral_executor_free(ex);
	assert_int_equal(umount2(late, MNT_DETACH), 0);
	own_mnt_ns_leave(&ns);
	tl_rm_rf(dir);
	free(dir);
}

static int root_ino_fn(void *arg, int out_fd)
{
	struct stat st;
	char buf[64];

	(void)arg;
	if (stat("/", &st) < 0)
		return 1;
	int n = snprintf(buf, sizeof(buf), "%llu %llu", (unsigned long long)st.st_dev,
	                 (unsigned long long)st.st_ino);
	return write(out_fd, buf, (size_t)n) == n ? 0 : 1;
}

/* In a chrooted caller (a fork of this test, in a mount namespace of its own,
 * with /proc, /sys and /dev bound into the chroot), a task stays in the
 * chroot: joining the template would move its root to the namespace's, so
 * there is no template, and the task's root is the caller's. */
static int chrooted(const struct tl_parent *p, const char *root)
{
	static const char *const binds[] = {"proc", "sys", "dev"};
	char path[PATH_MAX + 16], want[64];
	corral_options_t o;
	corral_executor_t *ex = NULL;
	corral_error_t err = {0};
	corral_result_t r;
	corral_task_t t;
	struct stat st;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, binds[i]);
		char src[16];
		snprintf(src, sizeof(src), "/%s", binds[i]);
		if (mkdir(path, 0755) < 0 || mount(src, path, NULL, MS_BIND | MS_REC, NULL) < 0)
			return 11;
	}
	if (chroot(root) < 0 || chdir("/") < 0 || stat("/", &st) < 0)
		return 12;
	snprintf(want, sizeof(want), "%llu %llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	sb_options(p, &o);
	o.tmpdir = "/";
	if (corral_executor_new(&o, &ex, &err) < 0) {
		fprintf(stderr, "chrooted: %s\n", err.msg);
		return 13;
	}
	corral_task_init(&t);
	t.fn = root_ino_fn;
	if (corral_submit(ex, &t, &err) != 1)
		return 14;
	corral_close(ex);
	if (corral_next(ex, &r, -1, &err) != 1)
		return 15;
	int rc = r.outcome == CORRAL_OK && r.fn_result.data_len == strlen(want) &&
	                 !memcmp(r.fn_result.data, want, strlen(want))
	             ? 0
	             : 16;
	if (rc)
		fprintf(stderr, "chrooted: %s; root %.*s, want %s\n", r.sentence,
		        (int)r.fn_result.data_len, r.fn_result.data ? r.fn_result.data : "", want);
	corral_result_release(&r);
	corral_executor_free(ex);
	return rc;
}

static void template_chroot(void **state)
{
	struct tl_parent *p = *state;
	char *dir = tl_tmpdir();
	int status;

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(chrooted(p, dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	tl_rm_rf(dir); /* the binds were in the child's namespace: gone */
	free(dir);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A spawner (zygote.c) of this process's executor: our child named
 * corral-spawner, or 0; *n: how many there are. */
static pid_t find_spawner(int *n)
{
	char path[64], comm[32];
	pid_t me = getpid(), found = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int ppid = 0;
		if (fscanf(f, "%*d (%31[^)]) %*c %d", comm, &ppid) == 2 && ppid == me &&
		    !strcmp(comm, "corral-spawner")) {
			found = pid;
			(*n)++;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* A spawner dies (killed from outside), or stalls (stopped): tasks it held
 * end as spawn errors within the bound, later ones go to the other spawner
 * or are spawned directly, and nothing hangs or is left behind. With -j 2,
 * one spawner per CPU (up to 2). */
static void spawner_dies_or_stalls(void **state)
{
	struct tl_parent *p = *state;
	corral_options_t o;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;

	if (getenv("CORRAL_SPAWN")) {
		print_message("# CORRAL_SPAWN is set: no spawner in this mode\n");
		skip();
	}
	cpu_set_t set;
	int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	for (int run = 0; run < 4; run++) {
		int stall = run & 1, n = 0;
		sb_options(p, &o);
		o.jobs = run < 2 ? 1 : 2;
		assert_int_equal(corral_executor_new(&o, &ex, &err), 0);
		pid_t z = find_spawner(&n);
		assert_true(z > 0);
		assert_int_equal(n, o.jobs < (unsigned)cpus ? (int)o.jobs : cpus);
		if (stall)
			assert_int_equal(kill(z, SIGSTOP), 0);
		else
			assert_int_equal(kill(z, SIGKILL), 0);
		for (int i = 0; i < 6; i++) {
			corral_task_t t = task(ARGV("/bin/true"));
			assert_int_equal(corral_submit(ex, &t, &err), i + 1);
		}
		corral_close(ex);
		int ok = 0, failed = 0;
		double t0 = now_s();
		while (corral_next(ex, &r, -1, &err) > 0) {
			if (r.final) {
				show(stall ? "spawner stopped" : "spawner killed", &r);
				if (r.outcome == CORRAL_OK)
					ok++;
				else if (r.outcome == CORRAL_SPAWN_ERROR)
					failed++;
			}
			corral_result_release(&r);
		}
		/* At most the one it held fails; the rest run elsewhere. */
		assert_int_equal(ok + failed, 6);
		assert_true(failed <= 1);
		assert_true(ok >= 5);
		assert_true(now_s() - t0 < 20);
		corral_executor_free(ex);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "helper"))
		return helper(argc - 2, argv + 2);

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(step_names),
	    cmocka_unit_test_setup_teardown(denied_syscalls, setup, teardown),
	    cmocka_unit_test_setup_teardown(allow_ptrace, setup, teardown),
	    cmocka_unit_test_setup_teardown(workloads, setup, teardown),
	    cmocka_unit_test_setup_teardown(kill_profile, setup, teardown),
	    cmocka_unit_test_setup_teardown(profile_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(profile_denies_exec, setup, teardown),
	    cmocka_unit_test_setup_teardown(compat_abis, setup, teardown),
	    cmocka_unit_test_setup_teardown(user_nobody, setup, teardown),
	    cmocka_unit_test_setup_teardown(user_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(no_network, setup, teardown),
	    cmocka_unit_test_setup_teardown(escape_blocked, setup, teardown),
	    cmocka_unit_test_setup_teardown(escape_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(escape_without_sandbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(fork_bomb, setup, teardown),
	    cmocka_unit_test_setup_teardown(rlimit_core, setup, teardown),
	    cmocka_unit_test_setup_teardown(fds, setup, teardown),
	    cmocka_unit_test_setup_teardown(signals, setup, teardown),
	    cmocka_unit_test_setup_teardown(scheduling_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(clone3_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(process_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(template_cwd, setup, teardown),
	    cmocka_unit_test_setup_teardown(template_late_mounts, setup, teardown),
	    cmocka_unit_test_setup_teardown(template_warm_child_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(template_chroot, setup, teardown),
	    cmocka_unit_test_setup_teardown(spawner_dies_or_stalls, setup, teardown),
	};
	struct tl_parent probe;
	struct rlimit core;
	ssize_t n = readlink("/proc/self/exe", SELF, sizeof(SELF) - 1);

	if (n <= 0)
		tl_skip("cannot read /proc/self/exe");
	SELF[n] = '\0';
	P = tl_payload();
	if (access(P, X_OK) < 0)
		tl_skip("payload program %s not found (set CORRAL_PAYLOAD)", P);
	tl_parent_create(&probe); /* exits 77 (SKIPPED) with the reason */
	tl_parent_destroy(&probe);
	/* A SIGSYS kill would otherwise dump core (the hard limit stays: the
	 * RLIMIT_CORE test raises the soft one again). */
	if (getrlimit(RLIMIT_CORE, &core) == 0) {
		core.rlim_cur = 0;
		setrlimit(RLIMIT_CORE, &core);
	}
	/* TEST_FILTER=name (or a pattern with * and ?): run only that. */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
