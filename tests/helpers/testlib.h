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

#endif
