/* executor.h - internals shared by the local site (attempt_local.c),
 * sandbox.c, watchdog.c and check.c. */
#ifndef CORRAL_EXECUTOR_H
#define CORRAL_EXECUTOR_H

#include "capture.h"
#include "cgroup.h"
#include "outcome.h"
#include "spawn.h"

/* sandbox.c */
int corral__sandbox_prepare(const corral_sandbox_t *s, const struct corral__hier *h,
                            struct corral__sandbox_plan *plan, corral_error_t *err);
void corral__sandbox_free(struct corral__sandbox_plan *plan);
/* Before each spawn: if the caller's mount table changed since the plan was
 * made, make the read-only mount namespace again (a cheap poll otherwise). */
void corral__sandbox_refresh(struct corral__sandbox_plan *plan);
bool corral__sandbox_enabled(const corral_sandbox_t *s);

/* watchdog.c */
struct corral__watchdog {
	pid_t pid;
	int pidfd;
	int wfd;      /* our end of the pipe: EOF (we died) = tear the batch down */
	int pidns_fd; /* with pid_ns: the PID namespace it is the init of, or -1 */
};
/* Start the watchdog. b may be NULL (no cgroups: then it only holds the PID
 * namespace). pid_ns: make it the init of a new PID namespace (pidns_fd). */
int corral__watchdog_start(const struct corral__batch *b, bool pid_ns, struct corral__watchdog *w,
                           corral_error_t *err);
/* Tell the watchdog we clean up ourselves, and reap it (bounded). */
void corral__watchdog_stop(struct corral__watchdog *w);

#endif
