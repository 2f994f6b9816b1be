/*
 * test-cli-run.c - the herd command running jobs, against GNU parallel:
 * how output comes out (grouped, in order, by line, ungrouped, big),
 * retries, timeouts, --delay, -j, signals to the command, and (herd only)
 * its limits: few descriptors, memory, a kill -9.
 *
 * As in test-cli.c, the cases that do not call herd_only() pass against
 * GNU parallel 20221122 (see cli.h). Cases that measure time are
 * SERIAL_TESTs, and their bounds are generous.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <sys/stat.h>

/* A shell loop that waits (up to 20 s) for file f to exist. */
static const char *wait_for(char *buf, size_t size, const char *f)
{
	int n = snprintf(buf, size, "i=0; while [ ! -e %s ] && [ $i -lt 2000 ]; do sleep 0.01; "
			 "i=$((i+1)); done", f);
	CHECK(n > 0 && (size_t)n < size);
	return buf;
}

/* Output ------------------------------------------------------------- */

/* By default a job's output is printed whole when it ends, never mixed
 * with another's: jobs printing a line in pieces, or several lines with
 * sleeps between, side by side. Stdout and stderr both come (each on
 * its own stream). */
TEST(output_grouped)
{
	struct cli_out o;
	RUN(&o, NULL, "-j4", "printf a; sleep 0.1; printf b; sleep 0.1; echo c{}", ":::", "1", "2", "3", "4");
	char *sorted = cli_sorted_lines(o.out);
	CHECK_RUN(&o, strcmp(sorted, "abc1\nabc2\nabc3\nabc4\n") == 0 && o.out_len == 20);
	CHECK_RUN(&o, cli_exited(&o, 0));
	free(sorted);
	cli_free(&o);

	RUN(&o, NULL, "-j4", "for i in 1 2 3; do echo {}$i; sleep 0.05; done", ":::", "a", "b", "c", "d");
	CHECK_RUN(&o, cli_exited(&o, 0) && o.out_len == 4 * 9);
	/* Each job's three lines are together, in their order. */
	for (size_t i = 0; i < o.out_len; i += 9) {
		char want[10];
		snprintf(want, sizeof want, "%c1\n%c2\n%c3\n", o.out[i], o.out[i], o.out[i]);
		CHECK_RUN(&o, memcmp(o.out + i, want, 9) == 0);
	}
	cli_free(&o);

	RUN(&o, NULL, "-k", "echo out{}; echo err{} >&2", ":::", "1", "2");
	CHECK_OUT(&o, "out1\nout2\n", 0);
	CHECK_RUN(&o, strcmp(o.err, "err1\nerr2\n") == 0);
	cli_free(&o);
	cli_done(0);
}

/* -k with --line-buffer, as GNU parallel: the job next in order prints
 * its lines as they come, while the jobs after it keep theirs until it
 * has ended. Job 1 prints "1", then waits for the test's flag; job 2
 * prints "x" and ends at once. "1" must show while job 1 still runs (the
 * flag is set only once it has), and "x" only after job 1's "2". */
SERIAL_TEST(output_line_buffer_keep_order)
{
	char base[96], flag[96], w[200], a[300];
	cli_temp_name(base);
	cli_flag(flag, base, "go");
	snprintf(a, sizeof a, "echo 1; %s; echo 2", wait_for(w, sizeof w, flag));
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "-k", "--line-buffer", "-j2", "sh",
		  "-c", "{}", ":::", a, "echo x", NULL}, NULL, &o);
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while (!(o.out_len && strstr(o.out, "1\n"))) {
		CHECK(cli_now() < give_up);
		CHECK(!cli_pump(&p, 20));
	}
	CHECK_EQ(strcmp(o.out, "1\n"), 0); /* job 2's line waits its turn */
	int fd = open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	cli_finish(&p);
	CHECK_OUT(&o, "1\n2\nx\n", 0);
	cli_free(&o);
	unlink(flag);
	cli_done(0);
}

/* -k prints in input order even when the jobs end in reverse order;
 * without -k they come as they end. */
SERIAL_TEST(output_keep_order)
{
	EXPECT(NULL, "1.2\n0.6\n0.0\n", 0, "-k", "-j3", "sleep {}; echo {}", ":::", "1.2", "0.6", "0.0");
	EXPECT(NULL, "0.0\n0.6\n1.2\n", 0, "-j3", "sleep {}; echo {}", ":::", "1.2", "0.6", "0.0");
	cli_done(0);
}

/*
 * Two jobs side by side, A printing "1" then "2", B printing "x" in
 * between: B waits for A's flag (set after "1"), then 0.4 s, prints "x"
 * and sets its flag, which A waits for, then 0.4 s, before "2". Grouped,
 * B's output comes first, A's whole; --line-buffer prints each line as
 * it comes (1 x 2), holding an incomplete line back until its end; -u
 * passes the bytes as they come.
 */
static void run_ab(struct cli_out *o, const char *mode, bool newline)
{
	char base[96], fa[96], fb[96], wa[200], wb[200], a[400], b[400];
	cli_temp_name(base);
	cli_flag(fa, base, "a");
	cli_flag(fb, base, "b");
	snprintf(a, sizeof a, "%s 1; touch %s; %s; sleep 0.4; echo 2", newline ? "echo" : "printf",
		 fa, wait_for(wb, sizeof wb, fb));
	snprintf(b, sizeof b, "%s; sleep 0.4; echo x; touch %s", wait_for(wa, sizeof wa, fa), fb);
	if (mode)
		RUN(o, NULL, "-j2", mode, "sh", "-c", "{}", ":::", a, b);
	else
		RUN(o, NULL, "-j2", "sh", "-c", "{}", ":::", a, b);
	unlink(fa);
	unlink(fb);
}

SERIAL_TEST(output_line_buffer)
{
	struct cli_out o;
	run_ab(&o, NULL, true);
	CHECK_OUT(&o, "x\n1\n2\n", 0);
	cli_free(&o);
	run_ab(&o, "--line-buffer", true);
	CHECK_OUT(&o, "1\nx\n2\n", 0);
	cli_free(&o);
	run_ab(&o, "--line-buffer", false);
	CHECK_OUT(&o, "x\n12\n", 0);
	cli_free(&o);
	cli_done(0);
}

SERIAL_TEST(output_ungrouped)
{
	struct cli_out o;
	run_ab(&o, "-u", true);
	CHECK_OUT(&o, "1\nx\n2\n", 0);
	cli_free(&o);
	run_ab(&o, "-u", false);
	CHECK_OUT(&o, "1x\n2\n", 0);
	cli_free(&o);
	cli_done(0);
}

/* A job printing 50 MB: all of it comes through. [herd] And herd's peak
 * RSS stays under 32 MB (it spills what it holds to a temporary file).
 * Four jobs of 5 MB each, -k: each whole and in order. */
TEST(output_big)
{
	struct cli_out o;
	RUN(&o, NULL, "head -c {} /dev/zero", ":::", "50000000");
	CHECK_RUN(&o, cli_exited(&o, 0));
	CHECK_EQ(o.out_len, 50000000);
	size_t zeros = 0;
	for (size_t i = 0; i < o.out_len; i++)
		zeros += o.out[i] == 0;
	CHECK_EQ(zeros, 50000000);
	long rss = o.maxrss_kb;
	cli_free(&o);

	RUN(&o, NULL, "-k", "-j4", "head -c 5000000 /dev/zero | tr '\\0' {}", ":::", "1", "2", "3", "4");
	CHECK_RUN(&o, cli_exited(&o, 0));
	CHECK_EQ(o.out_len, 20000000);
	for (size_t i = 0; i < o.out_len; i++)
		if (o.out[i] != (char)('1' + i / 5000000)) {
			fprintf(stderr, "byte %zu is %d\n", i, o.out[i]);
			CHECK(0);
		}
	cli_free(&o);
	cli_done(0);

	if (cli_is_herd()) {
		printf("herd's peak RSS printing 50 MB: %ld kB\n", rss);
		CHECK(rss < 32 * 1024);
	} else {
		printf("peak RSS printing 50 MB: %ld kB (not checked: not herd)\n", rss);
	}
}

/* Retries, timeouts, --delay -------------------------------------------- */

/* --retries N: N tries in all (not 1 + N); only the last try's output is
 * printed, and the joblog has one line for the job, the last try's. */
TEST(retries)
{
	char base[96], count[96], cmd[300], jl[96];
	cli_temp_name(base);
	cli_flag(count, base, "n");
	cli_temp_name(jl);
	snprintf(cmd, sizeof cmd, "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; "
		 "echo try$n {}; [ $n -ge 3 ]", count, count);
	EXPECT(NULL, "try3 x\n", 0, "--retries", "3", "--joblog", jl, cmd, ":::", "x");
	char *log = cli_slurp(jl);
	CHECK(log && cli_lines(log) == 2);
	CHECK(strstr(log, "\t0\t7\t0\t0\t") != NULL); /* Send Receive Exitval Signal */
	free(log);

	unlink(count);
	EXPECT(NULL, "try2 x\n", 1, "--retries", "2", "--joblog", jl, cmd, ":::", "x");
	log = cli_slurp(jl);
	CHECK(log && cli_lines(log) == 2);
	CHECK(strstr(log, "\t0\t7\t1\t0\t") != NULL);
	free(log);

	unlink(count);
	EXPECT(NULL, "try1 x\n", 1, "--retries", "1", cmd, ":::", "x");
	unlink(count);
	/* Each job has its own tries. */
	EXPECT(NULL, "try3 x\ntry4 y\n", 0, "-k", "-j1", "--retries", "3", cmd, ":::", "x", "y");
	cli_done(0);
}

/* --timeout 1: the job is killed (TERM to its process group) after about
 * a second and counts as failed; what it printed is printed; the joblog
 * has Exitval -1 and the signal. */
SERIAL_TEST(timeout)
{
	char jl[96];
	cli_temp_name(jl);
	struct cli_out o;
	RUN(&o, NULL, "--timeout", "1", "--joblog", jl, "sleep", ":::", "10");
	CHECK_OUT(&o, "", 1);
	CHECK_RUN(&o, o.secs >= 0.9 && o.secs < 6);
	cli_free(&o);
	char *log = cli_slurp(jl);
	CHECK(log && cli_lines(log) == 2);
	CHECK(strstr(log, "\t0\t0\t-1\t15\tsleep 10\n") != NULL);
	free(log);

	RUN(&o, NULL, "-k", "--timeout", "1", "echo {}; sleep {}; echo done{}", ":::", "0.1", "3");
	CHECK_OUT(&o, "0.1\ndone0.1\n3\n", 1);
	CHECK_RUN(&o, o.secs >= 0.9 && o.secs < 6);
	cli_free(&o);
	cli_done(HERD_SEC);
}

/* --timeout N%: a job running longer than N% of the median run time of
 * the jobs that succeeded so far is ended. With -j1, three jobs of 0.1 s
 * make the median 0.1 s: the fourth, of 5 s, ends after about 0.3 s at
 * 300%; a job that comes before any has succeeded has no limit yet. */
SERIAL_TEST(timeout_percent)
{
	struct cli_out o;
	RUN(&o, NULL, "-j1", "-k", "--timeout", "300%", "echo {}; sleep {}; echo done{}", ":::",
	    "0.1", "0.1", "0.1", "5");
	/* No done5: the 5 s job was ended (and it is the one failure). */
	CHECK_OUT(&o, "0.1\ndone0.1\n0.1\ndone0.1\n0.1\ndone0.1\n5\n", 1);
	cli_free(&o);

	/* The same jobs without the limit all end. */
	RUN(&o, NULL, "-j1", "-k", "echo {}; sleep {}; echo done{}", ":::", "0.1", "0.3");
	CHECK_OUT(&o, "0.1\ndone0.1\n0.3\ndone0.3\n", 0);
	cli_free(&o);
	cli_done(HERD_SEC);
}

/* --term-seq: the signals (and waits, in ms) of a timeout. A job that
 * handles INT and exits 7 is logged with 7 (what it left in its process
 * group is killed all the same); one that ignores it gets KILL 200 ms
 * later: Exitval -1, Signal 9. */
SERIAL_TEST(timeout_term_seq)
{
	char jl[96];
	cli_temp_name(jl);
	struct cli_out o;
	RUN(&o, NULL, "--timeout", "1", "--term-seq", "INT,200,KILL,25", "--joblog", jl,
	    "trap \"echo got-int{}; exit 7\" INT; sleep 5 & wait", ":::", "1");
	CHECK_OUT(&o, "got-int1\n", 1);
	CHECK_RUN(&o, o.secs >= 0.9 && o.secs < 4.5);
	cli_free(&o);
	char *log = cli_slurp(jl);
	CHECK(log && strstr(log, "\t0\t9\t7\t0\ttrap \"echo got-int1; exit 7\" INT; sleep 5 & wait\n"));
	free(log);
	/* Its `sleep 5` is gone too. */
	cli_done(HERD_SEC);

	RUN(&o, NULL, "--timeout", "1", "--term-seq", "INT,200,KILL,25", "--joblog", jl,
	    "trap \"echo ignored{}\" INT; sleep 5 & wait; sleep 5 & wait", ":::", "1");
	CHECK_OUT(&o, "ignored1\n", 1);
	CHECK_RUN(&o, o.secs >= 0.9 && o.secs < 4.5);
	cli_free(&o);
	log = cli_slurp(jl);
	CHECK(log && strstr(log, "\t0\t9\t-1\t9\t"));
	free(log);
	cli_done(HERD_SEC);
}

/* Parses "<word> <seconds>" lines (one per line) into t[]; returns n. */
static int times(const char *s, double *t, int max)
{
	int n = 0;
	for (const char *p = s; *p && n < max; p = strchr(p, '\n') + 1) {
		const char *sp = strchr(p, ' ');
		t[n++] = sp ? strtod(sp + 1, NULL) : strtod(p, NULL);
		if (!strchr(p, '\n'))
			break;
	}
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* --delay 0.2: jobs start at least 0.2 s apart, even with free slots
 * (measured by the jobs themselves, whose own start takes a varying
 * time: at least 0.1 s apart, 0.6 s from the first to the fifth). */
SERIAL_TEST(delay)
{
	/* The starts as herd took them (the joblog's Starttime): a job's own
	 * clock would show when its shell got a CPU, late on a loaded machine. */
	char jl[96];
	cli_temp_name(jl);
	struct cli_out o;
	RUN(&o, NULL, "-j4", "-N0", "--delay", "0.2", "--joblog", jl, "echo t", ":::", "1", "2", "3",
	    "4", "5");
	CHECK_RUN(&o, cli_exited(&o, 0) && cli_lines(o.out) == 5);
	char *log = cli_slurp(jl);
	CHECK(log && cli_lines(log) == 6);
	double t[5];
	int n = 0;
	for (char *l = strchr(log, '\n'); l && l[1] && n < 5; l = strchr(l + 1, '\n')) {
		char *f = strchr(l + 1, '\t'); /* after Seq */
		f = f ? strchr(f + 1, '\t') : NULL; /* after Host */
		CHECK_TEXT(log, f != NULL);
		t[n++] = strtod(f + 1, NULL);
	}
	CHECK_TEXT(log, n == 5);
	free(log);
	qsort(t, 5, sizeof *t, cmp_double);
	for (int i = 1; i < 5; i++)
		CHECK_RUN(&o, t[i] - t[i - 1] >= 0.15); /* 0.2, to the joblog's ms */
	CHECK_RUN(&o, t[4] - t[0] >= 0.75 && t[4] - t[0] < 10);
	unlink(jl);
	cli_free(&o);
	cli_done(0);
}

/* -j ------------------------------------------------------------------- */

/* Each job prints "s <start>" and "e <end>"; fills the intervals. */
static int intervals(const struct cli_out *o, double *start, double *end, int max)
{
	double t[64];
	int n = times(o->out, t, 64);
	CHECK_RUN(o, n % 2 == 0 && n / 2 <= max);
	for (int i = 0; i < n / 2; i++) {
		start[i] = t[2 * i];
		end[i] = t[2 * i + 1];
	}
	return n / 2;
}

/* The most jobs running at once: at some job's start, how many run. */
static int most_at_once(const double *start, const double *end, int n)
{
	int most = 0;
	for (int i = 0; i < n; i++) {
		int k = 0;
		for (int j = 0; j < n; j++)
			k += start[j] <= start[i] && start[i] < end[j];
		most = k > most ? k : most;
	}
	return most;
}

#define SPAN "echo s $(date +%s.%N); sleep 0.3; echo e $(date +%s.%N)"

/* -j1 runs one job at a time (each starts after the one before ended);
 * -j2 two at once. */
SERIAL_TEST(jobs_slots)
{
	struct cli_out o;
	double s[8], e[8];
	RUN(&o, NULL, "-k", "-j1", SPAN, ":::", "1", "2", "3", "4");
	CHECK_RUN(&o, cli_exited(&o, 0));
	CHECK_EQ(intervals(&o, s, e, 8), 4);
	for (int i = 1; i < 4; i++)
		CHECK_RUN(&o, s[i] >= e[i - 1]);
	CHECK_EQ(most_at_once(s, e, 4), 1);
	cli_free(&o);

	RUN(&o, NULL, "-k", "-j", "2", SPAN, ":::", "1", "2", "3", "4", "5", "6");
	CHECK_RUN(&o, cli_exited(&o, 0));
	CHECK_EQ(intervals(&o, s, e, 8), 6);
	CHECK_RUN(&o, most_at_once(s, e, 6) == 2);
	cli_free(&o);
	cli_done(0);
}

/* The other forms of -j are accepted and run every job: a percentage of
 * the CPUs, +N and -N from their number, 0 (as many as can be). */
TEST(jobs_forms)
{
	const char *forms[] = {"200%", "+1", "-1", "0", "100%"};
	char in[256] = "", want[256] = "";
	for (int i = 1; i <= 20; i++)
		snprintf(in + strlen(in), sizeof in - strlen(in), "%d\n", i);
	for (int i = 1; i <= 20; i++)
		snprintf(want + strlen(want), sizeof want - strlen(want), "x%d\n", i);
	for (size_t i = 0; i < sizeof forms / sizeof *forms; i++)
		EXPECT(in, want, 0, "-k", "-j", forms[i], "echo", "x{}");
	cli_done(0);
}

/* Signals ------------------------------------------------------------ */

/*
 * Four jobs, each leaving sleeps every way a shell can: in the
 * background, orphaned by a subshell, in a session of their own, and in
 * the foreground. A signal to the command (its process group for SIGINT,
 * as a terminal's ^C; its pid for SIGTERM) makes it exit with 255 at
 * once. Herd leaves nothing: not even the sleep in a session of its own
 * (GNU parallel does leave that one: the count is only printed).
 */
static void signal_trees(int sig, bool to_group)
{
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "-j4", "sh", "-c",
		  "'sleep 60 & (sleep 60 &); setsid sleep 60 & sleep 60'", ":::", "1", "2", "3", "4", NULL},
		  NULL, &o);
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while (count_sleeps("60") < 16 && cli_now() < give_up)
		CHECK(!cli_pump(&p, 20));
	CHECK_EQ(count_sleeps("60"), 16);
	cli_pump(&p, 200); /* all started: let the last shell reach its wait */

	int64_t t0 = cli_now();
	CHECK(kill(to_group ? -p.pid : p.pid, sig) == 0);
	cli_finish(&p);
	double secs = (double)(cli_now() - t0) / 1e9;
	CHECK_RUN(&o, cli_exited(&o, 255));
	CHECK_RUN(&o, secs < 10);

	int64_t until = cli_now() + 5 * HERD_SEC;
	int left;
	while ((left = count_procs(MARKED, 0)) && cli_now() < until)
		cli_sleep_ms(20);
	if (cli_is_herd()) {
		CHECK_RUN(&o, left == 0);
	} else {
		printf("left after %s to the command: %d processes (not checked: not herd)\n",
		       strsignal(sig), left);
		count_procs(KILL_MARKED, 0);
	}
	cli_free(&o);
	cli_done(2 * HERD_SEC);
}

SERIAL_TEST(signal_int_group)
{
	signal_trees(SIGINT, true);
}

SERIAL_TEST(signal_term)
{
	signal_trees(SIGTERM, false);
}

/* SIGHUP: no new job starts, the running ones end (their output is
 * printed), and the exit status counts their failures as usual. The two
 * jobs of -j2 say they started (a flag file each) and wait, after the
 * HUP, for a flag that lets them end. */
SERIAL_TEST(signal_hup)
{
	char base[96], go[96], started[4][96], wait_go[200], cmd[400];
	const char *items[] = {"0", "3", "5", "6"};
	cli_temp_name(base);
	cli_flag(go, base, "go");
	for (int i = 0; i < 4; i++)
		cli_flag(started[i], base, items[i]);
	snprintf(cmd, sizeof cmd, "touch %s.{}; %s; echo {}; exit {}", base,
		 wait_for(wait_go, sizeof wait_go, go));
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "-k", "-j2", cmd, ":::", "0", "3", "5", "6",
		  NULL}, NULL, &o);
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while ((access(started[0], F_OK) < 0 || access(started[1], F_OK) < 0) && cli_now() < give_up)
		CHECK(!cli_pump(&p, 20));
	CHECK(kill(p.pid, SIGHUP) == 0);
	CHECK(!cli_pump(&p, 500));
	int fd = open(go, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	close(fd);
	cli_finish(&p);
	CHECK_OUT(&o, "0\n3\n", 1);
	CHECK(access(started[2], F_OK) < 0 && access(started[3], F_OK) < 0);
	cli_free(&o);
	cli_done(2 * HERD_SEC);
}

/* Limits (herd only) --------------------------------------------------- */

/* [herd] With 32 descriptors and -j 100, herd runs fewer at once and
 * says so once: all 500 jobs run, exit 0, one warning line. */
TEST(limit_nofile)
{
	herd_only();
	char in[4096] = "", want[4096] = "";
	for (int i = 1; i <= 500; i++) {
		snprintf(in + strlen(in), sizeof in - strlen(in), "%d\n", i);
		snprintf(want + strlen(want), sizeof want - strlen(want), "%d\n", i);
	}
	struct cli_out o;
	struct cli_opts opts = {.nofile = 32};
	cli_run_opts(in, strlen(in), (const char *const[]){"herd", "-k", "-j", "100", "echo", "{}", NULL},
		     &opts, &o);
	CHECK_OUT(&o, want, 0);
	CHECK_RUN(&o, cli_lines(o.err) == 1 && strstr(o.err, "descriptor") != NULL);
	cli_free(&o);
	cli_done(0);
}

/* The entries of /tmp (names, NUL-separated, in a malloc'd buffer). */
static char *tmp_entries(size_t *len)
{
	DIR *d = opendir("/tmp");
	CHECK(d != NULL);
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		cli_append(&buf, len, &cap, e->d_name, strlen(e->d_name) + 1);
	closedir(d);
	return buf;
}

static bool has_entry(const char *list, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i += strlen(list + i) + 1)
		if (strcmp(list + i, name) == 0)
			return true;
	return false;
}

/* The files in /tmp that process pid has open and that have no name. */
static int unnamed_tmp_files(int pid, struct stat *st, int max)
{
	char dir[64], path[320], link[4096];
	snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t l = readlink(path, link, sizeof link - 1);
		if (l <= 0)
			continue;
		link[l] = 0;
		if (strncmp(link, "/tmp/", 5) == 0 && strstr(link, " (deleted)") && n < max &&
		    stat(path, &st[n]) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* [herd] kill -9 of herd while it holds much output of running jobs (in
 * unnamed temporary files in /tmp): nothing of it stays: no new entry in
 * /tmp, no process with one of its files open, the jobs end (they write
 * to a pipe nobody reads). */
TEST(kill9_leaves_no_files)
{
	herd_only();
	size_t before_len, after_len;
	char *before = tmp_entries(&before_len);
	struct cli_proc p;
	struct cli_out o;
	struct cli_opts opts = {.env = (const char *const[]){"TMPDIR", NULL}};
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "-j4",
		  "head -c 30000000 /dev/zero; while :; do echo {}; sleep 0.1; done",
		  ":::", "1", "2", "3", "4", NULL}, &opts, &o);
	/* Until the jobs are in their loops and herd has read what they
	 * printed before (it keeps some in memory, spills the rest). */
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	struct stat files[64];
	int nfiles = 0;
	while (cli_now() < give_up) {
		CHECK(!cli_pump(&p, 50));
		nfiles = unnamed_tmp_files(p.pid, files, 64);
		if (nfiles >= 4 && files[0].st_size > 0)
			break;
	}
	cli_pump(&p, 500);
	nfiles = unnamed_tmp_files(p.pid, files, 64);
	printf("herd holds %d unnamed files in /tmp\n", nfiles);
	CHECK(nfiles >= 1);

	CHECK(kill(p.pid, SIGKILL) == 0);
	cli_finish(&p);
	CHECK_RUN(&o, WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL);
	cli_free(&o);
	cli_done(10 * HERD_SEC);

	/* No process of this run (marked: herd's jobs and what they
	 * started) has one of those files open. Others are not looked at: a
	 * file of theirs, made after the kill, may have been given the inode
	 * number of one of herd's, freed by the kill. */
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		struct stat st[64];
		int n = pid > 0 && has_mark(pid) ? unnamed_tmp_files(pid, st, 64) : 0;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < nfiles; j++)
				if (st[i].st_dev == files[j].st_dev && st[i].st_ino == files[j].st_ino) {
					fprintf(stderr, "pid %d holds one of herd's files\n", pid);
					CHECK(0);
				}
	}
	closedir(d);

	/* No new entry of herd's in /tmp: the only name it may give a file
	 * there is herd-XXXXXX (output.c, where O_TMPFILE is refused). Other
	 * tests and compilers running beside this one make files of their
	 * own there, which are not looked at. */
	char *after = tmp_entries(&after_len);
	int fresh = 0;
	for (size_t i = 0; i < after_len; i += strlen(after + i) + 1)
		if (!has_entry(before, before_len, after + i) && strncmp(after + i, "herd-", 5) == 0 &&
		    strncmp(after + i, "herd-test-", 10) != 0) {
			fprintf(stderr, "new in /tmp: %s\n", after + i);
			fresh++;
		}
	CHECK_EQ(fresh, 0);
	free(before);
	free(after);
	/* A killed herd cannot remove its cgroups; the next herd removes
	 * those of herd processes that are gone (cgroup-stale.c). Without
	 * this run the suite's last check would find them. */
	cli_run(NULL, 0, (const char *const[]){"herd", "true", ":::", "x", NULL}, &o);
	CHECK_RUN(&o, WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
	cli_free(&o);
}

/* --bar on a terminal: with the input from stdin or a file, herd reads it
 * whole first (as GNU parallel does) and draws a percentage of every job;
 * with a ::: list it knows the number at once. stderr that is not a
 * terminal gets no line at all. */
TEST(progress_bar_total)
{
	struct cli_opts tty = {.err_tty = true};
	struct cli_out o;
	const char *in = "a\nb\nc\n";
	cli_run_opts(in, strlen(in), (const char *const[]){"herd", "--bar", "-j1", "echo", NULL},
		     &tty, &o);
	CHECK_OUT(&o, "a\nb\nc\n", 0);
	CHECK_RUN(&o, strstr(o.err, "100% 3/3") != NULL);
	CHECK_RUN(&o, strstr(o.err, "running,") == NULL); /* no count-only line */
	cli_free(&o);

	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--bar", "echo", ":::", "x", "y", NULL},
		     &tty, &o);
	CHECK_RUN(&o, strstr(o.err, "100% 2/2") != NULL);
	cli_free(&o);

	/* --progress alone streams the input: counts, no percentage. */
	cli_run_opts(in, strlen(in), (const char *const[]){"herd", "--progress", "echo", NULL},
		     &tty, &o);
	CHECK_RUN(&o, strstr(o.err, "3 done") != NULL && strstr(o.err, "%") == NULL);
	cli_free(&o);

	RUN(&o, in, "--bar", "echo");
	CHECK_RUN(&o, o.err_len == 0);
	cli_free(&o);
	cli_done(HERD_SEC);
}
