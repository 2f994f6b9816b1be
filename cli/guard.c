/*
 * guard.c - `herd --guard -- CMD ARGS...`: runs one command, its whole
 * tree in libherd's care (its process group, and its cgroup where there
 * is one), with herd's stdin, stdout and stderr; exits with its status
 * (128 + the signal that ended it).
 *
 * It is how a job runs on an ssh host that has herd (ssh.c): when the
 * connection drops, or the local ssh client is ended (Ctrl-C, --timeout),
 * sshd closes the reading ends of the command's stdout and stderr. A pipe
 * whose reader has gone reports an error to poll, so a watcher task per
 * stream (when it is a pipe) waits for that; then the tree is ended by
 * --term-seq's default steps (TERM, 200 ms, TERM, 100 ms, TERM, 50 ms,
 * KILL), and herd exits with 255. SIGINT, SIGTERM and SIGHUP end the tree
 * as in any herd program, and herd then dies of the signal.
 *
 * A stream that is not a pipe (a terminal, a file) is not watched: only a
 * pipe's write end is readable exactly when its reader has gone.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

struct watch {
	int fd;
	herd_chan *lost;
};

static void watch_task(void *arg)
{
	struct watch *w = arg;
	if (herd_fd_wait(w->fd, HERD_READABLE, HERD_FOREVER) > 0)
		herd_chan_close(w->lost); /* the second close is harmless */
}

static bool is_pipe(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Ends p's whole tree by o's --term-seq; returns once it has exited. */
static void end_tree(const struct opts *o, herd_proc *p)
{
	for (int i = 0; i < o->nterm; i++) {
		herd_proc_signal_all(p, o->term[i].sig);
		if (herd_chan_recv(herd_proc_done(p), NULL, herd_deadline(o->term[i].wait_ns)) !=
		    HERD_ETIMEDOUT)
			return;
	}
	herd_proc_signal_all(p, SIGKILL);
	int st;
	if (herd_proc_wait(p, &st, HERD_FOREVER) < 0)
		return; /* canceled: herd ends it on the way out */
}

int guard_main(const struct opts *o)
{
	herd_proc_opts po = {.argv = o->cmd};
	po.stdio[0] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 0};
	po.stdio[1] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 1};
	po.stdio[2] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 2};
	herd_proc *p;
	int rc = herd_proc_start(&p, NULL, &po, HERD_FOREVER);
	if (rc < 0) {
		cli_warn("%s: %s", o->cmd[0], rc == -ENOENT ? "command not found"
							   : herd_strerror(rc));
		return rc == -ENOENT ? 127 : 126;
	}
	herd_chan *lost;
	herd_scope *watchers;
	if (herd_chan_make(&lost, 0, 0) < 0 || herd_scope_open(&watchers) < 0)
		cli_die("out of memory");
	for (int fd = 1; fd <= 2; fd++)
		if (is_pipe(fd) && HERD_GO(watchers, watch_task, ((struct watch){fd, lost})) < 0)
			cli_die("cannot start a watcher");
	herd_case cs[2] = {HERD_CASE_RECV(herd_proc_done(p), NULL), HERD_CASE_RECV(lost, NULL)};
	int k = herd_select(cs, 2, HERD_FOREVER);
	int status = EXIT_ERROR;
	if (k == 1) {
		end_tree(o, p);
	} else {
		int st;
		if (herd_proc_wait(p, &st, HERD_FOREVER) == 0)
			status = HERD_PROC_EXITED(st) ? st : 128 + HERD_PROC_SIGNAL(st);
	}
	herd_proc_free(p);
	herd_scope_cancel(watchers);
	herd_scope_close(watchers);
	herd_chan_free(lost);
	return status;
}
