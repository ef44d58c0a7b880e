/* stream.c: buffered, non-blocking byte streams over a descriptor.
 *
 * Reads and writes try the syscall first and wait for readiness only when
 * it would block, so a stream needs nothing from the poller while data
 * flows.  Its two watchers (hidden readable and writable watchers on the
 * descriptor) are created on the first wait.  The readable one stays armed
 * after its wait ended, unreferenced, and is disarmed only when it fires
 * with nobody waiting: a reader that waits again right away (an echo loop)
 * costs no epoll_ctl per message.
 *
 * Writes go straight to the kernel; what it does not take is copied to a
 * queue that the writable watcher flushes.  The queue has a limit: a write
 * accepts what fits and the writer waits (WEFT_STREAM_WRITE) for the queue
 * to drain, so a writer that outruns its peer waits instead of growing
 * memory.
 *
 * A stream may carry a transport (tls.c): then reads and writes go through
 * it, and it moves its own bytes with weft__stream_recv / _send, so the
 * buffer, the queue, the waits and the close above it stay the same. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 16384         /* the least room a fill reads into */
#define QUEUE_LIMIT (256 * 1024) /* the default write queue limit */

typedef struct waiter {
  weft_stream_cb cb;
  void *data;
  weft_id_t timer;
  int pending;
  int ready; /* the timer says "ready", not "timed out" (see wait) */
} waiter;

struct weft_stream_s {
  weft_loop_t *loop;
  int fd;
  int flags;      /* WEFT_STREAM_* open flags */
  int orig_flags; /* F_GETFL at open, restored for WEFT_STREAM_KEEP_FD */
  int is_socket;
  int closed;
  int shut_pending; /* shutdown once the queue is flushed */
  int werr;         /* a write error met while flushing the queue */
  /* A read error met (sticky: every later read returns it).  The kernel
   * reports a reset once, then says end of file, which must not read as
   * a clean close.  reset: a write met the reset first, so the end of
   * file that reads find is that reset. */
  int rerr, reset;
  /* the last read from the descriptor was short, so the kernel most
   * likely has nothing more: the next fill waits for readiness instead
   * of paying a read(2) that says EAGAIN (libuv's reads do the same) */
  int drained;
  weft_id_t rw, ww; /* hidden watchers, 0 until the first wait */
  char *rbuf;
  size_t rcap, rpos, rend; /* buffered bytes: rbuf[rpos, rend) */
  char *wbuf;
  size_t wcap, wpos, wend, wlimit; /* queued bytes: wbuf[wpos, wend) */
  waiter wait[2];                  /* WEFT_STREAM_READ - 1, _WRITE - 1 */
  const weft__transport *xport;    /* NULL: bytes go to fd as they are */
  void *xdata;
};

/* Writing to a pipe whose reader is gone raises SIGPIPE, which kills a
 * process that left it at its default.  Sockets avoid it per call
 * (MSG_NOSIGNAL); for the others weft ignores the signal, as node and
 * Python do, so that the write fails with EPIPE instead. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int weft_stream_open(weft_loop_t *loop, int fd, int flags,
                     weft_stream_t **out) {
  weft_stream_t *s;
  struct stat st;
  int fl, type;
  socklen_t len = sizeof type;
  if (!loop || !out || (flags & ~WEFT_STREAM_KEEP_FD)) return WEFT_EINVAL;
  if (fd < 0 || (fl = fcntl(fd, F_GETFL)) < 0 || fstat(fd, &st) < 0)
    return WEFT_EBADF;
  /* A regular file or a directory is always "ready" and cannot be polled:
   * weft.fs is the way to them. */
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return WEFT_EPERM;
  s = weft__calloc(1, sizeof *s);
  if (!s) return WEFT_ENOMEM;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int err = weft__err_from_errno(errno);
    weft__free(s);
    return err;
  }
  s->loop = loop;
  s->fd = fd;
  s->flags = flags;
  s->orig_flags = fl;
  s->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  s->wlimit = QUEUE_LIMIT;
  if (!s->is_socket) ignore_sigpipe();
  *out = s;
  return 0;
}

int weft_stream_fd(const weft_stream_t *s) {
  if (!s) return WEFT_EINVAL;
  return s->closed ? WEFT_ECLOSED : s->fd;
}

weft_loop_t *weft_stream_loop(const weft_stream_t *s) {
  return s ? s->loop : NULL;
}

/* ---- watchers ------------------------------------------------------------ */

static void on_readable(weft_loop_t *loop, weft_id_t id, int fd, void *data);
static void on_writable(weft_loop_t *loop, weft_id_t id, int fd, void *data);

/* Makes sure the watcher for event exists (disabled, unreferenced). */
static int need_watcher(weft_stream_t *s, int event) {
  weft_id_t *id = event == WEFT_STREAM_READ ? &s->rw : &s->ww;
  int err;
  if (*id) return 0;
  err = (event == WEFT_STREAM_READ ? weft_readable : weft_writable)(
      s->loop, s->fd, event == WEFT_STREAM_READ ? on_readable : on_writable,
      s, WEFT_WATCH_DISABLED | WEFT_WATCH_UNREF, id);
  if (err) return err;
  weft__watch_hide(s->loop, *id);
  return 0;
}

/* Arms (ref: keeping the loop alive) or disarms a watcher. */
static void arm(weft_stream_t *s, weft_id_t id, int on, int ref) {
  if (!id) return;
  if (on) {
    weft_watch_enable(s->loop, id);
    (ref ? weft_watch_ref : weft_watch_unref)(s->loop, id);
  } else {
    weft_watch_unref(s->loop, id);
    weft_watch_disable(s->loop, id);
  }
}

/* The writable watcher runs while data is queued or a writer waits. */
static void sync_writer(weft_stream_t *s) {
  int busy = s->wend > s->wpos || s->wait[1].pending;
  arm(s, s->ww, busy, busy);
}

/* Ends the wait for event and runs its callback with status. */
static void fire(weft_stream_t *s, int event, int status) {
  waiter *w = &s->wait[event - 1];
  if (!w->pending) return;
  w->pending = 0;
  if (w->timer) {
    weft_watch_cancel(s->loop, w->timer);
    w->timer = 0;
  }
  if (event == WEFT_STREAM_READ)
    weft_watch_unref(s->loop, s->rw); /* stays armed: see the top */
  else
    sync_writer(s);
  w->cb(s, event, status, w->data);
}

static void on_readable(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  weft_stream_t *s = data;
  (void)fd;
  s->drained = 0;
  if (s->wait[0].pending)
    fire(s, WEFT_STREAM_READ, 0);
  else
    weft_watch_disable(loop, id);
}

/* Writes queued bytes until the kernel says EAGAIN, the queue is empty, or
 * a write fails (kept in werr; the queue is dropped). */
static void flush(weft_stream_t *s) {
  while (s->wend > s->wpos) {
    size_t n = s->wend - s->wpos;
    ssize_t r = s->is_socket
                    ? send(s->fd, s->wbuf + s->wpos, n, MSG_NOSIGNAL)
                    : write(s->fd, s->wbuf + s->wpos, n);
    if (r >= 0) {
      s->wpos += (size_t)r;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else {
      s->werr = weft__err_from_errno(errno);
      s->reset |= s->werr == WEFT_ECONNRESET;
      break;
    }
  }
  s->wpos = s->wend = 0;
  if (s->shut_pending && !s->werr) {
    s->shut_pending = 0;
    if (shutdown(s->fd, SHUT_WR) < 0) s->werr = weft__err_from_errno(errno);
  }
}

static void on_writable(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  weft_stream_t *s = data;
  (void)loop, (void)id, (void)fd;
  flush(s);
  if (s->wend == s->wpos && s->wait[1].pending)
    fire(s, WEFT_STREAM_WRITE, s->werr);
  else
    sync_writer(s);
}

static void on_timeout(weft_stream_t *s, int event, weft_id_t tid) {
  waiter *w = &s->wait[event - 1];
  if (!w->pending || w->timer != tid) return;
  w->timer = 0; /* a fired once timer is gone */
  fire(s, event, w->ready ? 0 : WEFT_ETIMEDOUT);
}

static void on_read_timeout(weft_loop_t *loop, weft_id_t id, int arg,
                            void *data) {
  (void)loop, (void)arg;
  on_timeout(data, WEFT_STREAM_READ, id);
}

static void on_write_timeout(weft_loop_t *loop, weft_id_t id, int arg,
                             void *data) {
  (void)loop, (void)arg;
  on_timeout(data, WEFT_STREAM_WRITE, id);
}

int weft_stream_wait(weft_stream_t *s, int event, int64_t timeout_ms,
                     weft_stream_cb cb, void *data) {
  waiter *w;
  int err;
  if (!s || !cb || timeout_ms < -1 ||
      (event != WEFT_STREAM_READ && event != WEFT_STREAM_WRITE))
    return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  w = &s->wait[event - 1];
  if (w->pending) return WEFT_EBUSY;
  err = need_watcher(s, event);
  if (err) return err;
  /* A transport holding bytes a read can take (a TLS record already
   * received) is ready whatever the descriptor says: the wait ends from
   * the next dispatch pass. */
  w->ready = event == WEFT_STREAM_READ && s->xport &&
             s->xport->readable(s->xdata);
  if (w->ready) timeout_ms = 0;
  if (timeout_ms >= 0) {
    err = weft_once(s->loop, (uint64_t)timeout_ms,
                    event == WEFT_STREAM_READ ? on_read_timeout
                                              : on_write_timeout,
                    s, WEFT_WATCH_UNREF, &w->timer);
    if (err) return err;
    weft__watch_hide(s->loop, w->timer);
  }
  w->cb = cb;
  w->data = data;
  w->pending = 1;
  if (event == WEFT_STREAM_READ)
    arm(s, s->rw, 1, 1);
  else
    sync_writer(s);
  return 0;
}

int weft_stream_unwait(weft_stream_t *s, int event) {
  waiter *w;
  if (!s || (event != WEFT_STREAM_READ && event != WEFT_STREAM_WRITE))
    return WEFT_EINVAL;
  w = &s->wait[event - 1];
  if (!w->pending) return WEFT_ENOENT;
  w->pending = 0;
  if (w->timer) {
    weft_watch_cancel(s->loop, w->timer);
    w->timer = 0;
  }
  if (event == WEFT_STREAM_READ)
    weft_watch_unref(s->loop, s->rw);
  else
    sync_writer(s);
  return 0;
}

/* ---- reading ------------------------------------------------------------- */

/* read(2) without EINTR: bytes, 0 at end of file, or a WEFT_E* code,
 * which stays the answer of every later read (see rerr). */
static int read_fd(weft_stream_t *s, void *buf, size_t len) {
  ssize_t r;
  int err;
  if (s->rerr) return s->rerr;
  if (len > INT32_MAX) len = INT32_MAX;
  do r = read(s->fd, buf, len);
  while (r < 0 && errno == EINTR);
  if (r > 0 || (r == 0 && !s->reset)) return (int)r;
  if (r < 0 && errno == EWOULDBLOCK) return WEFT_EAGAIN;
  err = r < 0 ? weft__err_from_errno(errno) : WEFT_ECONNRESET;
  s->rerr = err;
  return err;
}

int weft_stream_read(weft_stream_t *s, void *buf, size_t len) {
  size_t n;
  if (!s || (!buf && len)) return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  if (len == 0) return 0;
  n = s->rend - s->rpos;
  if (n == 0) {
    int r;
    if (s->xport) return s->xport->read(s->xdata, buf, len);
    if (s->drained && !s->rerr) return WEFT_EAGAIN;
    r = read_fd(s, buf, len);
    s->drained = r > 0 && (size_t)r < len;
    return r;
  }
  if (n > len) n = len;
  if (n > INT32_MAX) n = INT32_MAX;
  memcpy(buf, s->rbuf + s->rpos, n);
  weft_stream_consume(s, n);
  return (int)n;
}

int weft_stream_fill(weft_stream_t *s) {
  int r;
  if (!s) return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  if (s->rpos == s->rend) s->rpos = s->rend = 0;
  if (s->rcap - s->rend < READ_CHUNK) {
    if (s->rpos > 0 && s->rcap - (s->rend - s->rpos) >= READ_CHUNK) {
      memmove(s->rbuf, s->rbuf + s->rpos, s->rend - s->rpos);
      s->rend -= s->rpos;
      s->rpos = 0;
    } else {
      size_t cap = s->rcap ? s->rcap * 2 : READ_CHUNK;
      char *b;
      while (cap - s->rend < READ_CHUNK) cap *= 2;
      b = weft__realloc(s->rbuf, cap);
      if (!b) return WEFT_ENOMEM;
      s->rbuf = b;
      s->rcap = cap;
    }
  }
  if (s->xport) {
    r = s->xport->read(s->xdata, s->rbuf + s->rend, s->rcap - s->rend);
  } else {
    if (s->drained && !s->rerr) return WEFT_EAGAIN;
    r = read_fd(s, s->rbuf + s->rend, s->rcap - s->rend);
    s->drained = r > 0 && (size_t)r < s->rcap - s->rend;
  }
  if (r > 0) s->rend += (size_t)r;
  return r;
}

const char *weft_stream_buffered(const weft_stream_t *s, size_t *len) {
  if (!s || s->closed || s->rend == s->rpos) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = s->rend - s->rpos;
  return s->rbuf + s->rpos;
}

int weft_stream_pending(const weft_stream_t *s) {
  if (!s) return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  return s->rend > s->rpos || (s->xport && s->xport->readable(s->xdata));
}

int weft_stream_consume(weft_stream_t *s, size_t n) {
  if (!s || n > s->rend - s->rpos) return WEFT_EINVAL;
  s->rpos += n;
  if (s->rpos == s->rend) s->rpos = s->rend = 0;
  return 0;
}

/* ---- writing ------------------------------------------------------------- */

/* Appends what fits under limit of buf to the queue; returns the bytes
 * taken. */
static size_t enqueue(weft_stream_t *s, const char *buf, size_t len,
                      size_t limit) {
  size_t queued = s->wend - s->wpos, room;
  if (queued >= limit) return 0;
  room = limit - queued;
  if (len > room) len = room;
  if (s->wcap - s->wend < len) {
    if (s->wpos) { /* slide down first */
      memmove(s->wbuf, s->wbuf + s->wpos, queued);
      s->wend = queued;
      s->wpos = 0;
    }
    if (s->wcap - s->wend < len) {
      size_t cap = s->wcap ? s->wcap : 4096;
      char *b;
      while (cap - s->wend < len) cap *= 2;
      b = weft__realloc(s->wbuf, cap);
      if (!b) return 0;
      s->wbuf = b;
      s->wcap = cap;
    }
  }
  memcpy(s->wbuf + s->wend, buf, len);
  s->wend += len;
  return len;
}

/* Sends what the kernel takes of p at once, counting it in *done.
 * Returns 0 (also when the kernel took less), or the send's error. */
static int send_now(weft_stream_t *s, const char *p, size_t len,
                    size_t *done) {
  while (*done < len) {
    ssize_t r = s->is_socket
                    ? send(s->fd, p + *done, len - *done, MSG_NOSIGNAL)
                    : write(s->fd, p + *done, len - *done);
    if (r >= 0) {
      *done += (size_t)r;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else {
      int err = weft__err_from_errno(errno);
      s->reset |= err == WEFT_ECONNRESET;
      return err;
    }
  }
  return 0;
}

/* Writes p: straight to the kernel while nothing is queued, the rest to
 * the queue as far as limit allows; stores the bytes taken in *accepted.
 * Returns 0 or the error. */
static int write_through(weft_stream_t *s, const char *p, size_t len,
                         size_t limit, size_t *accepted) {
  size_t done = 0;
  int err = 0;
  if (s->wend == s->wpos) /* nothing queued: straight to the kernel */
    err = send_now(s, p, len, &done);
  if (!err && done < len) {
    done += enqueue(s, p + done, len - done, limit);
    if (s->wend > s->wpos) {
      err = need_watcher(s, WEFT_STREAM_WRITE);
      if (err && done == len) err = 0; /* the next write retries it */
      if (!err) sync_writer(s);
    }
  }
  *accepted = done;
  return err;
}

int weft_stream_write(weft_stream_t *s, const void *buf, size_t len,
                      size_t *accepted) {
  size_t took = 0;
  int err;
  if (accepted) *accepted = 0;
  if (!s || (!buf && len)) return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  if (s->werr) return s->werr;
  if (s->shut_pending) return WEFT_EPIPE;
  if (s->xport)
    err = s->xport->write(s->xdata, buf, len, &took);
  else
    err = write_through(s, buf, len, s->wlimit, &took);
  if (accepted) *accepted = took;
  return err;
}

size_t weft_stream_queued(const weft_stream_t *s) {
  return s ? s->wend - s->wpos : 0;
}

int weft_stream_set_queue_limit(weft_stream_t *s, size_t bytes) {
  if (!s || bytes == 0) return WEFT_EINVAL;
  s->wlimit = bytes;
  return 0;
}

int weft_stream_shutdown(weft_stream_t *s) {
  if (!s) return WEFT_EINVAL;
  if (s->closed) return WEFT_ECLOSED;
  if (s->werr) return s->werr;
  if (!s->is_socket) return WEFT_ENOTSOCK;
  if (s->xport) {
    int err = s->xport->shutdown(s->xdata);
    if (err) return err;
  }
  if (s->wend > s->wpos) {
    s->shut_pending = 1;
    return 0;
  }
  if (shutdown(s->fd, SHUT_WR) < 0) return weft__err_from_errno(errno);
  return 0;
}

/* ---- closing ------------------------------------------------------------- */

/* Runs the closed stream's pending callbacks with WEFT_ECLOSED, then frees
 * it.  Queued by weft_stream_close, so callbacks never run inside it. */
static void closed_run(weft_loop_t *loop, void *data) {
  weft_stream_t *s = data;
  int ev;
  (void)loop;
  for (ev = WEFT_STREAM_READ; ev <= WEFT_STREAM_WRITE; ev++) {
    waiter *w = &s->wait[ev - 1];
    if (w->pending) {
      w->pending = 0;
      w->cb(s, ev, WEFT_ECLOSED, w->data);
    }
  }
  weft__free(s);
}

int weft_stream_close(weft_stream_t *s) {
  int ev, waiting = 0;
  if (!s) return 0;
  if (s->closed) return WEFT_ECLOSED;
  s->closed = 1;
  for (ev = 0; ev < 2; ev++) {
    if (s->wait[ev].timer) weft_watch_cancel(s->loop, s->wait[ev].timer);
    s->wait[ev].timer = 0;
    waiting |= s->wait[ev].pending;
  }
  if (s->xport) { /* (its last words, close_notify, go out first) */
    s->xport->close(s->xdata);
    s->xport = NULL;
  }
  if (s->rw) weft_watch_cancel(s->loop, s->rw);
  if (s->ww) weft_watch_cancel(s->loop, s->ww);
  s->rw = s->ww = 0;
  weft__io_fd_closing(s->loop, s->fd);
  if (s->flags & WEFT_STREAM_KEEP_FD)
    fcntl(s->fd, F_SETFL, s->orig_flags);
  else
    close(s->fd);
  weft__free(s->rbuf);
  weft__free(s->wbuf);
  s->rbuf = s->wbuf = NULL;
  s->rcap = s->rpos = s->rend = s->wcap = s->wpos = s->wend = 0;
  if (!waiting || weft_loop_queue(s->loop, closed_run, s) != 0)
    closed_run(s->loop, s);
  return 0;
}

/* ---- transports ----------------------------------------------------------- */

void weft__stream_set_transport(weft_stream_t *s, const weft__transport *t,
                                void *data) {
  s->xport = t;
  s->xdata = data;
}

void *weft__stream_transport(const weft_stream_t *s, const weft__transport *t) {
  return s && !s->closed && s->xport == t ? s->xdata : NULL;
}

int weft__stream_recv(weft_stream_t *s, void *buf, size_t len) {
  int r;
  if (s->drained && !s->rerr) return WEFT_EAGAIN;
  r = read_fd(s, buf, len);
  s->drained = r > 0 && (size_t)r < len;
  return r;
}

int weft__stream_send(weft_stream_t *s, const void *buf, size_t len) {
  size_t took;
  int err;
  if (s->werr) return s->werr;
  err = write_through(s, buf, len, SIZE_MAX, &took);
  return err ? err : took < len ? WEFT_ENOMEM : 0;
}

size_t weft__stream_room(const weft_stream_t *s) {
  size_t queued = s->wend - s->wpos;
  return queued < s->wlimit ? s->wlimit - queued : 0;
}
