/* io.c: readable, writable and one-shot poll watchers over uv_poll.
 *
 * libuv allows one poll handle per descriptor, so every watcher on a
 * descriptor shares one weft__fd, whose poll mask and ref are recomputed
 * from its watchers after each change.  The descriptor's original blocking
 * mode is remembered on the first watcher and restored after the last. */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>

typedef struct weft__fd {
  uv_poll_t poll;
  weft__link watchers;
  int fd;
  int events;     /* the mask the poll handle runs with, 0 when stopped */
  int orig_flags; /* F_GETFL before weft touched the descriptor */
} weft__fd;

#define SNAPSHOT 16

static void on_poll(uv_poll_t *h, int status, int events);

static void on_fd_closed(uv_handle_t *h) {
  weft_loop_t *loop = h->data;
  weft__free(WEFT__CONTAINER(h, weft__fd, poll));
  weft__loop_handle_closed(loop);
}

static int fd_slot(weft_loop_t *loop, int fd) {
  if (fd >= loop->nfds) {
    int n = loop->nfds ? loop->nfds : 16, i;
    weft__fd **fds;
    while (n <= fd) n *= 2;
    fds = weft__realloc(loop->fds, (size_t)n * sizeof *fds);
    if (!fds) return WEFT_ENOMEM;
    for (i = loop->nfds; i < n; i++) fds[i] = NULL;
    loop->fds = fds;
    loop->nfds = n;
  }
  return 0;
}

static int fd_open(weft_loop_t *loop, int fd, weft__fd **out) {
  weft__fd *fdo;
  int flags, err;
  if (fd < 0) return WEFT_EBADF;
  flags = fcntl(fd, F_GETFL);
  if (flags < 0) return WEFT_EBADF;
  err = fd_slot(loop, fd);
  if (err) return err;
  if (loop->fds[fd]) {
    *out = loop->fds[fd];
    return 0;
  }
  fdo = weft__calloc(1, sizeof *fdo);
  if (!fdo) return WEFT_ENOMEM;
  /* uv_poll_init makes the descriptor non-blocking and refuses kinds that
   * cannot be polled (EPERM for regular files). */
  err = uv_poll_init(loop->uv, &fdo->poll, fd);
  if (err) {
    weft__free(fdo);
    return weft__err_from_uv(err);
  }
  fdo->poll.data = loop;
  fdo->fd = fd;
  fdo->orig_flags = flags;
  weft__list_init(&fdo->watchers);
  loop->fds[fd] = fdo;
  loop->open_handles++;
  uv_unref((uv_handle_t *)&fdo->poll);
  *out = fdo;
  return 0;
}

static void fd_close(weft_loop_t *loop, weft__fd *fdo) {
  int fd = fdo->fd;
  if (!(fdo->orig_flags & O_NONBLOCK)) {
    int now = fcntl(fd, F_GETFL);
    if (now >= 0) fcntl(fd, F_SETFL, now & ~O_NONBLOCK);
  }
  loop->fds[fd] = NULL;
  uv_close((uv_handle_t *)&fdo->poll, on_fd_closed);
  if (loop->on_unwatch) loop->on_unwatch(loop, fd, loop->unwatch_data);
}

int weft_loop_on_unwatch(weft_loop_t *loop, weft_unwatch_cb cb, void *data) {
  if (!loop) return WEFT_EINVAL;
  loop->on_unwatch = cb;
  loop->unwatch_data = cb ? data : NULL;
  return 0;
}

static int event_of(const weft__watch *w) {
  int ev = 0;
  switch (w->kind) {
  case WEFT_KIND_READABLE:
    return UV_READABLE;
  case WEFT_KIND_WRITABLE:
    return UV_WRITABLE;
  default: /* a poll */
    if (w->u.io.events & WEFT_POLLIN) ev |= UV_READABLE;
    if (w->u.io.events & WEFT_POLLOUT) ev |= UV_WRITABLE;
    if (w->u.io.events & WEFT_POLLPRI) ev |= UV_PRIORITIZED;
    return ev;
  }
}

/* Recomputes the poll mask and ref of fdo from its watchers. */
static int fd_sync(weft__fd *fdo) {
  weft__link *l;
  int events = 0, ref = 0, err = 0;
  for (l = fdo->watchers.next; l != &fdo->watchers; l = l->next) {
    weft__watch *w = WEFT__CONTAINER(l, weft__watch, u.io.link);
    if (!(w->flags & WEFT__W_ENABLED)) continue;
    events |= event_of(w);
    if (w->flags & WEFT__W_REF) ref = 1;
  }
  if (events != fdo->events) {
    err = events ? uv_poll_start(&fdo->poll, events, on_poll)
                 : uv_poll_stop(&fdo->poll);
    if (err) return weft__err_from_uv(err);
    fdo->events = events;
  }
  if (ref)
    uv_ref((uv_handle_t *)&fdo->poll);
  else
    uv_unref((uv_handle_t *)&fdo->poll);
  return 0;
}

static int watch_fd(weft_loop_t *loop, int kind, int fd, weft_watch_cb cb,
                    void *data, int flags, weft_id_t *out) {
  weft__fd *fdo = NULL;
  weft__watch *w;
  int err;
  if (!loop || !cb || !out ||
      (flags & ~(WEFT_WATCH_DISABLED | WEFT_WATCH_UNREF)))
    return WEFT_EINVAL;
  err = fd_open(loop, fd, &fdo);
  if (err) return err;
  err = weft__watch_new(loop, kind, cb, data, flags, &w);
  if (!err) {
    w->u.io.fdo = fdo;
    weft__list_push(&fdo->watchers, &w->u.io.link);
    err = fd_sync(fdo);
    if (err) {
      weft__list_remove(&w->u.io.link);
      weft__watch_free(loop, w);
    }
  }
  if (err) {
    if (weft__list_empty(&fdo->watchers)) fd_close(loop, fdo);
    return err;
  }
  *out = w->id;
  return 0;
}

int weft_readable(weft_loop_t *loop, int fd, weft_watch_cb cb, void *data,
                  int flags, weft_id_t *out) {
  return watch_fd(loop, WEFT_KIND_READABLE, fd, cb, data, flags, out);
}

int weft_writable(weft_loop_t *loop, int fd, weft_watch_cb cb, void *data,
                  int flags, weft_id_t *out) {
  return watch_fd(loop, WEFT_KIND_WRITABLE, fd, cb, data, flags, out);
}

int weft__io_sync(weft_loop_t *loop, weft__watch *w, int old) {
  if (w->kind == WEFT_KIND_POLL && w->u.io.timer &&
      (w->flags ^ old) & WEFT__W_ENABLED) {
    /* A poll's timeout follows its enabling, from the full delay again. */
    int err = (w->flags & WEFT__W_ENABLED)
                  ? weft_watch_enable(loop, w->u.io.timer)
                  : weft_watch_disable(loop, w->u.io.timer);
    if (err) return err;
  }
  return w->u.io.fdo ? fd_sync(w->u.io.fdo) : 0;
}

void weft__io_close(weft_loop_t *loop, weft__watch *w) {
  weft__fd *fdo = w->u.io.fdo;
  if (w->kind == WEFT_KIND_POLL && w->u.io.timer) {
    weft_watch_cancel(loop, w->u.io.timer);
    w->u.io.timer = 0;
  }
  if (!fdo) return; /* a poll whose descriptor weft closed */
  w->u.io.fdo = NULL;
  weft__list_remove(&w->u.io.link);
  if (weft__list_empty(&fdo->watchers)) {
    fd_close(loop, fdo);
  } else {
    fd_sync(fdo);
  }
}

/* ---- one-shot polls ---------------------------------------------------- */

static const struct {
  int weft, sys;
} poll_bits[] = {{WEFT_POLLIN, POLLIN},     {WEFT_POLLPRI, POLLPRI},
                 {WEFT_POLLOUT, POLLOUT},   {WEFT_POLLERR, POLLERR},
                 {WEFT_POLLHUP, POLLHUP},   {WEFT_POLLNVAL, POLLNVAL}};

/* What poll(2) says of fd now, as WEFT_POLL* bits. */
static int poll_now(int fd, int events) {
  struct pollfd p;
  size_t i;
  int out = 0;
  p.fd = fd;
  p.events = 0;
  p.revents = 0;
  for (i = 0; i < sizeof poll_bits / sizeof *poll_bits; i++)
    if (events & poll_bits[i].weft) p.events |= (short)poll_bits[i].sys;
  if (poll(&p, 1, 0) <= 0) return 0;
  for (i = 0; i < sizeof poll_bits / sizeof *poll_bits; i++)
    if (p.revents & poll_bits[i].sys) out |= poll_bits[i].weft;
  return out;
}

/* Ends the poll w and runs its callback with revents. */
static void poll_fire(weft_loop_t *loop, weft__watch *w, int fd,
                      int revents) {
  weft_id_t id = w->id;
  weft_poll_cb cb = (weft_poll_cb)(void (*)(void))w->cb;
  void *data = w->data;
  weft__io_close(loop, w);
  weft__watch_free(loop, w);
  cb(loop, id, fd, revents, data);
}

/* The hidden once timer of a poll: its timeout passed, or weft closed its
 * descriptor (revents is then WEFT_POLLNVAL).  data is the poll's slot,
 * which never moves; the timer's id tells whether it is still that poll's
 * (the timer is gone once it fired). */
static void on_poll_timer(weft_loop_t *loop, weft_id_t tid, int arg,
                          void *data) {
  weft__watch *w = data;
  (void)arg;
  if (w->kind != WEFT_KIND_POLL || w->u.io.timer != tid) return;
  w->u.io.timer = 0;
  poll_fire(loop, w, w->u.io.revents >> 8, w->u.io.revents & 0xff);
}

int weft_poll(weft_loop_t *loop, int fd, int events, int64_t timeout_ms,
              weft_poll_cb cb, void *data, weft_id_t *out) {
  weft__fd *fdo = NULL;
  weft__watch *w;
  int err;
  if (!loop || !cb || !out || timeout_ms < -1 ||
      !(events & (WEFT_POLLIN | WEFT_POLLOUT | WEFT_POLLPRI)) ||
      (events & ~(WEFT_POLLIN | WEFT_POLLOUT | WEFT_POLLPRI | WEFT_POLLERR |
                  WEFT_POLLHUP)))
    return WEFT_EINVAL;
  err = fd_open(loop, fd, &fdo);
  if (err) return err;
  /* The slot's callback field holds the poll's callback; poll_fire casts it
   * back before calling it. */
  err = weft__watch_new(loop, WEFT_KIND_POLL,
                        (weft_watch_cb)(void (*)(void))cb, data, 0, &w);
  if (err) goto fail;
  w->u.io.events = events;
  /* What the timer reports: the descriptor in the high bits (a detached
   * poll has no weft__fd to find it in), no events in the low byte. */
  w->u.io.revents = fd << 8;
  w->u.io.timer = 0;
  w->u.io.fdo = fdo;
  weft__list_push(&fdo->watchers, &w->u.io.link);
  if (timeout_ms >= 0) {
    err = weft_once(loop, (uint64_t)timeout_ms, on_poll_timer, w,
                    WEFT_WATCH_UNREF, &w->u.io.timer);
    if (!err) weft__watch_hide(loop, w->u.io.timer);
  }
  if (!err) err = fd_sync(fdo);
  if (err) {
    weft__io_close(loop, w);
    weft__watch_free(loop, w);
    return err;
  }
  *out = w->id;
  return 0;
fail:
  if (weft__list_empty(&fdo->watchers)) fd_close(loop, fdo);
  return err;
}

void weft__io_fd_closing(weft_loop_t *loop, int fd) {
  weft__fd *fdo;
  weft__link *l, *next;
  if (fd < 0 || fd >= loop->nfds || !(fdo = loop->fds[fd])) return;
  for (l = fdo->watchers.next; l != &fdo->watchers; l = next) {
    weft__watch *w = WEFT__CONTAINER(l, weft__watch, u.io.link);
    next = l->next;
    if (w->kind == WEFT_KIND_POLL) {
      /* Detach it, and fire it from its timer, re-armed for now. */
      if (w->u.io.timer) weft_watch_cancel(loop, w->u.io.timer);
      w->u.io.timer = 0;
      w->u.io.revents = fd << 8 | WEFT_POLLNVAL;
      weft__list_remove(&w->u.io.link);
      w->u.io.fdo = NULL;
      if (weft_once(loop, 0, on_poll_timer, w, WEFT_WATCH_UNREF,
                    &w->u.io.timer) == 0)
        weft__watch_hide(loop, w->u.io.timer);
    } else {
      weft_watch_cancel(loop, w->id);
    }
  }
  if (loop->fds[fd] == fdo) { /* detached polls were its last watchers */
    if (weft__list_empty(&fdo->watchers))
      fd_close(loop, fdo);
    else
      fd_sync(fdo);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  weft_loop_t *loop = h->data;
  weft__fd *fdo = WEFT__CONTAINER(h, weft__fd, poll);
  weft_id_t stack_ids[SNAPSHOT], *ids = stack_ids;
  size_t n = 0, cap = SNAPSHOT, i;
  weft__link *l;
  int fd = fdo->fd;
  if (status < 0) {
    /* libuv stops the handle on POLLERR.  Restart it and report the fd as
     * ready for everything asked, so the watcher's own read or write
     * meets the error, as it would with poll(2). */
    events = fdo->events;
    uv_poll_start(&fdo->poll, fdo->events, on_poll);
  }
  if (events & UV_DISCONNECT) events |= UV_READABLE;
  if (weft__loop_stopping(loop)) return; /* level-triggered: fires again */
  /* Snapshot the ids first: callbacks may cancel or create watchers on this
   * very descriptor, and new ones must not run in this pass. */
  for (l = fdo->watchers.next; l != &fdo->watchers; l = l->next) {
    weft__watch *w = WEFT__CONTAINER(l, weft__watch, u.io.link);
    if (!(w->flags & WEFT__W_ENABLED) || !(event_of(w) & events)) continue;
    if (n == cap) {
      weft_id_t *more = weft__malloc(2 * cap * sizeof *more);
      if (!more) break;
      for (i = 0; i < n; i++) more[i] = ids[i];
      if (ids != stack_ids) weft__free(ids);
      ids = more;
      cap *= 2;
    }
    ids[n++] = w->id;
  }
  loop->in_dispatch++;
  for (i = 0; i < n && !weft__loop_stopping(loop); i++) {
    weft__watch *w = weft__watch_find(loop, ids[i]);
    if (!w || !(w->flags & WEFT__W_ENABLED)) continue;
    if (w->kind == WEFT_KIND_POLL) {
      int revents = poll_now(fd, w->u.io.events) &
                    (w->u.io.events | WEFT_POLLERR | WEFT_POLLHUP |
                     WEFT_POLLNVAL);
      if (revents) poll_fire(loop, w, fd, revents);
      continue;
    }
    w->cb(loop, w->id, fd, w->data);
  }
  loop->in_dispatch--;
  if (ids != stack_ids) weft__free(ids);
}
