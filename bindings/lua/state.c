/* state.c: the binding's state of a Lua state (lweft_state): made on the
 * first require, found from any C function, and torn down when the Lua
 * state closes.  The parts that keep something in it say what to undo
 * through st->on_close, so this file depends on none of them. */
#include "lweft.h"

#include <stdlib.h>
#include <string.h>

/* The registry key of the state userdata: this variable's address. */
static const char state_key = 0;

static int state_gc(lua_State *L) {
  lweft_state *st = luaL_checkudata(L, 1, "weft.state");
  if (!st->loop) return 0;
  if (st->on_close) st->on_close(L, st); /* sets st->closing */
  st->closing = 1;
  if (st->owns_loop) {
    /* What task.c still has queued keeps the loop busy: one iteration
     * runs it (it does nothing now) and the close callbacks, then the
     * loop can go. */
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

void lweft_push_state(lua_State *L) {
  lweft_state *st;
  int err;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) != LUA_TNIL) return;
  lua_pop(L, 1);
  st = lua_newuserdatauv(L, sizeof *st, 0);
  /* all zero: no loop yet (closed until it exists, so __gc is safe), no
   * arrays, nothing queued */
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
  st->ref_idle = new_table_ref(L);
  st->nidle = 0;
  st->queued = NULL;
  st->report_queued = 0;
  st->run_L = st->cur_L = NULL;
  st->guarded = st->in_guard = 0;
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
