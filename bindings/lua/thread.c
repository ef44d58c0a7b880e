/* thread.c: the C half of weft.pool and weft.thread: worker threads with
 * their own Lua states, jobs that suspend the task waiting on them, and
 * channels across threads.  Values cross as messages (codec.c).  thread.lua
 * builds the objects on these primitives. */
#include "lweft.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#define POOL_MT "weft.pool_handle"

/* Workers are numbered from 1, in the order any pool started them. */
static atomic_int next_thread_id;

/* ---- the worker's side ----------------------------------------------------- */

/* What a worker keeps about itself, a light userdata under worker_key in
 * its Lua state's registry (not in thread-local variables: this module is
 * loaded with dlopen, and a thread-local that the main thread touches
 * outlives the module's dlclose in LeakSanitizer's books). */
typedef struct wstate {
  lua_State *L;
  char *init_error;  /* why the init module failed, if it did */
  int id;            /* weft.thread.id() */
  weft_job_t *job;   /* the job it runs, for the hook's cancellation check */
} wstate;

static const char worker_key = 0;

/* The worker running L's state, or NULL outside workers. */
static wstate *worker_of(lua_State *L) {
  wstate *w;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
  w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return w;
}

int lweft_can_block(lua_State *L) {
  return !lua_isyieldable(L) && !weft_fiber_current() && worker_of(L);
}

int lweft_raise_cancelled(lua_State *L) { return luaL_error(L, "cancelled"); }

static int lw_thread_id(lua_State *L) {
  wstate *w = worker_of(L);
  lua_pushinteger(L, w ? w->id : 0);
  return 1;
}

/* encode(root, ...) -> the message of the values */
static int lw_encode(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  return lweft_encode(L, 2, lua_gettop(L) - 1, root);
}

/* decode(bytes) -> the values; raises "bad message: ..." */
static int lw_decode(lua_State *L) {
  size_t len;
  const char *msg = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  lua_pushglobaltable(L);
  return lweft_decode(L, msg, len, 2);
}

/* ---- workers ------------------------------------------------------------ */

typedef struct poolcfg {
  char *path, *cpath, *init;
} poolcfg;

static int worker_setup(lua_State *L) {
  poolcfg *cfg = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, cfg->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, cfg->cpath);
  lua_setfield(L, -2, "cpath");
  if (cfg->init) {
    lua_getglobal(L, "require");
    lua_pushstring(L, cfg->init);
    lua_call(L, 1, 0);
  }
  return 0;
}

static void *worker_init(void *ud) {
  poolcfg *cfg = ud;
  wstate *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->id = atomic_fetch_add(&next_thread_id, 1) + 1;
  w->L = luaL_newstate();
  if (!w->L) return w;
  lua_pushlightuserdata(w->L, w);
  lua_rawsetp(w->L, LUA_REGISTRYINDEX, &worker_key);
  lua_pushcfunction(w->L, worker_setup);
  lua_pushlightuserdata(w->L, cfg);
  if (lua_pcall(w->L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(w->L, -1);
    w->init_error = strdup(msg ? msg : "the worker's init failed");
    lua_settop(w->L, 0);
  }
  return w;
}

static void worker_exit(void *td, void *ud) {
  wstate *w = td;
  (void)ud;
  if (!w) return;
  if (w->L) lua_close(w->L);
  free(w->init_error);
  free(w);
}

/* A job: its message in, its result out, and the wait of the task. */
typedef struct ljob {
  lweft_state *st;
  weft_job_t *job;
  _Atomic(lua_State *) running_on; /* the worker's state while it runs */
  char *msg, *res;
  size_t len, rlen;
  int ok;
  int done_ran, lua_live;
  lweft_iowait iow; /* the task waiting for it */
} ljob;

static void job_release(ljob *j) {
  if (j->done_ran && !j->lua_live) {
    free(j->msg);
    free(j->res);
    free(j);
  }
}

/* Set on a worker's state by a cancellation (lua_sethook may be called
 * from another thread, as lua.c does from a signal handler): a hook left
 * on the whole time would slow every instruction of every job.  A stray
 * one, arriving after the job ended, removes itself. */
static void cancel_hook(lua_State *L, lua_Debug *ar) {
  wstate *w = worker_of(L);
  (void)ar;
  if (w && w->job && weft_job_cancelled(w->job)) luaL_error(L, "cancelled");
  lua_sethook(L, NULL, 0, 0);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg) luaL_traceback(L, L, msg, 1);
  else lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

/* Resolves "a.b.c" to a function: require the longest loadable module
 * prefix, then index the rest. */
static void resolve(lua_State *L, int idx) {
  const char *name = lua_tostring(L, idx);
  size_t n = strlen(name);
  const char *end = name + n;
  int top = lua_gettop(L);
  for (;;) {
    lua_getglobal(L, "require");
    lua_pushlstring(L, name, (size_t)(end - name));
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && !lua_isnil(L, -1)) break;
    lua_settop(L, top);
    while (end > name && *--end != '.') {
    }
    if (end == name) { /* no module: a global */
      lua_pushglobaltable(L);
      end = name - 1;
      break;
    }
  }
  while (*end) { /* index the rest, one field at a time */
    const char *start = end + 1, *dot = strchr(start, '.');
    size_t len = dot ? (size_t)(dot - start) : strlen(start);
    if (!lua_istable(L, -1)) luaL_error(L, "'%s' is not a function", name);
    lua_pushlstring(L, start, len);
    lua_gettable(L, -2);
    lua_remove(L, -2);
    end = start + len;
  }
  if (lua_type(L, -1) != LUA_TFUNCTION)
    luaL_error(L, "'%s' is not a function", name);
  lua_replace(L, idx);
  lua_settop(L, top);
}

static int run_protected(lua_State *L) {
  ljob *j = lua_touserdata(L, 1);
  int n, base;
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_pushglobaltable(L);
  base = lua_gettop(L);
  n = lweft_decode(L, j->msg, j->len, 2);
  if (n < 1) return luaL_error(L, "bad job");
  if (lua_type(L, base + 1) == LUA_TSTRING) resolve(L, base + 1);
  atomic_store(&j->running_on, L);
  if (weft_job_cancelled(worker_of(L)->job)) /* cancelled before it got here */
    lua_sethook(L, cancel_hook, LUA_MASKCOUNT, 1);
  if (lua_pcall(L, n - 1, LUA_MULTRET, 1) != LUA_OK) {
    atomic_store(&j->running_on, NULL);
    return lua_error(L);
  }
  atomic_store(&j->running_on, NULL);
  lweft_encode(L, base + 1, lua_gettop(L) - base, "results");
  return 1;
}

static void keep_result(ljob *j, lua_State *L, int ok) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  j->res = malloc(len ? len : 1);
  if (j->res) memcpy(j->res, s, len);
  j->rlen = j->res ? len : 0;
  j->ok = ok && j->res;
}

static int run_job(weft_job_t *job, void *td, void *arg) {
  wstate *w = td;
  ljob *j = arg;
  lua_State *L = w ? w->L : NULL;
  if (!L) return WEFT_ENOMEM;
  w->job = job;
  if (w->init_error) {
    lua_pushstring(L, w->init_error);
  } else {
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, j);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
      keep_result(j, L, 1);
      w->job = NULL;
      lua_settop(L, 0);
      return 0;
    }
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "error object is not a string");
    }
  }
  /* the error, as a one-string message */
  lweft_encode(L, -1, 1, "error");
  keep_result(j, L, 0);
  w->job = NULL;
  lua_settop(L, 0);
  return weft_job_cancelled(job) ? WEFT_ECANCELED : 0;
}

static void job_done(weft_loop_t *loop, weft_job_t *job, int status,
                     void *arg) {
  ljob *j = arg;
  (void)loop, (void)job;
  j->done_ran = 1;
  j->job = NULL;
  if (status == WEFT_ECANCELED && !j->res) j->ok = 0;
  if (j->lua_live) lweft_io_wake(j->st, &j->iow);
  job_release(j);
}

/* Stops the job: a queued one never runs, a running one gets the hook. */
static void job_stop(ljob *j) {
  lua_State *wl;
  if (j->job) weft_job_cancel(j->job);
  if ((wl = atomic_load(&j->running_on)))
    lua_sethook(wl, cancel_hook, LUA_MASKCOUNT, 1);
}

/* The task waiting on the job was cancelled: the job goes too. */
static void job_abandon(lua_State *L, void *data) {
  (void)L;
  job_stop(data);
}

/* Pushes ok, result bytes (or false, nil when cancelled before it ran). */
static int job_result(lua_State *L, ljob *j) {
  lua_pushboolean(L, j->ok);
  if (j->res) lua_pushlstring(L, j->res, j->rlen);
  else lua_pushnil(L);
  return 2;
}

static int job_k(lua_State *L, int status, lua_KContext ctx) {
  ljob *j = (ljob *)ctx;
  (void)status;
  if (!lua_toboolean(L, 3)) { /* cancelled: the hook stopped the job */
    lua_settop(L, 4);
    return lua_error(L);
  }
  return job_result(L, j);
}

typedef struct lpool {
  weft_pool_t *pool; /* NULL once closed */
  poolcfg cfg;
} lpool;

#define JOB_MT "weft.job_handle"

/* A job as a Lua value: the handle keeps the job's memory until it is
 * collected, and a handle collected before its job ended cancels it. */
typedef struct ljobh {
  ljob *j;
} ljobh;

static int lw_job_gc(lua_State *L) {
  ljobh *h = luaL_checkudata(L, 1, JOB_MT);
  if (h->j) {
    if (!h->j->done_ran) job_stop(h->j);
    h->j->lua_live = 0;
    job_release(h->j);
    h->j = NULL;
  }
  return 0;
}

/* pool_submit(pool, bytes) -> job handle: queued at once, in call order */
static int lw_pool_submit(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  lpool *p = luaL_checkudata(L, 1, POOL_MT);
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  ljobh *h;
  ljob *j;
  int err;
  if (!p->pool) return luaL_error(L, "attempt to use a closed pool");
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->j = NULL;
  luaL_setmetatable(L, JOB_MT);
  j = calloc(1, sizeof *j);
  if (!j || !(j->msg = malloc(len ? len : 1))) {
    free(j);
    return luaL_error(L, "not enough memory");
  }
  memcpy(j->msg, msg, len);
  j->len = len;
  j->st = st;
  j->lua_live = 1;
  err = weft_pool_submit(p->pool, run_job, job_done, j, &j->job);
  if (err) {
    free(j->msg);
    free(j);
    return luaL_error(L, "run: %s", weft_strerror(err));
  }
  h->j = j;
  return 1;
}

/* pool_wait(job) -> ok, result bytes: waits for the job (a task
 * suspends, cancellable with the job; the main chunk runs the loop). */
static int lw_pool_wait(lua_State *L) {
  ljobh *h = luaL_checkudata(L, 1, JOB_MT);
  ljob *j = h->j;
  void *task;
  lua_settop(L, 1);
  if (j->done_ran) return job_result(L, j); /* it finished first */
  lua_pushnil(L); /* 2: keeps the task's slot at 3 for the continuation */
  task = lweft_io_begin(L, j->st, "run");
  if (!task) {
    if (lweft_io_run_while(L, j->st, &j->done_ran, 0, "run") != LUA_OK) {
      job_stop(j);
      return lua_error(L);
    }
    return job_result(L, j);
  }
  return lweft_io_suspend(L, task, &j->iow, job_abandon, j, (lua_KContext)j,
                          job_k);
}

static void free_cfg(poolcfg *c) {
  free(c->path);
  free(c->cpath);
  free(c->init);
  c->path = c->cpath = c->init = NULL;
}

static int lw_pool_gc(lua_State *L) {
  lpool *p = luaL_checkudata(L, 1, POOL_MT);
  if (p->pool) weft_pool_close(p->pool);
  p->pool = NULL;
  free_cfg(&p->cfg);
  return 0;
}

static char *dup_field(lua_State *L, const char *name) {
  const char *s;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, name);
  s = lua_tostring(L, -1);
  s = strdup(s ? s : "");
  lua_pop(L, 2);
  return (char *)s;
}

/* pool_new(min, max, idle_ms, init|nil, spin_us) -> pool */
static int lw_pool_new(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  weft_pool_options o;
  lpool *p;
  int err;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.min = (unsigned)luaL_checkinteger(L, 1);
  o.max = (unsigned)luaL_checkinteger(L, 2);
  o.idle_ms = (uint64_t)luaL_checkinteger(L, 3);
  o.spin_us = (unsigned)luaL_checkinteger(L, 5);
  p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, POOL_MT);
  p->cfg.path = dup_field(L, "path");
  p->cfg.cpath = dup_field(L, "cpath");
  if (!lua_isnil(L, 4)) p->cfg.init = strdup(luaL_checkstring(L, 4));
  o.thread_init = worker_init;
  o.thread_exit = worker_exit;
  o.ud = &p->cfg;
  err = weft_pool_new(st->loop, &o, &p->pool);
  if (err) return luaL_error(L, "pool: %s", weft_strerror(err));
  return 1;
}

static int lw_pool_close(lua_State *L) {
  lpool *p = luaL_checkudata(L, 1, POOL_MT);
  int was = p->pool != NULL;
  if (p->pool) weft_pool_close(p->pool);
  p->pool = NULL;
  lua_pushboolean(L, was);
  return 1;
}

static int lw_pool_threads(lua_State *L) {
  lpool *p = luaL_checkudata(L, 1, POOL_MT);
  lua_pushinteger(L, p->pool ? (lua_Integer)weft_pool_threads(p->pool) : 0);
  return 1;
}

/* register(name, mt) -> mt */
static int lw_register(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lweft_register_class(L, 1, 2))
    return luaL_argerror(L, 1, "name already registered for another metatable");
  lua_settop(L, 2);
  return 1;
}

static int lw_cpus(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

void lweft_thread_prims(lua_State *L) {
  static const luaL_Reg prims[] = {
      {"thread_id", lw_thread_id},
      {"encode", lw_encode},         {"decode", lw_decode},
      {"pool_new", lw_pool_new},     {"pool_submit", lw_pool_submit},
      {"pool_wait", lw_pool_wait},
      {"pool_close", lw_pool_close}, {"pool_threads", lw_pool_threads},
      {"cpus", lw_cpus},             {"register", lw_register},
      {NULL, NULL}};
  if (luaL_newmetatable(L, POOL_MT)) {
    lua_pushcfunction(L, lw_pool_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, JOB_MT)) {
    lua_pushcfunction(L, lw_job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
  lweft_chan_prims(L);
}
