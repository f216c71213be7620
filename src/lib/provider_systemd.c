/* provider_systemd.c - the systemd rung of the provider chain: a transient
 * scope with Delegate=yes that contains corral, asked for over sd-bus, as
 * `systemd-run --user --scope -p Delegate=yes` and rootless podman/crun do.
 *
 * The sequence (checked with systemd 252, ../shared/systemd-vm/README.md):
 *  1. connect to the manager: the user manager's private socket
 *     $XDG_RUNTIME_DIR/systemd/private (what systemctl --user uses), else the
 *     session bus; as root PID 1's /run/systemd/private, else the system bus;
 *  2. match JobRemoved BEFORE the call: the job may end before the reply is
 *     read, and a missed signal would be a wait for nothing;
 *  3. StartTransientUnit("corral-<pid>-<nonce>.scope", "fail",
 *     [PIDs=[getpid()], Delegate=true, CollectMode="inactive-or-failed",
 *     Description], []). The reply comes when the job is queued, before the
 *     pid has moved;
 *  4. wait (bounded) for JobRemoved of our job with result "done", then check
 *     that /proc/self/cgroup names the scope.
 * The user manager moves a pid it may not move itself by asking PID 1
 * (AttachProcessesToUnit, same uid), so no login session is needed.
 *
 * Who removes the scope: nobody needs to. A scope ends when its last process
 * has left, and CollectMode=inactive-or-failed unloads it then, failed or
 * not. corral removes its own cgroups below it (normally, or its watchdog
 * when corral was SIGKILLed); when corral exits the scope is empty. When
 * the manager stops the scope from outside it signals every process in it
 * (SIGTERM, then SIGKILL): corral aborts its batch and exits, and the
 * watchdog finishes the teardown if corral could not.
 *
 * Without libsystemd (CORRAL_HAVE_SYSTEMD undefined) the rung reports what to
 * run instead.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "provider.h"

#ifdef CORRAL_HAVE_SYSTEMD
#include <systemd/sd-bus.h>

bool corral__systemd_built(void)
{
	return true;
}

/* Open a connection to the manager. *direct: a peer-to-peer connection to
 * its private socket (signals carry no sender there). */
static int open_bus(bool system, sd_bus **out, bool *direct, char *why, size_t len)
{
	char addr[PATH_MAX + 32];
	const char *rt = getenv("XDG_RUNTIME_DIR");
	sd_bus *bus = NULL;
	int rc;

	*out = NULL;
	*direct = false;
	if (system)
		snprintf(addr, sizeof(addr), "unix:path=/run/systemd/private");
	else if (rt && rt[0] == '/' && !strpbrk(rt, ",;=%"))
		snprintf(addr, sizeof(addr), "unix:path=%s/systemd/private", rt);
	else
		addr[0] = '\0';
	if (addr[0] && access(addr + strlen("unix:path="), F_OK) == 0) {
		rc = sd_bus_new(&bus);
		if (rc >= 0)
			rc = sd_bus_set_address(bus, addr);
		if (rc >= 0)
			rc = sd_bus_start(bus);
		if (rc >= 0) {
			*out = bus;
			*direct = true;
			return 0;
		}
		sd_bus_unref(bus);
		bus = NULL;
	}
	rc = system ? sd_bus_open_system(&bus) : sd_bus_open_user(&bus);
	if (rc < 0) {
		if (system)
			snprintf(why, len, "cannot reach systemd (PID 1): %s", strerror(-rc));
		else
			snprintf(why, len, "no systemd user manager is reachable (%s%s): %s",
			         rt ? "XDG_RUNTIME_DIR=" : "XDG_RUNTIME_DIR is unset", rt ? rt : "",
			         strerror(-rc));
		return rc;
	}
	*out = bus;
	return 0;
}

/* The manager's own cgroup must offer memory: it delegates what it has. */
static int check_controllers(sd_bus *bus, bool system, const char *cgroupfs, char *why, size_t len)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *cg = NULL, path[PATH_MAX + 64], list[256] = "";
	int rc;

	rc =
	    sd_bus_get_property_string(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	                               "org.freedesktop.systemd1.Manager", "ControlGroup", &e, &cg);
	if (rc < 0) {
		snprintf(why, len, "the %s manager does not answer: %s", system ? "system" : "user",
		         e.message ? e.message : strerror(-rc));
		sd_bus_error_free(&e);
		return rc;
	}
	sd_bus_error_free(&e);
	/* PID 1's is "" or "/": the root offers every controller there is. */
	snprintf(path, sizeof(path), "%s%s/cgroup.controllers", cgroupfs,
	         cg && strcmp(cg, "/") ? cg : "");
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		corral__pread_all(fd, list, sizeof(list));
	for (char *c = list; *c; c++)
		if (*c == '\n')
			*c = '\0';
	if (!corral__list_has(list, "memory")) {
		snprintf(why, len,
		         "the %s manager (%s) has no memory controller to delegate (its "
		         "cgroup.controllers: %s); the admin can add a drop-in "
		         "user@.service.d/delegate.conf with Delegate=memory pids cpu",
		         system ? "system" : "user", cg ? cg : "?", list[0] ? list : "none");
		free(cg);
		return -ENOTSUP;
	}
	snprintf(why, len, "the %s manager (%s) delegates: %s", system ? "system" : "user",
	         cg ? cg : "/", list);
	free(cg);
	return 0;
}

int corral__systemd_probe(bool system, const char *cgroupfs, char *why, size_t len)
{
	sd_bus *bus = NULL;
	bool direct;
	int rc = open_bus(system, &bus, &direct, why, len);

	if (rc < 0)
		return rc;
	rc = check_controllers(bus, system, cgroupfs, why, len);
	sd_bus_flush_close_unref(bus);
	return rc;
}

struct job_wait {
	const char *path; /* our job's object path (a copy) */
	bool done;
	char result[32];
};

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct job_wait *w = userdata;
	const char *path, *unit, *result;
	uint32_t id;

	(void)ret_error;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	if (w->path && !strcmp(path, w->path)) {
		w->done = true;
		snprintf(w->result, sizeof(w->result), "%s", result);
	}
	return 0;
}

/* Are we in the scope? The 0:: line of /proc/self/cgroup ends with it. */
static bool in_unit(const char *unit)
{
	char buf[8192], *l;
	cleanup_close int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || corral__pread_all(fd, buf, sizeof(buf)) < 0)
		return false;
	l = strstr(buf, "0::");
	if (!l || (l != buf && l[-1] != '\n'))
		return false;
	char *e = strchrnul(l, '\n');
	*e = '\0';
	size_t ul = strlen(unit), ll = strlen(l);
	return ll > ul && !strcmp(l + ll - ul, unit) && l[ll - ul - 1] == '/';
}

int corral__systemd_scope(bool system, char *unit, size_t unit_len, char *why, size_t len)
{
	sd_bus *bus = NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct job_wait w = {0};
	char *job = NULL;
	uint32_t nonce = 0;
	bool direct;
	int rc;

	rc = open_bus(system, &bus, &direct, why, len);
	if (rc < 0)
		return rc;
	rc = check_controllers(bus, system, "/sys/fs/cgroup", why, len);
	if (rc < 0)
		goto out;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce))
		nonce = (uint32_t)corral__now_ns();
	snprintf(unit, unit_len, "corral-%d-%08x.scope", (int)getpid(), nonce);

	/* Before the call, so that the end of the job cannot be missed. On a
	 * direct connection signals carry no sender: match without one. */
	rc = sd_bus_match_signal(bus, NULL, direct ? NULL : "org.freedesktop.systemd1",
	                         "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
	                         "JobRemoved", on_job_removed, &w);
	if (rc < 0) {
		snprintf(why, len, "cannot subscribe to JobRemoved: %s", strerror(-rc));
		goto out;
	}
	rc = sd_bus_message_new_method_call(
	    bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "StartTransientUnit");
	if (rc >= 0)
		rc = sd_bus_message_append(m, "ss", unit, "fail");
	if (rc >= 0)
		rc = sd_bus_message_open_container(m, 'a', "(sv)");
	if (rc >= 0)
		rc = sd_bus_message_append(m, "(sv)", "Description", "s",
		                           "corral: delegated cgroup for a batch");
	if (rc >= 0)
		rc = sd_bus_message_append(m, "(sv)", "PIDs", "au", 1, (uint32_t)getpid());
	if (rc >= 0)
		rc = sd_bus_message_append(m, "(sv)", "Delegate", "b", 1);
	if (rc >= 0)
		rc = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed");
	if (rc >= 0)
		rc = sd_bus_message_close_container(m);
	if (rc >= 0)
		rc = sd_bus_message_append(m, "a(sa(sv))", 0); /* no auxiliary units */
	if (rc < 0) {
		snprintf(why, len, "cannot build the StartTransientUnit call: %s", strerror(-rc));
		goto out;
	}
	rc = sd_bus_call(bus, m, 30 * 1000000ull, &e, &reply);
	if (rc < 0) {
		snprintf(why, len, "StartTransientUnit(%s) failed: %s", unit,
		         e.message ? e.message : strerror(-rc));
		goto out;
	}
	rc = sd_bus_message_read(reply, "o", &w.path);
	if (rc < 0 || !(job = strdup(w.path))) {
		rc = rc < 0 ? rc : -ENOMEM;
		snprintf(why, len, "StartTransientUnit(%s): no job in the reply", unit);
		goto out;
	}
	w.path = job;
	/* The job may already have ended: its JobRemoved is then queued and
	 * dispatched by the first sd_bus_process(). Bounded: a manager that
	 * never answers costs 60 s, not forever. */
	uint64_t deadline = corral__now_ns() + 60 * 1000000000ull;
	while (!w.done) {
		uint64_t now = corral__now_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			snprintf(why, len, "the job that starts %s did not end within 60 s", unit);
			goto out;
		}
		rc = sd_bus_process(bus, NULL);
		if (rc < 0) {
			snprintf(why, len, "waiting for the job of %s: %s", unit, strerror(-rc));
			goto out;
		}
		if (rc > 0)
			continue;
		rc = sd_bus_wait(bus, (deadline - now) / 1000);
		if (rc < 0 && rc != -EINTR) {
			snprintf(why, len, "waiting for the job of %s: %s", unit, strerror(-rc));
			goto out;
		}
	}
	if (strcmp(w.result, "done") != 0) {
		rc = -EIO;
		snprintf(why, len, "the job that starts %s ended with result \"%s\"", unit,
		         w.result);
		goto out;
	}
	if (!in_unit(unit)) {
		rc = -EIO;
		snprintf(why, len, "%s started, but corral is not in it (/proc/self/cgroup)", unit);
		goto out;
	}
	snprintf(why, len, "transient scope %s (Delegate=yes) from the %s manager", unit,
	         system ? "system" : "user");
	rc = 0;
out:
	free(job);
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	return rc;
}

#else /* !CORRAL_HAVE_SYSTEMD */

bool corral__systemd_built(void)
{
	return false;
}

static int not_built(bool system, char *why, size_t len)
{
	snprintf(why, len,
	         "corral was built without libsystemd (sd-bus): run it as `systemd-run %s--scope "
	         "-p Delegate=yes corral ...` instead",
	         system ? "" : "--user ");
	return -ENOTSUP;
}

int corral__systemd_probe(bool system, const char *cgroupfs, char *why, size_t len)
{
	(void)cgroupfs;
	return not_built(system, why, len);
}

int corral__systemd_scope(bool system, char *unit, size_t unit_len, char *why, size_t len)
{
	if (unit_len)
		unit[0] = '\0';
	return not_built(system, why, len);
}

#endif
