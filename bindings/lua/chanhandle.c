/* chanhandle.c: the Lua value of a thread channel, a userdata holding one
 * reference to a core channel.  threadchan.c gives it its methods; the
 * codec (codec.c) makes and reads handles as channels cross threads. */
#include "lweft.h"

/* The metatable's key for lweft_testudata: a check on every call. */
static const char chan_key = 0;

typedef struct lchan {
  weft_chan_t *ch; /* one reference, dropped by __gc */
} lchan;

weft_chan_t *lweft_test_chan(lua_State *L, int idx) {
  lchan *c = lweft_testudata(L, idx, &chan_key);
  return c ? c->ch : NULL;
}

void lweft_push_chan(lua_State *L, weft_chan_t *ch) {
  lchan *c;
  /* A worker's state meets its first channel: its methods come with the
   * weft module, which it may not have required yet. */
  if (luaL_getmetatable(L, LWEFT_CHAN_MT) == LUA_TNIL) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "weft");
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  lua_pop(L, 1);
  c = lua_newuserdatauv(L, sizeof *c, 0);
  c->ch = ch;
  luaL_setmetatable(L, LWEFT_CHAN_MT);
}

int lweft_chan_gc(lua_State *L) {
  lchan *c = lweft_testudata(L, 1, &chan_key);
  if (c) {
    weft_chan_unref(c->ch);
    c->ch = NULL;
  }
  return 0;
}

void lweft_chan_class(lua_State *L) {
  lweft_class_key(L, LWEFT_CHAN_MT, &chan_key);
}
