/* capture.h - collect a task's output from a pipe, in memory up to a small
 * threshold, then in an unlinked temp file: never unbounded memory. */
#ifndef CORRAL_CAPTURE_H
#define CORRAL_CAPTURE_H

#include "internal.h"

struct corral__capture {
	int rfd;   /* read end (non-blocking, CLOEXEC), -1 after EOF */
	char *buf; /* in-memory part */
	size_t len, cap;
	int file_fd;      /* temp file once spilled, else -1 */
	uint64_t total;   /* bytes received */
	uint64_t limit;   /* stop reading beyond this (CORRAL_UNLIMITED = none) */
	bool overflow;    /* limit reached: the read end was closed */
	int error;        /* first I/O error (errno), 0 if none */
	bool discarding;  /* the spill file failed (no space, ...): the rest is read
	                     and dropped, so the task is not killed by SIGPIPE */
	uint64_t dropped; /* bytes read and dropped */
	int epfd;         /* epoll set rfd is registered in, or -1: closing rfd
	                     removes it from there first, as a fork()ed child may hold
	                     a copy of the pipe and keep a stale registration alive */
	bool grow_tried;  /* a heavy writer's pipe was (or could not be) grown */
	unsigned grown;   /* pages this pipe holds of the process-wide budget */
};

void corral__capture_init(struct corral__capture *c);
/* Create the pipe; *wfd receives the child's end (CLOEXEC). */
int corral__capture_open(struct corral__capture *c, int *wfd, corral_error_t *err);
/* Read what is available. Returns 1 at EOF (rfd closed), 0 if more may come,
 * -errno on error (the capture is then closed). */
int corral__capture_drain(struct corral__capture *c, size_t max_inline, const char *tmpdir);
/* Add bytes that came another way (a worker's OUTPUT frames): in memory up
 * to max_inline, then in the temp file; what no temp file takes is counted
 * as dropped. Returns 0, or -ENOMEM (nothing added). */
int corral__capture_append(struct corral__capture *c, const void *data, size_t len,
                           size_t max_inline, const char *tmpdir);
/* Stop reading: close the read end (a writer then gets EPIPE). */
void corral__capture_close(struct corral__capture *c);
/* Move the collected bytes into *out (the result owns them now). */
void corral__capture_take(struct corral__capture *c, corral_output_t *out);
void corral__capture_free(struct corral__capture *c);

/* Heavy writers' pipes (see capture.c): the pages of pipe capacity corral
 * has added, and the budget they share (0 = the default, from
 * /proc/sys/fs/pipe-user-pages-soft). For tests and diagnostics. */
unsigned long corral__capture_grown_pages(void);
void corral__capture_set_grow_budget(unsigned long pages);

#endif
