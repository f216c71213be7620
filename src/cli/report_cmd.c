/* report_cmd.c - `corral report [OPTIONS] FILE.jsonl`. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

static void report_usage(FILE *f)
{
	fputs("usage: corral report [OPTIONS] FILE.jsonl\n"
	      "\n"
	      "Summarizes a --report file of `corral run` or `corral exec`: the outcomes, each\n"
	      "command group's memory peak against its limit, the retries and the memory-time\n"
	      "they cost (limit x wall time), the slowest and the biggest attempts. A command\n"
	      "group is the command with its input item masked as {}. Reads files of any size\n"
	      "in bounded memory (it reads FILE twice: a file, not a pipe).\n"
	      "\n"
	      "  --suggest          per command group, the memory limit that would have avoided\n"
	      "                     the OOM kills, and the memory-time it would save\n"
	      "  --headroom F       --suggest multiplies the memory needed by F (default 1.2)\n"
	      "  --html OUT.html    also write one self-contained HTML page with charts\n"
	      "  --json             print everything as one JSON object instead of text\n"
	      "  --top N            slowest and biggest attempts listed (default 5, at most 50)\n"
	      "  --max-line SIZE    refuse lines longer than SIZE (default 16M)\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "Exit status: 0, or 125 when the file cannot be read or is not a corral report\n"
	      "(one line on stderr says which line and why).\n",
	      f);
}

int cli_report(int argc, char **argv)
{
	enum {
		OPT_SUGGEST = 256,
		OPT_HEADROOM,
		OPT_HTML,
		OPT_JSON,
		OPT_TOP,
		OPT_MAX_LINE
	};
	static const struct option longopts[] = {
	    {"suggest", no_argument, NULL, OPT_SUGGEST},
	    {"headroom", required_argument, NULL, OPT_HEADROOM},
	    {"html", required_argument, NULL, OPT_HTML},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"top", required_argument, NULL, OPT_TOP},
	    {"max-line", required_argument, NULL, OPT_MAX_LINE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rpt_opts o = {.max_line = RPT_MAX_LINE_DEFAULT, .headroom = 1.2, .top = 5};
	const char *html = NULL, *why;
	char err[1024] = "", *end;
	struct rpt *r;
	uint64_t size;
	int opt, rc;

	/* Options may follow the file: `corral report r.jsonl --suggest`. */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SUGGEST:
			o.suggest = true;
			break;
		case OPT_HEADROOM:
			errno = 0;
			o.headroom = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(o.headroom) ||
			    o.headroom < 1.0 || o.headroom > 100.0)
				die("invalid --headroom value '%s': expected a factor from 1 to "
				    "100, "
				    "like 1.2",
				    optarg);
			break;
		case OPT_HTML:
			if (!*optarg)
				die("invalid --html value '': expected a file name");
			html = optarg;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_TOP: {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v > RPT_TOP_MAX)
				die("invalid --top value '%s': expected a whole number from 0 to "
				    "%d",
				    optarg, RPT_TOP_MAX);
			o.top = (unsigned)v;
			break;
		}
		case OPT_MAX_LINE:
			if (corral_parse_size(optarg, &size) < 0 || size == CORRAL_UNLIMITED ||
			    size < 1024 || size > (1ull << 30))
				die("invalid --max-line value '%s': expected a size from 1K to 1G, "
				    "like 64M",
				    optarg);
			o.max_line = (size_t)size;
			break;
		case 'h':
			report_usage(stdout);
			return 0;
		default:
			/* A long option without its value reports its val (>= 256) in
			 * optopt, an unknown short one its letter, an unknown long one 0. */
			if (optopt >= 256)
				die("option '%s' needs a value (see 'corral report --help')",
				    argv[optind - 1]);
			if (optopt)
				die("unknown option '-%c' (see 'corral report --help')", optopt);
			die("unknown option '%s' (see 'corral report --help')", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		die("report needs a FILE: corral report [OPTIONS] FILE.jsonl (a --report file)");
	if (optind + 1 < argc)
		die("report takes one FILE, got '%s' too", argv[optind + 1]);
	o.path = argv[optind];
	o.want_chart_data = html || o.json; /* the page's data is --json's */
	/* Fail before reading a big file. */
	if (html && rpt_asset("echarts", &why) == 0) {
		rpt_asset("why", &why);
		die("--html is unavailable: %s", *why ? why : "no chart library");
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		die("out of memory");
	rc = rpt_build(r, &o, err, sizeof(err));
	if (rc < 0) {
		rpt_free(r);
		free(r);
		die("%s", err[0] ? err : strerror(-rc));
	}
	if (html) {
		FILE *f = fopen(html, "we");
		if (!f)
			die("cannot write --html file '%s': %s", html, strerror(errno));
		rc = rpt_print_html(r, f, &why);
		if (rc < 0)
			die("--html is unavailable: %s", why);
		if (ferror(f) | (fclose(f) != 0))
			die("cannot write --html file '%s': %s", html, strerror(errno));
	}
	if (o.json)
		rpt_print_json(r, stdout);
	else
		rpt_print_text(r, stdout);
	if (html && !o.json)
		printf("\nwrote %s\n", html);
	rpt_free(r);
	free(r);
	if (fflush(stdout) != 0 || ferror(stdout))
		die("cannot write the report to stdout: %s", strerror(errno));
	return 0;
}
