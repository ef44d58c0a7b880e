/* test_timer.c: once and every timers. */
#include "test.h"

#include <time.h>

static void busy_wait_ms(uint64_t ms) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((uint64_t)((b.tv_sec - a.tv_sec) * 1000 +
                    (b.tv_nsec - a.tv_nsec) / 1000000) < ms);
}

struct rec {
  int n;
  uint64_t at[16];
  weft_id_t ids[16];
  uint64_t work_ms;    /* busy-wait this long in every call */
  int cancel_at;       /* cancel own id at this count */
};

static uint64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void record(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  struct rec *r = data;
  (void)arg;
  r->at[r->n] = weft_loop_now(loop);
  r->ids[r->n++] = id;
  if (r->work_ms) busy_wait_ms(r->work_ms);
  if (r->n == r->cancel_at) ASSERT_OK(weft_watch_cancel(loop, id));
}

static void timer_once_fires_after_its_delay(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct rec r = {0};
  uint64_t start;
  ASSERT_OK(weft_loop_new(&loop));
  start = weft_loop_now(loop);
  ASSERT_OK(weft_once(loop, 30, record, &r, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(r.n, 1);
  ASSERT_EQ(r.ids[0], id);
  ASSERT_GE(r.at[0], start + 30);
  /* Collected after it ran: its id is stale. */
  ASSERT_EQ(weft_watch_cancel(loop, id), WEFT_ENOENT);
  test_free_loop(loop);
}

static void timer_once_zero_in_a_callback_waits_for_next_pass(void);

static int chain_left;
static uint64_t chain_iter_seen[4];
static void chain(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  int *passes = data;
  (void)id, (void)arg;
  chain_iter_seen[3 - chain_left] = (uint64_t)*passes;
  if (--chain_left > 0) ASSERT_OK(weft_once(loop, 0, chain, data, 0, &id));
}

static void timer_once_zero_in_a_callback_waits_for_next_pass(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int passes = 0;
  ASSERT_OK(weft_loop_new(&loop));
  chain_left = 3;
  ASSERT_OK(weft_once(loop, 0, chain, &passes, 0, &id));
  /* One NOWAIT iteration runs exactly one link of the chain. */
  while (chain_left > 0) {
    ASSERT_LT(passes, 10);
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    passes++;
  }
  ASSERT_EQ(chain_iter_seen[0], 0);
  ASSERT_EQ(chain_iter_seen[1], 1);
  ASSERT_EQ(chain_iter_seen[2], 2);
  test_free_loop(loop);
}

/* The grid tests arm an every timer E (20 ms) and, in the same dispatch
 * pass (so from the same cached time, base), once timers O1..ON at 20 j:
 * markers of the grid, armed first.  A beat of E due at base + 20 j shares
 * its due time with Oj, so it fires in the same pass, right after Oj
 * (timers due at the same millisecond fire in arming order): what each
 * call sees is logged with the loop's cached time.  This
 * checks when a beat was due, never how late it came: a busy machine
 * delays beats (and may skip some), but must not shift the grid. */
enum { GRID_MARKS = 12 };
struct grid {
  weft_id_t marks[GRID_MARKS];
  uint64_t base, overrun_end;
  uint64_t work_ms, overrun_ms;
  int beats, stop_after;
  int n;
  struct { char kind; int j; uint64_t now; } log[64];
};

static void grid_log(weft_loop_t *loop, struct grid *g, char kind, int j) {
  ASSERT_LT(g->n, 64);
  g->log[g->n].kind = kind;
  g->log[g->n].j = j;
  g->log[g->n++].now = weft_loop_now(loop);
}

static struct grid *the_grid;

static void grid_beat(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  struct grid *g = data;
  (void)arg;
  grid_log(loop, g, 'E', 0);
  if (++g->beats == 1 && g->overrun_ms) {
    busy_wait_ms(g->overrun_ms);
    g->overrun_end = mono_ms(); /* the loop's clock: the same monotonic one */
  }
  busy_wait_ms(g->work_ms);
  if (g->beats == g->stop_after) ASSERT_OK(weft_watch_cancel(loop, id));
}

static void grid_mark(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)id, (void)arg;
  grid_log(loop, the_grid, 'O', (int)(intptr_t)data);
}

static void grid_arm(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  struct grid *g = data;
  weft_id_t e;
  int j;
  (void)id, (void)arg;
  g->base = weft_loop_now(loop);
  for (j = 1; j <= GRID_MARKS; j++)
    ASSERT_OK(weft_once(loop, 20 * (uint64_t)j, grid_mark,
                        (void *)(intptr_t)j, WEFT_WATCH_UNREF,
                        &g->marks[j - 1]));
  ASSERT_OK(weft_every(loop, 20, 20, grid_beat, g, 0, &e));
}

/* Runs the grid; returns the number of beats, each checked to come right
 * after a marker of the same pass; *js gets the markers' j. */
static int run_grid(struct grid *g, int *js) {
  weft_loop_t *loop;
  weft_id_t id;
  int i, beats = 0;
  ASSERT_OK(weft_loop_new(&loop));
  the_grid = g;
  ASSERT_OK(weft_immediately(loop, grid_arm, g, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  for (i = 0; i < g->n; i++) {
    if (g->log[i].kind != 'E') continue;
    ASSERT_GT(i, 0);
    ASSERT_EQ(g->log[i - 1].kind, 'O');
    ASSERT_EQ(g->log[i - 1].now, g->log[i].now); /* due with Oj: on grid */
    js[beats++] = g->log[i - 1].j;
  }
  for (i = 0; i < GRID_MARKS; i++) weft_watch_cancel(loop, g->marks[i]);
  the_grid = NULL;
  test_free_loop(loop);
  return beats;
}

static void timer_every_does_not_drift(void) {
  struct grid g = {0};
  int js[16], beats, i;
  g.work_ms = 7; /* re-arming from the end of each call would drift 7 ms */
  g.stop_after = 5;
  beats = run_grid(&g, js);
  ASSERT_EQ(beats, 5);
  for (i = 1; i < beats; i++) ASSERT_GT(js[i], js[i - 1]);
}

static void timer_every_skips_missed_beats(void) {
  struct grid g = {0};
  int js[16], beats;
  g.overrun_ms = 55; /* the first call overruns 2.75 beats */
  g.stop_after = 2;
  beats = run_grid(&g, js);
  ASSERT_EQ(beats, 2);
  ASSERT_EQ(js[0], 1);
  /* No burst: the second beat is the first one due after the overrun
   * ended (those due meanwhile were skipped), still on the grid. */
  ASSERT_GT(g.base + 20 * (uint64_t)js[1], g.overrun_end);
}

/* A timer armed outside the loop's callbacks (after blocking work, between
 * a host's ticks) counts from the real time, not the stale cached one. */
static void timer_armed_outside_the_loop_counts_from_now(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct rec r = {0};
  uint64_t armed;
  ASSERT_OK(weft_loop_new(&loop));
  busy_wait_ms(50); /* the loop's cached time is now 50 ms old */
  armed = mono_ms();
  ASSERT_OK(weft_once(loop, 30, record, &r, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(r.n, 1);
  ASSERT_GE(r.at[0], armed + 30);
  test_free_loop(loop);
}

static void timer_disabled_once_waits_full_delay_again(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct rec r = {0};
  uint64_t enabled_at;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 40, record, &r, 0, &id));
  ASSERT_OK(weft_watch_disable(loop, id));
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0); /* nothing alive */
  ASSERT_EQ(r.n, 0);
  busy_wait_ms(30);
  weft_loop_update_time(loop);
  enabled_at = weft_loop_now(loop);
  ASSERT_OK(weft_watch_enable(loop, id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(r.n, 1);
  ASSERT_GE(r.at[0], enabled_at + 40);
  test_free_loop(loop);
}

struct pair {
  weft_id_t other;
  int fired;
};

static void cancel_other(weft_loop_t *loop, weft_id_t id, int arg,
                         void *data) {
  struct pair *p = data;
  (void)id, (void)arg;
  p->fired++;
  ASSERT_OK(weft_watch_cancel(loop, p->other));
}

static void timer_cancel_of_a_due_timer_in_the_same_pass(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  struct pair pa = {0, 0}, pb = {0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  /* Both due at the same ms: whichever runs first cancels the other. */
  ASSERT_OK(weft_once(loop, 5, cancel_other, &pa, 0, &a));
  ASSERT_OK(weft_once(loop, 5, cancel_other, &pb, 0, &b));
  pa.other = b;
  pb.other = a;
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(pa.fired, 1); /* armed first, fires first */
  ASSERT_EQ(pb.fired, 0);
  test_free_loop(loop);
}

static int order_log[8], order_n;
static void log_order(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg;
  order_log[order_n++] = (int)(intptr_t)data;
}

static void timer_same_due_fires_in_arming_order(void) {
  weft_loop_t *loop;
  weft_id_t id;
  int i;
  ASSERT_OK(weft_loop_new(&loop));
  order_n = 0;
  for (i = 0; i < 5; i++)
    ASSERT_OK(weft_once(loop, 70, log_order, (void *)(intptr_t)i, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(order_n, 5);
  for (i = 0; i < 5; i++) ASSERT_EQ(order_log[i], i);
  test_free_loop(loop);
}

static void timer_unref_does_not_keep_loop_alive(void) {
  weft_loop_t *loop;
  weft_id_t idle, id;
  int fired = 0, other = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_every(loop, 1, 1, test_count_cb, &fired, WEFT_WATCH_UNREF,
                       &idle));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  /* With a referenced timer the unref'd one runs along meanwhile. */
  ASSERT_OK(weft_once(loop, 30, test_count_cb, &other, 0, &id));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(other, 1);
  ASSERT_GE(fired, 1);
  ASSERT_OK(weft_watch_ref(loop, idle));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_OK(weft_watch_cancel(loop, idle));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  test_free_loop(loop);
}

static uint64_t many_late;
static void check_due(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)id, (void)arg;
  if (weft_loop_now(loop) < (uint64_t)(uintptr_t)data) many_late++;
  *(int *)weft_loop_get_data(loop) += 1;
}

static void timer_many_random_timers_none_early(void) {
  enum { N = 50000 };
  weft_loop_t *loop;
  weft_id_t id;
  uint32_t x = 2463534242u;
  int fired = 0, i;
  uint64_t now;
  ASSERT_OK(weft_loop_new(&loop));
  weft_loop_set_data(loop, &fired);
  now = weft_loop_now(loop);
  for (i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    ASSERT_OK(weft_once(loop, x % 101, check_due,
                        (void *)(uintptr_t)(now + x % 101), 0, &id));
  }
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, N);
  ASSERT_EQ(many_late, 0); /* "late" here means before its due time */
  test_free_loop(loop);
}

TEST_MAIN(T(timer_once_fires_after_its_delay)
          T(timer_once_zero_in_a_callback_waits_for_next_pass)
          T(timer_every_does_not_drift) T(timer_every_skips_missed_beats)
          T(timer_armed_outside_the_loop_counts_from_now)
          T(timer_disabled_once_waits_full_delay_again)
          T(timer_cancel_of_a_due_timer_in_the_same_pass)
          T(timer_same_due_fires_in_arming_order)
          T(timer_unref_does_not_keep_loop_alive)
          T(timer_many_random_timers_none_early))
