/*
 * trace-fmt.h - HERD_TRACE's binary form, which the program writes while
 * it runs and which becomes Chrome trace-event JSON at the end of herd_run
 * (or, for a program killed first, in herd-trace-html). Standalone (the C
 * library only): the recorder (core/trace.c), the run's writer
 * (run/trace-file.c) and the converter (run/trace-json.c, also built into
 * herd-trace-html) share it. Host byte order: a file is read on the
 * machine that wrote it.
 *
 * The file: the 8 bytes HERD__TRB_MAGIC, then frames, each a head (type,
 * lane, payload length) and its payload, padded to 8 bytes. A file cut
 * short (its program killed mid-write) is read up to its last whole
 * event: a frame of events holds whole events only.
 *
 * An event is one or more 64-bit words. The first holds its kind (4 bits),
 * an argument (8 bits), the ticks (herd__os_ticks()) since the event
 * before it on the same lane (20 bits; the first event of a lane counts
 * from the META point's ticks; a TIME event sets the lane's ticks when
 * the difference does not fit) and a value's low 32 bits (x). Values that
 * repeat are left out: a lane's reader keeps the last ones (see the kinds
 * below), so a frame of events is read in order from the lane's first.
 */
#ifndef HERD_CORE_TRACE_FMT_H
#define HERD_CORE_TRACE_FMT_H

#include <stdint.h>

#define HERD__TRB_MAGIC "HERDTRB1" /* 8 bytes, no NUL */

/* Frames. */
enum {
	HERD__TRF_META = 1, /* struct herd__trf_meta, then nwhy names, each
			     * ending in a NUL: the wait reasons' */
	HERD__TRF_POINT,    /* struct herd__trf_point: a moment on both
			     * clocks, written at each of the supervisor's
			     * rounds; ticks map onto the clock between them */
	HERD__TRF_SITE,     /* uint64_t site, then its name and a NUL */
	HERD__TRF_EVENTS,   /* the events of lane `lane`, in order */
};

typedef struct herd__trf_head {
	uint8_t type;
	uint8_t pad;
	uint16_t lane;      /* 0: the supervisor and threads that are not
			     * workers; i + 1: worker i */
	uint32_t len;       /* bytes of payload, before the padding */
} herd__trf_head;

typedef struct herd__trf_point {
	uint64_t tick;
	int64_t ns;         /* herd_now() */
} herd__trf_point;

typedef struct herd__trf_meta {
	uint32_t nworkers;
	int32_t pid;
	uint64_t seed;
	herd__trf_point start; /* when the recorder started */
	int64_t run_ns;     /* herd_run's start: time 0 in the JSON */
	uint32_t version;   /* major << 16 | minor << 8 | patch */
	uint32_t nwhy;
} herd__trf_meta;

/* Events: the first word. */
#define HERD__TR_KIND(w) ((unsigned)(w) & 15u)
#define HERD__TR_ARG(w) ((unsigned)((w) >> 4) & 255u)
#define HERD__TR_DT_SHIFT 12
#define HERD__TR_DT_MAX ((UINT64_C(1) << 20) - 1)
#define HERD__TR_DT(w) ((w) >> HERD__TR_DT_SHIFT & HERD__TR_DT_MAX)
#define HERD__TR_X(w) ((uint32_t)((w) >> 32))
#define HERD__TR_WORD(kind, arg) ((uint64_t)(kind) | (uint64_t)(arg) << 4)

/*
 * The kinds, and the words after the first. A task's address is x, and
 * its high half the lane's last one unless HERD__TR_WIDE puts the whole
 * address in the next word; so is a task's id, but for its high half,
 * which is 0 unless HERD__TR_WIDE gives the whole id.
 */
enum {
	HERD__TR_RUN = 1, /* a worker runs a task; arg HERD__TR_RUN_*. Its
			   * first run: x the address (it ends the spawn's
			   * flow), then the id unless HERD__TR_RUN_ID_NEXT.
			   * Others: x the id. Then the site unless
			   * HERD__TR_RUN_SAME_SITE. */
	HERD__TR_STOP,    /* it stops: arg the reason (HERD__TR_STOP_*, or the
			   * wait's HERD__WHY_*), with HERD__TR_STOP_OBJ the
			   * waited object's address after */
	HERD__TR_WAKE,    /* a task readies another: x its id (a flow) */
	HERD__TR_SPAWN,   /* a task is spawned: x its address (a flow; it
			   * gets its id when it first runs). A worker's
			   * takes the time of the lane's last event (0
			   * ticks): the counter is not read for it */
	HERD__TR_PROC,    /* a child process ended: a = pid, b = its wait
			   * status, c = when it started (herd_now()) */
	HERD__TR_CANCEL,  /* a scope was canceled: b = the scope */
	HERD__TR_MONITOR, /* the supervisor: a = HERD__TR_MON_*, b = worker */
	HERD__TR_TIME,    /* the lane's ticks, whole, in the next word */
};
/* PROC, CANCEL and MONITOR (rare): words a, b, c and a text's length,
 * then the text (a command line) padded to 8 bytes. */
#define HERD__TR_LONG_WORDS 4u

/* RUN's, SPAWN's and WAKE's argument: the whole value follows. */
#define HERD__TR_WIDE 32u

/* HERD__TR_RUN's argument. */
enum {
	HERD__TR_RUN_SITE_PC = 1, /* the site is a return address, not text */
	HERD__TR_RUN_FIRST = 2,   /* its first run: a spawn's flow ends */
	HERD__TR_RUN_WOKEN = 4,   /* after a wait: a wake's flow ends */
	HERD__TR_RUN_SAME_SITE = 8, /* the site of the lane's last RUN */
	HERD__TR_RUN_ID_NEXT = 16,  /* a first run: the id after the lane's
				     * last first run's */
	HERD__TR_RUN_ENDS = 64,     /* the lane's running task ended at this
				     * moment (a STOP_END, left out) */
};

/* HERD__TR_STOP's argument besides the wait reasons (below 64). */
enum {
	HERD__TR_STOP_YIELD = 64,
	HERD__TR_STOP_END,
	HERD__TR_STOP_OBJ = 128,
};

/* HERD__TR_MONITOR's a. */
enum {
	HERD__TR_MON_RESCUE = 1, /* a worker's queue moved to the global queue */
	HERD__TR_MON_STUCK,      /* every worker stuck on one task */
	HERD__TR_MON_DEADLOCK,   /* the deadlock report */
};

#endif
