/*
 * handoff.c - a user's program that passes plain data between tasks only
 * through herd's synchronisation, for test/sanitizer-user.sh: built against
 * herd-tsan, ThreadSanitizer must report nothing; against herd-asan,
 * AddressSanitizer and UBSan must report nothing (no false report from
 * herd's stack switches).
 *
 *   handoff chan   producers fill heap structs and send pointers to them
 *                  through a buffered channel; consumers change them and
 *                  send them back through an unbuffered one; the receiver
 *                  reads and frees them. A note written before the first
 *                  channel's close is read by the consumers once their
 *                  receive loop ends on the close.
 *   handoff wg     tasks fill slots of a plain array; the task that waits
 *                  on a wait group reads them, and the next round's tasks
 *                  overwrite them.
 *   handoff scope  the same with herd_scope_close, or herd_scope_wait,
 *                  instead of a wait group.
 *   handoff mutex  tasks increment a plain counter under a herd_mutex.
 *   handoff all    each in turn.
 *
 * In every mode the last task writes a plain global that main() reads
 * after herd_run has returned. Exits 0 when every value read is the one
 * expected, 1 otherwise.
 */
#include <herd.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCERS 4
#define CONSUMERS 2
#define ITEMS 2000 /* per producer */
#define SLOTS 64
#define ROUNDS 50
#define LOCKERS 4
#define LOCKS 5000 /* per locker */

struct item {
	int producer, seq;
	int data[16];
	long sum; /* written by the consumer */
};

static atomic_int failures;
static int closing_note;   /* plain: written before a channel's close */
static long last_word;     /* read by main after herd_run */
static long slots[SLOTS];  /* plain: ordered only by herd */
static long locked_count;  /* plain: under `lock` */
static herd_mutex lock = HERD_MUTEX_INIT;

static void fail(const char *what)
{
	fprintf(stderr, "handoff: %s\n", what);
	failures++;
}

/* --------------------------------------------------------- channels */

struct chans {
	HERD_CHAN(struct item *) work; /* buffered: producers to consumers */
	HERD_CHAN(struct item *) done; /* unbuffered: consumers to the receiver */
};

static void produce(void *arg)
{
	struct chans *c = arg;
	int me = herd_task_id() % 1000;
	for (int i = 0; i < ITEMS; i++) {
		struct item *it = malloc(sizeof *it);
		if (!it)
			return;
		it->producer = me;
		it->seq = i;
		for (int j = 0; j < 16; j++)
			it->data[j] = i + j;
		it->sum = -1;
		if (HERD_SEND(c->work, it, HERD_FOREVER) < 0) {
			free(it);
			return;
		}
	}
}

static void consume(void *arg)
{
	struct chans *c = arg;
	struct item *it;
	HERD_RANGE(it, c->work) {
		long sum = 0;
		for (int j = 0; j < 16; j++)
			sum += it->data[j];
		it->sum = sum;
		it->data[0] = -it->data[0];
		if (HERD_SEND(c->done, it, HERD_FOREVER) < 0)
			free(it);
	}
	/* The loop ended on the close, which came after the note. */
	if (closing_note != 7)
		fail("the note written before the close did not arrive");
}

static void chan_mode(void)
{
	struct chans c;
	if (HERD_CHAN_MAKE(c.work, 8) < 0 || HERD_CHAN_MAKE(c.done, 0) < 0)
		return fail("cannot make the channels");
	herd_scope *producers, *consumers;
	if (herd_scope_open(&producers) < 0 || herd_scope_open(&consumers) < 0)
		return fail("cannot open the scopes");
	for (int i = 0; i < PRODUCERS; i++)
		if (herd_go(producers, produce, &c, 0) < 0)
			fail("cannot spawn a producer");
	for (int i = 0; i < CONSUMERS; i++)
		if (herd_go(consumers, consume, &c, 0) < 0)
			fail("cannot spawn a consumer");
	for (int n = 0; n < PRODUCERS * ITEMS; n++) {
		struct item *it;
		if (HERD_RECV(c.done, it, HERD_FOREVER) < 0) {
			fail("a receive failed");
			break;
		}
		long want = 16L * it->seq + 120;
		if (it->sum != want || it->data[0] != -it->seq)
			fail("an item came back wrong");
		free(it);
	}
	herd_scope_close(producers);
	closing_note = 7;
	herd_chan_close(c.work);
	herd_scope_close(consumers);
	herd_chan_free(c.work);
	herd_chan_free(c.done);
}

/* ------------------------------------------ wait groups and scopes */

struct slot_arg {
	herd_wg *wg;
	int index, round;
};

static void fill(void *arg)
{
	struct slot_arg *a = arg;
	slots[a->index] = (long)a->round * 1000 + a->index;
	if (a->wg)
		herd_wg_done(a->wg);
}

static void check_slots(int round)
{
	for (int i = 0; i < SLOTS; i++)
		if (slots[i] != (long)round * 1000 + i) {
			fail("a slot holds the wrong value");
			return;
		}
}

static void wg_mode(void)
{
	herd_wg wg = HERD_WG_INIT;
	for (int round = 0; round < ROUNDS; round++) {
		herd_wg_add(&wg, SLOTS);
		for (int i = 0; i < SLOTS; i++) {
			struct slot_arg a = {&wg, i, round};
			if (herd_go(NULL, fill, &a, sizeof a) < 0) {
				herd_wg_done(&wg);
				fail("cannot spawn");
			}
		}
		herd_wg_wait(&wg, HERD_FOREVER);
		check_slots(round);
	}
}

static void scope_mode(void)
{
	for (int round = 0; round < ROUNDS; round++) {
		herd_scope *s;
		if (herd_scope_open(&s) < 0)
			return fail("cannot open a scope");
		for (int i = 0; i < SLOTS; i++) {
			struct slot_arg a = {NULL, i, round};
			if (herd_go(s, fill, &a, sizeof a) < 0)
				fail("cannot spawn");
		}
		if (round % 2) {
			herd_scope_close(s);
			check_slots(round);
		} else {
			herd_scope_wait(s, HERD_FOREVER);
			check_slots(round);
			herd_scope_close(s);
		}
	}
}

/* ----------------------------------------------------------- mutexes */

static void locker(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCKS; i++) {
		herd_mutex_lock(&lock, HERD_FOREVER);
		locked_count++;
		herd_mutex_unlock(&lock);
		if (i % 100 == 0)
			herd_yield();
	}
}

static void mutex_mode(void)
{
	herd_scope *s;
	if (herd_scope_open(&s) < 0)
		return fail("cannot open a scope");
	for (int i = 0; i < LOCKERS; i++)
		if (herd_go(s, locker, NULL, 0) < 0)
			fail("cannot spawn");
	herd_scope_close(s);
	if (locked_count != (long)LOCKERS * LOCKS)
		fail("the count under the mutex is wrong");
}

/* -------------------------------------------------------------- main */

static void last(void *arg)
{
	last_word = *(const long *)arg;
}

static void start(void *arg)
{
	const char *mode = arg;
	int all = !strcmp(mode, "all");
	if (all || !strcmp(mode, "chan"))
		chan_mode();
	if (all || !strcmp(mode, "wg"))
		wg_mode();
	if (all || !strcmp(mode, "scope"))
		scope_mode();
	if (all || !strcmp(mode, "mutex"))
		mutex_mode();
	HERD_GO(NULL, last, 42L);
}

int main(int argc, char **argv)
{
	const char *modes[] = {"chan", "wg", "scope", "mutex", "all"};
	int known = 0;
	for (size_t i = 0; argc == 2 && i < sizeof modes / sizeof *modes; i++)
		known |= !strcmp(argv[1], modes[i]);
	if (!known) {
		fprintf(stderr, "usage: handoff chan|wg|scope|mutex|all\n");
		return 2;
	}
	herd_config config = {.workers = 2};
	int rc = herd_run(&config, start, argv[1]);
	if (rc < 0) {
		fprintf(stderr, "handoff: herd_run: %s\n", herd_strerror(rc));
		return 1;
	}
	if (last_word != 42)
		fail("the last task's word did not arrive");
	printf("handoff %s: %s\n", argv[1], failures ? "FAILED" : "every value as expected");
	return failures != 0;
}
