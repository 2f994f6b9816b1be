/*
 * peer.h - what the peer benchmarks share (bench-peer-herd.c, -neco.c,
 * -libdill.c): the workloads' sizes, failing loudly, a clock, the median of
 * BENCH_REPS timed runs after a warm-up, and the table lookup. It includes
 * no library's header, so that each peer program links only its own library.
 *
 * Every program runs the same workloads on one thread (herd with one
 * worker), each a loop whose result is checked (a count or a sum):
 *
 *   spawn     ns/task       start SPAWN_BATCH coroutines that each count
 *                           themselves, wait for them all; SPAWN_TASKS in all.
 *   pingpong  ns/roundtrip  two coroutines bounce a long over two unbuffered
 *                           channels, PINGPONG_TRIPS round trips.
 *   buffered  ns/msg        one producer, one consumer (the first
 *                           coroutine), a channel of BUFFERED_CAP longs,
 *                           BUFFERED_MSGS messages (neco and herd: libdill's
 *                           channels have no buffer).
 *   select    ns/op         two senders, each on its own unbuffered channel;
 *                           the first coroutine selects over both, SELECT_OPS
 *                           times.
 *   yield     ns/switch     two coroutines take turns with yield, YIELDS
 *                           yields in all; a yield after which the same
 *                           coroutine still runs is counted as a miss.
 *
 * Usage: bench-peer-LIB <workload>; prints "<value> ns" on stdout, the
 * timings on stderr. Each program defines PEER_NAME before including this.
 */
#ifndef HERD_BENCH_PEER_H
#define HERD_BENCH_PEER_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPAWN_TASKS 1000000L
#define SPAWN_BATCH 100L
#define PINGPONG_TRIPS 1000000L
#define BUFFERED_MSGS 2000000L
#define BUFFERED_CAP 128
#define SELECT_OPS 1000000L
#define YIELDS 2000000L
#define MAX_REPS 100

_Static_assert(SPAWN_TASKS % SPAWN_BATCH == 0, "whole batches");
_Static_assert(SELECT_OPS % 2 == 0 && YIELDS % 2 == 0, "two coroutines share");

static void fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PEER_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The sum 0 + 1 + ... + (n - 1). */
static inline long sum_below(long n)
{
	return n * (n - 1) / 2;
}

/* Checks a yield benchmark's misses: only the last yield of the coroutine
 * that ends second may find no one to switch to. */
static inline void check_misses(long misses)
{
	if (misses > 1)
		fail("yield: %ld of %ld yields did not switch coroutines",
		     misses, YIELDS);
}

static int peer_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* BENCH_REPS (1..MAX_REPS), the timed runs per process; 5 without it. */
static inline int peer_reps(void)
{
	const char *s = getenv("BENCH_REPS");
	char *end;
	long n;

	if (!s || !*s)
		return 5;
	n = strtol(s, &end, 10);
	if (*end || n < 1 || n > MAX_REPS)
		fail("BENCH_REPS=%s: expected 1 to %d", s, MAX_REPS);
	return (int)n;
}

/* Runs once(0) to warm up, then once(1) .. once(reps); returns their median. */
static inline double peer_median(const char *name, double (*once)(int run))
{
	double v[MAX_REPS];
	int reps = peer_reps();

	fprintf(stderr, "%s %s: warm-up %.2f, runs", PEER_NAME, name, once(0));
	for (int i = 0; i < reps; i++) {
		v[i] = once(i + 1);
		fprintf(stderr, " %.2f", v[i]);
	}
	fputc('\n', stderr);
	qsort(v, (size_t)reps, sizeof v[0], peer_cmp);
	return reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
}

/* A workload: its name and one timed run (ns per operation). */
struct peer_bench {
	const char *name;
	double (*once)(int run);
};

/* The workload called `name` in table t of n, or NULL after the usage. */
static inline const struct peer_bench *
peer_find(const struct peer_bench *t, size_t n, int argc, char **argv)
{
	for (size_t i = 0; argc == 2 && i < n; i++)
		if (strcmp(t[i].name, argv[1]) == 0)
			return &t[i];
	fputs("usage: " PEER_NAME " <workload>\nworkloads:", stderr);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", t[i].name);
	fputc('\n', stderr);
	return NULL;
}

#endif
