/* seccomp_profile.h - seccomp profiles: the built-in deny-list, profile files, and
 * their compilation to BPF (libseccomp, in the parent only). */
#ifndef CORRAL_SECCOMP_PROFILE_H
#define CORRAL_SECCOMP_PROFILE_H

#include <linux/filter.h>

#include "internal.h"

enum corral__sc_action {
	SC_ACT_ERRNO,
	SC_ACT_KILL
};

struct corral__sc_entry {
	char name[64];   /* syscall or "@group" */
	int line;        /* 0 for built-in entries */
	bool allow;      /* in the [allow] section */
	int errno_value; /* denied: this errno instead of the profile's action (0 = the
	                    profile's): ENOSYS for calls libc falls back from */
};

struct corral__sc_profile {
	bool default_allow;            /* unlisted syscalls are allowed */
	enum corral__sc_action action; /* for denied syscalls */
	int errno_value;               /* with SC_ACT_ERRNO (default EPERM) */
	bool io_uring;                 /* io_uring allowed (`io_uring allow`, or in [allow]) */
	int io_uring_line;             /* the line that allowed it (0: built-in) */
	struct corral__sc_entry *entries;
	size_t n, cap;
};

/* Parse a profile file's text. On error returns -EINVAL with "line N: ..." in
 * err. Names are checked for syntax only; corral__sc_compile() checks that
 * they exist. */
int corral__sc_parse(const char *text, struct corral__sc_profile *p, corral_error_t *err);
/* The built-in default profile (deny-list); allow_ptrace drops ptrace,
 * allow_io_uring keeps io_uring allowed (denied with ENOSYS otherwise). */
int corral__sc_default(struct corral__sc_profile *p, bool allow_ptrace, bool allow_io_uring);
void corral__sc_free(struct corral__sc_profile *p);
/* Does the profile deny the call, by its name or through a group? */
bool corral__sc_denies(const struct corral__sc_profile *p, const char *call);

/* Add what the cgroup namespace's read-only cgroupfs needs denied (@mount and
 * setns, see seccomp.c) to a profile, with the profile's deny action. Fails
 * with -EINVAL ("line N: ...") when the profile [allow]s any of them. */
int corral__sc_confine(struct corral__sc_profile *p, corral_error_t *err);

/* The members of a group ("@mount"), NULL-terminated; NULL if unknown. */
const char *const *corral__sc_group(const char *name);

/* io_uring (seccomp never sees what its operations do): deny it with ENOSYS
 * unless the profile allows it; when it does, refuse a profile that denies a
 * call io_uring can perform without making it (socket, connect, openat, ...),
 * as that denial would be bypassed. Call it after corral__sc_confine(), before
 * corral__sc_compile(). */
int corral__sc_io_uring(struct corral__sc_profile *p, corral_error_t *err);

/* The number of a syscall for a libseccomp arch token (SCMP_ARCH_X86_64, ...):
 * libseccomp's own table, then corral's table of calls newer than it (the
 * same number on every arch since Linux 5.1, | 0x40000000 on x32). -1 if
 * unknown. */
int corral__sc_resolve(const char *name, uint32_t scmp_arch);

/* The highest syscall number (the common numbering of every x86 ABI) that the
 * filters were built to judge: every number above it gets ENOSYS, so that a
 * newer kernel never opens a call that corral's profiles have not looked at.
 * x32's own calls (512..CORRAL_SC_X32_MAX) are judged by libseccomp. */
#define CORRAL_SC_JUDGED_MAX 469
#define CORRAL_SC_X32_MAX    547

/* Compile to BPF for this arch and its compat arches (i386 and x32 on x86_64:
 * every rule applies to them too). prog->filter is malloc'ed. */
int corral__sc_compile(const struct corral__sc_profile *p, struct sock_fprog *prog,
                       corral_error_t *err);

#endif
