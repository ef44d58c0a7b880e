/* errors.c: weft's error values ({ kind, message, reason } with a
 * __tostring), weft.is_cancelled and weft.is_timeout, and the I/O error
 * value the streams raise. */
#include "ltask.h"

void ltask_push_error(lua_State *L, const char *kind, int reason) {
  reason = reason ? lua_absindex(L, reason) : 0;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (reason && !lua_isnil(L, reason)) {
    lua_pushvalue(L, reason);
    lua_setfield(L, -2, "reason");
    luaL_tolstring(L, reason, NULL);
    lua_pushfstring(L, "%s: %s", kind, lua_tostring(L, -1));
    lua_remove(L, -2);
  } else {
    lua_pushstring(L, kind);
  }
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, ERROR_MT);
}

int ltask_error_kind_is(lua_State *L, int idx, const char *kind) {
  int top = lua_gettop(L), yes = 0;
  idx = lua_absindex(L, idx);
  if (lua_istable(L, idx) && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, ERROR_MT);
    if (lua_rawequal(L, -1, -2)) {
      lua_getfield(L, idx, "kind");
      yes = lua_type(L, -1) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), kind) == 0;
    }
  }
  lua_settop(L, top);
  return yes;
}

static int lw_is_cancelled(lua_State *L) {
  lua_pushboolean(L, ltask_error_kind_is(L, 1, "cancelled"));
  return 1;
}

static int lw_is_timeout(lua_State *L) {
  lua_pushboolean(L, ltask_error_kind_is(L, 1, "timeout"));
  return 1;
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  return 1;
}

void lweft_push_io_error(lua_State *L, const char *op, int err) {
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "io");
  lua_setfield(L, -2, "kind");
  lua_pushfstring(L, "%s: %s", op, weft_strerror(err));
  lua_setfield(L, -2, "message");
  lua_pushstring(L, weft_err_name(err));
  lua_setfield(L, -2, "code");
  luaL_setmetatable(L, ERROR_MT);
}

void lweft_open_errors(lua_State *L) {
  static const luaL_Reg fns[] = {{"is_cancelled", lw_is_cancelled},
                                 {"is_timeout", lw_is_timeout},
                                 {NULL, NULL}};
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
