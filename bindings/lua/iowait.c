/* iowait.c: the waits of the I/O parts (streams, thread channels, the
 * waiters of sync.lua): a task suspends without a promise until a core
 * callback wakes it, and the main chunk runs the loop meanwhile. */
#include "ltask.h"

void *lweft_io_begin(lua_State *L, lweft_state *st, const char *fname) {
  lpromise *t = ltask_push_running_task(L, st);
  int tidx;
  if (!t) return NULL;
  tidx = lua_gettop(L);
  ltask_check_cancel(L, t, tidx);
  ltask_check_yieldable(L, t, fname);
  return t;
}

/* Suspends the task on top (popped) in a WAIT_IO wait; w (if not NULL)
 * keeps it in the table of I/O waits, for lweft_io_wake. */
static int io_suspend(lua_State *L, lpromise *t, lweft_iowait *w, int keep,
                      void (*cancel)(lua_State *L, void *data), void *data,
                      lua_KContext ctx, lua_KFunction k) {
  int tidx = lua_gettop(L), n; /* the task lweft_io_begin pushed */
  if (t->done) return luaL_error(L, "task collected while suspended");
  ltask_begin_wait(L, t, tidx, WAIT_IO);
  w->cancel = cancel;
  w->data = data;
  t->io_wait = w;
  if (keep) {
    lua_pushvalue(L, tidx);
    ltask_io_keep(L, t->st, w);
  }
  if (t->cf) {
    lua_pop(L, 1);
    weft_fiber_set_data(t->cf, L);
    weft_fiber_suspend(NULL, NULL);
    return k(L, LUA_OK, ctx);
  }
  if ((n = ltask_handoff(L, t, tidx)) >= 0) {
    lua_remove(L, -n - 1); /* the task, below the values it was woken with */
    return k(L, LUA_YIELD, ctx);
  }
  lua_remove(L, tidx); /* (values it was woken with may be above it) */
  lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
  return lua_yieldk(L, 1, ctx, k);
}

int lweft_io_suspend(lua_State *L, void *task, lweft_iowait *w,
                     void (*cancel)(lua_State *L, void *data), void *data,
                     lua_KContext ctx, lua_KFunction k) {
  return io_suspend(L, task, w, 1, cancel, data, ctx, k);
}

int lweft_io_park(lua_State *L, void *task, lweft_iowait *w,
                  void (*cancel)(lua_State *L, void *data), void *data,
                  lua_KContext ctx, lua_KFunction k) {
  w->ref = 0;
  return io_suspend(L, task, w, 0, cancel, data, ctx, k);
}

void lweft_io_wake_task(lua_State *L, int idx) {
  lpromise *t = lua_touserdata(L, idx);
  if (t->wait != WAIT_IO) return;
  t->io_wait = NULL;
  ltask_ready(L, idx);
}

int lweft_io_wake(lweft_state *st, lweft_iowait *w) {
  lua_State *L = st->L;
  lpromise *t;
  int top, woke = 0;
  if (w->ref <= 0 || st->closing || !lua_checkstack(L, 4)) return 0;
  top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_io_waits);
  if (lua_rawgeti(L, top + 1, w->ref) == LUA_TUSERDATA) {
    t = lua_touserdata(L, top + 2);
    if (t->io_wait == w) {
      ltask_io_unkeep(L, t, top + 1);
      if (t->wait == WAIT_IO) {
        ltask_ready(L, top + 2);
        woke = 1;
      }
    }
  }
  w->ref = 0;
  lua_settop(L, top);
  return woke;
}

/* Runs the loop while *flag == value; arguments: flag, value, st, fname. */
static int run_while(lua_State *L) {
  const int *flag = lua_touserdata(L, 1);
  int value = (int)lua_tointeger(L, 2);
  lweft_state *st = lua_touserdata(L, 3);
  const char *fname = lua_tostring(L, 4);
  while (*flag == value) lweft_run_once(L, st, fname);
  return 0;
}

int lweft_io_run_while(lua_State *L, lweft_state *st, const int *flag,
                       int value, const char *fname) {
  lua_pushcfunction(L, run_while);
  lua_pushlightuserdata(L, (void *)flag);
  lua_pushinteger(L, value);
  lua_pushlightuserdata(L, st);
  lua_pushstring(L, fname);
  return lua_pcall(L, 4, 0, 0);
}

lua_State *lweft_take_ref(lweft_state *st, int ref) {
  lua_State *L = st->L;
  if (st->closing || !lua_checkstack(L, 8)) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  return L;
}

