/*
 * test-poll.c - the poller's registrations (io/poll.c): a descriptor herd
 * made stays registered, edge-triggered, from one wait to the next, and one
 * the program made is registered for each wait. These cases cover what
 * that must survive: herd_fd_wait still reports readiness, not edges;
 * numbers closed with close(2) and reused (by herd, by the program through
 * herd_fd_nonblock, with the old open file kept alive by a dup, whose
 * events must not reach the new descriptor's waiter); herd_close waking a
 * waiter; deadlines and cancellations racing a write (exactly one wake,
 * nothing lost); many TCP connections echoing at once.
 */
#define _GNU_SOURCE /* pipe2 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <sys/socket.h>

/* Far enough never to pass in a correct run; the CTest timeout is 60 s. */
#define LONG_WAIT (20 * HERD_SEC)
/* A result that a task has not stored yet. */
#define PENDING (-999999)

static long open_now(void)
{
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	return st.open;
}

/* A task that reads one byte, or waits for readability, on fd. */
struct op {
	int fd;
	bool wait;   /* herd_fd_wait instead of herd_read */
	int64_t deadline;
	char c;
	atomic_int rc;
};

static void op_task(void *p)
{
	struct op *o = p;
	int rc = o->wait ? herd_fd_wait(o->fd, HERD_READABLE, o->deadline)
			 : (int)herd_read(o->fd, &o->c, 1, o->deadline);
	atomic_store(&o->rc, rc);
}

static void op_start(herd_scope *s, struct op *o, int fd, bool wait, int64_t deadline)
{
	o->fd = fd;
	o->wait = wait;
	o->deadline = deadline;
	atomic_store(&o->rc, PENDING);
	CHECK_OK(herd_go(s, op_task, o, 0));
}

/* A reader parked on fd gets the byte written to wfd. */
static void read_after_park(int fd, int wfd, char c)
{
	static struct op r;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	op_start(s, &r, fd, false, herd_deadline(LONG_WAIT));
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&r.rc), PENDING);
	CHECK(write(wfd, &c, 1) == 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r.rc), 1);
	CHECK_EQ(r.c, c);
}

/* ------------------------------------------------------------------ */

static void level_main(void *arg)
{
	int p[2];
	char c;
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	read_after_park(p[0], p[1], 'a'); /* registered now */
	CHECK(write(p[1], "b", 1) == 1);
	int64_t d = herd_deadline(LONG_WAIT);
	/* One edge, three waits: each reports the byte still there. */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(herd_fd_wait(p[0], HERD_READABLE, d), HERD_READABLE);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(herd_fd_wait(p[1], HERD_WRITABLE, d), HERD_WRITABLE);
	CHECK_EQ(herd_read(p[0], &c, 1, d), 1);
	CHECK_EQ(c, 'b');
	CHECK_EQ(herd_fd_wait(p[0], HERD_READABLE, herd_deadline(5 * HERD_MSEC)),
		 HERD_ETIMEDOUT);
	read_after_park(p[0], p[1], 'c');

	/* The write end was reported writable once, and nobody took it;
	 * full now, it is not writable, whatever that report said. */
	CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	ssize_t n;
	while ((n = herd_write(p[1], "................", 16, HERD_NOWAIT)) > 0)
		;
	CHECK_EQ(n, HERD_ETIMEDOUT);
	CHECK_EQ(herd_fd_wait(p[1], HERD_WRITABLE, herd_deadline(10 * HERD_MSEC)),
		 HERD_ETIMEDOUT);
	CHECK_OK(herd_close(p[0]));
	CHECK_OK(herd_close(p[1]));
}

/* herd_fd_wait reports readiness, however many times it is asked, on a
 * descriptor registered edge-triggered: a wait does not use up the edge;
 * and an old edge nobody took does not make a full pipe writable. */
TEST(level_wait_repeats)
{
	test_run(0, level_main, NULL);
}

/* ------------------------------------------------------------------ */

static void reuse_herd_main(void *arg)
{
	int a[2], b[2];
	long open0 = open_now();
	CHECK_OK(herd_pipe(a, HERD_NOWAIT));
	read_after_park(a[0], a[1], 'a');
	/* Closed behind herd's back: the kernel drops the registration. */
	CHECK(close(a[0]) == 0);
	CHECK(close(a[1]) == 0);
	CHECK_OK(herd_pipe(b, HERD_NOWAIT));
	CHECK_EQ(b[0], a[0]); /* the lowest numbers, again */
	CHECK_EQ(b[1], a[1]);
	read_after_park(b[0], b[1], 'b');
	read_after_park(b[0], b[1], 'c');
	CHECK_OK(herd_close(b[0]));
	CHECK_OK(herd_close(b[1]));
	CHECK_EQ(open_now(), open0);
}

/* A pipe herd made, waited on, closed with close(2): a pipe herd makes next
 * with the same numbers is registered afresh, and its reader wakes. */
TEST(reuse_after_plain_close_by_herd)
{
	test_run(0, reuse_herd_main, NULL);
}

static void reuse_own_main(void *arg)
{
	int a[2], q[2];
	long open0 = open_now();
	CHECK_OK(herd_pipe(a, HERD_NOWAIT));
	read_after_park(a[0], a[1], 'a');
	CHECK(close(a[0]) == 0);
	CHECK(close(a[1]) == 0);
	CHECK(pipe2(q, O_CLOEXEC) == 0); /* the program's own, blocking */
	CHECK_EQ(q[0], a[0]);
	CHECK_OK(herd_fd_nonblock(q[0]));
	read_after_park(q[0], q[1], 'q');
	read_after_park(q[0], q[1], 'r');
	/* herd_close puts the budget's count right again. */
	CHECK_OK(herd_close(q[0]));
	CHECK_OK(herd_close(q[1]));
	CHECK_EQ(open_now(), open0);

	/* The program's own descriptors, reused by its own: registered
	 * for each wait, so nothing stale is left to trust. */
	for (int i = 0; i < 3; i++) {
		CHECK(pipe2(q, O_CLOEXEC | O_NONBLOCK) == 0);
		read_after_park(q[0], q[1], (char)('0' + i));
		CHECK(close(q[0]) == 0);
		CHECK(close(q[1]) == 0);
	}
}

/* A number herd made and the program closed with close(2), reused by the
 * program's own pipe made non-blocking with herd_fd_nonblock: its reader
 * wakes. The program's own pipes, closed and remade, likewise. */
TEST(reuse_after_plain_close_by_program)
{
	test_run(0, reuse_own_main, NULL);
}

static void stale_main(void *arg)
{
	int a[2], b[2];
	static struct op w;
	herd_scope *s;
	long open0 = open_now();
	CHECK_OK(herd_pipe(a, HERD_NOWAIT));
	read_after_park(a[0], a[1], 'a');
	int keep = dup(a[0]); /* keeps the old pipe's registration alive */
	CHECK(keep >= 0);
	CHECK(close(a[0]) == 0);
	CHECK_OK(herd_pipe(b, HERD_NOWAIT));
	CHECK_EQ(b[0], a[0]);

	CHECK_OK(herd_scope_open(&s));
	op_start(s, &w, b[0], true, herd_deadline(LONG_WAIT));
	test_wait_parked(1);
	/* The old pipe becomes readable: its event carries the old
	 * registration's generation and must not wake the new one's waiter. */
	for (int i = 0; i < 3; i++) {
		CHECK(write(a[1], "x", 1) == 1);
		CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
		CHECK_EQ(atomic_load(&w.rc), PENDING);
	}
	CHECK(write(b[1], "y", 1) == 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&w.rc), HERD_READABLE);
	char xs[4];
	CHECK_EQ(read(keep, xs, sizeof xs), 3); /* the old pipe is intact */
	read_after_park(keep, a[1], 'k');
	CHECK(close(keep) == 0);
	CHECK_OK(herd_close(a[1]));
	CHECK_OK(herd_close(b[0]));
	CHECK_OK(herd_close(b[1]));
	CHECK_EQ(open_now(), open0);
}

/* A number closed with close(2) while a dup keeps its open file (and so
 * its registration) alive, reused by a new pipe: events of the old pipe do
 * not wake a task waiting on the new one, which wakes for its own. */
TEST(stale_events_after_reuse)
{
	test_run(0, stale_main, NULL);
}

/* ------------------------------------------------------------------ */

static void close_main(void *arg)
{
	int p[2], q[2];
	static struct op r;
	herd_scope *s;
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	CHECK(pipe2(q, O_CLOEXEC | O_NONBLOCK) == 0);
	int fds[2] = {p[0], q[0]};
	for (int i = 0; i < 2; i++) {
		CHECK_OK(herd_scope_open(&s));
		op_start(s, &r, fds[i], false, herd_deadline(LONG_WAIT));
		test_wait_parked(1);
		CHECK_EQ(atomic_load(&r.rc), PENDING);
		CHECK_OK(herd_close(fds[i]));
		CHECK_OK(herd_scope_close(s));
		CHECK_EQ(atomic_load(&r.rc), -EBADF);
	}
	CHECK_OK(herd_close(p[1]));
	CHECK(close(q[1]) == 0);
}

/* herd_close of a descriptor a task waits on wakes it with -EBADF, herd's
 * own descriptor or the program's. */
TEST(close_wakes_waiter)
{
	test_run(0, close_main, NULL);
}

/* ------------------------------------------------------------------ */

#define RACE_ROUNDS (1000 / TEST_SCALE + 20)

struct race {
	int p[2];
	int64_t delay;     /* before the write, and the read's deadline */
	bool cancel;       /* the read has no deadline: it is canceled */
	int first;         /* the read's result */
	char got;
};

/* Reads with a deadline that may pass as the byte comes, or until its
 * scope is canceled. */
static void race_reader(void *arg)
{
	struct race *r = arg;
	int64_t d = herd_deadline(r->cancel ? LONG_WAIT : r->delay);
	r->first = (int)herd_read(r->p[0], &r->got, 1, d);
}

static void race_writer(void *arg)
{
	struct race *r = arg;
	int rc = herd_sleep(herd_deadline(r->delay)); /* may be canceled */
	CHECK(rc == 0 || rc == HERD_ECANCELED);
	CHECK(write(r->p[1], "z", 1) == 1);
}

static void race_main(void *arg)
{
	bool cancel = *(bool *)arg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	int won = 0, lost = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		struct race r = {.cancel = cancel};
		herd_scope *s;
		CHECK_OK(herd_pipe(r.p, HERD_NOWAIT));
		if (i % 2)
			read_after_park(r.p[0], r.p[1], 'w'); /* registered first */
		/* 0 to 100 us: around the time a wait takes to park. */
		r.delay = (int64_t)(rng_next(&rng) % 100) * HERD_USEC + 1;
		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(herd_go(s, race_reader, &r, 0));
		if (cancel) {
			CHECK_OK(herd_go(s, race_writer, &r, 0));
			int64_t at = (int64_t)(rng_next(&rng) % 100) * HERD_USEC;
			CHECK_OK(herd_sleep(herd_deadline(at)));
			CHECK_OK(herd_scope_cancel(s));
			CHECK_OK(herd_scope_close(s));
		} else {
			race_writer(&r);
			CHECK_OK(herd_scope_close(s));
		}
		if (r.first == 1) {
			CHECK_EQ(r.got, 'z');
			won++;
		} else {
			/* The wait lost; the byte is not lost with it. */
			CHECK_EQ(r.first, cancel ? HERD_ECANCELED : HERD_ETIMEDOUT);
			char c = 0;
			CHECK_EQ(herd_read(r.p[0], &c, 1, herd_deadline(LONG_WAIT)), 1);
			CHECK_EQ(c, 'z');
			lost++;
		}
		CHECK_OK(herd_close(r.p[0]));
		CHECK_OK(herd_close(r.p[1]));
	}
	printf("%d reads got the byte, %d ended first\n", won, lost);
}

/* A read whose deadline passes as its byte comes: it returns the byte or
 * HERD_ETIMEDOUT, once, and after a timeout the byte is still there for
 * the next read (the event that lost is kept, not dropped). */
TEST(deadline_races_readiness)
{
	bool cancel = false;
	test_run(0, race_main, &cancel);
}

/* The same with the reader's scope canceled as the byte comes. */
TEST(cancel_races_readiness)
{
	bool cancel = true;
	test_run(0, race_main, &cancel);
}

/* ------------------------------------------------------------------ */

#define CONNS (64 / (TEST_SCALE > 4 ? 8 : 1))
#define MSGS (300 / TEST_SCALE + 10)
#define MSG 48

static struct {
	int lfd;
	struct sockaddr_in addr;
	atomic_long echoed, checked;
} net;

static void nodelay(int fd)
{
	int one = 1;
	CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
}

static void net_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	ssize_t n;
	long total = 0;
	int64_t d = herd_deadline(LONG_WAIT);
	while ((n = herd_read(fd, buf, sizeof buf, d)) > 0) {
		CHECK_EQ(herd_write_all(fd, buf, (size_t)n, d), n);
		total += n;
	}
	CHECK_EQ(n, 0);
	atomic_fetch_add(&net.echoed, total);
	CHECK_OK(herd_close(fd));
}

static void net_listener(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < CONNS; i++) {
		int fd = herd_accept(net.lfd, NULL, NULL, herd_deadline(LONG_WAIT));
		CHECK_OK(fd);
		nodelay(fd);
		CHECK_OK(herd_go(s, net_server, (void *)(intptr_t)fd, 0));
	}
	CHECK_OK(herd_scope_close(s));
}

static void net_client(void *arg)
{
	long c = (long)(intptr_t)arg;
	unsigned char out[MSG], in[MSG];
	int64_t d = herd_deadline(LONG_WAIT);
	int fd = herd_socket(AF_INET, SOCK_STREAM, 0, d);
	CHECK_OK(fd);
	nodelay(fd);
	CHECK_OK(herd_connect(fd, (struct sockaddr *)&net.addr, sizeof net.addr, d));
	for (long m = 0; m < MSGS; m++) {
		for (int j = 0; j < MSG; j++)
			out[j] = (unsigned char)(c * 31 + m * 7 + j);
		CHECK_EQ(herd_write_all(fd, out, MSG, d), MSG);
		size_t got = 0;
		while (got < MSG) {
			ssize_t n = herd_read(fd, in + got, MSG - got, d);
			CHECK(n > 0);
			got += (size_t)n;
		}
		CHECK(memcmp(in, out, MSG) == 0);
	}
	atomic_fetch_add(&net.checked, MSGS);
	CHECK_OK(herd_close(fd));
}

static void net_main(void *arg)
{
	long open0 = open_now();
	for (int round = 0; round < 2; round++) { /* the second reuses numbers */
		socklen_t len = sizeof net.addr;
		net.lfd = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
		CHECK_OK(net.lfd);
		memset(&net.addr, 0, sizeof net.addr);
		net.addr.sin_family = AF_INET;
		net.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(bind(net.lfd, (struct sockaddr *)&net.addr, sizeof net.addr) == 0);
		CHECK(listen(net.lfd, CONNS) == 0);
		CHECK(getsockname(net.lfd, (struct sockaddr *)&net.addr, &len) == 0);
		atomic_store(&net.echoed, 0);
		atomic_store(&net.checked, 0);
		herd_scope *s;
		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(herd_go(s, net_listener, NULL, 0));
		for (long c = 0; c < CONNS; c++)
			CHECK_OK(herd_go(s, net_client, (void *)(intptr_t)c, 0));
		CHECK_OK(herd_scope_close(s));
		CHECK_OK(herd_close(net.lfd));
		CHECK_EQ(atomic_load(&net.checked), (long)CONNS * MSGS);
		CHECK_EQ(atomic_load(&net.echoed), (long)CONNS * MSGS * MSG);
		CHECK_EQ(open_now(), open0);
	}
}

/* Many TCP connections over loopback, each echoing small messages one at
 * a time (net-echo's shape, smaller), twice: every echo intact, every
 * descriptor closed, on every number of workers. */
TEST(many_connections)
{
	test_run(0, net_main, NULL);
}

TEST(many_connections_one_worker)
{
	test_run(1, net_main, NULL);
}
