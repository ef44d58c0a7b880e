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
 * up, so the waker tries the next one and nothing is lost. */
#include "lweft.h"

#define WAITER_MT "weft.waiter"

enum { IDLE, PARKED, WOKEN, TIMED_OUT, GAVE_UP };

typedef struct lwaiter {
  lweft_state *st;
  int state;
  weft_id_t timer; /* the timeout: a reactor watcher whose callback is w */
} lwaiter;
/* User value 1: the task parked on it (what wakes reach it by). */

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

/* Ends the wait of the waiter at 1 in state `to`: wakes its task. */
static void end_wait(lua_State *L, lwaiter *w, int to) {
  w->state = to;
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) {
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 1);
    lweft_io_wake_task(L, lua_gettop(L));
  }
  lua_pop(L, 1); /* (the main chunk watches the state instead) */
}

int lweft_waiter_fired(lua_State *L) {
  lwaiter *w = lua_touserdata(L, 1);
  w->timer = 0;
  if (w->state == PARKED) end_wait(L, w, TIMED_OUT);
  return 0;
}

/* A cancelled task (or a main chunk whose loop raised) gives its place
 * up; a wake already handed to it stays WOKEN, for the caller to pass
 * on. */
static void give_up(lua_State *L, void *data) {
  lwaiter *w = data;
  stop_timer(L, w);
  if (waiting(w)) w->state = GAVE_UP;
}

static int push_result(lua_State *L, lwaiter *w) {
  if (w->state == WOKEN) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushliteral(L, "timeout");
  return 2;
}

/* false, err, woken: the wait ended by the error at erridx. */
static int push_failure(lua_State *L, lwaiter *w, int erridx) {
  int woken = w->state == WOKEN;
  give_up(L, w);
  lua_pushboolean(L, 0);
  lua_pushvalue(L, erridx);
  lua_pushboolean(L, woken);
  return 3;
}

static int park_k(lua_State *L, int status, lua_KContext ctx) {
  lwaiter *w = lua_touserdata(L, 1);
  (void)status, (void)ctx;
  /* Resumed with ok (at 3), or false and the cancellation (at 4). */
  if (!lua_toboolean(L, 3)) return push_failure(L, w, 4);
  return push_result(L, w);
}

static int lw_park(lua_State *L) {
  lwaiter *w = check_waiter(L);
  lweft_state *st = w->st;
  void *task;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number n = luaL_checknumber(L, 2);
    luaL_argcheck(L, n >= 0, 2, "timeout must be >= 0");
  }
  if (w->state == WOKEN) return push_result(L, w); /* woken before it parked */
  if (w->state != IDLE) return luaL_error(L, "a waiter parks only once");
  lua_settop(L, 2);
  /* If the task cannot wait here, it raises: wakers must skip it. */
  w->state = GAVE_UP;
  task = lweft_io_begin(L, "wait"); /* at 3, if any */
  w->state = PARKED;
  if (!lua_isnil(L, 2)) w->timer = lweft_once(L, st, 2, 1);
  if (!task) {
    if (lweft_io_run_while(L, st, &w->state, PARKED, "wait") != LUA_OK)
      return push_failure(L, w, lua_gettop(L));
    return push_result(L, w);
  }
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 1, 1);
  return lweft_io_park(L, task, give_up, w, 0, park_k);
}

static int lw_wake(lua_State *L) {
  lwaiter *w = check_waiter(L);
  int took = waiting(w);
  if (took) {
    stop_timer(L, w);
    end_wait(L, w, WOKEN);
  }
  lua_pushboolean(L, took);
  return 1;
}

static int lw_waiting(lua_State *L) {
  lua_pushboolean(L, waiting(check_waiter(L)));
  return 1;
}

static int lw_new(lua_State *L) {
  lwaiter *w = lua_newuserdatauv(L, sizeof *w, 1);
  w->st = lweft_state_of(L);
  w->state = IDLE;
  w->timer = 0;
  luaL_setmetatable(L, WAITER_MT);
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
