/* provider.c - where task cgroups come from (design §9): the provider chain.
 *
 * In order, the first that works is used (or only the one that is pinned):
 *  1. own      --cgroup-parent, or our own cgroup when it is writable (root,
 *              a delegated unit, a container with a writable cgroupfs, a
 *              Slurm cgroup/v1 task directory); v2: corral moves itself into
 *              <batch>/supervisor (hierarchy.c)
 *  2. systemd  pure v2, not inside Slurm: a transient scope with Delegate=yes
 *              from the user manager, or from PID 1 when root
 *              (provider_systemd.c); then as 1
 *  3. slurm    inside a Slurm job: a writable cgroup of the step (cgroup/v1
 *              chowns step_* and task_* to the user); v2 steps are root-owned
 *  4. observe  the cgroupfs is readable: no per-task limits, the enclosing
 *              cgroup's OOM kills are attributed (observer.c)
 *  5. off      nothing
 * 4 and 5 enforce nothing, so they are never taken when a memory limit was
 * asked for. Every rung leaves one line in the provider record saying what
 * it found; the record is the report's "provider", `corral check`'s chain
 * and, when limits are off, the one block of text the CLI prints.
 *
 * corral_provider_plan() runs the same chain without side effects: no batch,
 * no scope (the systemd rung only connects and asks what the manager has).
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "provider.h"

static void app(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------ where we run */

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void detect(const struct corral__hier *h, struct corral__where *w)
{
	const char *job = getenv("SLURM_JOB_ID");
	const char *own = h->mode == CORRAL_CG_V2 ? h->self.v2_path : h->self.memory_path;

	memset(w, 0, sizeof(*w));
	w->root = geteuid() == 0;
	w->systemd_booted = exists("/run/systemd/system");
	if (job && *job) {
		w->slurm = true;
		snprintf(w->slurm_job, sizeof(w->slurm_job), "%s", job);
	} else if (strstr(own, "slurmstepd.scope") || strstr(own, "/slurm/")) {
		w->slurm = true;
		snprintf(w->slurm_job, sizeof(w->slurm_job), "?");
	}
	if (h->mode == CORRAL_CG_V2)
		w->cgroupfs_ro = h->mounts.v2.read_only;
	else if (h->mode != CORRAL_CG_NONE)
		w->cgroupfs_ro = h->mounts.memory.read_only;
	const char *ct = getenv("container");
	if (w->slurm) {
		w->kind = W_SLURM;
		w->platform =
		    h->mode == CORRAL_CG_V2 ? "Slurm job (cgroup v2)" : "Slurm job (cgroup v1)";
	} else if (getenv("KUBERNETES_SERVICE_HOST")) {
		w->kind = W_KUBERNETES;
		w->platform = "Kubernetes pod";
	} else if (getenv("APPTAINER_CONTAINER") || getenv("SINGULARITY_CONTAINER")) {
		w->kind = W_APPTAINER;
		w->platform = "Apptainer container";
	} else if (exists("/run/.containerenv") || (ct && !strcmp(ct, "podman"))) {
		w->kind = W_PODMAN;
		w->platform = "Podman container";
	} else if (exists("/.dockerenv") || (ct && !strcmp(ct, "docker"))) {
		w->kind = W_DOCKER;
		w->platform = "Docker container";
	} else if ((ct && *ct) || h->in_cgroupns) {
		w->kind = W_CONTAINER;
		w->platform = "container";
	} else {
		w->kind = W_HOST;
		w->platform = h->mode == CORRAL_CG_HYBRID ? "hybrid host (memory on cgroup v1)"
		              : h->mode == CORRAL_CG_V1   ? "cgroup v1 host"
		              : h->mode == CORRAL_CG_NONE ? "host without a memory cgroup"
		              : w->systemd_booted         ? "systemd host (cgroup v2)"
		                                          : "cgroup v2 host without systemd";
	}
}

/* ------------------------------------------------------------ the record */

static void step(corral_provider_t *p, corral_cgroups_t prov, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void step(corral_provider_t *p, corral_cgroups_t prov, int code, const char *fmt, ...)
{
	va_list ap;
	corral_provider_step_t *s;

	if (p->n_steps >= CORRAL_PROVIDER_STEPS)
		return;
	s = &p->steps[p->n_steps++];
	s->provider = prov;
	s->code = code < 0 ? -code : code;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

/* Other processes in dir/cgroup.procs than ours (and our threads). */
static int others_in(const char *dir)
{
	char path[PATH_MAX + 32], buf[4096];
	cleanup_close int fd = -1;
	int others = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = corral__pread_all(fd, buf, sizeof(buf));
	if (n == -EFBIG)
		return 1000; /* more than fit: certainly others */
	if (n < 0)
		return 0;
	for (char *c = buf; *c;) {
		char *end;
		long pid = strtol(c, &end, 10);
		if (end == c)
			break;
		if (pid > 0 && pid != getpid())
			others++;
		c = end;
		while (*c == '\n')
			c++;
	}
	return others;
}

/* Why the base of h cannot hold a batch, or NULL when it can (as far as
 * can be seen without trying). */
static const char *own_unusable(const struct corral__hier *h, const struct corral__where *w,
                                char *buf, size_t len)
{
	if (h->mode == CORRAL_CG_NONE)
		return "no memory controller is mounted";
	if (!h->base_exists) {
		snprintf(buf, len, "cgroup %s does not exist", h->base_path);
		return buf;
	}
	if (!h->has_memory) {
		snprintf(buf, len, "the memory controller is not available in %s%s%s%s",
		         h->base_path, h->mode == CORRAL_CG_V2 ? " (cgroup.controllers: " : "",
		         h->mode == CORRAL_CG_V2 ? (h->controllers[0] ? h->controllers : "none")
		                                 : "",
		         h->mode == CORRAL_CG_V2 ? ")" : "");
		return buf;
	}
	if (!h->writable) {
		if (w->cgroupfs_ro)
			snprintf(buf, len, "%s is on a read-only cgroupfs mount", h->base_path);
		else
			snprintf(buf, len, "%s is not writable by uid %d (not delegated)",
			         h->base_path, (int)geteuid());
		return buf;
	}
	if (h->mode == CORRAL_CG_V2 && h->need_supervisor &&
	    !corral__list_has(h->subtree_control, "memory")) {
		int n = others_in(h->base_dir);
		if (n > 0) {
			snprintf(buf, len,
			         "%d other process%s share%s %s, so the no-internal-process rule "
			         "forbids enabling memory there",
			         n, n == 1 ? "" : "es", n == 1 ? "s" : "", h->base_path);
			return buf;
		}
	}
	return NULL;
}

/* Create the batch under h's base; record the outcome. */
static int make_batch(const corral_options_t *o, bool dry, const struct corral__hier *h,
                      struct corral__batch *b, corral_provider_t *p, corral_cgroups_t prov,
                      const char *what)
{
	corral_error_t e;
	int rc;

	if (!dry) {
		rc = corral__batch_create(h, o, b, &e);
		if (rc < 0) {
			step(p, prov, rc, "%s", e.msg);
			return rc;
		}
	}
	step(p, prov, 0, "%s%s%s", what, dry ? "" : ": batch in ", dry ? "" : b->dir);
	p->used = prov;
	p->limits = true;
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", h->base_path);
	return 0;
}

/* ------------------------------------------------------------ the rungs */

/* Is h's base the scope an earlier executor of this process made? */
static bool our_scope(const struct corral__hier *h, const char **unit)
{
	char pfx[40];
	const char *last = strrchr(h->base_path, '/');
	size_t l;

	snprintf(pfx, sizeof(pfx), "/corral-%d-", (int)getpid());
	if (!last || strncmp(last, pfx, strlen(pfx)) != 0)
		return false;
	l = strlen(last);
	if (l <= 6 || strcmp(last + l - 6, ".scope") != 0)
		return false;
	*unit = last + 1;
	return true;
}

static int try_own(const corral_options_t *o, bool dry, const struct corral__where *w,
                   const struct corral__hier *h, struct corral__batch *b, corral_provider_t *p)
{
	char buf[512], what[400];
	const char *bad = own_unusable(h, w, buf, sizeof(buf));

	if (bad) {
		step(p, CORRAL_CGROUPS_OWN, h->mode == CORRAL_CG_NONE ? ENOTSUP : EACCES, "%s",
		     bad);
		return -EACCES;
	}
	/* Our own cgroup is a scope an earlier executor of this process made:
	 * that is the systemd rung's work, say so (unless own was pinned). */
	const char *unit;
	if (!o->cgroup_parent && o->cgroups == CORRAL_CGROUPS_AUTO && our_scope(h, &unit)) {
		snprintf(p->unit, sizeof(p->unit), "%s", unit);
		return make_batch(o, dry, h, b, p, CORRAL_CGROUPS_SYSTEMD,
		                  "the scope an earlier executor of this process made");
	}
	snprintf(what, sizeof(what), "%s %s is writable%s",
	         o->cgroup_parent ? "--cgroup-parent" : "our cgroup", h->base_path,
	         h->need_supervisor ? " (corral moves into <batch>/supervisor)" : "");
	return make_batch(o, dry, h, b, p, CORRAL_CGROUPS_OWN, what);
}

static int try_systemd(const corral_options_t *o, bool dry, const struct corral__where *w,
                       struct corral__hier *h, struct corral__batch *b, corral_provider_t *p)
{
	char why[512], buf[512], unit[128];
	bool system = w->root;
	int rc;

	if (w->slurm) {
		step(p, CORRAL_CGROUPS_SYSTEMD, EPERM,
		     "skipped inside Slurm job %s: a scope would take corral out of the job's "
		     "cgroup "
		     "and accounting",
		     w->slurm_job);
		return -EPERM;
	}
	if (h->mode != CORRAL_CG_V2) {
		step(p, CORRAL_CGROUPS_SYSTEMD, ENOTSUP,
		     "needs a pure cgroup v2 host (memory is on cgroup v1 here, which systemd does "
		     "not delegate)");
		return -ENOTSUP;
	}
	/* An earlier executor of this process runs a batch from here: a new
	 * scope would move the process away from under it. Its scope serves. */
	if (h->in_supervisor) {
		const char *unit_of;
		if (!our_scope(h, &unit_of)) {
			step(p, CORRAL_CGROUPS_SYSTEMD, EBUSY,
			     "another executor of this process runs a batch from %s: a scope would "
			     "move the process away from it",
			     h->base_path);
			return -EBUSY;
		}
		snprintf(p->unit, sizeof(p->unit), "%s", unit_of);
		return make_batch(o, dry, h, b, p, CORRAL_CGROUPS_SYSTEMD,
		                  "the scope an earlier executor of this process made");
	}
	if (system && !w->systemd_booted) {
		step(p, CORRAL_CGROUPS_SYSTEMD, ENOENT,
		     "PID 1 is not systemd (no /run/systemd/system)");
		return -ENOENT;
	}
	if (dry) {
		rc = corral__systemd_probe(system, o->cgroupfs ? o->cgroupfs : "/sys/fs/cgroup",
		                           why, sizeof(why));
		if (rc < 0) {
			step(p, CORRAL_CGROUPS_SYSTEMD, rc, "%s", why);
			return rc;
		}
		step(p, CORRAL_CGROUPS_SYSTEMD, 0,
		     "would ask for a transient scope with Delegate=yes: %s", why);
		p->used = CORRAL_CGROUPS_SYSTEMD;
		p->limits = true;
		return 0;
	}
	rc = corral__systemd_scope(system, unit, sizeof(unit), why, sizeof(why));
	if (rc < 0) {
		step(p, CORRAL_CGROUPS_SYSTEMD, rc, "%s", why);
		return rc;
	}
	snprintf(p->unit, sizeof(p->unit), "%s", unit);
	/* We live in the scope now: discover again, then as for our own. */
	struct corral__hier_env env = {.probe_kernel = true};
	corral_error_t e;
	rc = corral__hier_discover(&env, NULL, h, &e);
	if (rc < 0) {
		step(p, CORRAL_CGROUPS_SYSTEMD, rc, "in %s: %s", unit, e.msg);
		return rc;
	}
	const char *bad = own_unusable(h, w, buf, sizeof(buf));
	if (bad) {
		step(p, CORRAL_CGROUPS_SYSTEMD, EACCES, "in %s (corral stays in it): %s", unit,
		     bad);
		return -EACCES;
	}
	return make_batch(o, dry, h, b, p, CORRAL_CGROUPS_SYSTEMD, why);
}

static int try_slurm(const corral_options_t *o, bool dry, const struct corral__where *w,
                     struct corral__hier *h, struct corral__batch *b, corral_provider_t *p)
{
	char cand[4096], buf[512];

	if (!w->slurm) {
		step(p, CORRAL_CGROUPS_SLURM, ENOENT,
		     "not inside a Slurm job (SLURM_JOB_ID is unset)");
		return -ENOENT;
	}
	if (h->mode == CORRAL_CG_V2) {
		step(p, CORRAL_CGROUPS_SLURM, EACCES,
		     "Slurm job %s on cgroup v2: Slurm keeps the job's and the step's cgroups "
		     "root-owned and delegates nothing below the step",
		     w->slurm_job);
		return -EACCES;
	}
	if (h->mode == CORRAL_CG_NONE) {
		step(p, CORRAL_CGROUPS_SLURM, ENOTSUP, "no memory controller is mounted");
		return -ENOTSUP;
	}
	/* cgroup/v1: .../job_J/step_S/task_T; step_S and task_T are chowned to
	 * the job's user. Our own cgroup (the task's), then its ancestors up to
	 * the step, never above it. */
	snprintf(cand, sizeof(cand), "%s", h->self.memory_path);
	for (bool first = true; strstr(cand, "/step_"); first = false) {
		char *s = strrchr(cand, '/');
		if (!first) {
			if (!s || s == cand || !strncmp(s + 1, "step_", 5))
				break;
			*s = '\0';
		}
		struct corral__hier hh;
		struct corral__hier_env env = {.probe_kernel = true};
		corral_error_t e;
		if (corral__hier_discover(&env, cand, &hh, &e) < 0)
			break;
		if (!own_unusable(&hh, w, buf, sizeof(buf))) {
			char what[512];
			*h = hh;
			snprintf(what, sizeof(what),
			         "the Slurm step's cgroup %s is ours (cgroup/v1)", cand);
			return make_batch(o, dry, h, b, p, CORRAL_CGROUPS_SLURM, what);
		}
	}
	step(p, CORRAL_CGROUPS_SLURM, EACCES,
	     "no cgroup of Slurm job %s's step is writable by uid %d (this site's cgroup plugin "
	     "does not chown them)",
	     w->slurm_job, (int)geteuid());
	return -EACCES;
}

static int try_observe(bool dry, const struct corral__hier *h, struct corral__observer *ob,
                       corral_provider_t *p)
{
	char dir[PATH_MAX + 8];
	const char *path = h->mode == CORRAL_CG_V2 ? h->self.v2_path : h->self.memory_path;
	const struct corral__cg_mount *m =
	    h->mode == CORRAL_CG_V2 ? &h->mounts.v2 : &h->mounts.memory;
	struct corral__observer tmp;
	corral_error_t e;
	int rc;

	if (h->mode == CORRAL_CG_NONE) {
		step(p, CORRAL_CGROUPS_OBSERVE, ENOTSUP, "no memory controller is mounted");
		return -ENOTSUP;
	}
	/* Our own cgroup (not the base: cgroup_parent pins the own rung). */
	const char *rel = path;
	size_t rl = strlen(m->root);
	if (strcmp(m->root, "/") != 0) {
		if (strncmp(path, m->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0')) {
			step(p, CORRAL_CGROUPS_OBSERVE, EXDEV,
			     "our cgroup %s is not visible under %s", path, m->mount_point);
			return -EXDEV;
		}
		rel = path + rl;
	}
	snprintf(dir, sizeof(dir), "%s%s", m->mount_point, strcmp(rel, "/") ? rel : "");
	rc = corral__observer_open(dry ? &tmp : ob, h->mode == CORRAL_CG_V2, dir, path, &e);
	if (rc < 0) {
		step(p, CORRAL_CGROUPS_OBSERVE, rc, "%s%s", e.msg,
		     h->mode == CORRAL_CG_V2 && !strcmp(path, "/") && !h->in_cgroupns
		         ? " (the root cgroup has no memory.events)"
		         : "");
		return rc;
	}
	step(p, CORRAL_CGROUPS_OBSERVE, 0,
	     "no per-task limits; OOM kills in the enclosing cgroup are attributed to the tasks "
	     "(%s)",
	     (dry ? &tmp : ob)->limit_desc);
	if (dry)
		corral__observer_close(&tmp);
	p->used = CORRAL_CGROUPS_OBSERVE;
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", path);
	return 0;
}

/* ------------------------------------------------------------ facts and fixes */

/* memory.oom.group=1 on our cgroup or a visible ancestor (Kubernetes >= 1.28
 * sets it on containers): an OOM kill there takes every process, corral too. */
static void check_oom_group(const struct corral__hier *h, corral_provider_t *p)
{
	char d[PATH_MAX], cg[4096], f[PATH_MAX + 32], buf[32];

	if (h->mode != CORRAL_CG_V2 || !h->own_dir[0])
		return;
	snprintf(d, sizeof(d), "%s", h->own_dir);
	snprintf(cg, sizeof(cg), "%s", h->self.v2_path);
	for (int depth = 0; depth < 32; depth++) {
		cleanup_close int fd = -1;
		snprintf(f, sizeof(f), "%s/memory.oom.group", d);
		fd = open(f, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return; /* the root, or the top of our cgroup namespace */
		if (corral__pread_all(fd, buf, sizeof(buf)) > 0 && buf[0] == '1') {
			snprintf(
			    p->warning, sizeof(p->warning),
			    "cgroup %s has memory.oom.group=1 (Kubernetes >= 1.28 sets it): an OOM "
			    "kill at its limit kills every process in it, corral included; keep "
			    "the tasks' limits below it (--memory), or set the kubelet's "
			    "singleProcessOOMKill (Kubernetes >= 1.32)",
			    cg);
			return;
		}
		char *s = strrchr(d, '/'), *t = strrchr(cg, '/');
		if (!s || s == d || !t)
			return;
		*s = '\0';
		if (t == cg)
			snprintf(cg, sizeof(cg), "/");
		else
			*t = '\0';
	}
}

static void add_fix(corral_provider_t *p, const char *fix)
{
	size_t l = strlen(p->fixes);
	snprintf(p->fixes + l, sizeof(p->fixes) - l, "%s%s", l ? "\n" : "", fix);
}

static void fixes(const struct corral__hier *h, const struct corral__where *w, corral_provider_t *p)
{
	switch (w->kind) {
	case W_DOCKER:
		add_fix(p,
		        "docker run --security-opt writable-cgroups=true ... (or --privileged): a "
		        "writable cgroupfs");
		break;
	case W_PODMAN:
		add_fix(p,
		        "podman run --systemd=always ...: /sys/fs/cgroup is then mounted writable");
		break;
	case W_KUBERNETES:
		add_fix(
		    p, "containerd: the runtime handler option cgroup_writable = true (2.1+); "
		       "CRI-O: the annotation io.kubernetes.cri-o.cgroup2-mount-hierarchy-rw; or a "
		       "privileged container");
		break;
	case W_CONTAINER:
		add_fix(p, "start the container with a writable cgroupfs (docker --security-opt "
		           "writable-cgroups=true, podman --systemd=always, or privileged)");
		break;
	case W_SLURM:
		if (h->mode == CORRAL_CG_V2)
			add_fix(p,
			        "ask the Slurm admins: cgroup/v2 Slurm delegates nothing below the "
			        "step; per-task limits from Slurm need one step per task "
			        "(srun --exact -n1 --mem=M), and the cgroup/v1 plugin chowns the "
			        "step's cgroups to the job's user");
		else
			add_fix(p, "ask the Slurm admins for the cgroup plugin's per-user step "
			           "directories (cgroup/v1 chowns step_*/task_* to the user)");
		break;
	case W_APPTAINER:
		add_fix(p,
		        "apptainer runs in the host's cgroup: start it under `systemd-run --user "
		        "--scope -p Delegate=yes apptainer ...` on a cgroup v2 host");
		break;
	case W_HOST:
		if (h->mode == CORRAL_CG_V2 && w->systemd_booted)
			add_fix(p, w->root
			               ? "systemd-run --scope -p Delegate=yes corral ..."
			               : "systemd-run --user --scope -p Delegate=yes corral ... "
			                 "(needs a user manager: a login session, or "
			                 "`loginctl enable-linger`)");
		else if (h->mode == CORRAL_CG_HYBRID || h->mode == CORRAL_CG_V1)
			add_fix(p,
			        "cgroup v1 memory is not delegated to users: run as root, or ask "
			        "the admin for a memory cgroup chowned to you and pass it with "
			        "--cgroup-parent, or boot with cgroup v2 "
			        "(systemd.unified_cgroup_hierarchy=1)");
		else if (h->mode == CORRAL_CG_NONE)
			add_fix(p, "mount the memory controller (cgroup v2, or v1 memory)");
		break;
	}
	if (w->kind != W_HOST && (h->mode == CORRAL_CG_HYBRID || h->mode == CORRAL_CG_V1))
		add_fix(p, "(on this cgroup v1 memory hierarchy only root, or a memory cgroup "
		           "chowned to you and passed with --cgroup-parent, gives limits)");
	else if (w->kind != W_HOST || h->mode == CORRAL_CG_V2)
		add_fix(p,
		        "or run as root, or pass --cgroup-parent PATH with a cgroup delegated to "
		        "you");
}

static void found(const struct corral__hier *h, const struct corral__where *w, corral_provider_t *p)
{
	const char *own = h->mode == CORRAL_CG_V2     ? h->self.v2_path
	                  : h->mode == CORRAL_CG_NONE ? ""
	                                              : h->self.memory_path;
	snprintf(p->platform, sizeof(p->platform), "%s", w->platform);
	snprintf(p->found, sizeof(p->found), "%s; %s%s%s%s; uid %d%s%s%s", w->platform,
	         h->mode == CORRAL_CG_V2       ? "cgroup v2"
	         : h->mode == CORRAL_CG_HYBRID ? "memory on cgroup v1 (hybrid)"
	         : h->mode == CORRAL_CG_V1     ? "cgroup v1"
	                                       : "no memory cgroup",
	         w->cgroupfs_ro ? " mounted read-only" : "", own[0] ? ", own cgroup " : "", own,
	         (int)geteuid(), h->in_cgroupns ? "; in a cgroup namespace" : "",
	         w->slurm ? "; Slurm job " : "", w->slurm ? w->slurm_job : "");
}

/* ------------------------------------------------------------ the chain */

static bool limits_needed(const corral_options_t *o)
{
	return o->memory_max != CORRAL_UNLIMITED || o->memory_budget != CORRAL_UNLIMITED;
}

static int chain(const corral_options_t *o, bool dry, struct corral__hier *h,
                 struct corral__batch *b, struct corral__observer *ob, corral_provider_t *p,
                 corral_error_t *err)
{
	static const corral_cgroups_t order[] = {CORRAL_CGROUPS_OWN, CORRAL_CGROUPS_SYSTEMD,
	                                         CORRAL_CGROUPS_SLURM, CORRAL_CGROUPS_OBSERVE,
	                                         CORRAL_CGROUPS_OFF};
	struct corral__hier_env env = {.probe_kernel = true};
	struct corral__where w;
	corral_cgroups_t want = o->no_cgroups ? CORRAL_CGROUPS_OFF : o->cgroups;
	bool need = limits_needed(o);
	int rc;

	memset(p, 0, sizeof(*p));
	p->used = CORRAL_CGROUPS_OFF;
	if ((unsigned)want >= CORRAL_CGROUPS_COUNT)
		return corral__err(err, EINVAL, "unknown cgroups provider %d", (int)want);
	if (o->no_cgroups && o->cgroups != CORRAL_CGROUPS_AUTO && o->cgroups != CORRAL_CGROUPS_OFF)
		return corral__err(err, EINVAL, "no_cgroups contradicts cgroups=%s",
		                   corral_cgroups_name(o->cgroups));
	/* An explicit parent is the own rung's, and only its. */
	if (o->cgroup_parent && want == CORRAL_CGROUPS_AUTO)
		want = CORRAL_CGROUPS_OWN;
	if (o->cgroup_parent && want != CORRAL_CGROUPS_OWN)
		return corral__err(err, EINVAL, "a cgroup parent goes with cgroups=own, not %s",
		                   corral_cgroups_name(want));
	if (need && (want == CORRAL_CGROUPS_OBSERVE || want == CORRAL_CGROUPS_OFF))
		return corral__err(err, EINVAL,
		                   "a memory limit needs per-task cgroups: cgroups=%s has none",
		                   corral_cgroups_name(want));
	rc = corral__hier_discover(&env, o->cgroup_parent, h, err);
	if (rc < 0)
		return rc;
	detect(h, &w);
	found(h, &w, p);
	check_oom_group(h, p);

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		corral_cgroups_t prov = order[i];
		if (want != CORRAL_CGROUPS_AUTO && want != prov)
			continue;
		if (need && (prov == CORRAL_CGROUPS_OBSERVE || prov == CORRAL_CGROUPS_OFF))
			continue; /* they enforce nothing */
		switch (prov) {
		case CORRAL_CGROUPS_OWN:
			rc = try_own(o, dry, &w, h, b, p);
			break;
		case CORRAL_CGROUPS_SYSTEMD:
			rc = try_systemd(o, dry, &w, h, b, p);
			break;
		case CORRAL_CGROUPS_SLURM:
			rc = try_slurm(o, dry, &w, h, b, p);
			break;
		case CORRAL_CGROUPS_OBSERVE:
			rc = try_observe(dry, h, ob, p);
			break;
		default:
			step(p, CORRAL_CGROUPS_OFF, 0,
			     "no cgroups: no limits, no OOM attribution, and daemons a task leaves "
			     "may outlive it");
			p->used = CORRAL_CGROUPS_OFF;
			rc = 0;
			break;
		}
		if (rc == 0)
			break;
	}
	/* The fixes, unless running without limits is what was asked for. */
	if (!p->limits && want != CORRAL_CGROUPS_OBSERVE && want != CORRAL_CGROUPS_OFF)
		fixes(h, &w, p);
	if (rc == 0)
		return 0;
	/* Nothing worked: one line with every reason (the record has more). */
	char msg[sizeof(err->msg)];
	size_t pos = 0;
	for (unsigned i = 0; i < p->n_steps; i++) {
		const corral_provider_step_t *s = &p->steps[i];
		if (need &&
		    (s->provider == CORRAL_CGROUPS_OBSERVE || s->provider == CORRAL_CGROUPS_OFF))
			continue;
		app(msg, sizeof(msg), &pos, "%s%s: %s", pos ? "; " : "",
		    corral_cgroups_name(s->provider), s->why);
	}
	if (pos >= sizeof(msg))
		pos = sizeof(msg) - 1;
	msg[pos] = '\0';
	return corral__err(
	    err, want == CORRAL_CGROUPS_AUTO ? ENOTSUP : p->steps[0].code, "%s%s",
	    want == CORRAL_CGROUPS_AUTO ? "per-task memory limits are not possible here: " : "",
	    msg);
}

int corral__provide(const corral_options_t *o, struct corral__hier *h, struct corral__batch *b,
                    struct corral__observer *ob, corral_provider_t *p, corral_error_t *err)
{
	return chain(o, false, h, b, ob, p, err);
}

int corral_provider_plan(const corral_options_t *o, corral_provider_t *out, corral_error_t *err)
{
	struct corral__hier h;
	struct corral__batch b;
	struct corral__observer ob;
	int rc;

	memset(&b, 0, sizeof(b));
	b.dirfd = b.pids_dirfd = -1;
	memset(&ob, 0, sizeof(ob));
	ob.fd = -1;
	rc = chain(o, true, &h, &b, &ob, out, err);
	/* A plan that finds nothing is an answer, not an error. */
	return rc == -ENOTSUP || rc == -EACCES ? 0 : rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ text */

static void app(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = *pos < len ? vsnprintf(buf + *pos, len - *pos, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

int corral_provider_text(const corral_provider_t *p, bool verbose, char *out, size_t outlen)
{
	/* Made whole here (every field of p is bounded), then copied like
	 * snprintf: the length returned is that of the whole text. */
	size_t pos = 0, len = 12288;
	cleanup_free char *buf = malloc(len);

	if (!buf) {
		if (out && outlen)
			out[0] = '\0';
		return 0;
	}
	buf[0] = '\0';
	if (p->limits && !verbose) {
		app(buf, len, &pos, "per-task limits ON: cgroups from %s (%s)",
		    corral_cgroups_name(p->used), p->cgroup);
	} else if (p->limits) {
		app(buf, len, &pos, "per-task limits ON: cgroups from %s%s%s, base %s\n",
		    corral_cgroups_name(p->used), p->unit[0] ? ", scope " : "", p->unit, p->cgroup);
		app(buf, len, &pos, "  found: %s\n", p->found);
	} else if (p->n_steps == 0 || p->steps[p->n_steps - 1].code != 0) {
		app(buf, len, &pos, "no provider of per-task cgroups works here\n");
		app(buf, len, &pos, "  found: %s\n", p->found);
	} else {
		app(buf, len, &pos, "per-task limits OFF: %s\n",
		    p->used == CORRAL_CGROUPS_OBSERVE
		        ? "no cgroup per task here; OOM kills in the enclosing cgroup are still "
		          "attributed (observe mode)"
		        : "no cgroups at all: no limits, no OOM attribution");
		app(buf, len, &pos, "  found: %s\n", p->found);
	}
	if (!p->limits || verbose) {
		bool first = true;
		for (unsigned i = 0; i < p->n_steps; i++) {
			const corral_provider_step_t *s = &p->steps[i];
			if (s->code == 0)
				continue;
			app(buf, len, &pos, "  %s %s: %s\n", first ? "tried:" : "      ",
			    corral_cgroups_name(s->provider), s->why);
			first = false;
		}
		for (unsigned i = 0; i < p->n_steps; i++)
			if (p->steps[i].code == 0)
				app(buf, len, &pos, "  using: %s: %s\n",
				    corral_cgroups_name(p->steps[i].provider), p->steps[i].why);
	}
	if (p->warning[0])
		app(buf, len, &pos, "%swarning: %s\n", pos && buf[pos - 1] != '\n' ? "\n  " : "  ",
		    p->warning);
	if (!p->limits && p->fixes[0]) {
		app(buf, len, &pos, "  for per-task limits:\n");
		for (const char *l = p->fixes; *l;) {
			const char *e = strchrnul(l, '\n');
			app(buf, len, &pos, "    %.*s\n", (int)(e - l), l);
			l = *e ? e + 1 : e;
		}
	}
	/* No trailing newline: the caller prints the block as one message. */
	if (pos >= len)
		pos = len - 1;
	if (pos && buf[pos - 1] == '\n')
		buf[--pos] = '\0';
	if (out && outlen)
		snprintf(out, outlen, "%s", buf);
	return (int)pos;
}
