/* weft_lua.h: the header a C host includes, with lua.h, to embed weft's Lua
 * binding (the module weft.so) in its own Lua states.
 *
 * The binding runs every watcher, task and I/O of a Lua state on one weft
 * loop.  By default the module creates that loop itself and frees it with
 * the state; a host that drives a loop of its own (weft.h) hands it over
 * instead, so that its C code and its scripts share one reactor.  Like
 * weft.h, this header carries no libuv type, and within a major version its
 * items are only ever added.  weft.so exports what this header declares and
 * nothing else.  docs/c-api.md ("Embedding the Lua binding") is the
 * reference built from these comments. */
#ifndef WEFT_LUA_H
#define WEFT_LUA_H

#include "weft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Inside the block: Lua's C functions keep C linkage in a C++ host too, as
 * lua.hpp gives them. */
#include <lua.h>

#if defined(WEFT_LUA_BUILDING) && defined(__GNUC__)
#define WEFT_LUA_EXTERN __attribute__((visibility("default")))
#else
#define WEFT_LUA_EXTERN /* nothing */
#endif

/* The registry field through which a host hands its loop to the binding.
 * Before a Lua state first opens the module, the host stores its
 * weft_loop_t * there as a light userdata (lua_pushlightuserdata, then
 * lua_setfield(L, LUA_REGISTRYINDEX, WEFT_LUA_LOOP_KEY)).  The module then
 * puts that state's watchers, tasks and I/O on the host's loop, which the
 * host drives (weft_loop_run) and which must outlive the Lua state.  The
 * binding never frees a loop it was handed, and runs it only when a script
 * asks (weft.run, weft.tick, a wait outside any task); lua_close cancels
 * every watcher the scripts left, so that the host can then free the loop.
 * The field is read once per Lua state, when the module is first opened;
 * any other value there, or none, makes the module create a loop of its
 * own. */
#define WEFT_LUA_LOOP_KEY "weft.loop"

/* Opens the module and returns 1 with the module table on top, as Lua
 * expects of a C module's entry point.  `require "weft"` calls it when it
 * finds weft.so on package.cpath; a host that links weft.so calls it
 * itself, through luaL_requiref(L, "weft", luaopen_weft, 0) or
 * package.preload, in a protected call.  Every opening in one Lua state
 * shares one loop (see WEFT_LUA_LOOP_KEY).  Raises a Lua error when the
 * libweft loaded in the process has another major version than the one
 * weft.so was built for, or when the module cannot create its loop. */
WEFT_LUA_EXTERN int luaopen_weft(lua_State *L);

/* Opens the module in L on the host's loop (NULL: a loop of its own), as
 * setting WEFT_LUA_LOOP_KEY and then require "weft" would, and leaves the
 * module table on top; it is also package.loaded.weft, so scripts get
 * it from require.  Returns 1.  Raises like luaopen_weft (call it in a
 * protected call), and ignores loop if the state opened the module
 * already. */
WEFT_LUA_EXTERN int weft_lua_open(lua_State *L, weft_loop_t *loop);

/* Pushes the values of a fulfilled core promise for a script (see
 * weft_lua_push_promise); returns how many.  It runs in a protected call:
 * an error it raises rejects the script's promise with that error. */
typedef int (*weft_lua_push_cb)(lua_State *L, weft_promise_t *promise,
                                void *data);

/* Hands a core promise to the scripts of L: pushes a weft.promise that
 * settles as promise does, from the loop: fulfilled with the values
 * push(L, promise, data) pushes (none if push is NULL), rejected with
 * promise's message (a string), or cancelled.  A script awaits it, chains
 * on it, combines it, like any other; cancelling it cancels promise (and
 * it settles once promise has).  The binding references promise until it
 * settles, or until L closes (nothing waits for it then).  The module must
 * be open in L.  Returns 0, WEFT_EINVAL or WEFT_ENOMEM (nothing pushed
 * then). */
WEFT_LUA_EXTERN int weft_lua_push_promise(lua_State *L,
                                          weft_promise_t *promise,
                                          weft_lua_push_cb push, void *data);

/* The core promise of the weft.promise or task at index idx of L, for the
 * host to await (weft_await, weft_task_await) or chain on
 * (weft_promise_then): it settles as the script's does, from the loop:
 * fulfilled, rejected with WEFT_EHOST and the error as text (its
 * traceback included), or cancelled; its values are read with
 * weft_lua_push_outcome.  Cancelling it cancels the script's promise (a
 * task gets the cancellation where it waits).  The caller owns one
 * reference (weft_promise_unref).  If the Lua state closes first, it is
 * cancelled.  NULL if the value is not a weft promise, or out of
 * memory. */
WEFT_LUA_EXTERN weft_promise_t *weft_lua_to_promise(lua_State *L, int idx);

/* Pushes the outcome of a settled promise of weft_lua_to_promise, as
 * pcall gives one: true and the values, or false and the error value;
 * returns how many it pushed.  false and a message when the promise is
 * pending ("still pending"), cancelled, or not one of this Lua state's
 * ("not a promise of this Lua state"; any other promise may be passed). */
WEFT_LUA_EXTERN int weft_lua_push_outcome(lua_State *L,
                                          weft_promise_t *promise);

/* Receives an error that no script handles: one raised in a callback, a
 * task started with weft.defer, or a rejection nobody handled by the end
 * of the loop iteration (unhandled rejections).  msg is the error as text
 * (with its traceback); the error value itself is at index -1 of L during
 * the call.  The host decides what to do (log it, stop a level, quit).  It
 * runs in a protected call: if it raises, its error and the one it was
 * given are written to stderr, and the loop goes on.  An error value whose
 * __tostring raises is given as "(error object is a table value)". */
typedef void (*weft_lua_error_cb)(lua_State *L, const char *msg,
                                  void *data);

/* Routes the errors scripts of L do not handle to cb (NULL: back to the
 * default) instead of parking them for weft.run or weft.tick, which a host
 * driving the loop itself never calls.  A script's own weft.on_error
 * handler still comes first.  With neither, and no weft.run or weft.tick
 * of a script running, such an error is written to stderr with its
 * traceback: it is never dropped silently.  The module must be open. */
WEFT_LUA_EXTERN void weft_lua_on_error(lua_State *L, weft_lua_error_cb cb,
                                       void *data);

#ifdef __cplusplus
}
#endif

#endif
