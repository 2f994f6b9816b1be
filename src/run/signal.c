/*
 * signal.c - the process's signals and its end, the herd way: nothing that
 * herd started outlives a program stopped by Ctrl-C, SIGTERM or exit().
 *
 * Taken signals. When herd_run starts, each of SIGINT, SIGTERM, SIGHUP and
 * SIGPIPE whose action is the default (and that its caller does not block)
 * is taken: herd's handler replaces the default. SIGPIPE raised by a write
 * of a worker or a helper is ignored there: the write returns EPIPE, as
 * in Go, whichever thread the task is on (the handler, not a mask, so that
 * a child the task forks by itself gets the default action back at exec).
 * Any other arrival of a taken signal ends
 * the run: the supervisor (monitor.c) cancels the root scope, so that
 * nothing new starts, ends every process tree (SIGTERM, the grace,
 * SIGKILL), removes herd's cgroups, and then restores the default action
 * and raises the signal again, so that the process dies of it as it would
 * have without herd (a shell sees 128 + the signal). A second one while
 * that goes on kills the trees at once. A program that installed its own
 * handler keeps it; so does one that ignores or blocks the signal.
 *
 * Notified signals (herd_signal_notify, Go's signal.Notify). herd's handler
 * is installed for the signal, and the supervisor sends each arrival to
 * every channel registered for it, without blocking: an arrival that finds
 * a channel full is dropped for that channel, as in Go. A taken signal
 * that has a channel is delivered, not fatal. When the last channel of a
 * signal is stopped, the action it had before is restored.
 *
 * exit(). An atexit handler, registered with the first run, ends the
 * process trees and removes the cgroups of the runtime still running when
 * the program calls exit() (from a task, or any thread); in a process
 * forked from the program it does nothing. A second thread that calls
 * exit() meanwhile waits for that end, and the first caller's status is
 * the process's (see at_exit).
 *
 * The handler is async-signal-safe: it sets the signal's bit in a
 * process-wide mask and rings the supervisor's bell (os-linux.c), both
 * lock-free; the supervisor does the rest. It may run on any thread that
 * leaves the signal unblocked; the kernel prefers the main thread, so when
 * that thread called herd_run it is usually the supervisor, idle. `inflight`
 * counts handlers running, so that the runtime's end can wait for them
 * before its bell goes. In a child forked from the program (without exec)
 * the handler is still installed, but the runtime is not the child's: it
 * puts back the action it replaced and raises the signal again, so that
 * such a child dies of SIGTERM as it would have.
 *
 * Locks: sig.lock protects the registrations, the installed and saved
 * actions; it comes before any channel's lock (deliveries are made under
 * it, so that after herd_signal_stop returns nothing more is sent). The
 * handler takes no lock. `fatal` is written by the supervisor only, read
 * by others (an atomic, release/acquire); `killing` and `kill_at` are the
 * supervisor's alone. `pending`, `bell`, `inflight` and `owner` are
 * process-wide atomics the handler uses: seq_cst, so that the runtime's
 * end, which clears `bell` and then waits for `inflight` to be 0, cannot
 * miss a handler that is about to ring. For exit(): exit_lock keeps the
 * atexit end and herd_run's teardown apart; it comes before every lock of
 * the runtime (the end takes scopes' and processes' locks under it, and
 * herd_run and herd_dump take it holding none); reg_lock, a leaf, protects
 * the count of registered instances; `claimed` (a CAS) and `ended` are
 * seq_cst, and `ended` is stored after the end, so that a thread that
 * reads it set finds the end done.
 */
#include "run/run.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BIT(sig) ((uint64_t)1 << ((sig) - 1))
/* How long after SIGKILL to all (a second signal) the end waits at most
 * for trees to be gone: a process stuck in the kernel must not hold the
 * program's death for ever. */
#define KILL_GIVE_UP (5 * HERD_SEC)
/* The step of an end run by the atexit handler. */
#define EXIT_STEP (1 * HERD_MSEC)

static _Atomic uint64_t pending;      /* arrived, not yet dispatched */
static herd__bell *_Atomic bell;       /* the running supervisor's */
static _Atomic int inflight;          /* handlers running now */
static _Atomic pid_t owner;           /* the process the runtime runs in */
/* The actions herd's handler replaced (under sig.lock; read by the
 * handler in a forked child, where no lock is held for them). */
#define SIG_STANDARD_END 32 /* signals 1-31; then the real-time ones */
static struct sigaction saved[HERD__NSIG + 1];

struct herd__sigreg {
	herd_chan *ch;
	int sig;
};

static void on_signal(int sig)
{
	int e = errno;
	if (getpid() != atomic_load_explicit(&owner, mo_relaxed)) {
		/* A child forked from the program, without exec: the runtime
		 * is not its own. The action herd replaced applies: put it
		 * back and raise again (the signal is blocked until this
		 * handler returns, then delivered). */
		sigaction(sig, &saved[sig], NULL);
		raise(sig);
		errno = e;
		return;
	}
	if (sig == SIGPIPE && (herd__tls_worker || herd__tls_helper)) {
		/* A write by a task or a herd_blocking function: it returns
		 * EPIPE, as Go's do. */
		errno = e;
		return;
	}
	atomic_fetch_add_explicit(&inflight, 1, mo_seq_cst);
	atomic_fetch_or_explicit(&pending, BIT(sig), mo_seq_cst);
	herd__bell *b = atomic_load_explicit(&bell, mo_seq_cst);
	if (b)
		herd__bell_ring(b);
	atomic_fetch_sub_explicit(&inflight, 1, mo_seq_cst);
	errno = e;
}

/* Installs the handler for sig, keeping the action it replaces; lock held. */
static int install_locked(herd__rt *rt, int sig)
{
	if (rt->run->sig.installed & BIT(sig))
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* The program's own threads may take it: their calls restart. */
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, &saved[sig]) < 0)
		return -errno;
	rt->run->sig.installed |= BIT(sig);
	return 0;
}

/* Puts back the action the handler replaced, unless the program has set
 * one of its own since; lock held. */
static void uninstall_locked(herd__rt *rt, int sig)
{
	if (!(rt->run->sig.installed & BIT(sig)))
		return;
	struct sigaction cur;
	if (sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
	    cur.sa_handler == on_signal)
		sigaction(sig, &saved[sig], NULL);
	rt->run->sig.installed &= ~BIT(sig);
}

static bool registered_locked(herd__rt *rt, int sig)
{
	for (size_t i = 0; i < rt->run->sig.nregs; i++)
		if (rt->run->sig.regs[i].sig == sig)
			return true;
	return false;
}

void herd__signal_start(herd__rt *rt)
{
	static const int takeable[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
	atomic_store_explicit(&pending, 0, mo_relaxed);
	atomic_store_explicit(&owner, rt->pid, mo_relaxed);
	herd__bell_init(&rt->mon.bell);
	atomic_store_explicit(&bell, &rt->mon.bell, mo_seq_cst);
	herd__mutex_lock(&rt->run->sig.lock);
	for (size_t i = 0; i < sizeof takeable / sizeof takeable[0]; i++) {
		int sig = takeable[i];
		struct sigaction cur;
		if (sigismember(&rt->sigmask, sig) || sigaction(sig, NULL, &cur) < 0 ||
		    (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
			continue; /* the program's to handle */
		if (install_locked(rt, sig) == 0)
			rt->run->sig.taken |= BIT(sig);
	}
	/* SIGQUIT dumps the tasks, when the program asks for it and leaves
	 * the signal's default action in place. */
	struct sigaction cur;
	if (rt->run->sig.dump_on_quit && !sigismember(&rt->sigmask, SIGQUIT) &&
	    sigaction(SIGQUIT, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
	    cur.sa_handler == SIG_DFL && install_locked(rt, SIGQUIT) == 0)
		rt->run->sig.dumping = true;
	herd__mutex_unlock(&rt->run->sig.lock);
}

int herd__signal_fini(herd__rt *rt)
{
	herd__mutex_lock(&rt->run->sig.lock);
	uint64_t unnotified = rt->run->sig.taken;
	for (size_t i = 0; i < rt->run->sig.nregs; i++)
		unnotified &= ~BIT(rt->run->sig.regs[i].sig);
	for (int sig = 1; sig <= HERD__NSIG; sig++)
		uninstall_locked(rt, sig);
	free(rt->run->sig.regs);
	rt->run->sig.regs = NULL;
	rt->run->sig.nregs = rt->run->sig.cap = 0;
	herd__mutex_unlock(&rt->run->sig.lock);
	/* The bell goes with the runtime: no handler may be ringing it. */
	atomic_store_explicit(&bell, NULL, mo_seq_cst);
	while (atomic_load_explicit(&inflight, mo_seq_cst))
		sched_yield();
	herd__bell_fini(&rt->mon.bell);
	/* A fatal signal whose end herd__proc_fini finished (its last step
	 * found the trees gone before a dispatch could), or a taken signal
	 * that came after the supervisor last looked: the run's processes
	 * are gone, so the program dies of it now. */
	int fatal = atomic_load_explicit(&rt->run->sig.fatal, mo_acquire);
	uint64_t left = atomic_exchange_explicit(&pending, 0, mo_seq_cst) & unnotified;
	if (fatal)
		return fatal;
	return left ? __builtin_ctzll(left) + 1 : 0;
}

HERD__NORETURN void herd__signal_die(int sig)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	_exit(128 + sig); /* not reached: the default action ends the process */
}

/* ------------------------------------------------------------------ */
/* The supervisor's side                                              */
/* ------------------------------------------------------------------ */

/* Sends sig to its channels; false if it has none. Lock held. */
static bool deliver_locked(herd__rt *rt, int sig)
{
	bool any = false;
	for (size_t i = 0; i < rt->run->sig.nregs; i++) {
		if (rt->run->sig.regs[i].sig != sig)
			continue;
		any = true;
		(void)herd_chan_try_send(rt->run->sig.regs[i].ch, &sig); /* full: dropped */
	}
	return any;
}

static void fatal_arrived(herd__rt *rt, int sig, int64_t now)
{
	if (!atomic_load_explicit(&rt->run->sig.fatal, mo_relaxed)) {
		atomic_store_explicit(&rt->run->sig.fatal, sig, mo_release);
		herd_scope_cancel(rt->root); /* nothing new starts */
		herd__proc_end_all(rt, false);
	} else if (!rt->run->sig.killing) {
		rt->run->sig.killing = true; /* the user insists */
		rt->run->sig.kill_at = now;
	}
}

bool herd__signal_ending(herd__rt *rt)
{
	return atomic_load_explicit(&rt->run->sig.fatal, mo_acquire) != 0;
}

void herd__signal_dispatch(herd__rt *rt, int64_t now)
{
	uint64_t got = atomic_exchange_explicit(&pending, 0, mo_seq_cst);
	while (got) {
		int sig = __builtin_ctzll(got) + 1;
		got &= got - 1;
		herd__mutex_lock(&rt->run->sig.lock);
		bool delivered = deliver_locked(rt, sig);
		bool taken = rt->run->sig.taken & BIT(sig);
		bool dump = sig == SIGQUIT && rt->run->sig.dumping;
		herd__mutex_unlock(&rt->run->sig.lock);
		if (!delivered && taken)
			fatal_arrived(rt, sig, now);
		else if (!delivered && dump)
			herd__dump_write(rt, STDERR_FILENO, "herd: SIGQUIT: task dump", NULL);
	}
	int sig = atomic_load_explicit(&rt->run->sig.fatal, mo_relaxed);
	if (!sig)
		return;
	if (herd__proc_end_step(rt, rt->run->sig.killing) &&
	    !(rt->run->sig.killing && now - rt->run->sig.kill_at >= KILL_GIVE_UP))
		return;
	herd__proc_end_cleanup(rt);
	/* HERD_TRACE's last round: the cancellations and the children's ends
	 * of this ending, which the process does not live to write else. */
	herd__trace_flush(rt);
	herd__signal_die(sig);
}

/* ------------------------------------------------------------------ */
/* exit()                                                             */
/* ------------------------------------------------------------------ */

/* Held by the atexit handler while it uses the runtime, and by herd_run
 * while it takes the runtime down, so that one cannot free what the other
 * uses. */
static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Two threads calling exit() at once. The end that at_exit runs takes a
 * while (a grace for each tree), and a task it cancels, or whose process
 * it ends, may well call exit() itself. Before glibc 2.41 and musl 1.2.5
 * such a second caller runs the handlers still registered and then
 * _exit()s: the process would die halfway through the end, its trees and
 * cgroups left behind. So herd's handler is registered several times, one
 * more than the workers and then some, and each instance is the same: the
 * first to run in this process (`claimed`) does the end; the thread that
 * did it passes the other instances; any other thread that comes to one
 * waits until the end is done and then stays there for ever, so that the
 * first caller's exit() ends the process, as the newer C libraries do it.
 * Each word holds the pid it was set in, so that a process forked from the
 * program starts afresh.
 */
#define EXIT_SPARE 4 /* handlers beyond one per worker: other threads */
static _Atomic pid_t claimed, ended;
static __thread pid_t tls_ender;
static unsigned registered; /* instances, under reg_lock */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static void exit_end(void)
{
	pthread_mutex_lock(&exit_lock);
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	/* In a child forked from the program, the trees are not its own. */
	if (rt && rt->pid == getpid()) {
		herd_scope_cancel(rt->root);
		herd__proc_end_all(rt, false);
		while (herd__proc_end_step(rt, false)) {
			struct timespec ts = {0, EXIT_STEP};
			nanosleep(&ts, NULL);
		}
		herd__proc_end_cleanup(rt);
	}
	pthread_mutex_unlock(&exit_lock);
}

static void at_exit(void)
{
	pid_t me = getpid(), seen = atomic_load(&claimed);
	if (tls_ender == me)
		return; /* the end is done: the next instance */
	if (seen != me && atomic_compare_exchange_strong(&claimed, &seen, me)) {
		tls_ender = me;
		exit_end();
		atomic_store(&ended, me);
		return;
	}
	while (atomic_load(&ended) != me) {
		struct timespec ts = {0, EXIT_STEP};
		nanosleep(&ts, NULL);
	}
	for (;;)
		pause();
}

void herd__exit_watch(unsigned workers)
{
	pthread_mutex_lock(&reg_lock);
	while (registered < workers + 1 + EXIT_SPARE && atexit(at_exit) == 0)
		registered++;
	pthread_mutex_unlock(&reg_lock);
}

void herd__exit_lock(void)
{
	pthread_mutex_lock(&exit_lock);
}

void herd__exit_unlock(void)
{
	pthread_mutex_unlock(&exit_lock);
}

/* ------------------------------------------------------------------ */
/* The public calls                                                   */
/* ------------------------------------------------------------------ */

/* Signals a program may have delivered to a channel: not those the
 * kernel sends for a fault (herd reports stack overflows on SIGSEGV), not
 * those that cannot be caught, not those the C library keeps. */
static bool notifiable(int sig)
{
	if (sig < 1 || sig > HERD__NSIG)
		return false;
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
	case SIGILL: case SIGTRAP: case SIGSYS:
		return false;
	}
	/* The 31 standard signals, and the real-time ones libc leaves free. */
	return sig < SIG_STANDARD_END || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

int herd_signal_notify(herd_chan *ch, int sig)
{
	if (!ch || !notifiable(sig) || herd_chan_elem_size(ch) != (int)sizeof(int))
		return -EINVAL;
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (!rt)
		return -ESRCH;
	int rc = 0;
	herd__mutex_lock(&rt->run->sig.lock);
	for (size_t i = 0; i < rt->run->sig.nregs; i++)
		if (rt->run->sig.regs[i].ch == ch && rt->run->sig.regs[i].sig == sig)
			goto out; /* already */
	if (rt->run->sig.nregs == rt->run->sig.cap) {
		size_t cap = rt->run->sig.cap ? 2 * rt->run->sig.cap : 8;
		struct herd__sigreg *r = realloc(rt->run->sig.regs, cap * sizeof *r);
		if (!r) {
			rc = -ENOMEM;
			goto out;
		}
		rt->run->sig.regs = r;
		rt->run->sig.cap = cap;
	}
	if ((rc = install_locked(rt, sig)) == 0)
		rt->run->sig.regs[rt->run->sig.nregs++] = (struct herd__sigreg){ch, sig};
out:
	herd__mutex_unlock(&rt->run->sig.lock);
	return rc;
}

int herd_signal_stop(herd_chan *ch)
{
	if (!ch)
		return -EINVAL;
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (!rt)
		return -ESRCH;
	herd__mutex_lock(&rt->run->sig.lock);
	uint64_t touched = 0;
	size_t n = 0;
	for (size_t i = 0; i < rt->run->sig.nregs; i++) {
		if (rt->run->sig.regs[i].ch == ch)
			touched |= BIT(rt->run->sig.regs[i].sig);
		else
			rt->run->sig.regs[n++] = rt->run->sig.regs[i];
	}
	rt->run->sig.nregs = n;
	for (int sig = 1; sig <= HERD__NSIG; sig++)
		if ((touched & BIT(sig)) && !(rt->run->sig.taken & BIT(sig)) &&
		    !(sig == SIGQUIT && rt->run->sig.dumping) &&
		    !registered_locked(rt, sig))
			uninstall_locked(rt, sig);
	herd__mutex_unlock(&rt->run->sig.lock);
	return 0;
}
