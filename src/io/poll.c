/*
 * poll.c - the poller: tasks wait for descriptors without holding a worker.
 *
 * Shape. One poller per runtime: a set of descriptors a worker can sleep
 * on, with a wakeup and an alarm in it (os/poller-epoll.c keeps them; this
 * file calls nothing of epoll's). A descriptor is in the set only while
 * something waits on it: a task (herd_fd_wait and the I/O calls built on
 * it) or a callback (a child's pidfd, proc/). Its entry in `tab` (indexed
 * by descriptor) lists those waiters; it is armed one-shot with the union
 * of their events, so an event disarms it until whoever handles it re-arms
 * it for the waiters left. No state outlives the waits: a descriptor
 * closed and reused by the program (without herd_close) finds nothing
 * stale here.
 *
 * Who polls. Workers, never a thread of its own: the first idle worker,
 * the sleeper (core/idle.c), sleeps in the poller until the next timer; a
 * worker that runs out of tasks polls without blocking before it steals;
 * a busy worker, from its scheduler loop, polls every 64 scheduling rounds
 * if nobody has for POLL_STALE_NS; the monitor (run/monitor.c) polls when
 * nobody has. Events carry the descriptor and the entry's generation, so
 * an event for an entry that has since gone (its waiter timed out) is
 * recognised and dropped.
 *
 * Waking a task. The poller claims the task's wait (wait.c) before it
 * unlinks the waiter; a waiter it cannot claim (its deadline or a
 * cancellation won) stays linked, and its task unlinks it, under the lock,
 * when it runs. A waiter stays valid while it is linked. A task may wait
 * on several descriptors at once (herd__fd_wait_any, for herd_proc_output's
 * two pipes), one waiter each: the first event claims the wait, and the
 * other waiters, whose claims fail, are unlinked by the task.
 *
 * The scheduler reaches this file through the hooks it installs
 * (herd__netpoll, core.h): the scheduler is the lower layer.
 *
 * Locks: poll.lock (HERD__RANK_POLL) protects `tab`, the entries and their
 * waiter lists, and the backend's registrations (armed under it, so that
 * the registered events always match the list): a waker takes the
 * scheduler's leaf locks under it.
 * Callbacks run with no lock held. poll.waiters (registered waits) is
 * changed under the lock but read without it: seq_cst where a worker
 * decides whether to sleep in the poller (core/idle.c), relaxed where it is
 * only a hint to poll. poll.last is a relaxed hint of when somebody last
 * polled. The alarm's lock is a leaf, taken under poll.lock at times.
 */
#include "io/io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long the poller may go unvisited while descriptors are waited on
 * and every worker is busy. */
#define POLL_STALE_NS (1 * HERD_MSEC)
#define EVENTS_MAX 64

struct herd__pollent {
	int fd;
	uint32_t gen;          /* tells this entry from an earlier one */
	uint32_t armed;        /* the events it is armed for */
	herd__list waiters;    /* herd__pollw.link */
};

static uint32_t poll_waiters(herd__rt *rt)
{
	return atomic_load_explicit(&rt->io->poll.waiters, mo_seq_cst);
}

int herd__poll_init(herd__rt *rt)
{
	int rc = herd__os_poller_open(&rt->io->poll.os);
	if (rc)
		return rc;
	static const herd__netpoll ops = {
		.run = herd__poll_run,
		.interrupt = herd__poll_interrupt,
		.wake_by = herd__poll_wake_by,
		.due = herd__poll_due,
		.waiters = poll_waiters,
	};
	rt->netpoll = &ops;
	return 0;
}

void herd__poll_fini(herd__rt *rt)
{
	for (size_t i = 0; i < rt->io->poll.cap; i++)
		free(rt->io->poll.tab[i]);
	free(rt->io->poll.tab);
	rt->io->poll.tab = NULL;
	rt->io->poll.cap = 0;
	herd__os_poller_close(&rt->io->poll.os);
}

bool herd__poll_wake_by(herd__rt *rt, int64_t when)
{
	return herd__os_poller_wake_by(&rt->io->poll.os, when);
}

void herd__poll_interrupt(herd__rt *rt)
{
	herd__os_poller_interrupt(&rt->io->poll.os);
}

/* The union of the waiters' events. */
/* What an event for e carries: its generation and descriptor. */
static uint64_t cookie(const struct herd__pollent *e)
{
	return (uint64_t)e->gen << 32 | (uint32_t)e->fd;
}

static uint32_t wanted(const struct herd__pollent *e)
{
	uint32_t ev = 0;
	const herd__pollw *p;
	herd__list_each(p, &e->waiters, const herd__pollw, link)
		ev |= p->events;
	return ev;
}

/* Brings e's registration in line with its waiters: re-arms it, or removes
 * and frees the entry when none is left. */
static void rearm_locked(herd__rt *rt, struct herd__pollent *e)
{
	if (herd__list_empty(&e->waiters)) {
		herd__os_poller_forget(&rt->io->poll.os, e->fd);
		rt->io->poll.tab[e->fd] = NULL;
		free(e);
		return;
	}
	e->armed = wanted(e);
	herd__os_poller_arm(&rt->io->poll.os, e->fd, false, e->armed, cookie(e));
}

static int grow_locked(herd__rt *rt, int fd)
{
	size_t cap = rt->io->poll.cap ? rt->io->poll.cap : 64;
	while (cap <= (size_t)fd)
		cap *= 2;
	struct herd__pollent **tab = realloc(rt->io->poll.tab, cap * sizeof *tab);
	if (!tab)
		return -ENOMEM;
	memset(tab + rt->io->poll.cap, 0, (cap - rt->io->poll.cap) * sizeof *tab);
	rt->io->poll.tab = tab;
	rt->io->poll.cap = cap;
	return 0;
}

int herd__poll_attach_locked(herd__rt *rt, int fd, herd__pollw *wt)
{
	if ((size_t)fd >= rt->io->poll.cap) {
		/* Only for a descriptor that is open: the table grows to its
		 * number (herd_fd_wait(1 << 26) grew it by 512 MiB, and
		 * INT_MAX asked for 16 GiB, to answer -EBADF). */
		if (fcntl(fd, F_GETFD) < 0)
			return -errno;
		int rc = grow_locked(rt, fd);
		if (rc)
			return rc;
	}
	struct herd__pollent *e = rt->io->poll.tab[fd];
	bool fresh = !e;
	if (fresh) {
		if (!(e = calloc(1, sizeof *e)))
			return -ENOMEM;
		e->fd = fd;
		e->gen = ++rt->io->poll.gen;
	}
	herd__list_push_front(&e->waiters, &wt->link);
	wt->fd = fd;
	wt->linked = true;
	uint32_t want = wanted(e);
	int err = herd__os_poller_arm(&rt->io->poll.os, fd, fresh, want, cookie(e));
	if (err) {
		herd__list_remove(&e->waiters, &wt->link);
		wt->linked = false;
		if (fresh)
			free(e);
		else
			rearm_locked(rt, e);
		return err;
	}
	e->armed = want;
	if (fresh)
		rt->io->poll.tab[fd] = e;
	atomic_fetch_add_explicit(&rt->io->poll.waiters, 1, mo_seq_cst);
	return 0;
}

static void unlink_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	herd__list_remove(&e->waiters, &wt->link);
	wt->linked = false;
	atomic_fetch_sub_explicit(&rt->io->poll.waiters, 1, mo_relaxed);
}

void herd__poll_detach_locked(herd__rt *rt, herd__pollw *wt)
{
	if (!wt->linked)
		return;
	struct herd__pollent *e = rt->io->poll.tab[wt->fd];
	HERD__ASSERT(e && e->fd == wt->fd); /* a linked waiter has its entry */
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
	if ((size_t)fd >= rt->io->poll.cap)
		return 0;
	struct herd__pollent *e = rt->io->poll.tab[fd];
	if (!e || e->gen != (uint32_t)(data >> 32))
		return 0; /* its waiters left; the registration went with them */
	herd__pollw *woken = NULL;
	for (herd__link *k = e->waiters.head, *next; k; k = next) {
		next = k->next;
		herd__pollw *p = herd__container_of(k, herd__pollw, link);
		uint32_t r = p->events & rev;
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

int herd__poll_run(herd__rt *rt, int64_t deadline)
{
	herd__os_event evs[EVENTS_MAX];
	int n = herd__os_poller_wait(&rt->io->poll.os, evs, EVENTS_MAX, deadline);
	atomic_store_explicit(&rt->io->poll.last, herd_now(), mo_relaxed);
	if (n <= 0)
		return 0;
	herd__pollw *cbs = NULL;
	int readied = 0;
	herd__mutex_lock(&rt->io->poll.lock);
	for (int i = 0; i < n; i++)
		readied += dispatch_locked(rt, evs[i].cookie, evs[i].events, &cbs);
	herd__mutex_unlock(&rt->io->poll.lock);
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
	return atomic_load_explicit(&rt->io->poll.waiters, mo_relaxed) &&
	       herd_now() - atomic_load_explicit(&rt->io->poll.last, mo_relaxed) >= POLL_STALE_NS;
}

int herd_fd_wait(int fd, int events, int64_t deadline)
{
	if (fd < 0 || !(events & (HERD_READABLE | HERD_WRITABLE)) ||
	    (events & ~(HERD_READABLE | HERD_WRITABLE)))
		return -EINVAL;
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
	return herd__fd_wait_any(&fd, 1, events, deadline);
}

int herd__fd_wait_any(const int *fds, int n, int events, int64_t deadline)
{
	HERD__ASSERT(n >= 1 && n <= HERD__FD_WAIT_MAX);
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return -EPERM;
	if (herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	herd__rt *rt = w->rt;
	/* One waiter per descriptor, all for this task: the first event
	 * claims the task's wait; the poller leaves the others linked (their
	 * claim fails, as after a timeout), and they are unlinked here. */
	herd__pollw wts[HERD__FD_WAIT_MAX];
	for (int i = 0; i < n; i++)
		wts[i] = (herd__pollw){.task = t, .events = (uint32_t)events};
	herd__mutex_lock(&rt->io->poll.lock);
	int rc = 0, k = 0;
	while (k < n && !(rc = herd__poll_attach_locked(rt, fds[k], &wts[k])))
		k++;
	if (rc) {
		while (k--)
			herd__poll_detach_locked(rt, &wts[k]);
		herd__mutex_unlock(&rt->io->poll.lock);
		return rc;
	}
	herd__poll_watch(rt);
	herd__waits_on(t, HERD__WHY_FD, (void *)(intptr_t)fds[0]);
	rc = herd__wait(&w, &rt->io->poll.lock, deadline, true);
	if (rc > 0 && n == 1)
		return rc; /* the poller unlinked it */
	herd__mutex_lock(&rt->io->poll.lock);
	for (int i = 0; i < n; i++)
		herd__poll_detach_locked(rt, &wts[i]);
	herd__mutex_unlock(&rt->io->poll.lock);
	return rc;
}
