/*
 * submit-dir.c - the submit directory of herd --slurm-submit (submit.c
 * drives the run): the jobs file, a line a job with its words quoted for
 * sh, and the runner script, a few variables and --term-seq's ends()
 * before the body of submit-runner.sh (built in by embed.cmake). The
 * runner leaves each job's files beside them (docs/remote.md).
 */
#define _GNU_SOURCE
#include "submit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *submit_path(const struct submit *S, const char *kind, uint64_t seq)
{
	return message("%s/%s.%llu", S->dir, kind, (unsigned long long)seq);
}

/* Removes the directory and everything in it (it has no subdirectory). */
void submit_remove_dir(struct submit *S)
{
	DIR *d = S->dir ? opendir(S->dir) : NULL;
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	if (rmdir(S->dir) < 0)
		cli_warn("cannot remove %s: %s", S->dir, strerror(errno));
}

/* s quoted for sh on one line: in single quotes, a newline as '"$N"'
 * (the runner's N holds one). */
static void add_word(strbuf *b, const char *s)
{
	bool ok = sb_addc(b, '\'');
	for (; ok && *s; s++)
		ok = *s == '\'' ? sb_adds(b, "'\\''") : *s == '\n' ? sb_adds(b, "'\"$N\"'")
								   : sb_addc(b, *s);
	if (!ok || !sb_addc(b, '\''))
		cli_die("out of memory");
}

/* Appends a formatted string, or dies when memory runs out. */
__attribute__((format(printf, 2, 3))) static void sb_fmt(strbuf *b, const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_add(b, m, (size_t)n))
		cli_die("out of memory");
	free(m);
}

/* Writes b into the file `name` of the directory, and frees it. */
static bool write_file(const struct submit *S, const char *name, strbuf *b)
{
	char *path = message("%s/%s", S->dir, name);
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	bool ok = fd >= 0;
	for (size_t off = 0; ok && off < b->len;) {
		ssize_t w = write(fd, b->s + off, b->len - off);
		ok = w > 0;
		off += ok ? (size_t)w : 0;
	}
	ok = (fd < 0 || close(fd) == 0) && ok;
	free(path);
	sb_free(b);
	return ok;
}

/* The jobs file: "SEQ 'word' 'word'...", a line a job, in order. */
bool submit_write_jobs(const struct submit *S)
{
	strbuf b = {0};
	for (size_t i = 0; i < S->n; i++) {
		const struct command *c = &S->jobs[i].cmd;
		sb_fmt(&b, "%llu", (unsigned long long)S->jobs[i].seq);
		for (size_t k = 0; c->argv && c->argv[k]; k++) {
			sb_fmt(&b, " ");
			add_word(&b, c->argv[k]);
		}
		if (!c->argv) {
			sb_fmt(&b, " /bin/sh -c ");
			add_word(&b, c->shell);
		}
		sb_fmt(&b, "\n");
	}
	return write_file(S, "jobs", &b);
}

/* The runner's body (submit-runner.sh, built in by embed.cmake). */
extern const char submit_runner[];

/* The runner script: its variables and ends(), then submit_runner. */
bool submit_write_runner(const struct submit *S)
{
	const struct opts *o = S->o;
	char self[4096], timeout[32] = "";
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	self[len > 0 ? len : 0] = 0;
	if (o->timeout_ns)
		snprintf(timeout, sizeof timeout, "%.3f", o->timeout_ns / 1e9);
	strbuf b = {0};
	sb_fmt(&b, "#!/bin/sh\n# Written by herd --slurm-submit: a task of the array runs this.\nd=");
	add_word(&b, S->dir);
	sb_fmt(&b, "\nherd=");
	add_word(&b, self);
	sb_fmt(&b, "\nn=%ld\np=%ld\ntries=%ld\ntimeout=%s\nends() {\n", S->tasks, o->jobs,
	       o->retries, timeout);
	/* --term-seq: each signal, then its wait unless the job has gone. */
	for (int i = 0; i < o->nterm; i++)
		sb_fmt(&b, "\tkill -%d $1 2>/dev/null || return 0\n\tsleep %.3f\n", o->term[i].sig,
		       o->term[i].wait_ns / 1e9);
	sb_fmt(&b, "\tkill -9 $1 2>/dev/null\n}\n%s", submit_runner);
	return write_file(S, "run.sh", &b);
}

