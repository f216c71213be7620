/* options.c - the options of `corral run` and `corral exec` (design §6).
 *
 * getopt_long with "+": options come before the command, as with GNU
 * parallel, timeout(1) and env(1); everything from the command on belongs to
 * the command, up to the first ::: or :::: (which start input groups, as in
 * GNU parallel). Every value is validated here, before anything starts, and a
 * bad one is reported in one line that names it and says what is expected.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"

enum {
	OPT_SWAP = 256,
	OPT_PIDS,
	OPT_CPUS,
	OPT_KILL_AFTER,
	OPT_HALT,
	OPT_RETRIES,
	OPT_RETRY_ON,
	OPT_GROWTH,
	OPT_CEILING,
	OPT_BUDGET,
	OPT_REPORT,
	OPT_JOBLOG,
	OPT_RESULTS,
	OPT_UNGROUP,
	OPT_PROGRESS,
	OPT_SECCOMP,
	OPT_ALLOW_PTRACE,
	OPT_ALLOW_IO_URING,
	OPT_CORE_DUMPS,
	OPT_USER,
	OPT_NO_NETWORK,
	OPT_NO_SANDBOX,
	OPT_CGROUP_PARENT,
	OPT_OOM_GROUP,
	OPT_NO_OOM_GROUP,
	OPT_ALLOW_SUBPROCESS_OOM,
	OPT_NO_CGROUPS,
	OPT_CGROUPS,
	OPT_TMPDIR,
	OPT_TIMELINE,
	OPT_LINK,
	OPT_TRIM,
	OPT_DRY_RUN,
	OPT_TAG,
	OPT_TAGSTRING,
	OPT_LINE_BUFFER,
	OPT_RESUME,
	OPT_RESUME_FAILED,
	OPT_SLURM,
	OPT_WORKERS,
	OPT_NODES,
	OPT_LOST_RETRIES,
	OPT_WORKER_TIMEOUT,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option longopts[] = {
    {"jobs", required_argument, NULL, 'j'},
    {"memory", required_argument, NULL, 'm'},
    {"swap", required_argument, NULL, OPT_SWAP},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"timeout", required_argument, NULL, 't'},
    {"kill-after", required_argument, NULL, OPT_KILL_AFTER},
    {"halt", required_argument, NULL, OPT_HALT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"retry-on", required_argument, NULL, OPT_RETRY_ON},
    {"memory-growth", required_argument, NULL, OPT_GROWTH},
    {"memory-ceiling", required_argument, NULL, OPT_CEILING},
    {"memory-budget", required_argument, NULL, OPT_BUDGET},
    {"report", required_argument, NULL, OPT_REPORT},
    {"joblog", required_argument, NULL, OPT_JOBLOG},
    {"results", required_argument, NULL, OPT_RESULTS},
    {"keep-order", no_argument, NULL, 'k'},
    {"ungroup", no_argument, NULL, OPT_UNGROUP},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"seccomp", required_argument, NULL, OPT_SECCOMP},
    {"allow-ptrace", no_argument, NULL, OPT_ALLOW_PTRACE},
    {"allow-io-uring", no_argument, NULL, OPT_ALLOW_IO_URING},
    {"core-dumps", no_argument, NULL, OPT_CORE_DUMPS},
    {"user", required_argument, NULL, OPT_USER},
    {"no-network", no_argument, NULL, OPT_NO_NETWORK},
    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
    {"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
    {"oom-group", no_argument, NULL, OPT_OOM_GROUP},
    {"no-oom-group", no_argument, NULL, OPT_NO_OOM_GROUP},
    {"allow-subprocess-oom", no_argument, NULL, OPT_ALLOW_SUBPROCESS_OOM},
    {"no-cgroups", no_argument, NULL, OPT_NO_CGROUPS},
    {"cgroups", required_argument, NULL, OPT_CGROUPS},
    {"verbose", no_argument, NULL, 'v'},
    {"tmpdir", required_argument, NULL, OPT_TMPDIR},
    {"timeline", no_argument, NULL, OPT_TIMELINE},
    {"arg-file", required_argument, NULL, 'a'},
    {"link", no_argument, NULL, OPT_LINK},
    {"colsep", required_argument, NULL, 'C'},
    {"col-sep", required_argument, NULL, 'C'},
    {"max-replace-args", required_argument, NULL, 'N'},
    {"max-lines", required_argument, NULL, 'L'},
    {"trim", required_argument, NULL, OPT_TRIM},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"dryrun", no_argument, NULL, OPT_DRY_RUN},
    {"tag", no_argument, NULL, OPT_TAG},
    {"tagstring", required_argument, NULL, OPT_TAGSTRING},
    {"line-buffer", no_argument, NULL, OPT_LINE_BUFFER},
    {"lb", no_argument, NULL, OPT_LINE_BUFFER},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"resume-failed", no_argument, NULL, OPT_RESUME_FAILED},
    {"slurm", no_argument, NULL, OPT_SLURM},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"nodes", required_argument, NULL, OPT_NODES},
    {"lost-retries", required_argument, NULL, OPT_LOST_RETRIES},
    {"worker-timeout", required_argument, NULL, OPT_WORKER_TIMEOUT},
    {"null", no_argument, NULL, '0'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void cli_usage(enum cli_mode mode, FILE *f)
{
	if (mode == MODE_RUN)
		fputs(
		    "usage: corral run [OPTIONS] [--] COMMAND [ARG...] [::: ITEM... | :::: "
		    "FILE...]...\n"
		    "       corral run [OPTIONS] < commands.txt\n"
		    "\n"
		    "Runs COMMAND once per input item (stdin, -a FILE, the words after :::, the\n"
		    "lines of the files after ::::), each in its own cgroup, without a shell.\n"
		    "Several sources give every combination (the first changing slowest), or\n"
		    "with --link their n-th items together. In the words of COMMAND, as in GNU\n"
		    "parallel:\n"
		    "  {}  the item     {.}  without extension    {/}  basename    {//}  dirname\n"
		    "  {/.} basename without extension   {#} the task's number   {%} its job slot\n"
		    "  {n} {n.} {n/} {n//} {n/.}  the same of argument n (n < 0: from the end)\n"
		    "Without any, the item is appended as the last argument. Without COMMAND\n"
		    "every line is run with /bin/sh -c.\n",
		    f);
	else
		fputs("usage: corral exec [OPTIONS] -- COMMAND [ARG...]\n"
		      "\n"
		      "Runs one task in its own cgroup; stdin, stdout and stderr pass straight\n"
		      "through, and corral's exit status is the task's (0, its code, 137 when\n"
		      "OOM-killed, 124 on timeout, 128+s when killed by signal s, 127/126 when it\n"
		      "could not be started).\n",
		      f);
	fputs("\nLimits:\n"
	      "  -m, --memory SIZE        memory limit per task (512M, 1.5G, max)\n"
	      "      --swap SIZE          swap per task (default 0)\n"
	      "      --pids N|max         process limit per task (default 4096)\n"
	      "      --cpus X             CPU quota per task (1.5 = one and a half CPUs)\n"
	      "  -t, --timeout DURATION   kill a task after DURATION (30s, 5m, 1h30m)\n"
	      "      --kill-after DURATION  at the timeout send SIGTERM first, SIGKILL after this\n"
	      "      --oom-group, --no-oom-group  an OOM kill takes the whole task (default, v2)\n"
	      "      --allow-subprocess-oom  a task whose subprocess was OOM-killed but that\n"
	      "                           exited 0 counts as ok\n"
	      "      --cgroup-parent PATH create task cgroups below this cgroup\n"
	      "      --cgroups auto|own|systemd|slurm|observe|off  where task cgroups come\n"
	      "                           from (default auto: the first that works; see\n"
	      "                           `corral check`)\n"
	      "      --no-cgroups         run without cgroups: no limits, no OOM attribution\n"
	      "                           (= --cgroups off)\n",
	      f);
	if (mode == MODE_RUN)
		fputs(
		    "\nBatch:\n"
		    "  -j, --jobs N             tasks at once (default: number of CPUs)\n"
		    "      --halt ordered|now|never  on failure: stop after the lowest failing\n"
		    "                           task, deterministically (default); kill\n"
		    "                           everything at once; or run everything\n"
		    "      --retries N          re-run a failed task up to N more times\n"
		    "      --retry-on LIST      oom,timeout,signal,exit (default oom)\n"
		    "      --memory-growth F    multiply the memory limit on each OOM retry (2)\n"
		    "      --memory-ceiling SIZE  cap of the grown limit\n"
		    "      --memory-budget SIZE do not run tasks whose limits sum above SIZE\n"
		    "\nMany nodes (README \"Many nodes with Slurm\"):\n"
		    "      --slurm              inside a Slurm allocation: one worker per node\n"
		    "                           (one srun each), tasks spread over them; -j and\n"
		    "                           --memory-budget count per node (default -j: the\n"
		    "                           node's CPUs)\n"
		    "      --workers CMD --nodes LIST  the same through any launcher: CMD with\n"
		    "                           {node} runs `corral worker` there (sh -c), e.g.\n"
		    "                           'ssh {node} corral worker'; LIST: a,b,c or n[1-4]\n"
		    "      --nodes LIST         with --slurm: only these nodes of the allocation\n"
		    "      --lost-retries N     run a task lost with its node again elsewhere up\n"
		    "                           to N times (default 3)\n"
		    "      --worker-timeout DURATION  a worker silent this long is lost (10s)\n"
		    "\nInput:\n"
		    "  -a, --arg-file FILE      an input source (repeatable: like ::::, several\n"
		    "                           sources are combined, not read one after another)\n"
		    "  -0, --null               items are separated by NUL, not newline\n"
		    "      --link               pair the sources' n-th items (a shorter one "
		    "wraps)\n"
		    "  -C, --colsep REGEX       split items into columns {1} {2} ... (Perl "
		    "escapes\n"
		    "                           \\t \\s \\d \\w \\xHH in a POSIX extended regex)\n"
		    "  -N N                     N records per task: {1}..{N} (-N 0: none "
		    "inserted)\n"
		    "  -L, --max-lines N        N lines per task; a line ending in a blank goes "
		    "on\n"
		    "      --trim n|l|r|lr      remove blanks around arguments (default n; lr\n"
		    "                           with --colsep)\n"
		    "      --dry-run            print each command, shell-quoted, and run nothing\n"
		    "\nOutput and records:\n"
		    "  -k, --keep-order         print outputs in input order\n"
		    "      --ungroup            pass task output through as it comes\n"
		    "      --line-buffer        print task output as it comes, whole lines only\n"
		    "      --tag                prefix output lines with the arguments and a TAB\n"
		    "      --tagstring STR      prefix them with STR (replacement strings work)\n"
		    "      --results DIR        save DIR/<seq>/stdout, stderr and outcome\n"
		    "      --report FILE        JSON Lines: one record per attempt, then a "
		    "summary\n"
		    "      --joblog FILE        GNU parallel's joblog: one line per task\n"
		    "      --resume             with --joblog: skip the tasks it records, append\n"
		    "      --resume-failed      with --joblog: skip those it records as succeeded\n"
		    "      --timeline           sample each task's memory over time into its\n"
		    "                           --report record (memory_timeline)\n"
		    "      --progress           a progress bar on stderr (when it is a terminal)\n",
		    f);
	else
		fputs(
		    "\nRetries:\n"
		    "      --retries N, --retry-on LIST, --memory-growth F, --memory-ceiling SIZE\n"
		    "      --report FILE, --joblog FILE   as for `corral run`\n",
		    f);
	fputs("\nSandbox (on by default: no_new_privs, seccomp deny-list; as root also a\n"
	      "cgroup namespace with read-only cgroupfs and a PID namespace of the batch):\n"
	      "      --seccomp default|off|FILE  the seccomp profile (see README)\n"
	      "      --allow-ptrace       keep ptrace allowed\n"
	      "      --allow-io-uring     keep io_uring allowed (seccomp cannot see what it\n"
	      "                           does; denied with ENOSYS by default)\n"
	      "      --core-dumps         allow core dumps (default: RLIMIT_CORE 0)\n"
	      "      --user USER[:GROUP]  run tasks as USER (corral must run as root)\n"
	      "      --no-network         tasks get a network namespace with only loopback\n"
	      "      --no-sandbox         none of the above but the limits\n"
	      "\nOther:\n"
	      "  -q, --quiet              print nothing but task output (and errors)\n"
	      "  -v, --verbose            say where the task cgroups came from, and what was\n"
	      "                           tried before\n"
	      "      --tmpdir DIR         where large task output is buffered ($TMPDIR)\n"
	      "      --help, --version\n"
	      "\nExit status: the failing task's code (see above); 0 if all succeeded;\n"
	      "125 for corral's own errors; 130/143/129 when interrupted.\n",
	      f);
	if (mode == MODE_RUN)
		fputs(
		    "\nGNU parallel's options (the README has the table):\n"
		    "  the same   ::: :::: -a -0 --link -C/--colsep -N -L --trim --dry-run -k -j "
		    "N\n"
		    "             --ungroup --line-buffer --tag --tagstring --joblog --resume\n"
		    "             --resume-failed --progress --tmpdir, and {} {.} {/} {//} {/.}\n"
		    "             {#} {%} {n} {n.} {n/} {n//} {n/.}\n"
		    "  different  no shell: commands run as with GNU parallel's -q (--quote);\n"
		    "             -q is --quiet; the exit status is the failing task's code;\n"
		    "             --halt ordered|now|never; --retries N is N more runs;\n"
		    "             -t/--timeout takes a duration; --results DIR/<seq>/; the\n"
		    "             joblog's Exitval of a killed task is its exit code (137, 124,\n"
		    "             128+s); a resumed batch keeps the whole batch's verdict; a :::\n"
		    "             word is one item even with a newline; --colsep is a POSIX\n"
		    "             extended regex with Perl's escapes\n"
		    "  elsewhere  -S/--sshlogin: --workers 'ssh {node} corral worker' --nodes\n"
		    "  not here   --pipe, -X, -m, -n, --xargs, -d, -I, {= perl =},\n"
		    "             --rpl, --plus, :::+, ::::+, --header, --csv, --shuf, --delay,\n"
		    "             --load, --memfree, --nice, --env, --bar, --eta, --semaphore,\n"
		    "             --filter, --retry-failed, --joblog +FILE\n",
		    f);
}

static uint64_t parse_size_opt(const char *name, const char *v)
{
	uint64_t out;
	int rc = corral_parse_size(v, &out);

	if (rc == -ERANGE)
		die("invalid %s value '%s': too large", name, v);
	if (rc < 0)
		die("invalid %s value '%s': expected a size like 512M, 1.5G or max", name, v);
	if (out == 0)
		die("invalid %s value '%s': must be more than 0", name, v);
	return out;
}

static uint64_t parse_duration_opt(const char *name, const char *v)
{
	uint64_t out;

	if (corral_parse_duration(v, &out) < 0)
		die("invalid %s value '%s': expected a duration like 30s, 1.5m, 250ms or 1h30m",
		    name, v);
	return out;
}

static unsigned long parse_count(const char *name, const char *v, unsigned long min,
                                 unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	if (!*v || *v == '-' || *v == '+')
		die("invalid %s value '%s': expected a whole number", name, v);
	n = strtoul(v, &end, 10);
	if (*end || errno)
		die("invalid %s value '%s': expected a whole number", name, v);
	if (n < min || n > max)
		die("invalid %s value '%s': must be between %lu and %lu", name, v, min, max);
	return n;
}

static double parse_float(const char *name, const char *v, double min)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(d))
		die("invalid %s value '%s': expected a number", name, v);
	if (d < min)
		die("invalid %s value '%s': must be at least %g", name, v, min);
	return d;
}

/* getopt_long failed (opterr = 0): say which option, in one line. */
__attribute__((noreturn)) static void bad_option(enum cli_mode mode, int opt, int argc, char **argv)
{
	const char *sub = mode == MODE_RUN ? "run" : "exec";
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	char shortopt[3] = {'-', (char)optopt, '\0'};
	int len;

	if (strncmp(arg, "--", 2) == 0) {
		/* A long option: name it without any =VALUE. */
		int matches = 0;
		bool exact = false;
		len = (int)strcspn(arg, "=");
		for (const struct option *o = longopts; o->name; o++) {
			if (strncmp(o->name, arg + 2, (size_t)len - 2) == 0) {
				matches++;
				exact = exact || strlen(o->name) == (size_t)len - 2;
			}
		}
		if (opt == ':')
			die("option '%.*s' needs a value (see 'corral %s --help')", len, arg, sub);
		if (matches > 1 && !exact)
			die("ambiguous option '%.*s' (see 'corral %s --help')", len, arg, sub);
		if (matches && arg[len] == '=')
			die("option '%.*s' takes no value, got '%s' (see 'corral %s --help')", len,
			    arg, arg + len + 1, sub);
		die("unknown option '%.*s' (see 'corral %s --help')", len, arg, sub);
	}
	/* A short option, maybe inside a cluster (-kZ): optopt names it. */
	if (opt == ':')
		die("option '%s' needs a value (see 'corral %s --help')", shortopt, sub);
	die("unknown option '%s' (see 'corral %s --help')", shortopt, sub);
}

/* The cgroup namespace and its read-only cgroupfs need CAP_SYS_ADMIN, which
 * root in a container often lacks (podman, docker): ask for the capability,
 * not for uid 0. */
static bool have_sys_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return geteuid() == 0;
	return (d[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1u;
}

/* --tmpdir must be a directory we can create files in: checked now, not
 * when the first large output has to spill. */
static void check_tmpdir(const char *dir)
{
	struct stat st;

	if (!*dir)
		die("invalid --tmpdir value '': expected a directory");
	if (stat(dir, &st) < 0)
		die("invalid --tmpdir value '%s': %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		die("invalid --tmpdir value '%s': not a directory", dir);
	if (access(dir, W_OK | X_OK) < 0)
		die("invalid --tmpdir value '%s': %s", dir, strerror(errno));
}

static void run_only(enum cli_mode mode, const char *opt)
{
	if (mode == MODE_EXEC)
		die("%s is an option of `corral run`, not `corral exec`", opt);
}

/* ":::", "::::" (and GNU parallel's ":::+", "::::+", which corral lacks). */
static int separator(const char *w)
{
	if (!strcmp(w, ":::"))
		return 3;
	if (!strcmp(w, "::::"))
		return 4;
	if (!strcmp(w, ":::+") || !strcmp(w, "::::+"))
		return -1;
	return 0;
}

void cli_parse(struct cli *c, enum cli_mode mode, int argc, char **argv)
{
	int opt, trim = -1;
	bool tag = false;
	const char *tagstring = NULL;

	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->report_fd = c->joblog_fd = -1;
	c->sandbox = true;
	corral_options_init(&c->o);
	c->o.sandbox.seccomp = CORRAL_SECCOMP_DEFAULT;
	/* At most one source per argument. */
	c->sources = calloc((size_t)argc + 1, sizeof(*c->sources));
	if (!c->sources)
		die("out of memory");
	optind = 1;
	opterr = 0; /* our own one-line messages (bad_option) */
	c->max_args = c->max_lines = -1;
	while ((opt = getopt_long(argc, argv, "+:j:m:t:ka:0qvC:N:L:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c->o.jobs = (unsigned)parse_count("--jobs", optarg, 1, 100000);
			c->jobs_given = true;
			break;
		case 'm':
			c->o.memory_max = parse_size_opt("--memory", optarg);
			c->memory_given = c->o.memory_max != CORRAL_UNLIMITED;
			break;
		case OPT_SWAP:
			if (corral_parse_size(optarg, &c->o.swap_max) < 0)
				die("invalid --swap value '%s': expected a size like 0, 512M or "
				    "max",
				    optarg);
			break;
		case OPT_PIDS:
			c->o.pids_max = !strcmp(optarg, "max")
			                    ? CORRAL_UNLIMITED
			                    : parse_count("--pids", optarg, 1, 4194304);
			break;
		case OPT_CPUS:
			c->o.cpus = parse_float("--cpus", optarg, 0.01);
			break;
		case 't':
			c->o.timeout_ns = parse_duration_opt("--timeout", optarg);
			if (c->o.timeout_ns == 0)
				c->o.timeout_ns = CORRAL_UNLIMITED; /* timeout(1): 0 disables */
			break;
		case OPT_KILL_AFTER:
			c->o.kill_grace_ns = parse_duration_opt("--kill-after", optarg);
			break;
		case OPT_HALT:
			if (corral_parse_halt(optarg, &c->o.halt) < 0)
				die("invalid --halt value '%s': expected ordered, now or never",
				    optarg);
			break;
		case OPT_RETRIES:
			c->o.retries = (unsigned)parse_count("--retries", optarg, 0, 1000);
			break;
		case OPT_RETRY_ON:
			if (corral_parse_retry_on(optarg, &c->o.retry_on) < 0)
				die("invalid --retry-on value '%s': expected a comma-separated "
				    "list of "
				    "oom, timeout, signal, exit (or all, none)",
				    optarg);
			break;
		case OPT_GROWTH:
			c->o.memory_growth = parse_float("--memory-growth", optarg, 1.0);
			break;
		case OPT_CEILING:
			c->o.memory_ceiling = parse_size_opt("--memory-ceiling", optarg);
			break;
		case OPT_BUDGET:
			c->o.memory_budget = parse_size_opt("--memory-budget", optarg);
			break;
		case OPT_REPORT:
			c->report_path = optarg;
			break;
		case OPT_JOBLOG:
			c->joblog_path = optarg;
			break;
		case OPT_RESULTS:
			c->results_dir = optarg;
			break;
		case 'k':
			c->keep_order = true;
			break;
		case OPT_UNGROUP:
			c->ungroup = true;
			break;
		case OPT_PROGRESS:
			c->progress = true;
			break;
		case OPT_SECCOMP:
			if (!strcmp(optarg, "off")) {
				c->o.sandbox.seccomp = CORRAL_SECCOMP_OFF;
			} else if (!strcmp(optarg, "default")) {
				c->o.sandbox.seccomp = CORRAL_SECCOMP_DEFAULT;
			} else {
				c->o.sandbox.seccomp = CORRAL_SECCOMP_FILE;
				c->o.sandbox.seccomp_file = optarg;
			}
			break;
		case OPT_ALLOW_PTRACE:
			c->o.sandbox.allow_ptrace = true;
			break;
		case OPT_ALLOW_IO_URING:
			c->o.sandbox.allow_io_uring = true;
			break;
		case OPT_CORE_DUMPS:
			c->o.sandbox.core_dumps = true;
			break;
		case OPT_USER:
			c->o.sandbox.user = optarg;
			break;
		case OPT_NO_NETWORK:
			c->o.sandbox.no_network = true;
			break;
		case OPT_NO_SANDBOX:
			c->sandbox = false;
			break;
		case OPT_CGROUP_PARENT:
			c->o.cgroup_parent = optarg;
			break;
		case OPT_OOM_GROUP:
			c->o.oom_group = true;
			break;
		case OPT_NO_OOM_GROUP:
			c->o.oom_group = false;
			break;
		case OPT_ALLOW_SUBPROCESS_OOM:
			c->o.allow_subprocess_oom = true;
			break;
		case OPT_NO_CGROUPS:
			c->o.no_cgroups = true;
			break;
		case OPT_TIMELINE:
			c->o.timeline = true;
			break;
		case OPT_CGROUPS:
			if (corral_parse_cgroups(optarg, &c->o.cgroups) < 0)
				die("invalid --cgroups value '%s': expected auto, own, systemd, "
				    "slurm, "
				    "observe or off",
				    optarg);
			break;
		case 'v':
			c->verbose = true;
			break;
		case OPT_TMPDIR:
			check_tmpdir(optarg);
			c->o.tmpdir = optarg;
			break;
		case 'a':
			run_only(mode, "-a/--arg-file");
			c->sources[c->n_sources++] = (struct cli_source){.path = optarg};
			break;
		case OPT_LINK:
			run_only(mode, "--link");
			c->link = true;
			break;
		case 'C': {
			char why[256];
			run_only(mode, "-C/--colsep");
			if (c->has_colsep)
				regfree(&c->colsep);
			if (colsep_compile(optarg, &c->colsep, why, sizeof(why)) < 0)
				die("invalid --colsep value '%s': %s", optarg, why);
			c->has_colsep = true;
			c->colsep_arg = optarg;
			break;
		}
		case 'N':
			run_only(mode, "-N");
			c->max_args = (long)parse_count("-N", optarg, 0, 1000000);
			break;
		case 'L':
			run_only(mode, "-L/--max-lines");
			c->max_lines = (long)parse_count("--max-lines", optarg, 1, 1000000);
			break;
		case OPT_TRIM:
			run_only(mode, "--trim");
			if (!strcmp(optarg, "n"))
				trim = TRIM_NONE;
			else if (!strcmp(optarg, "l"))
				trim = TRIM_LEFT;
			else if (!strcmp(optarg, "r"))
				trim = TRIM_RIGHT;
			else if (!strcmp(optarg, "lr") || !strcmp(optarg, "rl"))
				trim = TRIM_BOTH;
			else
				die("invalid --trim value '%s': expected n, l, r, lr or rl",
				    optarg);
			break;
		case OPT_DRY_RUN:
			run_only(mode, "--dry-run");
			c->dry_run = true;
			break;
		case OPT_TAG:
			run_only(mode, "--tag");
			tag = true;
			break;
		case OPT_TAGSTRING:
			run_only(mode, "--tagstring");
			tagstring = optarg;
			break;
		case OPT_LINE_BUFFER:
			run_only(mode, "--line-buffer");
			c->line_buffer = true;
			break;
		case OPT_RESUME:
			run_only(mode, "--resume");
			c->resume = true;
			break;
		case OPT_RESUME_FAILED:
			run_only(mode, "--resume-failed");
			c->resume = c->resume_failed = true;
			break;
		case OPT_SLURM:
			run_only(mode, "--slurm");
			c->slurm = true;
			break;
		case OPT_WORKERS:
			run_only(mode, "--workers");
			if (!strstr(optarg, "{node}"))
				die("invalid --workers value '%s': the command needs {node} where "
				    "the "
				    "node's name goes (e.g. 'ssh {node} corral worker')",
				    optarg);
			c->workers_tmpl = optarg;
			break;
		case OPT_NODES:
			run_only(mode, "--nodes");
			c->nodes_arg = optarg;
			break;
		case OPT_LOST_RETRIES:
			c->o.lost_retries =
			    (unsigned)parse_count("--lost-retries", optarg, 0, 1000);
			break;
		case OPT_WORKER_TIMEOUT:
			c->o.worker_timeout_ns = parse_duration_opt("--worker-timeout", optarg);
			if (c->o.worker_timeout_ns < 100000000u)
				die("invalid --worker-timeout value '%s': at least 100ms (a worker "
				    "says something every tenth of it)",
				    optarg);
			break;
		case '0':
			c->null_sep = true;
			break;
		case 'q':
			c->quiet = true;
			break;
		case OPT_HELP:
			cli_usage(mode, stdout);
			exit(0);
		case OPT_VERSION:
			printf("corral %s (libcorral %s)\n", CORRAL_VERSION_STRING,
			       corral_version());
			exit(0);
		default:
			bad_option(mode, opt, argc, argv);
		}
	}
	if (!c->sandbox) {
		if (c->o.sandbox.seccomp == CORRAL_SECCOMP_DEFAULT)
			c->o.sandbox.seccomp = CORRAL_SECCOMP_OFF;
	} else {
		c->o.sandbox.no_new_privs = true;
		/* Read-only cgroupfs in a cgroup namespace: needs cgroups, and the
		 * namespaces need root (CAP_SYS_ADMIN). A non-root corral in a
		 * delegated cgroup runs without it (README, "Security model"). */
		c->o.sandbox.cgroup_ns = !c->o.no_cgroups && c->o.cgroups != CORRAL_CGROUPS_OFF &&
		                         c->o.cgroups != CORRAL_CGROUPS_OBSERVE && have_sys_admin();
		/* The batch's PID namespace (needs CAP_SYS_ADMIN too): tasks
		 * cannot see or signal corral or its watchdog, and nothing of
		 * theirs outlives the watchdog, cgroups or not. */
		c->o.sandbox.pid_ns = have_sys_admin();
	}
	if (c->o.cgroups == CORRAL_CGROUPS_OFF)
		c->o.no_cgroups = true;
	if (c->o.no_cgroups && c->o.cgroups != CORRAL_CGROUPS_AUTO &&
	    c->o.cgroups != CORRAL_CGROUPS_OFF)
		die("--no-cgroups contradicts --cgroups %s: choose one",
		    corral_cgroups_name(c->o.cgroups));
	if (c->o.cgroup_parent && c->o.cgroups != CORRAL_CGROUPS_AUTO &&
	    c->o.cgroups != CORRAL_CGROUPS_OWN)
		die("--cgroup-parent goes with --cgroups own (or auto), not --cgroups %s",
		    corral_cgroups_name(c->o.cgroups));
	if (c->memory_given &&
	    (c->o.cgroups == CORRAL_CGROUPS_OBSERVE || c->o.cgroups == CORRAL_CGROUPS_OFF))
		die("--memory needs per-task cgroups, which --cgroups %s does not give: drop one",
		    corral_cgroups_name(c->o.cgroups));
	if (c->o.no_cgroups && c->memory_given)
		die("--memory needs cgroups: drop --no-cgroups");
	if (c->o.memory_budget != CORRAL_UNLIMITED && c->o.no_cgroups)
		die("--memory-budget needs cgroups: drop --no-cgroups");
	if (c->o.memory_budget != CORRAL_UNLIMITED && !c->memory_given)
		die("--memory-budget needs a memory limit per task: add -m SIZE");
	if (c->o.memory_budget != CORRAL_UNLIMITED && c->o.memory_max > c->o.memory_budget) {
		char m[32], b[32];
		die("--memory %s exceeds --memory-budget %s: no task could ever start",
		    corral_format_size(c->o.memory_max, m, sizeof(m)),
		    corral_format_size(c->o.memory_budget, b, sizeof(b)));
	}
	if (c->ungroup && c->keep_order)
		die("--ungroup and --keep-order contradict each other: choose one");

	/* The command, then ::: and :::: groups of input. */
	int i = optind;
	int start = i;
	for (; i < argc; i++)
		if (separator(argv[i]))
			break;
	c->cmd = argv + start;
	c->cmd_argc = i - start;
	if (i < argc && mode == MODE_EXEC)
		die("%s is an input of `corral run`; `corral exec` runs one command", argv[i]);
	while (i < argc) {
		int kind = separator(argv[i]);
		int k = i + 1;
		if (kind < 0)
			die("%s (GNU parallel's linked input group) is not supported: use --link",
			    argv[i]);
		while (k < argc && !separator(argv[k]))
			k++;
		if (kind == 3) {
			c->sources[c->n_sources++] =
			    (struct cli_source){.words = argv + i + 1, .n_words = k - i - 1};
		} else {
			if (k == i + 1)
				die(":::: needs a file name after it (or - for stdin)");
			for (int f = i + 1; f < k; f++)
				c->sources[c->n_sources++] = (struct cli_source){.path = argv[f]};
		}
		i = k;
	}
	/* GNU parallel: --colsep trims the arguments unless --trim says. */
	c->trim = trim >= 0 ? trim : c->has_colsep ? TRIM_BOTH : TRIM_NONE;
	if (c->resume && !c->joblog_path)
		die("--resume%s needs --joblog FILE (the record of what already ran)",
		    c->resume_failed ? "-failed" : "");
	if (c->line_buffer && (c->ungroup || c->keep_order))
		die("--line-buffer and %s contradict each other: choose one",
		    c->ungroup ? "--ungroup" : "--keep-order");
	if ((tag || tagstring) && c->ungroup)
		die("--tag%s cannot tag --ungroup output: use --line-buffer",
		    tagstring ? "string" : "");
	if (c->slurm || c->workers_tmpl) {
		if (c->slurm && c->workers_tmpl)
			die("--slurm and --workers contradict each other: choose one");
		if (c->workers_tmpl && !c->nodes_arg)
			die("--workers needs --nodes LIST: the nodes whose names go into {node}");
		if (c->ungroup || c->line_buffer)
			die("%s passes output through as it comes, but a task on a worker sends "
			    "it when it ends: drop it with --%s",
			    c->ungroup ? "--ungroup" : "--line-buffer",
			    c->slurm ? "slurm" : "workers");
		if (c->slurm && !getenv("SLURM_JOB_ID"))
			die("--slurm runs inside a Slurm allocation (an sbatch script, or salloc): "
			    "SLURM_JOB_ID is not set");
		/* Per node: -j as given, else the node's CPUs (0). */
		c->node_jobs = c->jobs_given ? c->o.jobs : 0;
		c->o.no_local = true;
	} else if (c->nodes_arg) {
		die("--nodes goes with --slurm or --workers");
	}
	if (mode == MODE_RUN && c->o.jobs == 0) {
		/* The library's default, known here: {%} and --dry-run need it. */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		c->o.jobs = ncpu > 0 ? (unsigned)ncpu : 1;
	}
	if (mode == MODE_RUN) {
		char why[256];
		bool context = c->max_args >= 0 || c->max_lines > 0;
		c->tmpl = tmpl_compile(c->cmd_argc ? c->cmd : NULL, c->cmd_argc, context, why,
		                       sizeof(why));
		if (!c->tmpl)
			die("%s", why);
		if (c->o.no_local && tmpl_uses_slot(c->tmpl))
			die("{%%} numbers the job slots of one machine; with --%s tasks run on "
			    "several: use {#}",
			    c->slurm ? "slurm" : "workers");
		if (tag || tagstring) {
			/* --tag is --tagstring {} (GNU parallel: "{==}"). */
			static char brace[] = "{}";
			c->tagstring = tagstring ? unquote_printf(tagstring) : NULL;
			c->tag_tmpl = tmpl_compile_tag(c->tagstring ? c->tagstring : brace, context,
			                               why, sizeof(why));
			if (!c->tag_tmpl)
				die("invalid --tagstring: %s", why);
		}
	}
	if (mode == MODE_EXEC) {
		if (c->cmd_argc == 0)
			die("exec needs a command: corral exec [OPTIONS] -- COMMAND [ARG...]");
		c->o.jobs = 1;
		c->o.foreground = true;
		if (c->progress || c->keep_order || c->ungroup || c->results_dir)
			die("--progress, --keep-order, --ungroup and --results are options of "
			    "`corral run`");
	}
	if (c->o.memory_max == CORRAL_UNLIMITED && c->o.memory_ceiling != CORRAL_UNLIMITED)
		die("--memory-ceiling needs a memory limit to grow from: add -m SIZE");
}

void cli_free(struct cli *c)
{
	tmpl_free(c->tmpl);
	tmpl_free(c->tag_tmpl);
	free(c->tagstring);
	if (c->has_colsep)
		regfree(&c->colsep);
	free(c->sources);
	c->tmpl = c->tag_tmpl = NULL;
	c->tagstring = NULL;
	c->has_colsep = false;
	c->sources = NULL;
}
