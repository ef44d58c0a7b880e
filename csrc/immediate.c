/* immediate.c: callbacks for the loop's next iteration.
 *
 * Enabled immediates wait in the loop's queue in creation order, each
 * stamped with the first dispatch pass it may run in: the current
 * iteration's when queued from outside the loop's callbacks, the next
 * iteration's when queued from inside one (an I/O or signal callback runs
 * before the pass of its own iteration), so an immediately never runs in
 * the iteration that created it and a chain of them cannot starve I/O. */
#include "internal.h"

static void queue(weft_loop_t *loop, weft__watch *w) {
  w->u.imm.iter = loop->in_dispatch ? loop->iter + 1 : loop->iter;
  weft__list_push(&loop->imm, &w->u.imm.link);
}

int weft_immediately(weft_loop_t *loop, weft_watch_cb cb, void *data,
                     int flags, weft_id_t *out) {
  weft__watch *w;
  int err;
  if (!loop || !cb || !out ||
      (flags & ~(WEFT_WATCH_DISABLED | WEFT_WATCH_UNREF)))
    return WEFT_EINVAL;
  err = weft__watch_new(loop, WEFT_KIND_IMMEDIATELY, cb, data, flags, &w);
  if (err) return err;
  weft__list_init(&w->u.imm.link);
  if (w->flags & WEFT__W_ENABLED) queue(loop, w);
  if (weft__watch_counts(w->flags)) loop->nref++;
  weft__loop_sched(loop);
  *out = w->id;
  return 0;
}

int weft__imm_sync(weft_loop_t *loop, weft__watch *w, int old) {
  int on = w->flags & WEFT__W_ENABLED;
  if (on && !(old & WEFT__W_ENABLED))
    queue(loop, w);
  else if (!on && (old & WEFT__W_ENABLED))
    weft__list_remove(&w->u.imm.link);
  loop->nref += (uint64_t)(weft__watch_counts(w->flags) - weft__watch_counts(old));
  weft__loop_sched(loop);
  return 0;
}

void weft__imm_close(weft_loop_t *loop, weft__watch *w) {
  weft__list_remove(&w->u.imm.link);
  if (weft__watch_counts(w->flags)) loop->nref--;
  weft__loop_sched(loop);
}

void weft__imm_fire(weft_loop_t *loop, weft__watch *w) {
  weft_id_t id = w->id;
  weft_watch_cb cb = w->cb;
  void *data = w->data;
  if (weft__watch_counts(w->flags)) loop->nref--;
  weft__watch_free(loop, w);
  cb(loop, id, 0, data);
}

void weft__imm_collect(weft_loop_t *loop, weft__link *out) {
  /* Stamps never decrease along the queue, so the runnable ones are a
   * prefix of it. */
  while (!weft__list_empty(&loop->imm)) {
    weft__watch *w = WEFT__CONTAINER(loop->imm.next, weft__watch, u.imm.link);
    if (w->u.imm.iter > loop->iter) break;
    weft__list_remove(&w->u.imm.link);
    weft__list_push(out, &w->u.imm.link);
  }
}
