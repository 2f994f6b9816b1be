/*
 * clone3-x86_64.S - clone3(2) with a child function, for the process layer's
 * vfork-style start (proc/spawn-linux.c). In assembly because the child
 * runs on a new stack from the first instruction after the system call:
 * no C code can run between the two.
 */

/*
 * int herd__clone3(struct clone_args *args, size_t size,
 *                  int (*fn)(void *), void *arg)
 *
 * clone3(2), which libc does not wrap, for proc/spawn-linux.c's vfork-style child: in
 * the child (rax 0, on the stack args gives), calls fn(arg) and exits with
 * its result; in the parent, returns the pid or -errno. fn and arg ride in
 * r8 and r9, which the system call preserves.
 */
	.text
	.globl	herd__clone3
	.hidden	herd__clone3
	.type	herd__clone3, @function
	.p2align 4
herd__clone3:
	.cfi_startproc
	movq	%rdx, %r8
	movq	%rcx, %r9
	movl	$435, %eax	/* SYS_clone3 */
	syscall
	testq	%rax, %rax
	jnz	1f
	.cfi_undefined rip	/* the child: nothing to return to */
	xorl	%ebp, %ebp
	movq	%r9, %rdi
	call	*%r8
	movl	%eax, %edi
	movl	$231, %eax	/* SYS_exit_group */
	syscall
	ud2
1:	ret
	.cfi_endproc
	.size	herd__clone3, .-herd__clone3

	.section .note.GNU-stack, "", @progbits
