/*
 * trace-json.c - HERD_TRACE's converter: the binary form the program
 * writes while it runs (core/trace-fmt.h) in, Chrome trace-event JSON out,
 * which Perfetto, chrome://tracing and herd-trace-html open. Standalone
 * (the C library only), so that herd-trace-html builds it in too, for a
 * file whose program was killed before it could convert it.
 *
 * The JSON. Process 1 is the program: lane (tid) 0 holds the supervisor
 * and the threads that are not workers, lane i + 1 worker i. Each stretch
 * of a task on a worker is one complete slice ("X", named by its spawn
 * site, with its id and why it stopped); each spawn or wake is a flow
 * ("s") that ends ("f") where the task next runs (its id is the task's,
 * or for a spawn the task's address: it has no id before it runs); one that
 * starts outside a task's slice (on lane 0, or on a worker between tasks:
 * a timer, the poller) starts from a slice of no length ("spawn" or
 * "wake", with no task) for viewers to bind it to;
 * cancellations and the supervisor's interventions are instants ("i").
 * Process 2 holds a lane per child process (tid = its pid), with one slice
 * from its start to its exit, named by its command, with its status.
 * Times are microseconds from herd_run's start. A lane's events are read
 * in order and a slice is written when it ends, so the slices of one lane
 * never overlap.
 *
 * Time. Events carry ticks, cheaper than the clock; the file holds points
 * read on both clocks (one per round of the supervisor), and ticks map
 * linearly onto the clock between the two points around them (past the
 * last, on the last line). A whole file's points are read first; a writer
 * that converts as the program runs gives each round's point before its
 * events, so only the few events published after it are extrapolated.
 *
 * Nothing is shared: a converter belongs to its caller's thread.
 */
#include "run/trace-json.h"
#include "core/trace-fmt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define POINTS_LIVE 4096u   /* converting as the program runs: kept */
#define TEXT_CAP 4096u      /* a command line (the recorder cuts at 1 KiB) */

struct lane {
	uint64_t last;      /* ticks of its last event */
	uint64_t last_id;   /* the id of its last first RUN */
	uint32_t addr_hi;   /* the high half of its last address */
	bool open;          /* a task runs: its slice is open */
	bool site_pc;
	uint64_t id, site;
	int64_t ns;
};

struct site_name {
	uint64_t site;
	char *name;
};

struct herd__tconv {
	bool meta;              /* the META frame came */
	bool whole;             /* a whole file: its points read first */
	uint32_t nlanes;
	struct lane *lanes;
	int64_t run_ns;         /* time 0 */
	int64_t last_ns;        /* the latest event's, for the end */
	uint64_t events;
	char **why;             /* the wait reasons' names */
	uint32_t nwhy;
	herd__trf_point *pts;   /* in order of ticks */
	size_t npts, cap_pts, seg; /* seg: the last segment used */
	struct site_name *sites; /* open addressing, a power of 2 */
	size_t nsites, cap_sites;
	herd__jw jw;
};

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

/* A point after the last (a clock that did not move is no line). */
static void point_add(herd__tconv *c, herd__trf_point p)
{
	if (c->npts) {
		const herd__trf_point *l = &c->pts[c->npts - 1];
		if (p.tick <= l->tick || p.ns <= l->ns)
			return;
	}
	if (!c->whole && c->npts == POINTS_LIVE) { /* the oldest go */
		memmove(c->pts, c->pts + POINTS_LIVE / 2,
			POINTS_LIVE / 2 * sizeof *c->pts);
		c->npts = POINTS_LIVE / 2;
		c->seg = 0;
	}
	if (c->npts == c->cap_pts) {
		size_t cap = c->cap_pts ? 2 * c->cap_pts : 64;
		herd__trf_point *n = realloc(c->pts, cap * sizeof *n);
		if (!n)
			return; /* the line before goes on */
		c->pts = n;
		c->cap_pts = cap;
	}
	c->pts[c->npts++] = p;
}

/* Nanoseconds from herd_run's start at `tick`: on the segment between the
 * points around it (the last one used first: events come mostly in
 * order), else on the first or last one, extended. */
static int64_t ns_of(herd__tconv *c, uint64_t tick)
{
	if (c->npts < 2)
		return (c->npts ? c->pts[0].ns + (int64_t)(tick - c->pts[0].tick) : 0) - c->run_ns;
	size_t s = c->seg;
	if (s + 1 >= c->npts || tick < c->pts[s].tick || tick >= c->pts[s + 1].tick) {
		size_t lo = 0, hi = c->npts - 1; /* the last point at or before tick */
		while (lo + 1 < hi) {
			size_t mid = (lo + hi) / 2;
			if (c->pts[mid].tick <= tick)
				lo = mid;
			else
				hi = mid;
		}
		s = c->seg = lo;
		if (tick >= c->pts[c->npts - 1].tick)
			s = c->npts - 2; /* past the last: its line goes on */
	}
	const herd__trf_point *a = &c->pts[s], *b = &c->pts[s + 1];
	double d = (double)(int64_t)(tick - a->tick) * (double)(b->ns - a->ns) /
		   (double)(b->tick - a->tick);
	return a->ns + (int64_t)d - c->run_ns;
}

/* ------------------------------------------------------------------ */
/* Sites                                                              */
/* ------------------------------------------------------------------ */

static struct site_name *site_slot(herd__tconv *c, uint64_t site)
{
	size_t mask = c->cap_sites - 1;
	for (size_t i = (size_t)(site >> 3) * 0x9e3779b97f4a7c15u >> 20 & mask;;
	     i = (i + 1) & mask)
		if (!c->sites[i].name || c->sites[i].site == site)
			return &c->sites[i];
}

static void site_add(herd__tconv *c, uint64_t site, const char *name, size_t len)
{
	if (2 * (c->nsites + 1) > c->cap_sites) {
		size_t cap = c->cap_sites ? 2 * c->cap_sites : 64;
		struct site_name *old = c->sites, *n = calloc(cap, sizeof *n);
		if (!n)
			return;
		size_t old_cap = c->cap_sites;
		c->sites = n;
		c->cap_sites = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].name)
				*site_slot(c, old[i].site) = old[i];
		free(old);
	}
	struct site_name *s = site_slot(c, site);
	char *copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, name, len);
	copy[len] = 0;
	if (s->name)
		free(s->name);
	else
		c->nsites++;
	*s = (struct site_name){site, copy};
}

/* A site's name; an address if it has none ("?" for none at all). */
static const char *site_text(herd__tconv *c, uint64_t site, char tmp[20])
{
	if (!site)
		return "?";
	if (c->cap_sites) {
		struct site_name *s = site_slot(c, site);
		if (s->name)
			return s->name;
	}
	static const char hex[] = "0123456789abcdef";
	char *w = tmp + 19;
	*w = 0;
	do
		*--w = hex[site & 15];
	while (site >>= 4);
	*--w = 'x';
	*--w = '0';
	return w;
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

static const char *stop_text(herd__tconv *c, unsigned why)
{
	if (why == HERD__TR_STOP_YIELD)
		return "yield";
	if (why == HERD__TR_STOP_END)
		return "end";
	return why < c->nwhy ? c->why[why] : "?";
}

/* A task's stretch on a worker ends: its slice, named by its site (as
 * Go's trace names a goroutine by its function), its id in the arguments. */
static void slice_end(herd__tconv *c, unsigned lane, int64_t ns, unsigned why, uint64_t obj)
{
	struct lane *l = &c->lanes[lane];
	if (!l->open)
		return; /* its start was lost */
	l->open = false;
	char tmp[20];
	herd__jw_slice(&c->jw, lane, l->ns, ns, site_text(c, l->site, tmp), l->id,
		       stop_text(c, why), obj);
}

static const char *monitor_text(uint64_t what)
{
	static const char *const text[] = {
		[HERD__TR_MON_RESCUE] = "rescue: a worker's queue moved",
		[HERD__TR_MON_STUCK] = "every worker stuck",
		[HERD__TR_MON_DEADLOCK] = "deadlock",
	};
	return what < sizeof text / sizeof *text && text[what] ? text[what] : "?";
}

/* A long event's text: its length, as far as a reader believes it. */
static size_t text_len(const uint64_t *p)
{
	return p[4] > TEXT_CAP ? TEXT_CAP : (size_t)p[4];
}

/* The words an event takes, from its first two (0 if it is not whole in
 * the n words left). */
static size_t event_words(const uint64_t *p, size_t n)
{
	unsigned arg = HERD__TR_ARG(p[0]);
	size_t k;
	switch (HERD__TR_KIND(p[0])) {
	case HERD__TR_RUN:
		k = 1 + !!(arg & HERD__TR_WIDE) + !(arg & HERD__TR_RUN_SAME_SITE) +
		    ((arg & HERD__TR_RUN_FIRST) && !(arg & HERD__TR_RUN_ID_NEXT));
		break;
	case HERD__TR_STOP:
		k = arg & HERD__TR_STOP_OBJ ? 2 : 1;
		break;
	case HERD__TR_WAKE:
	case HERD__TR_SPAWN:
		k = arg & HERD__TR_WIDE ? 2 : 1;
		break;
	case HERD__TR_TIME:
		k = 2;
		break;
	default:
		if (n < 1 + HERD__TR_LONG_WORDS)
			return 0;
		k = 1 + HERD__TR_LONG_WORDS + (size_t)((text_len(p) + 7) / 8);
		break;
	}
	return k <= n ? k : 0;
}

/* A task's address (x, or the next word), and the lane's high half. */
static uint64_t addr_of(struct lane *l, const uint64_t *p, const uint64_t **next)
{
	if (HERD__TR_ARG(p[0]) & HERD__TR_WIDE) {
		l->addr_hi = (uint32_t)(p[1] >> 32);
		*next = p + 2;
		return p[1];
	}
	*next = p + 1;
	return (uint64_t)l->addr_hi << 32 | HERD__TR_X(p[0]);
}

/* A task's id (x, or the next word). */
static uint64_t id_of(const uint64_t *p, const uint64_t **next)
{
	bool wide = HERD__TR_ARG(p[0]) & HERD__TR_WIDE;
	*next = p + 1 + wide;
	return wide ? p[1] : HERD__TR_X(p[0]);
}

static void run(herd__tconv *c, unsigned lane, int64_t ns, const uint64_t *p)
{
	struct lane *l = &c->lanes[lane];
	unsigned arg = HERD__TR_ARG(p[0]);
	const uint64_t *q;
	uint64_t addr = 0, id;
	if (arg & HERD__TR_RUN_ENDS)
		slice_end(c, lane, ns, HERD__TR_STOP_END, 0);
	if (arg & HERD__TR_RUN_FIRST) {
		addr = addr_of(l, p, &q);
		id = arg & HERD__TR_RUN_ID_NEXT ? l->last_id + 1 : *q++;
		l->last_id = id;
	} else {
		id = id_of(p, &q);
	}
	if (!(arg & HERD__TR_RUN_SAME_SITE)) {
		l->site = *q;
		l->site_pc = arg & HERD__TR_RUN_SITE_PC;
	}
	l->open = true;
	l->id = id;
	l->ns = ns;
	if (arg & HERD__TR_RUN_FIRST)
		herd__jw_flow(&c->jw, 'f', lane, ns, addr);
	else if (arg & HERD__TR_RUN_WOKEN)
		herd__jw_flow(&c->jw, 'f', lane, ns, id);
}

/* One event of lane l. */
static void event(herd__tconv *c, unsigned lane, const uint64_t *p)
{
	struct lane *l = &c->lanes[lane];
	unsigned kind = HERD__TR_KIND(p[0]), arg = HERD__TR_ARG(p[0]);
	if (kind == HERD__TR_TIME) {
		l->last = p[1];
		return;
	}
	l->last += HERD__TR_DT(p[0]);
	int64_t ns = ns_of(c, l->last);
	c->last_ns = ns > c->last_ns ? ns : c->last_ns;
	c->events++;
	const uint64_t *q;
	switch (kind) {
	case HERD__TR_RUN:
		run(c, lane, ns, p);
		break;
	case HERD__TR_STOP:
		slice_end(c, lane, ns, arg & ~(unsigned)HERD__TR_STOP_OBJ,
			  arg & HERD__TR_STOP_OBJ ? p[1] : 0);
		break;
	case HERD__TR_WAKE:
		if (!l->open)
			herd__jw_mark(&c->jw, lane, ns, "wake");
		herd__jw_flow(&c->jw, 's', lane, ns, id_of(p, &q));
		break;
	case HERD__TR_SPAWN:
		if (!l->open)
			herd__jw_mark(&c->jw, lane, ns, "spawn");
		herd__jw_flow(&c->jw, 's', lane, ns, addr_of(l, p, &q));
		break;
	case HERD__TR_PROC:
		herd__jw_proc(&c->jw, (int64_t)p[3] - c->run_ns, ns, p[1], (int)(int64_t)p[2],
			      (const char *)(p + 1 + HERD__TR_LONG_WORDS), text_len(p));
		break;
	case HERD__TR_CANCEL:
		herd__jw_instant(&c->jw, lane, ns, false, "cancel", "scope", p[2], true);
		break;
	case HERD__TR_MONITOR:
		herd__jw_instant(&c->jw, lane, ns, true, monitor_text(p[1]), "worker", p[2], false);
		break;
	}
}

static void events(herd__tconv *c, unsigned lane, const uint64_t *p, size_t n)
{
	if (lane >= c->nlanes)
		return;
	for (size_t k; n && (k = event_words(p, n)); p += k, n -= k)
		event(c, lane, p);
}

/* ------------------------------------------------------------------ */
/* Frames                                                             */
/* ------------------------------------------------------------------ */

static int meta(herd__tconv *c, const void *payload, size_t len)
{
	herd__trf_meta m;
	if (c->meta || len < sizeof m)
		return -EINVAL;
	memcpy(&m, payload, sizeof m);
	c->meta = true;
	c->nlanes = m.nworkers + 1;
	c->lanes = calloc(c->nlanes, sizeof *c->lanes);
	c->why = calloc(m.nwhy + 1, sizeof *c->why);
	if (!c->lanes || !c->why)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->nlanes; i++)
		c->lanes[i].last = m.start.tick;
	const char *s = (const char *)payload + sizeof m, *end = (const char *)payload + len;
	for (; c->nwhy < m.nwhy && s < end; c->nwhy++) {
		size_t k = strnlen(s, (size_t)(end - s));
		if (!(c->why[c->nwhy] = strndup(s, k)))
			return -ENOMEM;
		s += k + 1;
	}
	c->run_ns = m.run_ns;
	point_add(c, m.start);
	herd__jw_header(&c->jw, &m);
	return c->jw.err;
}

int herd__tconv_frame(herd__tconv *c, unsigned type, unsigned lane, const void *payload,
		      size_t len)
{
	if (type == HERD__TRF_META)
		return meta(c, payload, len);
	if (!c->meta)
		return -EINVAL;
	herd__trf_point pt;
	switch (type) {
	case HERD__TRF_POINT:
		if (len >= sizeof pt) {
			memcpy(&pt, payload, sizeof pt);
			point_add(c, pt);
		}
		break;
	case HERD__TRF_SITE:
		if (len > 8) {
			uint64_t site;
			memcpy(&site, payload, 8);
			const char *name = (const char *)payload + 8;
			site_add(c, site, name, strnlen(name, len - 8 < HERD__JW_NAME_MAX ?
							       len - 8 : HERD__JW_NAME_MAX));
		}
		break;
	case HERD__TRF_EVENTS:
		events(c, lane, payload, len / 8);
		break;
	}
	return c->jw.err;
}

bool herd__tconv_is_binary(const void *data, size_t len)
{
	return len >= 8 && !memcmp(data, HERD__TRB_MAGIC, 8);
}

/* Calls fn on each whole frame of data, and on a frame of events cut
 * short (its whole events); *cut if the file ends in a frame. */
static int each_frame(herd__tconv *c, const unsigned char *data, size_t len, bool *cut,
		      int (*fn)(herd__tconv *, unsigned, unsigned, const void *, size_t))
{
	size_t at = 8;
	*cut = false;
	while (at < len) {
		herd__trf_head h;
		if (len - at < sizeof h) {
			*cut = true;
			break;
		}
		memcpy(&h, data + at, sizeof h);
		at += sizeof h;
		size_t n = h.len, room = len - at;
		if (n > room) {
			*cut = true;
			if (h.type != HERD__TRF_EVENTS)
				break;
			n = room;
		}
		/* Frames are 8-byte aligned in the file; data is too (from
		 * malloc or mmap), so that events may be read in place. */
		int rc = fn(c, h.type, h.lane, data + at, n);
		if (rc)
			return rc;
		at += (n + 7) & ~(size_t)7;
	}
	return 0;
}

static int point_frame(herd__tconv *c, unsigned type, unsigned lane, const void *payload,
		       size_t len)
{
	(void)lane;
	if (type == HERD__TRF_POINT && len >= sizeof(herd__trf_point)) {
		herd__trf_point pt;
		memcpy(&pt, payload, sizeof pt);
		point_add(c, pt);
	}
	return 0;
}

int herd__tconv_file(herd__tconv *c, const void *data, size_t len, bool *cut)
{
	const unsigned char *d = data;
	herd__trf_head h;
	herd__trf_meta m;
	*cut = false;
	if (!herd__tconv_is_binary(data, len) || len < 8 + sizeof h + sizeof m)
		return -EINVAL;
	memcpy(&h, d + 8, sizeof h);
	if (h.type != HERD__TRF_META || h.len < sizeof m)
		return -EINVAL;
	memcpy(&m, d + 8 + sizeof h, sizeof m);
	c->whole = true;
	point_add(c, m.start);
	each_frame(c, d, len, cut, point_frame);
	return each_frame(c, d, len, cut, herd__tconv_frame);
}

/* ------------------------------------------------------------------ */
/* The converter                                                      */
/* ------------------------------------------------------------------ */

herd__tconv *herd__tconv_new(herd__tconv_out out, void *ctx)
{
	herd__tconv *c = calloc(1, sizeof *c);
	if (c) {
		c->jw.out = out;
		c->jw.ctx = ctx;
	}
	return c;
}

void herd__tconv_free(herd__tconv *c)
{
	if (!c)
		return;
	free(c->lanes);
	for (uint32_t i = 0; i < c->nwhy; i++)
		free(c->why[i]);
	free(c->why);
	free(c->pts);
	for (size_t i = 0; i < c->cap_sites; i++)
		free(c->sites[i].name);
	free(c->sites);
	free(c);
}

uint64_t herd__tconv_events(const herd__tconv *c)
{
	return c->events;
}

int herd__tconv_flush(herd__tconv *c)
{
	return herd__jw_flush(&c->jw);
}

int herd__tconv_end(herd__tconv *c, int64_t ns, uint64_t lost)
{
	return herd__jw_end(&c->jw, ns < 0 ? c->last_ns : ns - c->run_ns, lost);
}
