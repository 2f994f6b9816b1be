/*
 * test-trace.c - HERD_TRACE / herd_config.trace: the timeline file.
 *
 * A program with known tasks, a channel, a sleep and a child process is
 * traced; the file must be valid JSON (checked by the small parser below),
 * hold one slice per stretch of each task with no two slices of a worker
 * overlapping, a task's last slice saying "end" and every other one
 * followed by another of the same task, a spawn flow per spawn, and the
 * child's slice with its pid and status. A program killed mid-run leaves
 * the binary form, which converts to valid JSON, cut anywhere; a bad path fails
 * herd_run (from the config) or only warns (from HERD_TRACE). Stress runs
 * (1 and 4 workers, every kind of event, a thread that is not a worker)
 * keep each worker's slices in order and lose nothing; a pipe whose reader
 * goes away does not end the program; a run ended by a signal leaves its
 * last moments in the file.
 */
#define _GNU_SOURCE
#include "test.h"

#include <herd.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* A JSON validator (RFC 8259), enough to tell a well-formed file      */
/* ------------------------------------------------------------------ */

struct json {
	const char *p, *end;
	int depth;
};

static void ws(struct json *j)
{
	while (j->p < j->end && strchr(" \t\r\n", *j->p))
		j->p++;
}

static bool value(struct json *j);

static bool lit(struct json *j, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, s, n))
		return false;
	j->p += n;
	return true;
}

static bool string(struct json *j)
{
	if (j->p >= j->end || *j->p++ != '"')
		return false;
	while (j->p < j->end) {
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (j->p >= j->end)
				return false;
			char e = *j->p++;
			if (e == 'u') {
				for (int i = 0; i < 4; i++)
					if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p++))
						return false;
			} else if (!strchr("\"\\/bfnrt", e)) {
				return false;
			}
		}
	}
	return false;
}

static bool number(struct json *j)
{
	const char *s = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	size_t digits = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++, digits++;
	if (!digits)
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		digits = 0;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++, digits++;
		if (!digits)
			return false;
	}
	return j->p > s;
}

/* An object or array: open, close, and whether members are key: value. */
static bool compound(struct json *j, char close, bool keyed)
{
	j->p++;
	if (++j->depth > 64)
		return false;
	ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return true;
	}
	for (;;) {
		ws(j);
		if (keyed) {
			if (!string(j))
				return false;
			ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return false;
		}
		if (!value(j))
			return false;
		ws(j);
		if (j->p >= j->end)
			return false;
		char c = *j->p++;
		if (c == close) {
			j->depth--;
			return true;
		}
		if (c != ',')
			return false;
	}
}

static bool value(struct json *j)
{
	ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{': return compound(j, '}', true);
	case '[': return compound(j, ']', false);
	case '"': return string(j);
	case 't': return lit(j, "true");
	case 'f': return lit(j, "false");
	case 'n': return lit(j, "null");
	default: return number(j);
	}
}

static bool json_valid(const char *text, size_t len)
{
	struct json j = {text, text + len, 0};
	if (!value(&j))
		return false;
	ws(&j);
	return j.p == j.end;
}

/* ------------------------------------------------------------------ */
/* Reading the file                                                   */
/* ------------------------------------------------------------------ */

struct membuf {
	char *p;
	size_t len;
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	CHECK(buf);
	size_t k;
	while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
		n += k;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			CHECK(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A memory file holding len bytes of data, at its start. */
static int mem_file(const char *data, size_t len)
{
	int fd = memfd_create("test-trace", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, data, len) == (ssize_t)len);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	return fd;
}

/* A binary trace of len bytes as JSON, through herd_trace_convert (what
 * herd-trace-html uses); *cut if it said the trace was cut short. */
static char *convert(const char *bin, size_t len, size_t *jlen, bool *cut)
{
	int in = mem_file(bin, len), out = mem_file("", 0);
	int rc = herd_trace_convert(in, out);
	CHECK(rc == 0 || rc == 1);
	*cut = rc == 1;
	struct stat st;
	CHECK(fstat(out, &st) == 0 && st.st_size > 0);
	char *text = malloc((size_t)st.st_size + 1);
	CHECK(text);
	CHECK(pread(out, text, (size_t)st.st_size, 0) == st.st_size);
	text[st.st_size] = 0;
	*jlen = (size_t)st.st_size;
	close(in);
	close(out);
	return text;
}

/* The text of field "key" in one event line: its value, up to , or }. */
static bool field(const char *line, const char *key, char *out, size_t size)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *s = strstr(line, pat);
	if (!s)
		return false;
	s += strlen(pat);
	size_t n = 0;
	bool quoted = *s == '"';
	if (quoted)
		s++;
	while (s[n] && (quoted ? s[n] != '"' : !strchr(",}", s[n])))
		n++;
	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

struct slice {
	int tid;
	double ts, dur;
	long task;
	char stop[32];
};

#define MAX_SLICES 4096

struct trace {
	struct slice s[MAX_SLICES];
	int nslices, flows_started, flows_ended;
	int marks;              /* slices of no length, of no task */
	long total;             /* slices, kept or not */
	int proc_pid;
	char proc_status[32];
};

static void parse(char *text, struct trace *t)
{
	memset(t, 0, sizeof *t);
	char v[128];
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!field(line, "ph", v, sizeof v))
			continue;
		if (!strcmp(v, "s")) {
			t->flows_started++;
		} else if (!strcmp(v, "f")) {
			t->flows_ended++;
		} else if (!strcmp(v, "X")) {
			CHECK(field(line, "pid", v, sizeof v));
			if (!strcmp(v, "2")) {
				CHECK(field(line, "tid", v, sizeof v));
				t->proc_pid = atoi(v);
				CHECK(field(line, "status", t->proc_status, sizeof t->proc_status));
				continue;
			}
			if (!strstr(line, "\"task\":")) { /* a flow's start off a task */
				CHECK(strstr(line, "\"dur\":0,"));
				t->marks++;
				continue;
			}
			if (t->total++ >= MAX_SLICES)
				continue;
			struct slice *s = &t->s[t->nslices++];
			CHECK(field(line, "tid", v, sizeof v));
			s->tid = atoi(v);
			CHECK(field(line, "ts", v, sizeof v));
			s->ts = atof(v);
			CHECK(field(line, "dur", v, sizeof v));
			s->dur = atof(v);
			CHECK(field(line, "task", v, sizeof v));
			s->task = atol(v);
			CHECK(s->task > 0);
			CHECK(field(line, "stop", s->stop, sizeof s->stop));
		}
	}
}

static int by_lane_then_time(const void *a, const void *b)
{
	const struct slice *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid - y->tid;
	/* A clock coarser than a stretch (qemu's counter) gives two slices
	 * the same start: the empty one came first. */
	if (x->ts != y->ts)
		return (x->ts > y->ts) - (x->ts < y->ts);
	return (x->dur > y->dur) - (x->dur < y->dur);
}

static int by_task_then_time(const void *a, const void *b)
{
	const struct slice *x = a, *y = b;
	if (x->task != y->task)
		return (x->task > y->task) - (x->task < y->task);
	if (x->ts != y->ts)
		return (x->ts > y->ts) - (x->ts < y->ts);
	if (x->dur != y->dur) /* as in by_lane_then_time */
		return (x->dur > y->dur) - (x->dur < y->dur);
	return !strcmp(x->stop, "end") - !strcmp(y->stop, "end");
}

/* ------------------------------------------------------------------ */
/* The traced program                                                 */
/* ------------------------------------------------------------------ */

#define PRODUCERS 3
#define VALUES 20

static herd_chan *values;
static int child_pid;
static int child_status = -1;

static void producer(void *arg)
{
	long base = (long)(intptr_t)arg;
	for (long i = 0; i < VALUES; i++) {
		long v = base + i;
		CHECK_OK(herd_chan_send(values, &v, HERD_FOREVER));
	}
}

static void traced_main(void *arg)
{
	(void)arg;
	values = make_chan(sizeof(long), 0);
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	for (long p = 0; p < PRODUCERS; p++)
		CHECK_OK(herd_go(sc, producer, (void *)(intptr_t)(p * 1000), 0));
	long v, n = 0;
	while (n < PRODUCERS * VALUES && herd_chan_recv(values, &v, HERD_FOREVER) == 0)
		n++;
	CHECK_EQ(n, PRODUCERS * VALUES);
	CHECK_OK(herd_scope_close(sc));
	CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_proc *p;
	CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
	child_pid = herd_proc_pid(p);
	CHECK_OK(herd_proc_wait(p, &child_status, HERD_FOREVER));
	CHECK_OK(herd_proc_free(p));
	herd_chan_free(values);
}

static char *temp_path(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/herd-test-trace-%d.json", (int)getpid());
	return buf;
}

TEST(records_tasks)
{
	char path[64];
	herd_config cfg = {.trace = temp_path(path, sizeof path)};
	CHECK_OK(herd_run(&cfg, traced_main, NULL));
	CHECK_EQ(child_status, 3);
	size_t len;
	char *text = slurp(path, &len);
	unlink(path);
	CHECK_TEXT(text, json_valid(text, len));
	CHECK(len > 3 && !strcmp(text + len - 3, "]}\n"));
	static struct trace t;
	parse(text, &t);
	free(text);
	CHECK_EQ(t.total, t.nslices);
	/* The first task was spawned by herd_run's thread, outside any task:
	 * its flow starts from a slice of no length (on lane 0). */
	CHECK(t.marks >= 1);

	/* The main task, the producers: each ends once. */
	qsort(t.s, (size_t)t.nslices, sizeof *t.s, by_task_then_time);
	int ended = 0, tasks = 0;
	for (int i = 0; i < t.nslices; i++) {
		bool last = i + 1 == t.nslices || t.s[i + 1].task != t.s[i].task;
		tasks += last;
		if (!strcmp(t.s[i].stop, "end")) {
			CHECK(last); /* nothing runs after a task's end */
			ended++;
		} else {
			CHECK(!last); /* every park or yield has a next run */
		}
	}
	CHECK(tasks >= 1 + PRODUCERS);
	CHECK_EQ(ended, tasks);
	/* The spawns, and 60 values over an unbuffered channel: the main task
	 * parks often. Every flow that starts ends where its task runs. */
	CHECK(t.flows_started >= PRODUCERS + VALUES);
	CHECK_EQ(t.flows_started, t.flows_ended);

	/* A worker runs one task at a time. */
	qsort(t.s, (size_t)t.nslices, sizeof *t.s, by_lane_then_time);
	for (int i = 0; i + 1 < t.nslices; i++) {
		CHECK(t.s[i].tid >= 1);
		if (t.s[i + 1].tid == t.s[i].tid &&
		    t.s[i].ts + t.s[i].dur > t.s[i + 1].ts + 0.0015) {
			fprintf(stderr, "lane %d: slice at %.3f (+%.3f) overlaps one at %.3f\n",
				t.s[i].tid, t.s[i].ts, t.s[i].dur, t.s[i + 1].ts);
			CHECK(!"slices of one worker overlap");
		}
	}

	CHECK_EQ(t.proc_pid, child_pid);
	CHECK(!strcmp(t.proc_status, "exit 3"));
}

/* ------------------------------------------------------------------ */
/* Killed mid-run                                                     */
/* ------------------------------------------------------------------ */

static void spinner(void *arg)
{
	(void)arg;
	for (;;)
		if (herd_sleep(herd_deadline(10 * HERD_USEC)) < 0)
			return;
}

static void killed_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		CHECK_OK(herd_go(NULL, spinner, NULL, 0));
	herd_sleep(herd_deadline(200 * HERD_MSEC)); /* written every few ms */
	raise(SIGKILL);
}

/* Runs killed_main, traced, in a child that SIGKILL ends; returns the
 * file it left (removed) and its length. */
static char *killed_trace(size_t *len)
{
	char path[64];
	temp_path(path, sizeof path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		herd_config cfg = {.trace = path};
		herd_run(&cfg, killed_main, NULL);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	char *bin = slurp(path, len);
	unlink(path);
	return bin;
}

TEST(killed_is_readable)
{
	size_t len;
	char *bin = killed_trace(&len);
	/* The binary form, whole up to the last round's events but for a
	 * write the kill cut short; converted as herd-trace-html does. */
	CHECK(len > 8 && memcmp(bin, "HERDTRB1", 8) == 0);
	size_t jlen;
	bool cut;
	char *text = convert(bin, len, &jlen, &cut);
	if (cut)
		fprintf(stderr, "the kill cut a write short\n");
	CHECK_TEXT(text, json_valid(text, jlen));
	static struct trace t;
	parse(text, &t);
	free(text);
	CHECK(t.total > 10);
	/* Cut anywhere, it still reads, up to its last whole event: in the
	 * middle of the events, of an event, and of a frame's head. */
	for (size_t at = len / 2; at > len / 2 - 24; at -= 5) {
		text = convert(bin, at, &jlen, &cut);
		CHECK(cut);
		CHECK_TEXT(text, json_valid(text, jlen));
		free(text);
	}
	free(bin);
}

/* A file written with O_DIRECT ends, until herd_run's end cuts it, in a
 * block's padding of zeros: it reads as nothing, not as a cut. */
TEST(padding_reads_as_nothing)
{
	size_t len;
	char *bin = killed_trace(&len);
	/* Its whole frames only, then 4 KiB of zeros after them. */
	size_t whole = len;
	while (whole > 8 && !bin[whole - 1])
		whole--;
	whole = (whole + 7) & ~(size_t)7;
	char *padded = calloc(1, whole + 4096);
	CHECK(padded);
	memcpy(padded, bin, whole);
	size_t jlen, plen;
	bool cut, pcut;
	char *text = convert(bin, whole, &jlen, &cut);
	char *ptext = convert(padded, whole + 4096, &plen, &pcut);
	CHECK(!pcut || cut);
	CHECK_EQ(plen, jlen);
	CHECK(!memcmp(text, ptext, jlen));
	free(text);
	free(ptext);
	free(padded);
	free(bin);
}

/* A task that ends hands its stack to the next, which starts at once: one
 * event says both (HERD__TR_RUN_ENDS). Each of many short tasks on one
 * worker still ends once, in a slice of its own. */
#define SHORT_TASKS 300

static void short_task(void *arg)
{
	(void)arg;
}

static void shorts_main(void *arg)
{
	(void)arg;
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < SHORT_TASKS; i++)
		CHECK_OK(herd_go(s, short_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
}

TEST(short_tasks_end_once)
{
	char path[64];
	herd_config cfg = {.trace = temp_path(path, sizeof path), .workers = 1};
	CHECK_OK(herd_run(&cfg, shorts_main, NULL));
	size_t len;
	char *text = slurp(path, &len);
	unlink(path);
	CHECK_TEXT(text, json_valid(text, len));
	static struct trace t;
	parse(text, &t);
	free(text);
	CHECK_EQ(t.total, t.nslices);
	qsort(t.s, (size_t)t.nslices, sizeof *t.s, by_task_then_time);
	int tasks = 0, ended = 0;
	for (int i = 0; i < t.nslices; i++) {
		bool last = i + 1 == t.nslices || t.s[i + 1].task != t.s[i].task;
		tasks += last;
		ended += !strcmp(t.s[i].stop, "end");
		if (!strcmp(t.s[i].stop, "end"))
			CHECK(last);
	}
	CHECK_EQ(tasks, SHORT_TASKS + 1);
	CHECK_EQ(ended, SHORT_TASKS + 1);
	CHECK_EQ(t.flows_started, t.flows_ended);
	CHECK(t.flows_started >= SHORT_TASKS);
}

/* herd_trace_convert refuses what is not herd's binary form (a JSON
 * trace, an empty file) and bad descriptors, and writes nothing then. */
TEST(convert_refuses)
{
	const char *json = "{\"traceEvents\":[]}";
	int in = mem_file(json, strlen(json)), out = mem_file("", 0);
	CHECK_EQ(herd_trace_convert(in, out), -EINVAL);
	close(in);
	in = mem_file("", 0);
	CHECK_EQ(herd_trace_convert(in, out), -EINVAL);
	CHECK_EQ(herd_trace_convert(-1, out), -EBADF);
	CHECK_EQ(herd_trace_convert(in, -1), -EBADF);
	struct stat st;
	CHECK(fstat(out, &st) == 0);
	CHECK_EQ(st.st_size, 0);
	close(in);
	close(out);
	/* A pipe is read to its end, as a file is mapped. */
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], json, strlen(json)) == (ssize_t)strlen(json));
	close(p[1]);
	out = mem_file("", 0);
	CHECK_EQ(herd_trace_convert(p[0], out), -EINVAL);
	close(p[0]);
	close(out);
}

/* ------------------------------------------------------------------ */
/* Bad paths                                                          */
/* ------------------------------------------------------------------ */

static bool ran;

static void note_ran(void *arg)
{
	(void)arg;
	ran = true;
}

TEST(bad_path)
{
	herd_config cfg = {.trace = "/nonexistent-herd-dir/trace.json"};
	ran = false;
	CHECK_EQ(herd_run(&cfg, note_ran, NULL), -ENOENT);
	CHECK(!ran);
	/* From the environment: a warning, and the run goes on. */
	CHECK(setenv("HERD_TRACE", "/nonexistent-herd-dir/trace.json", 1) == 0);
	CHECK_OK(herd_run(NULL, note_ran, NULL));
	CHECK(ran);
	unsetenv("HERD_TRACE");
	/* A FIFO nobody reads: an error at once, not a wait for a reader. */
	char fifo[64];
	snprintf(fifo, sizeof fifo, "/tmp/herd-test-trace-fifo-%d", (int)getpid());
	CHECK(mkfifo(fifo, 0600) == 0);
	cfg.trace = fifo;
	ran = false;
	int rc = herd_run(&cfg, note_ran, NULL);
	unlink(fifo);
	CHECK_EQ(rc, -ENXIO);
	CHECK(!ran);
}

/* ------------------------------------------------------------------ */
/* Stress: many short tasks, yields, timeouts, cancellations, child   */
/* processes and a thread that is not a worker, all traced            */
/* ------------------------------------------------------------------ */

/*
 * Enough events for several chunks per worker (their hand-over and reuse),
 * every kind of event, a command line of control bytes and invalid UTF-8.
 * The file must be valid JSON, lose nothing, end every flow it starts, and
 * on each worker's lane, in the file's order, start its slices in order
 * without overlap: a slice whose start was read in a later round than the
 * end of the one before (its worker preempted between reading the ticks
 * and publishing the event) once came out before it, mapped onto the clock
 * by the later round's line (about one run in twenty on a loaded machine).
 */
#define STRESS_TASKS (20000 / TEST_SCALE + 200)
/* Under TSan, whose every synchronization costs in the number of fibers
 * (tasks) made so far, fewer round trips: still a few chunks of events. */
#define STRESS_PINGS (TEST_UNDER_TSAN ? 3000 : 20000)
#define STRESS_FOREIGN (4000 / TEST_SCALE + 50)

static herd_chan *stress_ping, *stress_pong, *stress_never, *stress_foreign;
static herd_scope *stress_scope;
static herd_wg *stress_thread_done;

static void stress_short(void *arg)
{
	if ((intptr_t)arg % 3 == 0)
		herd_yield();
}

static void stress_pinger(void *arg)
{
	(void)arg;
	for (long i = 0; i < STRESS_PINGS; i++) {
		CHECK_OK(herd_chan_send(stress_ping, &i, HERD_FOREVER));
		CHECK_OK(herd_chan_recv(stress_pong, &i, HERD_FOREVER));
	}
}

static void stress_ponger(void *arg)
{
	(void)arg;
	long v;
	for (long i = 0; i < STRESS_PINGS; i++) {
		CHECK_OK(herd_chan_recv(stress_ping, &v, HERD_FOREVER));
		CHECK_OK(herd_chan_send(stress_pong, &v, HERD_FOREVER));
	}
}

static void stress_timeout(void *arg)
{
	(void)arg;
	long v;
	for (int i = 0; i < 20; i++)
		CHECK_EQ(herd_chan_recv(stress_never, &v, herd_deadline(20 * HERD_USEC)),
			 HERD_ETIMEDOUT);
}

static void stress_forever(void *arg)
{
	(void)arg;
	long v;
	CHECK_EQ(herd_chan_recv(stress_never, &v, HERD_FOREVER), HERD_ECANCELED);
}

static void stress_foreign_recv(void *arg)
{
	(void)arg;
	long v;
	for (long i = 0; i < STRESS_FOREIGN; i++)
		CHECK_OK(herd_chan_recv(stress_foreign, &v, HERD_FOREVER));
}

/* A thread that is not a worker: spawns into the scope and wakes a task. */
static void *stress_thread(void *arg)
{
	(void)arg;
	for (long i = 0; i < STRESS_FOREIGN; i++) {
		CHECK_OK(herd_go(stress_scope, stress_short, (void *)(intptr_t)i, 0));
		while (herd_chan_try_send(stress_foreign, &i) != 0)
			sched_yield();
	}
	herd_wg_done(stress_thread_done);
	return NULL;
}

static void stress_main(void *arg)
{
	(void)arg;
	stress_ping = make_chan(sizeof(long), 0);
	stress_pong = make_chan(sizeof(long), 0);
	stress_never = make_chan(sizeof(long), 0);
	stress_foreign = make_chan(sizeof(long), 4);
	CHECK_OK(herd_wg_new(&stress_thread_done));
	herd_wg_add(stress_thread_done, 1);
	CHECK_OK(herd_scope_open(&stress_scope));
	pthread_t th;
	CHECK(pthread_create(&th, NULL, stress_thread, NULL) == 0);
	CHECK_OK(herd_go(stress_scope, stress_foreign_recv, NULL, 0));
	CHECK_OK(herd_go(stress_scope, stress_pinger, NULL, 0));
	CHECK_OK(herd_go(stress_scope, stress_ponger, NULL, 0));
	for (long i = 0; i < 8; i++)
		CHECK_OK(herd_go(stress_scope, stress_timeout, NULL, 0));
	for (long i = 0; i < STRESS_TASKS; i++) {
		CHECK_OK(herd_go(stress_scope, stress_short, (void *)(intptr_t)i, 0));
		if (i % 1000 == 0) { /* a scope of parked tasks, canceled */
			herd_scope *sc;
			CHECK_OK(herd_scope_open(&sc));
			for (int k = 0; k < 5; k++)
				CHECK_OK(herd_go(sc, stress_forever, NULL, 0));
			herd_yield();
			CHECK_OK(herd_scope_cancel(sc));
			CHECK_OK(herd_scope_close(sc));
		}
	}
	/* Child processes, one with a command line of control bytes, quotes
	 * and invalid UTF-8, cut in the middle of a character. */
	char odd[200];
	memset(odd, 'x', sizeof odd - 1);
	odd[sizeof odd - 1] = 0;
	memcpy(odd, "\x01\"\\\xff\xc3\xa9\x7f\t", 8);
	for (size_t i = 60; i + 3 < sizeof odd; i += 3)
		memcpy(odd + i, "\xe2\x82\xac", 3);
	for (int i = 0; i < 6; i++) {
		char *argv[] = {"/bin/sh", "-c", "exit 0", odd, NULL};
		herd_proc_opts o = {.argv = argv};
		herd_proc *p;
		int status;
		CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
		CHECK_OK(herd_proc_wait(p, &status, HERD_FOREVER));
		CHECK_EQ(status, 0);
		CHECK_OK(herd_proc_free(p));
	}
	CHECK_OK(herd_wg_wait(stress_thread_done, HERD_FOREVER));
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_OK(herd_scope_close(stress_scope));
	herd_wg_free(stress_thread_done);
	herd_chan_free(stress_ping);
	herd_chan_free(stress_pong);
	herd_chan_free(stress_never);
	herd_chan_free(stress_foreign);
}

/* What the stress test counts, in one pass over the lines (strstr over
 * the whole file per event would be quadratic under ASan, whose strstr
 * measures what is left of the text at each call). */
struct counts {
	long flows_started, flows_ended, cancels, procs, slices;
};

/* Counts the events; on each worker's lane, in the file's order, checks
 * that slices start in order and never overlap. Cuts text into lines. */
static void scan(char *text, struct counts *c)
{
	enum { LANES = 64 };
	static double end[LANES], start[LANES];
	for (int i = 0; i < LANES; i++)
		end[i] = start[i] = -1;
	memset(c, 0, sizeof *c);
	long bad = 0;
	char v[64];
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!field(line, "ph", v, sizeof v))
			continue;
		c->flows_started += !strcmp(v, "s");
		c->flows_ended += !strcmp(v, "f");
		c->cancels += !strcmp(v, "i") && strstr(line, "\"name\":\"cancel\"");
		if (strcmp(v, "X"))
			continue;
		CHECK(field(line, "pid", v, sizeof v));
		if (strcmp(v, "1")) {
			c->procs++;
			continue;
		}
		CHECK(field(line, "tid", v, sizeof v));
		int tid = atoi(v);
		if (!strstr(line, "\"task\":")) /* a flow's start off a task */
			continue;
		CHECK(tid >= 1 && tid < LANES);
		CHECK(field(line, "ts", v, sizeof v));
		double ts = atof(v);
		CHECK(field(line, "dur", v, sizeof v));
		double dur = atof(v);
		if (ts < start[tid] || ts + 0.0015 < end[tid]) {
			if (bad++ < 10)
				fprintf(stderr, "lane %d: slice at %.3f (+%.3f) after one "
						"%.3f..%.3f\n", tid, ts, dur, start[tid], end[tid]);
		}
		start[tid] = ts;
		end[tid] = ts + dur;
		c->slices++;
	}
	CHECK_EQ(bad, 0);
}

static void stress(unsigned workers)
{
	char path[64];
	/* The deadlock check cannot see the thread that feeds a task. */
	herd_config cfg = {.trace = temp_path(path, sizeof path), .workers = workers,
			   .flags = HERD_RUN_NO_DEADLOCK_CHECK};
	CHECK_OK(herd_run(&cfg, stress_main, NULL));
	size_t len;
	char *text = slurp(path, &len);
	unlink(path);
	CHECK(json_valid(text, len));
	CHECK(strstr(text, "\"lost_events\":0}"));
	CHECK(strstr(text, "exit 0 \\u0001\\\"\\\\\\ufffd\xc3\xa9\x7f\\u0009xx"));
	/* Cut in the middle of a euro sign: what is left of it is U+FFFD. */
	CHECK(strstr(text, "\xe2\x82\xac\\ufffd\\ufffd...\""));
	struct counts c;
	scan(text, &c);
	free(text);
	CHECK_EQ(c.flows_started, c.flows_ended);
	CHECK(c.cancels >= 1);
	CHECK(c.procs >= 6);
	CHECK(c.slices > STRESS_TASKS);
}

TEST(stress_workers) { stress(4); }
TEST(stress_one_worker) { stress(1); }

/* ------------------------------------------------------------------ */
/* A pipe whose reader goes away                                      */
/* ------------------------------------------------------------------ */

static char fifo_path[64];
static int fifo_gone[2]; /* the reader writes a byte once it has closed */

static void fifo_main(void *arg)
{
	(void)arg;
	char c;
	CHECK(read(fifo_gone[0], &c, 1) == 1); /* blocks the worker a moment */
	for (int i = 0; i < 20; i++) {
		for (long k = 0; k < 20; k++)
			CHECK_OK(herd_go(NULL, stress_short, (void *)(intptr_t)k, 0));
		CHECK_OK(herd_sleep(herd_deadline(2 * HERD_MSEC)));
	}
	ran = true;
}

static void fifo_child(void)
{
	sigset_t pipe_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigprocmask(SIG_UNBLOCK, &pipe_set, NULL);
	signal(SIGPIPE, SIG_DFL); /* herd takes it, as in most programs */
	herd_config cfg = {.trace = fifo_path};
	ran = false;
	CHECK_OK(herd_run(&cfg, fifo_main, NULL));
	CHECK(ran);
}

/* The writes fail (EPIPE, a warning at the end); the SIGPIPE they raised
 * on the supervisor's thread ended the whole program. */
TEST(pipe_reader_gone)
{
	snprintf(fifo_path, sizeof fifo_path, "/tmp/herd-test-trace-%d.fifo", (int)getpid());
	CHECK(mkfifo(fifo_path, 0600) == 0);
	CHECK(pipe(fifo_gone) == 0);
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t reader = fork();
	CHECK(reader >= 0);
	if (reader == 0) {
		/* Open before herd_run does (a FIFO nobody reads is an error
		 * for it), read and writable so that its reads wait for data
		 * instead of seeing no writer; then the only reader goes. */
		char buf[100];
		int fd = open(fifo_path, O_RDWR);
		if (fd < 0 || write(ready[1], "r", 1) != 1 || read(fd, buf, sizeof buf) <= 0)
			_exit(1);
		close(fd);
		_exit(write(fifo_gone[1], "x", 1) == 1 ? 0 : 1);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	char err[4096];
	int st = test_child(fifo_child, err, sizeof err);
	int rst;
	CHECK(waitpid(reader, &rst, 0) == reader);
	unlink(fifo_path);
	close(fifo_gone[0]);
	close(fifo_gone[1]);
	CHECK(WIFEXITED(rst) && WEXITSTATUS(rst) == 0);
	test_child_ok(st, err);
	CHECK_TEXT(err, strstr(err, "writing the trace failed: Broken pipe"));
}

/* ------------------------------------------------------------------ */
/* Ended by a signal                                                  */
/* ------------------------------------------------------------------ */

static void sigterm_main(void *arg)
{
	(void)arg;
	char *argv[] = {"sleep", "30", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_proc *p;
	CHECK_OK(herd_proc_start(&p, NULL, &o, HERD_FOREVER));
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
	CHECK(kill(getpid(), SIGTERM) == 0);
	int status;
	int rc = herd_proc_wait(p, &status, HERD_FOREVER); /* canceled, or killed */
	(void)rc;
	for (;;)
		herd_sleep(herd_deadline(HERD_SEC)); /* until the signal ends us */
}

/* herd ends the run, its child with it, and dies of the signal: the file
 * holds the run's last moments, the child's end among them, which the
 * process once died without writing out. */
TEST(signal_ends_run)
{
	char path[64];
	temp_path(path, sizeof path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		sigset_t term;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigprocmask(SIG_UNBLOCK, &term, NULL);
		signal(SIGTERM, SIG_DFL); /* herd takes it */
		herd_config cfg = {.trace = path};
		herd_run(&cfg, sigterm_main, NULL);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	size_t len;
	char *text = slurp(path, &len);
	unlink(path);
	CHECK_TEXT(text, json_valid(text, len));
	CHECK_TEXT(text, strstr(text, "\"name\":\"cancel\""));
	CHECK_TEXT(text, strstr(text, "\"name\":\"sleep 30\",\"args\":{\"pid\":"));
	CHECK_TEXT(text, strstr(text, "\"status\":\"signal 15\""));
	free(text);
}
