/* fswatch.c: watching files and directories over libuv's uv_fs_event
 * (inotify on Linux), with bursts coalesced.
 *
 * Changes are not reported one by one: the first change of a burst arms a
 * timer of the watcher's window, and every change until it fires joins
 * the batch, one entry per name with the union of its kinds.  When the
 * timer fires, the batch is delivered in the order names first changed.
 * So an editor's save (truncate, write, write, chmod; or write a temporary
 * file and rename it over) is one callback per name, and a burst of
 * writes costs at most one callback per window however long it lasts; the
 * window bounds how late a change is reported, and a change is never
 * dropped (one that comes during delivery starts the next batch). */
#include "internal.h"

#include <string.h>

typedef struct pending {
  char *name;
  int events;
} pending;

struct weft_fswatch_s {
  uv_fs_event_t ev;
  uv_timer_t timer;
  weft_loop_t *loop;
  weft_fswatch_cb cb;
  void *data;
  uint64_t window_ms;
  pending *batch; /* names changed since the timer was armed */
  size_t n, cap;
  int open_handles; /* of ev and timer: freed when both closed */
  int closed;
};

static void batch_clear(pending *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) weft__free(b[i].name);
}

static void on_handle_closed(uv_handle_t *h) {
  weft_fswatch_t *w = h->data;
  weft_loop_t *loop = w->loop;
  if (--w->open_handles == 0) {
    batch_clear(w->batch, w->n);
    weft__free(w->batch);
    weft__free(w);
    loop->tasks--;
  }
  weft__loop_handle_closed(loop);
}

/* Hands the batch to the callback, stopping if the callback closes the
 * watcher. */
static void deliver(weft_fswatch_t *w) {
  pending *b = w->batch;
  size_t n = w->n, i;
  w->batch = NULL;
  w->n = w->cap = 0;
  for (i = 0; i < n && !w->closed; i++)
    w->cb(w, b[i].name, b[i].events, 0, w->data);
  batch_clear(b, n);
  weft__free(b);
}

static void on_window(uv_timer_t *t) {
  deliver(t->data);
}

/* Adds (name, events) to the batch.  Returns 0 or WEFT_ENOMEM. */
static int batch_add(weft_fswatch_t *w, const char *name, int events) {
  size_t i, len = strlen(name);
  for (i = 0; i < w->n; i++) {
    if (!strcmp(w->batch[i].name, name)) {
      w->batch[i].events |= events;
      return 0;
    }
  }
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 8;
    pending *b = weft__realloc(w->batch, cap * sizeof *b);
    if (!b) return WEFT_ENOMEM;
    w->batch = b;
    w->cap = cap;
  }
  w->batch[w->n].name = weft__malloc(len + 1);
  if (!w->batch[w->n].name) return WEFT_ENOMEM;
  memcpy(w->batch[w->n].name, name, len + 1);
  w->batch[w->n++].events = events;
  return 0;
}

static void on_event(uv_fs_event_t *h, const char *name, int uvevents,
                     int status) {
  weft_fswatch_t *w = h->data;
  int events = ((uvevents & UV_RENAME) ? WEFT_FSWATCH_RENAME : 0) |
               ((uvevents & UV_CHANGE) ? WEFT_FSWATCH_CHANGE : 0);
  int err;
  if (w->closed) return;
  if (status < 0) {
    w->cb(w, NULL, 0, weft__err_from_uv(status), w->data);
    return;
  }
  err = batch_add(w, name ? name : "", events);
  if (err) {
    w->cb(w, NULL, 0, err, w->data);
    return;
  }
  if (w->window_ms == 0) deliver(w);
  else if (!uv_is_active((uv_handle_t *)&w->timer))
    uv_timer_start(&w->timer, on_window, w->window_ms, 0);
}

int weft_fswatch_start(weft_loop_t *loop, const char *path, int flags,
                       uint64_t window_ms, weft_fswatch_cb cb, void *data,
                       weft_fswatch_t **out) {
  weft_fswatch_t *w;
  int err;
  if (!loop || !path || !*path || !cb || !out ||
      (flags & ~WEFT_FSWATCH_RECURSIVE) || loop->freeing)
    return WEFT_EINVAL;
#if !defined(__APPLE__) && !defined(_WIN32)
  /* libuv watches a tree only on macOS and Windows; elsewhere (inotify) it
   * would ignore the flag and watch one level. */
  if (flags & WEFT_FSWATCH_RECURSIVE) return WEFT_ENOSYS;
#endif
  w = weft__calloc(1, sizeof *w);
  if (!w) return WEFT_ENOMEM;
  w->loop = loop;
  w->cb = cb;
  w->data = data;
  w->window_ms = window_ms > 3600000 ? 3600000 : window_ms;
  uv_fs_event_init(loop->uv, &w->ev);
  uv_timer_init(loop->uv, &w->timer);
  w->ev.data = w->timer.data = w;
  w->open_handles = 2;
  loop->open_handles += 2;
  loop->tasks++;
  err = uv_fs_event_start(&w->ev, on_event, path,
                          (flags & WEFT_FSWATCH_RECURSIVE)
                              ? UV_FS_EVENT_RECURSIVE : 0);
  if (err) {
    w->closed = 1;
    uv_close((uv_handle_t *)&w->ev, on_handle_closed);
    uv_close((uv_handle_t *)&w->timer, on_handle_closed);
    return weft__err_from_uv(err);
  }
  *out = w;
  return 0;
}

int weft_fswatch_close(weft_fswatch_t *w) {
  if (!w) return 0;
  if (w->closed) return WEFT_ECLOSED;
  w->closed = 1;
  uv_close((uv_handle_t *)&w->ev, on_handle_closed);
  uv_close((uv_handle_t *)&w->timer, on_handle_closed);
  return 0;
}
