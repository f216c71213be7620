/* sandbox.c - the parent side of the sandbox: everything the child will need,
 * prepared before fork (child.c applies it with raw syscalls).
 *
 *  - seccomp: compiled once per executor (seccomp.c);
 *  - no_new_privs (implied by a filter);
 *  - a cgroup namespace plus a private mount namespace in which every cgroup
 *    mount is read-only: on cgroup v1 a cgroup namespace alone does not stop a
 *    root task from writing its pid into an ancestor's cgroup.procs (design
 *    §7); the read-only mount does, on v1 and v2, and seccomp keeps mount()
 *    denied so that it stays read-only;
 *  - a network namespace with only loopback;
 *  - a user/group switch (root only), resolved here with getpwnam_r(), which
 *    may read files and allocate, so it cannot run in the child.
 */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>

#include "executor.h"
#include "seccomp_profile.h"
#include "syscalls.h"

bool corral__sandbox_enabled(const corral_sandbox_t *s)
{
	return s->seccomp != CORRAL_SECCOMP_OFF || s->no_new_privs || s->cgroup_ns ||
	       s->no_network || s->user;
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

static int resolve_user(const char *spec, struct corral__sandbox_plan *p, corral_error_t *err)
{
	char user[256], *group = NULL, buf[16384];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char *end;

	if (geteuid() != 0)
		return corral__err(err, EPERM, "--user `%s` needs corral to run as root", spec);
	if (snprintf(user, sizeof(user), "%s", spec) >= (int)sizeof(user))
		return corral__err(err, ENAMETOOLONG, "--user `%s`", spec);
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';

	errno = 0;
	unsigned long uid = strtoul(user, &end, 10);
	if (*user && !*end) {
		p->uid = (uid_t)uid;
		getpwuid_r(p->uid, &pw, buf, sizeof(buf), &pwp);
	} else {
		if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
			return corral__err(err, ENOENT,
			                   "--user: no user named `%s` (give a name from "
			                   "/etc/passwd or a numeric uid)",
			                   user);
		p->uid = pwp->pw_uid;
	}
	p->gid = pwp ? pwp->pw_gid : (gid_t)p->uid;
	if (group) {
		unsigned long gid = strtoul(group, &end, 10);
		if (*group && !*end) {
			p->gid = (gid_t)gid;
		} else {
			char gbuf[16384];
			if (getgrnam_r(group, &gr, gbuf, sizeof(gbuf), &grp) != 0 || !grp)
				return corral__err(err, ENOENT, "--user: no group named `%s`",
				                   group);
			p->gid = grp->gr_gid;
		}
	}
	/* Supplementary groups of the user (none for a bare uid). */
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
			if (getgrouplist(pwp->pw_name, p->gid, p->groups, &ng) < 0)
				ng = 0;
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
	int max = 64;
	p->ro_mounts = calloc((size_t)max, sizeof(*p->ro_mounts));
	if (!p->ro_mounts) {
		free(text);
		return corral__err(err, ENOMEM, "cgroup mount list");
	}
	p->n_ro = corral__parse_cgroup_mount_points(text, p->ro_mounts, max);
	free(text);
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
	if (s->seccomp != CORRAL_SECCOMP_OFF) {
		struct corral__sc_profile prof;
		if (s->seccomp == CORRAL_SECCOMP_DEFAULT) {
			rc = corral__sc_default(&prof, s->allow_ptrace);
			if (rc < 0)
				return corral__err(err, -rc, "build the default seccomp profile");
		} else {
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
		}
		rc = corral__sc_compile(&prof, &p->prog, err);
		p->filter_kills = prof.action == SC_ACT_KILL;
		corral__sc_free(&prof);
		if (rc < 0) {
			if (s->seccomp == CORRAL_SECCOMP_FILE)
				corral__err_wrap(err, rc, "seccomp profile `%s`", s->seccomp_file);
			corral__sandbox_free(p);
			return rc;
		}
		p->has_filter = true;
		p->no_new_privs = true;
	}
	if (s->cgroup_ns) {
		p->unshare_flags |= CLONE_NEWCGROUP | CLONE_NEWNS;
		rc = collect_cgroup_mounts(p, err);
		if (rc < 0) {
			corral__sandbox_free(p);
			return rc;
		}
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
