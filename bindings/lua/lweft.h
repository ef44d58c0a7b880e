/* lweft.h: helpers private to the Lua binding. */
#ifndef LWEFT_H
#define LWEFT_H

#include "weft.h"
#include "weft_lua.h"

#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM != 504
#error "weft's Lua binding targets Lua 5.4"
#endif

/* lua_resetthread became lua_closethread in 5.4.6. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define lweft_closethread(L, from) lua_closethread(L, from)
#else
#define lweft_closethread(L, from) ((void)(from), lua_resetthread(L))
#endif

/* What the binding keeps in C for a watcher slot. */
typedef struct lweft_rec {
  int line;               /* line of the creating call, 0 if unknown */
  unsigned char has_data; /* opts.data is in the data table */
  unsigned char has_arg;  /* a descriptor value is in the arg table */
} lweft_rec;

/* The C stack of Lua fibers and stackful tasks: the default, and the
 * least a script may ask for.  Lua 5.4 raises "C stack overflow" only
 * after 200 nested C calls, whatever the stack: recursive string.gsub
 * callbacks need about 412 KiB for that (measured on x86_64), so a smaller
 * stack would fault in its guard page before Lua's own check could fire.
 * The stack is reserved, and committed only as far as it is touched.
 * Under ASan, 2 MiB: its instrumented frames are larger. */
#if defined(__SANITIZE_ADDRESS__)
#define LWEFT_FIBER_STACK ((size_t)2048 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LWEFT_FIBER_STACK ((size_t)2048 * 1024)
#endif
#endif
#ifndef LWEFT_FIBER_STACK
#define LWEFT_FIBER_STACK ((size_t)512 * 1024)
#endif
#define LWEFT_MIN_STACK LWEFT_FIBER_STACK

/* The binding's state for one Lua state (one per lua_State that required
 * weft), a full userdata kept in the registry.  Lua values it keeps for
 * watchers live in registry tables indexed by slot (the low 32 bits of an
 * id), dense so that they stay arrays; see reactor.c. */
typedef struct lweft_state {
  weft_loop_t *loop;
  int owns_loop;
  lua_State *L; /* the thread callbacks run on: the caller of run / tick */
  int ref_w;    /* W[2s+1] = callback, W[2s+2] = function that created it */
  int ref_data; /* slot -> opts.data */
  int ref_arg;  /* slot -> the fd value given (integer or file handle) */
  int ref_misc; /* { handler = on_error fn, err = pending error } */
  lweft_rec *recs;
  size_t nrecs;
  /* The core's run queue resumes tasks and runs what task.c queues on it
   * (lqueued: a promise's continuations, the report of unhandled
   * rejections; cut loose at the close).  drained: the coroutine of the
   * task the dispatch pass is resuming; hosting: whether it runs the queue
   * itself meanwhile (task.c: handoff), on run_L.  cur_L: the thread cancelling a task, for what its
   * withdrawn wait undoes. */
  void *queued;
  int report_queued;
  /* how many of what it queued are continuation runs, and how many core
   * references its promises and tasks have (a queued resume holds one) */
  int conts_queued;
  unsigned core_refs;
  lua_State *drained;
  int hosting;
  lua_State *run_L, *cur_L;
  /* whether the state's guard runs the loop's passes (task.c), and
   * whether its protected call is running one now */
  int guarded, in_guard;
  /* pushes { [core task] = task } for the tasks in a delay, whose timers
   * weft.watchers() lists (set by task.c) */
  void (*push_sleepers)(lua_State *L, struct lweft_state *st);
  /* the weak table of running tasks by coroutine, and the table of tasks
   * in I/O waits by wait (task.c), under registry references: reached
   * through the registry's array part, they cost no hashing on hot paths */
  int ref_tasks, ref_io_waits;
  /* free slots of the I/O waits table (a stack; slots above io_top were
   * never used), so that keeping a task there costs one rawseti */
  int *io_free;
  int io_nfree, io_capfree, io_top;
  /* coroutines of tasks that returned, kept for the next tasks (task.c) */
  int ref_idle;
  int nidle;
  int running; /* inside run / tick / a main-chunk wait */
  int ever_ran; /* the loop ran at least once (for the never-ran warning) */
  /* the embedding host's (embed.c): its error handler, and the bridges
   * between its core promises and the state's */
  weft_lua_error_cb host_error;
  void *host_error_data;
  void *bridges;
  void (*unwatch)(struct lweft_state *st, weft_promise_t *core);
  int unhandled_new; /* a promise was rejected with no handler (task.c) */
  int closing; /* the Lua state is closing: late core callbacks do nothing */
  /* what the module's parts undo at the close (set by luaopen_weft) */
  void (*on_close)(lua_State *L, struct lweft_state *st);
} lweft_state;


/* Pushes the binding's state of L, creating it (and its loop, or taking
 * the host's under WEFT_LUA_LOOP_KEY) on first use (state.c). */
void lweft_push_state(lua_State *L);

/* The state, kept as upvalue 1 of every module function. */
#define lweft_state_of(L) ((lweft_state *)lua_touserdata(L, lua_upvalueindex(1)))

/* Pushes the file and line of the innermost Lua function of thread (NULL
 * allowed) that is not one of weft's own Lua parts (unless only those
 * have lines), looking from stack level `from`; or nil.  Returns how many
 * values it pushed. */
int lweft_push_where(lua_State *L, lua_State *thread, int from);

/* Classes checked on hot paths keep their metatable under a light
 * userdata key too (lweft_class_key, after luaL_newmetatable(name)), so
 * that a check compares two tables: luaL_testudata looks the name up,
 * which costs a strcmp on every call.  lweft_testudata returns the
 * userdata at idx if it has that class, else NULL. */
void *lweft_testudata(lua_State *L, int idx, const void *key);
void lweft_class_key(lua_State *L, const char *name, const void *key);

/* Makes sure registry[key] is a table with weak `mode` ("k", "v", "kv");
 * leaves the stack as it was. */
void lweft_weak_table(lua_State *L, const void *key, const char *mode);

/* Adds the reactor functions to the module table at -2, each with the
 * state userdata at -1 as its upvalue; leaves the stack as it was. */
void lweft_open_reactor(lua_State *L);

/* Adds watch_fd and watch_signal (weft.on_readable, on_writable and
 * on_signal whose errors name the function given, for sync.lua) to the
 * table of primitives on top (the state is below it). */
void lweft_reactor_prims(lua_State *L);

/* Adds weft.fiber to the module table at -2 (the state is at -1); leaves
 * the stack as it was. */
void lweft_open_fiber(lua_State *L);

/* Whether a __gc finalizer is running (or the state is closing): Lua
 * 5.4.4 stops the collector meanwhile, and lua_gc answers -1.  A fiber
 * that suspended there would leave the collector stopped for good, so
 * suspensions check it against what it was when the fiber was resumed. */
#define lweft_in_finalizer(L) (lua_gc((L), LUA_GCCOUNT, 0) < 0)

/* The value on top as a stack_size option of argument arg: an integer
 * from LWEFT_MIN_STACK to WEFT_FIBER_MAX_STACK, else raises an argument
 * error that gives the range (fname names the function when Lua cannot). */
size_t lweft_check_stack_size(lua_State *L, int arg, const char *fname);

/* Misuse errors (argcheck.c).  Each raises at the caller's position: the
 * innermost Lua function that is not one of weft's Lua parts, however deep
 * in weft the check runs.  lweft_error raises the formatted message.
 * lweft_argerror raises "bad argument #arg to 'fname' (extramsg)", naming
 * fname (the public name; NULL: the name the caller used, else the one
 * lweft_name_funcs gave the running function), numbering the arguments
 * as the caller wrote them (a method's self is not counted) as
 * luaL_argerror does.  lweft_typeerror: "<expected> expected, got <type
 * or __name>".  lweft_checkudata, checktype, checkany, checknumber and
 * checkinteger: luaL's checks raising so.
 * lweft_check_nozero raises "bad argument #arg to 'fname' (what contains
 * a zero byte)" (what NULL: "string") if the value at idx is a string with
 * a zero byte; other values pass.  lweft_argcheck_prims adds argerror,
 * raise, nozero and check_fd, the same for weft's Lua parts (which number
 * arguments as their callers wrote them), to the table on top. */
int lweft_error(lua_State *L, const char *fmt, ...);
int lweft_argerror(lua_State *L, int arg, const char *fname,
                   const char *extramsg);
int lweft_typeerror(lua_State *L, int arg, const char *fname,
                    const char *expected);
void *lweft_checkudata(lua_State *L, int arg, const char *tname,
                       const char *fname);
void lweft_checktype(lua_State *L, int arg, int t, const char *fname);
void lweft_checkany(lua_State *L, int arg, const char *fname);
lua_Number lweft_checknumber(lua_State *L, int arg, const char *fname);
lua_Integer lweft_checkinteger(lua_State *L, int arg, const char *fname);
void lweft_check_nozero(lua_State *L, int idx, int arg, const char *fname,
                        const char *what);
void lweft_argcheck_prims(lua_State *L);

/* Names each C function of the table at idx by its key, for the errors of
 * a call Lua cannot name (through pcall); a function keeps its first
 * name. */
void lweft_name_funcs(lua_State *L, int idx);

/* The name of the public function the caller called, for an error raised
 * deep inside it: the outermost of weft's frames above the caller's (a Lua
 * part's function, or the C function raising), as the caller named it
 * (else as lweft_name_funcs did); fallback when neither can tell. */
const char *lweft_public_name(lua_State *L, const char *fallback);

/* A descriptor argument: a non-negative integer or an open Lua file
 * handle; raises as lweft_argerror otherwise. */
int lweft_check_fd(lua_State *L, int arg, const char *fname);

/* Pushes the error value at idx as text and returns it: luaL_tolstring's,
 * or its type when its __tostring raises (an error handler outside any
 * protected call must not raise in turn). */
const char *lweft_push_error_text(lua_State *L, int idx);

/* The failure convention of every operation that can fail at run time:
 * pushes nil, message, code (the name of err, "ENOENT"), and returns 3.
 * lweft_push_fail's message is weft_strerror(err) when NULL or empty;
 * lweft_push_failf formats it as lua_pushfstring does. */
int lweft_push_fail(lua_State *L, const char *message, int err);
int lweft_push_failf(lua_State *L, int err, const char *fmt, ...);

/* Disowns what task.c queued on the core's run queue, and gives up the
 * loop's guard: the Lua state is closing. */
void lweft_forget_queued(lweft_state *st);

/* The task machinery's parts add their functions like lweft_open_reactor,
 * errors first, then the core (task.c: weft.promise and the promises'
 * methods), then the rest: is_cancelled, is_timeout (errors.c); await,
 * delay, shield (await.c); all, any, race, settle, timeout (combine.c);
 * async, defer, spawn, current, tasks (spawn.c). */
void lweft_open_errors(lua_State *L);
void lweft_open_task(lua_State *L);
void lweft_open_conts(lua_State *L);
void lweft_open_await(lua_State *L);
void lweft_open_combine(lua_State *L);
void lweft_open_spawn(lua_State *L);

/* Creates a task running the function at fnidx with the n values after it
 * (popped with it) and leaves its promise in fnidx's place, on top. */
int lweft_spawn(lua_State *L, lweft_state *st, int fnidx, int n);

/* A signal argument: a number, or a name with or without "SIG" ("SIGINT",
 * "INT"); raises for an unknown name (as lweft_argerror, naming fname). */
int lweft_check_signal(lua_State *L, int arg, const char *fname);

/* The name of a signal ("SIGTERM"), or NULL. */
const char *lweft_signal_name(int signo);

/* Adds the process primitives to the table on top (the state is below
 * it). */
void lweft_process_prims(lua_State *L);

/* Adds the thread primitives to the table on top (the state is below
 * it). */
void lweft_thread_prims(lua_State *L);

/* The message format for values crossing threads (codec.c).  Encode
 * pushes the message of the n values from first on, raising an error that
 * names the offending value's path from root ("args[2].conf.cb: function
 * with upvalues cannot cross threads").  Decode pushes the values of a
 * message and returns how many; functions get the table at env (0: none)
 * as _ENV; it raises "bad message: ..." for anything malformed. */
int lweft_encode(lua_State *L, int first, int n, const char *root);
/* A message block (weft_chan_realloc) owned by a userdata: its __gc frees
 * p unless someone took it (set p to NULL).  lweft_msgbox_push pushes an
 * empty one. */
typedef struct lweft_msgbox {
  void *p;
  size_t len;
} lweft_msgbox;
lweft_msgbox *lweft_msgbox_push(lua_State *L);
/* The same as lweft_encode, handing the message to use(L, ud, bytes, len,
 * box) instead of pushing it: the bytes live until use returns, and what
 * use pushes stays on top.  A message over 64 KiB is in a block of exactly
 * len bytes owned by box (else box is NULL), which use may take with
 * lweft_msg_take instead of copying it.  Returns what use returned. */
typedef int (*lweft_use_message)(lua_State *L, void *ud, const char *p,
                                 size_t len, lweft_msgbox *box);
int lweft_encode_with(lua_State *L, int first, int n, const char *root,
                      lweft_use_message use, void *ud);
/* The message use got, in a block of weft_chan_realloc that is now the
 * caller's (free it with weft_chan_free): box's own block, or a copy of a
 * short message.  Raises without memory. */
void *lweft_msg_take(lua_State *L, const char *p, size_t len,
                     lweft_msgbox *box);
/* Registers the metatable at mt as the class named by the string at name
 * in this Lua state, so that its instances cross threads.  Returns 0, or
 * -1 if the name belongs to another metatable. */
int lweft_register_class(lua_State *L, int name, int mt);
int lweft_decode(lua_State *L, const void *data, size_t len, int env);

/* Channels as Lua values (chanhandle.c): the channel of the userdata at
 * idx or NULL; push a userdata adopting one reference of ch; the handles'
 * __gc; lweft_chan_class records the metatable named LWEFT_CHAN_MT (made
 * by lweft_chan_prims) for lweft_test_chan.  lweft_chan_prims
 * (threadchan.c) adds chan_new to the table of thread primitives on top
 * (the state is below it) and makes the channels' metatable. */
#define LWEFT_CHAN_MT "weft.thread.channel"
weft_chan_t *lweft_test_chan(lua_State *L, int idx);
void lweft_push_chan(lua_State *L, weft_chan_t *ch);
int lweft_chan_gc(lua_State *L);
void lweft_chan_class(lua_State *L);
void lweft_chan_prims(lua_State *L);

/* Whether a channel call of L may block its thread (thread.c): true in a
 * worker's plain code, where no loop runs; false in the main thread, a
 * coroutine or a fiber. */
int lweft_can_block(lua_State *L);
/* Raises the error of a cancelled job's call, in its worker. */
int lweft_raise_cancelled(lua_State *L);

/* Adds the file watching primitives (fswatch.c, for weft.fs.watch) to the
 * table on top (the state is below it). */
void lweft_fswatch_prims(lua_State *L);

/* Adds the socket primitives (socket.c, for weft.socket) to the table on
 * top. */
void lweft_socket_prims(lua_State *L);

/* Fills *ss from (family, address, port) at idx..idx+2 ("inet", "inet6"
 * or "unix"; a numeric address); returns its length, or 0 for an address
 * that does not parse. */
socklen_t lweft_sockaddr(lua_State *L, int idx, struct sockaddr_storage *ss);

/* Adds the fs primitives to the table on top (the state is below it). */
void lweft_fs_prims(lua_State *L);

/* Adds the TLS primitives (tls.c) to the table on top (the state is below
 * it). */
void lweft_tls_prims(lua_State *L);

/* The core stream of the stream handle at idx (stream.c); raises for
 * another value or a closed stream. */
weft_stream_t *lweft_check_stream(lua_State *L, int idx);

/* I/O waits that suspend a task without a promise.  A C function calls
 * lweft_io_begin first: in a task it raises a pending cancellation (or a
 * default task's "cannot suspend here"), pushes the task and returns it;
 * elsewhere it returns NULL and pushes nothing, and the caller runs the
 * loop itself with lweft_io_run_while.  The caller arms its wait and
 * returns lweft_io_suspend(...), which keeps the task under w (a field of
 * the caller's wait, zeroed before first use, alive while the task
 * waits): the task suspends until lweft_io_wake(st, w) queues it, then
 * k(L, LUA_OK, ctx) runs with the stack as it was below the task plus ok,
 * values...: ok is false (and the next value the error) when the task was
 * cancelled meanwhile, after cancel(L, data) withdrew the wait. */
typedef struct lweft_iowait {
  int ref; /* the task's key in the binding's table of I/O waits, or 0 */
  /* what withdraws the wait if the task is cancelled meanwhile */
  void (*cancel)(lua_State *L, void *data);
  void *data;
} lweft_iowait;
void *lweft_io_begin(lua_State *L, lweft_state *st, const char *fname);
int lweft_io_suspend(lua_State *L, void *task, lweft_iowait *w,
                     void (*cancel)(lua_State *L, void *data), void *data,
                     lua_KContext ctx, lua_KFunction k);
/* Wakes the task waiting under w, if one does (a core callback calls it;
 * nothing happens once the Lua state is closing).  Returns 1 if it woke
 * one. */
int lweft_io_wake(lweft_state *st, lweft_iowait *w);
/* The same wait for a caller that keeps the task reachable itself (a
 * waiter holds it as a user value): nothing is kept under w (which holds
 * only cancel and data), and lweft_io_wake_task(L, idx) wakes the task at
 * idx if it still waits. */
int lweft_io_park(lua_State *L, void *task, lweft_iowait *w,
                  void (*cancel)(lua_State *L, void *data), void *data,
                  lua_KContext ctx, lua_KFunction k);
void lweft_io_wake_task(lua_State *L, int idx);
/* The main chunk's side of an I/O wait: runs the loop, protected, while
 * *flag == value.  Returns lua_pcall's status, the error on top if not
 * LUA_OK. */
int lweft_io_run_while(lua_State *L, lweft_state *st, const int *flag,
                       int value, const char *fname);

/* For a core callback holding a registry reference (a promise to settle):
 * pushes the value on st->L, drops the reference and returns st->L; or
 * returns NULL, pushing nothing, once the Lua state is closing. */
lua_State *lweft_take_ref(lweft_state *st, int ref);

/* Settles the promise at idx: fulfils it with the n values on top, or,
 * for n < 0, rejects it with the value on top; pops them either way.
 * Returns 1, or 0 if it was not a pending promise. */
int lweft_settle(lua_State *L, int idx, int n);

/* Pushes an I/O error value: { kind = "io", message = "op: strerror",
 * code = "ENAME" } with weft's error metatable (tostring: the message). */
void lweft_push_io_error(lua_State *L, const char *op, int err);

/* Adds weft.poll, the POLL* constants and the stream primitives; pushes
 * the table of primitives for stream.lua. */
void lweft_open_stream(lua_State *L);

/* Pushes { adopt, suspend_marker, error_mt }: what sync.lua's
 * weft.coroutine needs of the task machinery. */
void lweft_push_task_internals(lua_State *L);

/* Reports every rejected promise nobody handled to the error handler (at
 * the end of weft.run). */
void lweft_report_unhandled(lua_State *L);

/* Marks the task at idx as weft.run's own: its outcome is handled (run
 * delivers it), and its failure stops the loop, so that run raises it at
 * once even while other work keeps the loop alive. */
void lweft_mark_run_task(lua_State *L, int idx);

/* How many tasks never started; when there are any, pushes "file:line"
 * where the oldest was spawned. */
int lweft_unstarted_tasks(lua_State *L, lweft_state *st);

/* At the state's close: if the loop never ran (and is the binding's own,
 * not a host's), writes one line to stderr saying how many tasks never
 * started and watchers never fired, and where the first was created. */
void lweft_warn_never_ran(lua_State *L, lweft_state *st);

/* The embedding API's side (embed.c, task.c).  A bridge between a core
 * promise of the host and a Lua promise is embed.c's; it starts with a
 * pointer to its lweft_hostlink, what the task code calls back: cancel
 * (the Lua promise standing for the core one was cancelled: returns
 * whether it must wait for the core promise to settle).
 * lweft_get_state: the binding's state of L, or NULL before the module
 * was opened.  lweft_push_host_promise: a new Lua promise standing for the
 * core promise of bridge.  lweft_promise_core: the core promise of the
 * Lua promise at idx (NULL if it is none), which a bridge watches; the
 * bridge is told (st->unwatch) before the Lua promise is freed.
 * lweft_promise_state: the state (WEFT_PROMISE_*) of the promise at idx,
 * or -1.  lweft_push_outcome: pushes ok, values... or false, err; returns
 * the count.  lweft_settle_cancelled: settles the promise at idx as
 * cancelled.  lweft_cancel_promise: cancels it (p:cancel()).
 * lweft_cut_bridges: the state is closing. */
typedef struct lweft_hostlink {
  int (*cancel)(void *bridge);
} lweft_hostlink;
#define lweft_hostlink_of(bridge) (*(const lweft_hostlink *const *)(bridge))
lweft_state *lweft_get_state(lua_State *L);
void lweft_push_host_promise(lua_State *L, lweft_state *st, void *bridge);
weft_promise_t *lweft_promise_core(lua_State *L, int idx);
int lweft_promise_state(lua_State *L, int idx);
int lweft_push_outcome(lua_State *L, int idx);
void lweft_settle_cancelled(lua_State *L, int idx);
int lweft_cancel_promise(lua_State *L, int idx);
void lweft_cut_bridges(lweft_state *st);

/* Whether the value at idx is a rejected or cancelled promise. */
int lweft_promise_failed(lua_State *L, int idx);

/* Returns the settled task's (at idx) values or raises its error; raises
 * a clear error naming fname if it is still pending. */
int lweft_settled_results(lua_State *L, int idx, const char *fname);

/* The error on top came from a callback or a deferred task: gives it to
 * the on_error handler, or keeps it for run() to raise (stopping the loop
 * if it is running).  Pops it. */
void lweft_callback_error(lua_State *L, lweft_state *st);

/* Runs one loop iteration that may block, as weft.tick(); raises a
 * callback's error.  Returns 1 while work remains, else 0. */
int lweft_run_once(lua_State *L, lweft_state *st, const char *fname);

/* Runs the loop in mode for the function named fname (reactor.c): raises
 * a cancelled worker job's error, a loop already running, and an error a
 * callback left; else returns weft_loop_run's result.
 * lweft_raise_pending raises only the last. */
int lweft_run_loop(lua_State *L, lweft_state *st, weft_run_mode mode,
                   const char *fname);
void lweft_raise_pending(lua_State *L, lweft_state *st);

/* How many of this state's watchers are armed on its loop; when there
 * are any, pushes "file:line" where the oldest was created. */
int lweft_unfired_watchers(lua_State *L, lweft_state *st);

/* Adds weft.run (run.c) to the module table at -2 (the state is at -1). */
void lweft_open_run(lua_State *L);

/* Creates a once watcher firing the Lua function at fnidx after the delay
 * at msidx, like weft.once; returns its id.  For a task or a waiter (a
 * userdata) at fnidx, its class's fire hook runs instead, protected, with
 * it as the argument: the task wakes from its delay, the waiter's wait
 * times out. */
weft_id_t lweft_once(lua_State *L, lweft_state *st, int msidx, int fnidx);

/* Class hooks: C functions a class keeps in its metatable under these
 * keys' addresses (util.c), so that the reactor can call into tasks and
 * waiters without depending on them.  Fire: a once watcher whose callback
 * is an instance fired (lweft_once).  Where: returns "file:line" where
 * the instance waits, or "[C]". */
extern const char lweft_fire_key, lweft_where_key;

/* Makes the waiter class (waiter.c) for the state at -1; leaves the
 * stack as it was.  lweft_push_waiter_ctor pushes its constructor. */
void lweft_open_waiter(lua_State *L);
void lweft_push_waiter_ctor(lua_State *L);

/* Waiters from C.  lweft_waiter_new pushes a new one.  lweft_waiter_park
 * parks the running task (or runs the loop for the main chunk) on the
 * waiter at base, with the timeout at base + 1 (nil: none) on top of the
 * stack; k(L, status, ctx) gets control once the wait ends, with the
 * outcome above those two, for lweft_waiter_outcome to read: 1 woken,
 * 0 timed out, or -1 when the wait failed (a cancellation, or the main
 * chunk's loop raised): the waiter gave up, the error is on top, and
 * *woken tells whether a wake reached it first.  lweft_waiter_wake wakes
 * the waiter at idx and returns 1, or returns 0 if it no longer waits. */
void lweft_waiter_new(lua_State *L, lweft_state *st);
int lweft_waiter_park(lua_State *L, int base, lua_KContext ctx, lua_KFunction k);
int lweft_waiter_outcome(lua_State *L, int base, int *woken);
int lweft_waiter_wake(lua_State *L, int idx);
int lweft_waiter_waiting(lua_State *L, int idx);

/* Adds weft.channel (channel.c) to the module table at -2, with the
 * state at -1 as its upvalue; leaves the stack as it was. */
void lweft_open_channel(lua_State *L);

/* Pushes "file:line" where the task at idx is suspended (for a waiter:
 * the task parked on it), or "[C]": the value's where hook (util.c). */
void lweft_push_task_where(lua_State *L, int idx);

/* Cancels a watcher this state created, dropping what it kept for it. */
void lweft_cancel(lua_State *L, lweft_state *st, weft_id_t id);

/* Cancels every watcher this Lua state created on its loop. */
void lweft_cancel_all(lweft_state *st);

#endif /* LWEFT_H */
