/* stack.c: fiber stacks: mmap'd, committed lazily, a PROT_NONE guard page
 * below, and a bounded pool of freed stacks for reuse.
 *
 * Each stack costs two kernel mappings (the guard and the usable part), so
 * vm.max_map_count (65530 by default) caps live stacks near 32,000 per
 * process; past it mmap or mprotect fail and the caller gets
 * WEFT_ENOSTACK instead of a crash.  Pooled stacks keep their mappings and
 * their touched pages: the pool is bounded so that RSS stays bounded. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#define POOL_MAX 64

static size_t default_size = WEFT_FIBER_DEFAULT_STACK;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static weft__stack *pool;
static unsigned pooled;

static size_t page_size(void) {
  static size_t page;
  if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

size_t weft_fiber_default_stack_size(void) {
  return __atomic_load_n(&default_size, __ATOMIC_RELAXED);
}

int weft_fiber_set_default_stack_size(size_t size) {
  if (size < WEFT_FIBER_MIN_STACK || size > WEFT_FIBER_MAX_STACK)
    return WEFT_EINVAL;
  __atomic_store_n(&default_size, round_up(size, page_size()),
                   __ATOMIC_RELAXED);
  return 0;
}

int weft__stack_get(size_t size, weft__stack **out) {
  weft__stack *s = NULL, **p;
  size_t page = page_size(), total;
  char *base;
  if (size == 0) size = weft_fiber_default_stack_size();
  if (size < WEFT_FIBER_MIN_STACK || size > WEFT_FIBER_MAX_STACK)
    return WEFT_EINVAL;
  size = round_up(size, page);
  pthread_mutex_lock(&pool_lock);
  for (p = &pool; *p; p = &(*p)->next) {
    if ((*p)->size == size) {
      s = *p;
      *p = s->next;
      pooled--;
      break;
    }
  }
  pthread_mutex_unlock(&pool_lock);
  if (s) {
    *out = s;
    return 0;
  }
  s = weft__malloc(sizeof *s);
  if (!s) return WEFT_ENOMEM;
  total = size + page;
  base = mmap(NULL, total, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    weft__free(s);
    return errno == ENOMEM ? WEFT_ENOSTACK : WEFT_ENOMEM;
  }
  /* The guard: stacks grow down, so an overflow faults here. */
  if (mprotect(base, page, PROT_NONE) != 0) {
    munmap(base, total);
    weft__free(s);
    return WEFT_ENOSTACK; /* the map count: one more mapping was refused */
  }
  s->base = base;
  s->lo = base + page;
  s->size = size;
  s->next = NULL;
#ifdef WEFT_HAVE_VALGRIND
  s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + size);
#endif
  *out = s;
  return 0;
}

static void unmap(weft__stack *s) {
#ifdef WEFT_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
  munmap(s->base, s->size + page_size());
  weft__free(s);
}

void weft__stack_put(weft__stack *s) {
  if (!s) return;
  pthread_mutex_lock(&pool_lock);
  if (pooled < POOL_MAX) {
    s->next = pool;
    pool = s;
    pooled++;
    s = NULL;
  }
  pthread_mutex_unlock(&pool_lock);
  if (s) unmap(s);
}

void weft_fiber_trim_pool(void) {
  weft__stack *s;
  pthread_mutex_lock(&pool_lock);
  s = pool;
  pool = NULL;
  pooled = 0;
  pthread_mutex_unlock(&pool_lock);
  while (s) {
    weft__stack *next = s->next;
    unmap(s);
    s = next;
  }
}

/* Lua unloads C modules when its state closes, and with weft.so goes
 * libweft: release the pooled stacks then, or they would outlive the
 * pool's head. */
__attribute__((destructor)) static void trim_at_unload(void) {
  weft_fiber_trim_pool();
}
