/* chan.c: channels of byte messages between threads.
 *
 * A channel is an (adaptive) mutex, a condition and a FIFO ring of copied
 * messages, shared by reference count.  A thread without a loop blocks on
 * the condition; a loop waits without blocking: weft_chan_wait registers
 * a one-shot waiter with its own uv_async, and whichever thread makes the
 * waiter's condition true wakes that loop.  libuv coalesces async sends,
 * so a burst of messages costs the loop one wake-up, and a receiver
 * drains the burst with weft_chan_recv_many before it waits again. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Messages wait in a ring of slots.  A short message is copied into its
 * slot, so a sender allocates nothing: a block malloc'd by the sender and
 * freed by the receiver, on another thread, would never come back to the
 * sender's malloc cache, and every send would pay malloc's slow path and
 * its arena lock.  A longer message has its own block. */
#define INLINE_MAX 48
#define RING_MIN 16
#define RING_KEEP 4096 /* an emptied ring larger than this shrinks */
#define TAKE_MAX 64    /* messages weft_chan_recv_many takes at most */

typedef struct slot {
  size_t len;
  void *big; /* a message longer than INLINE_MAX: its block */
  char small[INLINE_MAX];
} slot;

struct weft_chan_s {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* any change: a message, room, the close */
  slot *ring;
  size_t head, cap;       /* count slots in use from head, wrapping */
  size_t count, capacity; /* capacity SIZE_MAX: unbounded */
  int closed;
  atomic_size_t avail; /* count, published for lock-free peeks */
  atomic_int refs;
  weft__link waiters; /* loop-side waiters not yet fired */
};

struct weft_chan_wait_s {
  uv_async_t async;
  weft_loop_t *loop;
  weft_chan_t *ch;
  weft__link link;
  int event;
  int fired;     /* under ch->mu */
  int cancelled; /* loop thread only */
  int status;
  weft_chan_cb cb;
  void *data;
};

/* A sender and a receiver on two cores take the mutex for a few dozen
 * nanoseconds each, millions of times a second: a plain mutex that finds
 * it taken sleeps in the kernel, while an adaptive one spins that short
 * while first (a worker -> task stream ran 0.6M msgs/s plain, 1.05M
 * adaptive, on this project's 2-core machine). */
static void init_mutex(pthread_mutex_t *mu) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
#ifdef __GLIBC__ /* (an enum constant there, not a macro) */
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(mu, &ma);
  pthread_mutexattr_destroy(&ma);
}

int weft_chan_new(size_t capacity, weft_chan_t **out) {
  weft_chan_t *ch;
  pthread_condattr_t ca;
  if (!out || capacity == 0) return WEFT_EINVAL;
  ch = weft__calloc(1, sizeof *ch);
  if (!ch) return WEFT_ENOMEM;
  init_mutex(&ch->mu);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ch->cv, &ca);
  pthread_condattr_destroy(&ca);
  weft__list_init(&ch->waiters);
  ch->capacity = capacity;
  atomic_init(&ch->avail, 0);
  atomic_init(&ch->refs, 1);
  *out = ch;
  return 0;
}

void weft_chan_ref(weft_chan_t *ch) {
  if (ch) atomic_fetch_add(&ch->refs, 1);
}

void weft_chan_unref(weft_chan_t *ch) {
  if (!ch || atomic_fetch_sub(&ch->refs, 1) != 1) return;
  /* Nobody holds it, so no waiter can be left either. */
  for (size_t i = 0; i < ch->count; i++)
    weft__free(ch->ring[(ch->head + i) % ch->cap].big);
  weft__free(ch->ring);
  pthread_mutex_destroy(&ch->mu);
  pthread_cond_destroy(&ch->cv);
  weft__free(ch);
}

/* Wakes the loop-side waiters whose condition holds now, and publishes
 * the count; ch->mu held (called after every change). */
static void wake_waiters(weft_chan_t *ch) {
  weft__link *l, *next;
  atomic_store_explicit(&ch->avail, ch->count, memory_order_release);
  for (l = ch->waiters.next; l != &ch->waiters; l = next) {
    weft_chan_wait_t *w = WEFT__CONTAINER(l, weft_chan_wait_t, link);
    int ready;
    next = l->next;
    if (w->event == WEFT_CHAN_RECV)
      ready = ch->count > 0 || ch->closed;
    else
      ready = ch->count < ch->capacity || ch->closed;
    if (!ready) continue;
    w->status = ch->closed && (w->event == WEFT_CHAN_SEND || ch->count == 0)
                    ? WEFT_ECLOSED
                    : 0;
    w->fired = 1;
    weft__list_remove(&w->link);
    uv_async_send(&w->async);
  }
}

/* Waits on ch->cv (held) until woken or the deadline; 1 on timeout. */
static int cv_wait(weft_chan_t *ch, int64_t timeout_ms,
                   const struct timespec *t) {
  if (timeout_ms < 0) {
    pthread_cond_wait(&ch->cv, &ch->mu);
    return 0;
  }
  return pthread_cond_timedwait(&ch->cv, &ch->mu, t) == ETIMEDOUT;
}

/* Appends a message (its slot filled from data, or its block); ch->mu
 * held.  Returns 0 or WEFT_ENOMEM (the ring could not grow). */
static int push_slot(weft_chan_t *ch, const void *data, size_t len,
                     void *big) {
  slot *sl;
  if (ch->count == ch->cap) {
    size_t cap = ch->cap ? 2 * ch->cap : RING_MIN;
    slot *ring = weft__malloc(cap * sizeof *ring);
    if (!ring) return WEFT_ENOMEM;
    for (size_t i = 0; i < ch->count; i++)
      ring[i] = ch->ring[(ch->head + i) % ch->cap];
    weft__free(ch->ring);
    ch->ring = ring;
    ch->cap = cap;
    ch->head = 0;
  }
  sl = &ch->ring[(ch->head + ch->count) % ch->cap];
  sl->len = len;
  sl->big = big;
  if (!big && len) memcpy(sl->small, data, len);
  ch->count++;
  return 0;
}

/* Takes the oldest message: its block (a short one is copied to buf,
 * INLINE_MAX bytes, and NULL returned); ch->mu held, count > 0. */
static void *pop_slot(weft_chan_t *ch, void *buf, size_t *len) {
  slot *sl = &ch->ring[ch->head];
  void *big = sl->big;
  *len = sl->len;
  if (!big && sl->len) memcpy(buf, sl->small, sl->len);
  ch->head = (ch->head + 1) % ch->cap;
  if (--ch->count == 0) {
    ch->head = 0;
    if (ch->cap > RING_KEEP) { /* a burst is over: give its memory back */
      weft__free(ch->ring);
      ch->ring = NULL;
      ch->cap = 0;
    }
  }
  return big;
}

/* Takes the oldest message into *block: a spare block of INLINE_MAX
 * bytes the receiver allocated (a short message is copied there), or
 * the message's own block, the spare then freed; ch->mu held, count > 0. */
static void take(weft_chan_t *ch, void **block, size_t *len) {
  void *big = pop_slot(ch, *block, len);
  if (big) {
    weft__free(*block);
    *block = big;
  }
}

int weft_chan_send(weft_chan_t *ch, const void *data, size_t len,
                   int64_t timeout_ms) {
  void *big = NULL;
  struct timespec t;
  int err;
  if (!ch || (!data && len)) return WEFT_EINVAL;
  if (len > INLINE_MAX) {
    big = weft__malloc(len);
    if (!big) return WEFT_ENOMEM;
    memcpy(big, data, len);
  }
  if (timeout_ms > 0) t = weft__deadline((uint64_t)timeout_ms);
  pthread_mutex_lock(&ch->mu);
  while (!ch->closed && ch->count >= ch->capacity) {
    if (timeout_ms == 0 || cv_wait(ch, timeout_ms, &t)) {
      pthread_mutex_unlock(&ch->mu);
      weft__free(big);
      return timeout_ms == 0 ? WEFT_EAGAIN : WEFT_ETIMEDOUT;
    }
  }
  if (ch->closed) {
    pthread_mutex_unlock(&ch->mu);
    weft__free(big);
    return WEFT_ECLOSED;
  }
  err = push_slot(ch, data, len, big);
  if (err) {
    pthread_mutex_unlock(&ch->mu);
    weft__free(big);
    return err;
  }
  pthread_cond_broadcast(&ch->cv);
  wake_waiters(ch);
  pthread_mutex_unlock(&ch->mu);
  return 0;
}

/* A receiver allocates the blocks it hands out before it takes the lock
 * (short messages are copied into them): on its own thread, where the
 * frees come back to, and before anything is taken, so that running out
 * of memory loses no message. */
int weft_chan_recv(weft_chan_t *ch, int64_t timeout_ms, void **data,
                   size_t *len) {
  struct timespec t;
  void *block;
  if (!ch || !data || !len) return WEFT_EINVAL;
  if (timeout_ms > 0) t = weft__deadline((uint64_t)timeout_ms);
  block = weft__malloc(INLINE_MAX);
  if (!block) return WEFT_ENOMEM;
  pthread_mutex_lock(&ch->mu);
  while (ch->count == 0 && !ch->closed) {
    if (timeout_ms == 0 || cv_wait(ch, timeout_ms, &t)) {
      pthread_mutex_unlock(&ch->mu);
      weft__free(block);
      return timeout_ms == 0 ? WEFT_EAGAIN : WEFT_ETIMEDOUT;
    }
  }
  if (ch->count == 0) { /* closed and drained */
    pthread_mutex_unlock(&ch->mu);
    weft__free(block);
    return WEFT_ECLOSED;
  }
  take(ch, &block, len);
  pthread_cond_broadcast(&ch->cv);
  wake_waiters(ch);
  pthread_mutex_unlock(&ch->mu);
  *data = block;
  return 0;
}

int weft_chan_recv_many(weft_chan_t *ch, void **data, size_t *len,
                        size_t max) {
  void *spare[TAKE_MAX];
  size_t n = 0, k;
  if (!ch || !data || !len || max == 0) return WEFT_EINVAL;
  k = atomic_load_explicit(&ch->avail, memory_order_acquire);
  if (k > max) k = max;
  if (k > TAKE_MAX) k = TAKE_MAX;
  if (k == 0) k = 1; /* (to tell empty from closed, or a message just in) */
  for (size_t i = 0; i < k; i++) {
    spare[i] = weft__malloc(INLINE_MAX);
    if (!spare[i]) {
      while (i > 0) weft__free(spare[--i]);
      return WEFT_ENOMEM;
    }
  }
  pthread_mutex_lock(&ch->mu);
  if (ch->count == 0) {
    int closed = ch->closed;
    pthread_mutex_unlock(&ch->mu);
    for (size_t i = 0; i < k; i++) weft__free(spare[i]);
    return closed ? WEFT_ECLOSED : WEFT_EAGAIN;
  }
  while (n < k && ch->count > 0) {
    take(ch, &spare[n], &len[n]);
    data[n] = spare[n];
    n++;
  }
  pthread_cond_broadcast(&ch->cv);
  wake_waiters(ch);
  pthread_mutex_unlock(&ch->mu);
  for (size_t i = n; i < k; i++) weft__free(spare[i]);
  return (int)n;
}

void weft_chan_free(void *data) { weft__free(data); }

int weft_chan_close(weft_chan_t *ch) {
  if (!ch) return WEFT_EINVAL;
  pthread_mutex_lock(&ch->mu);
  if (ch->closed) {
    pthread_mutex_unlock(&ch->mu);
    return WEFT_ECLOSED;
  }
  ch->closed = 1;
  pthread_cond_broadcast(&ch->cv);
  wake_waiters(ch);
  pthread_mutex_unlock(&ch->mu);
  return 0;
}

size_t weft_chan_count(weft_chan_t *ch) {
  return ch ? atomic_load_explicit(&ch->avail, memory_order_acquire) : 0;
}

/* ---- loop-side waits ------------------------------------------------------ */

static void on_wait_closed(uv_handle_t *h) {
  weft_chan_wait_t *w = WEFT__CONTAINER(h, weft_chan_wait_t, async);
  weft_loop_t *loop = w->loop;
  weft_chan_unref(w->ch);
  weft__free(w);
  loop->tasks--;
  weft__loop_handle_closed(loop);
}

static void on_wait_async(uv_async_t *h) {
  weft_chan_wait_t *w = WEFT__CONTAINER(h, weft_chan_wait_t, async);
  if (uv_is_closing((uv_handle_t *)h)) return;
  uv_close((uv_handle_t *)h, on_wait_closed);
  if (!w->cancelled) w->cb(w->ch, w->event, w->status, w->data);
}

int weft_chan_wait(weft_chan_t *ch, weft_loop_t *loop, int event,
                   weft_chan_cb cb, void *data, weft_chan_wait_t **out) {
  weft_chan_wait_t *w;
  int err;
  if (!ch || !loop || !cb ||
      (event != WEFT_CHAN_RECV && event != WEFT_CHAN_SEND))
    return WEFT_EINVAL;
  w = weft__calloc(1, sizeof *w);
  if (!w) return WEFT_ENOMEM;
  err = uv_async_init(loop->uv, &w->async, on_wait_async);
  if (err) {
    weft__free(w);
    return weft__err_from_uv(err);
  }
  w->async.data = loop;
  w->loop = loop;
  w->ch = ch;
  w->event = event;
  w->cb = cb;
  w->data = data;
  weft_chan_ref(ch);
  loop->open_handles++;
  loop->tasks++;
  pthread_mutex_lock(&ch->mu);
  weft__list_push(&ch->waiters, &w->link);
  wake_waiters(ch); /* ready at once: fires from the loop */
  pthread_mutex_unlock(&ch->mu);
  if (out) *out = w;
  return 0;
}

int weft_chan_unwait(weft_chan_wait_t *w) {
  int fired;
  if (!w || w->cancelled) return WEFT_EINVAL;
  pthread_mutex_lock(&w->ch->mu);
  fired = w->fired;
  if (!fired) weft__list_remove(&w->link);
  pthread_mutex_unlock(&w->ch->mu);
  w->cancelled = 1;
  /* A fired waiter's async callback closes it; else close it now. */
  if (!fired) uv_close((uv_handle_t *)&w->async, on_wait_closed);
  return 0;
}
