/*
 * ssh.h - ssh hosts (ssh.c), for hosts.c: a shared connection per host,
 * what the host has, and the ssh client command that runs one job there.
 */
#ifndef HERD_CLI_SSH_H
#define HERD_CLI_SSH_H

#include "backend.h"

struct ssh_ctx;
struct ssh_host;

/* The run's ssh state: --ssh's command and the private directory of the
 * control sockets (removed by ssh_end). */
struct ssh_ctx *ssh_begin(const struct opts *o);
void ssh_end(struct ssh_ctx *c);

/* Sets up host `name` (its ssh command: sshcmd, or NULL for --ssh's): its
 * control master in `scope` (socket number `index`, unique in the run),
 * and the probe. NULL, after a line on stderr naming `login`, if no
 * command can run there. From a task. */
struct ssh_host *ssh_host_open(struct ssh_ctx *c, const char *sshcmd, const char *name,
			       const char *login, int index, herd_scope *scope);
long ssh_host_cpus(const struct ssh_host *h);
/* Ends the master; from a task. */
void ssh_host_close(struct ssh_host *h);

/* The ssh client's argv for the run s on h, the `rank`th slot of the host
 * (1..), run in directory wd there (made if need be; NULL: the login's):
 * malloc'd, freed by ssh_argv_free. */
char **ssh_job_argv(const struct ssh_host *h, const struct run_spec *s, const char *login,
		    long rank, const char *wd);
void ssh_argv_free(char **argv);

/* For rsync and other commands there (transfer.c). */
const char *ssh_host_name(const struct ssh_host *h);
/* rsync's -e: the ssh command and its options, quoted (malloc'd). */
char *ssh_rsync_e(const struct ssh_host *h, long rank);
/* Runs argv here to its end (from a task): its status (255: it could not
 * start), and the first line of its stderr in *err (malloc'd) when it
 * failed. ssh_run and rsync's runs go through it. */
int run_status(char *const argv[], char **err);
/* Runs cmd there: its status (255: ssh failed), and the first line of
 * its stderr in *err (malloc'd) when it failed. From a task. */
int ssh_run(const struct ssh_host *h, long rank, const char *cmd, char **err);

#endif
