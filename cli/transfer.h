/*
 * transfer.h - files to and from ssh hosts around jobs, with rsync
 * (transfer.c), for hosts.c.
 */
#ifndef HERD_CLI_TRANSFER_H
#define HERD_CLI_TRANSFER_H

#include "ssh.h"

/* Whether files are to be moved (--transferfile, --return, --basefile). */
bool transfer_wanted(const struct opts *o);
/* Dies with a clear line if they are and rsync is not installed here. */
void transfer_check(const struct opts *o);
/* The job's directory there (malloc'd), or NULL: --wd, "..." made unique
 * for job seq. */
char *transfer_wd(const struct opts *o, uint64_t seq);
/* Before the run s: --transferfile's files to h (0, or 255 and a line in
 * *msg). From a task. */
int transfer_before(const struct opts *o, const struct ssh_host *h, long rank,
		    const struct run_spec *s, const char *wd, char **msg);
/* After it: --return's files back, --cleanup there. From a task. */
void transfer_after(const struct opts *o, const struct ssh_host *h, long rank,
		    const struct run_spec *s, const char *wd);
/* --basefile to a new host: false (said, naming login) if it failed. */
bool transfer_basefiles(const struct opts *o, const struct ssh_host *h, const char *login);
/* --cleanup of the basefiles at the end. */
void transfer_basefiles_clean(const struct opts *o, const struct ssh_host *h);

#endif
