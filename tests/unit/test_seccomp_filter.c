/* test_seccomp_filter.c - what the compiled filters decide, call by call.
 *
 * The BPF programs corral__sc_compile() produces are run in a small classic
 * BPF interpreter over every syscall number 0-1023 of each x86 ABI (x86_64,
 * i386 through int $0x80, x32), and compared with what the profile says: the
 * listed calls get the deny action, everything else is allowed, and an
 * unknown arch is killed. This pins down the arch handling (seccomp.c, "the
 * bad-arch decision") and libseccomp's binary-tree optimisation without
 * loading anything into the kernel. Also: corral__sc_confine(), which the
 * cgroup namespace adds to every profile. (Parsing and the default profile's
 * contents are in test_seccomp_profile.c.)
 */
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "seccomp_profile.h"

#define RET_ALLOW  SECCOMP_RET_ALLOW
#define RET_KILL   SECCOMP_RET_KILL_PROCESS
#define RET_EPERM  (SECCOMP_RET_ERRNO | EPERM)
#define RET_ENOSYS (SECCOMP_RET_ERRNO | ENOSYS)
#define X32_BIT    0x40000000u
#define NR_MAX     1024

/* Run a classic BPF program over d; returns its verdict. */
static uint32_t run_bpf(const struct sock_fprog *prog, const struct seccomp_data *d)
{
	const unsigned char *data = (const unsigned char *)d;
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};

	for (unsigned pc = 0; pc < prog->len; pc++) {
		const struct sock_filter *f = &prog->filter[pc];
		uint32_t k = f->k;
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (k % 4 || k + 4 > sizeof(*d))
				fail_msg("bad load offset %u at %u", k, pc);
			memcpy(&a, data + k, 4);
			break;
		case BPF_LD | BPF_IMM:
			a = k;
			break;
		case BPF_LDX | BPF_IMM:
			x = k;
			break;
		case BPF_LD | BPF_MEM:
			a = mem[k % BPF_MEMWORDS];
			break;
		case BPF_LDX | BPF_MEM:
			x = mem[k % BPF_MEMWORDS];
			break;
		case BPF_ST:
			mem[k % BPF_MEMWORDS] = a;
			break;
		case BPF_STX:
			mem[k % BPF_MEMWORDS] = x;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= k;
			break;
		case BPF_ALU | BPF_OR | BPF_K:
			a |= k;
			break;
		case BPF_ALU | BPF_ADD | BPF_K:
			a += k;
			break;
		case BPF_ALU | BPF_SUB | BPF_K:
			a -= k;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			a >>= k;
			break;
		case BPF_ALU | BPF_LSH | BPF_K:
			a <<= k;
			break;
		case BPF_MISC | BPF_TAX:
			x = a;
			break;
		case BPF_MISC | BPF_TXA:
			a = x;
			break;
		case BPF_JMP | BPF_JA:
			pc += k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += a > k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & k) ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JEQ | BPF_X:
			pc += a == x ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_X:
			pc += a > x ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_X:
			pc += a >= x ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return k;
		case BPF_RET | BPF_A:
			return a;
		default:
			fail_msg("BPF opcode %#x at %u not in the interpreter", f->code, pc);
		}
	}
	fail_msg("the program fell off its end");
	return 0;
}

static uint32_t verdict_args(const struct sock_fprog *prog, uint32_t arch, uint32_t nr, uint64_t a0,
                             uint64_t a1)
{
	struct seccomp_data d;

	memset(&d, 0, sizeof(d));
	d.arch = arch;
	d.nr = (int)nr;
	d.args[0] = a0;
	d.args[1] = a1;
	return run_bpf(prog, &d);
}

static uint32_t verdict(const struct sock_fprog *prog, uint32_t arch, uint32_t nr)
{
	return verdict_args(prog, arch, nr, 0, 0);
}

/* The three ABIs: libseccomp arch, the arch token the kernel reports, and
 * the bit added to the numbers. */
static const struct {
	const char *name;
	uint32_t scmp, audit, bit;
} abis[] = {
    {"x86_64", SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64, 0},
    {"i386", SCMP_ARCH_X86, AUDIT_ARCH_I386, 0},
    {"x32", SCMP_ARCH_X32, AUDIT_ARCH_X86_64, X32_BIT},
};

/* Record in want[abi][nr] the verdict act for every call name covers (groups
 * expanded), unless an earlier entry already decided it (the first rule for a
 * call wins, in libseccomp and in corral's prologue alike). */
static void mark(const char *name, uint32_t act, uint32_t (*want)[NR_MAX], int depth)
{
	assert_true(depth < 5);
	if (name[0] == '@') {
		const char *const *m = corral__sc_group(name);
		assert_non_null(m);
		for (size_t i = 0; m[i]; i++)
			mark(m[i], act, want, depth + 1);
		return;
	}
	for (size_t a = 0; a < 3; a++) {
		int nr = corral__sc_resolve(name, abis[a].scmp);
		if (nr < 0)
			continue; /* not a call of this ABI */
		uint32_t n = (uint32_t)nr & ~X32_BIT;
		if (n < NR_MAX && !want[a][n])
			want[a][n] = act;
	}
}

/* What the kernel's number space beyond the judged calls gets, whatever the
 * profile: ENOSYS (0 = up to the profile). */
static uint32_t beyond(size_t abi, uint32_t nr)
{
	if (abis[abi].bit) /* x32: its own calls 512..547 are judged by libseccomp */
		return (nr > CORRAL_SC_JUDGED_MAX && nr < 512) || nr > CORRAL_SC_X32_MAX
		           ? RET_ENOSYS
		           : 0;
	return nr > CORRAL_SC_JUDGED_MAX ? RET_ENOSYS : 0;
}

/* Compile p and check every number of every ABI: listed ones get their
 * verdict (the deny action, or the entry's own errno), the others the default;
 * numbers beyond the judged ones ENOSYS; a foreign arch dies. */
static void check_filter(struct corral__sc_profile *p, uint32_t deny, const char *what)
{
	static uint32_t want[3][NR_MAX];
	struct sock_fprog prog;
	corral_error_t err = {0};
	int n_listed = 0;

	memset(want, 0, sizeof(want));
	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		uint32_t act = e->allow         ? RET_ALLOW
		               : e->errno_value ? SECCOMP_RET_ERRNO | (uint32_t)e->errno_value
		                                : deny;
		mark(e->name, act, want, 0);
	}
	if (corral__sc_compile(p, &prog, &err) != 0)
		fail_msg("%s: %s", what, err.msg);
	for (size_t a = 0; a < 3; a++) {
		for (uint32_t nr = 0; nr < NR_MAX; nr++) {
			uint32_t w = beyond(a, nr)      ? beyond(a, nr)
			             : want[a][nr]      ? want[a][nr]
			             : p->default_allow ? RET_ALLOW
			                                : deny;
			uint32_t got = verdict(&prog, abis[a].audit, nr | abis[a].bit);
			if (got != w)
				fail_msg("%s: %s syscall %u: verdict %#x, want %#x", what,
				         abis[a].name, nr, got, w);
			n_listed += want[a][nr] != 0;
		}
	}
	/* Far beyond every table, and -1 (what a tracer's skipped call shows). */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 100000), RET_ENOSYS);
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 0xffffffffu), RET_ENOSYS);
	assert_int_equal(verdict(&prog, AUDIT_ARCH_I386, 0x40000000u | 21), RET_ENOSYS);
	/* Any other arch is killed, whatever the number. */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_AARCH64, 0), RET_KILL);
	assert_int_equal(verdict(&prog, AUDIT_ARCH_ARM, 21), RET_KILL);
	print_message("# %s: %u instructions, %d numbers listed over 3 ABIs\n", what, prog.len,
	              n_listed);
	assert_true(n_listed > 0);
	free(prog.filter);
}

static void default_filter(void **state)
{
	struct corral__sc_profile p;
	corral_error_t err = {0};

	(void)state;
	assert_int_equal(corral__sc_default(&p, false, false), 0);
	check_filter(&p, RET_EPERM, "default");
	/* Some numbers by hand, one per ABI. */
	struct sock_fprog prog;
	assert_int_equal(corral__sc_compile(&p, &prog, &err), 0);
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 165), RET_EPERM);           /* mount */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 308), RET_EPERM);           /* setns */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 39), RET_ALLOW);            /* getpid */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_I386, 21), RET_EPERM);              /* mount */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_I386, 115), RET_EPERM);             /* swapoff */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_I386, 346), RET_EPERM);             /* setns */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_I386, 20), RET_ALLOW);              /* getpid */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 168 | X32_BIT), RET_EPERM); /* swapoff */
	assert_int_equal(verdict(&prog, AUDIT_ARCH_X86_64, 39 | X32_BIT), RET_ALLOW);  /* getpid */
	free(prog.filter);
	corral__sc_free(&p);

	assert_int_equal(corral__sc_default(&p, true, false), 0);
	check_filter(&p, RET_EPERM, "default, allow_ptrace");
	corral__sc_free(&p);
}

/* The hardening of the escape audit (issue 12), by number on each ABI. */
static void hardening(void **state)
{
	struct corral__sc_profile p;
	struct sock_fprog prog;
	corral_error_t err = {0};
	const uint32_t x64 = AUDIT_ARCH_X86_64, i386 = AUDIT_ARCH_I386;

	(void)state;
	assert_int_equal(corral__sc_default(&p, false, false), 0);
	assert_int_equal(corral__sc_io_uring(&p, &err), 0);
	check_filter(&p, RET_EPERM, "default + io_uring denied");
	assert_int_equal(corral__sc_compile(&p, &prog, &err), 0);
	/* open_tree_attr (467), unknown to libseccomp 2.5.4: denied by number,
	 * through every ABI. */
	assert_int_equal(verdict(&prog, x64, 467), RET_EPERM);
	assert_int_equal(verdict(&prog, i386, 467), RET_EPERM);
	assert_int_equal(verdict(&prog, x64, 467 | X32_BIT), RET_EPERM);
	/* Newer calls that were judged harmless pass; the first unjudged number
	 * and everything above it get ENOSYS. */
	assert_int_equal(verdict(&prog, x64, 457), RET_ALLOW); /* statmount */
	assert_int_equal(verdict(&prog, x64, 462), RET_ALLOW); /* mseal */
	assert_int_equal(verdict(&prog, x64, CORRAL_SC_JUDGED_MAX + 1), RET_ENOSYS);
	assert_int_equal(verdict(&prog, i386, CORRAL_SC_JUDGED_MAX + 1), RET_ENOSYS);
	assert_int_equal(verdict(&prog, x64, (CORRAL_SC_JUDGED_MAX + 1) | X32_BIT), RET_ENOSYS);
	assert_int_equal(verdict(&prog, x64, 514 | X32_BIT), RET_ALLOW); /* x32 ioctl */
	assert_int_equal(verdict(&prog, x64, 548 | X32_BIT), RET_ENOSYS);
	/* clone3 and io_uring: ENOSYS, from which libc and liburing fall back. */
	assert_int_equal(verdict(&prog, x64, 435), RET_ENOSYS);
	assert_int_equal(verdict(&prog, i386, 435), RET_ENOSYS);
	assert_int_equal(verdict(&prog, x64, 435 | X32_BIT), RET_ENOSYS);
	assert_int_equal(verdict(&prog, x64, 425), RET_ENOSYS);  /* io_uring_setup */
	assert_int_equal(verdict(&prog, x64, 426), RET_ENOSYS);  /* io_uring_enter */
	assert_int_equal(verdict(&prog, i386, 427), RET_ENOSYS); /* io_uring_register */
	assert_int_equal(verdict(&prog, x64, 56), RET_ALLOW);    /* clone */
	/* TIOCSTI and TIOCLINUX, whatever the high bits of the request; other
	 * ioctls pass. userfaultfd's device ioctl goes with the system call. */
	assert_int_equal(verdict_args(&prog, x64, 16, 0, 0x5412), RET_EPERM);
	assert_int_equal(verdict_args(&prog, x64, 16, 0, 0xffffffff00005412ull), RET_EPERM);
	assert_int_equal(verdict_args(&prog, x64, 16, 0, 0x541C), RET_EPERM);
	assert_int_equal(verdict_args(&prog, i386, 54, 0, 0x5412), RET_EPERM);
	assert_int_equal(verdict_args(&prog, x64, 514 | X32_BIT, 0, 0x5412), RET_EPERM);
	assert_int_equal(verdict_args(&prog, x64, 16, 0, 0xAA00), RET_EPERM);
	assert_int_equal(verdict_args(&prog, x64, 16, 0, 0x5401), RET_ALLOW); /* TCGETS */
	assert_int_equal(verdict_args(&prog, x64, 16, 0x5412, 0), RET_ALLOW);
	free(prog.filter);
	corral__sc_free(&p);

	/* io_uring allowed on request; the ring's calls pass. */
	assert_int_equal(corral__sc_default(&p, false, true), 0);
	assert_int_equal(corral__sc_io_uring(&p, &err), 0);
	check_filter(&p, RET_EPERM, "default + io_uring allowed");
	assert_int_equal(corral__sc_compile(&p, &prog, &err), 0);
	assert_int_equal(verdict(&prog, x64, 425), RET_ALLOW);
	free(prog.filter);
	corral__sc_free(&p);

	/* A profile naming calls newer than libseccomp: denied and allowed by
	 * number, with the profile's own action. */
	assert_int_equal(corral__sc_parse("action kill\n[deny]\nopen_tree_attr\nmseal\n", &p, &err),
	                 0);
	assert_int_equal(corral__sc_io_uring(&p, &err), 0);
	check_filter(&p, RET_KILL, "newer calls, kill");
	corral__sc_free(&p);
	assert_int_equal(
	    corral__sc_parse("default deny\n[allow]\nexecve\nstatmount\nexit_group\n", &p, &err),
	    0);
	assert_int_equal(corral__sc_io_uring(&p, &err), 0);
	check_filter(&p, RET_EPERM, "newer calls allowed by default deny");
	assert_int_equal(corral__sc_compile(&p, &prog, &err), 0);
	assert_int_equal(verdict(&prog, x64, 457), RET_ALLOW);
	assert_int_equal(verdict(&prog, x64, 458), RET_EPERM);
	assert_int_equal(verdict(&prog, x64, 425), RET_ENOSYS);
	free(prog.filter);
	corral__sc_free(&p);
}

/* io_uring under profiles: allowed only where nothing it can do is denied. */
static void io_uring_profiles(void **state)
{
	static const struct {
		const char *text, *msg; /* msg NULL: accepted */
	} cases[] = {
	    {"io_uring allow\n[deny]\nsocket\n",
	     "line 1: io_uring is allowed, but line 3 denies `socket`"},
	    {"[deny]\n@mount\nio_uring allow\n", NULL},
	    {"io_uring allow\n[deny]\nptrace\n", NULL},
	    {"[deny]\nsocket\n", NULL}, /* io_uring stays denied: fine */
	    {"default deny\n[allow]\nexecve\n@io_uring\n",
	     "line 4: io_uring is allowed, but `read` is not"},
	    {"io_uring maybe\n", "line 1: expected `io_uring allow` or `io_uring deny`"},
	};
	struct corral__sc_profile p;
	corral_error_t err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		int rc = corral__sc_parse(cases[i].text, &p, &err);
		if (rc == 0)
			rc = corral__sc_io_uring(&p, &err);
		if (!cases[i].msg) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, err.msg);
			corral__sc_free(&p);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("case %zu: message \"%s\", want \"%s...\"", i, err.msg,
			         cases[i].msg);
		if (p.entries)
			corral__sc_free(&p);
	}
}

static void profile_filters(void **state)
{
	struct corral__sc_profile p;
	corral_error_t err = {0};

	(void)state;
	assert_int_equal(corral__sc_parse("action kill\n[deny]\nswapoff\n@reboot\n", &p, &err), 0);
	check_filter(&p, RET_KILL, "kill");
	assert_int_equal(corral__sc_confine(&p, &err), 0);
	check_filter(&p, RET_KILL, "kill + confine");
	corral__sc_free(&p);

	assert_int_equal(corral__sc_parse("default deny\naction errno EACCES\n[allow]\n"
	                                  "read\nwrite\nexit_group\nexecve\nmmap\n",
	                                  &p, &err),
	                 0);
	check_filter(&p, SECCOMP_RET_ERRNO | EACCES, "default deny");
	corral__sc_free(&p);
}

/* corral__sc_confine: @mount and setns join the deny list, with the
 * profile's action; a profile that allows any of them is refused. */
static void confine(void **state)
{
	struct corral__sc_profile p;
	corral_error_t err;

	(void)state;
	/* setns is in the default profile itself (seccomp.c says why). */
	const char *const *def = corral__sc_group("@default");
	bool has_setns = false;
	for (size_t i = 0; def[i]; i++)
		has_setns |= !strcmp(def[i], "setns");
	assert_true(has_setns);

	memset(&err, 0, sizeof(err));
	assert_int_equal(corral__sc_parse("[deny]\nsethostname\n", &p, &err), 0);
	assert_int_equal(corral__sc_confine(&p, &err), 0);
	assert_int_equal(p.n, 4);
	assert_string_equal(p.entries[1].name, "@mount");
	assert_string_equal(p.entries[2].name, "setns");
	assert_string_equal(p.entries[3].name, "clone3");
	assert_int_equal(p.entries[3].errno_value, ENOSYS);
	assert_false(p.entries[1].allow);
	assert_false(p.entries[2].allow);
	assert_int_equal(p.entries[2].line, 0);
	check_filter(&p, RET_EPERM, "sethostname + confine");
	corral__sc_free(&p);

	/* An empty profile (seccomp off with the cgroup namespace). */
	memset(&p, 0, sizeof(p));
	p.default_allow = true;
	p.errno_value = EPERM;
	assert_int_equal(corral__sc_confine(&p, &err), 0);
	check_filter(&p, RET_EPERM, "confine only");
	corral__sc_free(&p);

	/* Allowed: directly, through a group, through a group of groups. */
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"default deny\n[allow]\nexecve\nmount\n", "line 4: `mount` is allowed"},
	    {"default deny\n[allow]\nexecve\numount2\n", "line 4: `umount2` is allowed"},
	    {"default deny\n[allow]\nexecve\nsetns\n", "line 4: `setns` is allowed"},
	    {"default deny\n\n[allow]\n@mount\nexecve\n", "line 4: `@mount` is allowed"},
	    {"default deny\n[allow]\n@default\n", "line 3: `@default` is allowed"},
	    {"default deny\n[allow]\nexecve\nclone3\n", "line 4: `clone3` is allowed"},
	    {"default deny\n[allow]\nexecve\nopen_tree_attr\n",
	     "line 4: `open_tree_attr` is allowed"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(corral__sc_parse(bad[i].text, &p, &err), 0);
		assert_int_equal(corral__sc_confine(&p, &err), -EINVAL);
		assert_int_equal(err.code, EINVAL);
		if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)))
			fail_msg("message \"%s\", want \"%s...\"", err.msg, bad[i].msg);
		corral__sc_free(&p);
	}
	/* Allowing other calls is fine. */
	assert_int_equal(corral__sc_parse("default deny\n[allow]\nexecve\nunshare\n", &p, &err), 0);
	assert_int_equal(corral__sc_confine(&p, &err), 0);
	check_filter(&p, RET_EPERM, "default deny + confine");
	corral__sc_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(default_filter), cmocka_unit_test(profile_filters),
	    cmocka_unit_test(hardening),      cmocka_unit_test(io_uring_profiles),
	    cmocka_unit_test(confine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
