/* syscalls.h - raw wrappers for syscalls glibc 2.36 does not wrap (or wraps
 * in ways that are unsafe after fork). Each returns -1 with errno, ENOSYS when
 * the headers do not know the call. All are async-signal-safe.
 */
#ifndef CORRAL_SYSCALLS_H
#define CORRAL_SYSCALLS_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* struct clone_args as of Linux 5.7 (CLONE_ARGS_SIZE_VER2). */
struct corral__clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

struct corral__dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static inline int corral__pidfd_open(pid_t pid, unsigned flags)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static inline int corral__pidfd_send_signal(int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* x86-64 inline asm to follow a clone-family "syscall" whose child runs on a
 * stack of its own (or a copy of ours): in the child (rax 0) call the
 * function in r12 with the argument in r13, with no frame above it, and exit
 * with its value should it ever return; the parent goes on at local label 1.
 * r12/r13 survive the syscall. spawn.c's clone3 and zygote.c's clone. */
#define CORRAL__CLONE_CHILD_ASM                                                                    \
	"test %%rax, %%rax\n\t"                                                                    \
	"jnz 1f\n\t"                                                                               \
	"xor %%ebp, %%ebp\n\t"                                                                     \
	"mov %%r13, %%rdi\n\t"                                                                     \
	"call *%%r12\n\t"                                                                          \
	"mov %%eax, %%edi\n\t"                                                                     \
	"mov $60, %%eax\n\t" /* SYS_exit */                                                        \
	"syscall\n\t"                                                                              \
	"hlt\n\t"                                                                                  \
	"1:\n\t"

static inline long corral__clone3(struct corral__clone_args *a)
{
#ifdef SYS_clone3
	return syscall(SYS_clone3, a, sizeof(*a));
#else
	(void)a;
	errno = ENOSYS;
	return -1;
#endif
}

static inline int corral__close_range(unsigned first, unsigned last)
{
#ifdef SYS_close_range
	return (int)syscall(SYS_close_range, first, last, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* waitid with the rusage argument the kernel has and glibc hides. */
struct rusage;
static inline int corral__waitid(idtype_t type, id_t id, siginfo_t *si, int options,
                                 struct rusage *ru)
{
	return (int)syscall(SYS_waitid, type, id, si, options, ru);
}

#endif
