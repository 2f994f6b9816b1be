/*
 * poll.c - the poller: tasks wait for descriptors without holding a worker.
 *
 * Shape. One poller per runtime: a set of descriptors a worker can sleep
 * on, with a wakeup and an alarm in it (os/poller-epoll.c keeps them; this
 * file calls nothing of epoll's). Each descriptor number has an entry
 * (poll-ent.h), in pages of HERD__POLL_PAGE_ENTS kept until the runtime
 * ends (so found without a lock): its registration, the directions
 * reported that no waiter took (`ready`), and its waiters, tasks and
 * callbacks (a child's pidfd, proc/). This file keeps the entries and the
 * set and hands out events; poll-wait.c holds the tasks' waits.
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
 * (poll-wait.c's "Reads that skip their EAGAIN"; `hup` and `rd_short`).
 * An event wakes every waiter it satisfies (several tasks may accept on one socket
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
#include "io/poll-ent.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long the poller may go unvisited while descriptors are waited on
 * and every worker is busy. */
#define POLL_STALE_NS (1 * HERD_MSEC)
#define EVENTS_MAX 64
#define DIR_MIN 64 /* pages: 16,384 descriptors */

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
	size_t size = HERD__POLL_PAGE_ENTS * sizeof(struct herd__pollent);
	struct herd__pollent *page = aligned_alloc(HERD__CACHELINE, size);
	if (!page)
		return -ENOMEM;
	memset(page, 0, size);
	for (unsigned i = 0; i < HERD__POLL_PAGE_ENTS; i++) {
		herd__mutex_init(&page[i].lock, HERD__RANK_POLL);
		page[i].fd = (int)(pg << HERD__POLL_PAGE_SHIFT | i);
	}
	atomic_store_explicit(&d->pages[pg], page, mo_release);
	return 0;
}

/* fd's entry, made if need be: 0, -ENOMEM, or -errno if fd lies beyond
 * the directory and is not open (the directory grows to its number: a
 * wait on 1 << 30 must answer -EBADF, not allocate 32 MiB). */
static int entry_make(herd__rt *rt, int fd, struct herd__pollent **out)
{
	if ((*out = herd__pollent_of(rt, fd)))
		return 0;
	size_t pg = (size_t)fd >> HERD__POLL_PAGE_SHIFT;
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
		*out = herd__pollent_of(rt, fd);
	return rc;
}

/* What an event for e's registration carries. */
static uint64_t cookie(struct herd__pollent *e)
{
	return (uint64_t)herd__pollent_gen(e) << 32 | (uint32_t)e->fd;
}

/* Adds e's descriptor to the set for a wait (e->lock held): KEPT if it is
 * herd's, else TRANSIENT. 0 or -errno. */
static int register_locked(herd__rt *rt, struct herd__pollent *e)
{
	atomic_store_explicit(&e->gen, herd__pollent_gen(e) + 1, mo_relaxed);
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

int herd__pollent_lock(herd__rt *rt, int fd, struct herd__pollent **out)
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

/* Claims and unlinks e's task waiters (e->lock held), chaining them on
 * *won; unlinks its callbacks, which are dropped. */
static void evict_locked(herd__rt *rt, struct herd__pollent *e, herd__pollw **won)
{
	for (herd__link *k = e->waiters.head, *next; k; k = next) {
		next = k->next;
		herd__pollw *p = herd__container_of(k, herd__pollw, link);
		if (p->task && !herd__wait_claim(p->task))
			continue; /* its deadline or a cancellation won: it unlinks */
		herd__pollent_unlink(rt, e, p);
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
	struct herd__pollent *e = herd__pollent_of(rt, fd);
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
	struct herd__pollent *e = herd__pollent_of(rt, fd);
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
	struct herd__pollent *e = herd__pollent_of(rt, (int)(uint32_t)data);
	if (!e)
		return;
	/* Under the lock only: the registration may be under way. */
	herd__mutex_lock(&e->lock);
	if (herd__pollent_gen(e) != (uint32_t)(data >> 32) ||
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
		herd__pollent_unlink(rt, e, p);
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
		herd__pollent_settle(rt, e);
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
	int rc = herd__pollent_lock(rt, fd, &e);
	if (rc)
		return rc;
	uint32_t r = herd__pollent_take(e, wt->events);
	if (!r)
		herd__pollent_link(rt, e, wt);
	herd__mutex_unlock(&e->lock);
	if (r)
		wt->cb(wt, r); /* reported before: it is due now */
	else
		herd__poll_watch(rt);
	return 0;
}

bool herd__poll_detach(herd__rt *rt, herd__pollw *wt)
{
	struct herd__pollent *e = herd__pollent_of(rt, wt->fd);
	if (!e)
		return false;
	herd__mutex_lock(&e->lock);
	bool was = wt->linked;
	if (was) {
		herd__pollent_unlink(rt, e, wt);
		herd__pollent_settle(rt, e);
	}
	herd__mutex_unlock(&e->lock);
	return was;
}
