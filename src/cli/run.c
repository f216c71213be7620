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
 *
 * --resume: the joblog says which tasks are done (they are skipped, keeping
 * every task's number) and whether an earlier run already failed at task k;
 * then, as an uninterrupted run would have halted at k, no task after k is
 * submitted (--halt ordered) or none at all (--halt now), and k is the
 * verdict unless this run fails lower. --dry-run goes through the same
 * selection and prints the commands instead.
 */
#include <errno.h>
#include <fcntl.h>
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

	if (c->cmd_argc == 0 || tmpl_command_varies(c->tmpl))
		return; /* shell mode, or known only per task */
	a0 = c->cmd[0];
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

/* ---------------------------------------------------------------- job slots */

/* {%}: GNU parallel's job slots. A task takes the slot freed longest ago
 * (a FIFO; a new number when none is free) and gives it back when it ended;
 * at most -j tasks are in flight when {%} is used, so slots are 1..j and no
 * two running tasks share one. */
struct slots {
	unsigned *q;
	size_t head, n, cap;
	unsigned max;
};

static unsigned slot_take(struct slots *s)
{
	if (!s->n)
		return ++s->max;
	unsigned v = s->q[s->head];
	s->head = (s->head + 1) % s->cap;
	s->n--;
	return v;
}

static void slot_give(struct slots *s, unsigned v)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		unsigned *nq = malloc(ncap * sizeof(*nq));
		if (!nq)
			die("out of memory");
		for (size_t i = 0; i < s->n; i++)
			nq[i] = s->q[(s->head + i) % s->cap];
		free(s->q);
		s->q = nq;
		s->head = 0;
		s->cap = ncap;
	}
	s->q[(s->head + s->n) % s->cap] = v;
	s->n++;
}

/* ---------------------------------------------------------------- the tasks to run */

/* Which tasks run: the input's, minus those the joblog records as done
 * (--resume), and none after an earlier run's failure where an
 * uninterrupted run would have halted (--halt ordered: none after it; now:
 * none at all). */
struct feed {
	struct cli *c;
	struct input *in;
	struct joblog_state *jl;
	uint64_t old_fail; /* the joblog's lowest failed task (--resume), 0: none */
	int old_exit, old_sig;
	bool ended;
	bool old_halt; /* ended at the earlier run's failure */
	uint64_t seen, skipped;
	struct slots slots;
};

/* The next task to run: 1, 0 at the end, -EAGAIN, -EILSEQ, -errno. */
static int feed_next(struct feed *f, struct job *j)
{
	for (;;) {
		if (f->ended)
			return 0;
		if (f->old_fail && f->c->o.halt == CORRAL_HALT_NOW) {
			f->ended = f->old_halt = true;
			return 0;
		}
		int rc = input_next_job(f->in, j);
		if (rc == 0)
			f->ended = true;
		if (rc <= 0)
			return rc;
		f->seen++;
		if (f->old_fail && f->c->o.halt == CORRAL_HALT_ORDERED && j->seq > f->old_fail) {
			f->ended = f->old_halt = true;
			return 0;
		}
		if (f->jl && joblog_done(f->jl, j->seq)) {
			/* GNU parallel gives a skipped job a slot and takes it back. */
			f->skipped++;
			slot_give(&f->slots, slot_take(&f->slots));
			continue;
		}
		return 1;
	}
}

/* Wait (in poll) until feed_next() gives a task or the input ends; a signal
 * meanwhile ends corral (nothing started yet when sigfd >= 0). */
static int feed_wait(struct feed *f, struct job *j, int sigfd)
{
	int rc;

	while ((rc = feed_next(f, j)) == -EAGAIN) {
		struct pollfd pfd[2] = {{.fd = input_fd(f->in), .events = POLLIN},
		                        {.fd = sigfd, .events = POLLIN}};
		struct signalfd_siginfo si;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (sigfd >= 0 && (pfd[1].revents & POLLIN) &&
		    read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			exit(128 + (int)si.ssi_signo);
	}
	if (rc == -EILSEQ)
		die("%s", input_error(f->in));
	if (rc < 0)
		die("cannot read input from %s: %s", input_name(f->in), strerror(-rc));
	return rc;
}

static void feed_open(struct feed *f, struct cli *c, bool repair)
{
	memset(f, 0, sizeof(*f));
	f->c = c;
	if (c->resume) {
		f->jl = joblog_read(c->joblog_path, c->resume_failed, repair);
		f->old_fail = joblog_failed(f->jl, &f->old_exit, &f->old_sig);
	}
	f->in = input_open(c);
}

static void feed_close(struct feed *f)
{
	input_close(f->in);
	joblog_free(f->jl);
	free(f->slots.q);
}

static void no_input(const struct feed *f)
{
	const struct cli *c = f->c;

	if (f->seen || f->old_halt)
		return; /* there was input: the joblog says it ran or halted */
	const char *what = "stdin";
	if (c->n_sources > 1)
		what = "the input sources";
	else if (c->n_sources == 1 && c->sources[0].words)
		what = ":::";
	else if (c->n_sources == 1 && strcmp(c->sources[0].path, "-"))
		what = c->sources[0].path;
	die("no input: %s gave no items, so there is nothing to run (pass input on stdin, "
	    "with -a FILE or after :::)",
	    what);
}

/* The argv of a task (shell mode: sh -c LINE). */
static char **task_argv(const struct cli *c, const struct job *j, unsigned slot)
{
	if (c->cmd_argc)
		return tmpl_argv(c->tmpl, j, c->trim, slot);
	struct sbuf line = {0};
	sbuf_add(&line, "", 0);
	tmpl_string(c->tmpl, j, c->trim, slot, &line);
	char **av = malloc(4 * sizeof(char *) + line.len + 1 + 11);
	if (!av)
		die("out of memory");
	char *p = (char *)(av + 4);
	av[0] = memcpy(p, "/bin/sh", 8);
	av[1] = memcpy(p + 8, "-c", 3);
	av[2] = memcpy(p + 11, line.p, line.len + 1);
	av[3] = NULL;
	sbuf_free(&line);
	return av;
}

static char *task_tag(const struct cli *c, const struct job *j, unsigned slot, size_t *len)
{
	struct sbuf t = {0};

	sbuf_add(&t, "", 0);
	tmpl_string(c->tag_tmpl, j, c->trim, slot, &t);
	sbuf_addc(&t, '\t');
	*len = t.len;
	return t.p;
}

static struct task_ctx *task_new(struct feed *f, const struct job *j)
{
	struct cli *c = f->c;
	struct task_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		die("out of memory");
	ctx->out_rd = ctx->out_wr = ctx->err_rd = ctx->err_wr = -1;
	ctx->seq = j->seq;
	ctx->slot = slot_take(&f->slots);
	ctx->argv = task_argv(c, j, ctx->slot);
	if (c->tag_tmpl)
		ctx->tag = task_tag(c, j, ctx->slot, &ctx->tag_len);
	if (c->line_buffer) {
		int p[2][2];
		if (pipe2(p[0], O_CLOEXEC) < 0 || pipe2(p[1], O_CLOEXEC) < 0)
			die("cannot create a pipe for --line-buffer: %s", strerror(errno));
		ctx->out_rd = p[0][0];
		ctx->out_wr = p[0][1];
		ctx->err_rd = p[1][0];
		ctx->err_wr = p[1][1];
		fcntl(ctx->out_rd, F_SETFL, O_NONBLOCK);
		fcntl(ctx->err_rd, F_SETFL, O_NONBLOCK);
	}
	return ctx;
}

/* ---------------------------------------------------------------- --dry-run */

/* Print what would run, one command per line, as GNU parallel's --dry-run
 * (-q) prints it, and run nothing. {%} shows the slots as if the tasks ran
 * -j at a time and ended in turn (GNU parallel's depend on its timing). */
static int dry_run(struct cli *c)
{
	struct feed f;
	struct job j;
	struct sbuf line = {0};
	unsigned *running = calloc(c->o.jobs, sizeof(*running));
	size_t nrun = 0, oldest = 0;

	if (!running)
		die("out of memory");
	feed_open(&f, c, false);
	while (feed_wait(&f, &j, -1) == 1) {
		if (nrun == c->o.jobs) {
			slot_give(&f.slots, running[oldest]);
			oldest = (oldest + 1) % c->o.jobs;
			nrun--;
		}
		unsigned slot = slot_take(&f.slots);
		running[(oldest + nrun++) % c->o.jobs] = slot;
		sbuf_reset(&line);
		if (c->tag_tmpl) {
			size_t tl;
			char *tag = task_tag(c, &j, slot, &tl);
			sbuf_add(&line, tag, tl);
			free(tag);
		}
		if (c->cmd_argc) {
			char **av = tmpl_argv(c->tmpl, &j, c->trim, slot);
			for (size_t i = 0; av[i]; i++) {
				if (i)
					sbuf_addc(&line, ' ');
				shell_quote(av[i], strlen(av[i]), &line);
			}
			free(av);
		} else {
			tmpl_string(c->tmpl, &j, c->trim, slot, &line);
		}
		sbuf_addc(&line, '\n');
		if (fwrite(line.p, 1, line.len, stdout) != line.len)
			break;
	}
	no_input(&f);
	feed_close(&f);
	sbuf_free(&line);
	free(running);
	if (fflush(stdout) != 0 || ferror(stdout))
		return errno == EPIPE ? 128 + SIGPIPE : EXIT_CORRAL_ERROR;
	return 0;
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

	if (c->o.no_local) {
		/* --slurm / --workers: no task runs here (workers.c). */
		if (corral_executor_new(&c->o, &ex, &err) < 0)
			die("cannot set up the batch: %s", err.msg);
		cli_workers_start(c, ex);
		return ex;
	}
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

static void print_summary(const corral_summary_t *s, uint64_t earlier)
{
	char line[1024];
	size_t pos = 0;
	bool first = true;

	pos += (size_t)snprintf(line, sizeof(line),
	                        "%llu task%s:", (unsigned long long)(s->tasks + earlier),
	                        s->tasks + earlier == 1 ? "" : "s");
	if (earlier) {
		pos +=
		    (size_t)snprintf(line + pos, sizeof(line) - pos, " %llu done in an earlier run",
		                     (unsigned long long)earlier);
		first = false;
	}
	for (int i = 0; i < CORRAL_OUTCOME_COUNT && pos < sizeof(line); i++) {
		if (!s->count[i])
			continue;
		pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s %llu %s",
		                        first ? "" : ",", (unsigned long long)s->count[i],
		                        corral_outcome_name((corral_outcome_t)i));
		first = false;
	}
	if (s->workers && pos < sizeof(line))
		snprintf(line + pos, sizeof(line) - pos, "; %u worker%s, %u lost", s->workers,
		         s->workers == 1 ? "" : "s", s->workers_lost);
	fprintf(stderr, "corral: %s\n", line);
}

/* The in-flight tasks (for --line-buffer's pipes). */
struct live {
	struct task_ctx **v;
	size_t n, cap;
};

static void live_add(struct live *l, struct task_ctx *ctx)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct task_ctx **nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			die("out of memory");
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = ctx;
}

static void live_del(struct live *l, struct task_ctx *ctx)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] == ctx) {
			l->v[i] = l->v[--l->n];
			return;
		}
	}
}

int cli_run(struct cli *c)
{
	struct feed f = {0};
	struct output *out;
	struct progress *prog = NULL;
	corral_executor_t *ex = NULL;
	corral_error_t err;
	corral_result_t r;
	struct task_ctx *pending = NULL; /* a task built but not yet submitted */
	struct live live = {0};
	bool input_done = false, stop = false, bad_input = false, exec_forwarded = false;
	bool input_wait = false; /* the next item has not arrived: poll input_fd() */
	uint64_t in_flight = 0, done = 0, failed = 0, window, submitted = 0;
	int sigfd, got_signal = 0, rc;

	if (c->mode == MODE_RUN && c->dry_run) {
		rc = dry_run(c);
		cli_free(c);
		return rc;
	}
	sigfd = setup_signals();
	if (c->mode == MODE_RUN)
		feed_open(&f, c, true); /* --resume: reads (and repairs) the joblog first */
	out = output_open(c);
	if (c->mode == MODE_RUN) {
		struct job j;
		/* The first task decides whether there is anything to run: wait
		 * for it (a signal meanwhile ends corral; nothing started yet). */
		if (feed_wait(&f, &j, sigfd) == 1) {
			check_command(c);
			pending = task_new(&f, &j);
		} else {
			no_input(&f);
			input_done = true; /* the joblog says everything ran */
		}
	}
	/* {%}: at most -j tasks in flight, so that the slots are 1..j. */
	if (tmpl_uses_slot(c->tmpl) || tmpl_uses_slot(c->tag_tmpl))
		window = c->o.jobs;
	else
		window =
		    c->keep_order ? (uint64_t)c->o.jobs * 4 + 256 : (uint64_t)c->o.jobs * 2 + 32;
	/* Per running task: pidfd, pipes, spills; per task cgroup (running
	 * or recycled, up to 3 x jobs on v1): two dirs, two cgroup.procs and
	 * the counter files kept open. Before the executor, which keeps those
	 * files open only where the limit leaves room. --line-buffer: two pipes
	 * per task in flight. */
	raise_nofile(window * (c->line_buffer ? 7 : 3) + (uint64_t)c->o.jobs * 3 * 11 + 1280);
	if (c->mode == MODE_EXEC || pending) {
		ex = make_executor(c);
		prog = progress_open(c->progress && c->mode == MODE_RUN);
	}
	if (ex && c->o.no_local) {
		/* Tasks in flight for every node: -j each (the node's CPUs, at
		 * most 256, when not given). */
		corral_summary_t *ws = malloc(sizeof(*ws));
		if (!ws)
			die("out of memory");
		corral_summary(ex, ws);
		uint64_t slots = (uint64_t)ws->workers * (c->node_jobs ? c->node_jobs : 256);
		free(ws);
		window = c->keep_order ? slots * 4 + 256 : slots * 2 + 32;
	}

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

	while (ex) {
		/* Feed the executor, lazily. */
		/* (With workers, what waits for the output thread counts too.) */
		uint64_t queued = c->o.no_local ? output_queued(out) : 0;
		while (!input_done && !stop && in_flight + queued < window) {
			struct task_ctx *ctx = pending;
			if (!ctx) {
				struct job j;
				rc = feed_next(&f, &j);
				if (rc == -EAGAIN) {
					input_wait = true;
					break;
				}
				if (rc < 0) {
					if (rc == -EILSEQ)
						warnx_("%s", input_error(f.in));
					else
						warnx_("cannot read input from %s: %s",
						       input_name(f.in), strerror(-rc));
					bad_input = true;
					stop = true;
					corral_abort(ex);
					break;
				}
				if (rc == 0) {
					input_done = true;
					break;
				}
				ctx = task_new(&f, &j);
			}
			pending = NULL;
			corral_task_t t;
			corral_task_init(&t);
			t.argv = (const char *const *)ctx->argv;
			t.stdout_fd = c->ungroup       ? 1
			              : c->line_buffer ? ctx->out_wr
			                               : CORRAL_FD_CAPTURE;
			t.stderr_fd = c->ungroup       ? 2
			              : c->line_buffer ? ctx->err_wr
			                               : CORRAL_FD_CAPTURE;
			t.data = ctx;
			t.seq = ctx->seq; /* the input's number, also when --resume skips some */
			ctx->idx = ++submitted;
			if (corral_submit(ex, &t, &err) < 0)
				die("%s", err.msg);
			if (c->line_buffer)
				live_add(&live, ctx);
			in_flight++;
		}
		if (input_done || stop)
			corral_close(ex);

		/* Results first: corral_next(0) never blocks. */
		while ((rc = corral_next(ex, &r, 0, &err)) > 0) {
			struct task_ctx *ctx = r.data;
			if (r.final) {
				in_flight--;
				done++;
				if (r.outcome != CORRAL_OK && r.outcome != CORRAL_CANCELLED &&
				    r.outcome != CORRAL_ABORTED)
					failed++;
				if (ctx) {
					slot_give(&f.slots, ctx->slot);
					live_del(&live, ctx);
				}
			}
			if (!output_result(out, &r, ctx, c->cmd)) {
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
		if (c->o.no_local)
			cli_workers_notice(c, ex);
		if (corral_halted(ex) && !stop) {
			/* Ordered/now halt: no point reading more input. */
			stop = true;
			corral_close(ex);
		}
		progress_update(prog, done, failed, corral_running(ex), submitted,
		                input_done || stop);

		/* Wait for the executor, a signal, input or task output. */
		queued = c->o.no_local ? output_queued(out) : 0;
		bool want_input = input_wait && !input_done && !stop && in_flight + queued < window;
		size_t npfd = 3 + 2 * live.n;
		struct pollfd pfd_small[3],
		    *pfd = npfd > 3 ? calloc(npfd, sizeof(*pfd)) : pfd_small;
		if (!pfd)
			die("out of memory");
		pfd[0] = (struct pollfd){.fd = corral_fd(ex), .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = want_input ? input_fd(f.in) : -1, .events = POLLIN};
		for (size_t i = 0; i < live.n; i++) {
			pfd[3 + 2 * i] = (struct pollfd){.fd = live.v[i]->out_rd, .events = POLLIN};
			pfd[4 + 2 * i] = (struct pollfd){.fd = live.v[i]->err_rd, .events = POLLIN};
		}
		bool can_submit =
		    !input_done && !stop && in_flight + queued < window && !input_wait;
		int timeout = can_submit ? 0 : (c->progress ? 200 : -1);
		/* Held back by what waits for the output thread: look again soon
		 * (nothing else wakes us when it has written some). */
		if (!can_submit && queued && !input_done && !stop && (timeout < 0 || timeout > 50))
			timeout = 50;
		if (poll(pfd, npfd, timeout) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (size_t i = 0; i < live.n; i++) {
			if ((pfd[3 + 2 * i].revents || pfd[4 + 2 * i].revents) &&
			    !output_line_buffer(out, live.v[i], false) && !stop) {
				stop = true;
				if (!got_signal)
					got_signal = SIGPIPE;
				corral_abort(ex);
			}
		}
		if (pfd[2].revents)
			input_wait = false; /* readable, hung up or in error: read it */
		bool sig = pfd[1].revents & POLLIN;
		if (pfd != pfd_small)
			free(pfd);
		if (sig) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int sno = (int)si.ssi_signo;
				if (c->mode == MODE_EXEC && !exec_forwarded) {
					/* The task may want to clean up: pass it on. */
					exec_forwarded = true;
					got_signal = sno;
					corral_signal(ex, 1, sno);
					continue;
				}
				if (!got_signal || got_signal == SIGPIPE || c->mode == MODE_EXEC)
					got_signal = sno;
				stop = true;
				corral_abort(ex);
			}
		}
	}

	corral_summary_t s;
	if (ex)
		corral_summary(ex, &s);
	else
		memset(&s, 0, sizeof(s));
	progress_close(prog);
	output_finish(out);
	/* --resume: an earlier run's failure is the verdict unless this run
	 * failed on a lower task. */
	if (f.old_fail && (s.verdict_seq == 0 || f.old_fail < s.verdict_seq))
		joblog_verdict(f.old_fail, f.old_exit, f.old_sig, &s);
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
	if (bad_input)
		code = EXIT_CORRAL_ERROR;
	/* The report's summary carries the exit status corral really has (an
	 * interrupted batch: 128+s, not the library's view of the verdict). */
	s.exit_code = code;
	if (c->report_fd >= 0 && corral_report_summary(c->report_fd, &s, got_signal) < 0)
		warnx_("cannot write --report file '%s': %s", c->report_path, strerror(errno));
	if (ex && c->o.no_local)
		cli_workers_notice(c, ex);
	if (!c->quiet) {
		bool exit_only = c->mode == MODE_EXEC && s.verdict == CORRAL_EXIT;
		if (s.sentence[0] && !exit_only)
			fprintf(stderr, "corral: %s\n", s.sentence);
		if (got_signal && got_signal != SIGPIPE && c->mode == MODE_RUN)
			warnx_("interrupted by signal %d (SIG%s): the batch was aborted",
			       got_signal,
			       sigabbrev_np(got_signal) ? sigabbrev_np(got_signal) : "?");
		if (c->mode == MODE_RUN &&
		    (s.verdict_seq || got_signal || bad_input || s.aborted || s.workers_lost))
			print_summary(&s, f.skipped);
	}
	if (ex && getenv("CORRAL_PROFILE")) {
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
	if (ex)
		corral_executor_free(ex);
	output_close(out);
	if (c->mode == MODE_RUN)
		feed_close(&f);
	free(live.v);
	if (c->report_fd >= 0)
		close(c->report_fd);
	if (c->joblog_fd >= 0)
		close(c->joblog_fd);
	close(sigfd); /* the signals stay blocked: one arriving now is discarded at exit */
	cli_free(c);
	return code;
}
