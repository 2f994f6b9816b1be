/*
 * test-switch.c - the context switch keeps what the ABI says a callee
 * keeps: values the compiler holds in callee-saved registers across a call
 * that switches tasks, and the floating-point control state (rounding
 * mode), which belongs to each task as it would to each thread.
 */
#include "test.h"

#include <fenv.h>
#include <stdatomic.h>

#define ROUNDS 2000

/*
 * Many accumulators live across herd_yield: the compiler keeps as many as
 * it can in callee-saved registers (rbx, rbp, r12-r15; x19-x28), so a
 * switch that lost one would change a sum. Two tasks with different seeds
 * interleave on one worker, each clobbering the registers of the other.
 */
static void accumulate(void *p)
{
	uint64_t seed = *(uint64_t *)p;
	uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11,
		 f = seed * 13, g = seed * 17, h = seed * 19, i = seed * 23,
		 j = seed * 29, k = seed * 31, l = seed * 37;
	double x = (double)seed, y = x / 3;
	for (int r = 0; r < ROUNDS; r++) {
		a += b ^ r; b += c; c += d; d += e; e += f; f += g; g += h;
		h += i; i += j; j += k; k += l; l += a;
		x = x * 1.000001 + y; y = y * 0.999999 + 1;
		herd_yield();
	}
	uint64_t got = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l ^ (uint64_t)x ^ (uint64_t)y;

	/* The same computation without switches. */
	uint64_t A = seed, B = seed * 3, C = seed * 5, D = seed * 7, E = seed * 11,
		 F = seed * 13, G = seed * 17, H = seed * 19, I = seed * 23,
		 J = seed * 29, K = seed * 31, L = seed * 37;
	double X = (double)seed, Y = X / 3;
	for (int r = 0; r < ROUNDS; r++) {
		A += B ^ r; B += C; C += D; D += E; E += F; F += G; G += H;
		H += I; I += J; J += K; K += L; L += A;
		X = X * 1.000001 + Y; Y = Y * 0.999999 + 1;
		__asm__ volatile("" ::: "memory");
	}
	uint64_t want = A ^ B ^ C ^ D ^ E ^ F ^ G ^ H ^ I ^ J ^ K ^ L ^ (uint64_t)X ^ (uint64_t)Y;
	CHECK(got == want);
}

static void callee_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (uint64_t seed = 1; seed <= 4; seed++)
		CHECK_OK(HERD_GO(s, accumulate, seed * 0x9E3779B97F4A7C15ull));
	CHECK_OK(herd_scope_close(s));
}

/* Values in callee-saved registers survive switches between tasks. */
TEST(callee_saved_survive_yield)
{
	test_run(1, callee_main, NULL);
	test_run(2, callee_main, NULL);
}

static atomic_int fp_step;

/* Waits, yielding, until the other task has taken its step. */
static void fp_wait_for(int step)
{
	while (atomic_load(&fp_step) < step)
		herd_yield();
}

static void fp_task_a(void *arg)
{
	CHECK_EQ(fegetround(), FE_TONEAREST);
	CHECK_EQ(fesetround(FE_UPWARD), 0);
	atomic_store(&fp_step, 1);
	fp_wait_for(2);
	/* B changed its own rounding mode meanwhile: ours is unchanged. */
	CHECK_EQ(fegetround(), FE_UPWARD);
	atomic_store(&fp_step, 3);
}

static void fp_task_b(void *arg)
{
	fp_wait_for(1);
	/* A set FE_UPWARD on this worker: B still has the mode it started with. */
	CHECK_EQ(fegetround(), FE_TONEAREST);
	CHECK_EQ(fesetround(FE_DOWNWARD), 0);
	atomic_store(&fp_step, 2);
	fp_wait_for(3);
	CHECK_EQ(fegetround(), FE_DOWNWARD);
}

static void fp_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, fp_task_a, NULL, 0));
	CHECK_OK(herd_go(s, fp_task_b, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	/* The first task's own mode was never touched. */
	CHECK_EQ(fegetround(), FE_TONEAREST);
}

/* Each task has its own floating-point rounding mode, as a thread does. */
TEST(fp_control_per_task)
{
	atomic_store(&fp_step, 0);
	test_run(1, fp_main, NULL);
}

static void fp_inherit_task(void *arg)
{
	CHECK_EQ(fegetround(), FE_TOWARDZERO);
}

static void fp_inherit_main(void *arg)
{
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, fp_inherit_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
}

/* Tasks start with the rounding mode of the thread that called herd_run. */
TEST(fp_control_inherited)
{
	CHECK_EQ(fesetround(FE_TOWARDZERO), 0);
	test_run(2, fp_inherit_main, NULL);
	CHECK_EQ(fegetround(), FE_TOWARDZERO);
}
