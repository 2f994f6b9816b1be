/*
 * bench-sync.c - what herd's task-aware mutex costs, measured the way its
 * Go twin (bench/go/mutex.go) measures sync.Mutex, so that bench/run.sh
 * can compare them.
 *
 * Usage: bench-sync <benchmark>. A benchmark prints one line, "<value>
 * <unit>", on stdout, and its diagnostics on stderr. Everything is
 * measured from the first task of a single herd_run with 2 workers (Go:
 * GOMAXPROCS 2):
 *
 *   mutex-uncontended  ns/op  one task locks a mutex, increments a
 *                             counter and unlocks it, 20,000,000 times.
 *   mutex-contended    ns/op  two tasks (one per worker) do the same on
 *                             one mutex, 10,000,000 times in all.
 * Both check the counter. Timings run once to warm up, then BENCH_REPS
 * times (5 unless set), and print the median.
 */
#define BENCH_NAME "bench-sync"
#include "bench.h"

#define UNCONTENDED_OPS 20000000L
#define CONTENDED_OPS 10000000L
#define WORKERS 2

/* The figure that a benchmark's first task hands to main. */
static double result;

/* The mutex and the counter it guards, on cache lines of their own, as in
 * the Go twin: on one line, a contended lock moves one line, not two. */
static herd_mutex mu __attribute__((aligned(64))) = HERD_MUTEX_INIT;
static long counter __attribute__((aligned(64))); /* under mu */

/* ------------------------------------------------------------ uncontended */

static double uncontended_once(int run)
{
	int64_t t0 = herd_now(), t;

	counter = 0;
	for (long i = 0; i < UNCONTENDED_OPS; i++) {
		OK(herd_mutex_lock(&mu, HERD_FOREVER));
		counter++;
		OK(herd_mutex_unlock(&mu));
	}
	t = herd_now() - t0;
	if (counter != UNCONTENDED_OPS)
		fail("mutex-uncontended: counter %ld, expected %ld", counter,
		     UNCONTENDED_OPS);
	return (double)t / UNCONTENDED_OPS;
}

static void uncontended_main(void *arg)
{
	result = median_of("mutex-uncontended", uncontended_once);
}

/* ------------------------------------------------------------ contended */

static void locker_task(void *p)
{
	long n = *(long *)p;

	for (long i = 0; i < n; i++) {
		OK(herd_mutex_lock(&mu, HERD_FOREVER));
		counter++;
		OK(herd_mutex_unlock(&mu));
	}
}

static double contended_once(int run)
{
	herd_scope *s;
	int64_t t0 = herd_now(), t;

	counter = 0;
	OK(herd_scope_open(&s));
	for (int i = 0; i < 2; i++)
		OK(HERD_GO(s, locker_task, CONTENDED_OPS / 2));
	OK(herd_scope_close(s));
	t = herd_now() - t0;
	if (counter != CONTENDED_OPS)
		fail("mutex-contended: counter %ld, expected %ld", counter,
		     CONTENDED_OPS);
	return (double)t / CONTENDED_OPS;
}

static void contended_main(void *arg)
{
	result = median_of("mutex-contended", contended_once);
}

/* ------------------------------------------------------------ main */

struct bench {
	const char *name;
	const char *unit;
	herd_fn first; /* the first task: measures, sets `result` */
};

static const struct bench benches[] = {
	{ "mutex-uncontended", "ns/op", uncontended_main },
	{ "mutex-contended", "ns/op", contended_main },
};

BENCH_TABLE(benches)

int main(int argc, char **argv)
{
	const struct bench *b = argc == 2 ? find_bench(argv[1]) : NULL;
	herd_config cfg = { 0 };
	int rc;

	if (!b)
		return usage();
	cfg.workers = WORKERS;
	rc = herd_run(&cfg, b->first, NULL);
	if (rc < 0)
		fail("herd_run: %s", herd_strerror(rc));
	printf("%.2f %s\n", result, b->unit);
	return 0;
}
