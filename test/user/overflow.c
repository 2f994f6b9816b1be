/*
 * overflow.c - a user's program with a heap buffer overflow in a task, for
 * test/sanitizer-user.sh: built against herd-asan, AddressSanitizer must
 * report it, and nothing before it.
 *
 * Before the bad write, tasks ping-pong through channels and recurse on
 * their own stacks, so that a false report from herd's stack switches
 * would come first.
 */
#include <herd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int depth(int n)
{
	volatile char frame[256];
	memset((char *)frame, n, sizeof frame);
	if (n == 0)
		return frame[0];
	herd_yield(); /* switch away with this frame live */
	return depth(n - 1) + frame[n % 256];
}

static void ping(void *arg)
{
	HERD_CHAN(int) *c = arg;
	for (int i = 0; i < 1000; i++) {
		int v = i;
		HERD_SEND(c[0], v, HERD_FOREVER);
		HERD_RECV(c[1], v, HERD_FOREVER);
	}
	depth(40);
}

static void pong(void *arg)
{
	HERD_CHAN(int) *c = arg;
	int v;
	for (int i = 0; i < 1000; i++) {
		HERD_RECV(c[0], v, HERD_FOREVER);
		HERD_SEND(c[1], v, HERD_FOREVER);
	}
	depth(40);
}

static void overflow(void *arg)
{
	size_t n = *(const size_t *)arg;
	char *p = malloc(16);
	if (!p)
		return;
	memset(p, 0, 16);
	((volatile char *)p)[n] = 1; /* n is 16: one past the end */
	printf("overflow: wrote p[%zu]\n", n);
	free(p);
}

static void start(void *arg)
{
	(void)arg;
	HERD_CHAN(int) c[2];
	if (HERD_CHAN_MAKE(c[0], 0) < 0 || HERD_CHAN_MAKE(c[1], 0) < 0)
		return;
	herd_scope *s;
	if (herd_scope_open(&s) < 0)
		return;
	herd_go(s, ping, c, 0);
	herd_go(s, pong, c, 0);
	herd_scope_close(s);
	herd_chan_free(c[0]);
	herd_chan_free(c[1]);
	printf("overflow: the ping-pong is over\n");
	fflush(stdout);
	HERD_GO(NULL, overflow, (size_t)16);
}

int main(void)
{
	herd_config config = {.workers = 2};
	int rc = herd_run(&config, start, NULL);
	if (rc < 0)
		fprintf(stderr, "overflow: herd_run: %s\n", herd_strerror(rc));
	return rc < 0;
}
