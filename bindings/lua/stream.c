/* stream.c: the C half of weft's streams: a handle userdata over a core
 * stream with non-blocking primitives (read one format, write, wait,
 * close), sockets, addresses, lookups and weft.poll.  stream.lua builds
 * the public objects (weft.tcp, weft.pipe, weft.wrap...) on them: it holds
 * the per-direction locks and the waits, so that every call reads as
 * blocking code in a task, in the main chunk, or as a promise. */
#include "lweft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HANDLE_MT "weft.handle"

/* The default line limit of read "l" / "L" and lines(): the bytes a line
 * may have before its newline (Go's bufio.Scanner and Python's asyncio
 * streams use the same 64 KiB).  Past it a read fails with LINE_TOO_LONG
 * instead of buffering without bound. */
#define MAXLINE_DEFAULT ((size_t)64 * 1024)

/* read_fmt's code for a line over the limit, outside the WEFT_E* ranges:
 * reported as "line too long", "EMSGSIZE" (the errno of a message longer
 * than its buffer, the code a datagram longer than recvfrom's size gets
 * too). */
#define LINE_TOO_LONG (-4999)

struct lhandle;

/* One direction's wait: what the core's callback and a cancellation find. */
typedef struct wcell {
  struct lhandle *h;
  int event;
  int pending;
  int status; /* how the last wait ended */
  lweft_iowait iow;
} wcell;

typedef struct lhandle {
  weft_stream_t *s; /* NULL once closed */
  lweft_state *st;
  size_t scanned; /* buffered bytes already searched for a newline */
  size_t maxline; /* the line limit (setoption "maxline") */
  wcell cell[2];  /* WEFT_STREAM_READ - 1, WEFT_STREAM_WRITE - 1 */
  /* whether a call holds the direction's turn (stream.lua's acquire and
   * release; the methods' fast paths below) */
  unsigned char turn[2];
} lhandle;



/* HANDLE_MT's metatable, for lweft_testudata (no name lookup). */
static const char handle_key = 0;

static lhandle *check_handle(lua_State *L, int idx) {
  lhandle *h = lweft_testudata(L, idx, &handle_key);
  if (!h) luaL_typeerror(L, idx, HANDLE_MT);
  if (!h->s) lweft_error(L, "attempt to use a closed stream");
  return h;
}

weft_stream_t *lweft_check_stream(lua_State *L, int idx) {
  return check_handle(L, idx)->s;
}

/* The message and the code's name of err (or of LINE_TOO_LONG). */
static const char *fail_message(int err) {
  return err == LINE_TOO_LONG ? "line too long" : weft_strerror(err);
}

static int fail_code(int err) {
  return err == LINE_TOO_LONG ? WEFT_EMSGSIZE : err;
}

/* Pushes nil, message, code; returns 3. */
static int push_fail(lua_State *L, int err) {
  return lweft_push_fail(L, fail_message(err), fail_code(err));
}

/* The message for a read or write error of h: OpenSSL's reason in words
 * for a TLS failure ("tlsv13 alert certificate required"). */
static const char *io_strerror(lhandle *h, int err) {
  const char *why = err == WEFT_ETLS || err == WEFT_ECERT
                        ? weft_tls_reason(h->s) : NULL;
  return why ? why : fail_message(err);
}

/* push_fail with io_strerror's message. */
static int push_io_fail(lua_State *L, lhandle *h, int err) {
  return lweft_push_fail(L, io_strerror(h, err), fail_code(err));
}

static void release(lhandle *h) {
  if (!h->s) return;
  weft_stream_unwait(h->s, WEFT_STREAM_READ);
  weft_stream_unwait(h->s, WEFT_STREAM_WRITE);
  weft_stream_close(h->s);
  h->s = NULL;
}

static int lw_h_gc(lua_State *L) {
  release(luaL_checkudata(L, 1, HANDLE_MT));
  return 0;
}

/* open(fd, keep) -> handle, or nil, message, code */
static int lw_open(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  int fd = (int)luaL_checkinteger(L, 1), err;
  lhandle *h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h); /* closed until the stream exists: __gc is safe */
  h->st = st;
  h->cell[0].h = h->cell[1].h = h;
  h->cell[0].event = WEFT_STREAM_READ;
  h->cell[1].event = WEFT_STREAM_WRITE;
  h->maxline = MAXLINE_DEFAULT;
  luaL_setmetatable(L, HANDLE_MT);
  err = weft_stream_open(st->loop, fd, lua_toboolean(L, 2)
                                           ? WEFT_STREAM_KEEP_FD : 0, &h->s);
  if (err) return push_fail(L, err);
  return 1;
}

/* ---- reading one format --------------------------------------------------- */

/* Pushes the first n buffered bytes as a string and consumes them. */
static void take(lua_State *L, lhandle *h, size_t n, size_t drop) {
  size_t len;
  const char *b = weft_stream_buffered(h->s, &len);
  lua_pushlstring(L, b, n);
  weft_stream_consume(h->s, n + drop);
  h->scanned = 0;
}

/* Whether a fill's result r ends what a read can get: the end of file,
 * or an error of the descriptor (a reset), when len bytes are buffered
 * before it.  The read then returns those bytes as it would at the end
 * of file, and the core keeps the error for the next read: nothing read
 * is lost, and a reset never looks like a clean end. */
static int at_end(int r, size_t len) {
  return r == 0 || (r < 0 && r != WEFT_EAGAIN && r != WEFT_ENOMEM && len > 0);
}

/* Reads one format (the value at idx: a byte count, or "l", "L", "a" with
 * or without '*') from the buffer and the descriptor without waiting.
 * Returns 1 with the value pushed (nil at end of file), 0 when it must
 * wait for readability, or a negative error code, pushing nothing. */
static int read_fmt(lua_State *L, lhandle *h, int idx) {
  size_t len;
  const char *b;
  int r;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, idx);
    for (;;) {
      b = weft_stream_buffered(h->s, &len);
      if (n > 0 && len >= (size_t)n) {
        take(L, h, (size_t)n, 0);
        return 1;
      }
      if (n <= 0 && len > 0) { /* 0: "" unless at EOF; -n: up to n now */
        take(L, h, n == 0 ? 0 : (len < (size_t)-n ? len : (size_t)-n), 0);
        return 1;
      }
      r = weft_stream_fill(h->s);
      if (at_end(r, len)) { /* end of file: what there is, or nil */
        if (len > 0) take(L, h, len, 0);
        else lua_pushnil(L);
        return 1;
      }
      if (r < 0) return r == WEFT_EAGAIN ? 0 : r;
    }
  } else {
    const char *fmt = lua_tostring(L, idx);
    int keep;
    if (*fmt == '*') fmt++;
    keep = *fmt == 'L';
    for (;;) {
      b = weft_stream_buffered(h->s, &len);
      if (*fmt == 'a') {
        r = weft_stream_fill(h->s);
        if (at_end(r, len)) {
          if (len > 0) take(L, h, len, 0);
          else lua_pushliteral(L, "");
          return 1;
        }
      } else {
        /* The newline is searched for within the limit only, so a line
         * past it fails as soon as the limit's bytes are buffered, and the
         * buffer stays near the limit whatever the peer sends. */
        size_t upto = len <= h->maxline ? len : h->maxline + 1;
        const char *nl =
            upto > h->scanned ? memchr(b + h->scanned, '\n', upto - h->scanned)
                              : NULL;
        if (nl) {
          size_t n = (size_t)(nl - b);
          take(L, h, keep ? n + 1 : n, keep ? 0 : 1);
          return 1;
        }
        if (len > h->maxline) { /* the bytes stay buffered */
          h->scanned = upto;
          return LINE_TOO_LONG;
        }
        h->scanned = len;
        r = weft_stream_fill(h->s);
        if (at_end(r, len)) { /* a last line without its newline, or nil */
          if (len > 0) take(L, h, len, 0);
          else lua_pushnil(L);
          return 1;
        }
      }
      if (r < 0) return r == WEFT_EAGAIN ? 0 : r;
    }
  }
}

/* read(h, fmt): true, value (nil at end of file), or false when it must
 * wait for readability, or nil, message, code. */
static int lw_read(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  int r = read_fmt(L, h, 2);
  if (r < 0) return push_io_fail(L, h, r);
  lua_pushboolean(L, r);
  if (r) lua_insert(L, -2);
  return 1 + r;
}

/* write(h, s, offset) -> new offset, or nil, message, code.  Writes s from
 * offset as far as the kernel and the write queue take it. */
static int lw_write(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  size_t len, off = (size_t)luaL_checkinteger(L, 3), took;
  const char *data = luaL_checklstring(L, 2, &len);
  int err;
  if (off > len) off = len;
  err = weft_stream_write(h->s, data + off, len - off, &took);
  if (err) return push_io_fail(L, h, err);
  lua_pushinteger(L, (lua_Integer)(off + took));
  return 1;
}

/* Pushes how a wait ended: true, or nil, "timeout" / "closed" / message,
 * code. */
static int push_wait_result(lua_State *L, int status) {
  if (status == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return lweft_push_fail(L,
                         status == WEFT_ETIMEDOUT ? "timeout"
                         : status == WEFT_ECLOSED ? "closed"
                                                  : NULL,
                         status);
}

/* The core's wait callback (data: the cell): records the outcome and
 * wakes the task that waits, if a task does. */
static void on_wait(weft_stream_t *s, int event, int status, void *data) {
  wcell *c = data;
  (void)s, (void)event;
  c->pending = 0;
  c->status = status;
  lweft_io_wake(c->h->st, &c->iow);
}

/* A cancelled task withdraws its wait. */
static void cancel_wait(lua_State *L, void *data) {
  wcell *c = data;
  (void)L;
  if (c->pending && c->h->s) weft_stream_unwait(c->h->s, c->event);
  c->pending = 0;
}

static int waitio_k(lua_State *L, int status, lua_KContext ctx) {
  lhandle *h = lua_touserdata(L, 1);
  (void)status;
  if (lua_gettop(L) >= 5 && !lua_toboolean(L, 5)) { /* cancelled */
    lua_settop(L, 6);
    return lua_error(L);
  }
  return push_wait_result(L, h->cell[ctx - 1].status);
}

/* A wait's timeout in whole ms (rounded up; a huge one is no limit that
 * can overflow), from a number >= 0. */
static int64_t wait_ms(lua_Number n) {
  return n >= 9e15 ? INT64_MAX / 2 : (int64_t)(n + 0.999999);
}

/* waitio(h, event, timeout_ms|nil, fname) -> true, or nil, "timeout",
 * "ETIMEDOUT" / nil, "closed", "ECLOSED" / nil, message, code.  Suspends
 * the running task (cancellable), or runs the loop in the main chunk. */
static int lw_waitio(lua_State *L) {
  lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
  int event = (int)luaL_checkinteger(L, 2), err;
  const char *fname = luaL_optstring(L, 4, "wait");
  int64_t ms = -1;
  wcell *c;
  void *task;
  if (event != WEFT_STREAM_READ && event != WEFT_STREAM_WRITE)
    return luaL_argerror(L, 2, "bad event");
  if (!lua_isnil(L, 3)) ms = wait_ms(luaL_checknumber(L, 3));
  if (!h->s) return push_wait_result(L, WEFT_ECLOSED);
  c = &h->cell[event - 1];
  lua_settop(L, 4);
  task = lweft_io_begin(L, h->st, fname); /* at 5, if any */
  err = weft_stream_wait(h->s, event, ms, on_wait, c);
  if (err) {
    lua_settop(L, 4);
    return push_wait_result(L, err);
  }
  c->pending = 1;
  c->status = 0;
  if (!task) {
    if (lweft_io_run_while(L, h->st, &c->pending, 1, fname) != LUA_OK) {
      cancel_wait(L, c);
      return lua_error(L);
    }
    return push_wait_result(L, c->status);
  }
  return lweft_io_suspend(L, task, &c->iow, cancel_wait, c, event, waitio_k);
}

/* ---- the methods' fast paths ------------------------------------------- */

/* Stream:read and Stream:write are C closures over stream.lua's objects
 * (tables { h = handle, rq, wq, timeout, ... }): a call that
 * the buffer or one syscall satisfies, and a read that waits in a task,
 * never enter the Lua VM.  The rest (several formats or values, a turn
 * that is taken, waits in the main chunk, a write the queue cannot take
 * whole) goes to stream.lua's implementation, after the arguments were
 * checked here.  Upvalues: */
enum {
  UP_MT = 1,  /* the Stream metatable */
  UP_SLOW,    /* stream.lua's implementation of the method */
  UP_REST,    /* write: stream.lua's write of a string from an offset */
  UP_RELEASE, /* stream.lua's release(s, dir): hands a turn on */
  UP_KH,      /* the keys "h", the queue ("rq" / "wq") and "timeout" */
  UP_KQ,
  UP_KTIMEOUT,
  UP_HMT, /* the handles' metatable */
  UP_COUNT = UP_HMT
};

/* Raises "bad argument #n to 'fname' (msg)" at the caller's position, n
 * counting after self as stream.lua's methods do. */
static int method_argerror(lua_State *L, int n, const char *fname,
                           const char *msg) {
  return lweft_error(L, "bad argument #%d to '%s' (%s)", n, fname, msg);
}

/* The __name of the value at idx's metatable, or its type's name. */
static const char *value_name(lua_State *L, int idx) {
  const char *name = luaL_typename(L, idx);
  int t = luaL_getmetafield(L, idx, "__name");
  if (t == LUA_TSTRING) name = lua_tostring(L, -1); /* the metatable keeps it */
  if (t != LUA_TNIL) lua_pop(L, 1);
  return name;
}

/* The handle of the stream at 1; raises for something else or a closed
 * stream. */
static lhandle *method_self(lua_State *L, const char *fname) {
  lhandle *h = NULL;
  int top = lua_gettop(L);
  /* (Metatables compared by address: cheaper than lua_rawequal.) */
  if (!lua_getmetatable(L, 1) ||
      lua_topointer(L, -1) != lua_topointer(L, lua_upvalueindex(UP_MT)))
    method_argerror(L, 1, fname, lua_pushfstring(L, "weft.stream expected, got %s",
                                                 value_name(L, 1)));
  lua_pushvalue(L, lua_upvalueindex(UP_KH));
  if (lua_rawget(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, -1) &&
      lua_topointer(L, -1) == lua_topointer(L, lua_upvalueindex(UP_HMT)))
    h = lua_touserdata(L, top + 2);
  lua_settop(L, top);
  if (!h || !h->s) lweft_error(L, "attempt to use a closed stream");
  return h;
}

/* Gives the direction's turn back (dir: 1 read, 2 write): to the first
 * call queued for it, if the object has a queue (stream.lua's release),
 * else simply frees it. */
static void end_turn(lua_State *L, lhandle *h, int dir) {
  lua_pushvalue(L, lua_upvalueindex(UP_KQ));
  if (lua_rawget(L, 1) != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(UP_RELEASE));
    lua_pushvalue(L, 1);
    lua_pushinteger(L, dir);
    lua_call(L, 2, 0);
    return;
  }
  lua_pop(L, 1);
  h->turn[dir - 1] = 0;
}

/* The stream's timeout in ms for a wait (s.timeout), -1 for none. */
static int64_t stream_timeout(lua_State *L) {
  int64_t ms = -1;
  lua_pushvalue(L, lua_upvalueindex(UP_KTIMEOUT));
  if (lua_rawget(L, 1) == LUA_TNUMBER) ms = wait_ms(lua_tonumber(L, -1));
  lua_pop(L, 1);
  return ms;
}

static int method_slow_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return lua_gettop(L);
}

/* Hands the call (self and the n - 1 values after it) to stream.lua. */
static int method_slow(lua_State *L, int n) {
  lua_settop(L, n);
  lua_pushvalue(L, lua_upvalueindex(UP_SLOW));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, method_slow_k);
  return lua_gettop(L);
}

/* Pushes nil, "<op>: message", code; returns 3. */
static int push_op_fail(lua_State *L, lhandle *h, const char *op, int err) {
  return lweft_push_failf(L, fail_code(err), "%s: %s", op,
                          io_strerror(h, err));
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

/* Waits, holding the read turn, for the task at 3 (popped) to read the
 * format at 2. */
static int read_wait(lua_State *L, lhandle *h, void *task) {
  wcell *c = &h->cell[0];
  int err = weft_stream_wait(h->s, WEFT_STREAM_READ, stream_timeout(L),
                             on_wait, c);
  if (err) {
    lua_settop(L, 2);
    end_turn(L, h, WEFT_STREAM_READ);
    return push_wait_result(L, err);
  }
  c->pending = 1;
  c->status = 0;
  return lweft_io_suspend(L, task, &c->iow, cancel_wait, c, (lua_KContext)h,
                          read_k);
}

/* A read woke from its wait (stack: s, fmt, ok, values...). */
static int read_k(lua_State *L, int status, lua_KContext ctx) {
  lhandle *h = (lhandle *)ctx;
  int r;
  void *task;
  (void)status;
  if (!lua_toboolean(L, 3)) { /* cancelled: the error is at 4 */
    lua_settop(L, 4);
    end_turn(L, h, WEFT_STREAM_READ);
    return lua_error(L);
  }
  lua_settop(L, 2);
  if (h->cell[0].status || !h->s) {
    end_turn(L, h, WEFT_STREAM_READ);
    return push_wait_result(L, h->s ? h->cell[0].status : WEFT_ECLOSED);
  }
  r = read_fmt(L, h, 2);
  if (r == 0 && (task = lweft_io_begin(L, h->st, "read")) != NULL)
    return read_wait(L, h, task);
  if (r <= 0) { /* (0: cannot happen, the task is the same) */
    end_turn(L, h, WEFT_STREAM_READ);
    return push_op_fail(L, h, "read", r < 0 ? r : WEFT_EAGAIN);
  }
  end_turn(L, h, WEFT_STREAM_READ);
  return 1;
}

static const char *const read_formats[] = {"l", "L", "a", "*l", "*L", "*a",
                                           NULL};

/* Stream:read(...) */
static int lw_s_read(lua_State *L) {
  int n = lua_gettop(L), i, r;
  lhandle *h = method_self(L, "read");
  void *task;
  if (n == 1) {
    lua_pushliteral(L, "l");
    n = 2;
  }
  for (i = 2; i <= n; i++) {
    if (lua_type(L, i) == LUA_TNUMBER) {
      if (!lua_isinteger(L, i))
        method_argerror(L, i - 1, "read", "number has no integer representation");
    } else {
      const char *f = lua_type(L, i) == LUA_TSTRING ? lua_tostring(L, i) : NULL;
      int k = 0;
      while (f && read_formats[k] && strcmp(f, read_formats[k])) k++;
      if (!f || !read_formats[k]) method_argerror(L, i - 1, "read", "invalid format");
    }
  }
  if (n != 2 || h->turn[0]) return method_slow(L, n);
  r = read_fmt(L, h, 2);
  if (r > 0) return 1;
  if (r < 0) return push_op_fail(L, h, "read", r);
  task = lweft_io_begin(L, h->st, "read"); /* at 3 */
  if (!task) return method_slow(L, 2); /* the main chunk runs the loop */
  h->turn[0] = 1;
  return read_wait(L, h, task);
}

/* Stream:write(...) */
static int lw_s_write(lua_State *L) {
  int n = lua_gettop(L), i, err;
  lhandle *h = method_self(L, "write");
  size_t len, took;
  const char *data;
  for (i = 2; i <= n; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      method_argerror(L, i - 1, "write",
                      lua_pushfstring(L, "string expected, got %s",
                                      value_name(L, i)));
  }
  if (n != 2 || lua_type(L, 2) != LUA_TSTRING || h->turn[1])
    return method_slow(L, n);
  data = lua_tolstring(L, 2, &len);
  err = weft_stream_write(h->s, data, len, &took);
  if (err) return push_op_fail(L, h, "write", err);
  if (took == len) {
    lua_settop(L, 1);
    return 1;
  }
  /* The queue is full: stream.lua waits for room, from took on. */
  lua_pushvalue(L, lua_upvalueindex(UP_REST));
  lua_insert(L, 1);
  lua_pushinteger(L, (lua_Integer)took);
  lua_callk(L, 3, LUA_MULTRET, 0, method_slow_k);
  return lua_gettop(L);
}

/* methods(Stream, slow) -> read, write: the fast methods, over slow =
 * { read =, write =, write_rest =, release = } from stream.lua. */
static int lw_methods(lua_State *L) {
  static const struct {
    lua_CFunction fn;
    const char *slow, *q;
  } m[] = {{lw_s_read, "read", "rq"}, {lw_s_write, "write", "wq"}};
  int i;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  for (i = 0; i < 2; i++) {
    lua_pushvalue(L, 1);
    lua_getfield(L, 2, m[i].slow);
    lua_getfield(L, 2, "write_rest");
    lua_getfield(L, 2, "release");
    lua_pushliteral(L, "h");
    lua_pushstring(L, m[i].q);
    lua_pushliteral(L, "timeout");
    luaL_getmetatable(L, HANDLE_MT);
    lua_pushcclosure(L, m[i].fn, UP_COUNT);
  }
  return 2;
}

/* close(h): pending waits get nil, "handle is closed", "ECLOSED" */
static int lw_close(lua_State *L) {
  lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
  if (h->s) weft_stream_close(h->s);
  h->s = NULL;
  return 0;
}

static int lw_fd(lua_State *L) {
  lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
  lua_pushinteger(L, h->s ? weft_stream_fd(h->s) : -1);
  return 1;
}

/* take_turn(h, dir) -> true if the turn was free (now taken), false if a
 * call holds it.  end_turn(h, dir) frees it. */
static int lw_take_turn(lua_State *L) {
  lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
  int dir = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, dir == 1 || dir == 2, 2, "bad direction");
  lua_pushboolean(L, !h->turn[dir - 1]);
  h->turn[dir - 1] = 1;
  return 1;
}

static int lw_end_turn(lua_State *L) {
  lhandle *h = luaL_checkudata(L, 1, HANDLE_MT);
  int dir = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, dir == 1 || dir == 2, 2, "bad direction");
  h->turn[dir - 1] = 0;
  return 0;
}

/* pending(h) -> whether a read can go on without the descriptor: bytes
 * buffered, or held by TLS (weft.socket's dirty) */
static int lw_pending(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  lua_pushboolean(L, weft_stream_pending(h->s) == 1);
  return 1;
}

static int lw_queued(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  lua_pushinteger(L, (lua_Integer)weft_stream_queued(h->s));
  return 1;
}

static int lw_shutdown(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  int err = weft_stream_shutdown(h->s);
  if (err) return push_fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- addresses -------------------------------------------------------- */

static const char *family_name(int af) {
  switch (af) {
  case AF_INET: return "inet";
  case AF_INET6: return "inet6";
  case AF_UNIX: return "unix";
  default: return "unknown";
  }
}

/* Pushes host, port (inet), or the path (unix); returns how many. */
static int push_sockaddr(lua_State *L, const struct sockaddr *sa,
                         socklen_t len) {
  char host[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)sa;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    lua_pushstring(L, host);
    lua_pushinteger(L, ntohs(a->sin_port));
    return 2;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)sa;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    lua_pushstring(L, host);
    lua_pushinteger(L, ntohs(a->sin6_port));
    return 2;
  }
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *a = (const void *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
                   ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    while (n > 0 && a->sun_path[n - 1] == '\0') n--;
    lua_pushlstring(L, a->sun_path, n);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* Fills ss from (family, address, port) at idx..idx+2; returns its length
 * or 0 for an address that does not parse. */
static socklen_t to_sockaddr(lua_State *L, int idx,
                             struct sockaddr_storage *ss) {
  const char *fam = luaL_checkstring(L, idx);
  size_t alen;
  const char *addr = luaL_checklstring(L, idx + 1, &alen);
  lua_Integer port = luaL_optinteger(L, idx + 2, 0);
  memset(ss, 0, sizeof *ss);
  if (!strcmp(fam, "inet")) {
    struct sockaddr_in *a = (void *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, addr, &a->sin_addr) == 1 ? sizeof *a : 0;
  }
  if (!strcmp(fam, "inet6")) {
    struct sockaddr_in6 *a = (void *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, addr, &a->sin6_addr) == 1 ? sizeof *a : 0;
  }
  if (!strcmp(fam, "unix")) {
    struct sockaddr_un *a = (void *)ss;
    if (alen == 0 || alen >= sizeof a->sun_path) return 0;
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, addr, alen);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen + 1);
  }
  return 0;
}

static int socktype_of(lua_State *L, int idx) {
  const char *t = luaL_optstring(L, idx, "stream");
  if (!strcmp(t, "stream")) return SOCK_STREAM;
  if (!strcmp(t, "dgram")) return SOCK_DGRAM;
  return luaL_argerror(L, idx, "socket type must be 'stream' or 'dgram'");
}

/* listen(family, address, port, socktype, backlog, flags) -> fd, or nil,
 * message, code */
static int lw_listen(lua_State *L) {
  struct sockaddr_storage ss;
  socklen_t len = to_sockaddr(L, 1, &ss);
  int fd;
  if (!len) return push_fail(L, WEFT_EINVAL);
  fd = weft_socket_listen((struct sockaddr *)&ss, len, socktype_of(L, 4),
                          (int)luaL_optinteger(L, 5, 0),
                          (int)luaL_optinteger(L, 6, 0));
  if (fd < 0) return push_fail(L, fd);
  lua_pushinteger(L, fd);
  return 1;
}

/* connect(family, address, port, socktype) -> fd (connecting), or nil,
 * message, code */
static int lw_connect(lua_State *L) {
  struct sockaddr_storage ss;
  socklen_t len = to_sockaddr(L, 1, &ss);
  int fd;
  if (!len) return push_fail(L, WEFT_EINVAL);
  fd = weft_socket_connect((struct sockaddr *)&ss, len, socktype_of(L, 4));
  if (fd < 0) return push_fail(L, fd);
  lua_pushinteger(L, fd);
  return 1;
}

/* sockerr(h) -> true, or nil, message, code: how a connect ended */
static int lw_sockerr(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  int err = weft_socket_error(weft_stream_fd(h->s));
  if (err) return push_fail(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* accept(h) -> fd, false when none is waiting, or nil, message, code */
static int lw_accept(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  int fd = weft_socket_accept(weft_stream_fd(h->s));
  if (fd == WEFT_EAGAIN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (fd < 0) return push_fail(L, fd);
  lua_pushinteger(L, fd);
  return 1;
}

/* name(h, peer) -> host, port | path, or nil, message, code */
static int lw_name(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd = weft_stream_fd(h->s), r;
  r = lua_toboolean(L, 2) ? getpeername(fd, (struct sockaddr *)&ss, &len)
                          : getsockname(fd, (struct sockaddr *)&ss, &len);
  if (r < 0) return push_fail(L, -errno);
  return push_sockaddr(L, (struct sockaddr *)&ss, len);
}

static const struct {
  const char *name;
  int level, opt;
  int is_bool;
} options[] = {
    {"nodelay", IPPROTO_TCP, TCP_NODELAY, 1},
    {"keepalive", SOL_SOCKET, SO_KEEPALIVE, 1},
    {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, 1},
    {"reuseport", SOL_SOCKET, SO_REUSEPORT, 1},
    {"broadcast", SOL_SOCKET, SO_BROADCAST, 1},
    {"sndbuf", SOL_SOCKET, SO_SNDBUF, 0},
    {"rcvbuf", SOL_SOCKET, SO_RCVBUF, 0},
};

/* setoption(h, name, value) -> true, or nil, message, code; raises for an
 * unknown name or a value of the wrong type (argument numbers as the
 * method sees them). */
static int lw_setoption(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  const char *name = luaL_checkstring(L, 2);
  size_t i;
  int v;
  for (i = 0; i < sizeof options / sizeof *options; i++)
    if (!strcmp(name, options[i].name)) break;
  if (!strcmp(name, "writequeue")) {
    lua_Integer n = luaL_checkinteger(L, 3);
    if (n <= 0) luaL_argerror(L, 3, "write queue limit must be > 0");
    weft_stream_set_queue_limit(h->s, (size_t)n);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!strcmp(name, "maxline")) {
    lua_Integer n = luaL_checkinteger(L, 3);
    if (n <= 0) luaL_argerror(L, 3, "line limit must be > 0");
    h->maxline = (size_t)n;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (i == sizeof options / sizeof *options)
    return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", name));
  if (options[i].is_bool) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    v = lua_toboolean(L, 3);
  } else {
    lua_Integer n = luaL_checkinteger(L, 3);
    luaL_argcheck(L, n > 0 && n <= 0x7fffffff, 3, "size must be > 0");
    v = (int)n;
  }
  if (setsockopt(weft_stream_fd(h->s), options[i].level, options[i].opt, &v,
                 sizeof v) < 0)
    return push_fail(L, -errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* sendto(h, data, family, address, port) -> true, false when it must wait
 * for writability, or nil, message, code */
static int lw_sendto(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  struct sockaddr_storage ss;
  socklen_t alen = to_sockaddr(L, 3, &ss);
  int r;
  if (!alen) return push_fail(L, WEFT_EINVAL);
  r = weft_socket_sendto(weft_stream_fd(h->s), data, len,
                         (struct sockaddr *)&ss, alen);
  if (r == WEFT_EAGAIN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (r < 0) return push_fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* recvfrom(h, size) -> data, host, port; false when none is waiting; or
 * nil, message, code */
static int lw_recvfrom(lua_State *L) {
  lhandle *h = check_handle(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  struct sockaddr_storage ss;
  unsigned alen = sizeof ss;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)size);
  int r = weft_socket_recvfrom(weft_stream_fd(h->s), p, (size_t)size,
                               (struct sockaddr *)&ss, &alen);
  if (r == WEFT_EAGAIN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (r < 0) return push_fail(L, r);
  luaL_pushresultsize(&b, (size_t)r);
  return 1 + push_sockaddr(L, (struct sockaddr *)&ss, (socklen_t)alen);
}

/* pipe() -> read fd, write fd, or nil, message, code */
static int lw_pipe(lua_State *L) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return push_fail(L, -errno);
  lua_pushinteger(L, p[0]);
  lua_pushinteger(L, p[1]);
  return 2;
}

/* The descriptor of a Lua file handle, or -1 (a closed one raises). */
static int lw_fileno(lua_State *L) {
  luaL_Stream *f = luaL_testudata(L, 1, LUA_FILEHANDLE);
  if (!f) {
    lua_pushinteger(L, -1);
    return 1;
  }
  if (!f->closef) return luaL_error(L, "attempt to use a closed file");
  lua_pushinteger(L, fileno(f->f));
  return 1;
}

static int lw_closefd(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* ---- lookups ---------------------------------------------------------- */

typedef struct lookup {
  lweft_state *st;
  int ref; /* the promise, in the registry */
  const char *op;
} lookup;

static lookup *new_lookup(lua_State *L, int pidx, const char *op) {
  lookup *k = malloc(sizeof *k);
  if (!k) luaL_error(L, "not enough memory");
  k->st = lweft_state_of(L);
  lua_pushvalue(L, pidx);
  k->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  k->op = op;
  return k;
}

/* Pushes the promise of a finished lookup and frees it; returns the state
 * to settle it on, or NULL when the Lua state is closing. */
static lua_State *end_lookup(lookup *k) {
  lua_State *L = lweft_take_ref(k->st, k->ref);
  if (!L) free(k);
  return L;
}

static void on_addrinfo(weft_loop_t *loop, int status, struct addrinfo *res,
                        void *data) {
  lookup *k = data;
  lua_State *L = end_lookup(k);
  struct addrinfo *ai;
  int i = 0, top;
  (void)loop;
  if (!L) {
    weft_freeaddrinfo(res);
    return;
  }
  top = lua_gettop(L); /* the promise */
  if (status) {
    lweft_push_io_error(L, k->op, status);
    lweft_settle(L, top, -1);
  } else {
    lua_newtable(L);
    for (ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      lua_createtable(L, 0, 5);
      lua_pushstring(L, family_name(ai->ai_family));
      lua_setfield(L, -2, "family");
      push_sockaddr(L, ai->ai_addr, ai->ai_addrlen);
      lua_setfield(L, -3, "port");
      lua_setfield(L, -2, "address");
      lua_pushstring(L, ai->ai_socktype == SOCK_DGRAM ? "dgram" : "stream");
      lua_setfield(L, -2, "socktype");
      if (ai->ai_canonname) {
        lua_pushstring(L, ai->ai_canonname);
        lua_setfield(L, -2, "canonname");
      }
      lua_rawseti(L, -2, ++i);
    }
    lweft_settle(L, top, 1);
  }
  lua_settop(L, top - 1);
  weft_freeaddrinfo(res);
  free(k);
}

/* getaddrinfo(host|nil, service|nil, family|nil, socktype|nil, passive,
 * canonname, promise): settles the promise with the list, or rejects it
 * with an I/O error.  Returns true, or nil, message, code. */
static int lw_getaddrinfo(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  const char *host = luaL_optstring(L, 1, NULL);
  const char *service = luaL_optstring(L, 2, NULL);
  const char *fam = luaL_optstring(L, 3, NULL);
  struct addrinfo hints;
  lookup *k;
  int err;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = !fam ? AF_UNSPEC
                    : !strcmp(fam, "inet") ? AF_INET
                    : !strcmp(fam, "inet6") ? AF_INET6 : -1;
  if (hints.ai_family < 0) return push_fail(L, WEFT_EAI_FAMILY);
  if (!lua_isnil(L, 4)) hints.ai_socktype = socktype_of(L, 4);
  if (lua_toboolean(L, 5)) hints.ai_flags |= AI_PASSIVE;
  if (lua_toboolean(L, 6)) hints.ai_flags |= AI_CANONNAME;
  k = new_lookup(L, 7, "getaddrinfo");
  err = weft_getaddrinfo(st->loop, host, service, &hints, on_addrinfo, k);
  if (err) {
    luaL_unref(L, LUA_REGISTRYINDEX, k->ref);
    free(k);
    return push_fail(L, err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static void on_nameinfo(weft_loop_t *loop, int status, const char *host,
                        const char *service, void *data) {
  lookup *k = data;
  lua_State *L = end_lookup(k);
  int top;
  (void)loop;
  if (!L) return;
  top = lua_gettop(L);
  if (status) {
    lweft_push_io_error(L, k->op, status);
    lweft_settle(L, top, -1);
  } else {
    lua_pushstring(L, host);
    lua_pushstring(L, service);
    lweft_settle(L, top, 2);
  }
  lua_settop(L, top - 1);
  free(k);
}

/* getnameinfo(family, address, port, numeric, promise) */
static int lw_getnameinfo(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  struct sockaddr_storage ss;
  lookup *k;
  int err, flags = lua_toboolean(L, 4) ? NI_NUMERICHOST | NI_NUMERICSERV : 0;
  if (!to_sockaddr(L, 1, &ss)) return push_fail(L, WEFT_EINVAL);
  k = new_lookup(L, 5, "getnameinfo");
  err = weft_getnameinfo(st->loop, (struct sockaddr *)&ss, flags,
                         on_nameinfo, k);
  if (err) {
    luaL_unref(L, LUA_REGISTRYINDEX, k->ref);
    free(k);
    return push_fail(L, err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- weft.poll -------------------------------------------------------- */

static const struct {
  const char *name;
  int value;
} poll_consts[] = {{"POLLIN", WEFT_POLLIN},   {"POLLPRI", WEFT_POLLPRI},
                   {"POLLOUT", WEFT_POLLOUT}, {"POLLERR", WEFT_POLLERR},
                   {"POLLHUP", WEFT_POLLHUP}, {"POLLNVAL", WEFT_POLLNVAL}};

void lweft_open_stream(lua_State *L) {
  static const luaL_Reg prims[] = {
      {"open", lw_open},       {"read", lw_read},
      {"write", lw_write},     {"waitio", lw_waitio},
      {"close", lw_close},
      {"fd", lw_fd},           {"queued", lw_queued},
      {"pending", lw_pending},
      {"take_turn", lw_take_turn}, {"end_turn", lw_end_turn},
      {"shutdown", lw_shutdown},
      {"listen", lw_listen},   {"connect", lw_connect},
      {"sockerr", lw_sockerr}, {"accept", lw_accept},
      {"name", lw_name},       {"setoption", lw_setoption},
      {"pipe", lw_pipe},       {"fileno", lw_fileno},
      {"closefd", lw_closefd}, {"getaddrinfo", lw_getaddrinfo},
      {"getnameinfo", lw_getnameinfo}, {"sendto", lw_sendto},
      {"recvfrom", lw_recvfrom}, {"methods", lw_methods},
      {NULL, NULL}};
  size_t i;
  if (luaL_newmetatable(L, HANDLE_MT)) {
    lua_pushcfunction(L, lw_h_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lweft_class_key(L, HANDLE_MT, &handle_key);
  for (i = 0; i < sizeof poll_consts / sizeof *poll_consts; i++) {
    lua_pushinteger(L, poll_consts[i].value);
    lua_setfield(L, -3, poll_consts[i].name);
  }
  lua_newtable(L);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}

socklen_t lweft_sockaddr(lua_State *L, int idx, struct sockaddr_storage *ss) {
  return to_sockaddr(L, idx, ss);
}
