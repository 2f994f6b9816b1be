/*
 * output.c - herd_proc_output, Go's cmd.Output() and CombinedOutput(): a
 * command run to its end, with its stdout and stderr collected.
 *
 * Why one task reads both pipes at once. A child that fills its stderr
 * pipe (64 KiB) while its parent reads only stdout blocks in write, and a
 * parent that reads stdout to its end before it turns to stderr then
 * waits for it for ever. Go reads each pipe with a goroutine of its own;
 * here the calling task reads whichever pipe has data, with non-blocking
 * reads, and when neither has any it parks on both at once
 * (herd__fd_wait_any, io/poll.c): no helper task that could fail to
 * start, no thread, no worker blocked.
 *
 * The limit. Up to `limit` bytes of each stream are kept, in a buffer that
 * doubles as it fills. What comes past the limit is still read, into a
 * scratch buffer, and dropped: the child must never block on a full pipe,
 * and the memory a call takes must stay bounded whatever it runs.
 *
 * The end. After end of file on every pipe, the exit status is waited
 * for. On a failure after the start (the deadline, a cancellation, memory)
 * the process is ended as herd_proc_kill ends it (SIGTERM, SIGKILL after
 * its grace), which is not a cancellation point. Whatever the result, the
 * call then returns only once the process is finished (reap.c sets
 * `finished` when its group and its cgroup are gone), draining the
 * layer's list meanwhile as a closing scope does (end.c): nothing the
 * call started outlives it. The handle never leaves this file, so only a
 * cancellation (of its scope, or at the end of the run) can have sent its
 * SIGTERM: a process that was sent one is reported as HERD_ECANCELED.
 *
 * No lock of its own: p->lock where the process is ended.
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A stream's first buffer; it doubles from there. */
#define OUT_FIRST 4096
/* Where what goes past the limit is read, and dropped: a pipe's default
 * capacity, so that one read empties it. */
#define OUT_SCRATCH (64 * 1024)

/* One of the child's streams, as it is collected. */
struct stream {
	int index;      /* 1 or 2: herd_proc_fd's */
	int fd;         /* the parent's end, or -1 after end of file */
	char *buf;      /* cap bytes and room for a NUL */
	size_t len, cap;
	bool over;      /* something went past the limit */
};

/* The options of the start: herd_proc_output's stdio rules (herd.h) on
 * top of the caller's. 0 or -EINVAL. */
static int output_opts(const herd_output *res, const herd_proc_opts *opts, size_t limit,
		       unsigned flags, herd_proc_opts *o)
{
	if (!res || !opts || !limit || (flags & ~HERD_OUTPUT_COMBINED))
		return -EINVAL;
	*o = *opts;
	int in = o->stdio[0].mode, err = o->stdio[2].mode;
	bool combined = flags & HERD_OUTPUT_COMBINED;
	if (in == HERD_STDIO_PIPE || o->stdio[1].mode != HERD_STDIO_INHERIT ||
	    err == HERD_STDIO_PIPE || (combined && err != HERD_STDIO_INHERIT))
		return -EINVAL;
	if (in == HERD_STDIO_INHERIT)
		o->stdio[0].mode = HERD_STDIO_NULL; /* as Go's default */
	o->stdio[1].mode = HERD_STDIO_PIPE;
	if (err == HERD_STDIO_INHERIT && !combined)
		o->stdio[2].mode = HERD_STDIO_PIPE;
	return 0;
}

/* Room for more of s, up to the limit: 0 or -ENOMEM. */
static int stream_grow(struct stream *s, size_t limit)
{
	size_t cap = s->cap ? s->cap : OUT_FIRST / 2;
	cap = cap > (SIZE_MAX - 1) / 2 ? SIZE_MAX - 1 : 2 * cap;
	if (cap > limit)
		cap = limit;
	char *buf = realloc(s->buf, cap + 1);
	if (!buf)
		return -ENOMEM;
	s->buf = buf;
	s->cap = cap;
	return 0;
}

/* One read of s: bytes read (> 0), 0 at end of file, -EAGAIN if there is
 * nothing to read yet, -ENOMEM or -errno. */
static ssize_t stream_read(struct stream *s, size_t limit, char **scratch)
{
	char *to;
	size_t room;
	if (s->len < limit) {
		if (s->len == s->cap && stream_grow(s, limit) < 0)
			return -ENOMEM;
		to = s->buf + s->len;
		room = s->cap - s->len;
	} else {
		if (!*scratch && !(*scratch = malloc(OUT_SCRATCH)))
			return -ENOMEM;
		to = *scratch;
		room = OUT_SCRATCH;
	}
	ssize_t n;
	while ((n = read(s->fd, to, room)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (s->len < limit)
		s->len += (size_t)n;
	else if (n > 0)
		s->over = true;
	return n;
}

/* Hands s's bytes, NUL-terminated and trimmed, to *buf: 0 or -ENOMEM. */
static int stream_take(struct stream *s, char **buf, size_t *len)
{
	if (!s->buf && !(s->buf = malloc(1)))
		return -ENOMEM;
	s->buf[s->len] = 0;
	char *trimmed = realloc(s->buf, s->len + 1);
	*buf = trimmed ? trimmed : s->buf; /* a failed trim keeps it whole */
	*len = s->len;
	s->buf = NULL;
	return 0;
}

/* Whether the call should give up: HERD_ETIMEDOUT, HERD_ECANCELED or 0.
 * Reads that always find data never wait, so the loop asks itself. */
static int stop_reason(herd__task *t, herd_scope *scope, int64_t deadline)
{
	if (herd__scope_canceled(t->scope) || herd__scope_canceled(scope))
		return HERD_ECANCELED;
	if (deadline == HERD_NOWAIT || (deadline > 0 && herd_now() >= deadline))
		return HERD_ETIMEDOUT;
	return 0;
}

/* One round: reads each open stream once. Stores the descriptors that had
 * nothing in fds (their number in *nwait) and whether any had data in
 * *got. 0, or a negative code. */
static int read_round(herd_proc *p, struct stream *st, int n, size_t limit, char **scratch,
		      int *fds, int *nwait, bool *got)
{
	*nwait = 0;
	*got = false;
	for (int i = 0; i < n; i++) {
		if (st[i].fd < 0)
			continue;
		ssize_t r = stream_read(&st[i], limit, scratch);
		if (r == -EAGAIN) {
			fds[(*nwait)++] = st[i].fd;
		} else if (r == 0) { /* its descriptor goes back at once */
			herd_proc_close_fd(p, st[i].index);
			st[i].fd = -1;
		} else if (r < 0) {
			return (int)r;
		} else {
			*got = true;
		}
	}
	return 0;
}

/* Reads the n streams to end of file: 0, or a negative code. */
static int collect(herd__task *t, herd_proc *p, struct stream *st, int n, size_t limit,
		   int64_t deadline)
{
	char *scratch = NULL;
	int rc, fds[2], nwait;
	bool got;
	for (;;) {
		rc = read_round(p, st, n, limit, &scratch, fds, &nwait, &got);
		bool open = false;
		for (int i = 0; i < n; i++)
			open |= st[i].fd >= 0;
		if (rc || !open || (rc = stop_reason(t, p->scope, deadline)))
			break;
		if (!got && (rc = herd__fd_wait_any(fds, nwait, HERD_READABLE, deadline)) < 0)
			break;
	}
	free(scratch);
	return rc;
}

/* Ends p if `end`, then waits until it is finished (see the top). Firm:
 * not a cancellation point. */
static void settle(herd_proc *p, bool end)
{
	herd__worker *w;
	herd__task *t;
	herd__current(&w, &t); /* now: a task moves between workers as it waits */
	if (end) {
		herd__mutex_lock(&p->lock);
		herd__proc_term_locked(p, herd_now());
		herd__mutex_unlock(&p->lock);
	}
	while (!atomic_load_explicit(&p->finished, mo_acquire)) {
		herd__mutex_lock(&p->lock);
		herd__proc_escalate_locked(p, herd_now());
		herd__mutex_unlock(&p->lock);
		herd__proc_drain_all(p->rt);
		herd__proc_nap(&w, herd_now() + HERD__END_POLL_NS);
	}
}

/* Collects p's output and status, ends it on failure and waits until it
 * is finished: 0 or a negative code. */
static int run(herd_proc *p, struct stream *st, int n, size_t limit, int64_t deadline,
	       int *status)
{
	herd__worker *w;
	herd__task *t;
	herd__current(&w, &t); /* a task: the start succeeded; w is not kept */
	/* The waits end when the process's scope is canceled too, not only
	 * the task's, as herd_proc_start's wait for descriptors does. */
	bool other = p->scope != t->scope;
	if (other)
		herd__wait_scope_set(t, p->scope);
	int rc = collect(t, p, st, n, limit, deadline);
	if (rc == 0)
		rc = herd_proc_wait(p, status, deadline);
	if (other)
		herd__wait_scope_set(t, NULL);
	herd__mutex_lock(&p->lock);
	if (rc == 0 && p->termed)
		rc = HERD_ECANCELED; /* its scope ended it: see the top */
	herd__mutex_unlock(&p->lock);
	settle(p, rc < 0);
	return rc;
}

/* Fills res from the streams: 0 or -ENOMEM. */
static int fill(herd_output *res, struct stream *st, int n)
{
	int rc = stream_take(&st[0], &res->out, &res->out_len);
	if (rc == 0 && n == 2)
		rc = stream_take(&st[1], &res->err, &res->err_len);
	res->truncated = (st[0].over ? HERD_OUTPUT_TRUNC_OUT : 0) |
			 (n == 2 && st[1].over ? HERD_OUTPUT_TRUNC_ERR : 0);
	return rc;
}

int herd_proc_output(herd_output *res, herd_scope *scope, const herd_proc_opts *opts,
		     size_t limit, unsigned flags, int64_t deadline)
{
	if (res)
		*res = (herd_output){.status = -1};
	herd_proc_opts o;
	int rc = output_opts(res, opts, limit, flags, &o);
	if (rc)
		return rc;
	herd_proc *p;
	unsigned how = flags & HERD_OUTPUT_COMBINED ? HERD__START_ERR_TO_OUT : 0;
	if ((rc = herd__proc_start(&p, scope, &o, how, deadline)))
		return rc;
	struct stream st[2] = {{.index = 1, .fd = herd_proc_fd(p, 1)},
			       {.index = 2, .fd = herd_proc_fd(p, 2)}};
	int n = st[1].fd >= 0 ? 2 : 1, status = -1;
	rc = run(p, st, n, limit, deadline, &status);
	herd_proc_free(p);
	if (rc == 0 && (rc = fill(res, st, n)) == 0)
		res->status = status;
	if (rc < 0)
		herd_output_free(res);
	free(st[0].buf);
	free(st[1].buf);
	return rc;
}

void herd_output_free(herd_output *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	*res = (herd_output){.status = -1};
}
