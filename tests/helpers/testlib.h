/* testlib.h - helpers shared by the unit and integration tests. */
#ifndef CORRAL_TESTLIB_H
#define CORRAL_TESTLIB_H

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "corral.h"

/* Print "SKIPPED: <why>" on stderr and exit 77 (ctest's SKIP_RETURN_CODE). */
__attribute__((noreturn, format(printf, 1, 2))) void tl_skip(const char *fmt, ...);

/* Temp directories (fake cgroupfs trees). */
char *tl_tmpdir(void);           /* mkdtemp under $TMPDIR; free() the result */
void tl_rm_rf(const char *path); /* remove a tree (never follows symlinks) */
/* Create dir/rel (and its parents) and write content into it. */
void tl_write(const char *dir, const char *rel, const char *content);
void tl_mkdir_p(const char *dir, const char *rel);

/* A private parent cgroup beneath this process's own cgroup, created for one
 * test and removed by tl_parent_destroy(). path is the cgroup path to pass as
 * corral_options_t.cgroup_parent; dir its directory (memory hierarchy on v1). */
struct tl_parent {
	corral_cgroup_mode_t mode;
	char path[PATH_MAX];
	char dir[PATH_MAX];
};
/* Exits 77 (SKIPPED) when the host has no usable, writable memory cgroup. */
void tl_parent_create(struct tl_parent *p);
/* Write a control file of the parent (e.g. a memory limit for oom_outside). */
int tl_parent_write(const struct tl_parent *p, const char *file, const char *value);
/* Kill whatever is left, remove the parent; returns how many cgroup
 * directories were left below it before removal (0 = corral cleaned up). */
int tl_parent_destroy(struct tl_parent *p);

/* How many directories named corral-* exist below dir (recursively). */
int tl_count_corral_cgroups(const char *dir);
/* Is pid alive (and not a zombie)? */
bool tl_pid_alive(int pid);

/* Path of the payload helper binary ($CORRAL_PAYLOAD). */
const char *tl_payload(void);

/* ---------------------------------------------------------------- integration
 * Helpers of the integration tests of the executor (tests/integration). */

/* Exit 77 (SKIPPED, with the reason) unless a private parent can be created
 * here and the payload program exists; creates and removes one parent. */
void tl_integration_preflight(void);
/* Default options for a test executor beneath p: cgroup_parent = p->path,
 * jobs 1, no memory limit. */
void tl_options(const struct tl_parent *p, corral_options_t *o);
/* Run one batch: a new executor from o, the n tasks submitted in order, run
 * to the end. Every result (every attempt) is copied to res[] in delivery
 * order (up to max; release each with corral_result_release()), the summary
 * to *sum (may be NULL). Returns the number of results; fails the test on
 * any API error. */
int tl_run_batch(const corral_options_t *o, const corral_task_t *tasks, int n, corral_result_t *res,
                 int max, corral_summary_t *sum);
/* The same for one task; *r receives its final result. Returns the number of
 * attempts. */
int tl_run_one(const corral_options_t *o, const corral_task_t *t, corral_result_t *r);
/* The v1 pids directory beneath which corral creates its batch cgroups for
 * cgroup_parent p->path ("" when pids is not on v1). */
void tl_pids_base(const struct tl_parent *p, char *out, size_t size);
/* Directories named corral-<owner>-* directly in dir. */
int tl_count_batches_of(const char *dir, int owner);
/* Remove them (v1 pids hierarchy: kill what is inside, rmdir). */
void tl_remove_batches_of(const char *dir, int owner);
/* CLOCK_MONOTONIC in seconds. */
double tl_now(void);
/* Live (not zombie) processes running the payload binary. */
int tl_count_payload_procs(void);
/* Wait up to timeout_ms until pid is gone (dead or zombie); true if gone. */
bool tl_wait_gone(int pid, int timeout_ms);
/* Compare the bytes of out with the payload's `write` pattern of len bytes;
 * returns the index of the first difference, or -1 when equal. Reads through
 * corral_output_write() into a temp file. */
long long tl_check_pattern(const corral_output_t *out, unsigned long long len);

/* cmocka fixtures: *state becomes a struct tl_parent created for the test;
 * the teardown fails the test when corral left a cgroup below it, a v1 pids
 * batch cgroup of this process, or a live payload process. */
int tl_setup_parent(void **state);
int tl_teardown_parent(void **state);

#endif
