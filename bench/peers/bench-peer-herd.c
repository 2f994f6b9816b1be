/*
 * bench-peer-herd.c - herd's side of the peer benchmarks (peer.h lists the
 * workloads): the same work as bench-peer-neco.c and bench-peer-libdill.c,
 * with herd at one worker, so that bench/run.sh compares herd with the
 * single-threaded C libraries on their own ground.
 *
 * Each workload runs in the first task of one herd_run. With one worker, no
 * two tasks run at once, so the spawn counter is a plain long; a scope's
 * close orders the tasks' ends before the check anyway.
 */
#define PEER_NAME "bench-peer-herd"
#include "peer.h"

#include <herd.h>

#define OK(call) ok((call), #call, __LINE__)

static int ok(int rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, herd_strerror(rc));
	return rc;
}

static herd_chan *make_chan(size_t cap)
{
	herd_chan *ch;

	OK(herd_chan_make(&ch, sizeof(long), cap));
	return ch;
}

/* ------------------------------------------------------------ spawn */

static long spawned;

static void count_task(void *p)
{
	(*(long *)p)++;
}

static double spawn_once(int run)
{
	double t0 = now_ns(), t;
	herd_scope *s;

	spawned = 0;
	for (long b = 0; b < SPAWN_TASKS / SPAWN_BATCH; b++) {
		OK(herd_scope_open(&s));
		for (long i = 0; i < SPAWN_BATCH; i++)
			OK(herd_go(s, count_task, &spawned, 0));
		OK(herd_scope_close(s));
	}
	t = now_ns() - t0;
	if (spawned != SPAWN_TASKS)
		fail("spawn: %ld tasks ran, expected %ld", spawned, SPAWN_TASKS);
	return t / SPAWN_TASKS;
}

/* ------------------------------------------------------------ pingpong */

struct pong_arg {
	herd_chan *in, *out;
};

static void pong_task(void *p)
{
	struct pong_arg *a = p;
	long v;

	HERD_RANGE(v, a->in)
		OK(herd_chan_send(a->out, &v, HERD_FOREVER));
}

static double pingpong_once(int run)
{
	struct pong_arg a = { make_chan(0), make_chan(0) };
	herd_scope *s;
	long sum = 0;
	double t0 = now_ns(), t;

	OK(herd_scope_open(&s));
	OK(herd_go(s, pong_task, &a, sizeof a));
	for (long i = 0; i < PINGPONG_TRIPS; i++) {
		long v;

		OK(herd_chan_send(a.in, &i, HERD_FOREVER));
		OK(herd_chan_recv(a.out, &v, HERD_FOREVER));
		sum += v;
	}
	OK(herd_chan_close(a.in));
	OK(herd_scope_close(s));
	t = now_ns() - t0;
	OK(herd_chan_free(a.in));
	OK(herd_chan_free(a.out));
	if (sum != sum_below(PINGPONG_TRIPS))
		fail("pingpong: sum %ld, expected %ld", sum,
		     sum_below(PINGPONG_TRIPS));
	return t / PINGPONG_TRIPS;
}

/* ------------------------------------------------------------ buffered */

/* A producer sends first, first + 1, ..., first + n - 1. */
struct producer {
	herd_chan *ch;
	long first, n;
};

static void producer_task(void *p)
{
	struct producer *a = p;

	for (long i = a->first; i < a->first + a->n; i++)
		OK(herd_chan_send(a->ch, &i, HERD_FOREVER));
	OK(herd_chan_close(a->ch));
}

static double buffered_once(int run)
{
	struct producer a = { make_chan(BUFFERED_CAP), 0, BUFFERED_MSGS };
	herd_scope *s;
	long v, sum = 0;
	double t0 = now_ns(), t;

	OK(herd_scope_open(&s));
	OK(herd_go(s, producer_task, &a, sizeof a));
	HERD_RANGE(v, a.ch)
		sum += v;
	OK(herd_scope_close(s));
	t = now_ns() - t0;
	OK(herd_chan_free(a.ch));
	if (sum != sum_below(BUFFERED_MSGS))
		fail("buffered: sum %ld, expected %ld", sum,
		     sum_below(BUFFERED_MSGS));
	return t / BUFFERED_MSGS;
}

/* ------------------------------------------------------------ select */

static void sender_task(void *p)
{
	struct producer *a = p;

	for (long i = a->first; i < a->first + a->n; i++)
		OK(herd_chan_send(a->ch, &i, HERD_FOREVER));
}

static double select_once(int run)
{
	herd_chan *a = make_chan(0), *b = make_chan(0);
	long v, sum = 0, count[2] = { 0, 0 };
	herd_case cs[] = { HERD_CASE_RECV(a, &v), HERD_CASE_RECV(b, &v) };
	herd_scope *s;
	double t0 = now_ns(), t;

	OK(herd_scope_open(&s));
	for (int i = 0; i < 2; i++) {
		struct producer p = { i ? b : a, i * (SELECT_OPS / 2), SELECT_OPS / 2 };

		OK(herd_go(s, sender_task, &p, sizeof p));
	}
	for (long i = 0; i < SELECT_OPS; i++) {
		count[OK(herd_select(cs, 2, HERD_FOREVER))]++;
		sum += v;
	}
	OK(herd_scope_close(s));
	t = now_ns() - t0;
	OK(herd_chan_free(a));
	OK(herd_chan_free(b));
	if (sum != sum_below(SELECT_OPS) || count[0] != count[1])
		fail("select: sum %ld (expected %ld), cases %ld and %ld", sum,
		     sum_below(SELECT_OPS), count[0], count[1]);
	return t / SELECT_OPS;
}

/* ------------------------------------------------------------ yield */

static int yield_last;		/* the id of the last task that ran */
static long yield_misses;	/* yields after which it still was */

static void yield_task(void *p)
{
	int id = *(int *)p;
	long misses = 0;

	for (long i = 0; i < YIELDS / 2; i++) {
		yield_last = id;
		OK(herd_yield());
		misses += yield_last == id;
	}
	yield_misses += misses;
}

static double yield_once(int run)
{
	herd_scope *s;
	double t0 = now_ns(), t;

	yield_misses = 0;
	OK(herd_scope_open(&s));
	for (int id = 0; id < 2; id++)
		OK(HERD_GO(s, yield_task, id));
	OK(herd_scope_close(s));
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

static void first_task(void *unused)
{
	result = peer_median(bench->name, bench->once);
}

int main(int argc, char **argv)
{
	herd_config cfg = { .workers = 1 };
	int rc;

	bench = peer_find(benches, sizeof benches / sizeof benches[0], argc, argv);
	if (!bench)
		return 2;
	rc = herd_run(&cfg, first_task, NULL);
	if (rc < 0)
		fail("herd_run: %s", herd_strerror(rc));
	printf("%.2f ns\n", result);
	return 0;
}
