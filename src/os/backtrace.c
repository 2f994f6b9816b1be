/*
 * backtrace.c - the return addresses of a suspended context, for the task
 * dump and the deadlock report: the address herd__ctx_switch returns to,
 * found in the frame it saved, then the frame-pointer chain from the
 * frame pointer saved beside it.
 *
 * Both CPUs herd runs on keep the same chain: a frame pointer points at a
 * pair of words {caller's frame pointer, return address} (x86-64: rbp, as
 * `push rbp; mov rbp, rsp` leaves it; AArch64: x29, as `stp x29, x30`
 * leaves it). Only where herd__ctx_switch saves the frame pointer and its
 * return address differs (see the frame layouts atop switch-<arch>.S), so
 * one file serves both; a new CPU adds its two slots below, or a file of
 * its own if its chain differs (e.g. 32-bit Arm's).
 *
 * The walk reads a stack that its task may be running on meanwhile: the
 * dump does not stop a woken task. Every read stays inside [lo, hi), so it
 * cannot fault, and the chain must climb strictly, so it ends; what it
 * reads may be stale or torn, and the walk then stops early or reports a
 * wrong address, which a diagnostic can afford. Such reads are races by
 * design, so the sanitizers are told not to instrument them.
 *
 * The library is built with frame pointers (CMakeLists.txt), so the chain
 * runs through herd's frames up to the code that called the blocking
 * function. A parked context's frames are never leaves (each called the
 * next one down to herd__ctx_switch), so leaf frames without a frame
 * pointer do not matter here. Frames of code built without frame pointers
 * (rbp then holds anything) end the walk or, rarely, skip a caller.
 *
 * No state, no lock.
 */
#include "os/os.h"

#if defined(__x86_64__)
/* switch-x86_64.S: rbp at sp+48, the return address at sp+56. */
enum { SAVED_FP = 6, SAVED_PC = 7 };
#elif defined(__aarch64__)
/* switch-aarch64.S: x29 at sp+80, x30 (the return address) at sp+88. */
enum { SAVED_FP = 10, SAVED_PC = 11 };
#else
#error "herd: no backtrace of a suspended context for this architecture"
#endif

/* Neither sanitizer may see these reads: they race with the task by
 * design, and may land in a redzone ASan poisons on the task's stack. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define NO_SANITIZE_READS __attribute__((no_sanitize("address", "thread")))
#else
#define NO_SANITIZE_READS
#endif

/* Whether the pair of words at p lies inside [lo, hi) and is aligned.
 * Word alignment is all a read needs; the ABIs promise 16 bytes for a
 * frame pointer, but code that breaks that promise should not end the
 * walk. */
static bool pair_inside(uintptr_t p, uintptr_t lo, uintptr_t hi, size_t words)
{
	return (p & (sizeof(uintptr_t) - 1)) == 0 && p >= lo && p < hi &&
	       (hi - p) / sizeof(uintptr_t) >= words;
}

NO_SANITIZE_READS
static uintptr_t read_word(uintptr_t p)
{
	return *(const volatile uintptr_t *)p;
}

NO_SANITIZE_READS
size_t herd__ctx_backtrace(const void *sp, const char *lo, const char *hi,
			   uintptr_t *pcs, size_t max)
{
	uintptr_t l = (uintptr_t)lo, h = (uintptr_t)hi, s = (uintptr_t)sp;
	size_t n = 0;

	if (max == 0 || !pair_inside(s, l, h, SAVED_PC + 1))
		return 0;
	uintptr_t pc = read_word(s + SAVED_PC * sizeof(uintptr_t));
	uintptr_t fp = read_word(s + SAVED_FP * sizeof(uintptr_t));
	uintptr_t last = s;
	while (pc != 0) {
		pcs[n++] = pc;
		/* The chain climbs towards the stack's top: a frame at or
		 * below the last one is garbage, or a cycle. */
		if (n == max || fp <= last || !pair_inside(fp, l, h, 2))
			break;
		pc = read_word(fp + sizeof(uintptr_t));
		last = fp;
		fp = read_word(fp);
	}
	return n;
}
