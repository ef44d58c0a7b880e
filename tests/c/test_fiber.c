/* test_fiber.c: stackful fibers.  Built three times: with the configured
 * backend, with the ucontext backend, and for aarch64 under qemu. */
#include "test.h"

#include <fenv.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void *give_back(weft_fiber_t *f, void *arg) {
  ASSERT(weft_fiber_current() == f);
  ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_RUNNING);
  return (char *)arg + 1;
}

static void fiber_runs_fn_and_returns_its_value(void) {
  weft_fiber_t *f;
  char buf[4];
  void *out = NULL;
  ASSERT_OK(weft_fiber_new(give_back, buf, 0, &f));
  ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_INIT);
  ASSERT(weft_fiber_current() == NULL);
  ASSERT_OK(weft_fiber_resume(f, NULL, &out));
  ASSERT(out == buf + 1);
  ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_TERMINATED);
  ASSERT(weft_fiber_current() == NULL);
  ASSERT_OK(weft_fiber_free(f));
}

static void *counter(weft_fiber_t *f, void *arg) {
  intptr_t n = (intptr_t)arg;
  void *in;
  (void)f;
  while (n < 100) {
    ASSERT_OK(weft_fiber_suspend((void *)n, &in));
    n = (intptr_t)in + 1;
  }
  return (void *)-n;
}

static void fiber_suspend_and_resume_pass_values(void) {
  weft_fiber_t *f;
  void *out;
  intptr_t got;
  ASSERT_OK(weft_fiber_new(counter, (void *)0, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, (void *)999, &out)); /* dropped: no suspend */
  ASSERT_EQ((intptr_t)out, 0);
  for (got = 0; weft_fiber_status(f) == WEFT_FIBER_SUSPENDED;) {
    ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_SUSPENDED);
    ASSERT_OK(weft_fiber_resume(f, (void *)(got + 10), &out));
    got = (intptr_t)out;
  }
  ASSERT_EQ(got, -110); /* 0, 11, 22, ..., 99, then 99 + 10 + 1 ends it */
  ASSERT_OK(weft_fiber_free(f));
}

/* Recurses depth frames, suspends at the bottom, and checks every frame's
 * locals survived the round trip. */
static int deep(int depth) {
  volatile int mine[8];
  int i, sum;
  for (i = 0; i < 8; i++) mine[i] = depth * 8 + i;
  if (depth == 0) {
    ASSERT_OK(weft_fiber_suspend((void *)"bottom", NULL));
    sum = 0;
  } else {
    sum = deep(depth - 1);
  }
  for (i = 0; i < 8; i++) ASSERT_EQ(mine[i], depth * 8 + i);
  return sum + 1;
}

static void *deep_fn(weft_fiber_t *f, void *arg) {
  (void)f;
  return (void *)(intptr_t)deep((int)(intptr_t)arg);
}

static void fiber_suspends_from_100_frames_deep(void) {
  weft_fiber_t *f;
  void *out;
  ASSERT_OK(weft_fiber_new(deep_fn, (void *)100, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, &out));
  ASSERT_STR_EQ((const char *)out, "bottom");
  ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_SUSPENDED);
  ASSERT_OK(weft_fiber_resume(f, NULL, &out));
  ASSERT_EQ((intptr_t)out, 101);
  ASSERT_OK(weft_fiber_free(f));
}

static int trace[4096], trace_n;

static void *stepper(weft_fiber_t *f, void *arg) {
  int id = (int)(intptr_t)arg, step;
  (void)f;
  for (step = 0; step < 4; step++) {
    trace[trace_n++] = id * 10 + step;
    ASSERT_OK(weft_fiber_suspend(NULL, NULL));
  }
  return NULL;
}

static void fiber_many_interleave_in_order(void) {
  enum { N = 500 };
  static weft_fiber_t *fs[N];
  int i, round, k = 0;
  trace_n = 0;
  for (i = 0; i < N; i++) ASSERT_OK(weft_fiber_new(stepper, (void *)(intptr_t)i, 32 * 1024, &fs[i]));
  for (round = 0; round < 5; round++)
    for (i = 0; i < N; i++) ASSERT_OK(weft_fiber_resume(fs[i], NULL, NULL));
  for (round = 0; round < 4; round++)
    for (i = 0; i < N && k < trace_n; i++, k++) ASSERT_EQ(trace[k], i * 10 + round);
  ASSERT_EQ(trace_n, 4 * N);
  for (i = 0; i < N; i++) {
    ASSERT_EQ(weft_fiber_status(fs[i]), WEFT_FIBER_TERMINATED);
    ASSERT_OK(weft_fiber_free(fs[i]));
  }
}

static void *inner(weft_fiber_t *f, void *arg) {
  weft_fiber_t *outer = arg;
  ASSERT(weft_fiber_current() == f);
  ASSERT_EQ(weft_fiber_status(outer), WEFT_FIBER_RUNNING);
  /* The outer fiber is running (it resumed us): resuming it is refused. */
  ASSERT_EQ(weft_fiber_resume(outer, NULL, NULL), WEFT_EBUSY);
  ASSERT_OK(weft_fiber_suspend((void *)"inner paused", NULL));
  return (void *)"inner done";
}

static void *outer_fn(weft_fiber_t *f, void *arg) {
  weft_fiber_t *in;
  void *out;
  (void)arg;
  ASSERT_OK(weft_fiber_new(inner, f, 0, &in));
  ASSERT_OK(weft_fiber_resume(in, NULL, &out));
  ASSERT_STR_EQ((const char *)out, "inner paused");
  ASSERT(weft_fiber_current() == f);
  ASSERT_OK(weft_fiber_suspend((void *)"outer paused", NULL));
  ASSERT_OK(weft_fiber_resume(in, NULL, &out)); /* resumed from main's turn */
  ASSERT_STR_EQ((const char *)out, "inner done");
  ASSERT_OK(weft_fiber_free(in));
  return (void *)"outer done";
}

static void fiber_nests_and_tracks_current(void) {
  weft_fiber_t *f;
  void *out;
  ASSERT_OK(weft_fiber_new(outer_fn, NULL, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, &out));
  ASSERT_STR_EQ((const char *)out, "outer paused");
  ASSERT(weft_fiber_current() == NULL);
  ASSERT_OK(weft_fiber_resume(f, NULL, &out));
  ASSERT_STR_EQ((const char *)out, "outer done");
  ASSERT_OK(weft_fiber_free(f));
}

static void *misuse(weft_fiber_t *f, void *arg) {
  (void)arg;
  ASSERT_EQ(weft_fiber_resume(f, NULL, NULL), WEFT_EBUSY); /* itself */
  ASSERT_EQ(weft_fiber_free(f), WEFT_EBUSY);
  return NULL;
}

static void fiber_invalid_transitions_are_errors(void) {
  weft_fiber_t *f;
  ASSERT_EQ(weft_fiber_suspend(NULL, NULL), WEFT_EINVAL); /* outside */
  ASSERT_EQ(weft_fiber_resume(NULL, NULL, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_status(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_new(NULL, NULL, 0, &f), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_new(misuse, NULL, 0, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_new(misuse, NULL, 1024, &f), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_new(misuse, NULL, WEFT_FIBER_MAX_STACK + 1, &f),
            WEFT_EINVAL);
  ASSERT_OK(weft_fiber_new(misuse, NULL, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_EQ(weft_fiber_resume(f, NULL, NULL), WEFT_ECLOSED); /* finished */
  ASSERT_OK(weft_fiber_free(f));
  ASSERT_OK(weft_fiber_free(NULL));
}

static void *suspend_forever(weft_fiber_t *f, void *arg) {
  (void)f, (void)arg;
  for (;;) ASSERT_OK(weft_fiber_suspend(NULL, NULL));
  return NULL;
}

static void fiber_suspended_can_be_freed(void) {
  weft_fiber_t *f;
  ASSERT_OK(weft_fiber_new(suspend_forever, NULL, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_OK(weft_fiber_free(f));
}

static void *round_down(weft_fiber_t *f, void *arg) {
  (void)f, (void)arg;
  ASSERT_OK(fesetround(FE_DOWNWARD));
  ASSERT_OK(weft_fiber_suspend(NULL, NULL));
  ASSERT_EQ(fegetround(), FE_DOWNWARD); /* still ours after the round trip */
  return NULL;
}

static void fiber_keeps_its_own_fp_control_state(void) {
  weft_fiber_t *f;
  ASSERT_EQ(fegetround(), FE_TONEAREST);
  ASSERT_OK(weft_fiber_new(round_down, NULL, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_EQ(fegetround(), FE_TONEAREST); /* the fiber's mode stayed there */
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_EQ(fegetround(), FE_TONEAREST);
  ASSERT_OK(weft_fiber_free(f));
}

/* Deeper than any stack here: the limit only hides that from the compiler. */
static volatile int recursion_limit = 1 << 30;
static int recurse_forever(int n) {
  volatile char pad[512];
  pad[0] = (char)n;
  if (n > recursion_limit) return 0;
  return recurse_forever(n + 1) + pad[0];
}

static void *overflow(weft_fiber_t *f, void *arg) {
  (void)f, (void)arg;
  return (void *)(intptr_t)recurse_forever(0);
}

static void fiber_stack_overflow_hits_the_guard_page(void) {
  pid_t pid;
  int status;
  if (getenv("WEFT_TEST_VALGRIND")) return; /* valgrind reports the fault */
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    weft_fiber_t *f;
    /* Quiet the child: the expected crash is not news. */
    if (!freopen("/dev/null", "w", stderr)) _exit(3);
    if (weft_fiber_new(overflow, NULL, WEFT_FIBER_MIN_STACK, &f)) _exit(2);
    weft_fiber_resume(f, NULL, NULL);
    _exit(0); /* reached only if the overflow went unnoticed */
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  /* A fault on the guard page (SIGSEGV), or, under ASan, its
   * stack-overflow report and non-zero exit. */
  ASSERT((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
         (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
          WEXITSTATUS(status) != 2 && WEXITSTATUS(status) != 3));
}

static void *nothing(weft_fiber_t *f, void *arg) {
  (void)f;
  return arg;
}

static void fiber_default_stack_size_is_settable(void) {
  size_t old = weft_fiber_default_stack_size();
  weft_fiber_t *f;
  ASSERT_EQ(old, WEFT_FIBER_DEFAULT_STACK);
  ASSERT_EQ(weft_fiber_set_default_stack_size(1), WEFT_EINVAL);
  ASSERT_EQ(weft_fiber_default_stack_size(), old);
  ASSERT_OK(weft_fiber_set_default_stack_size(100 * 1024 + 1));
  ASSERT_GE(weft_fiber_default_stack_size(), 100 * 1024 + 1);
  ASSERT_EQ(weft_fiber_default_stack_size() % 4096, 0);
  ASSERT_OK(weft_fiber_new(nothing, NULL, 0, &f));
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_OK(weft_fiber_free(f));
  ASSERT_OK(weft_fiber_set_default_stack_size(old));
}

static void fiber_lifecycles_reuse_pooled_stacks(void) {
  int i;
  for (i = 0; i < 20000; i++) {
    weft_fiber_t *f;
    void *out;
    ASSERT_OK(weft_fiber_new(nothing, (void *)(intptr_t)i, 0, &f));
    ASSERT_OK(weft_fiber_resume(f, NULL, &out));
    ASSERT_EQ((intptr_t)out, i);
    ASSERT_OK(weft_fiber_free(f));
  }
  weft_fiber_trim_pool();
}

static void fiber_map_count_limit_fails_cleanly(void) {
  enum { CAP = 200000 };
  weft_fiber_t **fs;
  int n = 0, err = 0, i;
  if (getenv("WEFT_TEST_SKIP_MAPLIMIT")) return;
  fs = malloc(CAP * sizeof *fs);
  ASSERT(fs != NULL);
  /* Each stack costs two mappings: the kernel refuses one at some point
   * near vm.max_map_count / 2, and that must be an error code. */
  while (n < CAP) {
    err = weft_fiber_new(nothing, NULL, WEFT_FIBER_MIN_STACK, &fs[n]);
    if (err) break;
    n++;
  }
  ASSERT_EQ(err, WEFT_ENOSTACK);
  ASSERT_GT(n, 1000);
  for (i = 0; i < n; i++) ASSERT_OK(weft_fiber_free(fs[i]));
  weft_fiber_trim_pool();
  free(fs);
  /* And fibers work again afterwards. */
  fiber_runs_fn_and_returns_its_value();
}

TEST_MAIN(T(fiber_runs_fn_and_returns_its_value)
          T(fiber_suspend_and_resume_pass_values)
          T(fiber_suspends_from_100_frames_deep)
          T(fiber_many_interleave_in_order) T(fiber_nests_and_tracks_current)
          T(fiber_invalid_transitions_are_errors)
          T(fiber_suspended_can_be_freed)
          T(fiber_keeps_its_own_fp_control_state)
          T(fiber_stack_overflow_hits_the_guard_page)
          T(fiber_default_stack_size_is_settable)
          T(fiber_lifecycles_reuse_pooled_stacks)
          T(fiber_map_count_limit_fails_cleanly))
