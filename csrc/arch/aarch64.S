/* aarch64.S: context switch for the AAPCS64 ABI.
 *
 * int weft__ctx_switch(weft__ctx *from, weft__ctx *to), returning 0
 * Saves the callee-saved registers x19-x28, the frame pointer x29, the
 * link register x30, the low halves d8-d15 of v8-v15 and FPCR in a
 * 176-byte frame on the current stack, stores sp in from->sp, loads
 * to->sp, restores and returns to the other context's x30. */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, %function
        .p2align 4
weft__ctx_switch:
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        ldr     x9, [x1]
        mov     sp, x9
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        mov     w0, #0
        ret
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code of a new context: weft__ctx_make left entry in x20 and its
 * argument in x19. */
        .globl  weft__ctx_start
        .hidden weft__ctx_start
        .type   weft__ctx_start, %function
        .p2align 4
weft__ctx_start:
        mov     x29, #0
        mov     x0, x19
        blr     x20
        brk     #0
        .size   weft__ctx_start, .-weft__ctx_start

        .section .note.GNU-stack,"",%progbits
