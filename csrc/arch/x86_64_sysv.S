/* x86_64_sysv.S: context switch for the System V x86-64 ABI.
 *
 * int weft__ctx_switch(weft__ctx *from, weft__ctx *to), returning 0
 * Saves the callee-saved registers (rbx, rbp, r12-r15), MXCSR and the x87
 * control word on the current stack, stores rsp in from->sp, loads
 * to->sp, restores the same set and returns into the other context.
 * rax is caller-saved, so it serves as scratch.
 * Frame, low to high: fp control (8 bytes), r15, r14, r13, r12, rbx, rbp,
 * return address. */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        pushq   $0                      /* fp control slot, fully defined */
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    (%rsp), %rax            /* our fp control words */
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        /* Loading MXCSR and the x87 control word is slow (fldcw stalls the
         * FPU); nearly always both contexts use the same ones, so load
         * them only when they differ. */
        cmpq    (%rsp), %rax
        jne     1f
2:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        xorl    %eax, %eax
        ret
1:      ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     2b
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code of a new context: weft__ctx_make left entry in r13 and its
 * argument in r12; rsp is 16-byte aligned here, as a call needs. */
        .globl  weft__ctx_start
        .hidden weft__ctx_start
        .type   weft__ctx_start, @function
        .p2align 4
weft__ctx_start:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   weft__ctx_start, .-weft__ctx_start

        .section .note.GNU-stack,"",@progbits
