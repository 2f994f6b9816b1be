/*
 * switch-aarch64.S - the context switch for AArch64 (AAPCS64).
 *
 * herd__worker *herd__ctx_switch(void **save_sp, void *load_sp, herd__worker *w)
 *
 * Saves what the procedure call standard says a callee must preserve:
 * x19-x28, the frame pointer x29, the link register x30, the stack pointer,
 * the low 64 bits of v8-v15 (d8-d15), and FPCR (rounding mode, flush-to-zero,
 * trap enables). The saved frame, from the saved stack pointer up:
 *
 *   +0   x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 x29 x30   (96 bytes)
 *   +96  d8 d9 d10 d11 d12 d13 d14 d15                     (64 bytes)
 *   +160 FPCR, +168 padding                                (16 bytes)
 *
 * herd__ctx_init (stack.c) builds the same frame on a new stack, with
 * herd__ctx_trampoline in the x30 slot.
 */
	.text

	.globl	herd__ctx_switch
	.hidden	herd__ctx_switch
	.type	herd__ctx_switch, %function
	.p2align 4
herd__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x10, sp
	str	x10, [x0]

	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x10, [sp, #160]
	cmp	x9, x10		/* writing FPCR is slow on some cores: skip */
	b.eq	1f		/* it when the value does not change */
	msr	fpcr, x10
1:	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
	mov	x0, x2
	ret
	.cfi_endproc
	.size	herd__ctx_switch, .-herd__ctx_switch

/*
 * A new task starts here, "returned to" by herd__ctx_switch with the worker
 * in x0 and sp 16-byte aligned. It never returns.
 */
	.globl	herd__ctx_trampoline
	.hidden	herd__ctx_trampoline
	.type	herd__ctx_trampoline, %function
	.p2align 4
herd__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30	/* the outermost frame: unwinders stop here */
	mov	x29, xzr
	bl	herd__task_main
	brk	#0
	.cfi_endproc
	.size	herd__ctx_trampoline, .-herd__ctx_trampoline

	.section .note.GNU-stack, "", %progbits
