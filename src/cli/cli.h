/* cli.h - the `corral` command: shared declarations of its files.
 *
 * main.c      dispatch, --help, --version
 * options.c   the options of `run` and `exec` (getopt_long), ::: and ::::
 * input.c     input sources (stdin, -a FILE, ::: ARGS, :::: FILE), streamed;
 *             their combinations (--link), --colsep, -N/-L: the tasks' args
 * template.c  GNU parallel's replacement strings ({} {.} {/} {//} {/.} {#} {%}
 *             and {n}, {n.} ...), its shell quoting (--dry-run), --tagstring
 * joblog.c    --resume / --resume-failed: what an existing joblog says
 * output.c    grouped / keep-order / --line-buffer output, --tag, --results,
 *             --report, --joblog
 * progress.c  the --progress bar
 * run.c       the batch loop shared by `run` and `exec`; --dry-run; signals
 * check.c     `corral check`
 * worker_cmd.c `corral worker` (one node of `corral run --slurm`)
 * workers.c   the head's side: the nodes (--slurm, --workers, --nodes), one
 *             launcher per node, what it says about its workers
 * report_*.c  `corral report FILE.jsonl` (report.h), json.c (json.h)
 *
 * Exit codes (README, "Exit codes"): the verdict task's code per design §4;
 * 0 when every task succeeded; 125 for corral's own errors (usage, bad
 * input, environment); 128+s when a signal s aborted the batch.
 */
#ifndef CORRAL_CLI_H
#define CORRAL_CLI_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"

#define EXIT_CORRAL_ERROR 125

/* Print "corral: <msg>" on stderr and exit 125. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Print "corral: <msg>" on stderr (not silenced by -q). */
__attribute__((format(printf, 1, 2))) void warnx_(const char *fmt, ...);

/* ---------------------------------------------------------------- byte strings */

/* A growable byte buffer, always NUL-terminated (die()s when out of memory). */
struct sbuf {
	char *p;
	size_t len, cap;
};

static inline void sbuf_add(struct sbuf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np)
			die("out of memory");
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void sbuf_addc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

static inline void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	sbuf_add(b, "", 0);
}

static inline void sbuf_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---------------------------------------------------------------- options */

enum cli_mode {
	MODE_RUN,
	MODE_EXEC
};

/* One input source, in GNU parallel's order: the -a files first, then the
 * ::: and :::: groups as they appear. */
struct cli_source {
	char **words; /* ::: WORD... (n_words of them), or NULL for a file */
	int n_words;
	const char *path; /* -a FILE, :::: FILE; "-" = stdin */
};

/* --trim (GNU parallel's): what whitespace to remove around each argument. */
enum cli_trim {
	TRIM_NONE = 0,
	TRIM_LEFT = 1,
	TRIM_RIGHT = 2,
	TRIM_BOTH = 3
};

struct tmpl;

struct cli {
	enum cli_mode mode;
	corral_options_t o;
	/* Inputs. */
	struct cli_source *sources; /* none given: stdin */
	int n_sources;
	bool link;       /* --link: pair the sources instead of combining them */
	bool null_sep;   /* -0 */
	bool has_colsep; /* --colsep REGEX (compiled in colsep) */
	const char *colsep_arg;
	regex_t colsep;
	long max_args;  /* -N: input records per task (0: one, inserted as none); -1 unset */
	long max_lines; /* -L: the same, with lines ending in whitespace continued; -1 unset */
	int trim;       /* enum cli_trim */
	/* The command (argv; NULL/0 = each input line is a shell command). */
	char **cmd;
	int cmd_argc;
	struct tmpl *tmpl;     /* the command template (run) */
	struct tmpl *tag_tmpl; /* --tag / --tagstring, or NULL */
	char *tagstring;       /* --tagstring after unquote_printf (tag_tmpl points in) */
	/* Output and records. */
	bool keep_order, ungroup, line_buffer, progress, quiet, dry_run;
	bool resume, resume_failed;
	const char *report_path, *joblog_path, *results_dir;
	int report_fd, joblog_fd;
	bool sandbox;      /* the default sandbox (cgroup ns, nnp, seccomp default) */
	bool memory_given; /* -m was given (no silent fallback to no cgroups) */
	bool verbose;      /* -v: say where the task cgroups came from */
	bool jobs_given;   /* -j was given */
	/* Many nodes (workers.c). */
	bool slurm;               /* --slurm */
	const char *workers_tmpl; /* --workers CMD with {node} */
	const char *nodes_arg;    /* --nodes LIST */
	unsigned node_jobs;       /* tasks at once per node (0: its CPUs) */
};

/* workers.c: start one worker per node on ex (made with o.no_local), as
 * --slurm or --workers/--nodes say; exits 125 when that cannot be done. */
void cli_workers_start(struct cli *c, corral_executor_t *ex);
/* workers.c: say on stderr what changed with the workers (lost: always). */
void cli_workers_notice(struct cli *c, corral_executor_t *ex);

/* options.c: parse argv of `run`/`exec` into c; exits 125 on bad usage. */
void cli_parse(struct cli *c, enum cli_mode mode, int argc, char **argv);
void cli_usage(enum cli_mode mode, FILE *f);
/* Free what cli_parse() allocated. */
void cli_free(struct cli *c);

/* ---------------------------------------------------------------- template.c */

/* The arguments of one task: the items of its input records (after --colsep),
 * in order. noarg: -N 0 (one record read, no argument inserted). */
struct job {
	uint64_t seq;
	size_t nargs;
	char **args; /* NUL-terminated; an argument holds no NUL byte */
	size_t *lens;
	bool noarg;
};

/* Compile a command template (words[0..n), NULL/0: the shell-mode template
 * "{}") the way GNU parallel reads it: replacement strings {} {.} {/} {//}
 * {/.} {#} {%} and their positional forms {n} {n.} {-n/} ...; without any
 * replacement string "{}" is appended as a word of its own. context: -N/-L
 * (GNU parallel's context replace: a word part holding {} is repeated once
 * per argument). The words must outlive the template. On error (a {= perl
 * expression =}) returns NULL with a message in err. */
struct tmpl *tmpl_compile(char *const *words, int n, bool context, char *err, size_t errlen);
/* --tagstring: one word, and nothing appended when it has no replacement
 * string (GNU parallel). */
struct tmpl *tmpl_compile_tag(char *s, bool context, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);
/* Does the template use {%} (then tasks must know their slot at submission)? */
bool tmpl_uses_slot(const struct tmpl *t);
/* Is the first word made of a replacement string (the command is known only
 * per task)? */
bool tmpl_command_varies(const struct tmpl *t);

/* The argv of one task: a NULL-terminated malloc'ed array in one block (free()
 * it). trim: enum cli_trim. */
char **tmpl_argv(const struct tmpl *t, const struct job *j, int trim, unsigned slot);
/* The expansion as one string, words joined by spaces, unquoted (GNU
 * parallel's --tagstring and shell-mode command line). Appends to out. */
void tmpl_string(const struct tmpl *t, const struct job *j, int trim, unsigned slot,
                 struct sbuf *out);
/* GNU parallel's shell quoting of one word (shell_quote_scalar_default):
 * as is when made of [-_.+a-zA-Z0-9/] only, '' when empty, else in single
 * quotes. Appends to out. */
void shell_quote(const char *s, size_t len, struct sbuf *out);
/* GNU parallel's unquote_printf (for --tagstring): \t \n \r \NNN \N. */
char *unquote_printf(const char *s);

/* The bare replacement functions (exported for the fuzz harness). Each
 * appends the result for the argument s[0..len) to out. */
void rpl_basename(const char *s, size_t len, struct sbuf *out); /* {/}  s:.*\/:: */
void rpl_noext(const char *s, size_t len, struct sbuf *out);    /* {.}  s:\.[^/.]*$:: */
void rpl_dirname(const char *s, size_t len, struct sbuf *out);  /* {//} File::Basename */
void rpl_trim(const char **s, size_t *len, int trim);           /* --trim */

/* ---------------------------------------------------------------- input.c */

struct input;
/* Open the input sources of c; exits 125 when a file cannot be read. */
struct input *input_open(const struct cli *c);
/* The next task's arguments: 1 with *job filled (valid until the next call),
 * 0 at the end, -EAGAIN when the input it needs has not arrived yet (wait
 * for input_fd() to become readable; input_next_job() never blocks), -EILSEQ
 * for an item that cannot be an argument (input_error() says why), -errno
 * on a read error. Task numbers (job->seq) count from 1. */
int input_next_job(struct input *in, struct job *job);
/* The fd to poll for POLLIN after -EAGAIN. */
int input_fd(const struct input *in);
const char *input_name(const struct input *in);
const char *input_error(const struct input *in);
void input_close(struct input *in);
/* Split an item at --colsep as Perl's split(/RE/, item, -1) does (GNU
 * parallel's --colsep); calls add() for each field. */
void colsep_split(const regex_t *re, const char *s, size_t len,
                  void (*add)(void *ctx, const char *s, size_t len), void *ctx);
/* Compile a Perl regex of --colsep as a POSIX extended one (the escapes
 * \t \n \r \f \e \a \0NN \xHH \cX \d \s \w \D \S \W, Perl's . and classes);
 * 0, or -1 with a message in err naming what is not supported. */
int colsep_compile(const char *perl, regex_t *re, char *err, size_t errlen);

/* ---------------------------------------------------------------- joblog.c */

/* What an existing --joblog says, for --resume / --resume-failed. */
struct joblog_state;
/* Read path (absent or empty: nothing done). failed_only: --resume-failed
 * (a task is done only when a line records it succeeded). A torn last line
 * (no newline: the writer was killed mid-line) is used when its exit value
 * and signal are complete, and is then completed with a newline, else cut
 * off (its task runs again). Exits 125 on a malformed joblog. */
struct joblog_state *joblog_read(const char *path, bool failed_only, bool repair);
/* Was task seq recorded as done (it must not run again)? */
bool joblog_done(const struct joblog_state *st, uint64_t seq);
/* The lowest task the joblog records as failed (--resume only; 0: none),
 * with its exit value and signal as recorded. */
uint64_t joblog_failed(const struct joblog_state *st, int *exitval, int *signal);
uint64_t joblog_count_done(const struct joblog_state *st);
void joblog_free(struct joblog_state *st);
/* The verdict an old failure gives the batch: outcome, exit code and
 * sentence, from the joblog's exit value and signal. */
void joblog_verdict(uint64_t seq, int exitval, int signal, corral_summary_t *s);

/* ---------------------------------------------------------------- output.c */

/* What run.c keeps per submitted task (the result's data pointer). */
struct task_ctx {
	char **argv;   /* tmpl_argv() block, owned */
	uint64_t seq;  /* the task's number (the input's, kept by --resume) */
	uint64_t idx;  /* 1-based submission order (-k emits in this order) */
	unsigned slot; /* {%} */
	char *tag;     /* --tag/--tagstring with its TAB, or NULL */
	size_t tag_len;
	/* --line-buffer: the task writes into pipes corral reads. */
	int out_rd, out_wr, err_rd, err_wr;
	struct sbuf out_line, err_line; /* an unfinished line */
	bool out_mid, err_mid;          /* part of the line was printed already */
};

struct output;
struct output *output_open(struct cli *c);
/* A final or non-final result arrived; ctx is the task's (for `exec` NULL:
 * argv is then the command line, only recorded). Frees ctx with the final
 * result. Returns false when corral's own stdout is gone (EPIPE): the
 * caller aborts. */
bool output_result(struct output *out, corral_result_t *r, struct task_ctx *ctx, char **argv);
/* --line-buffer: read what the task wrote (final: all of it, to the end) and
 * print the complete lines. Returns false when our stdout is gone. */
bool output_line_buffer(struct output *out, struct task_ctx *ctx, bool final);
/* How many tasks are buffered waiting for their turn (-k). */
uint64_t output_buffered(const struct output *out);
/* Results handed to the output thread and not yet written (workers). */
uint64_t output_queued(struct output *out);
/* Flush whatever -k still holds (after an abort: in order, with gaps). */
void output_finish(struct output *out);
void output_close(struct output *out);
void task_ctx_free(struct task_ctx *ctx);

/* ---------------------------------------------------------------- progress.c */

struct progress;
struct progress *progress_open(bool enabled);
void progress_update(struct progress *p, uint64_t done, uint64_t failed, unsigned running,
                     uint64_t submitted, bool input_done);
void progress_close(struct progress *p);

/* ---------------------------------------------------------------- run.c */

int cli_run(struct cli *c);

/* ---------------------------------------------------------------- check.c */

int cli_check(int argc, char **argv);

/* worker_cmd.c */
int cli_worker(int argc, char **argv);
/* report_cmd.c */
int cli_report(int argc, char **argv);

#endif
