/*
 * trace.c - --trace FILE and --trace-html FILE: a timeline of the run in
 * the Chrome trace-event JSON format (what Perfetto and chrome://tracing
 * open). A lane (tid) per job slot, named "slot N" by metadata events the
 * first time the slot is used; each run of a job's command one complete
 * slice ("ph":"X", microseconds from herd's start) named by its command
 * line and coloured by its end (Chrome's reserved colour names); each
 * signal of a kill sequence an instant event on the job's lane.
 *
 * The file is valid JSON at every moment between two writes: it is the
 * object form, {"traceEvents":[...],"displayTimeUnit":"ms"}, and each event
 * is written (one pwrite, one line) over the closing tail together with a
 * new tail, so that a herd killed with -9 leaves a file that parses as it
 * is. The trace-event format's own tolerance of a missing closing bracket
 * is for its array form only, which has no room for displayTimeUnit; this
 * needs no tolerance at all. Where the file cannot seek (a pipe), events
 * are appended and the tail comes at the end.
 *
 * --trace-html keeps the events in memory and writes the page
 * (tracepage.c) at the end of the run.
 *
 * Locks: `lock` protects everything that changes after trace_open (the
 * file's end, the page's events, the lanes already named): jobs end on
 * any worker.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char head[] = "{\"traceEvents\":[\n";
static const char tail[] = "\n],\n\"displayTimeUnit\":\"ms\"}\n";
#define TAIL_LEN (sizeof tail - 1)

struct trace {
	pthread_mutex_t lock;
	int64_t t0;              /* herd_now() at the start: ts 0 */
	int pid;
	int fd;                  /* --trace, or -1 */
	const char *path;
	bool seekable;
	off_t end;               /* where the next event goes (the tail is there) */
	bool failed;             /* a write failed: no more (said once) */
	int html_fd;             /* --trace-html, or -1 */
	const char *html_path;
	strbuf events;           /* --trace-html: the events so far */
	unsigned long nevents;
	unsigned char *named;    /* lanes whose name was written, by slot */
	long nslots;
};

/* ------------------------------------------------------------------ */
/* JSON text                                                          */
/* ------------------------------------------------------------------ */

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min, cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, min = 0x80, cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, min = 0x800, cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool json_add_string(strbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	bool ok = sb_addc(b, '"');
	for (size_t i = 0; ok && i < n;) {
		unsigned char c = s[i];
		size_t run = c >= 0x80 ? utf8_len(s + i, n - i) : 0;
		char esc[8];
		if (run) {
			ok = sb_add(b, str + i, run); /* valid UTF-8: as it is */
			i += run;
			continue;
		}
		i++;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
		} else if (c == '\n' || c == '\t' || c == '\r') {
			esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r', esc[2] = 0;
		} else if (c < 0x20 || c >= 0x7f) {
			/* A control character, or a byte that is not UTF-8:
			 * read as Latin-1 (U+0080..U+00FF), so that it shows. */
			snprintf(esc, sizeof esc, "\\u%04x", c);
		} else {
			esc[0] = (char)c, esc[1] = 0;
		}
		ok = sb_adds(b, esc);
	}
	return ok && sb_addc(b, '"');
}

/* Appends formatted text; false if memory ran out. */
__attribute__((format(printf, 2, 3))) static bool addf(strbuf *b, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < sizeof buf && sb_add(b, buf, (size_t)n);
}

/* Microseconds from the start, as ts wants them (to the nanosecond). */
static double usecs(const struct trace *t, int64_t at)
{
	return (double)(at - t->t0) / 1000.0;
}

static const char *signal_name(int sig)
{
	static const struct { int sig; const char *name; } names[] = {
		{SIGTERM, "SIGTERM"}, {SIGKILL, "SIGKILL"}, {SIGINT, "SIGINT"},
		{SIGHUP, "SIGHUP"}, {SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"},
		{SIGUSR2, "SIGUSR2"}, {SIGALRM, "SIGALRM"}, {SIGCONT, "SIGCONT"},
		{SIGSTOP, "SIGSTOP"},
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (names[i].sig == sig)
			return names[i].name;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

static bool write_all_at(int fd, const char *p, size_t n, off_t at, bool seek)
{
	while (n) {
		ssize_t w = seek ? pwrite(fd, p, n, at) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0)
			errno = EIO;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return true;
}

/* One event (a JSON object, no newline) into the file and the page's
 * list. Under t->lock. */
static void emit_locked(struct trace *t, const strbuf *ev)
{
	const char *sep = t->nevents ? ",\n" : "";
	size_t seplen = strlen(sep);
	if (t->fd >= 0 && !t->failed) {
		/* One write: the event, and (when the file can seek) a new
		 * tail over the old one, which the next event overwrites. */
		strbuf line = {0};
		int err = 0;
		if (!(sb_adds(&line, sep) && sb_add(&line, ev->s, ev->len) &&
		      (!t->seekable || sb_add(&line, tail, TAIL_LEN))))
			err = ENOMEM;
		else if (!write_all_at(t->fd, line.s, line.len, t->end, t->seekable))
			err = errno ? errno : EIO;
		if (!err) {
			t->end += (off_t)(seplen + ev->len);
		} else {
			t->failed = true;
			cli_warn("cannot write the trace %s: %s; no more events go there", t->path,
				 strerror(err));
		}
		sb_free(&line);
	}
	if (t->html_fd >= 0 && !(sb_adds(&t->events, sep) && sb_add(&t->events, ev->s, ev->len)))
		cli_warn("out of memory: the page misses events");
	t->nevents++;
}

/* The name and order of slot's lane, the first time it is used. Under
 * t->lock. */
static void name_lane_locked(struct trace *t, long slot)
{
	if (slot < 1 || slot > t->nslots || t->named[slot])
		return;
	t->named[slot] = 1;
	strbuf ev = {0};
	if (addf(&ev, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%ld,"
		 "\"args\":{\"name\":\"slot %ld\"}}", t->pid, slot, slot))
		emit_locked(t, &ev);
	sb_free(&ev);
	if (addf(&ev, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%ld,"
		 "\"args\":{\"sort_index\":%ld}}", t->pid, slot, slot))
		emit_locked(t, &ev);
	sb_free(&ev);
}

static void emit(struct trace *t, long slot, strbuf *ev, bool ok)
{
	if (!ok) {
		cli_warn("out of memory: an event of the trace is lost");
		sb_free(ev);
		return;
	}
	pthread_mutex_lock(&t->lock);
	name_lane_locked(t, slot);
	emit_locked(t, ev);
	pthread_mutex_unlock(&t->lock);
	sb_free(ev);
}

/* ------------------------------------------------------------------ */
/* The trace                                                          */
/* ------------------------------------------------------------------ */

static int open_out(const char *path, const char *what)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		cli_die("cannot write the %s %s: %s", what, path, strerror(errno));
	return fd;
}

struct trace *trace_open(const struct opts *o)
{
	if (!o->trace && !o->trace_html)
		return NULL;
	struct trace *t = calloc(1, sizeof *t);
	if (!t)
		cli_die("out of memory");
	pthread_mutex_init(&t->lock, NULL);
	t->t0 = herd_now();
	t->pid = (int)getpid();
	t->fd = t->html_fd = -1;
	t->nslots = o->jobs;
	t->named = calloc((size_t)o->jobs + 1, 1);
	if (!t->named)
		cli_die("out of memory");
	if (o->trace_html) {
		t->html_path = o->trace_html;
		t->html_fd = open_out(o->trace_html, "page");
	}
	if (o->trace) {
		t->path = o->trace;
		t->fd = open_out(o->trace, "trace");
		t->seekable = lseek(t->fd, 0, SEEK_CUR) == 0;
		t->end = sizeof head - 1;
		if (!write_all_at(t->fd, head, sizeof head - 1, 0, t->seekable) ||
		    (t->seekable && !write_all_at(t->fd, tail, TAIL_LEN, t->end, true)))
			cli_die("cannot write the trace %s: %s", o->trace, strerror(errno));
	}
	strbuf ev = {0};
	bool ok = addf(&ev, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
		       "\"args\":{\"name\":\"herd\"}}", t->pid);
	emit(t, 0, &ev, ok);
	return t;
}

void trace_job(struct trace *t, const struct trace_run *r)
{
	if (!t)
		return;
	/* Chrome's reserved colour names: green, red, dark red, grey. */
	bool signaled = r->status >= 256;
	const char *cname = r->timed_out ? "terrible" : r->stopped ? "grey"
			    : r->status == 0 ? "good" : "bad";
	strbuf ev = {0};
	bool ok = sb_adds(&ev, "{\"name\":") &&
		  json_add_string(&ev, r->name, strlen(r->name)) &&
		  addf(&ev, ",\"cat\":\"job\",\"ph\":\"X\",\"pid\":%d,\"tid\":%ld,\"ts\":%.3f,"
		       "\"dur\":%.3f,\"cname\":\"%s\",\"args\":{\"seq\":%llu,\"slot\":%ld,"
		       "\"retry\":%ld,", t->pid, r->slot, usecs(t, r->start),
		       (double)(r->end - r->start) / 1000.0, cname, (unsigned long long)r->seq,
		       r->slot, r->retry);
	if (signaled)
		ok = ok && addf(&ev, "\"exit\":null,\"signal\":%d,", r->status - 256);
	else
		ok = ok && addf(&ev, "\"exit\":%d,\"signal\":0,", r->status);
	ok = ok && addf(&ev, "\"timeout\":%s,\"stopped\":%s,\"host\":",
			r->timed_out ? "true" : "false", r->stopped ? "true" : "false");
	/* This machine is "local", as before hosts; another host its name. */
	const char *host = !r->host || !strcmp(r->host, ":") ? "local" : r->host;
	ok = ok && json_add_string(&ev, host, strlen(host)) && sb_adds(&ev, "}}");
	emit(t, r->slot, &ev, ok);
}

void trace_signal(const struct trace_lane *l, int sig, const char *why)
{
	if (!l || !l->t)
		return;
	struct trace *t = l->t;
	const char *name = signal_name(sig);
	strbuf ev = {0};
	bool ok = name ? addf(&ev, "{\"name\":\"%s\"", name) : addf(&ev, "{\"name\":\"SIG%d\"", sig);
	ok = ok && addf(&ev, ",\"cat\":\"signal\",\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,\"tid\":%ld,"
			"\"ts\":%.3f,\"args\":{\"seq\":%llu,\"signal\":%d,\"why\":\"%s\"}}",
			t->pid, l->slot, usecs(t, herd_now()), (unsigned long long)l->seq, sig, why);
	emit(t, l->slot, &ev, ok);
}

void trace_close(struct trace *t)
{
	if (!t)
		return;
	if (t->fd >= 0) {
		if (!t->seekable && !t->failed && !write_all_at(t->fd, tail, TAIL_LEN, 0, false))
			cli_warn("cannot write the trace %s: %s", t->path, strerror(errno));
		if (close(t->fd) < 0 && !t->failed)
			cli_warn("cannot write the trace %s: %s", t->path, strerror(errno));
	}
	if (t->html_fd >= 0) {
		strbuf json = {0};
		bool ok = sb_add(&json, head, sizeof head - 1) &&
			  sb_add(&json, t->events.s ? t->events.s : "", t->events.len) &&
			  sb_add(&json, tail, TAIL_LEN);
		int rc = ok ? page_write(t->html_fd, json.s, json.len) : -ENOMEM;
		if (close(t->html_fd) < 0 && rc == 0)
			rc = -errno;
		if (rc < 0)
			cli_warn("cannot write the page %s: %s", t->html_path, strerror(-rc));
		sb_free(&json);
	}
	sb_free(&t->events);
	free(t->named);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
