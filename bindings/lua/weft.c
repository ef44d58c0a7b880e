/* weft.c: luaopen_weft: version check, the binding's state, the module. */
#include "lweft.h"

#include <stdlib.h>
#include <string.h>

/* sync.lua and stream.lua, compiled in by cmake/embed.cmake. */
extern const char lweft_sync_lua[];
extern const size_t lweft_sync_lua_len;
extern const char lweft_stream_lua[];
extern const size_t lweft_stream_lua_len;
extern const char lweft_process_lua[];
extern const size_t lweft_process_lua_len;
extern const char lweft_fs_lua[];
extern const size_t lweft_fs_lua_len;
extern const char lweft_thread_lua[];
extern const size_t lweft_thread_lua_len;
extern const char lweft_tls_lua[];
extern const size_t lweft_tls_lua_len;
extern const char lweft_socket_lua[];
extern const size_t lweft_socket_lua_len;
extern const char lweft_fswatch_lua[];
extern const size_t lweft_fswatch_lua_len;

/* The Lua parts run with (module, primitives, task internals), in order. */
static const struct {
  const char *name;
  const char *src;
  const size_t *len;
} io_parts[] = {{"=weft/stream.lua", lweft_stream_lua, &lweft_stream_lua_len},
                {"=weft/tls.lua", lweft_tls_lua, &lweft_tls_lua_len},
                {"=weft/process.lua", lweft_process_lua, &lweft_process_lua_len},
                {"=weft/fs.lua", lweft_fs_lua, &lweft_fs_lua_len},
                {"=weft/thread.lua", lweft_thread_lua, &lweft_thread_lua_len},
                {"=weft/socket.lua", lweft_socket_lua, &lweft_socket_lua_len},
                {"=weft/fswatch.lua", lweft_fswatch_lua, &lweft_fswatch_lua_len}};

/* The registry key of the state userdata: this variable's address. */
static const char state_key = 0;

static int state_gc(lua_State *L) {
  lweft_state *st = luaL_checkudata(L, 1, "weft.state");
  if (!st->loop) return 0;
  lweft_warn_never_ran(L, st);
  st->closing = 1;
  lweft_cut_bridges(st);
  lweft_cancel_all(st);
  lweft_forget_drain(st);
  if (st->owns_loop) {
    /* A drain still queued keeps the loop busy: one iteration runs it (it
     * does nothing now) and the close callbacks, then the loop can go. */
    if (weft_loop_free(st->loop) == WEFT_EBUSY) {
      weft_loop_run(st->loop, WEFT_RUN_NOWAIT);
      weft_loop_free(st->loop);
    }
  }
  st->loop = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_w);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_data);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_arg);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_misc);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_fifo);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_idle);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_tasks);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ref_io_waits);
  free(st->io_free);
  st->io_free = NULL;
  if (st->recs) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    alloc(ud, st->recs, st->nrecs * sizeof *st->recs, 0);
    st->recs = NULL;
  }
  return 0;
}

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

int lweft_argerror(lua_State *L, int arg, const char *fname,
                   const char *extramsg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar)) {
    if (ar.namewhat && strcmp(ar.namewhat, "method") == 0 && --arg == 0)
      return luaL_error(L, "calling '%s' on bad self (%s)", ar.name, extramsg);
    if (ar.name) fname = ar.name;
  }
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, extramsg);
}

lweft_state *lweft_get_state(lua_State *L) {
  lweft_state *st;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return st && st->loop ? st : NULL;
}

static int new_table_ref(lua_State *L) {
  lua_newtable(L);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Pushes the state, creating it (and its loop) on first use. */
static void push_state(lua_State *L) {
  lweft_state *st;
  int err;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) != LUA_TNIL) return;
  lua_pop(L, 1);
  st = lua_newuserdatauv(L, sizeof *st, 0);
  /* all zero: no loop yet (closed until it exists, so __gc is safe), no
   * arrays, no drain */
  memset(st, 0, sizeof *st);
  luaL_newmetatable(L, "weft.state");
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  st->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  st->ref_w = new_table_ref(L);
  st->ref_data = new_table_ref(L);
  st->ref_arg = new_table_ref(L);
  st->ref_misc = new_table_ref(L);
  st->ref_fifo = new_table_ref(L);
  st->ref_idle = new_table_ref(L);
  st->nidle = 0;
  st->fifo_head = st->fifo_n = st->fifo_cap = 0;
  st->drain = NULL;
  st->later = 0;
  st->budget = 0;
  st->drained = NULL;
  st->hosting = 0;
  st->running = 0;
  st->closing = 0;
  if (lua_getfield(L, LUA_REGISTRYINDEX, WEFT_LUA_LOOP_KEY) ==
      LUA_TLIGHTUSERDATA) {
    st->loop = lua_touserdata(L, -1); /* the host's loop, not ours to free */
    st->owns_loop = 0;
  } else {
    weft_loop_t *loop;
    err = weft_loop_new(&loop);
    if (err) luaL_error(L, "weft: cannot create a loop: %s", weft_strerror(err));
    st->loop = loop;
    st->owns_loop = 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
}

WEFT_LUA_EXTERN int luaopen_weft(lua_State *L) {
  unsigned int v = weft_version();
  size_t i;
  if ((v >> 16) != WEFT_VERSION_MAJOR)
    return luaL_error(L,
                      "weft: the Lua module was built for core %d.x but "
                      "libweft %s is loaded",
                      WEFT_VERSION_MAJOR, weft_version_string());
  lua_newtable(L);
  push_state(L);
  lweft_open_reactor(L);
  lweft_open_fiber(L);
  lweft_open_task(L);
  lweft_open_waiter(L);
  lweft_open_channel(L);
  lweft_open_stream(L); /* pushes the stream primitives */
  lua_remove(L, -2);    /* the state */
  /* The parts written in Lua: they add their functions to the module. */
  if (luaL_loadbuffer(L, lweft_sync_lua, lweft_sync_lua_len, "=weft/sync.lua"))
    return lua_error(L);
  lua_pushvalue(L, -3);
  lweft_push_task_internals(L);
  lua_call(L, 2, 0);
  for (i = 0; i < sizeof io_parts / sizeof *io_parts; i++) {
    if (luaL_loadbuffer(L, io_parts[i].src, *io_parts[i].len, io_parts[i].name))
      return lua_error(L);
    lua_pushvalue(L, -3); /* the module */
    lua_pushvalue(L, -3); /* the primitives */
    lweft_push_task_internals(L);
    lua_call(L, 3, 0);
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "weft %s", weft_version_string());
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
