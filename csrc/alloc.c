/* alloc.c: the allocator hooks a host may install before its first loop. */
#include "internal.h"

#include <stdlib.h>

static weft_malloc_func use_malloc = malloc;
static weft_realloc_func use_realloc = realloc;
static weft_calloc_func use_calloc = calloc;
static weft_free_func use_free = free;
static int live_loops;

int weft_replace_allocator(weft_malloc_func malloc_func,
                           weft_realloc_func realloc_func,
                           weft_calloc_func calloc_func,
                           weft_free_func free_func) {
  if (!malloc_func || !realloc_func || !calloc_func || !free_func)
    return WEFT_EINVAL;
  /* Memory a live loop holds must be freed by the allocator that made it. */
  if (__atomic_load_n(&live_loops, __ATOMIC_ACQUIRE) > 0) return WEFT_EBUSY;
  use_malloc = malloc_func;
  use_realloc = realloc_func;
  use_calloc = calloc_func;
  use_free = free_func;
  return 0;
}

void weft__alloc_loops(int delta) {
  __atomic_add_fetch(&live_loops, delta, __ATOMIC_ACQ_REL);
}

void *weft__malloc(size_t size) { return use_malloc(size ? size : 1); }

void *weft__calloc(size_t count, size_t size) {
  return use_calloc(count ? count : 1, size ? size : 1);
}

void *weft__realloc(void *ptr, size_t size) {
  return use_realloc(ptr, size ? size : 1);
}

void weft__free(void *ptr) {
  if (ptr) use_free(ptr);
}
