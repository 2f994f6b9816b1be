/*
 * test-dump.c - herd_dump and SIGQUIT: a task blocked on a channel is
 * listed with what it waits on, where it was spawned and a stack naming
 * the function that blocked; child processes are listed with their pid
 * and command; bad calls fail cleanly.
 */
#include "test.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

static char err[1 << 16];


/* Reads what the dump wrote into a pipe (it is small enough to fit). */
static void dump_to(char *buf, size_t size)
{
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK_OK(herd_dump(p[1]));
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < size - 1 && (r = read(p[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(p[0]);
}

static herd_chan *blocked_on;
static int blocked_line;

/* Not inlined, so that it has a frame of its own that the dump names. */
__attribute__((noinline)) static void blocked_in_here(herd_chan *ch)
{
	int v;
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	__asm__ volatile("" ::: "memory"); /* no tail call */
}

static void receiver(void *p)
{
	blocked_in_here(*(herd_chan **)p);
}

static void blocked_main(void *unused)
{
	(void)unused;
	static char buf[1 << 16];
	blocked_on = make_chan(sizeof(int), 0);
	blocked_line = __LINE__ + 1;
	CHECK_OK(HERD_GO(NULL, receiver, blocked_on));
	test_wait_parked(1);
	/* Its stack shows once its worker has switched away from it (until
	 * then the dump lists it without one): dump again until it does. */
	for (int i = 0; i < 2000; i++) {
		dump_to(buf, sizeof buf);
		if (strstr(buf, "blocked_in_here"))
			break;
		CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	}

	char want[128];
	snprintf(want, sizeof want, "[channel receive %p, ", (void *)blocked_on);
	CHECK_TEXT(buf, strstr(buf, want) != NULL);
	snprintf(want, sizeof want, "test-dump.c:%d, in scope ", blocked_line);
	CHECK_TEXT(buf, strstr(buf, want) != NULL);
	/* The stack, innermost first: herd's park, then the function that
	 * made the blocking call, then its caller's frames. */
	const char *park = strstr(buf, "\therd__park+0x");
	const char *fn = strstr(buf, "\tblocked_in_here+0x");
	CHECK_TEXT(buf, park && fn && park < fn);
	CHECK_TEXT(buf, strstr(buf, "seed ") != NULL);
	CHECK_TEXT(buf, strstr(buf, "no child process alive") != NULL);
	int one = 1;
	CHECK_OK(herd_chan_send(blocked_on, &one, HERD_FOREVER));
}

TEST(lists_blocked_task)
{
	test_run(2, blocked_main, NULL);
	CHECK_OK(herd_chan_free(blocked_on));
}

static void proc_main(void *unused)
{
	(void)unused;
	static char buf[1 << 16];
	herd_proc *p;
	char *argv[] = {"sleep", "30", NULL};
	herd_proc_opts o = {.argv = argv};
	CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
	dump_to(buf, sizeof buf);
	char want[64];
	snprintf(want, sizeof want, "process %d [running, ", herd_proc_pid(p));
	CHECK_TEXT(buf, strstr(buf, want) != NULL);
	CHECK_TEXT(buf, strstr(buf, "]: sleep 30\n") != NULL);
	int status;
	CHECK_OK(herd_proc_kill(p, &status, HERD_FOREVER));
	CHECK_OK(herd_proc_free(p));
	/* herd_proc_kill returns once the process has exited; the end of its
	 * tree (its cgroup emptied and put back) follows, and until then the
	 * dump lists it as "exited, its tree ending" (seen under qemu). */
	int64_t until = herd_deadline(20 * HERD_SEC);
	for (;;) {
		dump_to(buf, sizeof buf);
		if (strstr(buf, "no child process alive") || herd_now() > until)
			break;
		CHECK_TEXT(buf, strstr(buf, "[exited, its tree ending, ") != NULL);
		CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	}
	CHECK_TEXT(buf, strstr(buf, "no child process alive") != NULL);
}

TEST(lists_processes)
{
	test_run(2, proc_main, NULL);
}

TEST(bad_calls)
{
	CHECK_EQ(herd_dump(1), -ESRCH); /* no runtime */
	CHECK_EQ(herd_dump(-1), -EBADF);
}

static void closed_fd_main(void *unused)
{
	(void)unused;
	int p[2];
	CHECK(pipe(p) == 0);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(herd_dump(p[1]), -EBADF);
}

TEST(write_error_returned)
{
	test_run(1, closed_fd_main, NULL);
}

/* SIGQUIT, with HERD_RUN_SIGQUIT_DUMP: the dump on stderr, and the program
 * goes on. stderr is a file during the run, which the task reads until
 * the dump has come (the supervisor writes it when it will). */
static int quit_err = -1;

static bool quit_dumped(void)
{
	static char buf[1 << 16];
	ssize_t n = pread(quit_err, buf, sizeof buf - 1, 0);
	CHECK(n >= 0);
	buf[n] = 0;
	return strstr(buf, "blocked_in_here") && strstr(buf, "no child process alive");
}

static void quit_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int), 0);
	CHECK_OK(HERD_GO(NULL, receiver, ch));
	test_wait_parked(1);
	/* Again if the first dump caught the receiver still switching away
	 * (it is then listed without its stack). */
	for (int i = 0; i < 20 && !quit_dumped(); i++) {
		CHECK(kill(getpid(), SIGQUIT) == 0);
		for (int j = 0; j < 100 && !quit_dumped(); j++)
			CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	}
	int one = 1;
	CHECK_OK(herd_chan_send(ch, &one, HERD_FOREVER));
	while (herd_chan_free(ch) == -EBUSY) /* until the receiver is gone */
		CHECK_OK(herd_yield());
	fprintf(stderr, "went on\n");
}

static void quit_child(void)
{
	FILE *f = tmpfile();
	CHECK(f != NULL);
	quit_err = fileno(f);
	int saved = dup(2);
	CHECK(saved >= 0 && dup2(quit_err, 2) == 2);
	herd_config cfg = {.workers = 2, .flags = HERD_RUN_SIGQUIT_DUMP};
	int rc = herd_run(&cfg, quit_main, NULL);
	/* What the run wrote, on the stderr the test reads. */
	CHECK(dup2(saved, 2) == 2);
	static char buf[1 << 16];
	ssize_t n = pread(quit_err, buf, sizeof buf, 0);
	CHECK(n >= 0 && write(2, buf, (size_t)n) == n);
	fclose(f);
	close(saved);
	CHECK_OK(rc);
	/* The action is the default again: a second SIGQUIT would kill. */
	struct sigaction sa;
	CHECK(sigaction(SIGQUIT, NULL, &sa) == 0);
	CHECK(sa.sa_handler == SIG_DFL);
}

TEST(sigquit_dumps)
{
	test_child_ok(test_child(quit_child, err, sizeof err), err);
	CHECK_TEXT(err, strstr(err, "herd: SIGQUIT: task dump") != NULL);
	CHECK_TEXT(err, strstr(err, "[channel receive ") != NULL);
	CHECK_TEXT(err, strstr(err, "blocked_in_here") != NULL);
	CHECK_TEXT(err, strstr(err, "went on") != NULL);
}
