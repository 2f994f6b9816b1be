/*
 * bench-peer-libdill.c - libdill's side of the peer benchmarks (peer.h lists
 * the workloads), the same work as bench-peer-herd.c: a benchmark anchor
 * only, linked with libdill's core built from HERD_PEERS_DIR
 * (bench/CMakeLists.txt). libdill's channels have no buffer: no "buffered".
 *
 * main is libdill's first coroutine. Coroutines are joined with a bundle
 * (libdill's scope: bundle_wait, then hclose). A libdill channel is a pair
 * of handles: what is sent on one end is received on the other, and chdone
 * on the sending end makes the receiver's chrecv fail with EPIPE, as a
 * close does. libdill runs on one thread: plain counters suffice.
 */
#define PEER_NAME "bench-peer-libdill"
#include "peer.h"

#include <errno.h>

#define DILL_DISABLE_RAW_NAMES
#define DILL_DISABLE_SOCKETS
#include "libdill.h"

#define OK(call) ok((call), #call, __LINE__)

static int ok(int rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, strerror(errno));
	return rc;
}

/* An unbuffered channel: ch[0] sends to ch[1] (and back). */
struct chan {
	int ch[2];
};

static struct chan make_chan(void)
{
	struct chan c;

	OK(dill_chmake(c.ch));
	return c;
}

static void free_chan(struct chan c)
{
	OK(dill_hclose(c.ch[0]));
	OK(dill_hclose(c.ch[1]));
}

/* Waits for every coroutine of bundle b, and closes it. */
static void join(int b)
{
	OK(dill_bundle_wait(b, -1));
	OK(dill_hclose(b));
}

/* ------------------------------------------------------------ spawn */

static long spawned;

static dill_coroutine void count_co(long *n)
{
	(*n)++;
}

static double spawn_once(int run)
{
	double t0 = now_ns(), t;

	spawned = 0;
	for (long b = 0; b < SPAWN_TASKS / SPAWN_BATCH; b++) {
		int bndl = OK(dill_bundle());

		for (long i = 0; i < SPAWN_BATCH; i++)
			OK(dill_bundle_go(bndl, count_co(&spawned)));
		join(bndl);
	}
	t = now_ns() - t0;
	if (spawned != SPAWN_TASKS)
		fail("spawn: %ld coroutines ran, expected %ld", spawned,
		     SPAWN_TASKS);
	return t / SPAWN_TASKS;
}

/* ------------------------------------------------------------ pingpong */

/* Receives on in, sends back on out, until in is done. */
static dill_coroutine void pong_co(int in, int out)
{
	long v;

	while (dill_chrecv(in, &v, sizeof v, -1) == 0)
		OK(dill_chsend(out, &v, sizeof v, -1));
	if (errno != EPIPE)
		fail("pingpong: dill_chrecv: %s", strerror(errno));
}

static double pingpong_once(int run)
{
	struct chan in = make_chan(), out = make_chan();
	long sum = 0;
	double t0 = now_ns(), t;
	int b = OK(dill_bundle());

	OK(dill_bundle_go(b, pong_co(in.ch[1], out.ch[0])));
	for (long i = 0; i < PINGPONG_TRIPS; i++) {
		long v;

		OK(dill_chsend(in.ch[0], &i, sizeof i, -1));
		OK(dill_chrecv(out.ch[1], &v, sizeof v, -1));
		sum += v;
	}
	OK(dill_chdone(in.ch[0]));
	join(b);
	t = now_ns() - t0;
	free_chan(in);
	free_chan(out);
	if (sum != sum_below(PINGPONG_TRIPS))
		fail("pingpong: sum %ld, expected %ld", sum,
		     sum_below(PINGPONG_TRIPS));
	return t / PINGPONG_TRIPS;
}

/* ------------------------------------------------------------ select */

/* Sends first, first + 1, ..., first + n - 1 on ch. */
static dill_coroutine void sender_co(int ch, long first, long n)
{
	for (long i = first; i < first + n; i++)
		OK(dill_chsend(ch, &i, sizeof i, -1));
}

static double select_once(int run)
{
	struct chan ch[2] = { make_chan(), make_chan() };
	long v, sum = 0, count[2] = { 0, 0 };
	struct dill_chclause cl[2] = {
		{ DILL_CHRECV, ch[0].ch[1], &v, sizeof v },
		{ DILL_CHRECV, ch[1].ch[1], &v, sizeof v },
	};
	double t0 = now_ns(), t;
	int b = OK(dill_bundle());

	for (int i = 0; i < 2; i++)
		OK(dill_bundle_go(b, sender_co(ch[i].ch[0], i * (SELECT_OPS / 2),
					       SELECT_OPS / 2)));
	for (long i = 0; i < SELECT_OPS; i++) {
		int k = OK(dill_choose(cl, 2, -1));

		if (errno != 0)
			fail("select: dill_choose: case %d: %s", k,
			     strerror(errno));
		count[k]++;
		sum += v;
	}
	join(b);
	t = now_ns() - t0;
	free_chan(ch[0]);
	free_chan(ch[1]);
	if (sum != sum_below(SELECT_OPS) || count[0] != count[1])
		fail("select: sum %ld (expected %ld), cases %ld and %ld", sum,
		     sum_below(SELECT_OPS), count[0], count[1]);
	return t / SELECT_OPS;
}

/* ------------------------------------------------------------ yield */

static int yield_last;		/* the id of the last coroutine that ran */
static long yield_misses;	/* yields after which it still was */

static dill_coroutine void yield_co(int id)
{
	long misses = 0;

	for (long i = 0; i < YIELDS / 2; i++) {
		yield_last = id;
		OK(dill_yield());
		misses += yield_last == id;
	}
	yield_misses += misses;
}

static double yield_once(int run)
{
	double t0 = now_ns(), t;
	int b = OK(dill_bundle());

	yield_misses = 0;
	for (int id = 0; id < 2; id++)
		OK(dill_bundle_go(b, yield_co(id)));
	join(b);
	t = now_ns() - t0;
	check_misses(yield_misses);
	return t / YIELDS;
}

/* ------------------------------------------------------------ main */

static const struct peer_bench benches[] = {
	{ "spawn", spawn_once },
	{ "pingpong", pingpong_once },
	{ "select", select_once },
	{ "yield", yield_once },
};

int main(int argc, char **argv)
{
	const struct peer_bench *b =
		peer_find(benches, sizeof benches / sizeof benches[0], argc, argv);

	if (!b)
		return 2;
	printf("%.2f ns\n", peer_median(b->name, b->once));
	return 0;
}
