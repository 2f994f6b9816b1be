/*
 * test-fd-budget.c - white-box tests of the descriptor budget's bitmap
 * (io/fd-budget.c): the marks of the descriptors herd creates, in pages of
 * FD_PAGE_BITS made on first use, and the open and peak counters, through
 * herd__fd_track, herd__fd_close and herd__fd_close_quiet. The runtime is
 * a fake with only its I/O state; herd__fd_init raises the soft
 * RLIMIT_NOFILE to the hard limit (and herd__fd_fini restores it), so the
 * cases first raise the hard limit where they may (as root, to
 * fs.nr_open), for descriptor numbers in the millions. Descriptors that
 * the code closes are real: a pipe's end dup2'd onto the number.
 *
 * Named unit-fd-budget.*: `make test-valgrind` skips budget tests
 * (Valgrind refuses to change RLIMIT_NOFILE).
 */
#include "io/io.h"

#include "unit.h"

#include <sys/resource.h>

/* fd-budget.c's page size, in descriptors (checked against npages). */
#define FD_PAGE_BITS 4096u

static herd__rt *rt;
static int pipe_end;   /* a descriptor to dup2 onto numbers */
static rlim_t soft_before;

static long nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	long n = 0;
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

/* A fake runtime with the budget initialised; the soft limit lowered first
 * (to 1024, if the hard one is higher) so that init raises it. */
static void setup(void)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	long nr = nr_open();
	if (nr > 0 && rl.rlim_max != RLIM_INFINITY && (rlim_t)nr > rl.rlim_max) {
		struct rlimit up = {rl.rlim_cur, (rlim_t)nr};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur > 1024 && rl.rlim_max > 1024) {
		rl.rlim_cur = 1024;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	soft_before = rl.rlim_cur;
	int p[2];
	CHECK(pipe(p) == 0);
	pipe_end = p[0];

	rt = unit_zalloc(sizeof *rt);
	rt->io = unit_zalloc(sizeof *rt->io);
	herd__mutex_init(&rt->io->fd.lock, HERD__RANK_FD);
	CHECK_OK(herd__fd_init(rt));
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK_EQ(rt->io->fd.limit_at_start, soft_before);
	CHECK_EQ(rt->io->fd.limit, rl.rlim_cur);
	CHECK_EQ(rt->io->fd.raised, rl.rlim_cur != soft_before);
	CHECK_EQ(rt->io->fd.npages,
		 ((size_t)rt->io->fd.limit + FD_PAGE_BITS - 1) / FD_PAGE_BITS);
}

static void teardown(void)
{
	herd__fd_fini(rt);
	CHECK(rt->io->fd.pages == NULL);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK_EQ(rl.rlim_cur, soft_before);
	free(rt->io);
	free(rt);
}

static _Atomic uint64_t *page(size_t pg)
{
	CHECK(pg < rt->io->fd.npages);
	return atomic_load(&rt->io->fd.pages[pg]);
}

static bool marked(int fd)
{
	_Atomic uint64_t *p = page((size_t)fd / FD_PAGE_BITS);
	if (!p)
		return false;
	return atomic_load(&p[(fd % FD_PAGE_BITS) / 64]) >> (fd % 64) & 1;
}

/* Marks in the whole bitmap, and pages made. */
static size_t marks(size_t *npages)
{
	size_t n = 0, pages = 0;
	for (size_t pg = 0; pg < rt->io->fd.npages; pg++) {
		_Atomic uint64_t *p = page(pg);
		if (!p)
			continue;
		pages++;
		for (size_t w = 0; w < FD_PAGE_BITS / 64; w++)
			n += (size_t)__builtin_popcountll(atomic_load(&p[w]));
	}
	if (npages)
		*npages = pages;
	return n;
}

static long nopen(void)
{
	return atomic_load(&rt->io->fd.open);
}

static long npeak(void)
{
	return atomic_load(&rt->io->fd.peak);
}

static uint32_t nreleased(void)
{
	return atomic_load(&rt->io->fd.released);
}

/* A real descriptor at number fd. */
static void make_fd(int fd)
{
	CHECK(dup2(pipe_end, fd) == fd);
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* Limit, and pages, as setup found them. */
TEST(init_fini)
{
	setup();
	size_t pages;
	CHECK_EQ(marks(&pages), 0);
	CHECK_EQ(pages, 0); /* nothing made before first use */
	CHECK_EQ(nopen(), 0);
	teardown();
}

/* Marks land in the right bit of the right page, on both sides of page
 * and word boundaries; only the pages used are made. */
TEST(marks_across_pages)
{
	setup();
	static const int fds[] = {5, 63, 64, 127, 128, FD_PAGE_BITS - 1, FD_PAGE_BITS,
				  FD_PAGE_BITS + 1, 2 * FD_PAGE_BITS - 1};
	enum { N = sizeof fds / sizeof fds[0] };
	if (rt->io->fd.limit < 2 * FD_PAGE_BITS)
		TEST_SKIP("RLIMIT_NOFILE below 8192");
	for (size_t i = 0; i < N; i++) {
		CHECK(!marked(fds[i]));
		herd__fd_track(rt, fds[i]);
		CHECK(marked(fds[i]));
		CHECK_EQ(nopen(), i + 1);
		CHECK_EQ(npeak(), i + 1);
	}
	size_t pages;
	CHECK_EQ(marks(&pages), N);
	CHECK_EQ(pages, 2);
	CHECK(!marked(4) && !marked(6) && !marked(62) && !marked(65));
	CHECK(!marked(FD_PAGE_BITS - 2) && !marked(FD_PAGE_BITS + 2));

	/* Tracking a marked descriptor again counts nothing. */
	herd__fd_track(rt, 64);
	CHECK_EQ(nopen(), N);
	CHECK_EQ(marks(NULL), N);

	/* Closing clears exactly its mark, and closes it. */
	for (size_t i = 0; i < N; i++) {
		make_fd(fds[i]);
		CHECK_EQ(herd__fd_close(rt, fds[i]), 0);
		CHECK(!is_open(fds[i]));
		CHECK(!marked(fds[i]));
		CHECK_EQ(nopen(), N - i - 1);
		CHECK_EQ(marks(NULL), N - i - 1);
		CHECK_EQ(nreleased(), i + 1);
		for (size_t j = i + 1; j < N; j++)
			CHECK(marked(fds[j]));
	}
	CHECK_EQ(npeak(), N);
	/* Pages stay until fini. */
	CHECK_EQ(marks(&pages), 0);
	CHECK_EQ(pages, 2);
	teardown();
}

/* The top of the limit: its page is made alone; numbers beyond the pages
 * (or negative) are not counted. */
TEST(huge_numbers)
{
	setup();
	int top = (int)rt->io->fd.limit - 1;
	size_t npages = rt->io->fd.npages;
	printf("limit %ld, %zu pages\n", rt->io->fd.limit, npages);
	herd__fd_track(rt, top);
	CHECK(marked(top));
	CHECK(page((size_t)top / FD_PAGE_BITS) != NULL);
	size_t pages;
	CHECK_EQ(marks(&pages), 1);
	CHECK_EQ(pages, 1);
	for (size_t pg = 0; pg + 1 < npages; pg++)
		CHECK(page(pg) == NULL);

	/* A number in the last page past the limit is still tracked (its page
	 * exists); one past the last page is not, nor a negative one. */
	int beyond = (int)(npages * FD_PAGE_BITS);
	herd__fd_track(rt, beyond);
	herd__fd_track(rt, beyond + 12345);
	herd__fd_track(rt, INT_MAX);
	herd__fd_track(rt, -1);
	herd__fd_track(rt, INT_MIN);
	CHECK_EQ(nopen(), 1);
	CHECK_EQ(marks(&pages), 1);
	CHECK_EQ(pages, 1);

	/* A middle page, on its own. */
	int mid = (int)(npages / 2 * FD_PAGE_BITS + 77);
	if (mid < top) {
		herd__fd_track(rt, mid);
		CHECK_EQ(marks(&pages), 2);
		CHECK_EQ(pages, npages > 2 ? 2 : 1);
		make_fd(mid);
		CHECK_EQ(herd__fd_close(rt, mid), 0);
		CHECK(!is_open(mid));
	}

	make_fd(top);
	CHECK_EQ(herd__fd_close(rt, top), 0);
	CHECK(!is_open(top));
	CHECK(!marked(top));
	CHECK_EQ(nopen(), 0);
	CHECK_EQ(npeak(), mid < top ? 2 : 1);
	teardown();
}

/* open and peak; a close of a descriptor herd did not mark closes it but
 * counts nothing; a quiet close uncounts without a release. */
TEST(counters)
{
	setup();
	const int base = 200;
	if (rt->io->fd.limit < base + 64)
		TEST_SKIP("RLIMIT_NOFILE too low");
	for (int i = 0; i < 10; i++)
		herd__fd_track(rt, base + i);
	CHECK_EQ(nopen(), 10);
	CHECK_EQ(npeak(), 10);
	for (int i = 0; i < 4; i++) {
		make_fd(base + i);
		CHECK_EQ(herd__fd_close(rt, base + i), 0);
	}
	CHECK_EQ(nopen(), 6);
	CHECK_EQ(npeak(), 10);
	CHECK_EQ(nreleased(), 4);
	for (int i = 0; i < 3; i++)
		herd__fd_track(rt, base + i); /* the numbers again */
	CHECK_EQ(nopen(), 9);
	CHECK_EQ(npeak(), 10);
	for (int i = 20; i < 25; i++)
		herd__fd_track(rt, base + i);
	CHECK_EQ(nopen(), 14);
	CHECK_EQ(npeak(), 14);

	/* Not herd's: closed, not counted. */
	make_fd(base + 40);
	CHECK_EQ(herd__fd_close(rt, base + 40), 0);
	CHECK(!is_open(base + 40));
	CHECK_EQ(nopen(), 14);
	CHECK_EQ(nreleased(), 4);
	/* Not herd's, not open: the error, nothing counted. */
	CHECK_EQ(herd__fd_close(rt, base + 41), -EBADF);
	CHECK_EQ(nopen(), 14);
	CHECK_EQ(nreleased(), 4);
	/* Without a runtime: only the close. */
	make_fd(base + 42);
	CHECK_EQ(herd__fd_close(NULL, base + 42), 0);
	CHECK(!is_open(base + 42));

	/* Quiet: uncounted, no release. */
	make_fd(base + 5);
	CHECK_EQ(herd__fd_close_quiet(rt, base + 5), 0);
	CHECK(!is_open(base + 5));
	CHECK(!marked(base + 5));
	CHECK_EQ(nopen(), 13);
	CHECK_EQ(nreleased(), 4);
	/* A second close of it: not herd's any more. */
	CHECK_EQ(herd__fd_close(rt, base + 5), -EBADF);
	CHECK_EQ(nopen(), 13);
	CHECK_EQ(nreleased(), 4);

	/* Close the rest: back to 0, the peak stays. */
	for (int i = 0; i < 64; i++) {
		if (marked(base + i)) {
			make_fd(base + i);
			CHECK_EQ(herd__fd_close(rt, base + i), 0);
		}
	}
	CHECK_EQ(nopen(), 0);
	CHECK_EQ(npeak(), 14);
	CHECK_EQ(nreleased(), 4 + 13);
	CHECK_EQ(marks(NULL), 0);
	teardown();
}

/* Threads marking descriptors of the same fresh pages at once: each page
 * made once (a second one would lose the marks set in the first, and
 * leak), every mark and count kept. Each round starts from a new bitmap,
 * and every thread marks one descriptor of each page first, so that the
 * threads meet at every page's making. */
#define MARKERS 2
#if TEST_UNDER_TSAN
#define ROUNDS 100
#else
#define ROUNDS 1000
#endif
static int span;
static _Atomic int arrived;

static void *marker(void *arg)
{
	int me = (int)(intptr_t)arg;
	/* Spin, rather than sleep in a barrier, to start within a moment of
	 * each other. */
	atomic_fetch_add(&arrived, 1);
	for (unsigned i = 1; atomic_load(&arrived) < MARKERS; i++) {
		herd__cpu_relax();
		if (i % 1024 == 0)
			sched_yield();
	}
	for (int fd = me; fd < span; fd += FD_PAGE_BITS)
		herd__fd_track(rt, fd);
	for (int fd = me; fd < span; fd += MARKERS)
		herd__fd_track(rt, fd);
	return NULL;
}

TEST(threads_mark)
{
	setup();
	for (int round = 0; round < ROUNDS; round++) {
		if (round) { /* a new bitmap */
			herd__fd_fini(rt);
			memset(&rt->io->fd, 0, sizeof rt->io->fd);
			herd__mutex_init(&rt->io->fd.lock, HERD__RANK_FD);
			CHECK_OK(herd__fd_init(rt));
		}
		span = (int)rt->io->fd.limit;
		if (span > 16 * (int)FD_PAGE_BITS)
			span = 16 * (int)FD_PAGE_BITS;
		atomic_store(&arrived, 0);
		pthread_t th[MARKERS];
		for (int i = 0; i < MARKERS; i++)
			CHECK(pthread_create(&th[i], NULL, marker, (void *)(intptr_t)i) == 0);
		for (int i = 0; i < MARKERS; i++)
			CHECK(pthread_join(th[i], NULL) == 0);
		size_t pages;
		CHECK_EQ(marks(&pages), span);
		CHECK_EQ(pages, ((size_t)span + FD_PAGE_BITS - 1) / FD_PAGE_BITS);
		CHECK_EQ(nopen(), span);
		CHECK_EQ(npeak(), span);
	}
	teardown();
}
