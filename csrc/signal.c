/* signal.c: signal watchers over uv_signal, one handle per watcher.
 *
 * The handle lives outside the slot so that cancelling frees the slot (and
 * stales the id) at once while libuv finishes closing the handle.  A
 * signal that arrives while dispatch is stopped is counted and delivered
 * in the next dispatch pass, so none is lost. */
#include "internal.h"

#include <signal.h>

typedef struct weft__sig {
  uv_signal_t h;
  weft_id_t id;
  int signo;
  unsigned pending;
  weft__link pending_link;
} weft__sig;

static void on_sig_closed(uv_handle_t *h) {
  weft_loop_t *loop = h->data;
  weft__free(WEFT__CONTAINER(h, weft__sig, h));
  weft__loop_handle_closed(loop);
}

static void deliver(weft_loop_t *loop, weft__sig *s) {
  weft__watch *w = weft__watch_find(loop, s->id);
  if (!w || !(w->flags & WEFT__W_ENABLED)) return;
  w->cb(loop, w->id, s->signo, w->data);
}

static void on_signal(uv_signal_t *h, int signo) {
  weft_loop_t *loop = h->data;
  weft__sig *s = WEFT__CONTAINER(h, weft__sig, h);
  (void)signo;
  if (weft__loop_stopping(loop)) {
    if (!s->pending++) weft__list_push(&loop->sig_pending, &s->pending_link);
    weft__loop_sched(loop);
    return;
  }
  loop->in_dispatch++;
  deliver(loop, s);
  loop->in_dispatch--;
}

void weft__signal_flush(weft_loop_t *loop) {
  while (!weft__list_empty(&loop->sig_pending) &&
         !weft__loop_stopping(loop)) {
    weft__sig *s = WEFT__CONTAINER(loop->sig_pending.next, weft__sig,
                                   pending_link);
    if (--s->pending == 0) weft__list_remove(&s->pending_link);
    deliver(loop, s);
  }
}

static int apply(weft__watch *w) {
  weft__sig *s = w->u.sig;
  int err = 0;
  if (w->flags & WEFT__W_ENABLED) {
    if (!uv_is_active((uv_handle_t *)&s->h))
      err = uv_signal_start(&s->h, on_signal, s->signo);
  } else {
    uv_signal_stop(&s->h);
  }
  if (w->flags & WEFT__W_REF)
    uv_ref((uv_handle_t *)&s->h);
  else
    uv_unref((uv_handle_t *)&s->h);
  return weft__err_from_uv(err);
}

int weft_signal(weft_loop_t *loop, int signo, weft_watch_cb cb, void *data,
                int flags, weft_id_t *out) {
  weft__watch *w;
  weft__sig *s;
  int err;
  if (!loop || !cb || !out || signo <= 0 || signo >= NSIG ||
      signo == SIGKILL || signo == SIGSTOP ||
      (flags & ~(WEFT_WATCH_DISABLED | WEFT_WATCH_UNREF)))
    return WEFT_EINVAL;
  s = weft__calloc(1, sizeof *s);
  if (!s) return WEFT_ENOMEM;
  err = weft__watch_new(loop, WEFT_KIND_SIGNAL, cb, data, flags, &w);
  if (err) {
    weft__free(s);
    return err;
  }
  uv_signal_init(loop->uv, &s->h);
  s->h.data = loop;
  s->id = w->id;
  s->signo = signo;
  weft__list_init(&s->pending_link);
  loop->open_handles++;
  w->u.sig = s;
  err = apply(w);
  if (err) {
    weft__signal_close(loop, w);
    weft__watch_free(loop, w);
    return err;
  }
  *out = w->id;
  return 0;
}

int weft__signal_sync(weft_loop_t *loop, weft__watch *w, int old) {
  (void)loop;
  (void)old;
  return apply(w);
}

void weft__signal_close(weft_loop_t *loop, weft__watch *w) {
  weft__sig *s = w->u.sig;
  (void)loop;
  weft__list_remove(&s->pending_link);
  uv_close((uv_handle_t *)&s->h, on_sig_closed);
}
