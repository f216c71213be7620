/* capture.c - a task's stdout/stderr (or a function task's result) through a
 * pipe that the executor drains.
 *
 * Why a pipe and not a temp file the task writes itself: pages a task writes
 * into a tmpfs file or memfd are charged to the task's own memory cgroup, so a
 * task printing 100 MB under `-m 64M` would be OOM-killed for its output. The
 * executor drains the pipe into memory up to max_inline bytes, then spills to
 * an unlinked temp file (O_TMPFILE) with splice(), charged to corral.
 *
 * A heavy writer (1 MiB so far) gets a 1 MiB pipe instead of the default
 * 64 KiB: with 16 pages per splice() the writer and corral took turns every
 * 64 KiB, and splicing 1 GiB into the temp file cost corral 1.6-1.8 s of CPU;
 * with 256 pages it costs 0.45-0.55 s, and the task blocks 16x less often.
 * Pipe capacity counts against the user's pipe-user-pages-soft (64 MiB by
 * default; beyond it the user's new pipes get 2 pages), so all of corral's
 * grown pipes together stay within a quarter of it (16 MiB: 17 pipes at
 * once); the rest keep 64 KiB. The pages of a pipe are charged to the
 * writer's memory cgroup, as they are with any pipe: a heavy writer may hold
 * up to 1 MiB of unread output against its limit where it held 64 KiB.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "capture.h"

void corral__capture_init(struct corral__capture *c)
{
	memset(c, 0, sizeof(*c));
	c->rfd = -1;
	c->file_fd = -1;
	c->epfd = -1;
	c->limit = CORRAL_UNLIMITED;
}

int corral__capture_open(struct corral__capture *c, int *wfd, corral_error_t *err)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return corral__err(err, errno, "create an output pipe");
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		corral__close(p[0]);
		corral__close(p[1]);
		return corral__err(err, e, "set the output pipe non-blocking");
	}
	c->rfd = p[0];
	*wfd = p[1];
	return 0;
}

static int open_tmpfile(const char *tmpdir)
{
	char path[4096];
	int fd;

	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd < 0 ? -errno : fd;
	/* Filesystems without O_TMPFILE: a named file, unlinked at once. */
	snprintf(path, sizeof(path), "%s/corral-out-XXXXXX", tmpdir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

#define GROWN_PIPE_SIZE (1 << 20)
#define HEAVY_WRITER    (1u << 20)

static unsigned long grown_pages, grow_budget;

unsigned long corral__capture_grown_pages(void)
{
	return __atomic_load_n(&grown_pages, __ATOMIC_RELAXED);
}

void corral__capture_set_grow_budget(unsigned long pages)
{
	__atomic_store_n(&grow_budget, pages, __ATOMIC_RELAXED);
}

static unsigned long budget(void)
{
	unsigned long b = __atomic_load_n(&grow_budget, __ATOMIC_RELAXED);
	char buf[32];

	if (b)
		return b;
	b = 16384; /* the kernel's default soft limit, also where it has none */
	if (corral__read_at(AT_FDCWD, "/proc/sys/fs/pipe-user-pages-soft", buf, sizeof(buf)) > 0) {
		unsigned long v = strtoul(buf, NULL, 10);
		if (v)
			b = v;
	}
	b /= 4;
	__atomic_store_n(&grow_budget, b, __ATOMIC_RELAXED);
	return b;
}

static void grow_pipe(struct corral__capture *c)
{
	long page = sysconf(_SC_PAGESIZE);
	int cur = fcntl(c->rfd, F_GETPIPE_SZ);

	c->grow_tried = true;
	if (page <= 0 || cur < 0 || cur >= GROWN_PIPE_SIZE)
		return;
	unsigned long add = (unsigned long)(GROWN_PIPE_SIZE - cur) / (unsigned long)page;
	unsigned long was = __atomic_fetch_add(&grown_pages, add, __ATOMIC_RELAXED);
	if (was + add > budget() || fcntl(c->rfd, F_SETPIPE_SZ, GROWN_PIPE_SIZE) < 0) {
		__atomic_fetch_sub(&grown_pages, add, __ATOMIC_RELAXED);
		return;
	}
	c->grown = (unsigned)add;
}

static int spill(struct corral__capture *c, const char *tmpdir)
{
	int fd = open_tmpfile(tmpdir);

	if (fd < 0)
		return fd;
	if (c->len && corral__write_all(fd, c->buf, c->len) < 0) {
		int e = -errno;
		close(fd);
		return e ? e : -EIO;
	}
	c->file_fd = fd;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	return 0;
}

static void set_error(struct corral__capture *c, int e)
{
	if (!c->error)
		c->error = e;
	corral__capture_close(c);
}

int corral__capture_drain(struct corral__capture *c, size_t max_inline, const char *tmpdir)
{
	/* Bounded work per call, so one chatty task cannot starve the loop. */
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n;
		uint64_t room = c->limit == CORRAL_UNLIMITED ? UINT64_MAX : c->limit - c->total;

		if (c->rfd < 0)
			return 1;
		if (c->discarding) {
			/* Nowhere to keep it: read and drop, and say so in the
			 * result, rather than kill the task with SIGPIPE. */
			char b[65536];
			n = read(c->rfd, b, sizeof(b));
			if (n > 0) {
				c->dropped += (uint64_t)n;
				continue;
			}
			if (n == 0) {
				corral__capture_close(c);
				return 1;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			set_error(c, errno);
			return -EIO;
		}
		if (room == 0) {
			/* The limit is reached; one more byte means overflow. */
			char probe;
			n = read(c->rfd, &probe, 1);
			if (n == 0) {
				corral__capture_close(c);
				return 1;
			}
			if (n < 0 && errno == EAGAIN)
				return 0;
			c->overflow = true;
			corral__capture_close(c);
			return 1;
		}
		if (c->file_fd < 0) {
			if (c->len == c->cap) {
				if (c->len >= max_inline) {
					int rc = spill(c, tmpdir);
					if (rc < 0) {
						/* Keep what is in memory, drop the rest. */
						c->error = -rc;
						c->discarding = true;
					}
					continue;
				}
				size_t ncap = c->cap ? c->cap * 2 : 1024;
				if (ncap > max_inline)
					ncap = max_inline > c->len ? max_inline : c->len + 1024;
				char *nb = realloc(c->buf, ncap);
				if (!nb) {
					set_error(c, ENOMEM);
					return -ENOMEM;
				}
				c->buf = nb;
				c->cap = ncap;
			}
			size_t want = c->cap - c->len;
			if (want > room)
				want = (size_t)room;
			n = read(c->rfd, c->buf + c->len, want);
			if (n > 0)
				c->len += (size_t)n;
		} else {
			size_t want = 1 << 20;
			if (want > room)
				want = (size_t)room;
			if (!c->grow_tried && c->total >= HEAVY_WRITER)
				grow_pipe(c);
			n = splice(c->rfd, NULL, c->file_fd, NULL, want,
			           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno == EINVAL) {
				/* The temp file's filesystem does not splice. */
				char b[65536];
				n = read(c->rfd, b, want < sizeof(b) ? want : sizeof(b));
				if (n > 0) {
					int rc = corral__write_all(c->file_fd, b, (size_t)n);
					if (rc < 0) {
						c->error = -rc;
						c->discarding = true;
						c->dropped += (uint64_t)n;
						continue;
					}
				}
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				/* The temp file cannot take more (ENOSPC, EFBIG, EIO):
				 * splice moved nothing, the pipe still holds it. */
				c->error = errno;
				c->discarding = true;
				continue;
			}
		}
		if (n == 0) {
			corral__capture_close(c);
			return 1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			int e = errno;
			set_error(c, e);
			return -e;
		}
		c->total += (uint64_t)n;
	}
	return 0;
}

int corral__capture_append(struct corral__capture *c, const void *data, size_t len,
                           size_t max_inline, const char *tmpdir)
{
	int rc;

	if (!len)
		return 0;
	if (!c->discarding && c->file_fd < 0 && c->len + len > max_inline) {
		rc = spill(c, tmpdir);
		if (rc < 0) {
			c->error = -rc;
			c->discarding = true;
		}
	}
	if (c->discarding) {
		c->dropped += len;
		return 0;
	}
	if (c->file_fd >= 0) {
		rc = corral__write_all(c->file_fd, data, len);
		if (rc < 0) {
			/* Keep what the file holds; drop this and the rest. */
			c->error = -rc;
			c->discarding = true;
			c->dropped += len;
			return 0;
		}
	} else {
		if (c->len + len > c->cap) {
			size_t ncap = c->cap ? c->cap : 1024;
			while (ncap < c->len + len)
				ncap *= 2;
			char *nb = realloc(c->buf, ncap);
			if (!nb)
				return -ENOMEM;
			c->buf = nb;
			c->cap = ncap;
		}
		memcpy(c->buf + c->len, data, len);
		c->len += len;
	}
	c->total += len;
	return 0;
}

void corral__capture_close(struct corral__capture *c)
{
	if (c->epfd >= 0 && c->rfd >= 0)
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->rfd, NULL);
	c->epfd = -1;
	corral__close(c->rfd);
	c->rfd = -1;
	if (c->grown) {
		__atomic_fetch_sub(&grown_pages, c->grown, __ATOMIC_RELAXED);
		c->grown = 0;
	}
}

void corral__capture_take(struct corral__capture *c, corral_output_t *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->len = c->total;
	out->lost = c->dropped;
	if (c->file_fd >= 0) {
		out->fd = c->file_fd;
		c->file_fd = -1;
	} else {
		out->data = c->buf;
		out->data_len = c->len;
		c->buf = NULL;
		c->len = c->cap = 0;
	}
}

void corral__capture_free(struct corral__capture *c)
{
	corral__capture_close(c);
	corral__close(c->file_fd);
	c->file_fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

int corral_output_write(const corral_output_t *out, int fd)
{
	if (out->fd < 0)
		return out->data_len ? corral__write_all(fd, out->data, out->data_len) : 0;
	uint64_t left = out->len;
	off_t off = 0;
	/* In the kernel first (no copy through user space): sendfile() takes
	 * any output fd on current kernels; fall back to read/write where it
	 * does not (EINVAL, e.g. an O_APPEND file on old kernels). */
	while (left > 0) {
		size_t want = left < (1u << 30) ? (size_t)left : (1u << 30);
		ssize_t n = sendfile(fd, out->fd, &off, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			break;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file is shorter than we recorded */
		left -= (uint64_t)n;
	}
	char buf[65536];
	while (left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = pread(out->fd, buf, want, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		int rc = corral__write_all(fd, buf, (size_t)n);
		if (rc < 0)
			return rc;
		off += n;
		left -= (uint64_t)n;
	}
	return 0;
}

void corral_result_release(corral_result_t *r)
{
	corral_output_t *o[3] = {&r->out, &r->err, &r->fn_result};

	free((void *)r->oom_victims);
	r->oom_victims = NULL;
	r->n_oom_victims = 0;
	free((void *)r->timeline);
	r->timeline = NULL;
	r->n_timeline = 0;

	for (int i = 0; i < 3; i++) {
		free((void *)o[i]->data);
		o[i]->data = NULL;
		o[i]->data_len = 0;
		if (o[i]->fd >= 0)
			close(o[i]->fd);
		o[i]->fd = -1;
	}
}
