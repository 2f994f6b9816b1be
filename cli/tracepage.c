/*
 * tracepage.c - the timeline page: one self-contained HTML file (the page
 * of tracepage.html, built in as trace_page[]) with a trace embedded as
 * data; and the check of a trace read from a file, for herd-trace-html.
 *
 * The trace sits in a <script type="application/json"> element, which the
 * page reads with JSON.parse. The only thing that could end that element
 * early is a '<' (of "</script>", or "<!--"); in valid JSON a '<' can only
 * be inside a string, where "\u003c" means the same, so every '<' is
 * written so.
 *
 * trace_json_clean() reads a trace as a strict JSON parser would, with an
 * explicit stack (no recursion: a hostile file cannot overflow the C
 * stack), and makes a copy that is safe to embed: bytes that are not
 * UTF-8 inside strings become \u00XX (read as Latin-1). A trace cut short
 * (a program killed while it wrote it) is cut back to its last complete
 * event and closed, as the trace viewers do with a missing final bracket.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 1000
#define MARKER "@TRACE@"

/* ------------------------------------------------------------------ */
/* Writing the page                                                   */
/* ------------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int page_write(int fd, const char *json, size_t len)
{
	const char *mark = strstr(trace_page, MARKER);
	if (!mark)
		return -EINVAL; /* the build's page has no place for the data */
	int rc = write_all(fd, trace_page, (size_t)(mark - trace_page));
	/* The JSON, every '<' as \u003c, in pieces between them. */
	while (rc == 0 && len) {
		const char *lt = memchr(json, '<', len);
		size_t n = lt ? (size_t)(lt - json) : len;
		rc = write_all(fd, json, n);
		if (rc == 0 && lt)
			rc = write_all(fd, "\\u003c", 6), n++;
		json += n;
		len -= n;
	}
	const char *rest = mark + strlen(MARKER);
	return rc ? rc : write_all(fd, rest, strlen(rest));
}

/* ------------------------------------------------------------------ */
/* Reading a trace                                                    */
/* ------------------------------------------------------------------ */

/* The UTF-8 sequence at s: its length if valid, else 0 (see trace.c). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp, min;
	size_t len;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

struct reader {
	const unsigned char *s;
	size_t n, i;
	strbuf out;
	char stack[MAX_DEPTH];   /* '[' or '{' of each open container */
	int depth;
	/* The last place the text could be cut and closed: the output's
	 * length there, and the open containers then (a prefix of stack). */
	size_t cut_len;
	int cut_depth;
	char cut_stack[2];
	bool have_cut;
	bool has_events;         /* the top object has "traceEvents" */
	const char *err;
	bool oom;
};

static void skip_ws(struct reader *r)
{
	while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\r' ||
				r->s[r->i] == '\n'))
		r->i++;
}

static void emit(struct reader *r, const void *p, size_t n)
{
	if (!sb_add(&r->out, p, n))
		r->oom = true;
}

/* A place where the text may be cut: between the events, which are the
 * elements of the top array (the array form) or of an array in the top
 * object (the object form: "traceEvents"); never inside an event. */
static void mark_cut(struct reader *r)
{
	if (r->depth > (r->stack[0] == '[' ? 1 : 2))
		return;
	r->cut_len = r->out.len;
	r->cut_depth = r->depth;
	memcpy(r->cut_stack, r->stack, (size_t)r->depth);
	r->have_cut = true;
}

/* A string at r->i (its opening quote); false on an error or the end. */
static bool read_string(struct reader *r)
{
	emit(r, "\"", 1);
	r->i++;
	while (r->i < r->n) {
		unsigned char c = r->s[r->i];
		if (c == '"') {
			emit(r, "\"", 1);
			r->i++;
			return true;
		}
		if (c < 0x20) {
			/* Only white space from here on: the string was cut
			 * short, and a newline ended the file. */
			size_t k = r->i;
			while (k < r->n && strchr(" \t\r\n", r->s[k]) && r->s[k])
				k++;
			if (k < r->n)
				r->err = "a control character inside a string";
			return false;
		}
		if (c == '\\') {
			if (r->i + 1 >= r->n)
				return false;
			unsigned char e = r->s[r->i + 1];
			size_t len = 2;
			if (e == 'u') {
				len = 6;
				if (r->n - r->i < len)
					return false;
				for (size_t k = 2; k < len; k++)
					if (!isxdigit(r->s[r->i + k])) {
						r->err = "a bad \\u escape";
						return false;
					}
			} else if (!e || !strchr("\"\\/bfnrt", e)) {
				r->err = "a bad escape inside a string";
				return false;
			}
			emit(r, r->s + r->i, len);
			r->i += len;
			continue;
		}
		size_t len = c < 0x80 ? 1 : utf8_seq(r->s + r->i, r->n - r->i);
		if (len) {
			emit(r, r->s + r->i, len);
			r->i += len;
		} else {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", c);
			emit(r, esc, 6);
			r->i++;
		}
	}
	return false;
}

/* A number or a literal at r->i; false on an error or the end. */
static bool read_scalar(struct reader *r)
{
	size_t i = r->i;
	const unsigned char *s = r->s;
	static const char *const words[] = {"true", "false", "null"};
	for (int k = 0; k < 3; k++) {
		size_t wl = strlen(words[k]);
		if (s[i] == (unsigned char)words[k][0]) {
			if (r->n - i < wl)
				return false; /* cut short, or not a word: at the end */
			if (memcmp(s + i, words[k], wl) != 0)
				break;
			emit(r, words[k], wl);
			r->i += wl;
			return true;
		}
	}
	/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
	if (i < r->n && s[i] == '-')
		i++;
	size_t digits = i;
	while (i < r->n && s[i] >= '0' && s[i] <= '9')
		i++;
	bool ok = i > digits && !(s[digits] == '0' && i - digits > 1);
	if (ok && i < r->n && s[i] == '.') {
		size_t f = ++i;
		while (i < r->n && s[i] >= '0' && s[i] <= '9')
			i++;
		ok = i > f;
	}
	if (ok && i < r->n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < r->n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t e = i;
		while (i < r->n && s[i] >= '0' && s[i] <= '9')
			i++;
		ok = i > e;
	}
	if (i >= r->n)
		return false; /* a number at the very end is not a whole trace */
	if (!ok) {
		r->err = "not a JSON value";
		return false;
	}
	emit(r, s + r->i, i - r->i);
	r->i = i;
	return true;
}

enum { WANT_VALUE, WANT_KEY, WANT_NEXT };

/* Closes the innermost container with c if c is its end. */
static bool close_with(struct reader *r, unsigned char c)
{
	if (!r->depth || c != (r->stack[r->depth - 1] == '[' ? ']' : '}'))
		return false;
	emit(r, &c, 1);
	r->i++;
	r->depth--;
	return true;
}

/* The whole text; false on an error (r->err) or at its end (cut short). */
static bool read_all(struct reader *r)
{
	int want = WANT_VALUE;
	bool opened = false;     /* the innermost container has just opened */
	for (;;) {
		skip_ws(r);
		if (r->i >= r->n)
			return false;
		unsigned char c = r->s[r->i];
		if (want == WANT_NEXT || (opened && (c == ']' || c == '}'))) {
			if (want == WANT_NEXT && c == ',') {
				emit(r, ",", 1);
				r->i++;
				want = r->stack[r->depth - 1] == '[' ? WANT_VALUE : WANT_KEY;
				opened = false;
				continue;
			}
			if (!close_with(r, c)) {
				r->err = want == WANT_NEXT ? "expected ',' or the end of the list"
							   : "a misplaced closing bracket";
				return false;
			}
		} else if (want == WANT_KEY) {
			if (c != '"') {
				r->err = "expected a key (a string)";
				return false;
			}
			size_t key = r->out.len;
			if (!read_string(r))
				return false;
			if (r->depth == 1 && r->out.len - key == 13 &&
			    !memcmp(r->out.s + key, "\"traceEvents\"", 13))
				r->has_events = true;
			skip_ws(r);
			if (r->i >= r->n)
				return false;
			if (r->s[r->i] != ':') {
				r->err = "expected ':'";
				return false;
			}
			emit(r, ":", 1);
			r->i++;
			want = WANT_VALUE;
			opened = false;
			continue;
		} else if (c == '[' || c == '{') {
			if (r->depth == MAX_DEPTH) {
				r->err = "nested too deeply";
				return false;
			}
			emit(r, &c, 1);
			r->stack[r->depth++] = (char)c;
			r->i++;
			mark_cut(r);
			want = c == '[' ? WANT_VALUE : WANT_KEY;
			opened = true;
			continue;
		} else if (!(c == '"' ? read_string(r) : read_scalar(r))) {
			return false;
		}
		/* A value ended (a scalar, or a container just closed). */
		if (!r->depth)
			return true;
		mark_cut(r);
		want = WANT_NEXT;
		opened = false;
	}
}

/* The line and column of byte i. */
static void where(const unsigned char *s, size_t i, size_t *line, size_t *col)
{
	*line = 1, *col = 1;
	for (size_t k = 0; k < i; k++) {
		if (s[k] == '\n')
			++*line, *col = 1;
		else
			++*col;
	}
}

char *trace_json_clean(const char *text, size_t len, size_t *out_len, bool *repaired,
		       char *err, size_t errsize)
{
	struct reader *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	r->s = (const unsigned char *)text;
	r->n = len;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		r->i = 3; /* a byte order mark */
	*repaired = false;
	bool whole = read_all(r);
	if (whole) {
		skip_ws(r);
		if (r->i < r->n) {
			whole = false;
			r->err = "more after the end of the trace";
		}
	} else if (!r->err && r->have_cut) {
		/* Cut short: back to the last complete event, then closed. */
		r->out.len = r->cut_len;
		for (int d = r->cut_depth; d > 0; d--)
			emit(r, r->cut_stack[d - 1] == '[' ? "]" : "}", 1);
		whole = true;
		*repaired = true;
	} else if (!r->err) {
		r->err = len ? "the text ends before the trace does" : "the file is empty";
	}
	/* stack[0] still holds the top container's bracket. */
	if (whole && r->stack[0] != '[' && !(r->stack[0] == '{' && r->has_events)) {
		whole = false;
		r->err = "neither a list of events nor an object with \"traceEvents\"";
	}
	char *out = NULL;
	if (r->oom) {
		snprintf(err, errsize, "out of memory");
	} else if (!whole) {
		size_t line, col;
		where(r->s, r->i, &line, &col);
		snprintf(err, errsize, "not a JSON trace: %s (line %zu, column %zu)", r->err, line,
			 col);
	} else {
		emit(r, "\n", 1);
		*out_len = r->out.len;
		out = r->oom ? NULL : sb_take(&r->out);
		if (!out)
			snprintf(err, errsize, "out of memory");
	}
	sb_free(&r->out);
	free(r);
	return out;
}
