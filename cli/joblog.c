/*
 * joblog.c - GNU parallel's joblog: a header, then a tab-separated line per
 * job that ended (Seq, Host (":" for this machine, else the
 * sshlogin), Starttime, JobRuntime, Send, Receive,
 * Exitval, Signal, Command), written with one write(2) each, so that lines
 * never mix. With --resume, --resume-failed or --retry-failed the joblog is
 * read first: the jobs it lists are skipped (--resume), or those that
 * failed run again (--resume-failed), and it is appended to.
 *
 * Locks: `lock` orders the writes (jobs end on any worker).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char header[] =
	"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

struct logged {
	uint64_t seq;
	bool ok;
	char *command;
	size_t line;            /* its place in the file: the later wins */
};

struct joblog {
	int fd;
	pthread_mutex_t lock;
	int resume;
	struct logged *lines;   /* read back, sorted by seq */
	size_t nlines;
};

/* By job only: bsearch's comparison. */
static int by_seq(const void *a, const void *b)
{
	const struct logged *x = a, *y = b;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* By job, then by place in the file: qsort need not be stable (musl's is
 * not), and the last line of a job is the one that counts (find). */
static int by_seq_line(const void *a, const void *b)
{
	const struct logged *x = a, *y = b;
	int c = by_seq(a, b);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Reads what an earlier run wrote; a missing file has nothing. */
static void read_back(struct joblog *j, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = 0;
		char *field[9];
		char *p = line;
		int k = 0;
		for (; k < 9 && p; k++) {
			field[k] = p;
			char *tab = k < 8 ? strchr(p, '\t') : NULL;
			if (tab)
				*tab = 0;
			p = tab ? tab + 1 : NULL;
		}
		long seq, exitval, sig;
		if (k < 9 || parse_long(field[0], &seq) < 0 || seq < 1 ||
		    parse_long(field[6], &exitval) < 0 || parse_long(field[7], &sig) < 0)
			continue; /* the header, or a line cut short */
		if (n == j->nlines) {
			n = n ? 2 * n : 64;
			j->lines = xrealloc(j->lines, n * sizeof *j->lines);
		}
		j->lines[j->nlines] = (struct logged){(uint64_t)seq, exitval == 0 && sig == 0,
						      xstrdup(field[8]), j->nlines};
		j->nlines++;
	}
	free(line);
	fclose(f);
	qsort(j->lines, j->nlines, sizeof *j->lines, by_seq_line);
}

struct joblog *joblog_open(const struct opts *o)
{
	if (!o->joblog)
		return NULL;
	struct joblog *j = calloc(1, sizeof *j);
	if (!j)
		cli_die("out of memory");
	pthread_mutex_init(&j->lock, NULL);
	j->resume = o->resume;
	if (o->resume != RESUME_NONE)
		read_back(j, o->joblog);
	bool append = o->joblog_append || o->resume != RESUME_NONE;
	j->fd = open(o->joblog, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
		     0644);
	if (j->fd < 0)
		cli_die("cannot write the joblog %s: %s", o->joblog, strerror(errno));
	/* +FILE appends lines only, as GNU parallel does (no header, even to
	 * a new file); a joblog written afresh, or first by --resume, has
	 * one. */
	if (!o->joblog_append && lseek(j->fd, 0, SEEK_END) == 0 &&
	    write(j->fd, header, sizeof header - 1) < 0)
		cli_die("cannot write the joblog %s: %s", o->joblog, strerror(errno));
	return j;
}

void joblog_write(struct joblog *j, uint64_t seq, const char *host, double start,
		  double runtime, uint64_t received, int exitval, int sig, const char *command)
{
	if (!j)
		return;
	char *line = NULL;
	int n = asprintf(&line, "%llu\t%s\t%.3f\t%10.3f\t0\t%llu\t%d\t%d\t%s\n",
			 (unsigned long long)seq, host, start, runtime, (unsigned long long)received,
			 exitval, sig, command);
	if (n < 0)
		return;
	pthread_mutex_lock(&j->lock);
	ssize_t w = write(j->fd, line, (size_t)n);
	(void)w;
	pthread_mutex_unlock(&j->lock);
	free(line);
}

static const struct logged *find(const struct joblog *j, uint64_t seq)
{
	struct logged key = {.seq = seq};
	const struct logged *l = j->nlines ? bsearch(&key, j->lines, j->nlines, sizeof *j->lines,
						     by_seq) : NULL;
	/* The last line of a job decides: it may have run again. */
	while (l && l + 1 < j->lines + j->nlines && l[1].seq == seq)
		l++;
	return l;
}

bool joblog_skip(const struct joblog *j, uint64_t seq)
{
	if (!j || j->resume == RESUME_NONE)
		return false;
	const struct logged *l = find(j, seq);
	if (!l)
		return false;
	return j->resume == RESUME || l->ok;
}

size_t joblog_failed(const struct joblog *j, uint64_t **seqs, char ***commands)
{
	size_t n = 0;
	*seqs = NULL;
	*commands = NULL;
	for (size_t i = 0; j && i < j->nlines; i++) {
		/* The last line of a job decides: it may have run again. */
		if (i + 1 < j->nlines && j->lines[i + 1].seq == j->lines[i].seq)
			continue;
		if (j->lines[i].ok)
			continue;
		*seqs = xrealloc(*seqs, (n + 1) * sizeof **seqs);
		*commands = xrealloc(*commands, (n + 1) * sizeof **commands);
		(*seqs)[n] = j->lines[i].seq;
		(*commands)[n++] = j->lines[i].command;
	}
	return n;
}

void joblog_close(struct joblog *j)
{
	if (!j)
		return;
	close(j->fd);
	for (size_t i = 0; i < j->nlines; i++)
		free(j->lines[i].command);
	free(j->lines);
	pthread_mutex_destroy(&j->lock);
	free(j);
}
