/*
 * submit.h - what the two files of herd --slurm-submit share: submit.c
 * (the run: submitting, waiting, collecting) and submit-dir.c (the submit
 * directory: the jobs file, the runner script, the files of each job).
 */
#ifndef HERD_CLI_SUBMIT_H
#define HERD_CLI_SUBMIT_H

#include "backend.h" /* message() */

struct sjob {
	uint64_t seq;
	struct record rec;
	char *shell;             /* --retry-failed: the command from the log */
	struct command cmd;
	char *tag;
	bool done;               /* its status was read */
};

struct submit {
	const struct opts *o;
	struct template *tpl;
	struct joblog *joblog;
	struct printer *printer;
	herd_chan *stop;         /* closed by the printer on EPIPE */
	herd_chan *sigs;
	struct sjob *jobs;       /* in order of seq */
	size_t n, left;
	long tasks;
	char *dir;               /* the submit directory, absolute */
	char *id;                /* the array's job id */
	unsigned long failed;
	int cancels;             /* INT, TERM or EPIPE seen: scancel sent */
	bool hup;                /* pending tasks canceled: their jobs never ran */
	bool squeue_failed;      /* said once */
};

/* The path of a job's file of one kind (o, e, r, s) in the directory. */
char *submit_path(const struct submit *S, const char *kind, uint64_t seq);
/* Removes the directory and everything in it. */
void submit_remove_dir(struct submit *S);
/* Writes the jobs file and the runner script into the directory: false
 * (and errno) if one could not be written. */
bool submit_write_jobs(const struct submit *S);
bool submit_write_runner(const struct submit *S);

#endif
