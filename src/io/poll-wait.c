/*
 * poll-wait.c - tasks waiting for descriptors: herd_fd_wait, the waits of
 * the I/O calls after EAGAIN (herd__fd_wait_any), and the reads that wait
 * for an edge without the recv bound to fail (herd__poll_read_wait).
 *
 * A wait registers the descriptor if it is not (poll.c), takes a ready
 * flag or links a waiter under the entry's lock and parks (the wait is
 * claimable before it is findable), and unlinks whatever its wake left
 * linked. The model, the ready flags and the locks are in poll.c's opening
 * comment; this file takes no lock but entries'.
 */
#include "io/io.h"
#include "io/poll-ent.h"

#include <poll.h>

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
			herd__pollent_unlink(rt, es[i], &wts[i]);
			herd__pollent_settle(rt, es[i]);
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
	herd__pollent_link(rt, e, &wt);
	herd__poll_watch(rt);
	herd__waits_on(t, HERD__WHY_FD, (void *)(intptr_t)e->fd);
	int rc = herd__wait(&w, &e->lock, deadline, true);
	if (rc > 0)
		return rc; /* the poller unlinked it */
	unlink_all(rt, &e, &wt, 1);
	return rc;
}

/* The wait on one descriptor. `level`: herd_fd_wait's, which reports
 * readiness (the I/O calls wait after EAGAIN: an edge is what they need);
 * *parked (if not NULL) tells whether the answer came from a park. */
static int wait_one(herd__worker *w, herd__task *t, int fd, int events, int64_t deadline,
		    bool level, bool *parked)
{
	herd__rt *rt = w->rt;
	struct herd__pollent *e;
	int rc = herd__pollent_lock(rt, fd, &e);
	if (rc)
		return rc;
	/* herd_fd_wait asks poll(2), under the lock, so that an edge after
	 * it finds the waiter linked; the flags, which may be stale, are left
	 * to the waits after EAGAIN. */
	rc = level ? poll_now(fd, events) : (int)herd__pollent_take(e, (uint32_t)events);
	if (rc) {
		herd__pollent_settle(rt, e);
		herd__mutex_unlock(&e->lock);
		return rc;
	}
	if (parked)
		*parked = true;
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
		uint32_t r = herd__pollent_take(es[i], wts[i].events);
		if (!r) {
			herd__pollent_link(rt, es[i], &wts[i]);
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

/* A wait's entry check: the calling task and its worker, or -EPERM (not
 * a task) or HERD_ECANCELED. */
static int wait_entry(herd__worker **w, herd__task **t)
{
	if (herd__current(w, t))
		return -EPERM;
	return herd__scope_canceled((*t)->scope) ? HERD_ECANCELED : 0;
}

int herd__fd_wait_any(const int *fds, int n, int events, int64_t deadline)
{
	HERD__ASSERT(n >= 1 && n <= HERD__FD_WAIT_MAX);
	herd__worker *w;
	herd__task *t;
	int rc = wait_entry(&w, &t);
	if (rc)
		return rc;
	if (n == 1)
		return wait_one(w, t, fds[0], events, deadline, false, NULL);
	/* Registered first, each under its own lock; then the wait is made
	 * claimable and the waiters linked, so that an event that comes as
	 * they are claims the task (one waiter's entry lock at a time). */
	herd__rt *rt = w->rt;
	struct herd__pollent *es[HERD__FD_WAIT_MAX];
	herd__pollw wts[HERD__FD_WAIT_MAX];
	int k;
	for (k = 0; k < n; k++) {
		wts[k] = (herd__pollw){.task = t, .events = (uint32_t)events, .fd = fds[k]};
		if ((rc = herd__pollent_lock(rt, fds[k], &es[k])))
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
	for (;;) {
		herd__worker *w;
		herd__task *t;
		int rc = wait_entry(&w, &t);
		if (rc)
			return rc;
		bool parked = false;
		rc = wait_one(w, t, fd, events, deadline, true, &parked);
		if (rc <= 0 || !parked)
			return rc;
		/* Woken by an edge: it may be one the poller took late, for
		 * data read since (seen under qemu). Readiness is promised,
		 * so poll(2) confirms it; if it is gone, wait again. */
		int r = poll_now(fd, events);
		if (r)
			return r;
	}
}

/* ------------------------------------------------------------------ */
/* Reads that skip their EAGAIN (fd-io.c's herd_read)                  */
/* ------------------------------------------------------------------ */

/*
 * A read of a TCP socket that returned fewer bytes than asked (or that
 * TCP_INQ said left none, fd-io.c) left its receive queue empty, and
 * while the socket stays in the set (the same KEPT registration) any
 * byte that comes after yields an edge: the next
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
	struct herd__pollent *e = herd__pollent_of(rt, fd);
	if (!e || atomic_load_explicit(&e->state, mo_relaxed) != KEPT)
		return 0;
	return herd__pollent_gen(e);
}

void herd__poll_read_mark(herd__rt *rt, int fd, uint32_t gen)
{
	struct herd__pollent *e = herd__pollent_of(rt, fd);
	if (e && atomic_load_explicit(&e->rd_short, mo_relaxed) != gen)
		atomic_store_explicit(&e->rd_short, gen, mo_relaxed);
}

int herd__poll_read_wait(herd__rt *rt, int fd, int64_t deadline)
{
	struct herd__pollent *e = herd__pollent_of(rt, fd);
	if (!e || !atomic_load_explicit(&e->rd_short, mo_relaxed))
		return 0;
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t) || (deadline >= 0 && deadline <= herd_now()))
		return 0; /* a deadline gone: the read answers, as before */
	herd__mutex_lock(&e->lock);
	uint32_t g = atomic_load_explicit(&e->rd_short, mo_relaxed);
	atomic_store_explicit(&e->rd_short, 0, mo_relaxed);
	if (!g || g != herd__pollent_gen(e) || atomic_load_explicit(&e->state, mo_relaxed) != KEPT ||
	    e->hup || herd__pollent_take(e, HERD_READABLE)) {
		herd__mutex_unlock(&e->lock);
		return 0;
	}
	return park_locked(w, t, e, HERD_READABLE, deadline);
}
