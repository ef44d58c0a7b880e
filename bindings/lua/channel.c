/* channel.c: weft.channel, a FIFO of Lua values between the tasks of one
 * Lua state (the threads' byte channels are csrc/chan.c).  It is written
 * in C because a channel hop is what a pipeline of tasks pays for every
 * item: in Lua, the queues of tables and the method calls around each
 * wait cost five times the task switch itself.
 *
 * A channel keeps three rings in its user values: the buffered values,
 * the waiters of receivers waiting for a value, and those of senders
 * waiting for room (user value 2 of a sender's waiter holds its value).
 * A sender hands a value straight to a waiting receiver, in its waiter's
 * user value 2, and wakes it.  Waiters that gave up (a timeout, a
 * cancellation) are skipped, so nothing is lost. */
#include <string.h>

#include "lweft.h"

#define CHANNEL_MT "weft.channel"

/* A ring of values in a table: slots 1..cap, cap a power of two (or 0). */
typedef struct ring {
  lua_Integer head, n, cap;
} ring;

enum { UV_BUF = 1, UV_RECVQ, UV_SENDQ, UV_COUNT = UV_SENDQ };

typedef struct lchan {
  lweft_state *st;
  lua_Integer capacity; /* LUA_MAXINTEGER: unbounded */
  int closed;
  ring r[UV_COUNT]; /* r[uv - 1] lives in user value uv */
} lchan;

/* A sender's waiter holds this instead of its value once the channel
 * closed under it. */
static const char closed_marker = 0;
static const char class_key = 0;

/* A ring this large that empties is replaced: its table never shrinks. */
#define RING_KEEP 256

static lchan *check_chan(lua_State *L) {
  lchan *c = lweft_testudata(L, 1, &class_key);
  return c ? c : lweft_checkudata(L, 1, CHANNEL_MT, NULL); /* raises */
}

/* Pushes the table of ring uv of the channel at 1, grown if it is full. */
static void ring_table(lua_State *L, lchan *c, int uv, int room) {
  ring *r = &c->r[uv - 1];
  lua_Integer cap;
  int old;
  lua_getiuservalue(L, 1, uv);
  if (!room || r->n < r->cap) return;
  old = lua_gettop(L);
  cap = r->cap ? 2 * r->cap : 4;
  lua_createtable(L, (int)cap, 0);
  for (lua_Integer i = 0; i < r->n; i++) {
    lua_rawgeti(L, old, ((r->head + i) & (r->cap - 1)) + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, uv);
  lua_replace(L, old);
  r->head = 0;
  r->cap = cap;
}

/* Appends the value at idx to ring uv (at its head if `front`). */
static void ring_add(lua_State *L, lchan *c, int uv, int idx, int front) {
  ring *r = &c->r[uv - 1];
  lua_Integer slot;
  idx = lua_absindex(L, idx);
  ring_table(L, c, uv, 1);
  if (front) {
    r->head = (r->head - 1) & (r->cap - 1);
    slot = r->head;
  } else {
    slot = (r->head + r->n) & (r->cap - 1);
  }
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, slot + 1);
  lua_pop(L, 1);
  r->n++;
}

/* Pushes the value at the head of ring uv (not empty), removing it. */
static void ring_shift(lua_State *L, lchan *c, int uv) {
  ring *r = &c->r[uv - 1];
  ring_table(L, c, uv, 0);
  lua_rawgeti(L, -1, r->head + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, r->head + 1);
  lua_remove(L, -2);
  r->head = (r->head + 1) & (r->cap - 1);
  if (--r->n == 0 && r->cap > RING_KEEP) {
    lua_newtable(L);
    lua_setiuservalue(L, 1, uv);
    r->head = r->cap = 0;
  }
}

/* Pushes the first waiter of queue uv that still waits, removing it and
 * those that gave up before it; returns 0 (nothing pushed) if none. */
static int next_waiter(lua_State *L, lchan *c, int uv) {
  while (c->r[uv - 1].n > 0) {
    ring_shift(L, c, uv);
    if (lweft_waiter_waiting(L, -1)) return 1;
    lua_pop(L, 1);
  }
  return 0;
}

/* Hands the value at idx to the waiter on top (popped) and wakes it. */
static void hand(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 2);
  lweft_waiter_wake(L, -1);
  lua_pop(L, 1);
}

/* Sends the value at idx if that needs no wait: to a waiting receiver,
 * or into the buffer if it has room.  Returns 0 if it would wait. */
static int try_send(lua_State *L, lchan *c, int idx) {
  if (c->closed) return 0;
  if (next_waiter(L, c, UV_RECVQ)) {
    hand(L, idx);
    return 1;
  }
  if (c->r[UV_BUF - 1].n < c->capacity) {
    ring_add(L, c, UV_BUF, idx, 0);
    return 1;
  }
  return 0;
}

static int lc_try_send(lua_State *L) {
  lchan *c = check_chan(L);
  lua_settop(L, 2);
  lua_pushboolean(L, try_send(L, c, 2));
  return 1;
}

/* A waiting sender: 1 channel, 2 value, 3 waiter, 4 nil, 5... outcome. */
static int send_k(lua_State *L, int status, lua_KContext ctx) {
  int woken;
  (void)status, (void)ctx;
  if (lweft_waiter_outcome(L, 3, &woken) < 0) return lua_error(L);
  lua_getiuservalue(L, 3, 2);
  if (lua_touserdata(L, -1) == &closed_marker)
    return lweft_error(L, "send on a closed channel");
  lua_pushboolean(L, 1);
  return 1;
}

static int lc_send(lua_State *L) {
  lchan *c = check_chan(L);
  lua_settop(L, 2);
  if (c->closed) return lweft_error(L, "send on a closed channel");
  if (try_send(L, c, 2)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lweft_waiter_new(L, c->st); /* 3 */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 2);
  ring_add(L, c, UV_SENDQ, 3, 0);
  lua_pushnil(L); /* no timeout */
  return lweft_waiter_park(L, 3, 0, send_k);
}

/* Takes a value that needs no wait: pushes it and returns 1, or returns 0
 * (nothing pushed) if there is none. */
static int take(lua_State *L, lchan *c) {
  if (c->r[UV_BUF - 1].n > 0) {
    ring_shift(L, c, UV_BUF);
    if (next_waiter(L, c, UV_SENDQ)) { /* room now: let one sender in */
      lua_getiuservalue(L, -1, 2);
      ring_add(L, c, UV_BUF, -1, 0);
      lua_pop(L, 1);
      lweft_waiter_wake(L, -1);
      lua_pop(L, 1);
    }
    return 1;
  }
  if (next_waiter(L, c, UV_SENDQ)) { /* rendezvous: take a sender's value */
    lua_getiuservalue(L, -1, 2);
    lua_insert(L, -2);
    lweft_waiter_wake(L, -1);
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

/* A waiting receiver: 1 channel, 2 timeout, 3 waiter, 4 timeout,
 * 5... outcome. */
static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  lchan *c = lua_touserdata(L, 1);
  int woken = 0, r = lweft_waiter_outcome(L, 3, &woken);
  (void)status, (void)ctx;
  if (r < 0) {
    /* A value handed over as it gave up goes to the next receiver, or
     * back to the head of the buffer (unless the wake was the close). */
    if (woken && !c->closed) {
      lua_getiuservalue(L, 3, 2);
      if (next_waiter(L, c, UV_RECVQ))
        hand(L, -2);
      else
        ring_add(L, c, UV_BUF, -1, 1);
      lua_pop(L, 1);
    }
    return lua_error(L);
  }
  if (r == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "timeout");
    return 2;
  }
  lua_getiuservalue(L, 3, 2); /* nil if the close woke it */
  return 1;
}

static int lc_recv(lua_State *L) {
  lchan *c = check_chan(L);
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TNUMBER) lweft_typeerror(L, 2, NULL, "number");
    if (!(lua_tonumber(L, 2) >= 0))
      lweft_argerror(L, 2, NULL, "timeout must be >= 0");
  }
  lua_settop(L, 2);
  if (take(L, c)) return 1;
  if (c->closed) {
    lua_pushnil(L);
    return 1;
  }
  lweft_waiter_new(L, c->st); /* 3 */
  ring_add(L, c, UV_RECVQ, 3, 0);
  lua_pushvalue(L, 2);
  return lweft_waiter_park(L, 3, 0, recv_k);
}

/* `for v in ch do`: the loop calls ch(nil, v). */
static int lc_call(lua_State *L) {
  lua_settop(L, 1);
  return lc_recv(L);
}

static int lc_close(lua_State *L) {
  lchan *c = check_chan(L);
  if (c->closed) return 0;
  c->closed = 1;
  while (next_waiter(L, c, UV_RECVQ)) { /* each gets nil */
    lweft_waiter_wake(L, -1);
    lua_pop(L, 1);
  }
  lua_pushlightuserdata(L, (void *)&closed_marker);
  while (next_waiter(L, c, UV_SENDQ)) hand(L, -2);
  return 0;
}

static int lc_tostring(lua_State *L) {
  lua_pushfstring(L, CHANNEL_MT " (%p)", (void *)check_chan(L));
  return 1;
}

/* weft.channel([capacity]): nil is unbounded, 0 a rendezvous. */
static int lc_new(lua_State *L) {
  lchan *c;
  lua_Integer cap = LUA_MAXINTEGER;
  if (!lua_isnoneornil(L, 1)) {
    int ok = lua_type(L, 1) == LUA_TNUMBER;
    if (ok) {
      cap = lua_tointegerx(L, 1, &ok);
      ok = ok && cap >= 0;
    }
    if (!ok)
      lweft_argerror(L, 1, "channel",
                     "capacity must be an integer >= 0 or nil");
  }
  c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
  memset(c, 0, sizeof *c);
  c->st = lweft_state_of(L);
  c->capacity = cap;
  for (int uv = 1; uv <= UV_COUNT; uv++) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, uv);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &class_key);
  lua_setmetatable(L, -2);
  return 1;
}

void lweft_open_channel(lua_State *L) {
  static const luaL_Reg methods[] = {{"send", lc_send},
                                     {"recv", lc_recv},
                                     {"try_send", lc_try_send},
                                     {"close", lc_close},
                                     {NULL, NULL}};
  if (luaL_newmetatable(L, CHANNEL_MT)) {
    luaL_newlib(L, methods);
    lweft_name_funcs(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lc_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, lc_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lweft_class_key(L, CHANNEL_MT, &class_key);
  lua_pushvalue(L, -1); /* the state */
  lua_pushcclosure(L, lc_new, 1);
  lua_setfield(L, -3, "channel");
}
