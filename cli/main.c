/*
 * main.c - the `herd` command: runs a command for every input item, many
 * at a time, as GNU parallel does, and leaves nothing behind: every job
 * runs in a scope of libherd's, so a job's whole process tree ends with it,
 * on Ctrl-C, on a timeout and at the end of the run.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>

static struct opts options;
static int status;

static void first(void *arg)
{
	(void)arg;
	status = options.guard ? guard_main(&options) : run_all(&options);
}

int main(int argc, char **argv)
{
	args_parse(argc, argv, &options);
	int rc = herd_main(first, NULL);
	if (rc < 0)
		cli_die("cannot start: %s", herd_strerror(rc));
	if (output_broken()) {
		/* stdout's reader went away: the jobs are gone, and herd dies
		 * of SIGPIPE as a program writing there would. */
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	return status;
}
