/* test_stream.c: buffered non-blocking streams. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct waited {
  int calls;
  int event;
  int status;
};

static void on_wait(weft_stream_t *s, int event, int status, void *data) {
  struct waited *w = data;
  (void)s;
  w->calls++;
  w->event = event;
  w->status = status;
}

static void stream_open_rejects_bad_input(void) {
  weft_loop_t *loop;
  weft_stream_t *s = NULL;
  char path[] = "/tmp/weft-stream-XXXXXX";
  int file = mkstemp(path), p[2];
  ASSERT_GE(file, 0);
  unlink(path);
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_stream_open(loop, 999, 0, &s), WEFT_EBADF);
  ASSERT_EQ(weft_stream_open(loop, -1, 0, &s), WEFT_EBADF);
  ASSERT_EQ(weft_stream_open(loop, file, 0, &s), WEFT_EPERM);
  ASSERT_EQ(weft_stream_open(loop, p[0], 0x100, &s), WEFT_EINVAL);
  ASSERT_EQ(weft_stream_open(NULL, p[0], 0, &s), WEFT_EINVAL);
  ASSERT(s == NULL);
  ASSERT_EQ(weft_stream_fd(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_stream_pending(NULL), WEFT_EINVAL);
  ASSERT_OK(weft_stream_close(NULL));
  /* The loop still works. */
  ASSERT_OK(weft_stream_open(loop, p[0], 0, &s));
  ASSERT_EQ(weft_stream_fd(s), p[0]);
  ASSERT(weft_stream_loop(s) == loop);
  ASSERT_OK(weft_stream_close(s));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
  close(file);
  close(p[1]);
}

static void stream_reads_through_its_buffer(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited w = {0, 0, 1};
  const char *b;
  size_t n;
  char buf[8];
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_EQ(weft_stream_fill(s), WEFT_EAGAIN);
  ASSERT_EQ(weft_stream_read(s, buf, sizeof buf), WEFT_EAGAIN);
  ASSERT(weft_stream_buffered(s, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(weft_stream_pending(s), 0);
  ASSERT_EQ(write(sv[1], "hello\nworld", 11), 11);
  ASSERT_EQ(weft_stream_pending(s), 0); /* the descriptor's, not yet read */
  ASSERT_EQ(weft_stream_fill(s), 11);
  ASSERT_EQ(weft_stream_pending(s), 1);
  b = weft_stream_buffered(s, &n);
  ASSERT_EQ(n, 11);
  ASSERT(memcmp(b, "hello\n", 6) == 0);
  ASSERT_OK(weft_stream_consume(s, 6));
  ASSERT_EQ(weft_stream_consume(s, 6), WEFT_EINVAL); /* only 5 left */
  ASSERT_EQ(weft_stream_read(s, buf, 3), 3);
  ASSERT(memcmp(buf, "wor", 3) == 0);
  ASSERT_EQ(weft_stream_read(s, buf, sizeof buf), 2);
  ASSERT_EQ(weft_stream_pending(s), 0);
  ASSERT_EQ(weft_stream_read(s, buf, 0), 0);
  close(sv[1]);
  /* The last read was short: the stream waits for readiness before it
   * reads again, and the wait sees the end of file at once. */
  ASSERT_EQ(weft_stream_fill(s), WEFT_EAGAIN);
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.status, 0);
  ASSERT_EQ(weft_stream_fill(s), 0); /* end of file */
  ASSERT_EQ(weft_stream_read(s, buf, sizeof buf), 0);
  ASSERT_OK(weft_stream_close(s));
  ASSERT_EQ(fcntl(sv[0], F_GETFD), -1); /* the stream owned it */
  test_free_loop(loop);
}

static void stream_wait_read_fires_from_the_loop(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited w = {0, 0, 1};
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w));
  ASSERT_EQ(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w),
            WEFT_EBUSY);
  ASSERT_EQ(weft_stream_wait(s, 3, -1, on_wait, &w), WEFT_EINVAL);
  ASSERT_EQ(weft_stream_wait(s, WEFT_STREAM_READ, -2, on_wait, &w),
            WEFT_EINVAL);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 1); /* the wait holds it */
  ASSERT_EQ(w.calls, 0);
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.calls, 1);
  ASSERT_EQ(w.event, WEFT_STREAM_READ);
  ASSERT_EQ(w.status, 0);
  /* Nobody waits now, so nothing keeps the loop. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_stream_unwait(s, WEFT_STREAM_READ), WEFT_ENOENT);
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &w));
  ASSERT_OK(weft_stream_unwait(s, WEFT_STREAM_READ));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.calls, 1);
  ASSERT_OK(weft_stream_close(s));
  test_free_loop(loop);
  close(sv[1]);
}

static void stream_wait_times_out(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited w = {0, 0, 1};
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, 10, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.calls, 1);
  ASSERT_EQ(w.status, WEFT_ETIMEDOUT);
  /* A read after a timeout works. */
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, 5000, on_wait, &w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.calls, 2);
  ASSERT_EQ(w.status, 0);
  ASSERT_EQ(weft_stream_fill(s), 1);
  ASSERT_OK(weft_stream_close(s));
  test_free_loop(loop);
  close(sv[1]);
}

static void stream_close_wakes_waiters_with_eclosed(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited r = {0, 0, 1}, w = {0, 0, 1};
  static char big[1 << 20];
  size_t took;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_write(s, big, sizeof big, &took));
  ASSERT_LT(took, sizeof big); /* the peer never reads */
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, -1, on_wait, &r));
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_WRITE, -1, on_wait, &w));
  ASSERT_OK(weft_stream_close(s));
  ASSERT_EQ(weft_stream_close(s), WEFT_ECLOSED);
  ASSERT_EQ(weft_stream_pending(s), WEFT_ECLOSED);
  ASSERT_EQ(r.calls + w.calls, 0); /* never inside the close */
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* callbacks pending */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(r.calls, 1);
  ASSERT_EQ(r.status, WEFT_ECLOSED);
  ASSERT_EQ(w.calls, 1);
  ASSERT_EQ(w.status, WEFT_ECLOSED);
  test_free_loop(loop);
  close(sv[1]);
}

/* Drains the peer end while the writer waits. */
struct pump {
  weft_stream_t *s;
  const char *data;
  size_t len, sent, max_queued;
  int fails;
};

static void pump_more(weft_stream_t *s, int event, int status, void *data) {
  struct pump *p = data;
  size_t took;
  (void)event;
  if (status) {
    p->fails++;
    return;
  }
  ASSERT_OK(weft_stream_write(s, p->data + p->sent, p->len - p->sent, &took));
  p->sent += took;
  if (weft_stream_queued(s) > p->max_queued)
    p->max_queued = weft_stream_queued(s);
  if (p->sent < p->len)
    ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_WRITE, -1, pump_more, p));
}

struct sink {
  size_t got;
  size_t want;
};

static void on_sink(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  struct sink *k = data;
  char buf[4096];
  ssize_t r = read(fd, buf, sizeof buf);
  if (r > 0) k->got += (size_t)r;
  if (k->got == k->want || r == 0) weft_watch_cancel(loop, id);
}

static void stream_write_waits_instead_of_growing(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  static char big[4 << 20];
  struct pump p;
  struct sink k = {0, sizeof big};
  weft_id_t id;
  int sv[2];
  memset(big, 'x', sizeof big);
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_set_queue_limit(s, 64 * 1024));
  ASSERT_EQ(weft_stream_set_queue_limit(s, 0), WEFT_EINVAL);
  p.s = s;
  p.data = big;
  p.len = sizeof big;
  p.sent = p.max_queued = 0;
  p.fails = 0;
  pump_more(s, WEFT_STREAM_WRITE, 0, &p);
  ASSERT_LT(p.sent, p.len);
  ASSERT_OK(weft_readable(loop, sv[1], on_sink, &k, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(p.fails, 0);
  ASSERT_EQ(p.sent, p.len);
  ASSERT_EQ(k.got, sizeof big);
  ASSERT_LE(p.max_queued, 64 * 1024);
  ASSERT_EQ(weft_stream_queued(s), 0);
  ASSERT_OK(weft_stream_close(s));
  test_free_loop(loop);
  close(sv[1]);
}

static void stream_write_to_a_gone_peer_fails(void) {
  weft_loop_t *loop;
  weft_stream_t *s, *ps;
  size_t took = 1;
  int sv[2], p[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_open(loop, p[1], 0, &ps));
  close(sv[1]);
  close(p[0]);
  /* No SIGPIPE kills the test: sockets send with MSG_NOSIGNAL, and the
   * pipe stream set SIGPIPE to be ignored. */
  ASSERT_EQ(weft_stream_write(s, "x", 1, &took), WEFT_EPIPE);
  ASSERT_EQ(took, 0);
  ASSERT_EQ(weft_stream_write(ps, "x", 1, &took), WEFT_EPIPE);
  ASSERT_OK(weft_stream_close(s));
  ASSERT_OK(weft_stream_close(ps));
  ASSERT_EQ(weft_stream_write(NULL, "x", 1, &took), WEFT_EINVAL);
  test_free_loop(loop);
}

static void stream_shutdown_half_closes(void) {
  weft_loop_t *loop;
  weft_stream_t *s, *ps;
  char buf[4];
  int sv[2], p[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, sv[0], 0, &s));
  ASSERT_OK(weft_stream_open(loop, p[1], 0, &ps));
  ASSERT_OK(weft_stream_write(s, "ab", 2, NULL));
  ASSERT_OK(weft_stream_shutdown(s));
  ASSERT_EQ(read(sv[1], buf, sizeof buf), 2);
  ASSERT_EQ(read(sv[1], buf, sizeof buf), 0); /* EOF for the peer */
  ASSERT_EQ(write(sv[1], "c", 1), 1);          /* reading goes on */
  ASSERT_EQ(weft_stream_fill(s), 1);
  ASSERT_EQ(weft_stream_shutdown(ps), WEFT_ENOTSOCK);
  ASSERT_OK(weft_stream_close(s));
  ASSERT_OK(weft_stream_close(ps));
  test_free_loop(loop);
  close(sv[1]);
  close(p[0]);
}

static void stream_keep_fd_leaves_it_open(void) {
  weft_loop_t *loop;
  weft_stream_t *s;
  struct waited w = {0, 0, 1};
  int p[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_stream_open(loop, p[0], WEFT_STREAM_KEEP_FD, &s));
  ASSERT(fcntl(p[0], F_GETFL) & O_NONBLOCK);
  ASSERT_OK(weft_stream_wait(s, WEFT_STREAM_READ, 10, on_wait, &w));
  ASSERT_OK(weft_stream_close(s));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.status, WEFT_ECLOSED);
  ASSERT_GE(fcntl(p[0], F_GETFD), 0);
  ASSERT(!(fcntl(p[0], F_GETFL) & O_NONBLOCK)); /* its mode is back */
  test_free_loop(loop);
  close(p[0]);
  close(p[1]);
}

TEST_MAIN(T(stream_open_rejects_bad_input) T(stream_reads_through_its_buffer)
              T(stream_wait_read_fires_from_the_loop) T(stream_wait_times_out)
                  T(stream_close_wakes_waiters_with_eclosed)
                      T(stream_write_waits_instead_of_growing)
                          T(stream_write_to_a_gone_peer_fails)
                              T(stream_shutdown_half_closes)
                                  T(stream_keep_fd_leaves_it_open))
