/* context.h: the one interface every context-switch backend implements.
 *
 * A context is a saved execution state.  The assembly backends keep only a
 * stack pointer: weft__ctx_switch pushes the callee-saved registers and the
 * floating-point control state on the current stack, stores the stack
 * pointer, loads the other one and pops.  The ucontext backend (portable,
 * slower: glibc's swapcontext makes a sigprocmask syscall) keeps a
 * ucontext_t. */
#ifndef WEFT_ARCH_CONTEXT_H
#define WEFT_ARCH_CONTEXT_H

#include <stddef.h>

#if defined(WEFT_CTX_UCONTEXT)
#include <ucontext.h>
typedef struct weft__ctx {
  ucontext_t uc;
} weft__ctx;
#else
typedef struct weft__ctx {
  void *sp;
} weft__ctx;
#endif

/* Prepares ctx to run entry(arg) on the stack [lo, lo + size) the first
 * time it is switched to.  entry must never return. */
void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg);

/* Saves the running context in from and continues in to.  Returns 0 when
 * from is switched back to (so callers can tail-call it). */
int weft__ctx_switch(weft__ctx *from, weft__ctx *to);

#endif
