/* fn_map.c - corral_map() over N trivial C functions (each returns its
 * argument squared through out_fd), J at a time, no memory limit unless
 * MEM is given.  corral-bench-map N J [MEM]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"

static int square(void *arg, int out_fd)
{
	long x = (long)(intptr_t)arg;
	x *= x;
	return write(out_fd, &x, sizeof(x)) == (ssize_t)sizeof(x) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: corral-bench-map N J [MEM]\n");
		return 2;
	}
	size_t n = strtoul(argv[1], NULL, 10);
	corral_options_t o;
	corral_error_t err;
	corral_summary_t sum;
	corral_options_init(&o);
	o.jobs = (unsigned)atoi(argv[2]);
	if (argc > 3 && corral_parse_size(argv[3], &o.memory_max) < 0)
		return 2;
	void **args = calloc(n, sizeof(*args));
	corral_result_t *res = calloc(n, sizeof(*res));
	if (!args || !res)
		return 1;
	for (size_t i = 0; i < n; i++)
		args[i] = (void *)(intptr_t)i;
	int rc = corral_map(&o, square, args, n, res, &sum, &err);
	if (rc < 0) {
		fprintf(stderr, "corral_map: %s\n", err.msg);
		return 1;
	}
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		long v = 0;
		if (res[i].fn_result.data_len == sizeof(v))
			memcpy(&v, res[i].fn_result.data, sizeof(v));
		if (res[i].outcome != CORRAL_OK || v != (long)(i * i))
			bad++;
		corral_result_release(&res[i]);
	}
	free(args);
	free(res);
	if (bad)
		fprintf(stderr, "corral-bench-map: %zu wrong results\n", bad);
	return bad ? 1 : rc;
}
