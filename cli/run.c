/*
 * run.c - running the jobs: so many at a time, each in a task of its own.
 *
 * The first task reads the input and, for each record, takes a free slot
 * (a buffered channel holds the free slot numbers, which are {%}) and
 * spawns a job task with its own copy of the record. A job task has the
 * backend start the command on the slot's host (backend.h: here, the
 * process itself; on an ssh host, the ssh client that runs it there), waits
 * for it in a select on its end, `stop` and `kill`, and a deadline for
 * --timeout; retries a failed job; writes the joblog line; hands its
 * output to the printer; and gives its slot back.
 *
 * Ending jobs early. `stop` is closed by SIGINT, SIGTERM, --halt now, or
 * the printer when stdout's reader has gone (EPIPE, as `| head`):
 * every job then ends its process tree by --term-seq (TERM, 200 ms, TERM,
 * 100 ms, TERM, 50 ms, KILL by default; herd_proc_signal_all reaches the
 * whole tree, setsid escapees included). `kill`, closed by a second
 * signal, kills at once. SIGHUP and --halt soon only stop the starts.
 * Whatever is left when the jobs' scope closes is ended by libherd.
 *
 * How a job's process is waited for and ended (--timeout, --term-seq) is
 * jobwait.c's; each run of a command is a slice of the trace (trace.c).
 *
 * Counters are atomics; `lock` protects the --halt decision.
 */
#define _GNU_SOURCE
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct run {
	const struct opts *o;
	struct backend *be;      /* where jobs run (backend.h) */
	struct template *tpl;
	struct printer *printer;
	struct joblog *joblog;
	struct trace *trace;     /* --trace, --trace-html: or NULL */
	herd_chan *slots;        /* free slot numbers (long) */
	herd_chan *stop;         /* closed: end the running jobs */
	herd_chan *kill;         /* closed: kill them at once */
	herd_scope *jobs;
	atomic_bool no_new;      /* start no more jobs */
	atomic_bool stopped;     /* by a signal */
	atomic_ulong started, done, ok, failed;
	pthread_mutex_t lock;
	bool halted;             /* --halt's condition was met */
	int halt_status;
	uint64_t total;          /* --halt P%: the number of jobs */
	struct job_ends ends;    /* how a job is waited for, and ended */
	struct progress *progress; /* the progress line, or NULL */
	int64_t last_start;      /* for --delay */
};

struct job {
	struct run *R;
	uint64_t seq;
	long slot;
	struct record rec;
	char *shell;             /* --retry-failed: the command from the log */
	char *block;             /* --pipe: the job's stdin */
	size_t block_len;
};

/* One run of a job's process. */
struct attempt {
	int status;              /* as herd_proc_wait stores it, or 127, 126 */
	bool timed_out;
	bool stopped;            /* ended by --halt now or a signal */
	double start, runtime;   /* wall clock, seconds */
	struct capture *out, *err;
	char *message;
};

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* A job                                                              */
/* ------------------------------------------------------------------ */

/* The run of a job's command as a slice of the trace. */
static void trace_attempt(struct run *R, const struct job *j, const struct command *cmd,
			  long retry, int64_t start, const struct attempt *a)
{
	struct trace_run tr = {j->seq, j->slot, retry, cmd->display, start, herd_now(),
			       a->status, a->timed_out, a->stopped,
			       R->be->ops->host(R->be, j->slot)};
	trace_job(R->trace, &tr);
}

/* Runs the command once (its `retry`th run again) on the job's slot,
 * filling *a. */
static void run_once(struct run *R, const struct job *j, const struct command *cmd,
		     const char *tag, long retry, struct attempt *a)
{
	const struct opts *o = R->o;
	const struct backend_ops *ops = R->be->ops;
	memset(a, 0, sizeof *a);
	struct run_spec s = {.seq = j->seq, .slot = j->slot, .cmd = cmd,
			     .rec = j->shell ? NULL : &j->rec, .from_log = j->shell,
			     .block = j->block, .block_len = j->block_len, .tag = tag};
	const char *name;
	/* The resolved path is the template's first word: only when argv[0]
	 * is that word (it is, when the command starts with a literal). */
	if (!j->shell && cmd->argv) {
		s.path = template_path(R->tpl);
		if (template_not_found(R->tpl, &name))
			s.missing = name;
	}
	/* -k --line-buffer: lines held until the job's turn, in captures. */
	s.hold = o->output == OUT_LINE && o->keep_order;
	if (o->output == OUT_GROUP || s.hold) {
		s.out = a->out = capture_new();
		s.err = a->err = capture_new();
	}
	a->start = wall_now();
	int64_t t0 = herd_now();
	struct job_proc jp = {ops, NULL};
	int rc = ops->start(R->be, &s, &jp.run, &a->message);
	if (rc) {
		a->status = rc;
		if (rc == 127 && s.missing)
			a->start = 0; /* it never started */
		trace_attempt(R, j, cmd, retry, t0, a);
		return;
	}
	struct trace_lane lane = {R->trace, j->seq, j->slot};
	job_wait(&R->ends, &lane, &jp, t0, &a->timed_out, &a->stopped);
	a->status = ops->collect(R->be, &s, jp.run);
	a->runtime = (herd_now() - t0) / 1e9;
	trace_attempt(R, j, cmd, retry, t0, a);
	if (a->timed_out)
		a->message = message(CLI_NAME ": this job timed out and was ended: %s",
				     cmd->display);
}

static bool attempt_ok(const struct attempt *a)
{
	return a->status == 0 && !a->timed_out;
}

/* A job's status as a number of its own: its exit code, or 128 + the
 * signal that ended it. */
static int status_code(const struct attempt *a)
{
	return a->status < 256 ? a->status : 128 + a->status - 256;
}

static int capped(unsigned long n)
{
	return n > 100 ? 101 : (int)n;
}

/* The percentage of failures as GNU parallel reports it: rounded up. */
static int percent(unsigned long failed, unsigned long of)
{
	return of ? (int)((100 * failed + of - 1) / of) : 0;
}

/* Counts a finished job; decides --halt, as GNU parallel: fail=1 ends
 * with the failing job's status, fail=N with the failures, fail=P% (of
 * every job: the input was read whole) with their percentage, or that
 * job's status when the threshold was one job; success=N with 0; done=N
 * with the failures. */
static void account(struct run *R, const struct attempt *a)
{
	const struct halt *h = &R->o->halt;
	bool ok = attempt_ok(a);
	atomic_fetch_add(&R->done, 1);
	unsigned long nok = ok ? atomic_fetch_add(&R->ok, 1) + 1 : atomic_load(&R->ok);
	unsigned long nfail = ok ? atomic_load(&R->failed) : atomic_fetch_add(&R->failed, 1) + 1;
	if (h->when == HALT_NEVER)
		return;
	unsigned long count = h->what == HALT_FAIL ? nfail : h->what == HALT_SUCCESS ? nok
										     : nok + nfail;
	bool relevant = h->what == HALT_DONE || (h->what == HALT_FAIL) != ok;
	if (!relevant)
		return;
	double limit = h->percent ? h->val / 100.0 * (double)R->total : h->val;
	if ((double)count < limit)
		return;
	int status;
	if (h->what == HALT_SUCCESS)
		status = 0;
	else if (h->what == HALT_DONE)
		status = capped(nfail);
	else if (limit <= 1)
		status = status_code(a);
	else if (h->percent)
		status = percent(nfail, R->total);
	else
		status = capped(nfail);
	pthread_mutex_lock(&R->lock);
	bool first = !R->halted;
	if (first) {
		R->halted = true;
		R->halt_status = status;
	}
	pthread_mutex_unlock(&R->lock);
	if (!first)
		return;
	atomic_store(&R->no_new, true);
	if (h->when == HALT_NOW)
		herd_chan_close(R->stop); /* already closed: harmless */
}

/* A slot back to the free ones, unless its host has left (--slf). */
static void give_slot(struct run *R, long slot)
{
	if (R->be->ops->slot_ok(R->be, slot))
		herd_chan_send(R->slots, &slot, HERD_FOREVER);
}

static void job_task(void *arg)
{
	struct job *j = arg;
	struct run *R = j->R;
	const struct opts *o = R->o;
	struct command cmd = {0};
	if (j->shell) {
		cmd.shell = j->shell;
		cmd.display = xstrdup(j->shell);
		j->shell = NULL;
	} else {
		template_expand(R->tpl, &j->rec, j->seq, j->slot, &cmd);
	}
	char *tag = template_tag(R->tpl, &j->rec, j->seq, j->slot);
	struct attempt a;
	for (long try = 1;; try++) {
		run_once(R, j, &cmd, tag, try - 1, &a);
		if (attempt_ok(&a) || try >= o->retries || atomic_load(&R->stopped))
			break;
		capture_free(a.out);
		capture_free(a.err);
		free(a.message);
	}
	/* As GNU parallel logs: a signal's death is Exitval 0 and the
	 * signal, -1 and the signal after a timeout; a job that handled
	 * the timeout's signal and exited keeps its status. */
	int exitval = a.status < 256 ? a.status : a.timed_out ? -1 : 0;
	int sig = a.status >= 256 ? a.status - 256 : 0;
	joblog_write(R->joblog, j->seq, R->be->ops->host(R->be, j->slot), a.start, a.runtime,
		     capture_size(a.out), exitval, sig, cmd.display);
	if (attempt_ok(&a))
		median_add(R->ends.median, a.runtime);
	account(R, &a);
	struct result *res = calloc(1, sizeof *res);
	if (!res)
		cli_die("out of memory");
	*res = (struct result){j->seq, tag, a.out, a.err, a.message, a.stopped, false};
	printer_put(R->printer, res);
	give_slot(R, j->slot);
	command_free(&cmd);
	record_free(&j->rec);
	free(j->block);
}

/* ------------------------------------------------------------------ */
/* Signals                                                            */
/* ------------------------------------------------------------------ */

struct sig_arg {
	struct run *R;
	herd_chan *ch;
};

static void signal_task(void *arg)
{
	struct sig_arg *sa = arg;
	struct run *R = sa->R;
	herd_chan *ch = sa->ch;
	int sig;
	while (herd_chan_recv(ch, &sig, HERD_FOREVER) == 0) {
		atomic_store(&R->no_new, true);
		if (sig == SIGHUP)
			continue; /* no new job; running ones finish */
		if (!atomic_exchange(&R->stopped, true))
			herd_chan_close(R->stop);
		else
			herd_chan_close(R->kill);
	}
}

/* ------------------------------------------------------------------ */
/* The run                                                            */
/* ------------------------------------------------------------------ */

/* Takes a free slot, unless the run stops first: the slot, or 0. With
 * --slf, the file is looked at while waiting, and a slot whose host has
 * left it is dropped. */
static long take_slot(struct run *R)
{
	long slot;
	herd_case cs[2] = {HERD_CASE_RECV(R->slots, &slot), HERD_CASE_RECV(R->stop, NULL)};
	if (!R->o->slf)
		return herd_select(cs, 2, HERD_FOREVER) == 0 ? slot : 0;
	for (;;) {
		R->be->ops->more_slots(R->be, R->slots); /* --slf changed */
		int k = herd_select(cs, 2, herd_deadline(HERD_SEC));
		if (k == 1)
			return 0;
		if (k == 0 && R->be->ops->slot_ok(R->be, slot))
			return slot;
	}
}

/* A result with nothing in it, for -k's order (a job skipped by --resume,
 * or one --dry-run prints). */
static void put_empty(struct run *R, uint64_t seq, char *line)
{
	struct result *res = calloc(1, sizeof *res);
	if (!res)
		cli_die("out of memory");
	res->seq = seq;
	if (line) {
		res->out = capture_new();
		capture_add(res->out, line, strlen(line));
		capture_add(res->out, "\n", 1);
		free(line);
	}
	printer_put(R->printer, res);
}

/* -t: the command on stderr as the job starts, through the printer (so
 * that it comes after the output of the jobs that ended before). */
static void announce(struct run *R, const struct job *j)
{
	if (!R->o->verbose)
		return;
	struct command cmd;
	if (j->shell) {
		cmd.display = xstrdup(j->shell);
	} else {
		template_expand(R->tpl, &j->rec, j->seq, j->slot, &cmd);
		free(cmd.shell);
		if (cmd.argv)
			for (size_t i = 0; cmd.argv[i]; i++)
				free(cmd.argv[i]);
		free(cmd.argv);
	}
	struct result *res = calloc(1, sizeof *res);
	if (!res)
		cli_die("out of memory");
	res->seq = j->seq;
	res->immediate = true;
	res->err = capture_new();
	capture_add(res->err, cmd.display, strlen(cmd.display));
	capture_add(res->err, "\n", 1);
	free(cmd.display);
	printer_put(R->printer, res);
}

/* What a job that will not run holds. */
static void job_drop(struct job *j)
{
	record_free(&j->rec);
	free(j->block);
	free(j->shell);
}

static void start_job(struct run *R, struct job *j)
{
	if (wait_for_room(R->o, R->stop) < 0) {
		/* Stopped while waiting: the slot goes back, the job never ran. */
		herd_chan_send(R->slots, &j->slot, HERD_FOREVER);
		job_drop(j);
		return;
	}
	if (R->o->delay_ns) {
		int64_t at = R->last_start + R->o->delay_ns;
		if (R->last_start && at > herd_now())
			herd_sleep(at);
		R->last_start = herd_now();
	}
	atomic_fetch_add(&R->started, 1);
	announce(R, j);
	if (HERD_GO(R->jobs, job_task, *j) < 0)
		cli_die("cannot start a job");
}

/* One job (which it owns): skipped (--resume), printed (--dry-run), or
 * started once a slot is free. False to stop reading the input. */
static bool submit(struct run *R, struct job j)
{
	if (joblog_skip(R->joblog, j.seq)) {
		job_drop(&j);
		put_empty(R, j.seq, NULL);
		return true;
	}
	if (R->o->dry_run) {
		struct command cmd = {0};
		if (!j.shell)
			template_expand(R->tpl, &j.rec, j.seq, 1, &cmd);
		put_empty(R, j.seq, xstrdup(j.shell ? j.shell : cmd.display));
		command_free(&cmd);
		job_drop(&j);
		return true;
	}
	j.slot = take_slot(R);
	if (!j.slot || atomic_load(&R->no_new)) {
		if (j.slot)
			herd_chan_send(R->slots, &j.slot, HERD_FOREVER);
		job_drop(&j);
		return false;
	}
	start_job(R, &j);
	return true;
}

/* --retry-failed: the failed jobs of the joblog, not the input. */
static void retry_failed(struct run *R)
{
	uint64_t *seqs;
	char **cmds;
	size_t n = joblog_failed(R->joblog, &seqs, &cmds);
	for (size_t i = 0; i < n && !atomic_load(&R->no_new); i++)
		if (!submit(R, (struct job){.R = R, .seq = seqs[i], .shell = xstrdup(cmds[i])}))
			break;
	free(seqs);
	free(cmds);
}

/* A job per record, as the input is read. False if it failed. */
static bool records_streamed(struct run *R, struct input *in)
{
	struct record rec;
	uint64_t seq = 0;
	int r = 0;
	while (!atomic_load(&R->no_new) && (r = input_next(in, &rec)) > 0)
		if (!submit(R, (struct job){.R = R, .seq = ++seq, .rec = rec}))
			break;
	return r >= 0;
}

/* --halt P%, and --bar or --eta on a terminal: the percentage is of every
 * job, so the input is read whole first, as GNU parallel reads it. */
static bool records_whole(struct run *R, struct input *in)
{
	struct record *all = NULL, rec;
	size_t n = 0, cap = 0;
	int r;
	while ((r = input_next(in, &rec)) > 0) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			all = xrealloc(all, cap * sizeof *all);
		}
		all[n++] = rec;
	}
	R->total = n;
	progress_set_total(R->progress, n);
	size_t i = 0;
	while (i < n && !atomic_load(&R->no_new)) {
		bool go = submit(R, (struct job){.R = R, .seq = i + 1, .rec = all[i]});
		i++;
		if (!go)
			break;
	}
	for (; i < n; i++)
		record_free(&all[i]);
	free(all);
	return r >= 0;
}

/* --pipe: a job per block of stdin. False if the input failed. */
static bool pipe_blocks(struct run *R)
{
	struct blocks *b = blocks_open(R->o);
	uint64_t seq = 0;
	char *block;
	size_t len;
	int r = 0;
	while (!atomic_load(&R->no_new) && (r = blocks_next(b, &block, &len)) > 0)
		if (!submit(R, (struct job){.R = R, .seq = ++seq, .block = block,
					   .block_len = len}))
			break;
	blocks_close(b);
	return r >= 0;
}

static int exit_status(struct run *R, bool input_failed)
{
	if (output_broken())
		return 128 + SIGPIPE; /* main dies of it */
	if (atomic_load(&R->stopped) || input_failed)
		return EXIT_ERROR;
	if (R->halted)
		return R->halt_status;
	unsigned long failed = atomic_load(&R->failed);
	if (R->o->halt.when != HALT_NEVER && R->o->halt.percent && R->o->halt.what == HALT_FAIL)
		return percent(failed, atomic_load(&R->started));
	return capped(failed);
}

int run_all(const struct opts *o)
{
	if (o->slurm_submit && !o->dry_run)
		return submit_run(o); /* one job array: submit.c */
	/* On the heap: the tasks it is handed to may not hold pointers into
	 * this task's stack (herd's debug checks would say so). */
	struct run *R = calloc(1, sizeof *R);
	if (!R)
		cli_die("out of memory");
	R->o = o;
	pthread_mutex_init(&R->lock, NULL);
	R->tpl = template_compile(o);
	R->joblog = joblog_open(o);
	R->trace = trace_open(o);
	R->be = backend_open(o);
	if (herd_chan_make(&R->slots, sizeof(long), (size_t)R->be->max_slots) < 0 ||
	    herd_chan_make(&R->stop, 0, 0) < 0 || herd_chan_make(&R->kill, 0, 0) < 0)
		cli_die("out of memory");
	R->ends = (struct job_ends){o, R->stop, R->kill, o->timeout_pct > 0 ? median_new() : NULL};
	for (long s = 1; s <= R->be->nslots; s++)
		herd_chan_try_send(R->slots, &s);
	herd_scope *aux;
	herd_chan *sigs;
	if (herd_scope_open(&aux) < 0 || herd_scope_open(&R->jobs) < 0 ||
	    herd_chan_make(&sigs, sizeof(int), 8) < 0)
		cli_die("out of memory");
	herd_signal_notify(sigs, SIGINT);
	herd_signal_notify(sigs, SIGTERM);
	herd_signal_notify(sigs, SIGHUP);
	HERD_GO(aux, signal_task, ((struct sig_arg){R, sigs}));
	R->printer = printer_start(o, aux, R->stop);
	struct progress *prog = progress_start(o, aux, &R->started, &R->done, &R->failed);
	R->progress = prog;

	bool input_failed = false;
	if (o->resume == RETRY_FAILED) {
		retry_failed(R);
	} else if (o->pipe) {
		input_failed = !pipe_blocks(R);
	} else {
		struct input *in = input_open(o);
		if (!in)
			input_failed = true;
		else if ((o->halt.when != HALT_NEVER && o->halt.percent) ||
			 progress_wants_total(prog))
			input_failed = !records_whole(R, in);
		else
			input_failed = !records_streamed(R, in);
		input_close(in);
	}
	herd_scope_close(R->jobs);
	R->be->ops->close(R->be);
	progress_finish(prog);
	printer_finish(R->printer);
	herd_signal_stop(sigs);
	herd_chan_close(sigs);
	herd_scope_close(aux);
	herd_chan_free(sigs);
	joblog_close(R->joblog);
	trace_close(R->trace);
	int status = exit_status(R, input_failed);
	template_free(R->tpl);
	herd_chan_free(R->slots);
	herd_chan_free(R->stop);
	herd_chan_free(R->kill);
	median_free(R->ends.median);
	pthread_mutex_destroy(&R->lock);
	free(R);
	return status;
}
