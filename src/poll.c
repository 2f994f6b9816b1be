/*
 * poll.c - the poller: tasks wait for descriptors without holding a worker.
 *
 * Shape. One epoll instance per runtime, with an eventfd in it that wakes
 * a worker sleeping in epoll_wait, and an alarm (os-linux.c) that ends its
 * sleep at a timer added after it fell asleep (sched.c). A descriptor is
 * in the epoll set only while something waits on it: a task (herd_fd_wait
 * and the I/O calls built on it) or a callback (a child's pidfd, proc.c).
 * Its entry in `tab` (indexed by descriptor) lists those waiters; it is
 * registered level-triggered and one-shot, with the union of their events,
 * so an event disarms it until whoever handles it re-arms it for the
 * waiters left. No state outlives the waits: a descriptor closed and
 * reused by the program (without herd_close) finds nothing stale here.
 *
 * Who polls. Workers, never a thread of its own: the first idle worker,
 * the sleeper (sched.c), sleeps in epoll_wait until the next timer; a
 * worker that runs out of tasks polls without blocking before it steals;
 * a busy worker, from its scheduler loop, polls every 64 scheduling rounds
 * if nobody has for POLL_STALE_NS; the monitor (blocking.c) polls when
 * nobody has. Events carry the descriptor and the entry's generation, so
 * an event for an entry that has since gone (its waiter timed out) is
 * recognised and dropped.
 *
 * Waking a task. The poller claims the task's wait (wait.c) before it
 * unlinks the waiter; a waiter it cannot claim (its deadline or a
 * cancellation won) stays linked, and its task unlinks it, under the lock,
 * when it runs. A waiter stays valid while it is linked.
 *
 * Locks: rt->poll_lock protects `tab`, the entries and their waiter lists,
 * and the epoll registrations (epoll_ctl is called under it, so that the
 * registered events always match the list). It is an object lock (level 2
 * in internal.h): a waker takes the scheduler's leaf locks under it.
 * Callbacks run with no lock held. poll.waiters (registered waits) is
 * changed under the lock but read without it: seq_cst where a worker
 * decides whether to sleep in the poller (sched.c), relaxed where it is
 * only a hint to poll. poll.last is a relaxed hint of when somebody last
 * polled. The alarm's lock is a leaf, taken under poll.lock at times.
 */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long the poller may go unvisited while descriptors are waited on
 * and every worker is busy. */
#define POLL_STALE_NS (1 * HERD_MSEC)
#define EVENTS_MAX 64
/* The eventfd's and the alarm's tags in epoll_event.data (no
 * descriptor has them). */
#define WAKE_TAG UINT64_MAX
#define ALARM_TAG (UINT64_MAX - 1)

struct herd__pollent {
	int fd;
	uint32_t gen;          /* tells this entry from an earlier one */
	uint32_t armed;        /* the epoll events registered */
	herd__pollw *head;     /* waiters, through next/prev */
};

static uint32_t to_epoll(uint32_t events)
{
	uint32_t e = 0;
	if (events & HERD_READABLE)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & HERD_WRITABLE)
		e |= EPOLLOUT;
	return e;
}

/* The events asked for that an epoll result reports ready: an error or a
 * hang-up makes every event ready, so that the next call reports it. */
static uint32_t ready_events(uint32_t want, uint32_t rev)
{
	if (rev & (EPOLLERR | EPOLLHUP))
		return want;
	uint32_t r = 0;
	if (rev & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
		r |= HERD_READABLE;
	if (rev & EPOLLOUT)
		r |= HERD_WRITABLE;
	return r & want;
}

int herd__poll_init(herd__rt *rt)
{
	rt->poll.epfd = rt->poll.wakefd = -1;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev < 0) {
		int e = -errno;
		close(ep);
		return e;
	}
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0) {
		int err = -errno;
		close(ev);
		close(ep);
		return err;
	}
	rt->poll.epfd = ep;
	rt->poll.wakefd = ev;
	herd__alarm_init(&rt->poll.alarm);
	struct epoll_event te = {.events = EPOLLIN, .data.u64 = ALARM_TAG};
	if (rt->poll.alarm.fd >= 0 &&
	    epoll_ctl(ep, EPOLL_CTL_ADD, rt->poll.alarm.fd, &te) < 0)
		herd__alarm_fini(&rt->poll.alarm); /* an earlier timer wakes */
	return 0;
}

void herd__poll_fini(herd__rt *rt)
{
	for (size_t i = 0; i < rt->poll.cap; i++)
		free(rt->poll.tab[i]);
	free(rt->poll.tab);
	rt->poll.tab = NULL;
	rt->poll.cap = 0;
	if (rt->poll.wakefd >= 0)
		close(rt->poll.wakefd);
	herd__alarm_fini(&rt->poll.alarm);
	if (rt->poll.epfd >= 0)
		close(rt->poll.epfd);
	rt->poll.epfd = rt->poll.wakefd = -1;
}

bool herd__poll_wake_by(herd__rt *rt, int64_t when)
{
	return herd__alarm_set(&rt->poll.alarm, when);
}

void herd__poll_interrupt(herd__rt *rt)
{
	uint64_t one = 1;
	ssize_t r = write(rt->poll.wakefd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is full, so a wake is pending */
}

/* The union of the waiters' events. */
static uint32_t wanted(const struct herd__pollent *e)
{
	uint32_t ev = 0;
	for (const herd__pollw *p = e->head; p; p = p->next)
		ev |= p->events;
	return ev;
}

/* Brings e's registration in line with its waiters: re-arms it, or removes
 * and frees the entry when none is left. */
static void rearm_locked(herd__rt *rt, struct herd__pollent *e)
{
	if (!e->head) {
		epoll_ctl(rt->poll.epfd, EPOLL_CTL_DEL, e->fd, NULL);
		rt->poll.tab[e->fd] = NULL;
		free(e);
		return;
	}
	struct epoll_event ev = {
		.events = to_epoll(wanted(e)) | EPOLLONESHOT,
		.data.u64 = (uint64_t)e->gen << 32 | (uint32_t)e->fd,
	};
	e->armed = ev.events;
	epoll_ctl(rt->poll.epfd, EPOLL_CTL_MOD, e->fd, &ev);
}

static int grow_locked(herd__rt *rt, int fd)
{
	size_t cap = rt->poll.cap ? rt->poll.cap : 64;
	while (cap <= (size_t)fd)
		cap *= 2;
	struct herd__pollent **tab = realloc(rt->poll.tab, cap * sizeof *tab);
	if (!tab)
		return -ENOMEM;
	memset(tab + rt->poll.cap, 0, (cap - rt->poll.cap) * sizeof *tab);
	rt->poll.tab = tab;
	rt->poll.cap = cap;
	return 0;
}

int herd__poll_attach_locked(herd__rt *rt, int fd, herd__pollw *wt)
{
	if ((size_t)fd >= rt->poll.cap) {
		/* Only for a descriptor that is open: the table grows to its
		 * number (herd_fd_wait(1 << 26) grew it by 512 MiB, and
		 * INT_MAX asked for 16 GiB, to answer -EBADF). */
		if (fcntl(fd, F_GETFD) < 0)
			return -errno;
		int rc = grow_locked(rt, fd);
		if (rc)
			return rc;
	}
	struct herd__pollent *e = rt->poll.tab[fd];
	bool fresh = !e;
	if (fresh) {
		if (!(e = calloc(1, sizeof *e)))
			return -ENOMEM;
		e->fd = fd;
		e->gen = ++rt->poll.gen;
	}
	wt->prev = NULL;
	wt->next = e->head;
	if (e->head)
		e->head->prev = wt;
	e->head = wt;
	wt->fd = fd;
	wt->linked = true;
	struct epoll_event ev = {
		.events = to_epoll(wanted(e)) | EPOLLONESHOT,
		.data.u64 = (uint64_t)e->gen << 32 | (uint32_t)fd,
	};
	if (epoll_ctl(rt->poll.epfd, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0) {
		int err = errno;
		e->head = wt->next;
		if (e->head)
			e->head->prev = NULL;
		wt->linked = false;
		if (fresh)
			free(e);
		else
			rearm_locked(rt, e);
		return -err;
	}
	e->armed = ev.events;
	if (fresh)
		rt->poll.tab[fd] = e;
	atomic_fetch_add_explicit(&rt->poll.waiters, 1, mo_seq_cst);
	return 0;
}

static void unlink_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		e->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	wt->linked = false;
	atomic_fetch_sub_explicit(&rt->poll.waiters, 1, mo_relaxed);
}

void herd__poll_detach_locked(herd__rt *rt, herd__pollw *wt)
{
	if (!wt->linked)
		return;
	struct herd__pollent *e = rt->poll.tab[wt->fd];
	unlink_locked(rt, e, wt);
	rearm_locked(rt, e);
}

/* Hands an event to the waiters it satisfies. Tasks are woken here, once
 * the registration is brought up to date (a woken task may close the
 * descriptor at once: nothing may touch it after); callbacks are collected
 * into *cbs, to run after the lock is released. */
static int dispatch_locked(herd__rt *rt, uint64_t data, uint32_t rev, herd__pollw **cbs)
{
	int fd = (int)(uint32_t)data;
	if ((size_t)fd >= rt->poll.cap)
		return 0;
	struct herd__pollent *e = rt->poll.tab[fd];
	if (!e || e->gen != (uint32_t)(data >> 32))
		return 0; /* its waiters left; the registration went with them */
	herd__pollw *woken = NULL;
	for (herd__pollw *p = e->head, *next; p; p = next) {
		next = p->next;
		uint32_t r = ready_events(p->events, rev);
		if (!r)
			continue;
		if (p->task && !herd__wait_claim(p->task))
			continue; /* its deadline or a cancellation won: it unlinks */
		unlink_locked(rt, e, p);
		p->result = r;
		if (p->task) {
			p->cb_next = woken;
			woken = p;
		} else {
			p->cb_next = *cbs;
			*cbs = p;
		}
	}
	rearm_locked(rt, e);
	int n = 0;
	while (woken) {
		herd__pollw *p = woken;
		woken = p->cb_next; /* before the task can run and return */
		herd__wait_finish(p->task, (int)p->result);
		n++;
	}
	return n;
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

int herd__poll_run(herd__rt *rt, int64_t deadline)
{
	struct epoll_event evs[EVENTS_MAX];
	int n;
	do
		n = epoll_wait(rt->poll.epfd, evs, EVENTS_MAX, timeout_ms(deadline));
	while (n < 0 && errno == EINTR && deadline != 0);
	atomic_store_explicit(&rt->poll.last, herd_now(), mo_relaxed);
	if (n <= 0)
		return 0;
	herd__pollw *cbs = NULL;
	int readied = 0;
	bool locked = false;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == WAKE_TAG) {
			/* The doorbell is the sleeper's: a worker that only
			 * looked (deadline 0) leaves it ringing, or the
			 * sleeper, woken with it, would sleep on. */
			if (deadline != 0) {
				uint64_t v;
				ssize_t r = read(rt->poll.wakefd, &v, sizeof v);
				(void)r;
			}
			continue;
		}
		if (evs[i].data.u64 == ALARM_TAG) {
			/* Likewise the alarm. The sleeper, back in its
			 * loop, reads the earliest deadline again. */
			if (deadline != 0)
				herd__alarm_clear(&rt->poll.alarm);
			continue;
		}
		if (!locked) {
			herd__mutex_lock(&rt->poll.lock);
			locked = true;
		}
		readied += dispatch_locked(rt, evs[i].data.u64, evs[i].events, &cbs);
	}
	if (locked)
		herd__mutex_unlock(&rt->poll.lock);
	while (cbs) {
		herd__pollw *p = cbs;
		cbs = p->cb_next;
		p->cb(p, p->result);
		readied++;
	}
	return readied;
}

bool herd__poll_due(herd__rt *rt)
{
	return atomic_load_explicit(&rt->poll.waiters, mo_relaxed) &&
	       herd_now() - atomic_load_explicit(&rt->poll.last, mo_relaxed) >= POLL_STALE_NS;
}

int herd_fd_wait(int fd, int events, int64_t deadline)
{
	if (fd < 0 || !(events & (HERD_READABLE | HERD_WRITABLE)) ||
	    (events & ~(HERD_READABLE | HERD_WRITABLE)))
		return -EINVAL;
	herd__worker *w;
	herd__task *t;
	if (deadline == HERD_NOWAIT) {
		/* A plain poll(2) answers at once, from any thread. */
		struct pollfd p = {.fd = fd};
		if (events & HERD_READABLE)
			p.events |= POLLIN;
		if (events & HERD_WRITABLE)
			p.events |= POLLOUT;
		int n = poll(&p, 1, 0);
		if (n < 0)
			return -errno;
		if (p.revents & POLLNVAL)
			return -EBADF;
		if (p.revents & (POLLERR | POLLHUP))
			return events;
		int r = ((p.revents & POLLIN) ? HERD_READABLE : 0) |
			((p.revents & POLLOUT) ? HERD_WRITABLE : 0);
		return r ? r : HERD_ETIMEDOUT;
	}
	if (herd__current(&w, &t))
		return -EPERM;
	if (herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	herd__rt *rt = w->rt;
	herd__pollw wt = {.task = t, .events = (uint32_t)events};
	herd__mutex_lock(&rt->poll.lock);
	int rc = herd__poll_attach_locked(rt, fd, &wt);
	if (rc) {
		herd__mutex_unlock(&rt->poll.lock);
		return rc;
	}
	herd__poll_watch(rt);
	rc = herd__wait(&w, &rt->poll.lock, deadline, true);
	if (rc > 0)
		return rc; /* the poller unlinked us */
	herd__mutex_lock(&rt->poll.lock);
	herd__poll_detach_locked(rt, &wt);
	herd__mutex_unlock(&rt->poll.lock);
	return rc;
}
