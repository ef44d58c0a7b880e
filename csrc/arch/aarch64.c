/* aarch64.c: the first frame of a new context for aarch64.S. */
#include "context.h"

#include <stdint.h>

void weft__ctx_start(void);

void weft__ctx_make(weft__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg) {
  uint64_t *top = (uint64_t *)(((uintptr_t)lo + size) & ~(uintptr_t)15);
  uint64_t *sp = top - 22; /* the 176-byte frame of weft__ctx_switch */
  int i;
  for (i = 0; i < 22; i++) sp[i] = 0;
  sp[0] = (uint64_t)(uintptr_t)arg;    /* x19 */
  sp[1] = (uint64_t)(uintptr_t)entry;  /* x20 */
  sp[11] = (uint64_t)(uintptr_t)weft__ctx_start; /* x30: "return" here */
  sp[20] = 0; /* FPCR: round to nearest, no traps */
  ctx->sp = sp;
}
