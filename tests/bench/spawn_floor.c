/* spawn_floor.c - the floor of the spawn-throughput benchmark: N runs of a
 * command with posix_spawn, at most J at a time, reaped with waitpid. No
 * cgroups, no pipes, no bookkeeping: what any runner must at least pay.
 *   corral-bench-floor N J COMMAND [ARG...]
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: corral-bench-floor N J COMMAND [ARG...]\n");
		return 2;
	}
	long n = atol(argv[1]), j = atol(argv[2]), started = 0, running = 0, failed = 0;
	posix_spawnattr_t attr;

	posix_spawnattr_init(&attr);
	while (started < n || running > 0) {
		while (started < n && running < j) {
			pid_t pid;
			if (posix_spawnp(&pid, argv[3], NULL, &attr, argv + 3, environ) != 0) {
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
	return failed ? 1 : 0;
}
