/*
 * test-scope.c - scopes. Covers herd_scope_wait (for all tasks, on an empty
 * scope, with a deadline, with HERD_NOWAIT, by several waiters), cancellation
 * (it wakes every kind of blocking call, reaches nested scopes, makes later
 * blocking calls and spawns fail at once, is idempotent, and stays inside the
 * canceled subtree), herd_scope_close (uninterruptible, owner only), the
 * -EDEADLK rule, the implicit close when an owner returns, herd_main waiting
 * for detached tasks, and the calls' errors outside a task.
 */
#include "test.h"

#include <sched.h>

#include <pthread.h>
#include <stdatomic.h>

/* Result slots hold this until the task stores its herd call's result. */
#define PENDING 1

/* A task that blocks on a wait group and stores the result in *rc. */
struct blocker {
	herd_wg *wg;
	atomic_int *rc;
};

static void block_on_wg(void *p)
{
	struct blocker b = *(struct blocker *)p;

	atomic_store(b.rc, herd_wg_wait(b.wg, HERD_FOREVER));
}

static herd_wg *new_wg(int count)
{
	herd_wg *wg;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, count), count);
	return wg;
}

/* ------------------------------------------------------------------ */

#define WFA_N 100

static atomic_int wfa_flags[WFA_N];

static void wfa_task(void *p)
{
	int i = *(int *)p;

	CHECK_OK(herd_sleep(herd_deadline((1 + i % 10) * HERD_MSEC)));
	atomic_fetch_add(&wfa_flags[i], 1);
}

static void wfa_waiter(void *p)
{
	herd_scope *s = *(herd_scope **)p;

	CHECK_EQ(herd_scope_wait(s, HERD_FOREVER), 0);
	for (int i = 0; i < WFA_N; i++)
		CHECK_EQ(wfa_flags[i], 3);
}

static void wfa_spawn(herd_scope *s)
{
	for (int i = 0; i < WFA_N; i++)
		CHECK_OK(HERD_GO(s, wfa_task, i));
}

static void wfa_main(void *arg)
{
	herd_scope *s, *w;

	CHECK_OK(herd_scope_open(&s));
	for (int round = 1; round <= 2; round++) {
		wfa_spawn(s);
		CHECK_EQ(herd_scope_wait(s, HERD_FOREVER), 0);
		for (int i = 0; i < WFA_N; i++)
			CHECK_EQ(wfa_flags[i], round);
	}
	/* Several tasks wait for the same scope. */
	wfa_spawn(s);
	CHECK_OK(herd_scope_open(&w));
	for (int i = 0; i < 3; i++)
		CHECK_OK(HERD_GO(w, wfa_waiter, s));
	CHECK_OK(herd_scope_close(w));
	CHECK_EQ(herd_scope_close(s), 0);
}

/* herd_scope_wait returns 0 once every task ended; a scope can be reused. */
TEST(wait_for_all)
{
	test_run(4, wfa_main, NULL);
}

/* ------------------------------------------------------------------ */

static void empty_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_wait(s, HERD_NOWAIT), 0);
	CHECK_EQ(herd_scope_wait(s, herd_deadline(HERD_SEC)), 0);
	CHECK_EQ(herd_scope_wait(s, HERD_FOREVER), 0);
	CHECK_EQ(herd_scope_close(s), 0);
}

/* An empty scope is waited for and closed without blocking. */
TEST(empty_scope)
{
	test_run(2, empty_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int wd_rc = PENDING;

static void wd_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	struct blocker b = { wg, &wd_rc };
	herd_scope *s;
	int64_t d;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, block_on_wg, &b, sizeof b));
	d = herd_deadline(50 * HERD_MSEC);
	CHECK_EQ(herd_scope_wait(s, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(wd_rc, PENDING);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(wd_rc, HERD_ECANCELED);
	CHECK_OK(herd_wg_free(wg));
}

/* A scope wait gives up at its deadline, not before; cancel then ends the task. */
TEST(wait_deadline)
{
	test_run(2, wd_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int nb_rc = PENDING;

static void nb_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	struct blocker b = { wg, &nb_rc };
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, block_on_wg, &b, sizeof b));
	/* If this blocked, nothing would ever release the task. */
	CHECK_EQ(herd_scope_wait(s, HERD_NOWAIT), HERD_ETIMEDOUT);
	test_wait_parked(1);
	CHECK_EQ(herd_scope_wait(s, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_EQ(herd_scope_wait(s, HERD_FOREVER), 0);
	CHECK_EQ(nb_rc, 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(wg));
}

/* HERD_NOWAIT on a busy scope returns HERD_ETIMEDOUT without blocking. */
TEST(nowait_on_busy_scope)
{
	test_run(2, nb_main, NULL);
}

/* ------------------------------------------------------------------ */

enum { CWB_WG, CWB_SLEEP, CWB_SCOPE, CWB_N };

static atomic_int cwb_rc[CWB_N] = { PENDING, PENDING, PENDING };
static atomic_int cwb_canceled[CWB_N], cwb_other_rc = PENDING;

struct cwb_arg {
	int which;
	herd_wg *wg;
	herd_scope *other;
};

static void cwb_task(void *p)
{
	struct cwb_arg a = *(struct cwb_arg *)p;
	int rc;

	CHECK_EQ(herd_canceled(), 0);
	if (a.which == CWB_WG)
		rc = herd_wg_wait(a.wg, HERD_FOREVER);
	else if (a.which == CWB_SLEEP)
		rc = herd_sleep(herd_deadline(60 * HERD_SEC));
	else
		rc = herd_scope_wait(a.other, HERD_FOREVER);
	atomic_store(&cwb_canceled[a.which], herd_canceled());
	atomic_store(&cwb_rc[a.which], rc);
}

static void cwb_main(void *arg)
{
	herd_wg *gate = new_wg(1);
	struct blocker b = { gate, &cwb_other_rc };
	herd_scope *s, *other;

	/* A scope that stays busy: its task waits on the gate too. */
	CHECK_OK(herd_scope_open(&other));
	CHECK_OK(herd_go(other, block_on_wg, &b, sizeof b));
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < CWB_N; i++) {
		struct cwb_arg a = { i, gate, other };
		CHECK_OK(herd_go(s, cwb_task, &a, sizeof a));
	}
	test_wait_parked(1 + CWB_N);
	for (int i = 0; i < CWB_N; i++)
		CHECK_EQ(cwb_rc[i], PENDING);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(10 * HERD_SEC)), 0);
	for (int i = 0; i < CWB_N; i++) {
		CHECK_EQ(cwb_rc[i], HERD_ECANCELED);
		CHECK_EQ(cwb_canceled[i], 1);
	}
	CHECK_EQ(herd_canceled(), 0);
	CHECK_OK(herd_scope_close(s));
	/* The other scope's waiter was not canceled. */
	CHECK_EQ(cwb_other_rc, PENDING);
	CHECK_EQ(herd_wg_done(gate), 0);
	CHECK_OK(herd_scope_close(other));
	CHECK_EQ(cwb_other_rc, 0);
	CHECK_OK(herd_wg_free(gate));
}

/* Cancel wakes tasks blocked in herd_wg_wait, herd_sleep and herd_scope_wait. */
TEST(cancel_wakes_blocked)
{
	test_run(4, cwb_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int nest_rc = PENDING;
static atomic_int nest_canceled[3];

static void nest_c(void *p)
{
	atomic_store(&nest_rc, herd_sleep(herd_deadline(60 * HERD_SEC)));
	atomic_store(&nest_canceled[2], herd_canceled());
}

static void nest_b(void *p)
{
	herd_scope *c;

	CHECK_OK(herd_scope_open(&c));
	CHECK_OK(herd_go(c, nest_c, NULL, 0));
	CHECK_OK(herd_scope_close(c));
	atomic_store(&nest_canceled[1], herd_canceled());
}

static void nest_a(void *p)
{
	herd_scope *b;

	CHECK_OK(herd_scope_open(&b));
	CHECK_OK(herd_go(b, nest_b, NULL, 0));
	CHECK_OK(herd_scope_close(b));
	atomic_store(&nest_canceled[0], herd_canceled());
}

static void nest_main(void *arg)
{
	herd_scope *a;

	CHECK_OK(herd_scope_open(&a));
	CHECK_OK(herd_go(a, nest_a, NULL, 0));
	test_wait_parked(3);
	CHECK_EQ(nest_rc, PENDING);
	CHECK_OK(herd_scope_cancel(a));
	CHECK_EQ(herd_scope_close(a), 0);
	CHECK_EQ(nest_rc, HERD_ECANCELED);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(nest_canceled[i], 1);
	CHECK_EQ(herd_canceled(), 0);
}

/* Canceling a scope reaches a task two nested scopes below it. */
TEST(cancel_reaches_nested)
{
	test_run(4, nest_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int cbb_released, cbb_done, cbb_ran, cbb_other_rc = PENDING;

struct cbb_arg {
	herd_wg *busy, *zero;
	herd_scope *busy_scope;
};

static void cbb_noop(void *p)
{
	atomic_fetch_add(&cbb_ran, 1);
}

static void cbb_task(void *p)
{
	struct cbb_arg a = *(struct cbb_arg *)p;
	herd_scope *inner;

	while (!atomic_load(&cbb_released))
		herd_yield(); /* not blocking: the owner cancels meanwhile */
	CHECK_EQ(herd_canceled(), 1);
	CHECK_EQ(herd_sleep(herd_deadline(60 * HERD_SEC)), HERD_ECANCELED);
	CHECK_EQ(herd_wg_wait(a.busy, HERD_FOREVER), HERD_ECANCELED);
	CHECK_EQ(herd_wg_wait(a.busy, herd_deadline(60 * HERD_SEC)), HERD_ECANCELED);
	CHECK_EQ(herd_scope_wait(a.busy_scope, HERD_FOREVER), HERD_ECANCELED);
	CHECK_EQ(herd_yield(), HERD_ECANCELED);
	/* HERD_NOWAIT calls are not cancellation points. */
	CHECK_EQ(herd_sleep(HERD_NOWAIT), 0);
	CHECK_EQ(herd_wg_wait(a.busy, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_wait(a.zero, HERD_NOWAIT), 0);
	CHECK_EQ(herd_scope_wait(a.busy_scope, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* Nothing can be spawned into the canceled scope... */
	CHECK_EQ(herd_go(NULL, cbb_noop, NULL, 0), HERD_ECANCELED);
	/* ...nor into a scope opened in it, which starts canceled. */
	CHECK_OK(herd_scope_open(&inner));
	CHECK_EQ(herd_go(inner, cbb_noop, NULL, 0), HERD_ECANCELED);
	CHECK_EQ(herd_scope_close(inner), 0);
	atomic_store(&cbb_done, 1);
}

static void cbb_main(void *arg)
{
	herd_wg *busy = new_wg(1), *zero = new_wg(0);
	struct blocker b = { busy, &cbb_other_rc };
	struct cbb_arg a;
	herd_scope *s, *other;

	CHECK_OK(herd_scope_open(&other));
	CHECK_OK(herd_go(other, block_on_wg, &b, sizeof b));
	a = (struct cbb_arg){ busy, zero, other };
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, cbb_task, &a, sizeof a));
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_go(s, cbb_noop, NULL, 0), HERD_ECANCELED);
	CHECK_EQ(HERD_GO(s, cbb_noop, 5), HERD_ECANCELED);
	atomic_store(&cbb_released, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(cbb_done, 1);
	CHECK_EQ(cbb_ran, 0);
	CHECK_EQ(cbb_other_rc, PENDING);
	CHECK_EQ(herd_wg_done(busy), 0);
	CHECK_OK(herd_scope_close(other));
	CHECK_EQ(cbb_other_rc, 0);
	CHECK_OK(herd_wg_free(busy));
	CHECK_OK(herd_wg_free(zero));
}

/* After a cancel, blocking calls fail at once and spawns start nothing. */
TEST(cancel_before_block)
{
	test_run(2, cbb_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int twice_rc = PENDING;

static void twice_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	struct blocker b = { wg, &twice_rc };
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, block_on_wg, &b, sizeof b));
	test_wait_parked(1);
	CHECK_EQ(herd_scope_cancel(s), 0);
	CHECK_EQ(herd_scope_cancel(s), 0);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(twice_rc, HERD_ECANCELED);
	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_cancel(s), 0);
	CHECK_EQ(herd_scope_cancel(s), 0);
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(herd_scope_cancel(NULL), -EINVAL);
	CHECK_OK(herd_wg_free(wg));
}

/* Canceling twice is harmless; canceling NULL is -EINVAL. */
TEST(cancel_twice)
{
	test_run(2, twice_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int sib_b_rc = PENDING, sib_c_rc = PENDING, sib_a2_rc = PENDING;

static void sib_sleeper(void *p)
{
	atomic_store(&sib_b_rc, herd_sleep(herd_deadline(60 * HERD_SEC)));
}

static atomic_int sib_ran;

static void sib_noop(void *p)
{
	atomic_fetch_add(&sib_ran, 1);
}

static void sib_a(void *p)
{
	herd_wg *gate = *(herd_wg **)p;
	struct blocker bc = { gate, &sib_c_rc }, ba2 = { gate, &sib_a2_rc };
	herd_scope *b, *c;

	CHECK_OK(herd_scope_open(&b));
	CHECK_OK(herd_scope_open(&c));
	CHECK_OK(herd_go(b, sib_sleeper, NULL, 0));
	CHECK_OK(herd_go(c, block_on_wg, &bc, sizeof bc));
	CHECK_OK(herd_go(NULL, block_on_wg, &ba2, sizeof ba2));
	test_wait_parked(4); /* and the main task, in herd_scope_close */
	CHECK_OK(herd_scope_cancel(b));
	CHECK_EQ(herd_scope_wait(b, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(sib_b_rc, HERD_ECANCELED);
	/* Neither this task's scope nor the sibling was canceled. */
	CHECK_EQ(herd_canceled(), 0);
	CHECK_EQ(herd_sleep(herd_deadline(10 * HERD_MSEC)), 0);
	CHECK_EQ(sib_c_rc, PENDING);
	CHECK_EQ(sib_a2_rc, PENDING);
	CHECK_OK(herd_go(c, sib_noop, NULL, 0)); /* c takes new tasks */
	CHECK_EQ(herd_wg_done(gate), 0);
	CHECK_OK(herd_scope_close(c));
	CHECK_OK(herd_scope_close(b));
}

static void sib_main(void *arg)
{
	herd_wg *gate = new_wg(1);
	herd_scope *a;

	CHECK_OK(herd_scope_open(&a));
	CHECK_OK(HERD_GO(a, sib_a, gate));
	CHECK_OK(herd_scope_close(a));
	CHECK_EQ(sib_a2_rc, 0);
	CHECK_EQ(sib_c_rc, 0);
	CHECK_EQ(sib_ran, 1);
	CHECK_OK(herd_wg_free(gate));
}

/* Canceling a child scope leaves its parent and its siblings alone. */
TEST(cancel_does_not_reach_parent_or_siblings)
{
	test_run(4, sib_main, NULL);
}

/* ------------------------------------------------------------------ */

#define CWU_N 8

static atomic_int cwu_ended, cwu_close_rc = PENDING, cwu_ended_at_close = -1;

static void cwu_task(void *p)
{
	int64_t end;

	CHECK_EQ(herd_sleep(herd_deadline(60 * HERD_SEC)), HERD_ECANCELED);
	/* Go on a little after the cancel, without blocking. */
	end = herd_now() + 20 * HERD_MSEC;
	while (herd_now() < end)
		;
	atomic_fetch_add(&cwu_ended, 1);
}

static void cwu_owner(void *p)
{
	herd_scope *s;
	int rc;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < CWU_N; i++)
		CHECK_OK(herd_go(s, cwu_task, NULL, 0));
	rc = herd_scope_close(s);
	atomic_store(&cwu_ended_at_close, atomic_load(&cwu_ended));
	atomic_store(&cwu_close_rc, rc);
}

static void cwu_main(void *arg)
{
	herd_scope *a;

	CHECK_OK(herd_scope_open(&a));
	CHECK_OK(herd_go(a, cwu_owner, NULL, 0));
	test_wait_parked(CWU_N + 1);
	CHECK_OK(herd_scope_cancel(a));
	CHECK_OK(herd_scope_close(a));
	CHECK_EQ(cwu_close_rc, 0);
	CHECK_EQ(cwu_ended_at_close, CWU_N);
}

/* A cancel does not cut short a herd_scope_close under way. */
TEST(close_waits_uninterruptibly)
{
	test_run(4, cwu_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int cno_ran;

static void cno_noop(void *p)
{
	atomic_fetch_add(&cno_ran, 1);
}

static void cno_other(void *p)
{
	herd_scope *s = *(herd_scope **)p;

	CHECK_EQ(herd_scope_close(s), -EPERM);
	/* The scope is still usable. */
	CHECK_OK(herd_go(s, cno_noop, NULL, 0));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(cno_ran, 1);
}

static void cno_main(void *arg)
{
	herd_scope *s, *p;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_open(&p));
	CHECK_OK(HERD_GO(p, cno_other, s));
	CHECK_OK(herd_scope_close(p));
	CHECK_OK(herd_go(s, cno_noop, NULL, 0));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(cno_ran, 2);
}

/* Only the owner may close a scope; a refused close leaves it usable. */
TEST(close_not_owner)
{
	test_run(4, cno_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SHORT (100 * HERD_MSEC)

struct woo_pair {
	herd_scope *outer, *mine;
};

static atomic_int woo_checked, woo_ran;

static void woo_noop(void *p)
{
	atomic_fetch_add(&woo_ran, 1);
}

static void woo_check_close(herd_scope *s)
{
	int rc = herd_scope_close(s);

	CHECK(rc == -EPERM || rc == -EDEADLK);
}

static void woo_inner(void *p)
{
	struct woo_pair w = *(struct woo_pair *)p;

	CHECK(herd_scope_current() == w.mine);
	CHECK_EQ(herd_scope_wait(w.mine, herd_deadline(SHORT)), -EDEADLK);
	CHECK_EQ(herd_scope_wait(w.outer, herd_deadline(SHORT)), -EDEADLK);
	CHECK_EQ(herd_scope_wait(w.outer, HERD_NOWAIT), -EDEADLK);
	woo_check_close(w.outer);
	woo_check_close(w.mine);
	atomic_fetch_add(&woo_checked, 1);
}

static void woo_task(void *p)
{
	herd_scope *s = *(herd_scope **)p;
	struct woo_pair w = { s, NULL };

	CHECK(herd_scope_current() == s);
	CHECK_EQ(herd_scope_wait(s, herd_deadline(SHORT)), -EDEADLK);
	CHECK_EQ(herd_scope_wait(herd_scope_current(), HERD_FOREVER), -EDEADLK);
	woo_check_close(s);
	CHECK_OK(herd_go(s, woo_noop, NULL, 0)); /* s is still usable */
	CHECK_OK(herd_scope_open(&w.mine));
	CHECK_OK(herd_go(w.mine, woo_inner, &w, sizeof w));
	CHECK_OK(herd_scope_close(w.mine));
	atomic_fetch_add(&woo_checked, 1);
}

static void woo_main(void *arg)
{
	herd_scope *root = herd_scope_current(), *s;

	CHECK(root != NULL);
	CHECK_EQ(herd_scope_wait(root, herd_deadline(SHORT)), -EDEADLK);
	woo_check_close(root);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, woo_task, s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(woo_checked, 2);
	CHECK_EQ(woo_ran, 1);
}

/* Waiting on one's own scope or an ancestor is -EDEADLK; so is closing it. */
TEST(wait_on_own_scope)
{
	test_run(4, woo_main, NULL);
}

/* ------------------------------------------------------------------ */

#define ACR_N 5

static atomic_int acr_flags[ACR_N], acr_owner_returned;

static void acr_sleeper(void *p)
{
	int i = *(int *)p;

	CHECK_OK(herd_sleep(herd_deadline(50 * HERD_MSEC)));
	atomic_store(&acr_flags[i], 1);
}

static void acr_owner(void *p)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < ACR_N; i++)
		CHECK_OK(HERD_GO(s, acr_sleeper, i));
	atomic_store(&acr_owner_returned, 1);
	/* Returns without closing s. */
}

static void acr_main(void *arg)
{
	herd_scope *a;

	CHECK_OK(herd_scope_open(&a));
	CHECK_OK(herd_go(a, acr_owner, NULL, 0));
	CHECK_EQ(herd_scope_wait(a, HERD_FOREVER), 0);
	CHECK_EQ(acr_owner_returned, 1);
	for (int i = 0; i < ACR_N; i++)
		CHECK_EQ(acr_flags[i], 1);
	CHECK_OK(herd_scope_close(a));
}

/* A scope its owner forgot to close is closed, and waited for, as it returns. */
TEST(auto_close_on_return)
{
	test_run(4, acr_main, NULL);
}

/* ------------------------------------------------------------------ */

enum {
	MRA_GRANDCHILD = 1,
	MRA_NULL_SCOPE = 2,
	MRA_GREAT = 4,
	MRA_UNCLOSED = 8,
	MRA_ALL = 15,
};

static atomic_int mra_flags;

static void mra_set(void *p)
{
	int bit = *(int *)p;

	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_MSEC)));
	atomic_fetch_or(&mra_flags, bit);
}

static void mra_grandchild(void *p)
{
	CHECK_OK(herd_sleep(herd_deadline(50 * HERD_MSEC)));
	atomic_fetch_or(&mra_flags, MRA_GRANDCHILD);
	/* Spawned after its spawner has, most likely, returned. */
	CHECK_OK(HERD_GO(herd_scope_current(), mra_set, MRA_GREAT));
}

static void mra_child(void *p)
{
	CHECK_OK(herd_go(herd_scope_current(), mra_grandchild, NULL, 0));
	CHECK_OK(HERD_GO(NULL, mra_set, MRA_NULL_SCOPE));
}

static void mra_owner(void *p)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, mra_set, MRA_UNCLOSED));
}

static void mra_main(void *arg)
{
	CHECK_OK(herd_go(NULL, mra_child, NULL, 0));
	CHECK_OK(herd_go(NULL, mra_owner, NULL, 0));
}

/* herd_main returns only after every task, detached ones included, ended. */
TEST(main_returns_after_all)
{
	CHECK_EQ(herd_main(mra_main, NULL), 0);
	CHECK_EQ(mra_flags, MRA_ALL);
}

/* ------------------------------------------------------------------ */

static int soo_rc[4];
static herd_scope *soo_busy;
static atomic_int soo_blocked_rc = PENDING;

static void *soo_thread(void *arg)
{
	herd_scope *s = NULL;

	soo_rc[0] = herd_scope_open(&s);
	soo_rc[1] = herd_scope_current() == NULL && s == NULL;
	soo_rc[2] = herd_scope_wait(soo_busy, herd_deadline(10 * HERD_MSEC));
	soo_rc[3] = herd_canceled();
	return NULL;
}

static void soo_main(void *arg)
{
	herd_wg *wg = new_wg(1);
	struct blocker b = { wg, &soo_blocked_rc };
	pthread_t t;

	CHECK(herd_scope_current() != NULL);
	CHECK_EQ(herd_scope_open(NULL), -EINVAL);
	CHECK_EQ(herd_scope_wait(NULL, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_scope_wait(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_scope_close(NULL), -EINVAL);
	CHECK_EQ(herd_scope_cancel(NULL), -EINVAL);
	/* From a thread that is not a worker, while the runtime runs. */
	CHECK_OK(herd_scope_open(&soo_busy));
	CHECK_OK(herd_go(soo_busy, block_on_wg, &b, sizeof b));
	CHECK(pthread_create(&t, NULL, soo_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_EQ(soo_rc[0], -EPERM);
	CHECK_EQ(soo_rc[1], 1);
	CHECK_EQ(soo_rc[2], -EPERM);
	CHECK_EQ(soo_rc[3], 0);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_scope_close(soo_busy));
	CHECK_EQ(soo_blocked_rc, 0);
	CHECK_OK(herd_wg_free(wg));
}

/* Outside a task there is no scope: open is -EPERM, current is NULL. */
TEST(scope_open_outside_task)
{
	static char sentinel;
	herd_scope *s = (herd_scope *)(void *)&sentinel;

	CHECK_EQ(herd_scope_open(&s), -EPERM);
	CHECK(s == (herd_scope *)(void *)&sentinel); /* unchanged */
	CHECK(herd_scope_current() == NULL);
	CHECK_EQ(herd_canceled(), 0);
	test_run(2, soo_main, NULL);
	CHECK_EQ(herd_scope_open(&s), -EPERM);
	CHECK(herd_scope_current() == NULL);
}

/* ------------------------------------------------------------------ */

static herd_scope *ee_scope;
static atomic_int ee_seen_empty, ee_child_done, ee_wait_rc;

static void ee_child(void *p)
{
	atomic_store(&ee_child_done, 1);
}

/* Spawns into the scope, then keeps running without any herd call. */
static void ee_spawner(void *p)
{
	CHECK_OK(herd_go(ee_scope, ee_child, NULL, 0));
	while (!atomic_load(&ee_seen_empty))
		sched_yield(); /* holds its worker, as a blocking syscall would */
}

static void ee_waiter(void *p)
{
	while (!atomic_load(&ee_child_done))
		herd_yield();
	atomic_store(&ee_wait_rc, herd_scope_wait(ee_scope, herd_deadline(5 * HERD_SEC)));
	atomic_store(&ee_seen_empty, 1);
}

static void ee_main(void *arg)
{
	herd_scope *o;
	CHECK_OK(herd_scope_open(&ee_scope));
	CHECK_OK(herd_scope_open(&o));
	CHECK_OK(herd_go(o, ee_spawner, NULL, 0));
	CHECK_OK(herd_go(o, ee_waiter, NULL, 0));
	CHECK_OK(herd_scope_close(o));
	CHECK_OK(herd_scope_close(ee_scope));
	CHECK_EQ(atomic_load(&ee_wait_rc), 0);
}

/* A scope whose tasks have all ended is empty at once, even while the task
 * that spawned them is still running (the spawner holds no count on it). */
TEST(empty_while_spawner_runs)
{
	test_run(4, ee_main, NULL);
}
