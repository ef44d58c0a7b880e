/* util.c: the helpers every part of the binding shares: where a call came
 * from, class checks on hot paths, weak tables, the stack size check. */
#include "lweft.h"

#include <stdarg.h>
#include <string.h>

const char lweft_fire_key = 0, lweft_where_key = 0;

int lweft_push_where(lua_State *L, lua_State *thread, int from) {
  lua_Debug ar, first; /* first: the innermost frame with a line */
  int found = 0;
  for (int level = from; thread && lua_getstack(thread, level, &ar); level++) {
    lua_getinfo(thread, "Sl", &ar);
    if (ar.currentline <= 0) continue;
    /* weft's own Lua parts (a channel's recv, a stream's read) are not
     * where the caller waits: their caller is (unless a tail call left
     * none, and weft's frame is all there is). */
    if (strncmp(ar.source, "=weft/", 6) != 0) {
      first = ar;
      found = 1;
      break;
    }
    if (!found) {
      first = ar;
      found = 1;
    }
  }
  if (!found) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, first.short_src);
  lua_pushinteger(L, first.currentline);
  return 2;
}

void *lweft_testudata(lua_State *L, int idx, const void *key) {
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same;
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same) return p;
  }
  return NULL;
}

void lweft_class_key(lua_State *L, const char *name, const void *key) {
  luaL_getmetatable(L, name);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void lweft_weak_table(lua_State *L, const void *key, const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
  lua_pop(L, 1);
}

size_t lweft_check_stack_size(lua_State *L, int arg, const char *fname) {
  if (!lua_isinteger(L, -1) ||
      lua_tointeger(L, -1) < (lua_Integer)LWEFT_MIN_STACK ||
      lua_tointeger(L, -1) > (lua_Integer)WEFT_FIBER_MAX_STACK)
    lweft_argerror(L, arg, fname,
                   lua_pushfstring(L, "field 'stack_size' must be an integer "
                                      "from %d to %d",
                                   (int)LWEFT_MIN_STACK,
                                   (int)WEFT_FIBER_MAX_STACK));
  return (size_t)lua_tointeger(L, -1);
}

int lweft_raise_cancelled(lua_State *L) { return luaL_error(L, "cancelled"); }

static int no_where(lua_State *L) {
  lua_pushliteral(L, "[C]");
  return 1;
}

void lweft_push_task_where(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!lua_getmetatable(L, idx)) {
    lua_pushcfunction(L, no_where);
  } else {
    if (lua_rawgetp(L, -1, &lweft_where_key) != LUA_TFUNCTION) {
      lua_pop(L, 1);
      lua_pushcfunction(L, no_where);
    }
    lua_remove(L, -2);
  }
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
}

int lweft_push_fail(lua_State *L, const char *message, int err) {
  lua_pushnil(L);
  lua_pushstring(L, message && *message ? message : weft_strerror(err));
  lua_pushstring(L, weft_err_name(err));
  return 3;
}

int lweft_push_failf(lua_State *L, int err, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushstring(L, weft_err_name(err));
  return 3;
}

static int tolstring(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *lweft_push_error_text(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, tolstring);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}
