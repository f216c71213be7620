/* sandbox.c - the parent side of the sandbox: everything the child will need,
 * prepared before fork (child.c applies it with raw syscalls).
 *
 *  - seccomp: compiled once per executor (seccomp.c);
 *  - no_new_privs (implied by a filter);
 *  - a cgroup namespace plus a private mount namespace in which every cgroup
 *    mount is read-only: on cgroup v1 a cgroup namespace alone does not stop a
 *    root task from writing its pid into an ancestor's cgroup.procs (design
 *    §7); the read-only mount does, on v1 and v2. It holds only while a root
 *    task can neither remount it (mount, umount2, ... of @mount) nor join a
 *    mount namespace where it is writable (setns), so the cgroup namespace
 *    adds those rules to every filter, even with seccomp off, and refuses a
 *    profile that allows them (corral__sc_confine());
 *  - with that read-only cgroupfs, CAP_SYS_PTRACE is dropped (bounding set
 *    too): through /proc/<pid>/root or /proc/<pid>/ns/mnt a root task could
 *    otherwise reach the cgroupfs of a process outside its mount namespace
 *    (its parent corral's, say), where it is writable, and write its pid into
 *    an ancestor's cgroup.procs. Both need ptrace access to that process,
 *    which a task without CAP_SYS_PTRACE lacks to every process that holds it
 *    and to every other user's. Checked on the v1 hosts: `nsenter -t $PPID -m`
 *    and `echo $$ > /proc/$PPID/root/sys/fs/cgroup/memory/.../cgroup.procs`
 *    both escaped before. What stays open for a root task: processes outside
 *    the namespace that run as root without CAP_SYS_PTRACE themselves, and
 *    what root can do to the host anyway (sysctls such as core_pattern,
 *    devices): against a hostile task use --user (or a container);
 *  - a network namespace with only loopback;
 *  - RLIMIT_CORE 0 unless core dumps are wanted (so the sandbox is "on" even
 *    with every other field off: corral.h documents 0 as the default);
 *  - a user/group switch (root only), resolved here with getpwnam_r(), which
 *    may read files and allocate, so it cannot run in the child.
 *
 * The namespaces need CAP_SYS_ADMIN: without it corral__sandbox_prepare()
 * fails (a protection that was asked for is never silently dropped).
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>

#include "executor.h"
#include "seccomp_profile.h"
#include "syscalls.h"

bool corral__sandbox_enabled(const corral_sandbox_t *s)
{
	return s->seccomp != CORRAL_SECCOMP_OFF || s->no_new_privs || s->cgroup_ns ||
	       s->no_network || s->user || !s->core_dumps;
}

/* Is cap in our effective set? */
static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return geteuid() == 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1u;
}

static int read_file(const char *path, char **out, corral_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;

	if (fd < 0)
		return corral__err(err, errno, "open `%s`", path);
	buf = malloc(cap);
	if (!buf)
		return corral__err(err, ENOMEM, "read `%s`", path);
	for (;;) {
		if (len + 1 == cap) {
			if (cap > (1u << 20)) {
				free(buf);
				return corral__err(err, EFBIG, "`%s` is larger than 1 MiB", path);
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return corral__err(err, ENOMEM, "read `%s`", path);
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return corral__err(err, e, "read `%s`", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* A uid or gid written in decimal: digits only (strtoul() would take "-1",
 * which is (uid_t)-1, "leave unchanged" for setresuid(): the task would keep
 * running as root), and below (uid_t)-1. */
static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && errno == 0 && *out < (unsigned long)(uid_t)-1;
}

/* USER[:GROUP] or UID[:GID]. The gid is GROUP's, else the user's primary
 * group (a uid without a passwd entry: gid = uid). Supplementary groups: the
 * user's (getgrouplist) when no GROUP is given; with an explicit GROUP only
 * that group, as runc does for `--user user:group`. */
static int resolve_user(const char *spec, struct corral__sandbox_plan *p, corral_error_t *err)
{
	char user[256], *group = NULL, buf[16384];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	unsigned long id;
	int rc;

	if (geteuid() != 0)
		return corral__err(err, EPERM, "--user `%s` needs corral to run as root", spec);
	if (snprintf(user, sizeof(user), "%s", spec) >= (int)sizeof(user))
		return corral__err(err, ENAMETOOLONG, "--user `%s`", spec);
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';

	if (parse_id(user, &id)) {
		p->uid = (uid_t)id;
		/* A passwd entry is optional for a numeric uid. */
		if (getpwuid_r(p->uid, &pw, buf, sizeof(buf), &pwp) != 0)
			pwp = NULL;
	} else {
		rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
		if (rc != 0)
			return corral__err(err, rc, "--user: look up user `%s`", user);
		if (!pwp || !*user)
			return corral__err(err, ENOENT,
			                   "--user: no user named `%s` (give a name from "
			                   "/etc/passwd or a numeric uid)",
			                   user);
		p->uid = pwp->pw_uid;
	}
	p->gid = pwp ? pwp->pw_gid : (gid_t)p->uid;
	if (group) {
		if (parse_id(group, &id)) {
			p->gid = (gid_t)id;
		} else {
			char gbuf[16384];
			rc = getgrnam_r(group, &gr, gbuf, sizeof(gbuf), &grp);
			if (rc != 0)
				return corral__err(err, rc, "--user: look up group `%s`", group);
			if (!grp || !*group)
				return corral__err(err, ENOENT,
				                   "--user: no group named `%s` (give a name "
				                   "from /etc/group or a numeric gid)",
				                   group);
			p->gid = grp->gr_gid;
		}
	}
	/* Supplementary groups. */
	int ng = 64;
	p->groups = malloc(sizeof(gid_t) * (size_t)ng);
	if (!p->groups)
		return corral__err(err, ENOMEM, "--user: groups");
	if (pwp && !group) {
		if (getgrouplist(pwp->pw_name, p->gid, p->groups, &ng) < 0) {
			gid_t *ng2 = realloc(p->groups, sizeof(gid_t) * (size_t)ng);
			if (!ng2)
				return corral__err(err, ENOMEM, "--user: groups");
			p->groups = ng2;
			if (getgrouplist(pwp->pw_name, p->gid, p->groups, &ng) < 0) {
				p->groups[0] = p->gid;
				ng = 1;
			}
		}
		p->ngroups = ng;
	} else {
		p->groups[0] = p->gid;
		p->ngroups = 1;
	}
	p->drop_user = true;
	return 0;
}

/* Every cgroup/cgroup2 mount point, from /proc/self/mountinfo. */
static int collect_cgroup_mounts(struct corral__sandbox_plan *p, corral_error_t *err)
{
	char *text = NULL;
	int rc = read_file("/proc/self/mountinfo", &text, err);

	if (rc < 0)
		return rc;
	/* Every one of them: a mount left out would stay writable. Grow the
	 * list until the parser stops short of its end. */
	for (int max = 16;; max *= 2) {
		free(p->ro_mounts);
		p->ro_mounts = calloc((size_t)max, sizeof(*p->ro_mounts));
		if (!p->ro_mounts) {
			free(text);
			return corral__err(err, ENOMEM, "cgroup mount list");
		}
		p->n_ro = corral__parse_cgroup_mount_points(text, p->ro_mounts, max);
		if (p->n_ro < max)
			break;
	}
	free(text);
	if (p->n_ro == 0)
		return corral__err(
		    err, ENOENT, "no cgroup filesystem in /proc/self/mountinfo to make read-only");
	return 0;
}

int corral__sandbox_prepare(const corral_sandbox_t *s, const struct corral__hier *h,
                            struct corral__sandbox_plan *p, corral_error_t *err)
{
	int rc;

	(void)h;
	memset(p, 0, sizeof(*p));
	p->core_dumps = s->core_dumps;
	p->no_new_privs = s->no_new_privs;
	/* The cgroup namespace needs a filter even with seccomp off: its
	 * read-only cgroupfs holds only while mount and setns are denied. */
	if (s->seccomp != CORRAL_SECCOMP_OFF || s->cgroup_ns) {
		struct corral__sc_profile prof;
		bool file = s->seccomp == CORRAL_SECCOMP_FILE;
		if (s->seccomp == CORRAL_SECCOMP_DEFAULT) {
			rc = corral__sc_default(&prof, s->allow_ptrace);
			if (rc < 0)
				return corral__err(err, -rc, "build the default seccomp profile");
		} else if (file) {
			char *text = NULL;
			if (!s->seccomp_file)
				return corral__err(err, EINVAL, "no seccomp profile file given");
			rc = read_file(s->seccomp_file, &text, err);
			if (rc < 0)
				return rc;
			rc = corral__sc_parse(text, &prof, err);
			free(text);
			if (rc < 0)
				return corral__err_wrap(err, rc, "seccomp profile `%s`",
				                        s->seccomp_file);
		} else {
			/* seccomp off: only what the cgroup namespace needs. */
			memset(&prof, 0, sizeof(prof));
			prof.default_allow = true;
			prof.action = SC_ACT_ERRNO;
			prof.errno_value = EPERM;
		}
		rc = s->cgroup_ns ? corral__sc_confine(&prof, err) : 0;
		if (rc == 0)
			rc = corral__sc_compile(&prof, &p->prog, err);
		p->filter_kills = prof.action == SC_ACT_KILL;
		corral__sc_free(&prof);
		if (rc < 0) {
			if (file)
				corral__err_wrap(err, rc, "seccomp profile `%s`", s->seccomp_file);
			corral__sandbox_free(p);
			return rc;
		}
		p->has_filter = true;
		p->no_new_privs = true;
	}
	if ((s->cgroup_ns || s->no_network) && !have_cap(CAP_SYS_ADMIN)) {
		corral__sandbox_free(p);
		return corral__err(err, EPERM, "%s need%s CAP_SYS_ADMIN (run corral as root%s)",
		                   s->cgroup_ns ? "the cgroup namespace and read-only cgroupfs"
		                                : "the network namespace",
		                   s->cgroup_ns ? "" : "s",
		                   s->cgroup_ns ? ", or turn the sandbox's cgroup_ns off" : "");
	}
	if (s->cgroup_ns) {
		p->unshare_flags |= CLONE_NEWCGROUP | CLONE_NEWNS;
		rc = collect_cgroup_mounts(p, err);
		if (rc < 0) {
			corral__sandbox_free(p);
			return rc;
		}
		p->drop_cap_ptrace = true;
	}
	if (s->no_network) {
		p->unshare_flags |= CLONE_NEWNET;
		p->lo_up = true;
	}
	if (s->user) {
		rc = resolve_user(s->user, p, err);
		if (rc < 0) {
			corral__sandbox_free(p);
			return rc;
		}
	}
	return 0;
}

void corral__sandbox_free(struct corral__sandbox_plan *p)
{
	free(p->prog.filter);
	free(p->ro_mounts);
	free(p->groups);
	memset(p, 0, sizeof(*p));
}
