/*
 * fd-io.c - the task-aware descriptor calls: creating pipes and sockets
 * (counted in the budget, fd-budget.c, and waiting there when the table
 * is full), and read, write, accept and connect, which park the task on
 * the poller (poll.c) instead of blocking its worker.
 *
 * The sockets herd made (marked, fd-budget.c) are read and written with
 * recv and send, which skip the file layer's work that read and write do
 * (a few percent of a small message's cost over loopback). A number the
 * program closed with close(2) and reused for another kind of file fails
 * with ENOTSOCK: it loses its mark, and the call is made again. A read of
 * a TCP socket that came back short, or that TCP_INQ says emptied the
 * queue, lets the next read wait for the edge without the recv bound to
 * fail with EAGAIN (io/poll.c says when).
 *
 * No lock of its own: the poller's and the budget's.
 */
#include "io/io.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int herd_pipe(int fds[2], int64_t deadline)
{
	if (!fds)
		return -EINVAL;
	herd__fdwait fw;
	herd__fd_attempt(&fw);
	while (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		int rc = herd__fd_retry(&fw, errno, deadline);
		if (rc)
			return rc;
	}
	herd__fd_track_running(fds[0]);
	herd__fd_track_running(fds[1]);
	if (herd__leak_tracking()) {
		herd__leak_track_fd(fds[0], __builtin_return_address(0), "pipe, read end");
		herd__leak_track_fd(fds[1], __builtin_return_address(0), "pipe, write end");
	}
	return 0;
}

/* The marks of a socket made so (fd-budget.c): TCP is a stream whose
 * short read leaves an empty queue (a Unix stream may stop short before a
 * message that carries descriptors or other credentials). */
static unsigned socket_kind(int domain, int type, int protocol)
{
	bool tcp = (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
		   (protocol == 0 || protocol == IPPROTO_TCP);
	return HERD__FD_SOCKET | (tcp ? HERD__FD_TCP : 0);
}

/* The marks of socket s that accept returned from listener lfd: the
 * listener's if herd made it, else what s says it is. */
static unsigned accepted_kind(herd__rt *rt, int lfd, int s)
{
	unsigned kind = herd__fd_socket_kind(rt, lfd) & ~(unsigned)HERD__FD_INQ;
	if (kind)
		return kind;
	int proto = 0;
	socklen_t len = sizeof proto;
	if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP)
		return HERD__FD_SOCKET | HERD__FD_TCP;
	return HERD__FD_SOCKET;
}

int herd_socket(int domain, int type, int protocol, int64_t deadline)
{
	herd__rt *rt;
	int fd;
	herd__fdwait fw;
	herd__fd_attempt(&fw);
	while ((fd = socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol)) < 0) {
		int rc = herd__fd_retry(&fw, errno, deadline);
		if (rc)
			return rc;
	}
	herd__fd_track_running(fd);
	if ((rt = atomic_load_explicit(&herd__runtime, mo_acquire)))
		herd__fd_mark_socket(rt, fd, socket_kind(domain, type, protocol));
	if (herd__leak_tracking())
		herd__leak_track_fd(fd, __builtin_return_address(0), "socket");
	return fd;
}

int herd_fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	/* Likely a descriptor the program just made: if herd made one with
	 * the number before, and the program closed it with close(2), the
	 * poller must not trust its registration (poll.c). */
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (rt)
		herd__poll_renew(rt, fd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Task-aware I/O                                                      */
/* ------------------------------------------------------------------ */

/* The entry check of the blocking I/O calls: 0, -EPERM or HERD_ECANCELED;
 * the runtime in *rt. */
static int io_entry(int64_t deadline, herd__rt **rt)
{
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return -EPERM;
	*rt = w->rt;
	if (deadline != HERD_NOWAIT && herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	return 0;
}

/* Waits after the call found fd not ready (EAGAIN, EINPROGRESS): for the
 * next edge, which the poller may have seen already, without the poll(2)
 * that herd_fd_wait makes for a wait that has not tried the call. */
static int fd_wait_edge(int fd, int events, int64_t deadline)
{
	if (deadline == HERD_NOWAIT)
		return herd_fd_wait(fd, events, deadline);
	return herd__fd_wait_any(&fd, 1, events, deadline);
}

/* After a call failed with errno e: 0 to try again (fd became ready), or
 * the code to return. */
static int io_again(int fd, int e, int events, int64_t deadline)
{
	if (e == EINTR)
		return 0;
	if (e != EAGAIN && e != EWOULDBLOCK)
		return -e;
	int rc = fd_wait_edge(fd, events, deadline);
	return rc < 0 ? rc : 0;
}

/* TCP_INQ (Linux 4.18): a read of a TCP socket that has it on reports how
 * many bytes it left queued, so that a read that fills its buffer and
 * empties the queue (a client reading replies of known length) lets the
 * next read wait for the edge at once too. Turned on by the first such
 * read of a socket (only sockets read so pay its setsockopt); off for
 * good where the kernel refuses it. */
static atomic_bool no_inq;

static void inq_on(herd__rt *rt, int fd, unsigned kind)
{
	int one = 1;
	if (atomic_load_explicit(&no_inq, mo_relaxed))
		return;
	if (setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one) == 0)
		herd__fd_mark_socket(rt, fd, kind | HERD__FD_INQ);
	else if (errno == ENOPROTOOPT || errno == EINVAL)
		atomic_store_explicit(&no_inq, true, mo_relaxed);
}

/* recv, reporting in *left what it left queued (-1: not said). */
static ssize_t recv_inq(int fd, void *buf, size_t n, int *left)
{
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			   .msg_controllen = sizeof ctl.b};
	ssize_t r = recvmsg(fd, &m, 0);
	for (struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ)
			memcpy(left, CMSG_DATA(c), sizeof *left);
	return r;
}

/* After a read of r bytes (of n) from the TCP socket fd, made in
 * registration gen (not 0): whether it left the queue empty, for the
 * next read (io/poll.c). End of file (0) never does: no edge follows. */
static void read_done(herd__rt *rt, int fd, uint32_t gen, unsigned kind, ssize_t r, size_t n,
		      int left)
{
	bool full = r > 0 && (size_t)r == n;
	herd__poll_read_mark(rt, fd, r > 0 && (!full || left == 0) ? gen : 0);
	if (full && !(kind & HERD__FD_INQ))
		inq_on(rt, fd, kind);
}

ssize_t herd_read(int fd, void *buf, size_t n, int64_t deadline)
{
	herd__rt *rt;
	int rc = io_entry(deadline, &rt);
	if (rc)
		return rc;
	/* read(2) of 0 bytes returns 0 at once; recv would take a datagram. */
	unsigned kind = n ? herd__fd_socket_kind(rt, fd) : 0;
	/* A TCP socket's last read came back short: wait for the edge rather
	 * than make the recv bound to fail (io/poll.c). */
	bool tcp = kind & HERD__FD_TCP;
	if (tcp && deadline != HERD_NOWAIT && (rc = herd__poll_read_wait(rt, fd, deadline)) < 0)
		return rc;
	for (;;) {
		/* The registration the read is made in (after any wait). */
		uint32_t gen = tcp ? herd__poll_kept(rt, fd) : 0;
		int left = -1;
		ssize_t r = !kind			? read(fd, buf, n)
			    : (kind & HERD__FD_INQ) ? recv_inq(fd, buf, n, &left)
						    : recv(fd, buf, n, 0);
		if (r >= 0) {
			if (gen)
				read_done(rt, fd, gen, kind, r, n, left);
			return r;
		}
		if (kind && errno == ENOTSOCK) {
			tcp = false;
			herd__fd_mark_socket(rt, fd, 0);
			kind = 0;
			continue;
		}
		if ((rc = io_again(fd, errno, HERD_READABLE, deadline)))
			return rc;
	}
}

ssize_t herd_write(int fd, const void *buf, size_t n, int64_t deadline)
{
	herd__rt *rt;
	int rc = io_entry(deadline, &rt);
	if (rc)
		return rc;
	bool sock = herd__fd_socket_kind(rt, fd) != 0;
	for (;;) {
		ssize_t r = sock ? send(fd, buf, n, 0) : write(fd, buf, n);
		if (r >= 0)
			return r;
		if (sock && errno == ENOTSOCK) {
			herd__fd_mark_socket(rt, fd, 0);
			sock = false;
			continue;
		}
		if ((rc = io_again(fd, errno, HERD_WRITABLE, deadline)))
			return rc;
	}
}

ssize_t herd_write_all(int fd, const void *buf, size_t n, int64_t deadline)
{
	if (n > SSIZE_MAX)
		return -EINVAL; /* its count could not be returned */
	const char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t r = herd_write(fd, p + done, n - done, deadline);
		if (r < 0)
			return r;
		done += (size_t)r;
	}
	return (ssize_t)n;
}

int herd_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline)
{
	herd__rt *rt;
	int rc = io_entry(deadline, &rt);
	if (rc)
		return rc;
	herd__fdwait fw;
	herd__fd_attempt(&fw);
	for (;;) {
		int s = accept4(fd, addr, addrlen, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (s >= 0) {
			herd__fd_track(rt, s);
			herd__fd_mark_socket(rt, s, accepted_kind(rt, fd, s));
			if (herd__leak_tracking())
				herd__leak_track_fd(s, __builtin_return_address(0),
						    "accepted socket");
			return s;
		}
		int e = errno;
		if (e == EMFILE || e == ENFILE)
			rc = herd__fd_retry(&fw, e, deadline);
		else
			rc = io_again(fd, e, HERD_READABLE, deadline);
		if (rc)
			return rc;
	}
}

int herd_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
	herd__rt *rt;
	int rc = io_entry(deadline, &rt);
	if (rc)
		return rc;
	if (connect(fd, addr, addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	/* The connection goes on in the kernel; it is made (or has failed)
	 * when the socket becomes writable. */
	if ((rc = fd_wait_edge(fd, HERD_WRITABLE, deadline)) < 0)
		return rc;
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}
