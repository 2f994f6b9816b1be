/*
 * test-chan-race.c - channels under load and in races: producers and
 * consumers, more than workers, pass millions of numbered messages and each
 * arrives exactly once (plain, with short deadlines on both sides); a close
 * or a cancellation racing blocked senders and receivers loses nothing;
 * the buffered ring's lock-free path racing waiters, select (over one live
 * channel or two) and close keeps every value once and in each sender's
 * order; a channel may be freed as soon as its last value is received; a
 * channel used as a lock orders what it guards; and no send waits beside
 * the room that a racing receive makes.
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>
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


/* A plain thread's pause after a try that found the channel full (empty):
 * yields for the first 50 us of a wait, then short sleeps. On a loaded
 * machine a yield puts the thread behind every other runnable thread for
 * a whole time slice, while a thread back from a sleep runs soon; on an
 * idle one a sleep costs more than the wait. *since is 0 before a wait's
 * first miss; the caller resets it when the try succeeds. */
static void thread_pause(int64_t *since)
{
	int64_t now = herd_now();
	if (!*since)
		*since = now;
	if (now - *since < 50 * HERD_USEC)
		sched_yield();
	else
		nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
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

/* ------------------------------------------------------------------ */
/* The buffered channel's lock-free ring (src/sync/chan-ring.h) racing  */
/* its locked side: waiters, select, close.                             */
/* ------------------------------------------------------------------ */

#define RING_MSGS (80000 / TEST_SCALE)
#define RING_PROD 4 /* tasks; and one plain thread */
#define RING_CONS 4 /* tasks; and, in some runs, one plain thread */
#define RING_ELEM_MAX 128

/* A message: who sent it, its number in that sender's order, and a check
 * of both, so that a torn or mixed-up copy shows. Channels of 8 bytes
 * carry id << 32 | seq, of 4 bytes id << 24 | seq (a value that shares
 * its slot's word with the stamp); larger ones this struct, then bytes
 * made from its check; channels of empty values, nothing. */
struct ring_msg {
	long id, seq;
	uint64_t check;
};

struct ring_state {
	herd_chan *ch;
	herd_chan *idle;     /* a select's other case: never ready */
	size_t elem;         /* 0, 4, 8, or sizeof(struct ring_msg) and more */
	long per;            /* messages per sender task */
	long per_thread;     /* messages the plain thread sends */
	_Atomic unsigned char *seen;
	atomic_long sent_n, got_n;
	atomic_ullong sent_sum, got_sum;
	atomic_int closing;  /* herd_chan_close is about to be called */
	atomic_int closed;   /* herd_chan_close has returned */
	atomic_int thread_done;
};

static struct ring_state ring;

/* The bytes after a large message's struct: made from its check. */
static unsigned char ring_tail(uint64_t check, size_t i)
{
	return (unsigned char)((check >> (i % 8 * 8)) ^ i);
}

static void ring_make(void *buf, long id, long seq)
{
	if (ring.elem == sizeof(long)) {
		long v = id << 32 | seq;
		memcpy(buf, &v, sizeof v);
	} else if (ring.elem == sizeof(uint32_t)) {
		uint32_t v = (uint32_t)(id << 24 | seq);
		memcpy(buf, &v, sizeof v);
	} else if (ring.elem) {
		struct ring_msg m = {id, seq, mix((uint64_t)(id << 32 | seq))};
		memcpy(buf, &m, sizeof m);
		for (size_t i = sizeof m; i < ring.elem; i++)
			((unsigned char *)buf)[i] = ring_tail(m.check, i);
	}
}

/* The message's key (id << 32 | seq), checked; -1 for empty values. */
static long ring_key(const void *buf)
{
	if (ring.elem == sizeof(long)) {
		long v;
		memcpy(&v, buf, sizeof v);
		return v;
	}
	if (ring.elem == sizeof(uint32_t)) {
		uint32_t v;
		memcpy(&v, buf, sizeof v);
		return (long)(v >> 24) << 32 | (v & 0xffffff);
	}
	if (!ring.elem)
		return -1;
	struct ring_msg m;
	memcpy(&m, buf, sizeof m);
	CHECK(m.check == mix((uint64_t)(m.id << 32 | m.seq)));
	for (size_t i = sizeof m; i < ring.elem; i++)
		CHECK(((const unsigned char *)buf)[i] == ring_tail(m.check, i));
	return m.id << 32 | m.seq;
}

/* A value moved: count it, and for a receiver, check that it is known,
 * new, and later than the last one it got from that sender, and that the
 * length read without the lock is one a ring can have. */
static void ring_sent(long id, long seq)
{
	atomic_fetch_add(&ring.sent_n, 1);
	if (ring.elem)
		atomic_fetch_add(&ring.sent_sum, mix((uint64_t)(id << 32 | seq)));
}

static void ring_got(const void *buf, long *last)
{
	long key = ring_key(buf);
	atomic_fetch_add(&ring.got_n, 1);
	int len = herd_chan_len(ring.ch);
	CHECK(len >= 0 && len <= herd_chan_cap(ring.ch));
	if (key < 0)
		return;
	long id = key >> 32, seq = key & 0xffffffff;
	CHECK(id >= 0 && id <= RING_PROD && seq < ring.per);
	CHECK(seq > last[id]); /* FIFO per sender */
	last[id] = seq;
	CHECK_EQ(atomic_exchange(&ring.seen[id * ring.per + seq], 1), 0);
	atomic_fetch_add(&ring.got_sum, mix((uint64_t)key));
}

/* One send by a task in one of four ways: a plain send, one with a short
 * deadline, a try_send, or a select that also waits on another channel. */
static int ring_send_once(int how, void *buf, uint64_t *rng)
{
	switch (how) {
	case 0:
		return herd_chan_send(ring.ch, buf, HERD_FOREVER);
	case 1:
		return herd_chan_send(ring.ch, buf, short_deadline(rng));
	case 2:
		return herd_chan_try_send(ring.ch, buf);
	default: {
		char sink[RING_ELEM_MAX];
		herd_case cs[] = {{.chan = ring.idle, .elem = sink, .op = HERD_RECV},
				  {.chan = ring.ch, .elem = buf, .op = HERD_SEND}};
		int64_t d = rng_next(rng) % 2 ? HERD_FOREVER : short_deadline(rng);
		int rc = herd_select(cs, 2, d);
		if (rc < 0)
			return rc;
		CHECK_EQ(rc, 1);
		return cs[1].result;
	}
	}
}

static int ring_recv_once(int how, void *buf, uint64_t *rng)
{
	switch (how) {
	case 0:
		return herd_chan_recv(ring.ch, buf, HERD_FOREVER);
	case 1:
		return herd_chan_recv(ring.ch, buf, short_deadline(rng));
	case 2:
		return herd_chan_try_recv(ring.ch, buf);
	default: {
		herd_case cs[] = {{.chan = ring.idle, .elem = buf, .op = HERD_RECV},
				  {.chan = ring.ch, .elem = buf, .op = HERD_RECV}};
		int64_t d = rng_next(rng) % 2 ? HERD_FOREVER : short_deadline(rng);
		int rc = herd_select(cs, 2, d);
		if (rc < 0)
			return rc;
		CHECK_EQ(rc, 1);
		return cs[1].result;
	}
	}
}

/* After a try that found the channel full (empty): yield, and now and
 * then sleep, since a yield does not let tasks readied by the plain
 * thread (in the global queue) run on a lone worker. */
static void ring_pause(unsigned *misses)
{
	if (++*misses % 8)
		CHECK_OK(herd_yield());
	else
		CHECK_OK(herd_sleep(herd_deadline(HERD_USEC)));
}

/* Sends seq 0, 1, ... until `per` are sent or the channel is closed. A
 * send that began after the close returned must fail. */
static void ring_producer(void *p)
{
	long id = *(long *)p;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)id;
	char buf[RING_ELEM_MAX];
	unsigned misses = 0;
	for (long seq = 0; seq < ring.per;) {
		ring_make(buf, id, seq);
		int closed = atomic_load(&ring.closed);
		int rc = ring_send_once((int)(id % 4), buf, &rng);
		if (rc == HERD_ECLOSED)
			return;
		CHECK(!closed); /* nothing enters after the close */
		if (rc == HERD_ETIMEDOUT) {
			if (id % 4 == 2)
				ring_pause(&misses);
			continue;
		}
		CHECK_EQ(rc, 0);
		misses = 0;
		ring_sent(id, seq++);
	}
}

/* Receives until the channel is closed and drained; then it stays so. */
static void ring_consumer(void *p)
{
	long id = *(long *)p;
	uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)id;
	long last[RING_PROD + 1];
	char buf[RING_ELEM_MAX];
	unsigned misses = 0;
	for (int i = 0; i <= RING_PROD; i++)
		last[i] = -1;
	for (;;) {
		int rc = ring_recv_once((int)(id % 4), buf, &rng);
		if (rc == HERD_ECLOSED)
			break;
		if (rc == HERD_ETIMEDOUT) {
			if (id % 4 == 2)
				ring_pause(&misses);
			continue;
		}
		CHECK_EQ(rc, 0);
		misses = 0;
		ring_got(buf, last);
	}
	CHECK(atomic_load(&ring.closing));
	CHECK_EQ(herd_chan_try_recv(ring.ch, buf), HERD_ECLOSED);
}

/* A plain thread sends too, with try_send: the ring from outside. */
static void *ring_thread(void *p)
{
	char buf[RING_ELEM_MAX];
	int64_t since = 0;
	for (long seq = 0; seq < ring.per_thread;) {
		ring_make(buf, RING_PROD, seq);
		int closed = atomic_load(&ring.closed);
		int rc = herd_chan_try_send(ring.ch, buf);
		if (rc == HERD_ECLOSED)
			break;
		CHECK(!closed);
		if (rc == HERD_ETIMEDOUT) {
			thread_pause(&since);
			continue;
		}
		CHECK_EQ(rc, 0);
		since = 0;
		ring_sent(RING_PROD, seq++);
	}
	atomic_store(&ring.thread_done, 1);
	(void)p;
	return NULL;
}

/* A plain thread receives too, with try_recv: a claim on the receiving
 * end that a preempted thread may leave half done under the others. */
static void *ring_thread_recv(void *p)
{
	long last[RING_PROD + 1];
	char buf[RING_ELEM_MAX];
	int64_t since = 0;
	for (int i = 0; i <= RING_PROD; i++)
		last[i] = -1;
	for (;;) {
		int rc = herd_chan_try_recv(ring.ch, buf);
		if (rc == HERD_ECLOSED)
			break;
		if (rc == HERD_ETIMEDOUT) {
			thread_pause(&since);
			continue;
		}
		CHECK_EQ(rc, 0);
		since = 0;
		ring_got(buf, last);
	}
	CHECK(atomic_load(&ring.closing));
	(void)p;
	return NULL;
}

struct ring_cfg {
	size_t cap, elem;
	bool close_early; /* close at a random moment, senders still sending */
	bool thread_recv; /* a plain thread receives too */
};

static void ring_run(const struct ring_cfg *c, uint64_t *rng)
{
	ring.ch = make_chan(c->elem, c->cap);
	ring.idle = make_chan(c->elem, 1);
	ring.elem = c->elem;
	ring.per = RING_MSGS / (RING_PROD + 1);
	/* The plain thread sends fewer: each of its sends to a parked
	 * receiver waits for a worker to wake, which on a loaded machine is
	 * a scheduler's time slice, and 16,000 of them took minutes. */
	ring.per_thread = ring.per / 16;
	memset((void *)ring.seen, 0, (size_t)((RING_PROD + 1) * ring.per));
	atomic_store(&ring.sent_n, 0);
	atomic_store(&ring.got_n, 0);
	atomic_store(&ring.sent_sum, 0);
	atomic_store(&ring.got_sum, 0);
	atomic_store(&ring.closing, 0);
	atomic_store(&ring.closed, 0);
	atomic_store(&ring.thread_done, 0);
	herd_scope *prod, *cons;
	CHECK_OK(herd_scope_open(&cons));
	CHECK_OK(herd_scope_open(&prod));
	for (long i = 0; i < RING_CONS; i++)
		CHECK_OK(HERD_GO(cons, ring_consumer, i));
	for (long i = 0; i < RING_PROD; i++)
		CHECK_OK(HERD_GO(prod, ring_producer, i));
	pthread_t th, rth;
	CHECK(pthread_create(&th, NULL, ring_thread, NULL) == 0);
	if (c->thread_recv)
		CHECK(pthread_create(&rth, NULL, ring_thread_recv, NULL) == 0);
	if (c->close_early)
		CHECK_OK(herd_sleep(herd_deadline((int64_t)(rng_next(rng) % 3000) * HERD_USEC)));
	else
		CHECK_OK(herd_scope_wait(prod, HERD_FOREVER));
	/* The thread tries until it is done or sees the close: wait for it
	 * without holding this worker. */
	while (!c->close_early && !atomic_load(&ring.thread_done))
		CHECK_OK(herd_sleep(herd_deadline(100 * HERD_USEC)));
	atomic_store(&ring.closing, 1);
	CHECK_OK(herd_chan_close(ring.ch));
	atomic_store(&ring.closed, 1);
	CHECK_OK(herd_scope_close(prod));
	CHECK_OK(herd_scope_close(cons));
	CHECK(pthread_join(th, NULL) == 0);
	if (c->thread_recv)
		CHECK(pthread_join(rth, NULL) == 0);
	/* Every value a send reported sent was received, once. */
	CHECK_EQ(atomic_load(&ring.got_n), atomic_load(&ring.sent_n));
	CHECK(atomic_load(&ring.got_sum) == atomic_load(&ring.sent_sum));
	if (!c->close_early)
		CHECK_EQ(atomic_load(&ring.sent_n), RING_PROD * ring.per + ring.per_thread);
	CHECK_OK(herd_chan_free(ring.ch));
	CHECK_OK(herd_chan_free(ring.idle));
}

static void ring_main(void *arg)
{
	bool close_early = *(bool *)arg;
	uint64_t rng = close_early ? 777 : 888;
	static const size_t caps[] = {1, 2, 3, 128};
	static const size_t elems[] = {sizeof(long), sizeof(struct ring_msg), 0,
				       sizeof(uint32_t), 100};
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
		for (size_t j = 0; j < sizeof elems / sizeof *elems; j++) {
			struct ring_cfg c = {caps[i], elems[j], close_early, (i + j) % 2};
			ring_run(&c, &rng);
		}
}

static void ring_test(unsigned workers, bool close_early)
{
	ring.seen = calloc(RING_MSGS, 1);
	CHECK(ring.seen);
	test_run_threads(workers, ring_main, &close_early);
	free((void *)ring.seen);
}

/*
 * Four senders (a plain send, short deadlines, try_send, a select) and a
 * plain thread with try_send, against four receivers (the same four ways)
 * and, in half the runs, a plain thread with try_recv, on buffered
 * channels of capacity 1, 2, 3 and 128 and values of 8, 24, 0, 4 and 100
 * bytes: every value arrives exactly once, intact, in its sender's order,
 * the length stays within the capacity, and a lost wake-up hangs the case.
 * On every worker, then on one.
 */
LONG_TEST(ring_exactly_once_fifo)
{
	ring_test(0, false);
	ring_test(1, false);
}

/* The same, closed at a random moment of the traffic: what the sends
 * reported sent is what the receivers got, no send that began after the
 * close succeeded, and a receiver that saw the close sees it again. */
LONG_TEST(ring_close_during_traffic)
{
	for (int k = 0; k < 4; k++)
		ring_test(k % 2 ? 1 : 0, true);
}

/* ------------------------------------------------------------------ */
/* Selects over two live buffered channels: a task's waiter on the     */
/* channel that did not win stays queued until the task runs, beside a */
/* ring that other senders fill, and keeps that ring's fast path shut. */
/* ------------------------------------------------------------------ */

#define DUO_MSGS (60000 / TEST_SCALE)
#define DUO_PROD 4
#define DUO_CONS 4

static struct {
	herd_chan *ch[2];
	long per;
	_Atomic unsigned char *seen;
	atomic_long sent_n, got_n;
	atomic_ullong sent_sum, got_sum;
} duo;

/* Sends `per` values id << 32 | seq: producer 0 on channel 0, 1 on
 * channel 1 with short deadlines, 2 and 3 by selects over both (2 with
 * short deadlines). */
static void duo_producer(void *p)
{
	long id = *(long *)p;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(id + 1);
	for (long seq = 0; seq < duo.per;) {
		long v = id << 32 | seq;
		int64_t d = id % 2 ? short_deadline(&rng) : HERD_FOREVER;
		int rc;
		if (id < 2) {
			rc = herd_chan_send(duo.ch[id], &v, d);
		} else {
			herd_case cs[] = {HERD_CASE_SEND(duo.ch[0], &v),
					  HERD_CASE_SEND(duo.ch[1], &v)};
			rc = herd_select(cs, 2, d);
			if (rc >= 0) {
				CHECK(rc == 0 || rc == 1);
				rc = cs[rc].result;
			}
		}
		if (rc == HERD_ETIMEDOUT)
			continue;
		CHECK_EQ(rc, 0);
		atomic_fetch_add(&duo.sent_n, 1);
		atomic_fetch_add(&duo.sent_sum, mix((uint64_t)v));
		seq++;
	}
}

/* A value received from channel c: known, new, and later than the last
 * one this receiver got from its sender on that channel. */
static void duo_got(long v, int c, long last[][2])
{
	long id = v >> 32, seq = v & 0xffffffff;
	CHECK(id >= 0 && id < DUO_PROD && seq < duo.per);
	CHECK(seq > last[id][c]);
	last[id][c] = seq;
	CHECK_EQ(atomic_exchange(&duo.seen[id * duo.per + seq], 1), 0);
	atomic_fetch_add(&duo.got_n, 1);
	atomic_fetch_add(&duo.got_sum, mix((uint64_t)v));
}

/* Receives until both channels are closed and drained: consumers 0 and 1
 * by selects over both (1 with short deadlines), 2 from channel 0 with
 * short deadlines, 3 from channel 1 with try_recv. */
static void duo_consumer(void *p)
{
	long id = *(long *)p;
	uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)(id + 1);
	long last[DUO_PROD][2];
	for (int i = 0; i < DUO_PROD; i++)
		last[i][0] = last[i][1] = -1;
	herd_chan *live[2] = {duo.ch[0], duo.ch[1]};
	unsigned misses = 0;
	while (id < 2 ? live[0] || live[1] : live[id - 2] != NULL) {
		long v[2] = {-1, -1};
		int64_t d = id == 0 ? HERD_FOREVER : short_deadline(&rng);
		int rc, c;
		if (id < 2) {
			herd_case cs[] = {HERD_CASE_RECV(live[0], &v[0]),
					  HERD_CASE_RECV(live[1], &v[1])};
			c = herd_select(cs, 2, d);
			rc = c >= 0 ? cs[c].result : c;
		} else {
			c = (int)id - 2;
			rc = c ? herd_chan_try_recv(live[c], &v[c])
			       : herd_chan_recv(live[c], &v[c], d);
		}
		if (rc == HERD_ETIMEDOUT) {
			if (id == 3)
				ring_pause(&misses);
			continue;
		}
		CHECK(c == 0 || c == 1);
		if (rc == HERD_ECLOSED) {
			live[c] = NULL;
			continue;
		}
		CHECK_EQ(rc, 0);
		misses = 0;
		duo_got(v[c], c, last);
	}
}

static void duo_main(void *arg)
{
	static const size_t caps[] = {1, 2, 5};
	for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
		duo.ch[0] = make_chan(sizeof(long), caps[k]);
		duo.ch[1] = make_chan(sizeof(long), caps[k] == 5 ? 1 : caps[k]);
		duo.per = DUO_MSGS / DUO_PROD;
		memset((void *)duo.seen, 0, (size_t)DUO_MSGS);
		atomic_store(&duo.sent_n, 0);
		atomic_store(&duo.got_n, 0);
		atomic_store(&duo.sent_sum, 0);
		atomic_store(&duo.got_sum, 0);
		herd_scope *prod, *cons;
		CHECK_OK(herd_scope_open(&cons));
		CHECK_OK(herd_scope_open(&prod));
		for (long i = 0; i < DUO_CONS; i++)
			CHECK_OK(HERD_GO(cons, duo_consumer, i));
		for (long i = 0; i < DUO_PROD; i++)
			CHECK_OK(HERD_GO(prod, duo_producer, i));
		CHECK_OK(herd_scope_close(prod));
		CHECK_OK(herd_chan_close(duo.ch[0]));
		CHECK_OK(herd_chan_close(duo.ch[1]));
		CHECK_OK(herd_scope_close(cons));
		CHECK_EQ(atomic_load(&duo.sent_n), DUO_PROD * duo.per);
		CHECK_EQ(atomic_load(&duo.got_n), DUO_PROD * duo.per);
		CHECK(atomic_load(&duo.got_sum) == atomic_load(&duo.sent_sum));
		CHECK_OK(herd_chan_free(duo.ch[0]));
		CHECK_OK(herd_chan_free(duo.ch[1]));
	}
	(void)arg;
}

/*
 * Selects that send and receive over two buffered channels of capacity 1,
 * 2 or 5, racing plain sends and receives, short deadlines and try_recv on
 * each: every value arrives once, in its sender's order on its channel,
 * and a lost wake-up hangs the case. On every worker, then on one.
 */
LONG_TEST(ring_select_two_channels)
{
	duo.seen = calloc(DUO_MSGS, 1);
	CHECK(duo.seen);
	test_run(0, duo_main, NULL);
	test_run(1, duo_main, NULL);
	free((void *)duo.seen);
}

/* ------------------------------------------------------------------ */

#define LAST_ROUNDS (TEST_UNDER_TSAN ? 40 : 2000 / TEST_SCALE)
#define LAST_PER 8 /* values per sender and round */

struct last_arg {
	herd_chan *ch;
	int how;
};

/* Sends LAST_PER values and returns: the task does not touch the channel
 * once its last send has returned. */
static void last_sender(void *p)
{
	struct last_arg *a = p;
	char buf[32] = {0};
	for (int i = 0; i < LAST_PER; i++) {
		int rc;
		if (a->how == 0) {
			rc = herd_chan_send(a->ch, buf, HERD_FOREVER);
		} else if (a->how == 1) {
			while ((rc = herd_chan_try_send(a->ch, buf)) == HERD_ETIMEDOUT)
				CHECK_OK(herd_yield());
		} else {
			herd_case cs[] = {{.chan = a->ch, .elem = buf, .op = HERD_SEND}};
			rc = herd_select(cs, 1, HERD_FOREVER);
			CHECK(rc == 0 && cs[0].result == 0);
		}
		CHECK_EQ(rc, 0);
	}
}

static void *last_thread(void *p)
{
	struct last_arg *a = p;
	char buf[32] = {0};
	for (int i = 0; i < LAST_PER; i++) {
		int64_t since = 0;
		while (herd_chan_try_send(a->ch, buf) == HERD_ETIMEDOUT)
			thread_pause(&since);
	}
	return NULL;
}

static void last_main(void *arg)
{
	static const size_t elems[] = {sizeof(long), 24, 0};
	static const size_t caps[] = {1, 2, 5};
	char buf[32];
	for (int round = 0; round < LAST_ROUNDS; round++) {
		size_t elem = elems[round % 3], cap = caps[round / 3 % 3];
		herd_chan *ch = make_chan(elem, cap);
		struct last_arg a[3] = {{ch, 0}, {ch, 1}, {ch, 2}};
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		for (int i = 0; i < 3; i++)
			CHECK_OK(herd_go(s, last_sender, &a[i], sizeof a[i]));
		pthread_t th;
		bool thread = round % 2;
		if (thread)
			CHECK(pthread_create(&th, NULL, last_thread, &a[0]) == 0);
		int n = (3 + thread) * LAST_PER;
		for (int i = 0; i < n; i++)
			CHECK_OK(herd_chan_recv(ch, buf, HERD_FOREVER));
		/* The last value is in: no sender may touch ch again. */
		CHECK_OK(herd_chan_free(ch));
		CHECK_OK(herd_scope_close(s));
		if (thread)
			CHECK(pthread_join(th, NULL) == 0);
	}
	(void)arg;
}

/* A channel freed as soon as its last value is received: its senders (the
 * fast path, a parked send whose value a receiver moved into the ring, a
 * select, a plain thread) are done with it by then (the sanitizers see
 * any later touch). */
LONG_TEST(ring_free_after_last_recv)
{
	test_run_threads(0, last_main, NULL);
	test_run_threads(1, last_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SEM_TASKS 6
#define SEM_ITERS (TEST_UNDER_TSAN ? 300 : 20000 / TEST_SCALE)

static struct {
	herd_chan *ch;
	long inside;         /* plain: the channel guards it */
	long count;          /* plain: the channel guards it */
	char note[64];       /* plain: written whole inside */
} sem;

/* Enters by sending (taking a slot), leaves by receiving (freeing it):
 * Go's counting semaphore. With capacity 1 nobody else is inside, which
 * the plain fields check (and TSan, if a receive did not happen before
 * the send that its freed slot let in). */
static void sem_task(void *p)
{
	long id = *(long *)p;
	long tok = id;
	for (int i = 0; i < SEM_ITERS; i++) {
		if (id % 2) {
			CHECK_OK(herd_chan_send(sem.ch, &tok, HERD_FOREVER));
		} else {
			int rc;
			while ((rc = herd_chan_try_send(sem.ch, &tok)) == HERD_ETIMEDOUT)
				CHECK_OK(herd_yield());
			CHECK_OK(rc);
		}
		CHECK_EQ(sem.inside, 0);
		sem.inside = 1;
		sem.count++;
		memset(sem.note, (int)id, sizeof sem.note);
		for (size_t k = 0; k < sizeof sem.note; k++)
			CHECK_EQ(sem.note[k], (char)id);
		sem.inside = 0;
		if (i % 3 == 0) {
			int rc;
			while ((rc = herd_chan_try_recv(sem.ch, &tok)) == HERD_ETIMEDOUT)
				CHECK_OK(herd_yield()); /* cannot be empty: ours is in */
			CHECK_OK(rc);
		} else {
			CHECK_OK(herd_chan_recv(sem.ch, &tok, HERD_FOREVER));
		}
	}
}

static void sem_main(void *arg)
{
	static const size_t elems[] = {0, sizeof(long)};
	for (size_t e = 0; e < 2; e++) {
		sem.ch = make_chan(elems[e], 1);
		sem.count = 0;
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		for (long i = 0; i < SEM_TASKS; i++)
			CHECK_OK(HERD_GO(s, sem_task, i));
		CHECK_OK(herd_scope_close(s));
		CHECK_EQ(sem.count, (long)SEM_TASKS * SEM_ITERS);
		CHECK_EQ(herd_chan_len(sem.ch), 0);
		CHECK_OK(herd_chan_free(sem.ch));
	}
	(void)arg;
}

/*
 * A buffered channel of capacity 1 as a lock (Go's semaphore idiom), of
 * empty values (the ring's two counters) and of 8-byte ones (its slots):
 * a receive happens before the send that the slot it freed lets in, on
 * the lock-free path and through the lock, so plain memory guarded by the
 * channel sees no race (TSan) and no second task inside.
 */
LONG_TEST(ring_semaphore_orders)
{
	test_run(0, sem_main, NULL);
}

/* ------------------------------------------------------------------ */

#define ROOM_ROUNDS (TEST_UNDER_TSAN ? 2000 : 100000 / TEST_SCALE)
/* A loaded machine makes each round wait for a worker to be scheduled:
 * past this long and ROOM_ROUNDS_MIN rounds, a cap's run ends early. */
#define ROOM_TIME (10 * HERD_SEC)
#define ROOM_ROUNDS_MIN 1000

static struct {
	herd_chan *data;
	size_t cap;
	atomic_long acked; /* rounds whose last send has returned */
	long rounds;       /* the consumer's, when the producer has closed */
} room;

/* Each round fills the ring and sends one more, which has room only once
 * the consumer has taken the first value; then tells the consumer. At
 * the end it closes the channel. */
static void room_producer(void *p)
{
	long v = 0, k;
	int64_t until = herd_deadline(ROOM_TIME);
	for (k = 0; k < ROOM_ROUNDS && (k < ROOM_ROUNDS_MIN || herd_now() < until); k++) {
		for (size_t j = 0; j <= room.cap; j++, v++)
			CHECK_OK(herd_chan_send(room.data, &v, HERD_FOREVER));
		atomic_store(&room.acked, k + 1);
	}
	CHECK_OK(herd_chan_close(room.data));
	*(long *)p = k;
}

/* try_recv until a value comes, for a plain thread; -1 once the channel
 * is closed and drained. */
static long room_take(void)
{
	long v;
	int rc;
	int64_t since = 0;
	while ((rc = herd_chan_try_recv(room.data, &v)) == HERD_ETIMEDOUT)
		thread_pause(&since);
	if (rc == HERD_ECLOSED)
		return -1;
	CHECK_OK(rc);
	return v;
}

/* A plain thread, on a core of its own as far as it can be: takes one
 * value, then waits for the producer's word, which comes only after a send
 * that needed the room this receive made: a send that waited beside that
 * room, with nobody left to wake it, stops the case (after 20 s). */
static void *room_consumer(void *p)
{
	long want = 0, round;
	for (round = 0;; round++) {
		long first = room_take();
		if (first < 0)
			break;
		CHECK_EQ(first, want++);
		int64_t give_up = herd_deadline(20 * HERD_SEC);
		int64_t since = 0;
		while (atomic_load(&room.acked) <= round) {
			thread_pause(&since);
			if (herd_now() > give_up) {
				fprintf(stderr, "room: a send waits beside room (round %ld)\n",
					round);
				exit(1);
			}
		}
		for (size_t j = 0; j < room.cap; j++)
			CHECK_EQ(room_take(), want++);
	}
	room.rounds = round;
	(void)p;
	return NULL;
}

static void room_main(void *arg)
{
	for (size_t cap = 1; cap <= 2; cap++) {
		room.data = make_chan(sizeof(long), cap);
		room.cap = cap;
		atomic_store(&room.acked, 0);
		pthread_t th;
		CHECK(pthread_create(&th, NULL, room_consumer, NULL) == 0);
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		long rounds = 0;
		CHECK_OK(herd_go(s, room_producer, &rounds, 0));
		CHECK_OK(herd_scope_close(s));
		CHECK(pthread_join(th, NULL) == 0);
		CHECK(rounds >= ROOM_ROUNDS_MIN || rounds == ROOM_ROUNDS);
		CHECK_EQ(room.rounds, rounds);
		CHECK_EQ(herd_chan_len(room.data), 0);
		CHECK_OK(herd_chan_free(room.data));
	}
	(void)arg;
}

/*
 * A send that finds the ring full while a receive is taking a value from
 * it must not wait beside the room that receive makes: here nobody else
 * would come to wake it.
 */
LONG_TEST(ring_no_wait_beside_room)
{
	test_run_threads(0, room_main, NULL);
}
