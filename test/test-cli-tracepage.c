/*
 * test-cli-tracepage.c - herd-trace-html IN.json OUT.html: the timeline's
 * page for any trace in the Chrome trace-event format, a library trace
 * (HERD_TRACE=FILE) as libherd writes one included, and one cut short;
 * the binary form a library trace is in while its program runs, which the
 * tool converts (--json). The page is opened in headless Chromium (see
 * trace.h). And both kinds of trace as chrome://tracing's importer reads
 * them (trace-viewer.py).
 */
#define _GNU_SOURCE
#include "trace.h"

/* The tool ---------------------------------------------------------------- */

/* A library trace as libherd writes one: a lane per worker thread and one
 * per child process (pid 1), tasks as X slices, a nested B/E, a B whose E
 * never came, a flow from a waker to the woken, a global instant, phases
 * the page ignores (C, b), and text to escape. The first lane ("children"
 * sorts first) has a slice over the whole trace. */
static const char lib_trace[] =
	"{\"traceEvents\":[\n"
	"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":100,\"tid\":0,\"args\":{\"name\":\"prog\"}},\n"
	"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":100,\"tid\":11,\"args\":{\"name\":\"worker 0\"}},\n"
	"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":100,\"tid\":12,\"args\":{\"name\":\"worker 1\"}},\n"
	"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"children\"}},\n"
	"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":4242,\"args\":{\"name\":\"4242 sleep\"}},\n"
	"{\"name\":\"sleep 1\",\"ph\":\"X\",\"pid\":1,\"tid\":4242,\"ts\":1000,\"dur\":1500,\"args\":{\"status\":0}},\n"
	"{\"name\":\"task 1\",\"ph\":\"X\",\"pid\":100,\"tid\":11,\"ts\":1000,\"dur\":500,\"args\":{\"site\":\"main.c:10\",\"why\":\"chan\"}},\n"
	"{\"name\":\"task 2\",\"ph\":\"X\",\"pid\":100,\"tid\":12,\"ts\":1200,\"dur\":300,\"args\":{\"site\":\"main.c:20\"}},\n"
	"{\"name\":\"wake\",\"ph\":\"s\",\"cat\":\"wake\",\"id\":7,\"pid\":100,\"tid\":12,\"ts\":1450},\n"
	"{\"name\":\"wake\",\"ph\":\"f\",\"cat\":\"wake\",\"id\":7,\"bp\":\"e\",\"pid\":100,\"tid\":11,\"ts\":1700},\n"
	"{\"name\":\"task 1\",\"ph\":\"X\",\"pid\":100,\"tid\":11,\"ts\":1700,\"dur\":400},\n"
	"{\"name\":\"step\",\"ph\":\"B\",\"pid\":100,\"tid\":11,\"ts\":1750},\n"
	"{\"name\":\"step\",\"ph\":\"E\",\"pid\":100,\"tid\":11,\"ts\":1900},\n"
	"{\"name\":\"monitor\",\"ph\":\"i\",\"s\":\"g\",\"pid\":100,\"tid\":11,\"ts\":2000},\n"
	"{\"name\":\"count\",\"ph\":\"C\",\"pid\":100,\"tid\":11,\"ts\":2000,\"args\":{\"n\":3}},\n"
	"{\"name\":\"async\",\"ph\":\"b\",\"id\":3,\"pid\":100,\"tid\":11,\"ts\":2000},\n"
	"{\"name\":\"task 3 </script><!-- \\u00e9 \xe2\x82\xac\",\"ph\":\"X\",\"pid\":100,\"tid\":12,\"ts\":2100,\"dur\":200},\n"
	"{\"name\":\"open\",\"ph\":\"B\",\"pid\":100,\"tid\":12,\"ts\":2350}\n"
	"],\n\"displayTimeUnit\":\"ms\"}\n";
#define LIB_EVENTS 18

/* [herd] herd-trace-html on a library trace cut short (in the middle of
 * an event, as a program killed while writing leaves it): a warning, and
 * a page that Chromium opens without an error and that drew every slice
 * (X, B/E, a B without its E), the instant and the flow, on a lane per
 * thread, ignoring the other phases; hovering a slice shows its details,
 * and zooming in draws fewer. */
TEST(tool_library_trace)
{
	herd_only();
	chromium();
	need_python();
	char in[96], page[96];
	const char *cut = strstr(lib_trace, "{\"name\":\"open\"") + 20;
	char *text = strndup(lib_trace, (size_t)(cut - lib_trace));
	CHECK(text != NULL);
	cli_temp(in, text);
	free(text);
	cli_flag(page, in, "html");
	struct cli_out o;
	prog_run((const char *const[]){tool(), in, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && cli_lines(o.err) == 1 && strstr(o.err, "cut short"));
	cli_free(&o);
	open_page(page, "", NULL, &o);
	CHECK_RUN(&o, body_attr(&o, "data-slices") == 6 && body_attr(&o, "data-drawn") == 6 &&
		  body_attr(&o, "data-lanes") == 3 && body_attr(&o, "data-instants") == 1 &&
		  body_attr(&o, "data-flows") == 1);
	cli_free(&o);

	/* Whole: the B without an E is a slice too. Hover the first lane. */
	cli_temp(in, lib_trace);
	cli_flag(page, in, "html");
	prog_run((const char *const[]){tool(), in, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && o.err_len == 0);
	cli_free(&o);
	open_page(page, "?hover=600,35", NULL, &o);
	CHECK_RUN(&o, body_attr(&o, "data-slices") == 7 && body_attr(&o, "data-drawn") == 7);
	CHECK_RUN(&o, strstr(o.out, "data-tip=\"sleep 1lane: children \xc2\xb7 4242 sleep\n"
			     "start: 1 ms\nduration: 1.5 ms\nstatus: 0\""));
	cli_free(&o);
	open_page(page, "?wheel=600,35,-3000", NULL, &o);
	long drawn = body_attr(&o, "data-drawn");
	CHECK_RUN(&o, drawn >= 1 && drawn < 7);
	cli_free(&o);
	check_screenshot(page);
	cli_done(0);
}

/* Puts the trace data of page `path` (between the data element's tags)
 * at the end of *all, then a NUL. */
static void page_data(const char *path, char **all, size_t *len, size_t *cap)
{
	static const char open_tag[] = "<script id=\"trace-data\" type=\"application/json\">";
	char *s = cli_slurp(path);
	CHECK(s != NULL);
	char *a = strstr(s, open_tag);
	CHECK_TEXT(s, a != NULL);
	a += strlen(open_tag);
	char *b = strstr(a, "</script>");
	CHECK(b != NULL);
	CHECK(memchr(a, '<', (size_t)(b - a)) == NULL);
	cli_append(all, len, cap, a, (size_t)(b - a));
	cli_append(all, len, cap, "", 1);
	free(s);
}

/* [herd] A trace cut at any byte after its list has opened, in the object
 * form and in the array form: herd-trace-html reads it (up to its last
 * complete event), and the page's data is strict JSON holding as many
 * events as complete ones were read, all of them for the whole trace. */
TEST(tool_cut_anywhere)
{
	herd_only();
	need_python();
	char *arr = strdup(strchr(lib_trace, '['));
	CHECK(arr != NULL);
	strcpy(strstr(arr, "],\n\"displayTimeUnit\""), ",\n");  /* a trailing comma, no ] */
	const char *forms[] = {lib_trace, arr};
	/* Every other byte (fewer in slower builds: a run a cut). */
	int stride = test_emulator() ? 41 : TEST_SCALE > 1 ? 7 : 2;
	for (int f = 0; f < 2; f++) {
		const char *full = forms[f];
		size_t total = strlen(full), from = (size_t)(strchr(full, '[') - full) + 1;
		char *all = NULL, list[96], in[96], page[96];
		size_t len = 0, cap = 0;
		int runs = 0;
		cli_temp(in, "");
		cli_flag(page, in, "html");
		for (size_t l = from; l <= total; l += (size_t)stride, runs++) {
			if (l + (size_t)stride > total)
				l = total; /* the whole, last */
			int fd = open(in, O_WRONLY | O_TRUNC | O_CLOEXEC);
			CHECK(fd >= 0 && write(fd, full, l) == (ssize_t)l);
			close(fd);
			struct cli_out o;
			prog_run((const char *const[]){tool(), in, page, NULL}, true, NULL, false, &o);
			if (!cli_exited(&o, 0))
				fprintf(stderr, "cut at %zu of %zu\n", l, total);
			CHECK_RUN(&o, cli_exited(&o, 0));
			cli_free(&o);
			page_data(page, &all, &len, &cap);
		}
		cli_temp(list, "");
		FILE *fl = fopen(list, "we");
		CHECK(fl && fwrite(all, 1, len, fl) == len && fclose(fl) == 0);
		free(all);
		char *counts = check_trace("pages", list, NULL);
		int last = 0, got = 0, k = 0;
		for (char *c = counts; *c && *c != '\n'; k++) {
			got = (int)strtol(c, &c, 10);
			CHECK_TEXT(counts, got >= last);
			last = got;
		}
		CHECK_TEXT(counts, k == runs && last == LIB_EVENTS);
		free(counts);
	}
	free(arr);
	cli_done(0);
}

/* A library trace left in its binary form: a program killed mid-run. */
static void killed_spinner(void *arg)
{
	(void)arg;
	for (;;)
		if (herd_sleep(herd_deadline(20 * HERD_USEC)) < 0)
			return;
}

static void killed_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		CHECK_OK(herd_go(NULL, killed_spinner, NULL, 0));
	herd_sleep(herd_deadline(100 * HERD_MSEC)); /* written every few ms */
	raise(SIGKILL);
}

/* The number of events of JSON file path, read by python3's json module
 * (strict); the case fails if it is not valid JSON. */
static long json_events(const char *path)
{
	struct cli_out o;
	prog_run((const char *const[]){"python3", "-c",
		"import json, sys\n"
		"def no(c): raise ValueError(c)\n"
		"t = json.load(open(sys.argv[1]), parse_constant=no)\n"
		"print(len(t['traceEvents']))\n", path, NULL}, false, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0));
	long n = strtol(o.out, NULL, 10);
	cli_free(&o);
	return n;
}

/* [herd] A library trace whose program was killed (kill -9) is left in
 * the binary form: --json converts it to strict JSON, whole or cut in the
 * middle (a warning), the page is made from it as it is, and --json
 * refuses what is not that form. */
TEST(tool_binary_trace)
{
	herd_only();
	need_python();
	char bin[96], json[96], page[96];
	cli_temp(bin, "");
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		herd_config cfg = {.trace = bin};
		herd_run(&cfg, killed_main, NULL);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	char *head = cli_slurp(bin);
	CHECK(head && !strncmp(head, "HERDTRB1", 8));
	free(head);
	cli_flag(json, bin, "json");
	struct cli_out o;
	prog_run((const char *const[]){tool(), "--json", bin, json, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && cli_lines(o.err) <= 1);
	cli_free(&o);
	long whole = json_events(json);
	CHECK(whole > 20);

	/* Cut in the middle: fewer events, a warning. */
	struct stat sb;
	CHECK(stat(bin, &sb) == 0);
	CHECK(truncate(bin, sb.st_size / 2 + 3) == 0);
	prog_run((const char *const[]){tool(), "--json", bin, json, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && cli_lines(o.err) == 1 && strstr(o.err, "cut short"));
	cli_free(&o);
	long half = json_events(json);
	CHECK(half > 10 && half < whole);
	cli_flag(page, bin, "html");
	prog_run((const char *const[]){tool(), bin, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 0) && strstr(o.err, "cut short"));
	cli_free(&o);

	/* JSON already, or nothing herd wrote. */
	prog_run((const char *const[]){tool(), "--json", json, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 1) && cli_lines(o.err) == 1 &&
		  strstr(o.err, "binary form"));
	cli_free(&o);
	cli_done(0);
}

/* [herd] What herd-trace-html cannot read or write: one line on stderr,
 * a status that is not 0, and no page left. */
static void tool_refuses(const char *text, const char *why)
{
	char in[96], page[96];
	cli_temp(in, text);
	cli_flag(page, in, "html");
	struct cli_out o;
	prog_run((const char *const[]){tool(), in, page, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 1) && cli_lines(o.err) == 1 &&
		  !strncmp(o.err, "herd-trace-html: ", 17) && strstr(o.err, why));
	CHECK(access(page, F_OK) < 0);
	cli_free(&o);
}

TEST(tool_bad_input)
{
	herd_only();
	tool_refuses("{\"traceEvents\":[{\"ph\":\"X\",]}", "not a JSON trace");
	tool_refuses("{\"traceEvents\":[{\"ph\":\"X\"}]} x", "line 1, column 30");
	tool_refuses("{\"traceEvents\":[\n{\"ph\":\"X\" \"ts\":1}]}", "line 2, column 11");
	tool_refuses("{\"traceEvents\":[{\"ph\":\"X\",\"ts\":01}]}", "not a JSON trace");
	tool_refuses("{\"traceEvents\":[{\"ph\":\"a\tb\"}]}", "control character");
	tool_refuses("{\"a\":1}", "traceEvents");
	tool_refuses("42", "not a JSON trace");
	tool_refuses("", "empty");
	tool_refuses("\x89PNG\r\n\x1a\n", "not a JSON trace");
	char deep[3000];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = 0;
	tool_refuses(deep, "nested too deeply");
	struct cli_out o;
	prog_run((const char *const[]){tool(), "/nonexistent-herd-dir/t.json", "/tmp/x.html", NULL},
		 true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 1) && cli_lines(o.err) == 1 && strstr(o.err, "cannot read"));
	cli_free(&o);
	char in[96];
	cli_temp(in, "[]");
	prog_run((const char *const[]){tool(), in, "/nonexistent-herd-dir/t.html", NULL}, true,
		 NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 1) && cli_lines(o.err) == 1 && strstr(o.err, "cannot write"));
	cli_free(&o);
	prog_run((const char *const[]){tool(), in, NULL}, true, NULL, false, &o);
	CHECK_RUN(&o, cli_exited(&o, 2) && strstr(o.err, "Usage"));
	cli_free(&o);
	cli_done(0);
}

/* chrome://tracing's importer --------------------------------------------- */

/* trace-viewer.py, beside this file. */
static const char *viewer_script(void)
{
	static char path[4096];
	snprintf(path, sizeof path, "%s", checker()); /* skips without a source path */
	snprintf(strrchr(path, '/'), sizeof path - (size_t)(strrchr(path, '/') - path),
		 "/trace-viewer.py");
	return path;
}

/* What trace-viewer.py made of file `path`: its line's numbers. */
static void imported(const struct cli_out *o, const char *path, int *slices, int *flows,
		     int *warnings)
{
	char key[128];
	snprintf(key, sizeof key, "%s slices=", path);
	const char *l = strstr(o->out, key);
	int threads;
	CHECK_TEXT(o->out, l && sscanf(l + strlen(path), " slices=%d flows=%d threads=%d "
					      "warnings=%d", slices, flows, &threads,
				       warnings) == 4);
}

/* [herd] chrome://tracing's own importer (Catapult's tr.importer.Import,
 * from chrome://tracing where this Chromium still has it, else from the
 * copy of Catapult's viewer that Go's source package ships; see
 * trace-viewer.py), in headless Chromium, reads a library trace (HERD_TRACE
 * of the command's own run: tasks, child processes, wakes from the
 * poller, the first task spawned by herd_run's thread) and the command's
 * --trace of the same run with no import warning: a slice per job, slices
 * and flows for the tasks. Skips, saying why, where it has no importer. */
TEST(catapult_imports)
{
	herd_only();
	need_python();
	chromium();
	const char *script = viewer_script();
	char base[96], lib[96], cmd[96];
	cli_temp_name(base);
	cli_flag(lib, base, "lib");
	cli_flag(cmd, base, "cmd");
	struct cli_out o;
	CHECK(setenv("HERD_TRACE", lib, 1) == 0);
	RUN(&o, NULL, "-j2", "--trace", cmd, "sleep 0.01; exit {}", ":::", "0", "1", "2");
	CHECK(unsetenv("HERD_TRACE") == 0);
	CHECK_RUN(&o, cli_exited(&o, 2));
	cli_free(&o);
	prog_run((const char *const[]){"python3", script, lib, cmd, NULL}, false, NULL, true, &o);
	if (cli_exited(&o, TEST_SKIP_CODE)) {
		static char why[512];
		snprintf(why, sizeof why, "trace-viewer.py: %s", o.out);
		why[strcspn(why, "\n")] = 0;
		cli_free(&o);
		TEST_SKIP(why);
	}
	CHECK_RUN(&o, cli_exited(&o, 0));
	int slices, flows, warnings;
	imported(&o, lib, &slices, &flows, &warnings);
	CHECK_RUN(&o, slices >= 4 && flows >= 3 && warnings == 0);
	imported(&o, cmd, &slices, &flows, &warnings);
	CHECK_RUN(&o, slices == 3 && warnings == 0);
	cli_free(&o);
	cli_done(0);
}
