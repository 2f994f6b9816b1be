/*
 * test-chan.c - channels, case by case against Go's semantics: unbuffered
 * rendezvous, buffering, FIFO order per sender, close (values still buffered
 * are delivered, then HERD_ECLOSED), send on closed and double close,
 * deadlines, HERD_NOWAIT, cancellation while blocked, free while busy,
 * element sizes, HERD_RANGE, calls from plain threads, a stress run that
 * checks every message arrives exactly once, and Go's concurrent prime sieve.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

static herd_chan *make_chan(size_t elem, size_t cap)
{
	herd_chan *ch;
	CHECK_OK(herd_chan_make(&ch, elem, cap));
	return ch;
}

/* ------------------------------------------------------------------ */

TEST(make_invalid)
{
	herd_chan *ch = NULL;
	CHECK_EQ(herd_chan_make(NULL, 8, 0), -EINVAL);
	CHECK_EQ(herd_chan_make(&ch, HERD_CHAN_ELEM_MAX + 1, 0), -EINVAL);
	CHECK_EQ(herd_chan_make(&ch, 8, HERD_CHAN_CAP_MAX + 1), -EINVAL);
	CHECK(ch == NULL);
	CHECK_OK(herd_chan_make(&ch, 0, 0));
	CHECK_EQ(herd_chan_cap(ch), 0);
	CHECK_EQ(herd_chan_elem_size(ch), 0);
	CHECK_OK(herd_chan_free(ch));
	ch = make_chan(24, 5);
	CHECK_EQ(herd_chan_cap(ch), 5);
	CHECK_EQ(herd_chan_elem_size(ch), 24);
	CHECK_EQ(herd_chan_len(ch), 0);
	CHECK_EQ(herd_chan_send(ch, NULL, HERD_NOWAIT), -EINVAL);
	CHECK_OK(herd_chan_free(ch));
	long v = 0;
	CHECK_EQ(herd_chan_send(NULL, &v, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_recv(NULL, &v, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_close(NULL), -EINVAL);
	CHECK_EQ(herd_chan_len(NULL), -EINVAL);
	CHECK_EQ(herd_chan_cap(NULL), -EINVAL);
	CHECK_EQ(herd_chan_free(NULL), 0);
}

/* ------------------------------------------------------------------ */

static atomic_int took;

static void rendezvous_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_MSEC)));
	atomic_store(&took, 1); /* before the receive: the sender is still blocked */
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 42);
}

static void rendezvous_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, rendezvous_receiver, ch));
	long v = 42;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), 0);
	/* The send returned: the receiver must have been there to take it. */
	CHECK_EQ(atomic_load(&took), 1);
	CHECK_OK(herd_scope_close(s));
	/* With nobody to receive, an unbuffered send cannot complete. */
	CHECK_EQ(herd_chan_send(ch, &v, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_len(ch), 0);
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* A send on an unbuffered channel returns only once a receiver has the value. */
TEST(unbuffered_rendezvous)
{
	test_run(0, rendezvous_main, NULL);
}

/* ------------------------------------------------------------------ */

static void buffered_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 3);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(herd_chan_send(ch, &i, HERD_NOWAIT), 0);
	CHECK_EQ(herd_chan_len(ch), 3);
	int x = 9;
	CHECK_EQ(herd_chan_try_send(ch, &x), HERD_ETIMEDOUT);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(herd_chan_try_recv(ch, &x), 0);
		CHECK_EQ(x, i);
	}
	CHECK_EQ(herd_chan_try_recv(ch, &x), HERD_ETIMEDOUT);
	/* The ring wraps around. */
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 2; i++)
			CHECK_EQ(herd_chan_send(ch, &i, HERD_FOREVER), 0);
		for (int i = 0; i < 2; i++) {
			CHECK_EQ(herd_chan_recv(ch, &x, HERD_FOREVER), 0);
			CHECK_EQ(x, i);
		}
	}
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* A buffered channel takes `capacity` values without a receiver, in order. */
TEST(buffered_order)
{
	test_run(0, buffered_main, NULL);
}

/* ------------------------------------------------------------------ */

#define FIFO_SENDERS 4
#define FIFO_MSGS (20000 / TEST_SCALE)

struct fifo_arg {
	herd_chan *ch;
	long sender;
};

static void fifo_sender(void *p)
{
	struct fifo_arg *a = p;
	for (long i = 0; i < FIFO_MSGS; i++) {
		long v = a->sender << 32 | i;
		CHECK_EQ(herd_chan_send(a->ch, &v, HERD_FOREVER), 0);
	}
}

static void fifo_run(size_t cap)
{
	herd_chan *ch = make_chan(sizeof(long), cap);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (long k = 0; k < FIFO_SENDERS; k++) {
		struct fifo_arg a = {ch, k};
		CHECK_OK(HERD_GO(s, fifo_sender, a));
	}
	long next[FIFO_SENDERS] = {0};
	for (long n = 0; n < FIFO_SENDERS * FIFO_MSGS; n++) {
		long v;
		CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
		long k = v >> 32, i = v & 0xffffffff;
		CHECK(k >= 0 && k < FIFO_SENDERS);
		CHECK_EQ(i, next[k]);
		next[k]++;
	}
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(ch));
}

static void fifo_main(void *arg)
{
	fifo_run(0);
	fifo_run(1);
	fifo_run(16);
	(void)arg;
}

/* Values from one sender arrive in the order it sent them. */
TEST(fifo_per_sender)
{
	test_run(0, fifo_main, NULL);
}

/* ------------------------------------------------------------------ */

static void close_buffered_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(long), 4);
	for (long i = 1; i <= 3; i++)
		CHECK_EQ(herd_chan_send(ch, &i, HERD_FOREVER), 0);
	CHECK_EQ(herd_chan_close(ch), 0);
	long v = 0;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), HERD_ECLOSED);
	CHECK_EQ(herd_chan_close(ch), HERD_ECLOSED);
	for (long i = 1; i <= 3; i++) {
		CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
		CHECK_EQ(v, i);
	}
	for (int k = 0; k < 2; k++) {
		v = -1;
		CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), HERD_ECLOSED);
		CHECK_EQ(v, 0); /* the zero value, as Go gives */
		CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ECLOSED);
	}
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* Closing keeps the buffered values; then receives return HERD_ECLOSED;
 * sending on a closed channel and closing twice are errors, not crashes. */
TEST(close_with_buffered_values)
{
	test_run(0, close_buffered_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int closed_seen;

static void blocked_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = -1;
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), HERD_ECLOSED);
	CHECK_EQ(v, 0);
	atomic_fetch_add(&closed_seen, 1);
}

static void blocked_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 7;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), HERD_ECLOSED);
	atomic_fetch_add(&closed_seen, 1);
}

static void close_wakes_main(void *arg)
{
	herd_chan *rch = make_chan(sizeof(long), 0);
	herd_chan *sch = make_chan(sizeof(long), 1);
	long one = 1;
	CHECK_OK(herd_chan_send(sch, &one, HERD_FOREVER)); /* now full */
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < 5; i++) {
		CHECK_OK(HERD_GO(s, blocked_receiver, rch));
		CHECK_OK(HERD_GO(s, blocked_sender, sch));
	}
	test_wait_parked(10);
	CHECK_EQ(atomic_load(&closed_seen), 0);
	CHECK_EQ(herd_chan_free(rch), -EBUSY); /* tasks are blocked on it */
	CHECK_EQ(herd_chan_close(rch), 0);
	CHECK_EQ(herd_chan_close(sch), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&closed_seen), 10);
	/* The value buffered before the close is still there. */
	long v = 0;
	CHECK_EQ(herd_chan_recv(sch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 1);
	CHECK_OK(herd_chan_free(rch));
	CHECK_OK(herd_chan_free(sch));
	(void)arg;
}

/* Closing wakes every blocked receiver and sender with HERD_ECLOSED. */
TEST(close_wakes_blocked)
{
	test_run(0, close_wakes_main, NULL);
}

/* ------------------------------------------------------------------ */

static void deadline_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(long), 0);
	herd_chan *full = make_chan(sizeof(long), 1);
	long v = 5;
	CHECK_OK(herd_chan_send(full, &v, HERD_FOREVER));

	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_chan_recv(ch, &v, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_chan_send(ch, &v, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_chan_send(full, &v, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	/* A deadline already past fails at once, without a partner. */
	CHECK_EQ(herd_chan_recv(ch, &v, 1), HERD_ETIMEDOUT);
	/* The timed-out sends left nothing behind. */
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_len(full), 1);
	CHECK_OK(herd_chan_free(ch));
	CHECK_OK(herd_chan_free(full));
	(void)arg;
}

/* Blocking calls give up at their deadline, never before, leaving nothing. */
TEST(deadlines)
{
	test_run(0, deadline_main, NULL);
}

/* ------------------------------------------------------------------ */

static void nowait_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v;
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 11);
}

static void nowait_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(long), 0);
	long v = 11;
	CHECK_EQ(herd_chan_try_send(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, nowait_receiver, ch));
	test_wait_parked(1);
	/* A receiver is waiting: a send that may not block still succeeds. */
	CHECK_EQ(herd_chan_try_send(ch, &v), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* HERD_NOWAIT and the try variants never block, and succeed when they can. */
TEST(nowait)
{
	test_run(0, nowait_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int canceled_count;

static void cancel_recv_task(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v;
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), HERD_ECANCELED);
	/* On entry, too, even with a value ready; HERD_NOWAIT is no
	 * cancellation point. */
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), HERD_ECANCELED);
	atomic_fetch_add(&canceled_count, 1);
}

static void cancel_send_task(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 3;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), HERD_ECANCELED);
	atomic_fetch_add(&canceled_count, 1);
}

static void cancel_main(void *arg)
{
	herd_chan *rch = make_chan(sizeof(long), 0);
	herd_chan *sch = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, cancel_recv_task, rch));
	CHECK_OK(HERD_GO(s, cancel_send_task, sch));
	CHECK_OK(HERD_GO(s, cancel_send_task, sch));
	test_wait_parked(3);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&canceled_count), 3);
	/* The cancelled tasks left the queues: the channels are free. */
	CHECK_OK(herd_chan_free(rch));
	CHECK_OK(herd_chan_free(sch));
	(void)arg;
}

static void cancel_main2(void *arg)
{
	herd_chan *ch = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, cancel_recv_task, ch));
	test_wait_parked(1);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&canceled_count), 1);
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* Cancelling the scope of a task blocked on a channel wakes it with
 * HERD_ECANCELED. */
TEST(cancel_while_blocked)
{
	test_run(0, cancel_main2, NULL);
	atomic_store(&canceled_count, 0);
	test_run(0, cancel_main, NULL);
}

/* ------------------------------------------------------------------ */

struct sized_arg {
	herd_chan *ch;
	size_t size;
};

static void fill(unsigned char *p, size_t size, unsigned seed)
{
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

static void sized_sender(void *p)
{
	struct sized_arg *a = p;
	unsigned char buf[1000];
	for (unsigned k = 0; k < 50; k++) {
		fill(buf, a->size, k);
		CHECK_EQ(herd_chan_send(a->ch, a->size ? buf : NULL, HERD_FOREVER), 0);
	}
}

static void sizes_main(void *arg)
{
	static const size_t sizes[] = {0, 1, 8, 24, 1000};
	for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
		for (size_t cap = 0; cap <= 4; cap += 4) {
			struct sized_arg a = {make_chan(sizes[z], cap), sizes[z]};
			herd_scope *s;
			CHECK_OK(herd_scope_open(&s));
			CHECK_OK(HERD_GO(s, sized_sender, a));
			unsigned char got[1000], want[1000];
			for (unsigned k = 0; k < 50; k++) {
				CHECK_EQ(herd_chan_recv(a.ch, got, HERD_FOREVER), 0);
				fill(want, a.size, k);
				CHECK(memcmp(got, want, a.size) == 0);
			}
			CHECK_OK(herd_scope_close(s));
			CHECK_OK(herd_chan_free(a.ch));
		}
	}
	(void)arg;
}

/* Values of 0, 1, 8, 24 and 1000 bytes arrive intact, buffered or not. */
TEST(element_sizes)
{
	test_run(0, sizes_main, NULL);
}

/* ------------------------------------------------------------------ */

static void range_producer(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	for (int i = 1; i <= 1000; i++)
		CHECK_EQ(herd_chan_send(ch, &i, HERD_FOREVER), 0);
	CHECK_EQ(herd_chan_close(ch), 0);
}

static void range_canceled(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	int v, rc = 0, n = 0;
	HERD_RANGE_RC(v, ch, rc) {
		n++;
	}
	CHECK_EQ(rc, HERD_ECANCELED);
	CHECK_EQ(n, 0);
	atomic_fetch_add(&canceled_count, 1);
}

static void range_main(void *arg)
{
	for (size_t cap = 0; cap <= 8; cap += 8) {
		herd_chan *ch = make_chan(sizeof(int), cap);
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(HERD_GO(s, range_producer, ch));
		int v, expect = 1;
		long sum = 0;
		HERD_RANGE(v, ch) {
			CHECK_EQ(v, expect);
			expect++;
			sum += v;
			if (v == 500)
				continue; /* continue goes on receiving */
		}
		CHECK_EQ(sum, 500500);
		int rc = 0;
		HERD_RANGE_RC(v, ch, rc) {
			CHECK(0); /* closed and drained: no iteration */
		}
		CHECK_EQ(rc, HERD_ECLOSED);
		CHECK_OK(herd_scope_close(s));
		CHECK_OK(herd_chan_free(ch));
	}
	/* A range in a cancelled scope ends with HERD_ECANCELED. */
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, range_canceled, ch));
	test_wait_parked(1);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&canceled_count), 1);
	CHECK_OK(herd_chan_free(ch));
	(void)arg;
}

/* HERD_RANGE reads until the channel is closed and drained; HERD_RANGE_RC
 * tells a close from a cancellation. */
TEST(range)
{
	test_run(0, range_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_chan *thread_ch;
static atomic_int thread_ready;

static void *plain_thread(void *arg)
{
	long v = 0;
	while (!atomic_load(&thread_ready))
		sched_yield();
	/* Blocking is for tasks only; a call that need not block works. */
	CHECK_EQ(herd_chan_recv(thread_ch, &v, HERD_FOREVER), -EPERM);
	for (long i = 1; i <= 100; i++) {
		int rc;
		while ((rc = herd_chan_try_send(thread_ch, &i)) == HERD_ETIMEDOUT)
			sched_yield();
		CHECK_EQ(rc, 0);
	}
	/* The channel is full until the task reads: a blocking send fails. */
	CHECK_EQ(herd_chan_close(thread_ch), 0);
	return arg;
}

static void thread_main(void *arg)
{
	thread_ch = make_chan(sizeof(long), 4);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, plain_thread, NULL) == 0);
	atomic_store(&thread_ready, 1);
	long v, sum = 0, expect = 1;
	HERD_RANGE(v, thread_ch) {
		CHECK_EQ(v, expect);
		expect++;
		sum += v;
	}
	CHECK_EQ(sum, 5050);
	CHECK(pthread_join(th, NULL) == 0);
	/* From a plain thread, a send on a full channel that would block. */
	CHECK_OK(herd_chan_free(thread_ch));
	(void)arg;
}

static void *full_send_thread(void *arg)
{
	long v = 1;
	CHECK_EQ(herd_chan_send(thread_ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(herd_chan_send(thread_ch, &v, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_chan_send(thread_ch, &v, HERD_NOWAIT), HERD_ETIMEDOUT);
	return arg;
}

static void thread_main2(void *arg)
{
	thread_ch = make_chan(sizeof(long), 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, full_send_thread, NULL) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(herd_chan_len(thread_ch), 1);
	CHECK_OK(herd_chan_free(thread_ch));
	(void)arg;
}

/* Plain threads may make the calls that do not block; blocking ones fail
 * with -EPERM. */
TEST(plain_thread)
{
	test_run(0, thread_main, NULL);
	test_run(0, thread_main2, NULL);
}

/* ------------------------------------------------------------------ */

#define STRESS_PRODUCERS 6
#define STRESS_CONSUMERS 5
#define STRESS_PER_PRODUCER (400000 / TEST_SCALE)
#define STRESS_TOTAL ((long)STRESS_PRODUCERS * STRESS_PER_PRODUCER)

static _Atomic unsigned char *stress_seen;
static atomic_long stress_count, stress_sum;

struct stress_arg {
	herd_chan *ch;
	long first;
};

static void stress_producer(void *p)
{
	struct stress_arg *a = p;
	for (long i = 0; i < STRESS_PER_PRODUCER; i++) {
		long v = a->first + i;
		CHECK_EQ(herd_chan_send(a->ch, &v, HERD_FOREVER), 0);
	}
}

static void stress_consumer(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v, n = 0, sum = 0;
	HERD_RANGE(v, ch) {
		CHECK(v >= 0 && v < STRESS_TOTAL);
		/* Exactly once: a second delivery finds its mark set. */
		CHECK_EQ(atomic_exchange(&stress_seen[v], 1), 0);
		n++;
		sum += v;
	}
	atomic_fetch_add(&stress_count, n);
	atomic_fetch_add(&stress_sum, sum);
}

static void stress_run(size_t cap)
{
	herd_chan *ch = make_chan(sizeof(long), cap);
	memset((void *)stress_seen, 0, STRESS_TOTAL);
	atomic_store(&stress_count, 0);
	atomic_store(&stress_sum, 0);
	herd_scope *prod, *cons;
	CHECK_OK(herd_scope_open(&cons));
	CHECK_OK(herd_scope_open(&prod));
	for (int i = 0; i < STRESS_CONSUMERS; i++)
		CHECK_OK(HERD_GO(cons, stress_consumer, ch));
	for (long i = 0; i < STRESS_PRODUCERS; i++) {
		struct stress_arg a = {ch, i * STRESS_PER_PRODUCER};
		CHECK_OK(HERD_GO(prod, stress_producer, a));
	}
	CHECK_OK(herd_scope_close(prod));
	CHECK_OK(herd_chan_close(ch));
	CHECK_OK(herd_scope_close(cons));
	CHECK_EQ(atomic_load(&stress_count), STRESS_TOTAL);
	CHECK_EQ(atomic_load(&stress_sum), STRESS_TOTAL * (STRESS_TOTAL - 1) / 2);
	for (long i = 0; i < STRESS_TOTAL; i++)
		CHECK(stress_seen[i]);
	CHECK_OK(herd_chan_free(ch));
}

static void stress_main(void *arg)
{
	stress_run(0);
	stress_run(1);
	stress_run(64);
	(void)arg;
}

/* Producers and consumers on every worker: millions of numbered messages,
 * each delivered exactly once. */
LONG_TEST(stress_exactly_once)
{
	stress_seen = calloc(STRESS_TOTAL, 1);
	CHECK(stress_seen);
	test_run(0, stress_main, NULL);
	free((void *)stress_seen);
}

/* ------------------------------------------------------------------ */

#define SIEVE_PRIMES 1000

struct filter_arg {
	herd_chan *in, *out;
	int prime;
};

static void generate(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	for (int i = 2;; i++)
		if (herd_chan_send(ch, &i, HERD_FOREVER) != 0)
			return; /* cancelled: the sieve has its primes */
}

static void filter(void *p)
{
	struct filter_arg *a = p;
	int v;
	while (herd_chan_recv(a->in, &v, HERD_FOREVER) == 0)
		if (v % a->prime != 0 && herd_chan_send(a->out, &v, HERD_FOREVER) != 0)
			return;
}

static herd_chan *sieve_chans[SIEVE_PRIMES + 1];

static void sieve_main(void *arg)
{
	int *primes = arg;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	herd_chan *ch = make_chan(sizeof(int), 0);
	sieve_chans[0] = ch;
	CHECK_OK(HERD_GO(s, generate, ch));
	for (int i = 0; i < SIEVE_PRIMES; i++) {
		int prime;
		CHECK_EQ(herd_chan_recv(ch, &prime, HERD_FOREVER), 0);
		primes[i] = prime;
		herd_chan *next = make_chan(sizeof(int), 0);
		sieve_chans[i + 1] = next;
		struct filter_arg a = {ch, next, prime};
		CHECK_OK(HERD_GO(s, filter, a));
		ch = next;
	}
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i <= SIEVE_PRIMES; i++)
		CHECK_OK(herd_chan_free(sieve_chans[i]));
}

/* Go's concurrent prime sieve, a chain of filtering tasks, gives the first
 * 1,000 primes. */
TEST(prime_sieve)
{
	static int primes[SIEVE_PRIMES];
	test_run(0, sieve_main, primes);
	/* The first 1,000 primes by trial division. */
	int n = 0;
	for (int c = 2; n < SIEVE_PRIMES; c++) {
		bool prime = true;
		for (int d = 2; d * d <= c; d++)
			if (c % d == 0) {
				prime = false;
				break;
			}
		if (prime) {
			CHECK_EQ(primes[n], c);
			n++;
		}
	}
	CHECK_EQ(primes[SIEVE_PRIMES - 1], 7919);
}
