/*
 * bench-core.c - what herd's runtime core costs, measured the way its Go twin
 * (bench/go/) measures the Go runtime, so that bench/run.sh can compare them.
 *
 * Usage: bench-core <benchmark>. A benchmark prints one line, "<value> <unit>",
 * on stdout, and its diagnostics on stderr. Everything is measured from the
 * first task of a single herd_run:
 *
 *   spawn        ns/task     open a scope, spawn 1,000,000 empty tasks into
 *                            it (HERD_GO with a long), close it; all cores.
 *   skynet       ms          the skynet tree: 1,000,000 leaves, 10 children
 *                            per inner node, 1,111,111 tasks; all cores.
 *   yield        ns/switch   two tasks on one worker take turns with
 *                            herd_yield, 10,000,000 yields in all.
 *   mem-parked   bytes/task  VmRSS growth per task blocked on a wait group,
 *                            100,000 tasks; all cores.
 *   mem-spawned  bytes/task  VmRSS growth per spawned task that has not run
 *                            yet: one worker, 100,000 spawns without yielding.
 *   chan-pingpong ns/roundtrip  two tasks bounce a long over two unbuffered
 *                            channels, 1,000,000 round trips; all cores.
 *   chan-buffered ns/msg     one producer, one consumer, a channel of 128
 *                            longs, 10,000,000 messages; all cores.
 *   chan-2x2     ns/msg      two producers, two consumers, one channel of 128
 *                            longs, 10,000,000 messages; all cores.
 *   select       ns/op       two senders, each on its own unbuffered channel;
 *                            one receiver selects over both, 2,000,000
 *                            times; all cores.
 * The channel benchmarks check the sum of what was received.
 *
 * Timings run once to warm up (threads started, stacks made), then
 * BENCH_REPS times (5 unless set), and print the median. Memory is measured
 * once, after a 1,000-task warm-up that does the runtime's lazy setup;
 * whatever that warm-up leaves cached for reuse is at most 1% of the
 * measured tasks.
 */
#define BENCH_NAME "bench-core"
#include "bench.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPAWN_TASKS 1000000L
#define SKYNET_LEAVES 1000000L
#define SKYNET_SUM 499999500000L /* 0 + 1 + ... + 999,999 */
#define YIELDS 10000000L
#define MEM_TASKS 100000L
#define MEM_WARMUP 1000L
#define PARK_TIMEOUT (60 * HERD_SEC)
#define PINGPONG_TRIPS 1000000L
#define CHAN_MSGS 10000000L
#define CHAN_CAP 128
#define SELECT_OPS 2000000L

/* The figure that a benchmark's first task hands to main. */
static double result;

/* ------------------------------------------------------------ helpers */

/*
 * The field `key` ("VmRSS", "VmPTE") of /proc/self/status, in bytes. The
 * buffer is static so that reading touches no new page of the task's stack.
 */
static long status_bytes(const char *key)
{
	static char buf[8192];
	size_t len = 0, klen = strlen(key);
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail("/proc/self/status: cannot open");
	while (len < sizeof buf - 1 &&
	       (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (char *line = buf; line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return strtol(line + klen + 1, NULL, 10) * 1024;
	}
	fail("/proc/self/status: no %s", key);
}

/* Memory of the process: resident, and in page tables. */
struct mem {
	long rss, pte;	/* bytes */
};

static struct mem mem_now(void)
{
	return (struct mem){ status_bytes("VmRSS"), status_bytes("VmPTE") };
}

static struct mem mem_sub(struct mem a, struct mem b)
{
	return (struct mem){ a.rss - b.rss, a.pte - b.pte };
}

static void log_pte(const char *name, struct mem m, long n)
{
	fprintf(stderr, "%s: page tables %.1f bytes/task (VmPTE %+ld KiB)\n",
		name, (double)m.pte / n, m.pte / 1024);
}

static void log_stats(const char *name)
{
	herd_stats st;

	if (herd_stats_get(&st) < 0)
		return;
	fprintf(stderr, "%s: %u workers, %" PRIu64 " tasks alive, %" PRIu64
		" parked, %" PRIu64 " stacks (%" PRIu64 " guarded, guard %d), "
		"stack size %zu\n", name, st.workers, st.tasks, st.tasks_parked,
		st.stacks, st.stacks_guarded, st.stack_guard, st.stack_size);
}

static void nop_task(void *p)
{
}

/* ------------------------------------------------------------ spawn */

static double spawn_once(int run)
{
	herd_scope *s;
	int64_t t0 = herd_now();

	OK(herd_scope_open(&s));
	for (long i = 0; i < SPAWN_TASKS; i++)
		OK(HERD_GO(s, nop_task, i));
	OK(herd_scope_close(s));
	return (double)(herd_now() - t0) / SPAWN_TASKS;
}

static void spawn_main(void *arg)
{
	result = median_of("spawn", spawn_once);
}

/* ------------------------------------------------------------ skynet */

/*
 * A node of the tree. herd_go copies it into memory that the child owns
 * until it returns, so `sum` lives there and not on the parent's stack.
 */
struct node {
	long num, size;
	_Atomic long sum;	/* the children add their sums here */
	_Atomic long *parent;	/* the parent's sum */
};

static _Atomic long skynet_total;

static void skynet_task(void *p);

static void skynet_children(struct node *n)
{
	long size = n->size / 10;
	herd_scope *s;

	OK(herd_scope_open(&s));
	for (long i = 0; i < 10; i++) {
		struct node c = {
			.num = n->num + i * size,
			.size = size,
			.parent = &n->sum,
		};
		OK(herd_go(s, skynet_task, &c, sizeof c));
	}
	OK(herd_scope_close(s));
}

static void skynet_task(void *p)
{
	struct node *n = p;

	if (n->size == 1) {
		atomic_fetch_add(n->parent, n->num);
		return;
	}
	skynet_children(n);
	atomic_fetch_add(n->parent, atomic_load(&n->sum));
}

static double skynet_once(int run)
{
	struct node root = {
		.num = 0, .size = SKYNET_LEAVES, .parent = &skynet_total,
	};
	herd_scope *s;
	int64_t t0, t;

	atomic_store(&skynet_total, 0);
	t0 = herd_now();
	OK(herd_scope_open(&s));
	OK(herd_go(s, skynet_task, &root, sizeof root));
	OK(herd_scope_close(s));
	t = herd_now() - t0;
	if (atomic_load(&skynet_total) != SKYNET_SUM)
		fail("skynet: sum %ld, expected %ld",
		     atomic_load(&skynet_total), SKYNET_SUM);
	return (double)t / HERD_MSEC;
}

static void skynet_main(void *arg)
{
	result = median_of("skynet", skynet_once);
}

/* ------------------------------------------------------------ yield */

struct yielder {
	long yields;
	int id;		/* 0 or 1 */
};

/* The warm-up checks that the two tasks do take turns. */
static _Atomic int yield_last;		/* id of the last task that ran */
static _Atomic long yield_misses;	/* yields after which it still was */

static void yield_task(void *p)
{
	const struct yielder *y = p;

	for (long i = 0; i < y->yields; i++)
		OK(herd_yield());
}

static void yield_check_task(void *p)
{
	const struct yielder *y = p;
	long misses = 0;

	for (long i = 0; i < y->yields; i++) {
		atomic_store_explicit(&yield_last, y->id, memory_order_relaxed);
		OK(herd_yield());
		misses += atomic_load_explicit(&yield_last,
					       memory_order_relaxed) == y->id;
	}
	atomic_fetch_add(&yield_misses, misses);
}

static double yield_once(int run)
{
	herd_fn fn = run == 0 ? yield_check_task : yield_task;
	herd_scope *s;
	int64_t t0 = herd_now();

	OK(herd_scope_open(&s));
	for (int id = 0; id < 2; id++) {
		struct yielder y = { .yields = YIELDS / 2, .id = id };

		OK(herd_go(s, fn, &y, sizeof y));
	}
	OK(herd_scope_close(s));
	return (double)(herd_now() - t0) / YIELDS;
}

static void yield_main(void *arg)
{
	result = median_of("yield", yield_once);
	/* The last yield of the task that ends second finds no one to switch to. */
	fprintf(stderr, "yield: warm-up: %ld of %ld yields did not switch tasks "
		"(1 expected)\n", atomic_load(&yield_misses), YIELDS);
}

/* ------------------------------------------------------------ mem-parked */

static void parked_task(void *p)
{
	OK(herd_wg_wait(*(herd_wg **)p, HERD_FOREVER));
}

/* Polls the statistics until n tasks are parked (the caller is running). */
static void wait_parked(long n)
{
	int64_t deadline = herd_deadline(PARK_TIMEOUT);
	herd_stats st;

	for (;;) {
		OK(herd_stats_get(&st));
		if (st.tasks_parked >= (uint64_t)n)
			return;
		if (herd_now() > deadline)
			fail("mem-parked: %" PRIu64 " of %ld tasks parked after "
			     "%" PRId64 " s", st.tasks_parked, n,
			     PARK_TIMEOUT / HERD_SEC);
		OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	}
}

/* Parks n tasks on a wait group; returns the memory they add. */
static struct mem parked_round(long n)
{
	struct mem before, after;
	herd_scope *s;
	herd_wg *wg;

	OK(herd_wg_new(&wg));
	OK(herd_wg_add(wg, 1));
	OK(herd_scope_open(&s));
	before = mem_now();
	for (long i = 0; i < n; i++)
		OK(HERD_GO(s, parked_task, wg));
	wait_parked(n);
	after = mem_now();
	log_stats("mem-parked");
	OK(herd_wg_done(wg));
	OK(herd_scope_close(s));
	OK(herd_wg_free(wg));
	return mem_sub(after, before);
}

static void mem_parked_main(void *arg)
{
	struct mem m;

	parked_round(MEM_WARMUP);
	m = parked_round(MEM_TASKS);
	log_pte("mem-parked", m, MEM_TASKS);
	result = (double)m.rss / MEM_TASKS;
}

/* ------------------------------------------------------------ mem-spawned */

/*
 * Spawns n tasks that cannot run: there is one worker and the caller does not
 * yield. Returns the memory they add.
 */
static struct mem spawned_round(long n)
{
	struct mem before, after;
	herd_scope *s;
	herd_stats st;

	OK(herd_scope_open(&s));
	before = mem_now();
	for (long i = 0; i < n; i++)
		OK(HERD_GO(s, nop_task, i));
	after = mem_now();
	log_stats("mem-spawned");
	if (herd_stats_get(&st) == 0 && st.tasks < (uint64_t)n + 1)
		fprintf(stderr, "mem-spawned: warning: %" PRIu64 " tasks alive, "
			"some of the %ld spawned ones have run\n", st.tasks, n);
	OK(herd_scope_close(s));
	return mem_sub(after, before);
}

static void mem_spawned_main(void *arg)
{
	struct mem m;

	spawned_round(MEM_WARMUP);
	m = spawned_round(MEM_TASKS);
	log_pte("mem-spawned", m, MEM_TASKS);
	result = (double)m.rss / MEM_TASKS;
}

/* ------------------------------------------------------------ channels */

static herd_chan *make_chan(size_t cap)
{
	herd_chan *ch;

	OK(herd_chan_make(&ch, sizeof(long), cap));
	return ch;
}

/* The sum 0 + 1 + ... + (n - 1). */
static long sum_below(long n)
{
	return n * (n - 1) / 2;
}

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
	int64_t t0 = herd_now(), t;

	OK(herd_scope_open(&s));
	OK(herd_go(s, pong_task, &a, sizeof a));
	for (long i = 0; i < PINGPONG_TRIPS; i++) {
		long v;

		OK(herd_chan_send(a.in, &i, HERD_FOREVER));
		OK(herd_chan_recv(a.out, &v, HERD_FOREVER));
		sum += v;
	}
	t = herd_now() - t0;
	OK(herd_chan_close(a.in));
	OK(herd_scope_close(s));
	OK(herd_chan_free(a.in));
	OK(herd_chan_free(a.out));
	if (sum != sum_below(PINGPONG_TRIPS))
		fail("chan-pingpong: sum %ld, expected %ld", sum,
		     sum_below(PINGPONG_TRIPS));
	return (double)t / PINGPONG_TRIPS;
}

static void pingpong_main(void *arg)
{
	result = median_of("chan-pingpong", pingpong_once);
}

/* Producers send first, first + 1, ..., first + n - 1. */
struct producer {
	herd_chan *ch;
	long first, n;
};

static void producer_task(void *p)
{
	struct producer *a = p;

	for (long i = a->first; i < a->first + a->n; i++)
		OK(herd_chan_send(a->ch, &i, HERD_FOREVER));
}

static _Atomic long consumed_sum;

static void consumer_task(void *p)
{
	long v, sum = 0;

	HERD_RANGE(v, *(herd_chan **)p)
		sum += v;
	atomic_fetch_add(&consumed_sum, sum);
}

/* n producers and n consumers on one buffered channel; ns per message. */
static double producers_consumers(const char *name, int n)
{
	herd_chan *ch = make_chan(CHAN_CAP);
	herd_scope *prod, *cons;
	int64_t t0 = herd_now(), t;

	atomic_store(&consumed_sum, 0);
	OK(herd_scope_open(&cons));
	OK(herd_scope_open(&prod));
	for (int i = 0; i < n; i++) {
		struct producer a = { ch, i * (CHAN_MSGS / n), CHAN_MSGS / n };

		OK(HERD_GO(cons, consumer_task, ch));
		OK(herd_go(prod, producer_task, &a, sizeof a));
	}
	OK(herd_scope_close(prod));
	OK(herd_chan_close(ch));
	OK(herd_scope_close(cons));
	t = herd_now() - t0;
	OK(herd_chan_free(ch));
	if (atomic_load(&consumed_sum) != sum_below(CHAN_MSGS))
		fail("%s: sum %ld, expected %ld", name,
		     atomic_load(&consumed_sum), sum_below(CHAN_MSGS));
	return (double)t / CHAN_MSGS;
}

static double buffered_once(int run)
{
	return producers_consumers("chan-buffered", 1);
}

static void buffered_main(void *arg)
{
	result = median_of("chan-buffered", buffered_once);
}

static double two_by_two_once(int run)
{
	return producers_consumers("chan-2x2", 2);
}

static void two_by_two_main(void *arg)
{
	result = median_of("chan-2x2", two_by_two_once);
}

static double select_once(int run)
{
	herd_chan *a = make_chan(0), *b = make_chan(0);
	herd_scope *s;
	long v, sum = 0, count[2] = { 0, 0 };
	herd_case cs[] = { HERD_CASE_RECV(a, &v), HERD_CASE_RECV(b, &v) };
	int64_t t0 = herd_now(), t;

	OK(herd_scope_open(&s));
	for (int i = 0; i < 2; i++) {
		struct producer p = { i ? b : a, i * (SELECT_OPS / 2), SELECT_OPS / 2 };

		OK(herd_go(s, producer_task, &p, sizeof p));
	}
	for (long i = 0; i < SELECT_OPS; i++) {
		count[OK(herd_select(cs, 2, HERD_FOREVER))]++;
		sum += v;
	}
	t = herd_now() - t0;
	OK(herd_scope_close(s));
	OK(herd_chan_free(a));
	OK(herd_chan_free(b));
	if (sum != sum_below(SELECT_OPS) || count[0] != count[1])
		fail("select: sum %ld (expected %ld), cases %ld and %ld", sum,
		     sum_below(SELECT_OPS), count[0], count[1]);
	return (double)t / SELECT_OPS;
}

static void select_main(void *arg)
{
	result = median_of("select", select_once);
}

/* ------------------------------------------------------------ main */

struct bench {
	const char *name;
	const char *unit;
	int decimals;		/* printed after the point */
	unsigned workers;	/* 0: one per CPU */
	herd_fn first;		/* the first task: measures, sets `result` */
};

static const struct bench benches[] = {
	{ "spawn", "ns/task", 1, 0, spawn_main },
	{ "skynet", "ms", 1, 0, skynet_main },
	{ "yield", "ns/switch", 1, 1, yield_main },
	{ "mem-parked", "bytes/task", 0, 0, mem_parked_main },
	{ "mem-spawned", "bytes/task", 0, 1, mem_spawned_main },
	{ "chan-pingpong", "ns/roundtrip", 1, 0, pingpong_main },
	{ "chan-buffered", "ns/msg", 1, 0, buffered_main },
	{ "chan-2x2", "ns/msg", 1, 0, two_by_two_main },
	{ "select", "ns/op", 1, 0, select_main },
};

BENCH_TABLE(benches)

int main(int argc, char **argv)
{
	const struct bench *b = argc == 2 ? find_bench(argv[1]) : NULL;
	herd_config cfg = { 0 };
	int rc;

	if (!b)
		return usage();
	cfg.workers = b->workers;
	rc = herd_run(&cfg, b->first, NULL);
	if (rc < 0)
		fail("herd_run: %s", herd_strerror(rc));
	printf("%.*f %s\n", b->decimals, result, b->unit);
	return 0;
}
