/* waiter.c: one task (or the main chunk) parked until another wakes it,
 * its timeout passes, or it is cancelled.  The sync objects (sync.lua:
 * mutex, semaphore, event, channel) keep a queue of waiters; a promise
 * would do the same job, but carries what a single waiter never needs
 * (an outcome, continuations, unhandled-rejection tracking), and an await
 * of it costs a protected call and a promise check per wait.
 *
 * A waiter is used once: waiter() -> w; w:park([ms]) suspends until
 * w:wake() (true), the timeout (nil, "timeout") or a cancellation or loop
 * error (false, err, woken: woken tells whether a wake was handed to it
 * first, so that the caller can pass it on before it raises err).
 * w:wake() returns whether the waiter took the wake: false once it gave
 * up, so the waker tries the next one and nothing is lost.  C code (the
 * channel) uses the same steps through lweft_waiter_*. */
#include "lweft.h"

#define WAITER_MT "weft.waiter"

enum { IDLE, PARKED, WOKEN, TIMED_OUT, GAVE_UP };

typedef struct lwaiter {
  lweft_state *st;
  int state;
  weft_id_t timer; /* the timeout: a reactor watcher whose callback is w */
  lweft_iowait iow; /* the parked task's wait */
} lwaiter;
/* User value 1: the task parked on it (what wakes reach it by); user
 * value 2 is the owner's (channel.c keeps the value handed over there). */

static const char ctor_key = 0, class_key = 0;

static lwaiter *check_waiter(lua_State *L) {
  lwaiter *w = lweft_testudata(L, 1, &class_key);
  return w ? w : luaL_checkudata(L, 1, WAITER_MT); /* raises */
}

/* Parked, or about to park: a wake would reach it. */
static int waiting(const lwaiter *w) {
  return w->state == PARKED || w->state == IDLE;
}

static void stop_timer(lua_State *L, lwaiter *w) {
  if (w->timer) lweft_cancel(L, w->st, w->timer);
  w->timer = 0;
}

/* Ends the wait of the waiter at idx in state `to`: wakes its task. */
static void end_wait(lua_State *L, int idx, lwaiter *w, int to) {
  w->state = to;
  if (lua_getiuservalue(L, idx, 1) == LUA_TUSERDATA) {
    lua_pushnil(L);
    lua_setiuservalue(L, idx, 1);
    lweft_io_wake_task(L, lua_gettop(L));
  }
  lua_pop(L, 1); /* (the main chunk watches the state instead) */
}

/* The fire hook of waiters (lweft_fire_key): the timeout's watcher calls
 * it with the waiter. */
static int waiter_fired(lua_State *L) {
  lwaiter *w = lua_touserdata(L, 1);
  w->timer = 0;
  if (w->state == PARKED) end_wait(L, 1, w, TIMED_OUT);
  return 0;
}

/* A cancelled task (or a main chunk whose loop raised) gives its place
 * up; a wake already handed to it stays WOKEN, for the caller to pass
 * on. */
/* The where hook of waiters (lweft_where_key): where the task parked on
 * the waiter at 1 (its user value 1) is suspended. */
static int waiter_where(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA)
    lweft_push_task_where(L, -1);
  else
    lua_pushliteral(L, "[C]");
  return 1;
}

static void give_up(lua_State *L, void *data) {
  lwaiter *w = data;
  stop_timer(L, w);
  if (waiting(w)) w->state = GAVE_UP;
}

int lweft_waiter_outcome(lua_State *L, int base, int *woken) {
  lwaiter *w = lua_touserdata(L, base);
  if (lua_toboolean(L, base + 2)) return w->state == WOKEN;
  *woken = w->state == WOKEN;
  give_up(L, w);
  lua_settop(L, base + 3);
  return -1;
}

int lweft_waiter_park(lua_State *L, int base, lua_KContext ctx,
                      lua_KFunction k) {
  lwaiter *w = lua_touserdata(L, base);
  void *task;
  if (w->state == WOKEN) { /* woken before it parked */
    lua_pushboolean(L, 1);
    return k(L, LUA_OK, ctx);
  }
  if (w->state != IDLE) return luaL_error(L, "a waiter parks only once");
  /* If the task cannot wait here, it raises: wakers must skip it. */
  w->state = GAVE_UP;
  task = lweft_io_begin(L, w->st, "wait"); /* at base + 2, if any */
  w->state = PARKED;
  if (!lua_isnil(L, base + 1)) w->timer = lweft_once(L, w->st, base + 1, base);
  if (!task) {
    if (lweft_io_run_while(L, w->st, &w->state, PARKED, "wait") != LUA_OK) {
      lua_pushboolean(L, 0);
      lua_insert(L, base + 2); /* false, err */
    } else {
      lua_pushboolean(L, 1);
    }
    return k(L, LUA_OK, ctx);
  }
  lua_pushvalue(L, base + 2);
  lua_setiuservalue(L, base, 1);
  return lweft_io_park(L, task, &w->iow, give_up, w, ctx, k);
}

/* w:park's results: true; nil, "timeout"; or false, err, woken. */
static int park_k(lua_State *L, int status, lua_KContext ctx) {
  int woken = 0, r = lweft_waiter_outcome(L, 1, &woken);
  (void)status, (void)ctx;
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    lua_pushboolean(L, woken);
    return 3;
  }
  if (r) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushliteral(L, "timeout");
  return 2;
}

static int lw_park(lua_State *L) {
  check_waiter(L);
  if (!lua_isnoneornil(L, 2)) {
    lua_Number n = luaL_checknumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "timeout must be >= 0");
  }
  lua_settop(L, 2);
  return lweft_waiter_park(L, 1, 0, park_k);
}

int lweft_waiter_wake(lua_State *L, int idx) {
  lwaiter *w = lua_touserdata(L, idx);
  int took = waiting(w);
  if (took) {
    stop_timer(L, w);
    end_wait(L, lua_absindex(L, idx), w, WOKEN);
  }
  return took;
}

int lweft_waiter_waiting(lua_State *L, int idx) {
  return waiting(lua_touserdata(L, idx));
}

static int lw_wake(lua_State *L) {
  check_waiter(L);
  lua_pushboolean(L, lweft_waiter_wake(L, 1));
  return 1;
}

static int lw_waiting(lua_State *L) {
  lua_pushboolean(L, waiting(check_waiter(L)));
  return 1;
}

void lweft_waiter_new(lua_State *L, lweft_state *st) {
  lwaiter *w = lua_newuserdatauv(L, sizeof *w, 2);
  w->st = st;
  w->state = IDLE;
  w->timer = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &class_key);
  lua_setmetatable(L, -2);
}

static int lw_new(lua_State *L) {
  lweft_waiter_new(L, lweft_state_of(L));
  return 1;
}

void lweft_open_waiter(lua_State *L) {
  static const luaL_Reg methods[] = {{"park", lw_park},
                                     {"wake", lw_wake},
                                     {"waiting", lw_waiting},
                                     {NULL, NULL}};
  if (luaL_newmetatable(L, WAITER_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, waiter_fired);
    lua_rawsetp(L, -2, &lweft_fire_key);
    lua_pushcfunction(L, waiter_where);
    lua_rawsetp(L, -2, &lweft_where_key);
  }
  lua_pop(L, 1);
  lweft_class_key(L, WAITER_MT, &class_key);
  lua_pushvalue(L, -1); /* the state */
  lua_pushcclosure(L, lw_new, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctor_key);
}

void lweft_push_waiter_ctor(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctor_key);
}
