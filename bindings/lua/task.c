/* task.c: the core of weft.promise and of tasks, coroutines that the loop
 * resumes (ltask.h lists the files built on it).
 *
 * A promise keeps its outcome and its pending continuations in its own user
 * values, so the continuations of a pending promise go with it when it
 * becomes garbage.  Settling queues one run of its continuations on the
 * binding's run queue, anchoring the promise only until they have run: weft
 * keeps no reference to a settled promise after that.
 *
 * A task is a promise with a coroutine.  It is resumed only from the run
 * queue, never from inside the call that settled what it awaited, and its
 * promise settles with the function's results or error.  A task records
 * what it waits on, so that cancelling it withdraws the wait and raises the
 * cancellation there instead.
 *
 * The run queue is a Lua table of pairs, drained in FIFO order by one entry
 * on the core's run queue at a time: (task, source) resumes the task with
 * source's outcome (false: with true), (promise, marker) runs the
 * promise's continuations.  Queueing allocates nothing but table slots. */
#include "ltask.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"pending", "fulfilled", "rejected",
                                          "cancelled"};

/* The registry key of the table coroutine -> task (weak both ways): how
 * weft.current() and the waits find the running task. */
static const char tasks_key = 0;
/* The registry key of the table fiber -> stackful task (weak values): how
 * a wait inside a stackful task finds it from any thread running on its
 * C stack (a coroutine.wrap generator, a table.sort comparator). */
static const char fibertasks_key = 0;
/* The registry key of the table of rejected promises nobody handled yet
 * (weak keys), reported when collected or when weft.run finishes. */
static const char unhandled_key = 0;
/* (st->ref_io_waits is the table of tasks suspended in an I/O wait, each
 * in the slot its lweft_iowait notes: it is how a core callback finds the
 * task to wake, and it keeps the task (and what its stack holds, such as
 * the handle the callback points into) alive.) */
const char ltask_suspend_marker = 0;
/* The queue marker of "run this promise's continuations". */
static const char conts_marker = 0;
static int task_count;

/* The registry key of the table task -> the timeout its await made for it
 * (weft.await(p, ms); weak both ways): what cancelling the task cancels. */
static const char own_waits_key = 0;

/* The registry key of the promise metatable (see lweft_testudata). */
static const char promise_key = 0;

lpromise *ltask_test_promise(lua_State *L, int idx) {
  return lweft_testudata(L, idx, &promise_key);
}

lpromise *ltask_check_promise(lua_State *L, int idx) {
  lpromise *p = ltask_test_promise(L, idx);
  return p ? p : lweft_checkudata(L, idx, PROMISE_MT, NULL); /* raises */
}

lpromise *ltask_new_promise(lua_State *L, lweft_state *st, int nuv) {
  lpromise *lp = lua_newuserdatauv(L, sizeof *lp, nuv);
  memset(lp, 0, sizeof *lp);
  lp->st = st;
  luaL_setmetatable(L, PROMISE_MT);
  return lp;
}

/* ---- unhandled rejections ---------------------------------------------------- */

/* Marks the promise at idx handled: its rejection is someone's now. */
static void mark_handled(lua_State *L, lpromise *lp, int idx) {
  if (lp->handled) return;
  lp->handled = 1;
  if (lp->state == REJECTED) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
}

void ltask_push_task_name(lua_State *L, lpromise *t, int idx) {
  if (lua_getiuservalue(L, idx, UV_WHERE) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushfstring(L, "task#%d", t->id);
  }
}

int ltask_push_spawner(lua_State *L, int idx) {
  if (lua_getiuservalue(L, idx, UV_WHERE) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 2);
    lua_remove(L, -2);
  }
  return lua_type(L, -1);
}

/* Reports the rejected, unhandled promise at idx to the error handler: a
 * weft error { kind = "unhandled", reason = the error } whose message names
 * the task and where it was spawned. */
static void report_unhandled(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  lua_Debug ar;
  int err;
  idx = lua_absindex(L, idx);
  mark_handled(L, lp, idx);
  if (!lp->st->loop) return; /* the Lua state is closing */
  lua_getiuservalue(L, idx, UV_OUTCOME);
  err = lua_gettop(L);
  ltask_push_error(L, "unhandled", err);
  luaL_tolstring(L, err, NULL); /* err + 2: the original message */
  if (lp->is_task) {
    ltask_push_task_name(L, lp, idx); /* err + 3 */
    if (ltask_push_spawner(L, idx) == LUA_TFUNCTION && lp->line > 0 &&
        lua_getinfo(L, ">S", &ar)) /* pops the function */
      lua_pushfstring(L, "%s:%d", ar.short_src, lp->line);
    else
      lua_pushliteral(L, "?"); /* err + 4 (the nil stays below: popped) */
    lua_pushfstring(L, "unhandled rejection in %s (spawned at %s): %s",
                    lua_tostring(L, err + 3), lua_tostring(L, -1),
                    lua_tostring(L, err + 2));
  } else {
    lua_pushfstring(L, "unhandled rejection: %s", lua_tostring(L, err + 2));
  }
  lua_setfield(L, err + 1, "message");
  lua_settop(L, err + 1);
  lua_remove(L, err);
  lweft_callback_error(L, lp->st); /* pops it */
}

static int lw_p_gc(lua_State *L) {
  lpromise *lp = lua_touserdata(L, 1);
  if (lp->state == REJECTED && !lp->handled) report_unhandled(L, 1);
  /* A default task collected while suspended waits on nothing that can
   * wake it: close it, so its pending <close> variables run. */
  if (lp->is_task && !lp->cf && lp->started && !lp->done &&
      lua_getiuservalue(L, 1, UV_CO) == LUA_TTHREAD &&
      lua_status(lua_tothread(L, -1)) == LUA_YIELD) {
    lp->done = 1;
    lweft_closethread(lua_tothread(L, -1), L);
  }
  lua_settop(L, 1);
  /* A stackful task collected while suspended: resume it once with an
   * error raised from its wait, so its handlers and <close> variables
   * run; if it waits again, it is discarded there. */
  if (lp->cf && weft_fiber_status(lp->cf) == WEFT_FIBER_SUSPENDED &&
      lp->susp && !lp->done) {
    lp->done = 1; /* no wait may register anything for it any more */
    lua_pushboolean(lp->susp, 0);
    lua_pushliteral(lp->susp, "task collected while suspended");
    weft_fiber_resume(lp->cf, NULL, NULL);
  }
  if (lp->cf && weft_fiber_status(lp->cf) != WEFT_FIBER_RUNNING) {
    weft_fiber_free(lp->cf);
    lp->cf = NULL;
  }
  return 0;
}

void lweft_report_unhandled(lua_State *L) {
  int list, n = 0;
  lua_newtable(L);
  list = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, list, ++n);
  }
  lua_pop(L, 1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    if (!((lpromise *)lua_touserdata(L, -1))->handled) report_unhandled(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- the run queue ---------------------------------------------------------- */

static void run_conts(lua_State *L, int p);
static void resume_task(lua_State *L, int idx, int src);

static void drain(weft_loop_t *loop, void *data);

/* Queues a drain of the run queue on the core's, unless one is queued or
 * deferred.  Returns 0, or -1 when out of memory. */
static int queue_drain(lweft_state *st) {
  lweft_drain *d;
  if (st->drain || st->later) return 0;
  d = malloc(sizeof *d); /* not Lua's allocator: it may outlive the state */
  if (!d) return -1;
  d->st = st;
  if (weft_loop_queue(st->loop, drain, d) != 0) {
    free(d);
    return -1;
  }
  st->drain = d;
  return 0;
}

static void schedule_drain(lua_State *L, lweft_state *st) {
  if (queue_drain(st) != 0) luaL_error(L, "not enough memory");
}

void lweft_forget_drain(lweft_state *st) {
  if (st->drain) st->drain->st = NULL;
  st->drain = NULL;
  if (st->later) weft_watch_cancel(st->loop, st->later);
  st->later = 0;
}

/* Doubles the ring of the run queue (the table at -1, replaced there),
 * laying its pairs out from slot 0. */
static void grow_fifo(lua_State *L, lweft_state *st) {
  lua_Integer cap = st->fifo_cap ? 2 * st->fifo_cap : 64;
  int old = lua_gettop(L);
  lua_createtable(L, (int)(2 * cap), 0);
  for (lua_Integer i = 0; i < st->fifo_n; i++) {
    lua_Integer from = 2 * ((st->fifo_head + i) & (st->fifo_cap - 1));
    lua_rawgeti(L, old, from + 1);
    lua_rawseti(L, -2, 2 * i + 1);
    lua_rawgeti(L, old, from + 2);
    lua_rawseti(L, -2, 2 * i + 2);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, st->ref_fifo);
  lua_replace(L, old);
  st->fifo_head = 0;
  st->fifo_cap = cap;
}

/* Appends the pair (value at a, value at b or false) to the run queue.  A
 * ring, so that its table keeps a fixed array part and never rehashes. */
static void enqueue(lua_State *L, lweft_state *st, int a, int b) {
  lua_Integer slot;
  a = lua_absindex(L, a);
  b = b ? lua_absindex(L, b) : 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_fifo);
  if (st->fifo_n == st->fifo_cap) grow_fifo(L, st);
  slot = 2 * ((st->fifo_head + st->fifo_n) & (st->fifo_cap - 1));
  lua_pushvalue(L, a);
  lua_rawseti(L, -2, slot + 1);
  if (b) lua_pushvalue(L, b);
  else lua_pushboolean(L, 0);
  lua_rawseti(L, -2, slot + 2);
  st->fifo_n++;
  lua_pop(L, 1);
  schedule_drain(L, st);
}

/* Pushes the run queue's table and the pair at its head (not empty).
 * The table is fetched each time: a run may grow the ring into a new one. */
static void peek(lua_State *L, lweft_state *st) {
  lua_Integer slot = 2 * st->fifo_head;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_fifo);
  lua_rawgeti(L, -1, slot + 1);
  lua_rawgeti(L, -2, slot + 2);
}

/* Removes the head pair from the run queue's table at tidx (from peek). */
static void drop_head(lua_State *L, lweft_state *st, int tidx) {
  lua_Integer slot = 2 * st->fifo_head;
  lua_pushnil(L);
  lua_rawseti(L, tidx, slot + 1);
  lua_pushnil(L);
  lua_rawseti(L, tidx, slot + 2);
  st->fifo_head = (st->fifo_head + 1) & (st->fifo_cap - 1);
  st->fifo_n--;
}

/* How many tasks and continuations one drain runs before the rest waits
 * for the loop's next iteration. */
#define DRAIN_BUDGET 65536

/* Runs the queued pairs in FIFO order, including those they queue, up to
 * the budget.  Under a protected call. */
static int drain_protected(lua_State *L) {
  lweft_state *st = lua_touserdata(L, 1);
  st->budget = DRAIN_BUDGET;
  while (st->fifo_n > 0 && st->budget > 0) {
    st->budget--;
    lua_settop(L, 1);
    peek(L, st); /* 2 table, 3 and 4 the pair */
    drop_head(L, st, 2);
    if (lua_touserdata(L, 4) == &conts_marker)
      run_conts(L, 3);
    else
      resume_task(L, 3, 4);
  }
  /* The queue has drained: a rejection nobody handled by now is reported
   * (as node does once its microtasks have run), not when it is collected
   * or the loop ends, which in a server may be never. */
  if (st->fifo_n == 0 && st->unhandled_new) {
    st->unhandled_new = 0;
    lweft_report_unhandled(L);
  }
  return 0;
}

static void drain_later(weft_loop_t *loop, weft_id_t id, int arg, void *data);

static void run_drain(lweft_state *st) {
  lua_State *L = st->L;
  lua_pushcfunction(L, drain_protected);
  lua_pushlightuserdata(L, st);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lweft_callback_error(L, st);
  st->drained = NULL;
  st->hosting = 0;
  if (st->fifo_n == 0) return;
  /* Out of budget: the rest waits until the loop has polled, so tasks that
   * keep each other busy cannot starve timers and I/O (the core's run
   * queue would run a drain queued now in this same pass).  An error cut
   * the turn short: the rest goes on at once. */
  if (st->budget <= 0 && !st->later &&
      weft_immediately(st->loop, drain_later, st, 0, &st->later) == 0)
    return;
  queue_drain(st);
}

static void drain(weft_loop_t *loop, void *data) {
  lweft_drain *d = data;
  lweft_state *st = d->st;
  (void)loop;
  free(d);
  if (!st) return; /* the Lua state closed meanwhile */
  st->drain = NULL;
  run_drain(st);
}

static void drain_later(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  lweft_state *st = data;
  (void)loop, (void)id, (void)arg;
  st->later = 0;
  run_drain(st);
}

/* ---- settling ------------------------------------------------------------ */

/* After a settle: queues the run of the continuations of the promise at
 * idx (anchored by the queue until then). */
static void settled(lua_State *L, lpromise *lp, int idx) {
  int kind = lua_getiuservalue(L, idx, UV_CONTS);
  if (kind == LUA_TUSERDATA) {
    /* The common case, a single awaiting task: queue its resume directly
     * (the same place in the queue, one hop fewer). */
    lpromise *t = lua_touserdata(L, -1);
    if (t->wait == WAIT_PROMISE && t->awaiting == lp) {
      lua_pushnil(L);
      lua_setiuservalue(L, idx, UV_CONTS);
      t->awaiting = NULL;
      ltask_ready(L, -1, idx);
      lua_pop(L, 1);
      return;
    }
  }
  if (kind != LUA_TNIL) {
    lua_pushlightuserdata(L, (void *)&conts_marker);
    enqueue(L, lp->st, idx, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

int ltask_fulfil(lua_State *L, int idx, int first, int n) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->state != PENDING) return 0;
  idx = lua_absindex(L, idx);
  first = lua_absindex(L, first);
  if (n == 1) {
    lua_pushvalue(L, first);
    lua_setiuservalue(L, idx, UV_OUTCOME);
  } else if (n > 1) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_pushvalue(L, first + i);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setiuservalue(L, idx, UV_OUTCOME);
  }
  lp->nvals = n;
  lp->state = FULFILLED;
  settled(L, lp, idx);
  return 1;
}

int ltask_fail(lua_State *L, int idx, int err, int state) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->state != PENDING) return 0;
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, err);
  lua_setiuservalue(L, idx, UV_OUTCOME);
  lp->state = state;
  lp->cancelling = 0;
  if (state == REJECTED && !lp->handled) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &unhandled_key);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    /* Reported when the run queue has drained, unless handled by then. */
    lp->st->unhandled_new = 1;
    queue_drain(lp->st);
  }
  if (lp->stops_run && lp->st->running) weft_loop_stop(lp->st->loop);
  settled(L, lp, idx);
  return 1;
}

/* Pushes the settled promise at idx's outcome as ok, values... or
 * false, err; returns how many values it pushed. */
static int push_outcome(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  int n = lp->nvals, t;
  if (lp->state != FULFILLED) {
    lua_pushboolean(L, 0);
    lua_getiuservalue(L, idx, UV_OUTCOME);
    return 2;
  }
  lua_pushboolean(L, 1);
  if (n == 0) return 1;
  lua_getiuservalue(L, idx, UV_OUTCOME);
  if (n == 1) return 2;
  t = lua_gettop(L);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i);
  lua_remove(L, t);
  return n + 1;
}

int ltask_deliver(lua_State *L, int idx) {
  int n;
  mark_handled(L, lua_touserdata(L, idx), idx);
  n = push_outcome(L, idx);
  if (!lua_toboolean(L, -n)) return lua_error(L);
  lua_remove(L, -n);
  return n - 1;
}

/* Settles the promise at target like the promise at src (a consumer of a
 * cancelled promise ends cancelled). */
static void settle_like(lua_State *L, int target, int src) {
  int top = lua_gettop(L), n;
  lpromise *sp = lua_touserdata(L, src);
  target = lua_absindex(L, target);
  n = push_outcome(L, src);
  if (lua_toboolean(L, top + 1))
    ltask_fulfil(L, target, top + 2, n - 1);
  else
    ltask_fail(L, target, top + 2,
               sp->state == CANCELLED ? CANCELLED : REJECTED);
  lua_settop(L, top);
}

void ltask_end_cancel(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  lua_getiuservalue(L, idx, UV_OUTCOME);
  ltask_fail(L, idx, -1, lp->timed_out ? REJECTED : CANCELLED);
  lua_pop(L, 1);
}

/* ---- tasks --------------------------------------------------------------- */

void ltask_ready(lua_State *L, int idx, int src) {
  lpromise *t = lua_touserdata(L, idx);
  t->wait = WAIT_QUEUED;
  enqueue(L, t->st, idx, src);
}

void ltask_push_tasks(lua_State *L, lweft_state *st) {
  if (st) lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_tasks);
  else lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
}

lpromise *ltask_push_running_task(lua_State *L, lweft_state *st) {
  weft_fiber_t *cf;
  ltask_push_tasks(L, st);
  lua_pushthread(L);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return lua_touserdata(L, -1);
  }
  lua_pop(L, 2);
  /* Any thread running on a stackful task's C stack belongs to it. */
  cf = weft_fiber_current();
  if (!cf) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &fibertasks_key);
  if (lua_rawgetp(L, -1, cf) != LUA_TUSERDATA) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

/* How many coroutines of finished tasks are kept for new tasks. */
#define MAX_IDLE 256

lua_State *ltask_task_thread(lua_State *L, lweft_state *st) {
  if (st->nidle == 0) return lua_newthread(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_idle);
  lua_rawgeti(L, -1, st->nidle);
  lua_pushnil(L);
  lua_rawseti(L, -3, st->nidle--);
  lua_remove(L, -2);
  return lua_tothread(L, -1);
}

/* Keeps the coroutine co of the default task at idx, which returned (or
 * never started), for a later task: it is as good as new. */
static void keep_thread(lua_State *L, lweft_state *st, int idx, lua_State *co) {
  if (st->nidle >= MAX_IDLE || lua_status(co) != LUA_OK) return;
  lua_settop(co, 0); /* one that never started still holds fn and args */
  lua_sethook(co, NULL, 0, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_idle);
  lua_getiuservalue(L, idx, UV_CO);
  lua_rawseti(L, -2, ++st->nidle);
  lua_pop(L, 1);
}

/* The task's function ended: settles its promise, reports a deferred
 * task's error, and lets its coroutine go. */
static void finished(lua_State *L, int idx, int status, lua_State *co,
                     int nres) {
  lpromise *t = lua_touserdata(L, idx);
  t->done = 1;
  if (status == LUA_OK) {
    if (t->cancelling) { /* it returned after its cancellation */
      lua_pop(co, nres);
      ltask_end_cancel(L, idx);
    } else {
      luaL_checkstack(L, nres, "too many results");
      lua_xmove(co, L, nres);
      ltask_fulfil(L, idx, lua_gettop(L) - nres + 1, nres);
      lua_pop(L, nres);
    }
  } else {
    lua_xmove(co, L, 1);
    /* (task_msgh added the traceback where the error was raised.)  A task
     * body's protected call closed the function's <close> variables; what
     * else the coroutine holds is closed here. */
    if (lua_status(co) != LUA_OK) lweft_closethread(co, L);
    if (ltask_error_kind_is(L, -1, "cancelled")) {
      /* Ended by a cancellation, its own or one it awaited: cancelled. */
      if (t->cancelling) ltask_end_cancel(L, idx);
      else ltask_fail(L, idx, -1, CANCELLED);
      lua_pop(L, 1);
    } else {
      if (t->defer) t->handled = 1; /* its error goes to the handler */
      if (ltask_fail(L, idx, -1, REJECTED) && t->defer)
        lweft_callback_error(L, t->st); /* pops the error */
      else
        lua_pop(L, 1);
    }
  }
  if (!t->cf) keep_thread(L, t->st, idx, co); /* if it can be reused */
  /* (Its entry in the weak task table goes with the coroutine, or the
   * coroutine's next task replaces it.) */
  lua_pushnil(L);
  lua_setiuservalue(L, idx, UV_CO);
  if (t->cf) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &fibertasks_key);
    lua_pushnil(L);
    lua_rawsetp(L, -2, t->cf);
    lua_pop(L, 1);
    weft_fiber_free(t->cf);
    t->cf = NULL;
  }
}

/* Message handler of a task's function: adds the traceback while the
 * failing frames still exist (less task_body's own frame at the bottom,
 * which tells a reader nothing). */
static int task_msgh(lua_State *L) {
  static const char body[] = "\n\t[C]: in ?";
  size_t n;
  const char *tb;
  if (lua_type(L, 1) != LUA_TSTRING) return 1;
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  tb = lua_tolstring(L, -1, &n);
  if (n >= sizeof body - 1 && memcmp(tb + n - (sizeof body - 1), body,
                                     sizeof body - 1) == 0)
    lua_pushlstring(L, tb, n - (sizeof body - 1));
  return 1;
}

/* task_body's continuation: pushes true, fn's results or false, its error
 * (above the message handler at 1, which goes). */
static int task_body_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_pushboolean(L, 1);
    lua_replace(L, 1);
    return lua_gettop(L);
  }
  lua_pushboolean(L, 0);
  lua_replace(L, 1); /* false, err */
  lua_settop(L, 2);
  return 2;
}

/* The body of a default task's coroutine, called with task_msgh, fn and
 * fn's arguments: fn(...) under a yieldable protected call.  An error, a
 * cancellation among them, then unwinds the function inside the
 * coroutine, where Lua closes its <close> variables in a mode that lets
 * them wait: a graceful goodbye under weft.shield.  (Raised out of the
 * coroutine instead, they would be closed by lua_closethread, from C,
 * where nothing can wait.) */
static int task_body(lua_State *L) {
  return task_body_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0,
                                   task_body_k),
                     0);
}

/* The fiber of a stackful task: runs the function (on the task's thread,
 * which holds it and its arguments) under a protected call. */
static void *stackful_main(weft_fiber_t *cf, void *arg) {
  lpromise *t = arg;
  lua_State *T = t->susp;
  int n = lua_gettop(T) - 1;
  (void)cf;
  lua_pushcfunction(T, task_msgh);
  lua_insert(T, 1);
  t->fstatus = lua_pcall(T, n, LUA_MULTRET, 1);
  lua_remove(T, 1);
  return NULL;
}

/* Pushes what the task t at idx is resumed with: the outcome of the
 * promise at src (true if there is none), or its own cancellation if one
 * is due.  Returns how many values. */
static int push_wake(lua_State *L, lpromise *t, int idx, int src) {
  if (t->cancel_raise) { /* deliver the cancellation instead */
    t->cancel_raise = 0;
    src = idx;
  }
  if (ltask_test_promise(L, src)) return push_outcome(L, src);
  lua_pushboolean(L, 1);
  return 1;
}

/* Resumes a stackful task: its values go to the thread that waits. */
static void resume_stackful(lua_State *L, int idx, int src, lua_State *co) {
  lpromise *t = lua_touserdata(L, idx);
  int nargs;
  if (!t->started) {
    t->started = 1;
    t->susp = co;
  } else {
    nargs = push_wake(L, t, idx, src);
    lua_xmove(L, t->susp, nargs);
  }
  t->in_gc = lweft_in_finalizer(L);
  weft_fiber_resume(t->cf, NULL, NULL);
  if (weft_fiber_status(t->cf) == WEFT_FIBER_TERMINATED)
    finished(L, idx, t->fstatus, co, t->fstatus == LUA_OK ? lua_gettop(co) : 1);
}

/* Resumes the task at idx with the outcome of the promise at src (false or
 * nil there: with true). */
static void resume_task(lua_State *L, int idx, int src) {
  lpromise *t = lua_touserdata(L, idx);
  lweft_state *st = t->st;
  lua_State *co, *drained;
  int status, nres, nargs;
  idx = lua_absindex(L, idx);
  src = lua_absindex(L, src);
  if (t->done || lua_getiuservalue(L, idx, UV_CO) != LUA_TTHREAD) {
    lua_pop(L, 1);
    return;
  }
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  t->wait = WAIT_NONE;
  if (!t->started && t->state == CANCELLED) { /* cancelled before it ran */
    finished(L, idx, LUA_OK, co, 0);
    return;
  }
  if (t->cf) {
    resume_stackful(L, idx, src, co);
    return;
  }
  if (!t->started) {
    t->started = 1;
    nargs = lua_gettop(co) - 1; /* it holds (task_body,) fn and its args */
  } else {
    nargs = push_wake(L, t, idx, src);
    lua_xmove(L, co, nargs);
  }
  /* A task the drain resumes may run the queue when it waits (handoff);
   * one that such a task runs may not. */
  drained = st->drained;
  if (!st->hosting) st->drained = co;
  status = lua_resume(co, L, nargs, &nres);
  st->drained = drained;
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    /* A plain coroutine.yield in a task: run again in the next turn. */
    if (t->wait == WAIT_NONE) ltask_ready(L, idx, 0);
    return;
  }
  if (status == LUA_OK) { /* task_body returned ok, values... */
    if (!lua_toboolean(co, -nres)) status = LUA_ERRRUN;
    nres--; /* (the flag stays below them, dropped with the coroutine) */
  }
  finished(L, idx, status, co, nres);
}

/* Runs the head of the run queue on the waiting task t's own stack, as the
 * drain would have, until t's own wake-up comes to the head: then t goes
 * on without a switch.  Arguments: t.  Returns the values t is woken with,
 * or nothing if the queue ran out or reached an entry that only the drain
 * runs. */
static int handoff_protected(lua_State *L) {
  lpromise *t = lua_touserdata(L, 1);
  lweft_state *st = t->st;
  while (st->fifo_n > 0 && st->budget > 0) {
    lpromise *next;
    lua_settop(L, 1);
    peek(L, st); /* 2 table, 3 and 4 the pair */
    next = lua_touserdata(L, 3);
    if (next == t) {
      drop_head(L, st, 2);
      t->wait = WAIT_NONE;
      return push_wake(L, t, 3, 4);
    }
    if (lua_touserdata(L, 4) == &conts_marker || next->cf) return 0;
    st->budget--;
    drop_head(L, st, 2);
    resume_task(L, 3, 4);
  }
  return 0;
}

int ltask_handoff(lua_State *L, lpromise *t) {
  lweft_state *st = t->st;
  int top = lua_gettop(L), n;
  if (st->drained != L || st->hosting || st->fifo_n == 0) return -1;
  if (!lua_checkstack(L, LUA_MINSTACK)) return -1;
  st->hosting = 1;
  lua_pushcfunction(L, handoff_protected);
  lua_pushlightuserdata(L, t);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    lweft_callback_error(L, st);
    lua_settop(L, top);
  }
  st->hosting = 0;
  n = lua_gettop(L) - top;
  return n > 0 ? n : -1;
}

lpromise *ltask_spawn(lua_State *L, lweft_state *st, int fnidx, int n,
                      size_t stackful) {
  lpromise *t;
  lua_State *co;
  int p;
  fnidx = lua_absindex(L, fnidx);
  t = ltask_new_promise(L, st, UV_COUNT);
  p = lua_gettop(L);
  t->is_task = 1;
  t->id = ++task_count;
  {
    lua_Debug ar; /* where it was spawned, formatted only if reported */
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "fl", &ar)) {
      lua_setiuservalue(L, p, UV_WHERE);
      t->line = ar.currentline;
    }
  }
  co = ltask_task_thread(L, st);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_tasks);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, p);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_setiuservalue(L, p, UV_CO);
  if (stackful) {
    int err = weft_fiber_new(stackful_main, t, stackful, &t->cf);
    if (err) luaL_error(L, "spawn: %s", weft_strerror(err));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &fibertasks_key);
    lua_pushvalue(L, p);
    lua_rawsetp(L, -2, t->cf);
    lua_pop(L, 1);
  }
  /* The coroutine holds the function and its arguments until it starts
   * (a default task's under task_body). */
  lua_rotate(L, fnidx, -(n + 1)); /* promise first, then fn and args */
  if (!stackful) {
    lua_pushcfunction(co, task_body);
    lua_pushcfunction(co, task_msgh);
  }
  lua_xmove(L, co, n + 1);
  ltask_ready(L, fnidx, 0);
  lua_settop(L, fnidx);
  return t;
}

/* ---- the table of I/O waits ------------------------------------------------ */

void ltask_io_keep(lua_State *L, lweft_state *st, lweft_iowait *w) {
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
  w->ref = st->io_free[--st->io_nfree];
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

/* Ends a suspended task's delay timer (and what anchors the task to it). */
static void drop_timer(lua_State *L, lpromise *t) {
  if (t->timer) lweft_cancel(L, t->st, t->timer);
  t->timer = 0;
}

/* ---- cancellation ------------------------------------------------------------ */

/* Whether the consumer at vidx of the promise at p (an awaiting task, or a
 * continuation entry whose target is pending) still waits for it, unless
 * it settles the promise at except. */
static int still_consumes(lua_State *L, int vidx, int p, int except) {
  int live;
  if (lua_type(L, vidx) == LUA_TUSERDATA) {
    lpromise *t = lua_touserdata(L, vidx);
    return t->wait == WAIT_PROMISE && t->awaiting == lua_touserdata(L, p);
  }
  if (!lua_istable(L, vidx)) return 0;
  if (lua_rawgeti(L, vidx, 1) == LUA_TNUMBER &&
      lua_tointeger(L, -1) == K_HOST) { /* a host waits for it */
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  if (lua_rawgeti(L, vidx, 4) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return 0;
  }
  live = !lua_rawequal(L, -1, except) &&
         ((lpromise *)lua_touserdata(L, -1))->state == PENDING;
  lua_pop(L, 1);
  return live;
}

/* Whether anything but the promise at except awaits or chains the promise
 * at p. */
static int consumed_by_others(lua_State *L, int p, int except) {
  int found = 0, kind;
  p = lua_absindex(L, p);
  except = lua_absindex(L, except);
  kind = lua_getiuservalue(L, p, UV_CONTS);
  if (kind == LUA_TUSERDATA) {
    found = still_consumes(L, -1, p, except);
  } else if (kind == LUA_TTABLE) {
    int list = lua_gettop(L), n = (int)lua_rawlen(L, list);
    for (int i = 1; i <= n && !found; i++) {
      lua_rawgeti(L, list, i);
      found = still_consumes(L, lua_gettop(L), p, except);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return found;
}

void ltask_own_wait(lua_State *L, int tidx, int pidx) {
  tidx = lua_absindex(L, tidx);
  pidx = lua_absindex(L, pidx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &own_waits_key);
  lua_pushvalue(L, tidx);
  lua_pushvalue(L, pidx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The task at idx, cancelled while it awaits the timeout its await made
 * (weft.await(p, ms)), gives that up as any timeout gives up: it is
 * cancelled, which cancels p, and the task is resumed with its own
 * cancellation once p has ended; left pending, its timer would keep the
 * loop alive, and cancel p, long after the task had gone.  Returns 0 if
 * the task awaits something else. */
static int cancel_own_wait(lua_State *L, lpromise *t, int idx) {
  lpromise *w;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &own_waits_key);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  w = lua_touserdata(L, -1);
  /* (A timeout that ran out already, or on the task itself, waits for the
   * task: the task must raise instead.) */
  if (w && w == t->awaiting && w->state == PENDING && !w->cancelling) {
    lua_getiuservalue(L, -1, UV_SRC);
    if (lua_rawequal(L, -1, idx)) w = NULL;
    lua_pop(L, 1);
  } else {
    w = NULL;
  }
  if (!w) {
    lua_pop(L, 2);
    return 0;
  }
  t->cancel_raise = 1; /* (resumed from the timeout's settling) */
  lua_getiuservalue(L, idx, UV_OUTCOME); /* the task's cancellation */
  ltask_cancel(L, -2, -1);
  lua_pop(L, 3);
  return 1;
}

/* Raises the cancellation in the task at idx: at its pending wait (which
 * is withdrawn), or at its queued resume; a running task meets it at its
 * next wait. */
static void interrupt(lua_State *L, lpromise *t, int idx) {
  if (t->wait == WAIT_PROMISE && cancel_own_wait(L, t, idx)) {
    /* it waits on until the timeout has ended */
  } else if (t->wait == WAIT_IO) {
    void (*withdraw)(lua_State *, void *) = t->io_cancel;
    t->io_cancel = NULL;
    if (t->io_wait) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->st->ref_io_waits);
      ltask_io_unkeep(L, t, lua_gettop(L));
      lua_pop(L, 1);
    }
    if (withdraw) withdraw(L, t->io_data);
    ltask_ready(L, idx, idx); /* resumed with its own outcome: the cancellation */
  } else if (t->wait == WAIT_PROMISE || t->wait == WAIT_TIMER) {
    drop_timer(L, t);
    t->awaiting = NULL;
    ltask_ready(L, idx, idx);
  } else if (t->wait == WAIT_QUEUED) {
    t->cancel_raise = 1;
  }
}

/* Cancels what the cancelling derived promise at idx waits on, with the
 * error at err; settles it at once if nothing it cancelled is still
 * pending (else the continuation it has on each source settles it). */
static void cancel_sources(lua_State *L, lpromise *lp, int idx, int err) {
  int top = lua_gettop(L), src, waits = 0;
  lua_getiuservalue(L, idx, UV_SRC);
  src = lua_gettop(L);
  if (lp->derived == D_HOST) {
    void *bridge = lua_touserdata(L, src);
    waits = lweft_hostlink_of(bridge)->cancel(bridge);
  } else if (lp->derived == D_COMB) {
    int n;
    lua_getfield(L, src, "inputs");
    n = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, src + 1, i);
      ltask_cancel(L, -1, err);
      if (((lpromise *)lua_touserdata(L, -1))->state == PENDING) waits = 1;
      lua_pop(L, 1);
    }
  } else if (((lpromise *)lua_touserdata(L, src))->state == PENDING) {
    /* A chain gives up on a source others still use (settling at once);
     * a timeout owns its source. */
    if (lp->derived == D_TIMEOUT || !consumed_by_others(L, src, idx)) {
      ltask_cancel(L, src, err);
      waits = ((lpromise *)lua_touserdata(L, src))->state == PENDING;
    }
  }
  lua_settop(L, top);
  if (!waits) ltask_end_cancel(L, idx);
}

int ltask_cancel(lua_State *L, int idx, int err) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp->state != PENDING || lp->cancelling) return 0;
  idx = lua_absindex(L, idx);
  err = lua_absindex(L, err);
  if (lp->is_task ? !lp->started : lp->derived == D_NONE) {
    ltask_fail(L, idx, err, CANCELLED);
    return 1;
  }
  lua_pushvalue(L, err);
  lua_setiuservalue(L, idx, UV_OUTCOME);
  lp->cancelling = 1;
  if (!lp->is_task) cancel_sources(L, lp, idx, err);
  else if (!lp->shield) interrupt(L, lp, idx);
  return 1;
}

/* A combinator at result (its state at state) has decided: its inputs
 * still pending that nothing else awaits or chains are cancelled. */
static void cancel_unwanted(lua_State *L, int state, int result) {
  int n, list;
  lua_getfield(L, state, "inputs");
  list = lua_gettop(L);
  n = (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    lpromise *in;
    lua_rawgeti(L, list, i);
    in = lua_touserdata(L, -1);
    if (in->state == PENDING && !in->cancelling &&
        !consumed_by_others(L, -1, result)) {
      ltask_push_error(L, "cancelled", 0);
      ltask_cancel(L, -2, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- continuations --------------------------------------------------------- */

void ltask_push_cont(lua_State *L, int idx, int vidx) {
  lpromise *lp = lua_touserdata(L, idx);
  int had;
  idx = lua_absindex(L, idx);
  vidx = lua_absindex(L, vidx);
  mark_handled(L, lp, idx);
  had = lua_getiuservalue(L, idx, UV_CONTS);
  if (had == LUA_TNIL && lua_type(L, vidx) == LUA_TUSERDATA) {
    lua_pushvalue(L, vidx);
    lua_setiuservalue(L, idx, UV_CONTS);
  } else {
    if (had != LUA_TTABLE) { /* none yet, or a single task: make the list */
      lua_createtable(L, 2, 0);
      if (had == LUA_TUSERDATA) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, 1);
      }
      lua_remove(L, -2);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, idx, UV_CONTS);
    }
    lua_pushvalue(L, vidx);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  lua_pop(L, 1);
  if (had == LUA_TNIL && lp->state != PENDING) { /* settled: run from the loop */
    lua_pushlightuserdata(L, (void *)&conts_marker);
    enqueue(L, lp->st, idx, -1);
    lua_pop(L, 1);
  }
}

/* Adds { kind, a, b, target } (indices; 0 = nil) to the promise at idx. */
static void add_cont(lua_State *L, int idx, int kind, int a, int b,
                     int target) {
  idx = lua_absindex(L, idx);
  a = a ? lua_absindex(L, a) : 0;
  b = b ? lua_absindex(L, b) : 0;
  target = lua_absindex(L, target);
  lua_createtable(L, 4, 0);
  lua_pushinteger(L, kind);
  lua_rawseti(L, -2, 1);
  if (a) lua_pushvalue(L, a), lua_rawseti(L, -2, 2);
  if (b) lua_pushvalue(L, b), lua_rawseti(L, -2, 3);
  lua_pushvalue(L, target);
  lua_rawseti(L, -2, 4);
  ltask_push_cont(L, idx, -1);
  lua_pop(L, 1);
}

/* Pushes the values of the fulfilled promise at p as a list { ..., n }. */
static void push_values_list(lua_State *L, int p) {
  int n = push_outcome(L, p) - 1, t;
  lua_createtable(L, n, 1);
  t = lua_gettop(L);
  for (int i = n; i >= 1; i--) {
    lua_pushvalue(L, t - n + i - 1);
    lua_rawseti(L, t, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, t, "n");
  lua_replace(L, t - n - 1); /* over the ok flag */
  lua_settop(L, t - n - 1);
}

/* One input of a combinator settled.  The entry at e is { K_COMB, state,
 * index, result }; state is { kind, n, left, results }. */
static void comb_input(lua_State *L, int p, int e, int result) {
  lpromise *in = lua_touserdata(L, p), *out = lua_touserdata(L, result);
  int top = lua_gettop(L), state, kind, left, index, ok;
  lua_rawgeti(L, e, 2);
  state = lua_gettop(L);
  lua_rawgeti(L, e, 3);
  index = (int)lua_tointeger(L, -1);
  lua_getfield(L, state, "kind");
  kind = (int)lua_tointeger(L, -1);
  lua_getfield(L, state, "left");
  left = (int)lua_tointeger(L, -1) - 1;
  lua_pushinteger(L, left);
  lua_setfield(L, state, "left");
  ok = in->state == FULFILLED;
  if (out->state == PENDING && out->cancelling) {
    if (left == 0) ltask_end_cancel(L, result); /* every input has ended */
  } else if (out->state == PENDING) {
    if (kind == C_RACE || (kind == C_ANY && (ok || left == 0)) ||
        (kind == C_ALL && !ok)) {
      settle_like(L, result, p);
      cancel_unwanted(L, state, result); /* the losers of a race stop */
    } else if (kind == C_ALL || kind == C_SETTLE) {
      lua_getfield(L, state, "results");
      if (ok) {
        push_values_list(L, p);
        if (kind == C_SETTLE) {
          lua_pushboolean(L, 1);
          lua_setfield(L, -2, "ok");
        }
      } else { /* settle: { ok = false, err = e } */
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "ok");
        lua_getiuservalue(L, p, UV_OUTCOME);
        lua_setfield(L, -2, "err");
      }
      lua_rawseti(L, -2, index);
      if (left == 0) ltask_fulfil(L, result, -1, 1);
    }
  }
  lua_settop(L, top);
}

/* The handler of the chain at target returned the promise at r: target
 * follows it.  Resolved with itself, or with a promise that waits on it
 * (through up to 64 links of chains and timeouts), target could never
 * settle: it is rejected instead. */
static void follow(lua_State *L, int r, int target) {
  int top = lua_gettop(L), cur = lua_absindex(L, r), self, cycle;
  target = lua_absindex(L, target);
  self = cycle = lua_rawequal(L, cur, target);
  for (int i = 0; i < 64 && !cycle; i++) {
    lpromise *cp = lua_touserdata(L, cur);
    if (cp->state != PENDING ||
        (cp->derived != D_CHAIN && cp->derived != D_TIMEOUT))
      break;
    lua_getiuservalue(L, cur, UV_SRC);
    cur = lua_gettop(L);
    cycle = lua_rawequal(L, cur, target);
  }
  lua_settop(L, top);
  if (cycle) {
    lua_pushstring(L, self ? "promise resolved with itself"
                           : "promise resolved with a promise that waits on it");
    ltask_fail(L, target, -1, REJECTED);
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, r);
  lua_setiuservalue(L, target, UV_SRC); /* what cancelling target cancels */
  add_cont(L, r, K_NEXT, 0, 0, target);
}

/* Runs one entry (at e) of the settled promise at p.  An entry whose target
 * was cancelled meanwhile runs no handler (but a finally's), and settles
 * a target still cancelling. */
static void run_entry(lua_State *L, int p, int e) {
  lpromise *lp = lua_touserdata(L, p), *tp;
  int top = lua_gettop(L), target = top + 1, kind, fn, n;
  lua_rawgeti(L, e, 4); /* target */
  tp = lua_touserdata(L, target);
  lua_rawgeti(L, e, 1);
  kind = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (kind == K_TIMEOUT) {
    lua_rawgeti(L, e, 2); /* the timer's id */
    lweft_cancel(L, lp->st, (weft_id_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
  }
  if (kind == K_HOST) {
    lua_rawgeti(L, e, 2);
    void *bridge = lua_touserdata(L, -1);
    lweft_hostlink_of(bridge)->report(L, p, bridge);
  } else if (kind == K_COMB) {
    comb_input(L, p, e, target);
  } else if (kind == K_FINALLY) {
    /* It runs whatever the outcome, the chain's cancellation included. */
    lua_rawgeti(L, e, 2);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      if (tp->state == PENDING) ltask_fail(L, target, -1, REJECTED);
      else lweft_callback_error(L, lp->st); /* nobody else would see it */
    } else if (tp->cancelling) {
      ltask_end_cancel(L, target);
    } else {
      settle_like(L, target, p);
    }
  } else if (tp->state != PENDING) {
    /* cancelled while p was pending: its handler never runs */
  } else if (tp->cancelling) {
    ltask_end_cancel(L, target);
  } else if (kind == K_TIMEOUT || lp->state == CANCELLED ||
             lua_rawgeti(L, e, lp->state == FULFILLED ? 2 : 3) == LUA_TNIL) {
    settle_like(L, target, p); /* no handler: pass the outcome on */
  } else {
    fn = lua_gettop(L);
    n = push_outcome(L, p) - 1;
    lua_remove(L, fn + 1); /* the ok flag */
    if (lua_pcall(L, n, LUA_MULTRET, 0) != LUA_OK)
      ltask_fail(L, target, -1, REJECTED);
    else if (lua_gettop(L) == fn && ltask_test_promise(L, fn))
      follow(L, fn, target);
    else
      ltask_fulfil(L, target, fn, lua_gettop(L) - fn + 1);
  }
  lua_settop(L, top);
}

/* Runs the continuations of the settled promise at p, in order. */
static void run_conts(lua_State *L, int p) {
  int list, n, single;
  p = lua_absindex(L, p);
  single = lua_getiuservalue(L, p, UV_CONTS) == LUA_TUSERDATA;
  if (!single && !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  list = lua_gettop(L);
  lua_pushnil(L);
  lua_setiuservalue(L, p, UV_CONTS);
  n = single ? 1 : (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    if (single) lua_pushvalue(L, list);
    else lua_rawgeti(L, list, i);
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      /* An awaiting task, unless its wait was withdrawn meanwhile. */
      lpromise *t = lua_touserdata(L, -1);
      if (t->wait == WAIT_PROMISE && t->awaiting == lua_touserdata(L, p)) {
        t->awaiting = NULL;
        ltask_ready(L, -1, p);
      }
    } else {
      run_entry(L, p, lua_gettop(L));
    }
    lua_pop(L, 1);
  }
  lua_settop(L, list - 1);
}

/* ---- promise methods ----------------------------------------------------- */

static int lw_promise(lua_State *L) {
  ltask_new_promise(L, lweft_state_of(L), UV_PLAIN);
  return 1;
}

static int lw_p_resolve(lua_State *L) {
  ltask_check_promise(L, 1);
  lua_pushboolean(L, ltask_fulfil(L, 1, 2, lua_gettop(L) - 1));
  return 1;
}

static int lw_p_reject(lua_State *L) {
  ltask_check_promise(L, 1);
  lweft_checkany(L, 2, NULL);
  lua_pushboolean(L, ltask_fail(L, 1, 2, REJECTED));
  return 1;
}

static int lw_p_cancel(lua_State *L) {
  ltask_check_promise(L, 1);
  lua_settop(L, 2);
  ltask_push_error(L, "cancelled", 2);
  lua_pushboolean(L, ltask_cancel(L, 1, 3));
  return 1;
}

static int lw_p_status(lua_State *L) {
  lua_pushstring(L, state_names[ltask_check_promise(L, 1)->state]);
  return 1;
}

static void check_handler(lua_State *L, int idx) {
  if (!lua_isnoneornil(L, idx) && !lua_isfunction(L, idx))
    lweft_typeerror(L, idx, NULL, "function or nil");
}

int ltask_chain(lua_State *L, int kind, int a, int b) {
  lpromise *lp = lua_touserdata(L, 1);
  ltask_new_promise(L, lp->st, UV_DERIVED)->derived = D_CHAIN;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_SRC);
  add_cont(L, 1, kind, a, b, lua_gettop(L));
  return 1;
}

static int lw_p_next(lua_State *L) {
  ltask_check_promise(L, 1);
  check_handler(L, 2);
  check_handler(L, 3);
  lua_settop(L, 3);
  return ltask_chain(L, K_NEXT, lua_isnil(L, 2) ? 0 : 2,
                     lua_isnil(L, 3) ? 0 : 3);
}

static int lw_p_catch(lua_State *L) {
  ltask_check_promise(L, 1);
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  lua_settop(L, 2);
  return ltask_chain(L, K_NEXT, 0, 2);
}

static int lw_p_finally(lua_State *L) {
  ltask_check_promise(L, 1);
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  lua_settop(L, 2);
  return ltask_chain(L, K_FINALLY, 2, 0);
}

static int lw_p_tostring(lua_State *L) {
  lpromise *lp = ltask_check_promise(L, 1);
  if (lp->is_task) {
    ltask_push_task_name(L, lp, 1);
    lua_pushfstring(L, "weft.task %s (%s)", lua_tostring(L, -1),
                    state_names[lp->state]);
  } else {
    lua_pushfstring(L, "weft.promise (%s)", state_names[lp->state]);
  }
  return 1;
}

/* Continuation of a task's await or delay: it was resumed with ok, ... */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  if (!lua_toboolean(L, 1)) return lua_error(L);
  return lua_gettop(L) - 1;
}

int ltask_suspend_task(lua_State *L, lpromise *t) {
  lua_settop(L, 0);
  if (t->done) /* being collected: it can never be woken */
    return luaL_error(L, "task collected while suspended");
  if (t->cf) {
    t->susp = L;
    weft_fiber_suspend(NULL, NULL);
    return wait_k(L, LUA_OK, 0); /* the resume pushed ok, values... */
  }
  if (ltask_handoff(L, t) >= 0) return wait_k(L, LUA_YIELD, 0);
  lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
  return lua_yieldk(L, 1, 0, wait_k);
}

void ltask_check_yieldable(lua_State *L, lpromise *t, const char *fname) {
  if (t->cf ? t->in_gc || !lweft_in_finalizer(L) : lua_isyieldable(L))
    return;
  fname = lweft_public_name(L, fname);
  if (lweft_in_finalizer(L))
    lweft_error(L, "%s: a task cannot suspend inside a __gc finalizer", fname);
  lweft_error(L, "%s: a default task cannot suspend inside a C call here "
                "(a table.sort comparator, a gsub callback, a metamethod); "
                "a stackful task can: weft.spawn({stackful = true}, fn)",
             fname);
}

void ltask_check_cancel(lua_State *L, lpromise *t, int tidx) {
  if (!t->cancelling || t->shield) return;
  lua_getiuservalue(L, tidx, UV_OUTCOME);
  lua_error(L);
}

void ltask_run_until_settled(lua_State *L, lweft_state *st, int idx,
                              const char *fname) {
  lpromise *lp = lua_touserdata(L, idx);
  mark_handled(L, lp, idx); /* its outcome is ours, whenever it comes */
  while (lp->state == PENDING) {
    int r = lweft_run_once(L, st, fname);
    if (r == 0 && lp->state == PENDING)
      lweft_error(L, "%s: the promise can never settle: nothing left to run",
                  lweft_public_name(L, fname));
  }
}

/* __index: t.name for tasks, else the methods (upvalue 1). */
static int lw_p_index(lua_State *L) {
  lpromise *lp = lua_touserdata(L, 1);
  const char *key = lua_tostring(L, 2);
  if (key && lp->is_task && strcmp(key, "name") == 0) {
    ltask_push_task_name(L, lp, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

lua_State *ltask_suspended_co(lua_State *L, lpromise *t, int idx) {
  lua_State *co;
  if (!t->is_task || t->done || !t->started) return NULL;
  if (lua_getiuservalue(L, idx, UV_CO) != LUA_TTHREAD) {
    lua_pop(L, 1);
    return NULL;
  }
  co = lua_tothread(L, -1);
  if (t->cf) { /* stackful: frozen mid-call in the thread that waits */
    if (weft_fiber_status(t->cf) == WEFT_FIBER_SUSPENDED && t->susp)
      return t->susp;
    lua_pop(L, 1);
    return NULL;
  }
  /* (A task that runs the queue while it waits is suspended too.) */
  if (lua_status(co) != LUA_YIELD && !(t->st->hosting && co == t->st->drained)) {
    lua_pop(L, 1);
    return NULL;
  }
  return co;
}

int lweft_spawn(lua_State *L, lweft_state *st, int fnidx, int n) {
  ltask_spawn(L, st, fnidx, n, 0);
  return 1;
}

void lweft_mark_run_task(lua_State *L, int idx) {
  lpromise *t = ltask_check_promise(L, idx);
  mark_handled(L, t, idx);
  t->stops_run = 1;
}

int lweft_promise_failed(lua_State *L, int idx) {
  lpromise *lp = ltask_test_promise(L, idx);
  return lp && (lp->state == REJECTED || lp->state == CANCELLED);
}

int lweft_settled_results(lua_State *L, int idx, const char *fname) {
  lpromise *t = ltask_check_promise(L, idx);
  if (t->state == PENDING)
    return lweft_error(L, "%s: the task never finished: it waits on something "
                          "nothing is left to settle",
                       lweft_public_name(L, fname));
  return ltask_deliver(L, idx);
}

int lweft_settle(lua_State *L, int idx, int n) {
  int r;
  idx = lua_absindex(L, idx);
  if (!ltask_test_promise(L, idx)) {
    lua_pop(L, n < 0 ? 1 : n);
    return 0;
  }
  if (((lpromise *)lua_touserdata(L, idx))->cancelling) {
    /* cancelled while its producer ran: it ends cancelled, as it asked */
    lua_pop(L, n < 0 ? 1 : n);
    if (((lpromise *)lua_touserdata(L, idx))->state != PENDING) return 0;
    ltask_end_cancel(L, idx);
    return 1;
  }
  r = n < 0 ? ltask_fail(L, idx, -1, REJECTED)
            : ltask_fulfil(L, idx, lua_gettop(L) - n + 1, n);
  lua_pop(L, n < 0 ? 1 : n);
  return r;
}

/* ---- for the embedding API (embed.c) ------------------------------------- */

void lweft_push_host_promise(lua_State *L, lweft_state *st, void *bridge) {
  ltask_new_promise(L, st, UV_DERIVED)->derived = D_HOST;
  lua_pushlightuserdata(L, bridge);
  lua_setiuservalue(L, -2, UV_SRC);
}

void lweft_watch_for_host(lua_State *L, int idx, void *hostref) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, K_HOST);
  lua_rawseti(L, -2, 1);
  lua_pushlightuserdata(L, hostref);
  lua_rawseti(L, -2, 2);
  ltask_push_cont(L, idx, -1);
  lua_pop(L, 1);
}

int lweft_promise_state(lua_State *L, int idx) {
  lpromise *lp = ltask_test_promise(L, idx);
  return lp ? lp->state : -1;
}

int lweft_push_outcome(lua_State *L, int idx) {
  return push_outcome(L, idx);
}

void lweft_settle_cancelled(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if (lp->state != PENDING) return;
  if (lp->cancelling) {
    ltask_end_cancel(L, idx);
    return;
  }
  ltask_push_error(L, "cancelled", 0);
  ltask_fail(L, idx, -1, CANCELLED);
  lua_pop(L, 1);
}

int lweft_cancel_promise(lua_State *L, int idx) {
  int r;
  idx = lua_absindex(L, idx);
  ltask_push_error(L, "cancelled", 0);
  r = ltask_cancel(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

void ltask_add(lua_State *L, const luaL_Reg *fns, const luaL_Reg *methods,
               lua_CFunction fire, lua_CFunction where) {
  if (fns) {
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, fns, 1);
    lua_pop(L, 1);
  }
  luaL_getmetatable(L, PROMISE_MT);
  if (methods) {
    lua_getfield(L, -1, "__index");
    lua_getupvalue(L, -1, 1);
    luaL_setfuncs(L, methods, 0);
    lweft_name_funcs(L, -1);
    lua_pop(L, 2);
  }
  if (fire) {
    lua_pushcfunction(L, fire);
    lua_rawsetp(L, -2, &lweft_fire_key);
  }
  if (where) {
    lua_pushcfunction(L, where);
    lua_rawsetp(L, -2, &lweft_where_key);
  }
  lua_pop(L, 1);
}

void lweft_open_task(lua_State *L) {
  lweft_state *st = lua_touserdata(L, -1);
  static const luaL_Reg methods[] = {
      {"resolve", lw_p_resolve}, {"reject", lw_p_reject},
      {"cancel", lw_p_cancel},   {"status", lw_p_status},
      {"next", lw_p_next},       {"catch", lw_p_catch},
      {"finally", lw_p_finally}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"promise", lw_promise}, {NULL, NULL}};
  if (luaL_newmetatable(L, PROMISE_MT)) {
    lua_pushcfunction(L, lw_p_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, lw_p_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L); /* the methods: this file's and the upper files' */
    lua_pushcclosure(L, lw_p_index, 1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  ltask_add(L, fns, methods, NULL, NULL);
  lweft_class_key(L, PROMISE_MT, &promise_key);
  lweft_weak_table(L, &fibertasks_key, "v");
  lweft_weak_table(L, &unhandled_key, "k");
  lweft_weak_table(L, &own_waits_key, "kv");
  lua_newtable(L);
  st->ref_io_waits = luaL_ref(L, LUA_REGISTRYINDEX);
  lweft_weak_table(L, &tasks_key, "kv");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
  st->ref_tasks = luaL_ref(L, LUA_REGISTRYINDEX);
}
