/*
 * test-backtrace.c - white-box tests of the diagnostics' stack walk and
 * symbolizer (os/backtrace.c, os/symbol-elf.c): names of a static function
 * of this program, of a hidden herd function and of a C library function;
 * the address form where no function is; truncation; the walk of a task
 * parked in a channel receive, found as the task dump finds it (in its
 * worker's registry, under the registry's lock); and walks of garbage
 * stacks, which must end without a fault; and files corrupted in many
 * ways, which must give the address form without a fault.
 */
#include "core/core.h"

#include "unit.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/stat.h>

/* A function of this program that is not exported. */
__attribute__((noinline)) static long static_target(long x)
{
	volatile long v = x;
	return v * 3 + 1;
}

static int data_object[16];

/* The module name this program's functions get. */
static const char *self_module(void)
{
	return program_invocation_short_name;
}

TEST(names_static_function)
{
	char buf[256], want[128];
	CHECK_EQ(static_target(1), 4);
	herd__symbolize((uintptr_t)&static_target + 3, buf, sizeof buf);
	snprintf(want, sizeof want, "static_target+0x3 (%s)", self_module());
	fprintf(stderr, "%s\n", buf);
	/* gcc may rename a static function it specialises (.constprop.0). */
	CHECK(strncmp(buf, "static_target", 13) == 0);
	CHECK(strstr(buf, "+0x3 (") != NULL);
	CHECK(strstr(buf, want + strlen("static_target+0x3")) != NULL);
}

TEST(names_hidden_asm_function)
{
	char buf[256];
	herd__symbolize((uintptr_t)&herd__ctx_switch + 1, buf, sizeof buf);
	fprintf(stderr, "%s\n", buf);
	CHECK(strncmp(buf, "herd__ctx_switch+0x1 (", 22) == 0);
}

TEST(names_libc_function)
{
	char buf[256], self[128];
	CHECK(getpid() > 0);
	herd__symbolize((uintptr_t)&getpid + 2, buf, sizeof buf);
	fprintf(stderr, "%s\n", buf);
	CHECK(strstr(buf, "getpid+0x2 (") != NULL);
	/* In the C library's file, unless linked statically. */
	snprintf(self, sizeof self, "(%s)", self_module());
	if (strstr(buf, self))
		TEST_SKIP("the C library is linked statically");
	CHECK(buf[strlen(buf) - 1] == ')');
}

TEST(address_form_outside_functions)
{
	char buf[256], want[128];
	data_object[1] = 1;
	uintptr_t pc = (uintptr_t)&data_object[1];
	herd__symbolize(pc, buf, sizeof buf);
	fprintf(stderr, "%s\n", buf);
	snprintf(want, sizeof want, "0x%" PRIxPTR " (%s+0x", pc, self_module());
	CHECK(strncmp(buf, want, strlen(want)) == 0);

	herd__symbolize(1, buf, sizeof buf);
	fprintf(stderr, "%s\n", buf);
	CHECK(strcmp(buf, "0x1 (?)") == 0);
}

TEST(truncates_and_terminates)
{
	char buf[8];
	memset(buf, 'x', sizeof buf);
	CHECK(herd__symbolize((uintptr_t)&static_target, buf, sizeof buf) == buf);
	CHECK_EQ(strlen(buf), sizeof buf - 1);
	CHECK(strncmp(buf, "static_", 7) == 0);
	buf[0] = 'x';
	CHECK(herd__symbolize((uintptr_t)&static_target, buf, 0) == buf);
	CHECK(buf[0] == 'x');
}

/* Many threads at once: the cache's lock (a race TSan would see). */
static void *symbolize_many(void *arg)
{
	unit_gate *g = arg;
	char buf[256];
	unit_gate_pass(g);
	for (int i = 0; i < 200; i++) {
		herd__symbolize((uintptr_t)&getpid + 1, buf, sizeof buf);
		CHECK(strstr(buf, "getpid+0x1") != NULL);
		herd__symbolize((uintptr_t)&static_target + 1, buf, sizeof buf);
		CHECK(strstr(buf, "static_target") != NULL);
	}
	return NULL;
}

TEST(symbolizes_from_threads)
{
	unit_gate g = { .n = 4 };
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, symbolize_many, &g), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
}

/* ------------------------------------------------------------------ */
/* The walk of a parked task                                          */
/* ------------------------------------------------------------------ */

static herd_chan *ch;
static herd__task *_Atomic parked; /* the task in parked_here */
static _Atomic long received;

/* Blocks in a channel receive; does something after it, so that the
 * receive is not a tail call (which would leave no return address here). */
__attribute__((noinline)) static void parked_here(void)
{
	long v = 0;
	atomic_store(&parked, herd__self()->cur);
	CHECK_OK(herd_chan_recv(ch, &v, HERD_FOREVER));
	atomic_store(&received, v + 1);
}

static void parker(void *arg)
{
	parked_here();
}

/* Finds t in its worker's registry and walks its stack, the registry's
 * lock held (so the task cannot end meanwhile), as the dump does. */
static size_t walk_registered(herd__task *t, uintptr_t *pcs, size_t max)
{
	herd__rt *rt = atomic_load(&herd__runtime);
	size_t n = 0;
	bool found = false;
	for (unsigned i = 0; i < rt->nworkers && !found; i++) {
		herd__worker *w = rt->workers[i];
		herd__task *x;
		herd__mutex_lock(&w->reg_lock);
		herd__list_each(x, &w->reg, herd__task, reg_link) {
			if (x != t)
				continue;
			found = true;
			n = herd__ctx_backtrace(t->ctx.sp, t->stack,
						t->stack + herd__stack_size(rt), pcs, max);
		}
		herd__mutex_unlock(&w->reg_lock);
	}
	CHECK(found);
	return n;
}

static void walk_main(void *arg)
{
	ch = make_chan(sizeof(long), 0);
	CHECK_OK(herd_go(NULL, parker, NULL, 0));
	/* Parked: in its wait, and its worker done switching away from it. */
	herd__task *t;
	int64_t give_up = herd_deadline(20 * HERD_SEC);
	while (!(t = atomic_load(&parked)) ||
	       atomic_load_explicit(&t->wait, mo_acquire) == HERD__WAIT_NONE ||
	       atomic_load_explicit(&t->on_cpu, mo_acquire) != 0) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}

	uintptr_t pcs[64];
	size_t n = walk_registered(t, pcs, 64);
	int at_herd = -1, at_parked = -1;
	char buf[256];
	for (size_t i = 0; i < n; i++) {
		herd__symbolize(pcs[i], buf, sizeof buf);
		fprintf(stderr, "#%zu %s\n", i, buf);
		if (at_herd < 0 && (strstr(buf, "herd__park") || strstr(buf, "herd_chan_recv")))
			at_herd = (int)i;
		if (at_parked < 0 && strncmp(buf, "parked_here", 11) == 0)
			at_parked = (int)i;
	}
	CHECK(n >= 2);
	CHECK(at_herd >= 0);
	CHECK(at_parked > at_herd);
	/* A walk cut short stops at max. */
	CHECK_EQ(walk_registered(t, pcs, 1), 1);

	long v = 41;
	CHECK_OK(herd_chan_send(ch, &v, HERD_FOREVER));
	while (atomic_load(&received) != 42)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
}

TEST(walks_parked_task)
{
	test_run(2, walk_main, NULL);
	CHECK_OK(herd_chan_free(ch));
}

/* ------------------------------------------------------------------ */
/* Walks of garbage                                                   */
/* ------------------------------------------------------------------ */

#if defined(__x86_64__)
enum { SAVED_FP = 6, SAVED_PC = 7 };
#elif defined(__aarch64__)
enum { SAVED_FP = 10, SAVED_PC = 11 };
#endif

TEST(garbage_stack_ends)
{
	uintptr_t stack[256], pcs[16];
	const char *lo = (const char *)stack, *hi = (const char *)(stack + 256);
	/* Words pointing below and above the stack, and misaligned. */
	for (size_t i = 0; i < 256; i++)
		stack[i] = i % 3 == 0 ? (uintptr_t)(stack + 256) :
			   i % 3 == 1 ? (uintptr_t)stack - 64 : (uintptr_t)0x4141414141;
	stack[SAVED_FP] = (uintptr_t)(stack + 256);
	stack[SAVED_PC] = 0x1234;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 1);
	CHECK_EQ(pcs[0], 0x1234);
	/* Misaligned and below the saved frame. */
	stack[SAVED_FP] = (uintptr_t)(stack + 100) + 3;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 1);
	stack[SAVED_FP] = (uintptr_t)stack;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 1);
	/* The last pair of the stack is readable; past it is not. */
	stack[SAVED_FP] = (uintptr_t)(stack + 254);
	stack[254] = 0;
	stack[255] = 0x5678;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 2);
	CHECK_EQ(pcs[1], 0x5678);
	stack[SAVED_FP] = (uintptr_t)(stack + 255);
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 1);
	/* A zero return address ends the walk before it is stored. */
	stack[SAVED_PC] = 0;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 0);
	/* An sp outside the bounds, or too near the top to hold the frame. */
	stack[SAVED_PC] = 0x1234;
	CHECK_EQ(herd__ctx_backtrace(stack, lo + 8, hi, pcs, 16), 0);
	CHECK_EQ(herd__ctx_backtrace(stack + 250, lo, hi, pcs, 16), 0);
	CHECK_EQ(herd__ctx_backtrace(NULL, lo, hi, pcs, 16), 0);
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 0), 0);
}

TEST(cyclic_chain_ends)
{
	uintptr_t stack[64], pcs[16];
	const char *lo = (const char *)stack, *hi = (const char *)(stack + 64);
	memset(stack, 0, sizeof stack);
	stack[SAVED_PC] = 0x1000;
	stack[SAVED_FP] = (uintptr_t)&stack[20];
	/* 20 -> 30 -> 20: the second step goes down and ends the walk. */
	stack[20] = (uintptr_t)&stack[30];
	stack[21] = 0x2000;
	stack[30] = (uintptr_t)&stack[20];
	stack[31] = 0x3000;
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 3);
	CHECK_EQ(pcs[0], 0x1000);
	CHECK_EQ(pcs[1], 0x2000);
	CHECK_EQ(pcs[2], 0x3000);
	/* A frame pointing at itself. */
	stack[20] = (uintptr_t)&stack[20];
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 2);
	/* And max bounds a long valid chain. */
	for (size_t i = 16; i + 2 < 64; i += 2) {
		stack[i] = (uintptr_t)&stack[i + 2];
		stack[i + 1] = 0x100 + i;
	}
	stack[SAVED_FP] = (uintptr_t)&stack[16];
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 5), 5);
	CHECK_EQ(herd__ctx_backtrace(stack, lo, hi, pcs, 16), 16);
}

/* ------------------------------------------------------------------ */
/* Corrupt files                                                      */
/* ------------------------------------------------------------------ */

/* The whole of a file, malloc'd; *len its size. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size > 0);
	char *p = malloc((size_t)st.st_size);
	CHECK(p != NULL);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
		CHECK(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return p;
}

/* Writes len bytes at p to the file open at fd, and closes it. */
static void spill(int fd, const char *p, size_t len)
{
	CHECK(fd >= 0);
	for (size_t put = 0; put < len;) {
		ssize_t n = write(fd, p + put, len - put);
		CHECK(n > 0);
		put += (size_t)n;
	}
	CHECK(close(fd) == 0);
}

enum {
	INTACT, HEADER_ONLY, HALF, SHOFF_HUGE, SHNUM_HUGE, SHNUM_EXTENDED,
	SECTIONS_HUGE, LINKS_WILD, STRINGS_UNENDED, NAMED_CASES,
	NCASES = NAMED_CASES + 40 /* the rest: random bytes in the headers */
};

/* Corrupts a copy of the ELF file f (len bytes) as case k says; returns
 * its new length. */
static size_t corrupt(char *f, size_t len, int k, uint64_t *rng)
{
	ElfW(Ehdr) *eh = (ElfW(Ehdr) *)(void *)f;
	ElfW(Shdr) *sh = (ElfW(Shdr) *)(void *)(f + eh->e_shoff);
	switch (k) {
	case INTACT: return len;
	case HEADER_ONLY: return sizeof(*eh);
	case HALF: return len / 2;
	case SHOFF_HUGE: eh->e_shoff = UINT64_MAX - 8; return len;
	case SHNUM_HUGE: eh->e_shnum = 0xffff; return len;
	case SHNUM_EXTENDED: eh->e_shnum = 0; sh[0].sh_size = UINT64_MAX / 2; return len;
	case SECTIONS_HUGE:
		for (size_t i = 0; i < eh->e_shnum; i++) {
			sh[i].sh_offset = UINT64_MAX - i;
			sh[i].sh_size = UINT64_MAX / 3;
		}
		return len;
	case LINKS_WILD:
		for (size_t i = 0; i < eh->e_shnum; i++)
			sh[i].sh_link = (uint32_t)(i * 7919 + 0xfff0);
		return len;
	case STRINGS_UNENDED:
		for (size_t i = 0; i < eh->e_shnum; i++)
			if (sh[i].sh_type == SHT_STRTAB)
				memset(f + sh[i].sh_offset, 'A', sh[i].sh_size);
		return len;
	}
	/* Bytes of the ELF header and the section headers set at random
	 * (where the headers were before). */
	size_t shoff = (size_t)eh->e_shoff;
	size_t shlen = (size_t)eh->e_shnum * sizeof(*sh);
	CHECK(shoff < len && shlen <= len - shoff);
	for (int i = 0; i < 24; i++) {
		uint64_t r = unit_rand(rng);
		size_t at = r % 4 == 0 ? unit_below(rng, sizeof(*eh)) :
			    shoff + unit_below(rng, shlen);
		f[at] = (char)(r >> 32);
	}
	return len;
}

TEST(corrupt_files_give_address_form)
{
	/* A copy of the C library's libm, loaded, then replaced on disk by
	 * a corrupt file, which the symbolizer opens when first asked. */
	void *libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
	Dl_info info;
	if (!libm || !dladdr(dlsym(libm, "frexp"), &info) || !info.dli_fname ||
	    !strstr(info.dli_fname, "/libm.so"))
		TEST_SKIP("no libm.so of its own (musl has libm in libc)");
	size_t len;
	char *orig = slurp(info.dli_fname, &len), *f = malloc(len);
	CHECK(f != NULL);
	CHECK(len > sizeof(ElfW(Ehdr)));

	void *handles[NCASES];
	char results[NCASES][256], names[NCASES][64];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	for (int k = 0; k < NCASES; k++) {
		/* Named after this process, so that the suite's last check can
		 * tell one left behind (test/suite-left.c). */
		char path[64];
		snprintf(path, sizeof path, "/tmp/herd-test-%d-XXXXXX", (int)getpid());
		spill(mkstemp(path), orig, len);
		snprintf(names[k], sizeof names[k], "%s", strrchr(path, '/') + 1);
		handles[k] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		void *fn = handles[k] ? dlsym(handles[k], "frexp") : NULL;
		unlink(path);
		memcpy(f, orig, len);
		spill(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), f,
		      corrupt(f, len, k, &rng));
		memset(results[k], 'x', sizeof results[k]);
		if (fn)
			herd__symbolize((uintptr_t)fn + 4, results[k], sizeof results[k]);
		unlink(path);
		CHECK(fn != NULL);
	}
	for (int k = 0; k < NCASES; k++) {
		char want[128];
		CHECK(memchr(results[k], '\0', sizeof results[k]) != NULL);
		if (k < NAMED_CASES)
			fprintf(stderr, "%d: %s\n", k, results[k]);
		if (k == INTACT)
			snprintf(want, sizeof want, "frexp+0x4 (%.60s)", names[k]);
		else if (k < STRINGS_UNENDED)
			snprintf(want, sizeof want, " (%.60s+0x", names[k]);
		else
			continue;
		CHECK(strstr(results[k], want) != NULL);
		if (k != INTACT)
			CHECK(strncmp(results[k], "0x", 2) == 0);
	}
	for (int k = 0; k < NCASES; k++)
		CHECK(dlclose(handles[k]) == 0);
	dlclose(libm);
	free(f);
	free(orig);
}
