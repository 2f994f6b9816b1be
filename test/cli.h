/*
 * cli.h - what the tests of the `herd` command share: running the command
 * under test with some stdin, capturing its stdout and stderr whole, and
 * comparing them with what GNU parallel prints.
 *
 * The command is $HERD_CLI (an absolute path; CTest gives the herd
 * target's). Every expected output in test-cli*.c is GNU parallel's
 * (20221122): run a case against it with a wrapper script, e.g.
 *
 *   printf '#!/bin/sh\nexec parallel --will-cite "$@"\n' >/tmp/parallel-wrap
 *   chmod +x /tmp/parallel-wrap
 *   HERD_CLI=/tmp/parallel-wrap build/test/test-cli inputs_stdin
 *
 * Under an emulator (a cross build's tests: $HERD_TEST_EMULATOR, see
 * test.h) the command is run through it, as CTest runs the tests.
 *
 * Cases of behaviours herd has and parallel has not (or where herd
 * differs on purpose) call herd_only(), which skips them unless the
 * command's basename is `herd`.
 *
 * Every run is marked (HERD_TEST_MARK in the environment, inherited by
 * every process the command starts), so that the /proc scans of procs.h
 * find what a run left; cli_done() checks that nothing was, and an atexit
 * handler kills what is left and removes the temporary files when a check
 * fails.
 */
#ifndef HERD_TEST_CLI_H
#define HERD_TEST_CLI_H

#include "procs.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/time.h>

/* A run that takes longer has hung: its process group is killed. */
#ifndef CLI_WATCHDOG_SEC
#define CLI_WATCHDOG_SEC 60
#endif
/* After the command exits, how long a pipe may stay open (held by some
 * process it left) before the run stops reading it. */
#define CLI_DRAIN_SEC 2

/* The result of a run. */
struct cli_out {
	char *out, *err;        /* NUL-terminated (and may hold NULs) */
	size_t out_len, err_len;
	int status;             /* the raw wait status */
	long maxrss_kb;         /* the command's peak RSS (wait4's rusage) */
	double secs;            /* from the start to the exit */
};

/* Optional settings of a run. */
struct cli_opts {
	const char *const *env; /* "NAME=value" to set, "NAME" to unset */
	long nofile;            /* > 0: RLIMIT_NOFILE (soft and hard) */
	bool err_tty;           /* stderr is a terminal (a pty), not a pipe */
};

/* A run in progress. */
struct cli_proc {
	pid_t pid;
	int in_fd, out_fd, err_fd;
	const char *in;
	size_t in_len, in_off, out_cap, err_cap;
	struct cli_out *res;
	int64_t start, deadline, drain_until;
	bool exited;
};

static inline int64_t cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cli_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The command under test; skips the case when none is given. */
static inline const char *cli_path(void)
{
	const char *p = getenv("HERD_CLI");
	if (!p || !*p)
		TEST_SKIP("HERD_CLI is not set (the path of the command under test)");
	return p;
}

static inline bool cli_is_herd(void)
{
	const char *p = cli_path(), *slash = strrchr(p, '/');
	return strcmp(slash ? slash + 1 : p, "herd") == 0;
}

/* A case about a behaviour of herd's own: skipped against GNU parallel. */
static inline void herd_only(void)
{
	if (!cli_is_herd())
		TEST_SKIP("a behaviour of herd's own; HERD_CLI is not herd");
}

/* Temporary files ---------------------------------------------------- */

#define CLI_MAX_FILES 32
static char cli_files[CLI_MAX_FILES][96];
static int cli_nfiles;
static bool cli_cleanup_set;

static inline void cli_cleanup(void)
{
	for (int i = 0; i < cli_nfiles; i++)
		unlink(cli_files[i]);
	cli_nfiles = 0;
	if (mark[0])
		count_procs(KILL_MARKED, 0);
}

static inline void cli_setup(void)
{
	if (!cli_cleanup_set) {
		cli_cleanup_set = true;
		atexit(cli_cleanup);
	}
	if (!mark[0]) {
		snprintf(mark, sizeof mark, "HERD_TEST_MARK=cli-%d", (int)getpid());
		CHECK(setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1) == 0);
		/* A suite run inside a Slurm job would send these cases' jobs
		 * through srun (cli/slurm.c); the Slurm cases set it up. */
		unsetenv("SLURM_JOB_ID");
	}
}

/* Remembers path, to be removed by cli_done() or at exit. */
static inline void cli_forget_later(const char *path)
{
	cli_setup();
	CHECK(cli_nfiles < CLI_MAX_FILES);
	int n = snprintf(cli_files[cli_nfiles++], sizeof cli_files[0], "%s", path);
	CHECK(n > 0 && (size_t)n < sizeof cli_files[0]);
}

/* A temporary file /tmp/herd-test-<pid>-XXXXXX holding text (path in
 * buf, of at least 96 bytes), removed at the end. */
static inline void cli_temp(char *buf, const char *text)
{
	cli_setup();
	temp_file(buf, text, 0644);
	cli_forget_later(buf);
}

/* A fresh name base (no file of that name exists) for flag files that
 * jobs create: names base.<suffix>, see cli_flag(). */
static inline void cli_temp_name(char *buf)
{
	cli_temp(buf, "");
	unlink(buf);
}

/* base.<suffix> in buf (96 bytes), removed at the end. */
static inline const char *cli_flag(char *buf, const char *base, const char *suffix)
{
	int n = snprintf(buf, 96, "%s.%s", base, suffix);
	CHECK(n > 0 && n < 96);
	cli_forget_later(buf);
	return buf;
}

/* Reads a whole (small) file into a malloc'd NUL-terminated string, or
 * NULL if it cannot be opened. */
static inline char *cli_slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0, n;
	char *s = malloc(cap);
	CHECK(s != NULL);
	while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024) {
			cap *= 2;
			s = realloc(s, cap);
			CHECK(s != NULL);
		}
	}
	fclose(f);
	s[len] = 0;
	return s;
}

/* The end of a case (or of a part of one) that started processes:
 * nothing of them is left (within `wait`), and its temporary files are
 * removed. */
static inline void cli_done(int64_t wait)
{
	cli_setup();
	check_nothing_left(wait);
	for (int i = 0; i < cli_nfiles; i++)
		unlink(cli_files[i]); /* (kept on the list: a later run may make it again) */
}

/* Live marked `sleep ARG` processes (not other sleeps: GNU parallel
 * starts `sleep 10101`s of its own to probe the process limit). */
static inline int count_sleeps(const char *arg)
{
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct pinfo pi;
		char path[64], cmdline[256];
		int pid = atoi(e->d_name);
		if (pid <= 0 || !read_stat(pid, &pi) || pi.state == 'Z' || strcmp(pi.comm, "sleep") != 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, cmdline, sizeof cmdline - 1);
		close(fd);
		if (len <= 0)
			continue;
		cmdline[len] = 0;
		size_t first = strlen(cmdline) + 1;
		if ((size_t)len > first && strcmp(cmdline + first, arg) == 0 && has_mark(pid))
			n++;
	}
	closedir(d);
	return n;
}

/* Running ------------------------------------------------------------ */

static inline void cli_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (*len + n + 1 > c)
			c *= 2;
		char *b = realloc(*buf, c);
		CHECK(b != NULL);
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = 0;
}

/*
 * Starts the command with argv (argv[0] is ignored: $HERD_CLI is run) as
 * the leader of a process group of its own, stdin fed from stdin_data (or
 * /dev/null if NULL), stdout and stderr captured into *res. Signal
 * dispositions and the mask are reset to the defaults in the child, so
 * that the command starts as from a shell.
 */
static inline void cli_start(struct cli_proc *p, const char *stdin_data, size_t stdin_len,
			     const char *const argv[], const struct cli_opts *opts,
			     struct cli_out *res)
{
	const char *path = cli_path();
	/* Under an emulator (a cross build's tests), the command runs through
	 * it: the emulator's words come first in argv. */
	char emu_buf[256], *emu[16];
	int emu_n = 0;
	if (test_emulator()) {
		snprintf(emu_buf, sizeof emu_buf, "%s", test_emulator());
		for (char *w = strtok(emu_buf, " "); w && emu_n < 16; w = strtok(NULL, " "))
			emu[emu_n++] = w;
	}
	cli_setup();
	memset(res, 0, sizeof *res);
	memset(p, 0, sizeof *p);
	p->res = res;
	p->in = stdin_data;
	p->in_len = stdin_len;
	p->in_fd = -1;

	int in[2] = {-1, -1}, out[2], err[2];
	if (stdin_data)
		CHECK(pipe2(in, O_CLOEXEC) == 0);
	CHECK(pipe2(out, O_CLOEXEC) == 0);
	if (opts && opts->err_tty) {
		/* A pseudo-terminal: its master reads as a pipe would, and
		 * ends with EIO once the last slave is closed. */
		err[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		CHECK(err[0] >= 0 && grantpt(err[0]) == 0 && unlockpt(err[0]) == 0);
		err[1] = open(ptsname(err[0]), O_RDWR | O_NOCTTY | O_CLOEXEC);
		CHECK(err[1] >= 0);
	} else {
		CHECK(pipe2(err, O_CLOEXEC) == 0);
	}
	signal(SIGPIPE, SIG_IGN); /* a command that exits before reading its stdin */
	fflush(NULL);
	p->start = cli_now();
	p->deadline = p->start + (int64_t)CLI_WATCHDOG_SEC * 1000000000;
	p->pid = fork();
	CHECK(p->pid >= 0);
	if (p->pid == 0) {
		setpgid(0, 0);
		int fd0 = stdin_data ? in[0] : open("/dev/null", O_RDONLY);
		if (fd0 < 0 || dup2(fd0, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (opts && opts->nofile > 0) {
			struct rlimit rl = {(rlim_t)opts->nofile, (rlim_t)opts->nofile};
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		/* Emulated code runs some 20 times slower, and a sanitized
		 * herd (TEST_SCALE > 1) a few times: so does the monitor's
		 * patience (10 ms by default) before it says a task blocks
		 * its worker, a line the cases would count. */
		if ((emu_n || TEST_SCALE > 1) && !getenv("HERD_STALL_MS"))
			setenv("HERD_STALL_MS", "200", 1);
		for (const char *const *e = opts ? opts->env : NULL; e && *e; e++) {
			const char *eq = strchr(*e, '=');
			if (eq) {
				char name[128];
				snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(*e);
			}
		}
		int n = 0;
		while (argv[n])
			n++;
		char **av = calloc((size_t)(n + emu_n) + 1, sizeof *av);
		if (!av)
			_exit(126);
		for (int i = 0; i < emu_n; i++)
			av[i] = emu[i];
		av[emu_n] = (char *)path;
		for (int i = 1; i < n; i++)
			av[emu_n + i] = (char *)argv[i];
		execvp(av[0], av);
		fprintf(stderr, "cannot run %s: %s\n", av[0], strerror(errno));
		_exit(127);
	}
	setpgid(p->pid, p->pid); /* also here: no race with a kill(-pid) */
	if (stdin_data) {
		close(in[0]);
		p->in_fd = in[1];
		CHECK(fcntl(p->in_fd, F_SETFL, O_NONBLOCK) == 0);
		if (stdin_len == 0) {
			close(p->in_fd);
			p->in_fd = -1;
		}
	}
	close(out[1]);
	close(err[1]);
	p->out_fd = out[0];
	p->err_fd = err[0];
	cli_append(&res->out, &res->out_len, &p->out_cap, "", 0);
	cli_append(&res->err, &res->err_len, &p->err_cap, "", 0);
}

/* The run has hung: kills what it started, and fails. */
static inline void cli_watchdog(struct cli_proc *p)
{
	fprintf(stderr, "the command did not end within %d s: killed\n", CLI_WATCHDOG_SEC);
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	count_procs(KILL_MARKED, 0);
	if (!p->exited)
		waitpid(p->pid, NULL, 0);
	fprintf(stderr, "its stdout so far:\n%.2000s\nits stderr so far:\n%.2000s\n",
		p->res->out, p->res->err);
	exit(1);
}

/* Reaps the command if it has exited (its rusage with it). */
static inline void cli_reap(struct cli_proc *p)
{
	if (p->exited)
		return;
	struct rusage ru;
	int st;
	pid_t r = wait4(p->pid, &st, WNOHANG, &ru);
	CHECK(r >= 0 || errno == EINTR);
	if (r == p->pid) {
		p->exited = true;
		p->res->status = st;
		p->res->maxrss_kb = ru.ru_maxrss;
		p->res->secs = (double)(cli_now() - p->start) / 1e9;
		p->drain_until = cli_now() + (int64_t)CLI_DRAIN_SEC * 1000000000;
	}
}

/* Moves data (stdin out, stdout and stderr in) for up to `ms`
 * milliseconds; true once the command has exited and its pipes are
 * closed. Fails (after killing it all) past the watchdog. */
static inline bool cli_pump(struct cli_proc *p, long ms)
{
	int64_t until = cli_now() + (int64_t)ms * 1000000;
	for (;;) {
		cli_reap(p);
		int64_t now = cli_now();
		if (p->exited && now > p->drain_until) {
			/* Some process the command left holds a pipe. */
			if (p->out_fd >= 0)
				close(p->out_fd);
			if (p->err_fd >= 0)
				close(p->err_fd);
			p->out_fd = p->err_fd = -1;
		}
		if (p->exited && p->out_fd < 0 && p->err_fd < 0) {
			if (p->in_fd >= 0)
				close(p->in_fd);
			p->in_fd = -1;
			return true;
		}
		if (now > p->deadline)
			cli_watchdog(p);
		if (now >= until)
			return false;
		struct pollfd pf[3] = {
			{p->out_fd, POLLIN, 0},
			{p->err_fd, POLLIN, 0},
			{p->in_fd, POLLOUT, 0},
		};
		int64_t left = until - now;
		/* Short waits while the command runs: its exit shows in no fd. */
		int wait_ms = left > 20000000 ? 20 : (int)(left / 1000000) + 1;
		int n = poll(pf, 3, wait_ms);
		CHECK(n >= 0 || errno == EINTR);
		if (n <= 0)
			continue;
		char buf[65536];
		for (int i = 0; i < 2; i++) {
			if (!pf[i].revents)
				continue;
			int *fd = i == 0 ? &p->out_fd : &p->err_fd;
			ssize_t r = read(*fd, buf, sizeof buf);
			if (r > 0) {
				if (i == 0)
					cli_append(&p->res->out, &p->res->out_len, &p->out_cap, buf, (size_t)r);
				else
					cli_append(&p->res->err, &p->res->err_len, &p->err_cap, buf, (size_t)r);
			} else if (r == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
		if (pf[2].revents) {
			ssize_t w = write(p->in_fd, p->in + p->in_off, p->in_len - p->in_off);
			if (w > 0)
				p->in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || p->in_off == p->in_len) {
				close(p->in_fd); /* all written, or the command closed its stdin */
				p->in_fd = -1;
			}
		}
	}
}

/* Waits for the end of the run (reading all it prints). */
static inline void cli_finish(struct cli_proc *p)
{
	while (!cli_pump(p, 1000))
		;
}

/* Runs the command to its end: see cli_start(). */
static inline void cli_run_opts(const char *stdin_data, size_t stdin_len,
				const char *const argv[], const struct cli_opts *opts,
				struct cli_out *out)
{
	struct cli_proc p;
	cli_start(&p, stdin_data, stdin_len, argv, opts, out);
	cli_finish(&p);
}

static inline void cli_run(const char *stdin_data, size_t stdin_len, const char *const argv[],
			   struct cli_out *out)
{
	cli_run_opts(stdin_data, stdin_len, argv, NULL, out);
}

static inline void cli_free(struct cli_out *out)
{
	free(out->out);
	free(out->err);
	memset(out, 0, sizeof *out);
}

/* Checking ----------------------------------------------------------- */

/* Prints s (n bytes) on stderr, escaping what is not printable ASCII,
 * cut after 4000 bytes. */
static inline void cli_show(const char *label, const char *s, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):\n  ", label, n);
	for (size_t i = 0; i < n && i < 4000; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n\n  ", stderr);
		else if (c == '\t')
			fputs("\\t", stderr);
		else if (c == '\\')
			fputs("\\\\", stderr);
		else if (c < 32 || c > 126)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	if (n > 4000)
		fputs("...", stderr);
	fputc('\n', stderr);
}

static inline void cli_show_status(const char *label, int st)
{
	if (WIFEXITED(st))
		fprintf(stderr, "%s: exit status %d\n", label, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		fprintf(stderr, "%s: killed by signal %d\n", label, WTERMSIG(st));
	else
		fprintf(stderr, "%s: wait status 0x%x\n", label, (unsigned)st);
}

/* Whether the run exited with status `status`. */
static inline bool cli_exited(const struct cli_out *o, int status)
{
	return WIFEXITED(o->status) && WEXITSTATUS(o->status) == status;
}

/* Fails, showing both, unless stdout is want_len bytes equal to want and
 * the exit status is want_status. */
static inline void cli_check_at(const char *file, int line, const struct cli_out *o,
				const char *want, size_t want_len, int want_status)
{
	bool out_ok = o->out_len == want_len && memcmp(o->out, want, want_len) == 0;
	if (out_ok && cli_exited(o, want_status))
		return;
	fprintf(stderr, "%s:%d: the command's %s not as expected\n", file, line,
		out_ok ? "exit status is" : cli_exited(o, want_status) ? "stdout is" :
		"stdout and exit status are");
	cli_show("expected stdout", want, want_len);
	cli_show("actual stdout", o->out, o->out_len);
	fprintf(stderr, "expected: exit status %d\n", want_status);
	cli_show_status("actual", o->status);
	cli_show("its stderr", o->err, o->err_len);
	exit(1);
}

#define CHECK_OUT(o, want, status) cli_check_at(__FILE__, __LINE__, (o), (want), strlen(want), (status))
#define CHECK_OUT_LEN(o, want, len, status) cli_check_at(__FILE__, __LINE__, (o), (want), (len), (status))

/* Fails, showing the run, unless cond holds. */
#define CHECK_RUN(o, cond)                                                \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",      \
				__FILE__, __LINE__, #cond);               \
			cli_show("its stdout", (o)->out, (o)->out_len);    \
			cli_show_status("its end", (o)->status);           \
			cli_show("its stderr", (o)->err, (o)->err_len);    \
			exit(1);                                          \
		}                                                         \
	} while (0)

/* Runs the command with the arguments after `status` (stdin: the string
 * `in`, or /dev/null if NULL) and checks that it prints exactly `want` on
 * stdout and exits with `status`. */
#define EXPECT(in, want, status, ...)                                     \
	do {                                                              \
		const char *expect_in_ = (in);                             \
		struct cli_out expect_o_;                                 \
		cli_run(expect_in_, expect_in_ ? strlen(expect_in_) : 0,  \
			(const char *const[]){"herd", __VA_ARGS__, NULL}, &expect_o_); \
		CHECK_OUT(&expect_o_, (want), (status));                  \
		cli_free(&expect_o_);                                     \
	} while (0)

/* Runs the command (as EXPECT) and keeps what it did in *o. */
#define RUN(o, in, ...)                                                   \
	do {                                                              \
		const char *run_in_ = (in);                                \
		cli_run(run_in_, run_in_ ? strlen(run_in_) : 0,           \
			(const char *const[]){"herd", __VA_ARGS__, NULL}, (o)); \
	} while (0)

/* Lines ---------------------------------------------------------------- */

/* The number of lines of s (its '\n's). */
static inline int cli_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static inline int cli_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* s's lines sorted, joined again (each with its '\n'): malloc'd. */
static inline char *cli_sorted_lines(const char *s)
{
	char *copy = strdup(s);
	CHECK(copy != NULL);
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof *v);
	CHECK(v != NULL);
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof *v);
			CHECK(v != NULL);
		}
		v[n++] = l;
	}
	qsort(v, n, sizeof *v, cli_cmp_str);
	char *r = malloc(strlen(s) + 2);
	CHECK(r != NULL);
	r[0] = 0;
	for (size_t i = 0; i < n; i++) {
		strcat(r, v[i]);
		strcat(r, "\n");
	}
	free(v);
	free(copy);
	return r;
}

#endif
