/* await.c: weft.await (and p:await), weft.delay and weft.shield: the
 * waits of a task, and of the main chunk, which runs the loop instead. */
#include "ltask.h"

#include <math.h>

static int lw_await(lua_State *L) {
  lpromise *p, *t;
  int has_ms = !lua_isnoneornil(L, 2);
  if (has_ms) ltask_check_ms_arg(L, 2, "timeout");
  if (lua_istable(L, 1) && !ltask_test_promise(L, 1)) {
    /* await({p1, p2}): every outcome, or the first error */
    ltask_combine(L, 1, C_ALL);
    lua_replace(L, 1);
  }
  ltask_check_promise(L, 1);
  if (has_ms) {
    ltask_with_timeout(L, 1, 2);
    lua_replace(L, 1);
  }
  p = lua_touserdata(L, 1);
  lua_settop(L, 1);
  t = ltask_push_running_task(L, p->st); /* at 2, if any */
  if (!t) {
    ltask_run_until_settled(L, p->st, 1, "await");
    return ltask_deliver(L, 1);
  }
  ltask_check_cancel(L, t, 2);
  if (lp_state(p) != PENDING) return ltask_deliver(L, 1);
  ltask_check_yieldable(L, t, "await");
  ltask_begin_wait(L, t, 2, WAIT_PROMISE);
  if (has_ms) ltask_own_wait(L, 2, 1);
  ltask_push_cont(L, 1, 2);
  t->awaiting = p;
  return ltask_suspend_task(L, t, 1);
}

/* The main chunk's delay: runs the loop until the flag table at 2 is
 * done (st at 1). */
static int main_delay_wait(lua_State *L) {
  lweft_state *st = lua_touserdata(L, 1);
  lua_getfield(L, 2, "done");
  while (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lweft_run_once(L, st, "delay");
    lua_getfield(L, 2, "done");
  }
  return 0;
}

static int lw_main_delay_fired(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, lua_upvalueindex(1), "done");
  return 0;
}

static int lw_delay(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  lua_Number ms = lweft_checknumber(L, 1, NULL);
  lpromise *t;
  lua_settop(L, 1);
  if (!(ms >= 0)) lweft_argerror(L, 1, NULL, "delay must be >= 0");
  t = ltask_push_running_task(L, st); /* at 2, if any */
  if (!t) {
    weft_id_t id;
    lua_newtable(L); /* 2: { done } */
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, lw_main_delay_fired, 1);
    id = lweft_once(L, st, 1, lua_gettop(L));
    lua_settop(L, 2);
    lua_pushcfunction(L, main_delay_wait);
    lua_pushlightuserdata(L, st);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
      lweft_cancel(L, st, id); /* the loop could not run here */
      return lua_error(L);
    }
    return 0;
  }
  ltask_check_cancel(L, t, 2);
  ltask_check_yieldable(L, t, "delay");
  /* (as the reactor's timers count: whole ms, rounded up) */
  ltask_sleep(L, t, 2,
              lua_isinteger(L, 1) ? (uint64_t)lua_tointeger(L, 1)
              : ms >= 1e18        ? UINT64_MAX
                                  : (uint64_t)ceil(ms));
  return ltask_suspend_task(L, t, 0);
}

/* weft.shield's continuation: the shielded call returned (status LUA_OK
 * or LUA_YIELD) or raised; the task at 1 (or nil) may be cancelled
 * again. */
static int shield_k(lua_State *L, int status, lua_KContext ctx) {
  lpromise *t = ltask_test_promise(L, 1);
  (void)ctx;
  if (t) weft_task_shield(LP_TASK(t), -1);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 1;
}

/* weft.shield(fn, ...) runs fn(...) with the running task's cancellation
 * held back (Trio's shielded cancel scope): its waits work even in a
 * cancelled task, a cancellation arriving meanwhile interrupts nothing,
 * and the first wait after it raises.  Returns fn's results. */
static int lw_shield(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  lpromise *t;
  if (ltask_test_promise(L, 1)) {
    /* weft.shield(p): a follower of p whose cancellation stays its own
     * (asyncio.shield), for a wait with a timeout that must not cancel p */
    lua_settop(L, 1);
    ltask_chain(L, K_NEXT, 0, 0);
    ((lpromise *)lua_touserdata(L, -1))->derived = D_NONE;
    return 1;
  }
  if (!lua_isfunction(L, 1))
    lweft_typeerror(L, 1, NULL, "function or weft.promise");
  t = ltask_push_running_task(L, st);
  if (!t) lua_pushnil(L);
  lua_insert(L, 1); /* 1 the task (or nil), 2 fn, 3... its arguments */
  if (t && weft_task_shield(LP_TASK(t), 1) > 255) {
    weft_task_shield(LP_TASK(t), -1);
    return lweft_error(L, "shield: nested too deep");
  }
  return shield_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0,
                                shield_k),
                  0);
}

void lweft_open_await(lua_State *L) {
  static const luaL_Reg methods[] = {{"await", lw_await}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"await", lw_await},
                                 {"delay", lw_delay},
                                 {"shield", lw_shield},
                                 {NULL, NULL}};
  ltask_add(L, fns, methods, NULL, NULL);
}
