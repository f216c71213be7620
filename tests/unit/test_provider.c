/* test_provider.c - the provider chain's pieces that need no real cgroups:
 * provider names, the text block, observe mode's observer on fake cgroup
 * directories (its counter, the limit it names, rivals and the hold), the
 * attribution rule, and the sentences of observed outcomes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "outcome.h"
#include "provider.h"

static void names(void **state)
{
	corral_cgroups_t c;

	(void)state;
	for (int i = 0; i < CORRAL_CGROUPS_COUNT; i++) {
		const char *n = corral_cgroups_name((corral_cgroups_t)i);
		assert_non_null(n);
		assert_int_equal(corral_parse_cgroups(n, &c), 0);
		assert_int_equal(c, i);
	}
	assert_string_equal(corral_cgroups_name(CORRAL_CGROUPS_SYSTEMD), "systemd");
	assert_null(corral_cgroups_name(CORRAL_CGROUPS_COUNT));
	assert_int_equal(corral_parse_cgroups("bogus", &c), -EINVAL);
	assert_int_equal(corral_parse_cgroups("", &c), -EINVAL);
	assert_int_equal(corral_parse_cgroups(NULL, &c), -EINVAL);
}

static void judge(void **state)
{
	(void)state;
	assert_int_equal(corral__observer_judge(0, 0), 0);
	assert_int_equal(corral__observer_judge(0, 3), 0);
	assert_int_equal(corral__observer_judge(1, 0), 1);
	assert_int_equal(corral__observer_judge(2, 1), 1);
	assert_int_equal(corral__observer_judge(1, 1), -1);
	assert_int_equal(corral__observer_judge(2, 2), -1);
}

/* ------------------------------------------------------------ observer */

struct fx {
	char *root;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->root = tl_tmpdir();
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	tl_rm_rf(f->root);
	free(f->root);
	free(f);
	return 0;
}

static const char *dir_of(const struct fx *f, const char *rel)
{
	static char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s/%s", f->root, rel);
	return buf;
}

static void events(const struct fx *f, const char *rel, int oom_kill)
{
	char text[128], p[256];

	snprintf(text, sizeof(text), "low 0\nhigh 0\nmax 3\noom 1\noom_kill %d\noom_group_kill 0\n",
	         oom_kill);
	snprintf(p, sizeof(p), "%s/memory.events", rel);
	tl_write(f->root, p, text);
}

static void observer_v2(void **state)
{
	struct fx *f = *state;
	struct corral__observer ob;
	struct corral__obs_attempt a1, a2, a3;
	struct corral__facts fa;
	corral_error_t err;

	/* The enclosing cgroup /pod/ctr has no limit; its parent has 192 MiB. */
	tl_mkdir_p(f->root, "cg/pod/ctr");
	tl_write(f->root, "cg/pod/memory.max", "201326592\n");
	tl_write(f->root, "cg/pod/ctr/memory.max", "max\n");
	events(f, "cg/pod/ctr", 0);
	assert_int_equal(
	    corral__observer_open(&ob, true, dir_of(f, "cg/pod/ctr"), "/pod/ctr", &err), 0);
	assert_true(ob.on);
	assert_string_equal(ob.limit_desc, "memory.max 192.0 MiB of /pod");
	assert_int_equal(corral__observer_count(&ob), 0);

	/* a1 is OOM-killed alone: oom_outside material, held for rivals. */
	corral__observer_started(&ob, &a1);
	events(f, "cg/pod/ctr", 1);
	uint64_t hold = corral__observer_reaped(&ob, &a1, 1, true);
	assert_true(hold > a1.end_ns);
	memset(&fa, 0, sizeof(fa));
	corral__observer_facts(&ob, &a1, 1, &fa);
	assert_true(fa.observed);
	assert_int_equal(fa.observed_kills, 1);
	assert_int_equal(fa.observed_rivals, 0);
	assert_string_equal(fa.observed_where, "memory.max 192.0 MiB of /pod");

	/* a2 and a3 overlap, both die of SIGKILL, one OOM kill: rivals. */
	corral__observer_started(&ob, &a2);
	corral__observer_started(&ob, &a3);
	events(f, "cg/pod/ctr", 2);
	assert_true(corral__observer_reaped(&ob, &a2, 2, true) > 0);
	assert_true(corral__observer_reaped(&ob, &a3, 3, true) > 0);
	memset(&fa, 0, sizeof(fa));
	corral__observer_facts(&ob, &a2, 2, &fa);
	assert_int_equal(fa.observed_kills, 1);
	assert_int_equal(fa.observed_rivals, 1);
	memset(&fa, 0, sizeof(fa));
	corral__observer_facts(&ob, &a3, 3, &fa);
	assert_int_equal(fa.observed_rivals, 1);

	/* An exit, or a SIGKILL corral sent: no hold, nothing attributed. */
	struct corral__obs_attempt a4;
	corral__observer_started(&ob, &a4);
	events(f, "cg/pod/ctr", 3);
	assert_int_equal(corral__observer_reaped(&ob, &a4, 4, false), 0);
	memset(&fa, 0, sizeof(fa));
	corral__observer_facts(&ob, &a4, 4, &fa);
	assert_true(fa.observed);
	assert_int_equal(fa.observed_kills, 0);
	corral__observer_close(&ob);
	assert_false(ob.on);
	assert_int_equal(ob.fd, -1);
}

static void observer_no_limit_and_errors(void **state)
{
	struct fx *f = *state;
	struct corral__observer ob;
	corral_error_t err;

	tl_mkdir_p(f->root, "cg/a");
	events(f, "cg/a", 0);
	assert_int_equal(corral__observer_open(&ob, true, dir_of(f, "cg/a"), "/a", &err), 0);
	assert_non_null(strstr(ob.limit_desc, "no memory.max"));
	corral__observer_close(&ob);
	/* No memory.events at all (the root of the hierarchy). */
	tl_mkdir_p(f->root, "cg/none");
	assert_int_equal(corral__observer_open(&ob, true, dir_of(f, "cg/none"), "/none", &err),
	                 -ENOENT);
	assert_non_null(strstr(err.msg, "memory.events"));
	/* An old kernel without oom_kill. */
	tl_mkdir_p(f->root, "cg/old");
	tl_write(f->root, "cg/old/memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
	assert_int_equal(corral__observer_open(&ob, true, dir_of(f, "cg/old"), "/old", &err),
	                 -ENOTSUP);
	assert_non_null(strstr(err.msg, "oom_kill"));
}

static void observer_v1(void **state)
{
	struct fx *f = *state;
	struct corral__observer ob;
	corral_error_t err;

	tl_mkdir_p(f->root, "mem/job");
	tl_write(f->root, "mem/job/memory.oom_control",
	         "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
	tl_write(f->root, "mem/job/memory.stat",
	         "cache 0\nrss 0\nhierarchical_memory_limit 1073741824\n");
	assert_int_equal(corral__observer_open(&ob, false, dir_of(f, "mem/job"), "/job", &err), 0);
	assert_int_equal(corral__observer_count(&ob), 4);
	assert_string_equal(ob.limit_desc,
	                    "its memory limit 1.0 GiB (hierarchical_memory_limit of /job)");
	corral__observer_close(&ob);
	tl_write(f->root, "mem/job/memory.stat",
	         "cache 0\nhierarchical_memory_limit 9223372036854771712\n");
	assert_int_equal(corral__observer_open(&ob, false, dir_of(f, "mem/job"), "/job", &err), 0);
	assert_string_equal(ob.limit_desc,
	                    "no memory limit on /job: only the host's memory bounds it");
	corral__observer_close(&ob);
}

/* ------------------------------------------------------------ sentences */

static void observed_sentences(void **state)
{
	struct corral__facts f;
	corral_result_t r;

	(void)state;
	memset(&f, 0, sizeof(f));
	memset(&r, 0, sizeof(r));
	f.spawned = true;
	f.term_signal = SIGKILL;
	f.observed = true;
	f.observed_kills = 1;
	f.observed_where = "memory.max 192.0 MiB of /";
	r.seq = 2;
	r.attempt = 1;
	r.memory_max = CORRAL_UNLIMITED;
	corral__classify(&f, &r);
	assert_int_equal(r.outcome, CORRAL_OOM_OUTSIDE);
	corral__sentence(&r, 0);
	corral__observed_sentence(&f, &r);
	assert_string_equal(
	    r.sentence, "task 2 was OOM-killed outside any limit of its own: it died of SIGKILL "
	                "while the OOM killer struck in the enclosing cgroup (memory.max 192.0 "
	                "MiB of /; observe mode, no per-task cgroups here)");
	f.observed_rivals = 1;
	corral__classify(&f, &r);
	assert_int_equal(r.outcome, CORRAL_SIGNAL);
	corral__sentence(&r, 0);
	corral__observed_sentence(&f, &r);
	assert_non_null(
	    strstr(r.sentence, "2 tasks died of SIGKILL in that window for 1 OOM kill"));
	assert_non_null(strstr(r.sentence, "ambiguous"));
	/* No rise: the generic sentence stays. */
	f.observed_kills = 0;
	f.observed_rivals = 0;
	corral__classify(&f, &r);
	corral__sentence(&r, 0);
	corral__observed_sentence(&f, &r);
	assert_string_equal(r.sentence, "task 2 was killed by signal 9 (SIGKILL)");
}

/* ------------------------------------------------------------ text */

static void text_block(void **state)
{
	corral_provider_t p;
	char buf[4096], small[16];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.used = CORRAL_CGROUPS_OBSERVE;
	snprintf(p.found, sizeof(p.found), "Podman container; cgroup v2 mounted read-only");
	p.n_steps = 3;
	p.steps[0] = (corral_provider_step_t){CORRAL_CGROUPS_OWN, EACCES, "/ is read-only"};
	p.steps[1] = (corral_provider_step_t){CORRAL_CGROUPS_SYSTEMD, ENOENT, "no manager"};
	p.steps[2] = (corral_provider_step_t){CORRAL_CGROUPS_OBSERVE, 0, "watching /"};
	snprintf(p.fixes, sizeof(p.fixes), "podman run --systemd=always\nor run as root");
	int n = corral_provider_text(&p, false, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "per-task limits OFF: no cgroup per task here; OOM kills in the "
	                         "enclosing cgroup are still attributed (observe mode)\n"
	                         "  found: Podman container; cgroup v2 mounted read-only\n"
	                         "  tried: own: / is read-only\n"
	                         "         systemd: no manager\n"
	                         "  using: observe: watching /\n"
	                         "  for per-task limits:\n"
	                         "    podman run --systemd=always\n"
	                         "    or run as root");
	/* Truncation: snprintf-like. */
	assert_int_equal(corral_provider_text(&p, false, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(corral_provider_text(&p, false, NULL, 0), n);

	/* Limits on: one line, unless verbose; the warning is always there. */
	memset(&p, 0, sizeof(p));
	p.used = CORRAL_CGROUPS_SYSTEMD;
	p.limits = true;
	snprintf(p.cgroup, sizeof(p.cgroup), "/user.slice/x.scope");
	snprintf(p.unit, sizeof(p.unit), "x.scope");
	p.n_steps = 2;
	p.steps[0] = (corral_provider_step_t){CORRAL_CGROUPS_OWN, EACCES, "not writable"};
	p.steps[1] = (corral_provider_step_t){CORRAL_CGROUPS_SYSTEMD, 0, "scope x.scope"};
	corral_provider_text(&p, false, buf, sizeof(buf));
	assert_string_equal(buf, "per-task limits ON: cgroups from systemd (/user.slice/x.scope)");
	corral_provider_text(&p, true, buf, sizeof(buf));
	assert_non_null(strstr(buf, "scope x.scope, base /user.slice/x.scope\n"));
	assert_non_null(strstr(buf, "  tried: own: not writable\n"));
	assert_non_null(strstr(buf, "  using: systemd: scope x.scope"));
	snprintf(p.warning, sizeof(p.warning), "oom.group");
	corral_provider_text(&p, false, buf, sizeof(buf));
	assert_string_equal(buf, "per-task limits ON: cgroups from systemd (/user.slice/x.scope)\n"
	                         "  warning: oom.group");

	/* Nothing worked. */
	memset(&p, 0, sizeof(p));
	p.used = CORRAL_CGROUPS_OFF;
	p.n_steps = 1;
	p.steps[0] = (corral_provider_step_t){CORRAL_CGROUPS_OWN, EACCES, "not writable"};
	corral_provider_text(&p, false, buf, sizeof(buf));
	assert_non_null(strstr(buf, "no provider of per-task cgroups works here"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names),
	    cmocka_unit_test(judge),
	    T(observer_v2),
	    T(observer_no_limit_and_errors),
	    T(observer_v1),
	    cmocka_unit_test(observed_sentences),
	    cmocka_unit_test(text_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
