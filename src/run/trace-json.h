/*
 * trace-json.h - HERD_TRACE's converter (trace-json.c): the binary form
 * (core/trace-fmt.h) in, Chrome trace-event JSON out. Standalone (the C
 * library only): libherd uses it at the end of herd_run, herd-trace-html
 * on a file whose program did not live to convert it.
 */
#ifndef HERD_RUN_TRACE_JSON_H
#define HERD_RUN_TRACE_JSON_H

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

#endif
