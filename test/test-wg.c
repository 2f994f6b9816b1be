/*
 * test-wg.c - wait groups, as ported Go code uses them. Covers the counter
 * (herd_wg_add's result, the -ERANGE bounds that leave it unchanged), waiting
 * (until zero, with a deadline, with HERD_NOWAIT, by many waiters at once),
 * herd_wg_free while a task waits, reuse of one wait group for the Go
 * post-mortem's add/go/done/wait pattern, and the calls' argument errors.
 */
#include "test.h"

#include <stdatomic.h>

#define PENDING 1

static herd_wg *new_wg(int count)
{
	herd_wg *wg;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, count), count);
	return wg;
}

/* ------------------------------------------------------------------ */

static atomic_uint basic_results;

static void basic_task(void *p)
{
	herd_wg *wg = *(herd_wg **)p;
	int rc;

	CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	rc = herd_wg_done(wg);
	CHECK(rc >= 0 && rc <= 2);
	atomic_fetch_or(&basic_results, 1u << rc);
}

static void basic_main(void *arg)
{
	herd_wg *wg = arg;
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < 3; i++)
		CHECK_OK(HERD_GO(s, basic_task, wg));
	CHECK_EQ(herd_wg_wait(wg, HERD_FOREVER), 0);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	CHECK_OK(herd_scope_close(s));
	/* The three done() calls returned 2, 1 and 0 (checked once the tasks
	 * have ended: the last one records its result after done() returns). */
	CHECK_EQ(basic_results, 7);
}

/* add returns the new counter; wait returns 0 once done() brought it to zero. */
TEST(wg_basic)
{
	herd_wg *wg;

	/* Creating and counting work from any thread. */
	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	CHECK_EQ(herd_wg_add(wg, 2), 2);
	CHECK_EQ(herd_wg_add(wg, 1), 3);
	test_run(4, basic_main, wg);
	CHECK_EQ(herd_wg_free(wg), 0);
}

/* ------------------------------------------------------------------ */

static void neg_main(void *arg)
{
	herd_wg *wg = arg;

	CHECK_EQ(herd_wg_wait(wg, HERD_NOWAIT), 0);
	CHECK_EQ(herd_wg_done(wg), -ERANGE);
	CHECK_EQ(herd_wg_wait(wg, HERD_NOWAIT), 0);
	CHECK_EQ(herd_wg_add(wg, 2), 2);
	CHECK_EQ(herd_wg_add(wg, -3), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), 2);
	CHECK_EQ(herd_wg_wait(wg, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_add(wg, -2), 0);
	CHECK_EQ(herd_wg_wait(wg, HERD_NOWAIT), 0);
}

/* A counter never goes below zero or above INT32_MAX; a refused add changes nothing. */
TEST(wg_negative)
{
	herd_wg *wg;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, -1), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	test_run(2, neg_main, wg);
	CHECK_EQ(herd_wg_add(wg, 2), 2);
	CHECK_EQ(herd_wg_add(wg, INT32_MAX), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, INT32_MAX - 2), INT32_MAX);
	CHECK_EQ(herd_wg_add(wg, 1), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, INT32_MIN), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, -INT32_MAX), 0);
	CHECK_EQ(herd_wg_add(wg, INT32_MIN), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	CHECK_OK(herd_wg_free(wg));
}

/* ------------------------------------------------------------------ */

static void dl_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	int64_t d = herd_deadline(30 * HERD_MSEC);

	CHECK_EQ(herd_wg_wait(wg, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_wg_add(wg, 0), 1); /* unchanged */
	d = herd_deadline(30 * HERD_MSEC);
	CHECK_EQ(herd_wg_wait(wg, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_EQ(herd_wg_wait(wg, herd_deadline(30 * HERD_MSEC)), 0);
	CHECK_OK(herd_wg_free(wg));
}

/* A wait gives up at its deadline with HERD_ETIMEDOUT, never before it. */
TEST(wg_wait_deadline)
{
	test_run(2, dl_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int nw_released;

struct nw_arg {
	herd_wg *busy, *zero;
};

static void nw_task(void *p)
{
	struct nw_arg a = *(struct nw_arg *)p;

	while (!atomic_load(&nw_released))
		herd_yield();
	/* The scope is canceled now: HERD_NOWAIT is still no cancellation point. */
	CHECK_EQ(herd_canceled(), 1);
	CHECK_EQ(herd_wg_wait(a.busy, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_wait(a.zero, HERD_NOWAIT), 0);
	atomic_store(&nw_released, 2);
}

static void nw_main(void *arg)
{
	struct nw_arg a = { new_wg(1), new_wg(0) };
	herd_scope *s;

	/* Nothing would ever release a wait that blocked here. */
	CHECK_EQ(herd_wg_wait(a.busy, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_wait(a.zero, HERD_NOWAIT), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, nw_task, &a, sizeof a));
	CHECK_OK(herd_scope_cancel(s));
	atomic_store(&nw_released, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(nw_released, 2);
	CHECK_EQ(herd_wg_done(a.busy), 0);
	CHECK_OK(herd_wg_free(a.busy));
	CHECK_OK(herd_wg_free(a.zero));
}

/* HERD_NOWAIT on a non-zero counter returns HERD_ETIMEDOUT without blocking. */
TEST(wg_nowait)
{
	test_run(2, nw_main, NULL);
}

/* ------------------------------------------------------------------ */

#define MANY 100

static atomic_int many_woken, many_bad;

static void many_waiter(void *p)
{
	if (herd_wg_wait(*(herd_wg **)p, HERD_FOREVER) != 0)
		atomic_fetch_add(&many_bad, 1);
	atomic_fetch_add(&many_woken, 1);
}

static void many_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < MANY; i++)
		CHECK_OK(HERD_GO(s, many_waiter, wg));
	test_wait_parked(MANY);
	CHECK_EQ(many_woken, 0);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_EQ(herd_scope_wait(s, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(many_woken, MANY);
	CHECK_EQ(many_bad, 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(wg));
}

/* The done() that brings the counter to zero wakes every waiter. */
TEST(wg_many_waiters)
{
	test_run(4, many_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int busy_rc = PENDING;

static void busy_waiter(void *p)
{
	atomic_store(&busy_rc, herd_wg_wait(*(herd_wg **)p, HERD_FOREVER));
}

static void busy_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, busy_waiter, wg));
	test_wait_parked(1);
	CHECK_EQ(herd_wg_free(wg), -EBUSY);
	/* Nothing was freed: the wait group still works. */
	CHECK_EQ(herd_wg_add(wg, 0), 1);
	CHECK_EQ(busy_rc, PENDING);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(busy_rc, 0);
	CHECK_EQ(herd_wg_free(wg), 0);
	CHECK_EQ(herd_wg_free(NULL), 0);
}

/* Freeing a wait group a task waits on is -EBUSY; NULL is ignored. */
TEST(wg_free_busy)
{
	test_run(2, busy_main, NULL);
}

/* ------------------------------------------------------------------ */

#define REUSE_N (1000 / TEST_SCALE)

static atomic_int reuse_count[2];
static atomic_int reuse_seen[2][REUSE_N];

struct reuse_arg {
	herd_wg *wg;
	int round, v;
};

static void reuse_task(void *p)
{
	struct reuse_arg a = *(struct reuse_arg *)p;

	CHECK(a.v >= 0 && a.v < REUSE_N);
	if (a.v % 7 == 0)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	atomic_fetch_add(&reuse_seen[a.round][a.v], 1);
	atomic_fetch_add(&reuse_count[a.round], 1);
	CHECK_OK(herd_wg_done(a.wg));
}

static void reuse_main(void *arg)
{
	herd_wg *wg;
	herd_scope *s;
	struct reuse_arg a;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_OK(herd_scope_open(&s));
	for (int round = 0; round < 2; round++) {
		for (int v = 0; v < REUSE_N; v++) {
			a = (struct reuse_arg){ wg, round, v };
			CHECK_OK(herd_wg_add(wg, 1));
			CHECK_OK(herd_go(s, reuse_task, &a, sizeof a));
		}
		CHECK_EQ(herd_wg_wait(wg, HERD_FOREVER), 0);
		/* The wait alone guarantees every task's work is done. */
		CHECK_EQ(reuse_count[round], REUSE_N);
		for (int v = 0; v < REUSE_N; v++)
			CHECK_EQ(reuse_seen[round][v], 1);
	}
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(wg));
}

/* One wait group serves two rounds of add/go/done/wait with exact counts. */
TEST(wg_reuse)
{
	test_run(4, reuse_main, NULL);
}

/* ------------------------------------------------------------------ */

static void inv_main(void *arg)
{
	CHECK_EQ(herd_wg_wait(NULL, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_wg_wait(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_wg_add(NULL, 1), -EINVAL);
	CHECK_EQ(herd_wg_done(NULL), -EINVAL);
	CHECK_EQ(herd_wg_new(NULL), -EINVAL);
}

/* NULL wait groups are -EINVAL; waiting outside a task is -EPERM. */
TEST(wg_invalid)
{
	herd_wg *wg;

	CHECK_EQ(herd_wg_new(NULL), -EINVAL);
	CHECK_EQ(herd_wg_add(NULL, 1), -EINVAL);
	CHECK_EQ(herd_wg_done(NULL), -EINVAL);
	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	CHECK_EQ(herd_wg_wait(wg, herd_deadline(10 * HERD_MSEC)), -EPERM);
	CHECK_EQ(herd_wg_wait(wg, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_wg_add(wg, 0), 1);
	test_run(2, inv_main, NULL);
	CHECK_OK(herd_wg_free(wg));
}

/* ------------------------------------------------------------------ */

#define UF_ROUNDS (2000 / TEST_SCALE)

static atomic_int uf_released;

/* Counts the main task's group down once the main task waits on it. */
static void uf_doner(void *p)
{
	herd_wg *wg = *(herd_wg **)p;

	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_USEC)));
	CHECK_EQ(herd_wg_done(wg), 0);
	atomic_store(&uf_released, 1);
}

static void uf_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		herd_wg *wg = calloc(1, sizeof *wg);

		CHECK(wg != NULL);
		atomic_store(&uf_released, 0);
		CHECK_EQ(herd_wg_add(wg, 1), 1);
		CHECK_OK(HERD_GO(NULL, uf_doner, wg));
		CHECK_EQ(herd_wg_wait(wg, HERD_FOREVER), 0);
		test_free_released(wg, sizeof *wg, &uf_released);
	}
}

/* A waiter may free the group as soon as its wait returns: the done that
 * reached zero touches it no more once the waiter can run. */
TEST(wg_done_then_free)
{
	test_run(2, uf_main, NULL);
}
