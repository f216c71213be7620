/* report.c - JSON Lines records and GNU parallel's joblog.
 *
 * Every record is built in memory and written with one write(), so a record
 * is either complete in the file or absent, and a crash of corral loses no
 * record that was written. Strings are escaped for JSON; bytes that are not
 * valid UTF-8 (task arguments are arbitrary bytes) become \udcXX escapes, the
 * convention of Python's "surrogateescape": json.loads() then
 * .encode("utf-8", "surrogateescape") gives back the exact bytes.
 */
#include <math.h>
#include <stdio.h>

#include "internal.h"

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 512;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void printf_(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		put(b, tmp, (size_t)n);
		return;
	}
	/* Longer than tmp (a huge double in %.6f has 300+ digits): truncating
	 * would write a different number, so format it again at full length. */
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put(b, big, (size_t)n);
	free(big);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values above U+10FFFF are invalid. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void json_string(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len = strlen(str);

	put(b, "\"", 1);
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(b, e, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n':
				puts_(b, "\\n");
				break;
			case '\t':
				puts_(b, "\\t");
				break;
			case '\r':
				puts_(b, "\\r");
				break;
			default:
				printf_(b, "\\u%04x", c);
			}
			i++;
		} else if (c < 0x80) {
			put(b, (const char *)s + i, 1);
			i++;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n) {
				put(b, (const char *)s + i, n);
				i += n;
			} else {
				printf_(b, "\\udc%02x", c);
				i++;
			}
		}
	}
	put(b, "\"", 1);
}

static void json_size(struct buf *b, uint64_t v)
{
	if (v == CORRAL_UNLIMITED)
		puts_(b, "null");
	else
		printf_(b, "%llu", (unsigned long long)v);
}

static void json_num(struct buf *b, double v)
{
	if (!isfinite(v))
		puts_(b, "null");
	else
		printf_(b, "%.6f", v);
}

static int flush_line(struct buf *b, int fd)
{
	int rc;

	if (b->oom) {
		free(b->p);
		return -ENOMEM;
	}
	put(b, "\n", 1);
	rc = b->oom ? -ENOMEM : corral__write_all(fd, b->p, b->len);
	free(b->p);
	return rc;
}

int corral_report_result(int fd, const corral_result_t *r, const char *const *command)
{
	struct buf b = {0};

	printf_(&b, "{\"seq\":%llu,\"attempt\":%u,\"final\":%s,\"outcome\":",
	        (unsigned long long)r->seq, r->attempt, r->final ? "true" : "false");
	json_string(&b, corral_outcome_name(r->outcome) ? corral_outcome_name(r->outcome) : "?");
	puts_(&b, ",\"status\":");
	if (r->status >= 0)
		printf_(&b, "%d", r->status);
	else
		puts_(&b, "null");
	puts_(&b, ",\"exit_code\":");
	if (r->exit_code >= 0)
		printf_(&b, "%d", r->exit_code);
	else
		puts_(&b, "null");
	puts_(&b, ",\"signal\":");
	if (r->signal > 0)
		printf_(&b, "%d", r->signal);
	else
		puts_(&b, "null");
	puts_(&b, ",\"pid\":");
	if (r->pid > 0)
		printf_(&b, "%d", (int)r->pid);
	else
		puts_(&b, "null");
	puts_(&b, ",\"command\":");
	if (command) {
		puts_(&b, "[");
		for (size_t i = 0; command[i]; i++) {
			if (i)
				puts_(&b, ",");
			json_string(&b, command[i]);
		}
		puts_(&b, "]");
	} else {
		puts_(&b, "null");
	}
	puts_(&b, ",\"memory_max\":");
	json_size(&b, r->memory_max);
	puts_(&b, ",\"memory_peak\":");
	if (r->memory_peak)
		json_size(&b, r->memory_peak);
	else
		puts_(&b, "null");
	printf_(&b, ",\"oom_kills\":%llu,\"own_limit_hit\":%s,\"pids_limit_hit\":%s",
	        (unsigned long long)r->oom_kills, r->own_limit_hit ? "true" : "false",
	        r->pids_limit_hit ? "true" : "false");
	printf_(&b, ",\"seccomp_kill\":%s", r->seccomp_kill ? "true" : "false");
	if (r->outcome == CORRAL_SPAWN_ERROR) {
		puts_(&b, ",\"spawn_error\":{\"step\":");
		json_string(&b, r->spawn_step ? r->spawn_step : "spawn");
		printf_(&b, ",\"errno\":%d,\"message\":", r->spawn_errno);
		json_string(&b, strerror(r->spawn_errno));
		puts_(&b, "}");
	}
	puts_(&b, ",\"start_time\":");
	json_num(&b, r->start_time);
	puts_(&b, ",\"wall_time\":");
	json_num(&b, r->wall_s);
	puts_(&b, ",\"user_time\":");
	json_num(&b, r->user_s);
	puts_(&b, ",\"system_time\":");
	json_num(&b, r->sys_s);
	printf_(&b, ",\"stdout_bytes\":%llu,\"stderr_bytes\":%llu", (unsigned long long)r->out.len,
	        (unsigned long long)r->err.len);
	printf_(&b, ",\"stdout_lost_bytes\":%llu,\"stderr_lost_bytes\":%llu",
	        (unsigned long long)r->out.lost, (unsigned long long)r->err.lost);
	/* Seeing memory (design §11): only what is known. */
	if (r->memory_stall_some >= 0 && r->attempt > 0) {
		puts_(&b, ",\"memory_stall_some\":");
		json_num(&b, r->memory_stall_some);
		puts_(&b, ",\"memory_stall_full\":");
		json_num(&b, r->memory_stall_full >= 0 ? r->memory_stall_full : 0);
	}
	if (r->n_oom_victims && r->oom_victims) {
		puts_(&b, ",\"oom_victims\":[");
		for (unsigned i = 0; i < r->n_oom_victims; i++) {
			const corral_oom_victim_t *v = &r->oom_victims[i];
			printf_(&b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", v->pid);
			json_string(&b, v->comm);
			if (v->detailed)
				printf_(&b,
				        ",\"total_vm\":%llu,\"anon_rss\":%llu,\"file_rss\":%llu,"
				        "\"shmem_rss\":%llu,\"oom_score_adj\":%d",
				        (unsigned long long)v->total_vm,
				        (unsigned long long)v->anon_rss,
				        (unsigned long long)v->file_rss,
				        (unsigned long long)v->shmem_rss, v->oom_score_adj);
			puts_(&b, "}");
		}
		puts_(&b, "]");
		if (r->oom_memcg[0]) {
			puts_(&b, ",\"oom_memcg\":");
			json_string(&b, r->oom_memcg);
		}
	}
	if (r->n_timeline && r->timeline) {
		puts_(&b, ",\"memory_timeline\":{\"t\":[");
		for (unsigned i = 0; i < r->n_timeline; i++)
			printf_(&b, "%s%.3f", i ? "," : "", r->timeline[i].t);
		puts_(&b, "],\"current\":[");
		for (unsigned i = 0; i < r->n_timeline; i++)
			printf_(&b, "%s%llu", i ? "," : "",
			        (unsigned long long)r->timeline[i].bytes);
		printf_(&b, "],\"peak_index\":%u}", r->timeline_peak);
	}
	if (r->host[0]) {
		puts_(&b, ",\"host\":");
		json_string(&b, r->host);
	}
	puts_(&b, ",\"sentence\":");
	json_string(&b, r->sentence);
	puts_(&b, "}");
	return flush_line(&b, fd);
}

/* "provider": where the task cgroups came from, and what was tried before. */
static void provider_json(struct buf *b, const corral_provider_t *p)
{
	puts_(b, "{\"name\":");
	json_string(b, corral_cgroups_name(p->used) ? corral_cgroups_name(p->used) : "off");
	printf_(b, ",\"limits\":%s,\"cgroup\":", p->limits ? "true" : "false");
	json_string(b, p->cgroup);
	puts_(b, ",\"unit\":");
	if (p->unit[0])
		json_string(b, p->unit);
	else
		puts_(b, "null");
	puts_(b, ",\"platform\":");
	json_string(b, p->platform);
	puts_(b, ",\"warning\":");
	if (p->warning[0])
		json_string(b, p->warning);
	else
		puts_(b, "null");
	puts_(b, ",\"steps\":[");
	for (unsigned i = 0; i < p->n_steps && i < CORRAL_PROVIDER_STEPS; i++) {
		printf_(b, "%s{\"name\":", i ? "," : "");
		json_string(b, corral_cgroups_name(p->steps[i].provider));
		printf_(b, ",\"used\":%s,\"why\":", p->steps[i].code ? "false" : "true");
		json_string(b, p->steps[i].why);
		puts_(b, "}");
	}
	puts_(b, "]}");
}

int corral_report_summary(int fd, const corral_summary_t *s, int signal)
{
	struct buf b = {0};

	printf_(&b,
	        "{\"summary\":{\"schema_version\":%d,\"tasks\":%llu,\"attempts\":%llu,"
	        "\"outcomes\":{",
	        CORRAL_REPORT_SCHEMA_VERSION, (unsigned long long)s->tasks,
	        (unsigned long long)s->attempts);
	for (int i = 0; i < CORRAL_OUTCOME_COUNT; i++) {
		if (i)
			puts_(&b, ",");
		json_string(&b, corral_outcome_name((corral_outcome_t)i));
		printf_(&b, ":%llu", (unsigned long long)s->count[i]);
	}
	puts_(&b, "},\"verdict_seq\":");
	if (s->verdict_seq) {
		printf_(&b, "%llu,\"verdict\":", (unsigned long long)s->verdict_seq);
		json_string(&b, corral_outcome_name(s->verdict));
	} else {
		puts_(&b, "null,\"verdict\":null");
	}
	printf_(&b, ",\"exit_code\":%d,\"aborted\":%s,\"signal\":", s->exit_code,
	        s->aborted ? "true" : "false");
	if (signal > 0)
		printf_(&b, "%d", signal);
	else
		puts_(&b, "null");
	puts_(&b, ",\"sentence\":");
	json_string(&b, s->sentence);
	puts_(&b, ",\"provider\":");
	provider_json(&b, &s->provider);
	if (s->workers)
		printf_(&b, ",\"workers\":%u,\"workers_lost\":%u", s->workers, s->workers_lost);
	puts_(&b, "}}");
	return flush_line(&b, fd);
}

int corral_joblog_header(int fd)
{
	static const char h[] =
	    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
	return corral__write_all(fd, h, sizeof(h) - 1);
}

int corral_joblog_result(int fd, const corral_result_t *r, const char *const *command)
{
	struct buf b = {0};
	/* Exitval is the exit code corral gives the task (design §4): its own
	 * exit status, 137 for an OOM kill, 124 for a timeout, 128+s for a
	 * signal s, 127/126/125 when it could not start. So a failed task never
	 * shows 0 (GNU parallel's --resume-failed then re-runs it, which it
	 * would not for a subprocess_oom whose main process exited 0), and
	 * --resume knows the verdict's exit code from the joblog alone. GNU
	 * parallel writes 0 (or -1 after its --timeout) for a job killed by a
	 * signal; the Signal column is the same in both. */
	int exitval = r->status >= 0 ? r->status : -1;
	/* Host: GNU parallel's ":" for this machine, else the node. */
	printf_(&b, "%llu\t", (unsigned long long)r->seq);
	if (r->host[0]) {
		for (const char *c = r->host; *c; c++)
			put(&b, *c == '\t' || *c == '\n' ? "_" : c, 1);
	} else {
		puts_(&b, ":");
	}
	printf_(&b, "\t%.3f\t%.3f\t0\t%llu\t%d\t%d\t", r->start_time, r->wall_s,
	        (unsigned long long)r->out.len, exitval, r->signal);
	/* The command as GNU parallel shows it: words joined by spaces, with
	 * tabs and newlines escaped so that the line stays one line. */
	for (size_t i = 0; command && command[i]; i++) {
		if (i)
			puts_(&b, " ");
		for (const char *c = command[i]; *c; c++) {
			if (*c == '\n')
				puts_(&b, "\\n");
			else if (*c == '\t')
				puts_(&b, "\\t");
			else if (*c == '\\')
				puts_(&b, "\\\\");
			else
				put(&b, c, 1);
		}
	}
	return flush_line(&b, fd);
}
