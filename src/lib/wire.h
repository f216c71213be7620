/* wire.h - the head <-> worker protocol of `corral run --slurm` (design §10):
 * framing, messages, and their encoder and decoder, shared by both sides.
 *
 * The channel is a byte stream in each direction (srun's stdin and stdout,
 * or a pipe, or ssh). Nothing read from it is trusted: every length is
 * checked before anything is allocated or copied, sizes are bounded, and a
 * frame that breaks a rule ends the conversation (-EPROTO) rather than being
 * guessed at.
 *
 * Frame
 * -----
 *   offset  size  field
 *   0       3     magic "CRL"
 *   3       1     frame format version, 1 (CORRAL_WIRE_FRAME_VERSION)
 *   4       1     message type (table below); an unknown type is an error
 *   5       4     payload length, unsigned big-endian, <= CORRAL_WIRE_MAX_PAYLOAD
 *   9       n     payload: fields, one after the other
 *   9+n     1     '\n'
 *
 * The closing '\n' is there for slurmstepd: it forwards a task's stdout line
 * by line (a partial line waits for its newline; a line longer than 1024
 * bytes goes in 1024-byte pieces), so a frame that did not end a line could
 * sit in slurmstepd until the next frame pushed it out. Bytes inside the
 * payload may be anything, '\n' included: the length, never the newline,
 * delimits a frame.
 *
 * Field
 * -----
 *   tag u8 (1..255) | length u32 big-endian | value (length bytes)
 *
 * Integers are big-endian of the field's fixed width; booleans one byte, 0 or
 * 1; doubles the 8 bytes of their IEEE 754 binary64 pattern, big-endian, and
 * always finite; strings bytes without NUL (not necessarily UTF-8); blobs any
 * bytes. A field whose tag the receiver does not know is skipped (newer
 * peers may add fields); a known tag with a wrong length, a value out of its
 * range, a repeated non-repeatable tag or a missing required field is an
 * error. Every field is sent, in tag order; receivers accept any order.
 *
 * Versions
 * --------
 * The frame format version changes only if this layout changes. The
 * protocol version (what the messages mean) is negotiated: the worker's
 * HELLO gives the range it speaks, the head's CONFIG names the one chosen;
 * a worker that does not speak it answers ERROR. This is protocol 1.
 *
 * Conversation
 * ------------
 *   worker                              head
 *     HELLO  ------------------------>           first thing the worker sends
 *            <------------------------  CONFIG   then RUN/KILL at will
 *     READY | ERROR  ---------------->           the executor is up (or not)
 *            <------------------------  RUN      one attempt
 *     STARTED  ---------------------->           its process runs (pid)
 *     OUTPUT...  -------------------->           its captured stdout, then stderr
 *     RESULT  ----------------------->           how it ended
 *            <------------------------  KILL     one attempt (abort / timeout)
 *            <------------------------  QUIT     kill what runs, exit 0
 *     HEARTBEAT <-------------------->  HEARTBEAT every interval, both ways
 *     ERROR  ------------------------>           a fatal error, before exiting
 *
 * Per attempt the worker sends STARTED (if a process was started at all:
 * not for a spawn error before fork), then all OUTPUT chunks of stdout in
 * offset order, then those of stderr, then RESULT, whose lengths say how
 * many bytes of each stream the chunks carried. STARTED may be held back up
 * to 50 ms, so that a short attempt's frames leave in one write: through
 * srun, separate writes become separate messages of slurmstepd, and Nagle
 * holds the second of two until the first is ACKed (~40 ms); a head should
 * likewise put the frames it has ready into one write. Frames of different
 * attempts may interleave. Results come in the order attempts end, not in
 * RUN order.
 *
 * Loss: a peer that sends nothing (no frame of any type) for
 * heartbeat_ms * heartbeat_misses of CONFIG is lost. The head must detect
 * a lost worker this way, not by EOF: a dead node's srun gives no EOF until
 * Slurm declares the node down (research/slurm-multinode.md).
 *
 * Messages (type: fields by tag; * = required)
 * --------
 *  1 HELLO     w->h  1 proto_min* u32, 2 proto_max* u32, 3 version str (corral's),
 *                    4 node str (SLURMD_NODENAME, else the host name), 5 cpus u32
 *                    (usable: affinity, capped by SLURM_CPUS_ON_NODE), 6 cpus_affinity
 *                    u32, 7 memory_total u64 (bytes), 8 cgroup_mode u8
 *                    (corral_cgroup_mode_t), 9 provider str (the provider chain's
 *                    choice: "own", "parent", "systemd", "slurm", "observe", "off";
 *                    "none" if it cannot say), 10 memory_limits bool (task memory
 *                    limits work here),
 *                    11 kernel str (uname -r), 12 pid i32
 *  2 CONFIG    h->w  1 proto* u32, 2 jobs* u32 (1..100000 tasks at once), 3 memory_max
 *                    u64 (default per task; UINT64_MAX none), 4 swap_max u64, 5 pids_max
 *                    u64, 6 cpus f64, 7 timeout_ns u64, 8 kill_grace_ns u64, 9 oom_group
 *                    bool, 10 allow_subprocess_oom bool, 11 seccomp u8 (0 off, 1 the
 *                    built-in profile, 2 the profile text of tag 12), 12 seccomp_profile
 *                    blob (<= 1 MiB, the text of a profile file), 13 allow_ptrace bool,
 *                    14 no_new_privs bool, 15 no_network bool, 16 user str, 17 core_dumps
 *                    bool, 18 cgroup_ns bool, 19 capture_max u64 (0 = default),
 *                    20 heartbeat_ms* u32 (10..600000), 21 heartbeat_misses* u32
 *                    (2..10000), 22 timeline bool (sample each task's memory),
 *                    23 allow_io_uring bool, 24 pid_ns bool (the sandbox's PID
 *                    namespace, where the worker may make one)
 *  3 READY     w->h  1 jobs* u32, 2 memory_limits bool (task cgroups exist), 3 notice str
 *                    (why not, when the worker fell back to running without cgroups)
 *  4 RUN       h->w  1 id* u64 (head-chosen, unique among running attempts), 2 seq u64,
 *                    3 attempt u32, 4 memory_max u64 (0 = CONFIG's), 5 arg* str,
 *                    repeated: argv in order, at least one
 *  5 STARTED   w->h  1 id* u64, 2 pid i32, 3 start_time f64 (seconds since the epoch)
 *  6 OUTPUT    w->h  1 id* u64, 2 stream* u8 (1 stdout, 2 stderr), 3 offset* u64 (of
 *                    the first byte in the stream), 4 data* blob (<= 64 KiB)
 *  7 RESULT    w->h  1 id* u64, 2 outcome* u8 (corral_outcome_t), 3 exit_code i32,
 *                    4 signal i32, 5 status i32, 6 pid i32, 7 oom_kills u64,
 *                    8 own_limit_hit bool, 9 memory_max u64, 10 memory_peak u64,
 *                    11 pids_limit_hit bool, 12 seccomp_kill bool, 13 spawn_errno i32,
 *                    14 spawn_step str, 15 start_time f64, 16 wall_s f64, 17 user_s f64,
 *                    18 sys_s f64, 19 out_len u64 (stdout bytes the OUTPUT chunks
 *                    carried), 20 out_lost u64 (stdout bytes the task wrote that are
 *                    not in them), 21 err_len u64, 22 err_lost u64, 23 node str,
 *                    24 sentence str (the worker's, with the head's seq), 25 oom_memcg
 *                    str, 26 memory_stall_some f64 (-1 unknown), 27 memory_stall_full
 *                    f64 (-1 unknown), 28 oom_victims blob (<= 64 records of 57 bytes:
 *                    pid i32, comm 16 bytes NUL-padded, total_vm u64, anon_rss u64,
 *                    file_rss u64, shmem_rss u64, oom_score_adj i32, detailed u8),
 *                    29 timeline blob (<= 4096 points of 16 bytes: t f64, bytes u64),
 *                    30 timeline_peak u32 (an index into it). The outcome is never
 *                    lost: only a head decides that.
 *  8 KILL      h->w  1 id* u64, 2 reason* u8 (1 abort: outcome aborted; 2 timeout: a
 *                    deadline of the head's, outcome timeout; an attempt still
 *                    queued on the worker ends cancelled, one that had already
 *                    ended or been OOM-killed keeps its outcome). An id that is
 *                    not running is ignored: its RESULT is on its way.
 *  9 QUIT      h->w  (no fields) kill what runs, send what is left, exit 0
 * 10 HEARTBEAT both  1 seq* u64, 2 mono_ns u64 (the sender's CLOCK_MONOTONIC)
 * 11 ERROR     both  1 code* i32 (errno), 2 message str; the sender then exits
 *
 * Every function returns >= 0 on success and -errno on failure (with err
 * filled when given); nothing here prints, exits or keeps global state.
 */
#ifndef CORRAL_WIRE_H
#define CORRAL_WIRE_H

#include "internal.h"

#define CORRAL_WIRE_MAGIC         "CRL"
#define CORRAL_WIRE_FRAME_VERSION 1
#define CORRAL_WIRE_HEADER        9u
#define CORRAL_WIRE_MAX_PAYLOAD   (4u << 20)  /* any frame; argv and profiles fit */
#define CORRAL_WIRE_MAX_CHUNK     (64u << 10) /* OUTPUT data */
#define CORRAL_WIRE_MAX_PROFILE   (1u << 20)  /* CONFIG seccomp_profile */
#define CORRAL_WIRE_MAX_ARGS      131072u     /* RUN arg fields */
#define CORRAL_WIRE_MAX_FRAME     (CORRAL_WIRE_HEADER + CORRAL_WIRE_MAX_PAYLOAD + 1)
#define CORRAL_WIRE_PROTO_MIN     1
#define CORRAL_WIRE_PROTO_MAX     1

enum corral__wire_type {
	WIRE_HELLO = 1,
	WIRE_CONFIG,
	WIRE_READY,
	WIRE_RUN,
	WIRE_STARTED,
	WIRE_OUTPUT,
	WIRE_RESULT,
	WIRE_KILL,
	WIRE_QUIT,
	WIRE_HEARTBEAT,
	WIRE_ERROR,
	WIRE_TYPE_MAX = WIRE_ERROR
};

enum {
	WIRE_STDOUT = 1,
	WIRE_STDERR = 2
};
enum {
	WIRE_KILL_ABORT = 1,
	WIRE_KILL_TIMEOUT = 2
};
enum {
	WIRE_SECCOMP_OFF = 0,
	WIRE_SECCOMP_DEFAULT = 1,
	WIRE_SECCOMP_PROFILE = 2
};

/* A blob owned by the message (malloc'ed; NULL when len is 0). */
struct corral__wire_bytes {
	uint8_t *data;
	size_t len;
};

/* Strings owned by the message: v[0..n) and v[n] == NULL, in one allocation. */
struct corral__wire_strv {
	char **v;
	uint32_t n;
};

struct corral__wire_hello {
	uint32_t proto_min, proto_max;
	char version[32];
	char node[256];
	uint32_t cpus;
	uint32_t cpus_affinity;
	uint64_t memory_total;
	uint8_t cgroup_mode;
	char provider[32];
	bool memory_limits;
	char kernel[128];
	int32_t pid;
};

struct corral__wire_config {
	uint32_t proto;
	uint32_t jobs;
	uint64_t memory_max, swap_max, pids_max;
	double cpus;
	uint64_t timeout_ns, kill_grace_ns;
	bool oom_group, allow_subprocess_oom;
	uint8_t seccomp;
	struct corral__wire_bytes seccomp_profile;
	bool allow_ptrace, no_new_privs, no_network;
	char user[256];
	bool core_dumps, cgroup_ns;
	uint64_t capture_max;
	uint32_t heartbeat_ms, heartbeat_misses;
	bool timeline;
	bool allow_io_uring, pid_ns;
};

struct corral__wire_ready {
	uint32_t jobs;
	bool memory_limits;
	char notice[512];
};

struct corral__wire_run {
	uint64_t id, seq;
	uint32_t attempt;
	uint64_t memory_max;
	struct corral__wire_strv argv;
};

struct corral__wire_started {
	uint64_t id;
	int32_t pid;
	double start_time;
};

struct corral__wire_output {
	uint64_t id;
	uint8_t stream;
	uint64_t offset;
	struct corral__wire_bytes data;
};

struct corral__wire_result {
	uint64_t id;
	uint8_t outcome;
	int32_t exit_code, signal, status, pid;
	uint64_t oom_kills;
	bool own_limit_hit;
	uint64_t memory_max, memory_peak;
	bool pids_limit_hit, seccomp_kill;
	int32_t spawn_errno;
	char spawn_step[32];
	double start_time, wall_s, user_s, sys_s;
	uint64_t out_len, out_lost, err_len, err_lost;
	char node[256];
	char sentence[320];
	char oom_memcg[256];
	double memory_stall_some, memory_stall_full;
	struct corral__wire_bytes oom_victims, timeline;
	uint32_t timeline_peak;
};

struct corral__wire_kill {
	uint64_t id;
	uint8_t reason;
};

struct corral__wire_heartbeat {
	uint64_t seq;
	uint64_t mono_ns;
};

struct corral__wire_error {
	int32_t code;
	char message[512];
};

/* One message. Zero it (or corral__wire_msg_init()) before filling it in;
 * free what a decoder filled with corral__wire_msg_free(). */
struct corral__wire_msg {
	uint8_t type; /* enum corral__wire_type */
	union {
		struct corral__wire_hello hello;
		struct corral__wire_config config;
		struct corral__wire_ready ready;
		struct corral__wire_run run;
		struct corral__wire_started started;
		struct corral__wire_output output;
		struct corral__wire_result result;
		struct corral__wire_kill kill;
		struct corral__wire_heartbeat heartbeat;
		struct corral__wire_error error;
	} u;
};

#define CORRAL_WIRE_VICTIM_SIZE 57u
#define CORRAL_WIRE_MAX_VICTIMS 64u
#define CORRAL_WIRE_SAMPLE_SIZE 16u
#define CORRAL_WIRE_MAX_SAMPLES 4096u

/* The blobs of RESULT: pack (into *b, malloc'ed; at most the maximum
 * count, the rest dropped) and unpack (*out malloc'ed, NULL when none).
 * Return 0 or -ENOMEM; unpack -EPROTO for a length not a multiple of the
 * record. */
int corral__wire_pack_victims(const corral_oom_victim_t *v, unsigned n,
                              struct corral__wire_bytes *b);
int corral__wire_unpack_victims(const struct corral__wire_bytes *b, corral_oom_victim_t **out,
                                unsigned *n);
int corral__wire_pack_timeline(const corral_sample_t *s, unsigned n, struct corral__wire_bytes *b);
int corral__wire_unpack_timeline(const struct corral__wire_bytes *b, corral_sample_t **out,
                                 unsigned *n);

/* "HELLO", "CONFIG", ...; "?" for anything else. */
const char *corral__wire_type_name(unsigned type);

/* Zero m and set its type. */
void corral__wire_msg_init(struct corral__wire_msg *m, unsigned type);
/* Free the blobs and strings a decoded message owns; m is then zeroed
 * (type kept). Safe on a zeroed message and twice. */
void corral__wire_msg_free(struct corral__wire_msg *m);
/* Field-by-field equality (blobs and strings by content). */
bool corral__wire_msg_equal(const struct corral__wire_msg *a, const struct corral__wire_msg *b);

/* ---------------------------------------------------------------- encoding */

/* A growable byte buffer: bytes [off, len) are waiting to be sent. */
struct corral__wire_buf {
	uint8_t *data;
	size_t len, cap;
	size_t off;
};

/* Append one frame holding m to b. The message is checked with the same
 * rules as a received one: -EINVAL for a value out of range (m's field named
 * in err), -EMSGSIZE when the payload would exceed CORRAL_WIRE_MAX_PAYLOAD,
 * -ENOMEM. On failure b is unchanged. */
int corral__wire_encode(struct corral__wire_buf *b, const struct corral__wire_msg *m,
                        corral_error_t *err);
/* Bytes waiting in b. */
static inline size_t corral__wire_buf_pending(const struct corral__wire_buf *b)
{
	return b->len - b->off;
}
/* write() what is waiting to fd (non-blocking fds: as much as it takes).
 * Returns the bytes written (0 when nothing was waiting), -EAGAIN when fd
 * took nothing, or -errno. Consumed space is reclaimed. */
ssize_t corral__wire_buf_flush(struct corral__wire_buf *b, int fd);
void corral__wire_buf_free(struct corral__wire_buf *b);

/* ---------------------------------------------------------------- decoding */

/* Decode exactly one frame (header, payload, '\n') of len bytes. Returns 0
 * with *m filled (free it with corral__wire_msg_free()), or -EPROTO with the
 * broken rule in err (*m then owns nothing), or -ENOMEM. */
int corral__wire_decode(const uint8_t *frame, size_t len, struct corral__wire_msg *m,
                        corral_error_t *err);

/* Incremental reader: bytes in, whole messages out, in memory bounded by
 * CORRAL_WIRE_MAX_FRAME plus one read. */
struct corral__wire_reader {
	uint8_t *buf;
	size_t len, cap;   /* bytes held, allocated */
	size_t off;        /* start of the first unconsumed byte */
	uint64_t consumed; /* bytes of whole frames taken so far (for messages) */
};

void corral__wire_reader_init(struct corral__wire_reader *r);
void corral__wire_reader_free(struct corral__wire_reader *r);
/* One read() from fd into r. Returns the bytes read, 0 at EOF, -EAGAIN, or
 * -errno. Call corral__wire_reader_next() until it returns 0 after each. */
ssize_t corral__wire_reader_fill(struct corral__wire_reader *r, int fd);
/* Add bytes (tests, fuzzing). Returns 0 or -ENOMEM; -EMSGSIZE when more than
 * one frame plus 64 KiB would wait (take messages out first). */
int corral__wire_reader_feed(struct corral__wire_reader *r, const void *data, size_t len);
/* The next whole message: 1 with *m (free it), 0 when more bytes are needed,
 * -EPROTO when the bytes break the format (the header is checked as soon as
 * its 9 bytes are in, so garbage is refused before its claimed length is
 * waited for or allocated), -ENOMEM. After an error the reader is unusable. */
int corral__wire_reader_next(struct corral__wire_reader *r, struct corral__wire_msg *m,
                             corral_error_t *err);
/* Bytes of an incomplete frame held (EOF now would cut a frame). */
static inline size_t corral__wire_reader_pending(const struct corral__wire_reader *r)
{
	return r->len - r->off;
}

#endif
