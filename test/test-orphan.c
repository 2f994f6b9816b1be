/*
 * test-orphan.c - herd is a child subreaper once it has started a child,
 * so orphans of processes the program started by other means come to it:
 * it reaps them (no zombie piles up), and never a child of the program's
 * own, which the program may still wait for.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <pthread.h>
#include <stdatomic.h>

#define SYSTEMS 20

/* Makes herd a subreaper: it becomes one at its first start. */
static void first_start(void)
{
	char *argv[] = {"true", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_proc *p;
	CHECK_OK(herd_proc_start(&p, NULL, &o, herd_deadline(LONG_WAIT)));
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK_OK(herd_proc_free(p));
}

static int system_task_rc;

static void system_task(void *arg)
{
	(void)arg;
	/* sh starts sleep in the background and exits; system() reaps sh,
	 * and the sleep, orphaned, comes to herd. */
	system_task_rc = system("sleep 0.05 &");
}

static void system_main(void *arg)
{
	first_start();
	for (int i = 0; i < SYSTEMS; i++) {
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(herd_go(s, system_task, NULL, 0));
		CHECK_OK(herd_scope_close(s));
		CHECK_EQ(system_task_rc, 0);
	}
	/* The sleeps end within a moment; their zombies must not stay. */
	CHECK(poll_procs(MARKED, 0, 0, LONG_WAIT));
	int64_t give_up = herd_deadline(5 * HERD_SEC);
	int zombies;
	while ((zombies = count_procs(ZOMBIES, 0)) && herd_now() < give_up)
		CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	if (zombies)
		fprintf(stderr, "%d orphans of system(\"cmd &\") left as zombies\n", zombies);
	CHECK_EQ(zombies, 0);
}

/* Orphans of the program's own processes (system("sleep 0.05 &") twenty
 * times, once herd is a subreaper) are reaped while the program runs:
 * within 5 s no zombie child is left. */
TEST(orphans_of_system_reaped)
{
	run_marked(system_main, NULL);
	check_nothing_left(0);
}

/* The program's own children ---------------------------------------- */

static pid_t before_run;   /* forked by the main thread before herd_run */

static void *fork_thread(void *arg)
{
	(void)arg;
	pid_t pid = fork();
	if (pid == 0)
		_exit(8);
	/* The thread lives on: its child stays its own. */
	struct timespec ts = {0, 500 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int st = 0;
	pid_t got = waitpid(pid, &st, 0);
	return (void *)(intptr_t)(got == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void own_main(void *arg)
{
	first_start();
	/* A child forked by a task (so by a worker thread), that exits at
	 * once: the program waits for it later. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(7);
	/* A child forked by a thread of the program's own. */
	pthread_t th;
	CHECK(pthread_create(&th, NULL, fork_thread, NULL) == 0);
	/* Long enough for the supervisor to look for orphans many times. */
	CHECK_OK(herd_sleep(herd_deadline(HERD_SEC)));
	int st = 0;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	void *res;
	CHECK(pthread_join(th, &res) == 0);
	CHECK_EQ((intptr_t)res, 8);
}

/* Children the program forks itself (from a task, from a thread of its
 * own, and from the main thread before herd_run), which exit while herd
 * runs, are left for the program to reap: each waitpid gets its status. */
TEST(own_children_not_reaped)
{
	before_run = fork();
	CHECK(before_run >= 0);
	if (before_run == 0)
		_exit(9);
	run_marked(own_main, NULL);
	int st = 0;
	CHECK_EQ(waitpid(before_run, &st, 0), before_run);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 9);
	check_nothing_left(0);
}
