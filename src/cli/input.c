/* input.c - input items, streamed: the words after :::, the -a files one
 * after the other, or stdin. Nothing is read ahead beyond one item, so a
 * 10-million-line input costs the memory of one line.
 *
 * Items are separated by '\n' (or NUL with -0); the separator is removed,
 * every other byte is kept (a '\r' too). A NUL inside a '\n'-separated item
 * cannot be passed in argv and is reported by the caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct input {
	const struct cli *c;
	int next_arg;  /* ::: words */
	int next_file; /* -a files */
	FILE *f;
	const char *fname; /* current source, for messages */
	char *line;
	size_t cap;
	bool use_args;
	bool stdin_done;
};

struct input *input_open(const struct cli *c)
{
	struct input *in = calloc(1, sizeof(*in));

	if (!in)
		die("out of memory");
	in->c = c;
	if (c->n_args) {
		in->use_args = true;
		in->fname = ":::";
		return in;
	}
	/* Open every -a file now: an unreadable one is an error before any
	 * task starts (they are then read one after the other). */
	for (int i = 0; i < c->n_arg_files; i++) {
		FILE *f = strcmp(c->arg_files[i], "-") ? fopen(c->arg_files[i], "re") : stdin;
		if (!f)
			die("cannot read input file '%s': %s", c->arg_files[i], strerror(errno));
		if (f != stdin)
			fclose(f);
	}
	return in;
}

static bool next_source(struct input *in)
{
	const struct cli *c = in->c;

	if (in->f && in->f != stdin)
		fclose(in->f);
	in->f = NULL;
	if (c->n_arg_files) {
		if (in->next_file >= c->n_arg_files)
			return false;
		in->fname = c->arg_files[in->next_file++];
		in->f = strcmp(in->fname, "-") ? fopen(in->fname, "re") : stdin;
		if (!in->f)
			die("cannot read input file '%s': %s", in->fname, strerror(errno));
		return true;
	}
	if (in->stdin_done)
		return false;
	in->stdin_done = true;
	in->fname = "stdin";
	in->f = stdin;
	return true;
}

int input_next(struct input *in, char **line, size_t *len)
{
	if (in->use_args) {
		if (in->next_arg >= in->c->n_args)
			return 0;
		*line = in->c->args[in->next_arg++];
		*len = strlen(*line);
		return 1;
	}
	for (;;) {
		if (!in->f && !next_source(in))
			return 0;
		errno = 0;
		ssize_t n = getdelim(&in->line, &in->cap, in->c->null_sep ? '\0' : '\n', in->f);
		if (n < 0) {
			if (ferror(in->f)) {
				int e = errno ? errno : EIO;
				clearerr(in->f);
				return -e;
			}
			if (in->f != stdin)
				fclose(in->f);
			in->f = NULL;
			continue;
		}
		if (n > 0 && in->line[n - 1] == (in->c->null_sep ? '\0' : '\n'))
			n--;
		in->line[n] = '\0';
		*line = in->line;
		*len = (size_t)n;
		return 1;
	}
}

const char *input_name(const struct input *in)
{
	return in->fname ? in->fname : "stdin";
}

void input_close(struct input *in)
{
	if (!in)
		return;
	if (in->f && in->f != stdin)
		fclose(in->f);
	free(in->line);
	free(in);
}

static size_t count(const char *s, const char *pat)
{
	size_t n = 0, pl = strlen(pat);

	for (const char *p = strstr(s, pat); p; p = strstr(p + pl, pat))
		n++;
	return n;
}

static bool has_replacement(const struct cli *c)
{
	for (int i = 0; i < c->cmd_argc; i++)
		if (strstr(c->cmd[i], "{}") || strstr(c->cmd[i], "{#}"))
			return true;
	return false;
}

/* Copy s into *dst replacing {} and {#}; returns the end of the copy. */
static char *substitute(char *dst, const char *s, const char *line, const char *seq)
{
	size_t ll = strlen(line), sl = strlen(seq);

	while (*s) {
		if (s[0] == '{' && s[1] == '}') {
			memcpy(dst, line, ll);
			dst += ll;
			s += 2;
		} else if (s[0] == '{' && s[1] == '#' && s[2] == '}') {
			memcpy(dst, seq, sl);
			dst += sl;
			s += 3;
		} else {
			*dst++ = *s++;
		}
	}
	*dst++ = '\0';
	return dst;
}

char **build_argv(const struct cli *c, const char *line, uint64_t seq)
{
	char seqs[32];
	size_t n, bytes = 0, ll = strlen(line);
	bool append;

	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
	if (c->cmd_argc == 0) {
		const char *sh[] = {"/bin/sh", "-c", line};
		n = 3;
		for (size_t i = 0; i < n; i++)
			bytes += strlen(sh[i]) + 1;
		char **av = malloc((n + 1) * sizeof(char *) + bytes);
		if (!av)
			die("out of memory");
		char *p = (char *)(av + n + 1);
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(sh[i]) + 1;
			memcpy(p, sh[i], l);
			av[i] = p;
			p += l;
		}
		av[n] = NULL;
		return av;
	}
	append = !has_replacement(c);
	n = (size_t)c->cmd_argc + (append ? 1 : 0);
	for (int i = 0; i < c->cmd_argc; i++)
		bytes += strlen(c->cmd[i]) + count(c->cmd[i], "{}") * ll +
		         count(c->cmd[i], "{#}") * strlen(seqs) + 1;
	if (append)
		bytes += ll + 1;
	char **av = malloc((n + 1) * sizeof(char *) + bytes);
	if (!av)
		die("out of memory");
	char *p = (char *)(av + n + 1);
	for (int i = 0; i < c->cmd_argc; i++) {
		av[i] = p;
		p = substitute(p, c->cmd[i], line, seqs);
	}
	if (append) {
		av[c->cmd_argc] = p;
		memcpy(p, line, ll + 1);
	}
	av[n] = NULL;
	return av;
}
