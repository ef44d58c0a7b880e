/* spawn.c: making tasks (weft.async, defer, spawn, and the adoption of a
 * coroutine by weft.coroutine) and looking at them (weft.current,
 * weft.tasks, t:traceback(), t:where()). */
#include "ltask.h"

#include <stdlib.h>

static int lw_t_traceback(lua_State *L) {
  lpromise *t = ltask_check_promise(L, 1);
  lua_State *co = ltask_suspended_co(L, t, 1);
  if (!t->is_task) return lweft_argerror(L, 1, NULL, "not a task");
  ltask_push_task_name(L, t, 1);
  if (!co) {
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1),
                    !t->started ? "not started" : t->done ? "finished"
                                                          : "running");
    return 1;
  }
  lua_pushfstring(L, "%s suspended", lua_tostring(L, -1));
  luaL_traceback(L, co, lua_tostring(L, -1), 0);
  return 1;
}

/* The where hook of tasks (lweft_where_key): "file:line" where the task
 * at 1 is suspended, or "[C]". */
static int task_where(lua_State *L) {
  lpromise *t = ltask_test_promise(L, 1);
  lua_State *co = t ? ltask_suspended_co(L, t, 1) : NULL;
  if (co && lweft_push_where(L, co, 0) == 2)
    lua_pushfstring(L, "%s:%d", lua_tostring(L, -2), (int)lua_tointeger(L, -1));
  else
    lua_pushliteral(L, "[C]");
  return 1;
}

static int lw_t_where(lua_State *L) {
  lpromise *t = ltask_check_promise(L, 1);
  return lweft_push_where(L, ltask_suspended_co(L, t, 1), 0);
}

static int by_id(const void *a, const void *b) {
  int x = (*(lpromise *const *)a)->id, y = (*(lpromise *const *)b)->id;
  return (x > y) - (x < y);
}

static int lw_tasks(lua_State *L) {
  int n = 0, list;
  lua_newtable(L);
  list = lua_gettop(L);
  ltask_push_tasks(L, lweft_state_of(L));
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lpromise *t = lua_touserdata(L, -1);
    if (t && !t->done) lua_rawseti(L, list, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* Oldest first. */
  if (n > 1) {
    lpromise **v = lua_newuserdatauv(L, (size_t)n * sizeof *v, 0);
    lua_createtable(L, 0, n); /* lpromise* -> task */
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      v[i - 1] = lua_touserdata(L, -1);
      lua_rawsetp(L, -2, v[i - 1]);
    }
    qsort(v, (size_t)n, sizeof *v, by_id);
    for (int i = 1; i <= n; i++) {
      lua_rawgetp(L, -1, v[i - 1]);
      lua_rawseti(L, list, i);
    }
    lua_settop(L, list);
  }
  return 1;
}

static int lw_spawn(lua_State *L) {
  lpromise *t;
  int named = 0, stackful = 0;
  size_t stack = LWEFT_FIBER_STACK;
  lweft_checktype(L, 1, LUA_TTABLE, NULL);
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(key, "name") == 0) {
      if (lua_type(L, -1) != LUA_TSTRING)
        lweft_argerror(L, 1, NULL, "field 'name' must be a string");
      named = 1;
    } else if (strcmp(key, "stackful") == 0) {
      if (!lua_isboolean(L, -1))
        lweft_argerror(L, 1, NULL, "field 'stackful' must be a boolean");
      stackful = lua_toboolean(L, -1);
    } else if (strcmp(key, "stack_size") == 0) {
      stack = lweft_check_stack_size(L, 1, "spawn");
    } else {
      lweft_argerror(L, 1, NULL,
                     lua_pushfstring(L, "unknown option '%s'", key));
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "name");
  lua_insert(L, 1); /* the name, out of the way: 1 name, 2 opts, 3 fn */
  lua_remove(L, 2);
  t = ltask_spawn(L, lweft_state_of(L), 2, lua_gettop(L) - 2,
                  stackful ? stack : 0);
  (void)t;
  if (named) {
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_getiuservalue(L, -2, UV_WHERE);
    lua_rawseti(L, -2, 2);
    lua_setiuservalue(L, -2, UV_WHERE);
  }
  return 1;
}

static int lw_async(lua_State *L) {
  lweft_checktype(L, 1, LUA_TFUNCTION, NULL);
  ltask_spawn(L, lweft_state_of(L), 1, lua_gettop(L) - 1, 0);
  return 1;
}

static int lw_defer(lua_State *L) {
  lpromise *t;
  lweft_checktype(L, 1, LUA_TFUNCTION, NULL);
  t = ltask_spawn(L, lweft_state_of(L), 1, lua_gettop(L) - 1, 0);
  t->defer = 1;
  return 0;
}

static int lw_current(lua_State *L) {
  if (!ltask_push_running_task(L, lweft_state_of(L))) lua_pushnil(L);
  return 1;
}

/* For weft.coroutine: runs coroutine 1 on behalf of the running task (so
 * its waits suspend that task), and returns the suspension marker. */
static int lw_adopt(lua_State *L) {
  lweft_checktype(L, 1, LUA_TTHREAD, NULL);
  if (ltask_push_running_task(L, NULL)) {
    ltask_push_tasks(L, NULL);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
  }
  lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
  return 1;
}

void lweft_push_task_internals(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, lw_adopt);
  lua_setfield(L, -2, "adopt");
  lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
  lua_setfield(L, -2, "suspend_marker");
  luaL_getmetatable(L, ERROR_MT);
  lua_setfield(L, -2, "error_mt");
}

int lweft_unstarted_tasks(lua_State *L, lweft_state *st) {
  lpromise *first = NULL;
  lua_Debug ar;
  int n = 0, top = lua_gettop(L);
  lua_pushnil(L); /* top + 1: the oldest one */
  ltask_push_tasks(L, st);
  lua_pushnil(L);
  while (lua_next(L, top + 2)) {
    lpromise *t = ltask_test_promise(L, -1);
    if (t && !t->started && lp_state(t) == PENDING) {
      n++;
      if (!first || t->id < first->id) {
        first = t;
        lua_pushvalue(L, -1);
        lua_replace(L, top + 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top + 1);
  if (!n) {
    lua_pop(L, 1);
    return 0;
  }
  if (ltask_push_spawner(L, top + 1) == LUA_TFUNCTION && first->line > 0 &&
      lua_getinfo(L, ">S", &ar))
    lua_pushfstring(L, "%s:%d", ar.short_src, first->line);
  else
    lua_pushliteral(L, "?");
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return n;
}

void lweft_open_spawn(lua_State *L) {
  static const luaL_Reg methods[] = {{"traceback", lw_t_traceback},
                                     {"where", lw_t_where},
                                     {NULL, NULL}};
  static const luaL_Reg fns[] = {{"async", lw_async},
                                 {"defer", lw_defer},
                                 {"spawn", lw_spawn},
                                 {"current", lw_current},
                                 {"tasks", lw_tasks},
                                 {NULL, NULL}};
  ltask_add(L, fns, methods, NULL, task_where);
}
