/*
 * input.c - the input sources, turned into one record (the arguments) per
 * job.
 *
 * Sources are grouped: a source linked with :::+ or ::::+ joins the group
 * of the one before, and a group yields tuples, one item of each of its
 * sources side by side, as many as its shortest source has. The records
 * are the combinations of the groups' tuples, the last group varying
 * fastest, as GNU parallel makes them. The first group streams: its items
 * are read as they are needed, so that `seq 10000000 | herd ...` holds
 * a few items at a time; the other groups are read whole first (each of
 * their tuples is used once for every tuple of the first).
 *
 * Items end with the delimiter (newline, NUL with -0, or -d's); a last
 * item without one counts. With --colsep each item is split into
 * columns, each a value of its own. With -n or -N, a job takes that many
 * records. Reads go through herd_blocking: stdin may be a terminal or a
 * pipe, which would otherwise hold a worker.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

/* A source read item by item. */
struct reader {
	char **items;           /* a ::: list, or NULL */
	size_t next;            /* in items */
	size_t offset;          /* in items[next]: where its next piece starts */
	int fd;                 /* a file's, or -1 */
	bool eof, own_fd;
	char delim;
	char *buf;
	size_t start, end, cap;
};

/* A group's tuples, when read whole. */
struct table {
	size_t width, ntuples;
	char **cells;           /* ntuples * width */
};

struct input {
	const struct opts *o;
	struct reader *first;   /* the first group's sources, streamed */
	size_t nfirst;
	struct table *rest;     /* the other groups, read whole */
	size_t nrest;
	size_t *pos;            /* the odometer over the other groups */
	char **tuple;           /* the first group's current tuple */
	bool have_tuple, done;
	regex_t colsep;
	bool has_colsep;
};

struct read_call {
	int fd;
	void *buf;
	size_t n;
};

static int do_read(void *arg)
{
	struct read_call *c = arg;
	ssize_t r;
	while ((r = read(c->fd, c->buf, c->n)) < 0 && errno == EINTR)
		;
	return r < 0 ? -errno : (int)r;
}

ssize_t read_input(int fd, void *buf, size_t n)
{
	if (n > INT32_MAX)
		n = INT32_MAX; /* herd_blocking returns an int */
	struct read_call c = {fd, buf, n};
	int r = herd_blocking(do_read, &c);
	if (r < 0)
		cli_warn("reading the input: %s", strerror(-r));
	return r;
}

static int reader_open(struct reader *r, const struct source *s, char delim)
{
	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->delim = delim;
	if (s->items) {
		r->items = s->items;
		return 0;
	}
	if (!strcmp(s->path, "-")) {
		r->fd = 0;
		return 0;
	}
	r->fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		cli_warn("cannot read %s: %s", s->path, strerror(errno));
		return -1;
	}
	r->own_fd = true;
	return 0;
}

static void reader_close(struct reader *r)
{
	if (r->own_fd)
		close(r->fd);
	free(r->buf);
	r->buf = NULL;
}

/* The next item (malloc'd) in *item: 1, 0 at the end, -1 on an error. */
static int reader_next(struct reader *r, char **item)
{
	if (r->items) {
		/* A ::: item is split at the delimiter as input lines are (an
		 * item with a newline in it is two), as GNU parallel does. */
		while (r->items[r->next]) {
			const char *s = r->items[r->next] + r->offset;
			const char *d = r->delim ? strchr(s, r->delim) : NULL;
			if (d) {
				*item = strndup(s, (size_t)(d - s));
				r->offset += (size_t)(d - s) + 1;
				if (!r->items[r->next][r->offset]) {
					r->next++; /* a delimiter at the end ends the item */
					r->offset = 0;
				}
			} else {
				*item = xstrdup(s);
				r->next++;
				r->offset = 0;
			}
			if (!*item)
				cli_die("out of memory");
			return 1;
		}
		return 0;
	}
	for (;;) {
		char *p = r->buf ? memchr(r->buf + r->start, r->delim, r->end - r->start) : NULL;
		if (p || (r->eof && r->start < r->end)) {
			size_t len = p ? (size_t)(p - (r->buf + r->start)) : r->end - r->start;
			*item = xmalloc(len + 1);
			memcpy(*item, r->buf + r->start, len);
			(*item)[len] = 0;
			r->start += len + (p != NULL);
			return 1;
		}
		if (r->eof)
			return 0;
		/* Keep the partial item at the front; make room for a chunk. */
		if (r->end > r->start)
			memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
		if (r->cap - r->end < READ_CHUNK) {
			r->cap = r->cap ? 2 * r->cap : 2 * READ_CHUNK;
			r->buf = xrealloc(r->buf, r->cap);
		}
		ssize_t n = read_input(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}

static void free_items(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

/* Reads a group whole into a table. */
static int table_read(struct table *t, const struct source *src, size_t width, char delim)
{
	t->width = width;
	t->ntuples = 0;
	t->cells = NULL;
	size_t cap = 0;
	struct reader *rd = xmalloc(width * sizeof *rd);
	int rc = 0;
	size_t opened = 0;
	for (; opened < width; opened++)
		if (reader_open(&rd[opened], &src[opened], delim) < 0) {
			rc = -1;
			break;
		}
	while (rc == 0) {
		if (t->ntuples == cap) {
			cap = cap ? 2 * cap : 16;
			t->cells = xrealloc(t->cells, cap * width * sizeof *t->cells);
		}
		char **row = t->cells + t->ntuples * width;
		size_t got = 0;
		for (; got < width; got++) {
			int r = reader_next(&rd[got], &row[got]);
			if (r <= 0) {
				rc = r;
				break;
			}
		}
		if (got < width) {
			free_items(row, got);
			break;
		}
		t->ntuples++;
	}
	for (size_t i = 0; i < opened; i++)
		reader_close(&rd[i]);
	free(rd);
	return rc;
}

/* GNU parallel's --colsep is a Perl regex: the escapes people write most
 * (\t, \s, \d, \n) become POSIX ones. */
static char *colsep_posix(const char *re)
{
	strbuf b = {0};
	for (const char *p = re; *p; p++) {
		if (p[0] == '\\' && p[1]) {
			const char *rep = NULL;
			switch (p[1]) {
			case 't': rep = "\t"; break;
			case 'n': rep = "\n"; break;
			case 's': rep = "[[:space:]]"; break;
			case 'd': rep = "[0-9]"; break;
			}
			if (rep) {
				sb_adds(&b, rep);
				p++;
				continue;
			}
		}
		sb_addc(&b, *p);
	}
	return sb_take(&b);
}

struct input *input_open(const struct opts *o)
{
	struct input *in = calloc(1, sizeof *in);
	if (!in)
		cli_die("out of memory");
	in->o = o;
	if (o->colsep) {
		char *re = colsep_posix(o->colsep);
		int rc = regcomp(&in->colsep, re, REG_EXTENDED);
		free(re);
		if (rc)
			cli_die("--colsep %s: not a regular expression", o->colsep);
		in->has_colsep = true;
	}
	/* The groups: a source and those linked to it. */
	int g0 = 1;
	while (g0 < o->nsrc && o->src[g0].linked)
		g0++;
	in->nfirst = (size_t)g0;
	in->first = xmalloc(in->nfirst * sizeof *in->first);
	in->tuple = calloc(in->nfirst, sizeof *in->tuple);
	size_t opened = 0;
	for (; opened < in->nfirst; opened++)
		if (reader_open(&in->first[opened], &o->src[opened], o->delim) < 0)
			goto fail;
	for (int i = g0; i < o->nsrc;) {
		int j = i + 1;
		while (j < o->nsrc && o->src[j].linked)
			j++;
		in->rest = xrealloc(in->rest, (in->nrest + 1) * sizeof *in->rest);
		if (table_read(&in->rest[in->nrest++], &o->src[i], (size_t)(j - i), o->delim) < 0)
			goto fail;
		i = j;
	}
	in->pos = calloc(in->nrest ? in->nrest : 1, sizeof *in->pos);
	for (size_t g = 0; g < in->nrest; g++)
		if (!in->rest[g].ntuples)
			in->done = true; /* a group with nothing: no combination */
	return in;
fail:
	in->nfirst = opened;
	input_close(in);
	return NULL;
}

/* Advances to the next combination; false at the end. */
static int next_combination(struct input *in)
{
	for (;;) {
		if (in->done)
			return 0;
		if (in->have_tuple) {
			/* The odometer, last group fastest. */
			size_t g = in->nrest;
			while (g > 0) {
				if (++in->pos[g - 1] < in->rest[g - 1].ntuples)
					return 1;
				in->pos[--g] = 0;
			}
			free_items(in->tuple, in->nfirst);
			in->have_tuple = false;
		}
		for (size_t s = 0; s < in->nfirst; s++) {
			int r = reader_next(&in->first[s], &in->tuple[s]);
			if (r <= 0) {
				free_items(in->tuple, s);
				in->done = true;
				return r;
			}
		}
		in->have_tuple = true;
		return 1;
	}
}

static void add_value(struct input *in, struct record *r, const char *v)
{
	if (!in->has_colsep) {
		r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
		r->v[r->n++] = xstrdup(v);
		return;
	}
	regmatch_t m;
	const char *p = v;
	for (;;) {
		bool found = regexec(&in->colsep, p, 1, &m, p == v ? 0 : REG_NOTBOL) == 0 &&
			     m.rm_eo > 0;
		size_t len = found ? (size_t)m.rm_so : strlen(p);
		r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
		r->v[r->n] = xmalloc(len + 1);
		memcpy(r->v[r->n], p, len);
		r->v[r->n++][len] = 0;
		if (!found)
			break;
		p += m.rm_eo;
	}
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/* One combination's values appended to r; false if -r skips it. */
static bool add_combination(struct input *in, struct record *r)
{
	bool all_blank = true;
	for (size_t s = 0; s < in->nfirst; s++)
		all_blank &= blank(in->tuple[s]);
	for (size_t g = 0; g < in->nrest; g++)
		for (size_t c = 0; c < in->rest[g].width; c++)
			all_blank &= blank(in->rest[g].cells[in->pos[g] * in->rest[g].width + c]);
	if (in->o->no_empty && all_blank)
		return false;
	for (size_t s = 0; s < in->nfirst; s++)
		add_value(in, r, in->tuple[s]);
	for (size_t g = 0; g < in->nrest; g++)
		for (size_t c = 0; c < in->rest[g].width; c++)
			add_value(in, r, in->rest[g].cells[in->pos[g] * in->rest[g].width + c]);
	return true;
}

int input_next(struct input *in, struct record *out)
{
	out->v = NULL;
	out->n = 0;
	long want = in->o->max_args > 0 ? in->o->max_args : 1;
	long got = 0;
	while (got < want) {
		int r = next_combination(in);
		if (r < 0) {
			record_free(out);
			return -1;
		}
		if (r == 0)
			break;
		got += add_combination(in, out);
	}
	return got > 0;
}

void record_free(struct record *r)
{
	free_items(r->v, r->n);
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

void input_close(struct input *in)
{
	if (!in)
		return;
	if (in->have_tuple)
		free_items(in->tuple, in->nfirst);
	for (size_t s = 0; s < in->nfirst; s++)
		reader_close(&in->first[s]);
	for (size_t g = 0; g < in->nrest; g++) {
		free_items(in->rest[g].cells, in->rest[g].ntuples * in->rest[g].width);
		free(in->rest[g].cells);
	}
	if (in->has_colsep)
		regfree(&in->colsep);
	free(in->rest);
	free(in->first);
	free(in->tuple);
	free(in->pos);
	free(in);
}
