/* fswatch.c: the C half of weft.fs.watch: a handle userdata over a core
 * file watcher (csrc/fswatch.c), whose changes call the Lua function kept
 * as the handle's user value.  fswatch.lua builds the watcher objects. */
#include "lweft.h"

#define WATCH_MT "weft.fswatch_handle"

typedef struct lwatch {
  weft_fswatch_t *w; /* NULL once closed */
  lweft_state *st;
} lwatch;

/* The registry key of a weak table: lwatch pointer -> its userdata, for
 * the core's callback. */
static const char live_key = 0;

static void release(lwatch *lw) {
  if (lw->w) weft_fswatch_close(lw->w);
  lw->w = NULL;
}

static int lw_gc(lua_State *L) {
  release(luaL_checkudata(L, 1, WATCH_MT));
  return 0;
}

/* The core's callback: calls the handle's function with (name, "change" |
 * "rename") or (nil, nil, error code name), protected. */
static void on_change(weft_fswatch_t *w, const char *name, int events,
                      int status, void *data) {
  lwatch *lw = data;
  lweft_state *st = lw->st;
  lua_State *L = st->L;
  int top;
  (void)w;
  if (st->closing) return;
  top = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &live_key);
  if (lua_rawgetp(L, -1, lw) != LUA_TUSERDATA ||
      lua_getiuservalue(L, -1, 1) != LUA_TFUNCTION) {
    lua_settop(L, top);
    return;
  }
  if (status) {
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushstring(L, weft_err_name(status));
  } else {
    lua_pushstring(L, name);
    lua_pushstring(L, (events & WEFT_FSWATCH_RENAME) ? "rename" : "change");
    lua_pushnil(L);
  }
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) lweft_callback_error(L, st);
  lua_settop(L, top);
}

/* fswatch_start(path, recursive, window_ms, fn) -> handle, or nil,
 * message, code */
static int lw_start(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  const char *path = luaL_checkstring(L, 1);
  int flags = lua_toboolean(L, 2) ? WEFT_FSWATCH_RECURSIVE : 0, err;
  lua_Integer ms = luaL_checkinteger(L, 3);
  lwatch *lw;
  luaL_checktype(L, 4, LUA_TFUNCTION);
  lw = lua_newuserdatauv(L, sizeof *lw, 1);
  lw->w = NULL; /* closed until the watcher exists: __gc is safe */
  lw->st = st;
  luaL_setmetatable(L, WATCH_MT);
  err = weft_fswatch_start(st->loop, path, flags, (uint64_t)ms, on_change, lw,
                           &lw->w);
  if (err) {
    return lweft_push_fail(L, NULL, err);
  }
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, -2, 1);
  lweft_weak_table(L, &live_key, "v");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &live_key);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, lw);
  lua_pop(L, 1);
  return 1;
}

/* fswatch_close(handle) */
static int lw_close(lua_State *L) {
  release(luaL_checkudata(L, 1, WATCH_MT));
  return 0;
}

void lweft_fswatch_prims(lua_State *L) {
  static const luaL_Reg prims[] = {{"fswatch_start", lw_start},
                                   {"fswatch_close", lw_close},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, WATCH_MT)) {
    lua_pushcfunction(L, lw_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}
