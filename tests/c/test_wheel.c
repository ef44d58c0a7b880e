/* test_wheel.c: the timing wheel against a sorted reference (white box). */
#include "../../csrc/internal.h"
#include "test.h"

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static uint64_t seq;

static void put(weft__wheel *w, weft__tnode *n, uint64_t due) {
  n->due = due;
  n->seq = ++seq;
  weft__wheel_insert(w, n);
}

/* Pops every node from out, checking (due, seq) order and due <= now. */
static size_t drain(weft__link *out, uint64_t now, uint64_t *last_due,
                    uint64_t *last_seq) {
  size_t n = 0;
  while (!weft__list_empty(out)) {
    weft__tnode *t = WEFT__CONTAINER(weft__list_pop(out), weft__tnode, link);
    ASSERT_LE(t->due, now);
    ASSERT(t->due > *last_due || (t->due == *last_due && t->seq > *last_seq));
    *last_due = t->due;
    *last_seq = t->seq;
    n++;
  }
  return n;
}

static void wheel_fires_each_node_exactly_at_its_due_time(void) {
  enum { N = 20000 };
  static weft__wheel w;
  static weft__tnode nodes[N];
  weft__link out;
  uint64_t now = 1000, last_due = 0, last_seq = 0, fired = 0;
  size_t i;
  weft__wheel_init(&w, now);
  weft__list_init(&out);
  for (i = 0; i < N; i++) {
    /* Spread over every level: 0..63 ms, seconds, hours, a year. */
    uint64_t r = next_rand(), d;
    switch (r % 4) {
    case 0: d = r % 64; break;
    case 1: d = r % 5000; break;
    case 2: d = r % 4000000; break;
    default: d = (uint64_t)r * 8; break;
    }
    put(&w, &nodes[i], now + d);
  }
  /* Advance in uneven steps; nothing may fire early or late. */
  while (!weft__wheel_empty(&w)) {
    uint64_t next = weft__wheel_next(&w), step;
    ASSERT_GE(next, w.now);
    step = next_rand() % 3 == 0 ? next : next + next_rand() % 100000;
    weft__wheel_advance(&w, step, &out);
    ASSERT_EQ(w.now, step + 1);
    fired += drain(&out, step, &last_due, &last_seq);
    now = step;
  }
  ASSERT_EQ(fired, N);
  for (i = 0; i < N; i++) ASSERT_LE(nodes[i].due, now);
}

static void wheel_next_is_exact_within_level_zero(void) {
  static weft__wheel w;
  weft__tnode a, b;
  weft__link out;
  weft__wheel_init(&w, 100);
  weft__list_init(&out);
  ASSERT_EQ(weft__wheel_next(&w), UINT64_MAX);
  put(&w, &a, 130);
  put(&w, &b, 110);
  ASSERT_EQ(weft__wheel_next(&w), 110);
  weft__wheel_advance(&w, 109, &out);
  ASSERT(weft__list_empty(&out));
  weft__wheel_advance(&w, 110, &out);
  ASSERT(out.next == &b.link);
  weft__list_pop(&out);
  ASSERT_EQ(weft__wheel_next(&w), 130);
  weft__wheel_unlink(&w, &a);
  ASSERT(weft__wheel_empty(&w));
  ASSERT_EQ(weft__wheel_next(&w), UINT64_MAX);
}

static void wheel_same_ms_fires_in_arming_order_across_cascades(void) {
  static weft__wheel w;
  weft__tnode early, late;
  weft__link out;
  weft__wheel_init(&w, 0);
  weft__list_init(&out);
  put(&w, &early, 100); /* level 1: cascades down at 64 */
  weft__wheel_advance(&w, 50, &out);
  put(&w, &late, 100); /* level 0 directly */
  weft__wheel_advance(&w, 100, &out);
  ASSERT(out.next == &early.link);
  ASSERT(out.next->next == &late.link);
}

static void wheel_unlink_clears_occupancy(void) {
  enum { N = 1000 };
  static weft__wheel w;
  static weft__tnode nodes[N];
  size_t i;
  weft__wheel_init(&w, 5);
  for (i = 0; i < N; i++) put(&w, &nodes[i], 5 + next_rand() % 1000000);
  for (i = 0; i < N; i++) weft__wheel_unlink(&w, &nodes[i]);
  ASSERT(weft__wheel_empty(&w));
  ASSERT_EQ(weft__wheel_next(&w), UINT64_MAX);
}

static void wheel_far_future_and_clamped_due(void) {
  static weft__wheel w;
  weft__tnode far;
  weft__link out;
  weft__wheel_init(&w, 7);
  weft__list_init(&out);
  put(&w, &far, WEFT__WHEEL_MAX_DUE);
  ASSERT_LE(weft__wheel_next(&w), WEFT__WHEEL_MAX_DUE);
  weft__wheel_advance(&w, WEFT__WHEEL_MAX_DUE - 1, &out);
  ASSERT(weft__list_empty(&out));
  weft__wheel_advance(&w, WEFT__WHEEL_MAX_DUE, &out);
  ASSERT(out.next == &far.link);
}

TEST_MAIN(T(wheel_fires_each_node_exactly_at_its_due_time)
          T(wheel_next_is_exact_within_level_zero)
          T(wheel_same_ms_fires_in_arming_order_across_cascades)
          T(wheel_unlink_clears_occupancy)
          T(wheel_far_future_and_clamped_due))
