/*
 * output.c - what jobs print: captured whole, then printed without mixing.
 *
 * A capture keeps the first CAPTURE_MEM bytes of a stream in memory and the
 * rest in a temporary file opened with O_TMPFILE: it never has a name, so
 * nothing is left on disk whatever happens to herd (kill -9 included), and
 * a job that prints gigabytes costs disk, not memory. Where O_TMPFILE is
 * refused, a file made by mkstemp is unlinked at once. Should no file be
 * had, the bytes stay in memory.
 *
 * The printer is a task that receives finished jobs on a channel and
 * prints each one's stdout, then its stderr, as GNU parallel does; with -k
 * it keeps those that come early until the ones before them are printed
 * (a reorder buffer keyed by the job's number). With a tag, every line of
 * both streams starts with the tag and a tab. Writes to stdout and stderr
 * take `out_lock` (a pthread mutex, held only for the writes), which
 * --line-buffer's readers take too. With -k, --line-buffer prints the
 * lines of the job next in order as they come, as GNU parallel does; the
 * later jobs keep theirs in their captures, printed first when their turn
 * comes (at their next line, or with their result). When stdout's reader has gone
 * (EPIPE), `broken` (an atomic: any writer may see it first) stops every
 * later write to it, and the first to see it closes `on_broken`, the
 * run's stop channel.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAPTURE_MEM (64 * 1024)
#define COPY_CHUNK (64 * 1024)

struct capture {
	char *mem;
	size_t len, cap;
	int fd;            /* the temporary file, or -1 */
	uint64_t file_len;
	bool lost;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
/* -k with --line-buffer: the number of the job whose lines are printed as
 * they come (the printer's next); the others keep theirs until their turn.
 * 0: none (past a dropped job). Under out_lock. */
static uint64_t live_seq = 1;
/* Set when stdout's reader has gone (EPIPE): nothing more is written, and
 * `on_broken` is closed, which stops the run. */
static atomic_bool broken;
static herd_chan *on_broken;

struct capture *capture_new(void)
{
	struct capture *c = calloc(1, sizeof *c);
	if (!c)
		cli_die("out of memory");
	c->fd = -1;
	return c;
}

/* An unnamed file in $TMPDIR (or /tmp): nothing is left on disk, even
 * after kill -9. */
int cli_temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char path[4096];
	snprintf(path, sizeof path, "%s/herd-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
	if (fd == 1 && atomic_load(&broken))
		return false;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EPIPE && fd == 1 && !atomic_exchange(&broken, true) &&
		    on_broken)
			herd_chan_close(on_broken);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

bool capture_add(struct capture *c, const char *p, size_t n)
{
	if (!n)
		return true;
	if (c->fd < 0 && c->len + n > CAPTURE_MEM)
		c->fd = cli_temp_file(); /* -1: it all stays in memory */
	if (c->fd >= 0) {
		if (write_all(c->fd, p, n)) {
			c->file_len += n;
			return true;
		}
		if (!c->lost)
			cli_warn("a job's output could not be kept: %s", strerror(errno));
		c->lost = true;
		return false;
	}
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + n)
			cap *= 2;
		char *m = realloc(c->mem, cap);
		if (!m) {
			c->lost = true;
			return false;
		}
		c->mem = m;
		c->cap = cap;
	}
	memcpy(c->mem + c->len, p, n);
	c->len += n;
	return true;
}

/* Empties c (its lines were printed). */
static void capture_clear(struct capture *c)
{
	c->len = 0;
	if (c->fd >= 0 && c->file_len && ftruncate(c->fd, 0) == 0)
		c->file_len = 0;
}

size_t capture_size(const struct capture *c)
{
	return c ? c->len + (size_t)c->file_len : 0;
}

void capture_free(struct capture *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->mem);
	free(c);
}

/* Writes n bytes, each line after the tag (if any); *bol: at a line's
 * beginning. */
static void emit(int fd, const char *tag, bool *bol, const char *p, size_t n)
{
	if (!tag) {
		write_all(fd, p, n);
		return;
	}
	while (n) {
		if (*bol) {
			write_all(fd, tag, strlen(tag));
			write_all(fd, "\t", 1);
			*bol = false;
		}
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;
		write_all(fd, p, len);
		p += len;
		n -= len;
		*bol = nl != NULL;
	}
}

/* Prints a capture to fd; out_lock held. */
static void capture_print(struct capture *c, int fd, const char *tag)
{
	bool bol = true;
	if (!c)
		return;
	emit(fd, tag, &bol, c->mem, c->len);
	if (c->fd < 0)
		return;
	char *buf = malloc(COPY_CHUNK);
	for (uint64_t off = 0; buf && off < c->file_len;) {
		ssize_t r = pread(c->fd, buf, COPY_CHUNK, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		emit(fd, tag, &bol, buf, (size_t)r);
		off += (uint64_t)r;
	}
	free(buf);
}

static void result_print(struct result *r)
{
	pthread_mutex_lock(&out_lock);
	capture_print(r->out, 1, r->tag);
	capture_print(r->err, 2, r->tag);
	if (r->message) {
		write_all(2, r->message, strlen(r->message));
		write_all(2, "\n", 1);
	}
	pthread_mutex_unlock(&out_lock);
}

static void result_free(struct result *r)
{
	capture_free(r->out);
	capture_free(r->err);
	free(r->tag);
	free(r->message);
	free(r);
}

/* Whole lines of a job: printed now, or (-k, not its turn yet) kept in
 * `hold`, which is printed first once it is its turn. out_lock held. */
static void line_out(const struct line_job *lj, int fd, const char *p, size_t n)
{
	bool bol = true;
	if (lj->hold && lj->seq != live_seq) {
		capture_add(lj->hold, p, n);
		return;
	}
	if (lj->hold && capture_size(lj->hold)) {
		capture_print(lj->hold, fd, lj->tag);
		capture_clear(lj->hold);
	}
	emit(fd, lj->tag, &bol, p, n);
}

void print_lines(const struct line_job *lj, int fd, strbuf *rest, const char *buf, size_t n,
		 bool flush_rest)
{
	const char *last = n ? memrchr(buf, '\n', n) : NULL;
	pthread_mutex_lock(&out_lock);
	if (last) {
		/* The lines up to the last newline: what was left of the
		 * previous read first, as one piece with them. */
		sb_add(rest, buf, (size_t)(last - buf) + 1);
		line_out(lj, fd, rest->s, rest->len);
		rest->len = 0;
		sb_add(rest, last + 1, n - (size_t)(last - buf) - 1);
	} else {
		sb_add(rest, buf, n);
	}
	if (flush_rest && rest->len) {
		line_out(lj, fd, rest->s, rest->len);
		rest->len = 0;
	}
	pthread_mutex_unlock(&out_lock);
}

void print_line(int fd, const char *s)
{
	pthread_mutex_lock(&out_lock);
	write_all(fd, s, strlen(s));
	write_all(fd, "\n", 1);
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------------ */
/* The printer                                                        */
/* ------------------------------------------------------------------ */

struct printer {
	herd_chan *ch;        /* struct result * */
	bool keep_order;
	uint64_t next;        /* with -k: the number to print next */
	struct result **held; /* with -k: by number, a ring */
	bool blocked;         /* with -k: past a dropped job, print nothing */
	size_t cap;
	herd_wg *done;
};

/* The reorder buffer: a ring indexed by seq, grown as needed. */
static void hold(struct printer *p, struct result *r)
{
	size_t need = (size_t)(r->seq - p->next) + 1;
	if (need > p->cap) {
		size_t cap = p->cap ? p->cap : 64;
		while (cap < need)
			cap *= 2;
		struct result **h = calloc(cap, sizeof *h);
		if (!h)
			cli_die("out of memory");
		for (size_t i = 0; i < p->cap; i++) {
			struct result *x = p->held[i];
			if (x)
				h[x->seq % cap] = x;
		}
		free(p->held);
		p->held = h;
		p->cap = cap;
	}
	p->held[r->seq % p->cap] = r;
}

static void flush_ready(struct printer *p)
{
	for (;;) {
		struct result *r = p->cap ? p->held[p->next % p->cap] : NULL;
		if (!r || r->seq != p->next)
			return;
		p->held[p->next % p->cap] = NULL;
		p->next++;
		/* A job ended early leaves a hole that nothing after it may
		 * pass, as in GNU parallel: the rest is lost. */
		if (r->dropped)
			p->blocked = true;
		if (!p->blocked)
			result_print(r);
		result_free(r);
		/* --line-buffer: the next job's lines now print as they come. */
		pthread_mutex_lock(&out_lock);
		live_seq = p->blocked ? 0 : p->next;
		pthread_mutex_unlock(&out_lock);
	}
}

static void printer_task(void *arg)
{
	struct printer *p = *(struct printer **)arg;
	struct result *r;
	while (herd_chan_recv(p->ch, &r, HERD_FOREVER) == 0) {
		if (!p->keep_order || r->immediate) {
			if (!r->dropped)
				result_print(r);
			result_free(r);
			continue;
		}
		hold(p, r);
		flush_ready(p);
	}
	/* The end: what is held goes in order, gaps and all (every held
	 * number lies in [next, next + cap)). */
	for (size_t k = 0; k < p->cap; k++) {
		struct result *h = p->held[(p->next + k) % p->cap];
		if (h && h->seq == p->next + k) {
			p->held[(p->next + k) % p->cap] = NULL;
			if (h->dropped)
				p->blocked = true;
			if (!p->blocked)
				result_print(h);
			result_free(h);
		}
	}
	herd_wg_done(p->done);
}

bool output_broken(void)
{
	return atomic_load(&broken);
}

struct printer *printer_start(const struct opts *o, herd_scope *scope, herd_chan *stop)
{
	on_broken = stop;
	struct printer *p = calloc(1, sizeof *p);
	if (!p || herd_chan_make(&p->ch, sizeof(struct result *), 64) < 0 ||
	    herd_wg_new(&p->done) < 0)
		cli_die("out of memory");
	p->keep_order = o->keep_order;
	p->next = 1;
	herd_wg_add(p->done, 1);
	if (HERD_GO(scope, printer_task, p) < 0)
		cli_die("cannot start the printer");
	return p;
}

void printer_put(struct printer *p, struct result *r)
{
	if (herd_chan_send(p->ch, &r, HERD_FOREVER) < 0)
		result_free(r);
}

void printer_finish(struct printer *p)
{
	herd_chan_close(p->ch);
	herd_wg_wait(p->done, HERD_FOREVER);
	herd_chan_free(p->ch);
	herd_wg_free(p->done);
	free(p->held);
	free(p);
}
