/*
 * trace.h - the event recorder behind HERD_TRACE (trace.c): what each
 * worker runs, why a task stops, who wakes whom, spawns, child processes,
 * cancellations and the supervisor's interventions. The core records, in
 * the compact binary form of trace-fmt.h; run/trace-file.c writes the
 * chunks out as they are and run/trace-json.c turns them into Chrome
 * trace-event JSON. Included by core.h, after herd__worker.
 *
 * Each worker appends to its own buffer, a list of chunks, with plain
 * stores and one release store of the chunk's `used` count per event: no
 * lock and no locked instruction on the hot path. The writer (the
 * supervisor) reads up to `used` (acquire), and moves to the next chunk
 * once the worker has linked one (release) and it has read the last
 * event. Threads that are not workers share one buffer under a lock.
 * A producer names each site once (a small cache of those it has handed
 * over): the writer must name a site before it writes an event that
 * holds it, since the site's pointer means nothing outside the process.
 * When tracing is off, every hook costs a test of a pointer in the
 * worker's own line (herd__worker.trace).
 */
#ifndef HERD_CORE_TRACE_H
#define HERD_CORE_TRACE_H

#include "core/trace-fmt.h"

/*
 * A chunk's events lie in a region of HERD__TRACE_REGION bytes, aligned
 * for a direct write (HERD__OS_DIRECT_ALIGN): a frame head's 8 bytes, the
 * events (`size` bytes of room), and 8 bytes more for the head of a
 * padding frame over the room left. The writer fills in both heads once
 * the chunk is full, and writes the region out as it is (trace-file.c):
 * no copy. The chunk's own fields follow the region.
 */
#define HERD__TRACE_REGION (64u * 1024)

typedef struct herd__trace_chunk {
	struct herd__trace_chunk *_Atomic next; /* linked when full (release) */
	_Atomic uint32_t used;  /* bytes of events published (release) */
	uint32_t size;          /* bytes of data: HERD__TRACE_REGION - 16 */
	unsigned char *data;    /* the events: 8 bytes into the region */
} herd__trace_chunk;

/* The region of a chunk (see above). */
static inline unsigned char *herd__trace_region(herd__trace_chunk *c)
{
	return c->data - 8;
}

#define HERD__TRACE_SEEN 64u /* sites a producer knows are named */

/* A producer's buffer: its chunks, oldest first. */
typedef struct herd__trace_buf {
	/* The producer's. */
	herd__trace_chunk *cur;
	uint32_t used;           /* in cur: its `used`, without the load */
	uint64_t last;           /* the ticks of its last event */
	bool fresh;              /* a STOP came last: herd__trace_run_ticks */
	uintptr_t last_site;     /* the site of its last RUN */
	uint64_t last_id;        /* the id of its last first RUN */
	uint32_t addr_hi;        /* the high half of its last address */
	struct herd__trace *tr;
	uintptr_t seen[HERD__TRACE_SEEN]; /* sites handed to tr->sites */
	/* The writer's, a line away (calloc'd: no alignment to ask for). */
	char gap[HERD__CACHELINE];
	herd__trace_chunk *head; /* not yet written out */
	uint32_t read;           /* the writer's offset in head */
	_Atomic uint64_t lost;   /* events dropped for want of memory */
	/* Chunks the writer has emptied, for the producer to fill again:
	 * each slot is taken and given by exchange. */
	herd__trace_chunk *_Atomic spare[16];
} herd__trace_buf;

/* A task's site, for the writer to name. */
typedef struct herd__trace_site {
	uintptr_t site;
	bool pc;                 /* a return address, not text */
} herd__trace_site;

/* The runtime's recorder: rt->trace while tracing. */
typedef struct herd__trace {
	herd__mutex lock;        /* other's producer side, and sites */
	herd__trace_buf other;   /* threads that are not workers */
	herd__trace_buf *bufs;   /* one per worker */
	uint64_t start;          /* the ticks the lanes count from */
	herd__trace_site *sites; /* sites seen, in order; grows */
	uint32_t sites_cap;
	_Atomic uint32_t nsites; /* published (release) under lock */
} herd__trace;

/* Makes the recorder and the workers' buffers: 0 or -ENOMEM. Before the
 * workers start. herd__trace_free frees it after they have stopped. */
int herd__trace_new(herd__rt *rt);
void herd__trace_free(herd__rt *rt);
/* The first chunk of a buffer not yet written out, and whether the writer
 * may free it and go on to the next (it has read all of it). */
herd__trace_chunk *herd__trace_next_chunk(herd__trace_buf *b);

/* The slow side of an event: a new chunk, ticks that do not fit, text. */
void herd__trace_put(herd__trace_buf *b, uint64_t word, const uint64_t *w,
		     unsigned n, const char *text, size_t len);
/* From any thread: a worker's own buffer, or the shared one. A spawn's or
 * a wake's b is the task, whose id goes out. */
void herd__trace_any(herd__rt *rt, unsigned kind, uint64_t a, uint64_t b,
		     uint64_t c, const char *text, size_t len);
/* Hands a site the producer has not seen to the writer. */
void herd__trace_site_new(herd__trace_buf *b, uintptr_t site, bool pc);

/* An event of n words (n <= 3) after its first, at ticks `now`: in the
 * current chunk, with one release store that publishes it. Else the slow
 * side (which reads the ticks again). */
static inline void herd__trace_ev_at(herd__trace_buf *b, uint64_t now, uint64_t word,
				     unsigned n, uint64_t x, uint64_t y, uint64_t z)
{
	herd__trace_chunk *c = b->cur;
	uint32_t used = b->used, need = 8 * (n + 1);
	uint64_t dt = now - b->last;
	if (herd__unlikely(used + need > c->size || dt > HERD__TR_DT_MAX)) {
		uint64_t w[3] = {x, y, z};
		herd__trace_put(b, word, w, n, NULL, 0);
		return;
	}
	b->last = now;
	uint64_t *p = (uint64_t *)(void *)(c->data + used);
	p[0] = word | dt << HERD__TR_DT_SHIFT;
	if (n > 0)
		p[1] = x;
	if (n > 1)
		p[2] = y;
	if (n > 2)
		p[3] = z;
	b->used = used + need;
	atomic_store_explicit(&c->used, used + need, mo_release);
}

static inline void herd__trace_ev(herd__trace_buf *b, uint64_t word, unsigned n,
				  uint64_t x, uint64_t y, uint64_t z)
{
	herd__trace_ev_at(b, herd__os_ticks(), word, n, x, y, z);
}

/* A task's address (a spawn's flow): its low half in x, the whole in the
 * next word if its high half is not the lane's last (arg HERD__TR_WIDE). */
static inline unsigned herd__trace_addr(herd__trace_buf *b, herd__task *t, uint64_t *x,
					uint64_t *wide)
{
	uintptr_t a = (uintptr_t)t;
	*x = (uint64_t)(uint32_t)a << 32;
	if (herd__likely((uint32_t)((uint64_t)a >> 32) == b->addr_hi))
		return 0;
	b->addr_hi = (uint32_t)((uint64_t)a >> 32);
	*wide = a;
	return HERD__TR_WIDE;
}

/* The ticks of a RUN after a switch. The STOP of the task that switched
 * to this one came a switch before, some tens of nanoseconds: the RUN
 * takes the time of the lane's last event (that STOP, or a timer's WAKE
 * since) instead of reading the counter again (some 10 ns on an EPYC's
 * VM), one read fewer for each park. `fresh` says that a STOP came last
 * on this worker's way to the switch; the scheduler loop clears it before
 * it runs a task (the worker may have slept since). So `fresh` is set
 * only between a STOP and the RUN that follows it. A RUN in a task's end
 * (HERD__TR_RUN_ENDS) reads the counter: the task ran since its last
 * event. */
static inline uint64_t herd__trace_run_ticks(herd__trace_buf *b, unsigned how)
{
	if (how & HERD__TR_RUN_ENDS) {
		HERD__ASSERT(!b->fresh); /* the ending task's RUN took it */
		return herd__os_ticks();
	}
	bool fresh = b->fresh;
	b->fresh = false;
	return fresh ? b->last : herd__os_ticks();
}

/* Forgets that the lane's last event ends a stretch (see above). */
static inline void herd__trace_unfresh(herd__worker *w)
{
	if (herd__unlikely(w->trace != NULL))
		w->trace->fresh = false;
}

/* The general RUN (trace.c): any values, and a site not yet named. */
void herd__trace_run_any(herd__trace_buf *b, herd__task *t, unsigned how);

/* The hooks. The worker's own trace pointer is NULL when tracing is off.
 * A task runs: how it came to (HERD__TR_RUN_FIRST, _WOKEN, or 0; with
 * HERD__TR_RUN_ENDS, the task before it on its stack has just ended,
 * which takes no event of its own). Values the lane's reader knows
 * already (see trace-fmt.h) take no word: inline, the usual case, where
 * all of them are known and the event is one word (a first run's address
 * near the lane's last, its id the next, the site the lane's last, which
 * was named before that RUN); else herd__trace_run_any. */
static inline void herd__trace_run(herd__worker *w, herd__task *t, unsigned how)
{
	herd__trace_buf *b = w->trace;
	if (herd__likely(!b))
		return;
	uintptr_t site = (uintptr_t)t->site;
	uint64_t id = t->id, x;
	bool one;
	if (how & HERD__TR_RUN_FIRST) {
		uintptr_t a = (uintptr_t)t;
		x = (uint64_t)(uint32_t)a << 32;
		one = id == b->last_id + 1 && b->last_id &&
		      (uint32_t)((uint64_t)a >> 32) == b->addr_hi;
		how |= HERD__TR_RUN_ID_NEXT;
	} else {
		x = id << 32;
		one = !(id >> 32);
	}
	if (herd__unlikely(!one || site != b->last_site)) {
		herd__trace_run_any(b, t, how & ~(unsigned)HERD__TR_RUN_ID_NEXT);
		return;
	}
	if (how & HERD__TR_RUN_FIRST)
		b->last_id = id;
	how |= HERD__TR_RUN_SAME_SITE;
	how |= t->flags & HERD__TASK_SITE_PC ? HERD__TR_RUN_SITE_PC : 0;
	herd__trace_ev_at(b, herd__trace_run_ticks(b, how), HERD__TR_WORD(HERD__TR_RUN, how) | x,
			  0, 0, 0, 0);
}

static inline void herd__trace_stop(herd__worker *w, herd__task *t, unsigned why)
{
	herd__trace_buf *b = w->trace;
	if (herd__likely(!b))
		return;
	uintptr_t obj = (uintptr_t)atomic_load_explicit(&t->wait_obj, mo_relaxed);
	if (obj && why < HERD__TR_STOP_YIELD)
		herd__trace_ev(b, HERD__TR_WORD(HERD__TR_STOP, why | HERD__TR_STOP_OBJ), 1, obj, 0, 0);
	else
		herd__trace_ev(b, HERD__TR_WORD(HERD__TR_STOP, why), 0, 0, 0, 0);
	b->fresh = true;
}

/* A spawn into buffer b (a worker's own, or the shared one, locked), at
 * ticks `now`. */
static inline void herd__trace_spawn(herd__trace_buf *b, uint64_t now, herd__task *t)
{
	uint64_t x, wide = 0;
	unsigned arg = herd__trace_addr(b, t, &x, &wide);
	herd__trace_ev_at(b, now, HERD__TR_WORD(HERD__TR_SPAWN, arg) | x, arg != 0, wide, 0,
			  0);
}

/* The spawn hook (rt->trace is set): on a worker, into its own buffer,
 * without a call. A worker's spawn takes the time of the worker's last
 * event (the spawner's start, or what it recorded since) instead of
 * reading the counter (some 14 ns on an EPYC's VM; on skynet, a spawn for
 * every task): its flow starts no later than the spawn, so never after
 * the task's first run. */
static inline void herd__trace_go(herd__rt *rt, herd__worker *w, herd__task *t)
{
	if (herd__likely(w && w->trace))
		herd__trace_spawn(w->trace, w->trace->last, t);
	else
		herd__trace_any(rt, HERD__TR_SPAWN, 0, (uintptr_t)t, 0, NULL, 0);
}

/* A wake into buffer b, as above. */
static inline void herd__trace_wake_in(herd__trace_buf *b, herd__task *t)
{
	unsigned wide = t->id >> 32 ? HERD__TR_WIDE : 0;
	herd__trace_ev(b, HERD__TR_WORD(HERD__TR_WAKE, wide) | t->id << 32, wide != 0, t->id,
		       0, 0);
}

void herd__trace_wake_foreign(herd__task *t);

/* w is the waker's worker, or NULL on a thread that is not one. */
static inline void herd__trace_wake(herd__worker *w, herd__task *t)
{
	if (herd__likely(w)) {
		if (herd__unlikely(w->trace))
			herd__trace_wake_in(w->trace, t);
		return;
	}
	herd__trace_wake_foreign(t);
}

#endif
