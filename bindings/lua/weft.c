#include <lua.h>
#include <lauxlib.h>
__attribute__((visibility("default"))) int luaopen_weft(lua_State *L) { lua_newtable(L); return 1; }
