/* task.c: weft.promise, and tasks: coroutines that the loop resumes.
 *
 * A promise keeps its outcome and its pending continuations in its own user
 * values, so the continuations of a pending promise go with it when it
 * becomes garbage.  Settling queues one run of its continuations on the
 * loop's run queue (weft_loop_queue), anchoring the promise only until they
 * have run: weft keeps no reference to a settled promise after that.
 *
 * A task is a promise with a coroutine.  It is resumed only from the run
 * queue, never from inside the call that settled what it awaited, and its
 * promise settles with the function's results or error.  A task's waits
 * record what would wake it, so that cancelling the task withdraws the
 * wait and raises the cancellation there instead. */
#include "lweft.h"

#include <string.h>

#define PROMISE_MT "weft.promise"
#define ERROR_MT "weft.error"

enum { PENDING, FULFILLED, REJECTED, CANCELLED };
static const char *const state_names[] = {"pending", "fulfilled", "rejected",
                                          "cancelled"};

enum { WAIT_NONE, WAIT_PROMISE, WAIT_TIMER, WAIT_QUEUED };

typedef struct lpromise {
  lweft_state *st;
  int state;
  int is_task;
  int defer;        /* weft.defer: an error goes to the error handler */
  int started;
  int done;         /* the task's function has returned or raised */
  int wait;         /* what a suspended task waits on (WAIT_*) */
  weft_id_t timer;  /* the timer of a delay or an await timeout */
  int cancel_raise; /* raise the cancellation at the next suspension */
  int id;
} lpromise;

/* User values of a promise. */
enum {
  UV_OUTCOME = 1, /* { n, values... } or { err = e } */
  UV_CONTS,       /* pending continuations: { {kind, a, b, target}, ... } */
  UV_CO,          /* a task's coroutine */
  UV_WAIT,        /* a suspended task's await entry (to withdraw it) */
  UV_NAME,        /* a task's name */
  UV_COUNT = UV_NAME
};

/* The registry key of the table coroutine -> task (weak both ways): how
 * weft.current() and the waits find the running task. */
static const char tasks_key = 0;
static int task_count;

static lpromise *check_promise(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, PROMISE_MT);
}

static lpromise *new_promise(lua_State *L, lweft_state *st) {
  lpromise *lp = lua_newuserdatauv(L, sizeof *lp, UV_COUNT);
  memset(lp, 0, sizeof *lp);
  lp->st = st;
  luaL_setmetatable(L, PROMISE_MT);
  return lp;
}

/* ---- error values ------------------------------------------------------- */

/* Pushes a weft error: { kind = "cancelled" | "timeout", message, reason },
 * whose tostring is its message. */
static void push_error(lua_State *L, const char *kind, int reason) {
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

static int error_is(lua_State *L, const char *kind) {
  int yes = 0;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, ERROR_MT);
    if (lua_rawequal(L, -1, -2)) {
      lua_getfield(L, 1, "kind");
      yes = lua_type(L, -1) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), kind) == 0;
    }
  }
  lua_pushboolean(L, yes);
  return 1;
}

static int lw_is_cancelled(lua_State *L) { return error_is(L, "cancelled"); }
static int lw_is_timeout(lua_State *L) { return error_is(L, "timeout"); }

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  return 1;
}

/* ---- the run queue -------------------------------------------------------- */

typedef void (*queued_fn)(lua_State *L, lweft_state *st, int ref);

typedef struct qitem {
  lweft_state *st;
  queued_fn fn;
  int ref; /* a registry reference the function takes over */
} qitem;

/* Runs fn under a protected call: an error in weft's own bookkeeping (out
 * of memory) is reported like a callback's. */
static int run_protected(lua_State *L) {
  qitem *q = lua_touserdata(L, 1);
  q->fn(L, q->st, q->ref);
  return 0;
}

static void trampoline(weft_loop_t *loop, void *data) {
  qitem q = *(qitem *)data;
  lua_State *L = q.st->L;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  (void)loop;
  alloc(ud, data, sizeof q, 0);
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &q);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lweft_callback_error(L, q.st);
}

/* Queues fn(L, st, ref) on the loop's run queue; it takes over ref. */
static void queue(lua_State *L, lweft_state *st, queued_fn fn, int ref) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  qitem *q = alloc(ud, NULL, 0, sizeof *q);
  if (!q || weft_loop_queue(st->loop, trampoline, q) != 0) {
    if (q) alloc(ud, q, sizeof *q, 0);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    luaL_error(L, "not enough memory");
  }
  q->st = st;
  q->fn = fn;
  q->ref = ref;
}

/* ---- settling ------------------------------------------------------------ */

static void run_conts(lua_State *L, lweft_state *st, int ref);

/* After a settle: queues the run of the continuations of the promise at
 * idx, anchoring it until then. */
static void settled(lua_State *L, lpromise *lp, int idx) {
  if (lua_getiuservalue(L, idx, UV_CONTS) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    queue(L, lp->st, run_conts, luaL_ref(L, LUA_REGISTRYINDEX));
  }
  lua_pop(L, 1);
}

/* Fulfils the pending promise at idx with the n values from first on.
 * Returns 0 if it had already settled. */
static int fulfil(lua_State *L, int idx, int first, int n) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->state != PENDING) return 0;
  idx = lua_absindex(L, idx);
  first = lua_absindex(L, first);
  lua_createtable(L, n, 1);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, first + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, idx, UV_OUTCOME);
  lp->state = FULFILLED;
  settled(L, lp, idx);
  return 1;
}

/* Rejects (or cancels) the pending promise at idx with the error at err.
 * Returns 0 if it had already settled. */
static int fail(lua_State *L, int idx, int err, int state) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->state != PENDING) return 0;
  idx = lua_absindex(L, idx);
  err = lua_absindex(L, err);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, err);
  lua_setfield(L, -2, "err");
  lua_setiuservalue(L, idx, UV_OUTCOME);
  lp->state = state;
  settled(L, lp, idx);
  return 1;
}

/* Pushes the settled promise at idx's outcome as ok, values... or
 * false, err; returns how many values it pushed. */
static int push_outcome(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  int n, t;
  lua_getiuservalue(L, idx, UV_OUTCOME);
  t = lua_gettop(L);
  lua_pushboolean(L, lp->state == FULFILLED);
  if (lp->state != FULFILLED) {
    lua_getfield(L, t, "err");
    lua_remove(L, t);
    return 2;
  }
  lua_getfield(L, t, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i);
  lua_remove(L, t);
  return n + 1;
}

/* Returns the settled promise at idx's values, or raises its error. */
static int deliver(lua_State *L, int idx) {
  int n = push_outcome(L, idx);
  if (!lua_toboolean(L, -n)) return lua_error(L);
  lua_remove(L, -n);
  return n - 1;
}

/* Settles the promise at target like the values ok, ... on top (n of them,
 * the flag included); pops them. */
static void settle_like(lua_State *L, int target, int n) {
  int first = lua_gettop(L) - n + 1;
  target = lua_absindex(L, target);
  if (lua_toboolean(L, first))
    fulfil(L, target, first + 1, n - 1);
  else
    fail(L, target, first + 1, REJECTED);
  lua_settop(L, first - 1);
}

/* ---- tasks --------------------------------------------------------------- */

static void resume_task(lua_State *L, int idx, int nargs);

/* Queued resume: ref is { task, n = count, values... }. */
static void run_ready(lua_State *L, lweft_state *st, int ref) {
  int t, n;
  (void)st;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  t = lua_gettop(L);
  lua_getfield(L, t, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 2, "too many values");
  lua_rawgeti(L, t, 1);
  for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i + 1);
  resume_task(L, t + 1, n);
  lua_settop(L, t - 1);
}

/* Queues the task at idx to be resumed with the n values on top (popped). */
static void ready(lua_State *L, int idx, int n) {
  lpromise *t = lua_touserdata(L, idx);
  int base = lua_gettop(L) - n;
  idx = lua_absindex(L, idx);
  lua_createtable(L, n + 1, 1);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, 1);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, base + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  t->wait = WAIT_QUEUED;
  queue(L, t->st, run_ready, luaL_ref(L, LUA_REGISTRYINDEX));
  lua_settop(L, base);
}

/* Pushes the running task (the one whose coroutine is L), or returns NULL
 * pushing nothing. */
static lpromise *push_running_task(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
  lua_pushthread(L);
  if (lua_rawget(L, -2) != LUA_TUSERDATA) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

/* The task's function ended: settles its promise, reports a deferred
 * task's error, and lets its coroutine go. */
static void finished(lua_State *L, int idx, int status, lua_State *co,
                     int nres) {
  lpromise *t = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  t->done = 1;
  if (status == LUA_OK) {
    luaL_checkstack(L, nres, "too many results");
    lua_xmove(co, L, nres);
    fulfil(L, idx, lua_gettop(L) - nres + 1, nres);
    lua_pop(L, nres);
  } else {
    lua_xmove(co, L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      luaL_traceback(L, co, lua_tostring(L, -1), 0);
      lua_remove(L, -2);
    }
    /* Close the coroutine's pending <close> variables. */
    lweft_closethread(co, L);
    if (!fail(L, idx, -1, REJECTED) || !t->defer) {
      lua_pop(L, 1);
    } else {
      lweft_callback_error(L, t->st); /* pops the error */
    }
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
  lua_getiuservalue(L, idx, UV_CO);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setiuservalue(L, idx, UV_CO);
}

/* Resumes the task at idx with the nargs values on top (popped). */
static void resume_task(lua_State *L, int idx, int nargs) {
  lpromise *t = lua_touserdata(L, idx);
  lua_State *co;
  int status, nres;
  idx = lua_absindex(L, idx);
  if (t->done || lua_getiuservalue(L, idx, UV_CO) != LUA_TTHREAD) {
    lua_pop(L, nargs + 1);
    return;
  }
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  t->wait = WAIT_NONE;
  if (!t->started && t->state == CANCELLED) {
    /* Cancelled before it ever ran: its function never starts. */
    lua_pop(L, nargs);
    t->done = 1;
    return;
  }
  if (t->cancel_raise && t->started) {
    /* The resume delivers the cancellation instead of what woke it. */
    t->cancel_raise = 0;
    lua_pop(L, nargs);
    lua_pushboolean(L, 0);
    lua_getiuservalue(L, idx, UV_OUTCOME);
    lua_getfield(L, -1, "err");
    lua_remove(L, -2);
    nargs = 2;
  }
  t->started = 1;
  if (lua_status(co) == LUA_OK) {
    /* The first resume: the coroutine holds the function and arguments. */
    lua_pop(L, nargs);
    nargs = lua_gettop(co) - 1;
  } else {
    lua_xmove(L, co, nargs);
  }
  status = lua_resume(co, L, nargs, &nres);
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    /* A plain coroutine.yield in a task: run again in the next pass. */
    if (t->wait == WAIT_NONE) {
      lua_pushboolean(L, 1);
      ready(L, idx, 1);
    }
    return;
  }
  finished(L, idx, status, co, nres);
}

/* Creates a task running the function at fnidx with the n values after it
 * (all popped), pushes its promise, and queues its start. */
static lpromise *spawn(lua_State *L, lweft_state *st, int fnidx, int n) {
  lpromise *t;
  lua_State *co;
  int base;
  fnidx = lua_absindex(L, fnidx);
  t = new_promise(L, st);
  t->is_task = 1;
  t->id = ++task_count;
  co = lua_newthread(L);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, UV_CO);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -4);
  lua_rawset(L, -3);
  lua_pop(L, 2); /* tasks table, thread */
  /* The coroutine holds the function and its arguments until it starts. */
  base = lua_gettop(L);
  lua_pushvalue(L, fnidx);
  for (int i = 1; i <= n; i++) lua_pushvalue(L, fnidx + i);
  lua_xmove(L, co, n + 1);
  lua_settop(L, base);
  lua_pushvalue(L, -1);
  ready(L, -1, 0);
  lua_pop(L, 1);
  /* Remove the function and its arguments; leave the promise on top. */
  lua_replace(L, fnidx);
  lua_settop(L, fnidx);
  return t;
}

/* ---- continuations --------------------------------------------------------- */

/* Appends { kind, a, b, target } (values at the four indices; 0 = nil) to
 * the continuations of the promise at idx, or queues their run at once if
 * it has settled. */
static void add_cont(lua_State *L, int idx, const char *kind, int a, int b,
                     int target) {
  lpromise *lp = lua_touserdata(L, idx);
  int list;
  idx = lua_absindex(L, idx);
  a = a ? lua_absindex(L, a) : 0;
  b = b ? lua_absindex(L, b) : 0;
  target = target ? lua_absindex(L, target) : 0;
  if (lua_getiuservalue(L, idx, UV_CONTS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, UV_CONTS);
    if (lp->state != PENDING) { /* settled: run them from the loop */
      lua_pushvalue(L, idx);
      queue(L, lp->st, run_conts, luaL_ref(L, LUA_REGISTRYINDEX));
    }
  }
  list = lua_gettop(L);
  lua_createtable(L, 4, 0);
  lua_pushstring(L, kind);
  lua_rawseti(L, -2, 1);
  if (a) lua_pushvalue(L, a), lua_rawseti(L, -2, 2);
  if (b) lua_pushvalue(L, b), lua_rawseti(L, -2, 3);
  if (target) lua_pushvalue(L, target), lua_rawseti(L, -2, 4);
  lua_rawseti(L, list, (lua_Integer)luaL_len(L, list) + 1);
  lua_pop(L, 1);
}

/* Runs one continuation entry (at e) of the settled promise at p. */
static void run_entry(lua_State *L, int p, int e) {
  lpromise *lp = lua_touserdata(L, p);
  const char *kind;
  int top = lua_gettop(L), n;
  lua_rawgeti(L, e, 1);
  kind = lua_tostring(L, -1);
  lua_rawgeti(L, e, 4); /* top + 2: the target promise or task */
  if (!strcmp(kind, "await")) {
    lua_getfield(L, e, "dead");
    if (!lua_toboolean(L, -1)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, e, "dead");
      lua_pushnil(L);
      lua_setiuservalue(L, top + 2, UV_WAIT);
      n = push_outcome(L, p);
      ready(L, top + 2, n);
    }
  } else if (!strcmp(kind, "finally")) {
    lua_rawgeti(L, e, 2);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      fail(L, top + 2, -1, REJECTED);
    } else {
      n = push_outcome(L, p);
      settle_like(L, top + 2, n);
    }
  } else { /* next: entry 2 handles a value, entry 3 an error */
    int handler = lp->state == FULFILLED ? 2 : 3;
    if (lua_rawgeti(L, e, handler) == LUA_TNIL) {
      lua_pop(L, 1);
      n = push_outcome(L, p);
      settle_like(L, top + 2, n);
    } else {
      int fn = lua_gettop(L), status;
      n = push_outcome(L, p) - 1;
      lua_remove(L, fn + 1); /* the ok flag */
      status = lua_pcall(L, n, LUA_MULTRET, 0);
      if (status != LUA_OK) {
        fail(L, top + 2, -1, REJECTED);
      } else if (lua_gettop(L) == fn &&
                 luaL_testudata(L, fn, PROMISE_MT)) {
        /* A promise returned by the handler: follow it. */
        add_cont(L, fn, "next", 0, 0, top + 2);
      } else {
        fulfil(L, top + 2, fn, lua_gettop(L) - fn + 1);
      }
    }
  }
  lua_settop(L, top);
}

static void run_conts(lua_State *L, lweft_state *st, int ref) {
  int p, list, n;
  (void)st;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  p = lua_gettop(L);
  if (lua_getiuservalue(L, p, UV_CONTS) != LUA_TTABLE) {
    lua_settop(L, p - 1);
    return;
  }
  list = lua_gettop(L);
  lua_pushnil(L);
  lua_setiuservalue(L, p, UV_CONTS);
  n = (int)luaL_len(L, list);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    run_entry(L, p, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_settop(L, p - 1);
}

/* ---- promise methods ----------------------------------------------------- */

static int lw_promise(lua_State *L) {
  new_promise(L, lweft_state_of(L));
  return 1;
}

static int lw_p_resolve(lua_State *L) {
  check_promise(L, 1);
  lua_pushboolean(L, fulfil(L, 1, 2, lua_gettop(L) - 1));
  return 1;
}

static int lw_p_reject(lua_State *L) {
  check_promise(L, 1);
  luaL_checkany(L, 2);
  lua_pushboolean(L, fail(L, 1, 2, REJECTED));
  return 1;
}

static int lw_p_cancel(lua_State *L) {
  lpromise *lp = check_promise(L, 1);
  lua_settop(L, 2);
  push_error(L, "cancelled", 2);
  if (!fail(L, 1, 3, CANCELLED)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (lp->is_task && !lp->done) {
    /* Raise the cancellation where the task waits, or at its next wait. */
    if (lp->wait == WAIT_PROMISE || lp->wait == WAIT_TIMER) {
      if (lp->timer) lweft_cancel(L, lp->st, lp->timer);
      lp->timer = 0;
      if (lua_getiuservalue(L, 1, UV_WAIT) == LUA_TTABLE) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "dead");
      }
      lua_pop(L, 1);
      lua_pushnil(L);
      lua_setiuservalue(L, 1, UV_WAIT);
      lua_pushboolean(L, 0);
      lua_pushvalue(L, 3);
      ready(L, 1, 2);
    } else {
      lp->cancel_raise = 1;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int lw_p_status(lua_State *L) {
  lua_pushstring(L, state_names[check_promise(L, 1)->state]);
  return 1;
}

static void check_handler(lua_State *L, int idx) {
  luaL_argexpected(L, lua_isnoneornil(L, idx) || lua_isfunction(L, idx), idx,
                   "function or nil");
}

static int lw_p_next(lua_State *L) {
  lpromise *lp = check_promise(L, 1);
  check_handler(L, 2);
  check_handler(L, 3);
  lua_settop(L, 3);
  new_promise(L, lp->st);
  add_cont(L, 1, "next", lua_isnil(L, 2) ? 0 : 2, lua_isnil(L, 3) ? 0 : 3, 4);
  return 1;
}

static int lw_p_catch(lua_State *L) {
  lpromise *lp = check_promise(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  new_promise(L, lp->st);
  add_cont(L, 1, "next", 0, 2, 3);
  return 1;
}

static int lw_p_finally(lua_State *L) {
  lpromise *lp = check_promise(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  new_promise(L, lp->st);
  add_cont(L, 1, "finally", 2, 0, 3);
  return 1;
}

static int lw_p_tostring(lua_State *L) {
  lpromise *lp = check_promise(L, 1);
  if (lp->is_task) {
    lua_getiuservalue(L, 1, UV_NAME);
    if (lua_isnil(L, -1)) lua_pushfstring(L, "task#%d", lp->id);
    lua_pushfstring(L, "weft.task %s (%s)", lua_tostring(L, -1),
                    state_names[lp->state]);
  } else {
    lua_pushfstring(L, "weft.promise (%s)", state_names[lp->state]);
  }
  return 1;
}

/* ---- await and delay ------------------------------------------------------- */

/* Continuation of a task's await or delay: it was resumed with ok, ... */
static int wait_k(lua_State *L, int status, lua_KContext base) {
  int first = (int)base + 1;
  (void)status;
  if (!lua_toboolean(L, first)) return lua_error(L);
  return lua_gettop(L) - first;
}

/* A default task is a coroutine: it cannot suspend across a C call. */
static void check_yieldable(lua_State *L, const char *fname) {
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: a task cannot suspend inside a C call here (a "
                  "table.sort comparator, a gsub callback, a metamethod); "
                  "run that code in a weft.fiber, which can", fname);
}

/* Raises the task's cancellation if it is due at this suspension. */
static void check_cancel(lua_State *L, lpromise *t, int tidx) {
  if (!t->cancel_raise) return;
  t->cancel_raise = 0;
  lua_getiuservalue(L, tidx, UV_OUTCOME);
  lua_getfield(L, -1, "err");
  lua_error(L);
}

/* Runs the loop until the promise at idx settles (the main chunk's await). */
static void run_until_settled(lua_State *L, lweft_state *st, int idx,
                              const char *fname) {
  lpromise *lp = lua_touserdata(L, idx);
  while (lp->state == PENDING) {
    int r = lweft_run_once(L, st, fname);
    if (r == 0 && lp->state == PENDING)
      luaL_error(L, "%s: the promise can never settle: nothing left to run",
                 fname);
  }
}

static int lw_await(lua_State *L) {
  lpromise *p = check_promise(L, 1), *t;
  lua_settop(L, 1);
  t = push_running_task(L); /* at 2, if any */
  if (!t) {
    run_until_settled(L, p->st, 1, "await");
    return deliver(L, 1);
  }
  check_cancel(L, t, 2);
  if (p->state != PENDING) return deliver(L, 1);
  check_yieldable(L, "await");
  add_cont(L, 1, "await", 0, 0, 2);
  /* Remember the entry, so a cancellation can withdraw it. */
  lua_getiuservalue(L, 1, UV_CONTS);
  lua_rawgeti(L, -1, (lua_Integer)luaL_len(L, -1));
  lua_setiuservalue(L, 2, UV_WAIT);
  lua_pop(L, 1);
  t->wait = WAIT_PROMISE;
  lua_settop(L, 0);
  return lua_yieldk(L, 0, 0, wait_k);
}

static int lw_delay_fired(lua_State *L) {
  lpromise *t = lua_touserdata(L, lua_upvalueindex(1));
  t->timer = 0;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushboolean(L, 1);
  ready(L, -2, 1);
  return 0;
}

static int lw_main_delay_fired(lua_State *L) {
  lua_pushboolean(L, 1);
  lua_setfield(L, lua_upvalueindex(1), "done");
  return 0;
}

static int lw_delay(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  lpromise *t;
  luaL_checknumber(L, 1);
  lua_settop(L, 1);
  if (lua_tonumber(L, 1) < 0 || lua_tonumber(L, 1) != lua_tonumber(L, 1))
    luaL_argerror(L, 1, "delay must be >= 0");
  t = push_running_task(L); /* at 2, if any */
  if (!t) {
    lua_newtable(L); /* 2: { done } */
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, lw_main_delay_fired, 1);
    lweft_once(L, st, 1, lua_gettop(L));
    lua_getfield(L, 2, "done");
    while (!lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      lweft_run_once(L, st, "delay");
      lua_getfield(L, 2, "done");
    }
    return 0;
  }
  check_cancel(L, t, 2);
  check_yieldable(L, "delay");
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, lw_delay_fired, 1);
  t->timer = lweft_once(L, st, 1, lua_gettop(L));
  t->wait = WAIT_TIMER;
  lua_settop(L, 0);
  return lua_yieldk(L, 0, 0, wait_k);
}

/* ---- tasks: creation and introspection ------------------------------------ */

static int lw_async(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  spawn(L, lweft_state_of(L), 1, lua_gettop(L) - 1);
  return 1;
}

static int lw_defer(lua_State *L) {
  lpromise *t;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  t = spawn(L, lweft_state_of(L), 1, lua_gettop(L) - 1);
  t->defer = 1;
  return 0;
}

static int lw_current(lua_State *L) {
  if (!push_running_task(L)) lua_pushnil(L);
  return 1;
}

int lweft_spawn(lua_State *L, lweft_state *st, int fnidx, int n) {
  spawn(L, st, fnidx, n);
  return 1;
}

int lweft_settled_results(lua_State *L, int idx, const char *fname) {
  lpromise *t = check_promise(L, idx);
  if (t->state == PENDING)
    return luaL_error(L, "%s: the task never finished: it waits on something "
                         "nothing is left to settle", fname);
  return deliver(L, idx);
}

void lweft_open_task(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"resolve", lw_p_resolve}, {"reject", lw_p_reject},
      {"cancel", lw_p_cancel},   {"status", lw_p_status},
      {"next", lw_p_next},       {"catch", lw_p_catch},
      {"finally", lw_p_finally}, {"await", lw_await},
      {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"promise", lw_promise},   {"async", lw_async},
      {"defer", lw_defer},       {"await", lw_await},
      {"delay", lw_delay},       {"current", lw_current},
      {"is_cancelled", lw_is_cancelled}, {"is_timeout", lw_is_timeout},
      {NULL, NULL}};
  if (luaL_newmetatable(L, PROMISE_MT)) {
    lua_pushcfunction(L, lw_p_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key) != LUA_TTABLE) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "kv");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tasks_key);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}
