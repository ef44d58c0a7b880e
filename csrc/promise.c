/* promise.c: settle-once cells with continuations run from the loop.
 *
 * A continuation waits in its promise's list while the promise is pending;
 * settling moves the whole list, in order, to the loop's run queue, each
 * entry holding a reference to the promise until it has run.  A pending
 * continuation holds no reference, so a promise that never settles is
 * freed with its last user reference (its continuations are dropped). */
#include "internal.h"

#include <string.h>

struct weft_promise_s {
  weft_loop_t *loop;
  size_t refs;
  int state;
  /* A task, combinator or timeout settles itself once cancelled, when what
   * it runs or waits on has ended (self_cancel); meanwhile it is still
   * pending, and cancelling. */
  unsigned char self_cancel, cancelling;
  int code;
  char *message;
  void *payload;
  weft_free_cb free_payload;
  weft__link conts;
  weft_promise_cb cancel_cb;
  void *cancel_data;
};

struct weft__cont {
  weft__run run; /* run.link: in the promise's list, then the run queue */
  weft_promise_t *promise;
  weft_promise_cb cb;
  void *data;
};

int weft_promise_new(weft_loop_t *loop, weft_promise_t **out) {
  weft_promise_t *p;
  if (!loop || !out) return WEFT_EINVAL;
  p = weft__calloc(1, sizeof *p);
  if (!p) return WEFT_ENOMEM;
  p->loop = loop;
  p->refs = 1;
  p->state = WEFT_PROMISE_PENDING;
  weft__list_init(&p->conts);
  loop->tasks++;
  *out = p;
  return 0;
}

void weft_promise_ref(weft_promise_t *p) {
  if (p) p->refs++;
}

void weft_promise_unref(weft_promise_t *p) {
  if (!p || --p->refs > 0) return;
  while (!weft__list_empty(&p->conts))
    weft__free(WEFT__CONTAINER(weft__list_pop(&p->conts), weft__cont,
                               run.link));
  if (p->free_payload) p->free_payload(p->payload);
  weft__free(p->message);
  p->loop->tasks--;
  weft__free(p);
}

void weft__promise_self_cancel(weft_promise_t *p) { p->self_cancel = 1; }

static void run_cont(weft_loop_t *loop, weft__run *r) {
  weft__cont *c = WEFT__CONTAINER(r, weft__cont, run);
  weft_promise_t *p = c->promise;
  (void)loop;
  c->cb(p, c->data);
  weft__free(c);
  weft_promise_unref(p);
}

static void schedule(weft__cont *c) {
  weft_promise_ref(c->promise);
  c->run.run = run_cont;
  weft__sched_push(c->promise->loop, &c->run);
}

/* Moves every continuation to the run queue, in registration order. */
static void settled(weft_promise_t *p) {
  p->cancel_cb = NULL;
  while (!weft__list_empty(&p->conts))
    schedule(WEFT__CONTAINER(weft__list_pop(&p->conts), weft__cont,
                             run.link));
}

static int settle_failed(weft_promise_t *p, int state, int code,
                         const char *message);

int weft_promise_resolve(weft_promise_t *p, void *payload,
                         weft_free_cb free_payload) {
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  if (p->cancelling) { /* ended after its cancellation: cancelled */
    if (free_payload) free_payload(payload);
    return settle_failed(p, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED, NULL);
  }
  p->state = WEFT_PROMISE_FULFILLED;
  p->payload = payload;
  p->free_payload = free_payload;
  settled(p);
  return 0;
}

static int fail(weft_promise_t *p, int state, int code, const char *message) {
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  if (message) {
    size_t n = strlen(message) + 1;
    p->message = weft__malloc(n);
    if (p->message) memcpy(p->message, message, n); /* else: strerror */
  }
  p->state = state;
  p->code = code;
  return 0;
}

/* Settles p as failed (state REJECTED or CANCELLED) with code and message
 * (copied; NULL: strerror), without running a cancel hook. */
static int settle_failed(weft_promise_t *p, int state, int code,
                         const char *message) {
  int err = fail(p, state, code, message);
  if (!err) settled(p);
  return err;
}

int weft_promise_reject(weft_promise_t *p, int code, const char *message) {
  if (!p || code >= 0) return WEFT_EINVAL;
  /* A cancelled producer ending with the cancellation: cancelled. */
  return settle_failed(p, p->cancelling && code == WEFT_ECANCELED
                              ? WEFT_PROMISE_CANCELLED
                              : WEFT_PROMISE_REJECTED,
                       code, message);
}

int weft_promise_cancel(weft_promise_t *p) {
  weft_promise_cb hook;
  void *data;
  int err;
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING || p->cancelling) return WEFT_EBUSY;
  hook = p->cancel_cb;
  data = p->cancel_data;
  if (p->self_cancel) {
    /* Its producer stops what it runs or waits on, and settles it (as
     * cancelled) once that has ended. */
    p->cancelling = 1;
    p->cancel_cb = NULL;
    weft_promise_ref(p);
    if (hook) hook(p, data);
    weft_promise_unref(p);
    return 0;
  }
  err = fail(p, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED, NULL);
  if (err) return err;
  weft_promise_ref(p); /* the hook may drop the producer's reference */
  p->cancel_cb = NULL;
  if (hook) hook(p, data);
  settled(p);
  weft_promise_unref(p);
  return 0;
}

int weft_promise_state(const weft_promise_t *p) {
  return p ? p->state : WEFT_EINVAL;
}

void *weft_promise_value(const weft_promise_t *p) {
  return p && p->state == WEFT_PROMISE_FULFILLED ? p->payload : NULL;
}

int weft_promise_error(const weft_promise_t *p, const char **message) {
  int failed = p && (p->state == WEFT_PROMISE_REJECTED ||
                     p->state == WEFT_PROMISE_CANCELLED);
  if (message)
    *message = !failed ? NULL : p->message ? p->message
                                           : weft_strerror(p->code);
  return failed ? p->code : 0;
}

weft__cont *weft__promise_watch(weft_promise_t *p, weft_promise_cb cb,
                                void *data) {
  weft__cont *c = weft__malloc(sizeof *c);
  if (!c) return NULL;
  c->promise = p;
  c->cb = cb;
  c->data = data;
  if (p->state == WEFT_PROMISE_PENDING)
    weft__list_push(&p->conts, &c->run.link);
  else
    schedule(c);
  return c;
}

void weft__promise_unwatch(weft__cont *c) {
  /* Only while pending: a scheduled continuation is the run queue's. */
  if (c->promise->state != WEFT_PROMISE_PENDING) return;
  weft__list_remove(&c->run.link);
  weft__free(c);
}

int weft_promise_then(weft_promise_t *p, weft_promise_cb cb, void *data) {
  if (!p || !cb) return WEFT_EINVAL;
  return weft__promise_watch(p, cb, data) ? 0 : WEFT_ENOMEM;
}

int weft_promise_on_cancel(weft_promise_t *p, weft_promise_cb cb,
                           void *data) {
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  p->cancel_cb = cb;
  p->cancel_data = data;
  return 0;
}

static void unref_payload(void *p) { weft_promise_unref(p); }

/* Settles out like in: fulfilled with in itself as the payload (referenced
 * until out is freed), or failed with in's code and message. */
static void settle_like(weft_promise_t *out, weft_promise_t *in) {
  if (in->state == WEFT_PROMISE_FULFILLED) {
    weft_promise_ref(in);
    if (weft_promise_resolve(out, in, unref_payload)) weft_promise_unref(in);
  } else if (in->state == WEFT_PROMISE_CANCELLED) {
    settle_failed(out, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED, NULL);
  } else {
    const char *msg;
    int code = weft_promise_error(in, &msg);
    weft_promise_reject(out, code, msg);
  }
}

/* ---- combinators ---------------------------------------------------------- */

enum { ALL, ANY, RACE, SETTLE };

typedef struct comb {
  weft_promise_t *out;
  weft_promise_t **in;
  size_t n;
  size_t waiting; /* inputs whose continuation has not run */
  size_t ok, failed;
  int kind;
} comb;

static void comb_done(comb *c) {
  size_t i;
  for (i = 0; i < c->n; i++) weft_promise_unref(c->in[i]);
  weft_promise_unref(c->out);
  weft__free(c->in);
  weft__free(c);
}

/* The combinator has decided: inputs still pending that nothing but it
 * awaits or chains (its continuation is their only one) are cancelled,
 * so that the losers of a race stop. */
static void cancel_unwanted(comb *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    weft_promise_t *in = c->in[i];
    if (in->state == WEFT_PROMISE_PENDING && !weft__list_empty(&in->conts) &&
        in->conts.next == in->conts.prev)
      weft_promise_cancel(in);
  }
}

static void comb_input(weft_promise_t *in, void *data) {
  comb *c = data;
  int ok = in->state == WEFT_PROMISE_FULFILLED;
  c->waiting--;
  if (ok) c->ok++;
  else c->failed++;
  if (c->out->cancelling) {
    /* Cancelled: it settles once every input has ended. */
    if (c->waiting == 0) weft_promise_reject(c->out, WEFT_ECANCELED, NULL);
  } else if (c->out->state == WEFT_PROMISE_PENDING) {
    switch (c->kind) {
    case ALL:
      if (!ok) settle_like(c->out, in);
      else if (c->ok == c->n) weft_promise_resolve(c->out, NULL, NULL);
      break;
    case ANY:
      if (ok || c->failed == c->n) settle_like(c->out, in);
      break;
    case RACE:
      settle_like(c->out, in);
      break;
    case SETTLE:
      if (c->waiting == 0) weft_promise_resolve(c->out, NULL, NULL);
      break;
    }
    if (c->out->state != WEFT_PROMISE_PENDING && c->kind != SETTLE)
      cancel_unwanted(c);
  }
  if (c->waiting == 0) comb_done(c);
}

/* Cancelling the combined promise cancels the inputs still pending, which
 * lets every input continuation run; the last one settles it (as
 * cancelled) and ends the combinator. */
static void comb_cancel(weft_promise_t *out, void *data) {
  comb *c = data;
  size_t i;
  (void)out;
  for (i = 0; i < c->n; i++) weft_promise_cancel(c->in[i]);
}

static int combine(weft_loop_t *loop, weft_promise_t **in, size_t n,
                   int kind, weft_promise_t **out) {
  comb *c;
  size_t i;
  int err;
  if (!loop || !out || (n && !in)) return WEFT_EINVAL;
  for (i = 0; i < n; i++)
    if (!in[i] || in[i]->loop != loop) return WEFT_EINVAL;
  c = weft__calloc(1, sizeof *c);
  if (!c) return WEFT_ENOMEM;
  c->in = weft__calloc(n ? n : 1, sizeof *c->in);
  err = c->in ? weft_promise_new(loop, &c->out) : WEFT_ENOMEM;
  if (err) {
    weft__free(c->in);
    weft__free(c);
    return err;
  }
  c->n = n;
  c->kind = kind;
  *out = c->out;
  weft_promise_ref(c->out); /* the combinator's own, until it ends */
  if (n == 0) {
    if (kind == ANY) weft_promise_reject(c->out, WEFT_ENOENT, "no input");
    else if (kind != RACE) weft_promise_resolve(c->out, NULL, NULL);
    comb_done(c);
    return 0;
  }
  weft__promise_self_cancel(c->out);
  weft_promise_on_cancel(c->out, comb_cancel, c);
  for (i = 0; i < n; i++) {
    c->in[i] = in[i];
    weft_promise_ref(in[i]);
  }
  c->waiting = n;
  for (i = 0; i < n; i++) {
    if (!weft__promise_watch(in[i], comb_input, c)) {
      /* Out of memory midway: fail the result; the watched inputs still
       * end the combinator when they settle, the rest never will. */
      c->waiting -= n - i;
      weft_promise_reject(c->out, WEFT_ENOMEM, NULL);
      if (c->waiting == 0) comb_done(c);
      break;
    }
  }
  return 0;
}

int weft_promise_all(weft_loop_t *loop, weft_promise_t **in, size_t n,
                     weft_promise_t **out) {
  return combine(loop, in, n, ALL, out);
}

int weft_promise_any(weft_loop_t *loop, weft_promise_t **in, size_t n,
                     weft_promise_t **out) {
  return combine(loop, in, n, ANY, out);
}

int weft_promise_race(weft_loop_t *loop, weft_promise_t **in, size_t n,
                      weft_promise_t **out) {
  return combine(loop, in, n, RACE, out);
}

int weft_promise_settle(weft_loop_t *loop, weft_promise_t **in, size_t n,
                        weft_promise_t **out) {
  return combine(loop, in, n, SETTLE, out);
}

/* ---- timeout ---------------------------------------------------------------- */

typedef struct deadline {
  weft_promise_t *src, *out;
  weft_id_t timer;
  int expired; /* the time ran out: src was cancelled */
} deadline;

/* src has ended: out settles like it, or, if the time ran out first, is
 * rejected with WEFT_ETIMEDOUT now that the cancelled src has ended. */
static void deadline_src(weft_promise_t *src, void *data) {
  deadline *d = data;
  if (!d->expired) weft_watch_cancel(src->loop, d->timer);
  if (d->out->state == WEFT_PROMISE_PENDING) {
    if (d->expired) weft_promise_reject(d->out, WEFT_ETIMEDOUT, NULL);
    else settle_like(d->out, src);
  }
  weft_promise_unref(d->out);
  weft_promise_unref(d->src);
  weft__free(d);
}

static void deadline_expired(weft_loop_t *loop, weft_id_t id, int arg,
                             void *data) {
  deadline *d = data;
  (void)loop, (void)id, (void)arg;
  /* (A src that settled first settles out from its continuation.) */
  if (d->src->state != WEFT_PROMISE_PENDING) return;
  d->expired = 1;
  weft_promise_cancel(d->src); /* its end runs deadline_src */
}

static void deadline_cancel(weft_promise_t *out, void *data) {
  deadline *d = data;
  (void)out;
  weft_promise_cancel(d->src);
}

int weft_promise_timeout(weft_promise_t *src, uint64_t ms,
                         weft_promise_t **out) {
  deadline *d;
  int err;
  if (!src || !out) return WEFT_EINVAL;
  d = weft__calloc(1, sizeof *d);
  if (!d) return WEFT_ENOMEM;
  err = weft_promise_new(src->loop, &d->out);
  if (!err) {
    err = weft_once(src->loop, ms, deadline_expired, d, 0, &d->timer);
    if (!err && !weft__promise_watch(src, deadline_src, d)) {
      weft_watch_cancel(src->loop, d->timer);
      err = WEFT_ENOMEM;
    }
    if (err) weft_promise_unref(d->out);
  }
  if (err) {
    weft__free(d);
    return err;
  }
  d->src = src;
  weft_promise_ref(src);
  weft_promise_ref(d->out); /* one for the caller, one for d */
  weft__promise_self_cancel(d->out);
  weft_promise_on_cancel(d->out, deadline_cancel, d);
  *out = d->out;
  return 0;
}
