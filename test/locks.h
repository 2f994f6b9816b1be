/*
 * locks.h - what the tests of the task-aware locks share (test-mutex.c,
 * test-rwmutex.c, test-sema.c): a result slot's "not yet" value, running a
 * function on a plain thread, and waiting for a flag.
 */
#ifndef HERD_TEST_LOCKS_H
#define HERD_TEST_LOCKS_H

#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

/* Result slots hold this until the task stores its call's result. */
#define PENDING 1

/* Runs fn(arg) on a new plain thread and waits for it. */
static inline void on_thread(void *(*fn)(void *), void *arg)
{
	pthread_t th;

	CHECK(pthread_create(&th, NULL, fn, arg) == 0);
	CHECK(pthread_join(th, NULL) == 0);
}

/* Waits (up to 20 s, failing after) until *flag is at least v. */
static inline void wait_flag(atomic_int *flag, int v)
{
	int64_t give_up = herd_deadline(20 * HERD_SEC);

	while (atomic_load(flag) < v) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
}

#endif /* HERD_TEST_LOCKS_H */
