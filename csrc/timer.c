/* timer.c: once and every timers over the timing wheel.
 *
 * All of a loop's timers share one wheel and one uv_timer (armed by
 * weft__loop_sched for the wheel's next due time).  An enabled timer is
 * always linked in exactly one list: a wheel slot, the loop's expired list
 * (armed for a time the wheel has already processed), or the dispatch
 * batch; a disabled one is in none. */
#include "internal.h"

static uint64_t due_after(uint64_t now, uint64_t delay) {
  return delay > WEFT__WHEEL_MAX_DUE - now ? WEFT__WHEEL_MAX_DUE
                                           : now + delay;
}

/* The time a new delay counts from.  Inside the loop's callbacks, its
 * cached time, so that timers one pass arms keep their order and the pass
 * sees one "now".  Outside them (a script's main chunk after blocking
 * work, a host between ticks) the cache may be arbitrarily old: it is
 * refreshed first, as uv_update_time does, so a wait lasts what it was
 * given. */
static uint64_t arm_time(weft_loop_t *loop) {
  if (!loop->in_dispatch) uv_update_time(loop->uv);
  return uv_now(loop->uv);
}

static void arm(weft_loop_t *loop, weft__watch *w, uint64_t due) {
  weft__tnode *node = &w->u.timer.node;
  node->due = due;
  node->seq = ++loop->seq;
  /* An empty wheel restarts from the loop's time, which keeps distances
   * (and so levels) small after a long idle stretch. */
  if (weft__wheel_empty(&loop->wheel)) loop->wheel.now = uv_now(loop->uv);
  if (due < loop->wheel.now) {
    /* Due at a millisecond the wheel has processed: it fires in the next
     * dispatch pass, never in the one running now. */
    weft__list_push(&loop->expired, &node->link);
  } else {
    weft__wheel_insert(&loop->wheel, node);
  }
}

static int start(weft_loop_t *loop, int kind, uint64_t interval,
                 uint64_t first, weft_watch_cb cb, void *data, int flags,
                 weft_id_t *out) {
  weft__watch *w;
  int err;
  if (!loop || !cb || !out || (flags & ~(WEFT_WATCH_DISABLED |
                                         WEFT_WATCH_UNREF)))
    return WEFT_EINVAL;
  err = weft__watch_new(loop, kind, cb, data, flags, &w);
  if (err) return err;
  w->u.timer.interval = interval;
  weft__list_init(&w->u.timer.node.link);
  if (w->flags & WEFT__W_ENABLED)
    arm(loop, w, due_after(arm_time(loop), first));
  if (weft__watch_counts(w->flags)) loop->nref++;
  weft__loop_sched(loop);
  *out = w->id;
  return 0;
}

int weft_once(weft_loop_t *loop, uint64_t delay_ms, weft_watch_cb cb,
              void *data, int flags, weft_id_t *out) {
  return start(loop, WEFT_KIND_ONCE, delay_ms, delay_ms, cb, data, flags,
               out);
}

int weft_every(weft_loop_t *loop, uint64_t interval_ms, uint64_t first_ms,
               weft_watch_cb cb, void *data, int flags, weft_id_t *out) {
  if (interval_ms == 0) return WEFT_EINVAL;
  return start(loop, WEFT_KIND_EVERY, interval_ms, first_ms, cb, data, flags,
               out);
}

int weft__timer_sync(weft_loop_t *loop, weft__watch *w, int old) {
  int on = w->flags & WEFT__W_ENABLED;
  if (on && !(old & WEFT__W_ENABLED)) {
    /* Re-enabled: the full delay (or interval) again, from now. */
    arm(loop, w, due_after(arm_time(loop), w->u.timer.interval));
  } else if (!on && (old & WEFT__W_ENABLED)) {
    weft__wheel_unlink(&loop->wheel, &w->u.timer.node);
  }
  loop->nref += (uint64_t)(weft__watch_counts(w->flags) - weft__watch_counts(old));
  weft__loop_sched(loop);
  return 0;
}

void weft__timer_close(weft_loop_t *loop, weft__watch *w) {
  if (w->flags & WEFT__W_ENABLED)
    weft__wheel_unlink(&loop->wheel, &w->u.timer.node);
  if (weft__watch_counts(w->flags)) loop->nref--;
  weft__loop_sched(loop);
}

void weft__timer_collect(weft_loop_t *loop, weft__link *out) {
  weft__list_splice(out, &loop->expired, 0);
  weft__wheel_advance(&loop->wheel, uv_now(loop->uv), out);
}

/* The first beat of w's grid (due + k * interval, k >= 1) after now. */
static uint64_t next_beat(const weft__watch *w, uint64_t due, uint64_t now) {
  uint64_t iv = w->u.timer.interval;
  due += iv;
  if (due <= now) due += ((now - due) / iv + 1) * iv;
  return due > WEFT__WHEEL_MAX_DUE ? WEFT__WHEEL_MAX_DUE : due;
}

void weft__timer_fire(weft_loop_t *loop, weft__watch *w) {
  weft_id_t id = w->id;
  weft_watch_cb cb = w->cb;
  void *data = w->data;
  uint64_t due;
  if (w->kind != WEFT_KIND_EVERY) {
    if (weft__watch_counts(w->flags)) loop->nref--;
    weft__watch_free(loop, w);
    cb(loop, id, 0, data);
    return;
  }
  /* Re-arm first, so the callback may disable or cancel its own timer. */
  due = next_beat(w, w->u.timer.node.due, uv_now(loop->uv));
  arm(loop, w, due);
  cb(loop, id, 0, data);
  /* A callback that overran its interval skips the beats it missed,
   * judged by the real clock since the loop's cached time does not move
   * during a pass.  Untouched if the callback re-armed or ended it. */
  w = weft__watch_find(loop, id);
  if (w && (w->flags & WEFT__W_ENABLED) && w->u.timer.node.due == due) {
    uint64_t real = uv_hrtime() / 1000000;
    if (due <= real) {
      weft__wheel_unlink(&loop->wheel, &w->u.timer.node);
      arm(loop, w, next_beat(w, due, real));
    }
  }
}
