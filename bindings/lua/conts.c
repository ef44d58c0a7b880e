/* conts.c: what a settled promise's continuations do, run from the loop
 * (task.c queues the run): an awaiting task's wake, next / catch /
 * finally's handlers and the promise a handler returns, a combinator's
 * input, a timeout's end.  Above task.c, which calls the run through the
 * hook this file sets (ltask_set_run_conts). */
#include "ltask.h"

/* A combinator at result (its state at state) has decided: its inputs
 * still pending that nothing else awaits or chains are cancelled. */
static void cancel_unwanted(lua_State *L, int state, int result) {
  int n, list;
  lua_getfield(L, state, "inputs");
  list = lua_gettop(L);
  n = (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    lpromise *in;
    lua_rawgeti(L, list, i);
    in = lua_touserdata(L, -1);
    if (lp_state(in) == PENDING && !lp_cancelling(in) &&
        !ltask_consumed_by_others(L, -1, result)) {
      ltask_push_error(L, "cancelled", 0);
      ltask_cancel(L, -2, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Pushes the values of the fulfilled promise at p as a list { ..., n }. */
static void push_values_list(lua_State *L, int p) {
  int n = lweft_push_outcome(L, p) - 1, t;
  lua_createtable(L, n, 1);
  t = lua_gettop(L);
  for (int i = n; i >= 1; i--) {
    lua_pushvalue(L, t - n + i - 1);
    lua_rawseti(L, t, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, t, "n");
  lua_replace(L, t - n - 1); /* over the ok flag */
  lua_settop(L, t - n - 1);
}

/* One input of a combinator settled.  The entry at e is { K_COMB, state,
 * index, result }; state is { kind, n, left, results }. */
static void comb_input(lua_State *L, int p, int e, int result) {
  lpromise *in = lua_touserdata(L, p), *out = lua_touserdata(L, result);
  int top = lua_gettop(L), state, kind, left, index, ok;
  lua_rawgeti(L, e, 2);
  state = lua_gettop(L);
  lua_rawgeti(L, e, 3);
  index = (int)lua_tointeger(L, -1);
  lua_getfield(L, state, "kind");
  kind = (int)lua_tointeger(L, -1);
  lua_getfield(L, state, "left");
  left = (int)lua_tointeger(L, -1) - 1;
  lua_pushinteger(L, left);
  lua_setfield(L, state, "left");
  ok = lp_state(in) == FULFILLED;
  if (lp_state(out) == PENDING && lp_cancelling(out)) {
    if (left == 0) ltask_end_cancel(L, result); /* every input has ended */
  } else if (lp_state(out) == PENDING) {
    if (kind == C_RACE || (kind == C_ANY && (ok || left == 0)) ||
        (kind == C_ALL && !ok)) {
      ltask_settle_like(L, result, p);
      cancel_unwanted(L, state, result); /* the losers of a race stop */
    } else if (kind == C_ALL || kind == C_SETTLE) {
      lua_getfield(L, state, "results");
      if (ok) {
        push_values_list(L, p);
        if (kind == C_SETTLE) {
          lua_pushboolean(L, 1);
          lua_setfield(L, -2, "ok");
        }
      } else { /* settle: { ok = false, err = e } */
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "ok");
        lua_getiuservalue(L, p, UV_OUTCOME);
        lua_setfield(L, -2, "err");
      }
      lua_rawseti(L, -2, index);
      if (left == 0) ltask_fulfil(L, result, -1, 1);
    }
  }
  lua_settop(L, top);
}

/* The handler of the chain at target returned the promise at r: target
 * follows it.  Resolved with itself, or with a promise that waits on it
 * (through up to 64 links of chains and timeouts), target could never
 * settle: it is rejected instead. */
static void follow(lua_State *L, int r, int target) {
  int top = lua_gettop(L), cur = lua_absindex(L, r), self, cycle;
  target = lua_absindex(L, target);
  self = cycle = lua_rawequal(L, cur, target);
  for (int i = 0; i < 64 && !cycle; i++) {
    lpromise *cp = lua_touserdata(L, cur);
    if (lp_state(cp) != PENDING ||
        (cp->derived != D_CHAIN && cp->derived != D_TIMEOUT))
      break;
    lua_getiuservalue(L, cur, UV_SRC);
    cur = lua_gettop(L);
    cycle = lua_rawequal(L, cur, target);
  }
  lua_settop(L, top);
  if (cycle) {
    lua_pushstring(L, self ? "promise resolved with itself"
                           : "promise resolved with a promise that waits on it");
    ltask_fail(L, target, -1, REJECTED);
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, r);
  lua_setiuservalue(L, target, UV_SRC); /* what cancelling target cancels */
  ltask_add_cont(L, r, K_NEXT, 0, 0, target);
}

/* Runs one entry (at e) of the settled promise at p.  An entry whose target
 * was cancelled meanwhile runs no handler (but a finally's), and settles
 * a target still cancelling. */
static void run_entry(lua_State *L, int p, int e) {
  lpromise *lp = lua_touserdata(L, p), *tp;
  int top = lua_gettop(L), target = top + 1, kind, fn, n;
  lua_rawgeti(L, e, 4); /* target */
  tp = lua_touserdata(L, target);
  lua_rawgeti(L, e, 1);
  kind = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (kind == K_TIMEOUT) {
    lua_rawgeti(L, e, 2); /* the timer's id */
    lweft_cancel(L, lp->st, (weft_id_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
  }
  if (kind == K_COMB) {
    comb_input(L, p, e, target);
  } else if (kind == K_FINALLY) {
    /* It runs whatever the outcome, the chain's cancellation included. */
    lua_rawgeti(L, e, 2);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      if (lp_state(tp) == PENDING) ltask_fail(L, target, -1, REJECTED);
      else lweft_callback_error(L, lp->st); /* nobody else would see it */
    } else if (lp_cancelling(tp)) {
      ltask_end_cancel(L, target);
    } else {
      ltask_settle_like(L, target, p);
    }
  } else if (lp_state(tp) != PENDING) {
    /* cancelled while p was pending: its handler never runs */
  } else if (lp_cancelling(tp)) {
    ltask_end_cancel(L, target);
  } else if (kind == K_TIMEOUT || lp_state(lp) == CANCELLED ||
             lua_rawgeti(L, e, lp_state(lp) == FULFILLED ? 2 : 3) == LUA_TNIL) {
    ltask_settle_like(L, target, p); /* no handler: pass the outcome on */
  } else {
    fn = lua_gettop(L);
    n = lweft_push_outcome(L, p) - 1;
    lua_remove(L, fn + 1); /* the ok flag */
    if (lua_pcall(L, n, LUA_MULTRET, 0) != LUA_OK)
      ltask_fail(L, target, -1, REJECTED);
    else if (lua_gettop(L) == fn && ltask_test_promise(L, fn))
      follow(L, fn, target);
    else
      ltask_fulfil(L, target, fn, lua_gettop(L) - fn + 1);
  }
  lua_settop(L, top);
}

/* Runs the continuations of the settled promise at p, in order. */
static void run_conts(lua_State *L, int p) {
  int list, n, single;
  p = lua_absindex(L, p);
  single = lua_getiuservalue(L, p, UV_CONTS) == LUA_TUSERDATA;
  if (!single && !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  list = lua_gettop(L);
  lua_pushnil(L);
  lua_setiuservalue(L, p, UV_CONTS);
  n = single ? 1 : (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    if (single) lua_pushvalue(L, list);
    else lua_rawgeti(L, list, i);
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      /* An awaiting task, unless its wait was withdrawn meanwhile. */
      lpromise *t = lua_touserdata(L, -1);
      if (t->wait == WAIT_PROMISE && t->awaiting == lua_touserdata(L, p)) {
        t->awaiting = NULL;
        ltask_ready(L, -1);
      }
    } else {
      run_entry(L, p, lua_gettop(L));
    }
    lua_pop(L, 1);
  }
  lua_settop(L, list - 1);
}

void lweft_open_conts(lua_State *L) {
  (void)L;
  ltask_set_run_conts(run_conts);
}
