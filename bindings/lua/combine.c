/* combine.c: weft.all, any, race and settle, and weft.timeout: promises
 * derived from others, whose continuations the core runs (task.c). */
#include "ltask.h"

/* Checks that the value at arg is a list of promises; returns its length. */
static int check_list(lua_State *L, int arg) {
  int n;
  lweft_checktype(L, arg, LUA_TTABLE, NULL);
  n = (int)luaL_len(L, arg);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, arg, i);
    if (!ltask_test_promise(L, -1))
      lweft_argerror(L, arg, NULL, lua_pushfstring(L, "element %d is not a "
                                               "weft.promise", i));
    lua_pop(L, 1);
  }
  return n;
}

void ltask_combine(lua_State *L, int arg, int kind) {
  lweft_state *st = lweft_state_of(L);
  int n = check_list(L, arg), result, state;
  lpromise *out = ltask_new_promise(L, st, UV_DERIVED);
  result = lua_gettop(L);
  if (n == 0) {
    if (kind == C_ALL || kind == C_SETTLE) {
      lua_newtable(L);
      ltask_fulfil(L, result, -1, 1);
      lua_pop(L, 1);
    } else if (kind == C_ANY) {
      lua_pushliteral(L, "any: no promise in the list");
      ltask_fail(L, result, -1, REJECTED);
      lua_pop(L, 1);
    } /* race of nothing: stays pending */
    return;
  }
  lua_createtable(L, 0, 4);
  state = lua_gettop(L);
  lua_pushinteger(L, kind);
  lua_setfield(L, state, "kind");
  lua_pushinteger(L, n);
  lua_setfield(L, state, "left");
  lua_createtable(L, n, 0);
  lua_setfield(L, state, "results");
  /* (a copy: what cancelling the result cancels, whatever the caller does
   * with its list) */
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, arg, i);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, state, "inputs");
  out->derived = D_COMB;
  lua_pushvalue(L, state);
  lua_setiuservalue(L, result, UV_SRC);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, arg, i);
    lua_createtable(L, 4, 0);
    lua_pushinteger(L, K_COMB);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, state);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, i);
    lua_rawseti(L, -2, 3);
    lua_pushvalue(L, result);
    lua_rawseti(L, -2, 4);
    ltask_push_cont(L, -2, -1);
    lua_pop(L, 2);
  }
  lua_settop(L, result);
}

static int lw_all(lua_State *L) { ltask_combine(L, 1, C_ALL); return 1; }

static int lw_any(lua_State *L) { ltask_combine(L, 1, C_ANY); return 1; }

static int lw_race(lua_State *L) { ltask_combine(L, 1, C_RACE); return 1; }

static int lw_settle(lua_State *L) { ltask_combine(L, 1, C_SETTLE); return 1; }

/* The timer of weft.timeout: upvalues are the result and the source. */
static int lw_timeout_fired(lua_State *L) {
  lpromise *result = lua_touserdata(L, lua_upvalueindex(1));
  lpromise *src = lua_touserdata(L, lua_upvalueindex(2));
  /* (A source that settled first settles the result from its
   * continuation, which may not have run yet.) */
  if (lp_state(result) != PENDING || lp_cancelling(result) || lp_state(src) != PENDING)
    return 0;
  /* Give up on the source: cancel it (a task gets the cancellation where
   * it waits), and raise the timeout once it has ended. */
  ltask_push_error(L, "timeout", 0);
  lua_setiuservalue(L, lua_upvalueindex(1), UV_OUTCOME);
  result->timed_out = 1;
  ltask_begin_cancel(result);
  ltask_push_error(L, "cancelled", 0);
  ltask_cancel(L, lua_upvalueindex(2), -1);
  if (lp_state(src) != PENDING) ltask_end_cancel(L, lua_upvalueindex(1));
  return 0;
}

void ltask_with_timeout(lua_State *L, int p, int msarg) {
  lpromise *src = lua_touserdata(L, p);
  weft_id_t timer;
  int result;
  p = lua_absindex(L, p);
  ltask_new_promise(L, src->st, UV_DERIVED)->derived = D_TIMEOUT;
  result = lua_gettop(L);
  lua_pushvalue(L, p);
  lua_setiuservalue(L, result, UV_SRC);
  lua_pushvalue(L, result);
  lua_pushvalue(L, p);
  lua_pushcclosure(L, lw_timeout_fired, 2);
  timer = lweft_once(L, src->st, msarg, lua_gettop(L));
  lua_pop(L, 1);
  /* When the source settles first, the timer goes and the result follows. */
  lua_createtable(L, 4, 0);
  lua_pushinteger(L, K_TIMEOUT);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, (lua_Integer)timer);
  lua_rawseti(L, -2, 2);
  lua_pushvalue(L, result);
  lua_rawseti(L, -2, 4);
  ltask_push_cont(L, p, -1);
  lua_pop(L, 1);
}

void ltask_check_ms_arg(lua_State *L, int arg, const char *what) {
  lua_Number ms = lweft_checknumber(L, arg, NULL);
  if (!(ms >= 0))
    lweft_argerror(L, arg, NULL, lua_pushfstring(L, "%s must be >= 0", what));
}

static int lw_timeout(lua_State *L) {
  ltask_check_promise(L, 1);
  ltask_check_ms_arg(L, 2, "timeout");
  ltask_with_timeout(L, 1, 2);
  return 1;
}

void lweft_open_combine(lua_State *L) {
  static const luaL_Reg fns[] = {{"all", lw_all},         {"any", lw_any},
                                 {"race", lw_race},       {"settle", lw_settle},
                                 {"timeout", lw_timeout}, {NULL, NULL}};
  ltask_add(L, fns, NULL, NULL, NULL);
}
