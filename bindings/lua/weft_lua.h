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

#ifdef __cplusplus
}
#endif

#endif
