/*
 * test-mutex.c - white-box tests of the race that the plain unlock of
 * sync/mutex.c must survive: an unlock that loaded the state (exactly
 * LOCKED) before the first waiter set PENDING, and stores 0 after, wiping
 * it. That store lands in a window of a few instructions, at which the
 * system tests (test/test-mutex.c) cannot aim, so syscall is wrapped (see
 * test/unit/CMakeLists.txt): when the first waiter calls membarrier, the
 * wrapper first does to the mutex's state word what the racing unlock
 * would have done, and the waiter must get the mutex (or wait for the next
 * unlock), never queue where no unlock will wake it.
 *
 * The cases run only where mutex.c has the plain unlock (x86-64, glibc's
 * rseq, not ThreadSanitizer) and the kernel has membarrier's rseq command;
 * elsewhere they skip.
 */
#include "sync/sync.h"

#include "unit.h"

#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GLIBC__) && !HERD_TSAN && \
	__has_include(<sys/rseq.h>)
#define HAVE_PLAIN_UNLOCK 1
#include <linux/membarrier.h>
#include <sys/rseq.h>
#else
#define HAVE_PLAIN_UNLOCK 0
#endif

/* What the wrapper does to the state word before the first membarrier. */
enum race {
	WIPE,   /* a plain unlock's store of 0 */
	RELOCK, /* the same, then another task's lock */
	RELEASE /* unlock_slow's release, which clears LOCKED alone */
};

static herd_mutex mu = HERD_MUTEX_INIT;
static _Atomic uint32_t *_Atomic inject_at; /* mu's state word, or NULL */
static enum race race;
static atomic_int injected, waiter_done;

/* wrap: syscall */
long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);

long __wrap_syscall(long nr, ...)
{
	long a[6] = {0};
	va_list ap;

	/* Forward six arguments, as syscall(2) does, but read the sixth,
	 * which x86-64 passes on the stack, only for the one call of the
	 * library that passes six (futex): reading past the caller's
	 * arguments there is what AddressSanitizer reports. The first five
	 * come from registers, which va_start saved. */
	va_start(ap, nr);
	for (int i = 0; i < 5; i++)
		a[i] = va_arg(ap, long);
	if (nr == SYS_futex)
		a[5] = va_arg(ap, long);
	va_end(ap);
#if HAVE_PLAIN_UNLOCK
	if (nr == __NR_membarrier && a[0] == MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) {
		_Atomic uint32_t *st = atomic_exchange(&inject_at, NULL);
		if (st) {
			if (race == RELEASE)
				atomic_fetch_and(st, ~1u); /* LOCKED */
			else
				atomic_store(st, race == RELOCK ? 1u : 0u);
			atomic_store(&injected, 1);
		}
	}
#endif
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Skips where the plain unlock is missing (see the top). */
static void need_plain_unlock(void)
{
#if HAVE_PLAIN_UNLOCK
	long cmds = __real_syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0, 0, 0, 0);
	if (__rseq_size == 0 || cmds < 0 ||
	    !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ))
		TEST_SKIP("no rseq, or no membarrier(PRIVATE_EXPEDITED_RSEQ)");
#else
	TEST_SKIP("mutex.c has no plain unlock in this build");
#endif
}

/* The first waiter: spins on the held mutex, then parks, which the wrapper
 * interrupts; it must end up owning the mutex. */
static void waiter(void *arg)
{
	CHECK_EQ(herd_mutex_lock(&mu, HERD_FOREVER), 0);
	CHECK_EQ(herd_mutex_trylock(&mu), -EBUSY);
	CHECK_EQ(herd_mutex_unlock(&mu), 0);
	atomic_store(&waiter_done, 1);
}

static void race_main(void *arg)
{
	herd_scope *s;
	int64_t give_up = herd_deadline(20 * HERD_SEC);

	CHECK_EQ(herd_mutex_lock(&mu, HERD_FOREVER), 0);
	atomic_store(&inject_at, (_Atomic uint32_t *)(void *)&mu);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, waiter, NULL, 0));
	/* The wrapper's store stands for our unlock (and, for RELOCK, a
	 * newcomer's lock, which we then release for real). */
	while (!atomic_load(&injected)) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	if (race == RELOCK) {
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
		CHECK_EQ(atomic_load(&waiter_done), 0);
		CHECK_EQ(herd_mutex_unlock(&mu), 0);
	}
	CHECK_EQ(herd_scope_wait(s, give_up), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&waiter_done), 1);
	/* Free, with no bit left behind (PENDING among them). */
	CHECK_EQ(atomic_load((_Atomic uint32_t *)(void *)&mu), 0u);
	CHECK_EQ(herd_mutex_trylock(&mu), 0);
	CHECK_EQ(herd_mutex_unlock(&mu), 0);
}

static void run_race(enum race r)
{
	need_plain_unlock();
	race = r;
	/* Two workers: with one, the waiter parks without the barrier. */
	test_run(2, race_main, NULL);
	CHECK_EQ(atomic_load(&injected), 1);
}

/* The racing unlock's store wiped PENDING and the mutex is free: the
 * waiter takes it instead of queueing. */
TEST(wiped_then_free)
{
	run_race(WIPE);
}

/* The same, but a newcomer took the mutex before the waiter looked again:
 * the waiter must not queue behind a holder whose plain unlock would not
 * see it; it competes again, parks as first waiter again, and gets the
 * mutex at the newcomer's unlock. */
TEST(wiped_then_relocked)
{
	run_race(RELOCK);
}

/* A slow-path unlock released the mutex (clearing LOCKED alone) while
 * PENDING was set: the waiter clears PENDING and takes the mutex. */
TEST(released_under_pending)
{
	run_race(RELEASE);
}
