/* parse.c - parsers of kernel text: flat-keyed cgroup files, /proc/self/cgroup
 * and /proc/self/mountinfo.
 *
 * Parsers take a NUL-terminated buffer and never do I/O, so unit tests (and the
 * fuzzers) feed them literal strings. Keys are matched exactly, line by line:
 * "oom" must never match "oom_kill" (the kernel selftests' strstr() does).
 */
#include <ctype.h>
#include <stdio.h>

#include "internal.h"

static int parse_u64(const char *p, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		p++;
	}
	*end = p;
	*out = v;
	return 0;
}

int corral__parse_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t llen = nl ? (size_t)(nl - line) : strlen(line);

		if (llen > klen && memcmp(line, key, klen) == 0 && line[klen] == ' ') {
			const char *end;
			uint64_t v;
			if (parse_u64(line + klen + 1, &end, &v) < 0)
				return -EINVAL;
			if (end != line + llen && *end != ' ')
				return -EINVAL;
			*out = v;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int corral__parse_u64_or_max(const char *text, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (strncmp(text, "max", 3) == 0) {
		end = text + 3;
		v = CORRAL_UNLIMITED;
	} else if (parse_u64(text, &end, &v) < 0) {
		return -EINVAL;
	}
	while (*end == '\n' || *end == ' ')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

bool corral__list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\n')
			p++;
		const char *e = p;
		while (*e && *e != ' ' && *e != ',' && *e != '\n')
			e++;
		if ((size_t)(e - p) == n && memcmp(p, name, n) == 0)
			return true;
		p = e;
	}
	return false;
}

static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int corral__parse_proc_cgroup(const char *text, struct corral__proc_cgroup *out)
{
	const char *line = text;

	memset(out, 0, sizeof(*out));
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t llen = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', llen);
		const char *c2 = c1 ? memchr(c1 + 1, ':', llen - (size_t)(c1 + 1 - line)) : NULL;

		if (!c1 || !c2)
			return -EINVAL;
		const char *ctl = c1 + 1;
		size_t ctl_len = (size_t)(c2 - ctl);
		const char *path = c2 + 1;
		size_t path_len = llen - (size_t)(path - line);
		if (path_len == 0 || path[0] != '/')
			return -EINVAL;

		if (ctl_len == 0 && c1 - line == 1 && line[0] == '0') {
			copy_field(out->v2_path, sizeof(out->v2_path), path, path_len);
			out->has_v2 = true;
		} else {
			char ctls[256];
			copy_field(ctls, sizeof(ctls), ctl, ctl_len);
			if (corral__list_has(ctls, "memory")) {
				copy_field(out->memory_path, sizeof(out->memory_path), path,
				           path_len);
				out->has_memory_v1 = true;
			}
			if (corral__list_has(ctls, "pids")) {
				copy_field(out->pids_path, sizeof(out->pids_path), path, path_len);
				out->has_pids_v1 = true;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* Copy a mountinfo field, decoding the octal escapes (\040 for a space). */
static void unescape_field(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		if (src[i] == '\\' && i + 3 < len && src[i + 1] >= '0' && src[i + 1] <= '3' &&
		    src[i + 2] >= '0' && src[i + 2] <= '7' && src[i + 3] >= '0' &&
		    src[i + 3] <= '7') {
			dst[o++] = (char)((src[i + 1] - '0') * 64 + (src[i + 2] - '0') * 8 +
			                  (src[i + 3] - '0'));
			i += 3;
		} else {
			dst[o++] = src[i];
		}
	}
	dst[o] = '\0';
}

/* Split a mountinfo line into its fields. The kernel separates them with
 * exactly one space and escapes spaces inside a field (\040), so two spaces
 * are an empty field: a mount with an empty source reads "- cgroup2  rw"
 * (mount -t cgroup2 "" DIR), and its super options are the field after it. */
static int split_fields(const char *line, size_t llen, const char **f, size_t *fl, int max)
{
	size_t i = 0;
	int nf = 0;

	while (nf < max) {
		size_t start = i;
		while (i < llen && line[i] != ' ')
			i++;
		f[nf] = line + start;
		fl[nf] = i - start;
		nf++;
		if (i >= llen)
			break;
		i++; /* the separator */
	}
	return nf;
}

/* Split a mountinfo line and tell whether it is a cgroup mount: returns 1
 * for cgroup (v1), 2 for cgroup2, 0 for anything else (or a malformed line,
 * which the kernel never writes). *nf and *sep receive the number of fields
 * and the index of the " - " separator that follows the optional fields. */
static int cgroup_mount_line(const char *line, size_t llen, const char **f, size_t *fl, int max,
                             int *nf, int *sep)
{
	*nf = split_fields(line, llen, f, fl, max);
	*sep = -1;
	for (int i = 6; i < *nf; i++) {
		if (fl[i] == 1 && f[i][0] == '-') {
			*sep = i;
			break;
		}
	}
	if (*nf < 7 || *sep < 0 || *sep + 1 >= *nf)
		return 0;
	const char *fstype = f[*sep + 1];
	size_t len = fl[*sep + 1];
	if (len == 7 && memcmp(fstype, "cgroup2", 7) == 0)
		return 2;
	if (len == 6 && memcmp(fstype, "cgroup", 6) == 0)
		return 1;
	return 0;
}

int corral__parse_mountinfo(const char *text, struct corral__mounts *out)
{
	const char *line = text;

	memset(out, 0, sizeof(*out));
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t llen = nl ? (size_t)(nl - line) : strlen(line);
		const char *f[64];
		size_t fl[64];
		int nf, sep;
		int kind = cgroup_mount_line(line, llen, f, fl, (int)ARRAY_SIZE(f), &nf, &sep);
		line = nl ? nl + 1 : NULL;
		if (!kind)
			continue;
		bool v2 = kind == 2;
		out->n_cgroup_mounts++;

		struct corral__cg_mount m;
		char opts[1024], sopts[1024];
		memset(&m, 0, sizeof(m));
		unescape_field(m.root, sizeof(m.root), f[3], fl[3]);
		unescape_field(m.mount_point, sizeof(m.mount_point), f[4], fl[4]);
		copy_field(opts, sizeof(opts), f[5], fl[5]);
		/* Source and super options may be missing from a malformed line. */
		if (sep + 3 < nf)
			copy_field(sopts, sizeof(sopts), f[sep + 3], fl[sep + 3]);
		else
			sopts[0] = '\0';
		m.v2 = v2;
		m.read_only = corral__list_has(opts, "ro");
		m.nsdelegate = corral__list_has(sopts, "nsdelegate");
		if (v2) {
			if (!out->has_v2) {
				out->v2 = m;
				out->has_v2 = true;
			}
			continue;
		}
		m.memory = corral__list_has(sopts, "memory");
		m.pids = corral__list_has(sopts, "pids");
		if (m.memory && !out->has_memory) {
			out->memory = m;
			out->has_memory = true;
		}
		if (m.pids && !out->has_pids) {
			out->pids = m;
			out->has_pids = true;
		}
	}
	return 0;
}

int corral__parse_cgroup_mount_points(const char *text, char (*out)[4096], int max)
{
	const char *line = text;
	int n = 0;

	while (line && *line && n < max) {
		const char *nl = strchr(line, '\n');
		size_t llen = nl ? (size_t)(nl - line) : strlen(line);
		const char *f[64];
		size_t fl[64];
		int nf, sep;
		int kind = cgroup_mount_line(line, llen, f, fl, (int)ARRAY_SIZE(f), &nf, &sep);
		line = nl ? nl + 1 : NULL;
		if (!kind)
			continue;
		unescape_field(out[n], 4096, f[4], fl[4]);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------ /dev/kmsg OOM reports */

/* The last occurrence of needle in [s, s+n), or NULL. */
static const char *memrmem(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	if (k > n)
		return NULL;
	for (size_t i = n - k + 1; i-- > 0;)
		if (!memcmp(s + i, needle, k))
			return s + i;
	return NULL;
}

/* The first occurrence of needle in [s, s+n), or NULL. */
static const char *memmem_(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle));
}

/* Digits at p (up to end) into *out; returns the end or NULL. */
static const char *digits(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p >= end || !isdigit((unsigned char)*p))
		return NULL;
	while (p < end && isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	*out = v;
	return p;
}

/* "key:NkB" at p: the size in bytes. */
static const char *kb_field(const char *p, const char *end, const char *key, uint64_t *out)
{
	const char *q = memmem_(p, (size_t)(end - p), key);
	uint64_t v;

	if (!q)
		return NULL;
	q = digits(q + strlen(key), end, &v);
	if (!q || end - q < 2 || q[0] != 'k' || q[1] != 'B' || v > UINT64_MAX / 1024)
		return NULL;
	*out = v * 1024;
	return q + 2;
}

int corral__parse_kmsg_oom(const char *rec, size_t len, struct corral__kmsg_oom *ev)
{
	const char *semi = memchr(rec, ';', len);
	const char *msg, *end;
	uint64_t v;

	memset(ev, 0, sizeof(*ev));
	if (!semi)
		return -EINVAL;
	msg = semi + 1;
	end = memchr(msg, '\n', len - (size_t)(msg - rec));
	if (!end)
		end = rec + len;
	size_t n = (size_t)(end - msg);

	if (n > 9 && !memcmp(msg, "oom-kill:", 9)) {
		/* oom-kill:constraint=...,oom_memcg=PATH|global_oom,task_memcg=PATH,
		 * task=COMM,pid=N,uid=N. Read from the right: the name of the
		 * task is its own (up to 15 bytes of anything), the numbers after
		 * it are the kernel's. */
		const char *uid = memrmem(msg, n, ",uid=");
		if (!uid || !digits(uid + 5, end, &v) || digits(uid + 5, end, &v) != end)
			return -EINVAL;
		const char *pid = memrmem(msg, (size_t)(uid - msg), ",pid=");
		if (!pid || digits(pid + 5, uid, &v) != uid || v == 0 || v > INT32_MAX)
			return -EINVAL;
		ev->pid = (int)v;
		const char *tm = memmem_(msg, n, ",task_memcg=");
		if (!tm || tm > pid)
			return -EINVAL;
		/* The real ",task=" is the leftmost one after the task's cgroup
		 * within reach of the pid (a name of 15 bytes or less). */
		const char *from = pid - 6 - 15 > tm ? pid - 6 - 15 : tm;
		const char *task = memmem_(from, (size_t)(pid - from), ",task=");
		if (!task)
			return -EINVAL;
		copy_field(ev->comm, sizeof(ev->comm), task + 6, (size_t)(pid - task - 6));
		copy_field(ev->task_memcg, sizeof(ev->task_memcg), tm + 12,
		           (size_t)(task - tm - 12));
		const char *om = memmem_(msg, (size_t)(tm - msg), "oom_memcg=");
		if (om)
			copy_field(ev->oom_memcg, sizeof(ev->oom_memcg), om + 10,
			           (size_t)(tm - om - 10));
		else if (memmem_(msg, (size_t)(tm - msg), ",global_oom"))
			ev->global = true;
		ev->kind = KMSG_OOM_KILL;
		return 0;
	}
	const char *kp = memmem_(msg, n, "Killed process ");
	if (kp) {
		/* ... Killed process PID (COMM) total-vm:NkB, anon-rss:NkB,
		 * file-rss:NkB, shmem-rss:NkB, UID:N pgtables:NkB oom_score_adj:N */
		const char *p = digits(kp + 15, end, &v);
		if (!p || v == 0 || v > INT32_MAX || end - p < 2 || p[0] != ' ' || p[1] != '(')
			return -EINVAL;
		ev->pid = (int)v;
		const char *tv = memrmem(p, (size_t)(end - p), ") total-vm:");
		if (!tv)
			return -EINVAL;
		copy_field(ev->comm, sizeof(ev->comm), p + 2, (size_t)(tv - p - 2));
		p = tv + 1;
		if (!(p = kb_field(p, end, "total-vm:", &ev->total_vm)) ||
		    !(p = kb_field(p, end, "anon-rss:", &ev->anon_rss)) ||
		    !(p = kb_field(p, end, "file-rss:", &ev->file_rss)) ||
		    !(p = kb_field(p, end, "shmem-rss:", &ev->shmem_rss)))
			return -EINVAL;
		const char *adj = memmem_(p, (size_t)(end - p), "oom_score_adj:");
		if (adj) {
			bool neg = adj + 14 < end && adj[14] == '-';
			if (digits(adj + 14 + neg, end, &v) && v <= 1000)
				ev->oom_score_adj = neg ? -(int)v : (int)v;
		}
		ev->kind = KMSG_KILLED;
		return 0;
	}
	return -ENOENT;
}

int corral__parse_psi(const char *text, uint64_t *some_us, uint64_t *full_us)
{
	int found = 0;

	*some_us = *full_us = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t llen = nl ? (size_t)(nl - line) : strlen(line);
		uint64_t *dst = !strncmp(line, "some ", 5)   ? some_us
		                : !strncmp(line, "full ", 5) ? full_us
		                                             : NULL;
		const char *tot = dst ? memmem_(line, llen, " total=") : NULL;
		uint64_t v;
		if (tot && digits(tot + 7, line + llen, &v) == line + llen) {
			*dst = v;
			found++;
		}
		line = nl ? nl + 1 : NULL;
	}
	return found ? 0 : -ENOENT;
}
