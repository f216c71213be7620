/* halt.h - the batch verdict and the halt policies (design §5), as a pure
 * state machine so that unit tests can drive it with fake children. */
#ifndef CORRAL_HALT_H
#define CORRAL_HALT_H

#include "internal.h"

struct corral__halt {
	corral_halt_t policy;
	bool halted;       /* some tasks must be cancelled/aborted */
	bool aborted;      /* corral_abort(): everything */
	uint64_t halt_seq; /* with "ordered": tasks with seq > halt_seq are cut */
	uint64_t verdict_seq;
	corral_outcome_t verdict;
	int verdict_status;
};

void corral__halt_init(struct corral__halt *h, corral_halt_t policy);
/* Is o a failure that can become the verdict (not ok/cancelled/aborted)? */
bool corral__halt_is_failure(corral_outcome_t o);
/* Record a task's final outcome. Returns true when the halt point moved:
 * the caller must then kill the running attempts and cancel the queued tasks
 * for which corral__halt_beyond() is now true. */
bool corral__halt_final(struct corral__halt *h, uint64_t seq, corral_outcome_t o, int status);
/* Must the task with this seq be cancelled (queued) or aborted (running)? */
bool corral__halt_beyond(const struct corral__halt *h, uint64_t seq);
/* corral_abort(). */
void corral__halt_abort(struct corral__halt *h);

#endif
