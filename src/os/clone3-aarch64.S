/*
 * clone3-aarch64.S - clone3(2) with a child function, for the process layer's
 * vfork-style start (proc/spawn-linux.c). In assembly because the child
 * runs on a new stack from the first instruction after the system call:
 * no C code can run between the two.
 */

/*
 * int herd__clone3(struct clone_args *args, size_t size,
 *                  int (*fn)(void *), void *arg)
 *
 * clone3(2), which libc does not wrap, for proc/spawn-linux.c's vfork-style child: in
 * the child (x0 0, on the stack args gives), calls fn(arg) and exits with
 * its result; in the parent, returns the pid or -errno. fn and arg ride in
 * x9 and x10, which the system call preserves.
 */
	.text
	.globl	herd__clone3
	.hidden	herd__clone3
	.type	herd__clone3, %function
	.p2align 4
herd__clone3:
	.cfi_startproc
	mov	x9, x2
	mov	x10, x3
	mov	x8, #435	/* SYS_clone3 */
	svc	#0
	cbnz	x0, 1f
	mov	x29, xzr
	mov	x30, xzr
	mov	x0, x10
	blr	x9
	mov	x8, #94		/* SYS_exit_group */
	svc	#0
	brk	#0
1:	ret
	.cfi_endproc
	.size	herd__clone3, .-herd__clone3

	.section .note.GNU-stack, "", @progbits
