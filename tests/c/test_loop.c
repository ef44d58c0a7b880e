/* test_loop.c: the loop's life cycle, run modes, stop, and embedding. */
#include "test.h"

#include <poll.h>
#include <uv.h>

static void noop(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg, (void)data;
}

static void loop_new_run_free(void) {
  weft_loop_t *loop;
  int x;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  ASSERT(weft_loop_get_data(loop) == NULL);
  weft_loop_set_data(loop, &x);
  ASSERT(weft_loop_get_data(loop) == &x);
  ASSERT(weft_loop_uv(loop) != NULL);
  ASSERT_GE(weft_loop_backend_fd(loop), 0);
  test_free_loop(loop);
  ASSERT_OK(weft_loop_free(NULL));
}

static void loop_bad_arguments(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_EQ(weft_loop_new(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_new_uv(NULL, &loop), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_run(NULL, WEFT_RUN_DEFAULT), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_stop(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_alive(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_backend_fd(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_backend_timeout(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_now(NULL), 0);
  ASSERT(weft_loop_uv(NULL) == NULL);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_loop_run(loop, (weft_run_mode)7), WEFT_EINVAL);
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static void loop_free_refuses_with_live_watchers(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  /* Intact: the watcher still fires. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static void reenter(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)id, (void)arg;
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), WEFT_EBUSY);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  (*(int *)data)++;
}

static void loop_run_and_free_inside_a_callback_are_refused(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 0, reenter, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static int stop_log[8], stop_n;
static void stopper(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)id, (void)arg;
  stop_log[stop_n++] = (int)(intptr_t)data;
  if ((intptr_t)data == 1) ASSERT_OK(weft_loop_stop(loop));
}

static void loop_stop_keeps_due_callbacks_for_the_next_run(void) {
  weft_loop_t *loop;
  weft_id_t id;
  ASSERT_OK(weft_loop_new(&loop));
  stop_n = 0;
  ASSERT_OK(weft_once(loop, 0, stopper, (void *)1, 0, &id));
  ASSERT_OK(weft_once(loop, 0, stopper, (void *)2, 0, &id));
  ASSERT_OK(weft_immediately(loop, stopper, (void *)3, 0, &id));
  /* The first callback stops: nothing else runs in this run... */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 1);
  ASSERT_EQ(stop_n, 1);
  /* ...and nothing was lost: the rest runs next time, in order. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(stop_n, 3);
  ASSERT_EQ(stop_log[1], 2);
  ASSERT_EQ(stop_log[2], 3);
  test_free_loop(loop);
}

static void loop_stop_before_run_returns_at_once(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 0, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_stop(loop));
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static void loop_now_is_cached_and_backend_timeout_follows_timers(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0, t;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_loop_now(loop), weft_loop_now(loop));
  ASSERT_OK(weft_once(loop, 200, test_count_cb, &fired, 0, &id));
  /* libuv reports 0 for a loop that has never run an iteration. */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
  t = weft_loop_backend_timeout(loop);
  ASSERT_GT(t, 100);
  ASSERT_LE(t, 200);
  ASSERT_OK(weft_watch_cancel(loop, id));
  ASSERT_OK(weft_immediately(loop, test_count_cb, &fired, 0, &id));
  ASSERT_EQ(weft_loop_backend_timeout(loop), 0); /* due now */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static void loop_driven_by_an_external_poller(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0, rounds = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 30, test_count_cb, &fired, 0, &id));
  while (weft_loop_alive(loop)) {
    struct pollfd p = {weft_loop_backend_fd(loop), POLLIN, 0};
    poll(&p, 1, weft_loop_backend_timeout(loop));
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    ASSERT_LT(++rounds, 100); /* waits, never spins */
  }
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static void host_timer_cb(uv_timer_t *t) { (*(int *)t->data)++; }
static void host_close_cb(uv_handle_t *h) { (void)h; }

static void loop_over_a_host_uv_loop(void) {
  uv_loop_t uv;
  uv_timer_t host_timer;
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0, host = 0;
  ASSERT_OK(uv_loop_init(&uv));
  ASSERT_OK(weft_loop_new_uv(&uv, &loop));
  ASSERT(weft_loop_uv(loop) == &uv);
  uv_timer_init(&uv, &host_timer);
  host_timer.data = &host;
  uv_timer_start(&host_timer, host_timer_cb, 10, 0);
  ASSERT_OK(weft_once(loop, 20, test_count_cb, &fired, 0, &id));
  /* The host drives its own loop; weft's watchers ride along. */
  ASSERT_OK(uv_run(&uv, UV_RUN_DEFAULT));
  ASSERT_EQ(host, 1);
  ASSERT_EQ(fired, 1);
  /* weft's handles never keep the host's loop alive on their own. */
  ASSERT_EQ(uv_loop_alive(&uv), 0);
  uv_close((uv_handle_t *)&host_timer, host_close_cb);
  ASSERT_OK(weft_loop_free(loop));
  ASSERT_OK(uv_run(&uv, UV_RUN_DEFAULT)); /* runs the close callbacks */
  ASSERT_OK(uv_loop_close(&uv));
}

static void loop_free_refuses_with_host_handles_on_own_loop(void) {
  weft_loop_t *loop;
  uv_timer_t t;
  ASSERT_OK(weft_loop_new(&loop));
  uv_timer_init(weft_loop_uv(loop), &t);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  uv_close((uv_handle_t *)&t, host_close_cb);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_NOWAIT));
  test_free_loop(loop);
  (void)noop;
}

static char qlog[8];
static int qn;
static void queued_cb(weft_loop_t *loop, void *data) {
  (void)loop;
  qlog[qn++] = *(const char *)data;
  if (*(const char *)data == 'a') ASSERT_OK(weft_loop_queue(loop, queued_cb, "c"));
}

static void loop_queue_runs_from_dispatch_in_fifo_order(void) {
  weft_loop_t *loop;
  ASSERT_OK(weft_loop_new(&loop));
  qn = 0;
  ASSERT_OK(weft_loop_queue(loop, queued_cb, "a"));
  ASSERT_OK(weft_loop_queue(loop, queued_cb, "b"));
  ASSERT_EQ(qn, 0); /* never from inside the call */
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* queued work pending */
  ASSERT_EQ(weft_loop_queue(loop, NULL, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_loop_queue(NULL, queued_cb, "x"), WEFT_EINVAL);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(qn, 3);
  ASSERT_EQ(qlog[0], 'a');
  ASSERT_EQ(qlog[1], 'b');
  ASSERT_EQ(qlog[2], 'c'); /* queued while draining: runs after, in order */
  test_free_loop(loop);
}

TEST_MAIN(T(loop_queue_runs_from_dispatch_in_fifo_order) T(loop_new_run_free) T(loop_bad_arguments)
          T(loop_free_refuses_with_live_watchers)
          T(loop_run_and_free_inside_a_callback_are_refused)
          T(loop_stop_keeps_due_callbacks_for_the_next_run)
          T(loop_stop_before_run_returns_at_once)
          T(loop_now_is_cached_and_backend_timeout_follows_timers)
          T(loop_driven_by_an_external_poller) T(loop_over_a_host_uv_loop)
          T(loop_free_refuses_with_host_handles_on_own_loop))
