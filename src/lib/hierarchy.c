/* hierarchy.c - find out, without changing anything, where this process may
 * create task cgroups and with which controllers; then create the batch cgroup.
 *
 * The mode (v2, hybrid, v1, none) comes from /proc/self/mountinfo: libcgroup
 * 2.0.2 skips a cgroup2 mount whose cgroup.controllers is empty, so on a hybrid
 * host it cannot tell hybrid from v1 (see check.c, which still shows
 * libcgroup's controller table). Paths come from /proc/self/cgroup, mapped
 * through the mount's root. Kernel features are probed with harmless calls.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/seccomp.h>

#include "cgroup.h"
#include "syscalls.h"

static int read_text(const char *path, char **out)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 8192, len = 0;
	char *buf;

	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* A cgroup path must be absolute and normalised: no "." or ".." components,
 * no empty components, no trailing slash (except "/"). */
static bool path_is_clean(const char *p)
{
	if (p[0] != '/')
		return false;
	if (p[1] == '\0')
		return true;
	for (const char *c = p; *c;) {
		const char *e;
		c++; /* skip '/' */
		e = strchrnul(c, '/');
		if (e == c)
			return false;
		if ((e - c == 1 && c[0] == '.') || (e - c == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = e;
	}
	return true;
}

/* Map a cgroup path (as /proc/self/cgroup shows it) to a directory through
 * the mount point and the mount's root. */
static int map_path(const struct corral__cg_mount *m, const char *path, char *out, size_t size)
{
	const char *rel = path;
	size_t rl = strlen(m->root);
	int n;

	if (strcmp(m->root, "/") != 0) {
		if (strncmp(path, m->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
			return -EXDEV; /* not below this mount */
		rel = path + rl;
	}
	if (strcmp(rel, "/") == 0)
		rel = "";
	n = snprintf(out, size, "%s%s", m->mount_point, rel);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool file_exists_at(const char *dir, const char *name)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* Does the kernel let memory.peak be written (6.12: 0644, before: 0444)? The
 * mode says it without a write to a cgroup that is not ours. */
static bool file_writable_at(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && (st.st_mode & S_IWUSR);
}

static void read_list(const char *dir, const char *name, char *out, size_t size)
{
	char p[PATH_MAX + 64];
	cleanup_close int fd = -1;
	ssize_t n;

	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = corral__pread_all(fd, out, size);
	if (n < 0)
		out[0] = '\0';
	/* One line: drop the newline. */
	for (char *c = out; *c; c++)
		if (*c == '\n')
			*c = '\0';
}

static void probe_kernel(struct corral__hier *h)
{
	struct utsname u;
	struct stat a, b;
	int fd;

	if (uname(&u) == 0) {
		snprintf(h->kernel_release, sizeof(h->kernel_release), "%s", u.release);
		sscanf(u.release, "%d.%d", &h->kernel_major, &h->kernel_minor);
	}
	/* clone3(NULL, 0) fails with EINVAL where clone3 exists, ENOSYS elsewhere. */
	errno = 0;
	if (syscall(SYS_clone3, NULL, 0) < 0 && errno != ENOSYS)
		h->clone3 = true;
	fd = corral__pidfd_open(getpid(), 0);
	if (fd >= 0) {
		siginfo_t si;
		h->pidfd = true;
		/* We are not our own child: ECHILD where P_PIDFD is known. */
		if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 &&
		    errno == ECHILD)
			h->waitid_pidfd = true;
		close(fd);
	}
	/* Filter mode supported: EFAULT for the NULL program, EINVAL otherwise. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 &&
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) < 0 && errno == EFAULT)
		h->seccomp = true;
	h->cgroupns = access("/proc/self/ns/cgroup", F_OK) == 0;
	if (h->cgroupns && stat("/proc/self/ns/cgroup", &a) == 0 &&
	    stat("/proc/1/ns/cgroup", &b) == 0 && a.st_ino != b.st_ino)
		h->in_cgroupns = true;
	h->clone_into_cgroup =
	    h->clone3 && h->mode == CORRAL_CG_V2 &&
	    (h->kernel_major > 5 || (h->kernel_major == 5 && h->kernel_minor >= 7));
}

/* Is path "<home>/corral-<our pid>-<...>/supervisor"? Then home[] = <home>. */
static bool supervisor_home(const char *path, char *home, size_t size)
{
	char prefix[32];
	const char *last = strrchr(path, '/'), *batch;
	int pl;

	if (!last || last == path || strcmp(last, "/supervisor") != 0)
		return false;
	batch = last - 1;
	while (batch > path && *batch != '/')
		batch--;
	pl = snprintf(prefix, sizeof(prefix), "corral-%d-", (int)getpid());
	if (strncmp(batch + 1, prefix, (size_t)pl) != 0 || (size_t)(batch - path) >= size)
		return false;
	if (batch == path) {
		snprintf(home, size, "/");
	} else {
		memcpy(home, path, (size_t)(batch - path));
		home[batch - path] = '\0';
	}
	return true;
}

static bool kernel_at_least(const struct corral__hier *h, int major, int minor)
{
	return h->kernel_major > major || (h->kernel_major == major && h->kernel_minor >= minor);
}

int corral__hier_discover(const struct corral__hier_env *env, const char *cgroup_parent,
                          struct corral__hier *h, corral_error_t *err)
{
	cleanup_free char *pc_text = NULL;
	cleanup_free char *mi_text = NULL;
	const char *pc = env ? env->proc_self_cgroup : NULL;
	const char *mi = env ? env->mountinfo : NULL;
	const struct corral__cg_mount *m = NULL;
	const char *own;
	char home[4096];
	int rc;

	memset(h, 0, sizeof(*h));
	if (!pc) {
		rc = read_text("/proc/self/cgroup", &pc_text);
		if (rc < 0)
			return corral__err(err, -rc, "read /proc/self/cgroup");
		pc = pc_text;
	}
	if (!mi) {
		rc = read_text("/proc/self/mountinfo", &mi_text);
		if (rc < 0)
			return corral__err(err, -rc, "read /proc/self/mountinfo");
		mi = mi_text;
	}
	rc = corral__parse_proc_cgroup(pc, &h->self);
	if (rc < 0)
		return corral__err(err, -rc, "parse /proc/self/cgroup");
	corral__parse_mountinfo(mi, &h->mounts);

	if (cgroup_parent && !path_is_clean(cgroup_parent))
		return corral__err(err, EINVAL,
		                   "--cgroup-parent `%s` is not a clean absolute cgroup path (like "
		                   "/jobs.slice/batch, as /proc/self/cgroup shows paths)",
		                   cgroup_parent);

	if (h->mounts.has_memory && h->self.has_memory_v1) {
		h->mode = h->mounts.has_v2 ? CORRAL_CG_HYBRID : CORRAL_CG_V1;
		m = &h->mounts.memory;
		own = h->self.memory_path;
	} else if (h->mounts.has_v2 && h->self.has_v2) {
		h->mode = CORRAL_CG_V2;
		m = &h->mounts.v2;
		own = h->self.v2_path;
		/* A second executor of this process: the first one moved us into
		 * <home>/corral-<ourpid>-.../supervisor. Our own cgroup is <home>
		 * then, and the new batch goes next to the first one, without a
		 * supervisor of its own (which would nest batch in batch). */
		if (!cgroup_parent && supervisor_home(own, home, sizeof(home))) {
			own = home;
			h->in_supervisor = true;
		}
	} else {
		h->mode = CORRAL_CG_NONE;
		if (env == NULL || env->probe_kernel)
			probe_kernel(h);
		return 0;
	}

	snprintf(h->base_path, sizeof(h->base_path), "%s", cgroup_parent ? cgroup_parent : own);
	h->base_is_own = strcmp(h->base_path, own) == 0;
	rc = map_path(m, h->base_path, h->base_dir, sizeof(h->base_dir));
	if (rc < 0)
		return corral__err(
		    err, -rc,
		    "cgroup `%s` is not visible under the %s mount at %s (mount root "
		    "%s)",
		    h->base_path, m->v2 ? "cgroup2" : "memory", m->mount_point, m->root);
	if (map_path(m, own, h->own_dir, sizeof(h->own_dir)) < 0)
		h->own_dir[0] = '\0';

	struct stat st;
	h->base_exists = stat(h->base_dir, &st) == 0 && S_ISDIR(st.st_mode);
	if (h->mode == CORRAL_CG_V2) {
		h->base_is_root = h->base_exists && !file_exists_at(h->base_dir, "cgroup.type");
		read_list(h->base_dir, "cgroup.controllers", h->controllers,
		          sizeof(h->controllers));
		read_list(h->base_dir, "cgroup.subtree_control", h->subtree_control,
		          sizeof(h->subtree_control));
		h->has_memory = corral__list_has(h->controllers, "memory");
		h->has_pids = corral__list_has(h->controllers, "pids");
		h->has_cpu = corral__list_has(h->controllers, "cpu");
		h->need_supervisor =
		    h->base_exists && h->base_is_own && !h->base_is_root && !h->in_supervisor;
		char scpath[PATH_MAX + 32];
		snprintf(scpath, sizeof(scpath), "%s/cgroup.subtree_control", h->base_dir);
		h->writable =
		    h->base_exists && access(h->base_dir, W_OK) == 0 && access(scpath, W_OK) == 0;
		/* Files of non-root cgroups tell what the kernel has; the root lacks them. */
		if (!h->base_is_root) {
			h->cgroup_kill = file_exists_at(h->base_dir, "cgroup.kill");
			h->memory_peak = file_exists_at(h->base_dir, "memory.peak");
			h->peak_reset =
			    h->memory_peak && file_writable_at(h->base_dir, "memory.peak");
			h->events_local = file_exists_at(h->base_dir, "memory.events.local");
			h->oom_group = file_exists_at(h->base_dir, "memory.oom.group");
			h->swap_accounting = file_exists_at(h->base_dir, "memory.swap.max");
		}
		/* We see ourselves at "/" although it is not the real root. */
		if (strcmp(own, "/") == 0 && h->own_dir[0] &&
		    file_exists_at(h->own_dir, "cgroup.type"))
			h->in_cgroupns = true;
	} else {
		/* The hierarchy's root, not just the root of a mount of a
		 * subtree (a container's /sys/fs/cgroup/memory of /docker/abc). */
		h->base_is_root =
		    strcmp(h->base_dir, m->mount_point) == 0 && strcmp(m->root, "/") == 0;
		h->has_memory = h->base_exists;
		h->writable = h->base_exists && access(h->base_dir, W_OK) == 0;
		h->memory_peak = h->peak_reset = true; /* memory.max_usage_in_bytes */
		h->swap_accounting = file_exists_at(h->base_dir, "memory.memsw.limit_in_bytes");
		/* pids lives on its own v1 hierarchy: the same path as in the
		 * memory hierarchy when it exists there (Slurm's layout), else
		 * our own pids cgroup, so that pids limits still apply. */
		for (int i = 0; i < 2 && h->mounts.has_pids && h->self.has_pids_v1 && !h->has_pids;
		     i++) {
			const char *pbase =
			    i == 0 && cgroup_parent ? cgroup_parent : h->self.pids_path;
			char pdir[PATH_MAX];
			if (map_path(&h->mounts.pids, pbase, pdir, sizeof(pdir)) == 0 &&
			    stat(pdir, &st) == 0 && S_ISDIR(st.st_mode) &&
			    access(pdir, W_OK) == 0) {
				snprintf(h->pids_base_dir, sizeof(h->pids_base_dir), "%s", pdir);
				h->has_pids = true;
			}
		}
	}
	if (env == NULL || env->probe_kernel) {
		probe_kernel(h);
		if (h->mode == CORRAL_CG_V2 && h->base_is_root) {
			h->cgroup_kill = kernel_at_least(h, 5, 14);
			h->memory_peak = kernel_at_least(h, 5, 19);
			h->peak_reset = kernel_at_least(h, 6, 12);
			h->events_local = kernel_at_least(h, 5, 3);
			h->oom_group = kernel_at_least(h, 4, 19);
			h->swap_accounting = access("/proc/swaps", F_OK) == 0;
		}
	}
	return 0;
}

const char *corral_cgroup_mode_name(corral_cgroup_mode_t m)
{
	switch (m) {
	case CORRAL_CG_V2:
		return "v2";
	case CORRAL_CG_HYBRID:
		return "hybrid";
	case CORRAL_CG_V1:
		return "v1";
	default:
		return "none";
	}
}

/* ------------------------------------------------------------ batch creation */

/* Field 22 of /proc/<pid>/stat: the process start time in clock ticks. Two
 * processes with the same pid have different start times, so (pid, start time)
 * names an owner that pid reuse cannot impersonate. */
int corral__proc_starttime(pid_t pid, unsigned long long *out)
{
	char path[64], buf[1024];
	cleanup_close int fd = -1;
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = corral__pread_all(fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	p = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
	if (!p)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	*out = strtoull(p + 1, NULL, 10);
	return 0;
}

/* The low 32 bits of our pid namespace's inode: a batch name carries them, so
 * that a sweeper never judges a batch whose owner lives in another pid
 * namespace (where its pid means nothing to us) -- a shared pids hierarchy
 * root is common on v1 hosts. */
static uint32_t pidns_tag(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino : 0;
}

/* Is "corral-<pid>-<start>-<pidns><nonce>" (16 hex digits at the end) owned
 * by a process of our pid namespace that is gone? */
static bool batch_is_stale(const char *name, uint32_t ns)
{
	unsigned long long start, now;
	int pid, used = 0;
	char tag[9];

	if (sscanf(name, "corral-%d-%llu-%n", &pid, &start, &used) < 2 || used == 0)
		return false;
	const char *hex = name + used;
	if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
		return false; /* not a name we make */
	snprintf(tag, sizeof(tag), "%08x", ns);
	if (memcmp(hex, tag, 8) != 0)
		return false; /* another pid namespace's: not ours to judge */
	if (corral__proc_starttime(pid, &now) < 0)
		return true; /* no such process */
	return now != start;
}

static void sweep_stale(const char *dir, bool v2)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint32_t ns = pidns_tag();
	char buf[4096];

	if (fd < 0)
		return;
	/* Collect names first, then destroy: do not mutate while iterating. */
	for (;;) {
		char names[16][96];
		int n = 0;
		long nread;
		lseek(fd, 0, SEEK_SET);
		while ((nread = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0 && n < 16) {
			for (long off = 0; off < nread && n < 16;) {
				struct corral__dirent64 *d = (void *)(buf + off);
				if (d->d_type == DT_DIR && !strncmp(d->d_name, "corral-", 7) &&
				    strlen(d->d_name) < sizeof(names[0]) &&
				    batch_is_stale(d->d_name, ns))
					snprintf(names[n++], sizeof(names[0]), "%s", d->d_name);
				off += d->d_reclen;
			}
		}
		if (n == 0)
			return;
		int removed = 0;
		for (int i = 0; i < n; i++) {
			if (corral__cg_destroy_tree(fd, names[i], v2,
			                            corral__now_ns() + 1000000000ull) == 0)
				removed++;
		}
		if (removed < n)
			return; /* something resists: do not loop forever */
	}
}

static int random_nonce(uint32_t *out)
{
	ssize_t n;

	do
		n = getrandom(out, sizeof(*out), GRND_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*out))
		*out = (uint32_t)corral__now_ns() ^ (uint32_t)getpid() << 16;
	return 0;
}

/* Write "+ctrl" into dir/cgroup.subtree_control; the kernel may answer EBUSY
 * for a short while after a process left a cgroup (crun PR #758): retry. */
static int enable_controller(int dirfd, const char *ctrl)
{
	char v[32];
	int rc = 0;

	snprintf(v, sizeof(v), "+%s", ctrl);
	for (int i = 0; i < 50; i++) {
		rc = corral__write_at(dirfd, "cgroup.subtree_control", v);
		if (rc != -EBUSY)
			break;
		usleep(2000);
	}
	return rc;
}

static void batch_close(struct corral__batch *b)
{
	corral__close(b->dirfd);
	corral__close(b->pids_dirfd);
	b->dirfd = b->pids_dirfd = -1;
}

/* Can memory.peak be reset (Linux 6.12: a write resets the peak seen through
 * that fd alone, so this probe changes nothing for anyone else)? Task
 * cgroups are recycled on v2 only then (cgroup_v2.c). */
static bool peak_resets(int dirfd)
{
	int fd = openat(dirfd, "memory.peak", O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	do
		n = write(fd, "reset\n", 6);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n == 6;
}

static int batch_create_v2(const struct corral__hier *h, const corral_options_t *o,
                           struct corral__batch *b, corral_error_t *err)
{
	cleanup_close int base = open(h->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const char *want[3];
	int nwant = 0, rc;
	char sc[256];

	if (base < 0)
		return corral__err(err, errno, "open base cgroup %s", h->base_dir);
	if (mkdirat(base, b->name, 0755) < 0)
		return corral__err(err, errno, "create batch cgroup %s/%s", h->base_dir, b->name);
	b->dirfd = openat(base, b->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0) {
		rc = corral__err(err, errno, "open batch cgroup %s", b->dir);
		goto fail;
	}
	if (h->need_supervisor) {
		if (mkdirat(b->dirfd, "supervisor", 0755) < 0) {
			rc = corral__err(err, errno, "create %s/supervisor", b->dir);
			goto fail;
		}
		b->supervisor = true;
		cleanup_close int sfd =
		    openat(b->dirfd, "supervisor", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = sfd < 0 ? -errno : corral__write_at(sfd, "cgroup.procs", "0");
		if (rc < 0) {
			rc = corral__err(err, -rc, "move corral into %s/supervisor", b->dir);
			goto fail;
		}
	}
	want[nwant++] = "memory";
	if (h->has_pids)
		want[nwant++] = "pids";
	if (h->has_cpu && o->cpus > 0)
		want[nwant++] = "cpu";
	read_list(h->base_dir, "cgroup.subtree_control", sc, sizeof(sc));
	for (int i = 0; i < nwant; i++) {
		if (corral__list_has(sc, want[i]))
			continue;
		rc = enable_controller(base, want[i]);
		if (rc < 0) {
			if (strcmp(want[i], "memory") != 0)
				continue; /* degrade: pids/cpu limits are optional */
			if (rc == -EBUSY)
				rc = corral__err(
				    err, EBUSY,
				    "cannot enable the memory controller in %s: other processes "
				    "live in that cgroup (the no-internal-process rule); run "
				    "corral alone in a delegated cgroup, e.g. `systemd-run --user "
				    "--scope -p Delegate=yes corral ...`, or pass --cgroup-parent",
				    h->base_dir);
			else
				rc = corral__err(err, -rc,
				                 "enable +memory in %s/cgroup.subtree_control",
				                 h->base_dir);
			goto fail;
		}
		size_t l = strlen(b->enabled_in_base);
		snprintf(b->enabled_in_base + l, sizeof(b->enabled_in_base) - l, "%s-%s",
		         l ? " " : "", want[i]);
	}
	for (int i = 0; i < nwant; i++) {
		rc = enable_controller(b->dirfd, want[i]);
		if (rc < 0 && strcmp(want[i], "memory") == 0) {
			rc = corral__err(err, -rc, "enable +memory in %s/cgroup.subtree_control",
			                 b->dir);
			goto fail;
		}
		if (rc == 0 && !strcmp(want[i], "pids"))
			b->has_pids = true;
		if (rc == 0 && !strcmp(want[i], "cpu"))
			b->has_cpu = true;
	}
	b->has_memory = true;
	b->cgroup_kill = faccessat(b->dirfd, "cgroup.kill", F_OK, 0) == 0;
	b->memory_peak = faccessat(b->dirfd, "memory.peak", F_OK, 0) == 0;
	b->peak_reset = b->memory_peak && peak_resets(b->dirfd);
	b->events_local = faccessat(b->dirfd, "memory.events.local", F_OK, 0) == 0;
	b->oom_group = faccessat(b->dirfd, "memory.oom.group", F_OK, 0) == 0;
	b->swap_accounting = faccessat(b->dirfd, "memory.swap.max", F_OK, 0) == 0;
	b->clone_into_cgroup = h->clone_into_cgroup;
	return 0;
fail:
	/* Undo what we did; the teardown knows how to leave the supervisor. */
	corral__teardown(b, 1000);
	batch_close(b);
	return rc;
}

static int batch_create_v1(const struct corral__hier *h, struct corral__batch *b,
                           corral_error_t *err)
{
	cleanup_close int base = open(h->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (base < 0)
		return corral__err(err, errno, "open base memory cgroup %s", h->base_dir);
	if (mkdirat(base, b->name, 0755) < 0)
		return corral__err(err, errno, "create batch cgroup %s", b->dir);
	b->dirfd = openat(base, b->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0) {
		rc = corral__err(err, errno, "open batch cgroup %s", b->dir);
		goto fail;
	}
	b->has_memory = true;
	if (h->has_pids) {
		cleanup_close int pbase =
		    open(h->pids_base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pbase >= 0 && mkdirat(pbase, b->name, 0755) == 0) {
			b->pids_dirfd = openat(pbase, b->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (b->pids_dirfd < 0) {
				rc = corral__err(err, errno, "open pids batch cgroup %s",
				                 b->pids_dir);
				goto fail;
			}
			b->has_pids = true;
		} else {
			b->pids_dir[0] = '\0'; /* degrade: no pids limit */
		}
	} else {
		b->pids_dir[0] = '\0';
	}
	b->memory_peak = true;
	b->swap_accounting = faccessat(b->dirfd, "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
	return 0;
fail:
	corral__teardown(b, 1000);
	batch_close(b);
	return rc;
}

int corral__batch_create(const struct corral__hier *h, const corral_options_t *o,
                         struct corral__batch *b, corral_error_t *err)
{
	unsigned long long start = 0;
	uint32_t nonce;

	memset(b, 0, sizeof(*b));
	b->dirfd = b->pids_dirfd = -1;
	b->mode = h->mode;
	if (h->mode == CORRAL_CG_NONE || !h->has_memory)
		return corral__err(
		    err, ENOTSUP,
		    "no usable memory controller (run `corral check` for what to do)");
	if (!h->base_exists)
		return corral__err(err, ENOENT, "base cgroup %s does not exist", h->base_dir);
	if (!h->writable)
		return corral__err(
		    err, EACCES,
		    "cannot create cgroups in %s: it is not delegated to us (run as "
		    "root, under `systemd-run --user --scope -p Delegate=yes`, or pass "
		    "--cgroup-parent with a cgroup you own)",
		    h->base_dir);
	corral__proc_starttime(getpid(), &start);
	random_nonce(&nonce);
	snprintf(b->name, sizeof(b->name), "corral-%d-%llu-%08x%08x", (int)getpid(), start,
	         pidns_tag(), nonce);
	if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s/%s", h->base_dir, b->name) >=
	    sizeof(b->dir))
		return corral__err(err, ENAMETOOLONG, "batch cgroup path under %s", h->base_dir);
	snprintf(b->base_dir, sizeof(b->base_dir), "%s", h->base_dir);
	if (h->pids_base_dir[0])
		snprintf(b->pids_dir, sizeof(b->pids_dir), "%s/%s", h->pids_base_dir, b->name);

	bool v2 = h->mode == CORRAL_CG_V2;
	sweep_stale(h->base_dir, v2);
	if (!v2 && h->pids_base_dir[0])
		sweep_stale(h->pids_base_dir, false);
	return v2 ? batch_create_v2(h, o, b, err) : batch_create_v1(h, b, err);
}
