/* test_outcome.c - attribution (design §4) as a table of facts -> outcome,
 * the sentences, outcome names, size formatting, and the v2/v1 backends'
 * counter reading on fake task-cgroup directories. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "cgroup.h"
#include "outcome.h"

#define MiB (1024ull * 1024ull)

/* ------------------------------------------------------------ the table */

struct row {
	const char *name;
	struct corral__facts f;
	corral_outcome_t outcome;
	int status;
	int exit_code;
	int signal;
	bool seccomp_kill;
};

/* Shorthands for the facts of a started task. */
#define EXITED(code)   .spawned = true, .exited = true, .exit_code = (code)
#define KILLED(sig)    .spawned = true, .exited = false, .term_signal = (sig)
#define NOT_SPAWNED(e) .spawned = false, .spawn_errno = (e), .spawn_step = "exec"

static const struct row rows[] = {
    /* ok / exit */
    {"ok", {EXITED(0)}, CORRAL_OK, 0, 0, 0, false},
    {"exit 1", {EXITED(1)}, CORRAL_EXIT, 1, 1, 0, false},
    {"exit 3", {EXITED(3)}, CORRAL_EXIT, 3, 3, 0, false},
    {"exit 255", {EXITED(255)}, CORRAL_EXIT, 255, 255, 0, false},
    /* A leader that exits 137 on its own is an exit, not an OOM. */
    {"exit 137 no oom", {EXITED(137)}, CORRAL_EXIT, 137, 137, 0, false},
    /* oom at the task's own limit. v2 shape: "oom" rose in
     * memory.events.local; v1 shape: failcnt rose / peak at the limit. Both
     * arrive here as own_limit_hit. */
    {"oom own v2",
     {KILLED(SIGKILL), .oom_kills = 1, .own_limit_hit = true},
     CORRAL_OOM,
     137,
     -1,
     SIGKILL,
     false},
    {"oom own v1",
     {KILLED(SIGKILL), .oom_kills = 1, .own_limit_hit = true},
     CORRAL_OOM,
     137,
     -1,
     SIGKILL,
     false},
    {"oom own, oom.group killed 3",
     {KILLED(SIGKILL), .oom_kills = 3, .own_limit_hit = true},
     CORRAL_OOM,
     137,
     -1,
     SIGKILL,
     false},
    /* oom_kill rose but the own limit did not fire: an ancestor or the host. */
    {"oom_outside", {KILLED(SIGKILL), .oom_kills = 1}, CORRAL_OOM_OUTSIDE, 137, -1, SIGKILL, false},
    /* Own limit reached (reclaim, "max"/failcnt) but nobody OOM-killed and
     * the leader exited: just the exit. */
    {"own limit hit, no kill, exit 0",
     {EXITED(0), .own_limit_hit = true},
     CORRAL_OK,
     0,
     0,
     0,
     false},
    /* subprocess_oom */
    {"subprocess oom, leader exit 0",
     {EXITED(0), .oom_kills = 1, .own_limit_hit = true},
     CORRAL_SUBPROCESS_OOM,
     137,
     0,
     0,
     false},
    {"subprocess oom, leader exit 2",
     {EXITED(2), .oom_kills = 1, .own_limit_hit = true},
     CORRAL_SUBPROCESS_OOM,
     137,
     2,
     0,
     false},
    {"subprocess oom, leader SIGPIPE",
     {KILLED(SIGPIPE), .oom_kills = 1, .own_limit_hit = true},
     CORRAL_SUBPROCESS_OOM,
     137,
     -1,
     SIGPIPE,
     false},
    {"subprocess oom outside, leader SIGPIPE",
     {KILLED(SIGPIPE), .oom_kills = 1},
     CORRAL_SUBPROCESS_OOM,
     137,
     -1,
     SIGPIPE,
     false},
    {"allow_subprocess_oom, exit 0",
     {EXITED(0), .oom_kills = 1, .own_limit_hit = true, .allow_subprocess_oom = true},
     CORRAL_OK,
     0,
     0,
     0,
     false},
    {"allow_subprocess_oom, exit 3",
     {EXITED(3), .oom_kills = 1, .own_limit_hit = true, .allow_subprocess_oom = true},
     CORRAL_SUBPROCESS_OOM,
     137,
     3,
     0,
     false},
    {"allow_subprocess_oom, no oom, exit 3",
     {EXITED(3), .allow_subprocess_oom = true},
     CORRAL_EXIT,
     3,
     3,
     0,
     false},
    /* timeout */
    {"timeout", {KILLED(SIGKILL), .killed_timeout = true}, CORRAL_TIMEOUT, 124, -1, SIGKILL, false},
    {"timeout, leader exited in the grace period",
     {EXITED(143), .killed_timeout = true},
     CORRAL_TIMEOUT,
     124,
     143,
     0,
     false},
    /* An OOM kill after our kill (the dying task's last allocation) does not
     * change the cause. */
    {"timeout, oom after the kill",
     {KILLED(SIGKILL), .killed_timeout = true, .oom_kills = 1, .own_limit_hit = true},
     CORRAL_TIMEOUT,
     124,
     -1,
     SIGKILL,
     false},
    /* An OOM that happened *before* our kill stays an OOM. */
    {"oom before the timeout kill",
     {KILLED(SIGKILL), .killed_timeout = true, .oom_kills = 1, .oom_kills_at_kill = 1,
      .own_limit_hit = true},
     CORRAL_OOM,
     137,
     -1,
     SIGKILL,
     false},
    {"oom outside before the timeout kill",
     {KILLED(SIGKILL), .killed_timeout = true, .oom_kills = 1, .oom_kills_at_kill = 1},
     CORRAL_OOM_OUTSIDE,
     137,
     -1,
     SIGKILL,
     false},
    /* signal */
    {"external SIGTERM", {KILLED(SIGTERM)}, CORRAL_SIGNAL, 143, -1, SIGTERM, false},
    {"external SIGKILL", {KILLED(SIGKILL)}, CORRAL_SIGNAL, 137, -1, SIGKILL, false},
    {"SIGSEGV", {KILLED(SIGSEGV)}, CORRAL_SIGNAL, 139, -1, SIGSEGV, false},
    {"SIGABRT", {KILLED(SIGABRT)}, CORRAL_SIGNAL, 134, -1, SIGABRT, false},
    {"SIGSYS with a seccomp kill profile",
     {KILLED(SIGSYS), .seccomp_kills = true},
     CORRAL_SIGNAL,
     128 + SIGSYS,
     -1,
     SIGSYS,
     true},
    {"SIGSYS without a seccomp kill profile",
     {KILLED(SIGSYS)},
     CORRAL_SIGNAL,
     128 + SIGSYS,
     -1,
     SIGSYS,
     false},
    {"SIGSEGV with a seccomp kill profile",
     {KILLED(SIGSEGV), .seccomp_kills = true},
     CORRAL_SIGNAL,
     139,
     -1,
     SIGSEGV,
     false},
    /* spawn_error */
    {"spawn ENOENT", {NOT_SPAWNED(ENOENT)}, CORRAL_SPAWN_ERROR, 127, -1, 0, false},
    {"spawn EACCES", {NOT_SPAWNED(EACCES)}, CORRAL_SPAWN_ERROR, 126, -1, 0, false},
    {"spawn ENOEXEC", {NOT_SPAWNED(ENOEXEC)}, CORRAL_SPAWN_ERROR, 126, -1, 0, false},
    {"spawn EINVAL", {NOT_SPAWNED(EINVAL)}, CORRAL_SPAWN_ERROR, 125, -1, 0, false},
    {"spawn ENOMEM", {NOT_SPAWNED(ENOMEM)}, CORRAL_SPAWN_ERROR, 125, -1, 0, false},
    /* aborted */
    {"aborted", {KILLED(SIGKILL), .killed_abort = true}, CORRAL_ABORTED, -1, -1, SIGKILL, false},
    /* The halt's kill raced with a successful end: the task finished. */
    {"aborted, leader exited 0 meanwhile",
     {EXITED(0), .killed_abort = true},
     CORRAL_OK,
     0,
     0,
     0,
     false},
    /* A non-zero exit may be the kill's consequence (a shell whose child
     * died): still aborted. */
    {"aborted, leader exited 137 meanwhile",
     {EXITED(137), .killed_abort = true},
     CORRAL_ABORTED,
     -1,
     137,
     0,
     false},
    {"oom before the abort kill",
     {KILLED(SIGKILL), .killed_abort = true, .oom_kills = 2, .oom_kills_at_kill = 2,
      .own_limit_hit = true},
     CORRAL_OOM,
     137,
     -1,
     SIGKILL,
     false},
    /* Observe mode (observer.c): no task cgroup, the enclosing one's rise. */
    {"observed: SIGKILL while the enclosing oom_kill rose",
     {KILLED(SIGKILL), .observed = true, .observed_kills = 1},
     CORRAL_OOM_OUTSIDE,
     137,
     -1,
     SIGKILL,
     false},
    {"observed: two kills, one rival: both were OOM kills",
     {KILLED(SIGKILL), .observed = true, .observed_kills = 2, .observed_rivals = 1},
     CORRAL_OOM_OUTSIDE,
     137,
     -1,
     SIGKILL,
     false},
    {"observed: one kill, one rival: ambiguous, stays a signal",
     {KILLED(SIGKILL), .observed = true, .observed_kills = 1, .observed_rivals = 1},
     CORRAL_SIGNAL,
     137,
     -1,
     SIGKILL,
     false},
    {"observed: SIGKILL without a rise",
     {KILLED(SIGKILL), .observed = true},
     CORRAL_SIGNAL,
     137,
     -1,
     SIGKILL,
     false},
    {"observed: SIGTERM while it rose",
     {KILLED(SIGTERM), .observed = true, .observed_kills = 1},
     CORRAL_SIGNAL,
     143,
     -1,
     SIGTERM,
     false},
    /* A rise while a task exited: someone else's, nothing to attribute. */
    {"observed: exit 0 while it rose",
     {EXITED(0), .observed = true, .observed_kills = 1},
     CORRAL_OK,
     0,
     0,
     0,
     false},
    {"observed: timeout kill",
     {KILLED(SIGKILL), .killed_timeout = true, .observed = true, .observed_kills = 1},
     CORRAL_TIMEOUT,
     124,
     -1,
     SIGKILL,
     false},
};

static void classify_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		corral_result_t r;

		memset(&r, 0x5a, sizeof(r)); /* classify must set every field it owns */
		corral__classify(&w->f, &r);
		if (r.outcome != w->outcome || r.status != w->status ||
		    r.exit_code != w->exit_code || r.signal != w->signal ||
		    r.seccomp_kill != w->seccomp_kill)
			fail_msg("row \"%s\": got %s status %d exit_code %d signal %d seccomp %d; "
			         "want %s status %d exit_code %d signal %d seccomp %d",
			         w->name, corral_outcome_name(r.outcome), r.status, r.exit_code,
			         r.signal, r.seccomp_kill, corral_outcome_name(w->outcome),
			         w->status, w->exit_code, w->signal, w->seccomp_kill);
		/* Observe mode counts the leader it attributes an OOM kill to. */
		if (w->f.observed && w->outcome == CORRAL_OOM_OUTSIDE)
			assert_int_equal(r.oom_kills, 1);
		else
			assert_int_equal(r.oom_kills, w->f.oom_kills);
		assert_int_equal(r.own_limit_hit, w->f.own_limit_hit);
		if (w->outcome == CORRAL_SPAWN_ERROR) {
			assert_int_equal(r.spawn_errno, w->f.spawn_errno);
			assert_string_equal(r.spawn_step, "exec");
		}
	}
}

/* Every outcome that can come out of the classifier appears in the table. */
static void classify_table_covers_outcomes(void **state)
{
	bool seen[CORRAL_OUTCOME_COUNT] = {false};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		seen[rows[i].outcome] = true;
	for (int o = 0; o < CORRAL_OUTCOME_COUNT; o++) {
		if (o == CORRAL_CANCELLED || o == CORRAL_LOST)
			continue; /* made by the policy / a head, never by the classifier */
		if (!seen[o])
			fail_msg("outcome %s has no row", corral_outcome_name((corral_outcome_t)o));
	}
}

static void spawn_status(void **state)
{
	(void)state;
	assert_int_equal(corral__spawn_status(ENOENT), 127);
	assert_int_equal(corral__spawn_status(ENOTDIR), 127);
	assert_int_equal(corral__spawn_status(ELOOP), 127);
	assert_int_equal(corral__spawn_status(ENAMETOOLONG), 127);
	assert_int_equal(corral__spawn_status(EACCES), 126);
	assert_int_equal(corral__spawn_status(EPERM), 126);
	assert_int_equal(corral__spawn_status(ENOEXEC), 126);
	assert_int_equal(corral__spawn_status(EISDIR), 126);
	assert_int_equal(corral__spawn_status(ETXTBSY), 126);
	assert_int_equal(corral__spawn_status(EINVAL), 125);
	assert_int_equal(corral__spawn_status(ENOMEM), 125);
	assert_int_equal(corral__spawn_status(E2BIG), 125);
	assert_int_equal(corral__spawn_status(EMFILE), 125);
	assert_int_equal(corral__spawn_status(0), 125);
}

/* A setup step before exec that fails is "setup failed" (125, design §4),
 * whatever its errno: a missing working directory is not a missing command. */
static void spawn_error_setup_steps(void **state)
{
	static const struct {
		const char *step;
		int err;
		int want;
	} cases[] = {
	    {"exec", ENOENT, 127},        {"exec", EACCES, 126},
	    {"exec", E2BIG, 125},         {"chdir", ENOENT, 125},
	    {"chdir", EACCES, 125},       {"join cgroup", EACCES, 125},
	    {"switch user", EPERM, 125},  {"load seccomp filter", EINVAL, 125},
	    {"set up stdio", EBADF, 125},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct corral__facts f = {
		    .spawned = false, .spawn_errno = cases[i].err, .spawn_step = cases[i].step};
		corral_result_t r;
		corral__classify(&f, &r);
		assert_int_equal(r.outcome, CORRAL_SPAWN_ERROR);
		assert_string_equal(r.spawn_step, cases[i].step);
		assert_int_equal(r.spawn_errno, cases[i].err);
		if (!strcmp(cases[i].step, "exec")) {
			assert_int_equal(r.status, cases[i].want);
			continue;
		}
		assert_int_equal(r.status, cases[i].want);
	}
}

/* ------------------------------------------------------------ sentences */

static void result_init(corral_result_t *r, uint64_t seq, corral_outcome_t o)
{
	memset(r, 0, sizeof(*r));
	r->seq = seq;
	r->attempt = 1;
	r->outcome = o;
	r->exit_code = -1;
	r->memory_max = CORRAL_UNLIMITED;
	r->out.fd = r->err.fd = r->fn_result.fd = -1;
}

static void check_sentence(const corral_result_t *r, const char *want)
{
	char buf[512];
	int n = corral_result_sentence(r, buf, sizeof(buf));

	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void sentences(void **state)
{
	corral_result_t r;

	(void)state;
	result_init(&r, 2, CORRAL_OOM);
	r.memory_max = r.memory_peak = 64 * MiB;
	r.signal = SIGKILL;
	r.oom_kills = 1;
	check_sentence(&r, "task 2 was OOM-killed: it exceeded its memory limit "
	                   "(memory.max 64.0 MiB, peak 64.0 MiB)");
	corral__sentence(&r, 0);
	assert_string_equal(r.sentence, "task 2 was OOM-killed: it exceeded its memory limit "
	                                "(memory.max 64.0 MiB, peak 64.0 MiB)");

	result_init(&r, 1, CORRAL_OK);
	r.exit_code = 0;
	check_sentence(&r, "task 1 succeeded");
	r.pids_limit_hit = true; /* not mentioned for a success */
	check_sentence(&r, "task 1 succeeded");

	result_init(&r, 3, CORRAL_EXIT);
	r.exit_code = 3;
	check_sentence(&r, "task 3 failed: it exited with status 3");
	r.pids_limit_hit = true;
	check_sentence(&r, "task 3 failed: it exited with status 3 (it hit its pids limit)");
	r.attempt = 2;
	check_sentence(&r, "task 3 failed: it exited with status 3 (it hit its pids limit) "
	                   "[attempt 2]");

	result_init(&r, 4, CORRAL_OOM_OUTSIDE);
	r.memory_max = 1024 * MiB;
	r.memory_peak = 300 * MiB;
	check_sentence(&r, "task 4 was OOM-killed below its own limit (memory.max 1.0 GiB, peak "
	                   "300.0 MiB): an ancestor cgroup's limit or the host ran out of memory");
	r.memory_max = CORRAL_UNLIMITED;
	r.memory_peak = 0;
	check_sentence(&r, "task 4 was OOM-killed below its own limit (memory.max max, peak "
	                   "unknown): an ancestor cgroup's limit or the host ran out of memory");

	result_init(&r, 5, CORRAL_SUBPROCESS_OOM);
	r.memory_max = 64 * MiB;
	r.exit_code = 0;
	r.oom_kills = 1;
	check_sentence(&r, "task 5 lost a subprocess to the OOM killer (1 process killed; "
	                   "memory.max 64.0 MiB, peak unknown); its main process then still "
	                   "exited 0, so its output may be incomplete");
	r.exit_code = 2;
	r.oom_kills = 3;
	r.memory_peak = 64 * MiB;
	check_sentence(&r, "task 5 lost a subprocess to the OOM killer (3 processes killed; "
	                   "memory.max 64.0 MiB, peak 64.0 MiB); its main process then exited "
	                   "with status 2");
	r.exit_code = -1;
	r.signal = SIGPIPE;
	r.oom_kills = 2;
	check_sentence(&r, "task 5 lost a subprocess to the OOM killer (2 processes killed; "
	                   "memory.max 64.0 MiB, peak 64.0 MiB); its main process then died of "
	                   "SIGPIPE");

	result_init(&r, 6, CORRAL_TIMEOUT);
	r.wall_s = 2.0;
	check_sentence(&r, "task 6 timed out: corral killed it after 2.0s");
	r.wall_s = 90.0;
	check_sentence(&r, "task 6 timed out: corral killed it after 1.5m");
	r.wall_s = 5400.0;
	check_sentence(&r, "task 6 timed out: corral killed it after 1.5h");

	result_init(&r, 7, CORRAL_SIGNAL);
	r.signal = SIGSEGV;
	check_sentence(&r, "task 7 was killed by signal 11 (SIGSEGV)");
	r.signal = SIGTERM;
	check_sentence(&r, "task 7 was killed by signal 15 (SIGTERM)");
	r.signal = SIGSYS;
	check_sentence(&r, "task 7 was killed by signal 31 (SIGSYS)");
	r.seccomp_kill = true;
	check_sentence(&r, "task 7 was killed by SIGSYS: a system call was blocked by seccomp");

	result_init(&r, 8, CORRAL_SPAWN_ERROR);
	r.spawn_errno = ENOENT;
	r.spawn_step = "exec";
	snprintf(r.command, sizeof(r.command), "nosuchcmd");
	check_sentence(&r, "task 8 could not be started: exec `nosuchcmd`: No such file or "
	                   "directory (not found in PATH)");
	snprintf(r.command, sizeof(r.command), "/bin/nosuchcmd");
	check_sentence(&r, "task 8 could not be started: exec `/bin/nosuchcmd`: No such file or "
	                   "directory");
	r.spawn_errno = EACCES;
	check_sentence(&r, "task 8 could not be started: exec `/bin/nosuchcmd`: Permission denied");
	r.spawn_step = "chdir";
	r.spawn_errno = ENOENT;
	r.command[0] = '\0';
	check_sentence(&r, "task 8 could not be started: chdir: No such file or directory");
	/* A setup step names the command apart, not as if it were the step's
	 * operand. */
	snprintf(r.command, sizeof(r.command), "cat");
	check_sentence(&r, "task 8 could not be started: chdir: No such file or directory "
	                   "(command `cat`)");

	result_init(&r, 9, CORRAL_CANCELLED);
	r.attempt = 0;
	check_sentence(&r, "task 9 was cancelled: the batch halted before it started");
	result_init(&r, 10, CORRAL_ABORTED);
	check_sentence(&r, "task 10 was aborted: the batch halted while it ran");
}

/* corral.h: "Returns the length it needed, like snprintf", and the buffer is
 * always NUL-terminated. */
/* Seeing memory: the OOM killer's victims by name, the ancestor whose limit
 * fired, a host-wide OOM, and a large share of time stalled on memory. */
static void memory_sentences(void **state)
{
	corral_result_t r;
	corral_oom_victim_t v[3] = {
	    {.pid = 1234,
	     .comm = "sort",
	     .anon_rss = 470 * MiB,
	     .file_rss = 10 * MiB,
	     .detailed = true},
	    {.pid = 1235, .comm = "gzip"},
	    {.pid = 1236, .comm = "tee"},
	};

	(void)state;
	result_init(&r, 3, CORRAL_SUBPROCESS_OOM);
	r.memory_max = r.memory_peak = 512 * MiB;
	r.oom_kills = 1;
	r.exit_code = 0;
	r.oom_victims = v;
	r.n_oom_victims = 1;
	r.memory_stall_some = r.memory_stall_full = -1;
	check_sentence(&r, "task 3 lost a subprocess to the OOM killer: sort (pid 1234, 480.0 MiB "
	                   "resident) (memory.max 512.0 MiB, peak 512.0 MiB); its main process "
	                   "then still exited 0, so its output may be incomplete");
	r.outcome = CORRAL_OOM;
	r.n_oom_victims = 3;
	check_sentence(&r, "task 3 was OOM-killed: it exceeded its memory limit (memory.max 512.0 "
	                   "MiB, peak 512.0 MiB); the kernel took sort (pid 1234, 480.0 MiB "
	                   "resident) and 2 more");
	r.outcome = CORRAL_OOM_OUTSIDE;
	r.oom_victims = &v[1];
	r.n_oom_victims = 1;
	snprintf(r.oom_memcg, sizeof(r.oom_memcg), "/jobs.slice");
	check_sentence(&r, "task 3 was OOM-killed below its own limit (memory.max 512.0 MiB, "
	                   "peak 512.0 MiB): an ancestor cgroup's limit fired (/jobs.slice); the "
	                   "kernel took gzip (pid 1235)");
	snprintf(r.oom_memcg, sizeof(r.oom_memcg), "global");
	r.n_oom_victims = 0;
	check_sentence(&r, "task 3 was OOM-killed below its own limit (memory.max 512.0 MiB, "
	                   "peak 512.0 MiB): the host ran out of memory");
	/* 40% of its time stalled: said; 10%: not. */
	result_init(&r, 4, CORRAL_OK);
	r.wall_s = 10;
	r.memory_stall_some = 4;
	check_sentence(&r, "task 4 succeeded (it spent 40% of its time stalled on memory: "
	                   "thrashing against its limit)");
	r.memory_stall_some = 1;
	check_sentence(&r, "task 4 succeeded");
	r.memory_stall_some = -1;
	check_sentence(&r, "task 4 succeeded");
}

static void sentence_truncation(void **state)
{
	corral_result_t r;
	char full[512], small[16];
	int need, got;

	(void)state;
	result_init(&r, 2, CORRAL_OOM);
	r.memory_max = r.memory_peak = 64 * MiB;
	need = corral_result_sentence(&r, full, sizeof(full));
	memset(small, 'x', sizeof(small));
	got = corral_result_sentence(&r, small, sizeof(small));
	assert_int_equal(got, need);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	/* NULL buffer: just the length. */
	assert_int_equal(corral_result_sentence(&r, NULL, 0), need);

	/* A sentence built from several pieces. */
	result_init(&r, 3, CORRAL_EXIT);
	r.exit_code = 3;
	r.pids_limit_hit = true;
	r.attempt = 2;
	need = corral_result_sentence(&r, full, sizeof(full));
	assert_int_equal(need, (int)strlen(full));
	got = corral_result_sentence(&r, small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	assert_int_equal(got, need);
}

/* ------------------------------------------------------------ names, sizes */

static void outcome_names(void **state)
{
	static const char *const want[CORRAL_OUTCOME_COUNT] = {
	    "ok",      "exit",   "oom",         "oom_outside", "subprocess_oom",
	    "timeout", "signal", "spawn_error", "cancelled",   "aborted",
	    "lost"};
	corral_outcome_t o;

	(void)state;
	for (int i = 0; i < CORRAL_OUTCOME_COUNT; i++) {
		const char *n = corral_outcome_name((corral_outcome_t)i);
		assert_non_null(n);
		assert_string_equal(n, want[i]);
		o = CORRAL_OUTCOME_COUNT;
		assert_int_equal(corral_outcome_from_name(n, &o), 0);
		assert_int_equal(o, i);
	}
	assert_null(corral_outcome_name(CORRAL_OUTCOME_COUNT));
	assert_null(corral_outcome_name((corral_outcome_t)-1));
	o = CORRAL_EXIT;
	assert_int_equal(corral_outcome_from_name("OK", &o), -EINVAL);
	assert_int_equal(corral_outcome_from_name("oom ", &o), -EINVAL);
	assert_int_equal(corral_outcome_from_name("", &o), -EINVAL);
	assert_int_equal(corral_outcome_from_name(NULL, &o), -EINVAL);
	assert_int_equal(o, CORRAL_EXIT);
}

static void format_size(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(corral_format_size(0, b, sizeof(b)), "0 B");
	assert_string_equal(corral_format_size(512, b, sizeof(b)), "512 B");
	assert_string_equal(corral_format_size(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(corral_format_size(1024, b, sizeof(b)), "1.0 KiB");
	assert_string_equal(corral_format_size(1536, b, sizeof(b)), "1.5 KiB");
	assert_string_equal(corral_format_size(64 * MiB, b, sizeof(b)), "64.0 MiB");
	assert_string_equal(corral_format_size(1536 * MiB, b, sizeof(b)), "1.5 GiB");
	assert_string_equal(corral_format_size(2ull << 40, b, sizeof(b)), "2.0 TiB");
	assert_string_equal(corral_format_size(3ull << 50, b, sizeof(b)), "3.0 PiB");
	assert_string_equal(corral_format_size(8ull << 60, b, sizeof(b)), "8.0 EiB");
	assert_string_equal(corral_format_size(CORRAL_UNLIMITED, b, sizeof(b)), "max");
	assert_string_equal(corral_format_size(CORRAL_UNLIMITED - 1, b, sizeof(b)), "16.0 EiB");
	assert_string_equal(corral_format_size(MiB - 1, b, sizeof(b)), "1.0 MiB");
	/* Truncated into a small buffer, still terminated. */
	assert_string_equal(corral_format_size(64 * MiB, b, 5), "64.0");
}

/* ------------------------------------------------------------ counters on fake cgroup dirs */

struct fake {
	char *root;               /* temp dir: the batch directory */
	struct corral__batch b;   /* dirfd opened on root */
	struct corral__cg_task t; /* dirfd opened on root/t1-a1 */
	char pids_root[4200];     /* v1: a second "hierarchy" for pids */
};

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->root = tl_tmpdir();
	tl_mkdir_p(f->root, "t1-a1");
	tl_mkdir_p(f->root, "pids/t1-a1");
	snprintf(f->pids_root, sizeof(f->pids_root), "%s/pids", f->root);
	f->b.dirfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->b.pids_dirfd = -1;
	assert_true(f->b.dirfd >= 0);
	snprintf(f->b.dir, sizeof(f->b.dir), "%s", f->root);
	corral__cg_task_init(&f->t);
	snprintf(f->t.name, sizeof(f->t.name), "t1-a1");
	f->t.dirfd = openat(f->b.dirfd, "t1-a1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->t.dirfd >= 0);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	corral__cg_task_close(&f->t);
	close(f->b.dirfd);
	tl_rm_rf(f->root);
	free(f->root);
	free(f);
	return 0;
}

static void set_file(struct fake *f, const char *name, const char *content)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "t1-a1/%s", name);
	tl_write(f->root, rel, content);
}

static void v2_counters(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;

	f->b.mode = CORRAL_CG_V2;
	f->b.events_local = true;
	f->b.memory_peak = true;
	f->b.has_pids = true;
	set_file(f, "memory.events.local",
	         "low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\noom_group_kill 1\n");
	/* The hierarchical file counts descendants too; it must not be read
	 * when the local one exists. */
	set_file(f, "memory.events", "low 0\nhigh 0\nmax 40\noom 5\noom_kill 9\n");
	set_file(f, "memory.peak", "67108864\n");
	set_file(f, "pids.events", "max 3\n");
	set_file(f, "cpu.stat",
	         "usage_usec 3000\nuser_usec 1000\nsystem_usec 2000\n"
	         "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");

	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	/* One group kill counts the victim twice (cgroup_v2.c): 2 - 1. */
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.peak, 64 * MiB);
	assert_int_equal(c.pids_max_hits, 3);
	assert_true(c.have_cpu);
	assert_int_equal(c.user_usec, 1000);
	assert_int_equal(c.system_usec, 2000);

	/* Without memory.events.local (before 5.3): the hierarchical file. */
	f->b.events_local = false;
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 5);
	assert_int_equal(c.oom_kill, 9);

	/* No memory.peak (before 5.19), no pids controller: zeros, even
	 * though the files are there. */
	f->b.events_local = true;
	f->b.memory_peak = false;
	f->b.has_pids = false;
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.peak, 0);
	assert_int_equal(c.pids_max_hits, 0);
	assert_int_equal(c.oom, 1);

	/* "max" alone means reclaim at the limit, not an OOM. */
	set_file(f, "memory.events.local", "low 0\nhigh 0\nmax 77\noom 0\noom_kill 0\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 0);

	/* oom_kill without oom: killed for somebody else's limit. */
	set_file(f, "memory.events.local", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 1);

	/* cpu.stat without user/system: no CPU times. */
	set_file(f, "cpu.stat", "usage_usec 3000\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_false(c.have_cpu);
}

static void v2_counters_missing_files(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;

	f->b.mode = CORRAL_CG_V2;
	f->b.events_local = true;
	f->b.memory_peak = true;
	f->b.has_pids = true;
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 0);
	assert_int_equal(c.peak, 0);
	assert_int_equal(c.pids_max_hits, 0);
	assert_false(c.have_cpu);
	/* Garbage is ignored, not misread. */
	set_file(f, "memory.events.local", "oom x\noom_kill 1x\n");
	set_file(f, "memory.peak", "lots\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 0);
	assert_int_equal(c.peak, 0);
}

static void v1_files(struct fake *f, const char *oom_control, const char *peak, const char *failcnt,
                     const char *memsw_failcnt)
{
	set_file(f, "memory.oom_control", oom_control);
	set_file(f, "memory.max_usage_in_bytes", peak);
	set_file(f, "memory.failcnt", failcnt);
	set_file(f, "memory.memsw.failcnt", memsw_failcnt);
}

static void v1_counters(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;
	char peak[64];

	f->b.mode = CORRAL_CG_HYBRID;
	f->b.memory_peak = true;
	f->b.swap_accounting = true; /* a memsw limit needs it */
	f->t.limit_mem = 64 * MiB;
	f->t.limit_memsw = 64 * MiB;

	/* The 6.x shape: killed at the limit, neither failcnt moved, but the
	 * peak is the limit. */
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "67108864\n", "0\n", "0\n");
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.peak, 64 * MiB);
	assert_int_equal(c.pids_max_hits, 0);
	assert_false(c.have_cpu);

	/* failcnt rose, peak well below (reclaimed). */
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "10485760\n", "5\n", "0\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	assert_int_equal(c.oom_kill, 2);
	assert_int_equal(c.peak, 10 * MiB);

	/* Only memsw.failcnt rose. */
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "10485760\n", "0\n", "2\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	/* ... which does not count without a memsw limit of ours. */
	f->t.limit_memsw = CORRAL_UNLIMITED;
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 1);
	f->t.limit_memsw = 64 * MiB;

	/* Killed far below the limit, no failcnt: from outside. */
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "10485760\n", "0\n", "0\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 1);

	/* Within one page of the limit counts as reaching it; one byte more
	 * than a page below does not. */
	snprintf(peak, sizeof(peak), "%llu\n", (unsigned long long)(64 * MiB - 4096));
	v1_files(f, "oom_kill 0\n", peak, "0\n", "0\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	snprintf(peak, sizeof(peak), "%llu\n", (unsigned long long)(64 * MiB - 4097));
	v1_files(f, "oom_kill 0\n", peak, "0\n", "0\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);

	/* No own limit: any OOM kill came from outside, whatever failcnt says. */
	f->t.limit_mem = f->t.limit_memsw = CORRAL_UNLIMITED;
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "67108864\n", "9\n", "9\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.peak, 64 * MiB);

	/* Before 4.13 memory.oom_control has no oom_kill line. */
	f->t.limit_mem = 64 * MiB;
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\n", "67108864\n", "1\n", "0\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom_kill, 0);
	assert_int_equal(c.oom, 1);
}

static void v1_counters_pids(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;

	f->b.mode = CORRAL_CG_V1;
	f->b.has_pids = true;
	f->b.pids_dirfd = open(f->pids_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->b.pids_dirfd >= 0);
	f->t.limit_mem = 64 * MiB;
	f->t.limit_memsw = CORRAL_UNLIMITED;
	v1_files(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "4096\n", "0\n", "0\n");
	tl_write(f->pids_root, "t1-a1/pids.events", "max 4\n");

	/* Without the task's pids dir: no pids counter. */
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.pids_max_hits, 0);
	f->t.pids_dirfd = openat(f->b.pids_dirfd, "t1-a1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->t.pids_dirfd >= 0);
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.pids_max_hits, 4);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 0);
	assert_int_equal(c.peak, 4096);
	close(f->b.pids_dirfd);
	f->b.pids_dirfd = -1;
}

/* Does any process remain? v2 reads cgroup.events (kept open), v1 the
 * cgroup.procs of the memory and the pids cgroup. */
static void populated(void **state)
{
	struct fake *f = *state;

	f->b.mode = CORRAL_CG_V2;
	assert_int_equal(corral__cg_v2_ops.populated(&f->b, &f->t), -ENOENT);
	set_file(f, "cgroup.events", "populated 1\nfrozen 0\n");
	assert_int_equal(corral__cg_v2_ops.populated(&f->b, &f->t), 1);
	assert_true(f->t.events_fd >= 0);
	/* The same open file, rewritten in place (as the kernel does). */
	set_file(f, "cgroup.events", "populated 0\nfrozen 0\n");
	assert_int_equal(corral__cg_v2_ops.populated(&f->b, &f->t), 0);
	set_file(f, "cgroup.events", "frozen 0\n");
	assert_int_equal(corral__cg_v2_ops.populated(&f->b, &f->t), -EINVAL);
	corral__cg_task_close(&f->t);
	assert_int_equal(f->t.events_fd, -1);
	f->t.dirfd = openat(f->b.dirfd, "t1-a1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->t.dirfd >= 0);

	f->b.mode = CORRAL_CG_V1;
	set_file(f, "cgroup.procs", "");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	set_file(f, "cgroup.procs", "1234\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	/* More pids than the read buffer holds. */
	set_file(f, "cgroup.procs",
	         "100001\n100002\n100003\n100004\n100005\n100006\n"
	         "100007\n100008\n100009\n100010\n100011\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	/* Empty memory cgroup, but a process left in the pids cgroup. */
	set_file(f, "cgroup.procs", "");
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "77\n");
	char p[4300];
	snprintf(p, sizeof(p), "%s/t1-a1", f->pids_root);
	f->t.pids_dirfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->t.pids_dirfd >= 0);
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	/* pids.current 0 of the pids twin spares the read of its list... */
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "77\n");
	tl_write(f->pids_root, "t1-a1/pids.current", "0\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	assert_true(f->t.empty);
	/* ... more than 0 does not make it populated: zombies count there,
	 * and the list (which leaves them out) decides. */
	tl_write(f->pids_root, "t1-a1/pids.current", "2\n");
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "77\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	assert_false(f->t.empty);
	/* The memory cgroup's own list is read whatever pids.current says. */
	tl_write(f->pids_root, "t1-a1/pids.current", "0\n");
	set_file(f, "cgroup.procs", "1234\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
}

/* A recycled v1 cgroup: every count is a delta from the baselines taken when
 * it was readied. The counters of a read that found the cgroup already empty
 * are those baselines (prepare() need not read again); after a read that came
 * before the cgroup was empty, prepare() reads them anew. */
/* v2 recycling (cgroup_v2.c): what may serve again, the peak reset through
 * the fd it is then read through, every counter a delta from the baselines
 * prepare() took, and only the limits that differ rewritten. */
static void v2_recycle_baselines(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;
	corral_error_t err;
	struct corral__limits l = {.memory_max = 32 * MiB, .swap_max = 0, .pids_max = 16};
	uint64_t some, full;
	char buf[64];
	struct stat st;

	f->b.mode = CORRAL_CG_V2;
	f->b.events_local = f->b.memory_peak = f->b.peak_reset = true;
	f->b.has_pids = f->b.has_cpu = f->b.oom_group = f->b.swap_accounting = true;
	f->t.created = true;
	for (const char *const *n =
	         (const char *const[]){"memory.max", "memory.swap.max", "memory.oom.group",
	                               "pids.max", "cpu.max", NULL};
	     *n; n++)
		set_file(f, *n, ""); /* written without O_TRUNC: empty to read back exactly */
	/* Attempt 1 (a fresh cgroup) ends: 2 OOM kills of one group kill. */
	set_file(f, "cgroup.events", "populated 0\nfrozen 0\n");
	set_file(f, "pids.current", "0\n");
	set_file(f, "memory.current", "40960\n");
	set_file(f, "memory.events.local", "oom 1\noom_kill 2\noom_group_kill 1\n");
	set_file(f, "memory.peak", "33554432\n");
	set_file(f, "pids.events", "max 3\n");
	set_file(f, "cpu.stat", "usage_usec 3000\nuser_usec 1000\nsystem_usec 2000\n");
	set_file(f, "memory.pressure",
	         "some avg10=0.00 avg60=0.00 avg300=0.00 total=500\n"
	         "full avg10=0.00 avg60=0.00 avg300=0.00 total=200\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.peak, 32 * MiB);

	/* What may not serve again (the link count as kernfs keeps it; some
	 * filesystems under the fake tree, btrfs, say 1). */
	assert_int_equal(fstat(f->t.dirfd, &st), 0);
	if (st.st_nlink == 2) {
		assert_true(corral__cg_v2_ops.recyclable(&f->b, &f->t));
		tl_mkdir_p(f->root, "t1-a1/sub"); /* a sub-cgroup */
		assert_false(corral__cg_v2_ops.recyclable(&f->b, &f->t));
		char sub[PATH_MAX];
		snprintf(sub, sizeof(sub), "%s/t1-a1/sub", f->root);
		assert_int_equal(rmdir(sub), 0);
		assert_true(corral__cg_v2_ops.recyclable(&f->b, &f->t));
	}
	set_file(f, "cgroup.events", "populated 1\nfrozen 0\n");
	assert_false(corral__cg_v2_ops.recyclable(&f->b, &f->t));
	set_file(f, "cgroup.events", "populated 0\nfrozen 0\n");
	set_file(f, "pids.current", "2\n"); /* zombies */
	assert_false(corral__cg_v2_ops.recyclable(&f->b, &f->t));
	set_file(f, "pids.current", "0\n");
	set_file(f, "memory.current", "2097152\n"); /* 2 MiB left charged */
	assert_false(corral__cg_v2_ops.recyclable(&f->b, &f->t));
	set_file(f, "memory.current", "40960\n");
	f->b.peak_reset = false; /* before 6.12 */
	assert_false(corral__cg_v2_ops.recyclable(&f->b, &f->t));
	f->b.peak_reset = true;

	/* Readied: the peak reset through its own fd, the baselines taken. */
	assert_int_equal(corral__cg_v2_ops.prepare(&f->b, &f->t), 0);
	assert_true(f->t.prepared);
	assert_true(f->t.cache[CGF_MAX_USAGE] >= 0);
	assert_true(corral__read_at(f->t.dirfd, "memory.peak", buf, sizeof(buf)) > 0);
	assert_memory_equal(buf, "reset\n", 6);
	/* Claimed with limits unlike the fresh cgroup's defaults. */
	assert_int_equal(corral__cg_v2_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_false(f->t.prepared);
	assert_int_equal(f->t.uses, 1); /* the fake was never create()d */
	assert_true(corral__read_value_at(f->t.dirfd, "memory.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "33554432");
	assert_true(corral__read_value_at(f->t.dirfd, "pids.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "16");

	/* Attempt 2: one OOM kill more, no own OOM, its own peak, pids and
	 * CPU since the baselines. */
	set_file(f, "memory.events.local", "oom 1\noom_kill 3\noom_group_kill 1\n");
	set_file(f, "memory.peak", "4096\n"); /* the same file: the kept fd reads it */
	set_file(f, "pids.events", "max 5\n");
	set_file(f, "cpu.stat", "usage_usec 3600\nuser_usec 1500\nsystem_usec 2100\n");
	set_file(f, "memory.pressure",
	         "some avg10=0.00 avg60=0.00 avg300=0.00 total=800\n"
	         "full avg10=0.00 avg60=0.00 avg300=0.00 total=260\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.peak, 4096);
	assert_int_equal(c.pids_max_hits, 2);
	assert_true(c.have_cpu);
	assert_int_equal(c.user_usec, 500);
	assert_int_equal(c.system_usec, 100);
	assert_int_equal(corral__cg_v2_ops.pressure(&f->b, &f->t, &some, &full), 0);
	assert_int_equal(some, 300);
	assert_int_equal(full, 60);
	/* A group kill in this attempt: its victim counted twice, once. */
	set_file(f, "memory.events.local", "oom 2\noom_kill 6\noom_group_kill 2\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 1);
	assert_int_equal(c.oom_kill, 3);

	/* Attempt 3: the same limits are not written again, others are. */
	assert_int_equal(corral__cg_v2_ops.prepare(&f->b, &f->t), 0);
	set_file(f, "pids.max", "untouched"); /* a rewrite would show over it */
	l.memory_max = 64 * MiB;
	l.oom_group = true;
	l.cpus = 0.5;
	assert_int_equal(corral__cg_v2_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_true(corral__read_value_at(f->t.dirfd, "pids.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "untouched");
	assert_true(corral__read_value_at(f->t.dirfd, "memory.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "67108864");
	assert_true(corral__read_value_at(f->t.dirfd, "memory.oom.group", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "1");
	assert_true(corral__read_value_at(f->t.dirfd, "cpu.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "50000 100000");
	/* And back: no quota is "max", no group kill 0. */
	assert_int_equal(corral__cg_v2_ops.prepare(&f->b, &f->t), 0);
	l.oom_group = false;
	l.cpus = 0;
	set_file(f, "cpu.max", "");
	assert_int_equal(corral__cg_v2_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_true(corral__read_value_at(f->t.dirfd, "cpu.max", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "max 100000");
	assert_true(corral__read_value_at(f->t.dirfd, "memory.oom.group", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "0");

	/* A lower memory.max: the write may count an "oom" of the empty
	 * cgroup (what is left charged cannot go below it), which the fake
	 * shows before the write. The baselines come after it. */
	assert_int_equal(corral__cg_v2_ops.prepare(&f->b, &f->t), 0);
	set_file(f, "memory.events.local", "oom 3\noom_kill 6\noom_group_kill 2\n");
	l.memory_max = 1 * MiB;
	set_file(f, "memory.max", "");
	assert_int_equal(corral__cg_v2_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom, 0);
	assert_int_equal(c.oom_kill, 0);
}

static void v1_recycle_baselines(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;
	corral_error_t err;
	struct corral__limits l = {
	    .memory_max = 64 * MiB, .swap_max = 0, .pids_max = CORRAL_UNLIMITED};
	char buf[64];

	f->b.mode = CORRAL_CG_HYBRID;
	f->b.swap_accounting = true;
	f->b.cache_fds = true; /* counter files kept open: rewritten in place below */
	f->t.created = true;
	f->t.limit_mem = f->t.limit_memsw = 64 * MiB;
	f->t.limit_pids = CORRAL_UNLIMITED;
	f->t.procs_fd = 0; /* made whole (recyclable() wants the fds) */
	set_file(f, "memory.usage_in_bytes", "40960\n");
	set_file(f, "memory.limit_in_bytes", "67108864\n");
	set_file(f, "memory.memsw.limit_in_bytes", "67108864\n");

	/* Attempt 1 ends: empty, then read. */
	v1_files(f, "oom_kill 3\n", "1048576\n", "7\n", "2\n");
	set_file(f, "cgroup.procs", "");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_true(f->t.settled);
	assert_int_equal(c.oom_kill, 3);
	assert_int_equal(c.oom, 1); /* failcnt 7 from a fresh cgroup's 0 */
	/* recyclable() counts sub-cgroups by the link count, as kernfs keeps
	 * it; some filesystems under the fake tree (btrfs) say 1. */
	struct stat st;
	assert_int_equal(fstat(f->t.dirfd, &st), 0);
	if (st.st_nlink == 2)
		assert_true(corral__cg_v1_ops.recyclable(&f->b, &f->t));
	assert_int_equal(corral__cg_v1_ops.prepare(&f->b, &f->t), 0);
	assert_true(f->t.prepared);
	assert_true(corral__read_at(f->t.dirfd, "memory.max_usage_in_bytes", buf, sizeof(buf)) > 0);
	assert_int_equal(buf[0], '0'); /* the peak was reset */
	assert_int_equal(corral__cg_v1_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_false(f->t.prepared);
	assert_false(f->t.settled);
	assert_int_equal(f->t.uses, 1);

	/* Attempt 2: one more OOM kill, no failcnt change, peak low. */
	v1_files(f, "oom_kill 4\n", "4096\n", "7\n", "2\n");
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom_kill, 1);
	assert_int_equal(c.oom, 0); /* killed from outside */
	assert_false(f->t.settled); /* no populated() = 0 before this read */

	/* Attempt 2 ends with a process left: read, then it goes. */
	set_file(f, "cgroup.procs", "1234\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_false(f->t.settled);
	set_file(f, "cgroup.procs", "");
	v1_files(f, "oom_kill 6\n", "4096\n", "9\n", "2\n"); /* it was OOM-killed too */
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	assert_false(f->t.settled); /* the read came before */
	assert_int_equal(corral__cg_v1_ops.prepare(&f->b, &f->t), 0);
	assert_int_equal(corral__cg_v1_ops.reuse(&f->b, &f->t, &l, &err), 0);
	/* Attempt 3 starts from the values read by prepare(): nothing new. */
	assert_int_equal(corral__cg_v1_ops.read(&f->b, &f->t, &c), 0);
	assert_int_equal(c.oom_kill, 0);
	assert_int_equal(c.oom, 0);
	/* reuse() without prepare() readies it itself. */
	assert_int_equal(corral__cg_v1_ops.reuse(&f->b, &f->t, &l, &err), 0);
	assert_int_equal(f->t.uses, 3);
	f->t.procs_fd = -1;
}

/* A pids twin that still has pids charged (zombies of a killed fork bomb
 * wait in pids.current for their reaper) is not recycled: the next task
 * would start with fewer pids than --pids. */
static void v1_recyclable_pids(void **state)
{
	struct fake *f = *state;
	char p[4300];
	struct stat st;

	f->b.mode = CORRAL_CG_HYBRID;
	f->b.has_pids = true;
	f->b.pids_dirfd = open(f->pids_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->b.pids_dirfd >= 0);
	snprintf(p, sizeof(p), "%s/t1-a1", f->pids_root);
	f->t.pids_dirfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->t.pids_dirfd >= 0);
	f->t.procs_fd = 0; /* made whole */
	f->t.pids_procs_fd = 0;
	set_file(f, "memory.usage_in_bytes", "40960\n");
	assert_int_equal(fstat(f->t.dirfd, &st), 0);
	bool kernfs_links = st.st_nlink == 2; /* see v1_recycle_baselines */

	tl_write(f->pids_root, "t1-a1/pids.current", "0\n");
	assert_int_equal(corral__cg_v1_ops.recyclable(&f->b, &f->t), kernfs_links);
	tl_write(f->pids_root, "t1-a1/pids.current", "3\n");
	assert_false(corral__cg_v1_ops.recyclable(&f->b, &f->t));
	tl_write(f->pids_root, "t1-a1/pids.current", "garbage\n");
	assert_false(corral__cg_v1_ops.recyclable(&f->b, &f->t));
	char file[4400]; /* unreadable: not recycled either */
	snprintf(file, sizeof(file), "%s/pids.current", p);
	unlink(file);
	assert_false(corral__cg_v1_ops.recyclable(&f->b, &f->t));
	/* A populated() that found the cgroup empty with pids.current 0 makes
	 * a second read needless: nothing was left that could fork. */
	tl_write(f->pids_root, "t1-a1/pids.current", "0\n");
	tl_write(f->pids_root, "t1-a1/cgroup.procs", "");
	set_file(f, "cgroup.procs", "");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 0);
	assert_true(f->t.pids_clear);
	tl_write(f->pids_root, "t1-a1/pids.current", "3\n"); /* not read now */
	assert_int_equal(corral__cg_v1_ops.recyclable(&f->b, &f->t), kernfs_links);
	/* Not when the memory cgroup still has a process. */
	tl_write(f->pids_root, "t1-a1/pids.current", "0\n");
	set_file(f, "cgroup.procs", "1234\n");
	assert_int_equal(corral__cg_v1_ops.populated(&f->b, &f->t), 1);
	assert_false(f->t.pids_clear);
	f->t.procs_fd = f->t.pids_procs_fd = -1;
	close(f->b.pids_dirfd);
	f->b.pids_dirfd = -1;
}

/* Counters -> facts -> outcome, as the executor wires them
 * (own_limit_hit = counters.oom > 0). */
static void counters_to_outcome(void **state)
{
	struct fake *f = *state;
	struct corral__counters c;
	struct corral__facts facts;
	corral_result_t r;

	f->b.mode = CORRAL_CG_V2;
	f->b.events_local = true;
	set_file(f, "memory.events.local", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	memset(&facts, 0, sizeof(facts));
	facts.spawned = true;
	facts.term_signal = SIGKILL;
	facts.oom_kills = c.oom_kill;
	facts.own_limit_hit = c.oom > 0;
	corral__classify(&facts, &r);
	assert_int_equal(r.outcome, CORRAL_OOM);
	assert_int_equal(r.status, 137);

	set_file(f, "memory.events.local", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n");
	assert_int_equal(corral__cg_v2_ops.read(&f->b, &f->t, &c), 0);
	facts.oom_kills = c.oom_kill;
	facts.own_limit_hit = c.oom > 0;
	corral__classify(&facts, &r);
	assert_int_equal(r.outcome, CORRAL_OOM_OUTSIDE);
	assert_int_equal(r.status, 137);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(classify_table),
	    cmocka_unit_test(classify_table_covers_outcomes),
	    cmocka_unit_test(spawn_status),
	    cmocka_unit_test(spawn_error_setup_steps),
	    cmocka_unit_test(sentences),
	    cmocka_unit_test(sentence_truncation),
	    cmocka_unit_test(memory_sentences),
	    cmocka_unit_test(outcome_names),
	    cmocka_unit_test(format_size),
	    cmocka_unit_test_setup_teardown(v2_counters, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v2_counters_missing_files, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v1_counters, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v1_counters_pids, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(populated, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v1_recycle_baselines, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v2_recycle_baselines, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(v1_recyclable_pids, fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(counters_to_outcome, fake_setup, fake_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
