/* task.c: weft.promise and tasks, the Lua side of the core's promises and
 * tasks (ltask.h lists the files built on it).
 *
 * A Lua promise is a userdata that holds a core promise (a task: a core
 * task) after a small header: the core holds its state and runs a task's
 * resumes, its waits and its cancellation; the Lua values (the outcome,
 * the continuations, the coroutine) are the userdata's user values, so
 * that a pending promise's continuations go with it when it becomes
 * garbage.
 *
 * The core holds a pointer: whatever it may hold (a task's queued resume,
 * a continuation a host's bridge watches) is pinned first, kept in a slot
 * of the state's table of kept values until the core lets go (its retain
 * and release hooks count on top of the pins).  A task is resumed only
 * from the core's run queue, by the resume hook (lp_resume), never from
 * inside the call that settled what it awaited; one protected call, the
 * state's guard, covers a whole pass of that queue.  An await or a delay
 * leaves what it waits on in its own frame, and reads the outcome when it
 * goes on: a wake-up carries nothing but the core's status.  A settled
 * promise's continuations run from a function queued on the same queue,
 * so the order of continuations and resumes is the queue's. */
#include "ltask.h"

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
/* (st->ref_io_waits is the table of tasks suspended in an I/O wait, each
 * in the slot its lweft_iowait notes: it is how a core callback finds the
 * task to wake, and it keeps the task (and what its stack holds, such as
 * the handle the callback points into) alive.) */
const char ltask_suspend_marker = 0;
static int task_count;

/* The registry key of the table task -> the timeout its await made for it
 * (weft.await(p, ms); weak both ways): what cancelling the task cancels. */
static const char own_waits_key = 0;

/* The registry key of the table task -> its cancellation error while it
 * runs its cleanup (weak keys): a running task's coroutine has the
 * outcome's place. */
static const char cancels_key = 0;

/* The registry key of the promise metatable (see lweft_testudata). */
static const char promise_key = 0;

lpromise *ltask_test_promise(lua_State *L, int idx) {
  return lweft_testudata(L, idx, &promise_key);
}

lpromise *ltask_check_promise(lua_State *L, int idx) {
  lpromise *p = ltask_test_promise(L, idx);
  return p ? p : lweft_checkudata(L, idx, PROMISE_MT, NULL); /* raises */
}

static const weft_host_t lua_host;

/* Pushes a new promise, or a task, whose first resume is queued at once
 * (it finds no coroutine, and does nothing, until ltask_spawn gives it
 * one). */
static lpromise *new_object(lua_State *L, lweft_state *st, int nuv,
                            int is_task) {
  lpromise *lp;
  if (!st->loop) luaL_error(L, "weft: the Lua state is closing");
  lp = lua_newuserdatauv(
      L, sizeof *lp + (is_task ? weft_task_size() : weft_promise_size()), nuv);
  memset(lp, 0, sizeof *lp);
  lp->st = st;
  lp->is_task = (unsigned)is_task;
  luaL_setmetatable(L, PROMISE_MT);
  if (!is_task) {
    weft_promise_init(LP_CORE(lp), st->loop, &lua_host, lp);
  } else {
    ltask_pin(L, -1); /* the queued resume keeps it */
    weft_task_init(LP_TASK(lp), st->loop, &lua_host, lp);
    ltask_unpin(lp);
  }
  return lp;
}

lpromise *ltask_new_promise(lua_State *L, lweft_state *st, int nuv) {
  return new_object(L, st, nuv, 0);
}

static int lw_p_gc(lua_State *L) {
  lpromise *lp = lua_touserdata(L, 1);
  if (lp_state(lp) == REJECTED && !lp->handled) ltask_report_unhandled(L, 1);
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
      LP_SUSP(lp) && !lp->done) {
    lp->done = 1; /* no wait may register anything for it any more */
    lua_pushboolean(LP_SUSP(lp), 0);
    lua_pushliteral(LP_SUSP(lp), "task collected while suspended");
    weft_fiber_resume(lp->cf, NULL, NULL);
  }
  if (lp->cf && weft_fiber_status(lp->cf) != WEFT_FIBER_RUNNING) {
    weft_fiber_free(lp->cf);
    lp->cf = NULL;
  }
  /* (A bridge holds a Lua promise it watches: only the state's close
   * frees it under the bridge.) */
  if (lp->bridged && lp->st->unwatch) lp->st->unwatch(lp->st, LP_CORE(lp));
  lp->in_fini = 1;
  if (lp->is_task) weft_task_fini(LP_TASK(lp));
  else weft_promise_fini(LP_CORE(lp));
  return 0;
}

/* The core's references: a promise it retains is pinned already (a
 * bridge's, held by the bridge's own reference, may not be). */
static void lp_retain(void *obj) {
  lpromise *lp = obj;
  lp->pins++;
  lp->st->core_refs++;
}

static void lp_release(void *obj) {
  lpromise *lp = obj;
  lp->st->core_refs--;
  ltask_unpin(lp);
}

static void lp_resume(weft_task_t *task, int status, void *obj);

/* The host of the core promises and tasks of Lua promises and tasks. */
static const weft_host_t lua_host = {sizeof(weft_host_t), lp_retain,
                                     lp_release, lp_resume};

/* ---- functions queued on the core's run queue ------------------------------ */

/* Runs the continuations of the settled promise at p (conts.c's). */
static void (*run_conts)(lua_State *L, int p);

void ltask_set_run_conts(void (*fn)(lua_State *L, int p)) { run_conts = fn; }
static void resume_task(lua_State *L, int idx, int status);

/* A run of a promise's continuations (lp: pinned until it has run), or
 * with lp NULL the report of rejections nobody handled; st is NULL once
 * the Lua state has closed (the core cannot withdraw a queued entry). */
typedef struct lqueued {
  lweft_state *st;
  lpromise *lp;
  struct lqueued *prev, *next; /* the state's queued runs */
} lqueued;

static void queued_cb(weft_loop_t *loop, void *data);

/* Queues a run of queued_cb for lp (or the report), in the run queue's
 * order among tasks' resumes. */
static void queue_run(lua_State *L, lweft_state *st, lpromise *lp) {
  lqueued *q = malloc(sizeof *q); /* not Lua's: it may outlive the state */
  if (!q) luaL_error(L, "not enough memory");
  q->st = st;
  q->lp = lp;
  q->prev = NULL;
  if (weft_loop_queue(st->loop, queued_cb, q) != 0) {
    free(q);
    luaL_error(L, "not enough memory");
  }
  q->next = st->queued;
  if (q->next) ((lqueued *)q->next)->prev = q;
  st->queued = q;
  if (lp) st->conts_queued++;
}

/* Queues the run of the continuations of the promise at idx. */
static void queue_conts(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  ltask_pin(L, idx);
  queue_run(L, lp->st, lp);
}

/* Queues the report of rejections nobody handled, unless it is queued. */
static void queue_report(lua_State *L, lweft_state *st) {
  if (st->report_queued) return;
  queue_run(L, st, NULL);
  st->report_queued = 1;
}

void lweft_forget_queued(lweft_state *st) {
  for (lqueued *q = st->queued; q; q = q->next) q->st = NULL;
  st->queued = NULL;
  if (st->guarded) weft_loop_set_guard(st->loop, NULL, st);
  st->guarded = 0;
}

/* Runs a pass of the run queue (the loop at 1). */
static int guarded_drain(lua_State *L) {
  weft_loop_drain(lua_touserdata(L, 1));
  return 0;
}

/* The loop's guard (weft_loop_set_guard): one protected call runs a whole
 * pass, so that the resumes of this state's tasks need none of their own
 * (lp_resume). */
static void guard(weft_loop_t *loop, void *data) {
  lweft_state *st = data;
  lua_State *L = st->L;
  int top;
  if (st->closing || st->in_guard || !lua_checkstack(L, 3)) {
    weft_loop_drain(loop); /* (each resume protects itself then) */
    return;
  }
  top = lua_gettop(L);
  lua_pushcfunction(L, guarded_drain);
  lua_pushlightuserdata(L, loop);
  st->in_guard = 1;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lweft_callback_error(L, st);
  st->in_guard = 0;
  lua_settop(L, top);
}

static int queued_protected(lua_State *L) {
  lqueued *q = lua_touserdata(L, 1);
  lweft_state *st = q->st;
  if (!q->lp) {
    /* The run queue has drained: a rejection nobody handled by now is
     * reported (as node does once its microtasks have run), not when it
     * is collected or the loop ends, which in a server may be never. */
    /* (This state's own: the queue may hold another state's work, or
     * another state's report waiting for its own.  While queued, a task's
     * resume or a host's continuation holds a core reference.) */
    if (st->core_refs > 0 || st->conts_queued > 0) {
      queue_report(L, st); /* more to run first */
      return 0;
    }
    if (st->unhandled_new) {
      st->unhandled_new = 0;
      lweft_report_unhandled(L);
    }
    return 0;
  }
  ltask_push_pinned(L, q->lp);
  run_conts(L, 2);
  return 0;
}

static void queued_cb(weft_loop_t *loop, void *data) {
  lqueued *q = data;
  lweft_state *st = q->st;
  lua_State *L;
  (void)loop;
  if (st) {
    if (q->prev) q->prev->next = q->next;
    else st->queued = q->next;
    if (q->next) q->next->prev = q->prev;
    if (q->lp) st->conts_queued--;
    L = st->L;
    if (!q->lp) st->report_queued = 0; /* (it may queue itself again) */
    if (lua_checkstack(L, 4)) {
      int top = lua_gettop(L);
      lua_pushcfunction(L, queued_protected);
      lua_pushlightuserdata(L, q);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) lweft_callback_error(L, st);
      lua_settop(L, top);
    }
    if (q->lp) ltask_unpin(q->lp);
  }
  free(q);
}

/* ---- resuming tasks ------------------------------------------------------ */

/* Resumes the task at 1 with the status at 2 (protected). */
static int resume_protected(lua_State *L) {
  resume_task(L, 1, (int)lua_tointeger(L, 2));
  return 0;
}

/* The core's resume hook: the task is pinned (its queued resume holds it).
 * It runs on the thread that runs the queue: the state's, or a task's
 * coroutine that runs the queue while it waits (ltask_handoff). */
static void lp_resume(weft_task_t *task, int status, void *obj) {
  lpromise *t = obj;
  lweft_state *st = t->st;
  lua_State *L = st->run_L ? st->run_L : st->L;
  int top;
  (void)task;
  if (st->closing || !t->slot || !lua_checkstack(L, 4)) return;
  top = lua_gettop(L);
  if (st->hosting || (st->in_guard && L == st->L)) {
    /* inside the guard's protected call, or the handoff's */
    ltask_push_pinned(L, t);
    resume_task(L, top + 1, status);
  } else {
    lua_pushcfunction(L, resume_protected);
    ltask_push_pinned(L, t);
    lua_pushinteger(L, status);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lweft_callback_error(L, st);
  }
  lua_settop(L, top);
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
      ltask_ready(L, -1);
      lua_pop(L, 1);
      return;
    }
  }
  if (kind != LUA_TNIL) queue_conts(L, idx);
  lua_pop(L, 1);
}

int ltask_fulfil(lua_State *L, int idx, int first, int n) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp_state(lp) != PENDING) return 0;
  if (lp_cancelling(lp)) { /* it ended after its cancellation: cancelled */
    ltask_end_cancel(L, idx);
    return 1;
  }
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
  weft_promise_resolve(LP_CORE(lp), NULL, NULL);
  settled(L, lp, idx);
  return 1;
}

int ltask_fail(lua_State *L, int idx, int err, int state) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp_state(lp) != PENDING) return 0;
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, err);
  lua_setiuservalue(L, idx, UV_OUTCOME);
  if (state == CANCELLED)
    weft_promise_settle_cancelled(LP_CORE(lp));
  else /* (the error is in UV_OUTCOME: no message in the core's) */
    weft_promise_reject_value(LP_CORE(lp),
                              lp->timed_out ? WEFT_ETIMEDOUT : WEFT_EHOST,
                              NULL, NULL, NULL);
  if (state == REJECTED && !lp->handled) {
    ltask_note_unhandled(L, idx);
    /* Reported when the run queue has drained, unless handled by then. */
    lp->st->unhandled_new = 1;
    queue_report(L, lp->st);
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
  if (lp_state(lp) != FULFILLED) {
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
  ltask_mark_handled(L, lua_touserdata(L, idx), idx);
  n = push_outcome(L, idx);
  if (!lua_toboolean(L, -n)) return lua_error(L);
  lua_remove(L, -n);
  return n - 1;
}

/* Settles the promise at target like the promise at src (a consumer of a
 * cancelled promise ends cancelled). */
void ltask_settle_like(lua_State *L, int target, int src) {
  int top = lua_gettop(L), n;
  lpromise *sp = lua_touserdata(L, src);
  target = lua_absindex(L, target);
  n = push_outcome(L, src);
  if (lua_toboolean(L, top + 1))
    ltask_fulfil(L, target, top + 2, n - 1);
  else
    ltask_fail(L, target, top + 2,
               lp_state(sp) == CANCELLED ? CANCELLED : REJECTED);
  lua_settop(L, top);
}

void ltask_push_cancel_error(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  if (!lp->is_task || !lp->started || lp_state(lp) != PENDING) {
    lua_getiuservalue(L, idx, UV_OUTCOME);
    return;
  }
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cancels_key);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* Keeps the error at err as the cancelling promise at idx's. */
static void set_cancel_error(lua_State *L, int idx, int err) {
  lpromise *lp = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  err = lua_absindex(L, err);
  if (!lp->is_task || !lp->started) {
    lua_pushvalue(L, err);
    lua_setiuservalue(L, idx, UV_OUTCOME);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cancels_key);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, err);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void ltask_end_cancel(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  ltask_push_cancel_error(L, idx);
  ltask_fail(L, idx, -1, lp->timed_out ? REJECTED : CANCELLED);
  lua_pop(L, 1);
}

/* ---- tasks --------------------------------------------------------------- */

void ltask_ready(lua_State *L, int idx) {
  lpromise *t = lua_touserdata(L, idx);
  ltask_pin(L, idx); /* (a task that no longer waits is not woken: no harm) */
  weft_task_wake(LP_TASK(t), 0);
  ltask_unpin(t);
}

/* A plain coroutine.yield in a task: it goes on in the next turn, with
 * true (a cancelled one too: its next wait raises). */
static void requeue(lua_State *L, int idx) {
  lpromise *t = lua_touserdata(L, idx);
  weft_task_t *task = LP_TASK(t);
  int held = weft_task_cancelled(task);
  if (held) weft_task_shield(task, 1);
  weft_task_suspend(task, -1, NULL, NULL);
  if (held) weft_task_shield(task, -1);
  ltask_pin(L, idx);
  weft_task_wake(task, 0);
  ltask_unpin(t);
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

/* Keeps the coroutine co (at cidx) of a default task that returned (or
 * never started), for a later task: it is as good as new. */
static void keep_thread(lua_State *L, lweft_state *st, int cidx,
                        lua_State *co) {
  if (st->nidle >= MAX_IDLE || lua_status(co) != LUA_OK) return;
  lua_settop(co, 0); /* one that never started still holds fn and args */
  lua_sethook(co, NULL, 0, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_idle);
  lua_pushvalue(L, cidx);
  lua_rawseti(L, -2, ++st->nidle);
  lua_pop(L, 1);
}

/* The task's function ended: settles its promise, reports a deferred
 * task's error, and lets its coroutine go. */
static void finished(lua_State *L, int idx, int status, lua_State *co,
                     int nres) {
  lpromise *t = lua_touserdata(L, idx);
  int cidx;
  t->done = 1;
  /* The outcome takes the coroutine's place: it is kept here meanwhile. */
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, idx, UV_CO);
  cidx = lua_gettop(L);
  lua_pushnil(L);
  lua_setiuservalue(L, idx, UV_CO);
  if (status == LUA_OK) {
    if (lp_cancelling(t)) { /* it returned after its cancellation */
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
      if (lp_cancelling(t)) ltask_end_cancel(L, idx);
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
  if (!t->cf) keep_thread(L, t->st, cidx, co); /* if it can be reused */
  /* (Its entry in the weak task table goes with the coroutine, or the
   * coroutine's next task replaces it.) */
  lua_remove(L, cidx);
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
  lua_State *T = LP_SUSP(t);
  int n = lua_gettop(T) - 1;
  (void)cf;
  lua_pushcfunction(T, task_msgh);
  lua_insert(T, 1);
  t->fstatus = lua_pcall(T, n, LUA_MULTRET, 1);
  lua_remove(T, 1);
  return NULL;
}

/* Pushes on th (the task's waiting thread) the values the task at idx goes
 * on with after a wait of this kind: none after an await or a delay (their
 * continuation reads t->woke and what it awaited), else true, or false
 * and the task's cancellation if that is due.  Returns how many. */
static int wake_values(lua_State *L, lpromise *t, int idx, int wait,
                       lua_State *th) {
  if (wait == WAIT_PROMISE || wait == WAIT_TIMER) return 0;
  if (t->woke == WEFT_ECANCELED || t->cancel_raise) {
    t->cancel_raise = 0;
    lua_pushboolean(L, 0);
    ltask_push_cancel_error(L, idx);
    lua_xmove(L, th, 2);
    return 2;
  }
  lua_pushboolean(th, 1);
  return 1;
}

/* Resumes a stackful task: its values go to the thread that waits. */
static void resume_stackful(lua_State *L, int idx, int wait, lua_State *co) {
  lpromise *t = lua_touserdata(L, idx);
  if (!t->started) {
    t->started = 1;
    weft_fiber_set_data(t->cf, co);
  } else {
    wake_values(L, t, idx, wait, LP_SUSP(t));
  }
  t->in_gc = lweft_in_finalizer(L);
  weft_fiber_resume(t->cf, NULL, NULL);
  if (weft_fiber_status(t->cf) == WEFT_FIBER_TERMINATED)
    finished(L, idx, t->fstatus, co, t->fstatus == LUA_OK ? lua_gettop(co) : 1);
}

/* Resumes the task at idx (the core's resume hook, status what its wait
 * ended with: 0, or WEFT_ECANCELED). */
static void resume_task(lua_State *L, int idx, int status) {
  lpromise *t = lua_touserdata(L, idx);
  lweft_state *st = t->st;
  lua_State *co, *drained;
  int nres, nargs, wait;
  idx = lua_absindex(L, idx);
  if (t->done || lua_getiuservalue(L, idx, UV_CO) != LUA_TTHREAD) {
    lua_pop(L, 1);
    return;
  }
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  wait = t->wait;
  if (wait == WAIT_TIMER) ltask_unpin(t); /* the delay's own pin */
  t->wait = WAIT_NONE;
  t->woke = status;
  if (!t->started && lp_state(t) == CANCELLED) { /* cancelled before it ran */
    finished(L, idx, LUA_OK, co, 0);
    return;
  }
  if (t->cf) {
    resume_stackful(L, idx, wait, co);
    return;
  }
  if (!t->started) {
    t->started = 1;
    nargs = lua_gettop(co) - 1; /* it holds (task_body,) fn and its args */
  } else {
    nargs = wake_values(L, t, idx, wait, co);
  }
  /* A task the loop's pass resumes may run the queue when it waits
   * (handoff); one that such a task runs may not. */
  drained = st->drained;
  if (!st->hosting) st->drained = co;
  status = lua_resume(co, L, nargs, &nres);
  st->drained = drained;
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    /* A plain coroutine.yield in a task: run again in the next turn. */
    if (t->wait == WAIT_NONE && lp_state(t) == PENDING) requeue(L, idx);
    return;
  }
  if (status == LUA_OK) { /* task_body returned ok, values... */
    if (!lua_toboolean(co, -nres)) status = LUA_ERRRUN;
    nres--; /* (the flag stays below them, dropped with the coroutine) */
  }
  finished(L, idx, status, co, nres);
}

/* Whether the handoff may run next's resume on a task's coroutine: a
 * default task of the same Lua state. */
static int may_run(weft_task_t *next, void *data) {
  lpromise *n = weft_task_get_obj(next);
  return n->st == data && !n->cf;
}

/* Runs the core's handoff for the task at 1.  Returns the status its own
 * resume came with, or nothing if it must suspend. */
static int handoff_protected(lua_State *L) {
  lpromise *t = lua_touserdata(L, 1);
  int status;
  if (!weft_task_handoff(LP_TASK(t), may_run, t->st, &status)) return 0;
  lua_pushinteger(L, status);
  return 1;
}

int ltask_handoff(lua_State *L, lpromise *t, int tidx) {
  lweft_state *st = t->st;
  lua_State *run_L = st->run_L;
  int top = lua_gettop(L), r, status, wait;
  if (st->drained != L || st->hosting || !weft_loop_ready(st->loop) ||
      !lua_checkstack(L, LUA_MINSTACK))
    return -1;
  tidx = lua_absindex(L, tidx);
  st->hosting = 1;
  st->run_L = L; /* the tasks it runs are resumed from here */
  lua_pushcfunction(L, handoff_protected);
  lua_pushvalue(L, tidx);
  r = lua_pcall(L, 1, 1, 0);
  st->hosting = 0;
  st->run_L = run_L;
  if (r != LUA_OK) {
    lweft_callback_error(L, st);
    lua_settop(L, top);
    return -1;
  }
  if (lua_isnil(L, -1)) {
    lua_settop(L, top);
    return -1;
  }
  status = (int)lua_tointeger(L, -1);
  lua_settop(L, top);
  wait = t->wait;
  if (wait == WAIT_TIMER) ltask_unpin(t);
  t->wait = WAIT_NONE;
  t->woke = status;
  return wake_values(L, t, tidx, wait, L);
}

lpromise *ltask_spawn(lua_State *L, lweft_state *st, int fnidx, int n,
                      size_t stackful) {
  lpromise *t;
  lua_State *co;
  int p;
  fnidx = lua_absindex(L, fnidx);
  t = new_object(L, st, UV_COUNT, 1);
  p = lua_gettop(L);
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
  lua_settop(L, fnidx);
  return t;
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
  if (lua_rawgeti(L, vidx, 4) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return 0;
  }
  live = !lua_rawequal(L, -1, except) &&
         lp_state((lpromise *)lua_touserdata(L, -1)) == PENDING;
  lua_pop(L, 1);
  return live;
}

/* Whether anything but the promise at except awaits or chains the promise
 * at p. */
int ltask_consumed_by_others(lua_State *L, int p, int except) {
  int found = 0, kind;
  lpromise *lp = lua_touserdata(L, p);
  if (weft_promise_consumed(LP_CORE(lp), NULL)) return 1; /* a host waits */
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

/* Whether the task at idx, cancelled, awaits the timeout its await made
 * (weft.await(p, ms)), which it then gives up as any timeout gives up: it
 * is cancelled, which cancels p, and the task is resumed with its own
 * cancellation once p has ended; left pending, its timer would keep the
 * loop alive, and cancel p, long after the task had gone.  If so, pushes
 * the timeout. */
static int owns_wait(lua_State *L, lpromise *t, int idx) {
  lpromise *w;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &own_waits_key);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  w = lua_touserdata(L, -1);
  /* (A timeout that ran out already, or on the task itself, waits for the
   * task: the task must raise instead.) */
  if (w && w == t->awaiting && lp_state(w) == PENDING && !lp_cancelling(w)) {
    lua_getiuservalue(L, -1, UV_SRC);
    if (lua_rawequal(L, -1, idx)) w = NULL;
    lua_pop(L, 1);
  } else {
    w = NULL;
  }
  if (!w) lua_pop(L, 1);
  return w != NULL;
}

/* Cancels the running task at idx through the core: its pending wait is
 * withdrawn and it is resumed with the cancellation, or its queued resume
 * brings the cancellation instead; a running or shielded task meets it at
 * its next wait. */
static void interrupt(lua_State *L, lpromise *t, int idx) {
  weft_task_t *task = LP_TASK(t);
  lua_State *cur = t->st->cur_L;
  int own = t->wait == WAIT_PROMISE && owns_wait(L, t, idx);
  if (own) weft_task_shield(task, 1); /* it waits on until the timeout ends */
  ltask_pin(L, idx);
  t->st->cur_L = L;
  weft_promise_cancel(LP_CORE(t));
  t->st->cur_L = cur;
  ltask_unpin(t);
  if (own) {
    weft_task_shield(task, -1);
    t->cancel_raise = 1; /* (resumed from the timeout's settling) */
    ltask_push_cancel_error(L, idx); /* the task's cancellation */
    ltask_cancel(L, -2, -1);
    lua_pop(L, 2);
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
      if (lp_state((lpromise *)lua_touserdata(L, -1)) == PENDING) waits = 1;
      lua_pop(L, 1);
    }
  } else if (lp_state((lpromise *)lua_touserdata(L, src)) == PENDING) {
    /* A chain gives up on a source others still use (settling at once);
     * a timeout owns its source. */
    if (lp->derived == D_TIMEOUT || !ltask_consumed_by_others(L, src, idx)) {
      ltask_cancel(L, src, err);
      waits = lp_state((lpromise *)lua_touserdata(L, src)) == PENDING;
    }
  }
  lua_settop(L, top);
  if (!waits) ltask_end_cancel(L, idx);
}

void ltask_begin_cancel(lpromise *lp) {
  weft_promise_defer_cancel(LP_CORE(lp));
  weft_promise_cancel(LP_CORE(lp)); /* (it has no cancel hook) */
}

int ltask_cancel(lua_State *L, int idx, int err) {
  lpromise *lp = lua_touserdata(L, idx);
  if (lp_state(lp) != PENDING || lp_cancelling(lp)) return 0;
  idx = lua_absindex(L, idx);
  err = lua_absindex(L, err);
  if (lp->is_task ? !lp->started : lp->derived == D_NONE) {
    /* (a task that never started never will: its function and coroutine
     * go with the outcome taking their place) */
    if (lp->is_task) lp->done = 1;
    ltask_fail(L, idx, err, CANCELLED);
    return 1;
  }
  set_cancel_error(L, idx, err);
  if (lp->is_task) {
    interrupt(L, lp, idx);
  } else {
    ltask_begin_cancel(lp);
    cancel_sources(L, lp, idx, err);
  }
  return 1;
}

/* ---- continuations --------------------------------------------------------- */

void ltask_push_cont(lua_State *L, int idx, int vidx) {
  lpromise *lp = lua_touserdata(L, idx);
  int had;
  idx = lua_absindex(L, idx);
  vidx = lua_absindex(L, vidx);
  ltask_mark_handled(L, lp, idx);
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
  if (had == LUA_TNIL && lp_state(lp) != PENDING) /* settled: run from the loop */
    queue_conts(L, idx);
}

/* Adds { kind, a, b, target } (indices; 0 = nil) to the promise at idx. */
void ltask_add_cont(lua_State *L, int idx, int kind, int a, int b,
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
  lua_pushstring(L, state_names[lp_state(ltask_check_promise(L, 1))]);
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
  ltask_add_cont(L, 1, kind, a, b, lua_gettop(L));
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
                    state_names[lp_state(lp)]);
  } else {
    lua_pushfstring(L, "weft.promise (%s)", state_names[lp_state(lp)]);
  }
  return 1;
}

/* Continuation of a task's await or delay: 1 the task, 2 the promise it
 * awaited (ctx 1) or nothing.  It raises its cancellation if its wait
 * ended with it, else returns what it awaited. */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lpromise *t = lua_touserdata(L, 2);
  (void)status;
  if (t->done) /* resumed by its __gc (lw_p_gc) */
    return luaL_error(L, "task collected while suspended");
  if (t->wait != WAIT_NONE) {
    /* Resumed by hand (coroutine.resume on the task's coroutine), not by
     * the loop, which ends the wait first: the wait goes on, and the
     * caller gets the marker back. */
    lua_settop(L, 2);
    lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
    return lua_yieldk(L, 1, ctx, wait_k);
  }
  if (t->woke == WEFT_ECANCELED || t->cancel_raise) {
    t->cancel_raise = 0;
    ltask_push_cancel_error(L, 2);
    return lua_error(L);
  }
  if (!ctx) return 0;
  lua_settop(L, 1);
  return ltask_deliver(L, 1);
}

/* Ends what the task's wait armed in the binding when the core withdraws
 * the wait (a cancellation; the task being freed). */
static void withdraw_wait(weft_task_t *task, void *data) {
  lpromise *t = data;
  lweft_state *st = t->st;
  lua_State *L = st->cur_L ? st->cur_L : st->L;
  void (*cancel)(lua_State *L, void *data);
  (void)task;
  /* (Freed with the state, the wait's site may be gone already.) */
  if (t->in_fini) return;
  if (t->wait == WAIT_PROMISE) {
    t->awaiting = NULL;
  } else if (t->wait == WAIT_IO && t->io_wait) {
    lweft_iowait *w = t->io_wait;
    void *wdata = w->data;
    cancel = w->cancel;
    if (w->ref && !st->closing && lua_checkstack(L, 2)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_io_waits);
      ltask_io_unkeep(L, t, lua_gettop(L));
      lua_pop(L, 1);
    }
    t->io_wait = NULL;
    if (cancel) cancel(L, wdata);
  }
}

/* Raises why the core refused the task at tidx a wait (err < 0): its
 * cancellation, or a wait still pending because its coroutine was resumed
 * by hand in the middle of it. */
static void wait_refused(lua_State *L, lpromise *t, int tidx, int err) {
  if (err == WEFT_ECANCELED) {
    ltask_push_cancel_error(L, tidx);
    lua_error(L);
  }
  if (t->wait != WAIT_NONE)
    lweft_error(L, "a task's coroutine was resumed by hand while the task "
                   "waited (coroutine.resume on a task's coroutine)");
  lweft_error(L, "%s", weft_strerror(err));
}

void ltask_begin_wait(lua_State *L, lpromise *t, int tidx, int kind) {
  int err = weft_task_suspend(LP_TASK(t), -1, withdraw_wait, t);
  if (err < 0) wait_refused(L, t, tidx, err);
  t->wait = (unsigned)kind & 3u;
}

void ltask_sleep(lua_State *L, lpromise *t, int tidx, uint64_t ms) {
  int err = weft_task_sleep(LP_TASK(t), ms);
  if (err < 0) wait_refused(L, t, tidx, err);
  ltask_pin(L, tidx); /* a sleeping task is kept until its timer fires */
  t->wait = WAIT_TIMER;
}

int ltask_suspend_task(lua_State *L, lpromise *t, int awaits) {
  if (t->done) /* being collected: it can never be woken */
    return luaL_error(L, "task collected while suspended");
  lua_settop(L, 2); /* 1 what it awaits (or anything), 2 the task */
  if (t->cf) {
    weft_fiber_set_data(t->cf, L);
    weft_fiber_suspend(NULL, NULL);
    return wait_k(L, LUA_OK, awaits);
  }
  if (ltask_handoff(L, t, 2) >= 0) return wait_k(L, LUA_YIELD, awaits);
  lua_pushlightuserdata(L, (void *)&ltask_suspend_marker);
  return lua_yieldk(L, 1, awaits, wait_k);
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
  if (!lp_cancelling(t) || weft_task_shield(LP_TASK(t), 0) > 0) return;
  ltask_push_cancel_error(L, tidx);
  lua_error(L);
}

void ltask_run_until_settled(lua_State *L, lweft_state *st, int idx,
                              const char *fname) {
  lpromise *lp = lua_touserdata(L, idx);
  ltask_mark_handled(L, lp, idx); /* its outcome is ours, whenever it comes */
  while (lp_state(lp) == PENDING) {
    int r = lweft_run_once(L, st, fname);
    if (r == 0 && lp_state(lp) == PENDING)
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
    if (weft_fiber_status(t->cf) == WEFT_FIBER_SUSPENDED && LP_SUSP(t))
      return LP_SUSP(t);
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
  ltask_mark_handled(L, t, idx);
  t->stops_run = 1;
}

int lweft_promise_failed(lua_State *L, int idx) {
  lpromise *lp = ltask_test_promise(L, idx);
  return lp && (lp_state(lp) == REJECTED || lp_state(lp) == CANCELLED);
}

int lweft_settled_results(lua_State *L, int idx, const char *fname) {
  lpromise *t = ltask_check_promise(L, idx);
  if (lp_state(t) == PENDING)
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
  if (lp_cancelling((lpromise *)lua_touserdata(L, idx))) {
    /* cancelled while its producer ran: it ends cancelled, as it asked */
    lua_pop(L, n < 0 ? 1 : n);
    if (lp_state((lpromise *)lua_touserdata(L, idx)) != PENDING) return 0;
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

weft_promise_t *lweft_promise_core(lua_State *L, int idx) {
  lpromise *lp = ltask_test_promise(L, idx);
  if (!lp) return NULL;
  lp->bridged = 1;
  return LP_CORE(lp);
}

int lweft_promise_state(lua_State *L, int idx) {
  lpromise *lp = ltask_test_promise(L, idx);
  return lp ? lp_state(lp) : -1;
}

int lweft_push_outcome(lua_State *L, int idx) {
  return push_outcome(L, idx);
}

void lweft_settle_cancelled(lua_State *L, int idx) {
  lpromise *lp = lua_touserdata(L, idx);
  idx = lua_absindex(L, idx);
  if (lp_state(lp) != PENDING) return;
  if (lp_cancelling(lp)) {
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

/* Pushes { [its core task] = task } for the tasks in a delay (kept in the
 * table of kept values meanwhile). */
static void push_sleepers(lua_State *L, lweft_state *st) {
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_io_waits);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lpromise *t = ltask_test_promise(L, -1);
    if (t && t->is_task && t->wait == WAIT_TIMER) {
      lua_pushvalue(L, -1);
      lua_rawsetp(L, -5, LP_TASK(t));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void lweft_open_task(lua_State *L) {
  lweft_state *st = lua_touserdata(L, -1);
  st->push_sleepers = push_sleepers;
  /* (a second Lua state on the same loop protects each resume instead) */
  st->guarded = weft_loop_set_guard(st->loop, guard, st) == 0;
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
  ltask_open_unhandled(L);
  lweft_weak_table(L, &own_waits_key, "kv");
  lweft_weak_table(L, &cancels_key, "k");
  lua_newtable(L);
  st->ref_io_waits = luaL_ref(L, LUA_REGISTRYINDEX);
  lweft_weak_table(L, &tasks_key, "kv");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
  st->ref_tasks = luaL_ref(L, LUA_REGISTRYINDEX);
}
