/* run.c - the batch loop of `corral run` and `corral exec`.
 *
 * One thread, one poll() over the executor's fd and a signalfd. Input is read
 * lazily: at most `window` tasks are in flight (submitted, not yet emitted),
 * so memory stays flat for any input size and -k cannot buffer without bound.
 * SIGINT/SIGTERM/SIGHUP abort the batch (corral_abort: running tasks are
 * killed, queued ones cancelled); the loop then keeps delivering results until
 * the executor reports the end, so every record is written, and exits 128+s.
 * `corral exec` first forwards the signal to its task (like timeout(1)
 * --foreground) and aborts on the second one.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "spawn.h" /* corral__resolve_exe */

static int setup_signals(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		die("signalfd: %s", strerror(errno));
	return fd;
}

static void raise_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Fail before anything starts when the command cannot be found. */
static void check_command(const struct cli *c)
{
	char path[4096];
	const char *a0;
	int rc;

	if (c->cmd_argc == 0)
		return;
	a0 = c->cmd[0];
	if (strstr(a0, "{}") || strstr(a0, "{#}"))
		return; /* known only per task */
	rc = corral__resolve_exe(a0, getenv("PATH"), path, sizeof(path));
	if (rc == -ENOENT)
		die("command '%s' not found%s", a0,
		    strchr(a0, '/') ? "" : " in PATH (give a path, or fix PATH)");
	if (rc == -EACCES)
		die("command '%s' is not executable (check its permissions)", a0);
	if (strchr(a0, '/') && access(a0, X_OK) < 0) {
		if (errno == EACCES)
			die("command '%s' is not executable (check its permissions)", a0);
		die("command '%s': %s", a0, strerror(errno));
	}
}

/* Print a provider block (several lines) on stderr, "corral: " on the first. */
static void print_provider(const corral_provider_t *p, bool verbose)
{
	char *text;
	int n = corral_provider_text(p, verbose, NULL, 0);

	text = malloc((size_t)n + 1);
	if (!text)
		return;
	corral_provider_text(p, verbose, text, (size_t)n + 1);
	fprintf(stderr, "corral: %s\n", text);
	free(text);
}

/* The executor, with task cgroups from the first provider that works
 * (libcorral's chain, README "Where corral gets its cgroups"). Without
 * per-task limits corral says so in one block, before any task starts; -v
 * says where the cgroups came from in any case. */
static corral_executor_t *make_executor(struct cli *c)
{
	corral_executor_t *ex;
	corral_error_t err;
	corral_summary_t *s;

	if (corral_executor_new(&c->o, &ex, &err) < 0) {
		corral_provider_t plan;
		corral_error_t perr;
		/* No provider could give what was asked: the whole story once
		 * (without side effects), then the one-line error. */
		if (err.code == ENOTSUP && !c->o.cgroup_parent && !c->quiet &&
		    corral_provider_plan(&c->o, &plan, &perr) == 0) {
			print_provider(&plan, true);
			die("--memory needs per-task cgroups, and none of the providers above "
			    "gives "
			    "them here");
		}
		/* Name the --cgroup-parent when the library's message does not. */
		if (c->o.cgroup_parent && !strstr(err.msg, c->o.cgroup_parent))
			die("cannot set up the batch under --cgroup-parent '%s': %s",
			    c->o.cgroup_parent, err.msg);
		if (c->o.cgroups != CORRAL_CGROUPS_AUTO && !c->o.no_cgroups)
			die("--cgroups %s: %s", corral_cgroups_name(c->o.cgroups), err.msg);
		die("cannot set up the batch: %s", err.msg);
	}
	s = malloc(sizeof(*s));
	if (!s)
		return ex;
	corral_summary(ex, s);
	/* Asked for with --no-cgroups/--cgroups off|observe: no warning. */
	bool chosen = c->o.cgroups != CORRAL_CGROUPS_AUTO || c->o.no_cgroups;
	if (c->verbose || (!s->provider.limits && !chosen && !c->quiet))
		print_provider(&s->provider, c->verbose);
	else if (s->provider.warning[0] && !c->quiet)
		warnx_("warning: %s", s->provider.warning);
	free(s);
	return ex;
}

static void print_summary(const corral_summary_t *s)
{
	char line[1024];
	size_t pos = 0;
	bool first = true;

	pos += (size_t)snprintf(line, sizeof(line), "%llu task%s:", (unsigned long long)s->tasks,
	                        s->tasks == 1 ? "" : "s");
	for (int i = 0; i < CORRAL_OUTCOME_COUNT && pos < sizeof(line); i++) {
		if (!s->count[i])
			continue;
		pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s %llu %s",
		                        first ? "" : ",", (unsigned long long)s->count[i],
		                        corral_outcome_name((corral_outcome_t)i));
		first = false;
	}
	fprintf(stderr, "corral: %s\n", line);
}

int cli_run(struct cli *c)
{
	struct input *in = NULL;
	struct output *out;
	struct progress *prog;
	corral_executor_t *ex;
	corral_error_t err;
	corral_result_t r;
	char *pending = NULL; /* an input item read but not yet submitted */
	size_t pending_len = 0;
	bool input_done = false, stop = false, input_error = false, exec_forwarded = false;
	bool input_wait = false; /* the next item has not arrived: poll input_fd() */
	uint64_t in_flight = 0, done = 0, failed = 0, window;
	int sigfd, got_signal = 0, rc;

	sigfd = setup_signals();
	out = output_open(c);
	if (c->mode == MODE_RUN) {
		char *line;
		size_t len;
		in = input_open(c);
		/* The first item decides whether there is anything to run: wait
		 * for it (a signal meanwhile ends corral; nothing started yet). */
		while ((rc = input_next(in, &line, &len)) == -EAGAIN) {
			struct pollfd pfd[2] = {{.fd = input_fd(in), .events = POLLIN},
			                        {.fd = sigfd, .events = POLLIN}};
			struct signalfd_siginfo si;
			if (poll(pfd, 2, -1) < 0 && errno != EINTR)
				die("poll: %s", strerror(errno));
			if ((pfd[1].revents & POLLIN) &&
			    read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				exit(128 + (int)si.ssi_signo);
		}
		if (rc < 0)
			die("cannot read input from %s: %s", input_name(in), strerror(-rc));
		if (rc == 0)
			die("no input: %s gave no items, so there is nothing to run (pass input on "
			    "stdin, with -a FILE or after :::)",
			    c->n_args        ? ":::"
			    : c->n_arg_files ? "the -a files"
			                     : "stdin");
		pending = malloc(len + 1);
		if (!pending)
			die("out of memory");
		memcpy(pending, line, len + 1);
		pending_len = len;
		check_command(c);
	}
	window = c->keep_order ? (uint64_t)c->o.jobs * 4 + 256 : (uint64_t)c->o.jobs * 2 + 32;
	/* Per running task: pidfd, pipes, spills; per task cgroup (running
	 * or recycled, up to 3 x jobs on v1): two dirs, two cgroup.procs and
	 * the counter files kept open. Before the executor, which keeps those
	 * files open only where the limit leaves room. */
	raise_nofile(window * 3 + (uint64_t)c->o.jobs * 3 * 11 + 1280);
	ex = make_executor(c);
	prog = progress_open(c->progress && c->mode == MODE_RUN);

	if (c->mode == MODE_EXEC) {
		corral_task_t t;
		corral_task_init(&t);
		t.argv = (const char *const *)c->cmd;
		t.stdin_fd = 0;
		t.stdout_fd = 1;
		t.stderr_fd = 2;
		t.data = NULL;
		if (corral_submit(ex, &t, &err) < 0)
			die("%s", err.msg);
		in_flight = 1;
		input_done = true;
		corral_close(ex);
	}

	uint64_t seq = 0;
	for (;;) {
		/* Feed the executor, lazily. */
		while (!input_done && !stop && in_flight < window) {
			char *line;
			size_t len;
			if (pending) {
				line = pending;
				len = pending_len;
			} else {
				rc = input_next(in, &line, &len);
				if (rc == -EAGAIN) {
					input_wait = true;
					break;
				}
				if (rc < 0) {
					warnx_("cannot read input from %s: %s", input_name(in),
					       strerror(-rc));
					input_error = true;
					stop = true;
					corral_abort(ex);
					break;
				}
				if (rc == 0) {
					input_done = true;
					break;
				}
			}
			seq++;
			if (memchr(line, '\0', len)) {
				warnx_(
				    "input item %llu from %s contains a NUL byte, which cannot be "
				    "passed as an argument (use -0 for NUL-separated input)",
				    (unsigned long long)seq, input_name(in));
				input_error = true;
				stop = true;
				corral_abort(ex);
				free(pending);
				pending = NULL;
				break;
			}
			char **argv = build_argv(c, line, seq);
			free(pending);
			pending = NULL;
			corral_task_t t;
			corral_task_init(&t);
			t.argv = (const char *const *)argv;
			t.stdout_fd = c->ungroup ? 1 : CORRAL_FD_CAPTURE;
			t.stderr_fd = c->ungroup ? 2 : CORRAL_FD_CAPTURE;
			t.data = argv;
			if (corral_submit(ex, &t, &err) < 0)
				die("%s", err.msg);
			in_flight++;
		}
		if (input_done || stop)
			corral_close(ex);

		/* Results first: corral_next(0) never blocks. */
		while ((rc = corral_next(ex, &r, 0, &err)) > 0) {
			char **argv = r.data;
			if (r.final) {
				in_flight--;
				done++;
				if (r.outcome != CORRAL_OK && r.outcome != CORRAL_CANCELLED &&
				    r.outcome != CORRAL_ABORTED)
					failed++;
			}
			if (c->mode == MODE_EXEC)
				argv = c->cmd;
			if (!output_result(out, &r, argv)) {
				/* Our stdout is gone (`corral run ... | head`): stop. */
				if (!stop) {
					stop = true;
					if (!got_signal)
						got_signal = SIGPIPE;
					corral_abort(ex);
				}
			}
		}
		if (rc == -ECHILD)
			break;
		if (rc < 0)
			die("%s", err.msg);
		if (corral_halted(ex) && !stop) {
			/* Ordered/now halt: no point reading more input. */
			stop = true;
			corral_close(ex);
		}
		progress_update(prog, done, failed, corral_running(ex), seq, input_done || stop);

		/* Wait for the executor or a signal. */
		bool want_input = input_wait && !input_done && !stop && in_flight < window;
		struct pollfd pfd[3] = {{.fd = corral_fd(ex), .events = POLLIN},
		                        {.fd = sigfd, .events = POLLIN},
		                        {.fd = want_input ? input_fd(in) : -1, .events = POLLIN}};
		bool can_submit = !input_done && !stop && in_flight < window && !input_wait;
		int timeout = can_submit ? 0 : (c->progress ? 200 : -1);
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[2].revents)
			input_wait = false; /* readable, hung up or in error: read it */
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int s = (int)si.ssi_signo;
				if (c->mode == MODE_EXEC && !exec_forwarded) {
					/* The task may want to clean up: pass it on. */
					exec_forwarded = true;
					got_signal = s;
					corral_signal(ex, 1, s);
					continue;
				}
				if (!got_signal || got_signal == SIGPIPE || c->mode == MODE_EXEC)
					got_signal = s;
				stop = true;
				corral_abort(ex);
			}
		}
	}

	corral_summary_t s;
	corral_summary(ex, &s);
	progress_close(prog);
	output_finish(out);
	int code = s.exit_code;
	if (c->mode == MODE_EXEC) {
		/* The task's own status; a forwarded signal shows in it. */
		if (s.verdict_seq == 0 && s.count[CORRAL_OK] == 1)
			code = 0;
		else if (s.verdict_seq == 0 && got_signal)
			code = 128 + got_signal;
	} else if (got_signal && got_signal != SIGPIPE) {
		code = 128 + got_signal;
	} else if (got_signal == SIGPIPE && s.verdict_seq == 0) {
		code = 128 + SIGPIPE;
	}
	if (input_error)
		code = EXIT_CORRAL_ERROR;
	/* The report's summary carries the exit status corral really has (an
	 * interrupted batch: 128+s, not the library's view of the verdict). */
	s.exit_code = code;
	if (c->report_fd >= 0 && corral_report_summary(c->report_fd, &s, got_signal) < 0)
		warnx_("cannot write --report file '%s': %s", c->report_path, strerror(errno));
	if (!c->quiet) {
		bool exit_only = c->mode == MODE_EXEC && s.verdict == CORRAL_EXIT;
		if (s.verdict_seq && !exit_only)
			fprintf(stderr, "corral: %s\n", s.sentence);
		if (got_signal && got_signal != SIGPIPE && c->mode == MODE_RUN)
			warnx_("interrupted by signal %d (SIG%s): the batch was aborted",
			       got_signal,
			       sigabbrev_np(got_signal) ? sigabbrev_np(got_signal) : "?");
		if (c->mode == MODE_RUN && (s.verdict_seq || got_signal || input_error))
			print_summary(&s);
	}
	if (getenv("CORRAL_PROFILE")) {
		/* For scripts/bench.sh: where corral's own time went. */
		corral_profile_t pr;
		corral_get_profile(ex, &pr);
		double n = pr.attempts ? (double)pr.attempts : 1;
		fprintf(stderr,
		        "corral: profile: %llu attempts; per attempt (us): cgroup create %.1f, "
		        "spawn %.1f, reap %.1f, counters %.1f, drain %.1f, cleanup %.1f; "
		        "off the critical path: recycle %.1f\n",
		        (unsigned long long)pr.attempts, pr.cgroup_create_ns / n / 1e3,
		        pr.spawn_ns / n / 1e3, pr.reap_ns / n / 1e3, pr.counters_ns / n / 1e3,
		        pr.drain_ns / n / 1e3, pr.cleanup_ns / n / 1e3, pr.recycle_ns / n / 1e3);
	}
	corral_executor_free(ex);
	output_close(out);
	input_close(in);
	if (c->report_fd >= 0)
		close(c->report_fd);
	if (c->joblog_fd >= 0)
		close(c->joblog_fd);
	close(sigfd); /* the signals stay blocked: one arriving now is discarded at exit */
	free(c->arg_files);
	return code;
}
