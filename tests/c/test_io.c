/* test_io.c: readable and writable watchers. */
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct io {
  int hits;
  int cancel_after; /* cancel own id after this many hits */
  int drain;        /* read what is there */
  weft_id_t other;  /* cancel this one on the first hit */
};

static void on_io(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  struct io *s = data;
  char buf[64];
  s->hits++;
  if (s->drain) (void)!read(fd, buf, sizeof buf);
  if (s->other) {
    ASSERT_OK(weft_watch_cancel(loop, s->other));
    s->other = 0;
  }
  if (s->hits == s->cancel_after) ASSERT_OK(weft_watch_cancel(loop, id));
}

static void io_readable_fires_while_data_waits(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct io s = {0, 3, 0, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, 0, &id));
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
  ASSERT_EQ(s.hits, 0); /* nothing to read yet */
  ASSERT_EQ(write(p[1], "x", 1), 1);
  /* Level-triggered: one hit per iteration until it cancels itself. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 3);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void io_readable_fires_at_hang_up(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct io s = {0, 1, 1, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, 0, &id));
  close(p[1]); /* EOF, nothing written */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 1);
  test_free_loop(loop);
  close(p[0]);
}

static void io_writable_and_readable_on_one_fd(void) {
  weft_loop_t *loop;
  weft_id_t r, w;
  struct io rs = {0, 1, 1, 0}, ws = {0, 1, 0, 0};
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, sv[0], on_io, &rs, 0, &r));
  ASSERT_OK(weft_writable(loop, sv[0], on_io, &ws, 0, &w));
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1);
  ASSERT_EQ(ws.hits, 1); /* writable at once, then cancelled */
  ASSERT_EQ(rs.hits, 0);
  ASSERT_EQ(write(sv[1], "y", 1), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(rs.hits, 1);
  test_free_loop(loop);
  close(sv[0]);
  close(sv[1]);
}

static void io_cancel_a_sibling_inside_a_callback(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  struct io sa = {0, 1, 0, 0}, sb = {0, 1, 0, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "z", 1), 1);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &sa, 0, &a));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &sb, 0, &b));
  sa.other = b; /* a runs first and cancels b before its turn */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(sa.hits, 1);
  ASSERT_EQ(sb.hits, 0);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void io_blocking_mode_restored_after_last_watcher(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  struct io s = {0, 0, 0, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, 0, &a));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, 0, &b));
  ASSERT_NE(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
  ASSERT_OK(weft_watch_cancel(loop, a));
  ASSERT_NE(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0); /* b still watches */
  ASSERT_OK(weft_watch_cancel(loop, b));
  ASSERT_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
  /* A descriptor that was non-blocking stays so. */
  fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
  ASSERT_OK(weft_writable(loop, p[1], on_io, &s, 0, &a));
  ASSERT_OK(weft_watch_cancel(loop, a));
  ASSERT_NE(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_NOWAIT));
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void io_disable_unref_and_enable(void) {
  weft_loop_t *loop;
  weft_id_t id;
  struct io s = {0, 1, 0, 0};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, WEFT_WATCH_DISABLED, &id));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  ASSERT_EQ(s.hits, 0);
  ASSERT_OK(weft_watch_enable(loop, id));
  ASSERT_OK(weft_watch_unref(loop, id));
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_OK(weft_watch_ref(loop, id));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 1);
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

static void io_bad_descriptors(void) {
  weft_loop_t *loop;
  weft_id_t id = 0;
  struct io s = {0, 1, 0, 0};
  char path[] = "/tmp/weft-test-XXXXXX";
  int file = mkstemp(path), p[2];
  ASSERT_GE(file, 0);
  unlink(path);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_readable(loop, -1, on_io, &s, 0, &id), WEFT_EBADF);
  ASSERT_EQ(weft_readable(loop, 9999, on_io, &s, 0, &id), WEFT_EBADF);
  ASSERT_EQ(weft_readable(loop, file, on_io, &s, 0, &id), WEFT_EPERM);
  ASSERT_EQ(weft_writable(loop, file, on_io, &s, 0, &id), WEFT_EPERM);
  ASSERT_EQ(weft_readable(loop, 0, NULL, &s, 0, &id), WEFT_EINVAL);
  ASSERT_EQ(id, 0);
  /* The loop and the registry still work. */
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_readable(loop, p[0], on_io, &s, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.hits, 1);
  test_free_loop(loop);
  close(file);
  close(p[0]);
  close(p[1]);
}

static void stop_on_io(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  (void)fd;
  (*(int *)data)++;
  ASSERT_OK(weft_watch_cancel(loop, id));
  ASSERT_OK(weft_loop_stop(loop));
}

static void io_stop_leaves_readiness_for_next_run(void) {
  weft_loop_t *loop;
  weft_id_t a, b;
  struct io sb = {0, 1, 1, 0};
  int p[2], stops = 0;
  ASSERT_OK(pipe(p));
  ASSERT_EQ(write(p[1], "x", 1), 1);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_readable(loop, p[0], stop_on_io, &stops, 0, &a));
  ASSERT_OK(weft_readable(loop, p[0], on_io, &sb, 0, &b));
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  ASSERT_EQ(stops, 1);
  ASSERT_EQ(sb.hits, 0); /* stopped before its turn */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(sb.hits, 1); /* the data was still there */
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

TEST_MAIN(T(io_readable_fires_while_data_waits) T(io_readable_fires_at_hang_up)
          T(io_writable_and_readable_on_one_fd)
          T(io_cancel_a_sibling_inside_a_callback)
          T(io_blocking_mode_restored_after_last_watcher)
          T(io_disable_unref_and_enable) T(io_bad_descriptors)
          T(io_stop_leaves_readiness_for_next_run))
