/* weft.c: luaopen_weft and weft_lua_open, the top of the binding: checks
 * the core's version, makes the state, and has every part add its
 * functions to the module (the parts depend on the helpers below them,
 * never on this file). */
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

/* What the parts undo when the Lua state closes, in this order: the
 * never-ran warning reads the tasks and watchers before they go; from the
 * moment closing is set, late core callbacks do nothing. */
static void close_parts(lua_State *L, lweft_state *st) {
  lweft_warn_never_ran(L, st);
  st->closing = 1;
  lweft_cut_bridges(st);
  lweft_cancel_all(st);
  lweft_forget_queued(st);
}

/* What the Lua parts need of the task machinery and the waiters. */
static void push_internals(lua_State *L) {
  lweft_push_task_internals(L);
  lweft_push_waiter_ctor(L);
  lua_setfield(L, -2, "waiter");
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
  lweft_push_state(L);
  ((lweft_state *)lua_touserdata(L, -1))->on_close = close_parts;
  lweft_open_reactor(L);
  lweft_open_fiber(L);
  lweft_open_errors(L);
  lweft_open_task(L);
  lweft_open_conts(L);
  lweft_open_await(L);
  lweft_open_combine(L);
  lweft_open_spawn(L);
  lweft_open_run(L);
  lweft_open_waiter(L);
  lweft_open_channel(L);
  lweft_open_stream(L); /* pushes the stream primitives */
  /* the other I/O parts' primitives join them: the Lua parts share one
   * table (stream.lua's handles carry their files, processes and TLS) */
  lweft_process_prims(L);
  lweft_fs_prims(L);
  lweft_thread_prims(L);
  lweft_tls_prims(L);
  lweft_socket_prims(L);
  lweft_fswatch_prims(L);
  lweft_reactor_prims(L);
  lweft_argcheck_prims(L);
  lua_remove(L, -2);    /* the state */
  /* The parts written in Lua: they add their functions to the module. */
  if (luaL_loadbuffer(L, lweft_sync_lua, lweft_sync_lua_len, "=weft/sync.lua"))
    return lua_error(L);
  lua_pushvalue(L, -3); /* the module */
  lua_pushvalue(L, -3); /* the primitives */
  push_internals(L);
  lua_call(L, 3, 0);
  for (i = 0; i < sizeof io_parts / sizeof *io_parts; i++) {
    if (luaL_loadbuffer(L, io_parts[i].src, *io_parts[i].len, io_parts[i].name))
      return lua_error(L);
    lua_pushvalue(L, -3); /* the module */
    lua_pushvalue(L, -3); /* the primitives */
    push_internals(L);
    lua_call(L, 3, 0);
  }
  lua_pop(L, 1);
  lweft_name_funcs(L, -1);
  lua_pushfstring(L, "weft %s", weft_version_string());
  lua_setfield(L, -2, "_VERSION");
  return 1;
}

/* A host's way in: the module opened on the host's loop (weft_lua.h). */
WEFT_LUA_EXTERN int weft_lua_open(lua_State *L, weft_loop_t *loop) {
  if (loop) {
    lua_pushlightuserdata(L, loop);
    lua_setfield(L, LUA_REGISTRYINDEX, WEFT_LUA_LOOP_KEY);
  }
  luaL_requiref(L, "weft", luaopen_weft, 0);
  return 1;
}
