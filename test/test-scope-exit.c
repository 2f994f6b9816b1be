/*
 * test-scope-exit.c - the end of the program as in Go
 * (HERD_RUN_CANCEL_ON_RETURN): when the first task returns, the root scope
 * is canceled, herd_run waits for the other tasks (whose blocking calls
 * return HERD_ECANCELED) and ends the child processes, and nothing is left.
 * Covers helpers in the root scope and in a scope the first task left
 * open, a child process, spawns refused after the end; without the flag
 * herd_run still waits for every task; an unknown flag is refused.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <stdatomic.h>

#define HELPERS 10
#define NESTED 2

static herd_chan *never;  /* nothing is ever sent on it */
static atomic_int helper_rc[HELPERS + NESTED], helper_go_rc[HELPERS + NESTED];
static atomic_int proc_rc = 1;

static void nop_task(void *p)
{
}

/* Blocks for ever, unless canceled; then tries to spawn. */
static void helper_task(void *p)
{
	int i = *(int *)p, v;

	atomic_store(&helper_rc[i], herd_chan_recv(never, &v, HERD_FOREVER));
	atomic_store(&helper_go_rc[i], herd_go(NULL, nop_task, NULL, 0));
}

/* Starts `sleep 3600` in the root scope and waits for it. */
static void proc_task(void *p)
{
	char *argv[] = {"sleep", "3600", NULL};
	herd_proc *pr = start_argv(NULL, argv, NULL);

	int st = -1, rc = herd_proc_wait(pr, &st, HERD_FOREVER);
	atomic_store(&proc_rc, rc == 0 ? st : rc); /* a status, or the error */
	CHECK_OK(herd_proc_free(pr));
}

static void first_main(void *arg)
{
	herd_scope *left_open;

	never = make_chan(sizeof(int), 0);
	for (int i = 0; i < HELPERS; i++) {
		helper_rc[i] = helper_go_rc[i] = 1;
		CHECK_OK(HERD_GO(NULL, helper_task, i));
	}
	/* A scope the first task does not close: closing it for the task
	 * would wait for its helpers, were they not canceled first. */
	CHECK_OK(herd_scope_open(&left_open));
	for (int i = HELPERS; i < HELPERS + NESTED; i++) {
		helper_rc[i] = helper_go_rc[i] = 1;
		CHECK_OK(HERD_GO(left_open, helper_task, i));
	}
	CHECK_OK(herd_go(NULL, proc_task, NULL, 0));
	wait_sleepers(0, 1);
	test_wait_parked(HELPERS + NESTED + 1);
	/* Returns: the program ends, as Go's main. */
}

/* The first task returns while 10 helpers block for ever on a channel and
 * a child runs `sleep 3600`: herd_run returns, the helpers saw
 * HERD_ECANCELED (and could not spawn), and no process is left. */
TEST(cancel_on_return)
{
	herd_config cfg = {0};

	snprintf(mark, sizeof mark, "HERD_TEST_MARK=proc-%d", (int)getpid());
	CHECK(setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1) == 0);
	cfg.workers = 4;
	cfg.flags = HERD_RUN_CANCEL_ON_RETURN;
	int64_t t0 = herd_now();
	CHECK_EQ(herd_run(&cfg, first_main, NULL), 0);
	/* Promptly: nobody waited for a deadline. */
	CHECK(herd_now() - t0 < LONG_WAIT);
	for (int i = 0; i < HELPERS + NESTED; i++) {
		CHECK_EQ(helper_rc[i], HERD_ECANCELED);
		CHECK_EQ(helper_go_rc[i], HERD_ECANCELED);
	}
	/* Canceled, or woken first by the exit that the cancellation's
	 * SIGTERM caused. */
	CHECK(proc_rc == HERD_ECANCELED || proc_rc == TERMED);
	check_nothing_left(0);
	CHECK_OK(herd_chan_free(never));
}

/* ------------------------------------------------------------------ */

static atomic_int late_rc = 1;

static void late_task(void *p)
{
	atomic_store(&late_rc, herd_sleep(herd_deadline(100 * HERD_MSEC)));
}

static void wait_main(void *arg)
{
	CHECK_OK(herd_go(NULL, late_task, NULL, 0));
}

/* Without the flag, herd_run waits for every task: the helper sleeps to its
 * end, uncanceled. */
TEST(default_waits)
{
	herd_config cfg = {0};

	cfg.workers = 2;
	CHECK_EQ(herd_run(&cfg, wait_main, NULL), 0);
	CHECK_EQ(late_rc, 0);
}

/* ------------------------------------------------------------------ */

static atomic_int flag_ran;

static void flag_main(void *arg)
{
	atomic_store(&flag_ran, 1);
}

/* An unknown flag is refused before anything runs. */
TEST(unknown_flag)
{
	herd_config cfg = {0};

	cfg.flags = ~HERD_RUN_CANCEL_ON_RETURN;
	CHECK_EQ(herd_run(&cfg, flag_main, NULL), -EINVAL);
	cfg.flags = HERD_RUN_SIGQUIT_DUMP << 1; /* the first unknown one */
	CHECK_EQ(herd_run(&cfg, flag_main, NULL), -EINVAL);
	CHECK_EQ(flag_ran, 0);
	cfg.flags = HERD_RUN_CANCEL_ON_RETURN;
	CHECK_EQ(herd_run(&cfg, flag_main, NULL), 0);
	CHECK_EQ(flag_ran, 1);
}
