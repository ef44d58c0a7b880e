/* ucontext.c: the portable context backend, for targets without an
 * assembly one (or when configured with WEFT_FIBER_BACKEND=ucontext). */
#include "context.h"

#include <stdint.h>

/* makecontext passes int arguments only: split the pointers in halves. */
static void start(unsigned eh, unsigned el, unsigned ah, unsigned al) {
  void (*entry)(void *) =
      (void (*)(void *))(((uintptr_t)eh << 16 << 16) | (uintptr_t)el);
  void *arg = (void *)(((uintptr_t)ah << 16 << 16) | (uintptr_t)al);
  entry(arg);
}

void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg) {
  uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = lo;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = NULL;
  makecontext(&ctx->uc, (void (*)(void))start, 4,
              (unsigned)(e >> 16 >> 16), (unsigned)e,
              (unsigned)(a >> 16 >> 16), (unsigned)a);
}

int weft__ctx_switch(weft__ctx *from, weft__ctx *to) {
  swapcontext(&from->uc, &to->uc);
  return 0;
}
