/*
 * bench-io.c - what herd's task-aware descriptor I/O and its timers cost,
 * measured the way their Go twin (bench/go/net.go) measures Go's net
 * package and time.Sleep, so that bench/run.sh can compare them.
 *
 * Usage: bench-io <benchmark>. A benchmark prints one line, "<value> <unit>",
 * on stdout, and its diagnostics on stderr. Everything is measured from the
 * first task of a single herd_run with one worker per CPU:
 *
 *   net-echo     ms   a TCP echo over loopback: a listener task accepts 100
 *                     connections and starts a server task for each, which
 *                     reads up to 1 KiB with herd_read and writes it back
 *                     with herd_write_all until end of file; 100 client
 *                     tasks each connect, then send 1,000 messages of 64
 *                     bytes one at a time, each time reading the whole echo
 *                     back before the next. Both ends set TCP_NODELAY (Go
 *                     does by default). The figure is the wall time from
 *                     the first spawn to the end of the last task (the
 *                     listening socket is made before, closed after).
 *                     Every echo is compared with what was sent, and the
 *                     servers' byte count is checked; every descriptor is
 *                     closed at the end of each run (checked against
 *                     herd_fd_stats_get).
 *   timers-p50   us   100,000 tasks each sleep (herd_sleep) to a deadline
 *   timers-p99   us   drawn uniformly from 1 to 100 ms after a common start
 *                     (splitmix64, fixed seed: the Go twin draws the same
 *                     deadlines), and measure how late they woke (herd_now
 *                     minus the deadline). The figure is the median, or
 *                     the 99th percentile (nearest rank), of the 100,000
 *                     latencies. The start lies 500 ms after the first
 *                     spawn, so that every task sleeps before its deadline
 *                     (a task that would not is counted and reported).
 *                     Both names run the same benchmark; each prints its
 *                     own figure, and both go to stderr. All 100,000 tasks
 *                     must wake, none early.
 *
 * Timings run once to warm up, then 5 times, and print the median (for the
 * timers, the median of the 5 runs' percentiles).
 */
#define _GNU_SOURCE
#define BENCH_NAME "bench-io"
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CONNS 100
#define MSGS 1000L
#define MSG_SIZE 64
#define ECHO_BUF 1024
#define ECHO_TIMEOUT (60 * HERD_SEC)	/* per run: a hang fails, loudly */

#define TIMER_TASKS 100000L
#define TIMER_MIN (1 * HERD_MSEC)
#define TIMER_SPAN (99 * HERD_MSEC)	/* deadlines in [MIN, MIN + SPAN] */
#define TIMER_LEAD (500 * HERD_MSEC)	/* from the first spawn to the start */
#define TIMER_SEED 0x243f6a8885a308d3ULL

/* The figure that a benchmark's first task hands to main. */
static double result;

/* A herd I/O call that must succeed; returns its count. */
#define IO_OK(call) check_io((call), #call, __LINE__)

static ssize_t check_io(ssize_t rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, herd_strerror((int)rc));
	return rc;
}

/* A system call that must succeed (returns >= 0, errno otherwise). */
#define SYS_OK(call) check_sys((call), #call, __LINE__)

static int check_sys(int rc, const char *call, int line)
{
	if (rc < 0)
		fail("line %d: %s: %s", line, call, strerror(errno));
	return rc;
}

/* ------------------------------------------------------------ net-echo */

/* What one run shares with its tasks. */
static struct {
	int lfd;			/* the listening socket */
	struct sockaddr_in addr;	/* its address */
	int64_t deadline;		/* of every call of the run */
	_Atomic long echoed;		/* bytes the servers wrote back */
	_Atomic long checked;		/* echoes the clients compared */
} echo;

static void set_nodelay(int fd)
{
	int one = 1;

	SYS_OK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
}

/* Echoes what it reads on fd until end of file, then closes fd. */
static void server_task(void *p)
{
	int fd = *(int *)p;
	char buf[ECHO_BUF];
	long total = 0;
	ssize_t n;

	while ((n = IO_OK(herd_read(fd, buf, sizeof buf, echo.deadline))) > 0) {
		IO_OK(herd_write_all(fd, buf, (size_t)n, echo.deadline));
		total += n;
	}
	atomic_fetch_add(&echo.echoed, total);
	OK(herd_close(fd));
}

/* Accepts CONNS connections, a server task for each; returns after them. */
static void listener_task(void *p)
{
	herd_scope *s;

	OK(herd_scope_open(&s));
	for (int i = 0; i < CONNS; i++) {
		int fd = OK(herd_accept(echo.lfd, NULL, NULL, echo.deadline));

		set_nodelay(fd);
		OK(HERD_GO(s, server_task, fd));
	}
	OK(herd_scope_close(s));
}

/* Message m of connection c: bytes that differ from message to message. */
static void fill(unsigned char *msg, long c, long m)
{
	for (int j = 0; j < MSG_SIZE; j++)
		msg[j] = (unsigned char)(c * 131 + m * 7 + j);
}

static void read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = IO_OK(herd_read(fd, buf + got, n - got, echo.deadline));

		if (r == 0)
			fail("net-echo: end of file after %zu of %zu bytes", got, n);
		got += (size_t)r;
	}
}

/* Connects, sends MSGS messages one at a time, checks each echo. */
static void client_task(void *p)
{
	long c = *(long *)p;
	unsigned char out[MSG_SIZE], in[MSG_SIZE];
	int fd = OK(herd_socket(AF_INET, SOCK_STREAM, 0, echo.deadline));

	set_nodelay(fd);
	OK(herd_connect(fd, (struct sockaddr *)&echo.addr, sizeof echo.addr,
			echo.deadline));
	for (long m = 0; m < MSGS; m++) {
		fill(out, c, m);
		IO_OK(herd_write_all(fd, out, sizeof out, echo.deadline));
		read_full(fd, in, sizeof in);
		if (memcmp(in, out, sizeof in) != 0)
			fail("net-echo: connection %ld, message %ld: the echo "
			     "differs from what was sent", c, m);
	}
	atomic_fetch_add(&echo.checked, MSGS);
	OK(herd_close(fd));
}

/* Makes the listening socket on 127.0.0.1, port chosen by the kernel. */
static void echo_listen(void)
{
	socklen_t len = sizeof echo.addr;

	echo.lfd = OK(herd_socket(AF_INET, SOCK_STREAM, 0, echo.deadline));
	memset(&echo.addr, 0, sizeof echo.addr);
	echo.addr.sin_family = AF_INET;
	echo.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	SYS_OK(bind(echo.lfd, (struct sockaddr *)&echo.addr, sizeof echo.addr));
	SYS_OK(listen(echo.lfd, SOMAXCONN));
	SYS_OK(getsockname(echo.lfd, (struct sockaddr *)&echo.addr, &len));
}

static long fds_open(void)
{
	herd_fd_stats st;

	OK(herd_fd_stats_get(&st));
	return st.open;
}

static double echo_once(int run)
{
	long open_before = fds_open(), open_after;
	herd_scope *s;
	int64_t t0, t;

	echo.deadline = herd_deadline(ECHO_TIMEOUT);
	atomic_store(&echo.echoed, 0);
	atomic_store(&echo.checked, 0);
	echo_listen();
	t0 = herd_now();
	OK(herd_scope_open(&s));
	OK(HERD_GO(s, listener_task, 0L));
	for (long c = 0; c < CONNS; c++)
		OK(HERD_GO(s, client_task, c));
	OK(herd_scope_close(s));
	t = herd_now() - t0;
	OK(herd_close(echo.lfd));
	if (atomic_load(&echo.checked) != CONNS * MSGS ||
	    atomic_load(&echo.echoed) != CONNS * MSGS * MSG_SIZE)
		fail("net-echo: %ld echoes checked (expected %ld), %ld bytes "
		     "echoed (expected %ld)", atomic_load(&echo.checked),
		     CONNS * MSGS, atomic_load(&echo.echoed),
		     CONNS * MSGS * MSG_SIZE);
	open_after = fds_open();
	if (open_after != open_before)
		fail("net-echo: %ld descriptors open after the run, %ld before",
		     open_after, open_before);
	return (double)t / HERD_MSEC;
}

static void echo_main(void *arg)
{
	herd_fd_stats st;

	result = median_of("net-echo", echo_once);
	OK(herd_fd_stats_get(&st));
	fprintf(stderr, "net-echo: descriptors: %ld open, peak %ld, limit %ld "
		"(%ld at start), %ld waits\n", st.open, st.peak, st.limit,
		st.limit_at_start, st.waits);
}

/* ------------------------------------------------------------ timers */

/* splitmix64: the same sequence as the Go twin's. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int64_t *timer_lat;	/* ns late, per task; -1 until it woke */
static _Atomic long timer_woken, timer_late;
static int timer_percentile;	/* the figure asked for: 50 or 99 */

struct sleeper {
	int64_t deadline;
	long i;
};

static void sleeper_task(void *p)
{
	const struct sleeper *s = p;

	if (herd_now() >= s->deadline)
		atomic_fetch_add(&timer_late, 1);
	OK(herd_sleep(s->deadline));
	timer_lat[s->i] = herd_now() - s->deadline;
	atomic_fetch_add(&timer_woken, 1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The pct-th percentile (nearest rank) of the n sorted values v, in us. */
static double percentile_us(const int64_t *v, long n, int pct)
{
	long rank = (n * pct + 99) / 100;	/* ceil(n * pct / 100) */

	return (double)v[rank - 1] / HERD_USEC;
}

static void timers_check(void)
{
	if (atomic_load(&timer_woken) != TIMER_TASKS)
		fail("timers: %ld of %ld tasks woke", atomic_load(&timer_woken),
		     TIMER_TASKS);
	for (long i = 0; i < TIMER_TASKS; i++)
		if (timer_lat[i] < 0)
			fail("timers: task %ld woke %" PRId64 " ns early (or "
			     "never)", i, -timer_lat[i]);
}

/* Each run's figures, printed after the runs. */
static struct timer_figures {
	double p50, p99, max, spawn_ms;	/* us, but spawn_ms */
	long late;			/* tasks that slept after their deadline */
} timer_figs[MAX_RUNS + 1];

static double timers_once(int run)
{
	uint64_t rng = TIMER_SEED;
	int64_t t0 = herd_now(), start = t0 + TIMER_LEAD, spawned;
	struct timer_figures *f = &timer_figs[run];
	herd_scope *s;

	atomic_store(&timer_woken, 0);
	atomic_store(&timer_late, 0);
	OK(herd_scope_open(&s));
	for (long i = 0; i < TIMER_TASKS; i++) {
		struct sleeper sl = {
			.deadline = start + TIMER_MIN +
				    (int64_t)(splitmix64(&rng) % (TIMER_SPAN + 1)),
			.i = i,
		};

		timer_lat[i] = -1;
		OK(herd_go(s, sleeper_task, &sl, sizeof sl));
	}
	spawned = herd_now() - t0;
	OK(herd_scope_close(s));
	timers_check();
	qsort(timer_lat, TIMER_TASKS, sizeof timer_lat[0], cmp_i64);
	f->p50 = percentile_us(timer_lat, TIMER_TASKS, 50);
	f->p99 = percentile_us(timer_lat, TIMER_TASKS, 99);
	f->max = (double)timer_lat[TIMER_TASKS - 1] / HERD_USEC;
	f->spawn_ms = (double)spawned / HERD_MSEC;
	f->late = atomic_load(&timer_late);
	return timer_percentile == 99 ? f->p99 : f->p50;
}

static void timers_main(void *arg)
{
	const char *name = timer_percentile == 99 ? "timers-p99" : "timers-p50";

	timer_lat = malloc(TIMER_TASKS * sizeof timer_lat[0]);
	if (!timer_lat)
		fail("timers: out of memory");
	result = median_of(name, timers_once);
	free(timer_lat);
	for (int run = 0; run <= bench_reps(); run++) {
		const struct timer_figures *f = &timer_figs[run];

		fprintf(stderr, "timers: run %d: p50 %.1f us, p99 %.1f us, max "
			"%.1f us; spawned in %.1f ms, %ld tasks slept after "
			"their deadline\n", run, f->p50, f->p99, f->max,
			f->spawn_ms, f->late);
		if (f->late)
			fprintf(stderr, "timers: run %d: warning: the tasks "
				"started late (a loaded machine?); their "
				"latencies count it\n", run);
	}
}

/* ------------------------------------------------------------ main */

struct bench {
	const char *name;
	const char *unit;
	int decimals;		/* printed after the point */
	int percentile;		/* timers: which latency it prints */
	herd_fn first;		/* the first task: measures, sets `result` */
};

static const struct bench benches[] = {
	{ "net-echo", "ms", 1, 0, echo_main },
	{ "timers-p50", "us", 1, 50, timers_main },
	{ "timers-p99", "us", 1, 99, timers_main },
};

BENCH_TABLE(benches)

int main(int argc, char **argv)
{
	const struct bench *b = argc == 2 ? find_bench(argv[1]) : NULL;
	herd_config cfg = { 0 };
	int rc;

	if (!b)
		return usage();
	timer_percentile = b->percentile;
	rc = herd_run(&cfg, b->first, NULL);
	if (rc < 0)
		fail("herd_run: %s", herd_strerror(rc));
	printf("%.*f %s\n", b->decimals, result, b->unit);
	return 0;
}
