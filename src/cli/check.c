/* check.c - `corral check [--json] [--cgroup-parent PATH] [--cgroups WHICH]`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_check(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"cgroup-parent", required_argument, NULL, 'P'},
	    {"cgroups", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	corral_options_t o;
	corral_error_t err;
	bool json = false;
	int opt, rc;

	corral_options_init(&o);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'J':
			json = true;
			break;
		case 'P':
			o.cgroup_parent = optarg;
			break;
		case 'C':
			if (corral_parse_cgroups(optarg, &o.cgroups) < 0)
				die("invalid --cgroups value '%s': expected auto, own, systemd, "
				    "slurm, "
				    "observe or off",
				    optarg);
			break;
		case 'h':
			printf(
			    "usage: corral check [--json] [--cgroup-parent PATH] [--cgroups "
			    "WHICH]\n\n"
			    "Reports what this host offers corral (cgroup mode, the delegated "
			    "base\n"
			    "cgroup, controllers, kernel features, where task cgroups would come\n"
			    "from: the provider chain, or the one rung --cgroups pins) and what "
			    "to\n"
			    "do about anything missing. Changes nothing.\n\n"
			    "Exit status: 0 corral can run tasks with memory limits here; 1 only\n"
			    "without them; 125 internal error.\n");
			return 0;
		default:
			fprintf(stderr, "Try 'corral check --help'.\n");
			return EXIT_CORRAL_ERROR;
		}
	}
	if (optind < argc)
		die("check takes no arguments, got '%s'", argv[optind]);
	rc = corral_check(&o, json, 1, &err);
	if (rc < 0)
		die("check failed: %s", err.msg);
	return rc;
}
