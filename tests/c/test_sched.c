/* test_sched.c: tasks: spawn, await, delay, fd waits, cancellation. */
#include "test.h"

#include <unistd.h>

static char log_[64];
static int log_n;
static void put(char c) {
  log_[log_n++] = c;
  log_[log_n] = 0;
}

static void say(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self;
  put(*(const char *)arg);
}

static void sched_tasks_start_from_the_loop_in_fifo_order(void) {
  weft_loop_t *loop;
  weft_promise_t *a, *b;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  ASSERT_OK(weft_spawn(loop, say, "a", 0, &a));
  ASSERT_OK(weft_spawn(loop, say, "b", 0, &b));
  ASSERT_OK(weft_defer(loop, say, "c", 0));
  ASSERT_EQ(log_n, 0); /* nothing runs inside spawn */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_STR_EQ(log_, "abc");
  /* A task that returns without settling its promise fulfils it. */
  ASSERT_EQ(weft_promise_state(a), WEFT_PROMISE_FULFILLED);
  ASSERT(weft_promise_value(a) == NULL);
  weft_promise_unref(a);
  weft_promise_unref(b);
  test_free_loop(loop);
}

struct sleeper {
  uint64_t ms;
  char mark;
};

static int asleep, most_asleep;

static void sleep_then_mark(weft_loop_t *loop, weft_promise_t *self,
                            void *arg) {
  struct sleeper *s = arg;
  ASSERT(weft_task_loop() == loop);
  if (++asleep > most_asleep) most_asleep = asleep;
  ASSERT_OK(weft_delay(s->ms));
  asleep--;
  put(s->mark);
  ASSERT_OK(weft_promise_resolve(self, s, NULL));
}

static void sched_concurrent_delays_overlap(void) {
  weft_loop_t *loop;
  weft_promise_t *p[3], *all;
  struct sleeper s[3] = {{60, '3'}, {20, '1'}, {40, '2'}};
  uint64_t start;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  start = weft_loop_now(loop);
  for (i = 0; i < 3; i++) ASSERT_OK(weft_spawn(loop, sleep_then_mark, &s[i], 0, &p[i]));
  ASSERT_OK(weft_promise_all(loop, p, 3, &all));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "123");
  ASSERT_EQ(weft_promise_state(all), WEFT_PROMISE_FULFILLED);
  ASSERT(weft_promise_value(p[1]) == &s[1]);
  /* Concurrent: all three slept at once, so the whole took the longest
   * delay, not the sum. */
  ASSERT_EQ(most_asleep, 3);
  ASSERT_GE(weft_loop_now(loop), start + 60);
  weft_promise_unref(all);
  for (i = 0; i < 3; i++) weft_promise_unref(p[i]);
  test_free_loop(loop);
}

static weft_promise_t *shared;

static void awaiter(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  const char *msg;
  int r;
  (void)loop, (void)arg;
  r = weft_await(shared);
  if (r == 0) {
    put(*(const char *)weft_promise_value(shared));
  } else {
    weft_promise_error(shared, &msg);
    weft_promise_reject(self, r, msg);
  }
}

static void settler(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self;
  ASSERT_OK(weft_delay(5));
  if (arg) ASSERT_OK(weft_promise_resolve(shared, arg, NULL));
  else ASSERT_OK(weft_promise_reject(shared, WEFT_EIO, "broken"));
  put('s');
}

static void sched_await_returns_the_outcome(void) {
  weft_loop_t *loop;
  weft_promise_t *a, *b, *c;
  const char *msg;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  ASSERT_OK(weft_promise_new(loop, &shared));
  ASSERT_OK(weft_spawn(loop, awaiter, NULL, 0, &a));
  ASSERT_OK(weft_spawn(loop, awaiter, NULL, 0, &b));
  ASSERT_OK(weft_spawn(loop, settler, "v", 0, &c));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  /* The settler finished its turn before the awaiters resumed. */
  ASSERT_STR_EQ(log_, "svv");
  weft_promise_unref(shared);
  weft_promise_unref(a);
  weft_promise_unref(b);
  weft_promise_unref(c);
  ASSERT_OK(weft_promise_new(loop, &shared));
  ASSERT_OK(weft_spawn(loop, awaiter, NULL, 0, &a));
  ASSERT_OK(weft_spawn(loop, settler, NULL, 0, &c));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_error(a, &msg), WEFT_EIO);
  ASSERT_STR_EQ(msg, "broken");
  weft_promise_unref(shared);
  weft_promise_unref(a);
  weft_promise_unref(c);
  test_free_loop(loop);
}

static void sched_waits_outside_a_task_are_refused(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  ASSERT_EQ(weft_await(p), WEFT_EINVAL);
  ASSERT_EQ(weft_delay(1), WEFT_EINVAL);
  ASSERT_EQ(weft_wait_fd(0, WEFT_READABLE, 1), WEFT_EINVAL);
  ASSERT(weft_task_loop() == NULL);
  ASSERT_EQ(weft_spawn(loop, NULL, NULL, 0, &p), WEFT_EINVAL);
  ASSERT_EQ(weft_spawn(NULL, say, NULL, 0, &p), WEFT_EINVAL);
  ASSERT_EQ(weft_spawn(loop, say, NULL, 1, &p), WEFT_EINVAL); /* stack */
  weft_promise_unref(p);
  test_free_loop(loop);
}

static void *plain_fiber(weft_fiber_t *f, void *arg) {
  weft_promise_t *p = arg;
  (void)f;
  /* A host's own fiber, with its own data, is not a task. */
  ASSERT_EQ(weft_await(p), WEFT_EINVAL);
  ASSERT_EQ(weft_delay(1), WEFT_EINVAL);
  ASSERT(weft_task_loop() == NULL);
  return NULL;
}

static void sched_waits_in_a_plain_fiber_are_refused(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  weft_fiber_t *f;
  int x;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  ASSERT_OK(weft_fiber_new(plain_fiber, p, 0, &f));
  weft_fiber_set_data(f, &x);
  ASSERT_OK(weft_fiber_resume(f, NULL, NULL));
  ASSERT_EQ(weft_fiber_status(f), WEFT_FIBER_TERMINATED);
  ASSERT_OK(weft_fiber_free(f));
  weft_promise_unref(p);
  test_free_loop(loop);
}

static int pipe_fds[2];

static void reader(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  char c;
  int r;
  (void)loop, (void)self, (void)arg;
  r = weft_wait_fd(pipe_fds[0], WEFT_READABLE, 20);
  ASSERT_EQ(r, WEFT_ETIMEDOUT); /* nothing written yet */
  r = weft_wait_fd(pipe_fds[0], WEFT_READABLE, -1);
  ASSERT_EQ(r, WEFT_READABLE);
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  put(c);
  ASSERT_EQ(weft_wait_fd(-1, WEFT_READABLE, 1), WEFT_EBADF);
  ASSERT_EQ(weft_wait_fd(pipe_fds[0], 0, 1), WEFT_EINVAL);
}

static void writer(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self, (void)arg;
  ASSERT_OK(weft_delay(40));
  ASSERT_EQ(weft_wait_fd(pipe_fds[1], WEFT_WRITABLE, -1), WEFT_WRITABLE);
  ASSERT_EQ(write(pipe_fds[1], "w", 1), 1);
}

static void sched_wait_fd_with_timeout(void) {
  weft_loop_t *loop;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(pipe(pipe_fds));
  log_n = 0;
  ASSERT_OK(weft_defer(loop, reader, NULL, 0));
  ASSERT_OK(weft_defer(loop, writer, NULL, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "w");
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  test_free_loop(loop);
}

/* Waits in the way arg names, expects WEFT_ECANCELED, and checks that every
 * later wait is refused the same way. */
static void cancellable(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  int kind = (int)(intptr_t)arg, r;
  weft_promise_t *never;
  (void)self;
  ASSERT_OK(weft_promise_new(loop, &never));
  switch (kind) {
  case 0: r = weft_delay(100000); break;
  case 1: r = weft_await(never); break;
  default: r = weft_wait_fd(pipe_fds[0], WEFT_READABLE, -1); break;
  }
  ASSERT_EQ(r, WEFT_ECANCELED);
  ASSERT_EQ(weft_delay(0), WEFT_ECANCELED);
  ASSERT_EQ(weft_await(never), WEFT_ECANCELED);
  put((char)('0' + kind)); /* cleaned up and returned */
  weft_promise_unref(never);
}

static void canceller(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self;
  ASSERT_OK(weft_delay(5));
  ASSERT_OK(weft_promise_cancel(arg));
}

static void sched_cancel_at_each_kind_of_wait(void) {
  weft_loop_t *loop;
  weft_promise_t *t[3];
  int k;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(pipe(pipe_fds));
  log_n = 0;
  for (k = 0; k < 3; k++) {
    ASSERT_OK(weft_spawn(loop, cancellable, (void *)(intptr_t)k, 0, &t[k]));
    ASSERT_OK(weft_defer(loop, canceller, t[k], 0));
  }
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* nothing left hanging */
  ASSERT_STR_EQ(log_, "012");
  for (k = 0; k < 3; k++) {
    ASSERT_EQ(weft_promise_state(t[k]), WEFT_PROMISE_CANCELLED);
    weft_promise_unref(t[k]);
  }
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  test_free_loop(loop);
}

/* Cleans up after its cancellation, then returns. */
static int cleaned;
static void slow_to_cancel(weft_loop_t *loop, weft_promise_t *self,
                           void *arg) {
  (void)loop, (void)self, (void)arg;
  put('s');
  ASSERT_EQ(weft_delay(100000), WEFT_ECANCELED);
  ASSERT_EQ(weft_delay(1), WEFT_ECANCELED); /* sticky */
  cleaned = 1;
}

static void await_cancelled(weft_loop_t *loop, weft_promise_t *self,
                            void *arg) {
  weft_promise_t *t = arg;
  (void)loop, (void)self;
  ASSERT_OK(weft_promise_cancel(t));
  ASSERT_EQ(weft_promise_cancel(t), WEFT_EBUSY); /* once */
  /* Still pending while it cleans up: cancelled once it has ended. */
  ASSERT_EQ(weft_promise_state(t), WEFT_PROMISE_PENDING);
  ASSERT_EQ(cleaned, 0);
  ASSERT_EQ(weft_await(t), WEFT_ECANCELED);
  ASSERT_EQ(cleaned, 1);
  ASSERT_EQ(weft_promise_state(t), WEFT_PROMISE_CANCELLED);
  put('a');
}

static void sched_await_of_a_cancelled_task_waits_for_its_end(void) {
  weft_loop_t *loop;
  weft_promise_t *t, *never;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = cleaned = 0;
  ASSERT_OK(weft_spawn(loop, slow_to_cancel, NULL, 0, &t));
  ASSERT_OK(weft_defer(loop, await_cancelled, t, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "sa");
  weft_promise_unref(t);
  /* One cancelled before it started never runs, and is cancelled. */
  ASSERT_OK(weft_spawn(loop, slow_to_cancel, NULL, 0, &never));
  ASSERT_OK(weft_promise_cancel(never));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "sa");
  ASSERT_EQ(weft_promise_state(never), WEFT_PROMISE_CANCELLED);
  weft_promise_unref(never);
  test_free_loop(loop);
}

static void saw_cleanup(weft_promise_t *p, void *data) {
  (void)p;
  *(int *)data = cleaned;
}

static void sched_timeout_raises_once_the_cancelled_task_has_ended(void) {
  weft_loop_t *loop;
  weft_promise_t *t, *out;
  int cleaned_when_settled = -1;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = cleaned = 0;
  ASSERT_OK(weft_spawn(loop, slow_to_cancel, NULL, 0, &t));
  ASSERT_OK(weft_promise_timeout(t, 5, &out));
  ASSERT_OK(weft_promise_then(out, saw_cleanup, &cleaned_when_settled));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_error(out, NULL), WEFT_ETIMEDOUT);
  ASSERT_EQ(weft_promise_state(t), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(cleaned_when_settled, 1);
  weft_promise_unref(out);
  weft_promise_unref(t);
  test_free_loop(loop);
}

static void sched_cancelled_combination_settles_once_its_tasks_ended(void) {
  weft_loop_t *loop;
  weft_promise_t *t[2], *all;
  int cleaned_when_settled = -1;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = cleaned = 0;
  ASSERT_OK(weft_spawn(loop, slow_to_cancel, NULL, 0, &t[0]));
  ASSERT_OK(weft_spawn(loop, slow_to_cancel, NULL, 0, &t[1]));
  ASSERT_OK(weft_promise_all(loop, t, 2, &all));
  ASSERT_OK(weft_promise_then(all, saw_cleanup, &cleaned_when_settled));
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1); /* both wait now */
  ASSERT_STR_EQ(log_, "ss");
  ASSERT_OK(weft_promise_cancel(all));
  ASSERT_EQ(weft_promise_state(all), WEFT_PROMISE_PENDING);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_state(all), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_state(t[0]), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_state(t[1]), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(cleaned_when_settled, 1);
  weft_promise_unref(all);
  weft_promise_unref(t[0]);
  weft_promise_unref(t[1]);
  test_free_loop(loop);
}

static void ping(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  int i;
  (void)loop, (void)self, (void)arg;
  for (i = 0; i < 100; i++) ASSERT_OK(weft_delay(0));
}

static void sched_many_tasks_interleave(void) {
  weft_loop_t *loop;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  for (i = 0; i < 300; i++) ASSERT_OK(weft_defer(loop, ping, NULL, 32 * 1024));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

/* A guard that runs each pass inside its own frame, as a host's protected
 * call would, and counts the passes; one that stops early leaves the rest
 * for the next pass. */
static int passes, guard_left;
static void counting_guard(weft_loop_t *loop, void *data) {
  passes++;
  guard_left = weft_loop_drain(loop);
  ASSERT(data == &passes);
}

static void queued_say(weft_loop_t *loop, void *data) {
  (void)loop;
  put(*(const char *)data);
}

static void sched_guard_runs_each_pass_of_the_run_queue(void) {
  weft_loop_t *loop;
  weft_promise_t *a;
  int other;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  passes = 0;
  ASSERT_OK(weft_loop_set_guard(loop, counting_guard, &passes));
  ASSERT_OK(weft_loop_set_guard(loop, counting_guard, &passes)); /* again */
  ASSERT_EQ(weft_loop_set_guard(loop, counting_guard, &other), WEFT_EBUSY);
  ASSERT_EQ(weft_loop_set_guard(loop, NULL, &other), WEFT_ENOENT);
  ASSERT_EQ(weft_loop_ready(loop), 0);
  ASSERT_OK(weft_spawn(loop, say, "a", 0, &a));
  ASSERT_OK(weft_loop_queue(loop, queued_say, "q"));
  ASSERT_EQ(weft_loop_ready(loop), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "aq"); /* everything ran, through the guard */
  ASSERT_GT(passes, 0);
  ASSERT_EQ(guard_left, 0);
  ASSERT_EQ(weft_loop_ready(loop), 0);
  weft_promise_unref(a);
  /* Removed: the loop drains by itself again. */
  ASSERT_OK(weft_loop_set_guard(loop, NULL, &passes));
  ASSERT_EQ(weft_loop_set_guard(loop, NULL, &passes), WEFT_ENOENT);
  passes = 0;
  ASSERT_OK(weft_loop_queue(loop, queued_say, "r"));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "aqr");
  ASSERT_EQ(passes, 0);
  ASSERT_EQ(weft_loop_set_guard(NULL, counting_guard, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_drain(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_drain(loop), 0); /* nothing queued */
  test_free_loop(loop);
}

TEST_MAIN(T(sched_tasks_start_from_the_loop_in_fifo_order)
          T(sched_guard_runs_each_pass_of_the_run_queue)
          T(sched_await_of_a_cancelled_task_waits_for_its_end)
          T(sched_timeout_raises_once_the_cancelled_task_has_ended)
          T(sched_cancelled_combination_settles_once_its_tasks_ended)
          T(sched_concurrent_delays_overlap) T(sched_await_returns_the_outcome)
          T(sched_waits_outside_a_task_are_refused)
          T(sched_waits_in_a_plain_fiber_are_refused)
          T(sched_wait_fd_with_timeout) T(sched_cancel_at_each_kind_of_wait)
          T(sched_many_tasks_interleave))
