/*
 * test-cli-trace.c - herd --trace FILE (Chrome trace-event JSON, a lane per
 * job slot) and herd --trace-html FILE (a page that draws it). All of it
 * is herd's own (herd_only). The traces are read by python3 and the pages
 * opened in headless Chromium (see trace.h). No case measures time: what
 * a case waits for, it polls for, with a generous limit.
 */
#define _GNU_SOURCE
#include "trace.h"

/* The command's trace -------------------------------------------------- */

/* [herd] A run of known jobs on -j2: strict JSON, one slice per job on at
 * most 2 lanes named "slot N", never overlapping on a lane, each with its
 * status, coloured by it; with -j1 one lane; retries are slices of their
 * own on the job's lane. */
TEST(jobs_on_slots)
{
	herd_only();
	need_python();
	char base[96], t[96], flag[96];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	struct cli_out o;
	RUN(&o, NULL, "-j2", "--trace", t, "sleep 0.0{}; exit {}", ":::", "0", "1", "2", "3", "4");
	CHECK_RUN(&o, cli_exited(&o, 4));
	cli_free(&o);
	char *sum = check_trace("jobs", t, "2");
	CHECK_LINES(sum, "slice",
		"slice seq=1 retry=0 exit=0 signal=0 timeout=false cname=good name=sleep 0.00; exit 0\n"
		"slice seq=2 retry=0 exit=1 signal=0 timeout=false cname=bad name=sleep 0.01; exit 1\n"
		"slice seq=3 retry=0 exit=2 signal=0 timeout=false cname=bad name=sleep 0.02; exit 2\n"
		"slice seq=4 retry=0 exit=3 signal=0 timeout=false cname=bad name=sleep 0.03; exit 3\n"
		"slice seq=5 retry=0 exit=4 signal=0 timeout=false cname=bad name=sleep 0.04; exit 4\n");
	free(sum);

	RUN(&o, NULL, "-j1", "--trace", t, "exit {}", ":::", "0", "5");
	CHECK_RUN(&o, cli_exited(&o, 1));
	cli_free(&o);
	sum = check_trace("jobs", t, "1");
	CHECK_TEXT(sum, strncmp(sum, "lanes=1\n", 8) == 0);
	free(sum);

	/* A job that fails once, then succeeds (a); one that succeeds (b);
	 * one that always fails (c). */
	cli_flag(flag, base, "flag");
	char cmd[300], want[2048];
	snprintf(cmd, sizeof cmd, "case {} in b) exit 0;; a) test -e %s && exit 0; touch %s;; "
		 "esac; exit 7", flag, flag);
	RUN(&o, NULL, "-j1", "--retries", "3", "--trace", t, cmd, ":::", "a", "b", "c");
	CHECK_RUN(&o, cli_exited(&o, 1));
	cli_free(&o);
	sum = check_trace("jobs", t, "1");
	static const struct { int seq, retry, exit; char item; } runs[] = {
		{1, 0, 7, 'a'}, {1, 1, 0, 'a'}, {2, 0, 0, 'b'}, {3, 0, 7, 'c'}, {3, 1, 7, 'c'},
		{3, 2, 7, 'c'},
	};
	want[0] = 0;
	for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
		char name[300], line[400];
		snprintf(name, sizeof name, "case %c in b) exit 0;; a) test -e %s && exit 0; "
			 "touch %s;; esac; exit 7", runs[i].item, flag, flag);
		snprintf(line, sizeof line, "slice seq=%d retry=%d exit=%d signal=0 timeout=false "
			 "cname=%s name=%s\n", runs[i].seq, runs[i].retry, runs[i].exit,
			 runs[i].exit ? "bad" : "good", name);
		strcat(want, line);
	}
	CHECK_LINES(sum, "slice", want);
	free(sum);
	cli_done(0);
}

/* [herd] --timeout: each signal of the kill sequence is an instant on the
 * job's lane, inside its slice, in order: a job that ignores TERM gets
 * the three TERMs and the KILL of --term-seq; one that dies of the first
 * TERM, that TERM only. The slice is "terrible". */
TEST(timeout_signals)
{
	herd_only();
	need_python();
	char base[96], t[96];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	struct cli_out o;
	/* The default --term-seq, but for a long wait after the KILL: after
	 * 25 ms, herd would send one more KILL, which a busy machine may
	 * need. */
	RUN(&o, NULL, "--timeout", "0.2", "--term-seq", "TERM,200,TERM,100,TERM,50,KILL,20000",
	    "--trace", t, "trap '' TERM; sleep {}", ":::", "30");
	CHECK_RUN(&o, cli_exited(&o, 1));
	cli_free(&o);
	char *sum = check_trace("jobs", t, "1");
	CHECK_LINES(sum, "slice",
		"slice seq=1 retry=0 exit=null signal=9 timeout=true cname=terrible "
		"name=trap '' TERM; sleep 30\n");
	CHECK_LINES(sum, "instant",
		"instant seq=1 SIGTERM why=timeout\n"
		"instant seq=1 SIGTERM why=timeout\n"
		"instant seq=1 SIGTERM why=timeout\n"
		"instant seq=1 SIGKILL why=timeout\n");
	free(sum);

	RUN(&o, NULL, "--timeout", "0.2", "--term-seq", "TERM,20000,KILL,25", "--trace", t,
	    "sleep", ":::", "30");
	CHECK_RUN(&o, cli_exited(&o, 1));
	cli_free(&o);
	sum = check_trace("jobs", t, "1");
	CHECK_LINES(sum, "slice",
		"slice seq=1 retry=0 exit=null signal=15 timeout=true cname=terrible name=sleep 30\n");
	CHECK_LINES(sum, "instant", "instant seq=1 SIGTERM why=timeout\n");
	free(sum);
	cli_done(0);
}

/* [herd] Ctrl-C while a job runs: the job is ended by --term-seq (a TERM
 * "why=stop" on its lane), and its slice is grey (stopped), not a
 * failure of its own. */
TEST(stopped_job)
{
	herd_only();
	need_python();
	char base[96], t[96], flag[96], cmd[200];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	cli_flag(flag, base, "started");
	snprintf(cmd, sizeof cmd, "touch %s; sleep {}", flag);
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "--term-seq", "TERM,20000,KILL,25",
		  "--trace", t, cmd, ":::", "30", NULL}, NULL, &o);
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while (access(flag, F_OK) < 0) {
		CHECK(cli_now() < give_up);
		CHECK(!cli_pump(&p, 20));
	}
	CHECK(kill(p.pid, SIGINT) == 0);
	cli_finish(&p);
	CHECK_RUN(&o, cli_exited(&o, 255));
	cli_free(&o);
	char *sum = check_trace("jobs", t, "1");
	char want[300];
	snprintf(want, sizeof want, "slice seq=1 retry=0 exit=null signal=15 timeout=false "
		 "cname=grey name=%s\n", cmd);
	*strstr(want, "{}") = 0;
	strcat(want, "30\n");
	CHECK_LINES(sum, "slice", want);
	CHECK_LINES(sum, "instant", "instant seq=1 SIGTERM why=stop\n");
	free(sum);
	cli_done(0);
}

/* [herd] kill -9 of herd mid-run: the trace holds every job that ended
 * before, and it is valid JSON as it is (herd keeps the file closed
 * between two events: nothing to append, as a viewer would have to for a
 * trace cut short); herd-trace-html reads it. */
TEST(kill9_readable)
{
	herd_only();
	need_python();
	char base[96], t[96], page[96];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	cli_flag(page, base, "html");
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "-j2", "--trace", t, "sleep", ":::",
		  "0", "0", "0", "30", "30", NULL}, NULL, &o);
	/* Until the three short jobs are in the file. */
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	for (;;) {
		CHECK(cli_now() < give_up);
		CHECK(!cli_pump(&p, 20));
		char *s = cli_slurp(t);
		int n = 0;
		for (const char *x = s; x && (x = strstr(x, "\"ph\":\"X\"")); x++)
			n++;
		free(s);
		if (n == 3)
			break;
	}
	CHECK(kill(p.pid, SIGKILL) == 0);
	cli_finish(&p);
	CHECK_RUN(&o, WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL);
	cli_free(&o);
	char *sum = check_trace("jobs", t, "2");
	CHECK_LINES(sum, "slice",
		"slice seq=1 retry=0 exit=0 signal=0 timeout=false cname=good name=sleep 0\n"
		"slice seq=2 retry=0 exit=0 signal=0 timeout=false cname=good name=sleep 0\n"
		"slice seq=3 retry=0 exit=0 signal=0 timeout=false cname=good name=sleep 0\n");
	free(sum);
	prog_run((const char *const[]){tool(), t, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && o.err_len == 0);
	cli_free(&o);
	cli_done(10 * HERD_SEC);
	/* A killed herd cannot remove its cgroups; the next herd removes
	 * those of herd processes that are gone (see test-cli-run.c). */
	RUN(&o, NULL, "true", ":::", "x");
	CHECK_RUN(&o, cli_exited(&o, 0));
	cli_free(&o);
}

/* [herd] Command lines of any bytes: the trace is valid UTF-8 and strict
 * JSON, and the slice's name is the command, the bytes that are not UTF-8
 * read as Latin-1 (\u00XX): every byte from 1 to 255, quotes, backslashes,
 * control characters, valid UTF-8 of 2 to 4 bytes, and what is not UTF-8:
 * a surrogate, an overlong form, a code point past U+10FFFF, a cut
 * sequence. */
TEST(names_any_bytes)
{
	herd_only();
	need_python();
	char base[96], t[96], jl[96], item[512];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	cli_flag(jl, base, "log");
	size_t n = 0;
	for (int c = 1; c < 256; c++)
		if (c != '\n') /* it would end the item: the command has one */
			item[n++] = (char)c;
	static const char more[] = "|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xed\xa0\x80|\xc0\xaf|"
				   "\xf4\x90\x80\x80|\xe2\x82|\"\\";
	memcpy(item + n, more, sizeof more);
	struct cli_out o;
	RUN(&o, NULL, "--trace", t, "--joblog", jl, "true '\n'", ":::", item);
	CHECK_RUN(&o, cli_exited(&o, 0));
	cli_free(&o);
	free(check_trace("names", t, jl));
	cli_done(0);
}

/* [herd] What cannot be written is said before anything starts: one line,
 * exit status 255, no job run. */
static void refused(const char *opt, const char *path)
{
	char base[96], flag[96];
	cli_temp_name(base);
	cli_flag(flag, base, "ran");
	struct cli_out o;
	RUN(&o, NULL, opt, path, "touch", flag, ":::", "1");
	CHECK_OUT(&o, "", 255);
	CHECK_RUN(&o, !strncmp(o.err, "herd: ", 6) && cli_lines(o.err) == 1 && strstr(o.err, path));
	CHECK(access(flag, F_OK) < 0);
	cli_free(&o);
}

TEST(unwritable)
{
	herd_only();
	refused("--trace", "/nonexistent-herd-dir/t.json");
	refused("--trace-html", "/nonexistent-herd-dir/t.html");
	refused("--trace", "/");
	struct cli_out o;
	RUN(&o, NULL, "--trace=", "true", ":::", "1");
	CHECK_OUT(&o, "", 255);
	CHECK_RUN(&o, cli_lines(o.err) == 1);
	cli_free(&o);
	RUN(&o, NULL, "--help");
	CHECK_RUN(&o, strstr(o.out, "--trace FILE") && strstr(o.out, "--trace-html FILE"));
	cli_free(&o);
	cli_done(0);
}

/* The command's page --------------------------------------------------------- */

/* [herd] --trace-html beside --trace: a page that Chromium opens without
 * an error, that drew every job and the instants of a timeout, whose
 * screenshot is not blank, even with a command holding "</script>"; its
 * data is the trace's. */
TEST(page_of_jobs)
{
	herd_only();
	chromium();
	need_python();
	char base[96], t[96], page[96];
	cli_temp_name(base);
	cli_flag(t, base, "json");
	cli_flag(page, base, "html");
	struct cli_out o;
	RUN(&o, NULL, "-j2", "--timeout", "0.3", "--term-seq", "TERM,100,KILL,20000", "--trace", t,
	    "--trace-html", page, "{}", ":::", "trap '' TERM; sleep 30", "echo '</script><!--'",
	    "exit 3", "sleep 0.1", "true");
	CHECK_RUN(&o, cli_exited(&o, 2));
	cli_free(&o);
	free(check_trace("jobs", t, "2"));
	open_page(page, "", NULL, &o);
	CHECK_RUN(&o, body_attr(&o, "data-slices") == 5 && body_attr(&o, "data-drawn") == 5 &&
		  body_attr(&o, "data-instants") == 2 && body_attr(&o, "data-lanes") == 2);
	CHECK_RUN(&o, strstr(o.out, "<title>herd timeline: 5 slices on 2 lanes</title>"));
	cli_free(&o);
	check_screenshot(page);
	cli_done(0);
}
