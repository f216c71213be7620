/* io.c - small, exact file I/O on cgroupfs and procfs.
 *
 * cgroupfs files are read with one pread() at offset 0 (kernfs produces the
 * whole content on the first read for files this small) and written with one
 * write() (kernfs treats each write() as a whole value).
 */
#include <fcntl.h>
#include <time.h>

#include "internal.h"

ssize_t corral__pread_all(int fd, char *buf, size_t size)
{
	size_t got = 0;

	if (size == 0)
		return -EINVAL;
	for (;;) {
		ssize_t n = pread(fd, buf + got, size - 1 - got, (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == size - 1) {
			/* Is there more than fits? */
			char c;
			n = pread(fd, &c, 1, (off_t)got);
			buf[got] = '\0';
			return n > 0 ? -EFBIG : (ssize_t)got;
		}
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* A cgroupfs control file made by one seq_file show() (every counter file
 * corral reads; not cgroup.procs, which is one record per pid): the first
 * read at offset 0 makes the whole text, so a read that comes back shorter
 * than asked holds all of it and needs no second read for the EOF. */
ssize_t corral__pread_value(int fd, char *buf, size_t size)
{
	ssize_t n;

	if (size < 2)
		return -EINVAL;
	do
		n = pread(fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n == size - 1)
		return corral__pread_all(fd, buf, size); /* may be more: read it all */
	buf[n] = '\0';
	return n;
}

static ssize_t read_file_at(int dirfd, const char *name, char *buf, size_t size, bool value)
{
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return value ? corral__pread_value(fd, buf, size) : corral__pread_all(fd, buf, size);
}

ssize_t corral__read_value_at(int dirfd, const char *name, char *buf, size_t size)
{
	return read_file_at(dirfd, name, buf, size, true);
}

/* The same through an fd kept in *slot, opened on first use (mode: O_RDONLY
 * or O_RDWR). */
ssize_t corral__read_value_cached(int *slot, int dirfd, const char *name, int mode, char *buf,
                                  size_t size)
{
	if (*slot < 0 && (*slot = openat(dirfd, name, mode | O_CLOEXEC)) < 0)
		return -errno;
	return corral__pread_value(*slot, buf, size);
}

ssize_t corral__read_at(int dirfd, const char *name, char *buf, size_t size)
{
	return read_file_at(dirfd, name, buf, size, false);
}

int corral__write_at(int dirfd, const char *name, const char *s)
{
	cleanup_close int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(s);
	ssize_t n;

	if (fd < 0)
		return -errno;
	do
		n = write(fd, s, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int corral__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint64_t corral__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double corral__wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
