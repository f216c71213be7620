/* fuzz_seccomp.c - seccomp profile files: corral__sc_parse(), and for the
 * profiles that parse (and are small: libseccomp is slow), corral__sc_compile().
 *
 * Checks: a failed parse returns -EINVAL-like errors with a message and leaves
 * nothing allocated; a parsed profile obeys the documented rules (names are
 * syntactically valid, no duplicates, [allow] only with `default deny`, ...);
 * a compiled filter is non-empty, ends in a return and is freed (ASan's leak
 * checker runs at exit).
 */
#include <ctype.h>
#include <errno.h>

#include "fuzz.h"
#include "seccomp_profile.h"

/* Compiling costs ~1 ms; keep the fuzzer fast on big inputs. */
#define COMPILE_MAX_INPUT 2048

static void check_err(const corral_error_t *err, int rc)
{
	size_t len = strnlen(err->msg, sizeof(err->msg));

	FUZZ_CHECK(rc < 0 && err->code == -rc, "rc %d err.code %d", rc, err->code);
	FUZZ_CHECK(len > 0 && len < sizeof(err->msg), "error message of length %zu", len);
	FUZZ_CHECK(!strchr(err->msg, '\n'), "multi-line error message: %s", err->msg);
}

static void check_profile(const struct corral__sc_profile *p, int lines)
{
	bool any_allow = false;

	FUZZ_CHECK(p->n <= p->cap, "n %zu cap %zu", p->n, p->cap);
	FUZZ_CHECK(p->action == SC_ACT_ERRNO || p->action == SC_ACT_KILL, "action %d", p->action);
	FUZZ_CHECK(p->errno_value >= 1 && p->errno_value <= 4094, "errno %d", p->errno_value);
	for (size_t i = 0; i < p->n; i++) {
		const struct corral__sc_entry *e = &p->entries[i];
		size_t len = strnlen(e->name, sizeof(e->name));
		FUZZ_CHECK(len > 0 && len < sizeof(e->name), "entry %zu: name length %zu", i, len);
		const char *s = e->name[0] == '@' ? e->name + 1 : e->name;
		FUZZ_CHECK(*s, "entry %zu: empty name", i);
		for (; *s; s++)
			FUZZ_CHECK(isalnum((unsigned char)*s) || *s == '_' || *s == '-',
			           "entry %zu: bad name '%s'", i, e->name);
		if (e->name[0] == '@')
			FUZZ_CHECK(corral__sc_group(e->name) != NULL, "unknown group %s", e->name);
		FUZZ_CHECK(e->line >= 1 && e->line <= lines, "entry %s on line %d of %d", e->name,
		           e->line, lines);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(p->entries[j].name, e->name), "duplicate %s", e->name);
		if (e->allow) {
			FUZZ_CHECK(!p->default_allow, "[allow] %s with default allow", e->name);
			any_allow = true;
		}
	}
	if (!p->default_allow)
		FUZZ_CHECK(any_allow, "default deny without [allow]");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct corral__sc_profile p;
	corral_error_t err;
	int lines = 1;
	int rc;

	for (const char *c = text; *c; c++)
		lines += *c == '\n';
	memset(&err, 0, sizeof(err));
	rc = corral__sc_parse(text, &p, &err);
	if (rc < 0) {
		check_err(&err, rc);
		FUZZ_CHECK(p.entries == NULL && p.n == 0, "a failed parse keeps entries");
		free(text);
		return 0;
	}
	FUZZ_CHECK(rc == 0, "rc %d", rc);
	check_profile(&p, lines);

	if (size <= COMPILE_MAX_INPUT) {
		struct sock_fprog prog;
		memset(&err, 0, sizeof(err));
		rc = corral__sc_compile(&p, &prog, &err);
		if (rc < 0) {
			/* Only names that do not exist may fail. */
			check_err(&err, rc);
			FUZZ_CHECK(rc == -EINVAL && strstr(err.msg, "unknown syscall"),
			           "compile failed: %s", err.msg);
			FUZZ_CHECK(prog.filter == NULL, "a failed compile keeps a filter");
		} else {
			FUZZ_CHECK(prog.filter && prog.len > 0, "empty filter");
			const struct sock_filter *last = &prog.filter[prog.len - 1];
			FUZZ_CHECK(BPF_CLASS(last->code) == BPF_RET, "filter ends with code %#x",
			           last->code);
			free(prog.filter);
		}
	}
	corral__sc_free(&p);
	free(text);
	return 0;
}
