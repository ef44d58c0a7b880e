/* unhandled.c: rejections nobody handled: the table of them, a promise
 * marked handled once someone takes its outcome, and the report (a weft
 * error to the error handler naming the task and where it was spawned).
 * Below task.c, which notes each rejection and reports what is left when
 * the run queue has drained or the promise is collected. */
#include "ltask.h"

/* The registry key of the table of rejected promises nobody handled yet
 * (weak keys). */
static const char unhandled_key = 0;

/* Marks the promise at idx handled: its rejection is someone's now. */
void ltask_mark_handled(lua_State *L, lpromise *lp, int idx) {
  if (lp->handled) return;
  lp->handled = 1;
  if (lp_state(lp) == REJECTED) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

void ltask_note_unhandled(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void ltask_push_task_name(lua_State *L, lpromise *t, int idx) {
  if (lua_getiuservalue(L, idx, UV_WHERE) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushfstring(L, "task#%d", t->id);
  }
}

int ltask_push_spawner(lua_State *L, int idx) {
  if (lua_getiuservalue(L, idx, UV_WHERE) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 2);
    lua_remove(L, -2);
  }
  return lua_type(L, -1);
}

/* Reports the rejected, unhandled promise at idx to the error handler: a
 * weft error { kind = "unhandled", reason = the error } whose message names
 * the task and where it was spawned. */
void ltask_report_unhandled(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  lua_Debug ar;
  int err;
  idx = lua_absindex(L, idx);
  ltask_mark_handled(L, lp, idx);
  if (!lp->st->loop) return; /* the Lua state is closing */
  lua_getiuservalue(L, idx, UV_OUTCOME);
  err = lua_gettop(L);
  ltask_push_error(L, "unhandled", err);
  luaL_tolstring(L, err, NULL); /* err + 2: the original message */
  if (lp->is_task) {
    ltask_push_task_name(L, lp, idx); /* err + 3 */
    if (ltask_push_spawner(L, idx) == LUA_TFUNCTION && lp->line > 0 &&
        lua_getinfo(L, ">S", &ar)) /* pops the function */
      lua_pushfstring(L, "%s:%d", ar.short_src, lp->line);
    else
      lua_pushliteral(L, "?"); /* err + 4 (the nil stays below: popped) */
    lua_pushfstring(L, "unhandled rejection in %s (spawned at %s): %s",
                    lua_tostring(L, err + 3), lua_tostring(L, -1),
                    lua_tostring(L, err + 2));
  } else {
    lua_pushfstring(L, "unhandled rejection: %s", lua_tostring(L, err + 2));
  }
  lua_setfield(L, err + 1, "message");
  lua_settop(L, err + 1);
  lua_remove(L, err);
  lweft_callback_error(L, lp->st); /* pops it */
}

void lweft_report_unhandled(lua_State *L) {
  int list, n = 0;
  lua_newtable(L);
  list = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, list, ++n);
  }
  lua_pop(L, 1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    if (!((lpromise *)lua_touserdata(L, -1))->handled) ltask_report_unhandled(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void ltask_open_unhandled(lua_State *L) {
  lweft_weak_table(L, &unhandled_key, "k");
}
