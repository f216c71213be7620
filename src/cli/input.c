/* input.c - input items, streamed: the words after :::, the -a files one
 * after the other, or stdin.
 *
 * Items are separated by '\n' (or NUL with -0); the separator is removed,
 * every other byte is kept (a '\r' too). A NUL inside a '\n'-separated item
 * cannot be passed in argv and is reported by the caller.
 *
 * Reading never blocks: input_next() reads only when poll() says the source
 * is readable and otherwise returns -EAGAIN, and run.c waits for
 * input_fd() in the same poll() as for the tasks and for signals. So a task
 * starts as soon as its line arrives, and tasks that run while a slow
 * producer (`tail -f`, a pipeline) has not written the next line are still
 * watched: timeouts fire, output is drained, Ctrl-C works. The buffer holds
 * at most one read ahead plus the longest item, whatever the input's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define READ_CHUNK 65536

struct input {
	const struct cli *c;
	int next_arg;      /* ::: words */
	int next_file;     /* -a files */
	int fd;            /* current source, -1 between sources */
	bool own_fd;       /* close it at its end (not stdin) */
	bool eof;          /* the current source hit EOF; items may remain */
	const char *fname; /* current source, for messages */
	char *buf;
	size_t cap, start, end; /* unconsumed bytes: buf[start..end) */
	bool use_args;
	bool stdin_done;
};

struct input *input_open(const struct cli *c)
{
	struct input *in = calloc(1, sizeof(*in));

	if (!in)
		die("out of memory");
	in->c = c;
	in->fd = -1;
	if (c->n_args) {
		in->use_args = true;
		in->fname = ":::";
		return in;
	}
	/* Open every -a file now: an unreadable one is an error before any
	 * task starts (they are then read one after the other). */
	for (int i = 0; i < c->n_arg_files; i++) {
		const char *name = c->arg_files[i];
		int fd = strcmp(name, "-") ? open(name, O_RDONLY | O_CLOEXEC) : 0;
		struct stat st;
		if (fd < 0)
			die("cannot read input file '%s': %s", name, strerror(errno));
		/* A directory opens; reading it would fail only later, after
		 * the tasks of the files before it ran. */
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
			die("cannot read input file '%s': %s", name, strerror(EISDIR));
		if (fd != 0)
			close(fd);
	}
	return in;
}

static void close_source(struct input *in)
{
	if (in->fd >= 0 && in->own_fd)
		close(in->fd);
	in->fd = -1;
	in->own_fd = false;
	in->eof = false;
	in->start = in->end = 0;
}

static bool next_source(struct input *in)
{
	const struct cli *c = in->c;

	close_source(in);
	if (c->n_arg_files) {
		if (in->next_file >= c->n_arg_files)
			return false;
		in->fname = c->arg_files[in->next_file++];
		if (strcmp(in->fname, "-")) {
			in->fd = open(in->fname, O_RDONLY | O_CLOEXEC);
			if (in->fd < 0)
				die("cannot read input file '%s': %s", in->fname, strerror(errno));
			in->own_fd = true;
		} else {
			in->fd = 0;
		}
		return true;
	}
	if (in->stdin_done)
		return false;
	in->stdin_done = true;
	in->fname = "stdin";
	in->fd = 0;
	return true;
}

/* One read() of the current source, only if it would not block. Returns 1
 * when bytes or EOF arrived, -EAGAIN when nothing is there yet, -errno. */
static int fill(struct input *in)
{
	struct pollfd pfd = {.fd = in->fd, .events = POLLIN};

	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->cap - in->end < READ_CHUNK + 1) {
		size_t ncap = in->cap ? in->cap : READ_CHUNK * 2;
		while (ncap - in->end < READ_CHUNK + 1)
			ncap *= 2;
		char *nb = realloc(in->buf, ncap);
		if (!nb)
			die("out of memory");
		in->buf = nb;
		in->cap = ncap;
	}
	for (;;) {
		int n = poll(&pfd, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EAGAIN;
		break;
	}
	for (;;) {
		ssize_t n = read(in->fd, in->buf + in->end, in->cap - in->end - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			in->eof = true;
		in->end += (size_t)n;
		return 1;
	}
}

int input_next(struct input *in, char **line, size_t *len)
{
	const char sep = in->c->null_sep ? '\0' : '\n';

	if (in->use_args) {
		if (in->next_arg >= in->c->n_args)
			return 0;
		*line = in->c->args[in->next_arg++];
		*len = strlen(*line);
		return 1;
	}
	for (;;) {
		if (in->fd < 0 && !next_source(in))
			return 0;
		char *b = in->buf + in->start;
		size_t avail = in->end - in->start;
		char *p = avail ? memchr(b, sep, avail) : NULL;
		if (p || (in->eof && avail)) {
			size_t n = p ? (size_t)(p - b) : avail;
			b[n] = '\0'; /* the separator, or the spare byte after end */
			in->start += p ? n + 1 : n;
			*line = b;
			*len = n;
			return 1;
		}
		if (in->eof) {
			close_source(in);
			continue;
		}
		int rc = fill(in);
		if (rc < 0)
			return rc;
	}
}

int input_fd(const struct input *in)
{
	return in && !in->use_args ? in->fd : -1;
}

const char *input_name(const struct input *in)
{
	return in && in->fname ? in->fname : "stdin";
}

void input_close(struct input *in)
{
	if (!in)
		return;
	close_source(in);
	free(in->buf);
	free(in);
}

static size_t count(const char *s, const char *pat)
{
	size_t n = 0, pl = strlen(pat);

	for (const char *p = strstr(s, pat); p; p = strstr(p + pl, pat))
		n++;
	return n;
}

static bool has_replacement(char *const *cmd, int argc)
{
	for (int i = 0; i < argc; i++)
		if (strstr(cmd[i], "{}") || strstr(cmd[i], "{#}"))
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
	/* Shell mode is the template `/bin/sh -c {}`: the line, as it is. */
	static char *const shell[] = {"/bin/sh", "-c", "{}"};
	char *const *cmd = c->cmd_argc ? c->cmd : shell;
	int argc = c->cmd_argc ? c->cmd_argc : 3;
	char seqs[32];
	size_t n, bytes = 0, ll = strlen(line);
	bool append;

	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
	append = !has_replacement(cmd, argc);
	n = (size_t)argc + (append ? 1 : 0);
	for (int i = 0; i < argc; i++)
		bytes += strlen(cmd[i]) + count(cmd[i], "{}") * ll +
		         count(cmd[i], "{#}") * strlen(seqs) + 1;
	if (append)
		bytes += ll + 1;
	char **av = malloc((n + 1) * sizeof(char *) + bytes);
	if (!av)
		die("out of memory");
	char *p = (char *)(av + n + 1);
	for (int i = 0; i < argc; i++) {
		av[i] = p;
		p = substitute(p, cmd[i], line, seqs);
	}
	if (append) {
		av[argc] = p;
		memcpy(p, line, ll + 1);
	}
	av[n] = NULL;
	return av;
}
