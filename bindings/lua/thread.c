/* thread.c: weft.pool on the loop's side.  A pool is a userdata over a
 * core pool whose workers have Lua states of their own (worker.c); a job
 * is a task that waits for its worker without blocking the loop, and a
 * pool closes while the loop runs.  threadchan.c holds the channels
 * across threads, thread.lua the constructors and their options.  The
 * methods are C functions called by the script itself, so their errors
 * carry the script's position. */
#include "lthread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_MT "weft.pool"
#define JOB_MT "weft.job_handle"

/* The pools' metatable, for lweft_testudata. */
static const char pool_key = 0;

/* registry[&cancelled_key]: thread.lua's function(reason) -> the error of
 * a task cancelled with that reason, for a job that never ran. */
static const char cancelled_key = 0;

typedef struct lclosing lclosing;

typedef struct lpool {
  weft_pool_t *pool; /* NULL once the close ended */
  int closing;       /* the close began: no new job */
  lthread_cfg *cfg;  /* what workers start from (the close frees it) */
  ljob *jobs;        /* jobs whose done callback has not run */
} lpool;

/* A pool's close: the core's callback and the caller waiting for it each
 * hold it; freed when neither does. */
struct lclosing {
  lweft_state *st;
  lpool *p; /* the pool's userdata, until the close ended */
  lthread_cfg *cfg;
  int pending; /* the close has not ended */
  int waiting; /* a task or the main chunk waits for it */
  lweft_iowait iow;
};

static void free_cfg(lthread_cfg *c) {
  if (!c) return;
  free(c->path);
  free(c->cpath);
  free(c->init);
  free(c);
}

/* ---- jobs ------------------------------------------------------------------- */

/* A job as a Lua value: the handle keeps the job's memory until it is
 * collected, and its pool (user value 1) while the job may run; a handle
 * collected before its job ended cancels it. */
typedef struct ljobh {
  ljob *j;
} ljobh;

static void job_release(ljob *j) {
  if (j->done_ran && !j->lua_live) {
    weft_chan_free(j->msg);
    weft_chan_free(j->res);
    pthread_mutex_destroy(&j->mu);
    free(j);
  }
}

static void job_unlink(ljob *j) {
  if (!j->pool) return;
  if (j->prev) j->prev->next = j->next;
  else j->pool->jobs = j->next;
  if (j->next) j->next->prev = j->prev;
  j->prev = j->next = NULL;
  j->pool = NULL;
}

static void job_done(weft_loop_t *loop, weft_job_t *job, int status,
                     void *arg) {
  ljob *j = arg;
  (void)loop, (void)job;
  j->done_ran = 1;
  j->job = NULL;
  j->status = status;
  job_unlink(j);
  if (j->lua_live) lweft_io_wake(j->st, &j->iow);
  job_release(j);
}

/* Stops the job: a queued one never runs; a running one is woken where it
 * waits in weft (the core) and its Lua code stops at its next instruction
 * (the hook). */
static void job_stop(ljob *j) {
  if (j->job) weft_job_cancel(j->job);
  pthread_mutex_lock(&j->mu);
  if (j->running_on) lthread_interrupt(j->running_on);
  pthread_mutex_unlock(&j->mu);
}

/* The task waiting on the job was cancelled: the job goes too. */
static void job_abandon(lua_State *L, void *data) {
  (void)L;
  job_stop(data);
}

/* Gives the job's results, or raises its error: a value that crossed as
 * itself (a table gets the worker's traceback in its field "traceback"),
 * a string with the traceback, or the cancellation of a job that never
 * ran. */
static int job_result(lua_State *L, ljob *j) {
  int base = lua_gettop(L), n;
  if (!j->res) {
    if (j->status != WEFT_ECANCELED)
      return luaL_error(L, "run: %s", weft_strerror(j->status));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &cancelled_key);
    lua_pushliteral(L, "the pool closed");
    lua_call(L, 1, 1);
    return lua_error(L);
  }
  lua_pushglobaltable(L); /* functions get this state's globals */
  n = lweft_decode(L, j->res, j->rlen, base + 1);
  lua_remove(L, base + 1);
  weft_chan_free(j->res); /* (decoded: give the memory back now) */
  j->res = NULL;
  if (j->ok) return n;
  if (n >= 2 && lua_istable(L, base + 1) && lua_type(L, base + 2) == LUA_TSTRING) {
    lua_pushliteral(L, "traceback");
    if (lua_rawget(L, base + 1) == LUA_TNIL) {
      lua_pushliteral(L, "traceback");
      lua_pushvalue(L, base + 2);
      lua_rawset(L, base + 1);
    }
  }
  lua_settop(L, base + 1);
  return lua_error(L);
}

static int job_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  if (!lua_toboolean(L, 2)) { /* cancelled: the hook stopped the job */
    lua_settop(L, 3);
    return lua_error(L);
  }
  lua_settop(L, 1);
  return job_result(L, (ljob *)ctx);
}

/* lweft_io_begin, protected: a cancellation due at once must stop the job
 * too.  Arguments: the state; results: the task, the task's pointer. */
static int begin_wait(lua_State *L) {
  void *task = lweft_io_begin(L, lua_touserdata(L, 1), "run");
  lua_pushlightuserdata(L, task);
  return 2;
}

/* (begin_wait never yields: its continuation only makes the protected call
 * yieldable, which lweft_io_begin checks.) */
static int begin_wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return lua_gettop(L);
}

/* The body of a job's task (the handle at 1): waits for the job without
 * blocking the loop, then gives its results or raises its error.  A C
 * function, so that a job's error shows no frame of weft's own. */
static int job_task(lua_State *L) {
  ljob *j = ((ljobh *)lua_touserdata(L, 1))->j;
  void *task;
  lua_settop(L, 1);
  if (j->done_ran) return job_result(L, j);
  lua_pushcfunction(L, begin_wait);
  lua_pushlightuserdata(L, j->st);
  if (lua_pcallk(L, 1, 2, 0, 0, begin_wait_k) != LUA_OK) {
    job_stop(j);
    return lua_error(L);
  }
  task = lua_touserdata(L, -1);
  lua_pop(L, 1); /* the task is on top */
  return lweft_io_suspend(L, task, &j->iow, job_abandon, j, (lua_KContext)j,
                          job_k);
}

static int lw_job_gc(lua_State *L) {
  ljobh *h = lua_touserdata(L, 1);
  if (h->j) {
    if (!h->j->done_ran) job_stop(h->j);
    h->j->lua_live = 0;
    job_release(h->j);
    h->j = NULL;
  }
  return 0;
}

/* ---- pools ---------------------------------------------------------------------- */

/* The pool of self (argument 1), or raises naming fname. */
static lpool *self_pool(lua_State *L, const char *fname) {
  lpool *p = lweft_testudata(L, 1, &pool_key);
  if (!p)
    lweft_argerror(L, 1, fname,
                   lua_pushfstring(L, POOL_MT " expected, got %s",
                                   luaL_typename(L, 1)));
  return p;
}

typedef struct msgbuf {
  char *p;
  size_t len;
} msgbuf;

static int keep_msg(lua_State *L, void *ud, const char *p, size_t len,
                    lweft_msgbox *box) {
  msgbuf *m = ud;
  m->p = lweft_msg_take(L, p, len, box);
  m->len = len;
  return 0;
}

/* pool:run(fn, ...) -> the task of fn(...) in a worker: queued at once,
 * in call order */
static int lw_pool_run(lua_State *L) {
  lpool *p = self_pool(L, "run");
  lweft_state *st = lweft_state_of(L);
  int t = lua_type(L, 2), err;
  msgbuf m = {NULL, 0};
  ljobh *h;
  ljob *j;
  if (t != LUA_TFUNCTION && t != LUA_TSTRING)
    lweft_argerror(L, 2, "run",
                   lua_pushfstring(L, "function or function name expected, "
                                      "got %s", luaL_typename(L, 2)));
  /* (a worker resolves the name as a C string) */
  lweft_check_nozero(L, 2, 2, "run", "function name");
  if (p->closing) return luaL_error(L, "attempt to use a closed pool");
  lweft_encode_with(L, 2, lua_gettop(L) - 1, "args", keep_msg, &m);
  h = lua_newuserdatauv(L, sizeof *h, 1);
  h->j = NULL;
  lua_pushvalue(L, lua_upvalueindex(3)); /* the handles' metatable */
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (!(j = calloc(1, sizeof *j))) {
    weft_chan_free(m.p);
    return luaL_error(L, "not enough memory");
  }
  pthread_mutex_init(&j->mu, NULL);
  j->msg = m.p;
  j->len = m.len;
  j->st = st;
  j->lua_live = 1;
  err = weft_pool_submit(p->pool, lthread_run_job, job_done, j, &j->job);
  if (err) {
    j->done_ran = 1;
    j->lua_live = 0;
    job_release(j);
    return luaL_error(L, "run: %s", weft_strerror(err));
  }
  h->j = j;
  j->pool = p;
  j->next = p->jobs;
  if (p->jobs) p->jobs->prev = j;
  p->jobs = j;
  lua_pushvalue(L, lua_upvalueindex(2)); /* job_task */
  lua_insert(L, -2);
  return lweft_spawn(L, st, lua_gettop(L) - 1, 1);
}

static void closing_release(lclosing *c) {
  if (!c->pending && !c->waiting) free(c);
}

static void on_closed(weft_loop_t *loop, int status, void *data) {
  lclosing *c = data;
  (void)loop, (void)status;
  c->pending = 0;
  free_cfg(c->cfg); /* every worker has left */
  c->cfg = NULL;
  if (c->p) c->p->pool = NULL;
  c->p = NULL;
  if (c->waiting) lweft_io_wake(c->st, &c->iow);
  closing_release(c);
}

/* Begins closing p without blocking; NULL without memory. */
static lclosing *begin_close(lpool *p, lweft_state *st) {
  lclosing *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->st = st;
  c->p = p;
  c->cfg = p->cfg;
  c->pending = 1;
  p->cfg = NULL;
  p->closing = 1;
  weft_pool_close_async(p->pool, on_closed, c);
  return c;
}

static void close_abandon(lua_State *L, void *data) {
  lclosing *c = data;
  (void)L;
  c->waiting = 0;
  closing_release(c);
}

static int close_k(lua_State *L, int status, lua_KContext ctx) {
  lclosing *c = (lclosing *)ctx;
  (void)status;
  if (!lua_toboolean(L, 2)) { /* cancelled: close_abandon let c go */
    lua_settop(L, 3);
    return lua_error(L);
  }
  c->waiting = 0;
  closing_release(c);
  lua_pushboolean(L, 1);
  return 1;
}

/* pool:close() -> true, or false if it was closed already.  Queued jobs
 * are cancelled, running ones finish; it waits for the workers to leave:
 * a task suspends, the main chunk runs the loop, a callback (which can do
 * neither) does not wait. */
static int lw_pool_close(lua_State *L) {
  lpool *p = self_pool(L, "close");
  lweft_state *st = lweft_state_of(L);
  lclosing *c;
  void *task;
  int can_wait;
  lua_settop(L, 1);
  if (p->closing) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!(c = begin_close(p, st))) return luaL_error(L, "not enough memory");
  /* A task suspends, unless it is inside a C call it cannot suspend
   * across (a __close run by an error, a metamethod): then, as in a
   * callback, the close goes on without a wait. */
  if (lua_isyieldable(L) || weft_fiber_current()) {
    task = lweft_io_begin(L, st, "close"); /* at 2, if any */
    can_wait = 1;
  } else {
    task = NULL;
    can_wait = lua_pushthread(L); /* the main thread: never in a task */
    lua_pop(L, 1);
  }
  if (task) {
    c->waiting = 1;
    return lweft_io_suspend(L, task, &c->iow, close_abandon, c,
                            (lua_KContext)c, close_k);
  }
  if (can_wait && !st->running && c->pending) {
    c->waiting = 1;
    if (lweft_io_run_while(L, st, &c->pending, 1, "close") != LUA_OK) {
      close_abandon(L, c);
      return lua_error(L);
    }
    c->waiting = 0;
  }
  closing_release(c);
  lua_pushboolean(L, 1);
  return 1;
}

/* A pool collected (or the Lua state closing) with jobs still running:
 * nothing can await them any more, so they are cancelled, woken where they
 * wait, and the pool closes on this thread, which cannot return to its
 * loop from here. */
static int lw_pool_gc(lua_State *L) {
  lpool *p = lua_touserdata(L, 1);
  if (!p->pool) return 0;
  for (ljob *j = p->jobs; j; j = j->next) job_stop(j);
  if (!p->closing && !begin_close(p, lweft_state_of(L))) return 0;
  weft_pool_close(p->pool); /* on_closed runs inside */
  return 0;
}

static int lw_pool_threads(lua_State *L) {
  lpool *p = self_pool(L, "threads");
  lua_pushinteger(L, p->pool ? (lua_Integer)weft_pool_threads(p->pool) : 0);
  return 1;
}

static int lw_pool_tostring(lua_State *L) {
  lpool *p = self_pool(L, "__tostring");
  if (p->closing) lua_pushliteral(L, POOL_MT " (closed)");
  else
    lua_pushfstring(L, POOL_MT " (%d threads)", (int)weft_pool_threads(p->pool));
  return 1;
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
  p->closing = 1; /* (until the core pool exists) */
  luaL_setmetatable(L, POOL_MT);
  if (!(p->cfg = calloc(1, sizeof *p->cfg)))
    return luaL_error(L, "not enough memory");
  p->cfg->path = dup_field(L, "path");
  p->cfg->cpath = dup_field(L, "cpath");
  if (!lua_isnil(L, 4)) p->cfg->init = strdup(luaL_checkstring(L, 4));
  o.thread_init = lthread_worker_init;
  o.thread_exit = lthread_worker_exit;
  o.ud = p->cfg;
  err = weft_pool_new(st->loop, &o, &p->pool);
  if (err) {
    free_cfg(p->cfg);
    p->cfg = NULL;
    return luaL_error(L, "pool: %s", weft_strerror(err));
  }
  p->closing = 0;
  return 1;
}

/* ---- the rest ------------------------------------------------------------------ */

/* register(name, mt) -> true, or false if the name is another
 * metatable's (thread.lua checks the arguments and raises) */
static int lw_register(lua_State *L) {
  lua_pushboolean(L, lweft_register_class(L, 1, 2) == 0);
  return 1;
}

static int lw_cpus(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

static int lw_thread_id(lua_State *L) {
  lua_pushinteger(L, lthread_id(L));
  return 1;
}

/* on_cancelled(fn): fn(reason) makes the error of a job that never ran */
static int lw_on_cancelled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cancelled_key);
  return 0;
}

void lweft_thread_prims(lua_State *L) {
  static const luaL_Reg prims[] = {
      {"thread_id", lw_thread_id}, {"pool_new", lw_pool_new},
      {"cpus", lw_cpus},           {"register", lw_register},
      {"on_cancelled", lw_on_cancelled}, {NULL, NULL}};
  static const luaL_Reg methods[] = {
      {"close", lw_pool_close}, {"threads", lw_pool_threads}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", lw_pool_gc},
                                  {"__close", lw_pool_close},
                                  {"__tostring", lw_pool_tostring},
                                  {NULL, NULL}};
  /* (stack: state, prims) */
  luaL_newmetatable(L, JOB_MT);
  lua_pushcfunction(L, lw_job_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newmetatable(L, POOL_MT); /* state, prims, job mt, pool mt */
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, meta, 1);
  luaL_newlibtable(L, methods);
  lua_pushvalue(L, -5);
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, -5); /* run: the state, job_task, the job mt */
  lua_pushvalue(L, -6);
  lua_pushcclosure(L, job_task, 1);
  lua_pushvalue(L, -5);
  lua_pushcclosure(L, lw_pool_run, 3);
  lua_setfield(L, -2, "run");
  lua_setfield(L, -2, "__index");
  lweft_class_key(L, POOL_MT, &pool_key);
  lua_pop(L, 2);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
  lweft_chan_prims(L);
}
