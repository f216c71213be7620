/* outcome.c - attribution: (wait status, counter deltas, who killed) -> one
 * outcome, its exit code (design §4) and its sentence.
 *
 * The counters are deltas of the task's own leaf cgroup, read after the leader
 * was reaped and before the cgroup was removed. The kernel raises oom_kill
 * before it sends the SIGKILL (mm/oom_kill.c, "task reaper must see this"), so
 * they are complete by the time the pidfd reports the exit.
 */
#include <signal.h>
#include <stdio.h>

#include "outcome.h"

static const char *const outcome_names[CORRAL_OUTCOME_COUNT] = {
    [CORRAL_OK] = "ok",
    [CORRAL_EXIT] = "exit",
    [CORRAL_OOM] = "oom",
    [CORRAL_OOM_OUTSIDE] = "oom_outside",
    [CORRAL_SUBPROCESS_OOM] = "subprocess_oom",
    [CORRAL_TIMEOUT] = "timeout",
    [CORRAL_SIGNAL] = "signal",
    [CORRAL_SPAWN_ERROR] = "spawn_error",
    [CORRAL_CANCELLED] = "cancelled",
    [CORRAL_ABORTED] = "aborted",
    [CORRAL_LOST] = "lost",
};

const char *corral_outcome_name(corral_outcome_t o)
{
	if ((unsigned)o >= CORRAL_OUTCOME_COUNT)
		return NULL;
	return outcome_names[o];
}

int corral_outcome_from_name(const char *name, corral_outcome_t *out)
{
	for (unsigned i = 0; i < CORRAL_OUTCOME_COUNT; i++) {
		if (name && !strcmp(name, outcome_names[i])) {
			*out = (corral_outcome_t)i;
			return 0;
		}
	}
	return -EINVAL;
}

int corral__spawn_status(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
		return 127;
	case EACCES:
	case ENOEXEC:
	case EPERM:
	case EISDIR:
	case ETXTBSY:
		return 126;
	default:
		return 125;
	}
}

static corral_outcome_t oom_outcome(const struct corral__facts *f)
{
	return f->own_limit_hit ? CORRAL_OOM : CORRAL_OOM_OUTSIDE;
}

void corral__classify(const struct corral__facts *f, corral_result_t *r)
{
	r->oom_kills = f->oom_kills;
	r->own_limit_hit = f->own_limit_hit;
	r->seccomp_kill = false;
	r->exit_code = -1;
	r->signal = 0;

	if (!f->spawned) {
		r->outcome = CORRAL_SPAWN_ERROR;
		r->spawn_errno = f->spawn_errno;
		r->spawn_step = f->spawn_step;
		/* 127/126 say "not found"/"not executable" about the command
		 * itself; a failed setup step (chdir, cgroup, user, ...) is 125. */
		r->status = f->spawn_step && !strcmp(f->spawn_step, "exec")
		                ? corral__spawn_status(f->spawn_errno)
		                : 125;
		return;
	}
	if (f->exited)
		r->exit_code = f->exit_code;
	else
		r->signal = f->term_signal;

	/* corral killed it: the kill is the cause, unless an OOM kill had
	 * already happened in the task before corral decided to kill it, or
	 * (halt) the task had finished successfully on its own: a leader that
	 * exited 0 was not stopped by the kill, whatever came after. */
	bool finished_ok = f->exited && f->exit_code == 0 && f->oom_kills == 0;
	if (f->killed_abort && finished_ok)
		; /* its own outcome: ok */
	else if ((f->killed_abort || f->killed_timeout) && f->oom_kills_at_kill == 0) {
		if (f->killed_abort) {
			r->outcome = CORRAL_ABORTED;
			r->status = -1;
		} else {
			r->outcome = CORRAL_TIMEOUT;
			r->status = 124;
		}
		return;
	}

	if (f->exited) {
		if (f->oom_kills > 0 && !(f->allow_subprocess_oom && f->exit_code == 0)) {
			r->outcome = CORRAL_SUBPROCESS_OOM;
			r->status = 137;
		} else if (f->exit_code == 0) {
			r->outcome = CORRAL_OK;
			r->status = 0;
		} else {
			r->outcome = CORRAL_EXIT;
			r->status = f->exit_code;
		}
		return;
	}

	if (f->observed && !f->exited && f->term_signal == SIGKILL && f->observed_kills > 0 &&
	    f->observed_kills > f->observed_rivals) {
		/* Observe mode: no cgroup of its own, but the OOM killer struck
		 * in the enclosing cgroup while it lived, and there were enough
		 * kills for it and every rival (observer.c). Fewer kills than
		 * SIGKILLed tasks: ambiguous, it stays a signal (sentence). */
		r->outcome = CORRAL_OOM_OUTSIDE;
		r->oom_kills = 1;
		r->status = 137;
		return;
	}
	if (f->oom_kills > 0) {
		/* The leader itself was OOM-killed (SIGKILL), or it died of some
		 * other signal after a subprocess was (SIGPIPE from a dead reader). */
		r->outcome = f->term_signal == SIGKILL ? oom_outcome(f) : CORRAL_SUBPROCESS_OOM;
		r->status = 137;
		return;
	}
	r->outcome = CORRAL_SIGNAL;
	r->status = 128 + f->term_signal;
	r->seccomp_kill = f->term_signal == SIGSYS && f->seccomp_kills;
}

static const char *signame(int sig)
{
	const char *d = sigabbrev_np(sig);
	return d ? d : "?";
}

static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* Like snprintf: keep counting what would be needed after truncation. */
	va_start(ap, fmt);
	if (*pos < size)
		n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

static void format_duration(uint64_t ns, char *buf, size_t len)
{
	double s = (double)ns / 1e9;

	if (s < 60)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, len, "%.1fm", s / 60);
	else
		snprintf(buf, len, "%.1fh", s / 3600);
}

/* "sort (pid 1234, 480.0 MiB resident)" for the first victim, "and N more". */
static void victims(const corral_result_t *r, char *buf, size_t len, size_t *pos)
{
	const corral_oom_victim_t *v = &r->oom_victims[0];
	char rss[32];

	append(buf, len, pos, "%s (pid %d", v->comm[0] ? v->comm : "?", v->pid);
	if (v->detailed) {
		corral_format_size(v->anon_rss + v->file_rss + v->shmem_rss, rss, sizeof(rss));
		append(buf, len, pos, ", %s resident", rss);
	}
	append(buf, len, pos, ")");
	if (r->n_oom_victims > 1)
		append(buf, len, pos, " and %u more", r->n_oom_victims - 1);
}

int corral_result_sentence(const corral_result_t *r, char *buf, size_t len)
{
	char lim[32], peak[32], b[64];
	size_t pos = 0;
	unsigned long long seq = (unsigned long long)r->seq;

	if (!buf || len == 0) {
		char tmp[sizeof(r->sentence)];
		return corral_result_sentence(r, tmp, sizeof(tmp));
	}
	buf[0] = '\0';
	corral_format_size(r->memory_max, lim, sizeof(lim));
	if (r->memory_peak)
		corral_format_size(r->memory_peak, peak, sizeof(peak));
	else
		snprintf(peak, sizeof(peak), "unknown");

	switch (r->outcome) {
	case CORRAL_OK:
		append(buf, len, &pos, "task %llu succeeded", seq);
		break;
	case CORRAL_EXIT:
		append(buf, len, &pos, "task %llu failed: it exited with status %d", seq,
		       r->exit_code);
		break;
	case CORRAL_OOM:
		append(buf, len, &pos,
		       "task %llu was OOM-killed: it exceeded its memory limit (memory.max %s, "
		       "peak %s)",
		       seq, lim, peak);
		if (r->n_oom_victims) {
			append(buf, len, &pos, "; the kernel took ");
			victims(r, buf, len, &pos);
		}
		break;
	case CORRAL_OOM_OUTSIDE:
		append(buf, len, &pos,
		       "task %llu was OOM-killed below its own limit (memory.max %s, "
		       "peak %s): ",
		       seq, lim, peak);
		if (!strcmp(r->oom_memcg, "global"))
			append(buf, len, &pos, "the host ran out of memory");
		else if (r->oom_memcg[0])
			append(buf, len, &pos, "an ancestor cgroup's limit fired (%s)",
			       r->oom_memcg);
		else
			append(buf, len, &pos,
			       "an ancestor cgroup's limit or the host ran out of "
			       "memory");
		if (r->n_oom_victims) {
			append(buf, len, &pos, "; the kernel took ");
			victims(r, buf, len, &pos);
		}
		break;
	case CORRAL_SUBPROCESS_OOM:
		append(buf, len, &pos, "task %llu lost a subprocess to the OOM killer", seq);
		if (r->n_oom_victims) {
			append(buf, len, &pos, ": ");
			victims(r, buf, len, &pos);
			append(buf, len, &pos, " (memory.max %s, peak %s)", lim, peak);
		} else {
			append(buf, len, &pos, " (%llu process%s killed; memory.max %s, peak %s)",
			       (unsigned long long)r->oom_kills, r->oom_kills == 1 ? "" : "es", lim,
			       peak);
		}
		append(buf, len, &pos, "; its main process then ");
		if (r->signal)
			append(buf, len, &pos, "died of SIG%s", signame(r->signal));
		else if (r->exit_code == 0)
			append(buf, len, &pos, "still exited 0, so its output may be incomplete");
		else
			append(buf, len, &pos, "exited with status %d", r->exit_code);
		break;
	case CORRAL_TIMEOUT:
		format_duration((uint64_t)(r->wall_s * 1e9), b, sizeof(b));
		append(buf, len, &pos, "task %llu timed out: corral killed it after %s", seq, b);
		break;
	case CORRAL_SIGNAL:
		if (r->seccomp_kill)
			append(
			    buf, len, &pos,
			    "task %llu was killed by SIGSYS: a system call was blocked by seccomp",
			    seq);
		else
			append(buf, len, &pos, "task %llu was killed by signal %d (SIG%s)", seq,
			       r->signal, signame(r->signal));
		break;
	case CORRAL_SPAWN_ERROR: {
		bool exec = r->spawn_step && !strcmp(r->spawn_step, "exec");
		append(buf, len, &pos, "task %llu could not be started: %s", seq,
		       r->spawn_step ? r->spawn_step : "spawn");
		if (exec && r->command[0])
			append(buf, len, &pos, " `%s`", r->command);
		append(buf, len, &pos, ": %s", strerror(r->spawn_errno));
		if (exec && r->spawn_errno == ENOENT && !strchr(r->command, '/'))
			append(buf, len, &pos, " (not found in PATH)");
		else if (!exec && r->command[0])
			append(buf, len, &pos, " (command `%s`)", r->command);
		break;
	}
	case CORRAL_CANCELLED:
		append(buf, len, &pos,
		       "task %llu was cancelled: the batch halted before it started", seq);
		break;
	case CORRAL_ABORTED:
		append(buf, len, &pos, "task %llu was aborted: the batch halted while it ran", seq);
		break;
	case CORRAL_LOST:
		append(buf, len, &pos,
		       "task %llu was lost: the worker running it on %s was lost, so how it ended "
		       "is unknown",
		       seq, r->host[0] ? r->host : "another node");
		break;
	default:
		append(buf, len, &pos, "task %llu ended in an unknown way", seq);
		break;
	}
	if (r->pids_limit_hit && r->outcome != CORRAL_OK)
		append(buf, len, &pos, " (it hit its pids limit)");
	/* Thrashing: a large share of its time stalled on memory (v2 PSI),
	 * whether or not it survived. */
	if (r->memory_stall_some > 0 && r->wall_s > 0.05 &&
	    r->memory_stall_some >= 0.2 * r->wall_s && r->outcome != CORRAL_SPAWN_ERROR)
		append(buf, len, &pos,
		       " (it spent %.0f%% of its time stalled on memory: thrashing against its "
		       "limit)",
		       100.0 * (r->memory_stall_some < r->wall_s ? r->memory_stall_some / r->wall_s
		                                                 : 1.0));
	if (r->host[0] && r->outcome != CORRAL_LOST)
		append(buf, len, &pos, " (on %s)", r->host);
	if (r->attempt > 1)
		append(buf, len, &pos, " [attempt %u]", r->attempt);
	return (int)pos;
}

void corral__sentence(corral_result_t *r, uint64_t timeout_ns)
{
	(void)timeout_ns;
	corral_result_sentence(r, r->sentence, sizeof(r->sentence));
}

void corral__observed_sentence(const struct corral__facts *f, corral_result_t *r)
{
	size_t pos = 0, len = sizeof(r->sentence);
	unsigned long long seq = (unsigned long long)r->seq;
	const char *where =
	    f->observed_where && *f->observed_where ? f->observed_where : "the enclosing cgroup";

	if (!f->observed || f->exited || f->term_signal != SIGKILL || f->observed_kills == 0)
		return;
	if (r->outcome == CORRAL_OOM_OUTSIDE) {
		r->sentence[0] = '\0';
		append(r->sentence, len, &pos,
		       "task %llu was OOM-killed outside any limit of its own: it died of SIGKILL "
		       "while the OOM killer struck in the enclosing cgroup (%s; observe mode, no "
		       "per-task cgroups here)",
		       seq, where);
	} else if (r->outcome == CORRAL_SIGNAL) {
		r->sentence[0] = '\0';
		append(r->sentence, len, &pos,
		       "task %llu was killed by SIGKILL; the OOM killer struck in the enclosing "
		       "cgroup meanwhile (%s), but %u tasks died of SIGKILL in that window for "
		       "%llu OOM kill%s: which of them it took is ambiguous (observe mode)",
		       seq, where, f->observed_rivals + 1, (unsigned long long)f->observed_kills,
		       f->observed_kills == 1 ? "" : "s");
	} else {
		return;
	}
	if (r->attempt > 1)
		append(r->sentence, len, &pos, " [attempt %u]", r->attempt);
}
