/* promise.c: settle-once cells with continuations run from the loop.
 *
 * A continuation (a node: the core's, or one in the consumer's own memory)
 * waits in its promise's list while the promise is pending; settling moves
 * the whole list, in order, to the loop's run queue, each node holding a
 * reference to the promise until it has run.  A pending continuation
 * holds no reference, so a promise that never settles is freed with its
 * last user reference (its continuations are dropped).
 *
 * A promise is either the core's (weft_promise_new: malloc'd, reference
 * counted) or a host's (weft_promise_init: in the host's own object, kept
 * alive by the host's hooks while the core holds it, and collected by the
 * host's garbage collector otherwise).  The references the core takes and
 * drops are the same calls either way. */
#include "internal.h"

#include <string.h>

size_t weft_promise_size(void) { return sizeof(weft_promise_t); }

size_t weft_cont_size(void) { return sizeof(weft_cont_t); }

static void init(weft_promise_t *p, weft_loop_t *loop) {
  memset(p, 0, sizeof *p);
  p->loop = loop;
  p->state = WEFT_PROMISE_PENDING;
  weft__list_init(&p->conts);
  loop->tasks++;
}

int weft_promise_new(weft_loop_t *loop, weft_promise_t **out) {
  weft_promise_t *p;
  if (!loop || !out) return WEFT_EINVAL;
  p = weft__malloc(sizeof *p + sizeof(weft__pext));
  if (!p) return WEFT_ENOMEM;
  init(p, loop);
  p->refs = 1;
  p->ext = (weft__pext *)(p + 1);
  memset(p->ext, 0, sizeof *p->ext);
  p->ext_inline = 1;
  *out = p;
  return 0;
}

/* The promise's extension, allocated on first use (NULL: out of memory). */
static weft__pext *ext(weft_promise_t *p) {
  if (!p->ext) p->ext = weft__calloc(1, sizeof *p->ext);
  return p->ext;
}

int weft_promise_init(weft_promise_t *p, weft_loop_t *loop,
                      const weft_host_t *host, void *obj) {
  if (!p || !loop || !host || host->size < sizeof(size_t)) return WEFT_EINVAL;
  init(p, loop);
  p->host = host;
  p->obj = obj;
  return 0;
}

/* Drops the continuations still waiting (they will never run), the
 * payload and the message. */
static void release(weft_promise_t *p) {
  while (!weft__list_empty(&p->conts)) {
    weft_cont_t *c = WEFT__CONTAINER(weft__list_pop(&p->conts), weft_cont_t,
                                     run.link);
    c->where = WEFT__CONT_IDLE;
    if (c->owned) weft__free(c);
  }
  if (p->ext) {
    if (p->ext->free_payload) p->ext->free_payload(p->ext->payload);
    weft__free(p->ext->message);
    if (!p->ext_inline) weft__free(p->ext);
    p->ext = NULL;
  }
  p->loop->tasks--;
}

void weft_promise_fini(weft_promise_t *p) {
  if (!p || !p->host || p->finished) return;
  p->finished = 1;
  release(p);
}

void weft_promise_ref(weft_promise_t *p) {
  if (!p) return;
  if (!p->host) p->refs++;
  else if (p->host->retain) p->host->retain(p->obj);
}

void weft_promise_unref(weft_promise_t *p) {
  if (!p) return;
  if (p->host) {
    if (p->host->release) p->host->release(p->obj);
    return;
  }
  if (--p->refs > 0) return;
  release(p);
  weft__free(p);
}

void weft__promise_self_cancel(weft_promise_t *p) { p->self_cancel = 1; }

int weft_promise_defer_cancel(weft_promise_t *p) {
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  p->self_cancel = 1;
  return 0;
}

static void run_cont(weft_loop_t *loop, weft__run *r) {
  weft_cont_t *c = WEFT__CONTAINER(r, weft_cont_t, run);
  weft_promise_t *p = c->promise;
  int owned = c->owned;
  (void)loop;
  c->where = WEFT__CONT_IDLE;
  c->cb(p, c->data); /* may reuse a host's node */
  if (owned) weft__free(c);
  weft_promise_unref(p);
}

static void schedule(weft_cont_t *c) {
  weft_promise_ref(c->promise);
  c->run.run = run_cont;
  c->where = WEFT__CONT_QUEUED;
  weft__sched_push(c->promise->loop, &c->run);
}

/* Moves every continuation to the run queue, in registration order. */
static void settled(weft_promise_t *p) {
  if (p->ext) p->ext->cancel_cb = NULL;
  while (!weft__list_empty(&p->conts)) {
    weft_cont_t *c = WEFT__CONTAINER(weft__list_pop(&p->conts), weft_cont_t,
                                     run.link);
    if (c->at_settle) {
      c->where = WEFT__CONT_IDLE;
      c->cb(p, c->data);
    } else {
      schedule(c);
    }
  }
}

/* Fails p (state REJECTED or CANCELLED) with code, a message (copied;
 * NULL: strerror) and an error value; 0 or WEFT_EBUSY. */
static int fail(weft_promise_t *p, int state, int code, const char *message,
                void *payload, weft_free_cb free_payload) {
  weft__pext *e = NULL;
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  if ((message || payload || free_payload) && !(e = ext(p)) &&
      (payload || free_payload))
    return WEFT_ENOMEM; /* (a message alone falls back to strerror) */
  if (message && e) {
    size_t n = strlen(message) + 1;
    e->message = weft__malloc(n);
    if (e->message) memcpy(e->message, message, n); /* else: strerror */
  }
  p->state = (unsigned)state;
  p->code = code;
  if (e) {
    e->payload = payload;
    e->free_payload = free_payload;
  }
  return 0;
}

int weft__promise_settle_failed(weft_promise_t *p, int state, int code,
                                const char *message) {
  int err = fail(p, state, code, message, NULL, NULL);
  if (!err) settled(p);
  return err;
}

int weft_promise_settle_cancelled(weft_promise_t *p) {
  if (!p) return WEFT_EINVAL;
  return weft__promise_settle_failed(p, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED,
                                     NULL);
}

int weft_promise_resolve(weft_promise_t *p, void *payload,
                         weft_free_cb free_payload) {
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  if (p->cancelling) { /* ended after its cancellation: cancelled */
    if (free_payload) free_payload(payload);
    return weft__promise_settle_failed(p, WEFT_PROMISE_CANCELLED,
                                       WEFT_ECANCELED, NULL);
  }
  if (payload || free_payload) {
    if (!ext(p)) return WEFT_ENOMEM;
    p->ext->payload = payload;
    p->ext->free_payload = free_payload;
  }
  p->state = WEFT_PROMISE_FULFILLED;
  settled(p);
  return 0;
}

int weft_promise_reject_value(weft_promise_t *p, int code,
                              const char *message, void *payload,
                              weft_free_cb free_payload) {
  int err;
  if (!p || code >= 0) return WEFT_EINVAL;
  /* A cancelled producer ending with the cancellation: cancelled. */
  err = fail(p, p->cancelling && code == WEFT_ECANCELED
                    ? WEFT_PROMISE_CANCELLED : WEFT_PROMISE_REJECTED,
             code, message, payload, free_payload);
  if (!err) settled(p);
  return err;
}

int weft_promise_reject(weft_promise_t *p, int code, const char *message) {
  return weft_promise_reject_value(p, code, message, NULL, NULL);
}

int weft_promise_cancel(weft_promise_t *p) {
  weft_promise_cb hook;
  void *data;
  int err;
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING || p->cancelling) return WEFT_EBUSY;
  if (p->is_task) { /* (a task's hook is always the same) */
    hook = weft__task_cancel_hook;
    data = WEFT__CONTAINER(p, weft_task_t, promise);
  } else {
    hook = p->ext ? p->ext->cancel_cb : NULL;
    data = p->ext ? p->ext->cancel_data : NULL;
    if (p->ext) p->ext->cancel_cb = NULL;
  }
  weft_promise_ref(p); /* the hook may drop the producer's reference */
  if (p->self_cancel) {
    /* Its producer stops what it runs or waits on, and settles it (as
     * cancelled) once that has ended. */
    p->cancelling = 1;
    if (hook) hook(p, data);
  } else {
    err = fail(p, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED, NULL, NULL, NULL);
    if (!err) {
      if (hook) hook(p, data);
      settled(p);
    }
  }
  weft_promise_unref(p);
  return 0;
}

int weft_promise_state(const weft_promise_t *p) {
  return p ? p->state : WEFT_EINVAL;
}

int weft_promise_cancelling(const weft_promise_t *p) {
  return p && p->state == WEFT_PROMISE_PENDING && p->cancelling;
}

void *weft_promise_value(const weft_promise_t *p) {
  return p && p->ext && p->state == WEFT_PROMISE_FULFILLED ? p->ext->payload
                                                           : NULL;
}

void *weft_promise_payload(const weft_promise_t *p) {
  return p && p->ext && p->state != WEFT_PROMISE_PENDING ? p->ext->payload
                                                         : NULL;
}

int weft_promise_error(const weft_promise_t *p, const char **message) {
  int failed = p && (p->state == WEFT_PROMISE_REJECTED ||
                     p->state == WEFT_PROMISE_CANCELLED);
  if (message)
    *message = !failed ? NULL : p->ext && p->ext->message ? p->ext->message
                                           : weft_strerror(p->code);
  return failed ? p->code : 0;
}

int weft_promise_watch(weft_promise_t *p, weft_cont_t *c, weft_promise_cb cb,
                       void *data) {
  if (!p || !c || !cb) return WEFT_EINVAL;
  if (c->where != WEFT__CONT_IDLE && c->promise) return WEFT_EBUSY;
  c->promise = p;
  c->cb = cb;
  c->data = data;
  c->owned = c->at_settle = 0;
  if (p->state == WEFT_PROMISE_PENDING) {
    c->where = WEFT__CONT_WAITING;
    weft__list_push(&p->conts, &c->run.link);
  } else {
    schedule(c);
  }
  return 0;
}

int weft_cont_cancel(weft_cont_t *c) {
  if (!c || c->where == WEFT__CONT_IDLE) return WEFT_ENOENT;
  weft__list_remove(&c->run.link);
  if (c->where == WEFT__CONT_QUEUED) weft_promise_unref(c->promise);
  c->where = WEFT__CONT_IDLE;
  if (c->owned) weft__free(c);
  return 0;
}

int weft_cont_pending(const weft_cont_t *c) {
  return c && c->where != WEFT__CONT_IDLE;
}

weft_cont_t *weft__promise_then(weft_promise_t *p, weft_promise_cb cb,
                                void *data) {
  weft_cont_t *c = weft__calloc(1, sizeof *c);
  if (!c) return NULL;
  weft_promise_watch(p, c, cb, data);
  c->owned = 1;
  return c;
}

int weft_promise_then(weft_promise_t *p, weft_promise_cb cb, void *data) {
  if (!p || !cb) return WEFT_EINVAL;
  return weft__promise_then(p, cb, data) ? 0 : WEFT_ENOMEM;
}

int weft_promise_on_cancel(weft_promise_t *p, weft_promise_cb cb,
                           void *data) {
  if (!p || p->is_task) return WEFT_EINVAL; /* (a task's is its own) */
  if (p->state != WEFT_PROMISE_PENDING) return WEFT_EBUSY;
  if (!ext(p)) return WEFT_ENOMEM;
  p->ext->cancel_cb = cb;
  p->ext->cancel_data = data;
  return 0;
}

int weft_promise_consumed(const weft_promise_t *p, const weft_cont_t *except) {
  const weft__link *l;
  if (!p) return 0;
  for (l = p->conts.next; l != &p->conts; l = l->next)
    if (!except || l != &except->run.link) return 1;
  return 0;
}
