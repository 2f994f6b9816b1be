/*
 * test-fd.c - descriptors and I/O (herd_fd_wait, herd_read, herd_write,
 * herd_accept, herd_connect, herd_pipe, herd_close, herd_fd_stats_get):
 * a task blocked on a pipe is woken by a write and by end of file; 1,000
 * readers on 1,000 pipes; deadlines, cancellation, HERD_NOWAIT and bad
 * descriptors; a reader and a writer waiting on one socket; several readers
 * on one pipe; hang-ups; herd_fd_nonblock; TCP accept, connect and a
 * 1 MiB echo; idle workers sleep in the poller, busy ones still poll, and
 * timers fire while descriptors are waited on; the descriptor budget
 * counts, and a creation at the limit waits for a herd_close.
 */
#define _GNU_SOURCE /* pipe2 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* Far enough never to pass in a correct run; the CTest timeout is 60 s. */
#define LONG_WAIT (20 * HERD_SEC)
/* A result that a task has not stored yet. */
#define PENDING (-999999)

static void check_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	CHECK(fl >= 0 && (fl & O_NONBLOCK));
	CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC));
}

static void close_pipe(int fds[2])
{
	CHECK_OK(herd_close(fds[0]));
	CHECK_OK(herd_close(fds[1]));
}

static long open_now(void)
{
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	return st.open;
}

/* One blocking call made by a task, its result stored in rc (PENDING until
 * then): most cases park tasks with these and watch what wakes them. */
enum { OP_WAIT, OP_READ, OP_ACCEPT, OP_PIPE };

struct op {
	int kind, fd, events;
	int fds[2];
	char buf[64];
	atomic_int rc;
};

static void op_task(void *p)
{
	struct op *o = p;
	int64_t d = herd_deadline(LONG_WAIT);
	int rc;
	switch (o->kind) {
	case OP_WAIT: rc = herd_fd_wait(o->fd, o->events, d); break;
	case OP_READ: rc = (int)herd_read(o->fd, o->buf, sizeof o->buf, d); break;
	case OP_ACCEPT: rc = herd_accept(o->fd, NULL, NULL, d); break;
	default: rc = herd_pipe(o->fds, d); break;
	}
	atomic_store(&o->rc, rc);
}

static void op_start(herd_scope *s, struct op *o, int kind, int fd, int events)
{
	o->kind = kind;
	o->fd = fd;
	o->events = events;
	atomic_store(&o->rc, PENDING);
	CHECK_OK(herd_go(s, op_task, o, 0));
}

/* How many of the n ops have finished. */
static int ops_done(struct op *o, int n)
{
	int done = 0;
	for (int i = 0; i < n; i++)
		done += atomic_load(&o[i].rc) != PENDING;
	return done;
}

/* From a task: waits until at least `want` of the n ops have finished. */
static int wait_done(struct op *o, int n, int want)
{
	int64_t give_up = herd_deadline(LONG_WAIT);
	while (ops_done(o, n) < want) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	return ops_done(o, n);
}

/* Reads fd to end of file; returns the bytes, failing beyond cap. */
static size_t read_to_eof(int fd, unsigned char *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = herd_read(fd, buf + got, cap + 1 - got, herd_deadline(LONG_WAIT));
		CHECK(n >= 0);
		if (n == 0)
			return got;
		got += (size_t)n;
		CHECK(got <= cap);
	}
}

/* ------------------------------------------------------------------ */

static void roundtrip_main(void *arg)
{
	int fds[2] = {-1, -1};
	static struct op r;
	herd_scope *s;
	CHECK_OK(herd_pipe(fds, HERD_FOREVER));
	CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1]);
	check_flags(fds[0]);
	check_flags(fds[1]);

	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_READ, fds[0], 0);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&r.rc), PENDING); /* blocked, not finished */
	static const char msg[] = "hello, herd";
	CHECK_EQ(herd_write(fds[1], msg, sizeof msg, HERD_FOREVER), sizeof msg);
	CHECK_OK(herd_scope_wait(s, HERD_FOREVER));
	CHECK_EQ(atomic_load(&r.rc), sizeof msg);
	CHECK(memcmp(r.buf, msg, sizeof msg) == 0);
	/* Blocked again, on an empty pipe: end of file wakes it with 0. */
	op_start(s, &r, OP_READ, fds[0], 0);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&r.rc), PENDING);
	CHECK_OK(herd_close(fds[1]));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r.rc), 0);
	CHECK_EQ(herd_read(fds[0], r.buf, 1, HERD_NOWAIT), 0); /* and stays at EOF */
	CHECK_OK(herd_close(fds[0]));
}

/* herd_pipe's ends are non-blocking and close-on-exec; a reader parked in
 * herd_read is woken by a write (data intact) and by end of file (0). */
TEST(pipe_roundtrip)
{
	test_run(0, roundtrip_main, NULL);
}

/* ------------------------------------------------------------------ */

#define MW_N (1000 / TEST_SCALE)

static int mw_n;
static int (*mw_fds)[2];
static struct op *mw_ops;

static void mw_writer(void *p)
{
	unsigned seed = *(unsigned *)p;
	int *order = malloc((size_t)mw_n * sizeof *order);
	CHECK(order != NULL);
	for (int i = 0; i < mw_n; i++)
		order[i] = i;
	for (int i = mw_n - 1; i > 0; i--) {
		int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < mw_n; k++) {
		int i = order[k];
		CHECK_EQ(herd_write(mw_fds[i][1], &i, sizeof i, HERD_NOWAIT), sizeof i);
		if (k % 16 == 0)
			CHECK_OK(herd_yield());
	}
	free(order);
}

static void mw_main(void *arg)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	mw_n = MW_N;
	if (rl.rlim_max != RLIM_INFINITY && (rlim_t)(2 * mw_n + 64) > rl.rlim_max)
		mw_n = ((int)rl.rlim_max - 64) / 2;
	CHECK(mw_n >= 10);
	long open0 = open_now();
	mw_fds = calloc((size_t)mw_n, sizeof *mw_fds);
	mw_ops = calloc((size_t)mw_n, sizeof *mw_ops);
	CHECK(mw_fds && mw_ops);
	for (int i = 0; i < mw_n; i++)
		CHECK_OK(herd_pipe(mw_fds[i], HERD_NOWAIT));
	CHECK_EQ(open_now(), open0 + 2 * mw_n);

	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < mw_n; i++)
		op_start(s, &mw_ops[i], OP_READ, mw_fds[i][0], 0);
	test_wait_parked((uint64_t)mw_n);
	CHECK_EQ(ops_done(mw_ops, mw_n), 0);
	unsigned seed = (unsigned)herd_now();
	printf("%d pipes, seed %u\n", mw_n, seed);
	CHECK_OK(HERD_GO(s, mw_writer, seed));
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < mw_n; i++) {
		int v;
		CHECK_EQ(atomic_load(&mw_ops[i].rc), sizeof v); /* exactly one value */
		memcpy(&v, mw_ops[i].buf, sizeof v);
		CHECK_EQ(v, i);
		close_pipe(mw_fds[i]);
	}
	CHECK_EQ(open_now(), open0);
	free(mw_fds);
	free(mw_ops);
}

/* 1,000 tasks parked on 1,000 pipes, written in random order: every reader
 * gets exactly its own value (default workers). */
TEST(many_waiters)
{
	test_run(0, mw_main, NULL);
}

/* The same with one worker, which must poll between running tasks. */
TEST(many_waiters_one_worker)
{
	test_run(1, mw_main, NULL);
}

/* ------------------------------------------------------------------ */

static void *nowait_thread(void *p)
{
	int *fds = p;
	char c = 'y';
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_fd_wait(fds[1], HERD_WRITABLE, HERD_NOWAIT), HERD_WRITABLE);
	CHECK(write(fds[1], &c, 1) == 1);
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE | HERD_WRITABLE, HERD_NOWAIT),
		 HERD_READABLE);
	/* Blocking calls need a task. */
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE, herd_deadline(HERD_SEC)), -EPERM);
	CHECK_EQ(herd_read(fds[0], &c, 1, herd_deadline(HERD_SEC)), -EPERM);
	CHECK_EQ(herd_write(fds[1], &c, 1, herd_deadline(HERD_SEC)), -EPERM);
	return NULL;
}

static void deadline_main(void *arg)
{
	int fds[2];
	char c = 'x';
	CHECK_OK(herd_pipe(fds, HERD_NOWAIT));

	/* Never readable: the deadline ends the wait, not before. */
	int64_t d = herd_deadline(30 * HERD_MSEC);
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_read(fds[0], &c, 1, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* A timed-out wait leaves nothing behind: the next one works. */
	CHECK_EQ(herd_write(fds[1], &c, 1, HERD_NOWAIT), 1);
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE, herd_deadline(LONG_WAIT)), HERD_READABLE);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_NOWAIT), 1);

	/* Cancellation wakes a task blocked in herd_read. */
	static struct op r;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_READ, fds[0], 0);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&r.rc), PENDING);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r.rc), HERD_ECANCELED);
	/* And the canceled wait left nothing behind either. */
	CHECK_EQ(herd_write(fds[1], "z", 1, HERD_NOWAIT), 1);
	CHECK_EQ(herd_read(fds[0], &c, 1, herd_deadline(LONG_WAIT)), 1);
	CHECK_EQ(c, 'z');

	/* HERD_NOWAIT reports readiness, from a task and from a plain thread. */
	CHECK_EQ(herd_fd_wait(fds[1], HERD_WRITABLE | HERD_READABLE, HERD_NOWAIT), HERD_WRITABLE);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, nowait_thread, fds) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_NOWAIT), 1);
	CHECK_EQ(c, 'y');

	/* Bad arguments. */
	CHECK_EQ(herd_fd_wait(-1, HERD_READABLE, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_fd_wait(-1, HERD_READABLE, herd_deadline(HERD_SEC)), -EINVAL);
	CHECK_EQ(herd_fd_wait(fds[0], 0, herd_deadline(HERD_SEC)), -EINVAL);
	CHECK_EQ(herd_fd_wait(fds[0], 4, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE | 8, herd_deadline(HERD_SEC)), -EINVAL);

	/* A descriptor that is not open: a number far above any in use. */
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	int bad = fcntl(fds[0], F_DUPFD_CLOEXEC, st.limit > 701 ? 700 : (int)st.limit - 2);
	CHECK(bad >= 0);
	CHECK(close(bad) == 0);
	CHECK_EQ(herd_fd_wait(bad, HERD_READABLE, herd_deadline(HERD_SEC)), -EBADF);
	CHECK_EQ(herd_fd_wait(bad, HERD_WRITABLE, HERD_NOWAIT), -EBADF);
	CHECK_EQ(herd_read(bad, &c, 1, herd_deadline(HERD_SEC)), -EBADF);

	/* A regular file, a directory: always ready, so -EPERM. */
	FILE *f = tmpfile();
	CHECK(f != NULL);
	CHECK_EQ(herd_fd_wait(fileno(f), HERD_READABLE, herd_deadline(HERD_SEC)), -EPERM);
	CHECK_EQ(herd_fd_wait(fileno(f), HERD_WRITABLE, HERD_FOREVER), -EPERM);
	fclose(f);
	int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir >= 0);
	CHECK_EQ(herd_fd_wait(dir, HERD_READABLE, herd_deadline(HERD_SEC)), -EPERM);
	close(dir);

	/* In a canceled scope (here the root), a wait returns at once, even
	 * on a ready descriptor; HERD_NOWAIT is no cancellation point. */
	CHECK_OK(herd_scope_cancel(herd_scope_current()));
	CHECK_EQ(herd_fd_wait(fds[1], HERD_WRITABLE, HERD_FOREVER), HERD_ECANCELED);
	CHECK_EQ(herd_read(fds[0], &c, 1, herd_deadline(LONG_WAIT)), HERD_ECANCELED);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_write(fds[1], "n", 1, HERD_NOWAIT), 1);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_NOWAIT), 1);
	close_pipe(fds);
}

/* herd_fd_wait and herd_read end with HERD_ETIMEDOUT at the deadline (not
 * before) and with HERD_ECANCELED on cancellation, leaving no stale state;
 * HERD_NOWAIT reports readiness from tasks and plain threads; -EINVAL, -EBADF,
 * -EPERM for bad arguments, closed descriptors, files and plain threads. */
TEST(wait_deadline_and_cancel)
{
	test_run(0, deadline_main, NULL);
}

/* ------------------------------------------------------------------ */

/* Writes into fd until its send buffer is full. */
static void fill(int fd)
{
	static char junk[4096];
	while (write(fd, junk, sizeof junk) > 0)
		;
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	CHECK_EQ(herd_fd_wait(fd, HERD_WRITABLE, HERD_NOWAIT), HERD_ETIMEDOUT);
}

/* Reads fd until it is empty. */
static void drain(int fd)
{
	static char sink[65536];
	while (read(fd, sink, sizeof sink) > 0)
		;
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The waiter stays parked: it has had time to be woken wrongly. */
static void still_pending(struct op *o)
{
	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_MSEC)));
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&o->rc), PENDING);
}

static void both_main(void *arg)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	int a = sv[0], b = sv[1];
	static struct op r, w, rw;
	herd_scope *s;

	/* Readable first, then writable. */
	fill(a);
	CHECK_EQ(herd_fd_wait(a, HERD_READABLE, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_WAIT, a, HERD_READABLE);
	op_start(s, &w, OP_WAIT, a, HERD_WRITABLE);
	test_wait_parked(2);
	CHECK_EQ(atomic_load(&r.rc), PENDING);
	CHECK_EQ(atomic_load(&w.rc), PENDING);
	CHECK(write(b, "x", 1) == 1);
	wait_done(&r, 1, 1);
	CHECK_EQ(atomic_load(&r.rc), HERD_READABLE);
	still_pending(&w);
	drain(b);
	wait_done(&w, 1, 1);
	CHECK_EQ(atomic_load(&w.rc), HERD_WRITABLE);
	CHECK_OK(herd_scope_close(s));
	drain(a);

	/* Writable first, then readable. */
	fill(a);
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_WAIT, a, HERD_READABLE);
	op_start(s, &w, OP_WAIT, a, HERD_WRITABLE);
	test_wait_parked(2);
	drain(b);
	wait_done(&w, 1, 1);
	CHECK_EQ(atomic_load(&w.rc), HERD_WRITABLE);
	still_pending(&r);
	CHECK(write(b, "y", 1) == 1);
	wait_done(&r, 1, 1);
	CHECK_EQ(atomic_load(&r.rc), HERD_READABLE);
	CHECK_OK(herd_scope_close(s));
	drain(a);

	/* One wait for both events reports only the one that is ready. */
	fill(a);
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &rw, OP_WAIT, a, HERD_READABLE | HERD_WRITABLE);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&rw.rc), PENDING);
	CHECK(write(b, "z", 1) == 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&rw.rc), HERD_READABLE);
	close(a);
	close(b);
}

/* A reader and a writer waiting on the same socket are woken each by its
 * own event, independently and in either order; a wait for both events
 * reports only the ready one. */
TEST(both_directions)
{
	test_run(0, both_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SH_N 4

static void shared_main(void *arg)
{
	static struct op rd[SH_N];
	int fds[2], done = 0, seen = 0;
	herd_scope *s;
	CHECK_OK(herd_pipe(fds, HERD_NOWAIT));
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < SH_N; i++)
		op_start(s, &rd[i], OP_READ, fds[0], 0);
	for (int k = 0; k < SH_N; k++) {
		/* The readers not yet served are all parked on the one pipe. */
		test_wait_parked((uint64_t)(SH_N - k));
		CHECK_EQ(done, k);
		char c = (char)('a' + k);
		CHECK_EQ(herd_write(fds[1], &c, 1, HERD_NOWAIT), 1);
		done = wait_done(rd, SH_N, k + 1);
		CHECK_EQ(done, k + 1); /* one reader per byte */
	}
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < SH_N; i++) {
		CHECK_EQ(atomic_load(&rd[i].rc), 1);
		int c = rd[i].buf[0] - 'a';
		CHECK(c >= 0 && c < SH_N && !(seen & 1 << c));
		seen |= 1 << c;
	}
	close_pipe(fds);
}

/* Several tasks blocked reading one pipe: each byte goes to one reader, and
 * those that lost a race wait again instead of failing or hanging. */
TEST(shared_fd_readers)
{
	test_run(0, shared_main, NULL);
}

/* ------------------------------------------------------------------ */

static void hangup_main(void *arg)
{
	int fds[2];
	char c;
	static struct op r, w;
	herd_scope *s;

	/* The writer goes: a reader waiting for both events gets both. */
	CHECK_OK(herd_pipe(fds, HERD_NOWAIT));
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_WAIT, fds[0], HERD_READABLE | HERD_WRITABLE);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&r.rc), PENDING);
	CHECK_OK(herd_close(fds[1]));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r.rc), HERD_READABLE | HERD_WRITABLE);
	CHECK_EQ(herd_fd_wait(fds[0], HERD_READABLE | HERD_WRITABLE, HERD_NOWAIT),
		 HERD_READABLE | HERD_WRITABLE);
	CHECK_EQ(herd_read(fds[0], &c, 1, HERD_FOREVER), 0);
	CHECK_OK(herd_close(fds[0]));

	/* The reader goes: a writer waiting on a full pipe is woken, and its
	 * write fails with -EPIPE. */
	CHECK_OK(herd_pipe(fds, HERD_NOWAIT));
	fill(fds[1]);
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &w, OP_WAIT, fds[1], HERD_WRITABLE);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&w.rc), PENDING);
	CHECK_OK(herd_close(fds[0]));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&w.rc), HERD_WRITABLE);
	CHECK_EQ(herd_write(fds[1], "x", 1, HERD_FOREVER), -EPIPE);
	CHECK_OK(herd_close(fds[1]));
}

/* An error or hang-up wakes a waiter with every event it asked for, so that
 * the next read or write reports it (0, -EPIPE). */
TEST(hangup_reports_all)
{
	signal(SIGPIPE, SIG_IGN);
	test_run(0, hangup_main, NULL);
}

/* ------------------------------------------------------------------ */

static void nonblock_main(void *arg)
{
	int fds[2];
	char c;
	CHECK(pipe2(fds, O_CLOEXEC) == 0); /* blocking, and not herd's */
	CHECK_EQ(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
	CHECK_OK(herd_fd_nonblock(fds[0]));
	CHECK_OK(herd_fd_nonblock(fds[0])); /* twice is harmless */
	check_flags(fds[0]);
	/* Now herd_read waits in the poller, and its deadline holds. */
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_read(fds[0], &c, 1, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK(write(fds[1], "n", 1) == 1);
	CHECK_EQ(herd_read(fds[0], &c, 1, herd_deadline(LONG_WAIT)), 1);
	CHECK_EQ(herd_fd_nonblock(-1), -EBADF);
	close(fds[0]);
	close(fds[1]);
}

/* herd_fd_nonblock makes a plain blocking pipe non-blocking (idempotent),
 * after which herd_read's deadline holds; -EBADF for a bad descriptor. */
TEST(fd_nonblock)
{
	test_run(0, nonblock_main, NULL);
}

/* ------------------------------------------------------------------ */

static void reused_main(void *arg)
{
	int fds[2];
	char c = 0;
	int s = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
	int s2 = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(s);
	CHECK_OK(s2);
	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0); /* the program's own */
	/* The program puts a pipe's ends where herd's sockets were, unseen
	 * (a close(2) and a reuse of each number, at once). */
	CHECK(dup2(fds[0], s) == s);
	CHECK(dup2(fds[1], s2) == s2);
	/* herd reads and writes them as what they are now. */
	CHECK_EQ(herd_write(s2, "r", 1, herd_deadline(LONG_WAIT)), 1);
	CHECK_EQ(herd_read(s, &c, 1, herd_deadline(LONG_WAIT)), 1);
	CHECK_EQ(c, 'r');
	/* And again, and after a wait. */
	CHECK_EQ(herd_read(s, &c, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_write(s2, "u", 1, HERD_NOWAIT), 1);
	CHECK_EQ(herd_read(s, &c, 1, herd_deadline(LONG_WAIT)), 1);
	CHECK_EQ(c, 'u');
	CHECK_OK(herd_close(s));
	CHECK_OK(herd_close(s2));
	close(fds[0]);
	close(fds[1]);
}

static void zero_read_main(void *arg)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof addr;
	char c = 0;
	int a = herd_socket(AF_INET, SOCK_DGRAM, 0, HERD_NOWAIT);
	int b = herd_socket(AF_INET, SOCK_DGRAM, 0, HERD_NOWAIT);
	CHECK_OK(a);
	CHECK_OK(b);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(a, (struct sockaddr *)&addr, sizeof addr) == 0);
	CHECK(getsockname(a, (struct sockaddr *)&addr, &len) == 0);
	CHECK(sendto(b, "d", 1, 0, (struct sockaddr *)&addr, sizeof addr) == 1);
	/* A read of nothing takes nothing, as read(2) does: the datagram
	 * is still there for the next read. */
	CHECK_EQ(herd_read(a, &c, 0, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(herd_read(a, &c, 1, herd_deadline(2 * HERD_SEC)), 1);
	CHECK_EQ(c, 'd');
	CHECK_OK(herd_close(a));
	CHECK_OK(herd_close(b));
}

/* herd_read of 0 bytes on a datagram socket herd made returns 0 and
 * leaves the queued datagram (recv would take it). */
TEST(socket_zero_read)
{
	test_run(0, zero_read_main, NULL);
}

/* A socket herd made (read and written with recv and send) whose number
 * the program reuses for a pipe, unseen: herd_read and herd_write work on
 * the pipe. */
TEST(socket_number_reused)
{
	test_run(0, reused_main, NULL);
}

/* ------------------------------------------------------------------ */

#define ECHO_BYTES (1 << 20)
#define ECHO_CHUNK 16384

static struct echo {
	int lfd, cfd;
	long open0;
	herd_chan *full;
	unsigned char *out, *in;
} echo;

static void echo_server(void *arg)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof peer;
	int64_t d = herd_deadline(LONG_WAIT);
	int c = herd_accept(echo.lfd, (struct sockaddr *)&peer, &len, d), sig;
	CHECK_OK(c);
	check_flags(c);
	CHECK_EQ(len, sizeof peer);
	CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	CHECK_EQ(open_now(), echo.open0 + 3); /* listener, client, this one */
	/* Read nothing until the client has filled its buffers. */
	CHECK_OK(herd_chan_recv(echo.full, &sig, d));
	unsigned char *buf = malloc(ECHO_CHUNK);
	CHECK(buf != NULL);
	ssize_t n;
	while ((n = herd_read(c, buf, ECHO_CHUNK, d)) > 0)
		CHECK_EQ(herd_write_all(c, buf, (size_t)n, d), n);
	CHECK_EQ(n, 0);
	free(buf);
	CHECK_OK(herd_close(c));
}

static void echo_sender(void *arg)
{
	int64_t d = herd_deadline(LONG_WAIT);
	size_t off = 0;
	ssize_t n;
	/* Without waiting, until the socket is full: the rest of the
	 * megabyte must wait for the server. */
	while ((n = herd_write(echo.cfd, echo.out + off, ECHO_BYTES - off, HERD_NOWAIT)) > 0)
		off += (size_t)n;
	CHECK_EQ(n, HERD_ETIMEDOUT);
	CHECK(off < ECHO_BYTES);
	printf("the buffers took %zu bytes\n", off);
	int sig = 1;
	CHECK_OK(herd_chan_send(echo.full, &sig, d));
	CHECK_EQ(herd_write_all(echo.cfd, echo.out + off, ECHO_BYTES - off, d), ECHO_BYTES - off);
	CHECK(shutdown(echo.cfd, SHUT_WR) == 0);
}

/* A socket on 127.0.0.1, bound to a free port, listening if backlog > 0. */
static int bound_socket(struct sockaddr_in *addr, int backlog)
{
	int fd = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT), small = 32768;
	CHECK_OK(fd);
	check_flags(fd);
	/* Small buffers (accepted sockets inherit them): 1 MiB cannot fit. */
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
	memset(addr, 0, sizeof *addr);
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)addr, sizeof *addr) == 0);
	CHECK(backlog == 0 || listen(fd, backlog) == 0);
	socklen_t len = sizeof *addr;
	CHECK(getsockname(fd, (struct sockaddr *)addr, &len) == 0);
	return fd;
}

static void sockets_main(void *arg)
{
	struct sockaddr_in addr;
	static struct op ac;
	herd_scope *s;
	echo.open0 = open_now();
	echo.lfd = bound_socket(&addr, 16);

	/* Nobody connects: accept ends at its deadline, not before. */
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_accept(echo.lfd, NULL, NULL, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_accept(echo.lfd, NULL, NULL, HERD_NOWAIT), HERD_ETIMEDOUT);

	CHECK_OK(herd_chan_make(&echo.full, sizeof(int), 0));
	echo.out = malloc(ECHO_BYTES);
	echo.in = malloc(ECHO_BYTES + 1);
	CHECK(echo.out && echo.in);
	unsigned seed = 12345;
	for (int i = 0; i < ECHO_BYTES; i++)
		echo.out[i] = (unsigned char)rand_r(&seed);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, echo_server, NULL, 0));
	test_wait_parked(1); /* the server waits in herd_accept */
	struct sockaddr_in caddr;
	echo.cfd = bound_socket(&caddr, 0);
	CHECK_OK(herd_connect(echo.cfd, (struct sockaddr *)&addr, sizeof addr,
			      herd_deadline(LONG_WAIT)));
	CHECK_OK(herd_go(s, echo_sender, NULL, 0));
	CHECK_EQ(read_to_eof(echo.cfd, echo.in, ECHO_BYTES), ECHO_BYTES);
	CHECK(memcmp(echo.in, echo.out, ECHO_BYTES) == 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_close(echo.cfd));
	CHECK_EQ(open_now(), echo.open0 + 1);
	free(echo.out);
	free(echo.in);
	CHECK_OK(herd_chan_free(echo.full));

	/* A task blocked in herd_accept is woken by cancellation. */
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &ac, OP_ACCEPT, echo.lfd, 0);
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&ac.rc), PENDING);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&ac.rc), HERD_ECANCELED);
	CHECK_OK(herd_close(echo.lfd));

	/* A bound port that does not listen refuses. */
	int b = bound_socket(&addr, 0);
	int c = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(c);
	CHECK_EQ(herd_connect(c, (struct sockaddr *)&addr, sizeof addr, herd_deadline(LONG_WAIT)),
		 -ECONNREFUSED);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(b));
	CHECK_EQ(open_now(), echo.open0);
}

/* TCP on 127.0.0.1: accept with a deadline times out, then takes a
 * connection (non-blocking, close-on-exec, counted); a 1 MiB echo that
 * cannot fit in the buffers comes back intact; accept is cancelable;
 * connecting to a port that does not listen gives -ECONNREFUSED. */
TEST(socket_accept_connect)
{
	test_run(0, sockets_main, NULL);
}

/* ------------------------------------------------------------------ */

#define IDLE_N 100

static void idle_main(void *arg)
{
	static int fds[IDLE_N][2];
	static struct op rd[IDLE_N];
	int own[2];
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < IDLE_N; i++) {
		CHECK_OK(herd_pipe(fds[i], HERD_NOWAIT));
		op_start(s, &rd[i], OP_READ, fds[i][0], 0);
	}
	CHECK_OK(herd_pipe(own, HERD_NOWAIT));
	test_wait_parked(IDLE_N);
	/* Give spinning workers time to give up and sleep. */
	CHECK_OK(herd_sleep(herd_deadline(50 * HERD_MSEC)));
	int64_t cpu0 = test_cpu_ns(), t0 = herd_now();
	int64_t d = herd_deadline(200 * HERD_MSEC);
	CHECK_EQ(herd_fd_wait(own[0], HERD_READABLE, d), HERD_ETIMEDOUT);
	int64_t cpu = test_cpu_ns() - cpu0, wall = herd_now() - t0;
	printf("idle on pipes: %.1f ms of CPU in %.1f ms\n", cpu / 1e6, wall / 1e6);
	CHECK(herd_now() >= d);
	CHECK(cpu < wall / 4);
	for (int i = 0; i < IDLE_N; i++)
		CHECK_EQ(herd_write(fds[i][1], "x", 1, HERD_NOWAIT), 1);
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < IDLE_N; i++) {
		CHECK_EQ(atomic_load(&rd[i].rc), 1);
		close_pipe(fds[i]);
	}
	close_pipe(own);
}

/* With every task blocked on a pipe for 200 ms, the process uses under a
 * quarter of the wall time in CPU: idle workers sleep in epoll, no spin. */
SERIAL_TEST(idle_workers_sleep_in_poll)
{
	test_run(4, idle_main, NULL);
}

/* ------------------------------------------------------------------ */

static int busy_fds[2];
static struct op busy_rd;

static void *busy_write_thread(void *arg)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	CHECK(write(busy_fds[1], "b", 1) == 1);
	return NULL;
}

static void busy_spinner(void *arg)
{
	int64_t give_up = herd_deadline(5 * HERD_SEC);
	long yields = 0;
	while (atomic_load(&busy_rd.rc) == PENDING && herd_now() < give_up) {
		CHECK_OK(herd_yield());
		yields++;
	}
	printf("%ld yields before the reader ran\n", yields);
	CHECK_EQ(atomic_load(&busy_rd.rc), 1); /* the reader was woken */
	CHECK_EQ(busy_rd.buf[0], 'b');
}

static void busy_main(void *arg)
{
	herd_scope *s;
	pthread_t th;
	CHECK_OK(herd_pipe(busy_fds, HERD_NOWAIT));
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &busy_rd, OP_READ, busy_fds[0], 0);
	test_wait_parked(1);
	CHECK_OK(herd_go(s, busy_spinner, NULL, 0));
	CHECK(pthread_create(&th, NULL, busy_write_thread, NULL) == 0);
	/* From here the only worker runs the spinner, never idle. */
	CHECK_OK(herd_scope_close(s));
	CHECK(pthread_join(th, NULL) == 0);
	close_pipe(busy_fds);
}

/* One worker kept busy by a task that only yields still polls: a task
 * blocked in herd_read gets the data a plain thread writes. */
TEST(busy_workers_still_poll)
{
	test_run(1, busy_main, NULL);
}

/* ------------------------------------------------------------------ */

#define TP_SLEEPS 1000

static void tp_main(void *arg)
{
	int fds[2];
	static struct op r;
	herd_scope *s;
	CHECK_OK(herd_pipe(fds, HERD_NOWAIT));
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, OP_READ, fds[0], 0);
	test_wait_parked(1);
	for (int i = 0; i < TP_SLEEPS; i++) {
		int64_t d = herd_deadline(HERD_MSEC);
		CHECK_OK(herd_sleep(d));
		CHECK(herd_now() >= d);
	}
	CHECK_EQ(herd_write(fds[1], "x", 1, HERD_NOWAIT), 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r.rc), 1);
	close_pipe(fds);
}

/* While a task waits on a pipe (so that a worker sleeps in epoll_wait),
 * timers still fire: 1,000 sleeps of 1 ms all return (a hang fails by
 * timeout). */
TEST(timers_while_polling)
{
	test_run(2, tp_main, NULL);
}

/* ------------------------------------------------------------------ */

static struct rlimit bc_before;

static void *stats_thread(void *p)
{
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.open, *(long *)p);
	return NULL;
}

static void counts_main(void *arg)
{
	herd_fd_stats st0, st;
	CHECK_EQ(herd_fd_stats_get(NULL), -EINVAL);
	CHECK_OK(herd_fd_stats_get(&st0));
	CHECK(st0.limit >= st0.limit_at_start);
	CHECK_EQ(st0.limit_at_start, (long)bc_before.rlim_cur);
	if (bc_before.rlim_max != RLIM_INFINITY) /* raised to the hard limit */
		CHECK_EQ(st0.limit, (long)bc_before.rlim_max);
	CHECK(st0.peak >= st0.open);

	int p1[2], p2[2];
	CHECK_OK(herd_pipe(p1, HERD_NOWAIT));
	CHECK_EQ(open_now(), st0.open + 2);
	CHECK_OK(herd_pipe(p2, HERD_NOWAIT));
	int sock = herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(sock);
	check_flags(sock);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.open, st0.open + 5);
	CHECK(st.peak >= st0.open + 5);
	pthread_t th; /* any thread may read the figures */
	CHECK(pthread_create(&th, NULL, stats_thread, &st.open) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_close(p1[0]));
	CHECK_OK(herd_close(sock));
	CHECK_EQ(open_now(), st0.open + 3);
	CHECK_OK(herd_close(p1[1]));
	close_pipe(p2);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.open, st0.open);
	CHECK(st.peak >= st0.open + 5); /* the peak stays */
	CHECK_EQ(st.waits, st0.waits);

	/* Not herd's: closed, not counted. The numbers are likely those just
	 * freed, which must no longer count as herd's. */
	int q[2];
	CHECK(pipe2(q, O_CLOEXEC) == 0);
	close_pipe(q);
	CHECK(fcntl(q[0], F_GETFD) < 0 && errno == EBADF);
	CHECK_EQ(open_now(), st0.open);
	CHECK_EQ(herd_close(q[0]), -EBADF);
	CHECK_EQ(herd_close(-1), -EBADF);
	CHECK_EQ(open_now(), st0.open);
	CHECK_EQ(herd_pipe(NULL, HERD_NOWAIT), -EINVAL);
}

/* herd_fd_stats_get: open rises by 2 per herd_pipe (1 per herd_socket) and
 * falls on herd_close; peak keeps the maximum; the soft limit is raised to
 * the hard one while herd runs and restored after; closing a descriptor
 * herd did not make changes no count. */
TEST(fd_budget_counts)
{
	herd_fd_stats st;
	CHECK_EQ(herd_fd_stats_get(&st), -ESRCH);
	CHECK(getrlimit(RLIMIT_NOFILE, &bc_before) == 0);
	/* A soft limit below the hard one, for herd to raise. */
	if (bc_before.rlim_max == RLIM_INFINITY || bc_before.rlim_max > 512) {
		bc_before.rlim_cur = 512;
		CHECK(setrlimit(RLIMIT_NOFILE, &bc_before) == 0);
	}
	test_run(0, counts_main, NULL);
	struct rlimit after;
	CHECK(getrlimit(RLIMIT_NOFILE, &after) == 0);
	CHECK_EQ(after.rlim_cur, bc_before.rlim_cur);
}

/* ------------------------------------------------------------------ */

#define BW_LIMIT 64
#define BW_WAITERS 3

static void bw_main(void *arg)
{
	static int fds[BW_LIMIT][2];
	static struct op wt[BW_WAITERS], cw;
	int n = 0, rc;
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.limit, BW_LIMIT);
	CHECK_EQ(st.limit_at_start, BW_LIMIT);
	long open0 = st.open;
	while ((rc = herd_pipe(fds[n], HERD_NOWAIT)) == 0)
		CHECK(++n < BW_LIMIT);
	CHECK_EQ(rc, -EMFILE);
	CHECK(n > BW_WAITERS);
	/* Take the last descriptor, if one is left. */
	int extra = herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_EQ(extra >= 0 ? herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT) : extra,
		 -EMFILE);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.waits, 0); /* HERD_NOWAIT never waits */
	CHECK_EQ(st.open, open0 + 2 * n + (extra >= 0));
	printf("%d pipes at the limit of %d\n", n, BW_LIMIT);

	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < BW_WAITERS; i++)
		op_start(s, &wt[i], OP_PIPE, -1, 0);
	test_wait_parked(BW_WAITERS);
	CHECK_OK(herd_sleep(herd_deadline(50 * HERD_MSEC)));
	CHECK_EQ(ops_done(wt, BW_WAITERS), 0);
	/* One pipe freed: one waiter gets it, the others go on waiting. */
	close_pipe(fds[--n]);
	CHECK_EQ(wait_done(wt, BW_WAITERS, 1), 1);
	CHECK_OK(herd_sleep(herd_deadline(60 * HERD_MSEC)));
	CHECK_EQ(ops_done(wt, BW_WAITERS), 1);
	for (int k = 1; k < BW_WAITERS; k++)
		close_pipe(fds[--n]);
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < BW_WAITERS; i++)
		CHECK_EQ(atomic_load(&wt[i].rc), 0);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK(st.waits >= BW_WAITERS);
	CHECK(st.peak >= st.open);

	/* Nothing freed: a deadline ends the wait, not before... */
	int more[2];
	int64_t d = herd_deadline(50 * HERD_MSEC);
	CHECK_EQ(herd_pipe(more, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	/* ...and so does cancellation. */
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &cw, OP_PIPE, -1, 0);
	test_wait_parked(1);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&cw.rc), HERD_ECANCELED);

	for (int i = 0; i < BW_WAITERS; i++)
		close_pipe(wt[i].fds);
	while (n > 0)
		close_pipe(fds[--n]);
	if (extra >= 0)
		CHECK_OK(herd_close(extra));
	CHECK_EQ(open_now(), open0);
}

static void bw_child(void)
{
	struct rlimit rl = {BW_LIMIT, BW_LIMIT};
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	test_run(2, bw_main, NULL);
}

/* At a limit herd cannot raise, HERD_NOWAIT creations give -EMFILE; others
 * wait until herd_close frees descriptors, their deadline (not before) or
 * cancellation; one line on stderr names the limit, however many waited. */
TEST(fd_budget_wait)
{
	char buf[16384];
	int status = test_child(bw_child, buf, sizeof buf);
	test_child_ok(status, buf);
	CHECK_EQ(test_count(buf, "out of file descriptors"), 1);
	const char *line = strstr(buf, "out of file descriptors");
	const char *end = strchr(line, '\n'), *p;
	CHECK(end != NULL);
	/* The line names 64 as a number of its own. */
	for (p = line; p < end; p++)
		if (p[0] == '6' && p[1] == '4' && (p[2] < '0' || p[2] > '9') &&
		    (p[-1] < '0' || p[-1] > '9'))
			break;
	if (p == end)
		fprintf(stderr, "the warning does not name the limit: %.*s\n",
			(int)(end - line), line);
	CHECK(p < end);
}
