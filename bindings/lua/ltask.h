/* ltask.h: what the files of the task machinery share, private to them:
 * the promise object (a task is a promise with a coroutine), its user
 * values, and the core's functions the upper files call.  task.c is the
 * core (promises, the run queue, resuming, cancellation, continuations);
 * errors.c is below it; iowait.c, await.c, combine.c and spawn.c are
 * above it, and nothing below calls up. */
#ifndef LTASK_H
#define LTASK_H

#include "lweft.h"

#include <string.h>

#define PROMISE_MT "weft.promise"
#define ERROR_MT "weft.error"

enum { PENDING, FULFILLED, REJECTED, CANCELLED };

enum { WAIT_NONE, WAIT_PROMISE, WAIT_TIMER, WAIT_QUEUED, WAIT_IO };

/* Continuation kinds, stored as integers in an entry's first slot. */
enum { K_NEXT = 1, K_FINALLY, K_COMB, K_TIMEOUT, K_HOST };

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

typedef struct lpromise {
  lweft_state *st;
  unsigned char state;
  unsigned char is_task;
  unsigned char defer;        /* weft.defer: an error goes to the error handler */
  unsigned char started;
  unsigned char done;         /* the task's function has returned or raised */
  unsigned char wait;         /* what a suspended task waits on (WAIT_*) */
  unsigned char cancel_raise; /* deliver the cancellation at the queued resume */
  unsigned char handled;      /* an await or continuation took the outcome */
  unsigned char in_gc;        /* a stackful task resumed inside a __gc */
  unsigned char derived;      /* D_*: what it waits on */
  /* Cancelled, but still pending: a task runs its cleanup, a derived
   * promise waits for the sources it cancelled.  The cancellation error
   * is in UV_OUTCOME meanwhile. */
  unsigned char cancelling;
  unsigned char timed_out;    /* a weft.timeout result whose time ran out */
  unsigned char stops_run;    /* weft.run(fn)'s task: its failure stops run */
  unsigned char shield;       /* weft.shield depth: cancellation held back */
  int nvals;                  /* values of a fulfilled promise */
  int id;
  int line;                   /* where a task was spawned (with UV_WHERE) */
  int fstatus;     /* a stackful task's pcall status, once the fiber ended */
  weft_id_t timer; /* the watcher of a delay */
  /* a stackful task: its function runs on its own C stack (a core fiber),
   * and its waits suspend the fiber instead of yielding a coroutine */
  weft_fiber_t *cf;
  lua_State *susp; /* the thread that called the pending wait */
  /* a WAIT_IO wait: how a cancellation withdraws it */
  void (*io_cancel)(lua_State *L, void *data);
  union {
    void *io_data;
    /* the promise a task in WAIT_PROMISE awaits (compared, never
     * followed: what a task awaits is kept by whatever can settle it, or
     * could never wake it anyway) */
    const void *awaiting;
  };
  lweft_iowait *io_wait; /* where the task is kept, if it is */
} lpromise;

/* User values of a promise: a plain one has the first two. */
enum {
  UV_OUTCOME = 1, /* the value (1 value), { n, ... } (more), or the error */
  UV_CONTS,       /* pending continuations: task (await) or entry table */
  UV_PLAIN = UV_CONTS,
  UV_SRC,         /* a derived promise's source (see D_*) */
  UV_DERIVED = UV_SRC,
  UV_CO = 3,      /* a task's coroutine (tasks are never derived) */
  /* the function that spawned a task, or for a named one { name, that
   * function }: one user value for both, since few tasks have a name */
  UV_WHERE,
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

/* ---- task.c: the core ---- */

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

/* Queues the task at idx to be resumed with the outcome of the promise at
 * src (0: with true). */
void ltask_ready(lua_State *L, int idx, int src);


/* Runs the loop until the promise at idx settles (the main chunk's await). */
void ltask_run_until_settled(lua_State *L, lweft_state *st, int idx,
                              const char *fname);

/* Suspends the running task t until its wait ends: a stackful task
 * suspends its fiber where it stands; a default task yields. */
int ltask_suspend_task(lua_State *L, lpromise *t);

lpromise *ltask_test_promise(lua_State *L, int idx);

/* Cancels the pending promise at idx with the cancellation error at err.
 * A plain promise, or a task that has not started, settles as cancelled
 * at once.  A running task gets the error raised where it waits and
 * settles once its function has returned or raised; a derived promise
 * cancels its sources and settles once they have.  Returns 0 if it had
 * settled or was being cancelled already. */
int ltask_cancel(lua_State *L, int idx, int err);


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

/* A default task about to yield in a wait, resumed straight from the
 * drain, runs the tasks queued ahead of its own wake-up itself.  A ping-pong
 * of two tasks then costs one switch a hop instead of two (out through the
 * drain, back in to the other task), and the order is the drain's.
 * Returns how many values t was woken with (pushed), or -1 if it must yield
 * after all. */
int ltask_handoff(lua_State *L, lpromise *t);

/* Keeps the value on top (popped) in a free slot of the I/O waits table
 * and notes the slot in w.  The free slots are a stack in C with room for
 * every slot ever used, so that io_unkeep cannot fail. */
void ltask_io_keep(lua_State *L, lweft_state *st, lweft_iowait *w);

/* Frees the slot of the I/O waits table (at idx) that keeps task t, which
 * is no longer kept for its wait. */
void ltask_io_unkeep(lua_State *L, lpromise *t, int idx);

/* Pushes the function that spawned the task at idx (or nil); returns its
 * type. */
int ltask_push_spawner(lua_State *L, int idx);

/* Pushes a task's name: opts.name, or "task#N". */
void ltask_push_task_name(lua_State *L, lpromise *t, int idx);

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
