/*
 * trace-json.h - HERD_TRACE's converter (trace-json.c): the binary form
 * (core/trace-fmt.h) in, Chrome trace-event JSON out. Standalone (the C
 * library only): libherd uses it at the end of herd_run, herd-trace-html
 * on a file whose program did not live to convert it.
 */
#ifndef HERD_RUN_TRACE_JSON_H
#define HERD_RUN_TRACE_JSON_H

#include "../core/trace-fmt.h" /* found from here by any includer */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct herd__tconv herd__tconv;

/* Where the JSON goes: 0, or -errno (the converter then writes no more). */
typedef int (*herd__tconv_out)(void *ctx, const char *buf, size_t len);

herd__tconv *herd__tconv_new(herd__tconv_out out, void *ctx);
void herd__tconv_free(herd__tconv *c);

/* Whether data (len bytes) starts as the binary form does. */
bool herd__tconv_is_binary(const void *data, size_t len);

/* Converts a whole file of the binary form, possibly cut short (then *cut
 * is set): its points first, so that each tick maps between the two that
 * surround it, then its frames. 0, -EINVAL (not the form, or no META
 * frame first), or the output's error. */
int herd__tconv_file(herd__tconv *c, const void *data, size_t len, bool *cut);

/* One frame, for a writer that converts as the program runs: 0 or as
 * above. A frame of events may end in the middle of an event. */
int herd__tconv_frame(herd__tconv *c, unsigned type, unsigned lane, const void *payload,
		      size_t len);

/* Writes out what is buffered: 0 or the output's error. */
int herd__tconv_flush(herd__tconv *c);

/* Ends the JSON with an "end" instant at `ns` (herd_now(); < 0: at the
 * last event's time) that counts `lost` events, and "]}"; then flushes. */
int herd__tconv_end(herd__tconv *c, int64_t ns, uint64_t lost);

/* Events converted so far. */
uint64_t herd__tconv_events(const herd__tconv *c);

/*
 * The converter's JSON writer (trace-json-out.c): an event in, its JSON
 * text out, through a buffer handed to `out` when full. Times are
 * nanoseconds from herd_run's start; names are cut at HERD__JW_NAME_MAX
 * bytes, and any byte may come in (what is not UTF-8 goes out as U+FFFD).
 */
#define HERD__JW_NAME_MAX 255u

typedef struct herd__jw {
	herd__tconv_out out;
	void *ctx;
	int err;                /* out's first error: nothing more goes out */
	size_t n;               /* bytes in buf */
	char buf[64 * 1024];
} herd__jw;

int herd__jw_flush(herd__jw *j);
/* The file's start, the processes' and lanes' names. */
void herd__jw_header(herd__jw *j, const herd__trf_meta *m);
/* A task's stretch on worker lane `lane`, from ns to end. */
void herd__jw_slice(herd__jw *j, unsigned lane, int64_t ns, int64_t end, const char *name,
		    uint64_t task, const char *stop, uint64_t obj);
/* A flow's start ('s') or end ('f', bound to the slice it starts). */
void herd__jw_flow(herd__jw *j, char ph, unsigned lane, int64_t ns, uint64_t id);
/* A slice of no length named `name`: what a flow that starts outside a
 * task's slice (lane 0's threads, a worker between tasks) starts from, since viewers
 * bind a flow's start to the slice around it (chrome://tracing's importer
 * warns of one with none). */
void herd__jw_mark(herd__jw *j, unsigned lane, int64_t ns, const char *name);
/* A child process: its lane's name and its slice (st as herd.h's
 * HERD_PROC_* read it; text its command line). */
void herd__jw_proc(herd__jw *j, int64_t start, int64_t end, uint64_t pid, int st,
		   const char *text, size_t len);
/* An instant, on its thread or global, with one argument. */
void herd__jw_instant(herd__jw *j, unsigned lane, int64_t ns, bool global, const char *name,
		      const char *key, uint64_t value, bool hex);
/* The last event (an "end" instant counting `lost` events), "]}", and
 * a flush. */
int herd__jw_end(herd__jw *j, int64_t ns, uint64_t lost);

#endif
