/*
 * slurm.c - the backend of a Slurm allocation (backend.h): herd runs inside
 * `salloc` or a batch script, its slots are the allocation's tasks, and
 * each run of a job's command is a job step,
 *
 *   srun --exact -N1 -n1 -c<cpus> -QQ --input=none --job-name=herd-SEQ -- CMD
 *
 * so that Slurm places it on a free CPU of the allocation and accounts it.
 * The srun client is a local process, so the run is proc.c's as for ssh:
 * its pipes carry the step's output, its exit is the step's end, and srun
 * exits with the task's status (docs/remote-slurm-notes.md).
 *
 * When. Inside an allocation (SLURM_JOB_ID set) and not inside a step of
 * it (SLURM_STEP_ID unset: herd is the allocation's own shell or batch
 * script, not one of its tasks, nor a job herd started), unless -S, --slf,
 * --dry-run or --no-slurm; or with --slurm, which outside an allocation is
 * an error (EXIT_ERROR).
 *
 * Ending a step. SIGTERM to srun ends the step, Slurm's proctrack ending
 * its whole tree (setsid escapees too, with proctrack/cgroup), and srun
 * exits when it has. SIGKILL to srun would leave the step running, so no
 * signal herd sends becomes a SIGKILL of srun: KILL and INT (one SIGINT
 * only makes srun print the step's state) go as TERM, the others (USR1,
 * HUP...) as they are, which srun forwards to the task. libherd's own
 * ending of a process (SIGTERM, then SIGKILL after the grace) gets a grace
 * longer than Slurm's default KillWait (30 s).
 *
 * Where. With several nodes, each slot is pinned to the node of one of
 * the allocation's tasks (SLURM_JOB_NODELIST expanded, each node named
 * SLURM_TASKS_PER_NODE times) and its steps get `-w NODE`: so the joblog's
 * Host (and {host}) is the node the step ran on. With one node, or lists
 * not understood here, no -w, and the node list is the Host.
 *
 * Nothing here is shared between tasks once the backend is open: the
 * struct is read-only, so there is no lock.
 */
#define _GNU_SOURCE
#include "backend.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libherd's grace between SIGTERM and SIGKILL for an srun it ends itself:
 * past KillWait's default, so that srun has ended the step. */
#define SRUN_GRACE (35 * HERD_SEC)

struct slurm {
	struct backend b;
	const struct opts *o;
	char cpus[32];          /* -c<cpus per job> */
	char *host;             /* the joblog's Host, unpinned */
	const char **task_node; /* pinned: each task's node (in names) */
	size_t ntasks;
	char **names;           /* the allocation's nodes */
	size_t nnames;
};

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* Whether `prog` is an executable file in PATH. */
static bool in_path(const char *prog)
{
	const char *path = env_or("PATH", "/usr/bin:/bin");
	char buf[4096];
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? p : ".", prog) <
			    (int)sizeof buf &&
		    access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

bool slurm_wanted(const struct opts *o)
{
	if (o->no_slurm)
		return false;
	const char *job = getenv("SLURM_JOB_ID");
	bool hosts = o->nsshlogin || o->slf;
	if (o->slurm) {
		if (hosts)
			cli_usage_error("--slurm: not with -S or --slf");
		if (!job || !*job)
			cli_die("--slurm: not inside a Slurm allocation (SLURM_JOB_ID is not set; "
				"run herd in salloc or sbatch)");
		if (!in_path("srun"))
			cli_die("--slurm: srun is not in PATH");
		return true;
	}
	if (!job || !*job || getenv("SLURM_STEP_ID") || hosts || o->dry_run)
		return false;
	if (!in_path("srun")) {
		cli_warn("SLURM_JOB_ID is set but srun is not in PATH: the jobs run here");
		return false;
	}
	return true;
}

/* A per-node list of Slurm's ("2", "2(x3),4"): the nodes' values in
 * out[0..max) (out may be NULL), their sum in *sum; the number of nodes it
 * names, or -1 if it is malformed (or, with out, names more than max). */
static long per_node(const char *s, long *out, size_t max, long *sum)
{
	long nodes = 0;
	*sum = 0;
	while (s && *s) {
		char *end;
		long n = strtol(s, &end, 10), times = 1;
		if (end == s || n < 0)
			return -1;
		if (!strncmp(end, "(x", 2)) {
			times = strtol(end + 2, &end, 10);
			if (*end++ != ')' || times < 1 || times > 1000000)
				return -1;
		}
		for (long i = 0; i < times; i++, nodes++) {
			if (out && (size_t)nodes >= max)
				return -1;
			if (out)
				out[nodes] = n;
		}
		*sum += n * times;
		if (*end && *end != ',')
			return -1;
		s = *end ? end + 1 : end;
	}
	return nodes;
}

/* The CPUs of SLURM_JOB_CPUS_PER_NODE: their sum, or 0. */
static long cpus_per_node_sum(const char *s)
{
	long sum;
	return per_node(s, NULL, 0, &sum) < 0 ? 0 : sum;
}

static long env_long(const char *name)
{
	long v;
	const char *s = getenv(name);
	return s && parse_long(s, &v) == 0 && v > 0 ? v : 0;
}

/* The allocation's tasks: SLURM_NTASKS (-n), else its CPUs over -c. */
static long allocation_slots(long cpus_per_task)
{
	long n = env_long("SLURM_NTASKS");
	if (!n)
		n = env_long("SLURM_NPROCS");
	if (!n)
		n = cpus_per_node_sum(getenv("SLURM_JOB_CPUS_PER_NODE")) / cpus_per_task;
	return n > 0 ? n : 1;
}

/* The joblog's Host when slots are not pinned (pin_slots): the
 * allocation's node, or its node list. */
static char *allocation_host(void)
{
	const char *nodes = getenv("SLURM_JOB_NODELIST");
	if (!nodes || !*nodes)
		nodes = getenv("SLURM_NODELIST");
	if (!nodes || !*nodes)
		nodes = env_or("SLURMD_NODENAME", "slurm");
	return xstrdup(nodes);
}

/* The most nodes and tasks herd pins slots to (beyond, it does not). */
#define MAX_PINNED 65536

/* Adds the names of one hostlist entry ("n7", "n[01-03,9]x") to *v:
 * false if it is of a form not understood here (two bracket groups). */
static bool expand_entry(const char *e, size_t len, char ***v, size_t *n)
{
	const char *open = memchr(e, '[', len);
	const char *close = open ? memchr(open, ']', len - (size_t)(open - e)) : NULL;
	if (!open) {
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = strndup(e, len);
		return (*v)[*n - 1] != NULL;
	}
	const char *suffix = close ? close + 1 : NULL;
	if (!close || memchr(suffix, '[', len - (size_t)(suffix - e)))
		return false;
	for (const char *r = open + 1; r < close;) {
		char *end;
		long lo = strtol(r, &end, 10), hi = lo;
		int width = (int)(end - r);
		if (end == r || lo < 0)
			return false;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (hi < lo || (*end != ',' && end != close) || *n + (size_t)(hi - lo) >= MAX_PINNED)
			return false;
		for (long i = lo; i <= hi; i++) {
			*v = xrealloc(*v, (*n + 1) * sizeof **v);
			if (asprintf(&(*v)[*n], "%.*s%0*ld%.*s", (int)(open - e), e, width, i,
				     (int)(len - (size_t)(suffix - e)), suffix) < 0)
				return false;
			(*n)++;
		}
		r = end + (end != close);
	}
	return true;
}

/* SLURM_JOB_NODELIST's names, expanded ("n[1-2],g" is n1 n2 g): NULL if
 * it is missing or of a form not understood here. */
static char **node_names(size_t *n)
{
	const char *s = getenv("SLURM_JOB_NODELIST");
	if (!s || !*s)
		s = getenv("SLURM_NODELIST");
	char **v = NULL;
	*n = 0;
	while (s && *s) {
		size_t len = 0;
		for (int depth = 0; s[len] && (s[len] != ',' || depth); len++)
			depth += (s[len] == '[') - (s[len] == ']');
		if (!expand_entry(s, len, &v, n)) {
			for (size_t i = 0; i < *n; i++)
				free(v[i]);
			free(v);
			*n = 0;
			return NULL;
		}
		s += len + (s[len] == ',');
	}
	return v;
}

/* With several nodes, each slot is pinned to one (srun -w): the node of
 * each of the allocation's tasks, by SLURM_TASKS_PER_NODE (else the CPUs
 * of SLURM_JOB_CPUS_PER_NODE over -c), slot s running on that of task
 * (s - 1) mod tasks. So the joblog names the step's node. Leaves
 * S->task_node NULL with one node, or when the lists do not agree. */
static void pin_slots(struct slurm *S, long cpt)
{
	size_t nn;
	char **names = node_names(&nn);
	long *per = names && nn > 1 ? xmalloc(nn * sizeof *per) : NULL, sum;
	long k = per ? per_node(getenv("SLURM_TASKS_PER_NODE"), per, nn, &sum) : -1;
	if (per && (size_t)k != nn) {
		k = per_node(getenv("SLURM_JOB_CPUS_PER_NODE"), per, nn, &sum);
		for (size_t i = 0; k >= 0 && i < nn; i++)
			per[i] /= cpt;
	}
	size_t tasks = 0;
	for (size_t i = 0; per && (size_t)k == nn && i < nn; i++)
		tasks += (size_t)(per[i] > 0 ? per[i] : 0);
	if (per && (size_t)k == nn && tasks > 0 && tasks <= MAX_PINNED) {
		S->task_node = xmalloc(tasks * sizeof *S->task_node);
		for (size_t i = 0, t = 0; i < nn; i++)
			for (long j = 0; j < per[i]; j++)
				S->task_node[t++] = names[i];
		S->ntasks = tasks;
		S->names = names;
		S->nnames = nn;
		names = NULL;
	}
	for (size_t i = 0; names && i < nn; i++)
		free(names[i]);
	free(names);
	free(per);
}

static const char *node_of(const struct slurm *S, long slot)
{
	return S->task_node ? S->task_node[(size_t)(slot - 1) % S->ntasks] : S->host;
}

/* ------------------------------------------------------------------ */
/* The operations                                                     */
/* ------------------------------------------------------------------ */

/* An argv being built: at most `cap` words. */
struct words {
	char **v;
	size_t n;
};

static void add(struct words *w, char *s)
{
	w->v[w->n++] = s;
	w->v[w->n] = NULL;
}

static int slurm_start(struct backend *b, const struct run_spec *s, struct job_run **out,
		       char **msg)
{
	struct slurm *S = (struct slurm *)b;
	const struct command *c = s->cmd;
	if (s->missing) {
		/* As here: the nodes are assumed to have what this one has. */
		*msg = message(CLI_NAME ": %s: command not found", s->missing);
		return 127;
	}
	size_t nargs = 0;
	while (c->argv && c->argv[nargs])
		nargs++;
	struct words w = {xmalloc((nargs + 16) * sizeof(char *)), 0};
	char name[48];
	snprintf(name, sizeof name, "--job-name=herd-%llu", (unsigned long long)s->seq);
	add(&w, "srun");
	add(&w, "--exact");
	add(&w, "-N1");
	add(&w, "-n1");
	add(&w, S->cpus);
	add(&w, "-QQ"); /* the task's stderr only: no "task 0: Exited" */
	if (!s->block)
		add(&w, "--input=none");
	add(&w, name);
	if (S->task_node) {
		add(&w, "-w");
		add(&w, (char *)node_of(S, s->slot));
	}
	add(&w, "--");
	if (c->argv) {
		for (size_t i = 0; i < nargs; i++)
			add(&w, c->argv[i]);
	} else {
		add(&w, "/bin/sh");
		add(&w, "-c");
		add(&w, c->shell);
	}
	/* srun hands its environment to the step (--export=ALL): the job's
	 * PARALLEL_SEQ and PARALLEL_JOBSLOT go with it. */
	char **envp = job_environment(s->seq, s->slot);
	struct launch l = {w.v, NULL, envp, SRUN_GRACE};
	int rc = proc_run_start(S->o, s, &l, out, msg);
	free_environment(envp);
	free(w.v);
	return rc;
}

static void slurm_signal(struct job_run *r, int sig)
{
	proc_run_signal(r, sig == SIGKILL || sig == SIGINT ? SIGTERM : sig);
}

static int slurm_collect(struct backend *b, const struct run_spec *s, struct job_run *r)
{
	(void)b;
	(void)s;
	int sig = proc_run_signalled(r);
	int st = proc_run_collect(r);
	/* srun exits with 128 + the signal that ended the task (137 once a
	 * step was ended): a run herd ended counts, as a local one, as ended
	 * by the signal herd sent. */
	if (sig && HERD_PROC_EXITED(st) && st > 128 && st <= 128 + 64)
		st = 256 + sig;
	return st;
}

static const char *slurm_host(struct backend *b, long slot)
{
	return node_of((struct slurm *)b, slot);
}

/* {host} and {sshlogin} (template_hosts): the joblog's Host. */
static const char *slot_host(void *ctx, long slot, bool login)
{
	(void)login;
	return slurm_host(ctx, slot);
}

static bool slurm_slot_ok(struct backend *b, long slot)
{
	(void)b;
	(void)slot;
	return true;
}

static void slurm_more_slots(struct backend *b, herd_chan *free_slots)
{
	(void)b;
	(void)free_slots;
}

static void slurm_close(struct backend *b)
{
	struct slurm *S = (struct slurm *)b;
	template_hosts(NULL, NULL);
	for (size_t i = 0; i < S->nnames; i++)
		free(S->names[i]);
	free(S->names);
	free(S->task_node);
	free(S->host);
	free(S);
}

static const struct backend_ops slurm_ops = {
	.name = "slurm",
	.start = slurm_start,
	.done = proc_run_done,
	.signal = slurm_signal,
	.collect = slurm_collect,
	.host = slurm_host,
	.slot_ok = slurm_slot_ok,
	.more_slots = slurm_more_slots,
	.close = slurm_close,
};

struct backend *slurm_open(const struct opts *o)
{
	struct slurm *S = calloc(1, sizeof *S);
	if (!S)
		cli_die("out of memory");
	S->b.ops = &slurm_ops;
	S->o = o;
	long cpt = env_long("SLURM_CPUS_PER_TASK");
	if (!cpt)
		cpt = 1;
	snprintf(S->cpus, sizeof S->cpus, "-c%ld", cpt);
	/* -j, when given, says how many steps at a time (more than the
	 * allocation holds wait in srun for a free CPU). */
	S->b.nslots = S->b.max_slots = o->jobs_set ? o->jobs : allocation_slots(cpt);
	S->host = allocation_host();
	pin_slots(S, cpt);
	template_hosts(slot_host, &S->b);
	return &S->b;
}
