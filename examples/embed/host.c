/* host.c: loads a Lua script onto a loop the host created. */
#include "host.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

weft_loop_t *host_new_loop(int argc, char **argv) {
  weft_loop_t *loop;
  int err;
  if (argc < 3) {
    fprintf(stderr, "usage: %s CPATH SCRIPT\n", argv[0]);
    exit(2);
  }
  if ((err = weft_loop_new(&loop)) != 0) {
    fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(err));
    exit(1);
  }
  return loop;
}

lua_State *host_open_lua(weft_loop_t *loop, const char *cpath,
                         const char *path) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "host: cannot create a Lua state\n");
    exit(1);
  }
  luaL_openlibs(L);
  /* The embedding hook (weft_lua.h): the binding looks for this registry
   * field when the script first requires "weft". */
  lua_pushlightuserdata(L, loop);
  lua_setfield(L, LUA_REGISTRYINDEX, WEFT_LUA_LOOP_KEY);
  lua_getglobal(L, "package");
  lua_pushstring(L, cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  if (luaL_dofile(L, path) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    exit(1);
  }
  return L;
}

int host_script_finished(lua_State *L) {
  int done;
  lua_getglobal(L, "finished");
  done = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return done;
}
