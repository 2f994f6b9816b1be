/*
 * bench.h - what the benchmark programs share: failing loudly, checking a
 * herd call, the median of BENCH_REPS timed runs after a warm-up (5 when
 * the variable is unset: bench/run.sh sets fewer, as it runs each benchmark
 * in several processes), and finding a benchmark by name in the program's
 * table.
 * Each program defines BENCH_NAME (its name, for messages) before
 * including it.
 */
#ifndef HERD_BENCH_H
#define HERD_BENCH_H

#include <herd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 100

static void fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(BENCH_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

/* A herd call that must succeed: OK(herd_go(...)). */
#define OK(call) check_rc((call), #call, __LINE__)

static inline int check_rc(int rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, herd_strerror(rc));
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* BENCH_REPS (1 to MAX_RUNS), the timed runs of a benchmark; 5 without it. */
static __attribute__((unused)) int bench_reps(void)
{
	const char *s = getenv("BENCH_REPS");
	char *end;
	long n;

	if (!s || !*s)
		return 5;
	n = strtol(s, &end, 10);
	if (*end || n < 1 || n > MAX_RUNS)
		fail("BENCH_REPS=%s: expected 1 to %d", s, MAX_RUNS);
	return (int)n;
}

/* Runs once(0) to warm up, then once(1) .. once(BENCH_REPS); returns their
 * median (of an even count, the mean of the middle two). */
static __attribute__((unused)) double median_of(const char *name, double (*once)(int run))
{
	double v[MAX_RUNS];
	int n = bench_reps();

	fprintf(stderr, "%s: warm-up %.2f, runs", name, once(0));
	for (int i = 0; i < n; i++) {
		v[i] = once(i + 1);
		fprintf(stderr, " %.2f", v[i]);
	}
	fputc('\n', stderr);
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Defines find_bench (a benchmark of `table` by name, or NULL) and usage
 * (lists them; returns 2) for a table of structs whose first member is
 * `const char *name`.
 */
#define BENCH_TABLE(table)                                                   \
	static __typeof__(&(table)[0]) find_bench(const char *name)          \
	{                                                                    \
		for (size_t i = 0; i < sizeof(table) / sizeof((table)[0]); i++) \
			if (strcmp((table)[i].name, name) == 0)              \
				return &(table)[i];                          \
		return NULL;                                                 \
	}                                                                    \
	static int usage(void)                                               \
	{                                                                    \
		fputs("usage: " BENCH_NAME " <benchmark>\nbenchmarks:", stderr); \
		for (size_t i = 0; i < sizeof(table) / sizeof((table)[0]); i++) \
			fprintf(stderr, " %s", (table)[i].name);             \
		fputc('\n', stderr);                                         \
		return 2;                                                    \
	}

#endif
