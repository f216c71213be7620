/* report_out.c - the terminal summary and the JSON form of `corral report`.
 *
 * The JSON object (--json, and the data of the HTML page) holds every figure
 * the text shows, with sizes in bytes, times in seconds and memory-time in
 * byte-seconds; "format" is its version (it only grows, like the records').
 */
#include <math.h>
#include <string.h>

#include "report.h"

#define TEXT_GROUPS 20 /* groups listed in the terminal; --json has them all */

const char *rpt_size(uint64_t bytes, char *buf, size_t len)
{
	return corral_format_size(bytes, buf, len);
}

/* Memory-time (byte-seconds) as "5.10 GiB·s", "12.0 GiB·h", "310 MiB·s". */
static const char *fmt_mt(double bs, char *buf, size_t len)
{
	double gs = bs / (1024.0 * 1024.0 * 1024.0);

	if (gs < 0.1)
		snprintf(buf, len, "%.0f MiB\u00b7s", gs * 1024.0);
	else if (gs < 10)
		snprintf(buf, len, "%.2f GiB\u00b7s", gs);
	else if (gs < 36000)
		snprintf(buf, len, "%.1f GiB\u00b7s", gs);
	else
		snprintf(buf, len, "%.1f GiB\u00b7h", gs / 3600.0);
	return buf;
}

static const char *fmt_secs(double s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%.3g s", s);
	else if (s < 3600)
		snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
	else /* the hours as a double: a record may say anything up to 1e15 s */
		snprintf(buf, len, "%.0fh%02dm", floor(s / 3600), (int)fmod(s / 60, 60));
	return buf;
}

/* A mean of byte counts back to bytes, saturated. */
static uint64_t to_bytes(double v)
{
	return v >= 18446744073709549568.0 ? UINT64_MAX : v > 0 ? (uint64_t)v : 0;
}

static const char *outcome_name(int o)
{
	const char *n = o < CORRAL_OUTCOME_COUNT ? corral_outcome_name((corral_outcome_t)o) : NULL;
	return n ? n : "other";
}

/* Bytes for a terminal: control characters as \xNN. */
static void put_safe(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void print_counts(FILE *f, const uint64_t *n)
{
	bool any = false;

	for (int o = 0; o < RPT_NOUTCOMES; o++) {
		if (!n[o])
			continue;
		fprintf(f, "%s%llu %s", any ? ", " : "", (unsigned long long)n[o], outcome_name(o));
		any = true;
	}
	if (!any)
		fputs("none", f);
}

static void print_group(FILE *f, const struct rpt_group *g, size_t id)
{
	const struct rpt_stats *st = &g->st;
	char a[32], b[32], c[32];

	fprintf(f, "  [%zu] ", id);
	put_safe(f, g->name);
	fprintf(f, "\n      %llu task%s: ", (unsigned long long)st->tasks,
	        st->tasks == 1 ? "" : "s");
	print_counts(f, st->final_outcomes);
	fprintf(f, "; %llu attempt%s", (unsigned long long)st->attempts,
	        st->attempts == 1 ? "" : "s");
	if (st->oom_attempts)
		fprintf(f, ", %llu OOM-killed at their limit (the highest: %s)",
		        (unsigned long long)st->oom_attempts,
		        rpt_size(st->oom_limit_max, a, sizeof(a)));
	fputc('\n', f);
	if (st->peak_n) {
		fprintf(f, "      peak %s max, %s mean", rpt_size(st->peak_max, a, sizeof(a)),
		        rpt_size(to_bytes(st->peak_sum / (double)st->peak_n), b, sizeof(b)));
	} else {
		fputs("      no memory peaks recorded", f);
	}
	if (st->limit_max) {
		if (st->limit_min == st->limit_max)
			fprintf(f, "; limit %s", rpt_size(st->limit_min, a, sizeof(a)));
		else
			fprintf(f, "; limits %s .. %s", rpt_size(st->limit_min, a, sizeof(a)),
			        rpt_size(st->limit_max, b, sizeof(b)));
	}
	if (st->unlimited_attempts)
		fprintf(f, "; %llu attempt%s without a limit",
		        (unsigned long long)st->unlimited_attempts,
		        st->unlimited_attempts == 1 ? "" : "s");
	if (st->use_n)
		fprintf(f, "; the ok attempts used %.0f%% of their limit on average",
		        100.0 * st->use_sum / (double)st->use_n);
	fputc('\n', f);
	if (st->limit_max) {
		fprintf(f, "      memory-time %s", fmt_mt(st->mt_all, a, sizeof(a)));
		if (st->retried)
			fprintf(f, ", %s of it in %llu retried attempt%s",
			        fmt_mt(st->mt_retried, b, sizeof(b)),
			        (unsigned long long)st->retried, st->retried == 1 ? "" : "s");
		fprintf(f, "; wall time %s\n", fmt_secs(st->wall_all, c, sizeof(c)));
	}
	if (st->stall_n && st->stall_wall > 0)
		fprintf(f,
		        "      stalled on memory %.0f%% of its wall time (some), %.0f%% (full)\n",
		        100.0 * st->stall_some / st->stall_wall,
		        100.0 * st->stall_full / st->stall_wall);
}

static void print_top(FILE *f, const struct rpt_top *t, size_t n, bool by_peak)
{
	char a[32], b[32], c[32];

	for (size_t i = 0; i < n; i++) {
		const struct rpt_top *e = &t[i];
		if (by_peak)
			fprintf(f, "  %10s  ", rpt_size(e->peak, a, sizeof(a)));
		else
			fprintf(f, "  %10s  ", fmt_secs(e->wall, a, sizeof(a)));
		fprintf(f, "task %llu attempt %u (%s", (unsigned long long)e->seq, e->attempt,
		        outcome_name(e->outcome));
		if (by_peak && e->has_limit)
			fprintf(f, ", limit %s", rpt_size(e->limit, b, sizeof(b)));
		else if (!by_peak && e->has_peak)
			fprintf(f, ", peak %s%s%s", rpt_size(e->peak, b, sizeof(b)),
			        e->has_limit ? " of " : "",
			        e->has_limit ? rpt_size(e->limit, c, sizeof(c)) : "");
		fputs(")", f);
		if (e->group >= 0)
			fprintf(f, " [%d]", e->group + 1);
		fputs("  ", f);
		put_safe(f, e->cmd);
		fputc('\n', f);
	}
}

static void print_suggestion(FILE *f, const struct rpt_group *g, size_t id, double headroom)
{
	const struct rpt_stats *st = &g->st;
	char a[32], b[32], c[32];

	if (!g->sug_ok) {
		fprintf(f, "  [%zu] no suggestion: no attempt recorded a memory peak\n", id);
		return;
	}
	fprintf(f, "  [%zu] -m %-6s needs %s", id, g->sug_text,
	        rpt_size(g->sug_need, a, sizeof(a)));
	if (g->sug_need == st->oom_limit_max && st->oom_limit_max > st->peak_need)
		fputs(" (an OOM kill at that limit)", f);
	else
		fputs(" (peak)", f);
	fprintf(f, " x %.2f", headroom);
	if (g->sug_lower_bound)
		fprintf(f, "; at least: %llu task%s never got past an OOM kill",
		        (unsigned long long)st->final_oom_tasks,
		        st->final_oom_tasks == 1 ? "" : "s");
	if (st->limit_max && !st->unlimited_attempts && st->mt_all > 0) {
		double save = st->mt_all - g->sug_mt;
		fprintf(f, "; memory-time %s instead of %s: %s %s (%.0f%%)",
		        fmt_mt(g->sug_mt, a, sizeof(a)), fmt_mt(st->mt_all, b, sizeof(b)),
		        save >= 0 ? "saves" : "costs", fmt_mt(fabs(save), c, sizeof(c)),
		        100.0 * fabs(save) / st->mt_all);
	}
	if (st->oom_attempts)
		fprintf(f, "; %llu OOM kill%s avoided", (unsigned long long)st->oom_attempts,
		        st->oom_attempts == 1 ? "" : "s");
	fputc('\n', f);
}

void rpt_print_text(const struct rpt *r, FILE *f)
{
	const struct rpt_stats *st = &r->all;
	char a[32], b[32], c[32];

	fputs("corral report of ", f);
	put_safe(f, r->o.path);
	fputc('\n', f);
	fprintf(f, "  %llu task%s, %llu attempt%s", (unsigned long long)st->tasks,
	        st->tasks == 1 ? "" : "s", (unsigned long long)st->attempts,
	        st->attempts == 1 ? "" : "s");
	if (st->retried)
		fprintf(f, " (%llu retried)", (unsigned long long)st->retried);
	if (r->last_end > r->first_start && r->first_start > 0)
		fprintf(f, ", %s from the first start to the last end",
		        fmt_secs(r->last_end - r->first_start, a, sizeof(a)));
	fputc('\n', f);
	if (r->has_summary) {
		fputs("  batch: ", f);
		put_safe(f, r->sum_sentence[0]   ? r->sum_sentence
		            : r->sum_has_verdict ? "(no sentence)"
		                                 : "no task failed");
		fprintf(f, " (exit %lld)\n", (long long)r->sum_exit_code);
		if (r->sum_tasks != st->tasks)
			fprintf(f, "  note: the summary line counts %llu tasks, the records %llu\n",
			        (unsigned long long)r->sum_tasks, (unsigned long long)st->tasks);
		if (r->summaries > 1)
			fprintf(f,
			        "  note: %llu summary lines (reports appended to each other?): the "
			        "last one is shown\n",
			        (unsigned long long)r->summaries);
	} else {
		fputs("  note: no summary line: the batch had not finished when the file was read, "
		      "or corral was killed\n",
		      f);
	}
	if (r->shape_overflow)
		fprintf(f,
		        "  note: more than %d command shapes: %llu records are in the \"other\" "
		        "group\n",
		        RPT_MAX_SHAPES, (unsigned long long)r->shape_overflow);
	if (r->torn_skipped)
		fprintf(f, "  note: the last line is torn (%llu bytes, no newline): left out\n",
		        (unsigned long long)r->torn_bytes);
	fputs("  outcomes: ", f);
	print_counts(f, st->final_outcomes);
	fputs("\n  attempts: ", f);
	print_counts(f, st->attempt_outcomes);
	fputc('\n', f);
	if (st->limit_max) {
		fprintf(f, "  memory-time: %s (limit x wall time of every attempt",
		        fmt_mt(st->mt_all, a, sizeof(a)));
		if (st->unlimited_attempts)
			fprintf(f, "; %llu without a limit left out",
			        (unsigned long long)st->unlimited_attempts);
		fputs(")\n", f);
	}
	if (st->retried) {
		fprintf(
		    f,
		    "  retries: %llu attempt%s retried (%llu after an OOM kill), %s of wall time",
		    (unsigned long long)st->retried, st->retried == 1 ? " was" : "s were",
		    (unsigned long long)st->retried_after_oom,
		    fmt_secs(st->wall_retried, a, sizeof(a)));
		if (st->limit_max)
			fprintf(f, ", %s of memory-time (%.0f%% of the batch's)",
			        fmt_mt(st->mt_retried, b, sizeof(b)),
			        st->mt_all > 0 ? 100.0 * st->mt_retried / st->mt_all : 0.0);
		fputc('\n', f);
	}
	if (st->stall_n && st->stall_wall > 0)
		fprintf(
		    f, "  memory pressure: stalled %.1f%% of the wall time (some), %.1f%% (full)\n",
		    100.0 * st->stall_some / st->stall_wall,
		    100.0 * st->stall_full / st->stall_wall);
	if (st->victims) {
		fprintf(f, "  OOM victims: %llu process%s", (unsigned long long)st->victims,
		        st->victims == 1 ? "" : "es");
		for (size_t i = 0; i < r->ncomms && i < 8; i++) {
			fprintf(f, "%s", i ? ", " : ": ");
			put_safe(f, r->comms[i].name);
			fprintf(f, " x%llu (up to %s resident)", (unsigned long long)r->comms[i].n,
			        rpt_size(r->comms[i].max, c, sizeof(c)));
		}
		fputc('\n', f);
	}
	if (r->nhosts > 1) {
		fprintf(f, "  hosts: %zu%s", r->nhosts, r->hosts_overflow ? "+" : "");
		for (size_t i = 0; i < r->nhosts && i < 8; i++) {
			fputs(i ? ", " : ": ", f);
			put_safe(f, r->hosts[i].name);
			fprintf(f, " (%llu)", (unsigned long long)r->hosts[i].n);
		}
		fputc('\n', f);
	}

	fprintf(f, "\ncommand groups: %zu%s (the command with its input item as {})\n",
	        r->ngroups + (r->other ? 1 : 0), r->other ? "+" : "");
	for (size_t i = 0; i < r->ngroups && i < TEXT_GROUPS; i++)
		print_group(f, &r->groups[i], i + 1);
	if (r->ngroups > TEXT_GROUPS)
		fprintf(f, "  ... and %zu more groups (--json lists them all)\n",
		        r->ngroups - TEXT_GROUPS);
	if (r->other)
		print_group(f, r->other, r->ngroups + 1);

	if (r->nslowest) {
		fputs("\nslowest attempts:\n", f);
		print_top(f, r->slowest, r->nslowest, false);
	}
	if (r->nbiggest) {
		fputs("\nbiggest attempts (memory peak):\n", f);
		print_top(f, r->biggest, r->nbiggest, true);
	}
	if (r->o.suggest) {
		fprintf(
		    f,
		    "\nsuggested memory limits per group: the highest peak of the attempts that "
		    "were not\nOOM-killed at their limit, or the highest limit that was, x %.2f, "
		    "rounded up to two\nsignificant digits; memory-time as if every task ran once "
		    "with it, as long as it did:\n",
		    r->o.headroom);
		for (size_t i = 0; i < r->ngroups; i++)
			print_suggestion(f, &r->groups[i], i + 1, r->o.headroom);
		if (r->other)
			print_suggestion(f, r->other, r->ngroups + 1, r->o.headroom);
	} else if (st->oom_attempts) {
		fputs("\n(--suggest: the limits that would have avoided the OOM kills)\n", f);
	}
}

/* ---------------------------------------------------------------- JSON */

static void jsize(struct json_out *o, const char *key, bool known, uint64_t v)
{
	json_key(o, key);
	if (known)
		json_u64_out(o, v);
	else
		json_null_out(o);
}

static void jnum(struct json_out *o, const char *key, double v)
{
	json_key(o, key);
	json_num_out(o, v);
}

static void jcount(struct json_out *o, const char *key, uint64_t v)
{
	json_key(o, key);
	json_u64_out(o, v);
}

static void jcounts(struct json_out *o, const char *key, const uint64_t *n)
{
	json_key(o, key);
	json_obj_begin(o);
	for (int i = 0; i < RPT_NOUTCOMES; i++) {
		if (i == RPT_OUTCOME_OTHER && !n[i])
			continue;
		jcount(o, outcome_name(i), n[i]);
	}
	json_obj_end(o);
}

static void jstats(struct json_out *o, const struct rpt_stats *st)
{
	jcount(o, "tasks", st->tasks);
	jcount(o, "attempts", st->attempts);
	jcount(o, "retried", st->retried);
	jcount(o, "retried_after_oom", st->retried_after_oom);
	jcounts(o, "outcomes", st->final_outcomes);
	jcounts(o, "attempt_outcomes", st->attempt_outcomes);
	jcount(o, "oom_attempts", st->oom_attempts);
	jsize(o, "oom_limit_max", st->oom_attempts && st->oom_limit_max, st->oom_limit_max);
	jcount(o, "final_oom_tasks", st->final_oom_tasks);
	jsize(o, "peak_max", st->peak_n, st->peak_max);
	jnum(o, "peak_mean", st->peak_n ? st->peak_sum / (double)st->peak_n : NAN);
	jsize(o, "peak_need", st->peak_need, st->peak_need);
	jsize(o, "limit_min", st->limit_max, st->limit_min);
	jsize(o, "limit_max", st->limit_max, st->limit_max);
	jsize(o, "first_limit_min", st->first_limit_max, st->first_limit_min);
	jsize(o, "first_limit_max", st->first_limit_max, st->first_limit_max);
	jcount(o, "unlimited_attempts", st->unlimited_attempts);
	jnum(o, "use_mean", st->use_n ? st->use_sum / (double)st->use_n : NAN);
	jnum(o, "memory_time", st->mt_all);
	jnum(o, "memory_time_retried", st->mt_retried);
	jnum(o, "wall_time", st->wall_all);
	jnum(o, "wall_time_retried", st->wall_retried);
	jnum(o, "wall_time_final", st->wall_final);
	jcount(o, "stall_attempts", st->stall_n);
	jnum(o, "stall_some", st->stall_n ? st->stall_some : NAN);
	jnum(o, "stall_full", st->stall_n ? st->stall_full : NAN);
	jnum(o, "stall_share",
	     st->stall_n && st->stall_wall > 0 ? st->stall_some / st->stall_wall : NAN);
	jcount(o, "oom_victims", st->victims);
}

static void jgroup(struct json_out *o, const struct rpt *r, const struct rpt_group *g, size_t id)
{
	const struct rpt_stats *st = &g->st;

	json_obj_begin(o);
	jcount(o, "id", id);
	json_key(o, "command");
	json_cstr(o, g->name);
	json_key(o, "other");
	json_bool_out(o, g->shape < 0);
	json_key(o, "shell");
	json_bool_out(o, g->shape >= 0 && r->shapes[g->shape].shell);
	jstats(o, st);
	json_key(o, "suggest");
	if (g->sug_ok) {
		json_obj_begin(o);
		jcount(o, "need", g->sug_need);
		json_key(o, "basis");
		json_cstr(o, g->sug_need == st->oom_limit_max && st->oom_limit_max > st->peak_need
		                 ? "oom_limit"
		                 : "peak");
		jnum(o, "headroom", r->o.headroom);
		jcount(o, "memory", g->sug_memory);
		json_key(o, "text");
		json_cstr(o, g->sug_text);
		json_key(o, "lower_bound");
		json_bool_out(o, g->sug_lower_bound);
		bool comparable = st->limit_max && !st->unlimited_attempts;
		jnum(o, "memory_time", g->sug_mt);
		jnum(o, "memory_time_today", comparable ? st->mt_all : NAN);
		jnum(o, "saves", comparable ? st->mt_all - g->sug_mt : NAN);
		json_obj_end(o);
	} else {
		json_null_out(o);
	}
	json_obj_end(o);
}

static void jtop(struct json_out *o, const char *key, const struct rpt_top *t, size_t n)
{
	json_key(o, key);
	json_arr_begin(o);
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(o);
		jcount(o, "line", t[i].line);
		jcount(o, "seq", t[i].seq);
		jcount(o, "attempt", t[i].attempt);
		json_key(o, "outcome");
		json_cstr(o, outcome_name(t[i].outcome));
		jnum(o, "wall_time", t[i].wall);
		jsize(o, "memory_peak", t[i].has_peak, t[i].peak);
		jsize(o, "memory_max", t[i].has_limit, t[i].limit);
		json_key(o, "group");
		if (t[i].group >= 0)
			json_u64_out(o, (uint64_t)t[i].group + 1);
		else
			json_null_out(o);
		json_key(o, "command");
		json_cstr(o, t[i].cmd);
		json_obj_end(o);
	}
	json_arr_end(o);
}

/* Chart points as columns: {"seq": [...], "attempt": [...], ...}. */
static void jpoints(struct json_out *o, const struct rpt *r)
{
	static const char *const cols[] = {"seq",   "attempt", "outcome", "peak",
	                                   "limit", "wall",    "count",   "group"};

	json_key(o, "points");
	json_obj_begin(o);
	json_key(o, "mode");
	json_cstr(o, r->sliced ? "sliced" : "all");
	jcount(o, "slices", r->sliced ? RPT_SLICES : 0);
	jcount(o, "budget", RPT_POINTS_ALL);
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		json_key(o, cols[c]);
		json_arr_begin(o);
		for (size_t i = 0; i < r->npoints; i++) {
			const struct rpt_point *p = &r->points[i];
			if (p->count == 0)
				continue;
			switch (c) {
			case 0:
				json_u64_out(o, p->seq);
				break;
			case 1:
				json_u64_out(o, p->attempt);
				break;
			case 2:
				json_cstr(o, outcome_name(p->outcome));
				break;
			case 3:
				if (p->has_peak)
					json_u64_out(o, p->peak);
				else
					json_null_out(o);
				break;
			case 4:
				if (p->has_limit)
					json_u64_out(o, p->limit);
				else
					json_null_out(o);
				break;
			case 5:
				json_num_out(o, p->wall);
				break;
			case 6:
				json_u64_out(o, p->count);
				break;
			default:
				if (p->group >= 0)
					json_u64_out(o, (uint64_t)p->group + 1);
				else
					json_null_out(o);
			}
		}
		json_arr_end(o);
	}
	json_obj_end(o);
}

static void jtimelines(struct json_out *o, const struct rpt *r)
{
	json_key(o, "timelines");
	json_arr_begin(o);
	for (size_t i = 0; i < r->ntl; i++) {
		const struct rpt_timeline *t = &r->tl[i];
		json_obj_begin(o);
		jcount(o, "line", t->line);
		jcount(o, "seq", t->seq);
		jcount(o, "attempt", t->attempt);
		json_key(o, "outcome");
		json_cstr(o, outcome_name(t->outcome));
		json_key(o, "why");
		json_cstr(o, t->why);
		jsize(o, "memory_max", t->has_limit, t->limit);
		jsize(o, "memory_peak", t->has_peak, t->peak);
		jnum(o, "wall_time", t->wall);
		json_key(o, "group");
		if (t->group >= 0)
			json_u64_out(o, (uint64_t)t->group + 1);
		else
			json_null_out(o);
		jcount(o, "points", t->n_orig);
		json_key(o, "t");
		json_arr_begin(o);
		for (size_t k = 0; k < t->n; k++)
			json_num_out(o, t->t[k]);
		json_arr_end(o);
		json_key(o, "current");
		json_arr_begin(o);
		for (size_t k = 0; k < t->n; k++)
			json_u64_out(o, t->cur[k]);
		json_arr_end(o);
		json_key(o, "peak_index");
		if (t->peak_index >= 0)
			json_i64_out(o, t->peak_index);
		else
			json_null_out(o);
		if (t->victims_json) {
			json_key(o, "oom_victims");
			json_raw(o, t->victims_json); /* re-encoded by victims_json() */
		}
		json_key(o, "oom_memcg");
		json_cstr(o, t->memcg);
		jnum(o, "memory_stall_some", t->has_stall ? t->stall_some : NAN);
		jnum(o, "memory_stall_full", t->has_stall ? t->stall_full : NAN);
		json_key(o, "sentence");
		json_cstr(o, t->sentence);
		json_obj_end(o);
	}
	json_arr_end(o);
}

void rpt_print_json(const struct rpt *r, FILE *f)
{
	struct json_out o;

	json_out_init(&o, f);
	json_obj_begin(&o);
	jcount(&o, "format", 1);
	json_key(&o, "file");
	json_cstr(&o, r->o.path);
	jcount(&o, "lines", r->lines);
	jcount(&o, "summaries", r->summaries);
	jcount(&o, "shape_overflow", r->shape_overflow);
	json_key(&o, "summary");
	if (r->has_summary) {
		json_obj_begin(&o);
		jsize(&o, "schema_version", r->has_schema_version, r->schema_version);
		jcount(&o, "tasks", r->sum_tasks);
		jcount(&o, "attempts", r->sum_attempts);
		jsize(&o, "verdict_seq", r->sum_has_verdict, r->sum_verdict_seq);
		json_key(&o, "verdict");
		json_cstr(&o, r->sum_verdict[0] ? r->sum_verdict : NULL);
		json_key(&o, "exit_code");
		json_i64_out(&o, r->sum_exit_code);
		json_key(&o, "aborted");
		json_bool_out(&o, r->sum_aborted);
		json_key(&o, "sentence");
		json_cstr(&o, r->sum_sentence);
		json_key(&o, "provider");
		json_cstr(&o, r->sum_provider[0] ? r->sum_provider : NULL);
		json_obj_end(&o);
	} else {
		json_null_out(&o);
	}
	json_key(&o, "torn_last_line");
	json_bool_out(&o, r->torn_skipped);
	jnum(&o, "first_start", r->first_start > 0 ? r->first_start : NAN);
	jnum(&o, "last_end", r->last_end > 0 ? r->last_end : NAN);
	jnum(&o, "headroom", r->o.headroom);
	json_key(&o, "all");
	json_obj_begin(&o);
	jstats(&o, &r->all);
	json_obj_end(&o);
	json_key(&o, "groups");
	json_arr_begin(&o);
	for (size_t i = 0; i < r->ngroups; i++)
		jgroup(&o, r, &r->groups[i], i + 1);
	if (r->other)
		jgroup(&o, r, r->other, r->ngroups + 1);
	json_arr_end(&o);
	jtop(&o, "slowest", r->slowest, r->nslowest);
	jtop(&o, "biggest", r->biggest, r->nbiggest);
	json_key(&o, "hosts");
	json_obj_begin(&o);
	for (size_t i = 0; i < r->nhosts; i++)
		jcount(&o, r->hosts[i].name, r->hosts[i].n);
	json_obj_end(&o);
	json_key(&o, "oom_victim_comms");
	json_arr_begin(&o);
	for (size_t i = 0; i < r->ncomms; i++) {
		json_obj_begin(&o);
		json_key(&o, "comm");
		json_cstr(&o, r->comms[i].name);
		jcount(&o, "count", r->comms[i].n);
		jcount(&o, "anon_rss_max", r->comms[i].max);
		json_obj_end(&o);
	}
	json_arr_end(&o);
	if (r->o.want_chart_data) {
		jpoints(&o, r);
		json_key(&o, "ladder");
		json_arr_begin(&o);
		for (size_t i = 0; i < r->nladder; i++) {
			json_obj_begin(&o);
			jcount(&o, "attempt", r->ladder[i].attempt);
			jsize(&o, "limit", r->ladder[i].limit != CORRAL_UNLIMITED,
			      r->ladder[i].limit);
			jcounts(&o, "outcomes", r->ladder[i].n);
			json_obj_end(&o);
		}
		json_arr_end(&o);
		jcount(&o, "ladder_overflow", r->ladder_overflow);
		jcount(&o, "timeline_records", r->tl_records);
		jtimelines(&o, r);
	}
	json_obj_end(&o);
	fputc('\n', f);
}
