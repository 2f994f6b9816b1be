/*
 * test-leak.c - debug mode's listing of what is still alive when herd_run
 * returns (core/leak.c): a leaked channel, timer, wait group, process
 * handle and pipe are each listed with their kind and the function that
 * made them; what was freed, what herd made for itself, and what was made
 * before herd_run are not; nothing is listed with debug checks off; a
 * second run starts with an empty list.
 *
 * Each case runs herd_run in a forked child with its stderr captured
 * (test_child), since the listing goes there.
 */
#include "test.h"

#include <stdint.h>

/* The listing's header, which appears only when something is left. */
#define HEADER "still alive at the end of herd_run"

static int leak_debug = HERD_DEBUG_ON;
static herd_fn leak_main;
static int leak_runs = 1;

static void leak_child(void)
{
	herd_config cfg = {.workers = 2, .debug = leak_debug};

	unsetenv("HERD_DEBUG");
	for (int i = 0; i < leak_runs; i++)
		CHECK_OK(herd_run(&cfg, leak_main, NULL));
}

/* Runs fn as the first task in a child with debug checks as `debug`;
 * returns what the child wrote on stderr (a static buffer). */
static const char *leak_run(int debug, herd_fn fn)
{
	static char buf[1 << 16];

	leak_debug = debug;
	leak_main = fn;
	test_child_ok(test_child(leak_child, buf, sizeof buf), buf);
	return buf;
}

/* The listing's one line for an object of `kind`; fails unless there is
 * exactly one. */
static const char *line_of(const char *buf, const char *kind)
{
	char needle[64];
	const char *found = NULL;
	int n = 0;

	snprintf(needle, sizeof needle, "herd:   %s ", kind);
	for (const char *p = buf; (p = strstr(p, needle)); p++) {
		found = p;
		n++;
	}
	if (n != 1)
		fprintf(stderr, "%d lines for a %s in:\n%s\n", n, kind, buf);
	CHECK_EQ(n, 1);
	return found;
}

/*
 * Checks that `line` says it was made in fn. The symbolizer names it
 * ("made at make_leaky_channel+0x1b (test-leak)") when it can read the
 * program's symbols; a dladdr-based one sees only exported symbols, and
 * then gives the address ("made at 0x55d1c2a0 (test-leak+0x3a0)"), which
 * must lie inside fn (small: within 512 bytes of its start).
 */
static void check_made_in(const char *line, const char *name, void (*fn)(void))
{
	const char *eol = strchr(line, '\n');
	const char *at = strstr(line, "made at ");
	char want[64];

	CHECK(eol != NULL && at != NULL && at < eol);
	at += strlen("made at ");
	snprintf(want, sizeof want, "%s+0x", name);
	if (strncmp(at, want, strlen(want)) == 0)
		return;
	uintptr_t pc = (uintptr_t)strtoull(at, NULL, 16);
	uintptr_t lo = (uintptr_t)fn;
	if (strncmp(at, "0x", 2) != 0 || pc <= lo || pc >= lo + 512)
		fprintf(stderr, "not made in %s (%p): %.*s\n", name, (void *)fn,
			(int)(eol - line), line);
	CHECK(strncmp(at, "0x", 2) == 0 && pc > lo && pc < lo + 512);
}

/* ------------------------------------------------------------------ */
/* The makers: not static, so that every symbolizer can name them, and */
/* not inlined, so that the make is called from their own code.        */
/* ------------------------------------------------------------------ */

void make_leaky_channel(void);
void make_leaky_timer(void);
void make_leaky_wg(void);
void start_leaky_process(void);
void make_leaky_pipe(void);

static herd_chan *leaked_chan;
static herd_timer *leaked_timer;
static herd_wg *leaked_wg;
static herd_proc *leaked_proc;
static int leaked_fds[2];

__attribute__((noinline)) void make_leaky_channel(void)
{
	CHECK_OK(herd_chan_make(&leaked_chan, 8, 3));
}

__attribute__((noinline)) void make_leaky_timer(void)
{
	CHECK_OK(herd_timer_new(&leaked_timer, herd_deadline(3600 * HERD_SEC), HERD_SEC));
}

__attribute__((noinline)) void make_leaky_wg(void)
{
	CHECK_OK(herd_wg_new(&leaked_wg));
}

__attribute__((noinline)) void start_leaky_process(void)
{
	char *argv[] = {"true", NULL};
	herd_proc_opts o = {.argv = argv};

	CHECK_OK(herd_proc_start(&leaked_proc, NULL, &o, HERD_FOREVER));
}

__attribute__((noinline)) void make_leaky_pipe(void)
{
	CHECK_OK(herd_pipe(leaked_fds, HERD_FOREVER));
}

/* ------------------------------------------------------------------ */

static void channel_main(void *arg)
{
	make_leaky_channel();
	CHECK_OK(herd_chan_send(leaked_chan, &(uint64_t){1}, HERD_NOWAIT));
}

/* With debug checks on, a leaked channel is listed with where it was made. */
TEST(channel_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, channel_main);

	CHECK_EQ(test_count(buf, HEADER), 1);
	CHECK(strstr(buf, "herd: 1 object still alive") != NULL);
	const char *line = line_of(buf, "channel");
	CHECK(strstr(line, "(elem 8 bytes, cap 3)") != NULL);
	check_made_in(line, "make_leaky_channel", make_leaky_channel);
}

/* HERD_DEBUG=1 turns it on as the configuration does. */
static void env_child(void)
{
	herd_config cfg = {.workers = 2};

	setenv("HERD_DEBUG", "1", 1);
	CHECK_OK(herd_run(&cfg, channel_main, NULL));
}

TEST(channel_listed_env)
{
	static char buf[1 << 16];

	test_child_ok(test_child(env_child, buf, sizeof buf), buf);
	check_made_in(line_of(buf, "channel"), "make_leaky_channel", make_leaky_channel);
}

static void timer_main(void *arg)
{
	make_leaky_timer();
}

TEST(timer_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, timer_main);

	CHECK_EQ(test_count(buf, HEADER), 1);
	const char *line = line_of(buf, "timer");
	CHECK(strstr(line, "ticker") != NULL);
	check_made_in(line, "make_leaky_timer", make_leaky_timer);
	/* The timer's channel is the timer's, not a leak of its own. */
	CHECK_EQ(test_count(buf, "herd:   channel"), 0);
}

static void wg_main(void *arg)
{
	make_leaky_wg();
}

TEST(wait_group_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, wg_main);

	CHECK_EQ(test_count(buf, HEADER), 1);
	check_made_in(line_of(buf, "wait group"), "make_leaky_wg", make_leaky_wg);
}

static void process_main(void *arg)
{
	int st;

	start_leaky_process();
	CHECK_OK(herd_proc_wait(leaked_proc, &st, HERD_FOREVER));
	CHECK_EQ(st, 0);
}

/* A process handle waited for but not freed; its done channel is not
 * listed apart. */
TEST(process_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, process_main);

	CHECK_EQ(test_count(buf, HEADER), 1);
	const char *line = line_of(buf, "process");
	CHECK(strstr(line, "(pid ") != NULL);
	check_made_in(line, "start_leaky_process", start_leaky_process);
	CHECK_EQ(test_count(buf, "herd:   channel"), 0);
	CHECK_EQ(test_count(buf, "herd:   descriptor"), 0);
}

static void pipe_main(void *arg)
{
	make_leaky_pipe();
}

/* The start of the line of buf that holds s (which must be there). */
static const char *line_with(const char *buf, const char *s)
{
	const char *p = strstr(buf, s);

	if (!p)
		fprintf(stderr, "no \"%s\" in:\n%s\n", s, buf);
	CHECK(p != NULL);
	while (p > buf && p[-1] != '\n')
		p--;
	return p;
}

/* Both ends of a pipe not closed, each with its number. */
TEST(pipe_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, pipe_main);

	CHECK_EQ(test_count(buf, HEADER), 1);
	CHECK(strstr(buf, "herd: 2 objects still alive") != NULL);
	CHECK_EQ(test_count(buf, "herd:   descriptor "), 2);
	CHECK_EQ(test_count(buf, "(pipe, read end)"), 1);
	CHECK_EQ(test_count(buf, "(pipe, write end)"), 1);
	check_made_in(line_with(buf, "(pipe, read end)"), "make_leaky_pipe", make_leaky_pipe);
	check_made_in(line_with(buf, "(pipe, write end)"), "make_leaky_pipe", make_leaky_pipe);
}

/* ------------------------------------------------------------------ */

static void freed_main(void *arg)
{
	herd_chan *ch;
	herd_timer *t;
	herd_wg *wg, local = HERD_WG_INIT;
	herd_proc *p;
	char *argv[] = {"true", NULL};
	herd_proc_opts o = {.argv = argv};
	int fds[2], st;

	CHECK_OK(herd_chan_make(&ch, 0, 0));
	CHECK_OK(herd_chan_free(ch));
	CHECK_OK(herd_timer_new(&t, herd_deadline(HERD_MSEC), 0));
	CHECK_OK(herd_timer_free(t));
	CHECK_OK(herd_wg_new(&wg));
	CHECK_OK(herd_wg_add(&local, 1));
	CHECK_OK(herd_wg_done(&local));
	CHECK_OK(herd_wg_free(wg));
	CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
	CHECK_OK(herd_proc_wait(p, &st, HERD_FOREVER));
	CHECK_OK(herd_proc_free(p));
	CHECK_OK(herd_pipe(fds, HERD_FOREVER));
	CHECK_OK(herd_close(fds[0]));
	CHECK_OK(herd_close(fds[1]));
}

/* What was freed is not listed: no listing at all. */
TEST(freed_not_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, freed_main);

	if (strstr(buf, "herd:"))
		fprintf(stderr, "stderr:\n%s\n", buf);
	CHECK(strstr(buf, "herd:") == NULL);
}

static void internal_main(void *arg)
{
	char *echo[] = {"echo", "hello", NULL};
	herd_proc_opts o = {.argv = echo};
	herd_output out;
	herd_proc *p;
	char buf[64];
	int st;

	o.stdio[1].mode = HERD_STDIO_PIPE;
	CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
	int fd = herd_proc_fd(p, 1);
	CHECK(fd >= 0);
	while (herd_read(fd, buf, sizeof buf, HERD_FOREVER) > 0)
		;
	CHECK_OK(herd_proc_wait(p, &st, HERD_FOREVER));
	CHECK_OK(herd_proc_free(p));

	o.stdio[1].mode = HERD_STDIO_INHERIT;
	CHECK_OK(herd_proc_output(&out, NULL, &o, 1024, 0, HERD_FOREVER));
	CHECK_EQ(out.status, 0);
	herd_output_free(&out);
}

/* What herd makes for itself (a process's pipes and done channel, and
 * herd_proc_output's process) is not the program's leak. */
TEST(internal_not_listed)
{
	const char *buf = leak_run(HERD_DEBUG_ON, internal_main);

	if (strstr(buf, "herd:"))
		fprintf(stderr, "stderr:\n%s\n", buf);
	CHECK(strstr(buf, "herd:") == NULL);
}

static void many_main(void *arg)
{
	make_leaky_channel();
	make_leaky_timer();
	make_leaky_wg();
	start_leaky_process();
	make_leaky_pipe();
}

/* With debug checks off, nothing is listed, leaks or not. */
TEST(debug_off_not_listed)
{
	const char *buf = leak_run(HERD_DEBUG_OFF, many_main);

	CHECK(strstr(buf, "herd:") == NULL);
}

/* Everything at once, listed in the order it was made. */
TEST(many_listed_in_order)
{
	const char *buf = leak_run(HERD_DEBUG_ON, many_main);

	CHECK(strstr(buf, "herd: 6 objects still alive") != NULL);
	const char *c = line_of(buf, "channel"), *t = line_of(buf, "timer");
	const char *w = line_of(buf, "wait group"), *p = line_of(buf, "process");
	const char *d = strstr(buf, "herd:   descriptor ");
	CHECK(d != NULL);
	CHECK(c < t && t < w && w < p && p < d);
}

/* ------------------------------------------------------------------ */

static herd_chan *before_run;
static int runs_seen;

static void before_child(void)
{
	herd_config cfg = {.workers = 2, .debug = HERD_DEBUG_ON};

	unsetenv("HERD_DEBUG");
	CHECK_OK(herd_chan_make(&before_run, 8, 0)); /* before herd_run */
	CHECK_OK(herd_run(&cfg, channel_main, NULL)); /* leaks one */
	runs_seen++;
	CHECK_OK(herd_run(&cfg, wg_main, NULL));      /* leaks another */
	runs_seen++;
	CHECK_OK(herd_chan_free(before_run));
}

/* An object made before herd_run is not listed, and each run lists only
 * its own leaks: the second starts with an empty list. */
TEST(each_run_lists_its_own)
{
	static char buf[1 << 16];

	test_child_ok(test_child(before_child, buf, sizeof buf), buf);
	CHECK_EQ(test_count(buf, HEADER), 2);
	CHECK_EQ(test_count(buf, "herd: 1 object still alive"), 2);
	const char *c = line_of(buf, "channel"), *w = line_of(buf, "wait group");
	CHECK(c < w);
	check_made_in(c, "make_leaky_channel", make_leaky_channel);
}
