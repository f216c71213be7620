/* remote.h - a worker on another node as a site of the policy
 * (attempt_remote.c; design §10, the protocol in wire.h).
 *
 * The head's side of `corral run --slurm`: one launcher process per worker
 * (srun, ssh, ...) whose stdin and stdout are one end of a socketpair, the
 * worker's frames read and written by the executor's loop. Attempts are
 * RUN frames; their output comes back in OUTPUT frames and is kept as a
 * local attempt's is (memory, then an unlinked temp file); their end is
 * the worker's RESULT, classified there. A worker that falls silent, closes
 * its channel or breaks the protocol is lost: its attempts end as outcome
 * lost and the policy runs them again elsewhere. */
#ifndef CORRAL_REMOTE_H
#define CORRAL_REMOTE_H

#include "loop.h"
#include "policy.h"
#include "wire.h"

struct ratt;

struct corral__remote {
	struct corral__site site; /* first: the policy sees this */
	const corral_options_t *o;
	struct corral__loop *loop;
	char name[64];
	unsigned jobs_wanted; /* 0: the node's CPUs (HELLO) */
	/* The launcher. */
	pid_t pid;
	int pidfd;
	corral__loop_handle h_pid;
	/* exited: its status is known, read with WNOWAIT: unreaped until the
	 * shutdown, so its pid, hence its process group's id, names nothing
	 * else and a signal to the group is safe until then. */
	bool exited, reaped;
	int exit_code, exit_signal; /* once exited: one of them */
	/* The channel (our end of the socketpair) and the launcher's stderr. */
	int fd;
	corral__loop_handle h_fd;
	bool want_out; /* EPOLLOUT is asked for */
	int errfd;
	corral__loop_handle h_err;
	char errtail[1024]; /* the last bytes of its stderr */
	size_t errlen;
	struct corral__wire_reader rd;
	struct corral__wire_buf out;
	/* The conversation. */
	corral_worker_state_t state;
	bool have_hello, configured;
	struct corral__wire_hello hello;
	char notice[512];          /* READY's */
	char reason[400];          /* why it was lost */
	char broken[300];          /* a frame could not be queued: lost at the next timer */
	uint64_t lost_ns;          /* when */
	uint64_t term_at, kill_at; /* shutdown */
	uint8_t *profile;          /* the seccomp profile's text, for CONFIG */
	size_t profile_len;
	uint64_t hb_ms, lost_ms;
	uint64_t started_ns, last_rx, next_hb, hb_seq, tx_blocked_since;
	uint64_t next_id;
	struct ratt *atts; /* running here */
	uint64_t attempts, lost;
};

/* Start the launcher argv (copied) for a worker called name. o is the
 * executor's copy; it outlives the site. On failure nothing is left. */
int corral__remote_new(const corral_options_t *o, struct corral__loop *loop, const char *name,
                       const char *const *argv, unsigned jobs, struct corral__remote **out,
                       corral_error_t *err);
/* End the workers (every attempt is done): QUIT and EOF, then wait for
 * each launcher to exit: SIGTERM after bound_ms, SIGKILL after as long
 * again (a lost one: bound_ms after it was lost and got SIGTERM), each to
 * the launcher's process group; what is left of a group whose launcher
 * exited gets SIGKILL, and every launcher is reaped before it returns. */
void corral__remote_shutdown(struct corral__remote **rs, int n, unsigned bound_ms);
void corral__remote_free(struct corral__remote *r);
void corral__remote_info(const struct corral__remote *r, corral_worker_info_t *w);

#endif
