/*
 * test-select.c - herd_select against Go's select: receive, send and mixed
 * cases, NULL (nil) cases, the default case (HERD_NOWAIT), zero-capacity
 * channels, deadlines, cancellation, closed channels, one channel in two
 * cases, many cases, bad arguments, uniform choice among ready cases, and
 * stress runs (selecting producers, consumers and relays; receivers
 * canceled mid-flight) that lose nothing.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------ */

static void ready_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1), *b = make_chan(sizeof(long), 1);
	long x = 5, got = 0;
	CHECK_OK(herd_chan_send(b, &x, HERD_FOREVER));
	herd_case cs[] = {HERD_CASE_RECV(a, &got), HERD_CASE_RECV(b, &got)};
	cs[1].result = 99;
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, 0);
	CHECK_EQ(got, 5);
	CHECK_EQ(herd_chan_len(b), 0);
	/* Nothing ready: the default case, and nothing moves. */
	got = -1;
	CHECK_EQ(herd_select(cs, 2, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(got, -1);
	/* A send case with room proceeds; the receive cases do not. */
	long y = 8;
	herd_case mixed[] = {HERD_CASE_RECV(a, &got), HERD_CASE_SEND(b, &y)};
	CHECK_EQ(herd_select(mixed, 2, HERD_NOWAIT), 1);
	CHECK_EQ(mixed[1].result, 0);
	CHECK_EQ(herd_chan_len(b), 1);
	CHECK_EQ(herd_chan_len(a), 0);
	CHECK_OK(herd_chan_recv(b, &got, HERD_FOREVER));
	CHECK_EQ(got, 8);
	/* Send cases only: the one with room. */
	CHECK_OK(herd_chan_send(a, &x, HERD_FOREVER)); /* a full, b empty */
	herd_case sends[] = {HERD_CASE_SEND(a, &y), HERD_CASE_SEND(b, &y)};
	CHECK_EQ(herd_select(sends, 2, HERD_FOREVER), 1);
	CHECK_EQ(herd_select(sends, 2, HERD_NOWAIT), HERD_ETIMEDOUT); /* both full */
	CHECK_OK(herd_chan_recv(b, &got, HERD_FOREVER));
	CHECK_EQ(got, 8);
	/* A receive case into NULL discards the value. */
	herd_case discard[] = {HERD_CASE_RECV(a, NULL)};
	CHECK_EQ(herd_select(discard, 1, HERD_NOWAIT), 0);
	CHECK_EQ(herd_chan_len(a), 0);
	/* A NULL channel is never ready, even with the others blocked. */
	CHECK_OK(herd_chan_send(a, &x, HERD_FOREVER));
	herd_case withnull[] = {HERD_CASE_RECV(NULL, &got), HERD_CASE_RECV(a, &got),
				HERD_CASE_SEND(NULL, &y)};
	for (int i = 0; i < 100; i++) {
		CHECK_EQ(herd_select(withnull, 3, HERD_FOREVER), 1);
		CHECK_OK(herd_chan_send(a, &x, HERD_FOREVER));
	}
	herd_case onlynull[] = {HERD_CASE_RECV(NULL, &got), HERD_CASE_SEND(NULL, &y)};
	CHECK_EQ(herd_select(onlynull, 2, HERD_NOWAIT), HERD_ETIMEDOUT);
	int64_t d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(onlynull, 2, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	/* No case at all: only the deadline ends it. */
	d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(NULL, 0, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	herd_case none[1];
	d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(none, 0, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_select(NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	(void)arg;
}

/* Ready cases proceed (receive, send, mixed), the default case when none
 * is, NULL cases never; with no case, a select waits for its deadline. */
TEST(ready_default_null)
{
	test_run(0, ready_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_long zc_entered;

static void plain_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	atomic_store(&zc_entered, 1);
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

static void blocked_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_EQ(herd_chan_recv(ch, &v, HERD_FOREVER), 0);
	CHECK_EQ(v, 55);
}

static void blocked_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 44;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), 0);
}

static void select_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 33;
	herd_case cs[] = {HERD_CASE_SEND(ch, &v), HERD_CASE_SEND(NULL, &v)};
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 0);
	CHECK_EQ(cs[0].result, 0);
}

static void unbuffered_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 0), *b = make_chan(sizeof(long), 0);
	herd_chan *never = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	/* A select send waits for a plain receive that comes later, and
	 * returns only once the receive has begun. */
	atomic_store(&zc_entered, 0);
	CHECK_OK(HERD_GO(s, plain_receiver, a));
	long v = 77, got = 0;
	herd_case send[] = {HERD_CASE_RECV(never, &got), HERD_CASE_SEND(a, &v)};
	CHECK_EQ(herd_select(send, 2, HERD_FOREVER), 1);
	CHECK_EQ(send[1].result, 0);
	CHECK_EQ(atomic_load(&zc_entered), 1);
	/* A select receive waits for a plain send that comes later. */
	CHECK_OK(HERD_GO(s, plain_sender, b));
	herd_case recv[] = {HERD_CASE_SEND(never, &v), HERD_CASE_RECV(b, &got)};
	CHECK_EQ(herd_select(recv, 2, HERD_FOREVER), 1);
	CHECK_EQ(recv[1].result, 0);
	CHECK_EQ(got, 66);
	/* The other way round: the plain party waits first. (A fresh scope:
	 * the parked count must not include the tasks above.) */
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, blocked_receiver, a));
	test_wait_parked(1);
	v = 55;
	CHECK_EQ(herd_select(send, 2, HERD_NOWAIT), 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, blocked_sender, b));
	test_wait_parked(1);
	got = 0;
	CHECK_EQ(herd_select(recv, 2, HERD_NOWAIT), 1);
	CHECK_EQ(got, 44);
	/* A select on each side. */
	CHECK_OK(HERD_GO(s, select_sender, b));
	got = 0;
	CHECK_EQ(herd_select(recv, 2, HERD_FOREVER), 1);
	CHECK_EQ(got, 33);
	CHECK_OK(herd_scope_close(s));
	/* The blocked selects left no waiter behind on the case that lost:
	 * nobody takes a send on `never`, nobody offers one. */
	CHECK_EQ(herd_chan_try_send(never, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_try_recv(never, &got), HERD_ETIMEDOUT);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(never));
	(void)arg;
}

/* On zero-capacity channels a select meets its partner, a plain call or
 * another select, whichever comes first. */
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
	/* Canceled already: a select that may block fails on entry, even
	 * with a case ready (the receive from `full`)... */
	herd_case ready[] = {HERD_CASE_RECV(c->full, &v)};
	CHECK_EQ(herd_select(ready, 1, herd_deadline(HERD_SEC)), HERD_ECANCELED);
	CHECK_EQ(herd_chan_len(c->full), 1);
	atomic_fetch_add(&sel_canceled, 1);
}

static void select_cancel_nothing(void *p)
{
	/* Only NULL cases, or none: nothing but cancellation ends it. */
	herd_case cs[] = {HERD_CASE_RECV(NULL, p)};
	CHECK_EQ(herd_select(cs, 1, HERD_FOREVER), HERD_ECANCELED);
	CHECK_EQ(herd_select(NULL, 0, HERD_FOREVER), HERD_ECANCELED);
	atomic_fetch_add(&sel_canceled, 1);
}

/* c->full is this task's own: the others check its length. */
static void select_nowait_canceled(void *p)
{
	struct two_chans *c = p;
	CHECK_EQ(herd_sleep(herd_deadline(10 * HERD_SEC)), HERD_ECANCELED);
	/* ...but HERD_NOWAIT is no cancellation point: it performs a case. */
	long v = 0;
	herd_case ready[] = {HERD_CASE_RECV(c->empty, &v), HERD_CASE_RECV(c->full, &v)};
	CHECK_EQ(herd_select(ready, 2, HERD_NOWAIT), 1);
	CHECK_EQ(v, 3);
	CHECK_OK(herd_chan_send(c->full, &v, HERD_NOWAIT)); /* put it back */
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
	/* A deadline already past: at once, like the default case. */
	CHECK_EQ(herd_select(cs, 3, 1), HERD_ETIMEDOUT);
	/* No waiter was left behind by the timed-out selects. */
	CHECK_EQ(herd_chan_try_send(a, &w), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_try_recv(a, &v), HERD_ETIMEDOUT);

	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	struct two_chans c = {a, b};
	for (int i = 0; i < 3; i++)
		CHECK_OK(HERD_GO(s, select_cancel_task, c));
	CHECK_OK(herd_go(s, select_cancel_nothing, &v, 0));
	struct two_chans c2 = {a, make_chan(sizeof(long), 1)};
	CHECK_OK(herd_chan_send(c2.full, &w, HERD_FOREVER));
	CHECK_OK(HERD_GO(s, select_nowait_canceled, c2));
	test_wait_parked(5);
	CHECK_EQ(atomic_load(&sel_canceled), 0);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&sel_canceled), 5);
	CHECK_EQ(herd_chan_len(b), 1);
	CHECK_EQ(herd_chan_len(c2.full), 1);
	CHECK_OK(herd_chan_free(a)); /* no waiter left behind */
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(c2.full));
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
	got = -1;
	CHECK_EQ(herd_select(cs, 2, HERD_NOWAIT), 1);
	CHECK_EQ(cs[1].result, HERD_ECLOSED);
	CHECK_EQ(got, 0);
	/* A send case on a closed channel proceeds, with HERD_ECLOSED. */
	herd_case sc[] = {HERD_CASE_RECV(never, &got), HERD_CASE_SEND(a, &v)};
	CHECK_EQ(herd_select(sc, 2, HERD_NOWAIT), 1);
	CHECK_EQ(sc[1].result, HERD_ECLOSED);
	CHECK_EQ(herd_chan_len(a), 0); /* it sent nothing */
	/* A close wakes a blocked select, receiving or sending. */
	herd_chan *b = make_chan(sizeof(long), 0), *c = make_chan(sizeof(long), 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, closer, b));
	herd_case bc[] = {HERD_CASE_RECV(never, &got), HERD_CASE_RECV(b, &got)};
	got = -1;
	CHECK_EQ(herd_select(bc, 2, HERD_FOREVER), 1);
	CHECK_EQ(bc[1].result, HERD_ECLOSED);
	CHECK_EQ(got, 0);
	CHECK_OK(HERD_GO(s, closer, c));
	herd_case cc[] = {HERD_CASE_RECV(never, &got), HERD_CASE_SEND(c, &v)};
	CHECK_EQ(herd_select(cc, 2, HERD_FOREVER), 1);
	CHECK_EQ(cc[1].result, HERD_ECLOSED);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(herd_chan_try_recv(never, &got), HERD_ETIMEDOUT);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(c));
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

static void twice_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 31;
	CHECK_EQ(herd_chan_send(ch, &v, HERD_FOREVER), 0);
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
		int len = herd_chan_len(a);
		int rc = herd_select(cs, 2, HERD_FOREVER);
		CHECK(rc == 0 || rc == 1);
		CHECK_EQ(herd_chan_len(a), rc == 0 ? len - 1 : len + 1);
		seen |= 1 << rc;
		if (rc == 0 && herd_chan_len(a) == 0)
			CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
		if (rc == 1 && herd_chan_len(a) == 4)
			CHECK_OK(herd_chan_recv(a, &got, HERD_FOREVER));
	}
	CHECK_EQ(seen, 3);
	CHECK_OK(herd_chan_free(a));
	/* Unbuffered: a select that both sends and receives on one channel
	 * does not meet itself; a plain receiver takes its send. */
	herd_chan *b = make_chan(sizeof(long), 0);
	herd_case bc[] = {HERD_CASE_RECV(b, &got), HERD_CASE_SEND(b, &out)};
	CHECK_EQ(herd_select(bc, 2, HERD_NOWAIT), HERD_ETIMEDOUT);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, twice_receiver, b));
	out = 21;
	CHECK_EQ(herd_select(bc, 2, HERD_FOREVER), 1);
	/* Two receive cases on one channel: one value, one case. */
	CHECK_OK(HERD_GO(s, twice_sender, b));
	long g1 = 0, g2 = 0;
	herd_case rr[] = {HERD_CASE_RECV(b, &g1), HERD_CASE_RECV(b, &g2)};
	int rc = herd_select(rr, 2, HERD_FOREVER);
	CHECK(rc == 0 || rc == 1);
	CHECK_EQ(rc == 0 ? g1 : g2, 31);
	CHECK_EQ(rc == 0 ? g2 : g1, 0);
	CHECK_OK(herd_scope_close(s));
	/* No waiter of the select is left on b. */
	CHECK_EQ(herd_chan_try_send(b, &out), HERD_ETIMEDOUT);
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
		CHECK_EQ(cs[which].result, 0);
		CHECK_EQ(got, which * 10);
	}
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < MANY; i++) {
		/* No waiter left on the 99 channels that lost. */
		CHECK_EQ(herd_chan_try_send(many[i], &got), HERD_ETIMEDOUT);
		CHECK_OK(herd_chan_free(many[i]));
	}
	/* HERD_SELECT_MAX cases, the last one ready. */
	herd_case *big = calloc(HERD_SELECT_MAX, sizeof *big);
	CHECK(big);
	herd_chan *empty = make_chan(sizeof(long), 0), *one = make_chan(sizeof(long), 1);
	for (size_t i = 0; i < HERD_SELECT_MAX; i++)
		big[i] = (herd_case)HERD_CASE_RECV(i % 3 ? empty : NULL, &got);
	CHECK_EQ(herd_select(big, HERD_SELECT_MAX, HERD_NOWAIT), HERD_ETIMEDOUT);
	big[HERD_SELECT_MAX - 1].chan = one;
	long v = 123;
	CHECK_OK(herd_chan_send(one, &v, HERD_FOREVER));
	CHECK_EQ(herd_select(big, HERD_SELECT_MAX, HERD_FOREVER), HERD_SELECT_MAX - 1);
	CHECK_EQ(got, 123);
	free(big);
	CHECK_OK(herd_chan_free(empty));
	CHECK_OK(herd_chan_free(one));
	(void)arg;
}

/* A select over 100 channels (more than fit on the stack) works, and so
 * does one of HERD_SELECT_MAX cases. */
TEST(many_cases)
{
	test_run(0, many_main, NULL);
}

/* ------------------------------------------------------------------ */

static void invalid_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1);
	long v = 6;
	CHECK_OK(herd_chan_send(a, &v, HERD_FOREVER));
	/* A bad op, even after a ready case or on a NULL channel. */
	herd_case bad_op[] = {HERD_CASE_RECV(a, &v), {.chan = a, .op = 7, .elem = &v}};
	CHECK_EQ(herd_select(bad_op, 2, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_select(bad_op, 2, HERD_FOREVER), -EINVAL);
	bad_op[1].op = 0;
	CHECK_EQ(herd_select(bad_op, 2, HERD_NOWAIT), -EINVAL);
	bad_op[1].op = HERD_SEND | HERD_RECV;
	CHECK_EQ(herd_select(bad_op, 2, HERD_NOWAIT), -EINVAL);
	herd_case bad_null[] = {HERD_CASE_RECV(a, &v), {.chan = NULL, .op = -1, .elem = &v}};
	CHECK_EQ(herd_select(bad_null, 2, HERD_NOWAIT), -EINVAL);
	/* A send of a non-empty value from NULL. */
	herd_case null_elem[] = {HERD_CASE_RECV(a, &v), HERD_CASE_SEND(a, NULL)};
	CHECK_EQ(herd_select(null_elem, 2, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_select(NULL, 1, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_select(NULL, 1, HERD_FOREVER), -EINVAL);
	herd_case one[] = {HERD_CASE_RECV(a, &v)};
	CHECK_EQ(herd_select(one, (size_t)HERD_SELECT_MAX + 1, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_select(one, SIZE_MAX, HERD_NOWAIT), -EINVAL);
	/* A failed call changed nothing: the value is still there. */
	CHECK_EQ(herd_chan_len(a), 1);
	v = 0;
	CHECK_EQ(herd_chan_try_recv(a, &v), 0);
	CHECK_EQ(v, 6);
	/* A send of an empty value may come from NULL. */
	herd_chan *sig = make_chan(0, 1);
	herd_case sig_send[] = {HERD_CASE_SEND(sig, NULL)};
	CHECK_EQ(herd_select(sig_send, 1, HERD_NOWAIT), 0);
	CHECK_EQ(herd_chan_len(sig), 1);
	CHECK_OK(herd_chan_free(sig));
	CHECK_OK(herd_chan_free(a));
	(void)arg;
}

static void *select_thread(void *arg)
{
	herd_chan *a = arg;
	long v = 0;
	herd_case cs[] = {HERD_CASE_RECV(a, &v)};
	CHECK_EQ(herd_select(cs, 1, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_select(cs, 1, herd_deadline(HERD_SEC)), -EPERM);
	CHECK_EQ(herd_select(NULL, 0, herd_deadline(HERD_SEC)), -EPERM);
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* With HERD_NOWAIT, a plain thread may select; a ready case is
	 * performed even by a blocking select (it need not block). */
	v = 17;
	herd_case snd[] = {HERD_CASE_SEND(a, &v)};
	CHECK_EQ(herd_select(snd, 1, HERD_NOWAIT), 0);
	v = 0;
	CHECK_EQ(herd_select(cs, 1, HERD_FOREVER), 0);
	CHECK_EQ(v, 17);
	return NULL;
}

static void invalid_thread_main(void *arg)
{
	herd_chan *a = make_chan(sizeof(long), 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, select_thread, a) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_chan_free(a));
	(void)arg;
}

/* Bad arguments give -EINVAL and change nothing; blocking outside a task
 * gives -EPERM. */
TEST(invalid)
{
	test_run(0, invalid_main, NULL);
	test_run(0, invalid_thread_main, NULL);
}

/* ------------------------------------------------------------------ */

#define FAIR_SELECTS 100000

/* Runs FAIR_SELECTS selects over cs[0..n), all ready each time (refill, if
 * not NULL, makes the chosen case ready again); checks each case is chosen
 * within 20% of 1/n of the time, and (n == 2) that the choices are
 * independent: the same case as the time before about half the time. */
static void fair_run(herd_case *cs, int n, herd_chan **refill)
{
	long count[4] = {0}, repeats = 0;
	int last = -1;
	long v = 1;
	for (int i = 0; i < FAIR_SELECTS; i++) {
		int rc = herd_select(cs, (size_t)n, HERD_NOWAIT);
		CHECK(rc >= 0 && rc < n);
		count[rc]++;
		repeats += rc == last;
		last = rc;
		if (refill)
			CHECK_OK(herd_chan_send(refill[rc], &v, HERD_NOWAIT));
	}
	for (int k = 0; k < n; k++) {
		printf("case %d of %d: %ld\n", k, n, count[k]);
		CHECK(count[k] >= FAIR_SELECTS * 8 / (10 * n) &&
		      count[k] <= FAIR_SELECTS * 12 / (10 * n));
	}
	if (n == 2) {
		/* 45-55%, as asked of each case. */
		CHECK(count[0] >= FAIR_SELECTS * 45 / 100 && count[0] <= FAIR_SELECTS * 55 / 100);
		CHECK(count[1] >= FAIR_SELECTS * 45 / 100 && count[1] <= FAIR_SELECTS * 55 / 100);
		printf("repeats: %ld\n", repeats);
		CHECK(repeats >= FAIR_SELECTS * 45 / 100 && repeats <= FAIR_SELECTS * 55 / 100);
	}
}

static void fair_main(void *arg)
{
	herd_chan *ch[4];
	long v = 1, got;
	herd_case cs[4];
	for (int i = 0; i < 4; i++) {
		ch[i] = make_chan(sizeof(long), 1);
		CHECK_OK(herd_chan_send(ch[i], &v, HERD_FOREVER));
		cs[i] = (herd_case)HERD_CASE_RECV(ch[i], &got);
	}
	/* Two buffered channels kept non-empty. */
	fair_run(cs, 2, ch);
	/* Four. */
	fair_run(cs, 4, ch);
	/* Two closed channels: always ready, nothing to refill. */
	herd_chan *c0 = make_chan(sizeof(long), 0), *c1 = make_chan(0, 0);
	CHECK_OK(herd_chan_close(c0));
	CHECK_OK(herd_chan_close(c1));
	herd_case closed[] = {HERD_CASE_RECV(c0, &got), HERD_CASE_SEND(c1, NULL)};
	fair_run(closed, 2, NULL);
	/* A ready case among NULL ones: the NULLs do not skew the choice. */
	herd_case holes[] = {HERD_CASE_RECV(NULL, &got), HERD_CASE_RECV(ch[0], &got),
			     HERD_CASE_RECV(NULL, &got), HERD_CASE_RECV(ch[1], &got)};
	long cnt[4] = {0};
	for (int i = 0; i < FAIR_SELECTS / 10; i++) {
		int rc = herd_select(holes, 4, HERD_NOWAIT);
		CHECK(rc == 1 || rc == 3);
		cnt[rc]++;
		CHECK_OK(herd_chan_send(rc == 1 ? ch[0] : ch[1], &v, HERD_NOWAIT));
	}
	CHECK(cnt[1] >= FAIR_SELECTS / 10 * 45 / 100 && cnt[3] >= FAIR_SELECTS / 10 * 45 / 100);
	for (int i = 0; i < 4; i++)
		CHECK_OK(herd_chan_free(ch[i]));
	CHECK_OK(herd_chan_free(c0));
	CHECK_OK(herd_chan_free(c1));
	(void)arg;
}

/* With two cases always ready, each is chosen 45-55% of 100,000 times, and
 * independently of the last choice; four share evenly too. */
TEST(fairness)
{
	test_run(0, fair_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SS_CHANS 3
#define SS_TOTAL_MSGS (400000 / TEST_SCALE)
#define RELAY_HOLD 4

static herd_chan *ss_chans[SS_CHANS], *ss_done;
static _Atomic unsigned char *ss_seen;
static atomic_long ss_count, ss_sum;
static long ss_total;
static bool ss_deadlines;

/* A deadline for one select: with ss_deadlines, every other one is short
 * (passed already, or microseconds away) and is retried when it passes. */
static int64_t ss_deadline(uint64_t *rng)
{
	static const int64_t waits[] = {0, HERD_USEC, 20 * HERD_USEC, 200 * HERD_USEC};
	uint64_t r = rng_next(rng);
	if (!ss_deadlines || r % 2)
		return HERD_FOREVER;
	return herd_deadline(waits[(r >> 8) % 4]);
}

struct ss_arg {
	long first, n;
};

static void ss_producer(void *p)
{
	struct ss_arg *a = p;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)a->first;
	for (long i = 0; i < a->n; i++) {
		long v = a->first + i;
		herd_case cs[SS_CHANS];
		for (int k = 0; k < SS_CHANS; k++)
			cs[k] = (herd_case)HERD_CASE_SEND(ss_chans[k], &v);
		int rc;
		while ((rc = herd_select(cs, SS_CHANS, ss_deadline(&rng))) < 0)
			CHECK_EQ(rc, HERD_ETIMEDOUT);
		CHECK_EQ(cs[rc].result, 0);
	}
}

static void ss_consumer(void *p)
{
	uint64_t rng = 0x2545f4914f6cdd1dull + (uint64_t)*(long *)p;
	long v, n = 0, sum = 0;
	herd_case cs[SS_CHANS + 1];
	for (int k = 0; k < SS_CHANS; k++)
		cs[k] = (herd_case)HERD_CASE_RECV(ss_chans[k], &v);
	cs[SS_CHANS] = (herd_case)HERD_CASE_RECV(ss_done, NULL);
	for (;;) {
		int rc = herd_select(cs, SS_CHANS + 1, ss_deadline(&rng));
		if (rc == HERD_ETIMEDOUT)
			continue;
		CHECK(rc >= 0 && rc <= SS_CHANS);
		if (rc == SS_CHANS) {
			CHECK_EQ(cs[rc].result, HERD_ECLOSED);
			break;
		}
		CHECK_EQ(cs[rc].result, 0);
		CHECK(v >= 0 && v < ss_total);
		CHECK_EQ(atomic_exchange(&ss_seen[v], 1), 0); /* exactly once */
		n++;
		sum += v;
		if (atomic_fetch_add(&ss_count, 1) + 1 == ss_total)
			CHECK_OK(herd_chan_close(ss_done)); /* all arrived */
	}
	atomic_fetch_add(&ss_sum, sum);
}

/* Passes values on: receives while it holds fewer than RELAY_HOLD, sends
 * while it holds any, in one select over the same channels; ends when
 * ss_done is closed. */
static void ss_relay(void *p)
{
	uint64_t rng = 0x7f4a7c159e3779b9ull + (uint64_t)*(long *)p;
	long held[RELAY_HOLD], in = -1;
	int nheld = 0;
	herd_case cs[2 * SS_CHANS + 1];
	for (;;) {
		for (int k = 0; k < SS_CHANS; k++) {
			herd_chan *ch = ss_chans[k];
			cs[k] = (herd_case)HERD_CASE_RECV(nheld < RELAY_HOLD ? ch : NULL, &in);
			cs[SS_CHANS + k] = (herd_case)HERD_CASE_SEND(
				nheld > 0 ? ch : NULL, &held[nheld > 0 ? nheld - 1 : 0]);
		}
		cs[2 * SS_CHANS] = (herd_case)HERD_CASE_RECV(ss_done, NULL);
		int rc = herd_select(cs, 2 * SS_CHANS + 1, ss_deadline(&rng));
		if (rc == HERD_ETIMEDOUT)
			continue;
		CHECK(rc >= 0 && rc <= 2 * SS_CHANS);
		if (rc == 2 * SS_CHANS) {
			/* Every value reached a consumer: none can be here. */
			CHECK_EQ(cs[rc].result, HERD_ECLOSED);
			CHECK_EQ(nheld, 0);
			return;
		}
		CHECK_EQ(cs[rc].result, 0);
		if (rc < SS_CHANS)
			held[nheld++] = in;
		else
			nheld--;
		/* On buffered channels relays may pass values among themselves
		 * without ever blocking: let the others run (tasks are not
		 * preempted). */
		CHECK_OK(herd_yield());
	}
}

static void ss_run(size_t cap, bool deadlines)
{
	long workers = herd_workers();
	long ntasks = workers + 1 > 3 ? workers + 1 : 3; /* of each kind */
	long per = SS_TOTAL_MSGS / ntasks;
	ss_total = per * ntasks;
	ss_deadlines = deadlines;
	for (int k = 0; k < SS_CHANS; k++)
		ss_chans[k] = make_chan(sizeof(long), cap);
	ss_done = make_chan(0, 0);
	memset((void *)ss_seen, 0, (size_t)ss_total);
	atomic_store(&ss_count, 0);
	atomic_store(&ss_sum, 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (long i = 0; i < ntasks; i++) {
		CHECK_OK(HERD_GO(s, ss_consumer, i));
		CHECK_OK(HERD_GO(s, ss_relay, i));
		struct ss_arg a = {i * per, per};
		CHECK_OK(HERD_GO(s, ss_producer, a));
	}
	/* A lost message would leave the consumers waiting: report it rather
	 * than hang until the test's timeout. */
	int rc = herd_scope_wait(s, herd_deadline(100 * HERD_SEC));
	if (rc == HERD_ETIMEDOUT) {
		fprintf(stderr, "after 100 s, %ld of %ld messages arrived\n",
			atomic_load(&ss_count), ss_total);
		exit(1);
	}
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&ss_count), ss_total);
	CHECK_EQ(atomic_load(&ss_sum), ss_total * (ss_total - 1) / 2);
	for (int k = 0; k < SS_CHANS; k++) {
		CHECK_EQ(herd_chan_len(ss_chans[k]), 0);
		CHECK_OK(herd_chan_free(ss_chans[k]));
	}
	CHECK_OK(herd_chan_free(ss_done));
}

static void ss_main(void *arg)
{
	ss_run(0, false);
	ss_run(8, false);
	ss_run(0, true);
	ss_run(2, true);
	(void)arg;
}

/* Producers that select where to send, consumers that select where to
 * receive, and relays that select both ways on the same channels, more
 * than the workers, with and without short deadlines: every message
 * arrives exactly once. */
LONG_TEST(stress_exactly_once)
{
	ss_seen = calloc(SS_TOTAL_MSGS, 1);
	CHECK(ss_seen);
	test_run(0, ss_main, NULL);
	free((void *)ss_seen);
}

/* ------------------------------------------------------------------ */

#define RACE_ROUNDS (TEST_UNDER_TSAN ? 20 : 300 / TEST_SCALE)

static atomic_long race_sent_n, race_got_n, race_sent_sum, race_got_sum;
static atomic_int race_stop;
static herd_chan *race_ch, *race_other;

static void race_sender(void *p)
{
	long id = *(long *)p;
	for (long i = 0;; i++) {
		long v = id << 32 | i;
		herd_case cs[] = {HERD_CASE_SEND(race_ch, &v), HERD_CASE_SEND(NULL, &v)};
		int rc = herd_select(cs, 2, herd_deadline(200 * HERD_USEC));
		if (rc == 0) {
			CHECK_EQ(cs[0].result, 0);
			atomic_fetch_add(&race_sent_n, 1);
			atomic_fetch_add(&race_sent_sum, v);
			continue;
		}
		CHECK_EQ(rc, HERD_ETIMEDOUT);
		if (atomic_load(&race_stop))
			return;
		i--; /* not sent: the same value again */
	}
}

static void race_receiver(void *p)
{
	long v;
	(void)p;
	herd_case cs[] = {HERD_CASE_RECV(race_other, &v), HERD_CASE_RECV(race_ch, &v)};
	for (;;) {
		int rc = herd_select(cs, 2, HERD_FOREVER);
		if (rc == HERD_ECANCELED)
			return;
		CHECK_EQ(rc, 1);
		CHECK_EQ(cs[1].result, 0);
		atomic_fetch_add(&race_got_n, 1);
		atomic_fetch_add(&race_got_sum, v);
	}
}

static void cancel_race_main(void *arg)
{
	uint64_t rng = 777;
	race_other = make_chan(sizeof(long), 0);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		race_ch = make_chan(sizeof(long), (size_t)(round % 2) * 2);
		atomic_store(&race_sent_n, 0);
		atomic_store(&race_got_n, 0);
		atomic_store(&race_sent_sum, 0);
		atomic_store(&race_got_sum, 0);
		atomic_store(&race_stop, 0);
		herd_scope *s, *r;
		CHECK_OK(herd_scope_open(&r));
		CHECK_OK(herd_scope_open(&s));
		for (long i = 0; i < 3; i++) {
			CHECK_OK(herd_go(r, race_receiver, NULL, 0));
			CHECK_OK(HERD_GO(s, race_sender, i));
		}
		CHECK_OK(herd_sleep(herd_deadline((int64_t)(rng_next(&rng) % 500) * HERD_USEC)));
		CHECK_OK(herd_scope_cancel(r));
		CHECK_OK(herd_scope_close(r));
		atomic_store(&race_stop, 1);
		CHECK_OK(herd_scope_close(s));
		long v;
		while (herd_chan_try_recv(race_ch, &v) == 0) {
			atomic_fetch_add(&race_got_n, 1);
			atomic_fetch_add(&race_got_sum, v);
		}
		CHECK_EQ(atomic_load(&race_sent_n), atomic_load(&race_got_n));
		CHECK_EQ(atomic_load(&race_sent_sum), atomic_load(&race_got_sum));
		CHECK_OK(herd_chan_free(race_ch));
	}
	CHECK_OK(herd_chan_free(race_other));
	(void)arg;
}

/* Canceling tasks blocked in select while selecting senders hand them
 * values loses nothing: what a select reports sent was received. */
TEST(cancel_race_no_loss)
{
	test_run(0, cancel_race_main, NULL);
}

/* ------------------------------------------------------------------ */
/* The seed of the random choices (HERD_SEED)                         */
/* ------------------------------------------------------------------ */

/* 64 choices between two ready channels, as bits. */
static void choices_main(void *unused)
{
	(void)unused;
	herd_chan *a = make_chan(sizeof(int), 64), *b = make_chan(sizeof(int), 64);
	for (int i = 0; i < 64; i++) {
		CHECK_OK(herd_chan_send(a, &i, HERD_NOWAIT));
		CHECK_OK(herd_chan_send(b, &i, HERD_NOWAIT));
	}
	uint64_t bits = 0;
	int v;
	for (int i = 0; i < 64; i++) {
		herd_case cs[] = {HERD_CASE_RECV(a, &v), HERD_CASE_RECV(b, &v)};
		int k = herd_select(cs, 2, HERD_FOREVER);
		CHECK(k == 0 || k == 1);
		bits = bits << 1 | (uint64_t)k;
		/* Both stay ready: put back what was taken. */
		CHECK_OK(herd_chan_send(k ? b : a, &v, HERD_NOWAIT));
	}
	herd_stats st;
	CHECK_OK(herd_stats_get(&st));
	fprintf(stderr, "seed %llu choices %016llx\n", (unsigned long long)st.seed,
		(unsigned long long)bits);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(b));
}

static void choices_child(void)
{
	CHECK_OK(herd_main(choices_main, NULL));
}

/* Runs the choices in a child with HERD_SEED set to seed (NULL: unset),
 * one worker; its line in out. */
static void choices_run(const char *seed, char *out, size_t size)
{
	static char buf[4096];
	setenv("HERD_WORKERS", "1", 1);
	if (seed)
		setenv("HERD_SEED", seed, 1);
	else
		unsetenv("HERD_SEED");
	test_child_ok(test_child(choices_child, buf, sizeof buf), buf);
	const char *line = strstr(buf, "seed ");
	CHECK(line != NULL);
	snprintf(out, size, "%.*s", (int)strcspn(line, "\n"), line);
}

TEST(seed_replays)
{
	char one[128], two[128];
	choices_run("12345", one, sizeof one);
	choices_run("12345", two, sizeof two);
	CHECK(strncmp(one, "seed 12345 choices ", 19) == 0);
	if (strcmp(one, two))
		fprintf(stderr, "%s\n%s\n", one, two);
	CHECK(strcmp(one, two) == 0);
	choices_run("12346", two, sizeof two); /* another seed, other choices */
	CHECK(strcmp(one + 19, two + 19) != 0);
}

TEST(seed_differs_by_default)
{
	char one[128], two[128];
	choices_run(NULL, one, sizeof one);
	choices_run(NULL, two, sizeof two);
	/* Two 64-bit seeds, and 64 choices: equal by chance once in 2^64. */
	if (!strcmp(one, two))
		fprintf(stderr, "%s\n%s\n", one, two);
	CHECK(strcmp(one, two) != 0);
	CHECK(strcmp(strstr(one, " choices"), strstr(two, " choices")) != 0);
}

TEST(seed_bad_value_ignored)
{
	static char buf[4096];
	setenv("HERD_WORKERS", "1", 1);
	setenv("HERD_SEED", "12x", 1);
	test_child_ok(test_child(choices_child, buf, sizeof buf), buf);
	CHECK(strstr(buf, "herd: ignoring HERD_SEED=12x: expected a number") != NULL);
	CHECK(strstr(buf, "seed 12 ") == NULL); /* not read as 12 */
	CHECK(strstr(buf, " choices ") != NULL);
}
