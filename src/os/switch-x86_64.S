/*
 * switch-x86_64.S - the context switch for x86-64 (System V ABI).
 *
 * herd__worker *herd__ctx_switch(void **save_sp, void *load_sp, herd__worker *w)
 *
 * Saves what the ABI says a callee must preserve: rbx, rbp, r12-r15, the
 * stack pointer, and the control bits of MXCSR and the x87 control word
 * (rounding mode, exception masks). Everything else is caller-saved, so the
 * C compiler has already spilled what it needs. The saved frame, from the
 * saved stack pointer up:
 *
 *   +0  MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   +8  r15  +16 r14  +24 r13  +32 r12  +40 rbx  +48 rbp
 *   +56 return address
 *
 * herd__ctx_init (stack.c) builds the same frame on a new stack, with
 * herd__ctx_trampoline as the return address.
 */
	.text

	.globl	herd__ctx_switch
	.hidden	herd__ctx_switch
	.type	herd__ctx_switch, @function
	.p2align 4
herd__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)

	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	popq	%r14
	.cfi_adjust_cfa_offset -8
	popq	%r13
	.cfi_adjust_cfa_offset -8
	popq	%r12
	.cfi_adjust_cfa_offset -8
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	movq	%rdx, %rax
	ret
	.cfi_endproc
	.size	herd__ctx_switch, .-herd__ctx_switch

/*
 * A new task starts here, "returned to" by herd__ctx_switch with the worker
 * in rax and rsp 16-byte aligned. It never returns: herd__task_main ends by
 * switching away for good.
 */
	.globl	herd__ctx_trampoline
	.hidden	herd__ctx_trampoline
	.type	herd__ctx_trampoline, @function
	.p2align 4
herd__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip	/* the outermost frame: unwinders stop here */
	xorl	%ebp, %ebp
	movq	%rax, %rdi
	call	herd__task_main
	ud2
	.cfi_endproc
	.size	herd__ctx_trampoline, .-herd__ctx_trampoline

	.section .note.GNU-stack, "", @progbits
