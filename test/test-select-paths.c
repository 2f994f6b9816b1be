/*
 * test-select-paths.c - herd_select takes a small path for one to four
 * cases and the general path for more (select.c): the same behaviour
 * through both. Each scenario runs with its cases alone (the small path)
 * and spread among NULL cases to more than four (the general path, with
 * the cases' indices moved), on one worker (whose channel locks are solo
 * locks) and on the default number of workers: a blocked select woken by a
 * partner's send or receive, by a close, by its deadline or by
 * cancellation, with no waiter left behind; one channel in two cases; one
 * case alone; and the choice among ready cases, uniform over the ready
 * ones and never a case that is not ready.
 */
#include "test.h"

#include <stdatomic.h>

/* NULL cases added for the general path: 1 to 4 cases become 7 to 10. */
#define PAD 6
#define CASES_MAX (4 + PAD)

/*
 * Copies cs[0..n) into out, alone (pad 0) or at the odd indices among pad
 * NULL cases; where[k] is the index of cs[k] in out. Returns the count.
 */
static size_t spread(herd_case *out, const herd_case *cs, size_t n, size_t pad,
		     size_t *where)
{
	static long unused;
	size_t total = n + pad;
	for (size_t i = 0; i < total; i++)
		out[i] = (herd_case)HERD_CASE_RECV(NULL, &unused);
	for (size_t k = 0; k < n; k++) {
		where[k] = pad ? 2 * k + 1 : k;
		out[where[k]] = cs[k];
	}
	return total;
}

/* Runs scenario(&pad) for pad 0 and PAD, on one worker and on the default. */
static void both_paths(herd_fn scenario)
{
	static const size_t pads[] = {0, PAD};
	for (unsigned workers = 0; workers <= 1; workers++)
		for (size_t i = 0; i < 2; i++) {
			size_t pad = pads[i];
			test_run(workers, scenario, &pad);
		}
}

/* No task waits on ch: a send and a receive that cannot wait both fail. */
static void check_no_waiter(herd_chan *ch)
{
	long v = 0;
	CHECK_EQ(herd_chan_try_send(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
}

/* ------------------------------------------------------------------ */

static void late_sender(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 66;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_chan_send(ch, &v, HERD_FOREVER));
}

static void late_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	CHECK_EQ(v, 77);
}

static void partner_main(void *arg)
{
	size_t pad = *(size_t *)arg, where[4], n;
	herd_chan *a = make_chan(sizeof(long), 0), *never = make_chan(sizeof(long), 0);
	herd_case cs[CASES_MAX];
	long got = 0, out = 77;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	/* A receive case, woken by a send that comes later. */
	CHECK_OK(HERD_GO(s, late_sender, a));
	herd_case recv[] = {HERD_CASE_RECV(never, &got), HERD_CASE_RECV(a, &got)};
	n = spread(cs, recv, 2, pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[1]);
	CHECK_EQ(cs[where[1]].result, 0);
	CHECK_EQ(got, 66);
	/* A send case, woken by a receive that comes later. */
	CHECK_OK(HERD_GO(s, late_receiver, a));
	herd_case send[] = {HERD_CASE_SEND(never, &out), HERD_CASE_SEND(a, &out)};
	n = spread(cs, send, 2, pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[1]);
	CHECK_EQ(cs[where[1]].result, 0);
	/* One case alone. */
	CHECK_OK(HERD_GO(s, late_sender, a));
	got = 0;
	n = spread(cs, &recv[1], 1, pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[0]);
	CHECK_EQ(got, 66);
	CHECK_OK(herd_scope_close(s));
	check_no_waiter(never);
	check_no_waiter(a);
	CHECK_OK(herd_chan_free(a));
	CHECK_OK(herd_chan_free(never));
}

/* A blocked select is woken by a send or a receive on one of its channels,
 * and leaves no waiter on the others. */
TEST(partner_wakes)
{
	both_paths(partner_main);
}

/* ------------------------------------------------------------------ */

static void late_closer(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_chan_close(ch));
}

static void close_main(void *arg)
{
	size_t pad = *(size_t *)arg, where[4], n;
	herd_chan *b = make_chan(sizeof(long), 0), *c = make_chan(sizeof(long), 0);
	herd_chan *never = make_chan(sizeof(long), 0);
	herd_case cs[CASES_MAX];
	long got = -1, out = 5;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, late_closer, b));
	herd_case recv[] = {HERD_CASE_RECV(never, &got), HERD_CASE_RECV(b, &got)};
	n = spread(cs, recv, 2, pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[1]);
	CHECK_EQ(cs[where[1]].result, HERD_ECLOSED);
	CHECK_EQ(got, 0);
	CHECK_OK(HERD_GO(s, late_closer, c));
	herd_case send[] = {HERD_CASE_SEND(c, &out), HERD_CASE_RECV(never, &got)};
	n = spread(cs, send, 2, pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[0]);
	CHECK_EQ(cs[where[0]].result, HERD_ECLOSED);
	CHECK_OK(herd_scope_close(s));
	check_no_waiter(never);
	CHECK_OK(herd_chan_free(b));
	CHECK_OK(herd_chan_free(c));
	CHECK_OK(herd_chan_free(never));
}

/* A close wakes a select blocked receiving or sending on the channel. */
TEST(close_wakes)
{
	both_paths(close_main);
}

/* ------------------------------------------------------------------ */

static atomic_int canceled_selects;

struct pair {
	herd_chan *empty, *full;
	size_t pad;
};

static void canceled_select(void *p)
{
	struct pair *c = p;
	size_t where[2], n;
	long v = 1;
	herd_case cs[CASES_MAX];
	herd_case blocked[] = {HERD_CASE_RECV(c->empty, &v), HERD_CASE_SEND(c->full, &v)};
	n = spread(cs, blocked, 2, c->pad, where);
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), HERD_ECANCELED);
	atomic_fetch_add(&canceled_selects, 1);
}

static void deadline_main(void *arg)
{
	size_t pad = *(size_t *)arg, where[2], n;
	herd_chan *a = make_chan(sizeof(long), 0), *full = make_chan(sizeof(long), 1);
	herd_case cs[CASES_MAX];
	long v = 3;
	CHECK_OK(herd_chan_send(full, &v, HERD_FOREVER));
	herd_case blocked[] = {HERD_CASE_RECV(a, &v), HERD_CASE_SEND(full, &v)};
	n = spread(cs, blocked, 2, pad, where);
	int64_t d = herd_deadline(10 * HERD_MSEC);
	CHECK_EQ(herd_select(cs, n, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_select(cs, n, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_chan_len(full), 1);
	check_no_waiter(a);
	/* Cancellation ends a blocked select. */
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	atomic_store(&canceled_selects, 0);
	struct pair c = {a, full, pad};
	CHECK_OK(HERD_GO(s, canceled_select, c));
	CHECK_OK(HERD_GO(s, canceled_select, c));
	test_wait_parked(2);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&canceled_selects), 2);
	CHECK_EQ(herd_chan_len(full), 1);
	check_no_waiter(a);
	CHECK_OK(herd_chan_free(a)); /* no waiter left behind */
	CHECK_OK(herd_chan_free(full));
}

/* A select gives up at its deadline and on cancellation, and leaves no
 * waiter behind. */
TEST(deadline_and_cancel)
{
	both_paths(deadline_main);
}

/* ------------------------------------------------------------------ */

static void twice_receiver(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	long v = 0;
	CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	CHECK_EQ(v, 21);
}

static void twice_main(void *arg)
{
	size_t pad = *(size_t *)arg, where[3], n;
	herd_chan *b = make_chan(sizeof(long), 0);
	herd_case cs[CASES_MAX];
	long got = -1, out = 21;
	herd_case bc[] = {HERD_CASE_RECV(b, &got), HERD_CASE_SEND(b, &out)};
	n = spread(cs, bc, 2, pad, where);
	/* It does not meet itself... */
	CHECK_EQ(herd_select(cs, n, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* ...and a receiver that comes later takes its send. */
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, twice_receiver, b));
	CHECK_EQ(herd_select(cs, n, HERD_FOREVER), (int)where[1]);
	CHECK_OK(herd_scope_close(s));
	check_no_waiter(b);
	/* Three cases on one buffered channel with a value and room: all
	 * ready, each taken some time. */
	herd_chan *r = make_chan(sizeof(long), 4);
	long v = 1;
	CHECK_OK(herd_chan_send(r, &v, HERD_FOREVER));
	herd_case rc3[] = {HERD_CASE_RECV(r, &got), HERD_CASE_SEND(r, &out),
			   HERD_CASE_RECV(r, &got)};
	n = spread(cs, rc3, 3, pad, where);
	int seen = 0;
	for (int i = 0; i < 300; i++) {
		int k = herd_select(cs, n, HERD_NOWAIT);
		int which = k == (int)where[0] ? 0 : k == (int)where[1] ? 1 : 2;
		CHECK(k == (int)where[which]);
		seen |= 1 << which;
		/* Keep a value and room. */
		if (herd_chan_len(r) == 0)
			CHECK_OK(herd_chan_send(r, &v, HERD_NOWAIT));
		if (herd_chan_len(r) == 4)
			CHECK_OK(herd_chan_recv(r, &got, HERD_NOWAIT));
	}
	CHECK_EQ(seen, 7);
	CHECK_OK(herd_chan_free(r));
	CHECK_OK(herd_chan_free(b));
}

/* One channel in several cases, unbuffered and buffered. */
TEST(one_channel_twice)
{
	both_paths(twice_main);
}

/* ------------------------------------------------------------------ */

#define CHOICES 30000

/* CHOICES selects of cs (n cases, those in `ready` refilled after each
 * choice from refill[]); each ready case is chosen within 20% of its share,
 * no other ever. */
static void choose(herd_case *cs, size_t n, const size_t *where, size_t nreal,
		   unsigned ready, herd_chan **refill)
{
	long count[CASES_MAX] = {0}, v = 1;
	unsigned nready = (unsigned)__builtin_popcount(ready);
	for (int i = 0; i < CHOICES; i++) {
		int k = herd_select(cs, n, HERD_NOWAIT);
		CHECK(k >= 0 && (size_t)k < n);
		count[k]++;
		for (size_t r = 0; r < nreal; r++)
			if ((size_t)k == where[r])
				CHECK_OK(herd_chan_send(refill[r], &v, HERD_NOWAIT));
	}
	for (size_t r = 0; r < nreal; r++) {
		long c = count[where[r]];
		printf("case %zu (index %zu): %ld\n", r, where[r], c);
		if (ready >> r & 1)
			CHECK(c >= CHOICES * 8 / (10 * (long)nready) &&
			      c <= CHOICES * 12 / (10 * (long)nready));
		else
			CHECK_EQ(c, 0);
	}
}

static void choice_main(void *arg)
{
	size_t pad = *(size_t *)arg, where[4], n;
	herd_chan *ch[4];
	herd_case cs[CASES_MAX];
	long v = 1, got;
	for (int i = 0; i < 4; i++)
		ch[i] = make_chan(sizeof(long), 1);
	herd_chan *never = make_chan(sizeof(long), 0);
	for (int i = 0; i < 3; i++)
		CHECK_OK(herd_chan_send(ch[i], &v, HERD_FOREVER));
	/* Three ready of three. */
	herd_case three[] = {HERD_CASE_RECV(ch[0], &got), HERD_CASE_RECV(ch[1], &got),
			     HERD_CASE_RECV(ch[2], &got)};
	n = spread(cs, three, 3, pad, where);
	choose(cs, n, where, 3, 7, ch);
	/* Three ready of four, the one not ready (nobody sends on `never`)
	 * in each place in turn. */
	for (size_t hole = 0; hole < 4; hole++) {
		herd_case four[4];
		herd_chan *refill[4];
		for (size_t k = 0, r = 0; k < 4; k++) {
			refill[k] = k == hole ? never : ch[r++];
			four[k] = (herd_case)HERD_CASE_RECV(refill[k], &got);
		}
		n = spread(cs, four, 4, pad, where);
		choose(cs, n, where, 4, 15u & ~(1u << hole), refill);
	}
	/* Two ready of four: an empty buffered channel is not ready either. */
	herd_case two[] = {HERD_CASE_RECV(ch[3], &got), HERD_CASE_RECV(ch[0], &got),
			   HERD_CASE_RECV(never, &got), HERD_CASE_RECV(ch[1], &got)};
	herd_chan *refill2[] = {ch[3], ch[0], never, ch[1]};
	n = spread(cs, two, 4, pad, where);
	choose(cs, n, where, 4, 2 | 8, refill2);
	check_no_waiter(never);
	for (int i = 0; i < 4; i++)
		CHECK_OK(herd_chan_free(ch[i]));
	CHECK_OK(herd_chan_free(never));
}

/* Among the ready cases each is as likely; a case that is not ready, an
 * unbuffered channel with nobody on the other side or an empty buffered
 * one, is never chosen, wherever it is. */
TEST(choice_among_ready)
{
	both_paths(choice_main);
}
