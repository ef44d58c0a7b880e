/* queue.c: a FIFO channel of opaque items between the tasks of one loop,
 * for every host (a Lua binding carries the keys of its values in it).
 *
 * Items wait in a ring up to the capacity (0: a rendezvous, where a send
 * waits for its receiver; WEFT_QUEUE_UNBOUNDED: none).  A waiting
 * receiver is handed an item directly, into the slot it gave; a waiting
 * sender keeps its item with it until a receiver or room takes it.  Should
 * a receiver be cancelled after an item was handed to it but before its
 * resume ran, the item goes back to the front: every item sent is received
 * exactly once, in order. */
#include "internal.h"

#include <string.h>

struct weft_queue_s {
  weft_loop_t *loop;
  size_t capacity;
  void **ring;
  size_t cap, head, n; /* the ring's slots, its first item, its items */
  int closed;
  weft__link receivers, senders;
};

size_t weft_queue_size(void) { return sizeof(weft_queue_t); }

int weft_queue_init(weft_queue_t *q, weft_loop_t *loop, size_t capacity) {
  if (!q || !loop) return WEFT_EINVAL;
  memset(q, 0, sizeof *q);
  q->loop = loop;
  q->capacity = capacity;
  weft__list_init(&q->receivers);
  weft__list_init(&q->senders);
  return 0;
}

void weft_queue_fini(weft_queue_t *q) {
  if (!q) return;
  weft_queue_close(q);
  weft__free(q->ring);
  q->ring = NULL;
  q->n = q->cap = 0;
}

/* Makes room for one more item in the ring; 0 or WEFT_ENOMEM. */
static int grow(weft_queue_t *q) {
  size_t cap = q->cap ? 2 * q->cap : 8, i;
  void **ring;
  if (q->n < q->cap) return 0;
  ring = weft__malloc(cap * sizeof *ring);
  if (!ring) return WEFT_ENOMEM;
  for (i = 0; i < q->n; i++) ring[i] = q->ring[(q->head + i) % q->cap];
  weft__free(q->ring);
  q->ring = ring;
  q->cap = cap;
  q->head = 0;
  return 0;
}

static int push_back(weft_queue_t *q, void *item) {
  int err = grow(q);
  if (err) return err;
  q->ring[(q->head + q->n++) % q->cap] = item;
  return 0;
}

static int push_front(weft_queue_t *q, void *item) {
  int err = grow(q);
  if (err) return err;
  q->head = (q->head + q->cap - 1) % q->cap;
  q->ring[q->head] = item;
  q->n++;
  return 0;
}

static void *pop_front(weft_queue_t *q) {
  void *item = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->n--;
  return item;
}

static void deliver(weft_queue_t *q, weft_task_t *receiver, void *item);

/* An item was handed to a receiver cancelled before its resume: the next
 * receiver gets it, or it goes back to the front of the ring. */
static void undo_receive(weft_task_t *t, void *data) {
  weft_queue_t *q = data;
  void *item = *(void **)t->wslot;
  weft_task_t *next = weft__sync_first(&q->receivers);
  if (next) deliver(q, next, item);
  else push_front(q, item); /* (room it had: it was just taken out) */
}

static void deliver(weft_queue_t *q, weft_task_t *receiver, void *item) {
  *(void **)receiver->wslot = item;
  receiver->wdata = q;
  weft__task_wake_sync(receiver, 0, undo_receive);
}

/* Room freed in the ring: the first waiting sender's item moves in. */
static void admit_sender(weft_queue_t *q) {
  weft_task_t *s;
  if (q->n >= q->capacity || !(s = weft__sync_first(&q->senders))) return;
  if (push_back(q, s->wslot) == 0) weft__task_wake_sync(s, 0, NULL);
  else weft__list_push(&q->senders, &s->wlink); /* (no memory: it waits) */
}

int weft_queue_send(weft_queue_t *q, weft_task_t *t, void *item,
                    int64_t timeout_ms) {
  weft_task_t *r;
  int err;
  if (!q) return WEFT_EINVAL;
  if (q->closed) return WEFT_ECLOSED;
  if (t && weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
  if ((r = weft__sync_first(&q->receivers)) != NULL) {
    deliver(q, r, item);
    return 0;
  }
  if (q->n < q->capacity) return push_back(q, item);
  if (!t) return WEFT_EAGAIN;
  err = weft__sync_wait(&q->senders, t, timeout_ms, q);
  if (err == 1) t->wslot = item;
  return err;
}

int weft_queue_recv(weft_queue_t *q, weft_task_t *t, void **out,
                    int64_t timeout_ms) {
  weft_task_t *s;
  int err;
  if (!q || !out) return WEFT_EINVAL;
  if (t && weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
  if (q->n > 0) {
    *out = pop_front(q);
    admit_sender(q);
    return 0;
  }
  if ((s = weft__sync_first(&q->senders)) != NULL) { /* a rendezvous */
    *out = s->wslot;
    weft__task_wake_sync(s, 0, NULL);
    return 0;
  }
  if (q->closed) return WEFT_ECLOSED;
  if (!t) return WEFT_EAGAIN;
  err = weft__sync_wait(&q->receivers, t, timeout_ms, q);
  if (err == 1) t->wslot = out;
  return err;
}

int weft_queue_close(weft_queue_t *q) {
  if (!q) return WEFT_EINVAL;
  q->closed = 1;
  weft__sync_wake_all(&q->receivers, WEFT_ECLOSED);
  weft__sync_wake_all(&q->senders, WEFT_ECLOSED);
  return 0;
}

size_t weft_queue_count(const weft_queue_t *q) { return q ? q->n : 0; }

int weft_queue_closed(const weft_queue_t *q) { return q && q->closed; }

int weft_queue_peek(const weft_queue_t *q, size_t i, void **item) {
  if (!q || !item || i >= q->n) return WEFT_EINVAL;
  *item = q->ring[(q->head + i) % q->cap];
  return 0;
}
