/*
 * jobwait.c - waiting for a job's run (on whatever backend), and ending it early: on its
 * --timeout (SECS, or N% of the median run time of the jobs that
 * succeeded so far), when the run stops (`stop`: --term-seq on the job's
 * whole tree) or is killed (`kill`: SIGKILL at once).
 *
 * The median is kept as two heaps, the lower half's largest on top of `lo`
 * (a max-heap) and the upper half's smallest on top of `hi` (a min-heap),
 * `lo` holding as many or one more: O(log n) a job. Its `lock` protects
 * the heaps: jobs end on any worker.
 */
#define _GNU_SOURCE
#include "backend.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct median {
	pthread_mutex_t lock;
	double *lo, *hi;
	size_t nlo, caplo, nhi, caphi;
};

struct median *median_new(void)
{
	struct median *m = calloc(1, sizeof *m);
	if (!m)
		cli_die("out of memory");
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void median_free(struct median *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->lo);
	free(m->hi);
	free(m);
}

static void heap_push(double **h, size_t *n, size_t *cap, double v, bool max)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*h = xrealloc(*h, *cap * sizeof **h);
	}
	size_t i = (*n)++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (max ? (*h)[up] >= v : (*h)[up] <= v)
			break;
		(*h)[i] = (*h)[up];
		i = up;
	}
	(*h)[i] = v;
}

static double heap_pop(double *h, size_t *n, bool max)
{
	double top = h[0], v = h[--*n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && (max ? h[c + 1] > h[c] : h[c + 1] < h[c]))
			c++;
		if (max ? v >= h[c] : v <= h[c])
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
	return top;
}

void median_add(struct median *m, double t)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	if (!m->nlo || t <= m->lo[0])
		heap_push(&m->lo, &m->nlo, &m->caplo, t, true);
	else
		heap_push(&m->hi, &m->nhi, &m->caphi, t, false);
	if (m->nlo > m->nhi + 1)
		heap_push(&m->hi, &m->nhi, &m->caphi, heap_pop(m->lo, &m->nlo, true), false);
	else if (m->nhi > m->nlo)
		heap_push(&m->lo, &m->nlo, &m->caplo, heap_pop(m->hi, &m->nhi, false), true);
	pthread_mutex_unlock(&m->lock);
}

/* The median so far, in seconds; 0 before any job has succeeded. */
static double median_get(struct median *m)
{
	pthread_mutex_lock(&m->lock);
	double v = m->nlo ? m->lo[0] : 0;
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* Waits until the run ends, `kill` closes, or the deadline: 0, 1, or
 * HERD_ETIMEDOUT. */
static int wait_exit_or_kill(const struct job_ends *e, const struct job_proc *jp,
			     int64_t deadline)
{
	herd_case cs[2] = {HERD_CASE_RECV(jp->ops->done(jp->run), NULL),
			   HERD_CASE_RECV(e->kill, NULL)};
	return herd_select(cs, 2, deadline);
}

/* A signal to the run's whole tree, on the job's lane of the trace. */
static void signal_tree(const struct trace_lane *lane, const struct job_proc *jp, int sig,
			const char *why)
{
	trace_signal(lane, sig, why);
	jp->ops->signal(jp->run, sig);
}

/* --term-seq on the run's whole tree, then SIGKILL whatever the sequence
 * left; returns once it has ended (or the wait is canceled: collect
 * makes sure). */
static void end_tree(const struct job_ends *e, const struct trace_lane *lane,
		     const struct job_proc *jp, const char *why)
{
	const struct opts *o = e->o;
	for (int i = 0; i < o->nterm; i++) {
		signal_tree(lane, jp, o->term[i].sig, why);
		int k = wait_exit_or_kill(e, jp, herd_deadline(o->term[i].wait_ns));
		if (k == 0)
			return;
		if (k == 1) {
			why = "kill";
			break; /* a second signal: at once */
		}
	}
	signal_tree(lane, jp, SIGKILL, why);
	herd_chan_recv(jp->ops->done(jp->run), NULL, HERD_FOREVER);
}

/* The deadline of a job started at `start` (herd_now()), or FOREVER. */
static int64_t job_deadline(const struct job_ends *e, int64_t start)
{
	const struct opts *o = e->o;
	if (o->timeout_ns)
		return start + o->timeout_ns;
	if (o->timeout_pct > 0) {
		double m = median_get(e->median);
		/* Until a job has succeeded there is no median: look again in a
		 * second. */
		if (m <= 0)
			return herd_now() + HERD_SEC;
		return start + (int64_t)(m * o->timeout_pct / 100.0 * 1e9);
	}
	return HERD_FOREVER;
}

void job_wait(const struct job_ends *e, const struct trace_lane *lane, const struct job_proc *jp,
	      int64_t start, bool *timed_out, bool *stopped)
{
	herd_case cs[3] = {HERD_CASE_RECV(jp->ops->done(jp->run), NULL),
			   HERD_CASE_RECV(e->stop, NULL), HERD_CASE_RECV(e->kill, NULL)};
	for (;;) {
		int64_t deadline = job_deadline(e, start);
		int k = herd_select(cs, 3, deadline);
		if (k == 0)
			return;
		if (k == HERD_ETIMEDOUT) {
			if (e->o->timeout_pct > 0 && job_deadline(e, start) > herd_now())
				continue; /* the median moved, or there was none */
			*timed_out = true;
			end_tree(e, lane, jp, "timeout");
			return;
		}
		*stopped = true;
		if (k == 1) {
			end_tree(e, lane, jp, "stop");
			return;
		}
		signal_tree(lane, jp, SIGKILL, "kill");
		return;
	}
}
