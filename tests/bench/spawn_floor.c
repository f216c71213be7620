/* spawn_floor.c - the floor of the spawn-throughput benchmark: N runs of a
 * command with posix_spawn, at most J at a time, reaped with wait. No
 * cgroups, no pipes, no bookkeeping: what any runner must at least pay.
 *   corral-bench-floor N J COMMAND [ARG...]
 * Run i (1..N) gets i as its last argument, as every runner in the benchmark
 * appends its input line (`seq N | xargs -n 1 COMMAND`): the work must be the
 * same. It is not free: coreutils' true with one argument sets up its locale
 * (some 30 file opens), and costs a third more than without one.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: corral-bench-floor N J COMMAND [ARG...]\n");
		return 2;
	}
	long n = atol(argv[1]), j = atol(argv[2]), started = 0, running = 0, failed = 0;
	int cargc = argc - 3;
	char **cargv = calloc((size_t)cargc + 2, sizeof(*cargv));
	char num[32];
	posix_spawnattr_t attr;

	if (!cargv)
		return 1;
	memcpy(cargv, argv + 3, (size_t)cargc * sizeof(*cargv));
	cargv[cargc] = num;
	posix_spawnattr_init(&attr);
	while (started < n || running > 0) {
		while (started < n && running < j) {
			pid_t pid;
			snprintf(num, sizeof(num), "%ld", started + 1);
			if (posix_spawnp(&pid, cargv[0], NULL, &attr, cargv, environ) != 0) {
				perror("posix_spawnp");
				return 1;
			}
			started++;
			running++;
		}
		int st;
		if (wait(&st) > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				failed++;
		}
	}
	free(cargv);
	return failed ? 1 : 0;
}
