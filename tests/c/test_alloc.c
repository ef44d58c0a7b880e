/* test_alloc.c: a host's allocator hooks. */
#include "test.h"

static long live_blocks, calls;

static void *my_malloc(size_t n) {
  calls++;
  live_blocks++;
  return malloc(n);
}
static void *my_realloc(void *p, size_t n) {
  calls++;
  if (!p) live_blocks++;
  return realloc(p, n);
}
static void *my_calloc(size_t c, size_t n) {
  calls++;
  live_blocks++;
  return calloc(c, n);
}
static void my_free(void *p) {
  if (p) live_blocks--;
  free(p);
}

static void alloc_hooks_see_every_allocation(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_replace_allocator(my_malloc, my_realloc, my_calloc, my_free));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_GT(calls, 0);
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
  ASSERT_EQ(live_blocks, 0); /* everything weft took, it gave back */
  ASSERT_OK(weft_replace_allocator(malloc, realloc, calloc, free));
}

static void alloc_refused_while_a_loop_lives(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_replace_allocator(my_malloc, my_realloc, my_calloc, my_free),
            WEFT_EBUSY);
  /* The loop still works after the refusal. */
  ASSERT_OK(weft_immediately(loop, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
  ASSERT_OK(weft_replace_allocator(malloc, realloc, calloc, free));
}

static void alloc_null_function_is_einval(void) {
  ASSERT_EQ(weft_replace_allocator(NULL, realloc, calloc, free), WEFT_EINVAL);
  ASSERT_EQ(weft_replace_allocator(malloc, realloc, calloc, NULL), WEFT_EINVAL);
}

TEST_MAIN(T(alloc_hooks_see_every_allocation)
          T(alloc_refused_while_a_loop_lives)
          T(alloc_null_function_is_einval))
