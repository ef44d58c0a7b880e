/* test.h: always-on assertions and a tiny runner for the C tests.
 *
 * Each test file lists its tests with TEST_MAIN(T(name) ...); the binary
 * runs them all, or those named on its command line.  ASSERT_* survive
 * NDEBUG and print both sides. */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include "weft.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT(expr)                                                          \
  do {                                                                        \
    if (!(expr)) {                                                            \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,    \
              #expr);                                                         \
      abort();                                                                \
    }                                                                         \
  } while (0)

#define ASSERT_CMP(a, op, b)                                                  \
  do {                                                                        \
    int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                             \
    if (!(a_ op b_)) {                                                        \
      fprintf(stderr, "%s:%d: assertion failed: %s %s %s (%" PRId64          \
                      " vs %" PRId64 ")\n",                                   \
              __FILE__, __LINE__, #a, #op, #b, a_, b_);                       \
      abort();                                                                \
    }                                                                         \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_OK(expr) ASSERT_EQ(expr, 0)

#define ASSERT_STR_EQ(a, b)                                                   \
  do {                                                                        \
    const char *a_ = (a), *b_ = (b);                                          \
    if (strcmp(a_, b_) != 0) {                                                \
      fprintf(stderr, "%s:%d: assertion failed: %s == %s (\"%s\" vs \"%s\")\n", \
              __FILE__, __LINE__, #a, #b, a_, b_);                            \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* A time limit scaled for slow builds (sanitizers, valgrind). */
static inline uint64_t test_ms(uint64_t ms) {
  const char *m = getenv("WEFT_TEST_TIMEOUT_MULTIPLIER");
  double f = m ? atof(m) : 1.0;
  return (uint64_t)((double)ms * (f > 0 ? f : 1.0));
}

/* Frees a loop and checks it had no watcher left. */
static inline void test_free_loop(weft_loop_t *loop) {
  ASSERT_OK(weft_loop_free(loop));
}

/* A weft_watch_cb that counts into an int. */
static inline void test_count_cb(weft_loop_t *loop, weft_id_t id, int arg,
                                 void *data) {
  (void)loop;
  (void)id;
  (void)arg;
  (*(int *)data)++;
}

struct test_case {
  const char *name;
  void (*fn)(void);
};

#define T(name) {#name, name},
#define TEST_MAIN(list)                                                       \
  static const struct test_case test_cases_[] = {list};                       \
  int main(int argc, char **argv) {                                           \
    size_t i, n = sizeof test_cases_ / sizeof test_cases_[0];                 \
    int ran = 0, j;                                                           \
    setvbuf(stdout, NULL, _IONBF, 0);                                         \
    for (i = 0; i < n; i++) {                                                 \
      int want = argc < 2;                                                    \
      for (j = 1; j < argc; j++)                                              \
        if (!strcmp(argv[j], test_cases_[i].name)) want = 1;                  \
      if (!want) continue;                                                    \
      test_cases_[i].fn();                                                    \
      printf("ok %s\n", test_cases_[i].name);                                 \
      ran++;                                                                  \
    }                                                                         \
    if (!ran) {                                                               \
      fprintf(stderr, "no test matched\n");                                   \
      return 1;                                                               \
    }                                                                         \
    return 0;                                                                 \
  }

#endif /* WEFT_TEST_H */
