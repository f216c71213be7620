/* fuzz_argv.c - build_argv() of src/cli/input.c: the argv of a task from the
 * command template and one input line ({} -> the line, {#} -> the sequence
 * number; without either the line is appended; no template: sh -c LINE).
 *
 * Input layout: byte 0 picks the sequence number; the rest is split at NUL
 * bytes: every piece but the last is a word of the command template, the last
 * one is the input line. So "\x05" "echo\0{}-{#}\0a b" is the template
 * [echo, {}-{#}] with line "a b" and seq 5.
 *
 * The result is compared with an expansion written independently here: the
 * number of arguments, the verbatim appended line, and every {} replaced by
 * the line byte for byte.
 */
#include <stdarg.h>

#include "cli.h"
#include "fuzz.h"

/* input.c calls die() on out-of-memory and unreadable files only. */
void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void warnx_(const char *fmt, ...)
{
	(void)fmt;
}

struct str {
	char *p;
	size_t len, cap;
};

static void str_add(struct str *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			abort();
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->p[s->len] = '\0';
}

/* The expected expansion of one template word. */
static char *expand(const char *w, const char *line, const char *seq, bool *replaced)
{
	struct str out = {0};

	str_add(&out, "", 0);
	for (size_t i = 0; w[i];) {
		if (!strncmp(w + i, "{#}", 3)) {
			str_add(&out, seq, strlen(seq));
			i += 3;
			*replaced = true;
		} else if (!strncmp(w + i, "{}", 2)) {
			str_add(&out, line, strlen(line));
			i += 2;
			*replaced = true;
		} else {
			str_add(&out, w + i, 1);
			i++;
		}
	}
	return out.p;
}

static uint64_t pick_seq(uint8_t b)
{
	switch (b) {
	case 255:
		return UINT64_MAX; /* the longest decimal form */
	case 254:
		return 0;
	case 253:
		return 1234567890123ull;
	default:
		return (uint64_t)b + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum {
		MAX_WORDS = 64
	};
	char *words[MAX_WORDS + 1];
	int nw = 0;
	char seqs[32];

	if (size == 0)
		return 0;
	uint64_t seq = pick_seq(data[0]);
	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);

	/* Split data[1..] at NULs: template words, then the line. */
	char *buf = fuzz_cstr(data + 1, size - 1);
	char *p = buf, *end = buf + (size - 1);
	for (;;) {
		char *z = memchr(p, '\0', (size_t)(end - p));
		if (!z || z == end || nw == MAX_WORDS)
			break;
		words[nw++] = p;
		p = z + 1;
	}
	const char *line = p; /* up to the next NUL, if the word limit stopped us */
	words[nw] = NULL;

	struct cli c;
	memset(&c, 0, sizeof(c));
	c.cmd = nw ? words : NULL;
	c.cmd_argc = nw;

	char **av = build_argv(&c, line, seq);
	FUZZ_CHECK(av != NULL, "build_argv returned NULL");

	size_t n = 0;
	while (av[n])
		n++;
	if (nw == 0) {
		FUZZ_CHECK(n == 3, "shell mode: %zu args", n);
		FUZZ_CHECK(!strcmp(av[0], "/bin/sh") && !strcmp(av[1], "-c"), "shell mode: %s %s",
		           av[0], av[1]);
		FUZZ_CHECK(!strcmp(av[2], line), "shell mode: line '%s' became '%s'", line, av[2]);
	} else {
		bool replaced = false;
		char *exp[MAX_WORDS];
		for (int i = 0; i < nw; i++)
			exp[i] = expand(words[i], line, seqs, &replaced);
		size_t want = (size_t)nw + (replaced ? 0 : 1);
		FUZZ_CHECK(n == want, "%zu args, expected %zu (%d words, replaced %d)", n, want, nw,
		           replaced);
		for (int i = 0; i < nw; i++) {
			FUZZ_CHECK(!strcmp(av[i], exp[i]),
			           "word %d '%s' became '%s', expected '%s'", i, words[i], av[i],
			           exp[i]);
			if (!replaced)
				FUZZ_CHECK(!strcmp(av[i], words[i]), "word %d changed", i);
			free(exp[i]);
		}
		if (!replaced)
			FUZZ_CHECK(strlen(av[nw]) == strlen(line) &&
			               !memcmp(av[nw], line, strlen(line) + 1),
			           "appended line '%s' became '%s'", line, av[nw]);
	}
	/* The strings live in the same block, after the pointers. */
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((char *)av[i] >= (char *)(av + n + 1), "av[%zu] outside the block", i);
	free(av);
	free(buf);
	return 0;
}
