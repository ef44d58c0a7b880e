/* fuzz_codec.c: libFuzzer target for the message format of values that
 * cross threads (bindings/lua/codec.c).  Every input is decoded in a
 * protected call: garbage must be rejected with "bad message: ...", never
 * crash, leak or read out of bounds.  Valid messages are re-encoded and
 * must decode again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lweft.h"

#include <lualib.h>

/* The codec reaches channels through these (thread.c); no channel id is
 * in flight in this process, so decoding never gets as far as pushing. */
weft_chan_t *lweft_test_chan(lua_State *L, int idx) {
  (void)L, (void)idx;
  return NULL;
}

void lweft_push_chan(lua_State *L, weft_chan_t *ch) {
  (void)ch;
  lua_pushnil(L);
}

static int roundtrip(lua_State *L) {
  size_t len = (size_t)lua_tointeger(L, 2);
  const void *data = lua_touserdata(L, 1);
  int n = lweft_decode(L, data, len, 0);
  size_t len2;
  const char *again;
  lweft_encode(L, lua_gettop(L) - n + 1, n, "v");
  again = lua_tolstring(L, -1, &len2);
  lweft_decode(L, again, len2, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lua_State *L;
  static unsigned runs;
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
  }
  lua_pushcfunction(L, roundtrip);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    /* only the decoder's own rejections, or Lua's memory error */
    if (!msg || (strncmp(msg, "bad message: ", 13) != 0 &&
                 strcmp(msg, "not enough memory") != 0 &&
                 !strstr(msg, "is not registered in this Lua state") &&
                 !strstr(msg, "nesting")))
      __builtin_trap();
  }
  lua_settop(L, 0);
  if (++runs % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
