/*
 * test-blocking.c - calls that block a thread: herd_blocking runs them on
 * helper threads while the other tasks go on; the helper count is bounded;
 * a task that blocks its worker without herd_blocking does not stop the
 * tasks queued behind it; when every worker is stuck, one warning says so.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static int64_t now_ms(void)
{
	return herd_now() / HERD_MSEC;
}

/* Sleeps the calling thread (not a task switch: it blocks). */
static void thread_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ------------------------------------------------------------------ */

static int on_helper(void *arg)
{
	/* Not a worker thread, and not a task. */
	CHECK_EQ(herd_worker_id(), -EPERM);
	CHECK_EQ(herd_sleep(herd_deadline(HERD_MSEC)), -EPERM);
	return *(int *)arg * 2;
}

static void *plain_thread(void *arg)
{
	int v = 1;
	CHECK_EQ(herd_blocking(on_helper, &v), -EPERM);
	return arg;
}

static void result_main(void *arg)
{
	int v = 21;
	CHECK_EQ(herd_blocking(on_helper, &v), 42);
	v = -5;
	CHECK_EQ(herd_blocking(on_helper, &v), -10); /* negative results pass */
	CHECK_EQ(herd_blocking(NULL, &v), -EINVAL);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, plain_thread, NULL) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	(void)arg;
}

/* herd_blocking runs fn on a thread that is not a worker and returns its
 * result; bad arguments and plain threads are refused. */
TEST(result)
{
	test_run(0, result_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_long ticks;
static atomic_int sleeper_done;

static int long_call(void *arg)
{
	thread_sleep_ms(300);
	atomic_store(&sleeper_done, 1);
	return (int)(intptr_t)arg;
}

static void blocker(void *arg)
{
	CHECK_EQ(herd_blocking(long_call, (void *)(intptr_t)7), 7);
	(void)arg;
}

static void ticker(void *arg)
{
	while (!atomic_load(&sleeper_done)) {
		atomic_fetch_add(&ticks, 1);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	(void)arg;
}

static void no_stall_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, ticker, NULL, 0));
	CHECK_OK(herd_go(s, blocker, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	/* A 1 ms ticker over a 300 ms call: dozens of ticks, not a handful.
	 * Had the call held the only worker, the ticker would have ticked
	 * once or twice before and after it. */
	CHECK(atomic_load(&ticks) >= 20);
	(void)arg;
}

/* A task in herd_blocking does not hold its worker: with one worker, a
 * ticking task keeps ticking while a 300 ms call runs. */
TEST(no_stall)
{
	test_run(1, no_stall_main, NULL);
}

/* ------------------------------------------------------------------ */

#define MANY 64
#define HELPERS 8

static atomic_int running, most;

static int counted_call(void *arg)
{
	int n = atomic_fetch_add(&running, 1) + 1;
	int m = atomic_load(&most);
	while (n > m && !atomic_compare_exchange_weak(&most, &m, n))
		;
	thread_sleep_ms(10);
	atomic_fetch_sub(&running, 1);
	return (int)(intptr_t)arg;
}

static void caller(void *arg)
{
	intptr_t i = *(intptr_t *)arg;
	CHECK_EQ(herd_blocking(counted_call, (void *)i), i);
}

static void many_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (intptr_t i = 0; i < MANY; i++)
		CHECK_OK(HERD_GO(s, caller, i));
	CHECK_OK(herd_scope_close(s));
	CHECK(atomic_load(&most) <= HELPERS);
	CHECK(atomic_load(&most) >= 2); /* they did run side by side */
	(void)arg;
}

/* Many calls at once share at most blocking_threads helpers, and every
 * caller gets its own result. */
TEST(bounded_helpers)
{
	herd_config cfg = {0};
	cfg.blocking_threads = HELPERS;
	CHECK_OK(herd_run(&cfg, many_main, NULL));
}

/* ------------------------------------------------------------------ */

#define QUEUED 20

static atomic_int queued_ran;

static void queued_task(void *arg)
{
	atomic_fetch_add(&queued_ran, 1);
	(void)arg;
}

static void stuck_task(void *arg)
{
	herd_scope *s = arg;
	for (int i = 0; i < QUEUED; i++)
		CHECK_OK(herd_go(s, queued_task, NULL, 0));
	/* Blocks the worker thread itself, holding the tasks just queued
	 * on it, for up to 5 s or until they have all run elsewhere. */
	int64_t end = now_ms() + 5000;
	while (atomic_load(&queued_ran) < QUEUED && now_ms() < end)
		thread_sleep_ms(5);
	CHECK_EQ(atomic_load(&queued_ran), QUEUED);
}

static void stuck_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, stuck_task, s, 0));
	CHECK_OK(herd_scope_close(s));
	(void)arg;
}

/* A task that blocks its worker's thread without herd_blocking does not
 * stop the tasks queued behind it: another worker runs them. */
TEST(stuck_worker_queue_moves)
{
	herd_config cfg = {0};
	cfg.workers = 2;
	cfg.stall_ns = 5 * HERD_MSEC;
	CHECK_OK(herd_run(&cfg, stuck_main, NULL));
}

/* ------------------------------------------------------------------ */

static void all_stuck_task(void *arg)
{
	thread_sleep_ms(150);
	(void)arg;
}

static void all_stuck_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, queued_task, NULL, 0));
	all_stuck_task(NULL); /* the only worker, with a task queued */
	thread_sleep_ms(150);
	CHECK_OK(herd_scope_close(s));
	(void)arg;
}

static void all_stuck_child(void)
{
	herd_config cfg = {0};
	cfg.workers = 1;
	cfg.stall_ns = 10 * HERD_MSEC;
	CHECK_OK(herd_run(&cfg, all_stuck_main, NULL));
}

/* When every worker is stuck with tasks waiting, one line on stderr says
 * so (once, though it stays stuck for many monitor rounds). */
TEST(all_stuck_warns_once)
{
	char buf[4096];
	int status = test_child(all_stuck_child, buf, sizeof buf);
	test_child_ok(status, buf);
	CHECK_EQ(test_count(buf, "every worker has run the same task"), 1);
}

/* ------------------------------------------------------------------ */

#define HOG_ROUNDS 5

static atomic_int hog_done, fired_in_time;

static void timer_waiter(void *arg)
{
	herd_timer *tm = arg;
	for (int i = 0; i < HOG_ROUNDS; i++) {
		int64_t when;
		CHECK_EQ(herd_chan_recv(herd_timer_chan(tm), &when, HERD_FOREVER), 0);
		if (!atomic_load(&hog_done))
			atomic_fetch_add(&fired_in_time, 1);
	}
}

static void *write_later(void *arg)
{
	thread_sleep_ms(2);
	CHECK_EQ(write(*(int *)arg, "x", 1), 1);
	return NULL;
}

static void timer_hog_main(void *arg)
{
	herd_scope *s;
	herd_timer *tm;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_timer_new(&tm, herd_deadline(3600 * HERD_SEC), 0));
	CHECK_OK(herd_go(s, timer_waiter, tm, 0));
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC))); /* it waits */
	for (int i = 0; i < HOG_ROUNDS; i++) {
		/* Wait for a descriptor, which a plain thread makes readable:
		 * the worker sleeping in the poller runs this task, and the
		 * other sleeps on its futex, with nobody watching the timers.
		 * Then set the timer and block this worker's thread past it:
		 * the other worker must fire it meanwhile. */
		int fds[2];
		char c;
		pthread_t th;
		CHECK_OK(herd_pipe(fds, HERD_NOWAIT));
		CHECK(pthread_create(&th, NULL, write_later, &fds[1]) == 0);
		CHECK_EQ(herd_read(fds[0], &c, 1, herd_deadline(10 * HERD_SEC)), 1);
		atomic_store(&hog_done, 0);
		CHECK_OK(herd_timer_reset(tm, herd_deadline(5 * HERD_MSEC), 0));
		thread_sleep_ms(500);
		atomic_store(&hog_done, 1);
		CHECK(pthread_join(th, NULL) == 0);
		CHECK_OK(herd_close(fds[0]));
		CHECK_OK(herd_close(fds[1]));
	}
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&fired_in_time), HOG_ROUNDS);
	CHECK_OK(herd_timer_free(tm));
	(void)arg;
}

/* A timer set by a task that then blocks its worker's thread still fires
 * on time: another worker, idle, fires it (the monitor wakes one if none
 * is sleeping on the timers), however long the monitor's tick (a quarter
 * of stall_ns: 2.5 s here, longer than the blocked call). */
TEST(timer_while_worker_blocked)
{
	herd_config cfg = {0};
	cfg.workers = 2;
	cfg.stall_ns = 10 * HERD_SEC;
	CHECK_OK(herd_run(&cfg, timer_hog_main, NULL));
}

/* ------------------------------------------------------------------ */

static void nothing(void *arg)
{
	(void)arg;
}

/* Out-of-range settings are refused. */
TEST(config_invalid)
{
	herd_config cfg = {0};
	cfg.stall_ns = HERD_MSEC - 1;
	CHECK_EQ(herd_run(&cfg, nothing, NULL), -EINVAL);
	cfg.stall_ns = 0;
	cfg.blocking_threads = 1025;
	CHECK_EQ(herd_run(&cfg, nothing, NULL), -EINVAL);
	cfg.blocking_threads = 1;
	CHECK_OK(herd_run(&cfg, nothing, NULL));
}
