/*
 * test-timer.c - timers and tickers (herd_timer_*), and sleeping tasks:
 * a one-shot timer fires once and never early, a ticker keeps its phase and
 * drops ticks for a slow reader, stop and reset leave no stale tick, a timer
 * in a select, free while a task waits, bad arguments, calls from plain
 * threads; 100,000 sleeping tasks wake in deadline order and none early;
 * sleeping tasks cost no CPU.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------ */

static void oneshot_main(void *arg)
{
	int64_t d = herd_deadline(20 * HERD_MSEC);
	herd_timer *t;
	CHECK_OK(herd_timer_new(&t, d, 0));
	herd_chan *ch = herd_timer_chan(t);
	CHECK(ch != NULL);
	CHECK_EQ(herd_chan_elem_size(ch), sizeof(int64_t));
	int64_t v = 0;
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK(herd_now() >= d);
	CHECK(v >= d);
	/* Once only. */
	CHECK_EQ(herd_chan_recv(ch, &v, herd_deadline(30 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(herd_timer_stop(t), 0); /* it had fired */
	CHECK_OK(herd_timer_free(t));
	/* A deadline in the past fires at once. */
	CHECK_OK(herd_timer_new(&t, 1, 0));
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, herd_deadline(HERD_SEC)), 0);
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

/* A one-shot timer delivers the time once, at its deadline, never before. */
TEST(oneshot)
{
	test_run(0, oneshot_main, NULL);
}

/* ------------------------------------------------------------------ */

#define TICK (5 * HERD_MSEC)

static void ticker_main(void *arg)
{
	int64_t d = herd_deadline(TICK);
	herd_timer *t;
	CHECK_OK(herd_timer_new(&t, d, TICK));
	herd_chan *ch = herd_timer_chan(t);
	int64_t last = 0;
	for (int k = 0; k < 10; k++) {
		int64_t v;
		CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
		/* Never early: the k-th tick received is at least the k-th
		 * tick's time (ticks may be dropped, never advanced). */
		CHECK(v >= d + k * TICK);
		CHECK(v >= last);
		CHECK(herd_now() >= v);
		last = v;
	}
	/* A slow reader: ticks that find the channel full are dropped, not
	 * queued: after 20 periods, one tick waits, not 20. */
	CHECK_OK(herd_sleep(herd_deadline(20 * TICK)));
	int64_t v;
	CHECK_EQ(herd_chan_len(ch), 1);
	CHECK_EQ(herd_chan_try_recv(ch, &v), 0);
	CHECK(v >= last);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	/* Over a window, a reader that sleeps 3 periods per tick gets fewer
	 * ticks than the periods elapsed, and the ticker goes on ticking
	 * after it dropped some (each receive below waits for one). */
	int64_t t0 = herd_now();
	int got = 0;
	while (herd_now() - t0 < 30 * TICK) {
		CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
		got++;
		CHECK_OK(herd_sleep(herd_deadline(3 * TICK)));
	}
	int64_t periods = (herd_now() - t0) / TICK;
	printf("slow reader: %d ticks in %" PRId64 " periods\n", got, periods);
	CHECK(got < periods);
	CHECK_EQ(herd_timer_stop(t), 1); /* a ticker is pending until stopped */
	CHECK_EQ(herd_chan_recv(ch, &v, herd_deadline(4 * TICK)), HERD_ETIMEDOUT);
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

/* A ticker delivers at deadline + k * period, and drops ticks rather than
 * queue them for a slow reader. */
TEST(ticker)
{
	test_run(0, ticker_main, NULL);
}

/* ------------------------------------------------------------------ */

static void stop_reset_main(void *arg)
{
	herd_timer *t;
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_OK(herd_timer_new(&t, d, 0));
	CHECK_EQ(herd_timer_stop(t), 1);
	CHECK_EQ(herd_timer_stop(t), 0);
	int64_t v;
	CHECK_EQ(herd_chan_try_recv(herd_timer_chan(t), &v), HERD_ETIMEDOUT);
	/* Nothing comes, even well past the old deadline. */
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, d + 30 * HERD_MSEC), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d + 30 * HERD_MSEC);

	/* A tick delivered but not received is removed by stop and reset. */
	CHECK_OK(herd_timer_reset(t, 1, 0));
	CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	CHECK_EQ(herd_chan_len(herd_timer_chan(t)), 1);
	CHECK_EQ(herd_timer_stop(t), 0);
	CHECK_EQ(herd_chan_try_recv(herd_timer_chan(t), &v), HERD_ETIMEDOUT);

	/* Reset moves the deadline: nothing before the new one. */
	d = herd_deadline(30 * HERD_MSEC);
	CHECK_EQ(herd_timer_reset(t, herd_deadline(5 * HERD_MSEC), 0), 0);
	CHECK_EQ(herd_timer_reset(t, d, 0), 1);
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, HERD_FOREVER), 0);
	CHECK(herd_now() >= d);
	CHECK(v >= d);
	CHECK_EQ(herd_timer_stop(t), 0);

	/* Reset turns a one-shot into a ticker, and a ticker back. */
	d = herd_deadline(2 * HERD_MSEC);
	CHECK_EQ(herd_timer_reset(t, d, 2 * HERD_MSEC), 0);
	for (int k = 0; k < 3; k++) {
		CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, HERD_FOREVER), 0);
		CHECK(v >= d + k * 2 * HERD_MSEC);
	}
	d = herd_deadline(5 * HERD_MSEC);
	CHECK_EQ(herd_timer_reset(t, d, 0), 1); /* a ticker is pending */
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, HERD_FOREVER), 0);
	CHECK(v >= d);
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, herd_deadline(20 * HERD_MSEC)),
		 HERD_ETIMEDOUT);
	CHECK_EQ(herd_timer_stop(t), 0);
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

/* Stopping reports whether the timer was pending; stop and reset leave no
 * stale tick behind. */
TEST(stop_reset)
{
	test_run(0, stop_reset_main, NULL);
}

/* ------------------------------------------------------------------ */

static void select_main(void *arg)
{
	herd_chan *data;
	CHECK_OK(herd_chan_make(&data, sizeof(long), 0));
	herd_timer *t;
	int64_t d = herd_deadline(15 * HERD_MSEC);
	CHECK_OK(herd_timer_new(&t, d, 0));
	long x;
	int64_t when;
	herd_case cs[] = {HERD_CASE_RECV(data, &x), HERD_CASE_RECV(herd_timer_chan(t), &when)};
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, 0);
	CHECK(herd_now() >= d);
	CHECK(when >= d);
	CHECK_OK(herd_timer_free(t));
	CHECK_OK(herd_chan_free(data));

	/* Data ready before a far timer: the data case, the timer pending. */
	CHECK_OK(herd_chan_make(&data, sizeof(long), 1));
	x = 9;
	CHECK_OK(herd_chan_send(data, &x, HERD_FOREVER));
	CHECK_OK(herd_timer_new(&t, herd_deadline(60 * HERD_SEC), 0));
	herd_case cs2[] = {HERD_CASE_RECV(data, &x), HERD_CASE_RECV(herd_timer_chan(t), &when)};
	x = 0;
	CHECK_EQ(herd_select(cs2, 2, HERD_FOREVER), 0);
	CHECK_EQ(x, 9);
	CHECK_EQ(herd_timer_stop(t), 1);
	/* A stopped timer's case never becomes ready: the deadline ends it. */
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_select(cs2, 2, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_OK(herd_timer_free(t));
	CHECK_OK(herd_chan_free(data));
	(void)arg;
}

/* A timer's channel works in a select: time.After's use. */
TEST(in_select)
{
	test_run(0, select_main, NULL);
}

/* ------------------------------------------------------------------ */

static void invalid_main(void *arg)
{
	herd_timer *t = NULL;
	CHECK_EQ(herd_timer_new(NULL, 0, 0), -EINVAL);
	CHECK_EQ(herd_timer_new(&t, HERD_FOREVER, 0), -EINVAL);
	CHECK_EQ(herd_timer_new(&t, 0, -1), -EINVAL);
	CHECK_EQ(herd_timer_new(&t, -7, 5), -EINVAL);
	CHECK(t == NULL);
	CHECK_OK(herd_timer_new(&t, herd_deadline(HERD_SEC), 0));
	CHECK_EQ(herd_timer_reset(t, -5, 0), -EINVAL);
	CHECK_EQ(herd_timer_reset(t, herd_deadline(HERD_MSEC), -1), -EINVAL);
	CHECK_EQ(herd_timer_reset(NULL, 0, 0), -EINVAL);
	CHECK_EQ(herd_timer_stop(NULL), -EINVAL);
	CHECK(herd_timer_chan(NULL) == NULL);
	CHECK_EQ(herd_timer_free(NULL), 0);
	CHECK_EQ(herd_timer_stop(t), 1); /* the failed resets changed nothing */
	int64_t v;
	CHECK_EQ(herd_chan_try_recv(herd_timer_chan(t), &v), HERD_ETIMEDOUT);
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

static void timer_waiter(void *p)
{
	herd_timer *t = *(herd_timer **)p;
	int64_t v;
	/* The timer is stopped while this waits: no tick, only the cancel. */
	CHECK_EQ(herd_chan_recv(herd_timer_chan(t), &v, HERD_FOREVER), HERD_ECANCELED);
}

static void free_busy_main(void *arg)
{
	herd_timer *t;
	/* Far enough that the waiter parks and the free comes first even
	 * under Valgrind (30 ms was not: a tick reached the waiter). */
	int64_t d = herd_deadline(300 * HERD_MSEC);
	CHECK_OK(herd_timer_new(&t, d, 0));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, timer_waiter, t));
	test_wait_parked(1);
	CHECK_EQ(herd_timer_free(t), -EBUSY);
	/* Stopped, not freed: its deadline passes and nothing is sent. */
	CHECK_OK(herd_sleep(d + 30 * HERD_MSEC));
	CHECK_EQ(herd_timer_stop(t), 0);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(herd_chan_len(herd_timer_chan(t)), 0);
	CHECK_OK(herd_timer_free(t));
	/* A timer that fired, its tick unread, and a ticker: freed at once. */
	CHECK_OK(herd_timer_new(&t, 1, 0));
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_timer_free(t));
	CHECK_OK(herd_timer_new(&t, 1, HERD_MSEC));
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

/* herd_timer_free refuses (-EBUSY) while a task waits on the channel, and
 * then stops the timer; it frees it once nobody waits. */
TEST(free_busy)
{
	test_run(0, free_busy_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_timer *pt_timer;
static int64_t pt_deadline;

static void *pt_make(void *arg)
{
	pt_deadline = herd_deadline(10 * HERD_MSEC);
	CHECK_OK(herd_timer_new(&pt_timer, pt_deadline, 0));
	return arg;
}

static void *pt_reset(void *arg)
{
	/* Give the task time to block on the channel (it need not have). */
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	pt_deadline = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_timer_reset(pt_timer, pt_deadline, 0), 1);
	return arg;
}

static int pt_stopped;      /* herd_timer_stop's result */
static int64_t pt_stopped_at; /* the time it returned */

static void *pt_stop(void *arg)
{
	pt_stopped = herd_timer_stop(pt_timer);
	pt_stopped_at = herd_now();
	return arg;
}

static void plain_thread_main(void *arg)
{
	herd_chan *ch;
	int64_t v;
	pthread_t th;
	/* Made from a plain thread, received by a task. */
	CHECK(pthread_create(&th, NULL, pt_make, NULL) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	ch = herd_timer_chan(pt_timer);
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK(v >= pt_deadline && herd_now() >= pt_deadline);
	/* Reset from a plain thread while the task waits and the workers may
	 * all be idle: it must wake one to fire the timer. The 10 s deadline
	 * is a generous bound on a 30 ms wait; reaching it would mean that
	 * the new, earlier deadline was not noticed. */
	CHECK_EQ(herd_timer_reset(pt_timer, herd_deadline(60 * HERD_SEC), 0), 0);
	CHECK(pthread_create(&th, NULL, pt_reset, NULL) == 0);
	int rc = herd_chan_recv(ch, &v, herd_deadline(10 * HERD_SEC));
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(rc, 0);
	CHECK(v >= pt_deadline);
	/* Stopped from a plain thread: no tick afterwards. The thread must
	 * stop the timer before its deadline, which a busy machine may not
	 * let it do: a stop that finds the timer fired is a failure only if
	 * it returned before the deadline; after it, the race is run again,
	 * with twice the time (up to 5 s). */
	for (int64_t lead = 20 * HERD_MSEC;; lead *= 2) {
		int64_t d = herd_deadline(lead);
		CHECK_EQ(herd_timer_reset(pt_timer, d, 0), 0);
		CHECK(pthread_create(&th, NULL, pt_stop, NULL) == 0);
		CHECK(pthread_join(th, NULL) == 0);
		if (pt_stopped == 0) {
			CHECK(pt_stopped_at >= d);
			CHECK(lead < 5 * HERD_SEC);
			printf("the stop came %" PRId64 " us after the deadline: again\n",
			       (pt_stopped_at - d) / HERD_USEC);
			/* Stop removed the tick it had delivered. */
			CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
			continue;
		}
		CHECK_EQ(pt_stopped, 1);
		CHECK_EQ(herd_chan_recv(ch, &v, d + 30 * HERD_MSEC), HERD_ETIMEDOUT);
		break;
	}
	CHECK_OK(herd_timer_free(pt_timer));
	(void)arg;
}

/* Timers can be made, reset and stopped from plain threads. */
TEST(plain_thread)
{
	test_run(0, plain_thread_main, NULL);
	test_run(1, plain_thread_main, NULL);
}

/* ------------------------------------------------------------------ */

/* One more than a worker's run queue holds, so that its ring is full at
 * every poll of the timers. */
#define FULL_RING_YIELDERS 257

static atomic_int ring_stop;

static void ring_yielder(void *arg)
{
	while (!atomic_load_explicit(&ring_stop, memory_order_relaxed))
		CHECK_OK(herd_yield());
	(void)arg;
}

static void full_ring_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < FULL_RING_YIELDERS; i++)
		CHECK_OK(herd_go(s, ring_yielder, NULL, 0));
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_OK(herd_sleep(d));
	CHECK(herd_now() >= d);
	atomic_store(&ring_stop, 1);
	CHECK_OK(herd_scope_close(s));
	(void)arg;
}

/* A worker whose run queue is full every time it looks at the timers still
 * fires them: a sleeper among a crowd of yielding tasks wakes. */
TEST(full_ring)
{
	test_run(1, full_ring_main, NULL);
}

/* ------------------------------------------------------------------ */

static void tick_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	int64_t v = 7;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), 0);
}

static void stop_sender_main(void *arg)
{
	herd_timer *t;
	CHECK_OK(herd_timer_new(&t, 1, 0));
	herd_chan *ch = herd_timer_chan(t);
	while (herd_chan_len(ch) == 0)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, tick_sender, ch));
	test_wait_parked(1);
	CHECK_EQ(herd_timer_stop(t), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(herd_chan_len(ch), 0);
	int64_t v;
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	CHECK_OK(herd_timer_free(t));
	(void)arg;
}

/* Stop empties the channel without stranding a task that (against the
 * header's advice) blocked sending on it: the send completes, and the
 * channel is left empty with nobody queued. */
TEST(stop_completes_sender)
{
	test_run(0, stop_sender_main, NULL);
}

/* ------------------------------------------------------------------ */

/* Bad arguments give -EINVAL; without a runtime, -ESRCH. */
TEST(invalid)
{
	herd_timer *t = NULL;
	CHECK_EQ(herd_timer_new(&t, 0, 0), -ESRCH);
	test_run(0, invalid_main, NULL);
}

/* ------------------------------------------------------------------ */

/* TSan keeps at most a few thousand fibers alive. */
#define SLEEPERS (TEST_UNDER_TSAN ? 2000 : 100000 / TEST_SCALE)
#define SLEEP_SPREAD (500 * HERD_MSEC)
/* How late a timer may get while its worker's run queue is full (src/
 * timer.c's OVERDUE_NS): tasks that late may wake out of order. */
#define SLEEP_OVERDUE (10 * HERD_MSEC)

struct sleeper {
	int64_t deadline;
	int64_t armed;
	int64_t woke;
	long seq;
};

static struct sleeper *sleepers;
static atomic_long wake_seq;
static herd_wg *gate;
static int64_t sleep_base;

static void sleeper_task(void *p)
{
	struct sleeper *s = &sleepers[*(long *)p];
	/* Wait until every task exists, so that none starts late. */
	CHECK_OK(herd_wg_wait(gate, HERD_FOREVER));
	s->armed = herd_now();
	CHECK_OK(herd_sleep(sleep_base + s->deadline));
	s->woke = herd_now();
	s->seq = atomic_fetch_add(&wake_seq, 1);
}

static void sleepers_main(void *arg)
{
	long n = *(long *)arg;
	/* Distinct random deadlines over SLEEP_SPREAD: one in each slot of
	 * SLEEP_SPREAD / n, handed to the tasks in a shuffled order. */
	uint64_t r = 88172645463325252ull;
	int64_t slot = SLEEP_SPREAD / n;
	for (long i = 0; i < n; i++)
		sleepers[i].deadline = i * slot + (int64_t)(rng_next(&r) % (uint64_t)slot);
	for (long i = n - 1; i > 0; i--) {
		long j = (long)(rng_next(&r) % (uint64_t)(i + 1));
		int64_t t = sleepers[i].deadline;
		sleepers[i].deadline = sleepers[j].deadline;
		sleepers[j].deadline = t;
	}
	CHECK_OK(herd_wg_new(&gate));
	CHECK_OK(herd_wg_add(gate, 1));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	int64_t t0 = herd_now();
	for (long i = 0; i < n; i++)
		CHECK_OK(HERD_GO(s, sleeper_task, i));
	test_wait_parked((uint64_t)n);
	/* Starts well after every task has had time to go back to sleep
	 * (check_sleepers verifies that they did): 300 ms, or three times
	 * what starting them and their first run took, on a busy machine. */
	int64_t lead = 300 * HERD_MSEC * (TEST_SCALE < 4 ? TEST_SCALE : 4);
	if (lead < 3 * (herd_now() - t0))
		lead = 3 * (herd_now() - t0);
	sleep_base = herd_deadline(lead);
	CHECK_OK(herd_wg_done(gate));
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(gate));
}

static int by_deadline(const void *a, const void *b)
{
	const struct sleeper *x = a, *y = b;
	return x->deadline < y->deadline ? -1 : x->deadline > y->deadline;
}

static void check_sleepers(long n, int workers)
{
	for (long i = 0; i < n; i++) {
		/* None early. */
		if (sleepers[i].woke < sleep_base + sleepers[i].deadline) {
			fprintf(stderr, "task %ld woke %" PRId64 " ns early\n", i,
				sleep_base + sleepers[i].deadline - sleepers[i].woke);
			exit(1);
		}
	}
	if (workers != 1)
		return;
	/* The order means something only if every task went to sleep before
	 * its deadline (a slow machine, or Valgrind, may not manage). */
	for (long i = 0; i < n; i++) {
		if (sleepers[i].armed >= sleep_base + sleepers[i].deadline) {
			fprintf(stderr, "task %ld went to sleep %" PRId64 " ns after "
				"its deadline\n", i,
				sleepers[i].armed - sleep_base - sleepers[i].deadline);
			TEST_SKIP("the machine is too busy or slow for this test");
		}
	}
	/* On one worker, in deadline order. One exception: the worker puts
	 * woken tasks in its run queue in deadline order as far as the queue
	 * has room, and a queue full at every poll (the worker fell behind: a
	 * busy machine, or 100,000 tasks on one worker) holds timers back
	 * until the earliest is SLEEP_OVERDUE late, then fires one all the
	 * same, and the queue's overflow may reorder tasks that late (src/
	 * core/timer.c, herd__timers_run). So two neighbours (by deadline) out
	 * of order fail the test unless one of them woke that late. */
	qsort(sleepers, (size_t)n, sizeof *sleepers, by_deadline);
	long late = 0, excused = 0;
	for (long i = 0; i < n; i++) {
		bool late_i = sleepers[i].woke - sleep_base - sleepers[i].deadline >= SLEEP_OVERDUE;
		late += late_i;
		if (i == 0 || sleepers[i].seq > sleepers[i - 1].seq)
			continue;
		bool late_prev = sleepers[i - 1].woke - sleep_base - sleepers[i - 1].deadline >=
				 SLEEP_OVERDUE;
		if (late_i || late_prev) {
			excused++;
			continue;
		}
		fprintf(stderr, "deadline %" PRId64 " woke as %ld, after deadline "
			"%" PRId64 " woke as %ld\n", sleepers[i - 1].deadline,
			sleepers[i - 1].seq, sleepers[i].deadline, sleepers[i].seq);
		exit(1);
	}
	printf("%ld of %ld tasks woke %" PRId64 " ms late or more; %ld pairs out of "
	       "order among them\n", late, n, SLEEP_OVERDUE / HERD_MSEC, excused);
}

/* 100,000 tasks sleeping on distinct deadlines wake in deadline order (one
 * worker, so that the order of waking is the order of running), none early. */
LONG_TEST(sleepers_deadline_order)
{
	long n = SLEEPERS;
	sleepers = calloc((size_t)n, sizeof *sleepers);
	CHECK(sleepers);
	test_run(1, sleepers_main, &n);
	CHECK_EQ(atomic_load(&wake_seq), n);
	check_sleepers(n, 1);
	free(sleepers);
}

/* The same on every worker: none early, all woken. */
LONG_TEST(sleepers_all_workers)
{
	long n = SLEEPERS / 10;
	sleepers = calloc((size_t)n, sizeof *sleepers);
	CHECK(sleepers);
	test_run(0, sleepers_main, &n);
	CHECK_EQ(atomic_load(&wake_seq), n);
	check_sleepers(n, 0);
	free(sleepers);
}

/* ------------------------------------------------------------------ */

#define IDLE_SLEEPERS (TEST_UNDER_TSAN ? 1000 : 10000)

static void idle_sleeper(void *p)
{
	int rc = herd_sleep(*(int64_t *)p);
	CHECK(rc == HERD_ECANCELED);
}

static void idle_main(void *arg)
{
	herd_scope *s;
	/* The sleepers sleep until they are canceled, however long the
	 * spawning takes (under TSan, seconds on a slow machine). */
	int64_t until = herd_deadline(3600 * HERD_SEC);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < IDLE_SLEEPERS; i++)
		CHECK_OK(HERD_GO(s, idle_sleeper, until));
	test_wait_parked(IDLE_SLEEPERS);
	int64_t cpu0 = test_cpu_ns(), t0 = herd_now();
	CHECK_OK(herd_sleep(herd_deadline(HERD_SEC)));
	int64_t cpu = test_cpu_ns() - cpu0, wall = herd_now() - t0;
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	printf("%d sleeping tasks: %.1f ms of CPU in %.1f ms\n", IDLE_SLEEPERS,
	       cpu / 1e6, wall / 1e6);
	/* Idle workers sleep until the next deadline instead of polling:
	 * a generous bound of 5% of the time asleep (on any worker). */
	CHECK(cpu < wall / 20);
	(void)arg;
}

/* Sleeping tasks cost no CPU: the workers sleep until the next deadline. */
SERIAL_TEST(sleepers_cost_no_cpu)
{
	test_run(0, idle_main, NULL);
}
