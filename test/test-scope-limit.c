/*
 * test-scope-limit.c - bounded parallelism, as Go's errgroup.SetLimit
 * (herd_scope_limit, herd_go_until). Covers: never more tasks alive than
 * the limit, and every spawn runs in the end; a spawn into a full scope
 * with HERD_NOWAIT (Go's TryGo) and with a deadline; a waiting spawn ended
 * by the cancellation of the target scope or of its own; waiting spawns
 * served in the order they came; lowering, raising and removing the limit;
 * tasks of nested scopes not counted; spawns from a thread that is not a
 * task; the errors.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

/* Result slots hold this until the task stores its herd call's result. */
#define PENDING 1
/* Far enough never to pass in a correct run. */
#define LONG_WAIT (20 * HERD_SEC)

/* Tasks alive in the code under test, and the most at once. */
static atomic_int alive, alive_max, ran;

static void alive_enter(void)
{
	int n = atomic_fetch_add(&alive, 1) + 1;
	int m = atomic_load(&alive_max);
	while (n > m && !atomic_compare_exchange_weak(&alive_max, &m, n))
		;
	atomic_fetch_add(&ran, 1);
}

/* A task that holds its place until a value comes on *ch (or it is
 * canceled). */
static void holder_task(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	int v;

	alive_enter();
	int rc = herd_chan_recv(ch, &v, herd_deadline(LONG_WAIT));
	CHECK(rc == 0 || rc == HERD_ECANCELED);
	atomic_fetch_sub(&alive, 1);
}

/* Ends one holder reading ch. */
static void release_one(herd_chan *ch)
{
	int v = 0;
	CHECK_OK(herd_chan_send(ch, &v, herd_deadline(LONG_WAIT)));
}

static void counted_task(void *p)
{
	alive_enter();
	atomic_fetch_sub(&alive, 1);
}

/* ------------------------------------------------------------------ */

#define BOUND_N 50
#define BOUND_LIMIT 3

static void bound_task(void *p)
{
	alive_enter();
	/* Parks, until the limit has been reached once (on a busy machine the
	 * first tasks could otherwise end before the third is spawned). */
	int64_t give_up = herd_deadline(HERD_SEC);
	do
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	while (atomic_load(&alive_max) < BOUND_LIMIT && herd_now() < give_up);
	atomic_fetch_sub(&alive, 1);
}

static void bound_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_limit(s, BOUND_LIMIT));
	for (int i = 0; i < BOUND_N; i++)
		CHECK_OK(herd_go(s, bound_task, NULL, 0)); /* waits when full */
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, BOUND_N);
	CHECK(alive_max <= BOUND_LIMIT);
	/* The 3 places were used at once. */
	CHECK_EQ(alive_max, BOUND_LIMIT);
}

/* With limit 3, 50 spawned tasks that park: never more than 3 alive at
 * once, and all 50 run. */
TEST(limit_bounds_alive)
{
	test_run(4, bound_main, NULL);
}

/* ------------------------------------------------------------------ */

static void nowait_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go_until(s, holder_task, &ch, sizeof ch, HERD_NOWAIT));
	/* TryGo on a full scope: at once, nothing spawned. */
	int64_t t0 = herd_now();
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK(herd_now() - t0 < HERD_SEC);
	/* With a deadline: waits for it, not less. */
	int64_t d = herd_deadline(50 * HERD_MSEC);
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	release_one(ch);
	CHECK_EQ(herd_scope_wait(s, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(ran, 1);
	/* A place is free: TryGo succeeds. */
	CHECK_OK(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 2);
	CHECK_OK(herd_chan_free(ch));
}

/* A full scope: HERD_NOWAIT gives HERD_ETIMEDOUT at once, a deadline at
 * the deadline; nothing is spawned either way. */
TEST(full_nowait_and_deadline)
{
	test_run(2, nowait_main, NULL);
}

/* ------------------------------------------------------------------ */

struct spawner {
	herd_scope *target;
	int index;
	atomic_int *rc;
};

static atomic_int order_next;
static int order_seen[16];

static void order_task(void *p)
{
	int i = *(int *)p;

	order_seen[atomic_fetch_add(&order_next, 1)] = i;
	atomic_fetch_add(&ran, 1);
}

/* Spawns order_task(index) into target, waiting for a place. */
static void spawner_task(void *p)
{
	struct spawner sp = *(struct spawner *)p;

	atomic_store(sp.rc, HERD_GO(sp.target, order_task, sp.index));
}

static void start_spawner(herd_scope *in, herd_scope *target, int i, atomic_int *rc)
{
	*rc = PENDING;
	struct spawner sp = { target, i, rc };
	CHECK_OK(HERD_GO(in, spawner_task, sp));
}

/* ------------------------------------------------------------------ */

static atomic_int ct_rc = PENDING, co_rc = PENDING;

static void cancel_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s, *sp;

	/* The target is canceled while a spawn waits for it. */
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_open(&sp));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go(s, holder_task, &ch, sizeof ch));
	start_spawner(sp, s, 1, &ct_rc);
	test_wait_parked(2);
	CHECK_EQ(ct_rc, PENDING);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_scope_close(sp), 0);
	CHECK_EQ(ct_rc, HERD_ECANCELED);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 1); /* the holder only */

	/* The spawner's own scope is canceled while it waits. */
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_open(&sp));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go(s, holder_task, &ch, sizeof ch));
	start_spawner(sp, s, 2, &co_rc);
	test_wait_parked(2);
	CHECK_OK(herd_scope_cancel(sp));
	CHECK_EQ(herd_scope_close(sp), 0);
	CHECK_EQ(co_rc, HERD_ECANCELED);
	/* The target was not canceled: its holder is still there. */
	CHECK_EQ(alive, 1);
	release_one(ch);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 2);
	CHECK_OK(herd_chan_free(ch));
}

/* A waiting spawn ends with HERD_ECANCELED when the target scope, or the
 * spawner's own, is canceled; nothing is spawned. */
TEST(cancel_while_waiting)
{
	test_run(2, cancel_main, NULL);
}

/* ------------------------------------------------------------------ */

#define FIFO_N 6

static atomic_int fifo_rc[FIFO_N];

static void fifo_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s, *sp;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_open(&sp));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go(s, holder_task, &ch, sizeof ch));
	/* Each spawner waits before the next one comes. */
	for (int i = 0; i < FIFO_N; i++) {
		start_spawner(sp, s, i, &fifo_rc[i]);
		test_wait_parked((uint64_t)(2 + i));
	}
	release_one(ch);
	CHECK_EQ(herd_scope_close(sp), 0);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(order_next, FIFO_N);
	for (int i = 0; i < FIFO_N; i++) {
		CHECK_EQ(fifo_rc[i], 0);
		CHECK_EQ(order_seen[i], i);
	}
	CHECK_OK(herd_chan_free(ch));
}

/* Spawns that wait for a place get one in the order they came. */
TEST(waiters_fifo)
{
	test_run(4, fifo_main, NULL);
}

/* ------------------------------------------------------------------ */

static void lower_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_limit(s, 3));
	for (int i = 0; i < 3; i++)
		CHECK_OK(herd_go_until(s, holder_task, &ch, sizeof ch, HERD_NOWAIT));
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* Lowered below the three running: none gets through until one is
	 * left, then none until it too has ended. */
	CHECK_OK(herd_scope_limit(s, 1));
	release_one(ch);
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, herd_deadline(30 * HERD_MSEC)),
		 HERD_ETIMEDOUT);
	release_one(ch);
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, herd_deadline(30 * HERD_MSEC)),
		 HERD_ETIMEDOUT);
	CHECK_EQ(ran, 3);
	release_one(ch);
	CHECK_OK(herd_go_until(s, counted_task, NULL, 0, herd_deadline(LONG_WAIT)));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(ran, 4);
	/* Raised: as many more at once. */
	CHECK_OK(herd_scope_limit(s, 2));
	for (int i = 0; i < 2; i++)
		CHECK_OK(herd_go_until(s, holder_task, &ch, sizeof ch, HERD_NOWAIT));
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	release_one(ch);
	release_one(ch);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 6);
	CHECK_OK(herd_chan_free(ch));
}

/* A limit lowered while more tasks run lets no spawn through until fewer
 * than it run; raised, it lets more run. */
TEST(limit_lowered_and_raised)
{
	test_run(2, lower_main, NULL);
}

/* ------------------------------------------------------------------ */

#define REMOVE_N 3

static atomic_int remove_rc[REMOVE_N];

static void remove_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s, *sp;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_open(&sp));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go(s, holder_task, &ch, sizeof ch));
	for (int i = 0; i < REMOVE_N; i++)
		start_spawner(sp, s, i, &remove_rc[i]);
	test_wait_parked(1 + REMOVE_N);
	CHECK_EQ(order_next, 0);
	/* No limit: every waiting spawn goes ahead while the holder holds. */
	CHECK_OK(herd_scope_limit(s, 0));
	CHECK_EQ(herd_scope_close(sp), 0);
	for (int i = 0; i < REMOVE_N; i++)
		CHECK_EQ(remove_rc[i], 0);
	int64_t give_up = herd_deadline(LONG_WAIT);
	while (atomic_load(&order_next) < REMOVE_N && herd_now() < give_up)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	CHECK_EQ(order_next, REMOVE_N);
	CHECK_EQ(alive, 1); /* the holder still holds its place */
	/* And later spawns do not wait either. */
	CHECK_OK(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT));
	release_one(ch);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_OK(herd_chan_free(ch));
}

/* herd_scope_limit(s, 0) removes the limit and wakes the waiting spawns. */
TEST(limit_removed_wakes_waiters)
{
	test_run(2, remove_main, NULL);
}

/* ------------------------------------------------------------------ */

#define NESTED_N 5

static herd_chan *nested_ch;

static void nested_owner(void *p)
{
	herd_scope *inner;

	CHECK_OK(herd_scope_open(&inner));
	for (int i = 0; i < NESTED_N; i++)
		CHECK_OK(herd_go_until(inner, holder_task, &nested_ch, sizeof nested_ch,
				       HERD_NOWAIT));
	CHECK_EQ(herd_scope_close(inner), 0);
}

static void nested_main(void *arg)
{
	herd_scope *s;

	nested_ch = make_chan(sizeof(int), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_limit(s, 1));
	CHECK_OK(herd_go(s, nested_owner, NULL, 0));
	test_wait_parked(1 + NESTED_N);
	/* The owner holds s's one place; its own tasks do not count. */
	CHECK_EQ(alive, NESTED_N);
	CHECK_EQ(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT), HERD_ETIMEDOUT);
	for (int i = 0; i < NESTED_N; i++)
		release_one(nested_ch);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_OK(herd_chan_free(nested_ch));
}

/* The limit counts the tasks spawned into the scope, not those of the
 * scopes nested in it. */
TEST(nested_not_counted)
{
	test_run(2, nested_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_chan *thr_ch;
static atomic_int thr_rc[4];

static void *thr_thread(void *arg)
{
	herd_scope *s = arg;

	/* One place of two is free: taken without waiting (by a holder, so
	 * that it stays taken). */
	atomic_store(&thr_rc[0], herd_go(s, holder_task, &thr_ch, sizeof thr_ch));
	/* Then full: a thread cannot wait for a place. */
	atomic_store(&thr_rc[1], herd_go(s, counted_task, NULL, 0));
	atomic_store(&thr_rc[2], herd_go_until(s, counted_task, NULL, 0,
					       herd_deadline(HERD_SEC)));
	atomic_store(&thr_rc[3], herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT));
	return NULL;
}

static int thr_join(void *arg)
{
	return -pthread_join(*(pthread_t *)arg, NULL);
}

static void thr_main(void *arg)
{
	herd_scope *s;
	pthread_t th;

	thr_ch = make_chan(sizeof(int), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_limit(s, 2));
	CHECK_OK(herd_go(s, holder_task, &thr_ch, sizeof thr_ch));
	test_wait_parked(1);
	CHECK(pthread_create(&th, NULL, thr_thread, s) == 0);
	CHECK_OK(herd_blocking(thr_join, &th));
	CHECK_EQ(thr_rc[0], 0);
	CHECK_EQ(thr_rc[1], -EAGAIN);
	CHECK_EQ(thr_rc[2], -EAGAIN);
	CHECK_EQ(thr_rc[3], HERD_ETIMEDOUT);
	release_one(thr_ch);
	release_one(thr_ch);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 2); /* the holders only */
	CHECK_OK(herd_chan_free(thr_ch));
}

/* From a thread that is not a task: a free place is taken, a full scope
 * gives -EAGAIN (HERD_ETIMEDOUT with HERD_NOWAIT). */
TEST(thread_spawn_full)
{
	test_run(2, thr_main, NULL);
}

/* ------------------------------------------------------------------ */

static void errors_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_limit(NULL, 1), -EINVAL);
	CHECK_EQ(herd_scope_limit(s, -1), -EINVAL);
	CHECK_EQ(herd_scope_limit(s, INT32_MIN), -EINVAL);
	/* 0 on a scope that never had a limit: nothing to remove. */
	CHECK_OK(herd_scope_limit(s, 0));
	CHECK_OK(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT));
	CHECK_EQ(herd_go_until(s, NULL, NULL, 0, HERD_NOWAIT), -EINVAL);
	/* The function entry points. */
	CHECK_OK((herd_go_until)(s, counted_task, NULL, 0, HERD_FOREVER));
	/* The largest limit is no limit in practice. */
	CHECK_OK(herd_scope_limit(s, INT32_MAX));
	for (int i = 0; i < 100; i++)
		CHECK_OK(herd_go_until(s, counted_task, NULL, 0, HERD_NOWAIT));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(ran, 102);
}

/* herd_scope_limit refuses NULL and negative limits. */
TEST(limit_errors)
{
	CHECK_EQ(herd_scope_limit(NULL, 1), -EINVAL);
	test_run(2, errors_main, NULL);
}
