/* progress.c - `--progress`: one status line on stderr, redrawn at most five
 * times a second, only when stderr is a terminal. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct progress {
	bool on;
	double start, last;
	bool drawn;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress *progress_open(bool enabled)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (!p)
		die("out of memory");
	p->on = enabled && isatty(2);
	p->start = now();
	return p;
}

void progress_update(struct progress *p, uint64_t done, uint64_t failed, unsigned running,
                     uint64_t submitted, bool input_done)
{
	double t = now();

	if (!p->on || t - p->last < 0.2)
		return;
	p->last = t;
	char eta[32] = "?";
	if (input_done && done > 0 && submitted >= done) {
		double rate = done / (t - p->start);
		double left = (double)(submitted - done) / (rate > 0 ? rate : 1);
		snprintf(eta, sizeof(eta), "%d:%02d", (int)left / 60, (int)left % 60);
	}
	fprintf(stderr, "\r\033[K[corral] %llu%s done, %u running, %llu failed, ETA %s",
	        (unsigned long long)done, "", running, (unsigned long long)failed, eta);
	if (input_done)
		fprintf(stderr, " (of %llu)", (unsigned long long)submitted);
	fflush(stderr);
	p->drawn = true;
}

void progress_close(struct progress *p)
{
	if (!p)
		return;
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	free(p);
}
