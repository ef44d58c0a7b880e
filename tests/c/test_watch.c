/* test_watch.c: watcher ids and the operations every kind shares. */
#include "test.h"

static void noop(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg, (void)data;
}

static int cmp_ids(const void *a, const void *b) {
  weft_id_t x = *(const weft_id_t *)a, y = *(const weft_id_t *)b;
  return x < y ? -1 : x > y;
}

static void watch_ids_are_never_reused(void) {
  enum { N = 20000 };
  static weft_id_t ids[N];
  weft_loop_t *loop;
  size_t i;
  ASSERT_OK(weft_loop_new(&loop));
  for (i = 0; i < N; i++) {
    ASSERT_OK(weft_once(loop, 1000, noop, NULL, 0, &ids[i]));
    ASSERT_NE(ids[i], 0);
    if (i % 3) ASSERT_OK(weft_watch_cancel(loop, ids[i])); /* reuse slots */
  }
  qsort(ids, N, sizeof ids[0], cmp_ids);
  for (i = 1; i < N; i++) ASSERT_NE(ids[i - 1], ids[i]);
  for (i = 0; i < N; i++) weft_watch_cancel(loop, ids[i]);
  test_free_loop(loop);
}

static void watch_stale_id_is_not_found_everywhere(void) {
  weft_loop_t *loop;
  weft_id_t id, fresh;
  void *data;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 5, noop, NULL, 0, &id));
  ASSERT_OK(weft_watch_cancel(loop, id));
  /* The slot is reused at once, under a new id. */
  ASSERT_OK(weft_once(loop, 5, noop, NULL, 0, &fresh));
  ASSERT_NE(fresh, id);
  ASSERT_EQ(weft_watch_cancel(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_enable(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_disable(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_ref(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_unref(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_kind(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_is_enabled(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_has_ref(loop, id), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_data(loop, id, &data), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_cancel(loop, 0), WEFT_ENOENT);
  ASSERT_EQ(weft_watch_cancel(loop, ~(weft_id_t)0), WEFT_ENOENT);
  /* The fresh watcher was not touched by any of that. */
  ASSERT_EQ(weft_watch_is_enabled(loop, fresh), 1);
  ASSERT_OK(weft_watch_cancel(loop, fresh));
  test_free_loop(loop);
}

static void watch_reports_kind_state_and_data(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  void *data = NULL;
  int x;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_immediately(loop, noop, &x, WEFT_WATCH_DISABLED, &a));
  ASSERT_OK(weft_every(loop, 10, 0, noop, NULL, WEFT_WATCH_UNREF, &b));
  ASSERT_EQ(weft_watch_kind(loop, a), WEFT_KIND_IMMEDIATELY);
  ASSERT_EQ(weft_watch_kind(loop, b), WEFT_KIND_EVERY);
  ASSERT_EQ(weft_watch_is_enabled(loop, a), 0);
  ASSERT_EQ(weft_watch_has_ref(loop, a), 1);
  ASSERT_EQ(weft_watch_is_enabled(loop, b), 1);
  ASSERT_EQ(weft_watch_has_ref(loop, b), 0);
  ASSERT_OK(weft_watch_data(loop, a, &data));
  ASSERT(data == &x);
  ASSERT_OK(weft_watch_enable(loop, a));
  ASSERT_OK(weft_watch_enable(loop, a)); /* enabling twice is harmless */
  ASSERT_EQ(weft_watch_is_enabled(loop, a), 1);
  ASSERT_OK(weft_watch_ref(loop, b));
  ASSERT_EQ(weft_watch_has_ref(loop, b), 1);
  ASSERT_OK(weft_watch_cancel(loop, a));
  ASSERT_OK(weft_watch_cancel(loop, b));
  test_free_loop(loop);
}

static void watch_bad_arguments(void) {
  weft_loop_t *loop;
  weft_id_t id = 0;
  int fired = 0;
  ASSERT_EQ(weft_watch_enable(NULL, 1), WEFT_EINVAL);
  ASSERT_EQ(weft_watch_kind(NULL, 1), WEFT_EINVAL);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_once(loop, 1, NULL, NULL, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_once(loop, 1, noop, NULL, 0, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_once(loop, 1, noop, NULL, 0x100, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_immediately(NULL, noop, NULL, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_every(loop, 0, 0, noop, NULL, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_watch_data(loop, 1, NULL), WEFT_EINVAL);
  ASSERT_EQ(id, 0); /* failures store nothing */
  /* The loop still works. */
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

struct walk {
  int seen;
  weft_id_t victim;
  weft_loop_t *loop;
};

static void walk_cb(weft_loop_t *loop, weft_id_t id, void *data) {
  struct walk *w = data;
  weft_id_t fresh;
  w->seen++;
  if (id != w->victim) weft_watch_cancel(loop, w->victim);
  /* Created during the walk: must not be visited. */
  ASSERT_OK(weft_once(loop, 100, noop, NULL, 0, &fresh));
}

static void cancel_all(weft_loop_t *loop, weft_id_t id, void *data) {
  (void)data;
  ASSERT_OK(weft_watch_cancel(loop, id));
}

static void watch_walk_visits_live_watchers_only(void) {
  weft_loop_t *loop;
  weft_id_t a, b, c;
  struct walk w = {0, 0, NULL};
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_once(loop, 1, noop, NULL, 0, &a));
  ASSERT_OK(weft_once(loop, 1, noop, NULL, 0, &b));
  ASSERT_OK(weft_once(loop, 1, noop, NULL, 0, &c));
  ASSERT_OK(weft_watch_cancel(loop, a)); /* a free slot to tempt reuse */
  w.victim = c;
  ASSERT_EQ(weft_loop_walk(loop, walk_cb, &w), 1); /* b; c cancelled by b */
  ASSERT_EQ(w.seen, 1);
  ASSERT_EQ(weft_loop_walk(loop, cancel_all, NULL), 2); /* b + one fresh */
  ASSERT_EQ(weft_loop_walk(loop, cancel_all, NULL), 0);
  ASSERT_EQ(weft_loop_walk(NULL, cancel_all, NULL), WEFT_EINVAL);
  test_free_loop(loop);
}

TEST_MAIN(T(watch_ids_are_never_reused)
          T(watch_stale_id_is_not_found_everywhere)
          T(watch_reports_kind_state_and_data) T(watch_bad_arguments)
          T(watch_walk_visits_live_watchers_only))
