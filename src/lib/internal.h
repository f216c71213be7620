/* internal.h - declarations shared by libcorral's source files only.
 *
 * Naming: public symbols are corral_*, internal non-static ones corral__*,
 * static ones <concern>_<verb>. Every function returning int returns >= 0 on
 * success and -errno on failure.
 */
#ifndef CORRAL_INTERNAL_H
#define CORRAL_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"

/* ------------------------------------------------------------- helpers */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED        __attribute__((unused))
#define LIKELY(x)     __builtin_expect(!!(x), 1)
#define UNLIKELY(x)   __builtin_expect(!!(x), 0)

static inline void corral__freep(void *p)
{
	free(*(void **)p);
}
static inline void corral__closep(int *fd)
{
	/* close() is never retried: on Linux the fd is gone even after EINTR. */
	if (*fd >= 0) {
		int saved = errno;
		(void)close(*fd);
		errno = saved;
	}
}
#define cleanup_free  __attribute__((cleanup(corral__freep)))
#define cleanup_close __attribute__((cleanup(corral__closep)))

/* Move ownership out of a cleanup variable. */
static inline int take_fd(int *fd)
{
	int t = *fd;
	*fd = -1;
	return t;
}
static inline void *take_ptr_(void **p)
{
	void *t = *p;
	*p = NULL;
	return t;
}
#define take_ptr(pp) ((__typeof__(*(pp)))take_ptr_((void **)(pp)))

/* close() that keeps errno; for error paths. */
static inline void corral__close(int fd)
{
	corral__closep(&fd);
}

/* ------------------------------------------------------------- errors (error.c) */

/* Fill err (if not NULL) with code and a formatted message; return -code. */
int corral__err(corral_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix err's message with context ("outer: inner"); return rc unchanged. */
int corral__err_wrap(corral_error_t *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------- small I/O (io.c) */

/* Read a whole small file at dirfd/name into buf (NUL-terminated). Returns the
 * length or -errno (-EFBIG if it does not fit). */
ssize_t corral__read_at(int dirfd, const char *name, char *buf, size_t size);
/* pread from offset 0 of an open fd into buf (NUL-terminated). */
ssize_t corral__pread_all(int fd, char *buf, size_t size);
/* Single-value cgroupfs files (io.c says which): one pread, no EOF read. */
ssize_t corral__pread_value(int fd, char *buf, size_t size);
ssize_t corral__read_value_at(int dirfd, const char *name, char *buf, size_t size);
ssize_t corral__read_value_cached(int *slot, int dirfd, const char *name, int mode, char *buf,
                                  size_t size);
/* Write the string s to dirfd/name (O_WRONLY, no O_CREAT). Returns 0 or -errno. */
int corral__write_at(int dirfd, const char *name, const char *s);
/* write() all of buf, retrying EINTR and short writes. */
int corral__write_all(int fd, const void *buf, size_t len);
/* Monotonic and realtime clocks in ns. */
uint64_t corral__now_ns(void);
double corral__wall_now(void);

/* ------------------------------------------------------------- parsers (parse.c) */

/* Find "key value" in a flat-keyed file (memory.events, memory.oom_control,
 * pids.events, cpu.stat, cgroup.events). Exact key match, line by line.
 * Returns 0 and *out, -ENOENT when the key is missing, -EINVAL when the value
 * is malformed. */
int corral__parse_keyed(const char *text, const char *key, uint64_t *out);
/* Parse a single number or "max" (CORRAL_UNLIMITED) with optional newline. */
int corral__parse_u64_or_max(const char *text, uint64_t *out);

/* One line of /proc/self/cgroup: "id:controllers:path". */
struct corral__proc_cgroup {
	char v2_path[4096];     /* the "0::" line, "" if none */
	char memory_path[4096]; /* the v1 line listing "memory", "" if none */
	char pids_path[4096];   /* the v1 line listing "pids", "" if none */
	bool has_v2, has_memory_v1, has_pids_v1;
};
int corral__parse_proc_cgroup(const char *text, struct corral__proc_cgroup *out);

/* A cgroup mount from /proc/self/mountinfo. */
struct corral__cg_mount {
	char mount_point[4096];
	char root[4096];   /* the root of the mount within its hierarchy ("/" normally) */
	bool v2;           /* cgroup2 */
	bool memory, pids; /* v1 mount carrying these controllers */
	bool read_only;
	bool nsdelegate;
};
/* Parse mountinfo text and report the cgroup2 mount and the v1 memory and
 * pids mounts (the first of each). Returns 0. */
struct corral__mounts {
	struct corral__cg_mount v2, memory, pids;
	bool has_v2, has_memory, has_pids;
	int n_cgroup_mounts; /* every cgroup/cgroup2 mount, for the sandbox */
};
int corral__parse_mountinfo(const char *text, struct corral__mounts *out);

/* Every cgroup/cgroup2 mount point in mountinfo text (at most max). */
int corral__parse_cgroup_mount_points(const char *text, char (*out)[4096], int max);

/* Does a space-separated controller list (cgroup.controllers) contain name? */
bool corral__list_has(const char *list, const char *name);

/* One record of /dev/kmsg ("prio,seq,ts,flags;message\n..."): the two lines
 * of the kernel's OOM report. The task's name (comm) is whatever it set, up
 * to 15 bytes: the parser reads the fixed fields around it from the right. */
enum corral__kmsg_kind {
	KMSG_NONE,
	KMSG_OOM_KILL, /* oom-kill:...,oom_memcg=...,task_memcg=...,task=...,pid=... */
	KMSG_KILLED    /* ...: Killed process PID (COMM) total-vm:... */
};
struct corral__kmsg_oom {
	enum corral__kmsg_kind kind;
	int pid;
	char comm[16];
	char task_memcg[512]; /* KMSG_OOM_KILL */
	char oom_memcg[512];  /* KMSG_OOM_KILL: where the limit fired ("" if global) */
	bool global;          /* KMSG_OOM_KILL: a host-wide OOM */
	uint64_t total_vm, anon_rss, file_rss, shmem_rss; /* KMSG_KILLED, bytes */
	int oom_score_adj;
};
/* 0 with *ev, -ENOENT for any other record, -EINVAL for a malformed one. */
int corral__parse_kmsg_oom(const char *rec, size_t len, struct corral__kmsg_oom *ev);

/* A pressure file (memory.pressure): the "total=" of its some and full lines,
 * in microseconds. -ENOENT when neither is there. */
int corral__parse_psi(const char *text, uint64_t *some_us, uint64_t *full_us);

#endif /* CORRAL_INTERNAL_H */
