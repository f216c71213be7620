/* valgrind_shim.c - LD_PRELOAD library that lets corral run under the
 * valgrind of Debian 12 (3.19), which does not know pidfd_open(2) and
 * pidfd_send_signal(2) (both fail with ENOSYS there, so no task could start).
 * scripts/hygiene.py builds it and runs `valgrind ... build/corral` with it.
 *
 * libcorral makes these calls through glibc's syscall(); this library
 * interposes syscall() and
 *   - pidfd_open(pid): asks a helper process that runs natively (outside
 *     valgrind, scripts/hygiene.py) for a pidfd of pid over the unix socket
 *     $CORRAL_VG_PIDFD_SOCK; the helper sends it back with SCM_RIGHTS. The fd
 *     is a real pidfd: poll, epoll and waitid(P_PIDFD) work on it natively;
 *   - pidfd_send_signal(fd, sig): kill() of the pid that /proc/self/fdinfo
 *     names for fd (only ever called on unreaped children of corral, whose
 *     pids cannot be reused);
 * and passes every other call to glibc's syscall(). Everything else of
 * corral runs under memcheck unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

typedef long (*syscall_fn)(long, ...);
static syscall_fn real_syscall;
static char sock_path[108];

__attribute__((constructor)) static void shim_init(void)
{
	const char *p = getenv("CORRAL_VG_PIDFD_SOCK");

	real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
	if (p && strlen(p) < sizeof(sock_path))
		strcpy(sock_path, p);
}

static long shim_pidfd_open(int pid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char cbuf[CMSG_SPACE(sizeof(int))];
	int reply = 0, fd = -1;
	struct iovec iov = {.iov_base = &reply, .iov_len = sizeof(reply)};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c;
	int s;

	if (!sock_path[0]) {
		errno = ENOSYS;
		return -1;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	memcpy(sa.sun_path, sock_path, sizeof(sock_path));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(s, &pid, sizeof(pid)) != (ssize_t)sizeof(pid) ||
	    recvmsg(s, &m, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(reply)) {
		close(s);
		errno = ENOSYS;
		return -1;
	}
	close(s);
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	if (reply != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		errno = reply ? reply : ESRCH;
		return -1;
	}
	return fd;
}

static long shim_pidfd_send_signal(int pidfd, int sig)
{
	char path[64], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		errno = EBADF;
		return -1;
	}
	buf[n] = '\0';
	const char *p = strstr(buf, "\nPid:");
	if (!p) {
		errno = EBADF;
		return -1;
	}
	long pid = strtol(p + 5, NULL, 10);
	if (pid <= 0) {
		errno = ESRCH; /* the process has exited (-1) */
		return -1;
	}
	return kill((pid_t)pid, sig);
}

long syscall(long n, ...)
{
	va_list ap;
	long a[6];

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (n == SYS_pidfd_open)
		return shim_pidfd_open((int)a[0]);
	if (n == SYS_pidfd_send_signal)
		return shim_pidfd_send_signal((int)a[0], (int)a[1]);
	return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
