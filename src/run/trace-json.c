/*
 * trace-json.c - HERD_TRACE's file: the recorder's events (core/trace.c)
 * written out as Chrome trace-event JSON, which Perfetto, chrome://tracing
 * and `herd-trace-html` open.
 *
 * The file. Process 1 is the program: lane (tid) 0 holds the supervisor
 * and the threads that are not workers, lane i + 1 worker i. Each stretch
 * of a task on a worker is one complete slice ("X", named "task ID", with
 * its spawn site and why it stopped); each spawn or wake is a flow ("s")
 * that ends ("f") where the task next runs; cancellations and the
 * supervisor's interventions are instants ("i"). Process 2 holds a lane
 * per child process (tid = its pid), with one slice from its start to its
 * exit, named by its command, with its status. Times are microseconds
 * from herd_run's start.
 *
 * Time. Events carry herd__os_ticks(), cheaper than the clock. At each
 * round the supervisor reads both the ticks and herd_now(), and maps the
 * ticks between two such points linearly onto the clock: so the times are
 * the clock's at every point, and grow with the ticks in between. A round
 * writes only the events up to its point, which it has the map for. An
 * event is published after its ticks are read (long after, if its thread
 * is preempted in between), so a round may find one of an earlier round's
 * stretch: that stretch's line maps it (the last SEGMENTS are kept), as
 * it did the events before it, or it could come out before them.
 *
 * When. The supervisor writes what the workers have published at each of
 * its rounds (every few milliseconds while they run), and after the
 * round's events a closing (an event viewers ignore and the "]}") that the
 * next round writes over: so the file is valid JSON between rounds, and a
 * program that is killed leaves one that ends with its last round (but
 * when the kill comes in the middle of a write, which readers such as
 * herd-trace-html cut back to the last whole event). herd_run writes the
 * rest (all of it, whatever its ticks) and the final "]}" once the workers
 * have stopped. On a file that cannot seek (a pipe), the closing comes only
 * at the end, and a reader that goes away makes the writes fail (EPIPE)
 * without the SIGPIPE that would end the run. A worker's events are read
 * in order, and a slice is written when it ends, so the slices of one lane
 * never overlap.
 *
 * Locks: none. Only the supervisor's thread writes, during the run, and
 * herd_run's at its end, after the supervisor has returned.
 */
#include "run/run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BYTES (64u * 1024)
#define SITE_CACHE 64u /* return addresses symbolized, direct-mapped */
#define SEGMENTS 16u   /* the last rounds' lines from ticks to the clock */

/* What a lane has open: the task running on that worker. */
struct lane {
	bool open;
	uint32_t site_pc;
	uint64_t id;
	uint64_t site;
	int64_t ns;
};

struct site_name {
	uintptr_t pc;
	char name[112];
};

/* A moment read on both clocks. */
struct point {
	uint64_t tick;
	int64_t ns;
};

/* A round's line: the ticks from `at` (the point of the round before) on
 * map to the clock with this slope. */
struct segment {
	struct point at;
	double ns_per_tick;
};

struct herd__trace_out {
	int fd;
	bool seekable;          /* the closing is written over each round */
	int err;                /* the first write's failure, -errno */
	off_t off;              /* where the next events go */
	size_t n;
	int64_t start;          /* herd_run's start: time 0 in the file */
	struct point to;        /* this round writes the ticks up to `to` */
	bool last;              /* herd_run's end: writes everything */
	unsigned nseg;          /* rounds so far: seg[(nseg - 1) % SEGMENTS]
				 * is the newest line */
	struct segment seg[SEGMENTS];
	struct lane *lanes;     /* nworkers + 1 */
	struct site_name sites[SITE_CACHE];
	char buf[OUT_BYTES];
};

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

/* write(2) to a pipe or a socket, whose reader may have gone: EPIPE, and
 * not the SIGPIPE, which herd takes on this thread as a reason to end the
 * run (run/signal.c). The signal is blocked around the write and, if the
 * write raised it, taken back; one that was pending already is left. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t k = write(fd, buf, len);
	int e = errno;
	if (k < 0 && e == EPIPE && !was_pending) {
		static const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return k;
}

/* Writes len bytes at o->off; moves o->off past them if `advance`. */
static void out_write(struct herd__trace_out *o, const char *buf, size_t len, bool advance)
{
	off_t at = o->off;
	for (size_t done = 0; done < len && !o->err;) {
		ssize_t k = o->seekable ? pwrite(o->fd, buf + done, len - done, at)
					: write_no_sigpipe(o->fd, buf + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			o->err = k < 0 ? -errno : -EIO;
		} else {
			done += (size_t)k;
			at += k;
		}
	}
	if (advance)
		o->off = at;
}

static void out_flush(struct herd__trace_out *o)
{
	out_write(o, o->buf, o->n, true);
	o->n = 0;
}

/* What ends the file until the next round writes over it. */
static void out_close_for_now(struct herd__trace_out *o)
{
	static const char closing[] =
		"{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"herd_trace_open\",\"args\":{}}\n]}\n";
	if (o->seekable)
		out_write(o, closing, sizeof closing - 1, false);
}

/*
 * Formatting. An event is formatted straight into the buffer through a
 * cursor, after reserve() has made room for its longest form: these run
 * for every event, a few million a second.
 */
static char *reserve(struct herd__trace_out *o, size_t n)
{
	if (o->n + n > sizeof o->buf)
		out_flush(o);
	return o->buf + o->n;
}

static void commit(struct herd__trace_out *o, char *w)
{
	o->n = (size_t)(w - o->buf);
}

#define PUT_LIT(w, s) (memcpy((w), "" s, sizeof(s) - 1), (w) + sizeof(s) - 1)

static char *put_u64(char *w, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(w, tmp + i, sizeof tmp - i);
	return w + sizeof tmp - i;
}

/* A quoted hexadecimal string: "0x7f3a...". */
static char *put_hex(char *w, uint64_t v)
{
	char tmp[16];
	size_t i = sizeof tmp;
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	w = PUT_LIT(w, "\"0x");
	memcpy(w, tmp + i, sizeof tmp - i);
	w += sizeof tmp - i;
	*w++ = '"';
	return w;
}

/* Nanoseconds as microseconds: 12.345. */
static char *put_us(char *w, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	w = put_u64(w, (uint64_t)ns / 1000);
	*w++ = '.';
	*w++ = (char)('0' + ns / 100 % 10);
	*w++ = (char)('0' + ns / 10 % 10);
	*w++ = (char)('0' + ns % 10);
	return w;
}

static char *put_text(char *w, const char *s)
{
	size_t n = strlen(s);
	memcpy(w, s, n);
	return w + n;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

/* The room a string of len bytes may take, quoted and escaped. */
#define STR_ROOM(len) (6 * (len) + 2)

/* A JSON string of len bytes of s: any byte may come in (a command line);
 * what is not valid UTF-8 goes out as U+FFFD. */
static char *put_str(char *w, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	*w++ = '"';
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		size_t k = 1;
		if (c == '"' || c == '\\') {
			*w++ = '\\';
			*w++ = (char)c;
		} else if (c < 0x20) {
			w = PUT_LIT(w, "\\u00");
			*w++ = "0123456789abcdef"[c >> 4];
			*w++ = "0123456789abcdef"[c & 15];
		} else if (c < 0x80) {
			*w++ = (char)c;
		} else if ((k = utf8_len(u + i, len - i))) {
			memcpy(w, s + i, k);
			w += k;
		} else {
			w = PUT_LIT(w, "\\ufffd");
			k = 1;
		}
		i += k;
	}
	*w++ = '"';
	return w;
}

__attribute__((format(printf, 2, 3)))
static void outf(struct herd__trace_out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (k <= 0)
		return;
	size_t n = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
	char *w = reserve(o, n);
	memcpy(w, line, n);
	commit(o, w + n);
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

/* Nanoseconds from the start at the event's ticks, on the line of the
 * round whose stretch holds them (nearly always the newest; ticks older
 * than the oldest line kept are extrapolated on it). */
static int64_t ns_of(const struct herd__trace_out *o, int64_t tick)
{
	const struct segment *s = &o->seg[(o->nseg - 1) % SEGMENTS];
	for (unsigned i = 1; i < SEGMENTS && i < o->nseg &&
			     (int64_t)((uint64_t)tick - s->at.tick) < 0; i++)
		s = &o->seg[(o->nseg - 1 - i) % SEGMENTS];
	double d = (double)(int64_t)((uint64_t)tick - s->at.tick) * s->ns_per_tick;
	return s->at.ns + (int64_t)d - o->start;
}

static const char *site_text(struct herd__trace_out *o, uint64_t site, uint32_t is_pc)
{
	if (!site)
		return "?";
	if (!is_pc)
		return (const char *)(uintptr_t)site;
	struct site_name *sn = &o->sites[(site >> 2) % SITE_CACHE];
	if (sn->pc != site) {
		sn->pc = site;
		herd__symbolize(site - 1, sn->name, sizeof sn->name);
	}
	return sn->name;
}

static const char *stop_text(uint64_t why)
{
	if (why == HERD__TR_STOP_YIELD)
		return "yield";
	if (why == HERD__TR_STOP_END)
		return "end";
	return why < HERD__WHY_COUNT ? herd__why_name((unsigned)why) : "?";
}

/* The start of an event of the program: {"ph":"P","pid":1,"tid":L,"ts":T */
static char *put_head(char *w, char ph, unsigned lane, int64_t ns)
{
	w = PUT_LIT(w, "{\"ph\":\"");
	*w++ = ph;
	w = PUT_LIT(w, "\",\"pid\":1,\"tid\":");
	w = put_u64(w, lane);
	w = PUT_LIT(w, ",\"ts\":");
	return put_us(w, ns);
}

/* A task's stretch on a worker, named by its site (as Go's trace names a
 * goroutine by its function), its id in the arguments. */
static void slice_end(struct herd__trace_out *o, unsigned lane, const herd__trace_ev *ev)
{
	struct lane *l = &o->lanes[lane];
	if (!l->open || l->id != ev->a)
		return; /* its start was lost */
	l->open = false;
	const char *site = site_text(o, l->site, l->site_pc);
	size_t slen = strnlen(site, 256);
	char *w = reserve(o, 256 + STR_ROOM(slen));
	w = put_head(w, 'X', lane, l->ns);
	w = PUT_LIT(w, ",\"dur\":");
	w = put_us(w, ns_of(o, ev->ts) - l->ns);
	w = PUT_LIT(w, ",\"name\":");
	w = put_str(w, site, slen);
	w = PUT_LIT(w, ",\"args\":{\"task\":");
	w = put_u64(w, ev->a);
	w = PUT_LIT(w, ",\"stop\":\"");
	w = put_text(w, stop_text(ev->b));
	*w++ = '"';
	if (ev->c) {
		w = PUT_LIT(w, ",\"on\":");
		w = put_hex(w, ev->c);
	}
	commit(o, PUT_LIT(w, "}},\n"));
}

static void proc_slice(struct herd__trace_out *o, const herd__trace_ev *ev)
{
	char status[32];
	int st = (int)(int64_t)ev->b;
	int64_t start = (int64_t)ev->c - o->start, end = ns_of(o, ev->ts);
	if (HERD_PROC_EXITED(st))
		snprintf(status, sizeof status, "exit %d", st);
	else if (HERD_PROC_SIGNALED(st))
		snprintf(status, sizeof status, "signal %d", HERD_PROC_SIGNAL(st));
	else
		snprintf(status, sizeof status, "unknown (%d)", st);
	outf(o, "{\"ph\":\"M\",\"pid\":2,\"tid\":%" PRIu64 ",\"name\":\"thread_name\","
		"\"args\":{\"name\":\"pid %" PRIu64 "\"}},\n", ev->a, ev->a);
	char *w = reserve(o, 256 + STR_ROOM(ev->text));
	w = PUT_LIT(w, "{\"ph\":\"X\",\"pid\":2,\"tid\":");
	w = put_u64(w, ev->a);
	w = PUT_LIT(w, ",\"ts\":");
	w = put_us(w, start);
	w = PUT_LIT(w, ",\"dur\":");
	w = put_us(w, end > start ? end - start : 0);
	w = st == 0 ? PUT_LIT(w, ",\"cname\":\"good\"") : PUT_LIT(w, ",\"cname\":\"bad\"");
	w = PUT_LIT(w, ",\"name\":");
	w = put_str(w, (const char *)(ev + 1), ev->text);
	w = PUT_LIT(w, ",\"args\":{\"pid\":");
	w = put_u64(w, ev->a);
	w = PUT_LIT(w, ",\"status\":\"");
	w = put_text(w, status);
	commit(o, PUT_LIT(w, "\"}},\n"));
}

static void instant(struct herd__trace_out *o, unsigned lane, const herd__trace_ev *ev)
{
	static const char *const what[] = {
		[HERD__TR_MON_RESCUE] = "rescue: a worker's queue moved",
		[HERD__TR_MON_STUCK] = "every worker stuck",
		[HERD__TR_MON_DEADLOCK] = "deadlock",
	};
	char *w = reserve(o, 256);
	w = put_head(w, 'i', lane, ns_of(o, ev->ts));
	if (ev->kind == HERD__TR_CANCEL) {
		w = PUT_LIT(w, ",\"s\":\"t\",\"name\":\"cancel\",\"args\":{\"scope\":");
		w = put_hex(w, ev->b);
	} else {
		const char *name = ev->a < sizeof what / sizeof *what && what[ev->a] ?
					   what[ev->a] : "?";
		w = PUT_LIT(w, ",\"s\":\"g\",\"name\":\"");
		w = put_text(w, name);
		w = PUT_LIT(w, "\",\"args\":{\"worker\":");
		w = put_u64(w, ev->b);
	}
	commit(o, PUT_LIT(w, "}},\n"));
}

/* A flow: "s" where a task is spawned or woken, "f" where it next runs
 * (bound to the slice it starts: "bp":"e"). The id is the task's address,
 * which is not reused before the flow has ended. */
static void flow(struct herd__trace_out *o, char ph, unsigned lane, int64_t ns, uint64_t id)
{
	char *w = reserve(o, 256);
	w = put_head(w, ph, lane, ns);
	w = ph == 'f' ? PUT_LIT(w, ",\"bp\":\"e\",\"cat\":\"ready\",\"name\":\"ready\",\"id\":")
		      : PUT_LIT(w, ",\"cat\":\"ready\",\"name\":\"ready\",\"id\":");
	w = put_hex(w, id);
	commit(o, PUT_LIT(w, "},\n"));
}

static void event(struct herd__trace_out *o, unsigned lane, const herd__trace_ev *ev)
{
	struct lane *l = &o->lanes[lane];
	switch (ev->kind) {
	case HERD__TR_RUN:
		*l = (struct lane){.open = true, .id = ev->a, .ns = ns_of(o, ev->ts),
				   .site = ev->c,
				   .site_pc = ev->flags & HERD__TR_RUN_SITE_PC};
		if (ev->flags & (HERD__TR_RUN_FIRST | HERD__TR_RUN_WOKEN))
			flow(o, 'f', lane, l->ns, ev->b);
		break;
	case HERD__TR_STOP:
		slice_end(o, lane, ev);
		break;
	case HERD__TR_WAKE:
	case HERD__TR_SPAWN:
		flow(o, 's', lane, ns_of(o, ev->ts), ev->b);
		break;
	case HERD__TR_PROC:
		proc_slice(o, ev);
		break;
	case HERD__TR_CANCEL:
	case HERD__TR_MONITOR:
		instant(o, lane, ev);
		break;
	}
}

/* Writes what buffer b has published, up to the round's point. */
static void drain(struct herd__trace_out *o, herd__trace_buf *b, unsigned lane)
{
	herd__trace_chunk *c;
	while ((c = herd__trace_next_chunk(b))) {
		uint32_t used = atomic_load_explicit(&c->used, mo_acquire);
		if (b->read >= used)
			return; /* nothing new, and no next chunk yet */
		while (b->read < used) {
			const herd__trace_ev *ev = (const void *)(c->data + b->read);
			if ((int64_t)((uint64_t)ev->ts - o->to.tick) > 0 && !o->last)
				return; /* the next round's */
			event(o, lane, ev);
			b->read += (uint32_t)(sizeof *ev + ((ev->text + 7u) & ~7u));
		}
	}
}

/* ------------------------------------------------------------------ */
/* The file                                                           */
/* ------------------------------------------------------------------ */

static void header(herd__rt *rt, struct herd__trace_out *o)
{
	outf(o, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"version\":\"herd %d.%d.%d\","
		"\"workers\":%u,\"seed\":\"%" PRIu64 "\"},\"traceEvents\":[\n",
	     HERD_VERSION_MAJOR, HERD_VERSION_MINOR, HERD_VERSION_PATCH, rt->nworkers,
	     rt->seed);
	outf(o, "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"process_name\","
		"\"args\":{\"name\":\"herd (pid %d)\"}},\n", (int)rt->pid);
	outf(o, "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\","
		"\"args\":{\"name\":\"supervisor and other threads\"}},\n");
	for (unsigned i = 0; i < rt->nworkers; i++)
		outf(o, "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\","
			"\"args\":{\"name\":\"worker %u\"}},\n", i + 1, i);
	outf(o, "{\"ph\":\"M\",\"pid\":2,\"tid\":0,\"name\":\"process_name\","
		"\"args\":{\"name\":\"child processes\"}},\n");
	out_flush(o);
	out_close_for_now(o);
}

static struct point point_now(void)
{
	struct point p;
	p.tick = herd__os_ticks();
	p.ns = herd_now();
	return p;
}

int herd__trace_start(herd__rt *rt, const char *path)
{
	struct herd__trace_out *o = calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->lanes = calloc(rt->nworkers + 1, sizeof *o->lanes);
	int rc = o->lanes ? herd__trace_new(rt) : -ENOMEM;
	if (!rc) {
		/* O_NONBLOCK: a FIFO nobody reads fails (ENXIO) rather than
		 * holding herd_run up for ever; the writes then block again. */
		o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
		if (o->fd < 0 || fcntl(o->fd, F_SETFL, 0) < 0) {
			rc = -errno;
			if (o->fd >= 0)
				close(o->fd);
			herd__trace_free(rt);
		} else {
			struct stat st;
			o->seekable = fstat(o->fd, &st) == 0 && S_ISREG(st.st_mode);
		}
	}
	if (rc) {
		free(o->lanes);
		free(o);
		return rc;
	}
	o->start = rt->start_ns;
	o->to = point_now();
	rt->run->trace_out = o;
	header(rt, o);
	return 0;
}

void herd__trace_flush(herd__rt *rt)
{
	struct herd__trace_out *o = rt->run->trace_out;
	if (!o)
		return;
	struct point now;
	do /* rounds are milliseconds apart: this loops only at the end */
		now = point_now();
	while (now.tick == o->to.tick || now.ns <= o->to.ns);
	struct segment *s = &o->seg[o->nseg++ % SEGMENTS];
	int64_t ticks = (int64_t)(now.tick - o->to.tick);
	s->at = o->to;
	/* Ticks that went back (CPUs' counters out of step): no negative
	 * slope, the line before goes on. */
	s->ns_per_tick = ticks > 0 ? (double)(now.ns - o->to.ns) / (double)ticks
		       : o->nseg > 1 ? o->seg[(o->nseg - 2) % SEGMENTS].ns_per_tick : 1.0;
	o->to = now;
	herd__trace *tr = rt->trace;
	drain(o, &tr->other, 0);
	for (unsigned i = 0; i < rt->nworkers; i++)
		drain(o, &tr->bufs[i], i + 1);
	out_flush(o);
	out_close_for_now(o);
}

void herd__trace_end(herd__rt *rt)
{
	struct herd__trace_out *o = rt->run->trace_out;
	if (!o)
		return;
	/* The workers have stopped: every event goes out, even one whose
	 * ticks, read on another CPU, come out past this last point. */
	o->last = true;
	herd__trace_flush(rt);
	uint64_t lost = atomic_load_explicit(&rt->trace->other.lost, mo_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++)
		lost += atomic_load_explicit(&rt->trace->bufs[i].lost, mo_relaxed);
	/* The last event has no comma after it: the array closes here. */
	char *w = reserve(o, 256);
	w = put_head(w, 'i', 0, herd_now() - o->start);
	w = PUT_LIT(w, ",\"s\":\"g\",\"name\":\"end\",\"args\":{\"lost_events\":");
	w = put_u64(w, lost);
	commit(o, PUT_LIT(w, "}}\n]}\n"));
	out_flush(o);
	if (o->seekable && !o->err && ftruncate(o->fd, o->off) < 0)
		o->err = -errno; /* the longer closing of the rounds would remain */
	if (o->err)
		fprintf(stderr, "herd: HERD_TRACE: writing the trace failed: %s\n",
			strerror(-o->err));
	close(o->fd);
	herd__trace_free(rt);
	free(o->lanes);
	free(o);
	rt->run->trace_out = NULL;
}
