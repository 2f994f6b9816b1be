/*
 * pipe.c - --pipe: stdin cut into blocks, each the stdin of a job.
 *
 * A record ends with --recend (a newline by default) and, when --recstart
 * is given, the next one starts with it: a boundary is where both meet. A
 * block is the longest run of whole records that fits --block bytes (a
 * record longer than that is a block of its own), or, with -N, that many
 * records, as GNU parallel cuts them. Only what the next cut needs is
 * read: memory holds the blocks in flight, not the input. Reads go through
 * herd_blocking (stdin may be a terminal or a pipe).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

struct blocks {
	const struct opts *o;
	char *buf;
	size_t len, cap;
	size_t scanned;     /* -N: boundaries looked for up to here */
	long records;       /* -N: boundaries found before `scanned` */
	bool eof;
};

struct blocks *blocks_open(const struct opts *o)
{
	struct blocks *b = calloc(1, sizeof *b);
	if (!b)
		cli_die("out of memory");
	b->o = o;
	return b;
}

void blocks_close(struct blocks *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

/* Reads a chunk more; -1 on an error. */
static int fill(struct blocks *b)
{
	if (b->cap - b->len < READ_CHUNK) {
		b->cap = b->cap ? 2 * b->cap : 2 * READ_CHUNK;
		b->buf = xrealloc(b->buf, b->cap);
	}
	ssize_t n = read_input(0, b->buf + b->len, b->cap - b->len);
	if (n < 0)
		return -1;
	if (n == 0)
		b->eof = true;
	b->len += (size_t)n;
	return 0;
}

/* The first boundary after `from`: a position p where the bytes before it
 * end with recend and those from it start with recstart; 0 if there is
 * none in what was read (or it cannot be told yet). */
static size_t next_boundary(const struct blocks *b, size_t from)
{
	const char *re = b->o->recend, *rs = b->o->recstart;
	size_t le = strlen(re), ls = strlen(rs);
	if (!le) {
		const char *m = from + 1 < b->len ? memmem(b->buf + from + 1, b->len - from - 1, rs, ls)
						  : NULL;
		return m ? (size_t)(m - b->buf) : 0;
	}
	/* A recend ending after `from` starts at from + 1 - le or later. */
	size_t s = from + 1 >= le ? from + 1 - le : 0;
	const char *m;
	while (s < b->len && (m = memmem(b->buf + s, b->len - s, re, le))) {
		size_t p = (size_t)(m - b->buf) + le;
		if (!ls)
			return p;
		if (p + ls > b->len)
			return 0; /* the start of the next record is not read yet */
		if (!memcmp(b->buf + p, rs, ls))
			return p;
		s = (size_t)(m - b->buf) + 1;
	}
	return 0;
}

/* Where the next block ends, or 0 if more must be read first. */
static size_t cut(struct blocks *b)
{
	long want = b->o->max_args;
	if (want > 0) {
		/* -N: records, counted as they are read. */
		for (size_t p; (p = next_boundary(b, b->scanned)) != 0;) {
			b->scanned = p;
			if (++b->records == want)
				return p;
		}
		return b->eof ? b->len : 0;
	}
	size_t size = (size_t)b->o->block, best = 0, ls = strlen(b->o->recstart);
	if (b->eof && b->len <= size)
		return b->len; /* the rest fits: the end is a boundary too */
	if (!b->eof && b->len < size + ls)
		return 0; /* boundaries up to the size cannot all be told yet */
	for (size_t p = 0; (p = next_boundary(b, p)) != 0 && p <= size;)
		best = p;
	if (best)
		return best;
	/* A record longer than a block: it alone. */
	size_t p = next_boundary(b, 0);
	if (p)
		return p;
	return b->eof ? b->len : 0;
}

int blocks_next(struct blocks *b, char **buf, size_t *len)
{
	for (;;) {
		size_t n = b->len ? cut(b) : 0;
		if (n) {
			*buf = xmalloc(n);
			memcpy(*buf, b->buf, n);
			*len = n;
			memmove(b->buf, b->buf + n, b->len - n);
			b->len -= n;
			b->scanned = 0;
			b->records = 0;
			return 1;
		}
		if (b->eof)
			return 0;
		if (fill(b) < 0)
			return -1;
	}
}
