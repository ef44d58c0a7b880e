/* fiber.c: weft.fiber, the PHP Fiber model for Lua: a function run on its
 * own C stack (a core fiber) in its own Lua thread, started and resumed by
 * hand.  Because the whole C stack is kept, weft.fiber.suspend works from
 * anywhere inside the function: a table.sort comparator, a string.gsub
 * callback, a metamethod, a coroutine.wrap generator, or a C function of
 * the host that called back into Lua. */
#include "lweft.h"

#include <string.h>

#define FIBER_MT "weft.fiber"

typedef struct lfiber {
  weft_fiber_t *cf; /* NULL once closed */
  lua_State *T;     /* the fiber's own thread (user value 1) */
  lua_State *susp;  /* the thread that called suspend (T, or a coroutine) */
  int nout;         /* values suspend handed out */
  int nin;          /* values the resume handed in */
  int throwing;     /* the resume is a throw: suspend raises its value */
  int failed;       /* fn raised */
  int in_gc;        /* resumed from inside a __gc finalizer */
} lfiber;

/* The registry key of the table cfiber -> fiber userdata (weak values):
 * how weft.fiber.current() and suspend find the running Lua fiber, without
 * trusting the data of fibers a C host or the task scheduler made. */
static const char fibers_key = 0;

/* The fiber argument of every method (misuse raises naming the method:
 * see argcheck.c). */
static lfiber *check_fiber(lua_State *L, int idx) {
  lfiber *lf = lweft_checkudata(L, idx, FIBER_MT, NULL);
  if (!lf->cf) lweft_error(L, "attempt to use a closed fiber");
  return lf;
}

/* Pushes the running Lua fiber's userdata and returns it, or returns NULL
 * (pushing nothing) outside a Lua fiber. */
static lfiber *push_current(lua_State *L) {
  weft_fiber_t *cf = weft_fiber_current();
  if (!cf) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &fibers_key);
  if (lua_rawgetp(L, -1, cf) != LUA_TUSERDATA) {
    lua_pop(L, 2);
    return NULL;
  }
  lua_remove(L, -2);
  return lua_touserdata(L, -1);
}

static void *entry(weft_fiber_t *cf, void *arg) {
  lfiber *lf = arg;
  lua_State *T = lf->T;
  (void)cf;
  /* T holds fn and the start arguments; results or the error stay on T. */
  lf->failed = lua_pcall(T, lua_gettop(T) - 1, LUA_MULTRET, 0) != LUA_OK;
  return NULL;
}

static int lw_fiber_new(lua_State *L) {
  size_t stack = LWEFT_FIBER_STACK;
  lfiber *lf;
  int err;
  lua_remove(L, 1); /* weft.fiber itself: called through __call */
  if (lua_type(L, 1) != LUA_TFUNCTION)
    lweft_argerror(L, 1, "fiber",
                   lua_pushfstring(L, "function expected, got %s",
                                   luaL_typename(L, 1)));
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2))
      lweft_argerror(L, 2, "fiber",
                     lua_pushfstring(L, "table expected, got %s",
                                     luaL_typename(L, 2)));
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      if (strcmp(key, "stack_size") != 0)
        lweft_argerror(L, 2, "fiber",
                       lua_pushfstring(L, "unknown option '%s'", key));
      stack = lweft_check_stack_size(L, 2, "fiber");
      lua_pop(L, 1);
    }
  }
  lf = lua_newuserdatauv(L, sizeof *lf, 2);
  memset(lf, 0, sizeof *lf);
  luaL_setmetatable(L, FIBER_MT);
  lf->T = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_xmove(L, lf->T, 1);
  err = weft_fiber_new(entry, lf, stack, &lf->cf);
  if (err) return lweft_error(L, "fiber: %s", weft_strerror(err));
  lua_rawgetp(L, LUA_REGISTRYINDEX, &fibers_key);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, lf->cf);
  lua_pop(L, 1);
  return 1;
}

/* start / resume / throw: hands the arguments after the fiber in, runs it
 * until it suspends or ends, and returns what it handed out. */
static int transfer(lua_State *L, int throwing) {
  lfiber *lf = check_fiber(L, 1);
  int state = weft_fiber_status(lf->cf), n = lua_gettop(L) - 1;
  lua_State *from;
  if (state == WEFT_FIBER_RUNNING)
    return lweft_error(L, "cannot resume a running fiber");
  if (state == WEFT_FIBER_TERMINATED)
    return lweft_error(L, "cannot resume a fiber that has terminated");
  if (state == WEFT_FIBER_INIT && throwing)
    return lweft_error(L, "cannot throw into a fiber that has not started");
  if (throwing) {
    lweft_checkany(L, 2, NULL);
    n = 1;
    lua_settop(L, 2);
  }
  if (state == WEFT_FIBER_INIT) {
    if (!lua_checkstack(lf->T, n + LUA_MINSTACK))
      return lweft_error(L, "too many arguments to the fiber");
    lua_xmove(L, lf->T, n);
  } else {
    if (!lua_checkstack(lf->susp, n + LUA_MINSTACK))
      return lweft_error(L, "too many values for the fiber");
    lua_xmove(L, lf->susp, n);
    lf->nin = n;
    lf->throwing = throwing;
  }
  lf->in_gc = lweft_in_finalizer(L);
  weft_fiber_resume(lf->cf, NULL, NULL);
  if (weft_fiber_status(lf->cf) != WEFT_FIBER_TERMINATED) {
    from = lf->susp;
    n = lf->nout;
  } else {
    from = lf->T;
    n = lua_gettop(lf->T);
    if (lf->failed) {
      lua_xmove(lf->T, L, 1);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 2); /* f:result() reports it */
      return lua_error(L);
    }
    /* Keep the results for f:result(). */
    lua_createtable(L, n, 1);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(lf->T, i);
      lua_xmove(lf->T, L, 1);
      lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    lua_setiuservalue(L, 1, 2);
  }
  luaL_checkstack(L, n, "too many values from the fiber");
  lua_xmove(from, L, n);
  return n;
}

static int lw_fiber_start(lua_State *L) {
  lfiber *lf = check_fiber(L, 1);
  if (weft_fiber_status(lf->cf) != WEFT_FIBER_INIT)
    return lweft_error(L, "cannot start a fiber that was already started");
  return transfer(L, 0);
}

static int lw_fiber_resume(lua_State *L) {
  lfiber *lf = check_fiber(L, 1);
  if (weft_fiber_status(lf->cf) == WEFT_FIBER_INIT)
    return lweft_error(L, "cannot resume a fiber that has not started");
  return transfer(L, 0);
}

static int lw_fiber_throw(lua_State *L) { return transfer(L, 1); }

static int lw_fiber_suspend(lua_State *L) {
  lfiber *lf = push_current(L);
  int n;
  if (!lf) return lweft_error(L, "attempt to suspend outside a fiber");
  lua_pop(L, 1);
  if (lweft_in_finalizer(L) && !lf->in_gc)
    return lweft_error(L, "attempt to suspend inside a __gc finalizer");
  lf->susp = L;
  lf->nout = lua_gettop(L);
  weft_fiber_suspend(NULL, NULL);
  /* Resumed: the resumer took our values and pushed its own. */
  n = lf->nin;
  if (lf->throwing) {
    lf->throwing = 0;
    return lua_error(L);
  }
  return n;
}

static int lw_fiber_current(lua_State *L) {
  if (!push_current(L)) lua_pushnil(L);
  return 1;
}

static const char *const status_names[] = {"init", "suspended", "running",
                                           "terminated"};

static int lw_fiber_status(lua_State *L) {
  lfiber *lf = check_fiber(L, 1);
  lua_pushstring(L, status_names[weft_fiber_status(lf->cf)]);
  return 1;
}

static int lw_fiber_result(lua_State *L) {
  lfiber *lf = check_fiber(L, 1);
  int n;
  if (weft_fiber_status(lf->cf) != WEFT_FIBER_TERMINATED)
    return lweft_error(L, "fiber has not terminated");
  lua_getiuservalue(L, 1, 2);
  if (lf->failed) return lweft_error(L, "fiber raised an error: %s",
                                     luaL_tolstring(L, -1, NULL));
  lua_getfield(L, -1, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, 2, i);
  return n;
}

/* The thread to inspect: where a suspended fiber stopped, else NULL. */
static lua_State *stopped_in(lfiber *lf) {
  return weft_fiber_status(lf->cf) == WEFT_FIBER_SUSPENDED ? lf->susp : NULL;
}

static int lw_fiber_traceback(lua_State *L) {
  lfiber *lf = check_fiber(L, 1);
  lua_State *at = stopped_in(lf);
  if (!at) {
    lua_pushfstring(L, "fiber %s: no stack", status_names[weft_fiber_status(lf->cf)]);
    return 1;
  }
  luaL_traceback(L, at, "fiber suspended", 1);
  return 1;
}

static int lw_fiber_where(lua_State *L) {
  /* From level 1: level 0 is weft.fiber.suspend itself. */
  return lweft_push_where(L, stopped_in(check_fiber(L, 1)), 1);
}

/* Releases the C fiber and its stack; a suspended fiber is discarded where
 * it stands.  A running one cannot be: f:close() raises, __gc leaves it
 * (it cannot be garbage while it runs). */
static int release(lua_State *L, int may_raise) {
  lfiber *lf = lweft_checkudata(L, 1, FIBER_MT, NULL);
  if (!lf->cf) return 0;
  if (weft_fiber_status(lf->cf) == WEFT_FIBER_RUNNING)
    return may_raise ? lweft_error(L, "cannot close a running fiber") : 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &fibers_key);
  lua_pushnil(L);
  lua_rawsetp(L, -2, lf->cf);
  weft_fiber_free(lf->cf);
  lf->cf = NULL;
  return 0;
}

static int lw_fiber_gc(lua_State *L) { return release(L, 0); }
static int lw_fiber_close(lua_State *L) { return release(L, 1); }

static int lw_fiber_tostring(lua_State *L) {
  lfiber *lf = luaL_checkudata(L, 1, FIBER_MT);
  if (lf->cf) lua_pushfstring(L, "weft.fiber (%p)", (void *)lf);
  else lua_pushliteral(L, "weft.fiber (closed)");
  return 1;
}

void lweft_open_fiber(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"start", lw_fiber_start},       {"resume", lw_fiber_resume},
      {"throw", lw_fiber_throw},       {"status", lw_fiber_status},
      {"result", lw_fiber_result},     {"traceback", lw_fiber_traceback},
      {"where", lw_fiber_where},       {"close", lw_fiber_close},
      {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", lw_fiber_gc},
                                  {"__close", lw_fiber_close},
                                  {"__tostring", lw_fiber_tostring},
                                  {NULL, NULL}};
  if (luaL_newmetatable(L, FIBER_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lweft_name_funcs(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lweft_weak_table(L, &fibers_key, "v");
  /* weft.fiber: a table of suspend and current, callable to create. */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, lw_fiber_suspend);
  lua_setfield(L, -2, "suspend");
  lua_pushcfunction(L, lw_fiber_current);
  lua_setfield(L, -2, "current");
  lweft_name_funcs(L, -1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lw_fiber_new);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -3, "fiber"); /* the module table is below the state */
}
