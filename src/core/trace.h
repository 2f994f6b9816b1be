/*
 * trace.h - the event recorder behind HERD_TRACE (trace.c): what each
 * worker runs, why a task stops, who wakes whom, spawns, child processes,
 * cancellations and the supervisor's interventions. The core records;
 * run/trace-json.c writes the events out as Chrome trace-event JSON.
 * Included by core.h, after herd__worker.
 *
 * Each worker appends to its own buffer, a list of chunks, with plain
 * stores and one release store of the chunk's `used` count per event: no
 * lock and no locked instruction on the hot path. The writer (the
 * supervisor) reads up to `used` (acquire), and moves to the next chunk
 * once the worker has linked one (release) and it has read the last
 * event. Threads that are not workers share one buffer under a lock.
 * When tracing is off, every hook costs a test of a pointer in the
 * worker's own line (herd__worker.trace).
 */
#ifndef HERD_CORE_TRACE_H
#define HERD_CORE_TRACE_H

/* What an event says; a, b and c per kind. */
enum {
	HERD__TR_RUN = 1,  /* a worker runs a task: a = id, b = the task (flow),
			    * c = its site; flags HERD__TR_RUN_* */
	HERD__TR_STOP,     /* it stops: a = id, b = HERD__TR_STOP_*, or the
			    * wait's HERD__WHY_*; c = the waited object */
	HERD__TR_WAKE,     /* a task readies another: b = the task (flow) */
	HERD__TR_SPAWN,    /* a task is spawned: b = the task (flow) */
	HERD__TR_PROC,     /* a child process ended: a = pid, b = its wait
			    * status, c = when it started; text: its command */
	HERD__TR_CANCEL,   /* a scope was canceled: b = the scope */
	HERD__TR_MONITOR,  /* the supervisor: a = HERD__TR_MON_*, b = worker */
};

/* HERD__TR_RUN's flags. */
enum {
	HERD__TR_RUN_SITE_PC = 1, /* c is a return address, not text */
	HERD__TR_RUN_FIRST = 2,   /* its first run: a spawn's flow ends */
	HERD__TR_RUN_WOKEN = 4,   /* after a wait: a wake's flow ends */
};

/* HERD__TR_STOP's b besides the wait reasons (which are below 64). */
enum {
	HERD__TR_STOP_YIELD = 64,
	HERD__TR_STOP_END,
};

/* HERD__TR_MONITOR's a. */
enum {
	HERD__TR_MON_RESCUE = 1, /* a worker's queue moved to the global queue */
	HERD__TR_MON_STUCK,      /* every worker stuck on one task */
	HERD__TR_MON_DEADLOCK,   /* the deadlock report */
};

/* One event; `text` bytes follow it, padded to 8 bytes. */
typedef struct herd__trace_ev {
	int64_t ts;             /* herd__os_ticks() */
	uint16_t kind;
	uint16_t text;
	uint32_t flags;
	uint64_t a, b, c;
} herd__trace_ev;

typedef struct herd__trace_chunk {
	struct herd__trace_chunk *_Atomic next; /* linked when full (release) */
	_Atomic uint32_t used;  /* bytes of events published (release) */
	uint32_t size;          /* bytes of data */
	alignas(8) unsigned char data[];
} herd__trace_chunk;

/* A producer's buffer: its chunks, oldest first. */
typedef struct herd__trace_buf {
	herd__trace_chunk *cur;  /* the producer's */
	herd__trace_chunk *head; /* the writer's: not yet written out */
	uint32_t read;           /* the writer's offset in head */
	_Atomic uint64_t lost;   /* events dropped for want of memory */
	/* Chunks the writer has emptied, for the producer to fill again:
	 * each slot is taken and given by exchange. */
	herd__trace_chunk *_Atomic spare[4];
} herd__trace_buf;

/* The runtime's recorder: rt->trace while tracing. */
typedef struct herd__trace {
	herd__mutex lock;        /* other: threads that are not workers */
	herd__trace_buf other;
	herd__trace_buf *bufs;   /* one per worker */
} herd__trace;

/* Makes the recorder and the workers' buffers: 0 or -ENOMEM. Before the
 * workers start. herd__trace_free frees it after they have stopped. */
int herd__trace_new(herd__rt *rt);
void herd__trace_free(herd__rt *rt);
/* The first chunk of a buffer not yet written out, and whether the writer
 * may free it and go on to the next (it has read all of it). */
herd__trace_chunk *herd__trace_next_chunk(herd__trace_buf *b);

void herd__trace_put(herd__trace_buf *b, unsigned kind, uint32_t flags, uint64_t a,
		     uint64_t bb, uint64_t c, const char *text, size_t len);
/* From any thread: a worker's own buffer, or the shared one. */
void herd__trace_any(herd__rt *rt, unsigned kind, uint64_t a, uint64_t b,
		     uint64_t c, const char *text, size_t len);

/* The hooks. The worker's own trace pointer is NULL when tracing is off.
 * A task runs: how it came to (HERD__TR_RUN_FIRST, _WOKEN, or 0). */
static inline void herd__trace_run(herd__worker *w, herd__task *t, unsigned how)
{
	if (herd__unlikely(w->trace))
		herd__trace_put(w->trace, HERD__TR_RUN,
				how | (t->flags & HERD__TASK_SITE_PC ? HERD__TR_RUN_SITE_PC : 0),
				t->id, (uintptr_t)t, (uintptr_t)t->site, NULL, 0);
}

static inline void herd__trace_stop(herd__worker *w, herd__task *t, unsigned why)
{
	if (herd__unlikely(w->trace))
		herd__trace_put(w->trace, HERD__TR_STOP, 0, t->id, why,
				(uintptr_t)atomic_load_explicit(&t->wait_obj, mo_relaxed),
				NULL, 0);
}

void herd__trace_wake_foreign(herd__task *t);

/* w is the waker's worker, or NULL on a thread that is not one. */
static inline void herd__trace_wake(herd__worker *w, herd__task *t)
{
	if (herd__likely(w)) {
		if (herd__unlikely(w->trace))
			herd__trace_put(w->trace, HERD__TR_WAKE, 0, 0, (uintptr_t)t, 0, NULL, 0);
		return;
	}
	herd__trace_wake_foreign(t);
}

#endif
