/* halt.c - the batch verdict and the halt policies.
 *
 *  ordered  The first final failure with seq k halts everything after k:
 *           queued tasks after k are cancelled, running ones aborted. Tasks
 *           before k still run to their end; if one of them fails, the halt
 *           point moves down to it. Since tasks start in seq order, every task
 *           below the final halt point ran to completion, so the verdict is
 *           the lowest failing seq, whatever -j and the timing: the semantics
 *           of running the tasks one by one under `set -e`.
 *  now      The first final failure observed is the verdict; everything else
 *           is aborted or cancelled at once. Fast, not deterministic.
 *  never    Nothing is cut; the verdict is the lowest failing seq.
 */
#include "halt.h"

void corral__halt_init(struct corral__halt *h, corral_halt_t policy)
{
	memset(h, 0, sizeof(*h));
	h->policy = policy;
}

bool corral__halt_is_failure(corral_outcome_t o)
{
	return o != CORRAL_OK && o != CORRAL_CANCELLED && o != CORRAL_ABORTED;
}

bool corral__halt_final(struct corral__halt *h, uint64_t seq, corral_outcome_t o, int status)
{
	if (!corral__halt_is_failure(o))
		return false;
	bool take = h->policy == CORRAL_HALT_NOW ? h->verdict_seq == 0
	                                         : h->verdict_seq == 0 || seq < h->verdict_seq;
	if (take) {
		h->verdict_seq = seq;
		h->verdict = o;
		h->verdict_status = status;
	}
	switch (h->policy) {
	case CORRAL_HALT_NEVER:
		return false;
	case CORRAL_HALT_NOW:
		if (h->halted)
			return false;
		h->halted = true;
		h->halt_seq = 0;
		return true;
	case CORRAL_HALT_ORDERED:
	default:
		if (h->halted && seq >= h->halt_seq)
			return false;
		h->halted = true;
		h->halt_seq = seq;
		return true;
	}
}

bool corral__halt_beyond(const struct corral__halt *h, uint64_t seq)
{
	if (h->aborted)
		return true;
	if (!h->halted)
		return false;
	return seq > h->halt_seq;
}

void corral__halt_abort(struct corral__halt *h)
{
	h->aborted = true;
	h->halted = true;
	h->halt_seq = 0;
}
