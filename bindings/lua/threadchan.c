/* threadchan.c: weft.thread.channel, channels across threads, in C.
 *
 * A channel handle is a userdata holding one reference to a core channel
 * (csrc/chan.c); handles of one channel in any Lua state of the process
 * share everything, so a value left in the channel goes to whichever
 * receiver asks next.  Values cross as messages (codec.c): a send encodes
 * straight into the channel, a receive decodes one message.
 *
 * Where a call must wait: a worker's plain code blocks its thread in the
 * core (the job's cancellation wakes it), a task suspends on a loop-side
 * wait, and the main chunk runs the loop until that wait ends.  Every
 * method is a C function called by the script itself, so its errors carry
 * the script's position. */
#include "lweft.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The channel of self (argument 1), or raises naming fname. */
static weft_chan_t *self_chan(lua_State *L, const char *fname) {
  weft_chan_t *ch = lweft_test_chan(L, 1);
  if (!ch)
    lweft_argerror(L, 1, fname,
                   lua_pushfstring(L, LWEFT_CHAN_MT " expected, got %s",
                                   luaL_typename(L, 1)));
  return ch;
}

/* A timeout argument in ms: -1 for none (nil), else a number >= 0,
 * rounded up. */
static int64_t opt_timeout(lua_State *L, int arg, const char *fname) {
  lua_Number n;
  if (lua_isnoneornil(L, arg)) return -1;
  n = lua_tonumber(L, arg);
  if (lua_type(L, arg) != LUA_TNUMBER || !(n >= 0))
    lweft_argerror(L, arg, fname, "timeout must be a number >= 0");
  return n >= 1e15 ? (int64_t)1e15 : (int64_t)ceil(n);
}

static const char *why(int err) {
  return err == WEFT_EAGAIN      ? "empty"
         : err == WEFT_ECLOSED   ? "closed"
         : err == WEFT_ETIMEDOUT ? "timeout"
                                 : weft_strerror(err);
}

/* Pushes nil, reason; returns 2. */
static int fail(lua_State *L, const char *reason) {
  lua_pushnil(L);
  lua_pushstring(L, reason);
  return 2;
}

/* Raises for a failure no caller can handle by looking at a result. */
static int raise_err(lua_State *L, int err) {
  if (err == WEFT_ECANCELED) return lweft_raise_cancelled(L);
  if (err == WEFT_ENOMEM) return luaL_error(L, "not enough memory");
  return luaL_error(L, "%s", weft_strerror(err));
}

/* ---- receiving -------------------------------------------------------------- */

#define SMALL 64 /* messages this short are decoded from the C stack */

/* Pushes the value of a message (its first value; a message from a C
 * sender may hold none). */
static void push_value(lua_State *L, const void *data, size_t len) {
  int base = lua_gettop(L), n;
  lua_pushglobaltable(L); /* functions get the receiver's globals */
  n = lweft_decode(L, data, len, base + 1);
  if (n == 0) lua_pushnil(L);
  lua_settop(L, base + 2);
  lua_remove(L, base + 1);
}

static int decode_block(lua_State *L) {
  push_value(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
  return 1;
}

/* Receives one message, waiting up to timeout_ms on this thread (0: not
 * at all; -1: no limit), and pushes its value.  Returns 0, or a code with
 * nothing pushed. */
static int take(lua_State *L, weft_chan_t *ch, int64_t timeout_ms) {
  void *data;
  size_t len;
  int err = weft_chan_recv(ch, timeout_ms, &data, &len);
  if (err) return err;
  if (len <= SMALL) {
    /* Copied off the heap first, so that a decoding error leaks nothing. */
    char buf[SMALL];
    memcpy(buf, data, len);
    weft_chan_free(data);
    push_value(L, buf, len);
    return 0;
  }
  lua_pushcfunction(L, decode_block);
  lua_pushlightuserdata(L, data);
  lua_pushinteger(L, (lua_Integer)len);
  err = lua_pcall(L, 2, 1, 0);
  weft_chan_free(data);
  if (err != LUA_OK) lua_error(L);
  return 0;
}

/* ---- loop-side waits ---------------------------------------------------------- */

/* A loop-side wait on a channel, with an optional timeout.  Freed when
 * both the core's callback can no longer come (chan_live) and the Lua
 * side is done with it (lua_live). */
typedef struct cwait {
  lweft_state *st;
  weft_chan_t *ch; /* (kept alive by the handle on the caller's stack) */
  weft_chan_wait_t *w;
  weft_id_t timer;
  int pending;
  int status;
  int chan_live, lua_live;
  lweft_iowait iow; /* the task waiting, if one does */
  struct cwait *prev, *next; /* in the state's list */
  struct cwlist *list;
} cwait;

/* The waits of a Lua state, so that closing the state withdraws those a
 * suspended task left (a channel could still wake them, and the loop
 * cannot be freed while one is armed): a userdata in the registry, made
 * after the binding's state and so finalized before it. */
typedef struct cwlist {
  cwait *head;
} cwlist;

static const char cwlist_key = 0;

static void cw_release(cwait *cw) {
  if (cw->chan_live || cw->lua_live) return;
  if (cw->prev) cw->prev->next = cw->next;
  else cw->list->head = cw->next;
  if (cw->next) cw->next->prev = cw->prev;
  free(cw);
}

static void cw_end(cwait *cw, int status) {
  if (!cw->pending) return;
  cw->pending = 0;
  cw->status = status;
  if (cw->timer) weft_watch_cancel(cw->st->loop, cw->timer);
  cw->timer = 0;
  lweft_io_wake(cw->st, &cw->iow);
}

static void on_chan_ready(weft_chan_t *ch, int event, int status, void *data) {
  cwait *cw = data;
  (void)ch, (void)event, (void)status;
  cw->chan_live = 0;
  cw_end(cw, 0); /* a closed channel is "ready": the retry says closed */
  cw_release(cw);
}

static void on_chan_timer(weft_loop_t *loop, weft_id_t id, int arg,
                          void *data) {
  cwait *cw = data;
  (void)loop, (void)id, (void)arg;
  cw->timer = 0;
  if (cw->chan_live && weft_chan_unwait(cw->w) == 0) cw->chan_live = 0;
  cw_end(cw, WEFT_ETIMEDOUT);
}

static void cw_abandon(lua_State *L, void *data) {
  cwait *cw = data;
  (void)L;
  cw->pending = 0;
  if (cw->timer) weft_watch_cancel(cw->st->loop, cw->timer);
  cw->timer = 0;
  if (cw->chan_live && weft_chan_unwait(cw->w) == 0) cw->chan_live = 0;
  cw->lua_live = 0;
  cw_release(cw);
}

static int cwlist_gc(lua_State *L) {
  cwlist *l = lua_touserdata(L, 1);
  while (l->head) cw_abandon(L, l->head);
  return 0;
}

/* This state's list of waits, made on first use. */
static cwlist *waits_of(lua_State *L) {
  cwlist *l;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cwlist_key) == LUA_TUSERDATA) {
    l = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return l;
  }
  lua_pop(L, 1);
  l = lua_newuserdatauv(L, sizeof *l, 0);
  l->head = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, cwlist_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cwlist_key);
  return l;
}

/* The wait's outcome (0 or WEFT_ETIMEDOUT), the Lua side done with it. */
static int cw_finish(cwait *cw) {
  int status = cw->status;
  cw->lua_live = 0;
  cw_release(cw);
  return status;
}

/* A receiver that finds the channel empty watches it for a few
 * microseconds before it arms a wait: when a sender is producing at full
 * speed on another core, its next message is that close, and a wait would
 * cost an eventfd write per message on the sender's side and a loop
 * iteration on this one.  Returns 1 if a message came meanwhile. */
static int spin_for_message(weft_chan_t *ch) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    for (int i = 0; i < 64; i++)
      if (weft_chan_count(ch) > 0) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
           20000);
  return 0;
}

/* Waits on the loop until ch may be ready for event (closed counts), or
 * left ms (-1: no limit).  In a task, suspends it and returns what k
 * returns once resumed (the stack as it was, plus ok, error): k(ctx = the
 * wait) reads the outcome with cw_finish.  In the main chunk, runs the
 * loop and returns -1, the outcome in *status. */
static int wait_ready(lua_State *L, weft_chan_t *ch, int event, int64_t left,
                      const char *fname, lua_KFunction k, int *status) {
  lweft_state *st = lweft_state_of(L);
  void *task = lweft_io_begin(L, st, fname); /* on top, if any */
  cwlist *list = waits_of(L);
  cwait *cw = calloc(1, sizeof *cw);
  if (!cw) return luaL_error(L, "not enough memory");
  cw->st = st;
  cw->ch = ch;
  cw->pending = 1;
  cw->chan_live = cw->lua_live = 1;
  if (left >= 0 && weft_once(st->loop, (uint64_t)left, on_chan_timer, cw, 0,
                             &cw->timer)) {
    free(cw);
    return luaL_error(L, "not enough memory");
  }
  if (weft_chan_wait(ch, st->loop, event, on_chan_ready, cw, &cw->w)) {
    if (cw->timer) weft_watch_cancel(st->loop, cw->timer);
    free(cw);
    return luaL_error(L, "not enough memory");
  }
  cw->list = list;
  cw->next = list->head;
  if (list->head) list->head->prev = cw;
  list->head = cw;
  if (task)
    return lweft_io_suspend(L, task, &cw->iow, cw_abandon, cw, (lua_KContext)cw,
                            k);
  if (lweft_io_run_while(L, st, &cw->pending, 1, fname) != LUA_OK) {
    cw_abandon(L, cw);
    return lua_error(L);
  }
  *status = cw_finish(cw);
  return -1;
}

/* ---- recv ---------------------------------------------------------------------- */

/* The stack of a receive that waits on the loop: self, timeout, deadline
 * (loop time in ms, or -1). */
static int recv_on_loop(lua_State *L, weft_chan_t *ch);

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  cwait *cw = (cwait *)ctx;
  weft_chan_t *ch;
  (void)status;
  if (!lua_toboolean(L, 4)) { /* cancelled: the hook abandoned cw */
    lua_settop(L, 5);
    return lua_error(L);
  }
  lua_settop(L, 3);
  ch = cw->ch;
  if (cw_finish(cw) == WEFT_ETIMEDOUT) /* one last look */
    return take(L, ch, 0) == 0 ? 1 : fail(L, "timeout");
  return recv_on_loop(L, ch);
}

static int recv_on_loop(lua_State *L, weft_chan_t *ch) {
  lweft_state *st = lweft_state_of(L);
  lua_Integer deadline = lua_tointeger(L, 3);
  for (;;) {
    int64_t left = -1;
    int r = take(L, ch, 0), status = 0;
    if (r == 0) return 1;
    if (r == WEFT_ECLOSED) return fail(L, "closed");
    if (r != WEFT_EAGAIN) return raise_err(L, r);
    if (deadline >= 0) {
      left = deadline - (lua_Integer)weft_loop_now(st->loop);
      if (left <= 0) return fail(L, "timeout");
    }
    if (spin_for_message(ch)) continue;
    r = wait_ready(L, ch, WEFT_CHAN_RECV, left, "recv", recv_k, &status);
    if (r >= 0) return r; /* a task: it was resumed */
    if (status == WEFT_ETIMEDOUT)
      return take(L, ch, 0) == 0 ? 1 : fail(L, "timeout");
  }
}

/* ch:recv([timeout_ms]) -> the next value; nil, "closed" / "timeout" */
static int lw_recv(lua_State *L) {
  weft_chan_t *ch = self_chan(L, "recv");
  int64_t ms = opt_timeout(L, 2, "recv");
  int r;
  lua_settop(L, 2);
  r = take(L, ch, 0);
  if (r == 0) return 1;
  if (r == WEFT_ECLOSED) return fail(L, "closed");
  if (r != WEFT_EAGAIN) return raise_err(L, r);
  if (ms == 0) return fail(L, "timeout");
  if (lweft_can_block(L)) {
    r = take(L, ch, ms);
    if (r == 0) return 1;
    if (r == WEFT_ECLOSED || r == WEFT_ETIMEDOUT) return fail(L, why(r));
    return raise_err(L, r);
  }
  lua_pushinteger(L, ms < 0 ? -1
                            : (lua_Integer)weft_loop_now(lweft_state_of(L)->loop) + ms);
  return recv_on_loop(L, ch);
}

/* ch:try_recv() -> the value; or nil, "empty" / "closed" */
static int lw_try_recv(lua_State *L) {
  int r = take(L, self_chan(L, "try_recv"), 0);
  if (r == 0) return 1;
  if (r == WEFT_EAGAIN || r == WEFT_ECLOSED) return fail(L, why(r));
  return raise_err(L, r);
}

/* for v in ch do ... end: the next value, nil once closed and drained */
static int lw_call(lua_State *L) {
  lua_settop(L, 1);
  return lw_recv(L);
}

/* ---- send -------------------------------------------------------------------- */

typedef struct sendop {
  weft_chan_t *ch;
  int64_t timeout_ms;
  int keep; /* a full channel: push the message for a retry */
  int err;
} sendop;

/* Sends a message: a short one is copied, a long one's block handed over
 * (use of lweft_encode_with).  A full channel gets the message kept in a
 * box on top, for a send that waits on the loop. */
static int put(lua_State *L, void *ud, const char *p, size_t len,
               lweft_msgbox *box) {
  sendop *op = ud;
  if (!box) {
    op->err = weft_chan_send(op->ch, p, len, op->timeout_ms);
  } else if (!(op->err = weft_chan_send_block(op->ch, box->p, len,
                                              op->timeout_ms))) {
    box->p = NULL; /* the channel's now */
  }
  if (op->err == WEFT_EAGAIN && op->keep) {
    lweft_msgbox *kept = lweft_msgbox_push(L);
    kept->p = lweft_msg_take(L, p, len, box);
    kept->len = len;
  }
  return 0;
}

/* The stack of a send that waits on the loop: self, value, the message's
 * box. */
static int send_on_loop(lua_State *L, weft_chan_t *ch);

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  cwait *cw = (cwait *)ctx;
  weft_chan_t *ch;
  (void)status;
  if (!lua_toboolean(L, 4)) { /* cancelled: the hook abandoned cw */
    lua_settop(L, 5);
    return lua_error(L);
  }
  lua_settop(L, 3);
  ch = cw->ch;
  cw_finish(cw);
  return send_on_loop(L, ch);
}

static int send_on_loop(lua_State *L, weft_chan_t *ch) {
  lweft_msgbox *m = lua_touserdata(L, 3);
  for (;;) {
    int status = 0, r = weft_chan_send_block(ch, m->p, m->len, 0);
    if (r == 0) {
      m->p = NULL; /* the channel's now */
      lua_pushboolean(L, 1);
      return 1;
    }
    if (r == WEFT_ECLOSED) return lweft_error(L, "send on a closed channel");
    if (r != WEFT_EAGAIN) return raise_err(L, r);
    r = wait_ready(L, ch, WEFT_CHAN_SEND, -1, "send", send_k, &status);
    if (r >= 0) return r;
  }
}

/* ch:send(v) -> true; waits while full; raises on a closed channel */
static int lw_send(lua_State *L) {
  sendop op;
  op.ch = self_chan(L, "send");
  op.timeout_ms = lweft_can_block(L) ? -1 : 0;
  op.keep = 1;
  lua_settop(L, 2);
  lweft_encode_with(L, 2, 1, "value", put, &op);
  if (op.err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (op.err == WEFT_ECLOSED) return lweft_error(L, "send on a closed channel");
  if (op.err != WEFT_EAGAIN) return raise_err(L, op.err);
  return send_on_loop(L, op.ch); /* the message is at 3 */
}

/* ch:try_send(v) -> true; or false, "full" / "closed" */
static int lw_try_send(lua_State *L) {
  sendop op;
  op.ch = self_chan(L, "try_send");
  op.timeout_ms = 0;
  op.keep = 0;
  lua_settop(L, 2);
  lweft_encode_with(L, 2, 1, "value", put, &op);
  if (op.err == WEFT_EAGAIN || op.err == WEFT_ECLOSED) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, op.err == WEFT_EAGAIN ? "full" : "closed");
    return 2;
  }
  if (op.err) return raise_err(L, op.err);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- the rest ------------------------------------------------------------------ */

static int lw_close(lua_State *L) {
  lua_pushboolean(L, weft_chan_close(self_chan(L, "close")) == 0);
  return 1;
}

static int lw_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)weft_chan_count(self_chan(L, "count")));
  return 1;
}

static int lw_tostring(lua_State *L) {
  lua_pushfstring(L, LWEFT_CHAN_MT " (%p)", (void *)self_chan(L, "__tostring"));
  return 1;
}

/* chan_new(capacity|nil) -> channel */
static int lw_chan_new(lua_State *L) {
  size_t cap = lua_isnil(L, 1) ? SIZE_MAX : (size_t)luaL_checkinteger(L, 1);
  weft_chan_t *ch;
  if (weft_chan_new(cap, &ch)) return luaL_error(L, "not enough memory");
  lweft_push_chan(L, ch);
  return 1;
}

void lweft_chan_prims(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"send", lw_send},   {"try_send", lw_try_send},
      {"recv", lw_recv},   {"try_recv", lw_try_recv},
      {"close", lw_close}, {"count", lw_count},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__call", lw_call}, {"__tostring", lw_tostring}, {"__gc", lweft_chan_gc},
      {NULL, NULL}};
  if (luaL_newmetatable(L, LWEFT_CHAN_MT)) {
    lua_pushvalue(L, -3); /* the state, for the waits */
    luaL_setfuncs(L, meta, 1);
    luaL_newlibtable(L, methods);
    lua_pushvalue(L, -4);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
  }
  lweft_chan_class(L);
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, lw_chan_new, 1);
  lua_setfield(L, -2, "chan_new");
}
