/* test_promise.c: promises, continuations, combinators, timeouts. */
#include "test.h"

static char log_[64];
static int log_n;

static void note(weft_promise_t *p, void *data) {
  (void)p;
  log_[log_n++] = *(const char *)data;
  log_[log_n] = 0;
}

static void promise_continuations_run_from_the_loop_in_order(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  log_n = 0;
  ASSERT_OK(weft_promise_then(p, note, "a"));
  ASSERT_OK(weft_promise_then(p, note, "b"));
  ASSERT_OK(weft_promise_resolve(p, "value", NULL));
  ASSERT_EQ(log_n, 0); /* never from inside resolve */
  ASSERT_OK(weft_promise_then(p, note, "c")); /* already settled */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_STR_EQ(log_, "abc");
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_FULFILLED);
  ASSERT_STR_EQ((const char *)weft_promise_value(p), "value");
  ASSERT_EQ(weft_promise_error(p, NULL), 0);
  weft_promise_unref(p);
  test_free_loop(loop);
}

static void promise_settles_once(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  const char *msg;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  ASSERT_OK(weft_promise_reject(p, WEFT_EIO, "disk gone"));
  ASSERT_EQ(weft_promise_resolve(p, NULL, NULL), WEFT_EBUSY);
  ASSERT_EQ(weft_promise_reject(p, WEFT_EPERM, "x"), WEFT_EBUSY);
  ASSERT_EQ(weft_promise_cancel(p), WEFT_EBUSY);
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_REJECTED);
  ASSERT_EQ(weft_promise_error(p, &msg), WEFT_EIO);
  ASSERT_STR_EQ(msg, "disk gone");
  ASSERT(weft_promise_value(p) == NULL);
  weft_promise_unref(p);
  test_free_loop(loop);
}

static void promise_bad_arguments(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  const char *msg;
  ASSERT_EQ(weft_promise_new(NULL, &p), WEFT_EINVAL);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_promise_new(loop, NULL), WEFT_EINVAL);
  ASSERT_OK(weft_promise_new(loop, &p));
  ASSERT_EQ(weft_promise_reject(p, 0, "not an error"), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_reject(p, 5, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_then(p, NULL, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_then(NULL, note, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_state(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_resolve(NULL, NULL, NULL), WEFT_EINVAL);
  weft_promise_ref(NULL);
  weft_promise_unref(NULL);
  /* Still usable, and a NULL message falls back to strerror. */
  ASSERT_OK(weft_promise_reject(p, WEFT_ETIMEDOUT, NULL));
  ASSERT_EQ(weft_promise_error(p, &msg), WEFT_ETIMEDOUT);
  ASSERT_STR_EQ(msg, "timed out");
  weft_promise_unref(p);
  test_free_loop(loop);
}

static int hook_calls;
static void hook(weft_promise_t *p, void *data) {
  (void)data;
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_CANCELLED);
  hook_calls++;
}

static void hook_pending(weft_promise_t *p, void *data) {
  (void)data;
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_PENDING);
  hook_calls++;
}

static void promise_cancel_runs_the_producer_hook(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  hook_calls = 0;
  log_n = 0;
  ASSERT_OK(weft_promise_on_cancel(p, hook, NULL));
  ASSERT_OK(weft_promise_then(p, note, "x"));
  ASSERT_OK(weft_promise_cancel(p));
  ASSERT_EQ(hook_calls, 1); /* at once: the producer can stop now */
  ASSERT_EQ(weft_promise_error(p, NULL), WEFT_ECANCELED);
  ASSERT_EQ(weft_promise_on_cancel(p, hook, NULL), WEFT_EBUSY);
  ASSERT_EQ(log_n, 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "x");
  weft_promise_unref(p);
  test_free_loop(loop);
}

static void promise_deferred_cancel_waits_for_its_producer(void) {
  weft_loop_t *loop;
  weft_promise_t *p, *q, *done;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  hook_calls = 0;
  log_n = 0;
  ASSERT_OK(weft_promise_on_cancel(p, hook_pending, NULL));
  ASSERT_OK(weft_promise_defer_cancel(p));
  ASSERT_OK(weft_promise_then(p, note, "p"));
  ASSERT_OK(weft_promise_cancel(p));
  ASSERT_EQ(hook_calls, 1); /* the producer is told at once... */
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_PENDING); /* ...and ends it */
  ASSERT_EQ(weft_promise_cancelling(p), 1);
  ASSERT_EQ(weft_promise_cancel(p), WEFT_EBUSY); /* once */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(log_n, 0); /* nothing ran: still pending */
  /* Its producer returns normally after its cleanup: cancelled. */
  ASSERT_OK(weft_promise_resolve(p, NULL, NULL));
  ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_cancelling(p), 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "p");
  ASSERT_EQ(weft_promise_defer_cancel(p), WEFT_EBUSY);
  /* A producer that fails while cancelling fails as it says. */
  ASSERT_OK(weft_promise_new(loop, &q));
  ASSERT_OK(weft_promise_defer_cancel(q));
  ASSERT_OK(weft_promise_cancel(q));
  ASSERT_OK(weft_promise_reject(q, WEFT_EIO, "cleanup failed"));
  ASSERT_EQ(weft_promise_state(q), WEFT_PROMISE_REJECTED);
  /* settle_cancelled: cancelled, the hook not run (its producer ended). */
  hook_calls = 0;
  ASSERT_OK(weft_promise_new(loop, &done));
  ASSERT_OK(weft_promise_on_cancel(done, hook_pending, NULL));
  ASSERT_OK(weft_promise_settle_cancelled(done));
  ASSERT_EQ(hook_calls, 0);
  ASSERT_EQ(weft_promise_state(done), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_error(done, NULL), WEFT_ECANCELED);
  ASSERT_EQ(weft_promise_settle_cancelled(done), WEFT_EBUSY);
  ASSERT_EQ(weft_promise_settle_cancelled(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_promise_defer_cancel(NULL), WEFT_EINVAL);
  weft_promise_unref(done);
  weft_promise_unref(q);
  weft_promise_unref(p);
  test_free_loop(loop);
}

static int freed;
static void count_free(void *payload) {
  (void)payload;
  freed++;
}

static void promise_never_settled_is_freed_with_its_last_reference(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  ASSERT_OK(weft_promise_then(p, note, "never"));
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* a live promise */
  weft_promise_unref(p); /* its continuation goes with it */
  test_free_loop(loop);  /* and the loop has nothing left */
}

static void promise_payload_freed_with_the_promise(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  freed = 0;
  weft_promise_ref(p);
  ASSERT_OK(weft_promise_resolve(p, &freed, count_free));
  weft_promise_unref(p);
  ASSERT_EQ(freed, 0);
  weft_promise_unref(p);
  ASSERT_EQ(freed, 1);
  test_free_loop(loop);
}

static void new_n(weft_loop_t *loop, weft_promise_t **ps, int n) {
  int i;
  for (i = 0; i < n; i++) ASSERT_OK(weft_promise_new(loop, &ps[i]));
}

static void unref_n(weft_promise_t **ps, int n) {
  int i;
  for (i = 0; i < n; i++) weft_promise_unref(ps[i]);
}

static void promise_all_waits_for_every_input_or_first_failure(void) {
  weft_loop_t *loop;
  weft_promise_t *in[3], *all, *all2;
  const char *msg;
  ASSERT_OK(weft_loop_new(&loop));
  new_n(loop, in, 3);
  ASSERT_OK(weft_promise_all(loop, in, 3, &all));
  ASSERT_OK(weft_promise_resolve(in[2], NULL, NULL));
  ASSERT_OK(weft_promise_resolve(in[0], NULL, NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_state(all), WEFT_PROMISE_PENDING);
  ASSERT_OK(weft_promise_resolve(in[1], "one", NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_state(all), WEFT_PROMISE_FULFILLED);
  {
    /* Its value: the inputs, in order, to read the results from. */
    weft_promise_t **res = weft_promise_value(all);
    ASSERT(res[0] == in[0] && res[1] == in[1] && res[2] == in[2]);
    ASSERT_STR_EQ((const char *)weft_promise_value(res[1]), "one");
  }
  weft_promise_unref(all);
  unref_n(in, 3);
  new_n(loop, in, 3);
  ASSERT_OK(weft_promise_all(loop, in, 3, &all2));
  ASSERT_OK(weft_promise_reject(in[1], WEFT_EPERM, "no"));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_error(all2, &msg), WEFT_EPERM);
  ASSERT_STR_EQ(msg, "no");
  /* all has failed: the others, which nothing else awaits or chains, are
   * cancelled (and end the combinator). */
  ASSERT_EQ(weft_promise_state(in[0]), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_state(in[2]), WEFT_PROMISE_CANCELLED);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  weft_promise_unref(all2);
  unref_n(in, 3);
  test_free_loop(loop);
}

static void promise_any_and_race_report_the_winner(void) {
  weft_loop_t *loop;
  weft_promise_t *in[2], *any, *race;
  ASSERT_OK(weft_loop_new(&loop));
  new_n(loop, in, 2);
  ASSERT_OK(weft_promise_any(loop, in, 2, &any));
  ASSERT_OK(weft_promise_race(loop, in, 2, &race));
  ASSERT_OK(weft_promise_reject(in[0], WEFT_EIO, NULL));
  ASSERT_OK(weft_promise_resolve(in[1], "second", NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  /* any skips the failure; race takes the first to settle. */
  ASSERT(weft_promise_value(any) == in[1]);
  ASSERT_STR_EQ((const char *)weft_promise_value(weft_promise_value(any)),
                "second");
  ASSERT_EQ(weft_promise_error(race, NULL), WEFT_EIO);
  weft_promise_unref(any);
  weft_promise_unref(race);
  unref_n(in, 2);
  test_free_loop(loop);
}

static void promise_any_fails_when_all_fail_and_settle_waits_for_all(void) {
  weft_loop_t *loop;
  weft_promise_t *in[2], *any, *settle, *none_any, *none_all;
  ASSERT_OK(weft_loop_new(&loop));
  new_n(loop, in, 2);
  ASSERT_OK(weft_promise_any(loop, in, 2, &any));
  ASSERT_OK(weft_promise_settle(loop, in, 2, &settle));
  ASSERT_OK(weft_promise_reject(in[0], WEFT_EIO, NULL));
  ASSERT_OK(weft_promise_cancel(in[1]));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_error(any, NULL), WEFT_ECANCELED); /* the last */
  ASSERT_EQ(weft_promise_state(settle), WEFT_PROMISE_FULFILLED);
  ASSERT_OK(weft_promise_any(loop, NULL, 0, &none_any));
  ASSERT_OK(weft_promise_all(loop, NULL, 0, &none_all));
  ASSERT_EQ(weft_promise_error(none_any, NULL), WEFT_ENOENT);
  ASSERT_EQ(weft_promise_state(none_all), WEFT_PROMISE_FULFILLED);
  ASSERT_EQ(weft_promise_all(loop, NULL, 2, &none_all), WEFT_EINVAL);
  weft_promise_unref(any);
  weft_promise_unref(settle);
  weft_promise_unref(none_any);
  weft_promise_unref(none_all);
  unref_n(in, 2);
  test_free_loop(loop);
}

static void promise_decided_race_cancels_the_inputs_nobody_else_uses(void) {
  weft_loop_t *loop;
  weft_promise_t *in[3], *race;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  new_n(loop, in, 3);
  ASSERT_OK(weft_promise_race(loop, in, 3, &race));
  ASSERT_OK(weft_promise_then(in[2], note, "c"));
  ASSERT_OK(weft_promise_resolve(in[0], "fast", NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_NOWAIT));
  ASSERT(weft_promise_value(race) == in[0]);
  ASSERT_EQ(weft_promise_state(in[1]), WEFT_PROMISE_CANCELLED); /* a loser */
  ASSERT_EQ(weft_promise_state(in[2]), WEFT_PROMISE_PENDING);  /* chained */
  ASSERT_OK(weft_promise_resolve(in[2], NULL, NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "c");
  weft_promise_unref(race);
  unref_n(in, 3);
  test_free_loop(loop);
}

static void promise_cancelling_a_combination_cancels_its_inputs(void) {
  weft_loop_t *loop;
  weft_promise_t *in[2], *race;
  ASSERT_OK(weft_loop_new(&loop));
  new_n(loop, in, 2);
  ASSERT_OK(weft_promise_race(loop, in, 2, &race));
  ASSERT_OK(weft_promise_cancel(race));
  ASSERT_EQ(weft_promise_state(in[0]), WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_promise_state(in[1]), WEFT_PROMISE_CANCELLED);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  weft_promise_unref(race);
  unref_n(in, 2);
  test_free_loop(loop);
}

static void promise_timeout_rejects_late_and_cancels_the_source(void) {
  weft_loop_t *loop;
  weft_promise_t *slow, *t;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &slow));
  ASSERT_OK(weft_promise_timeout(slow, 10, &t));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_error(t, NULL), WEFT_ETIMEDOUT);
  ASSERT_EQ(weft_promise_state(slow), WEFT_PROMISE_CANCELLED);
  weft_promise_unref(t);
  weft_promise_unref(slow);
  test_free_loop(loop);
}

static void promise_timeout_passes_an_early_result_through(void) {
  weft_loop_t *loop;
  weft_promise_t *fast, *t;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &fast));
  ASSERT_OK(weft_promise_timeout(fast, 10000, &t));
  ASSERT_OK(weft_promise_resolve(fast, "ok", NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* no 10 s wait */
  ASSERT(weft_promise_value(t) == fast);
  weft_promise_unref(t);
  weft_promise_unref(fast);
  test_free_loop(loop);
}

TEST_MAIN(T(promise_continuations_run_from_the_loop_in_order)
          T(promise_settles_once) T(promise_bad_arguments)
          T(promise_cancel_runs_the_producer_hook)
          T(promise_deferred_cancel_waits_for_its_producer)
          T(promise_never_settled_is_freed_with_its_last_reference)
          T(promise_payload_freed_with_the_promise)
          T(promise_all_waits_for_every_input_or_first_failure)
          T(promise_any_and_race_report_the_winner)
          T(promise_any_fails_when_all_fail_and_settle_waits_for_all)
          T(promise_decided_race_cancels_the_inputs_nobody_else_uses)
          T(promise_cancelling_a_combination_cancels_its_inputs)
          T(promise_timeout_rejects_late_and_cancels_the_source)
          T(promise_timeout_passes_an_early_result_through))
