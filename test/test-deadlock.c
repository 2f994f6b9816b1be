/*
 * test-deadlock.c - the deadlock report: a program whose tasks all wait
 * for each other is reported, with its tasks, and herd_run returns
 * HERD_EDEADLOCK; one that waits on a timer, a descriptor, a child
 * process or a signal is not; tasks that cancellation cannot free end the
 * process with status 2; HERD_RUN_NO_DEADLOCK_CHECK turns it off.
 *
 * Each case runs its program in a forked child (test_child) whose stderr
 * it reads.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/wait.h>

#define HEADLINE "herd: all tasks are asleep - deadlock!"

static char err[1 << 16];

static int run_rc;             /* herd_run's result, in the child */
static unsigned run_flags;

static void run_child(herd_fn fn)
{
	herd_config cfg = {.workers = 2, .flags = run_flags};
	run_rc = herd_run(&cfg, fn, NULL);
	fprintf(stderr, "\nherd_run returned %s\n", herd_errname(run_rc));
}

/* The program of a case whose child only runs it (test_child takes no
 * argument). */
static herd_fn child_fn;

static void child_runs_fn(void)
{
	run_child(child_fn);
}

/* Runs child (NULL: child_runs_fn with fn) and checks that its program
 * ended normally, with no report. */
static void expect_not_reported(void (*child)(void), herd_fn fn)
{
	child_fn = fn;
	test_child_ok(test_child(child ? child : child_runs_fn, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, "deadlock") == NULL);
	CHECK_TEXT(err, strstr(err, "herd_run returned 0") != NULL);
}

/* ------------------------------------------------------------------ */
/* Reported                                                           */
/* ------------------------------------------------------------------ */

static _Atomic int recv_result = 1;

/* Not inlined: the report names it. */
__attribute__((noinline)) static void waits_for_nobody(herd_chan *ch)
{
	int v;
	recv_result = herd_chan_recv(ch, &v, HERD_FOREVER);
	__asm__ volatile("" ::: "memory"); /* keeps the frame: no tail call */
}

static void forgotten(void *p)
{
	waits_for_nobody(*(herd_chan **)p);
}

static herd_chan *nobody_sends[2];

static void chan_main(void *unused)
{
	(void)unused;
	nobody_sends[0] = make_chan(sizeof(int), 0);
	CHECK_OK(HERD_GO(NULL, forgotten, nobody_sends[0]));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	/* The scope waits for a task that waits for nobody. */
	nobody_sends[1] = make_chan(sizeof(int), 0);
	CHECK_OK(HERD_GO(s, forgotten, nobody_sends[1]));
	CHECK_EQ(herd_scope_close(s), 0);
}

static void chan_child(void)
{
	run_child(chan_main);
	/* Every task has ended: the cancellation ended them. */
	CHECK_OK(herd_chan_free(nobody_sends[0]));
	CHECK_OK(herd_chan_free(nobody_sends[1]));
	/* Both receivers were woken by the cancellation. */
	fprintf(stderr, "recv_result %s\n", herd_errname(recv_result));
}

TEST(reported_and_ended)
{
	test_child_ok(test_child(chan_child, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, HEADLINE) != NULL);
	CHECK_TEXT(err, strstr(err, "herd_run returned HERD_EDEADLOCK") != NULL);
	CHECK_TEXT(err, strstr(err, "recv_result HERD_ECANCELED") != NULL);
	CHECK_TEXT(err, test_count(err, HEADLINE) == 1);
	/* Three tasks: two receivers and the first, closing its scope. */
	CHECK_TEXT(err, test_count(err, "[channel receive") == 2);
	CHECK_TEXT(err, test_count(err, "[scope close") == 1);
	CHECK_TEXT(err, strstr(err, "spawned at herd_run") != NULL);
	CHECK_TEXT(err, strstr(err, "spawned at test/test-deadlock.c:") ||
	      strstr(err, "spawned at test-deadlock.c:") || strstr(err, "test-deadlock.c:"));
	CHECK_TEXT(err, strstr(err, "waits_for_nobody") != NULL);
	CHECK_TEXT(err, strstr(err, "seed ") != NULL);
}

static void wg_main(void *unused)
{
	(void)unused;
	herd_wg wg = HERD_WG_INIT;
	CHECK_OK(herd_wg_add(&wg, 1));
	CHECK_EQ(herd_wg_wait(&wg, HERD_FOREVER), HERD_ECANCELED);
}

static void wg_child(void)
{
	run_child(wg_main);
}

TEST(wait_group_reported)
{
	test_child_ok(test_child(wg_child, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, HEADLINE) != NULL);
	CHECK_TEXT(err, strstr(err, "[wait group ") != NULL);
	CHECK_TEXT(err, strstr(err, "herd_run returned HERD_EDEADLOCK") != NULL);
}

/* Two tasks lock two mutexes in opposite orders: cancellation does not end
 * a mutex wait, so the process ends with status 2. */
static herd_mutex ma = HERD_MUTEX_INIT, mb = HERD_MUTEX_INIT;
static herd_wg both_locked = HERD_WG_INIT;

static void lock_ab(void *p)
{
	bool a_first = *(bool *)p;
	herd_mutex *first = a_first ? &ma : &mb, *second = a_first ? &mb : &ma;
	CHECK_OK(herd_mutex_lock(first, HERD_FOREVER));
	CHECK_OK(herd_wg_done(&both_locked));
	CHECK_OK(herd_wg_wait(&both_locked, HERD_FOREVER));
	CHECK_OK(herd_mutex_lock(second, HERD_FOREVER));
}

static void mutex_main(void *unused)
{
	(void)unused;
	CHECK_OK(herd_wg_add(&both_locked, 2));
	CHECK_OK(HERD_GO(NULL, lock_ab, true));
	CHECK_OK(HERD_GO(NULL, lock_ab, false));
}

static void mutex_child(void)
{
	run_child(mutex_main);
	fprintf(stderr, "not reached\n");
}

TEST(mutex_cycle_ends_process)
{
	int status = test_child(mutex_child, err, sizeof err);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
		fprintf(stderr, "wait status 0x%x, stderr:\n%s\n", (unsigned)status, err);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	CHECK_TEXT(err, test_count(err, HEADLINE) == 1);
	CHECK_TEXT(err, strstr(err, "still asleep after their cancellation") != NULL);
	CHECK_TEXT(err, test_count(err, "[mutex ") == 4); /* two tasks, two reports */
	CHECK_TEXT(err, strstr(err, "not cancelable") != NULL);
	CHECK_TEXT(err, strstr(err, "not reached") == NULL);
}

/* ------------------------------------------------------------------ */
/* Not reported                                                       */
/* ------------------------------------------------------------------ */

static void sleeper(void *p)
{
	CHECK_OK(herd_sleep(herd_deadline(600 * HERD_MSEC)));
	int one = 1;
	CHECK_OK(herd_chan_send(*(herd_chan **)p, &one, HERD_FOREVER));
}

static void timer_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int), 0);
	CHECK_OK(HERD_GO(NULL, sleeper, ch));
	int v;
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	CHECK_OK(herd_chan_free(ch));
}

TEST(timer_not_reported)
{
	expect_not_reported(NULL, timer_main);
}

/* A channel timer, which no task's own deadline stands for: only the
 * timer heap says that something will wake the receiver. */
static void timer_chan_main(void *unused)
{
	(void)unused;
	herd_timer *tm;
	CHECK_OK(herd_timer_new(&tm, herd_deadline(600 * HERD_MSEC), 0));
	int64_t when;
	CHECK_OK(herd_chan_recv(herd_timer_chan(tm), &when, HERD_FOREVER));
	CHECK_OK(herd_timer_free(tm));
}

TEST(timer_channel_not_reported)
{
	expect_not_reported(NULL, timer_chan_main);
}

/* A descriptor: a process forked before the run writes to a pipe later. */
static int pipe_fds[2];

static void fd_main(void *unused)
{
	(void)unused;
	char c;
	CHECK_EQ(herd_read(pipe_fds[0], &c, 1, HERD_FOREVER), 1);
}

static void fd_child(void)
{
	CHECK(pipe(pipe_fds) == 0);
	pid_t writer = fork();
	CHECK(writer >= 0);
	if (writer == 0) {
		usleep(600 * 1000);
		_exit(write(pipe_fds[1], "x", 1) == 1 ? 0 : 1);
	}
	run_child(fd_main);
	CHECK(waitpid(writer, NULL, 0) == writer);
}

TEST(descriptor_not_reported)
{
	expect_not_reported(fd_child, NULL);
}

/* A child process: a task waits for it, then wakes the first task. */
static void waits_for_child(void *p)
{
	herd_proc *proc;
	char *argv[] = {"sleep", "0.6", NULL};
	herd_proc_opts o = {.argv = argv};
	CHECK_OK(herd_proc_start(&proc, NULL, &o, HERD_FOREVER));
	int status;
	CHECK_OK(herd_proc_wait(proc, &status, HERD_FOREVER));
	CHECK_OK(herd_proc_free(proc));
	CHECK_OK(herd_chan_send(*(herd_chan **)p, &status, HERD_FOREVER));
}

static void proc_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int), 0);
	CHECK_OK(HERD_GO(NULL, waits_for_child, ch));
	int v;
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	CHECK_OK(herd_chan_free(ch));
}

TEST(process_not_reported)
{
	expect_not_reported(NULL, proc_main);
}

/* A signal delivered to a channel: a process forked before the run sends
 * it later. */
static void signal_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int), 1);
	CHECK_OK(herd_signal_notify(ch, SIGUSR1));
	int sig;
	CHECK_OK(herd_chan_recv(ch, &sig, HERD_FOREVER));
	CHECK_EQ(sig, SIGUSR1);
	CHECK_OK(herd_signal_stop(ch));
	CHECK_OK(herd_chan_free(ch));
}

static void signal_child(void)
{
	pid_t me = getpid();
	pid_t sender = fork();
	CHECK(sender >= 0);
	if (sender == 0) {
		usleep(600 * 1000);
		_exit(kill(me, SIGUSR1) == 0 ? 0 : 1);
	}
	run_child(signal_main);
	CHECK(waitpid(sender, NULL, 0) == sender);
}

TEST(signal_wait_not_reported)
{
	expect_not_reported(signal_child, NULL);
}

/* A thread of the program's own wakes the task: herd cannot see it, so
 * the program sets HERD_RUN_NO_DEADLOCK_CHECK. Without the flag the same
 * program is reported, which is why the flag exists: there the thread
 * sends only once herd_run has returned, so that the report cannot lose a
 * race with the send however slow the machine. */
static herd_chan *from_thread;
static atomic_int run_over;

static void *thread_sends(void *unused)
{
	(void)unused;
	if (run_flags & HERD_RUN_NO_DEADLOCK_CHECK)
		usleep(600 * 1000);
	else
		while (!atomic_load(&run_over))
			usleep(1000);
	int one = 1;
	(void)herd_chan_try_send(from_thread, &one);
	return NULL;
}

static void thread_main(void *unused)
{
	(void)unused;
	int v;
	int rc = herd_chan_recv(from_thread, &v, HERD_FOREVER);
	fprintf(stderr, "recv %s\n", herd_errname(rc));
}

static void thread_child(void)
{
	from_thread = make_chan(sizeof(int), 1);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, thread_sends, NULL) == 0);
	run_child(thread_main);
	atomic_store(&run_over, 1);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_chan_free(from_thread));
}

TEST(flag_turns_check_off)
{
	run_flags = HERD_RUN_NO_DEADLOCK_CHECK;
	test_child_ok(test_child(thread_child, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, "deadlock") == NULL);
	CHECK_TEXT(err, strstr(err, "recv 0") != NULL);
	CHECK_TEXT(err, strstr(err, "herd_run returned 0") != NULL);

	run_flags = 0;
	test_child_ok(test_child(thread_child, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, HEADLINE) != NULL);
	CHECK_TEXT(err, strstr(err, "recv HERD_ECANCELED") != NULL);
	CHECK_TEXT(err, strstr(err, "herd_run returned HERD_EDEADLOCK") != NULL);
}
