/* main.c - `corral`: dispatch to run / exec / check / report / worker. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

__attribute__((format(printf, 1, 0))) static void vwarn(const char *fmt, va_list ap)
{
	fputs("corral: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(EXIT_CORRAL_ERROR);
}

void warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

static void usage(FILE *f)
{
	fputs("usage: corral run  [OPTIONS] [--] [COMMAND [ARG...]] [::: INPUT...]\n"
	      "       corral exec [OPTIONS] -- COMMAND [ARG...]\n"
	      "       corral check [--json] [--cgroup-parent PATH] [--cgroups WHICH]\n"
	      "       corral report [--suggest] [--html OUT.html] [--json] FILE.jsonl\n"
	      "       corral worker [OPTIONS]   (started by a `corral run --slurm` head)\n"
	      "       corral --version | --help\n"
	      "\n"
	      "Runs each task in its own cgroup with a memory limit and tells precisely why\n"
	      "each task ended. `corral run --help` and `corral exec --help` list the options.\n",
	      f);
}

int main(int argc, char **argv)
{
	struct cli c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_CORRAL_ERROR;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("corral %s (libcorral %s)\n", CORRAL_VERSION_STRING, corral_version());
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "check"))
		return cli_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "worker"))
		return cli_worker(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return cli_report(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run") || !strcmp(argv[1], "exec")) {
		enum cli_mode mode = argv[1][0] == 'r' ? MODE_RUN : MODE_EXEC;
		cli_parse(&c, mode, argc - 1, argv + 1);
		return cli_run(&c);
	}
	fprintf(stderr,
	        "corral: unknown command '%s' (expected run, exec, check, report or worker)\n",
	        argv[1]);
	usage(stderr);
	return EXIT_CORRAL_ERROR;
}
