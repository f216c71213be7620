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
	char name[64]; /* syscall or "@group" */
	int line;      /* 0 for built-in entries */
	bool allow;    /* in the [allow] section */
};

struct corral__sc_profile {
	bool default_allow;            /* unlisted syscalls are allowed */
	enum corral__sc_action action; /* for denied syscalls */
	int errno_value;               /* with SC_ACT_ERRNO (default EPERM) */
	struct corral__sc_entry *entries;
	size_t n, cap;
};

/* Parse a profile file's text. On error returns -EINVAL with "line N: ..." in
 * err. Names are checked for syntax only; corral__sc_compile() checks that
 * they exist. */
int corral__sc_parse(const char *text, struct corral__sc_profile *p, corral_error_t *err);
/* The built-in default profile (deny-list); allow_ptrace drops ptrace. */
int corral__sc_default(struct corral__sc_profile *p, bool allow_ptrace);
void corral__sc_free(struct corral__sc_profile *p);

/* Add what the cgroup namespace's read-only cgroupfs needs denied (@mount and
 * setns, see seccomp.c) to a profile, with the profile's deny action. Fails
 * with -EINVAL ("line N: ...") when the profile [allow]s any of them. */
int corral__sc_confine(struct corral__sc_profile *p, corral_error_t *err);

/* The members of a group ("@mount"), NULL-terminated; NULL if unknown. */
const char *const *corral__sc_group(const char *name);

/* Compile to BPF for this arch and its compat arches (i386 and x32 on x86_64:
 * every rule applies to them too). prog->filter is malloc'ed. */
int corral__sc_compile(const struct corral__sc_profile *p, struct sock_fprog *prog,
                       corral_error_t *err);

#endif
