/* combine.c: promises made of other promises: all, any, race, settle,
 * and a timeout.
 *
 * Each references its inputs until every input's continuation has run, and
 * settles itself once cancelled: it cancels the inputs still pending and
 * settles (as cancelled) once they have ended, so that whoever gave up on
 * it finds the work it stands for stopped. */
#include "internal.h"

static void unref_payload(void *p) { weft_promise_unref(p); }

/* Settles out like in: fulfilled with in itself as the payload (referenced
 * until out is freed), or failed with in's code and message. */
static void settle_like(weft_promise_t *out, weft_promise_t *in) {
  if (in->state == WEFT_PROMISE_FULFILLED) {
    weft_promise_ref(in);
    if (weft_promise_resolve(out, in, unref_payload)) weft_promise_unref(in);
  } else if (in->state == WEFT_PROMISE_CANCELLED) {
    weft__promise_settle_failed(out, WEFT_PROMISE_CANCELLED, WEFT_ECANCELED,
                                NULL);
  } else {
    const char *msg;
    int code = weft_promise_error(in, &msg);
    weft_promise_reject(out, code, msg);
  }
}

/* ---- combinators ------------------------------------------------------------ */

enum { ALL, ANY, RACE, SETTLE };

typedef struct comb {
  weft_promise_t *out;
  weft_cont_t *conts;
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

/* The value of all and settle: the inputs, in order, referenced until the
 * result is freed. */
typedef struct results {
  size_t n;
  weft_promise_t *in[];
} results;

static void free_results(void *payload) {
  results *r = WEFT__CONTAINER(payload, results, in);
  size_t i;
  for (i = 0; i < r->n; i++) weft_promise_unref(r->in[i]);
  weft__free(r);
}

/* Fulfils c->out with the inputs as its value. */
static void deliver(comb *c) {
  results *r = weft__malloc(sizeof *r + c->n * sizeof *r->in);
  size_t i;
  if (!r) {
    weft_promise_reject(c->out, WEFT_ENOMEM, NULL);
    return;
  }
  r->n = c->n;
  for (i = 0; i < c->n; i++) {
    r->in[i] = c->in[i];
    weft_promise_ref(r->in[i]);
  }
  if (weft_promise_resolve(c->out, r->in, free_results) != 0)
    free_results(r->in);
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
      else if (c->ok == c->n) deliver(c);
      break;
    case ANY:
      if (ok || c->failed == c->n) settle_like(c->out, in);
      break;
    case RACE:
      settle_like(c->out, in);
      break;
    case SETTLE:
      if (c->waiting == 0) deliver(c);
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
  /* One block: the state, its continuation nodes, the inputs. */
  c = weft__calloc(1, sizeof *c + (n ? n : 1) * (sizeof *c->conts +
                                                   sizeof *c->in));
  if (!c) return WEFT_ENOMEM;
  c->conts = (weft_cont_t *)(c + 1);
  c->in = (weft_promise_t **)(c->conts + (n ? n : 1));
  err = weft_promise_new(loop, &c->out);
  if (err) {
    weft__free(c);
    return err;
  }
  c->n = n;
  c->kind = kind;
  *out = c->out;
  weft_promise_ref(c->out); /* the combinator's own, until it ends */
  if (n == 0) {
    if (kind == ANY) weft_promise_reject(c->out, WEFT_ENOENT, "no input");
    else if (kind != RACE) deliver(c);
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
  for (i = 0; i < n; i++) weft_promise_watch(in[i], &c->conts[i], comb_input, c);
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
  weft_cont_t cont; /* on src */
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
    if (err) weft_promise_unref(d->out);
  }
  if (err) {
    weft__free(d);
    return err;
  }
  d->src = src;
  weft_promise_ref(src);
  weft_promise_watch(src, &d->cont, deadline_src, d);
  weft_promise_ref(d->out); /* one for the caller, one for d */
  weft__promise_self_cancel(d->out);
  weft_promise_on_cancel(d->out, deadline_cancel, d);
  *out = d->out;
  return 0;
}
