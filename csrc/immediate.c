/* immediate.c: callbacks for the loop's next dispatch pass.
 *
 * Enabled immediates wait in the loop's queue in creation order; the
 * dispatch pass takes the whole queue at once, so one created by a
 * callback of that pass waits for the next iteration. */
#include "internal.h"

int weft_immediately(weft_loop_t *loop, weft_watch_cb cb, void *data,
                     int flags, weft_id_t *out) {
  weft__watch *w;
  int err;
  if (!loop || !cb || !out ||
      (flags & ~(WEFT_WATCH_DISABLED | WEFT_WATCH_UNREF)))
    return WEFT_EINVAL;
  err = weft__watch_new(loop, WEFT_KIND_IMMEDIATELY, cb, data, flags, &w);
  if (err) return err;
  weft__list_init(&w->u.imm);
  if (w->flags & WEFT__W_ENABLED) weft__list_push(&loop->imm, &w->u.imm);
  if (weft__watch_counts(w->flags)) loop->nref++;
  weft__loop_sched(loop);
  *out = w->id;
  return 0;
}

int weft__imm_sync(weft_loop_t *loop, weft__watch *w, int old) {
  int on = w->flags & WEFT__W_ENABLED;
  if (on && !(old & WEFT__W_ENABLED))
    weft__list_push(&loop->imm, &w->u.imm);
  else if (!on && (old & WEFT__W_ENABLED))
    weft__list_remove(&w->u.imm);
  loop->nref += (uint64_t)(weft__watch_counts(w->flags) - weft__watch_counts(old));
  weft__loop_sched(loop);
  return 0;
}

void weft__imm_close(weft_loop_t *loop, weft__watch *w) {
  weft__list_remove(&w->u.imm);
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
