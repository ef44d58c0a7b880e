/* wheel.c: a hierarchical timing wheel with 1 ms ticks.
 *
 * Level k has 64 slots, each covering 64^k ms.  A node is placed at the
 * lowest level whose span covers its distance from `now`, in the slot given
 * by the bits of its absolute due time; when `now` crosses a level-k block
 * boundary, that block's slot is cascaded down a level.  Insert, unlink and
 * firing are O(1); each node cascades at most once per level.  Due times
 * stay exact to the millisecond (unlike coarse wheels that round), and a
 * 64-bit occupancy word per level lets `advance` and `next` skip empty time
 * with count-trailing-zeros instead of walking tick by tick. */
#include "internal.h"

#define MASK (WEFT__WHEEL_SLOTS - 1)

static int level_of(uint64_t delta) {
  if (delta < WEFT__WHEEL_SLOTS) return 0;
  return (63 - __builtin_clzll(delta)) / WEFT__WHEEL_BITS;
}

static uint64_t rotr(uint64_t x, unsigned n) {
  n &= 63;
  return n ? (x >> n) | (x << (64 - n)) : x;
}

void weft__wheel_init(weft__wheel *w, uint64_t now) {
  int k, s;
  w->now = now;
  for (k = 0; k < WEFT__WHEEL_LEVELS; k++) {
    w->bits[k] = 0;
    for (s = 0; s < WEFT__WHEEL_SLOTS; s++) weft__list_init(&w->slots[k][s]);
  }
}

int weft__wheel_empty(const weft__wheel *w) {
  int k;
  for (k = 0; k < WEFT__WHEEL_LEVELS; k++)
    if (w->bits[k]) return 0;
  return 1;
}

void weft__wheel_insert(weft__wheel *w, weft__tnode *node) {
  int k = level_of(node->due - w->now);
  unsigned s = (unsigned)(node->due >> (k * WEFT__WHEEL_BITS)) & MASK;
  weft__link *head = &w->slots[k][s], *pos = head;
  /* Level 0 slots fire in list order: keep them in arming order.  New
   * nodes carry the highest seq, so this walk only moves for cascaded
   * nodes that were armed before a slot's direct inserts. */
  if (k == 0) {
    while (pos->prev != head &&
           WEFT__CONTAINER(pos->prev, weft__tnode, link)->seq > node->seq)
      pos = pos->prev;
  }
  weft__list_insert_before(pos, &node->link);
  w->bits[k] |= (uint64_t)1 << s;
}

void weft__wheel_unlink(weft__wheel *w, weft__tnode *node) {
  weft__link *prev = node->link.prev;
  weft__list_remove(&node->link);
  /* A list emptied by the unlink is left with its head pointing at itself;
   * if that head is one of our slots, clear its occupancy bit. */
  if (prev->next == prev && prev >= &w->slots[0][0] &&
      prev <= &w->slots[WEFT__WHEEL_LEVELS - 1][MASK]) {
    size_t i = (size_t)(prev - &w->slots[0][0]);
    w->bits[i / WEFT__WHEEL_SLOTS] &= ~((uint64_t)1 << (i & MASK));
  }
}

/* Moves the slot of level k that starts at w->now down the wheel. */
static void cascade(weft__wheel *w, int k) {
  unsigned s = (unsigned)(w->now >> (k * WEFT__WHEEL_BITS)) & MASK;
  weft__link list, *head = &w->slots[k][s];
  if (!(w->bits[k] & ((uint64_t)1 << s))) return;
  weft__list_init(&list);
  weft__list_splice(&list, head, 0);
  w->bits[k] &= ~((uint64_t)1 << s);
  while (!weft__list_empty(&list))
    weft__wheel_insert(
        w, WEFT__CONTAINER(weft__list_pop(&list), weft__tnode, link));
}

/* Runs the cascades due at w->now: level k at every 64^k boundary. */
static void cascade_at_now(weft__wheel *w) {
  int k;
  for (k = 1; k < WEFT__WHEEL_LEVELS; k++) {
    if (w->now & (((uint64_t)1 << (k * WEFT__WHEEL_BITS)) - 1)) break;
    cascade(w, k);
  }
}

uint64_t weft__wheel_next(const weft__wheel *w) {
  uint64_t best = UINT64_MAX, t = w->now;
  int k;
  if (w->bits[0]) best = t + __builtin_ctzll(rotr(w->bits[0], t & MASK));
  for (k = 1; k < WEFT__WHEEL_LEVELS; k++) {
    unsigned shift = k * WEFT__WHEEL_BITS, cur, d;
    uint64_t rot, block;
    if (!w->bits[k]) continue;
    cur = (unsigned)(t >> shift) & MASK;
    rot = rotr(w->bits[k], cur);
    /* The current slot was cascaded when `now` entered its block, unless
     * `now` is that block's first, still unprocessed, millisecond; what it
     * holds otherwise belongs to the block one rotation ahead. */
    if (t & (((uint64_t)1 << shift) - 1)) {
      d = (rot >> 1) ? (unsigned)__builtin_ctzll(rot >> 1) + 1 : 64;
    } else {
      d = (unsigned)__builtin_ctzll(rot);
    }
    block = ((t >> shift) + d) << shift;
    if (block < best) best = block;
  }
  return best;
}

void weft__wheel_advance(weft__wheel *w, uint64_t now, weft__link *out) {
  while (w->now <= now) {
    unsigned s;
    uint64_t next;
    cascade_at_now(w);
    s = (unsigned)w->now & MASK;
    if (w->bits[0] & ((uint64_t)1 << s)) {
      weft__list_splice(out, &w->slots[0][s], 0);
      w->bits[0] &= ~((uint64_t)1 << s);
    }
    w->now++;
    /* Jump over empty time: nothing can happen before `next`. */
    next = weft__wheel_next(w);
    if (next > now) {
      w->now = now + 1;
      break;
    }
    w->now = next;
  }
}
