/*
 * test-select.c - herd_select against Go's select: receive, send and mixed
 * cases, NULL (nil) cases, the default case (HERD_NOWAIT), zero-capacity
 * channels, deadlines, cancellation, closed channels, one channel in two
 * cases, many cases, bad arguments, uniform choice among ready cases, and a
 * stress run of selecting producers and consumers that loses nothing.
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

static void ready_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1), *b = make_chan(sizeof(long), 1);
	long x = 5, got = 0;
	CHECK_OK(herd_chan_send(b, &x, HERD_FOREVER));
	herd_case cs[] = {HERD_CASE_RECV(a, &got), HERD_CASE_RECV(b, &got)};
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, 0);
	CHECK_EQ(got, 5);
	/* Nothing ready: the default case. */
	CHECK_EQ(herd_select(cs, 2, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* A send case with room proceeds; the receive cases do not. */
	long y = 8;
	herd_case mixed[] = {HERD_CASE_RECV(a, &got), HERD_CASE_SEND(b, &y)};
	CHECK_EQ(herd_select(mixed, 2, HERD_NOWAIT), 1);
	CHECK_EQ(herd_chan_len(b), 1);
	CHECK_OK(herd_chan_recv(b, &got, HERD_FOREVER));
	CHECK_EQ(got, 8);
	/* A NULL channel is never ready, even with the others blocked. */
	CHECK_OK(herd_chan_send(a, &x, HERD_FOREVER));
	herd_case withnull[] = {HERD_CASE_RECV(NULL, &got), HERD_CASE_RECV(a, &got),
				HERD_CASE_SEND(NULL, &y)};
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(herd_select(withnull, 3, HERD_FOREVER), 1);
		CHECK_OK(herd_chan_send(a, &x, HERD_FOREVER));
	}
	herd_case onlynull[] = {HERD_CASE_RECV(NULL, &got)};
	int64_t d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(onlynull, 1, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(NULL, 0, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_select(NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	(void)arg;
}

/* Ready cases proceed, the default case when none is, NULL cases never. */
TEST(ready_default_null)
{
	test_run(0, ready_main, NULL);
}

/* ------------------------------------------------------------------ */

static void plain_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 77);
}

static void plain_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 66;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), 0);
}

static void unbuffered_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 0), *b = make_chan(sizeof(long), 0);
	herd_chan *never = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	/* A select send meets a plain receive that comes later. */
	CHECK_OK(HERD_GO(s, plain_receiver, a));
	long v = 77, got = 0;
	herd_case send[] = {HERD_CASE_RECV(never, &got), HERD_CASE_SEND(a, &v)};
	CHECK_EQ(herd_select(send, 2, HERD_FOREVER), 1);
	CHECK_EQ(send[1].result, 0);
	/* A select receive meets a plain send that comes later. */
	CHECK_OK(HERD_GO(s, plain_sender, b));
	herd_case recv[] = {HERD_CASE_SEND(never, &v), HERD_CASE_RECV(b, &got)};
	CHECK_EQ(herd_select(recv, 2, HERD_FOREVER), 1);
	CHECK_EQ(got, 66);
	CHECK_OK(herd_scope_close(s));
	/* Neither blocked select left a waiter behind. */
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(never));
	(void)arg;
}

/* On zero-capacity channels a select waits for its partner, both ways. */
TEST(zero_capacity)
{
	test_run(0, unbuffered_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int sel_canceled;

struct two_chans {
	herd_chan *empty, *full;
};

static void select_cancel_task(void *p)
{
	struct two_chans *c = p;
	long v = 1;
	/* Nobody sends on `empty` nor receives from `full`. */
	herd_case cs[] = {HERD_CASE_RECV(c->empty, &v), HERD_CASE_SEND(c->full, &v)};
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), HERD_ECANCELED);
	/* Cancelled already: a select that may block fails on entry. */
	CHECK_EQ(herd_select(cs, 2, herd_deadline(HERD_SEC)), HERD_ECANCELED);
	atomic_fetch_add(&sel_canceled, 1);
}

static void deadline_cancel_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 0), *b = make_chan(sizeof(long), 1);
	long v = 0, w = 3;
	CHECK_OK(herd_chan_send(b, &w, HERD_FOREVER)); /* b is full */
	herd_case cs[] = {HERD_CASE_RECV(a, &v), HERD_CASE_SEND(b, &w),
			  HERD_CASE_SEND(a, &w)};
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_select(cs, 3, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_chan_len(b), 1);

	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	struct two_chans c = {a, b};
	for (int i = 0; i < 3; i++)
		CHECK_OK(HERD_GO(s, select_cancel_task, c));
	test_wait_parked(3);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&sel_canceled), 3);
	CHECK_OK(herd_chan_free(a)); /* no waiter left behind */
	CHECK_OK(herd_chan_free(b));
	(void)arg;
}

/* A select gives up at its deadline (never before) and on cancellation. */
TEST(deadline_and_cancel)
{
	test_run(0, deadline_cancel_main, NULL);
}

/* ------------------------------------------------------------------ */

static void closer(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_chan_close(ch));
}

static void closed_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 2), *never = make_chan(sizeof(long), 0);
	long v = 4, got = -1;
	CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
	CHECK_OK(herd_chan_close(a));
	herd_case cs[] = {HERD_CASE_RECV(never, &got), HERD_CASE_RECV(a, &got)};
	/* The buffered value first, then the close. */
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, 0);
	CHECK_EQ(got, 4);
	got = -1;
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, HERD_ECLOSED);
	CHECK_EQ(got, 0);
	/* A send case on a closed channel proceeds, with HERD_ECLOSED. */
	herd_case sc[] = {HERD_CASE_RECV(never, &got), HERD_CASE_SEND(a, &v)};
	CHECK_EQ(herd_select(sc, 2, HERD_NOWAIT), 1);
	CHECK_EQ(sc[1].result, HERD_ECLOSED);
	/* A close wakes a blocked select. */
	herd_chan *b = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, closer, b));
	herd_case bc[] = {HERD_CASE_RECV(never, &got), HERD_CASE_RECV(b, &got)};
	got = -1;
	CHECK_EQ(herd_select(bc, 2, HERD_FOREVER), 1);
	CHECK_EQ(bc[1].result, HERD_ECLOSED);
	CHECK_EQ(got, 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(never));
	(void)arg;
}

/* A closed channel's case is always ready, with result HERD_ECLOSED. */
TEST(closed_channel)
{
	test_run(0, closed_main, NULL);
}

/* ------------------------------------------------------------------ */

static void twice_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 21);
}

static void twice_main(void *arg)
{
	/* Buffered, with a value and room: both cases are ready. */
	herd_chan *a = make_chan(sizeof(long), 4);
	long v = 9, got = 0, out = 10;
	CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
	herd_case cs[] = {HERD_CASE_RECV(a, &got), HERD_CASE_SEND(a, &out)};
	int seen = 0;
	for (int i = 0; i < 200; i++) {
		int rc = herd_select(cs, 2, HERD_FOREVER);
		CHECK(rc == 0 || rc == 1);
		seen |= 1 << rc;
		if (rc == 0 && herd_chan_len(a) == 0)
			CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
		if (rc == 1 && herd_chan_len(a) == 4)
			CHECK_OK(herd_chan_recv(a, &got, HERD_FOREVER));
	}
	CHECK_EQ(seen, 3);
	CHECK_OK(herd_chan_free(a));
	/* Unbuffered: a select that both sends and receives on one channel
	 * blocks, and a plain receiver takes its send. */
	herd_chan *b = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, twice_receiver, b));
	long send = 21;
	herd_case bc[] = {HERD_CASE_RECV(b, &got), HERD_CASE_SEND(b, &send)};
	CHECK_EQ(herd_select(bc, 2, HERD_FOREVER), 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(b));
	(void)arg;
}

/* One channel may appear in several cases. */
TEST(same_channel_twice)
{
	test_run(0, twice_main, NULL);
}

/* ------------------------------------------------------------------ */

#define MANY 100

static herd_chan *many[MANY];

static void many_sender(void *p)
{
	int i = *(int *)p;
	long v = i * 10;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_EQ(herd_chan_send(many[i], &v, HERD_FOREVER), 0);
}

static void many_main(void *arg)
{
	herd_case cs[MANY];
	long got = -1;
	for (int i = 0; i < MANY; i++) {
		many[i] = make_chan(sizeof(long), 0);
		cs[i] = (herd_case)HERD_CASE_RECV(many[i], &got);
	}
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int k = 0; k < 3; k++) {
		int which = (k * 37 + 73) % MANY;
		CHECK_OK(HERD_GO(s, many_sender, which));
		CHECK_EQ(herd_select(cs, MANY, HERD_FOREVER), which);
		CHECK_EQ(got, which * 10);
	}
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < MANY; i++)
		CHECK_OK(herd_chan_free(many[i]));
	(void)arg;
}

/* A select over 100 channels (more than fit on the stack) works. */
TEST(many_cases)
{
	test_run(0, many_main, NULL);
}

/* ------------------------------------------------------------------ */

static void invalid_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1);
	long v = 0;
	herd_case bad_op[] = {{.chan = a, .op = 7, .elem = &v}};
	CHECK_EQ(herd_select(bad_op, 1, HERD_NOWAIT), -EINVAL);
	herd_case null_elem[] = {HERD_CASE_SEND(a, NULL)};
	CHECK_EQ(herd_select(null_elem, 1, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_select(NULL, 1, HERD_NOWAIT), -EINVAL);
	herd_case one[] = {HERD_CASE_RECV(a, &v)};
	CHECK_EQ(herd_select(one, (size_t)HERD_SELECT_MAX + 1, HERD_NOWAIT), -EINVAL);
	/* A failed call changed nothing. */
	CHECK_EQ(herd_chan_len(a), 0);
	CHECK_OK(herd_chan_free(a));
	(void)arg;
}

static void *select_thread(void *arg)
{
	herd_chan *a = arg;
	long v = 0;
	herd_case cs[] = {HERD_CASE_RECV(a, &v)};
	CHECK_EQ(herd_select(cs, 1, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	return NULL;
}

/* Bad arguments give -EINVAL; blocking outside a task gives -EPERM. */
TEST(invalid)
{
	test_run(0, invalid_main, NULL);
	herd_chan *a = make_chan(sizeof(long), 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, select_thread, a) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_chan_free(a));
}

/* ------------------------------------------------------------------ */

#define FAIR_SELECTS 100000

static void fair_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1), *b = make_chan(sizeof(long), 1);
	long v = 1, got;
	CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
	CHECK_OK(herd_chan_send(b, &v, HERD_FOREVER));
	herd_case cs[] = {HERD_CASE_RECV(a, &got), HERD_CASE_RECV(b, &got)};
	long count[2] = {0, 0};
	for (int i = 0; i < FAIR_SELECTS; i++) {
		int rc = herd_select(cs, 2, HERD_NOWAIT);
		CHECK(rc == 0 || rc == 1);
		count[rc]++;
		/* Refill: both cases are ready at every select. */
		CHECK_OK(herd_chan_send(rc == 0 ? a : b, &v, HERD_NOWAIT));
	}
	printf("case 0: %ld, case 1: %ld\n", count[0], count[1]);
	CHECK(count[0] >= FAIR_SELECTS * 45 / 100 && count[0] <= FAIR_SELECTS * 55 / 100);
	CHECK(count[1] >= FAIR_SELECTS * 45 / 100 && count[1] <= FAIR_SELECTS * 55 / 100);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	(void)arg;
}

/* With two cases always ready, each is chosen 45-55% of 100,000 times. */
TEST(fairness)
{
	test_run(0, fair_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SS_PRODUCERS 4
#define SS_CONSUMERS 4
#define SS_PER_PRODUCER (100000 / TEST_SCALE)
#define SS_TOTAL ((long)SS_PRODUCERS * SS_PER_PRODUCER)

static herd_chan *ss_chans[2];
static _Atomic unsigned char *ss_seen;
static atomic_long ss_count, ss_sum;

static void ss_producer(void *p)
{
	long first = *(long *)p;
	for (long i = 0; i < SS_PER_PRODUCER; i++) {
		long v = first + i;
		herd_case cs[] = {HERD_CASE_SEND(ss_chans[0], &v),
				  HERD_CASE_SEND(ss_chans[1], &v)};
		int rc = herd_select(cs, 2, HERD_FOREVER);
		CHECK(rc == 0 || rc == 1);
		CHECK_EQ(cs[rc].result, 0);
	}
}

static void ss_consumer(void *p)
{
	long v, n = 0, sum = 0;
	herd_case cs[] = {HERD_CASE_RECV(ss_chans[0], &v), HERD_CASE_RECV(ss_chans[1], &v)};
	int open = 2;
	while (open) {
		int rc = herd_select(cs, 2, HERD_FOREVER);
		CHECK(rc == 0 || rc == 1);
		if (cs[rc].result == HERD_ECLOSED) {
			cs[rc].chan = NULL; /* as Go sets a closed channel to nil */
			open--;
			continue;
		}
		CHECK(v >= 0 && v < SS_TOTAL);
		CHECK_EQ(atomic_exchange(&ss_seen[v], 1), 0);
		n++;
		sum += v;
	}
	atomic_fetch_add(&ss_count, n);
	atomic_fetch_add(&ss_sum, sum);
	(void)p;
}

static void ss_run(size_t cap)
{
	ss_chans[0] = make_chan(sizeof(long), cap);
	ss_chans[1] = make_chan(sizeof(long), cap);
	memset((void *)ss_seen, 0, SS_TOTAL);
	atomic_store(&ss_count, 0);
	atomic_store(&ss_sum, 0);
	herd_scope *prod, *cons;
	CHECK_OK(herd_scope_open(&cons));
	CHECK_OK(herd_scope_open(&prod));
	for (int i = 0; i < SS_CONSUMERS; i++)
		CHECK_OK(herd_go(cons, ss_consumer, NULL, 0));
	for (long i = 0; i < SS_PRODUCERS; i++)
		CHECK_OK(HERD_GO(prod, ss_producer, i * SS_PER_PRODUCER));
	CHECK_OK(herd_scope_close(prod));
	CHECK_OK(herd_chan_close(ss_chans[0]));
	CHECK_OK(herd_chan_close(ss_chans[1]));
	CHECK_OK(herd_scope_close(cons));
	CHECK_EQ(atomic_load(&ss_count), SS_TOTAL);
	CHECK_EQ(atomic_load(&ss_sum), SS_TOTAL * (SS_TOTAL - 1) / 2);
	CHECK_OK(herd_chan_free(ss_chans[0]));
	CHECK_OK(herd_chan_free(ss_chans[1]));
}

static void ss_main(void *arg)
{
	ss_run(0);
	ss_run(8);
	(void)arg;
}

/* Producers that select where to send and consumers that select where to
 * receive, on every worker: every message arrives exactly once. */
LONG_TEST(stress_exactly_once)
{
	ss_seen = calloc(SS_TOTAL, 1);
	CHECK(ss_seen);
	test_run(0, ss_main, NULL);
	free((void *)ss_seen);
}
