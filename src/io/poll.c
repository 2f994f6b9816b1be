/*
 * poll.c - the poller: tasks wait for descriptors without holding a worker.
 *
 * Shape. One poller per runtime: a set of descriptors a worker can sleep
 * on, with a wakeup and an alarm in it (os/poller-epoll.c keeps them; this
 * file calls nothing of epoll's). Each descriptor number has an entry, in
 * pages of PAGE_ENTS kept until the runtime ends (so found without a lock):
 * its registration, the directions reported that no waiter took (`ready`),
 * and its waiters, tasks and callbacks (a child's pidfd, proc/).
 *
 * Registration (docs/design.md, The poller). A descriptor herd made
 * (herd__fd_is_herds) is added at its first wait, edge-triggered for both
 * directions, and stays KEPT until herd closes it (herd__poll_forget, from
 * herd__fd_close): a wait after EAGAIN takes a ready flag or parks, and an
 * event sets the flag or wakes the waiters it satisfies, with no system
 * call but epoll_wait. A descriptor the program made may be closed with
 * close(2) and its number reused unseen: it is registered for one wait
 * (TRANSIENT: added as the wait begins, removed as its last waiter
 * leaves). Events carry the registration's generation (`gen`, bumped at
 * each registration): those of an earlier one are dropped. A number herd
 * made that the program closed with close(2) stays KEPT although the
 * kernel dropped it; herd__poll_renew registers the number's new
 * descriptor when herd makes one (herd__fd_track) or the program passes
 * one to herd_fd_nonblock. A wait on a number reused otherwise ends only
 * at its deadline.
 *
 * Ready flags. An edge after a call's EAGAIN either sets the flag or finds
 * the waiter linked (both under the entry's lock). A stale flag (data that
 * came and was read before the EAGAIN) costs one more try. herd_fd_wait,
 * which promises readiness and not an edge, asks poll(2) instead. A read
 * of a TCP socket whose last read emptied the queue waits without trying
 * (see "Reads that skip their EAGAIN" below; `hup` and `rd_short`). An event
 * wakes every waiter it satisfies (several tasks may accept on one socket
 * or read one pipe): waking one could leave the others asleep beside
 * unread data; those that find EAGAIN wait again.
 *
 * Waking a task. The waker claims the task's wait (wait.c) before it
 * unlinks the waiter; a waiter it cannot claim (its deadline or a
 * cancellation won) stays linked, the event goes to `ready`, and the task
 * unlinks its waiter when it runs: exactly one party wakes a task. A
 * waiter stays valid while it is linked, and a claimed one until its task
 * is readied (outside the lock). herd__fd_wait_any waits on several
 * descriptors, a waiter on each: the first event claims the task, which
 * unlinks the others.
 *
 * Who polls. Workers, never a thread of its own: the first idle worker,
 * the sleeper (core/idle.c), sleeps in the poller until the next timer; a
 * worker that runs out of tasks polls without blocking before it steals;
 * a busy worker polls every 64 scheduling rounds if nobody has for
 * POLL_STALE_NS; the monitor (run/monitor.c) polls when nobody has.
 * Several may be in epoll_wait at once: each event goes to one of them.
 * The scheduler reaches this file through the hooks it installs
 * (herd__netpoll, core.h): the scheduler is the lower layer.
 *
 * Locks: each entry's lock (HERD__RANK_POLL) protects its registration,
 * `ready`, `hup`, `gen` and its waiters (herd__poll_forget and _renew also
 * read `state` without it: their callers come after the registration they
 * look for, or race with it as a program's bug; herd_read loads `state`
 * and `gen` and stores `rd_short` without it, relaxed atomics that
 * herd__poll_read_wait checks under it); a waker takes the
 * scheduler's leaf locks under it. poll.lock (same rank, never held with
 * an entry's) protects growing the directory. Callbacks run with no lock
 * held. poll.waiters (linked waiters) is changed under entries' locks and
 * read without them: seq_cst where a worker decides whether to sleep in
 * the poller (core/idle.c), relaxed where it is only a hint to poll.
 * poll.last is a relaxed hint of when somebody last polled.
 */
#include "io/io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long the poller may go unvisited while descriptors are waited on
 * and every worker is busy. */
#define POLL_STALE_NS (1 * HERD_MSEC)
#define EVENTS_MAX 64
#define PAGE_SHIFT 8
#define PAGE_ENTS (1u << PAGE_SHIFT)
#define DIR_MIN 64 /* pages: 16,384 descriptors */

/* An entry's registration. */
enum { UNREG, KEPT, TRANSIENT };

struct herd__pollent {
	alignas(HERD__CACHELINE) herd__mutex lock;
	_Atomic uint8_t state;  /* UNREG, KEPT, TRANSIENT (written under lock) */
	uint8_t ready;          /* directions reported that no waiter took */
	bool hup;               /* the registration reported a hang-up, an
				 * error or urgent data (sticky) */
	/* The registration's, in its events' cookies (written under lock,
	 * read without it by herd__poll_kept). */
	_Atomic uint32_t gen;
	/* The registration (gen) a read of a TCP socket that emptied its
	 * queue was made in, or 0: herd__poll_read_wait may wait for the
	 * edge without a read. */
	_Atomic uint32_t rd_short;
	int fd;                 /* constant */
	herd__list waiters;     /* herd__pollw.link */
};

struct herd__polldir {
	size_t n;                       /* pages it can hold */
	struct herd__polldir *retired;  /* the one it replaced */
	_Atomic(struct herd__pollent *) pages[];
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
	struct herd__polldir *d = atomic_load_explicit(&rt->io->poll.dir, mo_relaxed);
	if (d)
		for (size_t i = 0; i < d->n; i++)
			free(atomic_load_explicit(&d->pages[i], mo_relaxed));
	while (d) {
		struct herd__polldir *next = d->retired;
		free(d);
		d = next;
	}
	atomic_store_explicit(&rt->io->poll.dir, NULL, mo_relaxed);
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

/* ------------------------------------------------------------------ */
/* Entries                                                             */
/* ------------------------------------------------------------------ */

/* fd's entry, or NULL if its page was never made. No lock. */
static struct herd__pollent *entry_of(herd__rt *rt, int fd)
{
	struct herd__polldir *d = atomic_load_explicit(&rt->io->poll.dir, mo_acquire);
	size_t pg = (size_t)fd >> PAGE_SHIFT;
	if (!d || pg >= d->n)
		return NULL;
	struct herd__pollent *page = atomic_load_explicit(&d->pages[pg], mo_acquire);
	return page ? &page[(unsigned)fd & (PAGE_ENTS - 1)] : NULL;
}

/* A directory for page pg at least, holding the current one's pages. */
static int grow_locked(herd__rt *rt, size_t pg)
{
	struct herd__polldir *old = atomic_load_explicit(&rt->io->poll.dir, mo_relaxed);
	size_t n = old ? old->n * 2 : DIR_MIN;
	while (n <= pg)
		n *= 2;
	struct herd__polldir *d = calloc(1, sizeof *d + n * sizeof d->pages[0]);
	if (!d)
		return -ENOMEM;
	d->n = n;
	d->retired = old; /* readers may still hold it */
	for (size_t i = 0; old && i < old->n; i++)
		atomic_init(&d->pages[i], atomic_load_explicit(&old->pages[i], mo_relaxed));
	atomic_store_explicit(&rt->io->poll.dir, d, mo_release);
	return 0;
}

static int page_make_locked(struct herd__polldir *d, size_t pg)
{
	size_t size = PAGE_ENTS * sizeof(struct herd__pollent);
	struct herd__pollent *page = aligned_alloc(HERD__CACHELINE, size);
	if (!page)
		return -ENOMEM;
	memset(page, 0, size);
	for (unsigned i = 0; i < PAGE_ENTS; i++) {
		herd__mutex_init(&page[i].lock, HERD__RANK_POLL);
		page[i].fd = (int)(pg << PAGE_SHIFT | i);
	}
	atomic_store_explicit(&d->pages[pg], page, mo_release);
	return 0;
}

/* fd's entry, made if need be: 0, -ENOMEM, or -errno if fd lies beyond
 * the directory and is not open (the directory grows to its number: a
 * wait on 1 << 30 must answer -EBADF, not allocate 32 MiB). */
static int entry_make(herd__rt *rt, int fd, struct herd__pollent **out)
{
	if ((*out = entry_of(rt, fd)))
		return 0;
	size_t pg = (size_t)fd >> PAGE_SHIFT;
	int rc = 0;
	herd__mutex_lock(&rt->io->poll.lock);
	struct herd__polldir *d = atomic_load_explicit(&rt->io->poll.dir, mo_relaxed);
	if (!d || pg >= d->n) {
		if (d && fcntl(fd, F_GETFD) < 0)
			rc = -errno;
		else
			rc = grow_locked(rt, pg);
		d = atomic_load_explicit(&rt->io->poll.dir, mo_relaxed);
	}
	if (!rc && !atomic_load_explicit(&d->pages[pg], mo_relaxed))
		rc = page_make_locked(d, pg);
	herd__mutex_unlock(&rt->io->poll.lock);
	if (!rc)
		*out = entry_of(rt, fd);
	return rc;
}

static uint32_t gen_of(struct herd__pollent *e)
{
	return atomic_load_explicit(&e->gen, mo_relaxed);
}

/* What an event for e's registration carries. */
static uint64_t cookie(struct herd__pollent *e)
{
	return (uint64_t)gen_of(e) << 32 | (uint32_t)e->fd;
}

/* Adds e's descriptor to the set for a wait (e->lock held): KEPT if it is
 * herd's, else TRANSIENT. 0 or -errno. */
static int register_locked(herd__rt *rt, struct herd__pollent *e)
{
	atomic_store_explicit(&e->gen, gen_of(e) + 1, mo_relaxed);
	e->ready = 0;
	e->hup = false;
	atomic_store_explicit(&e->rd_short, 0, mo_relaxed);
	/* The state first: the set may report the descriptor to another
	 * thread before the call returns (that thread waits for the lock). */
	atomic_store_explicit(&e->state, herd__fd_is_herds(rt, e->fd) ? KEPT : TRANSIENT,
			      mo_relaxed);
	int rc = herd__os_poller_add(&rt->io->poll.os, e->fd, cookie(e));
	if (rc)
		atomic_store_explicit(&e->state, UNREG, mo_relaxed);
	return rc;
}

/* fd's entry, locked and registered in the set (if it was not): 0, or
 * entry_make's or the registration's error, with nothing locked. */
static int entry_lock_registered(herd__rt *rt, int fd, struct herd__pollent **out)
{
	struct herd__pollent *e;
	int rc = entry_make(rt, fd, &e);
	if (rc)
		return rc;
	herd__mutex_lock(&e->lock);
	if (atomic_load_explicit(&e->state, mo_relaxed) == UNREG &&
	    (rc = register_locked(rt, e))) {
		herd__mutex_unlock(&e->lock);
		return rc;
	}
	*out = e;
	return 0;
}

static void link_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	herd__list_push_back(&e->waiters, &wt->link);
	wt->fd = e->fd;
	wt->linked = true;
	atomic_fetch_add_explicit(&rt->io->poll.waiters, 1, mo_seq_cst);
}

static void unlink_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	herd__list_remove(&e->waiters, &wt->link);
	wt->linked = false;
	atomic_fetch_sub_explicit(&rt->io->poll.waiters, 1, mo_relaxed);
}

/* After waiters left (e->lock held): a TRANSIENT registration ends with
 * its last waiter, before any woken task can close the descriptor. */
static void settle_locked(herd__rt *rt, struct herd__pollent *e)
{
	if (herd__list_empty(&e->waiters) &&
	    atomic_load_explicit(&e->state, mo_relaxed) == TRANSIENT) {
		herd__os_poller_forget(&rt->io->poll.os, e->fd);
		atomic_store_explicit(&e->state, UNREG, mo_relaxed);
	}
}

/* The directions of `events` reported ready, taken (e->lock held). */
static uint32_t take_ready(struct herd__pollent *e, uint32_t events)
{
	uint32_t r = e->ready & events;
	e->ready = (uint8_t)(e->ready & ~r);
	return r;
}

/* Claims and unlinks e's task waiters (e->lock held), chaining them on
 * *won; unlinks its callbacks, which are dropped. */
static void evict_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw **won)
{
	for (herd__link *k = e->waiters.head, *next; k; k = next) {
		next = k->next;
		herd__pollw *p = herd__container_of(k, herd__pollw, link);
		if (p->task && !herd__wait_claim(p->task))
			continue; /* its deadline or a cancellation won: it unlinks */
		unlink_locked(rt, e, p);
		if (p->task) {
			p->cb_next = *won;
			*won = p;
		}
	}
}

static void finish_all(herd__pollw *won, int result)
{
	while (won) {
		herd__pollw *p = won;
		won = p->cb_next; /* before the task can run and return */
		herd__wait_finish(p->task, result);
	}
}

void herd__poll_forget(herd__rt *rt, int fd)
{
	struct herd__pollent *e = entry_of(rt, fd);
	if (!e || atomic_load_explicit(&e->state, mo_relaxed) == UNREG)
		return; /* never waited on, or a wait's TRANSIENT one ended */
	herd__pollw *won = NULL;
	herd__mutex_lock(&e->lock);
	if (atomic_load_explicit(&e->state, mo_relaxed) != UNREG) {
		herd__os_poller_forget(&rt->io->poll.os, fd);
		atomic_store_explicit(&e->state, UNREG, mo_relaxed);
		e->ready = 0;
		e->hup = false;
		atomic_store_explicit(&e->rd_short, 0, mo_relaxed);
		evict_locked(rt, e, &won);
	}
	herd__mutex_unlock(&e->lock);
	finish_all(won, -EBADF);
}

void herd__poll_renew(herd__rt *rt, int fd)
{
	struct herd__pollent *e = entry_of(rt, fd);
	if (!e || atomic_load_explicit(&e->state, mo_relaxed) == UNREG)
		return;
	herd__pollw *won = NULL;
	int rc = 0;
	herd__mutex_lock(&e->lock);
	/* The registration may be the earlier descriptor's: register the
	 * one the number names now (the set reports its readiness anew). */
	if (atomic_load_explicit(&e->state, mo_relaxed) != UNREG &&
	    (rc = register_locked(rt, e))) {
		atomic_store_explicit(&e->state, UNREG, mo_relaxed);
		evict_locked(rt, e, &won);
	}
	herd__mutex_unlock(&e->lock);
	finish_all(won, rc);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/* Hands an event to the waiters it satisfies, keeping in `ready` what no
 * waiter took. Tasks are claimed and unlinked here and chained on *won, to
 * be readied once the lock is released; callbacks are chained on *cbs, to
 * run after that. */
static void dispatch(herd__rt *rt, uint64_t data, uint32_t rev, herd__pollw **won,
		     herd__pollw **cbs)
{
	struct herd__pollent *e = entry_of(rt, (int)(uint32_t)data);
	if (!e)
		return;
	/* Under the lock only: the registration may be under way. */
	herd__mutex_lock(&e->lock);
	if (gen_of(e) != (uint32_t)(data >> 32) ||
	    atomic_load_explicit(&e->state, mo_relaxed) == UNREG) {
		herd__mutex_unlock(&e->lock); /* an earlier registration's */
		return;
	}
	uint32_t taken = 0;
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
		taken |= r;
		herd__pollw **chain = p->task ? won : cbs;
		p->cb_next = *chain;
		*chain = p;
	}
	if (rev & HERD__OS_HUP)
		e->hup = true; /* before any short read it may follow */
	e->ready = (uint8_t)(e->ready | (rev & ~taken & (HERD_READABLE | HERD_WRITABLE)));
	if (taken) /* not for an event nobody waited for: a wait may be
		    * between its registration and its link (fd_wait_any) */
		settle_locked(rt, e);
	herd__mutex_unlock(&e->lock);
}

int herd__poll_run(herd__rt *rt, int64_t deadline)
{
	herd__os_event evs[EVENTS_MAX];
	int n = herd__os_poller_wait(&rt->io->poll.os, evs, EVENTS_MAX, deadline);
	atomic_store_explicit(&rt->io->poll.last, herd_now(), mo_relaxed);
	if (n <= 0)
		return 0;
	herd__pollw *won = NULL, *cbs = NULL;
	for (int i = 0; i < n; i++)
		dispatch(rt, evs[i].cookie, evs[i].events, &won, &cbs);
	int readied = 0;
	while (won) {
		herd__pollw *p = won;
		won = p->cb_next; /* before the task can run and return */
		herd__wait_finish(p->task, (int)p->result);
		readied++;
	}
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

/* ------------------------------------------------------------------ */
/* Callbacks (proc/'s pidfds)                                          */
/* ------------------------------------------------------------------ */

int herd__poll_attach(herd__rt *rt, int fd, herd__pollw *wt)
{
	struct herd__pollent *e;
	int rc = entry_lock_registered(rt, fd, &e);
	if (rc)
		return rc;
	uint32_t r = take_ready(e, wt->events);
	if (!r)
		link_locked(rt, e, wt);
	herd__mutex_unlock(&e->lock);
	if (r)
		wt->cb(wt, r); /* reported before: it is due now */
	else
		herd__poll_watch(rt);
	return 0;
}

bool herd__poll_detach(herd__rt *rt, herd__pollw *wt)
{
	struct herd__pollent *e = entry_of(rt, wt->fd);
	if (!e)
		return false;
	herd__mutex_lock(&e->lock);
	bool was = wt->linked;
	if (was) {
		unlink_locked(rt, e, wt);
		settle_locked(rt, e);
	}
	herd__mutex_unlock(&e->lock);
	return was;
}

/* ------------------------------------------------------------------ */
/* Waits                                                               */
/* ------------------------------------------------------------------ */

/* poll(2) on fd, at once: the events of `events` ready (an error or a
 * hang-up reports them all), 0 if none, or -errno. */
static int poll_now(int fd, int events)
{
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
	return ((p.revents & POLLIN) ? HERD_READABLE : 0) |
	       ((p.revents & POLLOUT) ? HERD_WRITABLE : 0);
}

/* Unlinks the waiters the wake left linked (all but the one an event
 * took). */
static void unlink_all(herd__rt *rt, struct herd__pollent **es, herd__pollw *wts, int n)
{
	for (int i = 0; i < n; i++) {
		herd__mutex_lock(&es[i]->lock);
		if (wts[i].linked) {
			unlink_locked(rt, es[i], &wts[i]);
			settle_locked(rt, es[i]);
		}
		herd__mutex_unlock(&es[i]->lock);
	}
}

/* Links t's waiter on e (locked, registered) and parks until an event for
 * `events`, the deadline or a cancellation; returns with nothing locked. */
static int park_locked(herd__worker *w, herd__task *t, struct herd__pollent *e, int events,
		       int64_t deadline)
{
	herd__rt *rt = w->rt;
	herd__pollw wt = {.task = t, .events = (uint32_t)events};
	link_locked(rt, e, &wt);
	herd__poll_watch(rt);
	herd__waits_on(t, HERD__WHY_FD, (void *)(intptr_t)e->fd);
	int rc = herd__wait(&w, &e->lock, deadline, true);
	if (rc > 0)
		return rc; /* the poller unlinked it */
	unlink_all(rt, &e, &wt, 1);
	return rc;
}

/* The wait on one descriptor. `level`: herd_fd_wait's, which reports
 * readiness (the I/O calls wait after EAGAIN: an edge is what they need). */
static int wait_one(herd__worker *w, herd__task *t, int fd, int events, int64_t deadline,
		    bool level)
{
	herd__rt *rt = w->rt;
	struct herd__pollent *e;
	int rc = entry_lock_registered(rt, fd, &e);
	if (rc)
		return rc;
	/* herd_fd_wait asks poll(2), under the lock, so that an edge after
	 * it finds the waiter linked; the flags, which may be stale, are left
	 * to the waits after EAGAIN. */
	rc = level ? poll_now(fd, events) : (int)take_ready(e, (uint32_t)events);
	if (rc) {
		settle_locked(rt, e);
		herd__mutex_unlock(&e->lock);
		return rc;
	}
	return park_locked(w, t, e, events, deadline);
}

/* Links a waiter on each descriptor (registered already) with the wait
 * prepared; a descriptor reported ready claims the task at once. Returns
 * how many it linked. */
static int link_many(herd__rt *rt, herd__task *t, struct herd__pollent **es, herd__pollw *wts,
		     int n)
{
	for (int i = 0; i < n; i++) {
		herd__mutex_lock(&es[i]->lock);
		uint32_t r = take_ready(es[i], wts[i].events);
		if (!r) {
			link_locked(rt, es[i], &wts[i]);
			herd__mutex_unlock(&es[i]->lock);
			continue;
		}
		if (herd__wait_claim(t)) {
			herd__mutex_unlock(&es[i]->lock);
			herd__wait_finish(t, (int)r); /* runs again once it parks */
		} else {
			es[i]->ready = (uint8_t)(es[i]->ready | r); /* not taken */
			herd__mutex_unlock(&es[i]->lock);
		}
		return i;
	}
	return n;
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
	if (n == 1)
		return wait_one(w, t, fds[0], events, deadline, false);
	/* Registered first, each under its own lock; then the wait is made
	 * claimable and the waiters linked, so that an event that comes as
	 * they are claims the task (one waiter's entry lock at a time). */
	herd__rt *rt = w->rt;
	struct herd__pollent *es[HERD__FD_WAIT_MAX];
	herd__pollw wts[HERD__FD_WAIT_MAX];
	int rc = 0, k;
	for (k = 0; k < n; k++) {
		wts[k] = (herd__pollw){.task = t, .events = (uint32_t)events, .fd = fds[k]};
		if ((rc = entry_lock_registered(rt, fds[k], &es[k])))
			break;
		herd__mutex_unlock(&es[k]->lock);
	}
	if (rc) {
		unlink_all(rt, es, wts, k); /* ends TRANSIENT registrations */
		return rc;
	}
	herd__waits_on(t, HERD__WHY_FD, (void *)(intptr_t)fds[0]);
	herd__wait_prepare(w, t, true);
	link_many(rt, t, es, wts, n);
	herd__poll_watch(rt);
	rc = herd__wait_park(&w, deadline, true);
	unlink_all(rt, es, wts, n);
	return rc;
}

int herd_fd_wait(int fd, int events, int64_t deadline)
{
	if (fd < 0 || !(events & (HERD_READABLE | HERD_WRITABLE)) ||
	    (events & ~(HERD_READABLE | HERD_WRITABLE)))
		return -EINVAL;
	if (deadline == HERD_NOWAIT) {
		/* A plain poll(2) answers at once, from any thread. */
		int r = poll_now(fd, events);
		return r ? r : HERD_ETIMEDOUT;
	}
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return -EPERM;
	if (herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	return wait_one(w, t, fd, events, deadline, true);
}

/* ------------------------------------------------------------------ */
/* Reads that skip their EAGAIN (fd-io.c's herd_read)                  */
/* ------------------------------------------------------------------ */

/*
 * A read of a TCP socket that returned fewer bytes than asked (or that
 * TCP_INQ said left none, fd-io.c) left its receive queue empty, and while the socket stays in the set (the same
 * KEPT registration) any byte that comes after yields an edge: the next
 * read may wait for that edge at once instead of making the recv that is
 * bound to fail with EAGAIN. An edge dispatched since then set the ready
 * flag or woke the waiters linked (who read); one still in the kernel
 * wakes this waiter. Not when the registration reported a hang-up, an
 * error or urgent data (hup): the edge of a FIN or an error that came with
 * the data may have been taken by the wait before the short read, and a
 * read stops short at the urgent mark; then it reads as before. Each short
 * read allows one such wait (it takes the mark), so that several tasks
 * reading one socket read in turn as they did.
 */

uint32_t herd__poll_kept(herd__rt *rt, int fd)
{
	struct herd__pollent *e = entry_of(rt, fd);
	if (!e || atomic_load_explicit(&e->state, mo_relaxed) != KEPT)
		return 0;
	return gen_of(e);
}

void herd__poll_read_mark(herd__rt *rt, int fd, uint32_t gen)
{
	struct herd__pollent *e = entry_of(rt, fd);
	if (e && atomic_load_explicit(&e->rd_short, mo_relaxed) != gen)
		atomic_store_explicit(&e->rd_short, gen, mo_relaxed);
}

int herd__poll_read_wait(herd__rt *rt, int fd, int64_t deadline)
{
	struct herd__pollent *e = entry_of(rt, fd);
	if (!e || !atomic_load_explicit(&e->rd_short, mo_relaxed))
		return 0;
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t) || (deadline >= 0 && deadline <= herd_now()))
		return 0; /* a deadline gone: the read answers, as before */
	herd__mutex_lock(&e->lock);
	uint32_t g = atomic_load_explicit(&e->rd_short, mo_relaxed);
	atomic_store_explicit(&e->rd_short, 0, mo_relaxed);
	if (!g || g != gen_of(e) || atomic_load_explicit(&e->state, mo_relaxed) != KEPT ||
	    e->hup || take_ready(e, HERD_READABLE)) {
		herd__mutex_unlock(&e->lock);
		return 0;
	}
	return park_locked(w, t, e, HERD_READABLE, deadline);
}
