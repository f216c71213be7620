/* report.h - `corral report FILE.jsonl`: what a --report file says, in bounded
 * memory.
 *
 * report_read.c  lines of at most max_line bytes; one record per line
 * report_agg.c   two passes over the file: the first learns the command
 *                shapes (which words of a command are the input item), the
 *                second aggregates per command group; text and JSON output,
 *                limit suggestions
 * report_html.c  the self-contained HTML page (ECharts and the page's own
 *                script embedded at build time, report/)
 * report_cmd.c   the command line
 *
 * Memory: the longest line (twice: the line and a decoding buffer), plus
 * fixed-size tables: RPT_MAX_SHAPES shapes, RPT_MAX_GROUPS groups, top-K
 * lists, RPT_POINTS_ALL chart points (or RPT_SLICES slices of 3), a few
 * timelines of at most RPT_TIMELINE_POINTS points. Nothing grows with the
 * number of records. Every limit that cuts something off is said in the
 * output.
 */
#ifndef CORRAL_CLI_REPORT_H
#define CORRAL_CLI_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "corral.h"
#include "json.h"

#define RPT_MAX_LINE_DEFAULT (16u << 20)
#define RPT_MAX_WORDS        64 /* words of a command that take part in grouping */
#define RPT_MAX_DISTINCT     16 /* distinct values tracked per word position */
#define RPT_MAX_SHAPES       256
#define RPT_MAX_GROUPS       1024
#define RPT_REF_WORD         128  /* bytes of a word kept for a group's name */
#define RPT_NAME_MAX         2048 /* bytes of a group's name */
#define RPT_TOP_MAX          50
#define RPT_CMD_SHOWN        160  /* bytes of a command kept with a top-K entry */
#define RPT_POINTS_ALL       5000 /* up to this many attempts: one chart point each */
#define RPT_SLICES           2000 /* above: the task range cut into slices */
#define RPT_TL_OOM           8    /* timelines shown: OOM-killed attempts */
#define RPT_TL_BIG           4    /* ... the biggest peaks */
#define RPT_TL_SLOW          4    /* ... the slowest */
#define RPT_TL_MAX           (RPT_TL_OOM + RPT_TL_BIG + RPT_TL_SLOW)
#define RPT_TIMELINE_POINTS  1000 /* points kept of one timeline */
#define RPT_LADDER_MAX       64   /* (attempt, limit) cells of the retry ladder */
#define RPT_HOSTS_MAX        64
#define RPT_COMMS_MAX        32
#define RPT_TEXT_MAX         1024 /* bytes kept of a summary sentence */

/* Outcomes are counted as corral_outcome_t, plus one slot for names this
 * corral does not know (a newer writer). */
#define RPT_OUTCOME_OTHER CORRAL_OUTCOME_COUNT
#define RPT_NOUTCOMES     (CORRAL_OUTCOME_COUNT + 1)

/* ---------------------------------------------------------------- lines */

struct line_reader {
	int fd;
	char *buf;
	size_t cap;      /* allocated */
	size_t start;    /* next unread byte */
	size_t end;      /* end of the bytes read */
	size_t scanned;  /* [start, scanned) holds no '\n' */
	size_t max_line; /* longest line accepted, without its '\n' */
	bool eof;
	uint64_t lineno; /* of the line last returned (1-based) */
	uint64_t offset; /* file offset of buf[0] */
};

void lr_init(struct line_reader *lr, int fd, size_t max_line);
/* The next line, NUL-terminated in place without its '\n' (valid until the
 * next call). Returns 1 (*torn: the file ended without a '\n' after it), 0 at
 * the end, -E2BIG for a line longer than max_line, -ENOMEM, or -errno of
 * read(). */
int lr_next(struct line_reader *lr, char **line, size_t *len, bool *torn);
/* Back to the start of the file (lseek); -ESPIPE for a pipe. */
int lr_rewind(struct line_reader *lr);
void lr_free(struct line_reader *lr);

/* ---------------------------------------------------------------- records */

enum rec_kind {
	REC_ATTEMPT,
	REC_SUMMARY
};

/* One line, decoded. json_val members point into the line. */
struct rec {
	enum rec_kind kind;
	struct json_val obj; /* the attempt record, or the summary's inner object */
	/* attempt records */
	uint64_t seq;
	uint32_t attempt;
	bool final;
	int outcome; /* corral_outcome_t or RPT_OUTCOME_OTHER */
	bool has_limit;
	uint64_t memory_max; /* CORRAL_UNLIMITED when null */
	bool has_peak;
	uint64_t memory_peak;
	bool own_limit_hit;
	double start_time, wall_time; /* 0 when null or absent */
	struct json_val command;      /* JSON_ARRAY, or JSON_INVALID */
	struct json_val sentence, host, oom_victims, oom_memcg, timeline;
	bool has_stall;
	double stall_some, stall_full;
	/* summary records */
	bool has_schema_version;
	uint64_t schema_version;
	struct json_val provider;
};

/* Decode one checked line. Returns 0, or -EINVAL with a message naming the
 * field in err. */
int rec_decode(const char *line, size_t len, struct rec *r, char *err, size_t errlen);

/* ---------------------------------------------------------------- aggregates */

struct rpt_stats {
	uint64_t tasks;    /* final records */
	uint64_t attempts; /* records of attempts that ran (attempt >= 1) */
	uint64_t retried;  /* attempts that were not final: another one followed */
	uint64_t retried_after_oom;
	uint64_t final_outcomes[RPT_NOUTCOMES];
	uint64_t attempt_outcomes[RPT_NOUTCOMES];
	uint64_t oom_attempts;    /* OOM-killed at their own limit */
	uint64_t oom_limit_max;   /* the highest such limit */
	uint64_t final_oom_tasks; /* tasks whose last attempt was OOM-killed at its own limit */
	uint64_t peak_n;
	double peak_sum;
	uint64_t peak_max;             /* over every attempt */
	uint64_t peak_need;            /* over the attempts not OOM-killed at their own limit */
	uint64_t limit_min, limit_max; /* over attempts with a limit */
	uint64_t first_limit_min, first_limit_max; /* over first attempts */
	uint64_t unlimited_attempts;
	uint64_t use_n;
	double use_sum;    /* peak / limit of the attempts that ended ok */
	double mt_all;     /* byte-seconds: limit x wall time of every attempt */
	double mt_retried; /* ... of the retried attempts */
	double wall_all, wall_retried, wall_final;
	uint64_t stall_n;
	double stall_some, stall_full, stall_wall;
	uint64_t victims;
};

enum rpt_role {
	ROLE_CONST = 0, /* the same word in every task of the shape */
	ROLE_KEY,       /* a few values, each repeated: names different commands */
	ROLE_ITEM       /* the input item: masked */
};

struct rpt_position {
	uint32_t distinct; /* distinct values seen, RPT_MAX_DISTINCT + 1 = more */
	uint32_t role;
	uint64_t seen[RPT_MAX_DISTINCT];
};

struct rpt_shape {
	uint64_t key;
	size_t nwords; /* words of the commands of this shape (all of them) */
	bool shell;
	uint64_t records;
	size_t npos; /* min(nwords, RPT_MAX_WORDS) */
	struct rpt_position *pos;
};

struct rpt_group {
	uint64_t key;
	int shape; /* -1: the "other" group */
	uint64_t first_line;
	char *ref; /* the first command's words, each cut at RPT_REF_WORD */
	uint32_t ref_off[RPT_MAX_WORDS + 1];
	uint32_t ref_full[RPT_MAX_WORDS];                /* their real lengths */
	uint16_t pre[RPT_MAX_WORDS], suf[RPT_MAX_WORDS]; /* common prefix/suffix of item words */
	size_t nref;
	char *name;
	struct rpt_stats st;
	/* the suggestion */
	bool sug_ok, sug_lower_bound;
	uint64_t sug_need, sug_memory;
	char sug_text[24];
	double sug_mt;
};

struct rpt_top {
	double value;
	uint64_t line, seq;
	uint32_t attempt;
	int outcome;
	bool has_peak, has_limit;
	uint64_t peak, limit;
	double wall;
	int group;
	char cmd[RPT_CMD_SHOWN];
};

struct rpt_point {
	uint64_t line;
	uint64_t seq;
	uint32_t attempt;
	uint8_t outcome;
	bool has_peak, has_limit;
	uint64_t peak, limit;
	double wall;
	uint64_t count; /* attempts this point stands for (slices) */
	int group;
};

struct rpt_ladder {
	uint32_t attempt;
	uint64_t limit; /* CORRAL_UNLIMITED: none */
	uint64_t n[RPT_NOUTCOMES];
};

struct rpt_timeline {
	uint64_t line, seq;
	uint32_t attempt;
	int outcome;
	const char *why; /* "oom", "biggest", "slowest" */
	bool has_limit, has_peak;
	uint64_t limit, peak;
	double wall;
	int group;
	size_t n;      /* points kept */
	size_t n_orig; /* points in the record */
	double *t;
	uint64_t *cur;
	int64_t peak_index;    /* in the kept points, -1 unknown */
	size_t n_emitted_last; /* index + 1 of the record's point kept last */
	char *victims_json;    /* the record's oom_victims, re-encoded; NULL */
	char *memcg;
	bool has_stall;
	double stall_some, stall_full;
	char *sentence;
};

struct rpt_named {
	char name[64];
	uint64_t n;
	uint64_t max; /* comm: the largest anon_rss */
};

struct rpt_opts {
	const char *path;
	size_t max_line;
	double headroom;
	unsigned top;
	bool suggest;
	bool json;
	bool want_chart_data; /* --html: points, ladder, timelines */
};

struct rpt {
	struct rpt_opts o;
	/* pass 1 */
	uint64_t lines, records, summaries;
	uint64_t max_seq;
	struct rpt_shape shapes[RPT_MAX_SHAPES];
	size_t nshapes;
	uint64_t shape_overflow;        /* records of shapes beyond the table */
	uint64_t tl_select[RPT_TL_MAX]; /* line numbers of the timelines to keep */
	const char *tl_why[RPT_TL_MAX];
	size_t ntl_select;
	struct rpt_top tl_big[RPT_TL_BIG], tl_slow[RPT_TL_SLOW];
	size_t ntl_big, ntl_slow;
	uint64_t tl_records; /* records that have a timeline */
	/* pass 2 */
	struct rpt_stats all;
	struct rpt_group *groups;
	size_t ngroups;
	struct rpt_group *other; /* records beyond RPT_MAX_GROUPS groups */
	struct rpt_top *slowest, *biggest;
	size_t nslowest, nbiggest;
	double first_start, last_end;
	/* charts */
	bool sliced;
	struct rpt_point *points; /* RPT_POINTS_ALL, or RPT_SLICES * 3 */
	size_t npoints;           /* entries of points[] in use (slices: all, some empty) */
	size_t points_cap;        /* entries allocated (the file may grow between the passes) */
	struct rpt_ladder ladder[RPT_LADDER_MAX];
	size_t nladder;
	uint64_t ladder_overflow;
	struct rpt_timeline tl[RPT_TL_MAX];
	size_t ntl;
	struct rpt_named hosts[RPT_HOSTS_MAX];
	size_t nhosts;
	uint64_t hosts_overflow;
	struct rpt_named comms[RPT_COMMS_MAX];
	size_t ncomms;
	/* the last summary line */
	bool has_summary;
	uint64_t sum_tasks, sum_attempts;
	bool sum_has_verdict;
	uint64_t sum_verdict_seq;
	char sum_verdict[32];
	int64_t sum_exit_code;
	bool sum_aborted;
	bool has_schema_version;
	uint64_t schema_version;
	char sum_sentence[RPT_TEXT_MAX];
	char sum_provider[256];
	/* a torn last line that was left out */
	bool torn_skipped;
	uint64_t torn_bytes;
	/* scratch */
	char *scratch;
	size_t scratch_cap;
};

/* Read path twice and fill r. Returns 0, or -errno with a one-line message
 * in err ("FILE:LINE: ..."). r must be released with rpt_free() either way. */
int rpt_build(struct rpt *r, const struct rpt_opts *o, char *err, size_t errlen);
void rpt_free(struct rpt *r);
/* The terminal summary (and the suggestions when o.suggest). */
void rpt_print_text(const struct rpt *r, FILE *f);
/* Everything, as one JSON object (what --json prints and the page reads). */
void rpt_print_json(const struct rpt *r, FILE *f);
/* The HTML page; returns 0, or -ENOTSUP when this corral was built without
 * the chart library (why: a static string). */
int rpt_print_html(const struct rpt *r, FILE *f, const char **why);

/* The embedded file name ("echarts", "why", "html", "css", "js"),
 * NUL-terminated; returns its length, 0 when absent (report_assets.c,
 * generated by CMake from report/report_assets.c.in). */
size_t rpt_asset(const char *name, const char **data);

/* "64.0 MiB" */
const char *rpt_size(uint64_t bytes, char *buf, size_t len);
/* Round a size up to two significant digits of MiB (below 1000 MiB) or GiB:
 * "76M", "1.4G"; writes the text and returns the bytes it stands for. */
uint64_t rpt_tidy_size(double bytes, char *text, size_t len);

#endif
