/*
 * seed.c - the Go post-mortem's program, written the herd way.
 *
 * In the post-mortem, a loop received objects from a channel and started
 * each in a goroutine under a sync.WaitGroup. The goroutine's closure
 * captured the loop variable by reference, so objects were started twice
 * or never and runs hung; and every run left orphaned processes behind,
 * until the machine said "too many open files".
 *
 * Here a producer sends objects on a typed channel. The main loop ranges
 * over it and spawns a task per object with its own copy of the object
 * (HERD_TASK and HERD_GO: no cast, no pointer to the loop variable). Each
 * task runs the object's command, `event`, which works for a while and
 * leaves a child of its own behind, and waits for it. A scope, not a
 * WaitGroup, waits for the tasks and bounds how many run at once; the
 * processes, and what they left behind, end with it. Ctrl-C cancels it.
 *
 * Then the program checks what went wrong in the post-mortem: each object
 * was received, started and finished exactly once, no process descended
 * from this one is left, and as many descriptors are open as before.
 *
 *   seed [-n OBJECTS] [-j LIMIT] [-t MS]
 *
 * Exit status: 0 when every check holds, 130 after Ctrl-C (the checks of
 * what is left still hold), 1 when a check fails, 2 for bad options.
 */
#include <herd.h>

#include "count.h"

#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
	int objects; /* how many objects the producer sends */
	int limit;   /* how many run at once */
	int ms;      /* how long each object's event runs */
};

/* An object: a name and a command (event, for ms milliseconds). It is
 * copied into the channel and into its task, so it holds no pointer to
 * anything that changes: program is the path below, fixed before the run. */
struct object {
	int id;
	char name[24];
	char *program;
	int ms;
};

static char event_path[PATH_MAX]; /* event, beside this program */

/* What happened to each object, counted per object: a duplicate and a loss
 * could hide each other in a total (the post-mortem's bug made both). */
static atomic_int *received, *started, *finished;
static atomic_bool interrupted;
static atomic_int most_procs; /* the most descendants seen at once */
static int procs_left = -1;   /* descendants left once the work was done */

/* A failure to set up ends the program: exit() from a task first ends
 * every process herd started, as herd.h says. */
static void must(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "seed: %s: %s\n", what, herd_strerror(rc));
		exit(1);
	}
}

/* ------------------------------------------------------------------ */
/* The work                                                           */
/* ------------------------------------------------------------------ */

struct feed {
	HERD_CHAN(struct object) objs;
	struct options o;
};

/* Sends the objects, then closes the channel, which ends the loop over
 * it. A send fails once the loop has closed the channel itself (it stops
 * early after Ctrl-C): the producer stops there. */
HERD_TASK(produce, struct feed, f)
{
	for (int i = 0; i < f.o.objects; i++) {
		struct object v = {.id = i, .program = event_path, .ms = f.o.ms};
		snprintf(v.name, sizeof v.name, "object-%d", i);
		if (HERD_SEND(f.objs, v, HERD_FOREVER) < 0)
			return;
	}
	herd_chan_close(f.objs);
}

/* Runs the object's command and waits for it: v.Start() in the Go
 * program. Returns its exit status, or a negative code (HERD_ECANCELED
 * after Ctrl-C: the process and its leftover are then ended with the
 * scope). */
static int start(struct object *v)
{
	char ms[16];
	snprintf(ms, sizeof ms, "%d", v->ms);
	char *argv[] = {v->program, v->name, ms, NULL};
	herd_proc *p;
	int status, rc = herd_proc_start(&p, NULL, &(herd_proc_opts){.argv = argv}, HERD_FOREVER);
	if (rc < 0)
		return rc;
	rc = herd_proc_wait(p, &status, HERD_FOREVER);
	herd_proc_free(p);
	return rc < 0 ? rc : status;
}

/* An object's task: v is its own copy, made by HERD_GO. */
HERD_TASK(process, struct object, v)
{
	atomic_fetch_add(&started[v.id], 1);
	int rc = start(&v);
	if (rc == 0) {
		atomic_fetch_add(&finished[v.id], 1);
		printf("Finished: %s\n", v.name);
	} else if (rc < 0) {
		printf("Stopped: %s (%s)\n", v.name, herd_strerror(rc));
	} else if (HERD_PROC_SIGNALED(rc)) {
		/* After Ctrl-C, the child may die of herd's SIGTERM before
		 * the cancellation reaches the wait. */
		printf("Stopped: %s (event ended by signal %d)\n", v.name, HERD_PROC_SIGNAL(rc));
	} else {
		printf("Failed: %s (exit status %d)\n", v.name, rc);
	}
}

struct watch {
	HERD_CHAN(int) ctrl_c;
	herd_scope *work;
};

/* Waits for Ctrl-C, which cancels the work as Go's signal.NotifyContext
 * would: every wait in it returns HERD_ECANCELED, and herd ends the
 * children's process trees. Meanwhile it counts this program's processes
 * ten times a second: the final "0 left" means something only because the
 * same count saw them while they ran (reading /proc takes little time, so
 * the task reads it itself, not through herd_blocking). It runs until its
 * scope is canceled. */
HERD_TASK(watch, struct watch, w)
{
	for (;;) {
		int n = count_descendants(), sig;
		if (n > atomic_load(&most_procs))
			atomic_store(&most_procs, n);
		int rc = HERD_RECV(w.ctrl_c, sig, herd_deadline(100 * HERD_MSEC));
		if (rc == 0) {
			atomic_store(&interrupted, true);
			printf("Interrupted: canceling the work\n");
			herd_scope_cancel(w.work);
		} else if (rc != HERD_ETIMEDOUT) {
			return;
		}
	}
}

HERD_TASK(seed, struct options, o)
{
	struct feed f = {.o = o};
	struct watch w;
	herd_scope *feeding, *watching;
	must(HERD_CHAN_MAKE(f.objs, 0), "channel");
	must(HERD_CHAN_MAKE(w.ctrl_c, 1), "channel");
	must(herd_signal_notify(HERD_CHAN_RAW(w.ctrl_c), SIGINT), "SIGINT");
	must(herd_scope_open(&w.work), "scope");
	must(herd_scope_limit(w.work, o.limit), "limit");
	must(herd_scope_open(&feeding), "scope");
	must(herd_scope_open(&watching), "scope");
	must(HERD_GO(watching, watch(w)), "watch");
	must(HERD_GO(feeding, produce(f)), "produce");

	/* Go's `for v := range ch { go func(v) {...}(v) }`, without the
	 * gotcha: HERD_GO copies v before the loop moves on. */
	struct object v;
	HERD_RANGE(v, f.objs) {
		atomic_fetch_add(&received[v.id], 1);
		printf("Processing: %s\n", v.name);
		if (HERD_GO(w.work, process(v)) < 0)
			break; /* Ctrl-C canceled the work (or no memory) */
	}

	herd_chan_close(f.objs); /* a producer still sending stops */
	herd_scope_close(feeding);
	/* Wait for every object's task; Ctrl-C still cancels them meanwhile.
	 * The watcher holds a pointer to the work scope, so it must end
	 * before the scope is freed: wait, stop the watcher, and only then
	 * close the work scope, which ends what a canceled task left running
	 * and returns once all of it is gone. */
	(void)herd_scope_wait(w.work, HERD_FOREVER);
	herd_scope_cancel(watching);
	herd_scope_close(watching);
	herd_scope_close(w.work);
	/* Still within the run, while herd is the subreaper: an orphan of
	 * ours would be counted here, not hidden under init. */
	procs_left = count_descendants();
	herd_signal_stop(HERD_CHAN_RAW(w.ctrl_c));
	herd_chan_free(w.ctrl_c);
	herd_chan_free(f.objs);
}

/* ------------------------------------------------------------------ */
/* Options, the run and the summary                                   */
/* ------------------------------------------------------------------ */

static const char usage[] =
	"usage: seed [-n OBJECTS] [-j LIMIT] [-t MS]\n"
	"  -n OBJECTS  objects to process (default 40)\n"
	"  -j LIMIT    objects processed at once (default 8)\n"
	"  -t MS       how long each object's event runs, in ms (default 500)\n"
	"Ctrl-C cancels the work; the summary says what ran and what is left.\n";

/* Parses a number from 1 (0 if zero_ok) to max, or exits with status 2. */
static int number(int opt, const char *s, bool zero_ok, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || v < !zero_ok || v > max) {
		fprintf(stderr, "seed: -%c wants a number from %d to %ld, not '%s' (seed -h for usage)\n",
			opt, !zero_ok, max, s);
		exit(2);
	}
	return (int)v;
}

static struct options parse(int argc, char **argv)
{
	struct options o = {.objects = 40, .limit = 8, .ms = 500};
	int c;
	opterr = 0; /* one line of our own for a bad option, not getopt's */
	while ((c = getopt(argc, argv, ":n:j:t:h")) != -1) {
		switch (c) {
		case 'n': o.objects = number(c, optarg, false, 1000000); break;
		case 'j': o.limit = number(c, optarg, false, 100000); break;
		case 't': o.ms = number(c, optarg, true, 24 * 3600 * 1000); break;
		case 'h': fputs(usage, stdout); exit(0);
		case ':':
			fprintf(stderr, "seed: -%c wants a value (seed -h for usage)\n", optopt);
			exit(2);
		default:
			fprintf(stderr, "seed: unknown option -%c (seed -h for usage)\n", optopt);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "seed: unexpected argument '%s' (seed -h for usage)\n", argv[optind]);
		exit(2);
	}
	return o;
}

/* event lies beside this program: found from /proc/self/exe, so that the
 * program runs from any directory. */
static void find_event(void)
{
	ssize_t n = readlink("/proc/self/exe", event_path, sizeof event_path - 1);
	event_path[n > 0 ? n : 0] = 0;
	char *slash = strrchr(event_path, '/');
	if (!slash || (size_t)(slash - event_path) + sizeof "/event" > sizeof event_path) {
		fprintf(stderr, "seed: cannot find this program's directory\n");
		exit(1);
	}
	strcpy(slash, "/event");
	if (access(event_path, X_OK) < 0) {
		fprintf(stderr, "seed: %s: not found beside this program\n", event_path);
		exit(1);
	}
}

/* Prints what happened to the objects; returns false if one was received,
 * started or finished more than once, or (without Ctrl-C) not once. */
static bool summarize_objects(int n)
{
	int got = 0, ran = 0, done = 0, once = 0, wrong = 0;
	bool all = !atomic_load(&interrupted);
	for (int i = 0; i < n; i++) {
		int r = atomic_load(&received[i]), s = atomic_load(&started[i]),
		    f = atomic_load(&finished[i]);
		got += r, ran += s, done += f;
		once += r == 1 && s == 1 && f == 1;
		if (r > 1 || s > 1 || f > 1 || (all && (r != 1 || s != 1 || f != 1))) {
			if (wrong++ < 5)
				printf("  object-%d: received %d, started %d, finished %d times\n",
				       i, r, s, f);
		}
	}
	printf("  objects: %d received, %d started, %d finished, ", got, ran, done);
	if (wrong)
		printf("%d of them not exactly once\n", wrong);
	else if (once == n)
		printf("each exactly once\n");
	else
		printf("none more than once (Ctrl-C canceled the rest)\n");
	return wrong == 0;
}

int main(int argc, char **argv)
{
	struct options o = parse(argc, argv);
	find_event();
	/* Line by line even into a pipe or a file, so that progress shows as
	 * it happens. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	received = calloc((size_t)o.objects, sizeof *received);
	started = calloc((size_t)o.objects, sizeof *started);
	finished = calloc((size_t)o.objects, sizeof *finished);
	if (!received || !started || !finished) {
		fprintf(stderr, "seed: out of memory\n");
		return 1;
	}

	int fds_before = count_descriptors();
	must(HERD_MAIN(seed(o)), "herd_main");
	int fds_after = count_descriptors();

	printf("Summary:\n");
	bool ok = summarize_objects(o.objects);
	printf("  processes: at most %d at once (events and their leftovers), %d left\n",
	       atomic_load(&most_procs), procs_left);
	printf("  descriptors: %d open before, %d after\n", fds_before, fds_after);
	ok = ok && procs_left == 0 && fds_before == fds_after && fds_before >= 0;
	free(received);
	free(started);
	free(finished);
	return !ok ? 1 : atomic_load(&interrupted) ? 130 : 0;
}
