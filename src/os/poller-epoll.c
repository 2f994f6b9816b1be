/*
 * poller-epoll.c - the poller's backend on Linux: an epoll set, with an
 * eventfd that wakes its sleeper and an alarm (a timerfd, os-linux.c) that
 * ends its sleep at a time set after it fell asleep. The wait's own timeout
 * has nanosecond precision where the kernel has epoll_pwait2.
 *
 * io/poll.c keeps the bookkeeping (which task waits on which descriptor)
 * and calls only this file's herd__os_poller_* functions, as redis's ae.c
 * keeps aeApi* behind a seam: a kqueue backend is one more file.
 *
 * Descriptors are registered once, edge-triggered, for reading and
 * writing together (as Go's netpoll does): an event reports a change of
 * readiness, and io/poll.c keeps what it reported until somebody waits.
 * Nothing is re-armed between waits. A hang-up, an error and urgent
 * data (EPOLLPRI, asked for: a read stops short at the urgent mark) are
 * reported as HERD__OS_HUP besides the directions, for io/poll.c's reads
 * that trust a short read (see there). The two internal descriptors are
 * level-triggered and carry cookies no descriptor can have (a cookie's
 * low half is a descriptor number).
 *
 * No lock here: the caller serialises the registrations of a descriptor
 * (io/poll.c, under its entry's lock); epoll_wait may run on several
 * threads at once.
 */
#include "os/os.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_COOKIE UINT64_MAX
#define ALARM_COOKIE (UINT64_MAX - 1)
#define EVENTS_MAX 64

static uint32_t from_epoll(uint32_t rev)
{
	if (rev & (EPOLLERR | EPOLLHUP))
		return HERD_READABLE | HERD_WRITABLE | HERD__OS_HUP;
	uint32_t r = 0;
	if (rev & (EPOLLRDHUP | EPOLLPRI))
		r |= HERD_READABLE | HERD__OS_HUP;
	if (rev & EPOLLIN)
		r |= HERD_READABLE;
	if (rev & EPOLLOUT)
		r |= HERD_WRITABLE;
	return r;
}

int herd__os_poller_open(herd__os_poller *p)
{
	p->fd = p->wakefd = -1;
	p->alarm.fd = -1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev < 0) {
		int e = -errno;
		close(ep);
		return e;
	}
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = WAKE_COOKIE};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0) {
		int err = -errno;
		close(ev);
		close(ep);
		return err;
	}
	p->fd = ep;
	p->wakefd = ev;
	herd__alarm_init(&p->alarm);
	struct epoll_event te = {.events = EPOLLIN, .data.u64 = ALARM_COOKIE};
	if (p->alarm.fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, p->alarm.fd, &te) < 0)
		herd__alarm_fini(&p->alarm); /* then an earlier timer wakes */
	return 0;
}

void herd__os_poller_close(herd__os_poller *p)
{
	if (p->wakefd >= 0)
		close(p->wakefd);
	herd__alarm_fini(&p->alarm);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = p->wakefd = -1;
}

int herd__os_poller_add(herd__os_poller *p, int fd, uint64_t cookie)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
				 .data.u64 = cookie};
	if (epoll_ctl(p->fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	/* Already in the set (io/poll.c lost track of it: a number closed
	 * with close(2) whose open file lives on in a dup): take it over. */
	if (errno == EEXIST && epoll_ctl(p->fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return -errno;
}

void herd__os_poller_forget(herd__os_poller *p, int fd)
{
	epoll_ctl(p->fd, EPOLL_CTL_DEL, fd, NULL);
}

static int timeout_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	if (deadline == 0)
		return 0;
	int64_t left = deadline - herd_now();
	if (left <= 0)
		return 0;
	int64_t ms = (left + HERD_MSEC - 1) / HERD_MSEC; /* never early */
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * epoll_pwait2 (Linux 5.11) takes its timeout in nanoseconds: a sleeper
 * waits to the timer's deadline, where epoll_wait's milliseconds, rounded
 * up so as never to wake early, made every timer up to a millisecond late.
 * A kernel (or a seccomp filter) without it falls back for good.
 */
#if defined(SYS_epoll_pwait2) && __SIZEOF_LONG__ == 8
static atomic_bool no_pwait2;

static int epoll_wait_until(int fd, struct epoll_event *evs, int max, int64_t deadline)
{
	if (deadline > 0 && !atomic_load_explicit(&no_pwait2, mo_relaxed)) {
		int64_t left = deadline - herd_now();
		if (left < 0)
			left = 0;
		struct timespec ts = {.tv_sec = left / HERD_SEC, .tv_nsec = left % HERD_SEC};
		int n = (int)syscall(SYS_epoll_pwait2, fd, evs, max, &ts, NULL, 0);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return n;
		atomic_store_explicit(&no_pwait2, true, mo_relaxed);
	}
	return epoll_wait(fd, evs, max, timeout_ms(deadline));
}
#else
static int epoll_wait_until(int fd, struct epoll_event *evs, int max, int64_t deadline)
{
	return epoll_wait(fd, evs, max, timeout_ms(deadline));
}
#endif

int herd__os_poller_wait(herd__os_poller *p, herd__os_event *out, int max, int64_t deadline)
{
	struct epoll_event evs[EVENTS_MAX];
	int n;
	if (max > EVENTS_MAX)
		max = EVENTS_MAX;
	do
		n = epoll_wait_until(p->fd, evs, max, deadline);
	while (n < 0 && errno == EINTR && deadline != 0);
	int k = 0;
	for (int i = 0; i < n; i++) {
		uint64_t c = evs[i].data.u64;
		if (c == WAKE_COOKIE) {
			/* The doorbell is the sleeper's: a thread that only
			 * looked (deadline 0) leaves it ringing, or the
			 * sleeper, woken with it, would sleep on. */
			if (deadline != 0) {
				uint64_t v;
				ssize_t r = read(p->wakefd, &v, sizeof v);
				(void)r;
			}
		} else if (c == ALARM_COOKIE) {
			/* Likewise the alarm. The sleeper, back in its loop,
			 * reads the earliest deadline again. */
			if (deadline != 0)
				herd__alarm_clear(&p->alarm);
		} else {
			out[k].events = from_epoll(evs[i].events);
			out[k].cookie = c;
			k++;
		}
	}
	return k;
}

void herd__os_poller_interrupt(herd__os_poller *p)
{
	uint64_t one = 1;
	ssize_t r = write(p->wakefd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is full, so a wake is pending */
}

bool herd__os_poller_wake_by(herd__os_poller *p, int64_t when)
{
	return herd__alarm_set(&p->alarm, when);
}
