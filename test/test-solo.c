/*
 * test-solo.c - the only worker's solo locks (core.h): with one worker,
 * channel locks taken without atomics, and wait states stored without a
 * barrier, stay correct when another thread comes in. A plain thread's
 * try_recv enters a channel that tasks are busy on (it must wait out the
 * worker's solo lock, and the worker must lock for real from then on),
 * and a plain thread cancels a scope whose task is parking on a channel
 * (the path of the signal thread's and the monitor's cancels).
 * Each case also runs with the default workers, where no lock is solo. A
 * lost wake-up hangs the case until its timeout.
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define CANCEL_ROUNDS (1000 / TEST_SCALE)

/* ------------------------------------------------------------------ */

/* SENDERS tasks send their numbers on one unbuffered channel, where they
 * queue; a task receives them, and from a quarter of the way on THIEVES
 * plain threads' try_recv take queued senders too, so that the threads
 * change the queue together (two: the second to lock the channel must
 * wait out the worker as the first does). */
#define THIEVES 2
#define SENDERS 4
#define PER_SENDER (100000 / TEST_SCALE)
#define TOTAL (SENDERS * PER_SENDER)

static struct {
	herd_chan *ch;
	_Atomic unsigned char *seen;
	atomic_long got, thread_got;
	atomic_bool go;
} sh;

static void take(long v)
{
	CHECK(v >= 0 && v < TOTAL);
	CHECK_EQ(atomic_fetch_add(&sh.seen[v], 1), 0);
	if (atomic_fetch_add(&sh.got, 1) + 1 == TOTAL / 4)
		atomic_store(&sh.go, true);
}

static void sender(void *p)
{
	long first = *(long *)p;
	for (long v = first; v < first + PER_SENDER; v++)
		CHECK_OK(herd_chan_send(sh.ch, &v, HERD_FOREVER));
}

static void receiver(void *unused)
{
	(void)unused;
	int64_t give_up = 0;
	while (atomic_load(&sh.got) < TOTAL) {
		/* Once the threads may come in, let them take some before this
		 * task goes on (10 s at most): on a loaded machine (or under
		 * Valgrind) they might not run before it has taken them all. */
		if (atomic_load(&sh.go) && !atomic_load(&sh.thread_got)) {
			if (!give_up)
				give_up = herd_deadline(10 * HERD_SEC);
			if (herd_now() < give_up) {
				herd_sleep(herd_deadline(HERD_MSEC));
				continue;
			}
		}
		long v;
		int rc = herd_chan_recv(sh.ch, &v, herd_deadline(HERD_MSEC));
		if (rc == HERD_ETIMEDOUT)
			continue; /* the thread took the last ones */
		CHECK_OK(rc);
		take(v);
	}
}

static void *thief(void *unused)
{
	(void)unused;
	while (!atomic_load(&sh.go))
		sched_yield();
	for (unsigned n = 1; atomic_load(&sh.got) < TOTAL; n++) {
		long v;
		if (herd_chan_try_recv(sh.ch, &v) == 0) {
			take(v);
			atomic_fetch_add(&sh.thread_got, 1);
		}
		if (n % 16 == 0)
			sched_yield();
	}
	return NULL;
}

static void share_main(void *unused)
{
	herd_scope *s;
	pthread_t th[THIEVES];
	(void)unused;
	sh.ch = make_chan(sizeof(long), 0);
	sh.seen = calloc(TOTAL, 1);
	CHECK(sh.seen);
	atomic_store(&sh.got, 0);
	atomic_store(&sh.thread_got, 0);
	atomic_store(&sh.go, false);
	for (int i = 0; i < THIEVES; i++)
		CHECK(pthread_create(&th[i], NULL, thief, NULL) == 0);
	CHECK_OK(herd_scope_open(&s));
	for (long i = 0; i < SENDERS; i++)
		CHECK_OK(HERD_GO(s, sender, i * PER_SENDER));
	CHECK_OK(herd_go(s, receiver, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < THIEVES; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK_EQ(atomic_load(&sh.got), TOTAL);
	CHECK(atomic_load(&sh.thread_got) > 0);
	CHECK_OK(herd_chan_free(sh.ch));
	free((void *)sh.seen);
}

/* Senders queue on an unbuffered channel that a task and, once traffic is
 * under way, two plain threads receive from: every value arrives once. */
TEST(thread_shares_busy_channel)
{
	test_run_threads(1, share_main, NULL);
	test_run_threads(0, share_main, NULL);
}

/* ------------------------------------------------------------------ */

static struct {
	herd_scope *_Atomic scope; /* for the canceler; NULL when done */
	atomic_int round;          /* the round the canceler is to cancel */
	atomic_bool done;
} cn;

static void cancel_waiter(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v;
	/* Nobody sends: only the cancellation ends it. */
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), HERD_ECANCELED);
}

static void *canceler(void *unused)
{
	int done_round = 0;
	(void)unused;
	while (!atomic_load(&cn.done)) {
		int r = atomic_load(&cn.round);
		herd_scope *s = atomic_load(&cn.scope);
		if (r == done_round || !s) {
			sched_yield();
			continue;
		}
		CHECK_OK(herd_scope_cancel(s));
		done_round = r;
		atomic_store(&cn.scope, NULL); /* the task may close it now */
	}
	return NULL;
}

static void cancel_main(void *unused)
{
	herd_chan *ch = make_chan(sizeof(long), 0);
	pthread_t th;
	(void)unused;
	atomic_store(&cn.done, false);
	atomic_store(&cn.round, 0);
	CHECK(pthread_create(&th, NULL, canceler, NULL) == 0);
	for (int r = 1; r <= CANCEL_ROUNDS; r++) {
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(HERD_GO(s, cancel_waiter, ch));
		atomic_store(&cn.scope, s);
		atomic_store(&cn.round, r);
		/* Let the waiter park, or not, as the race goes. */
		if (r % 2)
			CHECK_OK(herd_yield());
		while (atomic_load(&cn.scope))
			CHECK_OK(herd_yield());
		CHECK_OK(herd_scope_close(s));
	}
	atomic_store(&cn.done, true);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_chan_free(ch));
}

/* A plain thread cancels the scope of a task that is parking on a channel,
 * at every point of its park: the task always wakes with HERD_ECANCELED. */
TEST(thread_cancels_parking_task)
{
	test_run_threads(1, cancel_main, NULL);
	test_run_threads(0, cancel_main, NULL);
}
