/*
 * test-chan-race.c - channels under load and in races: producers and
 * consumers, more than workers, pass millions of numbered messages and each
 * arrives exactly once (plain, with short deadlines on both sides); a close
 * or a cancellation racing blocked senders and receivers loses nothing.
 */
#include "test.h"

#include <stdatomic.h>
#include <stdbool.h>

/* A mix of v, so that a sum of mixes makes a checksum. */
static uint64_t mix(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return v;
}


#define STRESS_TOTAL_MSGS (2400000 / TEST_SCALE)

static _Atomic unsigned char *stress_seen;
static atomic_long stress_count, stress_sum;
static long stress_total;

struct stress_arg {
	herd_chan *ch;
	long first, n;
	bool deadlines; /* short deadlines, retried when they pass */
};

/* A short deadline: passed already, or a few microseconds away. */
static int64_t short_deadline(uint64_t *rng)
{
	static const int64_t waits[] = {0, HERD_USEC, 20 * HERD_USEC, 200 * HERD_USEC};
	return herd_deadline(waits[rng_next(rng) % 4]);
}

static void stress_producer(void *p)
{
	struct stress_arg *a = p;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)a->first;
	for (long i = 0; i < a->n; i++) {
		long v = a->first + i;
		int rc;
		while ((rc = herd_chan_send(a->ch, &v, a->deadlines ? short_deadline(&rng)
								    : HERD_FOREVER)) != 0)
			CHECK_EQ(rc, HERD_ETIMEDOUT); /* nothing sent: again */
	}
}

static void stress_consumer(void *p)
{
	struct stress_arg *a = p;
	uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)a->first;
	long v, n = 0, sum = 0;
	for (;;) {
		int rc = herd_chan_recv(a->ch, &v, a->deadlines ? short_deadline(&rng)
							       : HERD_FOREVER);
		if (rc == HERD_ECLOSED)
			break;
		if (rc == HERD_ETIMEDOUT && a->deadlines)
			continue;
		CHECK_EQ(rc, 0);
		CHECK(v >= 0 && v < stress_total);
		/* Exactly once: a second delivery finds its mark set. */
		CHECK_EQ(atomic_exchange(&stress_seen[v], 1), 0);
		n++;
		sum += v;
	}
	atomic_fetch_add(&stress_count, n);
	atomic_fetch_add(&stress_sum, sum);
}

static void stress_run(size_t cap, long total, bool deadlines)
{
	/* More tasks than workers, on every worker. */
	long workers = herd_workers();
	long nprod = workers + 2 > 6 ? workers + 2 : 6;
	long ncons = workers + 1 > 5 ? workers + 1 : 5;
	long per = total / nprod;
	stress_total = per * nprod;
	herd_chan *ch = make_chan(sizeof(long), cap);
	memset((void *)stress_seen, 0, (size_t)stress_total);
	atomic_store(&stress_count, 0);
	atomic_store(&stress_sum, 0);
	herd_scope *prod, *cons;
	CHECK_OK(herd_scope_open(&cons));
	CHECK_OK(herd_scope_open(&prod));
	for (long i = 0; i < ncons; i++) {
		struct stress_arg a = {ch, i, 0, deadlines};
		CHECK_OK(HERD_GO(cons, stress_consumer, a));
	}
	for (long i = 0; i < nprod; i++) {
		struct stress_arg a = {ch, i * per, per, deadlines};
		CHECK_OK(HERD_GO(prod, stress_producer, a));
	}
	CHECK_OK(herd_scope_close(prod));
	CHECK_OK(herd_chan_close(ch));
	CHECK_OK(herd_scope_close(cons));
	CHECK_EQ(atomic_load(&stress_count), stress_total);
	CHECK_EQ(atomic_load(&stress_sum), stress_total * (stress_total - 1) / 2);
	for (long i = 0; i < stress_total; i++)
		CHECK(stress_seen[i]);
	CHECK_OK(herd_chan_free(ch));
}

static void stress_main(void *arg)
{
	stress_run(0, STRESS_TOTAL_MSGS, false);
	stress_run(1, STRESS_TOTAL_MSGS, false);
	stress_run(64, STRESS_TOTAL_MSGS, false);
	(void)arg;
}

/* Producers and consumers, more than workers, on every worker: millions of
 * numbered messages, each delivered exactly once. */
LONG_TEST(stress_exactly_once)
{
	stress_seen = calloc(STRESS_TOTAL_MSGS, 1);
	CHECK(stress_seen);
	test_run(0, stress_main, NULL);
	free((void *)stress_seen);
}

static void stress_deadlines_main(void *arg)
{
	stress_run(0, STRESS_TOTAL_MSGS / 8, true);
	stress_run(4, STRESS_TOTAL_MSGS / 8, true);
	(void)arg;
}

/* The same with short deadlines on both sides, racing the hand-offs: a send
 * or receive that timed out moved nothing, one that succeeded moved exactly
 * one value. */
LONG_TEST(stress_deadlines_exactly_once)
{
	stress_seen = calloc(STRESS_TOTAL_MSGS / 8, 1);
	CHECK(stress_seen);
	test_run(0, stress_deadlines_main, NULL);
	free((void *)stress_seen);
}

/* ------------------------------------------------------------------ */

#define RACE_ROUNDS (TEST_UNDER_TSAN ? 20 : 300 / TEST_SCALE)

/* What the sends reported sent, and what was received: count and sum of
 * mixes of the values, which are all distinct. */
static atomic_long sent_n, got_n;
static atomic_ullong sent_sum, got_sum;
static atomic_int race_stop;

struct race_arg {
	herd_chan *ch;
	long id;
};

/* Sends until the channel is closed (or, after race_stop, until a send
 * times out); counts the sends that succeeded. */
static void race_sender(void *p)
{
	struct race_arg *a = p;
	for (long i = 0;; i++) {
		long v = a->id << 40 | i;
		int rc = herd_chan_send(a->ch, &v, herd_deadline(200 * HERD_USEC));
		if (rc == 0) {
			atomic_fetch_add(&sent_n, 1);
			atomic_fetch_add(&sent_sum, mix((uint64_t)v));
			continue;
		}
		if (rc == HERD_ECLOSED)
			return;
		CHECK_EQ(rc, HERD_ETIMEDOUT);
		if (atomic_load(&race_stop))
			return;
		i--; /* not sent: the same value again */
	}
}

static void race_got(long v)
{
	atomic_fetch_add(&got_n, 1);
	atomic_fetch_add(&got_sum, mix((uint64_t)v));
}

/* Receives until the channel is closed and drained, or the task's scope is
 * canceled; counts what it received. */
static void race_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v;
	int rc;
	HERD_RANGE_RC(v, ch, rc) {
		race_got(v);
	}
	CHECK(rc == HERD_ECLOSED || rc == HERD_ECANCELED);
}

/* Three senders and three receivers; after a random moment, the channel is
 * closed, or the receivers' scope canceled. */
static void race_main(void *arg)
{
	bool cancel = *(bool *)arg;
	uint64_t rng = cancel ? 54321 : 12345;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		herd_chan *ch = make_chan(sizeof(long), (size_t)(round % 3) * 2);
		atomic_store(&sent_n, 0);
		atomic_store(&got_n, 0);
		atomic_store(&sent_sum, 0);
		atomic_store(&got_sum, 0);
		atomic_store(&race_stop, 0);
		herd_scope *s, *r;
		CHECK_OK(herd_scope_open(&r));
		CHECK_OK(herd_scope_open(&s));
		for (long i = 0; i < 3; i++) {
			CHECK_OK(HERD_GO(r, race_receiver, ch));
			struct race_arg a = {ch, i};
			CHECK_OK(HERD_GO(s, race_sender, a));
		}
		CHECK_OK(herd_sleep(herd_deadline((int64_t)(rng_next(&rng) % 500) * HERD_USEC)));
		if (cancel) {
			CHECK_OK(herd_scope_cancel(r));
			CHECK_OK(herd_scope_close(r));
			atomic_store(&race_stop, 1);
			CHECK_OK(herd_scope_close(s));
			/* What the canceled receivers did not take is buffered. */
			long v;
			while (herd_chan_try_recv(ch, &v) == 0)
				race_got(v);
		} else {
			CHECK_OK(herd_chan_close(ch));
			CHECK_OK(herd_scope_close(s));
			CHECK_OK(herd_scope_close(r));
		}
		/* Every value a send reported sent was received, once. */
		CHECK_EQ(atomic_load(&sent_n), atomic_load(&got_n));
		CHECK(atomic_load(&sent_sum) == atomic_load(&got_sum));
		CHECK_OK(herd_chan_free(ch));
	}
}

/* A close racing blocked and arriving senders and receivers loses nothing:
 * what the sends report as sent is exactly what the receivers get. */
TEST(close_race_no_loss)
{
	bool cancel = false;
	test_run(0, race_main, &cancel);
}

/* Canceling receivers while senders hand them values loses nothing: a
 * receive either returns the value (and the send 0) or HERD_ECANCELED
 * (and the value goes elsewhere, or the send times out). */
TEST(cancel_race_no_loss)
{
	bool cancel = true;
	test_run(0, race_main, &cancel);
}
