/*
 * submit.c - herd --slurm-submit: the jobs as one Slurm job array,
 * submitted from a login node (docs/remote.md has the design).
 *
 * No local process stands for a job, and the whole run is one submission,
 * so this is not a backend of backend.h: submit_run reads the input whole,
 * writes the jobs (a line each: its number and its words, quoted for sh)
 * and the runner (a few variables, then submit-runner.sh) into a hidden
 * directory under the current one, which the nodes see, and submits
 *
 *   sbatch --parsable --array=0-(T-1)%P DIR/run.sh
 *
 * T being the number of jobs, or MaxArraySize when there are more (task t
 * then runs jobs t, t+T, t+2T... one after another), P -j. The runner
 * leaves each job's stdout, stderr and status line in the directory.
 *
 * herd waits on its first task: it reads the new status files every 200 ms
 * (a job done: output to the printer, a joblog line, as a local run), and
 * asks squeue whether the array is still queued, less often as time goes
 * on. Once the queue holds none of its tasks, a job with no status was
 * killed. SIGINT or SIGTERM (or stdout's reader gone) cancels the array,
 * and herd waits until the queue has none of its tasks. The directory is
 * removed at the end, also after an error. Only the printer runs beside
 * this task, and shares nothing with it but the printer's channel: no lock.
 */
#define _GNU_SOURCE
#include "submit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Slurm's default MaxArraySize, used when scontrol cannot tell. */
#define DEFAULT_MAX_ARRAY 1001
#define SCAN_EVERY (200 * HERD_MSEC)
#define QUEUE_EVERY_MAX (15 * HERD_SEC)
#define LATE_GRACE (5 * HERD_SEC)
/* How long a Slurm command may take before it counts as failed. */
#define SLURM_CMD_TIME (120 * HERD_SEC)

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

static void check_options(const struct opts *o)
{
	const char *bad = o->pipe ? "--pipe"
		: o->output == OUT_UNGROUP ? "-u"
		: o->output == OUT_LINE ? "--line-buffer"
		: o->nsshlogin || o->slf ? "-S or --slf"
		: o->slurm ? "--slurm"
		: o->timeout_pct > 0 ? "--timeout N%"
		: o->halt.when != HALT_NEVER ? "--halt"
		: o->delay_ns ? "--delay"
		: o->load > 0 || o->memfree ? "--load or --memfree"
		: o->progress || o->eta || o->bar ? "--progress, --eta or --bar"
		: o->trace || o->trace_html ? "--trace"
		: o->ntf || o->nret || o->nbf || o->cleanup || o->wd ? "--transferfile, --return, "
								     "--basefile or --wd"
		: NULL;
	if (bad)
		cli_usage_error("--slurm-submit: not with %s", bad);
}

/* ------------------------------------------------------------------ */
/* Slurm's commands                                                   */
/* ------------------------------------------------------------------ */

/* Runs argv to its end, its output in *r: 0, or -ENOENT when it is not
 * in PATH (or another error of herd_proc_output). */
static int slurm_cmd(char *const *argv, herd_output *r)
{
	herd_proc_opts po = {.argv = argv};
	return herd_proc_output(r, NULL, &po, 1 << 20, 0, herd_deadline(SLURM_CMD_TIME));
}

/* The first line of s (at most 300 bytes), for a message. */
static char *first_line(const char *s)
{
	s = s ? s : "";
	size_t n = strcspn(s, "\n");
	return message("%.*s", (int)(n > 300 ? 300 : n), s);
}

/* The site's MaxArraySize, or Slurm's default if scontrol cannot tell. */
static long max_array_size(void)
{
	char *argv[] = {"scontrol", "show", "config", NULL};
	herd_output r;
	long v = DEFAULT_MAX_ARRAY;
	if (slurm_cmd(argv, &r) == 0 && r.status == 0) {
		const char *p = strstr(r.out, "MaxArraySize");
		if (p && (p = strchr(p, '=')))
			v = strtol(p + 1, NULL, 10);
	}
	herd_output_free(&r);
	return v > 0 ? v : 1;
}

/* Whether the queue has none of the array's tasks: 1, 0, or -1 when
 * squeue failed (said once). */
static int queue_gone(struct submit *S)
{
	char *argv[] = {"squeue", "-h", "-j", S->id, "-o", "%i", NULL};
	herd_output r;
	int rc = slurm_cmd(argv, &r), gone = -1;
	if (rc == 0 && r.status == 0)
		gone = strspn(r.out, " \t\n") == r.out_len;
	else if (rc == 0 && r.err && strstr(r.err, "Invalid job id"))
		gone = 1; /* Slurm has forgotten it: long done */
	if (gone < 0 && !S->squeue_failed) {
		S->squeue_failed = true;
		char *line = first_line(rc ? herd_strerror(rc) : r.err);
		cli_warn("squeue failed (%s); trying again", line);
		free(line);
	}
	herd_output_free(&r);
	return gone;
}

/* scancel with the extra argument `what` (or none), for the array. */
static void scancel(struct submit *S, const char *what)
{
	char *argv[] = {"scancel", (char *)what, S->id, NULL};
	if (!what) {
		argv[1] = S->id;
		argv[2] = NULL;
	}
	herd_output r;
	int rc = slurm_cmd(argv, &r);
	/* A task that has ended meanwhile is no failure. */
	if (rc || (r.status && (!r.err || (!strstr(r.err, "Invalid job id") &&
				    !strstr(r.err, "already"))))) {
		char *line = first_line(rc ? herd_strerror(rc) : r.err);
		cli_warn("scancel %s failed: %s", S->id, line);
		free(line);
	}
	herd_output_free(&r);
}

/* ------------------------------------------------------------------ */
/* The jobs                                                           */
/* ------------------------------------------------------------------ */

static struct result *new_result(uint64_t seq)
{
	struct result *res = calloc(1, sizeof *res);
	if (!res)
		cli_die("out of memory");
	res->seq = seq;
	return res;
}

static void add_job(struct submit *S, size_t *cap, struct sjob j)
{
	if (joblog_skip(S->joblog, j.seq)) {
		/* --resume: done before; an empty result keeps -k's order. */
		printer_put(S->printer, new_result(j.seq));
		record_free(&j.rec);
		free(j.shell);
		return;
	}
	if (S->n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		S->jobs = xrealloc(S->jobs, *cap * sizeof *S->jobs);
	}
	S->jobs[S->n++] = j;
}

/* The jobs of the input (or of the joblog, --retry-failed). False if the
 * input failed. */
static bool read_jobs(struct submit *S)
{
	size_t cap = 0;
	if (S->o->resume == RETRY_FAILED) {
		uint64_t *seqs;
		char **cmds;
		size_t n = joblog_failed(S->joblog, &seqs, &cmds);
		for (size_t i = 0; i < n; i++)
			add_job(S, &cap, (struct sjob){.seq = seqs[i], .shell = xstrdup(cmds[i])});
		free(seqs);
		free(cmds);
		return true;
	}
	struct input *in = input_open(S->o);
	if (!in)
		return false;
	struct record rec;
	uint64_t seq = 0;
	int r;
	while ((r = input_next(in, &rec)) > 0)
		add_job(S, &cap, (struct sjob){.seq = ++seq, .rec = rec});
	input_close(in);
	return r == 0;
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = ((const struct sjob *)a)->seq, y = ((const struct sjob *)b)->seq;
	return x < y ? -1 : x > y;
}

/* Each job's command and tag; its slot ({%}) is its task's: t % P + 1. */
static void expand_jobs(struct submit *S)
{
	qsort(S->jobs, S->n, sizeof *S->jobs, by_seq);
	for (size_t i = 0; i < S->n; i++) {
		struct sjob *j = &S->jobs[i];
		long slot = (long)(i % (size_t)S->tasks) % S->o->jobs + 1;
		if (j->shell) {
			j->cmd.shell = j->shell;
			j->cmd.display = xstrdup(j->shell);
			j->shell = NULL;
		} else if (template_expand(S->tpl, &j->rec, j->seq, slot, &j->cmd) < 0) {
			cli_die("out of memory");
		}
		j->tag = template_tag(S->tpl, &j->rec, j->seq, slot);
		if (S->o->verbose) { /* -t: the commands, as they are submitted */
			struct result *res = new_result(j->seq);
			res->err = capture_new();
			res->immediate = true;
			capture_add(res->err, j->cmd.display, strlen(j->cmd.display));
			capture_add(res->err, "\n", 1);
			printer_put(S->printer, res);
		}
	}
	S->left = S->n;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A file into a capture (none: an empty one). */
static struct capture *read_capture(const char *path)
{
	struct capture *c = capture_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = fd >= 0 ? xmalloc(64 * 1024) : NULL;
	for (ssize_t n; fd >= 0 && (n = read(fd, buf, 64 * 1024)) > 0;)
		capture_add(c, buf, (size_t)n);
	free(buf);
	if (fd >= 0)
		close(fd);
	return c;
}

/* A job that ended: its output to the printer, its joblog line, as
 * run.c's job_task does. status is as herd_proc_wait stores it. */
static void job_done(struct submit *S, struct sjob *j, int status, bool timed_out,
		     const char *host, double start, double end, char *msg, bool dropped)
{
	struct result *res = new_result(j->seq);
	res->tag = j->tag;
	res->message = msg;
	res->dropped = dropped;
	j->tag = NULL;
	char *o = submit_path(S, "o", j->seq), *e = submit_path(S, "e", j->seq);
	char *r = submit_path(S, "r", j->seq);
	res->out = read_capture(o);
	res->err = read_capture(e);
	unlink(o);
	unlink(e);
	unlink(r);
	free(o);
	free(e);
	free(r);
	int exitval = status < 256 ? status : timed_out ? -1 : 0;
	int sig = status >= 256 ? status - 256 : 0;
	joblog_write(S->joblog, j->seq, host, start, end > start ? end - start : 0,
		     capture_size(res->out), exitval, sig, j->cmd.display);
	if (status || timed_out)
		S->failed++;
	j->done = true;
	S->left--;
	printer_put(S->printer, res);
}

/* Reads the status file of job j, if it is there: whether it was. */
static bool read_status(struct submit *S, struct sjob *j)
{
	char *path = submit_path(S, "s", j->seq);
	FILE *f = fopen(path, "re");
	int rc, to;
	double start, end;
	char host[256];
	bool ok = f && fscanf(f, "%d %d %lf %lf %255s", &rc, &to, &start, &end, host) == 5;
	if (f)
		fclose(f);
	unlink(path);
	free(path);
	if (!ok)
		return false;
	/* As locally: a job --timeout ended shows the first signal sent. */
	int status = to ? 256 + S->o->term[0].sig : rc;
	char *msg = to ? message(CLI_NAME ": this job timed out and was ended: %s",
				 j->cmd.display)
		       : NULL;
	job_done(S, j, status, to, host, start, end, msg, false);
	return true;
}

/* Collects every job whose status file has appeared. */
static void scan(struct submit *S)
{
	DIR *d = opendir(S->dir);
	if (!d)
		return;
	for (struct dirent *e; S->left && (e = readdir(d));) {
		char *end;
		if (e->d_name[0] != 's' || e->d_name[1] != '.')
			continue;
		struct sjob key = {.seq = strtoull(e->d_name + 2, &end, 10)};
		struct sjob *j = *end ? NULL : bsearch(&key, S->jobs, S->n, sizeof key, by_seq);
		if (j && !j->done)
			read_status(S, j);
	}
	closedir(d);
}

/* The queue holds none of the array's tasks: the jobs with no status were
 * killed (by herd's scancel: as a local run's stopped jobs, if they had
 * started), or never ran. */
static void finish_missing(struct submit *S)
{
	for (size_t i = 0; i < S->n && S->left; i++) {
		struct sjob *j = &S->jobs[i];
		if (j->done || read_status(S, j))
			continue;
		/* Whether it started (its node and start time), and when herd
		 * learned that it had ended. */
		char *path = submit_path(S, "r", j->seq), host[256] = "-";
		FILE *f = fopen(path, "re");
		double start = 0, end = wall_now();
		bool started = f && fscanf(f, "%lf %255s", &start, host) == 2;
		if (f)
			fclose(f);
		free(path);
		if (S->cancels || S->hup) {
			if (started)
				job_done(S, j, 256 + S->o->term[0].sig, false, host, start, end, NULL,
					 S->cancels > 0);
			continue;
		}
		char *msg = message(CLI_NAME ": job %llu ended with no status (its array task was "
				    "canceled, reached its time limit or its node failed; or the "
				    "nodes do not see %s): %s",
				    (unsigned long long)j->seq, S->dir, j->cmd.display);
		job_done(S, j, 256 + SIGKILL, false, host, start, started ? end : 0, msg, false);
	}
}

/* ------------------------------------------------------------------ */
/* The run                                                            */
/* ------------------------------------------------------------------ */

/* Submits the array: its job id in S->id, or false after a message. */
static bool submit_array(struct submit *S)
{
	char *array = message("--array=0-%ld%%%ld", S->tasks - 1,
			      S->o->jobs < S->tasks ? S->o->jobs : S->tasks);
	char *out = message("--output=%s/task-%%a.log", strrchr(S->dir, '/') + 1);
	char *script = message("%s/run.sh", S->dir);
	char *argv[] = {"sbatch", "--parsable", "--job-name=herd", array, out, script, NULL};
	if (getenv("SBATCH_JOB_NAME"))
		memmove(&argv[2], &argv[3], 4 * sizeof *argv); /* the user's name */
	herd_output r;
	int rc = slurm_cmd(argv, &r);
	free(array);
	free(out);
	free(script);
	if (rc == -ENOENT) {
		cli_warn("--slurm-submit: sbatch is not in PATH");
	} else if (rc < 0) {
		cli_warn("--slurm-submit: sbatch: %s", herd_strerror(rc));
	} else if (r.status != 0 || !r.out_len || r.out[0] < '0' || r.out[0] > '9') {
		char *line = first_line(r.err && *r.err ? r.err : r.out);
		cli_warn("--slurm-submit: sbatch failed: %s", line);
		free(line);
	} else {
		S->id = message("%.*s", (int)strspn(r.out, "0123456789"), r.out);
	}
	herd_output_free(&r);
	return S->id != NULL;
}

/* A signal (or stdout's reader gone: sig 0) while the array runs. */
static void on_signal(struct submit *S, int sig)
{
	if (sig == SIGHUP) {
		/* As locally: no new job starts; the running ones finish. */
		if (!S->hup && !S->cancels)
			scancel(S, "--state=PENDING");
		S->hup = true;
		return;
	}
	if (++S->cancels == 1)
		scancel(S, NULL);
	else if (S->cancels == 2)
		scancel(S, "--signal=KILL");
}

/* Waits until the queue has none of the array's tasks, collecting the jobs
 * as their status files come. False if herd left before (a third
 * signal). */
static bool wait_array(struct submit *S)
{
	int64_t gap = HERD_SEC, next = herd_now() + gap;
	bool stop_seen = false;
	for (;;) {
		int sig;
		herd_case cs[2] = {HERD_CASE_RECV(S->sigs, &sig), HERD_CASE_RECV(S->stop, NULL)};
		int k = herd_select(cs, stop_seen ? 1 : 2, herd_deadline(SCAN_EVERY));
		if (k == 0 || k == 1) {
			stop_seen |= k == 1;
			on_signal(S, k == 0 ? sig : 0);
			if (S->cancels > 2)
				return false;
		}
		scan(S);
		if (S->left && !S->cancels && herd_now() < next)
			continue;
		if (queue_gone(S) == 1)
			break;
		if (S->left && !S->cancels) {
			/* A long run: ask slurmctld less often. */
			gap = gap * 3 / 2 > QUEUE_EVERY_MAX ? QUEUE_EVERY_MAX : gap * 3 / 2;
			next = herd_now() + gap;
		}
	}
	/* A status written on a node may show here a little later (NFS
	 * caches directories): a job is counted as killed after a grace. */
	int sig;
	for (int64_t end = herd_now() + LATE_GRACE; S->left && !S->cancels && herd_now() < end;
	     scan(S))
		if (herd_chan_recv(S->sigs, &sig, herd_deadline(SCAN_EVERY)) == 0)
			S->cancels += sig != SIGHUP; /* the array has gone: no scancel */
	scan(S);
	finish_missing(S);
	return true;
}

/* Makes the submit directory, writes the files and submits the array:
 * false after a message. */
static bool start(struct submit *S)
{
	char cwd[4096];
	if (!getcwd(cwd, sizeof cwd)) {
		cli_warn("--slurm-submit: the current directory: %s", strerror(errno));
		return false;
	}
	char *tmpl = message("%s/.herd-submit-XXXXXX", cwd);
	if (!mkdtemp(tmpl)) {
		cli_warn("--slurm-submit: cannot make a directory in %s: %s", cwd, strerror(errno));
		free(tmpl);
		return false;
	}
	S->dir = tmpl;
	if (!submit_write_jobs(S) || !submit_write_runner(S)) {
		cli_warn("--slurm-submit: cannot write in %s: %s", S->dir, strerror(errno));
		return false;
	}
	return submit_array(S);
}

int submit_run(const struct opts *o)
{
	check_options(o);
	struct submit *S = calloc(1, sizeof *S);
	herd_scope *aux;
	if (!S || herd_chan_make(&S->stop, 0, 0) < 0 || herd_scope_open(&aux) < 0 ||
	    herd_chan_make(&S->sigs, sizeof(int), 8) < 0)
		cli_die("out of memory");
	S->o = o;
	S->tpl = template_compile(o);
	S->joblog = joblog_open(o);
	S->printer = printer_start(o, aux, S->stop);
	bool input_failed = !read_jobs(S), ok = true;
	if (S->n) {
		S->tasks = max_array_size();
		if ((size_t)S->tasks > S->n)
			S->tasks = (long)S->n;
		expand_jobs(S);
		/* From here Ctrl-C cancels the array instead of ending herd. */
		herd_signal_notify(S->sigs, SIGINT);
		herd_signal_notify(S->sigs, SIGTERM);
		herd_signal_notify(S->sigs, SIGHUP);
		ok = start(S) && wait_array(S);
		if (S->id && !ok)
			cli_warn("left while the array was being canceled: scancel %s", S->id);
		else
			submit_remove_dir(S);
		herd_signal_stop(S->sigs);
	}
	printer_finish(S->printer);
	herd_scope_close(aux);
	joblog_close(S->joblog);
	int status = output_broken() ? 128 + SIGPIPE
		     : !ok || S->cancels || input_failed ? EXIT_ERROR
		     : S->failed > 100 ? 101 : (int)S->failed;
	for (size_t i = 0; i < S->n; i++) {
		record_free(&S->jobs[i].rec);
		command_free(&S->jobs[i].cmd);
		free(S->jobs[i].tag);
	}
	free(S->jobs);
	template_free(S->tpl);
	herd_chan_free(S->sigs);
	herd_chan_free(S->stop);
	free(S->dir);
	free(S->id);
	free(S);
	return status;
}
