/* ltask.h: what the files of the task machinery share, private to them:
 * the promise object (a header over a core promise or task), its user
 * values, and the functions the upper files call.  task.c is the base
 * (promises, settling, resuming through the core, cancellation); errors.c
 * (weft's error values), pins.c (what the core holds) and unhandled.c
 * (rejections nobody handled) are below it; conts.c (what continuations
 * do), iowait.c, await.c, combine.c and spawn.c are above it, and nothing
 * below calls up. */
#ifndef LTASK_H
#define LTASK_H

#include "lweft.h"

#include <string.h>

#define PROMISE_MT "weft.promise"
#define ERROR_MT "weft.error"

/* A promise's state is its core promise's (weft_promise_state). */
enum {
  PENDING = WEFT_PROMISE_PENDING,
  FULFILLED = WEFT_PROMISE_FULFILLED,
  REJECTED = WEFT_PROMISE_REJECTED,
  CANCELLED = WEFT_PROMISE_CANCELLED
};

/* What a suspended task waits on (the core's wait says when it ends). */
enum { WAIT_NONE, WAIT_PROMISE, WAIT_TIMER, WAIT_IO };

/* Continuation kinds, stored as integers in an entry's first slot. */
enum { K_NEXT = 1, K_FINALLY, K_COMB, K_TIMEOUT };

/* Combinators, in a combinator state table's field "kind". */
enum { C_ALL = 1, C_ANY, C_RACE, C_SETTLE };

/* What a promise waits on, for its cancellation (lpromise.derived). */
enum {
  D_NONE,   /* weft.promise(), or a task: settled by hand or by its function */
  D_CHAIN,  /* next / catch / finally: waits on one source (UV_SRC) */
  D_COMB,   /* all / any / race / settle: UV_SRC is the combinator state */
  D_TIMEOUT, /* weft.timeout: waits on one source (UV_SRC), with a timer */
  D_HOST     /* stands for a core promise of the host (embed.c); UV_SRC is
              * the bridge, a light userdata */
};

/* A promise or task: this header, then the core promise or task (LP_CORE,
 * LP_TASK) that holds its state, in the same userdata.  They are a host's
 * (weft_promise_init, weft_task_init): the values and the error are Lua
 * values in the user values, the Lua collector frees them with the
 * userdata, and the core runs a task's resumes (task.c's hook resumes its
 * coroutine). */
typedef struct lpromise {
  lweft_state *st;
  unsigned wait : 2;          /* what a suspended task waits on (WAIT_*) */
  unsigned derived : 3;       /* D_*: what it waits on */
  unsigned is_task : 1;
  unsigned defer : 1;         /* weft.defer: an error goes to the error handler */
  unsigned started : 1;
  unsigned done : 1;          /* the task's function has returned or raised */
  unsigned cancel_raise : 1;  /* deliver the cancellation at the next resume */
  unsigned handled : 1;       /* an await or continuation took the outcome */
  unsigned in_gc : 1;         /* a stackful task resumed inside a __gc */
  unsigned timed_out : 1;     /* a weft.timeout result whose time ran out */
  unsigned bridged : 1;       /* a host's bridge watches its core promise */
  unsigned stops_run : 1;     /* weft.run(fn)'s task: its failure stops run */
  unsigned in_fini : 1;       /* its __gc is freeing its core task */
  int slot; /* its slot in the table of kept values while pinned */
  union { /* (each in its time) */
    int nvals;   /* values of a fulfilled promise */
    int woke;    /* what a task's last wait ended with: 0, WEFT_ECANCELED */
    int fstatus; /* a stackful task's pcall status, once the fiber ended */
  };
  int id;
  int line;      /* where a task was spawned (with UV_WHERE) */
  unsigned pins; /* the binding's pins and the core's references */
  /* a stackful task: its function runs on its own C stack (a core fiber),
   * and its waits suspend the fiber instead of yielding a coroutine */
  weft_fiber_t *cf;
  union { /* what the pending wait (t->wait) waits on */
    /* WAIT_IO: the wait site's record (the task is kept under it if its
     * ref is set; its cancel withdraws the wait) */
    lweft_iowait *io_wait;
    /* WAIT_PROMISE: the promise it awaits (compared, never followed: what
     * a task awaits is kept by whatever can settle it, or could never wake
     * it anyway) */
    const void *awaiting;
  };
} lpromise;

#define LP_CORE(lp) ((weft_promise_t *)((char *)(lp) + sizeof(lpromise)))
/* A stackful task's thread that called its pending wait (or runs its
 * function): its fiber's data. */
#define LP_SUSP(lp) ((lua_State *)weft_fiber_get_data((lp)->cf))
#define LP_TASK(lp) ((weft_task_t *)LP_CORE(lp)) /* (its promise first) */

/* PENDING, FULFILLED, REJECTED or CANCELLED. */
#define lp_state(lp) weft_promise_state(LP_CORE(lp))

/* Cancelled, but still pending: a task runs its cleanup, a derived promise
 * waits for the sources it cancelled.  The cancellation error is in
 * UV_OUTCOME meanwhile. */
#define lp_cancelling(lp) weft_promise_cancelling(LP_CORE(lp))

/* User values of a promise: a plain one has the first two. */
enum {
  UV_OUTCOME = 1, /* the value (1 value), { n, ... } (more), or the error */
  /* a task's coroutine, until its function ends and the outcome takes
   * its place (a cancelling task's error waits in a side table meanwhile:
   * ltask_push_cancel_error) */
  UV_CO = UV_OUTCOME,
  UV_CONTS,       /* pending continuations: task (await) or entry table */
  UV_PLAIN = UV_CONTS,
  UV_SRC,         /* a derived promise's source (see D_*) */
  UV_DERIVED = UV_SRC,
  /* the function that spawned a task, or for a named one { name, that
   * function }: one user value for both, since few tasks have a name
   * (tasks are never derived) */
  UV_WHERE = 3,
  UV_COUNT = UV_WHERE
};

/* The value a default task's wait yields, so that weft.coroutine.resume can
 * tell a task suspension from a plain yield and pass it through. */
extern const char ltask_suspend_marker;

/* ---- errors.c: weft's error values ---- */

/* Pushes a weft error: { kind = "cancelled" | "timeout", message, reason },
 * whose tostring is its message. */
void ltask_push_error(lua_State *L, const char *kind, int reason);

/* Whether the value at idx is a weft error of this kind. */
int ltask_error_kind_is(lua_State *L, int idx, const char *kind);

/* ---- pins.c: the table of kept values ---- */

/* Pins the promise at idx: kept in a slot of the state's table of kept
 * values while pinned, so that the core, which holds a pointer, may hold
 * it.  The binding pins an object before a core call that may retain it
 * (a task's queued resume), and the core's retain and release count on
 * top. */
void ltask_pin(lua_State *L, int idx);

/* Drops a pin; the last one lets the promise go.  (It runs from the
 * core's callbacks too: on the state's main thread.) */
void ltask_unpin(lpromise *lp);

/* Pushes a pinned promise. */
void ltask_push_pinned(lua_State *L, lpromise *lp);

/* Keeps the value on top (popped) in a free slot of the table of kept
 * values and notes the slot in w.  The free slots are a stack in C with
 * room for every slot ever used, so that io_unkeep cannot fail. */
void ltask_io_keep(lua_State *L, lweft_state *st, lweft_iowait *w);

/* Frees the slot (of the table at idx) that keeps task t, which is no
 * longer kept for its wait. */
void ltask_io_unkeep(lua_State *L, lpromise *t, int idx);

/* ---- unhandled.c: rejections nobody handled ---- */

/* Marks the promise at idx handled: its rejection is someone's now. */
void ltask_mark_handled(lua_State *L, lpromise *lp, int idx);

/* Notes the promise at idx, just rejected with nobody handling it. */
void ltask_note_unhandled(lua_State *L, int idx);

/* Reports the rejected, unhandled promise at idx to the error handler: a
 * weft error { kind = "unhandled", reason = the error } whose message
 * names the task and where it was spawned. */
void ltask_report_unhandled(lua_State *L, int idx);

/* Pushes the function that spawned the task at idx (or nil); returns its
 * type. */
int ltask_push_spawner(lua_State *L, int idx);

/* Pushes a task's name: opts.name, or "task#N". */
void ltask_push_task_name(lua_State *L, lpromise *t, int idx);

/* Makes the table of unhandled rejections (at the module's opening). */
void ltask_open_unhandled(lua_State *L);

/* ---- task.c: the base ---- */

/* Pushes a new promise that the promise at 1 settles through the
 * continuation { kind, a, b } (stack indices; 0 = none). */
int ltask_chain(lua_State *L, int kind, int a, int b);

/* Notes that the task at tidx awaits the promise at pidx, a timeout its
 * await made for it: cancelling the task cancels that timeout. */
void ltask_own_wait(lua_State *L, int tidx, int pidx);

/* Raises the task's cancellation at every wait once it was cancelled, as
 * the C core's sticky WEFT_ECANCELED, unless a weft.shield holds it back. */
void ltask_check_cancel(lua_State *L, lpromise *t, int tidx);

lpromise *ltask_check_promise(lua_State *L, int idx);

/* A default task is a coroutine: it cannot suspend across a C call.  Nor
 * can any task inside a __gc finalizer (unless a stackful one was resumed
 * there): the collector would stay stopped.  (A finalizer never runs
 * yieldable, so a default task pays for that check only when it fails.) */
void ltask_check_yieldable(lua_State *L, lpromise *t, const char *fname);

/* Returns the settled promise at idx's values, or raises its error. */
int ltask_deliver(lua_State *L, int idx);

/* Appends v (at vidx) to the continuations of the promise at idx, or, if it
 * has settled and none is pending, queues their run at once.  A single
 * awaiting task is kept as is, without a list: the common case. */
void ltask_push_cont(lua_State *L, int idx, int vidx);

/* Pushes the running task (the one whose coroutine is L; st is L's
 * state, or NULL), or returns NULL pushing nothing. */
lpromise *ltask_push_running_task(lua_State *L, lweft_state *st);

/* Ends the wait of the task at idx (ltask_begin_wait): its resume is
 * queued on the core's run queue. */
void ltask_ready(lua_State *L, int idx);


/* Runs the loop until the promise at idx settles (the main chunk's await). */
void ltask_run_until_settled(lua_State *L, lweft_state *st, int idx,
                              const char *fname);

/* Starts the running task t's (at tidx) wait of this kind with the core
 * (WAIT_PROMISE, WAIT_IO): ltask_ready ends it, or a cancellation, which
 * withdraws it.  Raises the cancellation if one is due. */
void ltask_begin_wait(lua_State *L, lpromise *t, int tidx, int kind);

/* Starts the running task t's (at tidx) delay of ms on the core's timer;
 * the task is kept meanwhile. */
void ltask_sleep(lua_State *L, lpromise *t, int tidx, uint64_t ms);

/* Suspends the running task t (at 2) until its wait ends, and returns the
 * values of the promise at 1 if it awaits one (else none: a delay), or
 * raises its error or the task's cancellation: a stackful task suspends
 * its fiber where it stands; a default task yields, unless it can run the
 * queue meanwhile (ltask_handoff). */
int ltask_suspend_task(lua_State *L, lpromise *t, int awaits);

lpromise *ltask_test_promise(lua_State *L, int idx);

/* Pushes the cancellation error of the cancelling promise at idx (the
 * outcome's place holds a running task's coroutine). */
void ltask_push_cancel_error(lua_State *L, int idx);

/* Cancels the pending promise at idx with the cancellation error at err.
 * A plain promise, or a task that has not started, settles as cancelled
 * at once.  A running task gets the error raised where it waits and
 * settles once its function has returned or raised; a derived promise
 * cancels its sources and settles once they have.  Returns 0 if it had
 * settled or was being cancelled already. */
int ltask_cancel(lua_State *L, int idx, int err);

/* Makes the pending promise lp cancelling: it settles once what it waits
 * on has ended (ltask_end_cancel). */
void ltask_begin_cancel(lpromise *lp);


/* Settles the cancelling promise at idx with the error it keeps: as
 * cancelled, or for a timeout whose time ran out, rejected with the
 * timeout error. */
void ltask_end_cancel(lua_State *L, int idx);

/* Rejects (or cancels) the pending promise at idx with the error at err.
 * Returns 0 if it had already settled. */
int ltask_fail(lua_State *L, int idx, int err, int state);

/* Fulfils the pending promise at idx with the n values from first on.
 * Returns 0 if it had already settled. */
int ltask_fulfil(lua_State *L, int idx, int first, int n);

lpromise *ltask_new_promise(lua_State *L, lweft_state *st, int nuv);

/* A default task about to yield in a wait (at tidx), resumed straight from
 * the core's dispatch pass, runs the tasks queued ahead of its own resume
 * itself (weft_task_handoff).  A ping-pong of two tasks then costs one
 * switch a hop instead of two (out to the loop, back in to the other
 * task), and the order is the loop's.  Returns how many values t goes on
 * with (pushed: none after an await or a delay), or -1 if it must yield
 * after all. */
int ltask_handoff(lua_State *L, lpromise *t, int tidx);

/* Pushes the weak table of tasks by coroutine (st NULL: found by key). */
void ltask_push_tasks(lua_State *L, lweft_state *st);

/* Creates a task running the function at fnidx with the n values after it
 * (all popped), leaves its promise in fnidx's place, and queues its start. */
lpromise *ltask_spawn(lua_State *L, lweft_state *st, int fnidx, int n,
                      size_t stackful);

/* The coroutine of a suspended task at idx (pushed), or NULL (nothing
 * pushed). */
lua_State *ltask_suspended_co(lua_State *L, lpromise *t, int idx);

/* Pushes a coroutine for a new task: one a finished task left, or a new
 * one (creating it is the larger part of a task's cost). */
lua_State *ltask_task_thread(lua_State *L, lweft_state *st);

/* Settles the promise at target like the promise at src (a consumer of a
 * cancelled promise ends cancelled). */
void ltask_settle_like(lua_State *L, int target, int src);

/* Whether anything but the promise at except awaits or chains the promise
 * at p (a host's continuation counts). */
int ltask_consumed_by_others(lua_State *L, int p, int except);

/* Adds the continuation { kind, a, b, target } (indices; 0 = nil) to the
 * promise at idx. */
void ltask_add_cont(lua_State *L, int idx, int kind, int a, int b,
                    int target);

/* Sets what runs a settled promise's continuations (conts.c's). */
void ltask_set_run_conts(void (*fn)(lua_State *L, int p));

/* ---- combine.c ---- */

/* Pushes a promise combining the list at arg (kind C_*). */
void ltask_combine(lua_State *L, int arg, int kind);

/* Pushes a promise that settles like the promise at p, unless the ms at
 * msarg pass first. */
void ltask_with_timeout(lua_State *L, int p, int msarg);

void ltask_check_ms_arg(lua_State *L, int arg, const char *what);

/* Adds the functions fns to the module table at -2 (with the state at -1
 * as their upvalue) and methods to the promises' methods; sets the
 * promises' fire and where class hooks (lweft_fire_key, lweft_where_key)
 * to fire and where.  Any may be NULL. */
void ltask_add(lua_State *L, const luaL_Reg *fns, const luaL_Reg *methods,
               lua_CFunction fire, lua_CFunction where);

#endif /* LTASK_H */
