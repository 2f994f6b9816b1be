/*
 * test-sema.c - once, condition variables and weighted semaphores. Covers
 * herd_once_do with 100 concurrent callers (the function runs exactly
 * once, and every caller returns after it), with plain threads waiting
 * too, and outside the runtime; condition waits woken by signal and
 * broadcast (also from a plain thread), their deadlines and cancellation
 * (the mutex is held again whatever the wait returns, even while another
 * task holds it when the wait ends); semaphores: weights, the order in
 * which waiters are served (a large request holds back smaller later
 * ones), deadlines and cancellation (which let the held-back ones go), a
 * bound on concurrency, release from a plain thread, and bad input.
 */
#include "locks.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

/* ------------------------------------------------------------------ */
/* Once                                                                */
/* ------------------------------------------------------------------ */

#define OM_CALLERS 100

static herd_once om_once = HERD_ONCE_INIT;
static atomic_int om_runs, om_value, om_ran, om_bad;

static void om_fn(void *arg)
{
	atomic_fetch_add(&om_runs, 1);
	/* Parks: the other callers must wait, not run it again. */
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	atomic_store(&om_value, *(int *)arg);
}

static void om_caller(void *arg)
{
	int v = 42;
	int rc = herd_once_do(&om_once, om_fn, &v);

	CHECK(rc == 0 || rc == 1);
	atomic_fetch_add(&om_ran, rc);
	if (atomic_load(&om_value) != 42 || atomic_load(&om_runs) != 1)
		atomic_fetch_add(&om_bad, 1);
}

static void om_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < OM_CALLERS; i++)
		CHECK_OK(herd_go(s, om_caller, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(om_runs, 1);
	CHECK_EQ(om_ran, 1);
	CHECK_EQ(om_bad, 0);
	CHECK_EQ(herd_once_do(&om_once, om_fn, NULL), 0);
	CHECK_EQ(om_runs, 1);
}

/* 100 tasks call herd_once_do at once: the function runs once, one call
 * says it ran it, and every caller returns after it has returned. */
TEST(once_many_callers)
{
	test_run(4, om_main, NULL);
}

/* ------------------------------------------------------------------ */

#define OT_THREADS 4

static herd_once ot_once = HERD_ONCE_INIT;
static atomic_int ot_started, ot_value, ot_bad, ot_runs;

static void ot_fn(void *arg)
{
	atomic_fetch_add(&ot_runs, 1);
	/* Until every thread has called, or is about to call, herd_once_do. */
	wait_flag(&ot_started, OT_THREADS);
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	atomic_store(&ot_value, 7);
}

static void *ot_thread(void *arg)
{
	atomic_fetch_add(&ot_started, 1);
	if (herd_once_do(&ot_once, ot_fn, NULL) != 0 || atomic_load(&ot_value) != 7)
		atomic_fetch_add(&ot_bad, 1);
	return NULL;
}

static void ot_runner(void *arg)
{
	CHECK_EQ(herd_once_do(&ot_once, ot_fn, NULL), 1);
}

static void ot_main(void *arg)
{
	pthread_t *th = arg;
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, ot_runner, NULL, 0));
	while (atomic_load(&ot_runs) == 0)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	for (int i = 0; i < OT_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, ot_thread, NULL) == 0);
	CHECK_OK(herd_scope_close(s));
}

static void add_one(void *p)
{
	++*(int *)p;
}

/* Plain threads that call herd_once_do while a task runs the function
 * sleep until it has returned; outside the runtime it works the same. */
TEST(once_threads)
{
	pthread_t th[OT_THREADS];
	herd_once o = {0};
	int v = 5;

	test_run(2, ot_main, th);
	for (int i = 0; i < OT_THREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK_EQ(ot_bad, 0);
	CHECK_EQ(ot_runs, 1);
	CHECK_EQ(herd_once_do(&o, add_one, &v), 1);
	CHECK_EQ(herd_once_do(&o, add_one, &v), 0);
	CHECK_EQ(v, 6);
}

/* NULL is -EINVAL and runs nothing; the once still works after. */
TEST(once_bad_input)
{
	herd_once o = HERD_ONCE_INIT;
	int v = 0;

	CHECK_EQ(herd_once_do(NULL, add_one, &v), -EINVAL);
	CHECK_EQ(herd_once_do(&o, NULL, &v), -EINVAL);
	CHECK_EQ(v, 0);
	CHECK_EQ(herd_once_do(&o, add_one, &v), 1);
	CHECK_EQ(herd_once_do(&o, NULL, &v), -EINVAL);
	CHECK_EQ(herd_once_do(&o, add_one, &v), 0);
	CHECK_EQ(v, 1);
}

/* ------------------------------------------------------------------ */
/* Condition variables                                                 */
/* ------------------------------------------------------------------ */

#define CS_WAITERS 10

static herd_mutex cs_mu = HERD_MUTEX_INIT;
static herd_cond cs_cv = HERD_COND_INIT;
static int cs_tokens;                  /* under cs_mu */
static atomic_int cs_woken, cs_thread_rc = PENDING;

static void cs_waiter(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&cs_mu, HERD_FOREVER), 0);
	while (cs_tokens == 0)
		CHECK_EQ(herd_cond_wait(&cs_cv, &cs_mu, HERD_FOREVER), 0);
	cs_tokens--;
	atomic_fetch_add(&cs_woken, 1);
	CHECK_EQ(herd_mutex_unlock(&cs_mu), 0);
}

static void *cs_signaller(void *arg)
{
	/* The last woken task may still hold it for a moment. */
	while (herd_mutex_trylock(&cs_mu) != 0)
		sched_yield();
	cs_tokens++;
	CHECK_EQ(herd_mutex_unlock(&cs_mu), 0);
	atomic_store(&cs_thread_rc, herd_cond_signal(&cs_cv));
	return NULL;
}

static void cs_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_cond_signal(&cs_cv), 0);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < CS_WAITERS; i++)
		CHECK_OK(herd_go(s, cs_waiter, NULL, 0));
	test_wait_parked(CS_WAITERS);
	CHECK_EQ(cs_woken, 0);
	/* One token and one signal at a time: each wakes exactly one. */
	for (int i = 0; i < CS_WAITERS - 1; i++) {
		CHECK_EQ(herd_mutex_lock(&cs_mu, HERD_FOREVER), 0);
		cs_tokens++;
		CHECK_EQ(herd_cond_signal(&cs_cv), 1);
		CHECK_EQ(herd_mutex_unlock(&cs_mu), 0);
		wait_flag(&cs_woken, i + 1);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
		CHECK_EQ(cs_woken, i + 1);
	}
	/* The last one, by a plain thread. */
	on_thread(cs_signaller, NULL);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(cs_thread_rc, 1);
	CHECK_EQ(cs_woken, CS_WAITERS);
	CHECK_EQ(herd_cond_signal(&cs_cv), 0);
}

/* Each signal wakes one waiter (and says so), from a task or a plain
 * thread; with nobody waiting it wakes nobody. */
TEST(cond_signal)
{
	test_run(4, cs_main, NULL);
}

/* ------------------------------------------------------------------ */

#define CB_WAITERS 20

static herd_mutex cb_mu = HERD_MUTEX_INIT;
static herd_cond cb_cv = HERD_COND_INIT;
static bool cb_go;                     /* under cb_mu */
static atomic_int cb_woken;

static void cb_waiter(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&cb_mu, HERD_FOREVER), 0);
	while (!cb_go)
		CHECK_EQ(herd_cond_wait(&cb_cv, &cb_mu, herd_deadline(60 * HERD_SEC)), 0);
	atomic_fetch_add(&cb_woken, 1);
	CHECK_EQ(herd_mutex_unlock(&cb_mu), 0);
}

static void cb_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < CB_WAITERS; i++)
		CHECK_OK(herd_go(s, cb_waiter, NULL, 0));
	test_wait_parked(CB_WAITERS);
	CHECK_EQ(herd_mutex_lock(&cb_mu, HERD_FOREVER), 0);
	cb_go = true;
	CHECK_EQ(herd_cond_broadcast(&cb_cv), CB_WAITERS);
	CHECK_EQ(herd_mutex_unlock(&cb_mu), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(cb_woken, CB_WAITERS);
	CHECK_EQ(herd_cond_broadcast(&cb_cv), 0);
}

/* A broadcast wakes every waiter, which each get the mutex in turn. */
TEST(cond_broadcast)
{
	test_run(4, cb_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_mutex cd_mu = HERD_MUTEX_INIT;
static herd_cond cd_cv = HERD_COND_INIT;
static atomic_int cd_got, cd_holding, cd_released;

/* Takes the mutex while the main task waits on the condition. */
static void cd_taker(void *arg)
{
	while (herd_mutex_trylock(&cd_mu) != 0)
		herd_yield();
	atomic_store(&cd_got, 1);
	CHECK_EQ(herd_mutex_unlock(&cd_mu), 0);
}

/* Holds the mutex past the main task's deadline. */
static void cd_holder(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&cd_mu, HERD_FOREVER), 0);
	atomic_store(&cd_holding, 1);
	CHECK_OK(herd_sleep(herd_deadline(40 * HERD_MSEC)));
	atomic_store(&cd_released, 1);
	CHECK_EQ(herd_mutex_unlock(&cd_mu), 0);
}

static void cd_main(void *arg)
{
	herd_scope *s;
	int64_t d;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_mutex_lock(&cd_mu, HERD_FOREVER), 0);
	CHECK_OK(herd_go(s, cd_taker, NULL, 0));
	d = herd_deadline(30 * HERD_MSEC);
	CHECK_EQ(herd_cond_wait(&cd_cv, &cd_mu, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(cd_got, 1);   /* the mutex was free during the wait */
	CHECK_EQ(herd_mutex_trylock(&cd_mu), -EBUSY); /* and held again */
	/* HERD_NOWAIT: at once, the mutex never let go. */
	CHECK_EQ(herd_cond_wait(&cd_cv, &cd_mu, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* A wait that ends while another task holds the mutex (for 40 ms)
	 * returns only once that task has let go. */
	CHECK_OK(herd_go(s, cd_holder, NULL, 0));
	do
		CHECK_EQ(herd_cond_wait(&cd_cv, &cd_mu, herd_deadline(10 * HERD_MSEC)),
			 HERD_ETIMEDOUT);
	while (!atomic_load(&cd_holding));
	CHECK_EQ(cd_released, 1);
	CHECK_EQ(herd_mutex_unlock(&cd_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&cd_mu), -EPERM);
	CHECK_OK(herd_scope_close(s));
}

/* A wait gives up at its deadline with the mutex held again, after
 * having let it go meanwhile, and waits to get it back. */
TEST(cond_deadline)
{
	test_run(2, cd_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_mutex cc_mu = HERD_MUTEX_INIT;
static herd_cond cc_cv = HERD_COND_INIT;
static atomic_int cc_rc = PENDING, cc_held, cc_early_rc = PENDING;

static void cc_waiter(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&cc_mu, HERD_FOREVER), 0);
	int rc = herd_cond_wait(&cc_cv, &cc_mu, HERD_FOREVER);
	atomic_store(&cc_held, herd_mutex_trylock(&cc_mu) == -EBUSY);
	atomic_store(&cc_rc, rc);
	CHECK_EQ(herd_mutex_unlock(&cc_mu), 0);
	/* Already canceled: at once, the mutex kept. */
	CHECK_EQ(herd_mutex_lock(&cc_mu, HERD_FOREVER), 0);
	atomic_store(&cc_early_rc, herd_cond_wait(&cc_cv, &cc_mu, HERD_FOREVER));
	CHECK_EQ(herd_mutex_unlock(&cc_mu), 0);
}

static void cc_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, cc_waiter, NULL, 0));
	test_wait_parked(1);
	/* Canceled while this task holds the mutex: the wait ends, but
	 * returns only once it has the mutex back. */
	CHECK_EQ(herd_mutex_lock(&cc_mu, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	CHECK_EQ(cc_rc, PENDING);
	CHECK_EQ(herd_mutex_unlock(&cc_mu), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(cc_rc, HERD_ECANCELED);
	CHECK_EQ(cc_held, 1);
	CHECK_EQ(cc_early_rc, HERD_ECANCELED);
	CHECK_EQ(herd_mutex_trylock(&cc_mu), 0);
	CHECK_EQ(herd_mutex_unlock(&cc_mu), 0);
}

/* A condition wait is a cancellation point, and returns HERD_ECANCELED
 * with the mutex held, waiting for it if another task holds it. */
TEST(cond_cancel)
{
	test_run(2, cc_main, NULL);
}

/* ------------------------------------------------------------------ */

static void cv_bad_main(void *arg)
{
	herd_mutex m = HERD_MUTEX_INIT;
	herd_cond c = HERD_COND_INIT;

	CHECK_EQ(herd_cond_wait(NULL, &m, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_cond_wait(&c, NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_cond_wait(&c, &m, HERD_FOREVER), -EPERM); /* not locked */
	CHECK_EQ(herd_mutex_unlock(&m), -EPERM);                /* untouched */
	CHECK_EQ(herd_mutex_lock(&m, HERD_FOREVER), 0);
	CHECK_EQ(herd_cond_wait(&c, &m, herd_deadline(HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(herd_mutex_unlock(&m), 0);
}

/* NULL is -EINVAL; a wait without the mutex locked, or outside a task,
 * is -EPERM and leaves the mutex as it was. */
TEST(cond_bad_input)
{
	herd_mutex m = {0};
	herd_cond c = {0};

	CHECK_EQ(herd_cond_signal(NULL), -EINVAL);
	CHECK_EQ(herd_cond_broadcast(NULL), -EINVAL);
	CHECK_EQ(herd_cond_signal(&c), 0);
	CHECK_EQ(herd_cond_broadcast(&c), 0);
	CHECK_EQ(herd_mutex_lock(&m, HERD_FOREVER), 0);
	CHECK_EQ(herd_cond_wait(&c, &m, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_mutex_unlock(&m), 0);
	test_run(1, cv_bad_main, NULL);
}

/* ------------------------------------------------------------------ */
/* Weighted semaphores                                                 */
/* ------------------------------------------------------------------ */

static herd_sem sw_sem = HERD_SEM_INIT(10);
static atomic_int sw_got[2];

static void sw_task(void *p)
{
	int i = *(int *)p;
	int64_t n = i ? 6 : 4;

	CHECK_EQ(herd_sem_acquire(&sw_sem, n, HERD_FOREVER), 0);
	atomic_store(&sw_got[i], 1);
}

static void sw_main(void *arg)
{
	herd_scope *s;

	for (int i = 0; i < 3; i++)
		CHECK_EQ(herd_sem_acquire(&sw_sem, 3, HERD_FOREVER), 0);
	CHECK_EQ(herd_sem_tryacquire(&sw_sem, 2), -EBUSY);
	CHECK_EQ(herd_sem_acquire(&sw_sem, 2, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_sem_tryacquire(&sw_sem, 1), 0);
	CHECK_EQ(herd_sem_release(&sw_sem, 10), 0);
	CHECK_EQ(herd_sem_release(&sw_sem, 1), -ERANGE);
	/* Two waiters for 4 and 6 units, served as the units come back. */
	CHECK_EQ(herd_sem_acquire(&sw_sem, 10, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < 2; i++) {
		CHECK_OK(HERD_GO(s, sw_task, i));
		test_wait_parked((uint64_t)i + 1);
	}
	CHECK_EQ(herd_sem_release(&sw_sem, 3), 0);
	CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	CHECK_EQ(sw_got[0] + sw_got[1], 0);
	CHECK_EQ(herd_sem_release(&sw_sem, 1), 0);
	wait_flag(&sw_got[0], 1);
	CHECK_EQ(sw_got[1], 0);
	CHECK_EQ(herd_sem_release(&sw_sem, 6), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(sw_got[1], 1);
	CHECK_EQ(herd_sem_tryacquire(&sw_sem, 1), -EBUSY);
	CHECK_EQ(herd_sem_release(&sw_sem, 10), 0);
	CHECK_EQ(herd_sem_tryacquire(&sw_sem, 10), 0);
	CHECK_EQ(herd_sem_release(&sw_sem, 10), 0);
}

/* Acquires take their weight of a static semaphore; waiters are served
 * when enough units come back; releasing more than is held is -ERANGE. */
TEST(sem_weights)
{
	test_run(2, sw_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SF_SMALL 5

static herd_sem sf_sem = HERD_SEM_INIT(10);
static atomic_int sf_served, sf_release;
static atomic_int sf_got[1 + SF_SMALL];

static void sf_task(void *p)
{
	int i = *(int *)p;

	CHECK_EQ(herd_sem_acquire(&sf_sem, i == 0 ? 8 : 1, HERD_FOREVER), 0);
	atomic_store(&sf_got[i], 1);
	atomic_fetch_add(&sf_served, 1);
	wait_flag(&sf_release, 1);
	CHECK_EQ(herd_sem_release(&sf_sem, i == 0 ? 8 : 1), 0);
}

static void sf_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_sem_acquire(&sf_sem, 10, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_open(&s));
	/* One large request, then small ones, queued in that order. */
	for (int i = 0; i <= SF_SMALL; i++) {
		CHECK_OK(HERD_GO(s, sf_task, i));
		test_wait_parked((uint64_t)i + 1);
	}
	CHECK_EQ(herd_sem_tryacquire(&sf_sem, 1), -EBUSY);
	/* 5 free: enough for every small one, but the large one is first. */
	CHECK_EQ(herd_sem_release(&sf_sem, 5), 0);
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	CHECK_EQ(sf_served, 0);
	CHECK_EQ(herd_sem_release(&sf_sem, 5), 0);
	/* 10 free: the large one and the first two small ones, in order. */
	wait_flag(&sf_served, 3);
	CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	CHECK_EQ(sf_served, 3);
	for (int i = 0; i <= SF_SMALL; i++)
		CHECK_EQ(sf_got[i], i < 3);
	atomic_store(&sf_release, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(sf_served, 1 + SF_SMALL);
	CHECK_EQ(herd_sem_tryacquire(&sf_sem, 10), 0);
}

/* Waiters are served in order: a request for 8 units holds back the
 * requests for 1 queued after it, even while 5 units are free. */
TEST(sem_fifo)
{
	test_run(2, sf_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_sem sc_sem = HERD_SEM_INIT(4);
static atomic_int sc_big_rc = PENDING, sc_small_rc = PENDING;

static void sc_big(void *p)
{
	int64_t deadline = *(int64_t *)p;

	atomic_store(&sc_big_rc, herd_sem_acquire(&sc_sem, 4, deadline));
}

static void sc_small(void *arg)
{
	int rc = herd_sem_acquire(&sc_sem, 1, HERD_FOREVER);

	atomic_store(&sc_small_rc, rc);
	if (rc == 0)
		CHECK_EQ(herd_sem_release(&sc_sem, 1), 0);
}

static void sc_canceled(void *arg)
{
	CHECK_OK(herd_scope_cancel(herd_scope_current()));
	/* Units are free, but the call is a cancellation point... */
	CHECK_EQ(herd_sem_acquire(&sc_sem, 1, HERD_FOREVER), HERD_ECANCELED);
	/* ...unless it cannot wait. */
	CHECK_EQ(herd_sem_acquire(&sc_sem, 1, HERD_NOWAIT), 0);
	CHECK_EQ(herd_sem_release(&sc_sem, 1), 0);
}

/* A large request queued ahead of a small one leaves, by deadline or
 * cancellation: the small one is served (1 unit is free throughout). */
static void sc_round(bool by_cancel)
{
	herd_scope *big, *s;
	int64_t d = by_cancel ? HERD_FOREVER : herd_deadline(200 * HERD_MSEC);

	atomic_store(&sc_big_rc, PENDING);
	atomic_store(&sc_small_rc, PENDING);
	CHECK_OK(herd_scope_open(&big));
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(big, sc_big, d));
	test_wait_parked(1);
	CHECK_OK(herd_go(s, sc_small, NULL, 0));
	test_wait_parked(2);
	CHECK_EQ(sc_small_rc, PENDING);
	if (by_cancel)
		CHECK_OK(herd_scope_cancel(big));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(sc_small_rc, 0);
	CHECK_EQ(herd_scope_wait(big, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(sc_big_rc, by_cancel ? HERD_ECANCELED : HERD_ETIMEDOUT);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_scope_close(big));
}

static void sc_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_sem_acquire(&sc_sem, 3, HERD_FOREVER), 0);
	sc_round(false);
	sc_round(true);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, sc_canceled, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(herd_sem_release(&sc_sem, 3), 0);
	CHECK_EQ(herd_sem_tryacquire(&sc_sem, 4), 0); /* nothing was kept */
	CHECK_EQ(herd_sem_release(&sc_sem, 4), 0);
}

/* An acquire gives up at its deadline or on cancellation, acquiring
 * nothing, and lets the waiters it held back go; cancellation is checked
 * on entry, but not with HERD_NOWAIT. */
TEST(sem_cancel_deadline)
{
	test_run(2, sc_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SB_TASKS 40
#define SB_LIMIT 3

static herd_sem sb_sem = HERD_SEM_INIT(SB_LIMIT);
static atomic_int sb_in, sb_max;

static void sb_task(void *arg)
{
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(herd_sem_acquire(&sb_sem, 1, HERD_FOREVER), 0);
		int n = atomic_fetch_add(&sb_in, 1) + 1;
		for (int m = atomic_load(&sb_max);
		     n > m && !atomic_compare_exchange_weak(&sb_max, &m, n);)
			;
		CHECK_OK(herd_sleep(herd_deadline(200 * HERD_USEC)));
		atomic_fetch_sub(&sb_in, 1);
		CHECK_EQ(herd_sem_release(&sb_sem, 1), 0);
	}
}

static void *sb_releaser(void *arg)
{
	CHECK_EQ(herd_sem_release(&sb_sem, SB_LIMIT), 0);
	return NULL;
}

static void sb_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	/* Everything held: the tasks queue until a plain thread releases. */
	CHECK_EQ(herd_sem_acquire(&sb_sem, SB_LIMIT, HERD_FOREVER), 0);
	for (int i = 0; i < SB_TASKS; i++)
		CHECK_OK(herd_go(s, sb_task, NULL, 0));
	test_wait_parked(SB_TASKS);
	on_thread(sb_releaser, NULL);
	CHECK_OK(herd_scope_close(s));
	CHECK(sb_max >= 2 && sb_max <= SB_LIMIT);
	CHECK_EQ(herd_sem_tryacquire(&sb_sem, SB_LIMIT), 0);
	CHECK_EQ(herd_sem_release(&sb_sem, SB_LIMIT), 0);
}

/* A semaphore of 3 bounds 40 tasks to 3 at a time; a release from a
 * plain thread wakes tasks. */
TEST(sem_bound)
{
	test_run(4, sb_main, NULL);
}

/* ------------------------------------------------------------------ */

static void sbad_main(void *arg)
{
	herd_sem s = HERD_SEM_INIT(5);

	CHECK_EQ(herd_sem_acquire(&s, 2, HERD_FOREVER), 0);
	CHECK_EQ(herd_sem_release(&s, 3), -ERANGE);
	CHECK_EQ(herd_sem_tryacquire(&s, 4), -EBUSY); /* still 2 held */
	CHECK_EQ(herd_sem_tryacquire(&s, 3), 0);
	CHECK_EQ(herd_sem_release(&s, 5), 0);
	CHECK_EQ(herd_sem_acquire(&s, 6, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sem_acquire(&s, 0, HERD_FOREVER), -EINVAL);
}

/* NULL, weights <= 0 or above the capacity are -EINVAL; a zeroed
 * semaphore has capacity 0 until herd_sem_init; releasing more than is
 * held is -ERANGE and changes nothing; outside a task an acquire that
 * would wait is -EPERM. */
TEST(sem_bad_input)
{
	herd_sem z = {0};

	CHECK_EQ(herd_sem_acquire(&z, 1, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sem_tryacquire(&z, 1), -EINVAL);
	CHECK_EQ(herd_sem_release(&z, 1), -ERANGE);
	CHECK_EQ(herd_sem_init(NULL, 1), -EINVAL);
	CHECK_EQ(herd_sem_init(&z, 0), -EINVAL);
	CHECK_EQ(herd_sem_init(&z, -1), -EINVAL);
	CHECK_EQ(herd_sem_init(&z, 5), 0);
	CHECK_EQ(herd_sem_acquire(NULL, 1, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sem_tryacquire(NULL, 1), -EINVAL);
	CHECK_EQ(herd_sem_release(NULL, 1), -EINVAL);
	CHECK_EQ(herd_sem_acquire(&z, 0, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sem_acquire(&z, -1, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sem_acquire(&z, 6, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_sem_tryacquire(&z, 0), -EINVAL);
	CHECK_EQ(herd_sem_tryacquire(&z, 6), -EINVAL);
	CHECK_EQ(herd_sem_release(&z, 0), -EINVAL);
	CHECK_EQ(herd_sem_release(&z, -1), -EINVAL);
	/* Outside a task. */
	CHECK_EQ(herd_sem_acquire(&z, 5, HERD_FOREVER), 0);
	CHECK_EQ(herd_sem_acquire(&z, 1, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_sem_acquire(&z, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_sem_tryacquire(&z, 1), -EBUSY);
	CHECK_EQ(herd_sem_release(&z, 6), -ERANGE);
	CHECK_EQ(herd_sem_release(&z, 5), 0);
	CHECK_EQ(herd_sem_release(&z, 1), -ERANGE);
	test_run(1, sbad_main, NULL);
}

/* ------------------------------------------------------------------ */

#define UF_ROUNDS (2000 / TEST_SCALE)

static atomic_int uf_released;

/* Releases the main task's semaphore once the main task waits on it. */
static void uf_releaser(void *p)
{
	herd_sem *s = *(herd_sem **)p;

	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_USEC)));
	CHECK_EQ(herd_sem_release(s, 1), 0);
	atomic_store(&uf_released, 1);
}

static void uf_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		herd_sem *s = malloc(sizeof *s);

		CHECK(s != NULL);
		CHECK_OK(herd_sem_init(s, 1));
		atomic_store(&uf_released, 0);
		CHECK_EQ(herd_sem_acquire(s, 1, HERD_FOREVER), 0);
		CHECK_OK(HERD_GO(NULL, uf_releaser, s));
		/* A completion: its wake means the other task is done with s. */
		CHECK_EQ(herd_sem_acquire(s, 1, HERD_FOREVER), 0);
		test_free_released(s, sizeof *s, &uf_released);
	}
}

/* A semaphore used as a completion, freed by its waiter as soon as its
 * acquire returns: the release touches it no more once the waiter can run
 * (it readies the waiter after releasing its internal lock). */
TEST(sem_release_then_free)
{
	test_run(2, uf_main, NULL);
}

static atomic_int cf_ready;
static herd_mutex cf_mu = HERD_MUTEX_INIT;

/* Sets, under the mutex, what the main task waits for, then signals the
 * condition without holding the mutex. The main task holds the mutex until
 * it waits, so the flag is set only once it waits, and the signal is what
 * wakes it. */
static void cf_signaler(void *p)
{
	herd_cond *c = *(herd_cond **)p;
	CHECK_OK(herd_mutex_lock(&cf_mu, HERD_FOREVER));
	atomic_store(&cf_ready, 1);
	CHECK_OK(herd_mutex_unlock(&cf_mu));
	CHECK(herd_cond_signal(c) >= 0);
	atomic_store(&uf_released, 1);
}

static void cf_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		herd_cond *c = calloc(1, sizeof *c);
		CHECK(c != NULL);
		atomic_store(&uf_released, 0);
		atomic_store(&cf_ready, 0);
		CHECK_OK(herd_mutex_lock(&cf_mu, HERD_FOREVER));
		CHECK_OK(HERD_GO(NULL, cf_signaler, c));
		int rc = 0;
		while (!atomic_load(&cf_ready) && rc == 0)
			rc = herd_cond_wait(c, &cf_mu, herd_deadline(20 * HERD_SEC));
		CHECK_EQ(rc, 0);
		CHECK_OK(herd_mutex_unlock(&cf_mu));
		test_free_released(c, sizeof *c, &uf_released);
	}
}

/* A condition signaled without the mutex held, freed by its waiter as soon
 * as the wait returns: the signal touches it no more once the waiter can
 * run (it readies the waiter after releasing its internal lock). */
TEST(cond_signal_then_free)
{
	test_run(2, cf_main, NULL);
}

static atomic_int of_started;

static void of_fn(void *arg)
{
	(void)arg;
	atomic_store(&of_started, 1);
}

/* Runs the once; the main task frees it as soon as it sees it done. */
static void of_runner(void *p)
{
	herd_once *o = *(herd_once **)p;
	CHECK_EQ(herd_once_do(o, of_fn, NULL), 1);
	atomic_store(&uf_released, 1);
}

static void of_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		herd_once *o = calloc(1, sizeof *o);
		CHECK(o != NULL);
		atomic_store(&uf_released, 0);
		atomic_store(&of_started, 0);
		CHECK_OK(HERD_GO(NULL, of_runner, o));
		while (!atomic_load(&of_started))
			CHECK_OK(herd_yield());
		/* Returns once the function has run: o is then ours to free. */
		CHECK_EQ(herd_once_do(o, of_fn, NULL), 0);
		test_free_released(o, sizeof *o, &uf_released);
	}
}

/* A once freed by a caller as soon as its call returns, while the call
 * that ran the function is still returning: that call stores DONE last. */
TEST(once_then_free)
{
	test_run(2, of_main, NULL);
}
