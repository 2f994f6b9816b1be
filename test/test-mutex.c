/*
 * test-mutex.c - task-aware mutexes, and wait groups as values. Covers
 * zeroed, static and stack mutexes, mutual exclusion under contention
 * across workers, deadlines (the mutex is left as it was, and waiters that
 * give up lose no wake for the others), that locking is not a
 * cancellation point, bad input (NULL, unlocking what is not locked, which
 * changes nothing), unlocking by another task or a plain thread, the
 * fairness of handoff mode (a waiter gets the mutex while other tasks lock
 * and unlock it in a loop, measured in their iterations), that parks
 * racing unlocks lose no wake, and static, stack and calloc'ed wait
 * groups. test-rwmutex.c has the read-write mutexes.
 */
#include "locks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------ */

static herd_mutex zv_static = HERD_MUTEX_INIT;

/* The calls on an unlocked mutex m, outside a task or in one. */
static void zv_check(herd_mutex *m, bool task)
{
	CHECK_EQ(herd_mutex_unlock(m), -EPERM);
	CHECK_EQ(herd_mutex_lock(m, HERD_FOREVER), 0);
	CHECK_EQ(herd_mutex_trylock(m), -EBUSY);
	CHECK_EQ(herd_mutex_lock(m, HERD_NOWAIT), HERD_ETIMEDOUT);
	if (task)
		CHECK_EQ(herd_mutex_lock(m, herd_deadline(5 * HERD_MSEC)), HERD_ETIMEDOUT);
	else
		CHECK_EQ(herd_mutex_lock(m, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_mutex_unlock(m), 0);
	CHECK_EQ(herd_mutex_unlock(m), -EPERM);
	CHECK_EQ(herd_mutex_trylock(m), 0);
	CHECK_EQ(herd_mutex_unlock(m), 0);
	CHECK_EQ(herd_mutex_lock(m, HERD_NOWAIT), 0);
	CHECK_EQ(herd_mutex_unlock(m), 0);
}

static void zv_main(void *arg)
{
	herd_mutex stack = {0};
	herd_mutex *heap = calloc(1, sizeof *heap);

	CHECK(heap);
	zv_check(&zv_static, true);
	zv_check(&stack, true);
	zv_check(heap, true);
	free(heap);
}

/* Static, stack and calloc'ed mutexes work from zero bytes, in tasks and
 * outside the runtime; outside a task a lock that would wait is -EPERM. */
TEST(zero_values)
{
	herd_mutex stack = HERD_MUTEX_INIT;

	zv_check(&zv_static, false);
	zv_check(&stack, false);
	test_run(2, zv_main, NULL);
	zv_check(&zv_static, false);
}

/* ------------------------------------------------------------------ */

#define EX_TASKS 64
#define EX_ITERS (4000 / TEST_SCALE)

static herd_mutex ex_mu = HERD_MUTEX_INIT;
static long ex_counter;            /* under ex_mu, deliberately not atomic */
static atomic_int ex_inside, ex_overlaps;

static void ex_task(void *p)
{
	int id = *(int *)p;

	for (int i = 0; i < EX_ITERS; i++) {
		if ((i + id) % 3 == 0)
			CHECK_EQ(herd_mutex_lock(&ex_mu, HERD_FOREVER), 0);
		else if ((i + id) % 3 == 1)
			CHECK_EQ(herd_mutex_lock(&ex_mu, herd_deadline(60 * HERD_SEC)), 0);
		else
			while (herd_mutex_trylock(&ex_mu) != 0)
				herd_yield();
		if (atomic_fetch_add(&ex_inside, 1) != 0)
			atomic_fetch_add(&ex_overlaps, 1);
		long v = ex_counter;
		/* Holding it across a switch: the others must park or wait. */
		if (i % 50 == 0)
			herd_yield();
		ex_counter = v + 1;
		atomic_fetch_sub(&ex_inside, 1);
		CHECK_EQ(herd_mutex_unlock(&ex_mu), 0);
	}
}

static void ex_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < EX_TASKS; i++)
		CHECK_OK(HERD_GO(s, ex_task, i));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(ex_overlaps, 0);
	CHECK_EQ(ex_counter, (long)EX_TASKS * EX_ITERS);
	CHECK_EQ(herd_mutex_unlock(&ex_mu), -EPERM);
}

/* 64 tasks on 4 workers increment a plain counter under the mutex, by
 * lock, lock with a deadline and trylock, some holding it across a
 * yield: no two are ever inside at once and no increment is lost. */
TEST(exclusion)
{
	test_run(4, ex_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_mutex dl_mu = HERD_MUTEX_INIT;
static atomic_int dl_held, dl_release, dl_forever_rc = PENDING;
static atomic_int dl_timeouts;

static void dl_holder(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&dl_mu, HERD_FOREVER), 0);
	atomic_store(&dl_held, 1);
	wait_flag(&dl_release, 1);
	CHECK_EQ(herd_mutex_unlock(&dl_mu), 0);
}

static void dl_short(void *p)
{
	int64_t d = herd_deadline((5 + *(int *)p) * HERD_MSEC);

	CHECK_EQ(herd_mutex_lock(&dl_mu, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	atomic_fetch_add(&dl_timeouts, 1);
}

static void dl_forever(void *arg)
{
	int rc = herd_mutex_lock(&dl_mu, HERD_FOREVER);

	if (rc == 0)
		CHECK_EQ(herd_mutex_unlock(&dl_mu), 0);
	atomic_store(&dl_forever_rc, rc);
}

static void dl_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, dl_holder, NULL, 0));
	wait_flag(&dl_held, 1);
	int64_t d = herd_deadline(30 * HERD_MSEC);
	CHECK_EQ(herd_mutex_lock(&dl_mu, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_mutex_lock(&dl_mu, herd_now() - 1), HERD_ETIMEDOUT);
	CHECK_EQ(herd_mutex_lock(&dl_mu, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* Unchanged: still the holder's. */
	CHECK_EQ(herd_mutex_trylock(&dl_mu), -EBUSY);
	/* Waiters that give up around one that does not. */
	for (int i = 0; i < 10; i++) {
		CHECK_OK(HERD_GO(s, dl_short, i));
		if (i == 4)
			CHECK_OK(herd_go(s, dl_forever, NULL, 0));
	}
	wait_flag(&dl_timeouts, 10);
	CHECK_EQ(dl_forever_rc, PENDING);
	atomic_store(&dl_release, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(dl_forever_rc, 0);
	CHECK_EQ(herd_mutex_lock(&dl_mu, herd_deadline(HERD_SEC)), 0);
	CHECK_EQ(herd_mutex_unlock(&dl_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&dl_mu), -EPERM);
}

/* A lock gives up at its deadline (never before) with HERD_ETIMEDOUT and
 * the mutex still its holder's; waiters that give up lose no wake for
 * one that waits on. */
TEST(deadline)
{
	test_run(2, dl_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_mutex nc_mu = HERD_MUTEX_INIT;
static atomic_int nc_rc = PENDING, nc_dl_rc = PENDING;

static void nc_task(void *arg)
{
	CHECK_OK(herd_scope_cancel(herd_scope_current()));
	CHECK_EQ(herd_canceled(), 1);
	atomic_store(&nc_dl_rc, herd_mutex_lock(&nc_mu, herd_deadline(10 * HERD_MSEC)));
	int rc = herd_mutex_lock(&nc_mu, HERD_FOREVER);
	atomic_store(&nc_rc, rc);
	if (rc == 0)
		CHECK_EQ(herd_mutex_unlock(&nc_mu), 0);
}

static void nc_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_mutex_lock(&nc_mu, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, nc_task, NULL, 0));
	for (int64_t give_up = herd_deadline(20 * HERD_SEC); nc_dl_rc == PENDING;) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	CHECK_EQ(nc_dl_rc, HERD_ETIMEDOUT);
	test_wait_parked(1);
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	CHECK_EQ(nc_rc, PENDING);
	CHECK_EQ(herd_mutex_unlock(&nc_mu), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(nc_rc, 0);
}

/* Locking is not a cancellation point: a task of a canceled scope waits
 * for the mutex (and gives up at its deadline with HERD_ETIMEDOUT). */
TEST(not_cancellation_point)
{
	test_run(2, nc_main, NULL);
}

/* ------------------------------------------------------------------ */

static void bad_main(void *arg)
{
	herd_mutex m = HERD_MUTEX_INIT;

	CHECK_EQ(herd_mutex_lock(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_mutex_lock(NULL, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_mutex_trylock(NULL), -EINVAL);
	CHECK_EQ(herd_mutex_unlock(NULL), -EINVAL);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(herd_mutex_unlock(&m), -EPERM);
		CHECK_EQ(herd_mutex_lock(&m, HERD_FOREVER), 0);
		CHECK_EQ(herd_mutex_unlock(&m), 0);
	}
	CHECK_EQ(herd_mutex_unlock(&m), -EPERM);
	CHECK_EQ(herd_mutex_trylock(&m), 0);
	CHECK_EQ(herd_mutex_unlock(&m), 0);
}

/* NULL is -EINVAL; unlocking an unlocked mutex is -EPERM and leaves it
 * usable. */
TEST(bad_input)
{
	CHECK_EQ(herd_mutex_lock(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_mutex_unlock(NULL), -EINVAL);
	test_run(1, bad_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_mutex th_mu = HERD_MUTEX_INIT;
static atomic_int th_waiter_rc = PENDING;

static void *th_unlocker(void *arg)
{
	/* Held by a task, which another task waits for. */
	CHECK_EQ(herd_mutex_trylock(&th_mu), -EBUSY);
	CHECK_EQ(herd_mutex_lock(&th_mu, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_mutex_lock(&th_mu, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_mutex_unlock(&th_mu), 0);
	return NULL;
}

static void *th_locker(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&th_mu, HERD_FOREVER), 0);
	return NULL;
}

static void th_waiter(void *arg)
{
	atomic_store(&th_waiter_rc, herd_mutex_lock(&th_mu, HERD_FOREVER));
}

static void th_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_mutex_lock(&th_mu, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, th_waiter, NULL, 0));
	test_wait_parked(1);
	/* A plain thread unlocks what this task locked: the waiter gets it. */
	on_thread(th_unlocker, NULL);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(th_waiter_rc, 0);
	/* Locked by a task that has ended; this one unlocks it. */
	CHECK_EQ(herd_mutex_unlock(&th_mu), 0);
	/* Locked by a thread, unlocked by a task. */
	on_thread(th_locker, NULL);
	CHECK_EQ(herd_mutex_trylock(&th_mu), -EBUSY);
	CHECK_EQ(herd_mutex_unlock(&th_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&th_mu), -EPERM);
}

/* Any task or plain thread may unlock a mutex another locked, and the
 * unlock from a plain thread wakes a waiting task; a plain thread's lock
 * that would wait is -EPERM. */
TEST(other_unlocker)
{
	test_run(2, th_main, NULL);
}

/* ------------------------------------------------------------------ */

#define ST_STREAMS 2
#define ST_ROUNDS 20
#define ST_BOUND (200000L / TEST_SCALE) /* stream iterations one wait may take */
#define ST_CAP (2000000L / TEST_SCALE)  /* the streams give up after this many */

static herd_mutex st_mu = HERD_MUTEX_INIT;
static atomic_long st_iters;
static atomic_int st_stop;
static long st_worst;

/* Locks and unlocks in a loop, holding the mutex across a yield. */
static void st_stream(void *arg)
{
	while (!atomic_load(&st_stop) && atomic_fetch_add(&st_iters, 1) < ST_CAP) {
		CHECK_EQ(herd_mutex_lock(&st_mu, HERD_FOREVER), 0);
		herd_yield();
		CHECK_EQ(herd_mutex_unlock(&st_mu), 0);
	}
}

static void st_waiter(void *arg)
{
	for (int r = 0; r < ST_ROUNDS; r++) {
		herd_yield();
		long before = atomic_load(&st_iters);
		CHECK_EQ(herd_mutex_lock(&st_mu, HERD_FOREVER), 0);
		long waited = atomic_load(&st_iters) - before;
		CHECK_EQ(herd_mutex_unlock(&st_mu), 0);
		if (waited > st_worst)
			st_worst = waited;
	}
	atomic_store(&st_stop, 1);
}

static void st_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < ST_STREAMS; i++)
		CHECK_OK(herd_go(s, st_stream, NULL, 0));
	CHECK_OK(herd_go(s, st_waiter, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	fprintf(stderr, "starvation: the waiter's longest wait took %ld stream "
		"iterations (bound %ld), %ld iterations in all\n", st_worst,
		ST_BOUND, atomic_load(&st_iters));
	CHECK(st_worst < ST_BOUND);
}

/*
 * A waiter gets the mutex, 20 times, while two tasks lock and unlock it
 * in a loop, each holding it across a yield, on one worker: without
 * handoff mode, the waiter, woken by each unlock, would always find the
 * mutex taken again by the unlocker, and wait until the streams stop
 * (ST_CAP iterations). With it, each wait ends after about 1 ms of their
 * iterations, well below ST_BOUND.
 */
TEST(starvation)
{
	test_run(1, st_main, NULL);
}

/* ------------------------------------------------------------------ */

#define PR_TASKS 2
#define PR_ITERS (20000 / TEST_SCALE)

static herd_mutex pr_mu = HERD_MUTEX_INIT;
static long pr_counter; /* under pr_mu */

static void pr_task(void *p)
{
	uint64_t seed = 0x2545f4914f6cdd1dull * (uint64_t)(*(int *)p + 1);

	for (int i = 0; i < PR_ITERS; i++) {
		CHECK_EQ(herd_mutex_lock(&pr_mu, HERD_FOREVER), 0);
		/* Hold it up to 20 us, about as long as the other spins before
		 * it parks, so that its park races this unlock. */
		int64_t until = herd_now() + (int64_t)(rng_next(&seed) % 20000);
		while (herd_now() < until)
			continue;
		pr_counter++;
		CHECK_EQ(herd_mutex_unlock(&pr_mu), 0);
	}
}

static void pr_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < PR_TASKS; i++)
		CHECK_OK(HERD_GO(s, pr_task, i));
	/* A lost wake would leave a task parked for ever. */
	CHECK_EQ(herd_scope_wait(s, herd_deadline(50 * HERD_SEC)), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(pr_counter, (long)PR_TASKS * PR_ITERS);
	CHECK_EQ(herd_mutex_trylock(&pr_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&pr_mu), 0);
}

/* Two tasks on two workers lock a mutex in turn, each holding it about as
 * long as the other spins before parking: the first waiter's announcement
 * races the holder's unlock (a plain store where mutex.c has it), and no
 * wake or increment is lost. */
TEST(parks_race_unlocks)
{
	test_run(2, pr_main, NULL);
}

/* ------------------------------------------------------------------ */

#define TS_TASKS 32
#define TS_ITERS (400 / TEST_SCALE)

static herd_mutex ts_mu = HERD_MUTEX_INIT;
static long ts_counter;
static atomic_long ts_done, ts_timeouts;

static void ts_task(void *p)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(*(int *)p + 1);

	for (int i = 0; i < TS_ITERS; i++) {
		int64_t d = herd_deadline((int64_t)(rng_next(&seed) % 200) * HERD_USEC);
		int rc = herd_mutex_lock(&ts_mu, d);
		if (rc == HERD_ETIMEDOUT) {
			atomic_fetch_add(&ts_timeouts, 1);
			continue;
		}
		CHECK_EQ(rc, 0);
		long v = ts_counter;
		if (rng_next(&seed) % 4 == 0)
			CHECK_OK(herd_sleep(herd_deadline(50 * HERD_USEC)));
		ts_counter = v + 1;
		CHECK_EQ(herd_mutex_unlock(&ts_mu), 0);
		atomic_fetch_add(&ts_done, 1);
	}
}

static void ts_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < TS_TASKS; i++)
		CHECK_OK(HERD_GO(s, ts_task, i));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(50 * HERD_SEC)), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(ts_counter, atomic_load(&ts_done));
	CHECK_EQ(ts_done + ts_timeouts, (long)TS_TASKS * TS_ITERS);
	CHECK(ts_timeouts > 0 && ts_done > 0);
	/* Left free, and nobody is left queued. */
	CHECK_EQ(herd_mutex_trylock(&ts_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&ts_mu), 0);
}

/* Many waiters with short random deadlines race the unlocks: every lock
 * either holds the mutex alone or times out, no wake is lost (the scope
 * empties), and the mutex ends free. */
TEST(deadline_storm)
{
	test_run(4, ts_main, NULL);
}

/* ------------------------------------------------------------------ */
/* Wait groups as values                                               */
/* ------------------------------------------------------------------ */

#define WV_TASKS 50

static herd_wg wv_static = HERD_WG_INIT;
static atomic_int wv_count[3];

struct wv_arg {
	herd_wg *wg;
	int which;
};

static void wv_task(void *p)
{
	struct wv_arg a = *(struct wv_arg *)p;

	if (a.which == 1)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	atomic_fetch_add(&wv_count[a.which], 1);
	CHECK_OK(herd_wg_done(a.wg));
}

static void wv_round(herd_scope *s, herd_wg *wg, int which)
{
	CHECK_EQ(herd_wg_wait(wg, HERD_NOWAIT), 0);
	for (int i = 0; i < WV_TASKS; i++) {
		struct wv_arg a = { wg, which };

		CHECK_OK(herd_wg_add(wg, 1));
		CHECK_OK(herd_go(s, wv_task, &a, sizeof a));
	}
	CHECK_EQ(herd_wg_wait(wg, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(wv_count[which], WV_TASKS);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
}

static void wv_main(void *arg)
{
	herd_wg stack = {0};
	herd_wg *heap = calloc(1, sizeof *heap);
	herd_scope *s;

	CHECK(heap);
	CHECK_OK(herd_scope_open(&s));
	wv_round(s, &wv_static, 0);
	wv_round(s, &stack, 1);
	wv_round(s, heap, 2);
	CHECK_OK(herd_scope_close(s));
	free(heap);
	/* A deadline on a value wait group. */
	CHECK_EQ(herd_wg_add(&stack, 1), 1);
	CHECK_EQ(herd_wg_wait(&stack, herd_deadline(5 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_done(&stack), 0);
}

/* Static (HERD_WG_INIT), stack ({0}) and calloc'ed wait groups work with
 * add, done and wait, with no herd_wg_new. */
TEST(wg_values)
{
	CHECK_EQ(herd_wg_add(&wv_static, 2), 2);
	CHECK_EQ(herd_wg_add(&wv_static, -2), 0);
	CHECK_EQ(herd_wg_add(&wv_static, -1), -ERANGE);
	test_run(4, wv_main, NULL);
}

/* ------------------------------------------------------------------ */

#define UF_ROUNDS (2000 / TEST_SCALE)

static atomic_int uf_locked, uf_released;

/* Holds the mutex until the main task has queued for it, then unlocks. */
static void uf_holder(void *p)
{
	herd_mutex *m = *(herd_mutex **)p;

	CHECK_EQ(herd_mutex_lock(m, HERD_FOREVER), 0);
	atomic_store(&uf_locked, 1);
	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_USEC)));
	CHECK_EQ(herd_mutex_unlock(m), 0);
	atomic_store(&uf_released, 1);
}

static void uf_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		herd_mutex *m = malloc(sizeof *m);

		CHECK(m != NULL);
		*m = (herd_mutex)HERD_MUTEX_INIT;
		atomic_store(&uf_locked, 0);
		atomic_store(&uf_released, 0);
		CHECK_OK(HERD_GO(NULL, uf_holder, m));
		while (!atomic_load(&uf_locked))
			CHECK_OK(herd_yield());
		CHECK_EQ(herd_mutex_lock(m, HERD_FOREVER), 0);
		CHECK_EQ(herd_mutex_unlock(m), 0);
		test_free_released(m, sizeof *m, &uf_released);
	}
}

/* A waiter that gets the mutex from an unlock may unlock and free it at
 * once: the unlock touches the mutex no more once it is released (its
 * internal lock is released first, the waiter readied last). */
TEST(unlock_then_free)
{
	test_run(2, uf_main, NULL);
}
