/* watch.c: the watcher registry.
 *
 * A watcher lives in a slot; slots come in fixed chunks so their addresses
 * never move (libuv handles and list links point into them).  An id is
 * (generation << 32) | slot index.  Freeing a slot bumps its generation,
 * so every id handed out before is stale from that moment; a slot whose
 * generation would wrap is retired instead of reused, so no id ever comes
 * back. */
#include "internal.h"

#define CHUNK_BITS 10
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define GEN_MAX 0x7fffffffu /* keeps ids positive as Lua integers */

static weft__watch *slot_at(const weft_loop_t *loop, uint32_t index) {
  return &loop->chunks[index >> CHUNK_BITS][index & (CHUNK_SLOTS - 1)];
}

static int grow(weft_loop_t *loop) {
  weft__watch **chunks, *chunk;
  if (loop->used >= UINT32_MAX - CHUNK_SLOTS) return WEFT_ENOMEM;
  chunks = weft__realloc(loop->chunks, (loop->nchunks + 1) * sizeof *chunks);
  if (!chunks) return WEFT_ENOMEM;
  loop->chunks = chunks;
  chunk = weft__calloc(CHUNK_SLOTS, sizeof *chunk);
  if (!chunk) return WEFT_ENOMEM;
  loop->chunks[loop->nchunks++] = chunk;
  return 0;
}

int weft__watch_new(weft_loop_t *loop, int kind, weft_watch_cb cb,
                    void *data, int flags, weft__watch **out) {
  weft__watch *w;
  /* During a walk new watchers take fresh slots, which the walk does not
   * reach, so it never visits them. */
  if (!weft__list_empty(&loop->free_slots) && !loop->walking) {
    w = WEFT__CONTAINER(weft__list_pop(&loop->free_slots), weft__watch,
                        u.free_next);
  } else {
    if (loop->used == loop->nchunks * CHUNK_SLOTS) {
      int err = grow(loop);
      if (err) return err;
    }
    w = slot_at(loop, loop->used++);
    w->id = ((uint64_t)1 << 32) | (loop->used - 1);
  }
  /* A reused slot already holds its next id (see weft__watch_free). */
  w->kind = (uint8_t)kind;
  w->flags = (uint8_t)(((flags & WEFT_WATCH_DISABLED) ? 0 : WEFT__W_ENABLED) |
                       ((flags & WEFT_WATCH_UNREF) ? 0 : WEFT__W_REF));
  w->cb = cb;
  w->data = data;
  loop->live++;
  *out = w;
  return 0;
}

void weft__watch_free(weft_loop_t *loop, weft__watch *w) {
  uint64_t gen = (w->id >> 32) + 1;
  uint32_t index = (uint32_t)w->id;
  w->kind = 0;
  w->flags = 0;
  w->cb = NULL;
  w->data = NULL;
  loop->live--;
  if (gen > GEN_MAX) {
    w->id = 0; /* retired: kind 0 and never on the free list */
    return;
  }
  /* kind == 0 marks the slot free; id now holds the next generation, which
   * no live id carries, so lookups of the old id fail. */
  w->id = (gen << 32) | index;
  weft__list_push(&loop->free_slots, &w->u.free_next);
}

void weft__watch_hide(weft_loop_t *loop, weft_id_t id) {
  weft__watch *w = weft__watch_find(loop, id);
  if (w) w->flags |= WEFT__W_HIDDEN;
}

weft__watch *weft__watch_find(const weft_loop_t *loop, weft_id_t id) {
  uint32_t index = (uint32_t)id;
  weft__watch *w;
  if (!loop || index >= loop->used) return NULL;
  w = slot_at(loop, index);
  return (w->kind && w->id == id) ? w : NULL;
}

void weft__watch_release(weft_loop_t *loop) {
  uint32_t i;
  for (i = 0; i < loop->nchunks; i++) weft__free(loop->chunks[i]);
  weft__free(loop->chunks);
  loop->chunks = NULL;
  loop->nchunks = 0;
  loop->used = 0;
  weft__list_init(&loop->free_slots);
}

/* Applies new flags through the kind's sync; restores them on failure. */
static int set_flags(weft_loop_t *loop, weft__watch *w, int flags) {
  int old = w->flags, err = 0;
  if (flags == old) return 0;
  w->flags = (uint8_t)flags;
  switch (w->kind) {
  case WEFT_KIND_IMMEDIATELY:
    err = weft__imm_sync(loop, w, old);
    break;
  case WEFT_KIND_ONCE:
  case WEFT_KIND_EVERY:
    err = weft__timer_sync(loop, w, old);
    break;
  case WEFT_KIND_READABLE:
  case WEFT_KIND_WRITABLE:
  case WEFT_KIND_POLL:
    err = weft__io_sync(loop, w, old);
    break;
  case WEFT_KIND_SIGNAL:
    err = weft__signal_sync(loop, w, old);
    break;
  }
  if (err) w->flags = (uint8_t)old;
  return err;
}

static int change(weft_loop_t *loop, weft_id_t id, int set, int clear) {
  weft__watch *w;
  if (!loop) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  if (!w) return WEFT_ENOENT;
  return set_flags(loop, w, (w->flags | set) & ~clear);
}

int weft_watch_enable(weft_loop_t *loop, weft_id_t id) {
  return change(loop, id, WEFT__W_ENABLED, 0);
}

int weft_watch_disable(weft_loop_t *loop, weft_id_t id) {
  return change(loop, id, 0, WEFT__W_ENABLED);
}

int weft_watch_ref(weft_loop_t *loop, weft_id_t id) {
  return change(loop, id, WEFT__W_REF, 0);
}

int weft_watch_unref(weft_loop_t *loop, weft_id_t id) {
  return change(loop, id, 0, WEFT__W_REF);
}

int weft_watch_cancel(weft_loop_t *loop, weft_id_t id) {
  weft__watch *w;
  if (!loop) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  if (!w) return WEFT_ENOENT;
  switch (w->kind) {
  case WEFT_KIND_IMMEDIATELY:
    weft__imm_close(loop, w);
    break;
  case WEFT_KIND_ONCE:
  case WEFT_KIND_EVERY:
    weft__timer_close(loop, w);
    break;
  case WEFT_KIND_READABLE:
  case WEFT_KIND_WRITABLE:
  case WEFT_KIND_POLL:
    weft__io_close(loop, w);
    break;
  case WEFT_KIND_SIGNAL:
    weft__signal_close(loop, w);
    break;
  }
  weft__watch_free(loop, w);
  return 0;
}

int weft_watch_kind(const weft_loop_t *loop, weft_id_t id) {
  const weft__watch *w;
  if (!loop) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  return w ? w->kind : WEFT_ENOENT;
}

int weft_watch_is_enabled(const weft_loop_t *loop, weft_id_t id) {
  const weft__watch *w;
  if (!loop) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  return w ? !!(w->flags & WEFT__W_ENABLED) : WEFT_ENOENT;
}

int weft_watch_has_ref(const weft_loop_t *loop, weft_id_t id) {
  const weft__watch *w;
  if (!loop) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  return w ? !!(w->flags & WEFT__W_REF) : WEFT_ENOENT;
}

int weft_watch_data(const weft_loop_t *loop, weft_id_t id, void **out) {
  const weft__watch *w;
  if (!loop || !out) return WEFT_EINVAL;
  w = weft__watch_find(loop, id);
  if (!w) return WEFT_ENOENT;
  *out = w->data;
  return 0;
}

int weft_loop_walk(weft_loop_t *loop, weft_walk_cb cb, void *data) {
  uint32_t i, end;
  int n = 0;
  if (!loop || !cb) return WEFT_EINVAL;
  end = loop->used;
  loop->walking++;
  for (i = 0; i < end; i++) {
    weft__watch *w = slot_at(loop, i);
    if (!w->kind || (w->flags & WEFT__W_HIDDEN)) continue;
    cb(loop, w->id, data);
    n++;
  }
  loop->walking--;
  return n;
}
