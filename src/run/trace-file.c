/*
 * trace-file.c - HERD_TRACE's file while the program runs: the recorder's
 * chunks (core/trace.c) written out as they are, in the binary form of
 * core/trace-fmt.h, and turned into Chrome trace-event JSON
 * (trace-json.c) once the run ends.
 *
 * Why binary: a busy program records millions of events a second, and
 * their JSON is some 100 bytes each; formatting and writing that much
 * while the program runs took more CPU than the program. A chunk goes out
 * with one write of the bytes the worker stored, some 16 per event.
 *
 * When. At each of its rounds (every few milliseconds while the workers
 * run) the supervisor writes a point (the ticks and the clock, read
 * together), then the names of the sites seen since the last round, then
 * what each worker has published. A program killed mid-run leaves the
 * binary form, whole up to its last round but for the last frame, which
 * readers (herd-trace-html) cut back to its last whole event. herd_run's
 * end writes the rest and converts the file: JSON goes to a new file
 * beside it (PATH.XXXXXX), which then replaces it (rename), so that a
 * kill during the conversion still leaves the binary form whole. If
 * that fails, the file stays binary, with a warning.
 *
 * JSON as it runs. A file that cannot seek (a pipe) gets the JSON as the
 * rounds go, converted as they are written out (the cost the binary form
 * avoids). So does the file of a run that is ending by a fatal signal or
 * for a deadlock, which the process may not live to convert at the end:
 * it is converted at once, and after each round's events comes a closing
 * (an event viewers ignore and the "]}") that the next round writes over,
 * so that the file is valid JSON between rounds. A reader of a pipe that
 * goes away makes the writes fail (EPIPE) without the SIGPIPE that would
 * end the run.
 *
 * Direct writes. A regular file is written with O_DIRECT where its file
 * system allows: a round's frames gather in a buffer of the supervisor's
 * and go to the disk in whole blocks, the last one padded with zeros and
 * written again, with what follows it, at the next round. Written through
 * the page cache instead, a busy trace (skynet's, some 200 MB a second)
 * cost the supervisor about as much CPU as the workers spent recording
 * it, most of it the kernel's copy into fresh pages of the cache, and on
 * two cores it took that time from a worker. The padding reads as empty
 * frames (a head of zeros); herd_run's end cuts it off. A file system that
 * refuses a direct write (see herd__os_direct_on) gets the rest through
 * the page cache.
 *
 * Whole chunks. Most of a busy trace is chunks that filled up between
 * two rounds: those go out from the chunk's own memory, with no copy into
 * the stage (the copy was a third of the supervisor's cost on skynet).
 * A chunk's events lie in a block-aligned region with room for a frame
 * head before them and a padding frame's head after them (trace.h); the
 * writer fills both in and writes the regions of a worker's full chunks
 * with one pwritev, after the staged bytes, whose last block's padding
 * then stays in the file (empty frames, read as nothing).
 *
 * Locks: none of its own. Only the supervisor's thread writes, during the
 * run, and herd_run's at its end, after the supervisor has returned. The
 * recorder's lock is taken to read its list of sites.
 */
#include "run/run.h"
#include "run/trace-json.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLOCK HERD__OS_DIRECT_ALIGN /* of a direct write's offset, length, memory */
#define STAGE_MAX (1u << 20) /* staged bytes that go out before the round's end */
#define WHOLE_MAX 64 /* full chunks written out in one go */

struct herd__trace_out {
	int fd;                 /* the file (or the pipe) written */
	int rfd;                /* the binary file, read back, or -1 */
	char *path;
	bool json;              /* JSON as it runs */
	bool stays_binary;      /* the conversion failed: not tried again */
	bool seekable;          /* JSON: the closing is written over */
	int err;                /* the first write's failure, -errno */
	off_t off;              /* JSON on a file: where the next goes */
	herd__tconv *conv;      /* JSON: the converter */
	uint32_t sites_done;    /* rt->trace->sites written so far */
	/* O_DIRECT (see the top): the frames not yet written whole. */
	bool direct;
	unsigned char *stage;   /* BLOCK-aligned */
	size_t staged, stage_cap;
	off_t flushed;          /* the file's bytes before stage[0] */
};

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

/* write(2) to a pipe or a socket, whose reader may have gone: EPIPE, and
 * not the SIGPIPE, which herd takes on this thread as a reason to end the
 * run (run/signal.c). The signal is blocked around the write and, if the
 * write raised it, taken back; one that was pending already is left. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t k = write(fd, buf, len);
	int e = errno;
	if (k < 0 && e == EPIPE && !was_pending) {
		static const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return k;
}

/* JSON: writes len bytes at o->off (on a file) and moves past them if
 * `advance`. */
static void json_write(struct herd__trace_out *o, const char *buf, size_t len, bool advance)
{
	off_t at = o->off;
	for (size_t done = 0; done < len && !o->err;) {
		ssize_t k = o->seekable ? pwrite(o->fd, buf + done, len - done, at)
					: write_no_sigpipe(o->fd, buf + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			o->err = k < 0 ? -errno : -EIO;
		} else {
			done += (size_t)k;
			at += k;
		}
	}
	if (advance)
		o->off = at;
}

static int json_out(void *ctx, const char *buf, size_t len)
{
	struct herd__trace_out *o = ctx;
	json_write(o, buf, len, true);
	return o->err;
}

/* What ends the JSON until the next round writes over it. */
static void close_for_now(struct herd__trace_out *o)
{
	static const char closing[] =
		"{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"herd_trace_open\",\"args\":{}}\n]}\n";
	herd__tconv_flush(o->conv);
	if (o->seekable)
		json_write(o, closing, sizeof closing - 1, false);
}

static void bin_write(struct herd__trace_out *o, struct iovec *iov, int n);

/* O_DIRECT: iov's bytes (len in all) after the staged ones; false if
 * memory ran out. */
static bool stage_add(struct herd__trace_out *o, const struct iovec *iov, int n, size_t len)
{
	if (o->staged + len + BLOCK > o->stage_cap) {
		size_t cap = 2 * o->stage_cap > o->staged + len + BLOCK ? 2 * o->stage_cap
									: o->staged + len + BLOCK;
		cap = (cap + BLOCK - 1) & ~(size_t)(BLOCK - 1);
		void *p;
		if (posix_memalign(&p, BLOCK, cap))
			return false;
		if (o->staged)
			memcpy(p, o->stage, o->staged);
		free(o->stage);
		o->stage = p;
		o->stage_cap = cap;
	}
	for (int i = 0; i < n; i++) {
		memcpy(o->stage + o->staged, iov[i].iov_base, iov[i].iov_len);
		o->staged += iov[i].iov_len;
	}
	return true;
}

/* O_DIRECT: the file ends where the staged bytes do (no padding). */
static void cut_padding(struct herd__trace_out *o)
{
	if (o->direct && !o->err && ftruncate(o->fd, o->flushed + (off_t)o->staged) < 0)
		o->err = -errno;
}

/* Gives O_DIRECT up: the staged bytes go through the page cache, and so
 * does the rest (bin_write's writev at the file's end). */
static void direct_off(struct herd__trace_out *o)
{
	cut_padding(o);
	o->direct = false;
	int rc = herd__os_direct_off(o->fd);
	if (!o->err && rc)
		o->err = rc;
	else if (!o->err && lseek(o->fd, o->flushed, SEEK_SET) < 0)
		o->err = -errno;
	struct iovec iov = {o->stage, o->staged};
	unsigned char *stage = o->stage;
	o->stage = NULL;
	o->staged = o->stage_cap = 0;
	if (iov.iov_len)
		bin_write(o, &iov, 1);
	free(stage);
}

/* O_DIRECT: writes the staged bytes out, the last block padded with zeros;
 * keeps that block's bytes, to be written again with the next ones. */
static void stage_flush(struct herd__trace_out *o)
{
	if (!o->direct || o->err || !o->staged)
		return;
	size_t len = (o->staged + BLOCK - 1) & ~(size_t)(BLOCK - 1);
	memset(o->stage + o->staged, 0, len - o->staged);
	for (size_t done = 0; done < len;) {
		ssize_t k = pwrite(o->fd, o->stage + done, len - done, o->flushed + (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL) { /* not for this file, after all */
			direct_off(o);
			return;
		}
		if (k <= 0 || k % BLOCK) { /* short: the disk is full, or failing */
			o->err = k < 0 ? -errno : -EIO;
			return;
		}
		done += (size_t)k;
	}
	size_t whole = o->staged & ~(size_t)(BLOCK - 1);
	memmove(o->stage, o->stage + whole, o->staged - whole);
	o->flushed += (off_t)whole;
	o->staged -= whole;
}

/* Binary: the whole of iov (n of them, changed) at the file's end. */
static void bin_write(struct herd__trace_out *o, struct iovec *iov, int n)
{
	if (o->direct) {
		size_t len = 0;
		for (int i = 0; i < n; i++)
			len += iov[i].iov_len;
		if (stage_add(o, iov, n, len)) {
			if (o->staged >= STAGE_MAX) /* a long round: not all of it twice */
				stage_flush(o);
			return;
		}
		direct_off(o); /* no memory for it: the slow way */
	}
	while (n && !o->err) {
		ssize_t k = writev(o->fd, iov, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			o->err = k < 0 ? -errno : -EIO;
			return;
		}
		for (; n && (size_t)k >= iov->iov_len; iov++, n--)
			k -= (ssize_t)iov->iov_len;
		if (n) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
}

/* One frame: to the file, or to the converter. */
static void frame(struct herd__trace_out *o, unsigned type, unsigned lane,
		  const void *payload, size_t len)
{
	if (o->json) {
		int rc = herd__tconv_frame(o->conv, type, lane, payload, len);
		if (rc && !o->err)
			o->err = rc;
		return;
	}
	static const char pad[8];
	herd__trf_head h = {.type = (uint8_t)type, .lane = (uint16_t)lane,
			    .len = (uint32_t)len};
	struct iovec iov[3] = {{&h, sizeof h}, {(void *)payload, len},
			       {(void *)pad, -len & 7}};
	bin_write(o, iov, 3);
}

/* ------------------------------------------------------------------ */
/* Rounds                                                             */
/* ------------------------------------------------------------------ */

/* Names the sites the workers have seen since the last time. */
static void sites(struct herd__trace_out *o, herd__trace *tr)
{
	uint32_t n = atomic_load_explicit(&tr->nsites, mo_acquire);
	for (; o->sites_done < n; o->sites_done++) {
		herd__mutex_lock(&tr->lock); /* the list may move */
		herd__trace_site s = tr->sites[o->sites_done];
		herd__mutex_unlock(&tr->lock);
		struct {
			uint64_t site;
			char name[256];
		} f = {.site = s.site};
		if (s.pc)
			herd__symbolize(s.site - 1, f.name, sizeof f.name);
		else
			strncpy(f.name, (const char *)s.site, sizeof f.name - 1);
		frame(o, HERD__TRF_SITE, 0, &f, 8 + strlen(f.name) + 1);
	}
}

/* O_DIRECT: the staged bytes go out padded to a whole block, padding that
 * stays (empty frames), so that what follows starts on a block. */
static void stage_commit(struct herd__trace_out *o)
{
	stage_flush(o); /* keeps the last block's bytes */
	if (!o->direct || o->err || !o->staged)
		return;
	o->flushed += BLOCK;
	o->staged = 0;
}

/* O_DIRECT: the full chunks that the writer has not read yet, from b's
 * first, written out as they are, in one write: each region becomes a
 * frame of events and a padding frame over its room left (trace.h). Then
 * they are read: the next herd__trace_next_chunk gives them back. */
static void whole_chunks(struct herd__trace_out *o, herd__trace *tr, herd__trace_buf *b,
			 unsigned lane)
{
	struct iovec iov[WHOLE_MAX];
	uint32_t used[WHOLE_MAX];
	int n = 0;
	herd__trace_chunk *c = b->head;
	for (; c && n < WHOLE_MAX && (n || b->read == 0); n++) {
		herd__trace_chunk *next = atomic_load_explicit(&c->next, mo_acquire);
		if (!next)
			break; /* the producer's: partly written */
		/* After `next`: all of its events, and their sites, are handed
		 * over. */
		used[n] = atomic_load_explicit(&c->used, mo_acquire);
		unsigned char *r = herd__trace_region(c);
		herd__trf_head h = {.type = HERD__TRF_EVENTS, .lane = (uint16_t)lane,
				    .len = used[n]};
		herd__trf_head pad = {.len = c->size - used[n]};
		memcpy(r, &h, sizeof h);
		memcpy(c->data + used[n], &pad, sizeof pad);
		iov[n] = (struct iovec){r, HERD__TRACE_REGION};
		c = next;
	}
	if (!n)
		return;
	sites(o, tr);
	stage_commit(o);
	int i = 0;
	while (i < n && o->direct && !o->err) {
		ssize_t k = pwritev(o->fd, iov + i, n - i, o->flushed);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL) { /* not for this file, after all */
			direct_off(o);
			break;
		}
		if (k <= 0 || k % HERD__TRACE_REGION) { /* the disk is full, or failing */
			o->err = k < 0 ? -errno : -EIO;
			break;
		}
		o->flushed += k;
		i += (int)(k / HERD__TRACE_REGION);
	}
	if (i < n && !o->direct && !o->err) /* given up: the page cache's way */
		bin_write(o, iov + i, n - i);
	for (int j = 0; j < n; j++) {
		b->read = used[j];
		herd__trace_next_chunk(b);
	}
}

/* Writes what buffer b has published. */
static void drain(struct herd__trace_out *o, herd__trace *tr, herd__trace_buf *b,
		  unsigned lane)
{
	if (o->direct)
		whole_chunks(o, tr, b, lane);
	herd__trace_chunk *c;
	while ((c = herd__trace_next_chunk(b))) {
		uint32_t used = atomic_load_explicit(&c->used, mo_acquire);
		if (b->read >= used)
			return; /* nothing new, and no next chunk yet */
		/* After `used`: the sites of its events were handed over. */
		sites(o, tr);
		frame(o, HERD__TRF_EVENTS, lane, c->data + b->read, used - b->read);
		b->read = used;
	}
}

static void round_out(struct herd__trace_out *o, herd__rt *rt)
{
	herd__trf_point p = {herd__os_ticks(), herd_now()};
	frame(o, HERD__TRF_POINT, 0, &p, sizeof p);
	herd__trace *tr = rt->trace;
	drain(o, tr, &tr->other, 0);
	for (unsigned i = 0; i < rt->nworkers; i++)
		drain(o, tr, &tr->bufs[i], i + 1);
	stage_flush(o);
}

/* ------------------------------------------------------------------ */
/* The conversion                                                     */
/* ------------------------------------------------------------------ */

/* The binary file so far becomes JSON in PATH.XXXXXX, which replaces it;
 * from then on the JSON goes on as the rounds go. On a failure, the file
 * stays binary (and o->err is left as it was). */
static int to_json(struct herd__trace_out *o)
{
	cut_padding(o);
	struct stat st;
	if (fstat(o->rfd, &st) < 0)
		return -errno;
	size_t len = (size_t)st.st_size;
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, o->rfd, 0);
	if (map == MAP_FAILED)
		return -errno;
	size_t plen = strlen(o->path);
	char *tmp = malloc(plen + 8);
	int tfd = -1, rc = tmp ? 0 : -ENOMEM;
	if (tmp) {
		memcpy(tmp, o->path, plen);
		memcpy(tmp + plen, ".XXXXXX", 8);
		tfd = mkostemp(tmp, O_CLOEXEC);
		if (tfd < 0 || fchmod(tfd, st.st_mode & 07777) < 0)
			rc = -errno;
	}
	herd__tconv *conv = rc ? NULL : herd__tconv_new(json_out, o);
	if (!rc && !conv)
		rc = -ENOMEM;
	int bin_fd = o->fd, bin_err = o->err;
	if (!rc) {
		o->fd = tfd;
		o->seekable = true;
		o->off = 0;
		o->err = 0;
		o->conv = conv;
		bool cut;
		rc = herd__tconv_file(conv, map, len, &cut);
		if (!rc)
			rc = herd__tconv_flush(conv);
		if (!rc && rename(tmp, o->path) < 0)
			rc = -errno;
	}
	munmap(map, len);
	if (rc) {
		if (tfd >= 0) {
			unlink(tmp);
			close(tfd);
		}
		herd__tconv_free(conv);
		o->conv = NULL;
		o->fd = bin_fd;
		o->err = bin_err;
		o->seekable = false;
	} else {
		close(bin_fd);
		close(o->rfd);
		o->rfd = -1;
		o->json = true;
		o->direct = false; /* its staged bytes are in the JSON now */
		close_for_now(o);
	}
	free(tmp);
	return rc;
}

/* A run that may end without herd_run's end: a fatal signal, a deadlock. */
static bool ending(herd__rt *rt)
{
	return atomic_load_explicit(&rt->run->sig.fatal, mo_relaxed) ||
	       rt->run->deadlock.found;
}

/* ------------------------------------------------------------------ */
/* The file                                                           */
/* ------------------------------------------------------------------ */

/* The META frame: what the converter needs besides the events. */
static int meta(struct herd__trace_out *o, herd__rt *rt)
{
	size_t len = sizeof(herd__trf_meta);
	for (unsigned i = 0; i < HERD__WHY_COUNT; i++)
		len += strlen(herd__why_name(i)) + 1;
	char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	herd__trf_meta m = {
		.nworkers = rt->nworkers, .pid = (int32_t)rt->pid, .seed = rt->seed,
		.start = {rt->trace->start, herd_now()}, .run_ns = rt->start_ns,
		.version = HERD_VERSION_MAJOR << 16 | HERD_VERSION_MINOR << 8 |
			   HERD_VERSION_PATCH,
		.nwhy = HERD__WHY_COUNT,
	};
	memcpy(buf, &m, sizeof m);
	char *w = buf + sizeof m;
	for (unsigned i = 0; i < HERD__WHY_COUNT; i++)
		w = stpcpy(w, herd__why_name(i)) + 1;
	if (!o->json) {
		struct iovec iov = {HERD__TRB_MAGIC, 8};
		bin_write(o, &iov, 1);
	}
	frame(o, HERD__TRF_META, 0, buf, len);
	free(buf);
	stage_flush(o);
	if (o->json)
		close_for_now(o);
	return 0;
}

static void out_free(struct herd__trace_out *o)
{
	if (o->rfd >= 0)
		close(o->rfd);
	herd__tconv_free(o->conv);
	free(o->stage);
	free(o->path);
	free(o);
}

/* Opens path: O_NONBLOCK, so that a FIFO nobody reads fails (ENXIO) rather
 * than holding herd_run up for ever; the writes then block again. A file
 * is opened a second time, to be read back. */
static int out_open(struct herd__trace_out *o)
{
	o->fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
	if (o->fd < 0)
		return -errno;
	struct stat st, rst;
	int rc = fcntl(o->fd, F_SETFL, 0) < 0 || fstat(o->fd, &st) < 0 ? -errno : 0;
	o->seekable = !rc && S_ISREG(st.st_mode);
	o->json = !o->seekable;
	if (!rc && o->seekable) {
		o->rfd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (o->rfd < 0 || fstat(o->rfd, &rst) < 0)
			rc = -errno;
		else if (rst.st_ino != st.st_ino || rst.st_dev != st.st_dev)
			rc = -ESTALE; /* replaced in between */
		o->seekable = false; /* seeks matter for JSON only */
		/* Else through the page cache. */
		o->direct = !rc && herd__os_direct_on(o->fd) == 0;
	}
	if (!rc && o->json && !(o->conv = herd__tconv_new(json_out, o)))
		rc = -ENOMEM;
	if (rc)
		close(o->fd);
	return rc;
}

int herd__trace_start(herd__rt *rt, const char *path)
{
	struct herd__trace_out *o = calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->rfd = -1;
	o->path = strdup(path);
	int rc = o->path ? herd__trace_new(rt) : -ENOMEM;
	if (!rc && (rc = out_open(o)) != 0)
		herd__trace_free(rt);
	if (!rc && (rc = meta(o, rt)) != 0) {
		close(o->fd);
		herd__trace_free(rt);
	}
	if (rc) {
		out_free(o);
		return rc;
	}
	rt->run->trace_out = o;
	return 0;
}

void herd__trace_flush(herd__rt *rt)
{
	struct herd__trace_out *o = rt->run->trace_out;
	if (!o)
		return;
	round_out(o, rt);
	if (!o->json && !o->err && !o->stays_binary && ending(rt))
		o->stays_binary = to_json(o) != 0;
	else if (o->json)
		close_for_now(o);
}

void herd__trace_end(herd__rt *rt)
{
	struct herd__trace_out *o = rt->run->trace_out;
	if (!o)
		return;
	/* The workers have stopped: every event is published. */
	round_out(o, rt);
	int rc = o->json || o->err ? 0 : to_json(o);
	uint64_t lost = atomic_load_explicit(&rt->trace->other.lost, mo_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++)
		lost += atomic_load_explicit(&rt->trace->bufs[i].lost, mo_relaxed);
	if (o->json) {
		herd__tconv_end(o->conv, herd_now(), lost);
		if (o->seekable && !o->err && ftruncate(o->fd, o->off) < 0)
			o->err = -errno; /* the longer closing of the rounds would remain */
	}
	if (o->err)
		fprintf(stderr, "herd: HERD_TRACE: writing the trace failed: %s\n",
			strerror(-o->err));
	else if (rc)
		fprintf(stderr, "herd: HERD_TRACE: %s stays in its binary form (%s); "
			"herd-trace-html --json converts it\n", o->path, strerror(-rc));
	close(o->fd);
	herd__trace_free(rt);
	rt->run->trace_out = NULL;
	out_free(o);
}
