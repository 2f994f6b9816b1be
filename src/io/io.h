/*
 * io.h - the I/O layer: the poller (tasks wait for descriptors without
 * holding a worker), the descriptor budget, the I/O calls, and the helper
 * threads of herd_blocking. The scheduler reaches the poller through the
 * herd__netpoll hooks herd__poll_init installs.
 */
#ifndef HERD_IO_H
#define HERD_IO_H

#include "core/core.h"

/* The layer's state, one per runtime (rt->io). */
struct herd__io_rt {
	/* The poller (poll.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock; /* growing `dir` */
		herd__os_poller os;
		/* The descriptors' entries, in pages that stay until the end
		 * (read without a lock); retired directories likewise. */
		_Atomic(struct herd__polldir *) dir;
		struct herd__polldir *retired;
		_Atomic uint32_t waiters;   /* registered waits */
		_Atomic int64_t last;       /* when somebody last polled */
	} poll;
	/* herd_blocking's helper threads (blocking.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock;
		struct herd__job *head, *tail;
		unsigned nthreads, nidle, max;
		bool stop;
		pthread_t *threads;
		_Atomic uint32_t seq;     /* futex: helpers sleep on it */
	} blk;
	/* The descriptor budget (fd-budget.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock;
		herd__waitq waitq;          /* tasks waiting for a descriptor */
		_Atomic uint32_t nwaiting;
		_Atomic long open, peak, waits;
		_Atomic uint32_t released;  /* releases so far */
		_Atomic int64_t last_release;
		long limit, limit_at_start;
		bool raised;
		_Atomic int warned;
		/* Which descriptors are herd's: a bitmap in pages of
		 * FD_PAGE_BITS, made on first use, freed with the runtime. */
		_Atomic(_Atomic uint64_t *) *pages;
		size_t npages;
	} fd;
};

/* ------------------------------------------------------------------ */
/* The poller (poll.c)                                                 */
/* ------------------------------------------------------------------ */

/* A wait for a descriptor: a parked task's (on its stack), or a callback's
 * (task NULL; proc/'s pidfds), run by whoever polls, with no lock held. */
typedef struct herd__pollw {
	herd__task *task;
	uint32_t events;        /* HERD_READABLE | HERD_WRITABLE */
	uint32_t result;        /* for a callback: the events ready */
	int fd;
	bool linked;            /* in its entry's list, under the entry's lock */
	herd__link link;        /* in its entry's list, while linked */
	struct herd__pollw *cb_next;
	void (*cb)(struct herd__pollw *p, uint32_t ready);
} herd__pollw;

int herd__poll_init(herd__rt *rt);
void herd__poll_fini(herd__rt *rt);
/* Registers the callback wt (wt->cb, wt->events) for fd: it runs once,
 * from whoever polls, when fd is ready, and is then unregistered; if fd
 * is known ready already, it runs before this returns. 0, or -errno from
 * the backend (-EBADF, -EPERM for a regular file), -ENOMEM. Call it with
 * none of the poller's locks held. */
int herd__poll_attach(herd__rt *rt, int fd, herd__pollw *wt);
/* Unregisters wt if it is still registered: true if it was (its callback
 * will not run), false if it has run or is about to. */
bool herd__poll_detach(herd__rt *rt, herd__pollw *wt);
/* fd is about to be closed by herd: takes it out of the set and wakes the
 * tasks waiting on it with -EBADF. Any thread; call it before close(2),
 * while the number is still fd's. */
void herd__poll_forget(herd__rt *rt, int fd);
/* fd's number has just been given to a new descriptor (herd made it, or
 * the program passed it to herd_fd_nonblock): whatever the poller knew of
 * an earlier descriptor with that number (closed with close(2)) is
 * dropped, as herd__poll_forget does, without touching the set. */
void herd__poll_renew(herd__rt *rt, int fd);
/* Waits for events until deadline (-1: none; 0: do not block), wakes
 * their waiters; returns how many it woke. Any thread. */
int herd__poll_run(herd__rt *rt, int64_t deadline);
/* Wakes a thread blocked in herd__poll_run. */
void herd__poll_interrupt(herd__rt *rt);
/* Makes a thread blocked in herd__poll_run return by `when` at the
 * latest, without waking it before; false if it cannot (no alarm). */
bool herd__poll_wake_by(herd__rt *rt, int64_t when);
/* The most descriptors herd__fd_wait_any waits on at once. */
#define HERD__FD_WAIT_MAX 4
/* herd_fd_wait on several descriptors (1 to HERD__FD_WAIT_MAX): waits
 * until one of them is ready for `events`, and returns its events, or a
 * code as herd_fd_wait (which calls it with one); from a task only, with
 * a deadline other than HERD_NOWAIT. */
int herd__fd_wait_any(const int *fds, int n, int events, int64_t deadline);
/* Reads that wait for the edge without the recv bound to fail
 * (poll-wait.c). _kept: fd's registration (not 0) if it is KEPT, else 0;
 * no lock. Loaded before a read of a TCP socket, it is passed to
 * _read_mark after it: the registration if the read emptied the queue
 * (returned fewer bytes than asked but not 0, or TCP_INQ said it left
 * none), else 0. _read_wait, before the next read: waits for READABLE as
 * after EAGAIN if the mark allows it (the same registration, nothing reported
 * ready, no hang-up, error or urgent data reported), and returns its
 * events or a code; 0 when the read should be made at once. Takes the
 * mark. From a task only, not with HERD_NOWAIT. */
uint32_t herd__poll_kept(herd__rt *rt, int fd);
void herd__poll_read_mark(herd__rt *rt, int fd, uint32_t gen);
int herd__poll_read_wait(herd__rt *rt, int fd, int64_t deadline);
/* Whether a busy worker should poll now (someone waits, and nobody has
 * polled for a while). */
bool herd__poll_due(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Descriptors (fd-budget.c)                                                  */
/* ------------------------------------------------------------------ */

int herd__fd_init(herd__rt *rt);
void herd__fd_fini(herd__rt *rt);
/* Counts fd as herd's (created close-on-exec by herd); _running, in the
 * running runtime if there is one. */
void herd__fd_track(herd__rt *rt, int fd);
void herd__fd_track_running(int fd);
/* A creation of descriptors that may wait for some to be released: the
 * count of releases seen before an attempt, and whether it was woken. */
typedef struct herd__fdwait {
	uint32_t gen;
	bool woken;
} herd__fdwait;
/* Before the first attempt. */
void herd__fd_attempt(herd__fdwait *fw);
/* After an attempt failed with errno err: 0 to try again (at once if a
 * descriptor was released since the attempt, else once one is, when err
 * is EMFILE or ENFILE and the deadline allows), else the code to return:
 * -err, HERD_ETIMEDOUT, HERD_ECANCELED (the task's scope or its
 * wait_scope is canceled). */
int herd__fd_retry(herd__fdwait *fw, int err, int64_t deadline);
/* Marks fd, which herd made and tracks, as a socket (or not: 0):
 * fd-io.c reads and writes it with recv and send, and reads a TCP socket
 * (a stream whose short read means an empty queue) without the recv bound
 * to fail (herd__poll_read_wait); INQ: TCP_INQ is on (its reads report
 * what they left queued). Tracking a number anew, and closing it, unmark
 * it. _socket_kind: the marks, 0 for a descriptor not marked. */
enum { HERD__FD_SOCKET = 1, HERD__FD_TCP = 2, HERD__FD_INQ = 4 };
void herd__fd_mark_socket(herd__rt *rt, int fd, unsigned kind);
unsigned herd__fd_socket_kind(herd__rt *rt, int fd);
/* Whether fd is one herd made and counts (it will close it through
 * herd__fd_close). Any thread. */
bool herd__fd_is_herds(herd__rt *rt, int fd);
/* Closes fd, uncounting it if it is herd's, which releases it to a
 * waiter; _quiet gives back what a failed attempt took, waking nobody.
 * Both tell the poller first (herd__poll_forget). */
int herd__fd_close(herd__rt *rt, int fd);
int herd__fd_close_quiet(herd__rt *rt, int fd);
/* The supervisor's: wakes the first waiter if nothing was released for a
 * while (the program may have closed its own). */
void herd__fd_recheck(herd__rt *rt, int64_t now);

/* The helper threads (blocking.c). */
void herd__blocking_fini(herd__rt *rt);
/* Set on helper threads, for the signal handler (async-signal-safe). */
extern __thread bool herd__tls_helper __attribute__((tls_model("initial-exec")));

#endif /* HERD_IO_H */
