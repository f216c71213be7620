/* report_agg.c - the aggregates of `corral report`, in two passes over the
 * file, and their text and JSON forms.
 *
 * Command groups (README, "corral report"): the words of a command are its
 * arguments, or for a shell-mode task (`sh -c LINE`) the words of LINE split
 * at blanks. Commands with the same number of words and the same first word
 * have one shape. Pass 1 counts, per shape and word position, the distinct
 * words seen there (up to RPT_MAX_DISTINCT, then "many"). A position with one
 * word is constant. Of the positions that vary, those with the most distinct
 * words are the input item and are masked; a position with fewer distinct
 * words (at most RPT_MAX_DISTINCT, each seen twice on average) names
 * different commands of the shape (a script, a subcommand, a setting) and
 * splits it into groups. Pass 2 puts each record in its group and adds it up.
 *
 * Nothing here grows with the number of records: see report.h for the
 * tables and their limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * MIB)

/* ---------------------------------------------------------------- words */

struct word {
	const char *p;
	size_t len;
	uint64_t hash;
};

struct words {
	struct word w[RPT_MAX_WORDS];
	size_t n;    /* all the words (may exceed RPT_MAX_WORDS) */
	size_t kept; /* min(n, RPT_MAX_WORDS) */
	bool shell;
};

static uint64_t fnv(const void *p, size_t len, uint64_t h)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t mix(uint64_t h, uint64_t v)
{
	return fnv(&v, sizeof(v), h);
}

static bool is_shell(const char *p, size_t len)
{
	static const char *const shells[] = {"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"};
	const char *base = memrchr(p, '/', len);

	base = base ? base + 1 : p;
	size_t bl = len - (size_t)(base - p);
	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++)
		if (bl == strlen(shells[i]) && !memcmp(base, shells[i], bl))
			return true;
	return false;
}

static void add_word(struct words *ws, const char *p, size_t len)
{
	if (ws->n < RPT_MAX_WORDS) {
		ws->w[ws->n].p = p;
		ws->w[ws->n].len = len;
		ws->w[ws->n].hash = fnv(p, len, FNV_INIT);
	}
	ws->n++;
	ws->kept = ws->n < RPT_MAX_WORDS ? ws->n : RPT_MAX_WORDS;
}

/* Make sure the decoding buffer holds len + 1 bytes. */
static int scratch_reserve(struct rpt *r, size_t len)
{
	if (r->scratch_cap > len)
		return 0;
	size_t cap = r->scratch_cap ? r->scratch_cap : 4096;
	while (cap <= len)
		cap *= 2;
	char *p = realloc(r->scratch, cap);
	if (!p)
		return -ENOMEM;
	r->scratch = p;
	r->scratch_cap = cap;
	return 0;
}

/* The words of rec's command, decoded into r->scratch (which must hold the
 * line). A command that is not an array has no words. */
static void command_words(struct rpt *r, const struct rec *rec, struct words *ws)
{
	struct json_iter it;
	struct json_val v;
	struct word argv3[3];
	size_t off = 0, argc = 0;

	memset(ws, 0, sizeof(*ws));
	if (rec->command.type != JSON_ARRAY)
		return;
	json_iter_init(&it, rec->command);
	while (json_iter_next(&it, NULL, &v)) {
		size_t len = json_string(v, r->scratch + off);
		if (argc < 3) {
			argv3[argc].p = r->scratch + off;
			argv3[argc].len = len;
		}
		add_word(ws, r->scratch + off, len);
		off += len + 1;
		argc++;
	}
	/* sh -c LINE [ARG0 ARG...]: the words of LINE. */
	if (argc >= 3 && is_shell(argv3[0].p, argv3[0].len) && argv3[1].len == 2 &&
	    !memcmp(argv3[1].p, "-c", 2)) {
		const char *s = argv3[2].p, *end = s + argv3[2].len;
		memset(ws, 0, sizeof(*ws));
		ws->shell = true;
		while (s < end) {
			while (s < end && (*s == ' ' || *s == '\t' || *s == '\n'))
				s++;
			const char *w = s;
			while (s < end && *s != ' ' && *s != '\t' && *s != '\n')
				s++;
			if (s > w)
				add_word(ws, w, (size_t)(s - w));
		}
	}
}

static uint64_t shape_key(const struct words *ws)
{
	uint64_t h = mix(FNV_INIT, ws->shell ? 1 : 2);

	h = mix(h, ws->n);
	if (ws->n)
		h = mix(h, ws->w[0].hash);
	return h;
}

/* ---------------------------------------------------------------- shapes */

static int shape_find(const struct rpt *r, uint64_t key)
{
	for (size_t i = 0; i < r->nshapes; i++)
		if (r->shapes[i].key == key)
			return (int)i;
	return -1;
}

/* Few shapes in practice (a batch has one command template; shell mode has
 * one per kind of line); a linear search over at most RPT_MAX_SHAPES keys
 * with a one-entry cache is enough. */
static int shape_get(struct rpt *r, const struct words *ws, bool create, int *cache)
{
	uint64_t key = shape_key(ws);
	int i;

	if (*cache >= 0 && r->shapes[*cache].key == key)
		return *cache;
	i = shape_find(r, key);
	if (i < 0 && create && r->nshapes < RPT_MAX_SHAPES) {
		struct rpt_shape *s = &r->shapes[r->nshapes];
		s->key = key;
		s->nwords = ws->n;
		s->shell = ws->shell;
		s->npos = ws->kept;
		s->pos = calloc(s->npos ? s->npos : 1, sizeof(*s->pos));
		if (!s->pos)
			return -ENOMEM;
		i = (int)r->nshapes++;
	}
	if (i >= 0)
		*cache = i;
	return i;
}

static void shape_learn(struct rpt_shape *s, const struct words *ws)
{
	s->records++;
	for (size_t i = 0; i < s->npos; i++) {
		struct rpt_position *p = &s->pos[i];
		bool seen = false;
		if (p->distinct > RPT_MAX_DISTINCT)
			continue;
		for (uint32_t k = 0; k < p->distinct; k++) {
			if (p->seen[k] == ws->w[i].hash) {
				seen = true;
				break;
			}
		}
		if (!seen) {
			if (p->distinct < RPT_MAX_DISTINCT)
				p->seen[p->distinct] = ws->w[i].hash;
			p->distinct++;
		}
	}
}

static void shape_roles(struct rpt_shape *s)
{
	uint32_t most = 0;

	for (size_t i = 0; i < s->npos; i++)
		if (s->pos[i].distinct > most)
			most = s->pos[i].distinct;
	for (size_t i = 0; i < s->npos; i++) {
		struct rpt_position *p = &s->pos[i];
		if (p->distinct <= 1)
			p->role = ROLE_CONST;
		else if (p->distinct < most && p->distinct <= RPT_MAX_DISTINCT &&
		         2 * (uint64_t)p->distinct <= s->records)
			p->role = ROLE_KEY;
		else
			p->role = ROLE_ITEM;
	}
}

/* ---------------------------------------------------------------- groups */

static uint64_t group_key(int shape, const struct rpt_shape *s, const struct words *ws)
{
	uint64_t h = mix(FNV_INIT, (uint64_t)shape);

	for (size_t i = 0; s && i < s->npos; i++)
		if (s->pos[i].role == ROLE_KEY)
			h = mix(h, ws->w[i].hash);
	return h;
}

static void stats_init(struct rpt_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->limit_min = st->first_limit_min = UINT64_MAX;
}

static int group_init(struct rpt_group *g, uint64_t key, int shape, uint64_t line,
                      const struct words *ws)
{
	size_t total = 0;

	memset(g, 0, sizeof(*g));
	g->key = key;
	g->shape = shape;
	g->first_line = line;
	stats_init(&g->st);
	for (size_t i = 0; ws && i < ws->kept; i++)
		total += (ws->w[i].len < RPT_REF_WORD ? ws->w[i].len : RPT_REF_WORD) + 1;
	if (total > RPT_NAME_MAX)
		total = RPT_NAME_MAX;
	g->ref = malloc(total + 1);
	if (!g->ref)
		return -ENOMEM;
	size_t off = 0;
	for (size_t i = 0; ws && i < ws->kept; i++) {
		size_t n = ws->w[i].len < RPT_REF_WORD ? ws->w[i].len : RPT_REF_WORD;
		if (off + n + 1 > total)
			break;
		memcpy(g->ref + off, ws->w[i].p, n);
		g->ref_off[i] = (uint32_t)off;
		g->ref_full[i] = (uint32_t)(ws->w[i].len > UINT32_MAX ? UINT32_MAX : ws->w[i].len);
		g->pre[i] = g->suf[i] = (uint16_t)n;
		off += n;
		g->ref[off++] = '\0';
		g->nref = i + 1;
	}
	g->ref_off[g->nref] = (uint32_t)off;
	return 0;
}

static size_t ref_len(const struct rpt_group *g, size_t i)
{
	return g->ref_off[i + 1] - g->ref_off[i] - 1;
}

/* Shrink the common prefix and suffix of item word i to what w shares. */
static void group_learn(struct rpt_group *g, const struct rpt_shape *s, const struct words *ws)
{
	for (size_t i = 0; s && i < g->nref && i < ws->kept; i++) {
		if (s->pos[i].role != ROLE_ITEM)
			continue;
		const char *ref = g->ref + g->ref_off[i];
		size_t rl = ref_len(g, i), n = 0;
		while (n < g->pre[i] && n < ws->w[i].len && ref[n] == ws->w[i].p[n])
			n++;
		g->pre[i] = (uint16_t)n;
		n = 0;
		if ((g->ref_full[i] & 0x7fffffffu) != rl) {
			g->suf[i] = 0; /* the reference word was cut: its end is unknown */
		} else {
			while (n < g->suf[i] && n < ws->w[i].len &&
			       ref[rl - 1 - n] == ws->w[i].p[ws->w[i].len - 1 - n])
				n++;
			g->suf[i] = (uint16_t)n;
		}
		if (ws->w[i].len != (g->ref_full[i] & 0x7fffffffu) || memcmp(ref, ws->w[i].p, rl))
			g->ref_full[i] |= 0x80000000u; /* the item varied in this group */
	}
}

static int char_class(char c)
{
	if (c >= '0' && c <= '9')
		return 1;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 2;
	return 0;
}

/* Append s[0..n) to a name buffer, if it fits. */
static void name_put(char *buf, size_t *off, size_t cap, const char *s, size_t n)
{
	if (*off + 1 >= cap)
		return;
	if (n > cap - *off - 1)
		n = cap - *off - 1;
	memcpy(buf + *off, s, n);
	*off += n;
	buf[*off] = '\0';
}

static bool needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strchr(" \t\n'\"\\$`|&;<>()*?[]#~!", s[i]))
			return true;
	return false;
}

/* The group's name: its words with the item masked as {} (keeping the prefix
 * and suffix that all its values share, cut back to a boundary between a
 * digit, a letter and anything else: sample_{}.fq, not sample_0{}.fq). */
static int group_name(struct rpt_group *g, const struct rpt *r)
{
	const struct rpt_shape *s = g->shape >= 0 ? &r->shapes[g->shape] : NULL;
	char *buf = malloc(RPT_NAME_MAX + 8);
	size_t off = 0;

	if (!buf)
		return -ENOMEM;
	buf[0] = '\0';
	if (g->shape < 0) {
		snprintf(buf, RPT_NAME_MAX, "(other commands: past %d shapes or %d groups)",
		         RPT_MAX_SHAPES, RPT_MAX_GROUPS);
		g->name = buf;
		return 0;
	}
	if (s->nwords == 0) {
		snprintf(buf, RPT_NAME_MAX, "(no command)");
		g->name = buf;
		return 0;
	}
	for (size_t i = 0; i < g->nref; i++) {
		const char *w = g->ref + g->ref_off[i];
		size_t rl = ref_len(g, i);
		bool cut = (g->ref_full[i] & 0x7fffffffu) != rl;
		char word[RPT_REF_WORD * 2 + 16];
		size_t wl = 0;
		if (i)
			name_put(buf, &off, RPT_NAME_MAX, " ", 1);
		if (s->pos[i].role == ROLE_ITEM) {
			size_t pre = g->pre[i], suf = g->suf[i];
			bool varied = g->ref_full[i] & 0x80000000u;
			if (!varied) /* one value in this group: still a template */
				pre = suf = 0;
			if (pre + suf > rl)
				suf = rl - pre;
			/* Cut back inside a run of digits or letters that goes on
			 * into the varying part. */
			if (pre && pre < rl && char_class(w[pre - 1]) &&
			    char_class(w[pre - 1]) == char_class(w[pre]))
				while (pre && char_class(w[pre - 1]) == char_class(w[pre]))
					pre--;
			if (suf && suf < rl && char_class(w[rl - suf]) &&
			    char_class(w[rl - suf]) == char_class(w[rl - suf - 1]))
				while (suf &&
				       char_class(w[rl - suf]) == char_class(w[rl - suf - 1]))
					suf--;
			memcpy(word, w, pre);
			memcpy(word + pre, "{}", 2);
			memcpy(word + pre + 2, w + rl - suf, suf);
			wl = pre + 2 + suf;
		} else {
			memcpy(word, w, rl);
			wl = rl;
			if (cut) {
				memcpy(word + wl, "...", 3);
				wl += 3;
			}
		}
		if (!s->shell && needs_quotes(word, wl)) {
			name_put(buf, &off, RPT_NAME_MAX, "'", 1);
			for (size_t k = 0; k < wl; k++) {
				if (word[k] == '\'')
					name_put(buf, &off, RPT_NAME_MAX, "'\\''", 4);
				else
					name_put(buf, &off, RPT_NAME_MAX, word + k, 1);
			}
			name_put(buf, &off, RPT_NAME_MAX, "'", 1);
		} else {
			name_put(buf, &off, RPT_NAME_MAX, word, wl);
		}
	}
	if (s->nwords > g->nref)
		name_put(buf, &off, RPT_NAME_MAX, " ...", 4);
	g->name = buf;
	return 0;
}

/* Open addressing over the group keys: RPT_MAX_GROUPS * 2 slots. */
#define GROUP_SLOTS (RPT_MAX_GROUPS * 2)

struct group_table {
	int32_t slot[GROUP_SLOTS]; /* group index + 1, 0 = empty */
};

/* The group of key in *out (-1: the table is full). Returns 0 or -ENOMEM. */
static int group_get(struct rpt *r, struct group_table *t, uint64_t key, int shape, uint64_t line,
                     const struct words *ws, int *out)
{
	size_t h = (size_t)(key % GROUP_SLOTS);

	while (t->slot[h]) {
		int i = t->slot[h] - 1;
		if (r->groups[i].key == key && r->groups[i].shape == shape) {
			*out = i;
			return 0;
		}
		h = (h + 1) % GROUP_SLOTS;
	}
	*out = -1;
	if (r->ngroups >= RPT_MAX_GROUPS)
		return 0;
	int i = (int)r->ngroups;
	if (group_init(&r->groups[i], key, shape, line, ws) < 0)
		return -ENOMEM;
	r->ngroups++;
	t->slot[h] = i + 1;
	*out = i;
	return 0;
}

/* ---------------------------------------------------------------- stats */

static bool own_oom(const struct rec *rec)
{
	return rec->outcome == CORRAL_OOM ||
	       (rec->outcome == CORRAL_SUBPROCESS_OOM && rec->own_limit_hit);
}

static bool any_oom(int o)
{
	return o == CORRAL_OOM || o == CORRAL_OOM_OUTSIDE || o == CORRAL_SUBPROCESS_OOM;
}

static bool limited(const struct rec *rec)
{
	return rec->has_limit && rec->memory_max != CORRAL_UNLIMITED;
}

static void stats_add(struct rpt_stats *st, const struct rec *rec, uint64_t victims)
{
	double wall = rec->wall_time;

	if (rec->final) {
		st->tasks++;
		st->final_outcomes[rec->outcome]++;
		if (own_oom(rec))
			st->final_oom_tasks++;
		if (rec->attempt > 0)
			st->wall_final += wall;
	}
	if (rec->attempt == 0)
		return; /* never ran (cancelled) */
	st->attempts++;
	st->attempt_outcomes[rec->outcome]++;
	st->wall_all += wall;
	if (!rec->final) {
		st->retried++;
		st->wall_retried += wall;
		if (any_oom(rec->outcome))
			st->retried_after_oom++;
	}
	if (limited(rec)) {
		double mt = (double)rec->memory_max * wall;
		if (rec->memory_max < st->limit_min)
			st->limit_min = rec->memory_max;
		if (rec->memory_max > st->limit_max)
			st->limit_max = rec->memory_max;
		if (rec->attempt == 1) {
			if (rec->memory_max < st->first_limit_min)
				st->first_limit_min = rec->memory_max;
			if (rec->memory_max > st->first_limit_max)
				st->first_limit_max = rec->memory_max;
		}
		st->mt_all += mt;
		if (!rec->final)
			st->mt_retried += mt;
	} else {
		st->unlimited_attempts++;
	}
	if (rec->has_peak) {
		st->peak_n++;
		st->peak_sum += (double)rec->memory_peak;
		if (rec->memory_peak > st->peak_max)
			st->peak_max = rec->memory_peak;
		if (!own_oom(rec) && rec->memory_peak > st->peak_need)
			st->peak_need = rec->memory_peak;
		if (rec->outcome == CORRAL_OK && limited(rec) && rec->memory_max > 0) {
			st->use_sum += (double)rec->memory_peak / (double)rec->memory_max;
			st->use_n++;
		}
	}
	if (own_oom(rec)) {
		st->oom_attempts++;
		if (limited(rec) && rec->memory_max > st->oom_limit_max)
			st->oom_limit_max = rec->memory_max;
	}
	if (rec->has_stall) {
		st->stall_n++;
		st->stall_some += rec->stall_some;
		st->stall_full += rec->stall_full;
		st->stall_wall += wall;
	}
	st->victims += victims;
}

/* ---------------------------------------------------------------- top-K */

static void top_insert(struct rpt_top *top, size_t *n, size_t k, const struct rpt_top *e)
{
	size_t i = *n;

	if (k == 0)
		return;
	if (*n == k) {
		const struct rpt_top *last = &top[k - 1];
		if (e->value < last->value || (e->value == last->value && e->line > last->line))
			return;
		i = k - 1;
	} else {
		(*n)++;
	}
	while (i > 0 && (top[i - 1].value < e->value ||
	                 (top[i - 1].value == e->value && top[i - 1].line > e->line))) {
		top[i] = top[i - 1];
		i--;
	}
	top[i] = *e;
}

static void top_entry(struct rpt_top *e, const struct rec *rec, uint64_t line, double value,
                      int group, const struct words *ws)
{
	size_t off = 0;

	memset(e, 0, sizeof(*e));
	e->value = value;
	e->line = line;
	e->seq = rec->seq;
	e->attempt = rec->attempt;
	e->outcome = rec->outcome;
	e->has_peak = rec->has_peak;
	e->peak = rec->memory_peak;
	e->has_limit = limited(rec);
	e->limit = rec->memory_max;
	e->wall = rec->wall_time;
	e->group = group;
	if (!ws)
		return;
	for (size_t i = 0; i < ws->kept && off + 1 < sizeof(e->cmd); i++) {
		if (i)
			e->cmd[off++] = ' ';
		size_t n = ws->w[i].len;
		if (n > sizeof(e->cmd) - 1 - off)
			n = sizeof(e->cmd) - 1 - off;
		memcpy(e->cmd + off, ws->w[i].p, n);
		off += n;
	}
	e->cmd[off] = '\0';
}

/* ---------------------------------------------------------------- charts */

static void point_from(struct rpt_point *p, const struct rec *rec, uint64_t line, int group,
                       uint64_t count)
{
	p->line = line;
	p->seq = rec->seq;
	p->attempt = rec->attempt;
	p->outcome = (uint8_t)rec->outcome;
	p->has_peak = rec->has_peak;
	p->peak = rec->memory_peak;
	p->has_limit = limited(rec);
	p->limit = rec->memory_max;
	p->wall = rec->wall_time;
	p->count = count;
	p->group = group;
}

static void points_add(struct rpt *r, const struct rec *rec, uint64_t line, int group)
{
	if (!r->sliced) {
		if (r->npoints < r->points_cap)
			point_from(&r->points[r->npoints++], rec, line, group, 1);
		return;
	}
	/* Slice s of the task numbers keeps its highest peak [0], its lowest
	 * [1] and its first OOM kill [2]; [0].count is how many it stands for. */
	uint64_t max = r->max_seq ? r->max_seq : 1;
	uint64_t seq = rec->seq ? rec->seq - 1 : 0;
	size_t s = (size_t)((unsigned __int128)(seq < max ? seq : max - 1) * RPT_SLICES / max);
	struct rpt_point *sl = &r->points[s * 3];
	uint64_t peak = rec->has_peak ? rec->memory_peak : 0;
	uint64_t n = sl[0].count;
	if (n == 0 || peak > sl[0].peak)
		point_from(&sl[0], rec, line, group, n);
	sl[0].count = n + 1;
	if (sl[1].count == 0 || peak < sl[1].peak)
		point_from(&sl[1], rec, line, group, 1);
	if (any_oom(rec->outcome) && sl[2].count == 0)
		point_from(&sl[2], rec, line, group, 1);
}

/* Slices: a point that is already its slice's max (or min) is shown once. */
static void points_dedupe(struct rpt *r)
{
	for (size_t s = 0; r->sliced && s < RPT_SLICES; s++) {
		struct rpt_point *sl = &r->points[s * 3];
		if (sl[1].count && sl[1].line == sl[0].line)
			sl[1].count = 0;
		if (sl[2].count && (sl[2].line == sl[0].line || sl[2].line == sl[1].line))
			sl[2].count = 0;
	}
}

static void ladder_add(struct rpt *r, const struct rec *rec)
{
	uint64_t limit = limited(rec) ? rec->memory_max : CORRAL_UNLIMITED;

	for (size_t i = 0; i < r->nladder; i++) {
		if (r->ladder[i].attempt == rec->attempt && r->ladder[i].limit == limit) {
			r->ladder[i].n[rec->outcome]++;
			return;
		}
	}
	if (r->nladder == RPT_LADDER_MAX) {
		r->ladder_overflow++;
		return;
	}
	struct rpt_ladder *c = &r->ladder[r->nladder++];
	c->attempt = rec->attempt;
	c->limit = limit;
	c->n[rec->outcome]++;
}

static void named_add(struct rpt_named *tab, size_t *n, size_t max, uint64_t *overflow,
                      const char *name, size_t len, uint64_t value)
{
	if (len >= sizeof(tab[0].name))
		len = sizeof(tab[0].name) - 1;
	for (size_t i = 0; i < *n; i++) {
		if (strlen(tab[i].name) == len && !memcmp(tab[i].name, name, len)) {
			tab[i].n++;
			if (value > tab[i].max)
				tab[i].max = value;
			return;
		}
	}
	if (*n == max) {
		if (overflow)
			(*overflow)++;
		return;
	}
	memcpy(tab[*n].name, name, len);
	tab[*n].name[len] = '\0';
	tab[*n].n = 1;
	tab[*n].max = value;
	(*n)++;
}

/* Victims of the record: their number, and each comm into r->comms. */
static uint64_t victims_add(struct rpt *r, const struct rec *rec, bool collect)
{
	struct json_iter it;
	struct json_val v, f;
	uint64_t n = 0;

	if (rec->oom_victims.type != JSON_ARRAY)
		return 0;
	json_iter_init(&it, rec->oom_victims);
	while (json_iter_next(&it, NULL, &v)) {
		n++;
		if (!collect || v.type != JSON_OBJECT || !json_member(v, "comm", &f) ||
		    f.type != JSON_STRING)
			continue;
		char comm[64 + 8];
		uint64_t rss = 0;
		if ((size_t)(f.end - f.p) >= sizeof(comm))
			continue;
		size_t len = json_string(f, comm);
		struct json_val a;
		if (json_member(v, "anon_rss", &a))
			(void)json_u64(a, &rss);
		named_add(r->comms, &r->ncomms, RPT_COMMS_MAX, NULL, comm, len, rss);
	}
	return n;
}

/* ---------------------------------------------------------------- timelines */

static bool tl_selected(const struct rpt *r, uint64_t line, const char **why)
{
	for (size_t i = 0; i < r->ntl_select; i++) {
		if (r->tl_select[i] == line) {
			*why = r->tl_why[i];
			return true;
		}
	}
	return false;
}

static void tl_select(struct rpt *r, uint64_t line, const char *why)
{
	const char *dummy;

	if (r->ntl_select < RPT_TL_MAX && !tl_selected(r, line, &dummy)) {
		r->tl_select[r->ntl_select] = line;
		r->tl_why[r->ntl_select++] = why;
	}
}

static char *dup_string(struct json_val v, size_t max)
{
	if (v.type != JSON_STRING)
		return NULL;
	char *s = malloc((size_t)(v.end - v.p) + 1);
	if (!s)
		return NULL;
	size_t n = json_string(v, s);
	if (n > max)
		s[max] = '\0';
	return s;
}

/* Re-encode the record's oom_victims (at most 16) as a JSON array text. */
static char *victims_json(struct json_val arr)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json_out o;
	struct json_iter it;
	struct json_val v, k, x;
	size_t n = 0;
	static const char *const nums[] = {"pid",      "total_vm",  "anon_rss",
	                                   "file_rss", "shmem_rss", "oom_score_adj"};

	if (!f)
		return NULL;
	json_out_init(&o, f);
	json_arr_begin(&o);
	json_iter_init(&it, arr);
	while (json_iter_next(&it, NULL, &v) && n < 16) {
		if (v.type != JSON_OBJECT)
			continue;
		n++;
		json_obj_begin(&o);
		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
			int64_t num;
			if (json_member(v, nums[i], &x) && json_i64(x, &num) == 0) {
				json_key(&o, nums[i]);
				json_i64_out(&o, num);
			}
		}
		if (json_member(v, "comm", &k) && k.type == JSON_STRING &&
		    (size_t)(k.end - k.p) < 256) {
			char comm[256];
			size_t cl = json_string(k, comm);
			json_key(&o, "comm");
			json_str(&o, comm, cl);
		}
		json_obj_end(&o);
	}
	json_arr_end(&o);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void tl_free(struct rpt_timeline *t)
{
	free(t->t);
	free(t->cur);
	free(t->victims_json);
	free(t->memcg);
	free(t->sentence);
	memset(t, 0, sizeof(*t));
}

struct tl_point {
	size_t i;
	double t;
	uint64_t c;
};

static void tl_emit(struct rpt_timeline *tl, const struct tl_point *p, int64_t peak_index)
{
	if (tl->n > 0 && tl->n_emitted_last == p->i + 1)
		return; /* already there (a slice's min is its max) */
	if ((int64_t)p->i == peak_index)
		tl->peak_index = (int64_t)tl->n;
	tl->t[tl->n] = p->t;
	tl->cur[tl->n++] = p->c;
	tl->n_emitted_last = p->i + 1;
}

/* Emit a slice's points (its lowest, highest, and the peak if it is there)
 * in time order. */
static void tl_flush(struct rpt_timeline *tl, struct tl_point *p, size_t np, int64_t peak_index)
{
	for (size_t a = 1; a < np; a++)
		for (size_t b = a; b > 0 && p[b - 1].i > p[b].i; b--) {
			struct tl_point x = p[b];
			p[b] = p[b - 1];
			p[b - 1] = x;
		}
	for (size_t k = 0; k < np; k++)
		tl_emit(tl, &p[k], peak_index);
}

/* Read the memory_timeline of rec into a kept timeline of at most
 * RPT_TIMELINE_POINTS points. A longer one is decimated: the first and the
 * last point, the peak, and the lowest and the highest point of each of
 * (RPT_TIMELINE_POINTS - 3) / 2 slices in between, in time order. Returns
 * false (and keeps nothing) when the timeline is malformed: arrays of
 * different lengths, times that go back, values that are not bytes. */
static bool tl_extract(struct rpt_timeline *tl, const struct rec *rec)
{
	struct json_val tv, cv, pv, a, b;
	struct json_iter ti, ci;
	size_t n, keep;
	int64_t peak_index = -1;

	if (!json_member(rec->timeline, "t", &tv) || tv.type != JSON_ARRAY ||
	    !json_member(rec->timeline, "current", &cv) || cv.type != JSON_ARRAY)
		return false;
	n = json_count(tv);
	if (n == 0 || n != json_count(cv))
		return false;
	if (json_member(rec->timeline, "peak_index", &pv) && json_i64(pv, &peak_index) < 0)
		return false;
	if (peak_index >= (int64_t)n)
		peak_index = -1;
	/* First pass: check every value; the highest point (the first of
	 * equals) is the peak when the record does not say. */
	double prev = -1;
	uint64_t best = 0;
	int64_t at = -1;
	json_iter_init(&ti, tv);
	json_iter_init(&ci, cv);
	for (size_t i = 0; i < n; i++) {
		double t;
		uint64_t c;
		if (!json_iter_next(&ti, NULL, &a) || !json_iter_next(&ci, NULL, &b) ||
		    json_double(a, &t) < 0 || !isfinite(t) || t < prev || json_u64(b, &c) < 0)
			return false;
		prev = t;
		if (at < 0 || c > best) {
			best = c;
			at = (int64_t)i;
		}
	}
	if (peak_index < 0)
		peak_index = at;
	keep = n <= RPT_TIMELINE_POINTS ? n : RPT_TIMELINE_POINTS;
	tl->t = malloc(keep * sizeof(double));
	tl->cur = malloc(keep * sizeof(uint64_t));
	if (!tl->t || !tl->cur)
		return false;
	tl->n_orig = n;
	tl->n = 0;
	tl->peak_index = -1;

	size_t slices = (RPT_TIMELINE_POINTS - 3) / 2, inner = n > 2 ? n - 2 : 1;
	size_t slice = SIZE_MAX, np = 0;
	struct tl_point pend[3], lo = {0}, hi = {0}, pk = {0};
	bool has_pk = false;
	json_iter_init(&ti, tv);
	json_iter_init(&ci, cv);
	for (size_t i = 0; i < n; i++) {
		struct tl_point p = {i, 0, 0};
		json_iter_next(&ti, NULL, &a);
		json_iter_next(&ci, NULL, &b);
		json_double(a, &p.t);
		json_u64(b, &p.c);
		if (n <= RPT_TIMELINE_POINTS) {
			tl_emit(tl, &p, peak_index);
			continue;
		}
		if (i == 0 || i == n - 1) {
			if (i == n - 1 && slice != SIZE_MAX) {
				np = 0;
				pend[np++] = lo;
				pend[np++] = hi;
				if (has_pk)
					pend[np++] = pk;
				tl_flush(tl, pend, np, peak_index);
			}
			tl_emit(tl, &p, peak_index);
			continue;
		}
		size_t k = (size_t)((unsigned __int128)(i - 1) * slices / inner);
		if (k != slice) {
			if (slice != SIZE_MAX) {
				np = 0;
				pend[np++] = lo;
				pend[np++] = hi;
				if (has_pk)
					pend[np++] = pk;
				tl_flush(tl, pend, np, peak_index);
			}
			slice = k;
			lo = hi = p;
			has_pk = false;
		} else {
			if (p.c < lo.c)
				lo = p;
			if (p.c > hi.c)
				hi = p;
		}
		if ((int64_t)i == peak_index) {
			pk = p;
			has_pk = true;
		}
	}
	return true;
}

static void tl_keep(struct rpt *r, const struct rec *rec, uint64_t line, const char *why, int group)
{
	struct rpt_timeline *tl;

	if (r->ntl >= RPT_TL_MAX)
		return;
	tl = &r->tl[r->ntl];
	memset(tl, 0, sizeof(*tl));
	tl->peak_index = -1;
	if (!tl_extract(tl, rec)) {
		tl_free(tl);
		return;
	}
	tl->line = line;
	tl->seq = rec->seq;
	tl->attempt = rec->attempt;
	tl->outcome = rec->outcome;
	tl->why = why;
	tl->has_limit = limited(rec);
	tl->limit = rec->memory_max;
	tl->has_peak = rec->has_peak;
	tl->peak = rec->memory_peak;
	tl->wall = rec->wall_time;
	tl->group = group;
	tl->has_stall = rec->has_stall;
	tl->stall_some = rec->stall_some;
	tl->stall_full = rec->stall_full;
	if (rec->oom_victims.type == JSON_ARRAY)
		tl->victims_json = victims_json(rec->oom_victims);
	tl->memcg = dup_string(rec->oom_memcg, 4096);
	tl->sentence = dup_string(rec->sentence, RPT_TEXT_MAX);
	r->ntl++;
}

/* ---------------------------------------------------------------- the passes */

static void copy_string(struct json_val v, char *dst, size_t cap, char *scratch)
{
	size_t n = json_string(v, scratch);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, scratch, n);
	dst[n] = '\0';
}

static void summary_take(struct rpt *r, const struct rec *rec)
{
	struct json_val v;
	uint64_t u;
	int64_t i;

	r->summaries++;
	r->has_summary = true;
	r->sum_tasks = r->sum_attempts = 0;
	if (json_member(rec->obj, "tasks", &v) && json_u64(v, &u) == 0)
		r->sum_tasks = u;
	if (json_member(rec->obj, "attempts", &v) && json_u64(v, &u) == 0)
		r->sum_attempts = u;
	r->sum_has_verdict = json_member(rec->obj, "verdict_seq", &v) && json_u64(v, &u) == 0;
	r->sum_verdict_seq = r->sum_has_verdict ? u : 0;
	r->sum_verdict[0] = '\0';
	if (json_member(rec->obj, "verdict", &v) && v.type == JSON_STRING &&
	    (size_t)(v.end - v.p) < sizeof(r->sum_verdict))
		copy_string(v, r->sum_verdict, sizeof(r->sum_verdict), r->scratch);
	r->sum_exit_code = 0;
	if (json_member(rec->obj, "exit_code", &v) && json_i64(v, &i) == 0)
		r->sum_exit_code = i;
	r->sum_aborted = json_member(rec->obj, "aborted", &v) && v.type == JSON_BOOL && *v.p == 't';
	r->sum_sentence[0] = '\0';
	if (json_member(rec->obj, "sentence", &v) && v.type == JSON_STRING)
		copy_string(v, r->sum_sentence, sizeof(r->sum_sentence), r->scratch);
	r->sum_provider[0] = '\0';
	if (rec->provider.type == JSON_STRING)
		copy_string(rec->provider, r->sum_provider, sizeof(r->sum_provider), r->scratch);
	r->has_schema_version = rec->has_schema_version;
	r->schema_version = rec->schema_version;
}

static int pass1_record(struct rpt *r, const struct rec *rec, const struct words *ws, uint64_t line,
                        int *shape_cache)
{
	int s = shape_get(r, ws, true, shape_cache);

	if (s == -ENOMEM)
		return s;
	if (s >= 0)
		shape_learn(&r->shapes[s], ws);
	else
		r->shape_overflow++;
	if (rec->seq > r->max_seq)
		r->max_seq = rec->seq;
	if (rec->attempt > 0)
		r->records++;
	if (rec->attempt == 0 || rec->timeline.type != JSON_OBJECT || !r->o.want_chart_data)
		return 0;
	/* Timelines worth showing: the first OOM kills, the biggest, the slowest. */
	r->tl_records++;
	size_t noom = 0;
	for (size_t i = 0; i < r->ntl_select; i++)
		noom += r->tl_why[i][0] == 'o';
	if (any_oom(rec->outcome) && noom < RPT_TL_OOM) {
		tl_select(r, line, "oom");
		return 0;
	}
	struct rpt_top e;
	top_entry(&e, rec, line, rec->has_peak ? (double)rec->memory_peak : 0, -1, NULL);
	top_insert(r->tl_big, &r->ntl_big, RPT_TL_BIG, &e);
	top_entry(&e, rec, line, rec->wall_time, -1, NULL);
	top_insert(r->tl_slow, &r->ntl_slow, RPT_TL_SLOW, &e);
	return 0;
}

static int pass2_record(struct rpt *r, struct group_table *gt, const struct rec *rec,
                        const struct words *ws, uint64_t line, int *shape_cache)
{
	int s = shape_get(r, ws, false, shape_cache);
	const struct rpt_shape *sh = s >= 0 ? &r->shapes[s] : NULL;
	int g = -1;
	struct rpt_group *grp;
	const char *why;

	if (sh && group_get(r, gt, group_key(s, sh, ws), s, line, ws, &g) < 0)
		return -ENOMEM;
	if (g >= 0) {
		grp = &r->groups[g];
		group_learn(grp, sh, ws);
	} else {
		if (!r->other) {
			r->other = calloc(1, sizeof(*r->other));
			if (!r->other || group_init(r->other, 0, -1, line, NULL) < 0)
				return -ENOMEM;
		}
		grp = r->other;
	}
	uint64_t victims = victims_add(r, rec, true);
	stats_add(&grp->st, rec, victims);
	stats_add(&r->all, rec, victims);
	if (rec->host.type == JSON_STRING && (size_t)(rec->host.end - rec->host.p) < 256) {
		char host[256];
		size_t n = json_string(rec->host, host);
		named_add(r->hosts, &r->nhosts, RPT_HOSTS_MAX, &r->hosts_overflow, host, n, 0);
	}
	if (rec->attempt == 0)
		return 0;
	if (rec->start_time > 0 && (r->first_start == 0 || rec->start_time < r->first_start))
		r->first_start = rec->start_time;
	if (rec->start_time > 0 && rec->start_time + rec->wall_time > r->last_end)
		r->last_end = rec->start_time + rec->wall_time;
	struct rpt_top e;
	top_entry(&e, rec, line, rec->wall_time, g, ws);
	top_insert(r->slowest, &r->nslowest, r->o.top, &e);
	if (rec->has_peak) {
		e.value = (double)rec->memory_peak;
		top_insert(r->biggest, &r->nbiggest, r->o.top, &e);
	}
	if (!r->o.want_chart_data)
		return 0;
	points_add(r, rec, line, g);
	ladder_add(r, rec);
	if (rec->timeline.type == JSON_OBJECT && tl_selected(r, line, &why))
		tl_keep(r, rec, line, why, g);
	return 0;
}

static int fail_at(char *err, size_t errlen, const struct rpt *r, uint64_t line, const char *msg,
                   int rc)
{
	snprintf(err, errlen, "%s:%llu: %s", r->o.path, (unsigned long long)line, msg);
	return rc;
}

static int run_pass(struct rpt *r, struct line_reader *lr, int pass, struct group_table *gt,
                    char *err, size_t errlen)
{
	char *line, why[256];
	size_t len;
	bool torn;
	int rc, shape_cache = -1;
	struct rec rec;
	struct words *ws = malloc(sizeof(*ws));

	if (!ws)
		return -ENOMEM;
	while ((rc = lr_next(lr, &line, &len, &torn)) > 0) {
		const char *jwhy;
		size_t at;
		if (pass == 1)
			r->lines++;
		if (len == 0 || strspn(line, " \t\r") == len)
			continue; /* a blank line */
		if (json_check(line, len, &jwhy, &at) < 0) {
			/* The writer died mid-line, or the file is still being
			 * written: leave the torn piece out and say so. */
			if (torn) {
				r->torn_skipped = true;
				r->torn_bytes = len;
				break;
			}
			snprintf(why, sizeof(why), "not a JSON line: %s at byte %zu", jwhy, at + 1);
			rc = fail_at(err, errlen, r, lr->lineno, why, -EINVAL);
			goto out;
		}
		if (rec_decode(line, len, &rec, why, sizeof(why)) < 0) {
			rc = fail_at(err, errlen, r, lr->lineno, why, -EINVAL);
			goto out;
		}
		if (scratch_reserve(r, len) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		if (rec.kind == REC_SUMMARY) {
			if (pass == 2)
				summary_take(r, &rec);
			continue;
		}
		command_words(r, &rec, ws);
		rc = pass == 1 ? pass1_record(r, &rec, ws, lr->lineno, &shape_cache)
		               : pass2_record(r, gt, &rec, ws, lr->lineno, &shape_cache);
		if (rc < 0)
			goto out;
	}
	if (rc == -E2BIG) {
		char lim[32];
		snprintf(why, sizeof(why),
		         "a line longer than %s (--max-line): not a corral report, or raise "
		         "--max-line",
		         rpt_size(r->o.max_line, lim, sizeof(lim)));
		rc = fail_at(err, errlen, r, lr->lineno + 1, why, rc);
	} else if (rc < 0) {
		snprintf(err, errlen, "%s: %s", r->o.path, strerror(-rc));
	}
out:
	free(ws);
	return rc;
}

/* The shape roles are known: pick the timelines and size the chart data. */
static int between_passes(struct rpt *r)
{
	for (size_t i = 0; i < r->nshapes; i++)
		shape_roles(&r->shapes[i]);
	for (size_t i = 0; i < r->ntl_big; i++)
		tl_select(r, r->tl_big[i].line, "biggest");
	for (size_t i = 0; i < r->ntl_slow; i++)
		tl_select(r, r->tl_slow[i].line, "slowest");
	r->groups = calloc(RPT_MAX_GROUPS, sizeof(*r->groups));
	r->slowest = calloc(r->o.top ? r->o.top : 1, sizeof(*r->slowest));
	r->biggest = calloc(r->o.top ? r->o.top : 1, sizeof(*r->biggest));
	if (!r->groups || !r->slowest || !r->biggest)
		return -ENOMEM;
	stats_init(&r->all);
	if (r->o.want_chart_data) {
		r->sliced = r->records > RPT_POINTS_ALL;
		size_t n = r->sliced ? (size_t)RPT_SLICES * 3 : (size_t)r->records;
		r->points = calloc(n ? n : 1, sizeof(*r->points));
		if (!r->points)
			return -ENOMEM;
		r->points_cap = n;
		if (r->sliced)
			r->npoints = n;
	}
	return 0;
}

/* ---------------------------------------------------------------- suggestions */

uint64_t rpt_tidy_size(double bytes, char *text, size_t len)
{
	double unit = bytes < 1000 * MIB ? MIB : GIB, x = bytes / unit, y;
	const char *u = unit == MIB ? "M" : "G";
	uint64_t out;

	if (!(x > 0))
		x = 0;
	if (x < 10)
		y = ceil(x * 10 - 1e-9) / 10;
	else if (x < 100)
		y = ceil(x - 1e-9);
	else
		y = ceil(x / 10 - 1e-9) * 10;
	if (unit == MIB && y < 1)
		y = 1;
	if (y < 10 && y != floor(y))
		snprintf(text, len, "%.1f%s", y, u);
	else
		snprintf(text, len, "%.0f%s", y, u);
	/* Above 2^63 (only in a hostile file) the text does not parse: saturate. */
	if (corral_parse_size(text, &out) < 0)
		out = y * unit < 9.2e18 ? (uint64_t)(y * unit) : (uint64_t)INT64_MAX;
	return out;
}

static void suggest(struct rpt_group *g, double headroom)
{
	const struct rpt_stats *st = &g->st;
	uint64_t need = st->peak_need > st->oom_limit_max ? st->peak_need : st->oom_limit_max;

	g->sug_ok = false;
	if (need == 0 || st->attempts == 0)
		return;
	g->sug_ok = true;
	g->sug_need = need;
	/* Tasks that never got past an OOM kill needed more than their last
	 * limit: how much more, the report cannot say. */
	g->sug_lower_bound = st->final_oom_tasks > 0;
	g->sug_memory = rpt_tidy_size((double)need * headroom, g->sug_text, sizeof(g->sug_text));
	g->sug_mt = (double)g->sug_memory * st->wall_final;
}

/* ---------------------------------------------------------------- order */

static int group_cmp(const void *a, const void *b, void *base)
{
	const struct rpt_group *groups = base;
	const struct rpt_group *x = &groups[*(const int *)a], *y = &groups[*(const int *)b];

	if (x->st.mt_all != y->st.mt_all)
		return x->st.mt_all > y->st.mt_all ? -1 : 1;
	if (x->st.attempts != y->st.attempts)
		return x->st.attempts > y->st.attempts ? -1 : 1;
	return x->first_line < y->first_line ? -1 : x->first_line > y->first_line;
}

/* -1 (the "other" group) becomes its index, after the others. */
static int remap(const int *rank, int g, const struct rpt *r)
{
	return g >= 0 ? rank[g] : r->other ? (int)r->ngroups : -1;
}

/* Order the groups as they are shown: the most memory-time first (then the
 * most attempts, then the first seen), and renumber every reference. */
static int groups_sort(struct rpt *r)
{
	int *order = malloc((r->ngroups + 1) * sizeof(int));
	int *rank = malloc((r->ngroups + 1) * sizeof(int));
	struct rpt_group *sorted = malloc((r->ngroups + 1) * sizeof(*sorted));

	if (!order || !rank || !sorted) {
		free(order);
		free(rank);
		free(sorted);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->ngroups; i++)
		order[i] = (int)i;
	qsort_r(order, r->ngroups, sizeof(int), group_cmp, r->groups);
	for (size_t i = 0; i < r->ngroups; i++) {
		rank[order[i]] = (int)i;
		sorted[i] = r->groups[order[i]];
	}
	memcpy(r->groups, sorted, r->ngroups * sizeof(*sorted));
	for (size_t i = 0; i < r->nslowest; i++)
		r->slowest[i].group = remap(rank, r->slowest[i].group, r);
	for (size_t i = 0; i < r->nbiggest; i++)
		r->biggest[i].group = remap(rank, r->biggest[i].group, r);
	for (size_t i = 0; i < r->npoints; i++)
		r->points[i].group = remap(rank, r->points[i].group, r);
	for (size_t i = 0; i < r->ntl; i++)
		r->tl[i].group = remap(rank, r->tl[i].group, r);
	free(order);
	free(rank);
	free(sorted);
	return 0;
}

/* ---------------------------------------------------------------- build */

int rpt_build(struct rpt *r, const struct rpt_opts *o, char *err, size_t errlen)
{
	struct line_reader lr;
	struct group_table *gt = NULL;
	int fd, rc;

	memset(r, 0, sizeof(*r));
	r->o = *o;
	if (r->o.top > RPT_TOP_MAX)
		r->o.top = RPT_TOP_MAX;
	fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open '%s': %s", o->path, strerror(errno));
		return rc;
	}
	lr_init(&lr, fd, o->max_line);
	rc = run_pass(r, &lr, 1, NULL, err, errlen);
	if (rc < 0)
		goto out;
	rc = lr_rewind(&lr);
	if (rc < 0) {
		snprintf(err, errlen,
		         "cannot read '%s' twice (%s): give a file, not a pipe (corral report "
		         "reads it twice to stay in bounded memory)",
		         o->path, strerror(-rc));
		goto out;
	}
	rc = between_passes(r);
	gt = calloc(1, sizeof(*gt));
	if (rc < 0 || !gt) {
		rc = -ENOMEM;
		goto out;
	}
	/* The torn line is looked at again in pass 2. */
	r->torn_skipped = false;
	rc = run_pass(r, &lr, 2, gt, err, errlen);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < r->ngroups; i++) {
		if ((rc = group_name(&r->groups[i], r)) < 0)
			goto out;
		suggest(&r->groups[i], o->headroom);
	}
	if (r->other) {
		if ((rc = group_name(r->other, r)) < 0)
			goto out;
		suggest(r->other, o->headroom);
	}
	points_dedupe(r);
	rc = groups_sort(r);
out:
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "%s: out of memory", o->path);
	free(gt);
	lr_free(&lr);
	close(fd);
	return rc;
}

void rpt_free(struct rpt *r)
{
	for (size_t i = 0; i < r->nshapes; i++)
		free(r->shapes[i].pos);
	for (size_t i = 0; r->groups && i < r->ngroups; i++) {
		free(r->groups[i].ref);
		free(r->groups[i].name);
	}
	if (r->other) {
		free(r->other->ref);
		free(r->other->name);
		free(r->other);
	}
	for (size_t i = 0; i < r->ntl; i++)
		tl_free(&r->tl[i]);
	free(r->groups);
	free(r->slowest);
	free(r->biggest);
	free(r->points);
	free(r->scratch);
	memset(r, 0, sizeof(*r));
}
