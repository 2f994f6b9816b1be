/*
 * backend.h - where a job runs: the interface between the run (run.c,
 * which decides what runs when, and prints, logs and counts) and the
 * engines that run a job's command somewhere: this machine, an ssh host,
 * and later a Slurm allocation or a batch system (docs/remote.md).
 *
 * A run has slots, numbered from 1 ({%}); each belongs to a host. For one
 * run of a job's command on a slot, a backend is asked to:
 *   start    - start it (or say at once that it cannot: 127 or 126 and a
 *              line, as a command that is not found);
 *   done     - a channel that is closed when it has ended (waiting is a
 *              select on it, beside --timeout and the run's stop);
 *   signal   - send a signal to its whole tree, wherever it runs (cancel:
 *              --term-seq's steps, then SIGKILL);
 *   collect  - its exit status once it has ended, its output whole in the
 *              captures it was given (or printed, --line-buffer); the run
 *              is freed.
 *
 * The local machine, ssh hosts and a Slurm allocation share one
 * implementation (proc.c): a job's run is a local process, the command
 * itself, the ssh client that runs it on the host, or the srun client that
 * runs it as a step (slurm.c), and its output comes through that
 * process's pipes. hosts.c keeps the slots and their hosts and builds, for
 * a slot, the process to start (ssh.c for a remote host).
 */
#ifndef HERD_CLI_BACKEND_H
#define HERD_CLI_BACKEND_H

#include "cli.h"

/* One run of a job's command, as the run hands it to a backend. */
struct run_spec {
	uint64_t seq;
	long slot;
	const struct command *cmd;
	const struct record *rec; /* its values (NULL: --retry-failed) */
	bool from_log;            /* --retry-failed: cmd->shell from the joblog */
	const char *path;         /* the program, resolved here (or NULL) */
	const char *missing;      /* its name when it is nowhere here */
	const char *block;        /* --pipe: the job's stdin, or NULL */
	size_t block_len;
	const char *tag;          /* --line-buffer: each line's prefix */
	struct capture *out, *err; /* where the output goes (NULL: printed) */
	bool hold;                /* -k --line-buffer: out/err hold lines */
};

/* A run that a backend started (its own type). */
struct job_run;
struct backend;

struct backend_ops {
	const char *name;
	/* Starts the run: 0 and *out; or, when it could not start, the
	 * status it counts as (127, 126) and a line for stderr in *message. */
	int (*start)(struct backend *b, const struct run_spec *s, struct job_run **out,
		     char **message);
	/* Closed when the run has ended. */
	herd_chan *(*done)(struct job_run *r);
	/* A signal to the run's whole tree, wherever it runs. */
	void (*signal)(struct job_run *r, int sig);
	/* Waits for the end of its output and its status (as herd_proc_wait
	 * stores it), which it returns; frees r. s is the spec it started
	 * with. */
	int (*collect)(struct backend *b, const struct run_spec *s, struct job_run *r);
	/* The host of a slot, as the joblog's Host column shows it (":" for
	 * this machine). */
	const char *(*host)(struct backend *b, long slot);
	/* A slot that a job gave back: whether it may run another (false:
	 * its host left the --slf file, and the slot is dropped). */
	bool (*slot_ok)(struct backend *b, long slot);
	/* New slots to hand out (--slf changed), sent to free_slots (which
	 * holds max_slots); called between job starts, from the first task. */
	void (*more_slots)(struct backend *b, herd_chan *free_slots);
	void (*close)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	long nslots;              /* slots at the start: 1..nslots */
	long max_slots;           /* the most there may ever be */
};

/* The backend for the options: this machine, and ssh hosts with -S or
 * --slf (hosts.c), or a Slurm allocation's steps (slurm.c). From a task:
 * it may ask the hosts for their CPUs. Prints a message and exits with
 * EXIT_ERROR if a host list is bad, or on --slurm outside an allocation. */
struct backend *backend_open(const struct opts *o);

/* A Slurm allocation (slurm.c): whether the jobs run as its steps (dies
 * with a message on --slurm outside one), and its backend. */
bool slurm_wanted(const struct opts *o);
struct backend *slurm_open(const struct opts *o);

/* The process-backed runs (proc.c): the command's process, or the ssh
 * client standing for it. */
struct launch {
	char *const *argv;
	const char *file;         /* the program (NULL: argv[0] in PATH) */
	char *const *envp;
	int64_t grace;            /* libherd's SIGTERM-to-SIGKILL time (0: 2 s) */
};
int proc_run_start(const struct opts *o, const struct run_spec *s, const struct launch *l,
		   struct job_run **out, char **message);
herd_chan *proc_run_done(struct job_run *r);
void proc_run_signal(struct job_run *r, int sig);
int proc_run_collect(struct job_run *r);
/* The first signal sent to the run's tree, or 0. */
int proc_run_signalled(const struct job_run *r);

/* A line for stderr (malloc'd), or NULL. */
__attribute__((format(printf, 1, 2))) char *message(const char *fmt, ...);

/* The job environment: herd's, with PARALLEL_SEQ and PARALLEL_JOBSLOT
 * (and, for an ssh host, nothing more: the remote side sets those). */
char **job_environment(uint64_t seq, long slot);
void free_environment(char **env);

#endif
