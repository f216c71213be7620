/* testlib.c - helpers shared by the unit and integration tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "testlib.h"

void tl_skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "SKIPPED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(77);
}

char *tl_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/corral-unit-XXXXXX", base) < 0)
		abort();
	if (!mkdtemp(p))
		abort();
	return p;
}

static void rm_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			rm_at(dirfd(d), e->d_name);
		}
		if (d)
			closedir(d);
		unlinkat(dfd, name, AT_REMOVEDIR);
	} else {
		unlinkat(dfd, name, 0);
	}
}

void tl_rm_rf(const char *path)
{
	rm_at(AT_FDCWD, path);
}

void tl_mkdir_p(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	for (char *s = p + strlen(dir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

void tl_write(const char *dir, const char *rel, const char *content)
{
	char p[PATH_MAX], d[PATH_MAX];
	FILE *f;

	snprintf(d, sizeof(d), "%s", rel);
	char *slash = strrchr(d, '/');
	if (slash) {
		*slash = '\0';
		tl_mkdir_p(dir, d);
	}
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	if (!f)
		abort();
	fputs(content, f);
	fclose(f);
}

const char *tl_payload(void)
{
	const char *p = getenv("CORRAL_PAYLOAD");
	return p ? p : "corral-payload";
}

void tl_parent_create(struct tl_parent *p)
{
	struct corral__hier h;
	struct corral__hier_env env = {.probe_kernel = true};
	corral_error_t err;
	uint32_t r = 0;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0)
		tl_skip("integration tests create cgroups and need root");
	if (corral__hier_discover(&env, NULL, &h, &err) < 0)
		tl_skip("cgroup discovery failed: %s", err.msg);
	if (h.mode == CORRAL_CG_NONE || !h.has_memory)
		tl_skip("no usable memory controller here (corral check tells why)");
	if (!h.writable)
		tl_skip("our own cgroup %s is not writable", h.base_dir);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	p->mode = h.mode;
	snprintf(p->path, sizeof(p->path), "%s%scorral-test-%d-%08x",
	         strcmp(h.base_path, "/") ? h.base_path : "", "/", (int)getpid(), r);
	snprintf(p->dir, sizeof(p->dir), "%s/corral-test-%d-%08x", h.base_dir, (int)getpid(), r);
	if (mkdir(p->dir, 0755) < 0)
		tl_skip("cannot create %s: %s", p->dir, strerror(errno));
	if (h.mode == CORRAL_CG_V2) {
		/* Hand the controllers down so that corral can use them below. */
		const char *want[] = {"memory", "pids", "cpu"};
		for (size_t i = 0; i < 3; i++) {
			char v[32];
			if (!corral__list_has(h.controllers, want[i]) ||
			    !corral__list_has(h.subtree_control, want[i]))
				continue;
			snprintf(v, sizeof(v), "+%s", want[i]);
			tl_parent_write(p, "cgroup.subtree_control", v);
		}
	}
}

int tl_parent_write(const struct tl_parent *p, const char *file, const char *value)
{
	char path[PATH_MAX + 64];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", p->dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int count_dirs(const char *dir, bool corral_only)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!corral_only || !strncmp(e->d_name, "corral-", 7))
			n++;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		n += count_dirs(sub, corral_only);
	}
	closedir(d);
	return n;
}

int tl_count_corral_cgroups(const char *dir)
{
	return count_dirs(dir, true);
}

int tl_parent_destroy(struct tl_parent *p)
{
	int left;
	int fd;
	char parent[PATH_MAX], *slash;

	if (!p->dir[0])
		return 0;
	left = count_dirs(p->dir, false);
	snprintf(parent, sizeof(parent), "%s", p->dir);
	slash = strrchr(parent, '/');
	*slash = '\0';
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		corral__cg_destroy_tree(fd, slash + 1, p->mode == CORRAL_CG_V2,
		                        corral__now_ns() + 3000000000ull);
		close(fd);
	}
	p->dir[0] = '\0';
	return left;
}

bool tl_pid_alive(int pid)
{
	char path[64], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}
