/* fuzz_kmsg.c - records of /dev/kmsg (corral__parse_kmsg_oom()) and pressure
 * files (corral__parse_psi()).
 *
 * Two checks per input. The raw input, as a record, must parse or be refused
 * without a crash, a read out of bounds or a result outside its bounds (a
 * NUL-terminated name of at most 15 bytes, a positive pid). And a record
 * built from the input the way the kernel prints it (a task name of up to
 * 15 arbitrary bytes, which a task chooses itself; a cgroup path; numbers)
 * must parse back to exactly those fields: a task cannot forge the pid or
 * the cgroup through its name.
 */
#include <errno.h>

#include "fuzz.h"
#include "internal.h"

static uint64_t take(const uint8_t **d, size_t *n, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && *n; i++, (*d)++, (*n)--)
		v = v << 8 | **d;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct corral__kmsg_oom ev;
	char rec[2048];

	if (corral__parse_kmsg_oom((const char *)data, size, &ev) == 0) {
		FUZZ_CHECK(ev.pid > 0, "pid %d", ev.pid);
		FUZZ_CHECK(strlen(ev.comm) < sizeof(ev.comm), "comm");
		FUZZ_CHECK(ev.kind == KMSG_OOM_KILL || ev.kind == KMSG_KILLED, "kind %d", ev.kind);
	}
	char *s = fuzz_cstr(data, size);
	uint64_t some, full;
	if (s) {
		(void)corral__parse_psi(s, &some, &full);
		free(s);
	}

	/* The round trip. */
	const uint8_t *d = data;
	size_t n = size;
	int pid = (int)(take(&d, &n, 3) % 4000000) + 1;
	unsigned clen = (unsigned)take(&d, &n, 1) % 16;
	char comm[16];
	unsigned c = 0;
	for (; c < clen && n; c++)
		comm[c] = (char)take(&d, &n, 1);
	comm[c] = '\0';
	for (unsigned i = 0; i < c; i++)
		if (comm[i] == '\0' || comm[i] == '\n')
			comm[i] = '?'; /* the kernel's printk never shows these raw */
	uint64_t kb[4];
	for (int i = 0; i < 4; i++)
		kb[i] = take(&d, &n, 4);
	bool kill_line = n && (take(&d, &n, 1) & 1);
	if (kill_line) {
		snprintf(rec, sizeof(rec),
		         "3,1,2,-;Memory cgroup out of memory: Killed process %d (%s) "
		         "total-vm:%llukB, anon-rss:%llukB, file-rss:%llukB, shmem-rss:%llukB, "
		         "UID:0 pgtables:4kB oom_score_adj:0",
		         pid, comm, (unsigned long long)kb[0], (unsigned long long)kb[1],
		         (unsigned long long)kb[2], (unsigned long long)kb[3]);
		FUZZ_CHECK(corral__parse_kmsg_oom(rec, strlen(rec), &ev) == 0, "%s", rec);
		FUZZ_CHECK(ev.kind == KMSG_KILLED && ev.pid == pid && !strcmp(ev.comm, comm) &&
		               ev.total_vm == kb[0] * 1024 && ev.anon_rss == kb[1] * 1024 &&
		               ev.file_rss == kb[2] * 1024 && ev.shmem_rss == kb[3] * 1024,
		           "%s -> pid %d comm '%s'", rec, ev.pid, ev.comm);
	} else {
		char path[256];
		size_t plen = n < sizeof(path) - 1 ? n : sizeof(path) - 1;
		for (size_t i = 0; i < plen; i++) {
			char ch = (char)d[i];
			/* A cgroup path: no NUL, newline or comma (corral's names
			 * have none; the kernel's format has no quoting). */
			path[i] = ch == '\0' || ch == '\n' || ch == ',' ? '_' : ch;
		}
		path[plen] = '\0';
		snprintf(rec, sizeof(rec),
		         "6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
		         "mems_allowed=0,oom_memcg=/p%s,task_memcg=/p%s,task=%s,pid=%d,uid=0",
		         path, path, comm, pid);
		FUZZ_CHECK(corral__parse_kmsg_oom(rec, strlen(rec), &ev) == 0, "%s", rec);
		char want[300];
		snprintf(want, sizeof(want), "/p%s", path);
		FUZZ_CHECK(ev.kind == KMSG_OOM_KILL && ev.pid == pid && !strcmp(ev.comm, comm) &&
		               !strcmp(ev.task_memcg, want) && !strcmp(ev.oom_memcg, want),
		           "%s -> pid %d comm '%s' memcg '%s'", rec, ev.pid, ev.comm,
		           ev.task_memcg);
	}
	return 0;
}
