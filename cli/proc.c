/*
 * proc.c - runs that are a local process: a job's command on this machine,
 * the ssh client that runs it on a host, or the srun client that runs it as
 * a step of a Slurm allocation (backend.h). The process's
 * stdin is /dev/null (--pipe: a pipe that a feeder task fills with the
 * block, then closes); its stdout and stderr are pipes read by two reader
 * tasks into the run's captures (or printed by line, --line-buffer), or
 * herd's own (--ungroup). Waiting is a select on the process's exit;
 * ending it is a signal to its whole tree (herd_proc_signal_all).
 *
 * A job_run is owned by the job task that started it; its readers run in
 * a scope of their own, closed by collect once the process has exited.
 */
#define _GNU_SOURCE
#include "backend.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF (16 * 1024)

struct job_run {
	herd_proc *p;
	herd_scope *readers;
	int ended;               /* the first signal sent to its tree, or 0 */
};

/* How long the readers of a run that was ended by a signal may take to
 * see the end of its output. Something outside the job's tree may hold
 * its pipes: an ssh control master keeps a job's channel, and so its
 * pipes, until the remote command has exited. */
#define ENDED_DRAIN (500 * HERD_MSEC)

char *message(const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	return m;
}

extern char **environ;

char **job_environment(uint64_t seq, long slot)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xmalloc((n + 3) * sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PARALLEL_SEQ=", 13) &&
		    strncmp(environ[i], "PARALLEL_JOBSLOT=", 17))
			env[k++] = environ[i];
	if (asprintf(&env[k], "PARALLEL_SEQ=%llu", (unsigned long long)seq) < 0 ||
	    asprintf(&env[k + 1], "PARALLEL_JOBSLOT=%ld", slot) < 0)
		cli_die("out of memory");
	env[k + 2] = NULL;
	return env;
}

void free_environment(char **env)
{
	size_t n = 0;
	while (env[n])
		n++;
	free(env[n - 1]);
	free(env[n - 2]);
	free(env);
}

struct reader {
	int fd;
	int out_fd;              /* --line-buffer: where lines go */
	struct capture *cap;     /* else: where bytes go */
	struct line_job lj;      /* --line-buffer: the job's lines */
};

/* --pipe: writes the block to the job's stdin, then closes it (the job
 * then sees the end of its input). */
struct feeder {
	herd_proc *p;
	const char *block;
	size_t len;
};

static void feeder_task(void *arg)
{
	struct feeder *f = arg;
	/* A job that exits without reading it all: EPIPE, and that is all. */
	herd_write_all(herd_proc_fd(f->p, 0), f->block, f->len, HERD_FOREVER);
	herd_proc_close_fd(f->p, 0);
}

static void reader_task(void *arg)
{
	struct reader *r = arg; /* this task's own copy */
	char *buf = malloc(READ_BUF);
	strbuf rest = {0};
	for (ssize_t n; buf && (n = herd_read(r->fd, buf, READ_BUF, HERD_FOREVER)) > 0;) {
		if (r->cap)
			capture_add(r->cap, buf, (size_t)n);
		else
			print_lines(&r->lj, r->out_fd, &rest, buf, (size_t)n, false);
	}
	if (!r->cap && rest.len)
		print_lines(&r->lj, r->out_fd, &rest, "", 0, true);
	sb_free(&rest);
	free(buf);
}

int proc_run_start(const struct opts *o, const struct run_spec *s, const struct launch *l,
		   struct job_run **out, char **msg)
{
	herd_proc_opts po = {.argv = l->argv, .envp = l->envp, .file = l->file, .grace = l->grace};
	po.stdio[0].mode = s->block ? HERD_STDIO_PIPE : HERD_STDIO_NULL;
	if (o->output != OUT_UNGROUP)
		po.stdio[1].mode = po.stdio[2].mode = HERD_STDIO_PIPE;
	herd_proc *p;
	int rc = herd_proc_start(&p, NULL, &po, HERD_FOREVER);
	if (rc < 0) {
		const char *what = l->argv[0];
		*msg = rc == -ENOENT ? message(CLI_NAME ": %s: command not found", what)
				     : message(CLI_NAME ": %s: %s", what, herd_strerror(rc));
		return rc == -ENOENT ? 127 : 126;
	}
	struct job_run *r = xmalloc(sizeof *r);
	r->p = p;
	r->ended = 0;
	if (herd_scope_open(&r->readers) < 0)
		cli_die("out of memory");
	if (o->output != OUT_UNGROUP) {
		bool capture = o->output == OUT_GROUP;
		for (int i = 0; i < 2; i++) {
			struct capture *c = i ? s->err : s->out;
			struct reader rd = {herd_proc_fd(p, i + 1), i + 1, capture ? c : NULL,
					    {s->seq, s->tag, s->hold ? c : NULL}};
			if (HERD_GO(r->readers, reader_task, rd) < 0)
				cli_die("cannot start a reader");
		}
	}
	if (s->block &&
	    HERD_GO(r->readers, feeder_task, ((struct feeder){p, s->block, s->block_len})) < 0)
		cli_die("cannot start a feeder");
	*out = r;
	return 0;
}

herd_chan *proc_run_done(struct job_run *r)
{
	return herd_proc_done(r->p);
}

void proc_run_signal(struct job_run *r, int sig)
{
	if (!r->ended)
		r->ended = sig;
	herd_proc_signal_all(r->p, sig);
}

/* p's exit status. A wait cut short (the run is being canceled) ends the
 * job instead, which is not a cancellation point, so that the status is
 * had all the same; herd_proc_kill then fails only if the status was lost
 * (-ECHILD), which is reported as a death by SIGKILL. */
static int job_status(herd_proc *p)
{
	int st;
	if (herd_proc_wait(p, &st, HERD_FOREVER) == 0 || herd_proc_kill(p, &st, HERD_FOREVER) == 0)
		return st;
	return 256 + SIGKILL;
}

int proc_run_signalled(const struct job_run *r)
{
	return r->ended;
}

int proc_run_collect(struct job_run *r)
{
	int st = job_status(r->p);
	if (r->ended && herd_scope_wait(r->readers, herd_deadline(ENDED_DRAIN)) < 0)
		herd_scope_cancel(r->readers);
	herd_scope_close(r->readers);
	herd_proc_free(r->p);
	free(r);
	return st;
}
