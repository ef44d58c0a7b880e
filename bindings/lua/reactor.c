/* reactor.c: weft.run / tick / stop / now, the watcher constructors, and
 * enable / disable / cancel / ref / unref / on_error / watchers. */
#include "lweft.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* ---- the state's tables -------------------------------------------------- */
/* Slot s (the id's low 32 bits) keeps its callback at W[2s+1] and the
 * function that created it at W[2s+2], in one dense array; opts.data and
 * the descriptor value sit in their own tables, used only when present;
 * the creating line and those two flags sit in st->recs[s]. */

static lua_Integer slot_of(weft_id_t id) { return (lua_Integer)(uint32_t)id; }

/* Sets tbl[key] to the value at validx, tbl being the registry ref. */
static void set_ref(lua_State *L, int ref, lua_Integer key, int validx) {
  validx = lua_absindex(L, validx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_pushvalue(L, validx);
  lua_rawseti(L, -2, key);
  lua_pop(L, 1);
}

static void get_ref(lua_State *L, int ref, lua_Integer key) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_rawgeti(L, -1, key);
  lua_remove(L, -2);
}

/* The record of slot s, growing the array through Lua's allocator; NULL
 * when memory runs out. */
static lweft_rec *rec_at(lua_State *L, lweft_state *st, lua_Integer s) {
  if ((size_t)s >= st->nrecs) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    size_t n = st->nrecs ? st->nrecs : 64;
    lweft_rec *recs;
    while (n <= (size_t)s) n *= 2;
    recs = alloc(ud, st->recs, st->nrecs * sizeof *recs, n * sizeof *recs);
    if (!recs) return NULL;
    memset(recs + st->nrecs, 0, (n - st->nrecs) * sizeof *recs);
    st->recs = recs;
    st->nrecs = n;
  }
  return &st->recs[s];
}

/* Drops what the binding keeps for a watcher that ended. */
static void forget(lua_State *L, lweft_state *st, weft_id_t id) {
  lua_Integer s = slot_of(id);
  lweft_rec *r;
  if ((size_t)s >= st->nrecs) return; /* a host's watcher: nothing kept */
  r = &st->recs[s];
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_w);
  lua_pushnil(L);
  lua_rawseti(L, -2, 2 * s + 1);
  lua_pushnil(L);
  lua_rawseti(L, -2, 2 * s + 2);
  lua_pop(L, 1);
  if (r->has_data || r->has_arg) {
    lua_pushnil(L);
    if (r->has_data) set_ref(L, st->ref_data, s, -1);
    if (r->has_arg) set_ref(L, st->ref_arg, s, -1);
    lua_pop(L, 1);
  }
  r->has_data = r->has_arg = 0;
}

/* ---- callbacks and their errors ------------------------------------------ */

/* Message handler: strings get the callback's traceback appended. */
static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg && lua_type(L, 1) == LUA_TSTRING) luaL_traceback(L, L, msg, 1);
  else lua_settop(L, 1);
  return 1;
}

/* Calls the host's error handler (st at 3) with the error's text at 1 and
 * the error at 2, on top during the call. */
static int call_host_error(lua_State *L) {
  lweft_state *st = lua_touserdata(L, 3);
  lua_settop(L, 2);
  st->host_error(L, lua_tostring(L, 1), st->host_error_data);
  return 0;
}

/* The error on top of L came from a callback: give it to the on_error
 * handler, or keep it for run() to raise and stop the loop so no further
 * callback runs first.  Pops the error. */
void lweft_callback_error(lua_State *L, lweft_state *st) {
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_misc);
  if (lua_getfield(L, -1, "handler") == LUA_TFUNCTION) {
    lua_pushcfunction(L, msgh);
    lua_insert(L, -2);
    lua_pushvalue(L, base);
    if (lua_pcall(L, 1, 0, -3) == LUA_OK) {
      lua_settop(L, base - 1);
      return;
    }
    /* The handler failed: that error is the one to report. */
    lua_replace(L, base);
  }
  lua_settop(L, base);
  if (st->host_error) { /* the embedding host's, which may raise too */
    lua_pushcfunction(L, call_host_error);
    lweft_push_error_text(L, base);
    lua_pushvalue(L, base);
    lua_pushlightuserdata(L, st);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK) {
      lua_settop(L, base - 1);
      return;
    }
    fprintf(stderr, "weft: the host's error handler raised: %s\n",
            lweft_push_error_text(L, -1));
    lua_settop(L, base);
  }
  if (!st->running || st->host_error) {
    /* Nobody would ever raise it: a host drives the loop itself. */
    fprintf(stderr, "weft: unhandled error: %s\n",
            lweft_push_error_text(L, base));
    lua_settop(L, base - 1);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_misc);
  if (lua_getfield(L, -1, "err") == LUA_TNIL) {
    lua_pushvalue(L, base);
    lua_setfield(L, base + 1, "err");
  }
  lua_settop(L, base - 1);
  /* Stopping a loop that is not running would make its next run return
   * at once. */
  weft_loop_stop(st->loop);
}

void lweft_raise_pending(lua_State *L, lweft_state *st) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_misc);
  if (lua_getfield(L, -1, "err") == LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pushnil(L);
  lua_setfield(L, -3, "err");
  lua_error(L);
}

/* The one C callback of every Lua watcher: data is the binding state. */
static void dispatch(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  lweft_state *st = data;
  lua_State *L = st->L;
  lua_Integer s = slot_of(id);
  lweft_rec *r = &st->recs[s];
  int kind = weft_watch_kind(loop, id), nargs = 2, top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) return;
  lua_pushcfunction(L, msgh);             /* top + 1 */
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_w); /* top + 2 */
  if (lua_rawgeti(L, top + 2, 2 * s + 1) == LUA_TUSERDATA) {
    /* A task's delay, or a waiter's timeout: the task or the waiter is
     * the callback, and its class's fire hook runs (task.c, waiter.c). */
    lua_getmetatable(L, -1);
    lua_rawgetp(L, -1, &lweft_fire_key);
    lua_replace(L, -2);
    lua_insert(L, -2);
    forget(L, st, id);
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) lweft_callback_error(L, st);
    lua_settop(L, top);
    return;
  }
  lua_pushinteger(L, (lua_Integer)id);
  if (r->has_arg) {
    get_ref(L, st->ref_arg, s);
    nargs++;
  } else if (kind == WEFT_KIND_SIGNAL) {
    lua_pushinteger(L, arg);
    nargs++;
  }
  if (r->has_data) get_ref(L, st->ref_data, s);
  else lua_pushnil(L);
  /* A once or immediately watcher is gone before its callback runs. */
  if (kind < 0) forget(L, st, id);
  if (lua_pcall(L, nargs, 0, top + 1) != LUA_OK) lweft_callback_error(L, st);
  lua_settop(L, top);
}

/* ---- argument checks ------------------------------------------------------ */

/* A delay in ms: a number >= 0; fractions round up so nothing fires early. */
static uint64_t to_ms(lua_State *L, int idx, int arg, const char *what) {
  lua_Number n;
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i < 0)
      lweft_argerror(L, arg, NULL, lua_pushfstring(L, "%s must be >= 0", what));
    return (uint64_t)i;
  }
  n = lua_tonumber(L, idx);
  if (!(n >= 0))
    lweft_argerror(L, arg, NULL, lua_pushfstring(L, "%s must be >= 0", what));
  if (n >= 1e18) return UINT64_MAX;
  return (uint64_t)ceil(n);
}

static uint64_t check_ms(lua_State *L, int arg) {
  lweft_checknumber(L, arg, NULL);
  return to_ms(L, arg, arg, "delay");
}

typedef struct opts {
  int flags;
  int has_data;
  int has_delay;
  uint64_t delay;
} opts;

static int option_is(const char *key, const char *name) {
  return strcmp(key, name) == 0;
}

/* Reads { enable, keep_alive, data, delay } at arg (delay only when
 * allowed); unknown keys are errors so typos do not pass silently. */
static void check_opts(lua_State *L, int arg, int allow_delay, opts *o) {
  o->flags = 0;
  o->has_data = o->has_delay = 0;
  o->delay = 0;
  if (lua_isnoneornil(L, arg)) return;
  lweft_checktype(L, arg, LUA_TTABLE, NULL);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (key && (option_is(key, "enable") || option_is(key, "keep_alive"))) {
      if (!lua_isboolean(L, -1))
        lweft_argerror(L, arg, NULL,
                       lua_pushfstring(L, "field '%s' must be a boolean", key));
      if (!lua_toboolean(L, -1))
        o->flags |= option_is(key, "enable") ? WEFT_WATCH_DISABLED : WEFT_WATCH_UNREF;
    } else if (key && option_is(key, "data")) {
      o->has_data = 1;
    } else if (key && allow_delay && option_is(key, "delay")) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        lweft_argerror(L, arg, NULL, "field 'delay' must be a number");
      o->delay = to_ms(L, lua_gettop(L), arg, "field 'delay'");
      o->has_delay = 1;
    } else {
      lweft_argerror(L, arg, NULL,
                     lua_pushfstring(L, "unknown option '%s'",
                                     key ? key : luaL_typename(L, -2)));
    }
    lua_pop(L, 1);
  }
}

static const struct {
  const char *name;
  int signo;
} signals[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},
    {"SIGILL", SIGILL},   {"SIGTRAP", SIGTRAP},   {"SIGABRT", SIGABRT},
    {"SIGBUS", SIGBUS},   {"SIGFPE", SIGFPE},     {"SIGUSR1", SIGUSR1},
    {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},   {"SIGPIPE", SIGPIPE},
    {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},   {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT}, {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},
    {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},
    {"SIGXFSZ", SIGXFSZ}, {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF},
    {"SIGWINCH", SIGWINCH}, {"SIGIO", SIGIO},     {"SIGSYS", SIGSYS},
    {"SIGKILL", SIGKILL}, {"SIGSTOP", SIGSTOP},
};

const char *lweft_signal_name(int signo) {
  size_t i;
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (signals[i].signo == signo) return signals[i].name;
  return NULL;
}

int lweft_check_signal(lua_State *L, int arg, const char *fname) {
  const char *name;
  size_t i;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    if (!lua_isinteger(L, arg))
      lweft_argerror(L, arg, fname, "number has no integer representation");
    return (int)lua_tointeger(L, arg);
  }
  if (lua_type(L, arg) != LUA_TSTRING)
    return lweft_typeerror(L, arg, fname, "signal number or name");
  name = lua_tostring(L, arg);
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    const char *n = signals[i].name;
    if (!strcmp(name, n) || !strcmp(name, n + 3)) return signals[i].signo;
  }
  return lweft_argerror(L, arg, fname,
                        lua_pushfstring(L, "unknown signal '%s'", name));
}

/* ---- creating watchers --------------------------------------------------- */

/* Records what the binding keeps for a new watcher and pushes its id.
 * cbarg, optarg: stack indices; argidx: the fd value for I/O, or 0. */
static int registered(lua_State *L, lweft_state *st, weft_id_t id, int cbarg,
                      int optarg, const opts *o, int argidx) {
  lua_Integer s = slot_of(id);
  lweft_rec *r = rec_at(L, st, s);
  lua_Debug ar;
  if (!r) {
    weft_watch_cancel(st->loop, id);
    return luaL_error(L, "not enough memory");
  }
  cbarg = lua_absindex(L, cbarg);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_w);
  lua_pushvalue(L, cbarg);
  lua_rawseti(L, -2, 2 * s + 1);
  /* Where it was made: the calling function and line, formatted only when
   * weft.watchers() asks (formatting here would cost more than the rest of
   * the call). */
  r->line = 0;
  /* (A task's delay, a waiter's timeout: the task tells where it waits,
   * when asked.) */
  if (lua_type(L, cbarg) != LUA_TUSERDATA && lua_getstack(L, 1, &ar) &&
      lua_getinfo(L, "fl", &ar)) {
    lua_rawseti(L, -2, 2 * s + 2);
    r->line = ar.currentline;
  }
  lua_pop(L, 1);
  r->has_data = (unsigned char)o->has_data;
  if (o->has_data) {
    lua_getfield(L, optarg, "data");
    set_ref(L, st->ref_data, s, -1);
    lua_pop(L, 1);
  }
  r->has_arg = argidx != 0;
  if (argidx) set_ref(L, st->ref_arg, s, argidx);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* Turns a core error from a constructor into a Lua error. */
static int create_failed(lua_State *L, const char *fname, int err, int fdarg) {
  if (fdarg && err == WEFT_EBADF)
    return lweft_argerror(L, fdarg, fname, "bad file descriptor");
  if (fdarg && err == WEFT_EPERM)
    return lweft_argerror(L, fdarg, fname,
                          "descriptor cannot be watched (a regular file is "
                          "always ready)");
  return lweft_error(L, "%s: %s", fname, weft_strerror(err));
}

weft_id_t lweft_once(lua_State *L, lweft_state *st, int msidx, int fnidx) {
  weft_id_t id;
  opts o = {0, 0, 0, 0};
  int err = weft_once(st->loop, to_ms(L, msidx, msidx, "delay"), dispatch, st,
                      0, &id);
  if (err) create_failed(L, "delay", err, 0);
  registered(L, st, id, fnidx, 0, &o, 0);
  lua_pop(L, 1); /* the id registered() pushed */
  return id;
}

void lweft_cancel(lua_State *L, lweft_state *st, weft_id_t id) {
  if (weft_watch_cancel(st->loop, id) == 0) forget(L, st, id);
}

static int lw_immediately(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  weft_id_t id;
  opts o;
  int err;
  lweft_checktype(L, 1, LUA_TFUNCTION, NULL);
  check_opts(L, 2, 0, &o);
  err = weft_immediately(st->loop, dispatch, st, o.flags, &id);
  if (err) return create_failed(L, "immediately", err, 0);
  return registered(L, st, id, 1, 2, &o, 0);
}

static int lw_once(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  uint64_t ms = check_ms(L, 1);
  weft_id_t id;
  opts o;
  int err;
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  check_opts(L, 3, 0, &o);
  err = weft_once(st->loop, ms, dispatch, st, o.flags, &id);
  if (err) return create_failed(L, "once", err, 0);
  return registered(L, st, id, 2, 3, &o, 0);
}

static int lw_every(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  uint64_t ms;
  weft_id_t id;
  opts o;
  int err;
  lweft_checknumber(L, 1, NULL);
  ms = to_ms(L, 1, 1, "interval");
  if (ms == 0) lweft_argerror(L, 1, NULL, "interval must be > 0");
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  check_opts(L, 3, 1, &o);
  err = weft_every(st->loop, ms, o.has_delay ? o.delay : ms, dispatch, st,
                   o.flags, &id);
  if (err) return create_failed(L, "every", err, 0);
  return registered(L, st, id, 2, 3, &o, 0);
}

/* on_readable / on_writable, whose errors name fname. */
static int watch_fd(lua_State *L, int writable, const char *fname) {
  lweft_state *st = lweft_state_of(L);
  int fd = lweft_check_fd(L, 1, fname), err;
  weft_id_t id;
  opts o;
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  check_opts(L, 3, 0, &o);
  err = writable ? weft_writable(st->loop, fd, dispatch, st, o.flags, &id)
                 : weft_readable(st->loop, fd, dispatch, st, o.flags, &id);
  if (err) return create_failed(L, fname, err, 1);
  return registered(L, st, id, 2, 3, &o, 1);
}

static int lw_on_readable(lua_State *L) {
  return watch_fd(L, 0, "on_readable");
}
static int lw_on_writable(lua_State *L) {
  return watch_fd(L, 1, "on_writable");
}

/* on_signal, whose errors name fname. */
static int watch_signal(lua_State *L, const char *fname) {
  lweft_state *st = lweft_state_of(L);
  int signo = lweft_check_signal(L, 1, fname), err;
  weft_id_t id;
  opts o;
  lweft_checktype(L, 2, LUA_TFUNCTION, NULL);
  check_opts(L, 3, 0, &o);
  err = weft_signal(st->loop, signo, dispatch, st, o.flags, &id);
  if (err == WEFT_EINVAL)
    return lweft_argerror(
        L, 1, fname, lua_pushfstring(L, "signal %d cannot be watched", signo));
  if (err) return create_failed(L, fname, err, 0);
  return registered(L, st, id, 2, 3, &o, 0);
}

static int lw_on_signal(lua_State *L) { return watch_signal(L, "on_signal"); }

/* For weft.readable, weft.writable and weft.signal (sync.lua), whose
 * errors name them: watch_fd(fd, cb, writable, fname) and
 * watch_signal(sig, cb, fname) -> id. */
static int lw_watch_fd_prim(lua_State *L) {
  int writable = lua_toboolean(L, 3);
  const char *fname = luaL_checkstring(L, 4);
  lua_settop(L, 4);
  lua_pushnil(L);
  lua_replace(L, 3); /* no opts; fname stays on the stack */
  return watch_fd(L, writable, fname);
}

static int lw_watch_signal_prim(lua_State *L) {
  const char *fname = luaL_checkstring(L, 3);
  lua_settop(L, 3);
  lua_pushnil(L);
  lua_insert(L, 3); /* no opts; fname stays on the stack */
  return watch_signal(L, fname);
}

/* The C callback of weft.poll: the watcher is gone; cb(fd, revents). */
static void poll_dispatch(weft_loop_t *loop, weft_id_t id, int fd,
                          int revents, void *data) {
  lweft_state *st = data;
  lua_State *L = st->L;
  lua_Integer s = slot_of(id);
  int top = lua_gettop(L);
  (void)loop;
  if (!lua_checkstack(L, 8)) return;
  lua_pushcfunction(L, msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_w);
  lua_rawgeti(L, top + 2, 2 * s + 1);
  if (st->recs[s].has_arg) get_ref(L, st->ref_arg, s);
  else lua_pushinteger(L, fd);
  lua_pushinteger(L, revents);
  forget(L, st, id);
  if (lua_pcall(L, 2, 0, top + 1) != LUA_OK) lweft_callback_error(L, st);
  lua_settop(L, top);
}

/* weft.poll(fd, events, timeout_ms|nil, cb) -> id, or nil, "EBADF" /
 * "EPERM" for a descriptor that is not open or cannot be polled. */
static int lw_poll(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  int fd = lweft_check_fd(L, 1, "poll"), err;
  lua_Integer events = lweft_checkinteger(L, 2, NULL);
  int64_t ms = -1;
  weft_id_t id;
  opts o = {0, 0, 0, 0};
  if (!(events & (WEFT_POLLIN | WEFT_POLLOUT | WEFT_POLLPRI)) ||
      (events & ~(lua_Integer)(WEFT_POLLIN | WEFT_POLLOUT | WEFT_POLLPRI |
                               WEFT_POLLERR | WEFT_POLLHUP)))
    lweft_argerror(L, 2, NULL,
                   "events must ask for POLLIN, POLLOUT or POLLPRI");
  if (!lua_isnil(L, 3)) {
    lweft_checknumber(L, 3, NULL);
    ms = (int64_t)to_ms(L, 3, 3, "timeout");
    if (ms < 0) ms = INT64_MAX / 2;
  }
  lweft_checktype(L, 4, LUA_TFUNCTION, NULL);
  err = weft_poll(st->loop, fd, (int)events, ms, poll_dispatch, st, &id);
  if (err == WEFT_EBADF || err == WEFT_EPERM) {
    lua_pushnil(L);
    lua_pushstring(L, weft_err_name(err));
    return 2;
  }
  if (err) return create_failed(L, "poll", err, 0);
  return registered(L, st, id, 4, 0, &o, lua_type(L, 1) == LUA_TNUMBER ? 0 : 1);
}

/* ---- acting on ids -------------------------------------------------------- */

/* Applies op to the id at argument 1: pushes true, or false when the id
 * is unknown, cancelled or finished; any other failure (enabling a
 * descriptor that was closed meanwhile, say) raises. */
static int id_op(lua_State *L, const char *fname,
                 int (*op)(weft_loop_t *, weft_id_t)) {
  lweft_state *st = lweft_state_of(L);
  weft_id_t id = (weft_id_t)lweft_checkinteger(L, 1, NULL);
  int err = op(st->loop, id);
  if (err && err != WEFT_ENOENT)
    return lweft_error(L, "%s: %s", fname, weft_strerror(err));
  if (!err && op == weft_watch_cancel) forget(L, st, id);
  lua_pushboolean(L, err == 0);
  return 1;
}

static int lw_enable(lua_State *L) { return id_op(L, "enable", weft_watch_enable); }
static int lw_disable(lua_State *L) { return id_op(L, "disable", weft_watch_disable); }
static int lw_cancel(lua_State *L) { return id_op(L, "cancel", weft_watch_cancel); }
static int lw_ref(lua_State *L) { return id_op(L, "ref", weft_watch_ref); }
static int lw_unref(lua_State *L) { return id_op(L, "unref", weft_watch_unref); }

/* ---- the loop ------------------------------------------------------------- */

int lweft_run_loop(lua_State *L, lweft_state *st, weft_run_mode mode,
                   const char *fname) {
  lua_State *prev = st->L;
  int r;
  st->L = L;
  st->running++;
  st->ever_ran = 1;
  r = weft_loop_run(st->loop, mode);
  st->running--;
  st->L = prev;
  if (r == WEFT_ECANCELED) /* a worker's job was cancelled (thread.c) */
    return lweft_raise_cancelled(L);
  if (r == WEFT_EBUSY)
    return lweft_error(L, "%s: the loop is already running (in a callback, "
                          "or in a plain coroutine inside a task: run the code "
                          "as a task, or make the coroutine with "
                          "weft.coroutine)",
                       lweft_public_name(L, fname));
  lweft_raise_pending(L, st);
  return r;
}

int lweft_run_once(lua_State *L, lweft_state *st, const char *fname) {
  return lweft_run_loop(L, st, WEFT_RUN_ONCE, fname);
}

static int lw_tick(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  int nowait = lua_toboolean(L, 1);
  lua_pushboolean(L, lweft_run_loop(L, st, nowait ? WEFT_RUN_NOWAIT : WEFT_RUN_ONCE,
                              "tick") > 0);
  return 1;
}

static int lw_stop(lua_State *L) {
  weft_loop_stop(lweft_state_of(L)->loop);
  return 0;
}

static int lw_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)weft_loop_now(lweft_state_of(L)->loop));
  return 1;
}

static int lw_on_error(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  if (!lua_isnoneornil(L, 1) && !lua_isfunction(L, 1))
    lweft_typeerror(L, 1, NULL, "function or nil");
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->ref_misc);
  lua_getfield(L, -1, "handler");
  lua_pushvalue(L, 1);
  lua_setfield(L, -3, "handler");
  return 1;
}

/* ---- introspection -------------------------------------------------------- */

static const char *kind_name(int kind) {
  switch (kind) {
  case WEFT_KIND_IMMEDIATELY: return "immediately";
  case WEFT_KIND_ONCE: return "once";
  case WEFT_KIND_EVERY: return "every";
  case WEFT_KIND_READABLE: return "readable";
  case WEFT_KIND_WRITABLE: return "writable";
  case WEFT_KIND_SIGNAL: return "signal";
  case WEFT_KIND_POLL: return "poll";
  default: return "?";
  }
}

/* Pushes "file:line" for a watcher, "[C]" when a C function created it,
 * or "host" for one created through the C API on a shared loop. */
static void push_where(lua_State *L, lweft_state *st, int ours, weft_id_t id) {
  lua_Integer s = slot_of(id);
  lua_Debug ar;
  if (!ours) {
    lua_pushliteral(L, "host");
    return;
  }
  get_ref(L, st->ref_w, 2 * s + 1);
  if (lua_type(L, -1) == LUA_TUSERDATA) { /* a task's delay, a waiter's */
    lweft_push_task_where(L, lua_gettop(L));
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  get_ref(L, st->ref_w, 2 * s + 2);
  if ((size_t)s < st->nrecs && st->recs[s].line > 0 &&
      lua_getinfo(L, ">S", &ar)) {
    lua_pushfstring(L, "%s:%d", ar.short_src, st->recs[s].line);
  } else {
    lua_pop(L, 1);
    lua_pushliteral(L, "[C]");
  }
}

typedef struct walk_ctx {
  lua_State *L;
  lweft_state *st;
  int n;
  int sleepers; /* { [core task] = task } of the tasks in a delay */
} walk_ctx;

static void list_one(weft_loop_t *loop, weft_id_t id, void *data) {
  walk_ctx *c = data;
  lua_State *L = c->L;
  void *owner = NULL;
  weft_watch_data(loop, id, &owner);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, kind_name(weft_watch_kind(loop, id)));
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, weft_watch_is_enabled(loop, id) == 1);
  lua_setfield(L, -2, "enabled");
  lua_pushboolean(L, weft_watch_has_ref(loop, id) == 1);
  lua_setfield(L, -2, "ref");
  if (owner && owner != c->st &&
      lua_rawgetp(L, c->sleepers, owner) == LUA_TUSERDATA) {
    lweft_push_task_where(L, lua_gettop(L)); /* a task's delay */
    lua_remove(L, -2);
  } else {
    if (owner && owner != c->st) lua_pop(L, 1);
    push_where(L, c->st, owner == c->st, id);
  }
  lua_setfield(L, -2, "where");
  lua_rawseti(L, -2, ++c->n);
}

static int lw_watchers(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  walk_ctx c = {L, st, 0, 0};
  luaL_checkstack(L, 8, NULL);
  if (st->push_sleepers) st->push_sleepers(L, st);
  else lua_newtable(L);
  c.sleepers = lua_gettop(L);
  lua_newtable(L);
  weft_loop_walk(st->loop, list_one, &c);
  return 1;
}

static void cancel_own(weft_loop_t *loop, weft_id_t id, void *data) {
  void *owner = NULL;
  if (weft_watch_data(loop, id, &owner) == 0 && owner == data &&
      weft_watch_kind(loop, id) > 0)
    weft_watch_cancel(loop, id);
}

typedef struct first_ctx {
  lweft_state *st;
  int n;
  weft_id_t first;
} first_ctx;

static void count_own(weft_loop_t *loop, weft_id_t id, void *data) {
  first_ctx *c = data;
  void *owner = NULL;
  if (weft_watch_data(loop, id, &owner) != 0 || owner != c->st ||
      weft_watch_kind(loop, id) <= 0)
    return;
  if (c->n++ == 0 || id < c->first) c->first = id;
}


int lweft_unfired_watchers(lua_State *L, lweft_state *st) {
  first_ctx c = {st, 0, 0};
  weft_loop_walk(st->loop, count_own, &c);
  if (c.n) push_where(L, st, 1, c.first);
  return c.n;
}

void lweft_cancel_all(lweft_state *st) {
  weft_loop_walk(st->loop, cancel_own, st);
}

void lweft_open_reactor(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"tick", lw_tick},
      {"stop", lw_stop},
      {"now", lw_now},
      {"immediately", lw_immediately},
      {"once", lw_once},
      {"every", lw_every},
      {"on_readable", lw_on_readable},
      {"on_writable", lw_on_writable},
      {"on_signal", lw_on_signal},
      {"poll", lw_poll},
      {"enable", lw_enable},
      {"disable", lw_disable},
      {"cancel", lw_cancel},
      {"ref", lw_ref},
      {"unref", lw_unref},
      {"on_error", lw_on_error},
      {"watchers", lw_watchers},
      {NULL, NULL},
  };
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, fns, 1);
  lua_pop(L, 1);
}

void lweft_reactor_prims(lua_State *L) {
  static const luaL_Reg prims[] = {{"watch_fd", lw_watch_fd_prim},
                                   {"watch_signal", lw_watch_signal_prim},
                                   {NULL, NULL}};
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}
