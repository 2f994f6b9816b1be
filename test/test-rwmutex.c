/*
 * test-rwmutex.c - task-aware read-write mutexes. Covers readers sharing
 * the lock, writers excluding everybody under contention across workers,
 * a waiting writer blocking new readers (so that readers that overlap
 * without end cannot starve it, measured in their reads) and letting in
 * those that queued when it unlocks, deadlines on both locks (a writer
 * that gives up lets in the readers it held back), bad input (NULL,
 * releasing a lock that is not held), and plain threads, which lock what
 * is free and release what tasks locked but cannot wait.
 */
#include "locks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define RS_READERS 8

static herd_rwmutex rs_rw = HERD_RWMUTEX_INIT;
static atomic_int rs_in, rs_out, rs_release;

static void rs_reader(void *arg)
{
	CHECK_EQ(herd_rwmutex_rlock(&rs_rw, HERD_FOREVER), 0);
	atomic_fetch_add(&rs_in, 1);
	/* Every reader holds it at once, or this never ends. */
	wait_flag(&rs_release, 1);
	CHECK_EQ(herd_rwmutex_runlock(&rs_rw), 0);
	atomic_fetch_add(&rs_out, 1);
}

static void rs_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < RS_READERS; i++)
		CHECK_OK(herd_go(s, rs_reader, NULL, 0));
	wait_flag(&rs_in, RS_READERS);
	CHECK_EQ(herd_rwmutex_lock(&rs_rw, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_rwmutex_rlock(&rs_rw, HERD_NOWAIT), 0);
	CHECK_EQ(herd_rwmutex_runlock(&rs_rw), 0);
	atomic_store(&rs_release, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(rs_out, RS_READERS);
	CHECK_EQ(herd_rwmutex_lock(&rs_rw, HERD_NOWAIT), 0);
	CHECK_EQ(herd_rwmutex_rlock(&rs_rw, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_rwmutex_unlock(&rs_rw), 0);
}

/* Eight readers hold the read lock at the same time; a writer cannot. */
TEST(readers_share)
{
	test_run(2, rs_main, NULL);
}

/* ------------------------------------------------------------------ */

#define RX_WRITERS 4
#define RX_READERS 12
#define RX_ITERS (2000 / TEST_SCALE)

static herd_rwmutex rx_rw = HERD_RWMUTEX_INIT;
static atomic_int rx_readers, rx_writers, rx_bad, rx_max_readers;
static long rx_counter; /* written by writers only */

static void rx_writer(void *arg)
{
	for (int i = 0; i < RX_ITERS; i++) {
		CHECK_EQ(herd_rwmutex_lock(&rx_rw, HERD_FOREVER), 0);
		if (atomic_fetch_add(&rx_writers, 1) != 0 || atomic_load(&rx_readers))
			atomic_fetch_add(&rx_bad, 1);
		long v = rx_counter;
		if (i % 16 == 0)
			herd_yield();
		rx_counter = v + 1;
		atomic_fetch_sub(&rx_writers, 1);
		CHECK_EQ(herd_rwmutex_unlock(&rx_rw), 0);
	}
}

static void rx_reader(void *arg)
{
	for (int i = 0; i < RX_ITERS; i++) {
		CHECK_EQ(herd_rwmutex_rlock(&rx_rw, HERD_FOREVER), 0);
		int n = atomic_fetch_add(&rx_readers, 1) + 1;
		if (atomic_load(&rx_writers))
			atomic_fetch_add(&rx_bad, 1);
		for (int m = atomic_load(&rx_max_readers);
		     n > m && !atomic_compare_exchange_weak(&rx_max_readers, &m, n);)
			;
		long v = rx_counter;
		if (i % 4 == 0)
			herd_yield();
		CHECK_EQ(rx_counter, v); /* no writer meanwhile */
		atomic_fetch_sub(&rx_readers, 1);
		CHECK_EQ(herd_rwmutex_runlock(&rx_rw), 0);
	}
}

static void rx_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < RX_READERS; i++) {
		CHECK_OK(herd_go(s, rx_reader, NULL, 0));
		if (i < RX_WRITERS)
			CHECK_OK(herd_go(s, rx_writer, NULL, 0));
	}
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(rx_bad, 0);
	CHECK_EQ(rx_counter, (long)RX_WRITERS * RX_ITERS);
	CHECK(rx_max_readers > 1);
	fprintf(stderr, "writer_excludes: up to %d readers at once\n",
		rx_max_readers);
}

/* Writers and readers on 4 workers: a writer is always alone, readers
 * overlap, and no write is lost. */
TEST(writer_excludes)
{
	test_run(4, rx_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_rwmutex wb_rw = HERD_RWMUTEX_INIT;
static atomic_int wb_writer_in, wb_reader_rc = PENDING, wb_reader_saw_writer;

static void wb_writer(void *arg)
{
	CHECK_EQ(herd_rwmutex_lock(&wb_rw, HERD_FOREVER), 0);
	atomic_store(&wb_writer_in, 1);
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	atomic_store(&wb_writer_in, 2);
	CHECK_EQ(herd_rwmutex_unlock(&wb_rw), 0);
}

static void wb_reader(void *arg)
{
	int rc = herd_rwmutex_rlock(&wb_rw, HERD_FOREVER);

	atomic_store(&wb_reader_saw_writer, atomic_load(&wb_writer_in));
	atomic_store(&wb_reader_rc, rc);
	if (rc == 0)
		CHECK_EQ(herd_rwmutex_runlock(&wb_rw), 0);
}

static void wb_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_rwmutex_rlock(&wb_rw, HERD_FOREVER), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, wb_writer, NULL, 0));
	test_wait_parked(1);
	/* A writer waits: new readers wait behind it. */
	CHECK_EQ(herd_rwmutex_rlock(&wb_rw, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_OK(herd_go(s, wb_reader, NULL, 0));
	test_wait_parked(2);
	CHECK_EQ(wb_writer_in, 0);
	CHECK_EQ(herd_rwmutex_runlock(&wb_rw), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(wb_reader_rc, 0);
	CHECK_EQ(wb_reader_saw_writer, 2); /* it got in after the writer */
}

/* A waiting writer blocks new readers; the last reader out lets it in,
 * and its unlock lets in the readers that queued meanwhile. */
TEST(writer_blocks_readers)
{
	test_run(2, wb_main, NULL);
}

/* ------------------------------------------------------------------ */

#define WS_READERS 4
#define WS_BOUND 200000L
#define WS_CAP 20000000L

static herd_rwmutex ws_rw = HERD_RWMUTEX_INIT;
static atomic_long ws_reads;
static atomic_int ws_stop, ws_in;
static long ws_waited;

static void ws_reader(void *arg)
{
	while (!atomic_load(&ws_stop) && atomic_load(&ws_reads) < WS_CAP) {
		CHECK_EQ(herd_rwmutex_rlock(&ws_rw, HERD_FOREVER), 0);
		atomic_fetch_add(&ws_in, 1);
		atomic_fetch_add(&ws_reads, 1);
		herd_yield(); /* the next reader comes in before this one leaves */
		atomic_fetch_sub(&ws_in, 1);
		CHECK_EQ(herd_rwmutex_runlock(&ws_rw), 0);
	}
}

static void ws_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < WS_READERS; i++)
		CHECK_OK(herd_go(s, ws_reader, NULL, 0));
	while (atomic_load(&ws_reads) < 1000)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	for (int r = 0; r < 10; r++) {
		long before = atomic_load(&ws_reads);
		CHECK_EQ(herd_rwmutex_lock(&ws_rw, HERD_FOREVER), 0);
		long waited = atomic_load(&ws_reads) - before;
		CHECK_EQ(ws_in, 0);
		CHECK_EQ(herd_rwmutex_unlock(&ws_rw), 0);
		if (waited > ws_waited)
			ws_waited = waited;
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	atomic_store(&ws_stop, 1);
	CHECK_OK(herd_scope_close(s));
	fprintf(stderr, "writer_not_starved: the longest write lock waited "
		"for %ld reads (bound %ld)\n", ws_waited, WS_BOUND);
	CHECK(ws_waited < WS_BOUND);
}

/* Readers that overlap without end (one always holds the read lock) do
 * not starve a writer: it gets in within a bounded number of reads. */
TEST(writer_not_starved)
{
	test_run(2, ws_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_rwmutex rd_rw = HERD_RWMUTEX_INIT;
static atomic_int rd_writer_rc = PENDING, rd_reader_rc = PENDING;

static void rd_writer(void *arg)
{
	atomic_store(&rd_writer_rc, herd_rwmutex_lock(&rd_rw, herd_deadline(50 * HERD_MSEC)));
}

static void rd_reader(void *arg)
{
	int rc = herd_rwmutex_rlock(&rd_rw, HERD_FOREVER);

	atomic_store(&rd_reader_rc, rc);
	if (rc == 0)
		CHECK_EQ(herd_rwmutex_runlock(&rd_rw), 0);
}

static void rd_main(void *arg)
{
	herd_scope *s;
	int64_t d;

	/* Write-locked: reads and writes give up at their deadlines. */
	CHECK_EQ(herd_rwmutex_lock(&rd_rw, HERD_FOREVER), 0);
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_rwmutex_rlock(&rd_rw, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_EQ(herd_rwmutex_lock(&rd_rw, herd_deadline(5 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(herd_rwmutex_unlock(&rd_rw), 0);
	/* Read-locked: a writer gives up, and the reader that queued behind
	 * it gets in as it does, while the first read lock is still held. */
	CHECK_EQ(herd_rwmutex_rlock(&rd_rw, HERD_FOREVER), 0);
	d = herd_deadline(20 * HERD_MSEC);
	CHECK_EQ(herd_rwmutex_lock(&rd_rw, d), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, rd_writer, NULL, 0));
	test_wait_parked(1);
	CHECK_OK(herd_go(s, rd_reader, NULL, 0));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(10 * HERD_SEC)), 0);
	CHECK_EQ(rd_writer_rc, HERD_ETIMEDOUT);
	CHECK_EQ(rd_reader_rc, 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(herd_rwmutex_runlock(&rd_rw), 0);
	CHECK_EQ(herd_rwmutex_lock(&rd_rw, HERD_NOWAIT), 0);
	CHECK_EQ(herd_rwmutex_unlock(&rd_rw), 0);
}

/* Deadlines on both locks; a writer that gives up lets in the readers it
 * held back. */
TEST(deadline)
{
	test_run(2, rd_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_rwmutex rb_rw = HERD_RWMUTEX_INIT;

static void *rb_thread(void *arg)
{
	/* Read-locked by a task: a plain thread reads, but cannot wait. */
	CHECK_EQ(herd_rwmutex_rlock(&rb_rw, HERD_FOREVER), 0);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), 0);
	CHECK_EQ(herd_rwmutex_lock(&rb_rw, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_rwmutex_lock(&rb_rw, HERD_NOWAIT), HERD_ETIMEDOUT);
	/* And releases the task's read lock for it. */
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), 0);
	return NULL;
}

static void rb_main(void *arg)
{
	CHECK_EQ(herd_rwmutex_rlock(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_rwmutex_lock(NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_rwmutex_runlock(NULL), -EINVAL);
	CHECK_EQ(herd_rwmutex_unlock(NULL), -EINVAL);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), -EPERM);
	CHECK_EQ(herd_rwmutex_unlock(&rb_rw), -EPERM);
	CHECK_EQ(herd_rwmutex_rlock(&rb_rw, HERD_FOREVER), 0);
	CHECK_EQ(herd_rwmutex_unlock(&rb_rw), -EPERM); /* read-locked */
	on_thread(rb_thread, NULL);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), -EPERM);
	CHECK_EQ(herd_rwmutex_lock(&rb_rw, HERD_FOREVER), 0);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), -EPERM); /* write-locked */
	CHECK_EQ(herd_rwmutex_rlock(&rb_rw, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_rwmutex_unlock(&rb_rw), 0);
	CHECK_EQ(herd_rwmutex_unlock(&rb_rw), -EPERM);
	/* Still usable after every refusal. */
	CHECK_EQ(herd_rwmutex_rlock(&rb_rw, HERD_NOWAIT), 0);
	CHECK_EQ(herd_rwmutex_rlock(&rb_rw, HERD_NOWAIT), 0);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), 0);
	CHECK_EQ(herd_rwmutex_runlock(&rb_rw), 0);
}

/* NULL is -EINVAL; releasing a lock that is not held (or the other kind)
 * is -EPERM and changes nothing; plain threads lock, and release what
 * tasks locked, but cannot wait. */
TEST(bad_input)
{
	herd_rwmutex rw = {0};

	CHECK_EQ(herd_rwmutex_lock(&rw, HERD_FOREVER), 0);
	CHECK_EQ(herd_rwmutex_rlock(&rw, HERD_FOREVER), -EPERM);
	CHECK_EQ(herd_rwmutex_unlock(&rw), 0);
	test_run(2, rb_main, NULL);
}

/* ------------------------------------------------------------------ */

#define UF_ROUNDS (2000 / TEST_SCALE)

struct uf_arg {
	herd_rwmutex *rw;
	bool write;             /* the holder's lock: write, else read */
};

static atomic_int uf_locked, uf_released;

/* Holds rw until the main task has queued for it, then releases it. */
static void uf_holder(void *p)
{
	struct uf_arg a = *(struct uf_arg *)p;

	CHECK_EQ(a.write ? herd_rwmutex_lock(a.rw, HERD_FOREVER)
			 : herd_rwmutex_rlock(a.rw, HERD_FOREVER), 0);
	atomic_store(&uf_locked, 1);
	CHECK_OK(herd_sleep(herd_deadline(30 * HERD_USEC)));
	CHECK_EQ(a.write ? herd_rwmutex_unlock(a.rw) : herd_rwmutex_runlock(a.rw), 0);
	atomic_store(&uf_released, 1);
}

static void uf_main(void *arg)
{
	for (int i = 0; i < UF_ROUNDS; i++) {
		struct uf_arg a = {.rw = malloc(sizeof *a.rw), .write = i % 2};

		CHECK(a.rw != NULL);
		*a.rw = (herd_rwmutex)HERD_RWMUTEX_INIT;
		atomic_store(&uf_locked, 0);
		atomic_store(&uf_released, 0);
		CHECK_OK(HERD_GO(NULL, uf_holder, a));
		while (!atomic_load(&uf_locked))
			CHECK_OK(herd_yield());
		/* A writer's unlock grants a queued reader; the last reader's
		 * runlock grants a queued writer. */
		if (a.write) {
			CHECK_EQ(herd_rwmutex_rlock(a.rw, HERD_FOREVER), 0);
			CHECK_EQ(herd_rwmutex_runlock(a.rw), 0);
		} else {
			CHECK_EQ(herd_rwmutex_lock(a.rw, HERD_FOREVER), 0);
			CHECK_EQ(herd_rwmutex_unlock(a.rw), 0);
		}
		test_free_released(a.rw, sizeof *a.rw, &uf_released);
	}
}

/* A task granted the lock by an unlock or the last runlock may release it
 * and free it at once: the releasing call touches it no more once the new
 * holder can run (its internal lock is released first). */
TEST(release_then_free)
{
	test_run(2, uf_main, NULL);
}
