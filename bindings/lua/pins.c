/* pins.c: the state's table of kept values, whose slots hold what the
 * core holds a pointer to (a pinned promise or task) and the tasks kept
 * in an I/O wait.  Below task.c. */
#include "ltask.h"

#include <limits.h>
#include <stdlib.h>

/* Takes a free slot of the state's table of kept values (the I/O waits
 * table).  The free slots are a stack in C with room for every slot ever
 * used, so that freeing one cannot fail. */
static int take_slot(lua_State *L, lweft_state *st) {
  if (st->io_nfree == 0) {
    if (st->io_top == st->io_capfree) {
      int cap = !st->io_capfree ? 64
                : st->io_capfree < INT_MAX / 2 ? 2 * st->io_capfree : 0;
      int *p = cap ? realloc(st->io_free, (size_t)cap * sizeof *p) : NULL;
      if (!p) luaL_error(L, "not enough memory");
      st->io_free = p;
      st->io_capfree = cap;
    }
    st->io_free[st->io_nfree++] = ++st->io_top;
  }
  return st->io_free[--st->io_nfree];
}

/* Pins the promise at idx: kept in a slot of the table of kept values
 * while pinned, so that the core, which holds a pointer, may hold it.
 * The binding pins an object before a core call that may retain it (a
 * task's queued resume, a continuation a host watches), and the core's
 * retain and release count on top. */
void ltask_pin(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->pins++ > 0) return;
  idx = lua_absindex(L, idx);
  lp->slot = take_slot(L, lp->st);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->st->ref_io_waits);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, lp->slot);
  lua_pop(L, 1);
}

/* Drops a pin; the last one lets the promise go.  (It runs from the
 * core's callbacks too: on the state's main thread, which has room.) */
void ltask_unpin(lpromise *lp) {
  lweft_state *st = lp->st;
  lua_State *L = st->L;
  if (--lp->pins > 0 || !lp->slot) return;
  if (!st->closing && lua_checkstack(L, 2)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_io_waits);
    lua_pushnil(L);
    lua_rawseti(L, -2, lp->slot);
    lua_pop(L, 1);
    st->io_free[st->io_nfree++] = lp->slot;
  }
  lp->slot = 0;
}

/* Pushes a pinned promise. */
void ltask_push_pinned(lua_State *L, lpromise *lp) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->st->ref_io_waits);
  lua_rawgeti(L, -1, lp->slot);
  lua_remove(L, -2);
}

void ltask_io_keep(lua_State *L, lweft_state *st, lweft_iowait *w) {
  w->ref = take_slot(L, st);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_io_waits);
  lua_insert(L, -2);
  lua_rawseti(L, -2, w->ref);
  lua_pop(L, 1);
}

void ltask_io_unkeep(lua_State *L, lpromise *t, int idx) {
  lweft_state *st = t->st;
  lweft_iowait *w = t->io_wait;
  lua_pushnil(L);
  lua_rawseti(L, idx, w->ref);
  st->io_free[st->io_nfree++] = w->ref;
  w->ref = 0;
  t->io_wait = NULL;
}
