/* test_signal.c: signal watchers. */
#include "test.h"

#include <signal.h>

struct sig {
  int hits, signo;
  int stop; /* stop the loop from the callback */
};

static void on_sig(weft_loop_t *loop, weft_id_t id, int signo, void *data) {
  struct sig *s = data;
  s->hits++;
  s->signo = signo;
  ASSERT_OK(weft_watch_cancel(loop, id));
  if (s->stop) weft_loop_stop(loop);
}

static void raise_soon(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg;
  raise((int)(intptr_t)data);
}

static void signal_delivers_signo(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct sig s = {0, 0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_signal(loop, SIGUSR1, on_sig, &s, 0, &id));
  ASSERT_EQ(weft_watch_kind(loop, id), WEFT_KIND_SIGNAL);
  ASSERT_OK(weft_once(loop, 1, raise_soon, (void *)(intptr_t)SIGUSR1, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 1);
  ASSERT_EQ(s.signo, SIGUSR1);
  test_free_loop(loop);
}

static void signal_two_watchers_same_signal(void) {
  weft_loop_t *loop;
  weft_id_t a, b, t;
  struct sig sa = {0, 0, 0}, sb = {0, 0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_signal(loop, SIGUSR2, on_sig, &sa, 0, &a));
  ASSERT_OK(weft_signal(loop, SIGUSR2, on_sig, &sb, 0, &b));
  ASSERT_OK(weft_once(loop, 1, raise_soon, (void *)(intptr_t)SIGUSR2, 0, &t));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(sa.hits, 1);
  ASSERT_EQ(sb.hits, 1);
  test_free_loop(loop);
}

static void signal_unref_does_not_keep_loop_alive(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct sig s = {0, 0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_signal(loop, SIGHUP, on_sig, &s, WEFT_WATCH_UNREF, &id));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_OK(weft_watch_cancel(loop, id));
  test_free_loop(loop);
}

static void signal_bad_numbers(void) {
  weft_loop_t *loop;
  weft_id_t id = 0;
  struct sig s = {0, 0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_signal(loop, 0, on_sig, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_signal(loop, -3, on_sig, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_signal(loop, 4096, on_sig, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_signal(loop, SIGKILL, on_sig, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_signal(loop, SIGSTOP, on_sig, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(id, 0);
  ASSERT_OK(weft_signal(loop, SIGUSR1, on_sig, &s, 0, &id));
  ASSERT_OK(weft_once(loop, 1, raise_soon, (void *)(intptr_t)SIGUSR1, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 1);
  test_free_loop(loop);
}

static void signal_arriving_while_stopped_is_kept(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct sig first = {0, 0, 1}, second = {0, 0, 0};
  ASSERT_OK(weft_loop_new(&loop));
  /* Both watchers see the same delivery; the first stops the loop, so
   * the second is held and delivered on the next run. */
  ASSERT_OK(weft_signal(loop, SIGUSR1, on_sig, &first, 0, &id));
  ASSERT_OK(weft_signal(loop, SIGUSR1, on_sig, &second, 0, &id));
  ASSERT_OK(weft_once(loop, 1, raise_soon, (void *)(intptr_t)SIGUSR1, 0, &id));
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  ASSERT_EQ(first.hits, 1);
  ASSERT_EQ(second.hits, 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(second.hits, 1);
  test_free_loop(loop);
}

TEST_MAIN(T(signal_delivers_signo) T(signal_two_watchers_same_signal)
          T(signal_unref_does_not_keep_loop_alive) T(signal_bad_numbers)
          T(signal_arriving_while_stopped_is_kept))
