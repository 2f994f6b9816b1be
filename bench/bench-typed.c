/*
 * bench-typed.c - what the typed channel operations cost over the untyped
 * ones: one task sends and receives a 16-byte value on a buffered channel,
 * through a typed channel (HERD_CHAN, HERD_SEND, HERD_RECV: a size
 * comparison more per call) and through herd_chan_send and herd_chan_recv.
 * Both run in the same process on one worker, alternating round by round,
 * so that neither gets the better half of a noisy machine.
 *
 *     bench-typed typed-chan        ns per send+receive, typed
 *     bench-typed typed-chan-raw    the same, untyped
 *
 * Each also reports on stderr the figure of HERD_SEND and HERD_RECV on a
 * plain channel, which check the variable's size as they run.
 */
#define BENCH_NAME "bench-typed"
#include "bench.h"

#include <time.h>

#define OPS 2000000
#define ROUNDS 11

struct value {
	int64_t a, b;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One round: OPS sends and receives through channel `ch` (declared and
 * made by DECLARE) with SEND and RECV, checked by their sum. */
#define ROUND(name, DECLARE, SEND, RECV)                                    \
	static double name(void)                                            \
	{                                                                   \
		DECLARE;                                                    \
		struct value v = {1, 2}, got;                               \
		int64_t sum = 0;                                            \
		double t0 = now_ns();                                       \
		for (long i = 0; i < OPS; i++) {                            \
			v.a = i;                                            \
			OK(SEND);                                           \
			OK(RECV);                                           \
			sum += got.a;                                       \
		}                                                           \
		double t = (now_ns() - t0) / OPS;                           \
		if (sum != (int64_t)OPS * (OPS - 1) / 2)                    \
			fail(#name ": wrong sum");                          \
		herd_chan_free(ch);                                         \
		return t;                                                   \
	}

/* A typed channel: the compiler checked the types, the calls are plain. */
ROUND(typed_round, HERD_CHAN(struct value) ch; OK(HERD_CHAN_MAKE(ch, 64)),
      HERD_SEND(ch, v, HERD_FOREVER), HERD_RECV(ch, got, HERD_FOREVER))
/* The untyped calls. */
ROUND(raw_round, herd_chan *ch; OK(herd_chan_make(&ch, sizeof(struct value), 64)),
      herd_chan_send(ch, &v, HERD_FOREVER), herd_chan_recv(ch, &got, HERD_FOREVER))
/* A plain channel through the macros: sizes checked as the calls run. */
ROUND(sized_round, herd_chan *ch; OK(herd_chan_make(&ch, sizeof(struct value), 64)),
      HERD_SEND(ch, v, HERD_FOREVER), HERD_RECV(ch, got, HERD_FOREVER))

static int want_typed;
static double result;

static void bench_main(void *unused)
{
	(void)unused;
	double typed[ROUNDS], raw[ROUNDS], sized[ROUNDS];
	typed_round();
	raw_round(); /* warm-up */
	for (int i = 0; i < ROUNDS; i++) {
		if (i % 2) {
			typed[i] = typed_round();
			raw[i] = raw_round();
			sized[i] = sized_round();
		} else {
			sized[i] = sized_round();
			raw[i] = raw_round();
			typed[i] = typed_round();
		}
	}
	qsort(typed, ROUNDS, sizeof typed[0], cmp_double);
	qsort(raw, ROUNDS, sizeof raw[0], cmp_double);
	qsort(sized, ROUNDS, sizeof sized[0], cmp_double);
	fprintf(stderr, "typed-chan: median typed %.2f, untyped %.2f, sized (plain channel) %.2f ns\n",
		typed[ROUNDS / 2], raw[ROUNDS / 2], sized[ROUNDS / 2]);
	result = want_typed ? typed[ROUNDS / 2] : raw[ROUNDS / 2];
}

struct bench {
	const char *name;
	int typed;
};

static const struct bench benches[] = {
	{"typed-chan", 1},
	{"typed-chan-raw", 0},
};

BENCH_TABLE(benches)

int main(int argc, char **argv)
{
	const struct bench *b = argc == 2 ? find_bench(argv[1]) : NULL;
	if (!b)
		return usage();
	want_typed = b->typed;
	herd_config cfg = {.workers = 1};
	int rc = herd_run(&cfg, bench_main, NULL);
	if (rc < 0)
		fail("herd_run: %s", herd_strerror(rc));
	printf("%.2f ns/op\n", result);
	return 0;
}
