/* test_immediate.c: callbacks for the next dispatch pass. */
#include "test.h"

static int log_[16], log_n;
static void logger(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg;
  log_[log_n++] = (int)(intptr_t)data;
}

static void immediate_runs_in_creation_order(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  for (i = 0; i < 5; i++)
    ASSERT_OK(weft_immediately(loop, logger, (void *)(intptr_t)i, 0, &id));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_EQ(log_n, 0); /* never from inside the constructor */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_NOWAIT));
  ASSERT_EQ(log_n, 5);
  for (i = 0; i < 5; i++) ASSERT_EQ(log_[i], i);
  ASSERT_EQ(weft_watch_cancel(loop, id), WEFT_ENOENT); /* collected */
  test_free_loop(loop);
}

struct chain {
  int left, runs;
};
static void relay(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  struct chain *c = data;
  (void)arg;
  c->runs++;
  if (--c->left > 0) ASSERT_OK(weft_immediately(loop, relay, c, 0, &id));
}

static void immediate_chain_takes_one_iteration_per_link(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct chain c = {4, 0};
  int ticks = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_immediately(loop, relay, &c, 0, &id));
  while (weft_loop_run(loop, WEFT_RUN_NOWAIT)) {
    ticks++;
    ASSERT_EQ(c.runs, ticks); /* never two links in one iteration */
  }
  ASSERT_EQ(c.runs, 4);
  test_free_loop(loop);
}

static void immediate_chain_does_not_starve_timers(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct chain c = {1000000, 0};
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_immediately(loop, relay, &c, 0, &id));
  ASSERT_OK(weft_once(loop, 5, test_count_cb, &fired, 0, &id));
  while (!fired) ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_ONCE), 1);
  ASSERT_GT(c.left, 0); /* the timer got its turn mid-chain */
  c.left = 1;
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  test_free_loop(loop);
}

static void immediate_disable_enable_and_cancel(void) {
  weft_loop_t *loop;
  weft_id_t a, b, c;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  ASSERT_OK(weft_immediately(loop, logger, (void *)1, 0, &a));
  ASSERT_OK(weft_immediately(loop, logger, (void *)2, WEFT_WATCH_DISABLED, &b));
  ASSERT_OK(weft_immediately(loop, logger, (void *)3, 0, &c));
  ASSERT_OK(weft_watch_cancel(loop, c));
  ASSERT_OK(weft_watch_disable(loop, a));
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_EQ(log_n, 0);
  ASSERT_OK(weft_watch_enable(loop, b));
  ASSERT_OK(weft_watch_enable(loop, a)); /* queued after b now */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(log_n, 2);
  ASSERT_EQ(log_[0], 2);
  ASSERT_EQ(log_[1], 1);
  test_free_loop(loop);
}

static void immediate_unref_lets_run_return(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_immediately(loop, test_count_cb, &fired, WEFT_WATCH_UNREF, &id));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_OK(weft_watch_ref(loop, id));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_OK(weft_watch_unref(loop, id));
  /* Nothing referenced: run returns at once, as libuv's does. */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_EQ(fired, 0);
  /* While a referenced watcher keeps the loop going, it runs. */
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 2);
  test_free_loop(loop);
}

#include <unistd.h>

static void queue_from_io(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  weft_id_t imm;
  (void)fd;
  ASSERT_OK(weft_watch_cancel(loop, id));
  ASSERT_OK(weft_immediately(loop, test_count_cb, data, 0, &imm));
}

static void immediate_from_an_io_callback_waits_for_next_iteration(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int p[2], fired = 0;
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], queue_from_io, &fired, 0, &id));
  /* The I/O callback runs before this iteration's dispatch pass; the
   * immediately it queues must still wait for the next iteration. */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
  ASSERT_EQ(fired, 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

TEST_MAIN(T(immediate_from_an_io_callback_waits_for_next_iteration)
          T(immediate_runs_in_creation_order)
          T(immediate_chain_takes_one_iteration_per_link)
          T(immediate_chain_does_not_starve_timers)
          T(immediate_disable_enable_and_cancel)
          T(immediate_unref_lets_run_return))
