/* host.h: what both example hosts share: a Lua state whose scripts use
 * the host's own weft loop. */
#ifndef HOST_H
#define HOST_H

#include "weft_lua.h"

/* Checks the command line (CPATH SCRIPT) and creates the host's loop.
 * Exits the process with a message on failure. */
weft_loop_t *host_new_loop(int argc, char **argv);

/* Opens a Lua state, hands it `loop` (so `require "weft"` uses it rather
 * than making its own), sets package.cpath, and runs the script at path.
 * Exits the process with a message on failure. */
lua_State *host_open_lua(weft_loop_t *loop, const char *cpath,
                         const char *path);

/* 1 once the script has set the global `finished`. */
int host_script_finished(lua_State *L);

#endif
