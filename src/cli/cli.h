/* cli.h - the `corral` command: shared declarations of its files.
 *
 * main.c      dispatch, --help, --version
 * options.c   the options of `run` and `exec` (getopt_long)
 * input.c     input sources (stdin, -a FILE, ::: ARGS), streamed; {} and {#}
 * output.c    grouped / keep-order output, --results, --report, --joblog
 * progress.c  the --progress bar
 * run.c       the batch loop shared by `run` and `exec`; signals
 * check.c     `corral check`
 * report_*.c  `corral report FILE.jsonl` (report.h), json.c (json.h)
 *
 * Exit codes (README, "Exit codes"): the verdict task's code per design §4;
 * 0 when every task succeeded; 125 for corral's own errors (usage, bad
 * input, environment); 128+s when a signal s aborted the batch.
 */
#ifndef CORRAL_CLI_H
#define CORRAL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "corral.h"

#define EXIT_CORRAL_ERROR 125

/* Print "corral: <msg>" on stderr and exit 125. */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* Print "corral: <msg>" on stderr (not silenced by -q). */
__attribute__((format(printf, 1, 2))) void warnx_(const char *fmt, ...);

enum cli_mode {
	MODE_RUN,
	MODE_EXEC
};

struct cli {
	enum cli_mode mode;
	corral_options_t o;
	/* Inputs. */
	const char **arg_files; /* -a FILE ... */
	int n_arg_files;
	char **args; /* ::: A B C */
	int n_args;
	bool null_sep; /* -0 */
	/* The command (argv; NULL/0 = each input line is a shell command). */
	char **cmd;
	int cmd_argc;
	/* Output and records. */
	bool keep_order, ungroup, progress, quiet;
	const char *report_path, *joblog_path, *results_dir;
	int report_fd, joblog_fd;
	bool sandbox;      /* the default sandbox (cgroup ns, nnp, seccomp default) */
	bool memory_given; /* -m was given (no silent fallback to no cgroups) */
};

/* options.c: parse argv of `run`/`exec` into c; exits 125 on bad usage. */
void cli_parse(struct cli *c, enum cli_mode mode, int argc, char **argv);
void cli_usage(enum cli_mode mode, FILE *f);

/* input.c */
struct input;
/* Open the input sources of c; exits 125 when a file cannot be read. */
struct input *input_open(const struct cli *c);
/* Next input item: 1 with *line and *len (valid until the next call), 0 at the
 * end, -EAGAIN when the next item has not arrived yet (wait for input_fd() to
 * become readable; input_next() never blocks), -errno on a read error. Items
 * may contain any byte but the separator (and, from ::: arguments, any byte
 * but NUL). */
int input_next(struct input *in, char **line, size_t *len);
/* The fd to poll for POLLIN after -EAGAIN (-1 for ::: input). */
int input_fd(const struct input *in);
const char *input_name(const struct input *in);
void input_close(struct input *in);

/* The argv of task seq for an input line: {} -> line, {#} -> seq; without any
 * replacement string the line is appended. Shell mode: sh -c LINE.
 * Returns a NULL-terminated malloc'ed array in one block (free() it). */
char **build_argv(const struct cli *c, const char *line, uint64_t seq);

/* output.c */
struct output;
struct output *output_open(struct cli *c);
/* A final or non-final result arrived; argv is the task's command (for
 * `run` a build_argv() block, freed with the final result; for `exec` the
 * command line, only recorded). Returns false when corral's own stdout is
 * gone (EPIPE): the caller aborts. */
bool output_result(struct output *out, corral_result_t *r, char **argv);
/* How many tasks are buffered waiting for their turn (-k). */
uint64_t output_buffered(const struct output *out);
/* Flush whatever -k still holds (after an abort: in order, with gaps). */
void output_finish(struct output *out);
void output_close(struct output *out);

/* progress.c */
struct progress;
struct progress *progress_open(bool enabled);
void progress_update(struct progress *p, uint64_t done, uint64_t failed, unsigned running,
                     uint64_t submitted, bool input_done);
void progress_close(struct progress *p);

/* run.c */
int cli_run(struct cli *c);

/* check.c */
int cli_check(int argc, char **argv);

/* report_cmd.c */
int cli_report(int argc, char **argv);

#endif
