/* check.c - `corral check`: what this host offers, and what to do about what
 * is missing. Changes nothing.
 *
 * The controller/mount table comes from libcgroup (cgroup_init() and its
 * mount iterators); the mode, the base and the features from hierarchy.c,
 * because libcgroup 2.0.2 hides a cgroup2 mount without controllers (so it
 * cannot tell a hybrid host from a v1 host) and knows nothing of delegation.
 * libcgroup's cgroup_strerror() mislabels every code >= 50022 and crashes on
 * ECGNONEMPTY in 2.0.2, so its codes are described by our own table.
 */
#include <fcntl.h>
#include <libcgroup.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdio.h>

#include "cgroup.h"
#include "seccomp_profile.h"

static const char *cg_code_name(int code)
{
	switch (code) {
	case 0:
		return "ok";
	case ECGROUPNOTCOMPILED:
		return "libcgroup was built without cgroup support";
	case ECGROUPNOTMOUNTED:
		return "no cgroup controller is mounted";
	case ECGROUPNOTEXIST:
		return "cgroup does not exist";
	case ECGROUPNOTALLOWED:
		return "operation not allowed";
	case ECGOTHER:
		return "system error (see errno)";
	case ECGEOF:
		return "end of list";
	case ECGINVAL:
		return "invalid argument";
	case ECGROUPNOTINITIALIZED:
		return "not initialised";
	case ECGROUPPARSEFAIL:
		return "could not parse /proc/mounts";
	case ECGNONEMPTY:
		return "cgroup is not empty";
	default:
		return "unknown libcgroup error";
	}
}

struct out {
	int fd;
	char buf[32768];
	size_t len;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len +=
		    (size_t)n < sizeof(o->buf) - o->len ? (size_t)n : sizeof(o->buf) - o->len - 1;
}

static void json_str(struct out *o, const char *s)
{
	emit(o, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			emit(o, "\\%c", *p);
		else if (*p < 0x20)
			emit(o, "\\u%04x", *p);
		else
			emit(o, "%c", *p);
	}
	emit(o, "\"");
}

#define MAX_ADVICE 16

struct verdict {
	bool limits_ok;
	const char *advice[MAX_ADVICE];
	int n;
};

static void advise(struct verdict *v, const char *s)
{
	if (v->n < MAX_ADVICE)
		v->advice[v->n++] = s;
}

static void judge(const struct corral__hier *h, struct verdict *v)
{
	v->limits_ok = true;
	if (h->mode == CORRAL_CG_NONE) {
		v->limits_ok = false;
		advise(v, "no memory controller is mounted: boot with cgroup v2 "
		          "(systemd.unified_cgroup_hierarchy=1) or mount the v1 memory controller; "
		          "meanwhile corral can run tasks only without limits (--no-cgroups)");
		return;
	}
	/* Whether and where corral gets task cgroups (delegation, writable
	 * mounts, the no-internal-process rule, systemd, Slurm) is the provider
	 * chain's to say: see corral_check(). */
	if (h->mode == CORRAL_CG_V2 && !h->has_pids)
		advise(v, "the pids controller is not available: --pids limits will be ignored");
	if (h->mode != CORRAL_CG_V2 && !h->pids_base_dir[0])
		advise(v, "no writable v1 pids hierarchy: --pids limits will be ignored");
	if (!h->pidfd || !h->waitid_pidfd) {
		v->limits_ok = false;
		advise(v, "pidfds are missing (Linux >= 5.4 needed): corral cannot watch tasks "
		          "safely here");
	}
	if (h->mode == CORRAL_CG_V2 && !h->clone_into_cgroup)
		advise(v, "clone3(CLONE_INTO_CGROUP) is missing (Linux >= 5.7): tasks join their "
		          "cgroup just after fork instead");
	if (h->mode == CORRAL_CG_V2 && !h->cgroup_kill)
		advise(v, "cgroup.kill is missing (Linux >= 5.14): corral kills task processes one "
		          "by one");
	if (h->mode == CORRAL_CG_V2 && !h->memory_peak)
		advise(v, "memory.peak is missing (Linux >= 5.19): peak memory is not reported");
	if (!h->seccomp)
		advise(v, "seccomp filters are unavailable: run with --no-sandbox");
	if (h->mode == CORRAL_CG_HYBRID || h->mode == CORRAL_CG_V1)
		advise(v,
		       "the memory controller is on cgroup v1: corral uses its v1 backend "
		       "(no memory.oom.group: an OOM kill takes one process, not the whole task)");
}

/* What the sandbox can do here (README, "Security model"): the namespaces
 * need CAP_SYS_ADMIN; without them tasks run in the caller's. */
struct sandbox_facts {
	bool privileged; /* CAP_SYS_ADMIN: cgroup, mount, PID and network namespaces */
	bool pid_ns;     /* the kernel has PID namespaces */
	int kmsg_errno;  /* 0: /dev/kmsg is readable (the OOM killer's victims by name) */
	int dmesg_restrict;
};

static void sandbox_facts(struct sandbox_facts *f)
{
	struct __user_cap_header_struct hd = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	f->privileged = syscall(SYS_capget, &hd, d) == 0
	                    ? (d[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1u
	                    : geteuid() == 0;
	f->pid_ns = access("/proc/self/ns/pid", F_OK) == 0;
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	f->kmsg_errno = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	char buf[16];
	f->dmesg_restrict = -1;
	if (corral__read_at(AT_FDCWD, "/proc/sys/kernel/dmesg_restrict", buf, sizeof(buf)) > 0)
		f->dmesg_restrict = atoi(buf);
}

static const char *yesno(bool b)
{
	return b ? "yes" : "no";
}

int corral_check(const corral_options_t *o, bool json, int fd, corral_error_t *err)
{
	struct corral__hier h;
	struct verdict v;
	struct out *out;
	struct corral__hier_env env = {.probe_kernel = true};
	int rc, cg_rc;
	void *handle = NULL;
	struct cgroup_mount_point mp;
	struct {
		char name[64], path[PATH_MAX];
	} table[32];
	int nt = 0;

	rc = corral__hier_discover(&env, o ? o->cgroup_parent : NULL, &h, err);
	if (rc < 0)
		return rc;
	memset(&v, 0, sizeof(v));
	judge(&h, &v);
	struct sandbox_facts sf;
	sandbox_facts(&sf);
	/* The provider chain, without side effects. */
	corral_options_t dflt;
	corral_provider_t *plan = calloc(1, sizeof(*plan));
	if (!plan)
		return corral__err(err, ENOMEM, "check report");
	if (!o) {
		corral_options_init(&dflt);
		o = &dflt;
	}
	rc = corral_provider_plan(o, plan, err);
	if (rc < 0) {
		free(plan);
		return rc;
	}
	if (!plan->limits)
		v.limits_ok = false;

	cg_rc = cgroup_init();
	if (cg_rc == 0) {
		int r = cgroup_get_controller_begin(&handle, &mp);
		while (r == 0 && nt < (int)ARRAY_SIZE(table)) {
			snprintf(table[nt].name, sizeof(table[nt].name), "%.63s", mp.name);
			snprintf(table[nt].path, sizeof(table[nt].path), "%s", mp.path);
			nt++;
			r = cgroup_get_controller_next(&handle, &mp);
		}
		cgroup_get_controller_end(&handle);
	}

	out = calloc(1, sizeof(*out));
	if (!out) {
		free(plan);
		return corral__err(err, ENOMEM, "check report");
	}
	out->fd = fd;
	const char *mode = h.mode == CORRAL_CG_HYBRID ? "hybrid (memory on v1)"
	                   : h.mode == CORRAL_CG_V1   ? "v1"
	                   : h.mode == CORRAL_CG_V2   ? "v2"
	                                              : "none";
	if (json) {
		emit(out, "{\"version\":");
		json_str(out, CORRAL_VERSION_STRING);
		emit(out,
		     ",\"mode\":\"%s\",\"mode_description\":", corral_cgroup_mode_name(h.mode));
		json_str(out, mode);
		emit(out, ",\"kernel\":");
		json_str(out, h.kernel_release);
		emit(out, ",\"base\":{\"path\":");
		json_str(out, h.base_path);
		emit(out, ",\"dir\":");
		json_str(out, h.base_dir);
		emit(out, ",\"pids_dir\":");
		json_str(out, h.pids_base_dir);
		emit(out,
		     ",\"exists\":%s,\"is_own\":%s,\"is_root\":%s,\"writable\":%s,"
		     "\"needs_supervisor\":%s,\"in_cgroup_namespace\":%s,\"controllers\":",
		     h.base_exists ? "true" : "false", h.base_is_own ? "true" : "false",
		     h.base_is_root ? "true" : "false", h.writable ? "true" : "false",
		     h.need_supervisor ? "true" : "false", h.in_cgroupns ? "true" : "false");
		json_str(out, h.controllers);
		emit(out, ",\"subtree_control\":");
		json_str(out, h.subtree_control);
		emit(out, "},\"controllers\":{\"memory\":%s,\"pids\":%s,\"cpu\":%s}",
		     h.has_memory ? "true" : "false", h.has_pids ? "true" : "false",
		     h.has_cpu ? "true" : "false");
		emit(out,
		     ",\"features\":{\"clone3\":%s,\"clone_into_cgroup\":%s,\"pidfd_open\":%s,"
		     "\"waitid_pidfd\":%s,\"cgroup_kill\":%s,\"memory_peak\":%s,"
		     "\"memory_peak_reset\":%s,"
		     "\"memory_events_local\":%s,\"memory_oom_group\":%s,\"swap_accounting\":%s,"
		     "\"seccomp\":%s,\"cgroup_namespaces\":%s}",
		     h.clone3 ? "true" : "false", h.clone_into_cgroup ? "true" : "false",
		     h.pidfd ? "true" : "false", h.waitid_pidfd ? "true" : "false",
		     h.cgroup_kill ? "true" : "false", h.memory_peak ? "true" : "false",
		     h.peak_reset ? "true" : "false", h.events_local ? "true" : "false",
		     h.oom_group ? "true" : "false", h.swap_accounting ? "true" : "false",
		     h.seccomp ? "true" : "false", h.cgroupns ? "true" : "false");
		emit(out,
		     ",\"sandbox\":{\"namespaces\":%s,\"pid_namespace\":%s,"
		     "\"seccomp_judged_max\":%d,\"oom_victims\":%s}",
		     sf.privileged ? "true" : "false",
		     sf.privileged && sf.pid_ns ? "true" : "false", CORRAL_SC_JUDGED_MAX,
		     sf.kmsg_errno == 0 ? "true" : "false");
		emit(out, ",\"libcgroup\":{\"init\":");
		json_str(out, cg_code_name(cg_rc));
		emit(out, ",\"mounts\":[");
		for (int i = 0; i < nt; i++) {
			emit(out, "%s{\"controller\":", i ? "," : "");
			json_str(out, table[i].name);
			emit(out, ",\"path\":");
			json_str(out, table[i].path);
			emit(out, "}");
		}
		emit(out, "]},\"provider\":{\"name\":");
		json_str(out, corral_cgroups_name(plan->used));
		emit(out, ",\"limits\":%s,\"cgroup\":", plan->limits ? "true" : "false");
		json_str(out, plan->cgroup);
		emit(out, ",\"platform\":");
		json_str(out, plan->platform);
		emit(out, ",\"found\":");
		json_str(out, plan->found);
		emit(out, ",\"warning\":");
		if (plan->warning[0])
			json_str(out, plan->warning);
		else
			emit(out, "null");
		emit(out, ",\"steps\":[");
		for (unsigned i = 0; i < plan->n_steps; i++) {
			emit(out, "%s{\"name\":", i ? "," : "");
			json_str(out, corral_cgroups_name(plan->steps[i].provider));
			emit(out, ",\"used\":%s,\"why\":", plan->steps[i].code ? "false" : "true");
			json_str(out, plan->steps[i].why);
			emit(out, "}");
		}
		emit(out, "],\"fixes\":[");
		for (const char *l = plan->fixes, *e; *l; l = *e ? e + 1 : e) {
			e = strchrnul(l, '\n');
			emit(out, "%s", l == plan->fixes ? "" : ",");
			char line[1024];
			snprintf(line, sizeof(line), "%.*s", (int)(e - l), l);
			json_str(out, line);
		}
		emit(out, "]}");
		emit(out, ",\"memory_limits\":%s,\"advice\":[", v.limits_ok ? "true" : "false");
		for (int i = 0; i < v.n; i++) {
			emit(out, "%s", i ? "," : "");
			json_str(out, v.advice[i]);
		}
		emit(out, "]}\n");
	} else {
		emit(out, "corral %s\n\n", CORRAL_VERSION_STRING);
		emit(out, "  cgroup mode           %s\n", mode);
		emit(out, "  kernel                %s\n", h.kernel_release);
		if (h.mode != CORRAL_CG_NONE) {
			emit(out, "  base cgroup           %s%s\n", h.base_path,
			     h.base_is_own ? " (our own)" : "");
			emit(out, "  base directory        %s\n", h.base_dir);
			if (h.pids_base_dir[0])
				emit(out, "  pids directory        %s\n", h.pids_base_dir);
			emit(out, "  exists / writable     %s / %s\n", yesno(h.base_exists),
			     yesno(h.writable));
			if (h.mode == CORRAL_CG_V2) {
				emit(out, "  controllers           %s\n",
				     h.controllers[0] ? h.controllers : "(none)");
				emit(out, "  subtree_control       %s\n",
				     h.subtree_control[0] ? h.subtree_control : "(none)");
				emit(out, "  supervisor leaf       %s\n",
				     h.need_supervisor ? "needed (corral moves into "
				                         "<batch>/supervisor)"
				                       : "not needed");
			}
			emit(out, "  cgroup namespace      %s\n", yesno(h.in_cgroupns));
		}
		emit(out, "\n  memory / pids / cpu   %s / %s / %s\n", yesno(h.has_memory),
		     yesno(h.has_pids), yesno(h.has_cpu));
		emit(out, "  clone3 into cgroup    %s\n", yesno(h.clone_into_cgroup));
		emit(out, "  pidfd_open / waitid   %s / %s\n", yesno(h.pidfd),
		     yesno(h.waitid_pidfd));
		emit(out, "  cgroup.kill           %s\n", yesno(h.cgroup_kill));
		emit(out, "  memory peak           %s\n", yesno(h.memory_peak));
		emit(out, "  task cgroups recycled %s\n",
		     h.peak_reset ? "yes (an empty one serves the next task)"
		     : h.memory_peak
		         ? "no: memory.peak cannot be reset before Linux 6.12, a fresh one per task"
		         : "no: a fresh one per task");
		emit(out, "  memory.events.local   %s\n", yesno(h.events_local));
		emit(out, "  memory.oom.group      %s\n", yesno(h.oom_group));
		emit(out, "  swap accounting       %s\n", yesno(h.swap_accounting));
		emit(out, "  seccomp               %s\n", yesno(h.seccomp));
		emit(out, "  cgroup namespaces     %s\n", yesno(h.cgroupns));
		emit(out, "\n  sandbox namespaces    %s\n",
		     sf.privileged ? "yes (cgroup + read-only cgroupfs, PID, network)"
		                   : "no: they need CAP_SYS_ADMIN (run as root); tasks run in "
		                     "corral's namespaces, can see and signal it");
		emit(out, "  batch PID namespace   %s\n",
		     sf.privileged && sf.pid_ns ? "yes (tasks cannot see or signal corral)"
		     : sf.pid_ns                ? "no (needs CAP_SYS_ADMIN)"
		                                : "no (the kernel has no PID namespaces)");
		emit(out, "  seccomp judges calls  up to %d; every newer one gets ENOSYS\n",
		     CORRAL_SC_JUDGED_MAX);
		if (sf.kmsg_errno == 0)
			emit(out, "  OOM victims by name   yes (/dev/kmsg is readable)\n");
		else
			emit(out,
			     "  OOM victims by name   no: /dev/kmsg: %s%s (records then have no "
			     "oom_victims)\n",
			     strerror(sf.kmsg_errno),
			     sf.dmesg_restrict == 1 ? " (kernel.dmesg_restrict=1: needs root or "
			                              "CAP_SYSLOG)"
			                            : "");
		emit(out, "\n  libcgroup: cgroup_init() = %s\n", cg_code_name(cg_rc));
		for (int i = 0; i < nt; i++)
			emit(out, "    %-12s %s\n", table[i].name, table[i].path);
		emit(out, "\n  where task cgroups come from (the first that works is used):\n");
		for (unsigned i = 0; i < plan->n_steps; i++)
			emit(out, "    %-8s %s %s\n", corral_cgroups_name(plan->steps[i].provider),
			     plan->steps[i].code ? "no: " : "YES:", plan->steps[i].why);
		emit(out, "  found: %s\n", plan->found);
		if (plan->warning[0])
			emit(out, "  WARNING: %s\n", plan->warning);
		if (!plan->limits && plan->fixes[0]) {
			emit(out, "  for per-task limits:\n");
			for (const char *l = plan->fixes, *e; *l; l = *e ? e + 1 : e) {
				e = strchrnul(l, '\n');
				emit(out, "    %.*s\n", (int)(e - l), l);
			}
		}
		emit(out, "\n  => %s%s%s\n",
		     v.limits_ok ? "corral can run tasks with memory limits here"
		                 : "corral can run tasks only WITHOUT memory limits here",
		     v.limits_ok ? ", cgroups from: " : "",
		     v.limits_ok ? corral_cgroups_name(plan->used) : "");
		for (int i = 0; i < v.n; i++)
			emit(out, "  - %s\n", v.advice[i]);
	}
	rc = corral__write_all(fd, out->buf, out->len);
	free(out);
	free(plan);
	if (rc < 0)
		return corral__err(err, -rc, "write the report");
	return v.limits_ok ? 0 : 1;
}
