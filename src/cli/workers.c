/* workers.c - the head's side of `corral run --slurm` and `corral run
 * --workers CMD --nodes LIST` (design §10): which nodes, one launcher
 * command per node, and what the head says about its workers on stderr.
 * The protocol, a worker's loss and the retries elsewhere are libcorral's
 * (attempt_remote.c, policy.c).
 *
 * --slurm: the nodes of the allocation (SLURM_JOB_NODELIST, expanded by
 * `scontrol show hostnames`), or those of --nodes among them; on each, one
 *   srun --nodes=1 --ntasks=1 --nodelist=NODE --overlap --whole
 *        --cpu-bind=none --kill-on-bad-exit=1 --job-name=corral-worker
 *        <this corral> worker [--no-cgroups] [--cgroup-parent P] [--cgroups M]
 * (one job step per node for the whole batch: --overlap so that the steps
 * share the allocation, --whole so that each gets all of its node's CPUs;
 * srun reads SLURM_JOB_ID from the environment). --workers: CMD with {node}
 * replaced, run by /bin/sh -c (node names are checked: no shell syntax gets
 * in).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define MAX_NODES 64 /* CORRAL_MAX_SITES */

struct nodes {
	char *v[MAX_NODES];
	size_t n;
};

static bool node_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-' || ch == '@' || ch == ':' || ch == '+';
}

static void add_node(struct nodes *l, const char *name, size_t len, const char *what)
{
	if (len == 0)
		die("an empty node name in %s", what);
	if (len > 63)
		die("node name '%.*s' in %s is longer than 63 characters", (int)len, name, what);
	for (size_t i = 0; i < len; i++)
		if (!node_char(name[i]))
			die("invalid node name '%.*s' in %s: letters, digits and . _ - @ : + only",
			    (int)len, name, what);
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && !memcmp(l->v[i], name, len))
			die("node '%.*s' appears twice in %s", (int)len, name, what);
	if (l->n == MAX_NODES)
		die("more than %d nodes in %s: corral runs at most %d workers", MAX_NODES, what,
		    MAX_NODES);
	l->v[l->n] = strndup(name, len);
	if (!l->v[l->n])
		die("out of memory");
	l->n++;
}

/* One element: "name" or "pre[1-3,07-09]suf" (one bracket group). */
static void expand_one(struct nodes *l, const char *e, size_t len, const char *what)
{
	const char *lb = memchr(e, '[', len);

	if (!lb) {
		add_node(l, e, len, what);
		return;
	}
	const char *rb = memchr(lb, ']', len - (size_t)(lb - e));
	if (!rb)
		die("invalid node list '%.*s' in %s: a '[' without ']'", (int)len, e, what);
	const char *suf = rb + 1;
	size_t suflen = len - (size_t)(suf - e);
	if (memchr(suf, '[', suflen))
		die("invalid node list '%.*s' in %s: one [range] per name (give the rest "
		    "separately, comma-separated)",
		    (int)len, e, what);
	const char *p = lb + 1;
	while (p < rb) {
		const char *end = memchr(p, ',', (size_t)(rb - p));
		if (!end)
			end = rb;
		char lo[24], hi[24];
		const char *dash = memchr(p, '-', (size_t)(end - p));
		size_t la = (size_t)((dash ? dash : end) - p);
		size_t lh = dash ? (size_t)(end - dash - 1) : la;
		if (la == 0 || la >= sizeof(lo) || lh == 0 || lh >= sizeof(hi))
			die("invalid range '%.*s' in %s", (int)(end - p), p, what);
		memcpy(lo, p, la);
		lo[la] = '\0';
		memcpy(hi, dash ? dash + 1 : p, lh);
		hi[lh] = '\0';
		char *x, *y;
		errno = 0;
		unsigned long a = strtoul(lo, &x, 10), b = strtoul(hi, &y, 10);
		if (*x || *y || errno || lo[0] == '-' || hi[0] == '-' || a > b)
			die("invalid range '%.*s' in %s: expected N or N-M with N <= M",
			    (int)(end - p), p, what);
		if (b - a >= MAX_NODES)
			die("range '%.*s' in %s has more than %d nodes", (int)(end - p), p, what,
			    MAX_NODES);
		int width = lo[0] == '0' && la > 1 ? (int)la : 0;
		for (unsigned long k = a; k <= b; k++) {
			char name[160];
			int n = snprintf(name, sizeof(name), "%.*s%0*lu%.*s", (int)(lb - e), e,
			                 width, k, (int)suflen, suf);
			add_node(l, name,
			         n > 0 && (size_t)n < sizeof(name) ? (size_t)n : sizeof(name),
			         what);
		}
		p = end < rb ? end + 1 : rb;
	}
}

/* "a,b,c" and "pre[1-3,5]suf,other": commas inside brackets are ranges'. */
static void expand(struct nodes *l, const char *list, const char *what)
{
	const char *p = list;

	while (*p) {
		const char *q = p;
		int depth = 0;
		while (*q && (depth || *q != ',')) {
			if (*q == '[')
				depth++;
			else if (*q == ']' && depth)
				depth--;
			q++;
		}
		expand_one(l, p, (size_t)(q - p), what);
		p = *q ? q + 1 : q;
	}
	if (!l->n)
		die("no nodes in %s", what);
}

/* `scontrol show hostnames LIST`: 0 with the names, -1 when it cannot run. */
static int scontrol_hostnames(struct nodes *l, const char *list)
{
	int p[2];
	char *argv[] = {"scontrol", "show", "hostnames", (char *)list, NULL};

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork(); /* before any thread or task of ours */
	if (pid == 0) {
		dup2(p[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	struct sbuf b = {0};
	char buf[4096];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		sbuf_add(&b, buf, (size_t)n);
	}
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !b.len) {
		sbuf_free(&b);
		return -1;
	}
	for (char *s = b.p; *s;) {
		char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (len)
			add_node(l, s, len, "SLURM_JOB_NODELIST");
		if (!nl)
			break;
		s = nl + 1;
	}
	sbuf_free(&b);
	return l->n ? 0 : -1;
}

static void slurm_nodes(struct cli *c, struct nodes *l)
{
	const char *list = getenv("SLURM_JOB_NODELIST");

	if (!getenv("SLURM_JOB_ID"))
		die("--slurm runs inside a Slurm allocation (an sbatch script, or salloc): "
		    "SLURM_JOB_ID is not set");
	if (!list || !*list)
		list = getenv("SLURM_NODELIST");
	if (!list || !*list)
		die("--slurm: SLURM_JOB_NODELIST is not set, so the allocation's nodes are "
		    "unknown");
	if (scontrol_hostnames(l, list) < 0) {
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		l->n = 0;
		expand(l, list, "SLURM_JOB_NODELIST"); /* simple lists, without scontrol */
	}
	if (!c->nodes_arg)
		return;
	/* --nodes: a subset of the allocation. */
	struct nodes want = {0};
	expand(&want, c->nodes_arg, "--nodes");
	for (size_t i = 0; i < want.n; i++) {
		bool found = false;
		for (size_t k = 0; k < l->n && !found; k++)
			found = !strcmp(want.v[i], l->v[k]);
		if (!found)
			die("node '%s' of --nodes is not in this allocation (%s)", want.v[i], list);
	}
	for (size_t k = 0; k < l->n; k++)
		free(l->v[k]);
	*l = want;
}

/* The worker's own options: the node-local ones the head was given. */
static size_t worker_args(const struct cli *c, const char **av, size_t n)
{
	av[n++] = "worker";
	if (c->o.no_cgroups) {
		av[n++] = "--no-cgroups";
	} else {
		if (c->o.cgroup_parent) {
			av[n++] = "--cgroup-parent";
			av[n++] = c->o.cgroup_parent;
		}
		if (c->o.cgroups != CORRAL_CGROUPS_AUTO) {
			av[n++] = "--cgroups";
			av[n++] = corral_cgroups_name(c->o.cgroups);
		}
	}
	return n;
}

void cli_workers_start(struct cli *c, corral_executor_t *ex)
{
	struct nodes l = {0};
	char exe[PATH_MAX];
	corral_error_t err;

	if (c->slurm)
		slurm_nodes(c, &l);
	else
		expand(&l, c->nodes_arg, "--nodes");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		die("cannot find this corral's path (/proc/self/exe): %s", strerror(errno));
	exe[n] = '\0';

	for (size_t i = 0; i < l.n; i++) {
		const char *av[24];
		size_t k = 0;
		char nodelist[96];
		struct sbuf cmd = {0};
		if (c->slurm) {
			snprintf(nodelist, sizeof(nodelist), "--nodelist=%s", l.v[i]);
			av[k++] = "srun";
			av[k++] = "--nodes=1";
			av[k++] = "--ntasks=1";
			av[k++] = nodelist;
			av[k++] = "--overlap";
			av[k++] = "--whole";
			av[k++] = "--cpu-bind=none";
			av[k++] = "--kill-on-bad-exit=1";
			av[k++] = "--job-name=corral-worker";
			av[k++] = exe;
			k = worker_args(c, av, k);
		} else {
			/* The template, {node} replaced; node names hold no shell
			 * syntax (add_node). */
			sbuf_reset(&cmd);
			for (const char *p = c->workers_tmpl; *p;) {
				if (!strncmp(p, "{node}", 6)) {
					sbuf_add(&cmd, l.v[i], strlen(l.v[i]));
					p += 6;
				} else {
					sbuf_addc(&cmd, *p++);
				}
			}
			av[k++] = "/bin/sh";
			av[k++] = "-c";
			av[k++] = cmd.p;
		}
		av[k] = NULL;
		if (corral_add_worker(ex, l.v[i], av, c->node_jobs, &err) < 0) {
			corral_executor_free(ex);
			die("%s", err.msg);
		}
		sbuf_free(&cmd);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	if (c->verbose)
		warnx_("%zu worker%s starting (%s)", l.n, l.n == 1 ? "" : "s",
		       c->slurm ? "srun per node" : "--workers");
}

/* Say what changed: a worker ready (with -v; a notice always, unless -q),
 * a worker lost (always: tasks it ran end lost and run elsewhere). */
void cli_workers_notice(struct cli *c, corral_executor_t *ex)
{
	static unsigned char said[MAX_NODES]; /* bit 0 ready, bit 1 lost */
	corral_worker_info_t w;

	for (unsigned i = 0; i < MAX_NODES && corral_worker_info(ex, i, &w) == 0; i++) {
		if (w.state == CORRAL_WORKER_READY && !(said[i] & 1)) {
			said[i] |= 1;
			if (c->verbose)
				warnx_("worker %s ready%s%s: %u tasks at once, cgroup %s, provider "
				       "%s, "
				       "kernel %s",
				       w.name, strcmp(w.name, w.node) ? " on " : "",
				       strcmp(w.name, w.node) ? w.node : "", w.jobs,
				       corral_cgroup_mode_name((corral_cgroup_mode_t)w.cgroup_mode),
				       w.provider, w.kernel);
			if (w.why[0] && !c->quiet)
				warnx_("warning: worker %s: %s", w.name, w.why);
		}
		if (w.state == CORRAL_WORKER_LOST && !(said[i] & 2)) {
			said[i] |= 2;
			warnx_("worker %s lost: %s", w.name, w.why);
		}
	}
}
