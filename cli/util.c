/*
 * util.c - the command's small tools: growable strings, shell quoting as
 * GNU parallel quotes, messages, and parsing numbers, times and sizes.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

bool sb_add(strbuf *b, const char *p, size_t n)
{
	if (!n && b->s)
		return true;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s)
			return false;
		b->s = s;
		b->cap = cap;
	}
	if (n)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = 0;
	return true;
}

bool sb_adds(strbuf *b, const char *s)
{
	return sb_add(b, s, strlen(s));
}

bool sb_addc(strbuf *b, char c)
{
	return sb_add(b, &c, 1);
}

void sb_free(strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

char *sb_take(strbuf *b)
{
	char *s = b->s ? b->s : strdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

/* GNU parallel's quoting: a word of letters, digits and -_.+/ as it is,
 * else the whole in single quotes, each ' as '"'"', and a '' left at
 * either end dropped. */
static bool plain_word(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("-_.+/", c)))
			return false;
	}
	return true;
}

bool sb_add_quoted(strbuf *b, const char *s)
{
	if (!*s)
		return sb_adds(b, "''");
	if (plain_word(s))
		return sb_adds(b, s);
	strbuf q = {0};
	bool ok = sb_addc(&q, '\'');
	for (const char *p = s; ok && *p; p++)
		ok = *p == '\'' ? sb_adds(&q, "'\"'\"'") : sb_addc(&q, *p);
	ok = ok && sb_addc(&q, '\'');
	if (!ok) {
		sb_free(&q);
		return false;
	}
	const char *from = q.s;
	size_t n = q.len;
	if (n >= 2 && from[0] == '\'' && from[1] == '\'') {
		from += 2;
		n -= 2;
	}
	if (n >= 2 && from[n - 1] == '\'' && from[n - 2] == '\'')
		n -= 2;
	ok = sb_add(b, from, n);
	sb_free(&q);
	return ok;
}

static void vwarn(const char *fmt, va_list ap)
{
	char line[4096];
	vsnprintf(line, sizeof line, fmt, ap);
	fprintf(stderr, CLI_NAME ": %s\n", line);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void cli_usage_error(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_NAME ": %s (see " CLI_NAME " --help)\n", line);
	exit(EXIT_ERROR);
}

void cli_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(EXIT_ERROR);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		cli_die("out of memory");
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		cli_die("out of memory");
	return q;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		cli_die("out of memory");
	return d;
}

int parse_long(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno)
		return -1;
	*out = v;
	return 0;
}

int parse_seconds(const char *s, int64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || v < 0 || v > 1e9)
		return -1;
	*ns = (int64_t)(v * 1e9 + 0.5);
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -1;
	double mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	}
	if (*end || v * mul > 1.8e19)
		return -1;
	*out = (uint64_t)(v * mul);
	return 0;
}
