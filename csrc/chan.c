/* chan.c: channels of byte messages between threads.
 *
 * A channel is a FIFO of copied messages with two ends, each under its
 * own mutex: senders append under one, receivers take under the other, so
 * a sender and a receiver on two cores never wait for each other's lock.
 * Two counters, messages sent and messages taken (each written by its own
 * end, read by both), tell a receiver whether a message is there and a
 * sender whether a bounded channel has room; their difference is the
 * count.  Every message is taken exactly once, by one receive call: no
 * receiver holds messages back for later calls.
 *
 * Waiting is apart from both ends, under a third mutex, and costs the
 * other end nothing until someone waits: a thread without a loop blocks on
 * a condition, a loop registers a one-shot waiter with its own uv_async,
 * and each counts itself in nrecv / nsend first, so that the end that
 * makes its condition true knows to wake it (libuv coalesces async sends:
 * a burst of messages costs a loop one wake-up).  A thread blocked here
 * while it runs a pool job is woken when the job is cancelled
 * (WEFT_ECANCELED). */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Messages wait in blocks of slots, linked from the oldest to the newest.
 * A short message is copied into its slot, so a sender allocates nothing:
 * a block malloc'd by the sender and freed by the receiver, on another
 * thread, would never come back to the sender's malloc cache, and every
 * send would pay malloc's slow path.  A longer message has its own block,
 * handed to the receiver as it is (weft_chan_send_block takes the
 * sender's block too, so a large message is never copied on its way).  A
 * receiver done with a block of slots keeps it as the channel's spare, for
 * the sender's next block. */
#define INLINE_MAX 48
#define BLOCK_SLOTS 63 /* a block is 4 KiB: 63 slots of 64 bytes + a link */
#define SPIN_NS 20000  /* how long a receiver watches before it sleeps */

typedef struct slot {
  size_t len;
  void *big; /* a message longer than INLINE_MAX: its block */
  char small[INLINE_MAX];
} slot;

typedef struct block {
  _Atomic(struct block *) next;
  slot s[BLOCK_SLOTS];
} block;

/* The two ends sit on cache lines of their own: each is written by its
 * own side on every message. */
#define LINE 64

struct weft_chan_s {
  /* the receiving end, under rmu: the oldest block and the next slot */
  pthread_mutex_t rmu;
  block *head;
  size_t hpos;
  atomic_size_t taken; /* messages taken so far */
  char pad1[LINE];
  /* the sending end, under smu: the newest block and the free slot */
  pthread_mutex_t smu;
  block *tail;
  size_t tpos;
  atomic_size_t sent; /* messages appended so far */
  atomic_int closed;  /* set under smu: no message comes after it */
  char pad2[LINE];
  /* waiting, under wmu */
  pthread_mutex_t wmu;
  pthread_cond_t can_recv, can_send;
  atomic_uint nrecv, nsend; /* blocked threads and loop waiters */
  weft__link waiters;       /* loop-side waiters not yet fired */
  _Atomic(block *) spare;
  size_t capacity; /* SIZE_MAX: unbounded */
  atomic_int refs;
};

struct weft_chan_wait_s {
  uv_async_t async;
  weft_loop_t *loop;
  weft_chan_t *ch;
  weft__link link;
  int event;
  int fired;     /* under ch->wmu */
  int cancelled; /* loop thread only */
  int status;
  weft_chan_cb cb;
  void *data;
};

/* Loads taken before sent, so that sent - taken never underflows. */
static size_t count(weft_chan_t *ch) {
  size_t t = atomic_load(&ch->taken);
  return atomic_load(&ch->sent) - t;
}

/* Several senders (or receivers) on several cores take their end's mutex
 * for a few dozen nanoseconds each: a plain mutex that finds it taken
 * sleeps in the kernel, an adaptive one spins that short while first (a
 * contended channel ran 0.6M msgs/s plain, 1.05M adaptive, on this
 * project's 2-core machine). */
static void init_mutex(pthread_mutex_t *mu) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
#ifdef __GLIBC__ /* (an enum constant there, not a macro) */
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(mu, &ma);
  pthread_mutexattr_destroy(&ma);
}

static block *new_block(weft_chan_t *ch) {
  block *b = atomic_exchange(&ch->spare, NULL);
  if (!b && !(b = weft__malloc(sizeof *b))) return NULL;
  atomic_init(&b->next, NULL);
  return b;
}

static void drop_block(weft_chan_t *ch, block *b) {
  weft__free(atomic_exchange(&ch->spare, b));
}

int weft_chan_new(size_t capacity, weft_chan_t **out) {
  weft_chan_t *ch;
  pthread_condattr_t ca;
  if (!out || capacity == 0) return WEFT_EINVAL;
  ch = weft__calloc(1, sizeof *ch);
  if (!ch) return WEFT_ENOMEM;
  ch->head = ch->tail = new_block(ch);
  if (!ch->head) {
    weft__free(ch);
    return WEFT_ENOMEM;
  }
  init_mutex(&ch->rmu);
  init_mutex(&ch->smu);
  pthread_mutex_init(&ch->wmu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ch->can_recv, &ca);
  pthread_cond_init(&ch->can_send, &ca);
  pthread_condattr_destroy(&ca);
  weft__list_init(&ch->waiters);
  ch->capacity = capacity;
  atomic_init(&ch->refs, 1);
  *out = ch;
  return 0;
}

void weft_chan_ref(weft_chan_t *ch) {
  if (ch) atomic_fetch_add(&ch->refs, 1);
}

void weft_chan_unref(weft_chan_t *ch) {
  block *b;
  if (!ch || atomic_fetch_sub(&ch->refs, 1) != 1) return;
  /* Nobody holds it, so no waiter can be left either. */
  for (size_t n = count(ch), i = ch->hpos; n > 0; n--, i++) {
    if (i == BLOCK_SLOTS) {
      b = atomic_load(&ch->head->next);
      weft__free(ch->head);
      ch->head = b;
      i = 0;
    }
    weft__free(ch->head->s[i].big);
  }
  for (b = ch->head; b;) {
    block *next = atomic_load(&b->next);
    weft__free(b);
    b = next;
  }
  weft__free(atomic_load(&ch->spare));
  pthread_mutex_destroy(&ch->rmu);
  pthread_mutex_destroy(&ch->smu);
  pthread_mutex_destroy(&ch->wmu);
  pthread_cond_destroy(&ch->can_recv);
  pthread_cond_destroy(&ch->can_send);
  weft__free(ch);
}

/* ---- the conditions, and waking who waits for them ---------------------- */

/* Whether a receive would not wait (a message, or closed), and a send. */
static int recv_ready(weft_chan_t *ch) {
  return atomic_load(&ch->closed) || count(ch) > 0;
}

static int send_ready(weft_chan_t *ch) {
  return atomic_load(&ch->closed) || count(ch) < ch->capacity;
}

/* The count of who waits for event. */
static atomic_uint *waiting(weft_chan_t *ch, int event) {
  return event == WEFT_CHAN_RECV ? &ch->nrecv : &ch->nsend;
}

/* Fires the loop-side waiters for event whose condition holds; wmu held. */
static void fire_waiters(weft_chan_t *ch, int event) {
  weft__link *l, *next;
  for (l = ch->waiters.next; l != &ch->waiters; l = next) {
    weft_chan_wait_t *w = WEFT__CONTAINER(l, weft_chan_wait_t, link);
    next = l->next;
    if (w->event != event) continue;
    if (event == WEFT_CHAN_RECV ? !recv_ready(ch) : !send_ready(ch)) continue;
    w->status = atomic_load(&ch->closed) &&
                        (event == WEFT_CHAN_SEND || count(ch) == 0)
                    ? WEFT_ECLOSED
                    : 0;
    w->fired = 1;
    weft__list_remove(&w->link);
    atomic_fetch_sub(waiting(ch, event), 1);
    uv_async_send(&w->async);
  }
}

/* Wakes whoever waits for event, if anyone does: called after every
 * change that may make it hold.  The change (a sequentially consistent
 * store of sent, taken or closed) comes before the load of the waiters'
 * count, and a waiter counts itself before it checks the condition, so
 * either the waker sees the waiter or the waiter sees the change. */
static void wake(weft_chan_t *ch, int event) {
  if (!atomic_load(waiting(ch, event))) return;
  pthread_mutex_lock(&ch->wmu);
  pthread_cond_broadcast(event == WEFT_CHAN_RECV ? &ch->can_recv
                                                 : &ch->can_send);
  fire_waiters(ch, event);
  pthread_mutex_unlock(&ch->wmu);
}

void weft__chan_interrupt(weft_chan_t *ch) {
  pthread_mutex_lock(&ch->wmu);
  pthread_cond_broadcast(&ch->can_recv);
  pthread_cond_broadcast(&ch->can_send);
  pthread_mutex_unlock(&ch->wmu);
}

/* Blocks the calling thread until event may hold, the deadline (when
 * timeout_ms > 0) or the cancellation of the pool job it runs.  Returns
 * 0 to try again, WEFT_ETIMEDOUT or WEFT_ECANCELED. */
static int block_until(weft_chan_t *ch, int event, int64_t timeout_ms,
                       const struct timespec *deadline) {
  atomic_uint *n = waiting(ch, event);
  pthread_cond_t *cv =
      event == WEFT_CHAN_RECV ? &ch->can_recv : &ch->can_send;
  weft_job_t *job = weft__job_current();
  int r = 0;
  if (job && weft__job_blocked(job, ch)) r = WEFT_ECANCELED;
  pthread_mutex_lock(&ch->wmu);
  atomic_fetch_add(n, 1);
  while (!r && !(event == WEFT_CHAN_RECV ? recv_ready(ch) : send_ready(ch))) {
    if (job && weft_job_cancelled(job)) {
      r = WEFT_ECANCELED;
    } else if (timeout_ms < 0) {
      pthread_cond_wait(cv, &ch->wmu);
    } else if (pthread_cond_timedwait(cv, &ch->wmu, deadline) == ETIMEDOUT) {
      r = WEFT_ETIMEDOUT;
    }
  }
  atomic_fetch_sub(n, 1);
  pthread_mutex_unlock(&ch->wmu);
  if (job) weft__job_blocked(job, NULL);
  return r;
}

/* ---- the two ends ---------------------------------------------------------- */

/* Appends a message (copied into its slot, or its block big), unless the
 * channel is closed or full.  Returns 0, WEFT_ECLOSED, WEFT_EAGAIN (full)
 * or WEFT_ENOMEM (no block for the slot). */
static int push(weft_chan_t *ch, const void *data, size_t len, void *big) {
  slot *sl;
  size_t sent;
  pthread_mutex_lock(&ch->smu);
  sent = atomic_load_explicit(&ch->sent, memory_order_relaxed);
  if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
    pthread_mutex_unlock(&ch->smu);
    return WEFT_ECLOSED;
  }
  if (ch->capacity != SIZE_MAX && sent - atomic_load(&ch->taken) >= ch->capacity) {
    pthread_mutex_unlock(&ch->smu);
    return WEFT_EAGAIN;
  }
  if (ch->tpos == BLOCK_SLOTS) {
    block *b = new_block(ch);
    if (!b) {
      pthread_mutex_unlock(&ch->smu);
      return WEFT_ENOMEM;
    }
    atomic_store_explicit(&ch->tail->next, b, memory_order_release);
    ch->tail = b;
    ch->tpos = 0;
  }
  sl = &ch->tail->s[ch->tpos++];
  sl->len = len;
  sl->big = big;
  if (!big && len) memcpy(sl->small, data, len);
  atomic_store(&ch->sent, sent + 1); /* publishes the slot */
  pthread_mutex_unlock(&ch->smu);
  wake(ch, WEFT_CHAN_RECV);
  return 0;
}

/* Takes the oldest message: a short one is copied into buf (INLINE_MAX
 * bytes) and NULL returned in *big, a long one's block is returned in
 * *big.  Returns 0, WEFT_EAGAIN (none), WEFT_ECLOSED (closed, drained) or
 * WEFT_ECANCELED (job, the pool job of this thread, is cancelled); rmu
 * held. */
static int take_locked(weft_chan_t *ch, weft_job_t *job, void *buf,
                       size_t *len, void **big) {
  slot *sl;
  size_t taken = atomic_load_explicit(&ch->taken, memory_order_relaxed);
  int closed = atomic_load(&ch->closed); /* (before sent: none after it) */
  if (atomic_load(&ch->sent) == taken) return closed ? WEFT_ECLOSED : WEFT_EAGAIN;
  /* A cancelled job takes nothing: checked after the load of sent, so that
   * a message sent after the cancellation is never seen without it. */
  if (job && weft_job_cancelled(job)) return WEFT_ECANCELED;
  if (ch->hpos == BLOCK_SLOTS) { /* the sender linked the next one */
    block *b = ch->head;
    ch->head = atomic_load_explicit(&b->next, memory_order_acquire);
    ch->hpos = 0;
    drop_block(ch, b);
  }
  sl = &ch->head->s[ch->hpos++];
  *len = sl->len;
  *big = sl->big;
  if (!sl->big && sl->len) memcpy(buf, sl->small, sl->len);
  atomic_store(&ch->taken, taken + 1);
  return 0;
}

/* Takes up to n messages into blocks[] (each INLINE_MAX bytes, allocated
 * by the caller: a long message replaces its spare, which is freed) under
 * one lock.  Returns how many, or WEFT_EAGAIN / WEFT_ECLOSED for none. */
static int take(weft_chan_t *ch, void **blocks, size_t *lens, int n) {
  weft_job_t *job = weft__job_current();
  int got = 0, err = 0;
  pthread_mutex_lock(&ch->rmu);
  while (got < n) {
    void *big;
    if ((err = take_locked(ch, job, blocks[got], &lens[got], &big))) break;
    if (big) {
      weft__free(blocks[got]);
      blocks[got] = big;
    }
    got++;
  }
  pthread_mutex_unlock(&ch->rmu);
  if (got) wake(ch, WEFT_CHAN_SEND);
  return got ? got : err;
}

/* Watches for a message for up to SPIN_NS: a sender producing at full
 * speed on another core sends its next one that soon, and sleeping would
 * cost the sender a wake-up per message.  1 if one came (or the close). */
static int spin_for_message(weft_chan_t *ch) {
  uint64_t end = uv_hrtime() + SPIN_NS;
  do {
    for (int i = 0; i < 64; i++)
      if (recv_ready(ch)) return 1;
  } while (uv_hrtime() < end);
  return 0;
}

/* Appends a message (big: its block, or NULL to copy a short one),
 * waiting up to timeout_ms while the channel is full. */
static int send_msg(weft_chan_t *ch, const void *data, size_t len, void *big,
                    int64_t timeout_ms) {
  struct timespec t;
  int err;
  if (timeout_ms > 0) t = weft__deadline((uint64_t)timeout_ms);
  while ((err = push(ch, data, len, big)) == WEFT_EAGAIN && timeout_ms != 0) {
    err = block_until(ch, WEFT_CHAN_SEND, timeout_ms, &t);
    if (err) break;
  }
  return err;
}

int weft_chan_send(weft_chan_t *ch, const void *data, size_t len,
                   int64_t timeout_ms) {
  void *big = NULL;
  int err;
  if (!ch || (!data && len)) return WEFT_EINVAL;
  if (len > INLINE_MAX) {
    big = weft__malloc(len);
    if (!big) return WEFT_ENOMEM;
    memcpy(big, data, len);
  }
  err = send_msg(ch, data, len, big, timeout_ms);
  if (err) weft__free(big);
  return err;
}

void *weft_chan_realloc(void *block, size_t len) {
  return weft__realloc(block, len);
}

/* A long block is queued as it is, so that a large message is never
 * copied on its way (it is already the receiver's); a short one is copied
 * into its slot like any short message, and its block freed on the
 * sender's thread. */
int weft_chan_send_block(weft_chan_t *ch, void *block, size_t len,
                         int64_t timeout_ms) {
  int err;
  if (!ch || !block) return WEFT_EINVAL;
  err = send_msg(ch, block, len, len > INLINE_MAX ? block : NULL, timeout_ms);
  if (!err && len <= INLINE_MAX) weft__free(block);
  return err;
}

/* A receiver allocates the blocks it hands out before it takes anything
 * (short messages are copied into them), on its own thread, where the
 * frees come back to, so that running out of memory loses no message. */
int weft_chan_recv(weft_chan_t *ch, int64_t timeout_ms, void **data,
                   size_t *len) {
  struct timespec t;
  void *block;
  int err, spun = 0;
  if (!ch || !data || !len) return WEFT_EINVAL;
  if (timeout_ms > 0) t = weft__deadline((uint64_t)timeout_ms);
  block = weft__malloc(INLINE_MAX);
  if (!block) return WEFT_ENOMEM;
  while ((err = take(ch, &block, len, 1)) == WEFT_EAGAIN && timeout_ms != 0) {
    if (!spun++ && spin_for_message(ch)) continue;
    err = block_until(ch, WEFT_CHAN_RECV, timeout_ms, &t);
    if (err) break;
  }
  if (err < 0) {
    weft__free(block);
    return err;
  }
  *data = block;
  return 0;
}

int weft_chan_recv_many(weft_chan_t *ch, void **data, size_t *len,
                        size_t max) {
  size_t k;
  int got;
  if (!ch || !data || !len || max == 0) return WEFT_EINVAL;
  k = count(ch);
  if (k > max) k = max;
  if (k > 64) k = 64;
  if (k == 0) k = 1; /* (to tell empty from closed, or a message just in) */
  for (size_t i = 0; i < k; i++) {
    if (!(data[i] = weft__malloc(INLINE_MAX))) {
      while (i > 0) weft__free(data[--i]);
      return WEFT_ENOMEM;
    }
  }
  got = take(ch, data, len, (int)k);
  for (size_t i = got > 0 ? (size_t)got : 0; i < k; i++) weft__free(data[i]);
  return got;
}

void weft_chan_free(void *data) { weft__free(data); }

int weft_chan_close(weft_chan_t *ch) {
  if (!ch) return WEFT_EINVAL;
  pthread_mutex_lock(&ch->smu);
  if (atomic_load(&ch->closed)) {
    pthread_mutex_unlock(&ch->smu);
    return WEFT_ECLOSED;
  }
  atomic_store(&ch->closed, 1);
  pthread_mutex_unlock(&ch->smu);
  wake(ch, WEFT_CHAN_RECV);
  wake(ch, WEFT_CHAN_SEND);
  return 0;
}

size_t weft_chan_count(weft_chan_t *ch) { return ch ? count(ch) : 0; }

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
  pthread_mutex_lock(&ch->wmu);
  weft__list_push(&ch->waiters, &w->link);
  atomic_fetch_add(waiting(ch, event), 1);
  fire_waiters(ch, event); /* ready at once: fires from the loop */
  pthread_mutex_unlock(&ch->wmu);
  if (out) *out = w;
  return 0;
}

int weft_chan_unwait(weft_chan_wait_t *w) {
  weft_chan_t *ch;
  int fired;
  if (!w || w->cancelled) return WEFT_EINVAL;
  ch = w->ch;
  pthread_mutex_lock(&ch->wmu);
  fired = w->fired;
  if (!fired) {
    weft__list_remove(&w->link);
    atomic_fetch_sub(waiting(ch, w->event), 1);
  }
  pthread_mutex_unlock(&ch->wmu);
  w->cancelled = 1;
  /* A fired waiter's async callback closes it; else close it now. */
  if (!fired) uv_close((uv_handle_t *)&w->async, on_wait_closed);
  return 0;
}
