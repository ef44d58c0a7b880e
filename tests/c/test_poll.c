/* test_poll.c: one-shot polls and the unwatch notification. */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct got {
  int calls;
  int fd;
  int revents;
  weft_id_t id;
};

static void on_poll(weft_loop_t *loop, weft_id_t id, int fd, int revents,
                    void *data) {
  struct got *g = data;
  (void)loop;
  g->calls++;
  g->fd = fd;
  g->revents = revents;
  g->id = id;
}

static void poll_fires_once_when_ready(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct got g = {0, -1, -1, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_poll(loop, p[0], WEFT_POLLIN, -1, on_poll, &g, &id));
  ASSERT_EQ(weft_watch_kind(loop, id), WEFT_KIND_POLL);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
  ASSERT_EQ(g.calls, 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* ends: poll is gone */
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.fd, p[0]);
  ASSERT_EQ(g.revents, WEFT_POLLIN);
  ASSERT_EQ(g.id, id);
  ASSERT_EQ(weft_watch_cancel(loop, id), WEFT_ENOENT);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void count_walk(weft_loop_t *loop, weft_id_t id, void *data) {
  (void)loop, (void)id, (void)data;
}

static void poll_times_out_with_zero(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct got g = {0, -1, -1, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_poll(loop, p[0], WEFT_POLLIN, 20, on_poll, &g, &id));
  /* Its timeout is internal: a walk sees the poll alone. */
  ASSERT_EQ(weft_loop_walk(loop, count_walk, NULL), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.revents, 0);
  ASSERT_EQ(g.fd, p[0]);
  test_free_loop(loop); /* the timer went with it */
  close(p[0]);
  close(p[1]);
}

static void poll_reports_hang_up(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct got g = {0, -1, -1, 0};
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_poll(loop, sv[0], WEFT_POLLIN, -1, on_poll, &g, &id));
  close(sv[1]);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(g.calls, 1);
  ASSERT(g.revents & WEFT_POLLHUP);
  test_free_loop(loop);
  close(sv[0]);
}

static void poll_cancel_stops_it(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct got g = {0, -1, -1, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_poll(loop, p[1], WEFT_POLLOUT, 10, on_poll, &g, &id));
  ASSERT_OK(weft_watch_cancel(loop, id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(g.calls, 0);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void poll_rejects_bad_input(void) {
  weft_loop_t *loop;
  weft_id_t id = 0;
  struct got g = {0, -1, -1, 0};
  int p[2], file;
  char path[] = "/tmp/weft-poll-XXXXXX";
  ASSERT_OK(pipe(p));
  file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_poll(loop, 999, WEFT_POLLIN, -1, on_poll, &g, &id),
            WEFT_EBADF);
  ASSERT_EQ(weft_poll(loop, -1, WEFT_POLLIN, -1, on_poll, &g, &id),
            WEFT_EBADF);
  /* A regular file is always ready, yet refused before anything runs. */
  ASSERT_EQ(weft_poll(loop, file, WEFT_POLLIN, -1, on_poll, &g, &id),
            WEFT_EPERM);
  ASSERT_EQ(weft_poll(loop, p[0], 0, -1, on_poll, &g, &id), WEFT_EINVAL);
  ASSERT_EQ(weft_poll(loop, p[0], WEFT_POLLNVAL, -1, on_poll, &g, &id),
            WEFT_EINVAL);
  ASSERT_EQ(weft_poll(loop, p[0], WEFT_POLLIN, -2, on_poll, &g, &id),
            WEFT_EINVAL);
  ASSERT_EQ(weft_poll(loop, p[0], WEFT_POLLIN, -1, NULL, &g, &id),
            WEFT_EINVAL);
  ASSERT_EQ(id, 0);
  /* The loop still works. */
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_poll(loop, p[0], WEFT_POLLIN, -1, on_poll, &g, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(g.calls, 1);
  test_free_loop(loop);
  close(file);
  close(p[0]);
  close(p[1]);
}

static void poll_gets_nval_when_weft_closes_the_fd(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  weft_id_t id, other;
  struct got g = {0, -1, -1, 0};
  int p[2], n = 0;
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, p[0], 0, &s));
  ASSERT_OK(weft_poll(loop, p[0], WEFT_POLLIN, 5000, on_poll, &g, &id));
  ASSERT_OK(weft_readable(loop, p[0], test_count_cb, &n, 0, &other));
  ASSERT_OK(weft_stream_close(s));
  ASSERT_EQ(g.calls, 0); /* from the loop, never inside the close */
  ASSERT_EQ(weft_watch_kind(loop, other), WEFT_ENOENT); /* cancelled */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(g.calls, 1);
  ASSERT_EQ(g.revents, WEFT_POLLNVAL);
  ASSERT_EQ(g.fd, p[0]);
  ASSERT_EQ(n, 0);
  test_free_loop(loop);
  close(p[1]);
}

struct unwatched {
  int calls;
  int fd;
};

static void on_unwatch(weft_loop_t *loop, int fd, void *data) {
  struct unwatched *u = data;
  (void)loop;
  u->calls++;
  u->fd = fd;
}

static void unwatch_tells_when_an_fd_leaves(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  struct unwatched u = {0, -1};
  int p[2], n = 0;
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_loop_on_unwatch(NULL, on_unwatch, &u), WEFT_EINVAL);
  ASSERT_OK(weft_loop_on_unwatch(loop, on_unwatch, &u));
  ASSERT_OK(weft_readable(loop, p[0], test_count_cb, &n, 0, &a));
  ASSERT_OK(weft_readable(loop, p[0], test_count_cb, &n, 0, &b));
  ASSERT_OK(weft_watch_cancel(loop, a));
  ASSERT_EQ(u.calls, 0); /* b still watches it */
  ASSERT_OK(weft_watch_cancel(loop, b));
  ASSERT_EQ(u.calls, 1);
  ASSERT_EQ(u.fd, p[0]);
  ASSERT_OK(weft_loop_on_unwatch(loop, NULL, NULL));
  ASSERT_OK(weft_readable(loop, p[0], test_count_cb, &n, 0, &a));
  ASSERT_OK(weft_watch_cancel(loop, a));
  ASSERT_EQ(u.calls, 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

TEST_MAIN(T(poll_fires_once_when_ready) T(poll_times_out_with_zero)
              T(poll_reports_hang_up) T(poll_cancel_stops_it)
                  T(poll_rejects_bad_input)
                      T(poll_gets_nval_when_weft_closes_the_fd)
                          T(unwatch_tells_when_an_fd_leaves))
