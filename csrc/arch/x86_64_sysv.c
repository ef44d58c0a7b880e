/* x86_64_sysv.c: the first frame of a new context for x86_64_sysv.S. */
#include "context.h"

#include <stdint.h>

void weft__ctx_start(void);

void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg) {
  uint64_t *top = (uint64_t *)(((uintptr_t)lo + size) & ~(uintptr_t)15);
  /* The return address sits at top - 8, so that weft__ctx_start runs with
   * rsp = top, 16-byte aligned. */
  uint64_t *sp = top - 8;
  sp[7] = (uint64_t)(uintptr_t)weft__ctx_start; /* return address */
  sp[6] = 0;                                    /* rbp */
  sp[5] = 0;                                    /* rbx */
  sp[4] = (uint64_t)(uintptr_t)arg;             /* r12 */
  sp[3] = (uint64_t)(uintptr_t)entry;           /* r13 */
  sp[2] = 0;                                    /* r14 */
  sp[1] = 0;                                    /* r15 */
  /* MXCSR and the x87 control word at their power-on defaults: all
   * exceptions masked, round to nearest, double extended precision. */
  sp[0] = 0x1f80u | ((uint64_t)0x037fu << 32);
  ctx->sp = sp;
}
