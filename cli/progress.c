/*
 * progress.c - --progress, --eta and --bar: a line on stderr, redrawn five
 * times a second by a task, only when stderr is a terminal (so that logs
 * and pipes get nothing); and --load and --memfree, which hold back the
 * start of a job while the machine is busy or short of memory.
 *
 * The total is known when every source is a ::: list (the product of the
 * groups' lengths). With --bar or --eta and input from a file or stdin,
 * the run reads the whole input before the first job, as GNU parallel
 * does, and says how many jobs it holds (progress_set_total); --progress
 * alone streams the input and shows counts and rates.
 *
 * `total` is an atomic: the run's first task sets it (once the input is
 * read) while the progress task draws; a line drawn before shows counts.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDRAW (200 * HERD_MSEC)
#define LOAD_POLL (100 * HERD_MSEC)

struct progress {
	const struct opts *o;
	const atomic_ulong *started, *done, *failed;
	_Atomic uint64_t total;  /* 0: unknown (yet) */
	int64_t t0;
	herd_chan *quit;
	herd_wg *ended;
};

/* The number of jobs, when every source is a ::: list; else 0. */
static uint64_t total_jobs(const struct opts *o)
{
	uint64_t total = 1;
	for (int i = 0; i < o->nsrc;) {
		if (!o->src[i].items)
			return 0;
		uint64_t shortest = UINT64_MAX;
		int j = i;
		do {
			if (!o->src[j].items)
				return 0;
			uint64_t n = 0;
			while (o->src[j].items[n])
				n++;
			if (n < shortest)
				shortest = n;
			j++;
		} while (j < o->nsrc && o->src[j].linked);
		total *= shortest;
		i = j;
	}
	long per = o->max_args > 0 ? o->max_args : 1;
	return (total + (uint64_t)per - 1) / (uint64_t)per;
}

static void draw(struct progress *p, bool last)
{
	char line[256];
	unsigned long started = atomic_load(p->started), done = atomic_load(p->done);
	unsigned long failed = atomic_load(p->failed);
	double secs = (herd_now() - p->t0) / 1e9;
	double rate = secs > 0 ? done / secs : 0;
	int n;
	uint64_t total = atomic_load(&p->total);
	if (total && (p->o->bar || p->o->eta)) {
		double frac = (double)done / (double)total;
		double eta = rate > 0 ? (double)(total - done) / rate : 0;
		if (p->o->bar) {
			char bar[31];
			int fill = (int)(frac * 30);
			for (int i = 0; i < 30; i++)
				bar[i] = i < fill ? '#' : '.';
			bar[30] = 0;
			n = snprintf(line, sizeof line, "\r[%s] %3.0f%% %lu/%llu ETA %.0fs ", bar,
				     frac * 100, done, (unsigned long long)total, eta);
		} else {
			n = snprintf(line, sizeof line, "\rETA: %.0fs Left: %llu AVG: %.3fs ", eta,
				     (unsigned long long)(total - done),
				     done ? secs / (double)done : 0.0);
		}
	} else {
		n = snprintf(line, sizeof line, "\r%s: %lu running, %lu done, %lu failed, %.1f/s ",
			     CLI_NAME, started - done, done, failed, rate);
	}
	if (n > 0) {
		ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
		(void)w;
	}
	if (last) {
		ssize_t w = write(2, "\n", 1);
		(void)w;
	}
}

static void progress_task(void *arg)
{
	struct progress *p = *(struct progress **)arg;
	while (herd_chan_recv(p->quit, NULL, herd_deadline(REDRAW)) == HERD_ETIMEDOUT)
		draw(p, false);
	draw(p, true);
	herd_wg_done(p->ended);
}

struct progress *progress_start(const struct opts *o, herd_scope *scope,
				const atomic_ulong *started, const atomic_ulong *done,
				const atomic_ulong *failed)
{
	if (!(o->progress || o->eta || o->bar) || !isatty(2))
		return NULL;
	struct progress *p = calloc(1, sizeof *p);
	if (!p || herd_chan_make(&p->quit, 0, 0) < 0 || herd_wg_new(&p->ended) < 0)
		cli_die("out of memory");
	p->o = o;
	p->started = started;
	p->done = done;
	p->failed = failed;
	atomic_init(&p->total, total_jobs(o));
	p->t0 = herd_now();
	herd_wg_add(p->ended, 1);
	if (HERD_GO(scope, progress_task, p) < 0)
		cli_die("cannot start the progress line");
	return p;
}

bool progress_wants_total(const struct progress *p)
{
	return p && (p->o->bar || p->o->eta) && !atomic_load(&p->total);
}

void progress_set_total(struct progress *p, uint64_t n)
{
	if (p)
		atomic_store(&p->total, n);
}

void progress_finish(struct progress *p)
{
	if (!p)
		return;
	herd_chan_close(p->quit);
	herd_wg_wait(p->ended, HERD_FOREVER);
	herd_chan_free(p->quit);
	herd_wg_free(p->ended);
	free(p);
}

/* ------------------------------------------------------------------ */
/* --load and --memfree                                               */
/* ------------------------------------------------------------------ */

/* Processes running now (not the 1-minute average, which lags a start by
 * a minute): /proc/loadavg's fourth field, less this reader. */
static double running_now(void)
{
	char buf[256];
	FILE *f = fopen("/proc/loadavg", "re");
	if (!f)
		return 0;
	double r = 0;
	if (fgets(buf, sizeof buf, f)) {
		long running, total;
		if (sscanf(buf, "%*s %*s %*s %ld/%ld", &running, &total) == 2)
			r = (double)(running - 1);
	}
	fclose(f);
	return r;
}

/* MemAvailable from /proc/meminfo, in bytes; UINT64_MAX if unknown. */
static uint64_t mem_available(void)
{
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return UINT64_MAX;
	uint64_t v = UINT64_MAX;
	while (fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
			v = kb * 1024;
			break;
		}
	}
	fclose(f);
	return v;
}

int wait_for_room(const struct opts *o, herd_chan *stop)
{
	if (o->load <= 0 && !o->memfree)
		return 0;
	for (;;) {
		bool busy = o->load > 0 && running_now() >= o->load;
		bool short_of_memory = o->memfree && mem_available() < o->memfree;
		if (!busy && !short_of_memory)
			return 0;
		if (herd_chan_recv(stop, NULL, herd_deadline(LOAD_POLL)) != HERD_ETIMEDOUT)
			return -1;
	}
}
