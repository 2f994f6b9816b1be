/*
 * test-netio-skip.c - herd_read on a TCP socket whose last read came back
 * short waits for the next edge without the recv bound to fail (io/poll.c),
 * and nowhere that could hang: the data and the end of the stream (FIN,
 * RST) or urgent data reported in one event read out in full; after a
 * read that filled its buffer (unless TCP_INQ says it emptied the queue),
 * a datagram, or a Unix stream read that stops short before a message
 * with descriptors, the next read returns what is queued; HERD_NOWAIT,
 * deadlines, cancellation and herd_close end such a wait as before; three
 * readers on one socket read every byte.
 *
 * Most cases run on one worker: the peer's writes then all land before the
 * poller looks, so that one event reports them together and is taken by
 * the wait before the first read (the case the short read cannot see).
 */
#define _GNU_SOURCE
#include "test.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Far enough never to pass in a correct run; the CTest timeout is 60 s. */
#define LONG_WAIT (20 * HERD_SEC)
#define BUF 1024

/* A connected TCP pair on 127.0.0.1, both herd's: *c connected, *s
 * accepted. */
static void tcp_pair(int *c, int *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(l);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(listen(l, 4) == 0);
	socklen_t len = sizeof a;
	CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
	*c = herd_socket(AF_INET, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(*c);
	CHECK_OK(herd_connect(*c, (struct sockaddr *)&a, sizeof a, herd_deadline(LONG_WAIT)));
	*s = herd_accept(l, NULL, NULL, herd_deadline(LONG_WAIT));
	CHECK_OK(*s);
	CHECK_OK(herd_close(l));
}

/* A reader task: reads what `want` lists, one herd_read each, with
 * buffers of `ask` bytes: a count, or 0 (end of file), or -1 (end of
 * file or any error but HERD_ETIMEDOUT). */
struct reader {
	int fd;
	size_t ask;
	int want[4];
	int n;
	const char *text; /* the bytes expected, if not NULL */
	_Atomic int done;
};

static void reader_task(void *arg)
{
	struct reader *r = arg;
	char buf[BUF];
	size_t off = 0;
	int64_t d = herd_deadline(LONG_WAIT);
	for (int i = 0; i < r->n; i++) {
		ssize_t got = herd_read(r->fd, buf, r->ask, d);
		if (got == HERD_ETIMEDOUT)
			fprintf(stderr, "read %d of fd %d waited to its deadline\n", i, r->fd);
		CHECK(got != HERD_ETIMEDOUT);
		if (r->want[i] < 0) {
			CHECK(got <= 0);
			continue;
		}
		CHECK_EQ(got, r->want[i]);
		if (r->text && got > 0) {
			CHECK(memcmp(buf, r->text + off, (size_t)got) == 0);
			off += (size_t)got;
		}
	}
	atomic_store(&r->done, 1);
}

/* Starts the reader, lets it park in its first read, then runs `peer`
 * (which must not park: on one worker, everything it sends is reported in
 * one event), and waits for the reader. */
static void read_after(struct reader *r, void (*peer)(void *), void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, reader_task, r, 0));
	test_wait_parked(1);
	peer(arg);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&r->done), 1);
}

static void send_all(int fd, const void *p, size_t n, int flags)
{
	CHECK_EQ(send(fd, p, n, flags), (ssize_t)n);
}

/* ------------------------------------------------------------------ */

static int peer_fd;

static void data_then_fin(void *arg)
{
	send_all(peer_fd, "hello", 5, 0);
	CHECK(shutdown(peer_fd, SHUT_WR) == 0);
}

static void fin_main(void *arg)
{
	int c, s;
	tcp_pair(&c, &s);
	peer_fd = c;
	struct reader r = {.fd = s, .ask = BUF, .n = 2, .want = {5, 0}, .text = "hello"};
	read_after(&r, data_then_fin, NULL);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(s));
}

/* Data and the FIN in one event, taken by the wait before the short read
 * that returns the data: the next read returns end of file (the event's
 * hang-up is remembered; no edge would come). */
TEST(fin_with_data)
{
	test_run(1, fin_main, NULL);
}

static void data_then_rst(void *arg)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	send_all(peer_fd, "hello", 5, 0);
	CHECK(setsockopt(peer_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
	CHECK_OK(herd_close(peer_fd)); /* a reset */
}

static void rst_main(void *arg)
{
	int c, s;
	tcp_pair(&c, &s);
	peer_fd = c;
	struct reader r = {.fd = s, .ask = BUF, .n = 2, .want = {5, -1}, .text = "hello"};
	read_after(&r, data_then_rst, NULL);
	CHECK_OK(herd_close(s));
}

/* Likewise data and a reset: the read after the data fails at once. */
TEST(rst_with_data)
{
	test_run(1, rst_main, NULL);
}

static void data_urgent_data(void *arg)
{
	send_all(peer_fd, "abc", 3, 0);
	send_all(peer_fd, "X", 1, MSG_OOB);
	send_all(peer_fd, "def", 3, 0);
}

static void urgent_main(void *arg)
{
	int c, s;
	tcp_pair(&c, &s);
	peer_fd = c;
	/* The read stops short at the urgent mark; the next skips the
	 * out-of-band byte. */
	struct reader r = {.fd = s, .ask = BUF, .n = 2, .want = {3, 3}, .text = "abcdef"};
	read_after(&r, data_urgent_data, NULL);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(s));
}

/* Urgent data: a read stops short at its mark with more queued, and no
 * edge comes for what follows; the next read returns it. */
TEST(urgent_data)
{
	test_run(1, urgent_main, NULL);
}

static void send_128(void *arg)
{
	send_all(peer_fd, arg, 128, 0);
}

static void full_main(void *arg)
{
	int c, s;
	tcp_pair(&c, &s);
	peer_fd = c;
	char text[128];
	for (int i = 0; i < 128; i++)
		text[i] = (char)('a' + i % 26);
	/* 64 of 128, then 50 (short), then the last 14 (short). */
	struct reader r = {.fd = s, .ask = 64, .n = 1, .want = {64}, .text = text};
	read_after(&r, send_128, text);
	char buf[64];
	CHECK_EQ(herd_read(s, buf, sizeof buf, herd_deadline(LONG_WAIT)), 64);
	CHECK(memcmp(buf, text + 64, 64) == 0);
	/* Again, now that the full reads turned TCP_INQ on: it says what the
	 * first read left. */
	struct reader r2 = {.fd = s, .ask = 64, .n = 2, .want = {64, 64}, .text = text};
	read_after(&r2, send_128, text);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(s));
}

/* A read that filled its buffer says nothing of what is left, unless
 * TCP_INQ says it: the next read returns the rest (one event reported all
 * 128 bytes). */
TEST(full_read_reads_on)
{
	test_run(1, full_main, NULL);
}

/* ------------------------------------------------------------------ */

static struct sockaddr_in udp_addr;

static void two_datagrams(void *arg)
{
	int u = *(int *)arg;
	CHECK_EQ(sendto(u, "one", 3, 0, (struct sockaddr *)&udp_addr, sizeof udp_addr), 3);
	CHECK_EQ(sendto(u, "two!", 4, 0, (struct sockaddr *)&udp_addr, sizeof udp_addr), 4);
}

static void udp_main(void *arg)
{
	udp_addr = (struct sockaddr_in){.sin_family = AF_INET};
	udp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = herd_socket(AF_INET, SOCK_DGRAM, 0, HERD_NOWAIT);
	CHECK_OK(s);
	CHECK(bind(s, (struct sockaddr *)&udp_addr, sizeof udp_addr) == 0);
	socklen_t len = sizeof udp_addr;
	CHECK(getsockname(s, (struct sockaddr *)&udp_addr, &len) == 0);
	int u = herd_socket(AF_INET, SOCK_DGRAM, 0, HERD_NOWAIT);
	CHECK_OK(u);
	struct reader r = {.fd = s, .ask = BUF, .n = 2, .want = {3, 4}, .text = "onetwo!"};
	read_after(&r, two_datagrams, &u);
	CHECK_OK(herd_close(u));
	CHECK_OK(herd_close(s));
}

/* A datagram read shorter than its buffer leaves the next datagram
 * queued: it is read. */
TEST(datagrams)
{
	test_run(1, udp_main, NULL);
}

static int unix_peer;

static void fds_then_data(void *arg)
{
	int pass = STDIN_FILENO;
	char ctl[CMSG_SPACE(sizeof pass)] = {0};
	struct iovec iov = {.iov_base = "a", .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			   .msg_controllen = sizeof ctl};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof pass);
	memcpy(CMSG_DATA(cm), &pass, sizeof pass);
	CHECK_EQ(sendmsg(unix_peer, &m, 0), 1);
	send_all(unix_peer, "b", 1, 0);
}

static void unix_main(void *arg)
{
	/* An abstract address: no file to remove. */
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "herd-netio-skip-%d", getpid());
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int l = herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(l);
	CHECK(bind(l, (struct sockaddr *)&a, alen) == 0);
	CHECK(listen(l, 4) == 0);
	int c = herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT);
	CHECK_OK(c);
	CHECK_OK(herd_connect(c, (struct sockaddr *)&a, alen, herd_deadline(LONG_WAIT)));
	int s = herd_accept(l, NULL, NULL, herd_deadline(LONG_WAIT));
	CHECK_OK(s);
	unix_peer = c;
	/* "a" comes with a descriptor (dropped: herd_read takes none), and
	 * the read stops after it; "b" is queued behind. */
	struct reader r = {.fd = s, .ask = BUF, .n = 2, .want = {1, 1}, .text = "ab"};
	read_after(&r, fds_then_data, NULL);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(s));
	CHECK_OK(herd_close(l));
}

/* A Unix stream read stops short after a message that carries
 * descriptors, with more queued: the next read returns it. */
TEST(unix_stream_with_fds)
{
	test_run(1, unix_main, NULL);
}

/* ------------------------------------------------------------------ */

struct waiter {
	int fd;
	_Atomic ssize_t rc;
};

static void wait_task(void *arg)
{
	struct waiter *w = arg;
	char buf[BUF];
	atomic_store(&w->rc, herd_read(w->fd, buf, sizeof buf, herd_deadline(LONG_WAIT)));
}

/* Reads one short message from s, which c sent. */
static void one_short(int c, int s)
{
	char buf[BUF];
	send_all(c, "x", 1, 0);
	CHECK_EQ(herd_read(s, buf, sizeof buf, herd_deadline(LONG_WAIT)), 1);
}

/* Starts a wait_task on s after a short read, lets it park, and ends its
 * wait with end(), returning its result. */
static ssize_t parked_read(int c, int s, void (*end)(herd_scope *, int), int arg)
{
	static struct waiter w;
	herd_scope *sc;
	one_short(c, s);
	w = (struct waiter){.fd = s, .rc = 1};
	CHECK_OK(herd_scope_open(&sc));
	CHECK_OK(herd_go(sc, wait_task, &w, 0));
	test_wait_parked(1);
	CHECK_EQ(atomic_load(&w.rc), 1);
	end(sc, arg);
	CHECK_OK(herd_scope_close(sc));
	return atomic_load(&w.rc);
}

static void end_cancel(herd_scope *sc, int fd)
{
	CHECK_OK(herd_scope_cancel(sc));
}

static void end_close(herd_scope *sc, int fd)
{
	CHECK_OK(herd_close(fd));
}

static void end_data(herd_scope *sc, int fd)
{
	send_all(fd, "late", 4, 0);
}

static void ends_main(void *arg)
{
	int c, s;
	char buf[BUF];
	tcp_pair(&c, &s);
	/* A wait registers s: its reads are made in that registration. */
	CHECK_EQ(parked_read(c, s, end_data, c), 4);
	/* HERD_NOWAIT after a short read: at once, nothing or what came. */
	one_short(c, s);
	CHECK_EQ(herd_read(s, buf, sizeof buf, HERD_NOWAIT), HERD_ETIMEDOUT);
	send_all(c, "now", 3, 0);
	ssize_t r;
	int64_t give_up = herd_deadline(LONG_WAIT);
	while ((r = herd_read(s, buf, sizeof buf, HERD_NOWAIT)) == HERD_ETIMEDOUT)
		CHECK(herd_now() < give_up); /* loopback delivers as it sends */
	CHECK_EQ(r, 3);
	/* A deadline ends the wait, not before. */
	one_short(c, s);
	int64_t d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_read(s, buf, sizeof buf, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	/* A deadline already gone: the read answers with what is queued. */
	one_short(c, s);
	send_all(c, "gone", 4, 0);
	CHECK_EQ(herd_read(s, buf, sizeof buf, herd_now()), 4);
	/* Cancellation, data, and herd_close end a parked read. */
	CHECK_EQ(parked_read(c, s, end_cancel, 0), HERD_ECANCELED);
	CHECK_EQ(parked_read(c, s, end_data, c), 4);
	CHECK_EQ(parked_read(c, s, end_close, s), -EBADF);
	CHECK_OK(herd_close(c));
}

/* After a short read, HERD_NOWAIT never parks, and a deadline, a
 * cancellation, new data or herd_close end the wait for the edge. */
TEST(nowait_deadline_cancel_close)
{
	test_run(1, ends_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SHARED_MSGS (2000 / TEST_SCALE + 10)

static _Atomic long shared_got;

static void shared_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[BUF];
	ssize_t r;
	while ((r = herd_read(fd, buf, sizeof buf, herd_deadline(LONG_WAIT))) > 0)
		atomic_fetch_add(&shared_got, r);
	CHECK_EQ(r, 0);
}

static void shared_writer(void *arg)
{
	int fd = *(int *)arg;
	char msg[64] = {0};
	for (int i = 0; i < SHARED_MSGS; i++) {
		CHECK_EQ(herd_write_all(fd, msg, sizeof msg, herd_deadline(LONG_WAIT)), 64);
		if (i % 7 == 0)
			herd_yield();
	}
	CHECK(shutdown(fd, SHUT_WR) == 0);
}

static void shared_main(void *arg)
{
	int c, s;
	herd_scope *sc;
	tcp_pair(&c, &s);
	atomic_store(&shared_got, 0);
	CHECK_OK(herd_scope_open(&sc));
	for (int i = 0; i < 3; i++)
		CHECK_OK(herd_go(sc, shared_reader, &s, 0));
	CHECK_OK(herd_go(sc, shared_writer, &c, 0));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&shared_got), SHARED_MSGS * 64L);
	CHECK_OK(herd_close(c));
	CHECK_OK(herd_close(s));
}

/* Three tasks read one socket while a fourth writes small messages:
 * every byte is read, and each reader sees end of file. */
TEST(shared_readers)
{
	test_run(0, shared_main, NULL);
}

TEST(shared_readers_one_worker)
{
	test_run(1, shared_main, NULL);
}
