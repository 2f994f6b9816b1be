/*
 * test-thread-state.c - white-box tests of the OS seam's look at another
 * thread (os/os-linux.c), on which the monitor decides whether a worker is
 * really stuck (run/monitor.c): a thread's CPU time grows while it
 * computes and not while it sleeps, and a thread blocked in a system call
 * reads as sleeping while a computing one does not.
 */
#include "os/os.h"

#include "unit.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static _Atomic int tid;
static _Atomic int stop;

static void *sleeper(void *arg)
{
	(void)arg;
	atomic_store(&tid, herd__os_tid());
	while (!atomic_load(&stop))
		usleep(1000);
	return NULL;
}

static void *spinner(void *arg)
{
	(void)arg;
	atomic_store(&tid, herd__os_tid());
	while (!atomic_load(&stop))
		;
	return NULL;
}

static int start(pthread_t *t, void *(*fn)(void *))
{
	atomic_store(&tid, 0);
	atomic_store(&stop, 0);
	CHECK(pthread_create(t, NULL, fn, NULL) == 0);
	while (!atomic_load(&tid))
		usleep(100);
	return atomic_load(&tid);
}

static void finish(pthread_t t)
{
	atomic_store(&stop, 1);
	CHECK(pthread_join(t, NULL) == 0);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A sleeping thread: in the kernel, and (almost) no CPU time used while
 * 200 ms pass. */
TEST(sleeping_thread)
{
	pthread_t t;
	int id = start(&t, sleeper);
	usleep(20000);
	int64_t c0 = herd__os_thread_cpu_ns(id);
	CHECK(c0 >= 0);
	int sleeping = 0;
	for (int i = 0; i < 20; i++) {
		sleeping += herd__os_thread_sleeping(id) == 1;
		usleep(10000);
	}
	int64_t used = herd__os_thread_cpu_ns(id) - c0;
	finish(t);
	/* It wakes every millisecond, briefly (and may then wait for a CPU on
	 * a loaded machine). */
	CHECK(sleeping >= 5);
	CHECK(used < 100000000);
}

/* A computing thread: never sleeping in the kernel, and its CPU time
 * grows (by how much depends on the machine's load: only that it grows). */
TEST(computing_thread)
{
	pthread_t t;
	int id = start(&t, spinner);
	int64_t c0 = herd__os_thread_cpu_ns(id);
	CHECK(c0 >= 0);
	int sleeping = 0;
	int64_t end = mono_ns() + 200000000;
	while (mono_ns() < end) {
		int s = herd__os_thread_sleeping(id);
		CHECK(s == 0 || s == 1);
		sleeping += s;
		usleep(10000);
	}
	int64_t used = herd__os_thread_cpu_ns(id) - c0;
	finish(t);
	CHECK(sleeping == 0);
	CHECK(used > 0);
}

/* A thread that is not there: neither call can tell. */
TEST(no_such_thread)
{
	pthread_t t;
	int id = start(&t, sleeper);
	finish(t);
	CHECK(herd__os_thread_sleeping(id) == -1);
	CHECK(herd__os_thread_cpu_ns(id) == -1);
}
