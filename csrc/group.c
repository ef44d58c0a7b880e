/* group.c: a nursery.  It watches the promises of its children (tasks, or
 * any promise) until each has settled; the first child that fails (is
 * rejected) cancels the others at once, and a wait on the group ends once
 * every child has ended: with 0, the failure's code (the failed child is
 * weft_group_failure), or WEFT_ETIMEDOUT when the wait's time ran out (the
 * children were cancelled then, and have ended too). */
#include "internal.h"

#include <string.h>

typedef struct child {
  weft_cont_t cont;
  weft_promise_t *promise;
  weft_group_t *group;
  struct child *next;
} child;

struct weft_group_s {
  weft_loop_t *loop;
  child *children; /* the live ones */
  size_t live;
  weft_promise_t *failure;
  weft_id_t timer; /* of a wait with a timeout */
  int expired;
  weft__link waiters;
};

size_t weft_group_size(void) { return sizeof(weft_group_t); }

int weft_group_init(weft_group_t *g, weft_loop_t *loop) {
  if (!g || !loop) return WEFT_EINVAL;
  memset(g, 0, sizeof *g);
  g->loop = loop;
  weft__list_init(&g->waiters);
  return 0;
}

int weft_group_cancel(weft_group_t *g) {
  child *c, *next;
  if (!g) return WEFT_EINVAL;
  for (c = g->children; c; c = next) {
    next = c->next; /* (a child may end at once and leave the list) */
    weft_promise_cancel(c->promise);
  }
  return 0;
}

void weft_group_fini(weft_group_t *g) {
  child *c;
  if (!g) return;
  if (g->timer) weft_watch_cancel(g->loop, g->timer);
  g->timer = 0;
  while ((c = g->children) != NULL) {
    g->children = c->next;
    weft_cont_cancel(&c->cont);
    weft_promise_unref(c->promise);
    weft__free(c);
  }
  weft_promise_unref(g->failure);
  g->failure = NULL;
  weft__sync_wake_all(&g->waiters, WEFT_ECLOSED);
}

static int outcome(const weft_group_t *g) {
  if (g->failure) return weft_promise_error(g->failure, NULL);
  return g->expired ? WEFT_ETIMEDOUT : 0;
}

static void ended(weft_group_t *g) {
  weft_task_t *t;
  if (g->timer) weft_watch_cancel(g->loop, g->timer);
  g->timer = 0;
  while ((t = weft__sync_first(&g->waiters)) != NULL)
    weft__task_wake_sync(t, outcome(g), NULL);
}

static void child_settled(weft_promise_t *p, void *data) {
  child *c = data, **pp;
  weft_group_t *g = c->group;
  for (pp = &g->children; *pp != c; pp = &(*pp)->next) {}
  *pp = c->next;
  g->live--;
  if (p->state == WEFT_PROMISE_REJECTED && !g->failure) {
    g->failure = p;
    weft_promise_ref(p);
    weft_group_cancel(g); /* its siblings stop */
  }
  weft_promise_unref(p);
  weft__free(c);
  if (g->live == 0) ended(g);
}

int weft_group_add(weft_group_t *g, weft_promise_t *p) {
  child *c;
  if (!g || !p || p->loop != g->loop) return WEFT_EINVAL;
  c = weft__calloc(1, sizeof *c);
  if (!c) return WEFT_ENOMEM;
  c->promise = p;
  c->group = g;
  c->next = g->children;
  g->children = c;
  g->live++;
  weft_promise_ref(p);
  weft_promise_watch(p, &c->cont, child_settled, c);
  /* A group that already failed or ran out of time stops newcomers. */
  if (g->failure || g->expired) weft_promise_cancel(p);
  return 0;
}

static void expired(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  weft_group_t *g = data;
  (void)loop, (void)id, (void)arg;
  g->timer = 0;
  g->expired = 1;
  weft_group_cancel(g);
}

int weft_group_wait(weft_group_t *g, weft_task_t *t, int64_t timeout_ms) {
  int r;
  if (!g || !t) return WEFT_EINVAL;
  if (g->live == 0) {
    if (weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
    return outcome(g);
  }
  r = weft__sync_wait(&g->waiters, t, -1, g);
  if (r == 1 && timeout_ms >= 0 && !g->timer && !g->expired &&
      weft_once(g->loop, (uint64_t)timeout_ms, expired, g, 0, &g->timer) != 0)
    g->timer = 0; /* (no memory for the timer: no timeout) */
  return r;
}

size_t weft_group_live(const weft_group_t *g) { return g ? g->live : 0; }

weft_promise_t *weft_group_failure(const weft_group_t *g) {
  return g ? g->failure : NULL;
}
