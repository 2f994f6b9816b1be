/*
 * trace.h - what the tests of the timeline share (test-cli-trace.c: herd
 * --trace and --trace-html; test-cli-tracepage.c: herd-trace-html and its
 * page): running programs other than the command under test (python3,
 * Chromium, the tool), reading traces with trace-check.py (beside this
 * file: python3's json module, strict), and opening pages in headless
 * Chromium, which must run their script without an error and draw (the
 * page tells what it drew in attributes of <body>, which --dump-dom
 * shows; a screenshot must not be blank). A case whose program is not
 * installed skips and says so.
 */
#ifndef HERD_TEST_TRACE_H
#define HERD_TEST_TRACE_H

#include "cli.h"

#include <ftw.h>
#include <libgen.h>

/* Running other programs ---------------------------------------------- */

static char chrome_dir[96]; /* Chromium's home and profile, removed at exit */

static inline int remove_entry(const char *path, const struct stat *st, int flag,
			       struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	remove(path);
	return 0;
}

static inline void remove_chrome_dir(void)
{
	if (chrome_dir[0])
		nftw(chrome_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	chrome_dir[0] = 0;
}

/* Whether prog is an executable in PATH. */
static inline bool have(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/*
 * Runs argv (a program found in PATH, or with a path; through the
 * emulator if `emulate`, for the build's own programs) to its end, in a
 * process group of its own, stdin /dev/null, its output in *o; env holds
 * "NAME=value" to set. With `strays`, what it left running (Chromium's
 * helpers outlive it) is killed and reaped.
 */
static inline void prog_run(const char *const argv[], bool emulate, const char *const *env,
		     bool strays, struct cli_out *o)
{
	char emu_buf[256], *av[64];
	int n = 0;
	if (emulate && test_emulator()) {
		snprintf(emu_buf, sizeof emu_buf, "%s", test_emulator());
		for (char *w = strtok(emu_buf, " "); w && n < 16; w = strtok(NULL, " "))
			av[n++] = w;
	}
	for (int i = 0; argv[i] && n < 63; i++)
		av[n++] = (char *)argv[i];
	av[n] = NULL;
	cli_setup();
	struct cli_proc p;
	memset(o, 0, sizeof *o);
	memset(&p, 0, sizeof p);
	p.res = o;
	p.in_fd = -1;
	int out[2], err[2];
	CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	fflush(NULL);
	p.start = cli_now();
	p.deadline = p.start + (int64_t)CLI_WATCHDOG_SEC * 1000000000;
	p.pid = fork();
	CHECK(p.pid >= 0);
	if (p.pid == 0) {
		setpgid(0, 0);
		int fd0 = open("/dev/null", O_RDONLY);
		if (fd0 < 0 || dup2(fd0, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		execvp(av[0], av);
		fprintf(stderr, "cannot run %s: %s\n", av[0], strerror(errno));
		_exit(127);
	}
	setpgid(p.pid, p.pid);
	close(out[1]);
	close(err[1]);
	p.out_fd = out[0];
	p.err_fd = err[0];
	cli_append(&o->out, &o->out_len, &p.out_cap, "", 0);
	cli_append(&o->err, &o->err_len, &p.err_cap, "", 0);
	if (!strays) {
		/* Read to the end of both pipes, then reap: no waits by turns. */
		while (p.out_fd >= 0 || p.err_fd >= 0) {
			struct pollfd pf[2] = {{p.out_fd, POLLIN, 0}, {p.err_fd, POLLIN, 0}};
			CHECK(cli_now() < p.deadline);
			if (poll(pf, 2, 1000) <= 0)
				continue;
			for (int i = 0; i < 2; i++) {
				int *fd = i ? &p.err_fd : &p.out_fd;
				char buf[65536];
				ssize_t r = pf[i].revents ? read(*fd, buf, sizeof buf) : -1;
				if (r > 0 && i)
					cli_append(&o->err, &o->err_len, &p.err_cap, buf, (size_t)r);
				else if (r > 0)
					cli_append(&o->out, &o->out_len, &p.out_cap, buf, (size_t)r);
				else if (pf[i].revents && (r == 0 || errno != EINTR))
					close(*fd), *fd = -1;
			}
		}
		CHECK(waitpid(p.pid, &o->status, 0) == p.pid);
		return;
	}
	cli_finish(&p);
	/* Its helpers, in its group or (Chromium's crash handler) in a
	 * session of their own: all carry this test's mark. */
	kill(-p.pid, SIGKILL);
	count_procs(KILL_MARKED, 0);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* trace-check.py, beside this file. */
static inline const char *checker(void)
{
	static char path[4096];
	if (__FILE__[0] != '/')
		TEST_SKIP("built without an absolute source path: trace-check.py not found");
	snprintf(path, sizeof path, "%s", __FILE__);
	snprintf(strrchr(path, '/'), sizeof path - (size_t)(strrchr(path, '/') - path),
		 "/trace-check.py");
	return path;
}

static inline void need_python(void)
{
	if (!have("python3"))
		TEST_SKIP("python3 is not installed (the traces are read with its json module)");
}

/* Runs trace-check.py with the arguments; its stdout (malloc'd) once it
 * succeeded, else the case fails showing why. */
static inline char *check_trace(const char *cmd, const char *a, const char *b)
{
	struct cli_out o;
	prog_run((const char *const[]){"python3", checker(), cmd, a, b, NULL}, false, NULL, false,
		 &o);
	CHECK_RUN(&o, cli_exited(&o, 0));
	char *s = o.out;
	free(o.err);
	return s;
}

/* The summary's lines that start with `kind` ("slice", "instant"). */
static inline char *lines_of(const char *s, const char *kind)
{
	char *r = calloc(1, strlen(s) + 1);
	CHECK(r != NULL);
	for (const char *l = s; *l;) {
		size_t n = strcspn(l, "\n");
		if (!strncmp(l, kind, strlen(kind)))
			strncat(r, l, n + (l[n] == '\n'));
		l += n + (l[n] == '\n');
	}
	return r;
}

#define CHECK_LINES(sum, kind, want)                                      \
	do {                                                              \
		char *got_ = lines_of((sum), (kind));                      \
		CHECK_TEXT(sum, strcmp(got_, (want)) == 0);                \
		free(got_);                                               \
	} while (0)

/* The tool, beside the command under test. */
static inline const char *tool(void)
{
	static char path[4096];
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", cli_path());
	snprintf(path, sizeof path, "%s/herd-trace-html", dirname(dir));
	if (access(path, X_OK) < 0)
		TEST_SKIP("herd-trace-html is not beside the command under test");
	return path;
}

/* Chromium ------------------------------------------------------------ */

static inline const char *chromium(void)
{
	static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (have(names[i]))
			return names[i];
	TEST_SKIP("chromium is not installed (apt-get install chromium): the pages are not opened");
}

/* Whether <body> in a DOM dump has attribute `name`. */
static inline bool body_has(const struct cli_out *o, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, " %s=\"", name);
	const char *body = strstr(o->out, "<body"), *a = body ? strstr(body, key) : NULL;
	return a && a < strchr(body, '>');
}

/*
 * Opens file `page` (with a query, or "") in headless Chromium: its DOM
 * once loaded (png NULL) or a screenshot of 1200x600 into png. Chromium
 * gets a home and profile of its own, removed at the end. Fails if the
 * page's script logged an error.
 */
static inline void open_page(const char *page, const char *query, const char *png,
			     struct cli_out *o)
{
	const char *browser = chromium();
	if (!chrome_dir[0]) {
		snprintf(chrome_dir, sizeof chrome_dir, "/tmp/herd-test-%d-chrome-XXXXXX",
			 (int)getpid());
		CHECK(mkdtemp(chrome_dir) != NULL);
		atexit(remove_chrome_dir);
	}
	char url[4200], profile[160], shot[200], home[120], tmp[120], cfg[140], cache[140];
	snprintf(url, sizeof url, "file://%s%s", page, query);
	snprintf(profile, sizeof profile, "--user-data-dir=%s/profile", chrome_dir);
	snprintf(shot, sizeof shot, "--screenshot=%s", png ? png : "");
	snprintf(home, sizeof home, "HOME=%s", chrome_dir);
	snprintf(tmp, sizeof tmp, "TMPDIR=%s", chrome_dir);
	snprintf(cfg, sizeof cfg, "XDG_CONFIG_HOME=%s", chrome_dir);
	snprintf(cache, sizeof cache, "XDG_CACHE_HOME=%s", chrome_dir);
	prog_run((const char *const[]){browser, "--headless", "--no-sandbox", "--disable-gpu",
		 "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
		 profile, png ? shot : "--dump-dom", "--window-size=1200,600", url, NULL},
		 false, (const char *const[]){home, tmp, cfg, cache, NULL}, true, o);
	CHECK_RUN(o, cli_exited(o, 0));
	CHECK_RUN(o, !strstr(o->err, "Uncaught") && !body_has(o, "data-error"));
}

/* The value of attribute `name` of <body> in a DOM dump, as a number
 * (-1 if absent). */
static inline long body_attr(const struct cli_out *o, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, " %s=\"", name);
	const char *body = strstr(o->out, "<body"), *a = body ? strstr(body, key) : NULL;
	const char *end = body ? strchr(body, '>') : NULL;
	return a && a < end ? strtol(a + strlen(key), NULL, 10) : -1;
}

/* A screenshot of the page: not blank (many colours: the lanes, the
 * slices and their text). */
static inline void check_screenshot(const char *page)
{
	char base[96], png[96];
	cli_temp_name(base);
	cli_flag(png, base, "png");
	struct cli_out o;
	open_page(page, "", png, &o);
	cli_free(&o);
	char *sum = check_trace("png", png, NULL);
	int w = 0, h = 0, colours = 0;
	CHECK_TEXT(sum, sscanf(sum, "%dx%d colours=%d", &w, &h, &colours) == 3);
	CHECK_TEXT(sum, w >= 600 && h >= 300 && colours >= 20);
	free(sum);
}

#endif
