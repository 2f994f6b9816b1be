/*
 * fd-budget.c - the descriptor budget: the count and the marks herd keeps
 * of the descriptors it creates, and tasks waiting for one when the table
 * is full. The calls that create descriptors and do I/O are in fd-io.c.
 *
 * The budget. At start the soft RLIMIT_NOFILE is raised to the hard limit
 * (children get the original back, proc/spawn-linux.c), and restored at the end. Every
 * descriptor herd creates is close-on-exec and marked in a bitmap (pages of
 * FD_PAGE_BITS bits, made on first use, so a limit of millions costs
 * nothing until used); `open` and `peak` count the marked ones. herd_close
 * clears the mark before it closes, so a number the kernel hands out again
 * at once is marked afresh by its creator. The marks also tell the poller
 * which descriptors it may keep registered from one wait to the next
 * (io/poll.c): closing forgets the registration first, and marking a
 * number renews it. A second mark, in the same pages, tells the sockets
 * herd made (herd_socket, herd_accept): fd-io.c reads and writes them with
 * recv and send; a third, the TCP ones among them, whose short reads
 * io/poll.c trusts; a fourth, those fd-io.c turned TCP_INQ on for.
 * Marking a number anew and closing it clear them.
 *
 * Running out. A creation that fails with EMFILE or ENFILE calls
 * herd__fd_retry, which parks the task in `waitq` until herd releases one
 * of its descriptors: each release wakes one waiter, the first, so that N
 * waiters cost one wakeup per descriptor released, not N. A waiter woken
 * that still finds too few (a process start needs several) gives back what
 * it took without counting it as a release (herd__fd_close_quiet: waking
 * the next waiter for it would only pass the same shortage round), and
 * waits again at the head of the queue. Descriptors the program closes
 * itself are not seen: for them the supervisor wakes the first waiter when
 * nothing was released for FD_RECHECK_NS. The first wait prints one warning
 * that names the limit. With HERD_NOWAIT it fails at once.
 *
 * No lost wakeup. A release increments `released` and then reads
 * `nwaiting`; a waiter reads `released` before its failed attempt
 * (herd__fdwait.gen), and after queueing itself (nwaiting raised) reads it
 * again: if it moved, it tries again at once. All seq_cst: either the
 * releaser sees the waiter, or the waiter sees the release.
 *
 * Locks: fd.lock protects waitq and the making of bitmap pages; it is an
 * object lock (level 2): waking takes the scheduler's leaf locks. The
 * counters and the bitmap's bits are atomics; `released` and `nwaiting`
 * are seq_cst (the handshake above), the rest relaxed: `last_release` is
 * only the supervisor's hint, kept while somebody waits (the first wait
 * sets it), so a close with nobody waiting reads no clock.
 */
#include "io/io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define FD_PAGE_BITS 4096u
#define FD_PAGE_WORDS (FD_PAGE_BITS / 64)
/* A page holds the herd marks, then the socket marks, the TCP marks and
 * the TCP_INQ marks. */
#define FD_SOCKET_OFF FD_PAGE_WORDS
#define FD_TCP_OFF (2 * FD_PAGE_WORDS)
#define FD_INQ_OFF (3 * FD_PAGE_WORDS)
/* With waiters and no release for this long, the supervisor wakes the
 * first: the program may have closed descriptors of its own. */
#define FD_RECHECK_NS (100 * HERD_MSEC)

int herd__fd_init(herd__rt *rt)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rt->io->fd.limit_at_start = (long)rl.rlim_cur;
		if (rl.rlim_cur < rl.rlim_max) {
			struct rlimit up = {rl.rlim_max, rl.rlim_max};
			if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
				rt->io->fd.raised = true;
				rl.rlim_cur = rl.rlim_max;
			}
		}
		rt->io->fd.limit = (long)rl.rlim_cur;
	} else {
		rt->io->fd.limit = rt->io->fd.limit_at_start = 1024;
	}
	size_t n = ((size_t)rt->io->fd.limit + FD_PAGE_BITS - 1) / FD_PAGE_BITS;
	rt->io->fd.pages = calloc(n ? n : 1, sizeof *rt->io->fd.pages);
	if (!rt->io->fd.pages)
		return -ENOMEM;
	rt->io->fd.npages = n;
	return 0;
}

void herd__fd_fini(herd__rt *rt)
{
	if (rt->io->fd.pages) {
		for (size_t i = 0; i < rt->io->fd.npages; i++)
			free((void *)atomic_load_explicit(&rt->io->fd.pages[i], mo_relaxed));
		free(rt->io->fd.pages);
		rt->io->fd.pages = NULL;
	}
	if (rt->io->fd.raised) {
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = (rlim_t)rt->io->fd.limit_at_start;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		rt->io->fd.raised = false;
	}
}

/* The bitmap word that holds fd's mark, made if `make`; NULL if fd lies
 * beyond the limit herd started with (it is then not counted). */
static _Atomic uint64_t *mark_word(herd__rt *rt, int fd, bool make)
{
	size_t pg = (size_t)fd / FD_PAGE_BITS;
	if (pg >= rt->io->fd.npages)
		return NULL;
	_Atomic uint64_t *page = atomic_load_explicit(&rt->io->fd.pages[pg], mo_acquire);
	if (!page && make) {
		herd__mutex_lock(&rt->io->fd.lock);
		page = atomic_load_explicit(&rt->io->fd.pages[pg], mo_relaxed);
		if (!page && (page = calloc(4 * FD_PAGE_WORDS, sizeof *page)))
			atomic_store_explicit(&rt->io->fd.pages[pg], page, mo_release);
		herd__mutex_unlock(&rt->io->fd.lock);
	}
	return page ? &page[(fd % FD_PAGE_BITS) / 64] : NULL;
}

static void unmark_socket(_Atomic uint64_t *wd, uint64_t bit)
{
	if (atomic_load_explicit(wd + FD_SOCKET_OFF, mo_relaxed) & bit)
		atomic_fetch_and_explicit(wd + FD_SOCKET_OFF, ~bit, mo_relaxed);
	if (atomic_load_explicit(wd + FD_TCP_OFF, mo_relaxed) & bit)
		atomic_fetch_and_explicit(wd + FD_TCP_OFF, ~bit, mo_relaxed);
	if (atomic_load_explicit(wd + FD_INQ_OFF, mo_relaxed) & bit)
		atomic_fetch_and_explicit(wd + FD_INQ_OFF, ~bit, mo_relaxed);
}

void herd__fd_track(herd__rt *rt, int fd)
{
	_Atomic uint64_t *wd = mark_word(rt, fd, true);
	if (!wd)
		return;
	uint64_t bit = (uint64_t)1 << (fd % 64);
	bool was = atomic_fetch_or_explicit(wd, bit, mo_relaxed) & bit;
	unmark_socket(wd, bit);
	/* A new descriptor: the poller drops what it knew of the number's
	 * last one, if the program closed that with close(2). */
	herd__poll_renew(rt, fd);
	if (was)
		return;
	long n = atomic_fetch_add_explicit(&rt->io->fd.open, 1, mo_relaxed) + 1;
	long peak = atomic_load_explicit(&rt->io->fd.peak, mo_relaxed);
	while (n > peak && !atomic_compare_exchange_weak_explicit(&rt->io->fd.peak, &peak, n,
								  mo_relaxed, mo_relaxed))
		;
}

bool herd__fd_is_herds(herd__rt *rt, int fd)
{
	_Atomic uint64_t *wd = mark_word(rt, fd, false);
	return wd && (atomic_load_explicit(wd, mo_relaxed) >> (fd % 64) & 1);
}

void herd__fd_mark_socket(herd__rt *rt, int fd, unsigned kind)
{
	_Atomic uint64_t *wd = mark_word(rt, fd, false);
	uint64_t bit = (uint64_t)1 << (fd % 64);
	if (!wd)
		return;
	if (!kind) {
		unmark_socket(wd, bit);
		return;
	}
	atomic_fetch_or_explicit(wd + FD_SOCKET_OFF, bit, mo_relaxed);
	if (kind & HERD__FD_TCP)
		atomic_fetch_or_explicit(wd + FD_TCP_OFF, bit, mo_relaxed);
	if (kind & HERD__FD_INQ)
		atomic_fetch_or_explicit(wd + FD_INQ_OFF, bit, mo_relaxed);
}

unsigned herd__fd_socket_kind(herd__rt *rt, int fd)
{
	_Atomic uint64_t *wd = mark_word(rt, fd, false);
	if (!wd)
		return 0;
	unsigned sh = (unsigned)fd % 64;
	return (unsigned)(atomic_load_explicit(wd + FD_SOCKET_OFF, mo_relaxed) >> sh & 1) *
		       HERD__FD_SOCKET |
	       (unsigned)(atomic_load_explicit(wd + FD_TCP_OFF, mo_relaxed) >> sh & 1) *
		       HERD__FD_TCP |
	       (unsigned)(atomic_load_explicit(wd + FD_INQ_OFF, mo_relaxed) >> sh & 1) *
		       HERD__FD_INQ;
}

/* Uncounts fd if it is herd's; true if it was. */
static bool untrack(herd__rt *rt, int fd)
{
	_Atomic uint64_t *wd = rt ? mark_word(rt, fd, false) : NULL;
	if (!wd)
		return false;
	uint64_t bit = (uint64_t)1 << (fd % 64);
	unmark_socket(wd, bit);
	if (!(atomic_fetch_and_explicit(wd, ~bit, mo_relaxed) & bit))
		return false;
	long was = atomic_fetch_sub_explicit(&rt->io->fd.open, 1, mo_relaxed);
	HERD__ASSERT(was > 0); /* a mark is counted once */
	(void)was;
	return true;
}

/* Wakes the first waiter for a descriptor, if any. */
static void wake_first(herd__rt *rt)
{
	herd__mutex_lock(&rt->io->fd.lock);
	herd__waitq_wake_one(&rt->io->fd.waitq);
	herd__mutex_unlock(&rt->io->fd.lock);
}

/* Before fd is closed: uncounts it if it is herd's (true if it was) and
 * takes it out of the poller, in that order, so that a wait that slips in
 * between registers it for itself only (TRANSIENT, poll.c). */
static bool release(herd__rt *rt, int fd)
{
	bool ours = untrack(rt, fd);
	if (rt)
		herd__poll_forget(rt, fd);
	return ours;
}

int herd__fd_close(herd__rt *rt, int fd)
{
	bool ours = release(rt, fd);
	int rc = close(fd) < 0 && errno != EINTR ? -errno : 0;
	if (ours) {
		atomic_fetch_add_explicit(&rt->io->fd.released, 1, mo_seq_cst);
		if (atomic_load_explicit(&rt->io->fd.nwaiting, mo_seq_cst)) {
			atomic_store_explicit(&rt->io->fd.last_release, herd_now(), mo_relaxed);
			wake_first(rt);
		}
	}
	return rc;
}

int herd__fd_close_quiet(herd__rt *rt, int fd)
{
	release(rt, fd);
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

void herd__fd_recheck(herd__rt *rt, int64_t now)
{
	if (!atomic_load_explicit(&rt->io->fd.nwaiting, mo_relaxed) ||
	    now - atomic_load_explicit(&rt->io->fd.last_release, mo_relaxed) < FD_RECHECK_NS)
		return;
	atomic_store_explicit(&rt->io->fd.last_release, now, mo_relaxed);
	wake_first(rt);
}

static void warn_once(herd__rt *rt)
{
	if (atomic_exchange_explicit(&rt->io->fd.warned, 1, mo_relaxed))
		return;
	if (rt->io->fd.limit != rt->io->fd.limit_at_start)
		fprintf(stderr, "herd: out of file descriptors: the limit is %ld "
				"(RLIMIT_NOFILE, raised from %ld); waiting until "
				"one is closed\n", rt->io->fd.limit, rt->io->fd.limit_at_start);
	else
		fprintf(stderr, "herd: out of file descriptors: the limit is %ld "
				"(RLIMIT_NOFILE, ulimit -n); waiting until one is "
				"closed\n", rt->io->fd.limit);
}

void herd__fd_attempt(herd__fdwait *fw)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	fw->gen = rt ? atomic_load_explicit(&rt->io->fd.released, mo_seq_cst) : 0;
	fw->woken = false;
}

int herd__fd_retry(herd__fdwait *fw, int err, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if ((err != EMFILE && err != ENFILE) || deadline == HERD_NOWAIT ||
	    herd__current(&w, &t))
		return -err;
	herd__rt *rt = w->rt;
	herd_scope *also = atomic_load_explicit(&t->wait_scope, mo_relaxed);
	int early = 0;
	if (herd__scope_canceled(t->scope) || (also && herd__scope_canceled(also)))
		early = HERD_ECANCELED;
	else if (deadline > 0 && herd_now() >= deadline)
		early = HERD_ETIMEDOUT;
	if (early) {
		if (fw->woken) /* the release it was woken for is the next's */
			wake_first(rt);
		return early;
	}
	herd__waiter wt = {.task = t};
	herd__mutex_lock(&rt->io->fd.lock);
	/* Woken for a release and still short: first in line again. */
	if (fw->woken)
		herd__waitq_push_front(&rt->io->fd.waitq, &wt);
	else
		herd__waitq_push(&rt->io->fd.waitq, &wt);
	/* The supervisor's recheck counts from the first wait on. */
	if (atomic_fetch_add_explicit(&rt->io->fd.nwaiting, 1, mo_seq_cst) == 0)
		atomic_store_explicit(&rt->io->fd.last_release, herd_now(), mo_relaxed);
	int rc = 0;
	if (atomic_load_explicit(&rt->io->fd.released, mo_seq_cst) == fw->gen) {
		warn_once(rt);
		atomic_fetch_add_explicit(&rt->io->fd.waits, 1, mo_relaxed);
		herd__waits_on(w->cur, HERD__WHY_FD_BUDGET, NULL);
		rc = herd__wait(&w, &rt->io->fd.lock, deadline, true);
		herd__mutex_lock(&rt->io->fd.lock);
	}
	/* Released since the failed attempt, or woken: try again. */
	herd__waitq_remove(&rt->io->fd.waitq, &wt);
	atomic_fetch_sub_explicit(&rt->io->fd.nwaiting, 1, mo_relaxed);
	herd__mutex_unlock(&rt->io->fd.lock);
	fw->gen = atomic_load_explicit(&rt->io->fd.released, mo_seq_cst);
	fw->woken = rc == 0;
	return rc;
}

/* The running runtime, or NULL (then nothing is counted). */
static herd__rt *runtime(void)
{
	return atomic_load_explicit(&herd__runtime, mo_acquire);
}

void herd__fd_track_running(int fd)
{
	herd__rt *rt = runtime();
	if (rt)
		herd__fd_track(rt, fd);
}

int herd_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	if (herd__leak_tracking())
		herd__leak_untrack_fd(fd); /* before the number can be reused */
	return herd__fd_close(runtime(), fd);
}

int herd_fd_stats_get(herd_fd_stats *out)
{
	if (!out)
		return -EINVAL;
	herd__rt *rt = runtime();
	if (!rt)
		return -ESRCH;
	out->open = atomic_load_explicit(&rt->io->fd.open, mo_relaxed);
	out->peak = atomic_load_explicit(&rt->io->fd.peak, mo_relaxed);
	out->waits = atomic_load_explicit(&rt->io->fd.waits, mo_relaxed);
	struct rlimit rl;
	out->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (long)rl.rlim_cur : rt->io->fd.limit;
	out->limit_at_start = rt->io->fd.limit_at_start;
	return 0;
}
