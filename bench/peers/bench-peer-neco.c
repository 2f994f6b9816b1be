/*
 * bench-peer-neco.c - neco's side of the peer benchmarks (peer.h lists the
 * workloads), the same work as bench-peer-herd.c: a benchmark anchor only,
 * linked with neco.c built from HERD_PEERS_DIR (bench/CMakeLists.txt).
 *
 * Everything runs in the first coroutine, started by neco_start, which
 * returns when every coroutine has ended. A coroutine's arguments are
 * pointers into the first coroutine's stack, alive until it waits for them
 * (a wait group, neco's join for many). neco runs on one thread: plain
 * counters suffice.
 */
#define PEER_NAME "bench-peer-neco"
#include "peer.h"

#include "neco.h"

#define OK(call) ok((call), #call, __LINE__)

static int ok(int rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, neco_strerror(rc));
	return rc;
}

static neco_chan *make_chan(size_t cap)
{
	neco_chan *ch;

	OK(neco_chan_make(&ch, sizeof(long), cap));
	return ch;
}

/* ------------------------------------------------------------ spawn */

static long spawned;

static void count_co(int argc, void *argv[])
{
	(*(long *)argv[0])++;
	OK(neco_waitgroup_done(argv[1]));
}

static double spawn_once(int run)
{
	double t0 = now_ns(), t;
	neco_waitgroup wg;

	spawned = 0;
	OK(neco_waitgroup_init(&wg));
	for (long b = 0; b < SPAWN_TASKS / SPAWN_BATCH; b++) {
		for (long i = 0; i < SPAWN_BATCH; i++) {
			OK(neco_waitgroup_add(&wg, 1));
			OK(neco_start(count_co, 2, &spawned, &wg));
		}
		OK(neco_waitgroup_wait(&wg));
	}
	t = now_ns() - t0;
	if (spawned != SPAWN_TASKS)
		fail("spawn: %ld coroutines ran, expected %ld", spawned,
		     SPAWN_TASKS);
	return t / SPAWN_TASKS;
}

/* ------------------------------------------------------------ pingpong */

/* argv: the channel in, the channel out, the wait group. */
static void pong_co(int argc, void *argv[])
{
	neco_chan *in = argv[0], *out = argv[1];
	neco_waitgroup *wg = argv[2];
	long v;
	int rc;

	while ((rc = neco_chan_recv(in, &v)) == NECO_OK)
		OK(neco_chan_send(out, &v));
	if (rc != NECO_CLOSED)
		fail("pingpong: neco_chan_recv: %s", neco_strerror(rc));
	OK(neco_waitgroup_done(wg));
}

static double pingpong_once(int run)
{
	neco_chan *in = make_chan(0), *out = make_chan(0);
	neco_waitgroup wg;
	long sum = 0;
	double t0 = now_ns(), t;

	OK(neco_waitgroup_init(&wg));
	OK(neco_waitgroup_add(&wg, 1));
	OK(neco_start(pong_co, 3, in, out, &wg));
	for (long i = 0; i < PINGPONG_TRIPS; i++) {
		long v;

		OK(neco_chan_send(in, &i));
		OK(neco_chan_recv(out, &v));
		sum += v;
	}
	OK(neco_chan_close(in));
	OK(neco_waitgroup_wait(&wg));
	t = now_ns() - t0;
	OK(neco_chan_release(in));
	OK(neco_chan_release(out));
	if (sum != sum_below(PINGPONG_TRIPS))
		fail("pingpong: sum %ld, expected %ld", sum,
		     sum_below(PINGPONG_TRIPS));
	return t / PINGPONG_TRIPS;
}

/* ------------------------------------------------------------ buffered */

/* A producer sends first, first + 1, ..., first + n - 1. */
struct producer {
	neco_chan *ch;
	long first, n;
	neco_waitgroup *wg;
};

/* argv[0]: a struct producer; closes the channel at the end. */
static void producer_co(int argc, void *argv[])
{
	struct producer *a = argv[0];

	for (long i = a->first; i < a->first + a->n; i++)
		OK(neco_chan_send(a->ch, &i));
	OK(neco_chan_close(a->ch));
	OK(neco_waitgroup_done(a->wg));
}

static double buffered_once(int run)
{
	neco_waitgroup wg;
	struct producer a = { make_chan(BUFFERED_CAP), 0, BUFFERED_MSGS, &wg };
	long v, sum = 0;
	int rc;
	double t0 = now_ns(), t;

	OK(neco_waitgroup_init(&wg));
	OK(neco_waitgroup_add(&wg, 1));
	OK(neco_start(producer_co, 1, &a));
	while ((rc = neco_chan_recv(a.ch, &v)) == NECO_OK)
		sum += v;
	if (rc != NECO_CLOSED)
		fail("buffered: neco_chan_recv: %s", neco_strerror(rc));
	OK(neco_waitgroup_wait(&wg));
	t = now_ns() - t0;
	OK(neco_chan_release(a.ch));
	if (sum != sum_below(BUFFERED_MSGS))
		fail("buffered: sum %ld, expected %ld", sum,
		     sum_below(BUFFERED_MSGS));
	return t / BUFFERED_MSGS;
}

/* ------------------------------------------------------------ select */

/* argv[0]: a struct producer; leaves the channel open. */
static void sender_co(int argc, void *argv[])
{
	struct producer *a = argv[0];

	for (long i = a->first; i < a->first + a->n; i++)
		OK(neco_chan_send(a->ch, &i));
	OK(neco_waitgroup_done(a->wg));
}

static double select_once(int run)
{
	neco_chan *ch[2] = { make_chan(0), make_chan(0) };
	neco_waitgroup wg;
	struct producer p[2];
	long v, sum = 0, count[2] = { 0, 0 };
	double t0 = now_ns(), t;

	OK(neco_waitgroup_init(&wg));
	for (int i = 0; i < 2; i++) {
		p[i] = (struct producer){ ch[i], i * (SELECT_OPS / 2),
					  SELECT_OPS / 2, &wg };
		OK(neco_waitgroup_add(&wg, 1));
		OK(neco_start(sender_co, 1, &p[i]));
	}
	for (long i = 0; i < SELECT_OPS; i++) {
		int k = OK(neco_chan_select(2, ch[0], ch[1]));

		OK(neco_chan_case(ch[k], &v));
		count[k]++;
		sum += v;
	}
	OK(neco_waitgroup_wait(&wg));
	t = now_ns() - t0;
	OK(neco_chan_release(ch[0]));
	OK(neco_chan_release(ch[1]));
	if (sum != sum_below(SELECT_OPS) || count[0] != count[1])
		fail("select: sum %ld (expected %ld), cases %ld and %ld", sum,
		     sum_below(SELECT_OPS), count[0], count[1]);
	return t / SELECT_OPS;
}

/* ------------------------------------------------------------ yield */

static int yield_last;		/* the id of the last coroutine that ran */
static long yield_misses;	/* yields after which it still was */

/* argv: the id (an int), the wait group. */
static void yield_co(int argc, void *argv[])
{
	int id = *(int *)argv[0];
	neco_waitgroup *wg = argv[1];
	long misses = 0;

	for (long i = 0; i < YIELDS / 2; i++) {
		yield_last = id;
		OK(neco_yield());
		misses += yield_last == id;
	}
	yield_misses += misses;
	OK(neco_waitgroup_done(wg));
}

static double yield_once(int run)
{
	static int ids[2] = { 0, 1 };
	neco_waitgroup wg;
	double t0 = now_ns(), t;

	yield_misses = 0;
	OK(neco_waitgroup_init(&wg));
	for (int id = 0; id < 2; id++) {
		OK(neco_waitgroup_add(&wg, 1));
		OK(neco_start(yield_co, 2, &ids[id], &wg));
	}
	OK(neco_waitgroup_wait(&wg));
	t = now_ns() - t0;
	check_misses(yield_misses);
	return t / YIELDS;
}

/* ------------------------------------------------------------ main */

static const struct peer_bench benches[] = {
	{ "spawn", spawn_once },
	{ "pingpong", pingpong_once },
	{ "buffered", buffered_once },
	{ "select", select_once },
	{ "yield", yield_once },
};

static const struct peer_bench *bench;
static double result;

static void first_co(int argc, void *argv[])
{
	result = peer_median(bench->name, bench->once);
}

int main(int argc, char **argv)
{
	int rc;

	bench = peer_find(benches, sizeof benches / sizeof benches[0], argc, argv);
	if (!bench)
		return 2;
	rc = neco_start(first_co, 0);
	if (rc != NECO_OK)
		fail("neco_start: %s", neco_strerror(rc));
	printf("%.2f ns\n", result);
	return 0;
}
