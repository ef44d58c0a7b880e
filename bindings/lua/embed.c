/* embed.c: what a C host calls to embed the binding (weft_lua.h), but
 * opening it (weft_lua_open is weft.c's): hand a core promise to a script,
 * get the core promise of a script's promise or task, and receive the
 * errors scripts do not handle.
 *
 * A bridge joins a core promise and a Lua promise that stands for it.  The
 * Lua promise is kept (a registry reference) while the core promise it
 * follows, or that follows it, is pending: the host holds that one.  At
 * the state's close every bridge is cut, so that a core promise the host
 * still holds never reaches a closed state. */
#include "lweft.h"

#include <stdio.h>
#include <stdlib.h>

/* A core promise and the Lua promise on the other side. */
typedef struct bridge {
  const lweft_hostlink *link; /* first: what the task code calls (task.c) */
  lweft_state *st; /* NULL once the state has closed */
  int to_core;     /* Lua -> core (weft_lua_to_promise), else core -> Lua */
  int ref;         /* the Lua promise, while the bridge holds it */
  weft_promise_t *core;
  weft_lua_push_cb push; /* core -> Lua: its values */
  void *data;
  struct bridge *prev, *next; /* the state's live bridges */
  /* Lua -> core: the Lua promise's own core promise, which cont watches */
  weft_promise_t *watched;
  /* the continuation on core (core -> Lua) or on watched (Lua -> core),
   * withdrawn if the state closes first (weft_cont_size bytes follow the
   * bridge) */
  weft_cont_t *cont;
} bridge;

static int bridge_cancel(void *data);
static const lweft_hostlink link = {bridge_cancel};

static bridge *new_bridge(lweft_state *st, weft_promise_t *core,
                          int to_core) {
  bridge *b = calloc(1, sizeof *b + weft_cont_size());
  if (!b) return NULL;
  b->to_core = to_core;
  b->cont = (weft_cont_t *)(b + 1);
  b->link = &link;
  b->st = st;
  b->ref = LUA_NOREF;
  b->core = core;
  b->next = st->bridges;
  if (st->bridges) ((bridge *)st->bridges)->prev = b;
  st->bridges = b;
  return b;
}

/* Drops what the bridge holds in the Lua state. */
static void unhook(bridge *b) {
  lweft_state *st = b->st;
  if (!st) return;
  if (b->ref != LUA_NOREF && !st->closing)
    luaL_unref(st->L, LUA_REGISTRYINDEX, b->ref);
  b->ref = LUA_NOREF;
  if (b->prev) b->prev->next = b->next;
  else st->bridges = b->next;
  if (b->next) b->next->prev = b->prev;
  b->prev = b->next = NULL;
  b->st = NULL;
}

/* The state is closing: no bridge may reach it any more.  A core promise
 * still following a script's promise is cancelled: the script is gone.  A
 * host's promise that scripts awaited is let go: nothing waits for it
 * now, and the host may free the loop once it has let go too. */
void lweft_cut_bridges(lweft_state *st) {
  while (st->bridges) {
    bridge *b = st->bridges;
    weft_promise_t *core = b->to_core ? b->core : NULL;
    unhook(b);
    weft_cont_cancel(b->cont);
    if (!b->to_core) {
      weft_promise_unref(b->core);
      free(b);
    } else if (core) {
      weft_promise_cancel(core);
      weft_promise_unref(core);
      free(b);
    }
  }
}

/* Pushes the bridge's Lua promise on L (or returns 0, pushing nothing). */
static int push_side(bridge *b, lua_State *L) {
  if (!b->st || b->st->closing || b->ref == LUA_NOREF) return 0;
  if (!lua_checkstack(L, LUA_MINSTACK)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
  return 1;
}

/* ---- core -> Lua ----------------------------------------------------------- */

/* Calls the push callback of the bridge at 1 for the promise at 2, in a
 * protected call: what it raises rejects the script's promise. */
static int call_push(lua_State *L) {
  bridge *b = lua_touserdata(L, 1);
  weft_promise_t *p = lua_touserdata(L, 2);
  int n;
  lua_settop(L, 0);
  n = b->push(L, p, b->data);
  if (n < 0 || lua_gettop(L) != n)
    return luaL_error(L, "weft_lua_push_promise: the push callback pushed "
                         "a wrong count");
  return n;
}

/* The core promise settled: the Lua promise that stands for it follows. */
static void core_settled(weft_promise_t *p, void *data) {
  bridge *b = data;
  lua_State *L = b->st ? b->st->L : NULL;
  int top, idx, state = weft_promise_state(p);
  if (L && push_side(b, L)) {
    idx = lua_gettop(L);
    top = idx - 1;
    if (state == WEFT_PROMISE_FULFILLED) {
      int n = 0;
      if (b->push) {
        lua_pushcfunction(L, call_push);
        lua_pushlightuserdata(L, b);
        lua_pushlightuserdata(L, p);
        n = lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK ? lua_gettop(L) - idx
                                                       : -1;
      }
      lweft_settle(L, idx, n);
    } else if (state == WEFT_PROMISE_CANCELLED) {
      lweft_settle_cancelled(L, idx);
    } else {
      const char *msg;
      weft_promise_error(p, &msg);
      lua_pushstring(L, msg);
      lweft_settle(L, idx, -1);
    }
    lua_settop(L, top);
  }
  unhook(b);
  weft_promise_unref(b->core);
  free(b);
}

static int bridge_cancel(void *data) {
  bridge *b = data;
  weft_promise_cancel(b->core);
  /* (it settles the Lua promise from core_settled, from the loop) */
  return 1;
}

WEFT_LUA_EXTERN int weft_lua_push_promise(lua_State *L, weft_promise_t *p,
                                          weft_lua_push_cb push, void *data) {
  lweft_state *st = lweft_get_state(L);
  bridge *b;
  if (!st || !p || weft_promise_state(p) < 0) return WEFT_EINVAL;
  b = new_bridge(st, p, 0);
  if (!b) return WEFT_ENOMEM;
  b->push = push;
  b->data = data;
  weft_promise_ref(p);
  lweft_push_host_promise(L, st, b);
  lua_pushvalue(L, -1);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (weft_promise_watch(p, b->cont, core_settled, b) != 0) {
    unhook(b);
    weft_promise_unref(p);
    free(b);
    lua_pop(L, 1);
    return WEFT_ENOMEM;
  }
  return 0;
}

/* ---- Lua -> core ----------------------------------------------------------- */

/* What a core promise from weft_lua_to_promise holds: the Lua promise, to
 * read its values from (a bridge with no push). */
static void free_side(void *payload) {
  bridge *b = payload;
  unhook(b);
  free(b);
}

/* The error text of the rejected Lua promise at 1, pushed (under a
 * protected call: a __tostring may raise). */
static int error_text(lua_State *L) {
  lua_getiuservalue(L, 1, 1); /* the error */
  lweft_push_error_text(L, -1);
  return 1;
}

/* The Lua promise's core promise settled (run from the loop): the host's
 * core promise that follows it settles likewise, keeping the Lua promise
 * for weft_lua_push_outcome. */
static void lua_settled(weft_promise_t *watched, void *data) {
  bridge *b = data;
  weft_promise_t *core = b->core;
  lua_State *L = b->st->L;
  int state = weft_promise_state(watched);
  b->core = NULL; /* from now on the core promise holds the bridge */
  b->watched = NULL;
  if (state == WEFT_PROMISE_FULFILLED) {
    if (weft_promise_resolve(core, b, free_side) != 0) free_side(b);
  } else if (state == WEFT_PROMISE_CANCELLED) {
    weft_promise_cancel(core); /* (no hook left: settles at once) */
    free_side(b);
  } else {
    const char *text = NULL;
    int top = lua_gettop(L);
    if (lua_checkstack(L, 3)) {
      lua_pushcfunction(L, error_text);
      lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK) text = lua_tostring(L, -1);
    }
    if (weft_promise_reject_value(core, WEFT_EHOST, text, b, free_side) != 0)
      free_side(b);
    lua_settop(L, top);
  }
  weft_promise_unref(core); /* the bridge's */
}

/* The Lua promise whose core promise is watched is being freed (the state
 * closes): its bridges stop watching it. */
static void unwatch(lweft_state *st, weft_promise_t *watched) {
  for (bridge *b = st->bridges; b; b = b->next)
    if (b->to_core && b->watched == watched) {
      weft_cont_cancel(b->cont);
      b->watched = NULL;
    }
}

/* The host cancelled the core promise: the Lua promise is cancelled. */
static void core_cancelled(weft_promise_t *p, void *data) {
  bridge *b = data;
  lua_State *L = b->st ? b->st->L : NULL;
  (void)p;
  if (L && push_side(b, L)) {
    lweft_cancel_promise(L, -1);
    lua_pop(L, 1);
  }
}

WEFT_LUA_EXTERN weft_promise_t *weft_lua_to_promise(lua_State *L, int idx) {
  lweft_state *st = lweft_get_state(L);
  weft_promise_t *core;
  bridge *b;
  idx = lua_absindex(L, idx);
  if (!st || lweft_promise_state(L, idx) < 0) return NULL;
  if (weft_promise_new(st->loop, &core) != 0) return NULL;
  b = new_bridge(st, core, 1);
  if (!b) {
    weft_promise_unref(core);
    return NULL;
  }
  lua_pushvalue(L, idx);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  weft_promise_ref(core); /* the bridge's, until the Lua promise settles */
  weft_promise_on_cancel(core, core_cancelled, b);
  st->unwatch = unwatch;
  b->watched = lweft_promise_core(L, idx);
  weft_promise_watch(b->watched, b->cont, lua_settled, b);
  return core;
}

/* The bridge whose Lua promise the settled core promise of
 * weft_lua_to_promise reports (its payload), if it is one of st's: the
 * payload is compared with st's bridges, never followed, since the host
 * may pass any promise. */
static bridge *reporting_bridge(lweft_state *st, weft_promise_t *core) {
  void *payload = weft_promise_payload(core);
  for (bridge *b = st ? st->bridges : NULL; b; b = b->next)
    if (b == payload && b->to_core) return b;
  return NULL;
}

WEFT_LUA_EXTERN int weft_lua_push_outcome(lua_State *L, weft_promise_t *core) {
  int state = core ? weft_promise_state(core) : -1, n;
  bridge *b = state == WEFT_PROMISE_FULFILLED || state == WEFT_PROMISE_REJECTED
                  ? reporting_bridge(lweft_get_state(L), core)
                  : NULL;
  if (!b || !push_side(b, L)) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, !core ? "not a promise"
                    : state == WEFT_PROMISE_PENDING ? "still pending"
                    : state == WEFT_PROMISE_CANCELLED
                        ? weft_strerror(WEFT_ECANCELED)
                        : "not a promise of this Lua state");
    return 2;
  }
  n = lweft_push_outcome(L, lua_gettop(L));
  lua_remove(L, -n - 1);
  return n;
}

/* ---- errors ------------------------------------------------------------------ */

WEFT_LUA_EXTERN void weft_lua_on_error(lua_State *L, weft_lua_error_cb cb,
                                       void *data) {
  lweft_state *st = lweft_get_state(L);
  if (!st) return;
  st->host_error = cb;
  st->host_error_data = data;
}
