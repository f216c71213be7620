/* worker_cmd.c - `corral worker`: serve as one node's worker of `corral run
 * --slurm` on stdin/stdout (corral_worker_serve(), design §10).
 *
 * stdout carries the protocol and nothing else: every diagnostic goes to
 * stderr (srun passes it through to the head's terminal). The options are
 * the node-local ones; everything about the tasks comes from the head.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void worker_usage(FILE *f)
{
	fputs("usage: corral worker [--cgroup-parent PATH] [--cgroups MODE] [--no-cgroups]\n"
	      "                     [--tmpdir DIR]\n"
	      "\n"
	      "Runs tasks for a `corral run --slurm` head (or --workers) on this node,\n"
	      "speaking corral's framed protocol on stdin and stdout. It is started by\n"
	      "the head, one per node (e.g. `srun --nodes=1 --ntasks=1 --nodelist=NODE\n"
	      "--overlap corral worker`), not by hand. It ends when the head says so,\n"
	      "closes the channel, falls silent, or on SIGINT/SIGTERM/SIGHUP, and then\n"
	      "kills every task it started and removes every cgroup it made.\n"
	      "\n"
	      "      --cgroup-parent PATH create task cgroups below this cgroup\n"
	      "      --cgroups auto|own|systemd|slurm|observe|off  where task cgroups come\n"
	      "                           from (default auto)\n"
	      "      --no-cgroups         run without cgroups: no limits, no OOM attribution\n"
	      "      --tmpdir DIR         where large task output is buffered ($TMPDIR)\n"
	      "\n"
	      "Exit status: 0 when the head ended the service; 128+s on signal s; 125\n"
	      "when the head was lost, broke the protocol, or the node cannot run tasks.\n",
	      f);
}

int cli_worker(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cgroup-parent", required_argument, NULL, 'P'},
	    {"no-cgroups", no_argument, NULL, 'N'},
	    {"cgroups", required_argument, NULL, 'C'},
	    {"tmpdir", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	corral_options_t o;
	corral_error_t err;
	sigset_t set;
	struct stat st;
	int opt, rc;

	corral_options_init(&o);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'P':
			o.cgroup_parent = optarg;
			break;
		case 'N':
			o.no_cgroups = true;
			break;
		case 'C':
			if (corral_parse_cgroups(optarg, &o.cgroups) < 0)
				die("invalid --cgroups value '%s': expected auto, own, systemd, "
				    "slurm, "
				    "observe or off",
				    optarg);
			if (o.cgroups == CORRAL_CGROUPS_OFF)
				o.no_cgroups = true;
			break;
		case 'T':
			if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode) ||
			    access(optarg, W_OK | X_OK) < 0)
				die("invalid --tmpdir value '%s': expected a writable directory",
				    optarg);
			o.tmpdir = optarg;
			break;
		case 'h':
			worker_usage(stderr); /* stdout belongs to the protocol */
			return 0;
		case ':':
			die("option '%s' needs a value (see 'corral worker --help')",
			    argv[optind - 1]);
		default:
			die("unknown option '%s' (see 'corral worker --help')", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die("worker takes no arguments, got '%s' (see 'corral worker --help')",
		    argv[optind]);
	if (isatty(1))
		warnx_("worker: stdout is a terminal; this command speaks a binary protocol "
		       "to a `corral run --slurm` head and is not meant to be run by hand");

	/* A closed channel is EPIPE, not death; the stop signals come through
	 * the worker's signalfd so that it can clean up. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	rc = corral_worker_serve(0, 1, &o, &err);
	if (rc >= 0)
		return rc;
	warnx_("worker: %s", err.msg);
	return EXIT_CORRAL_ERROR;
}
