/* worker.c: the workers' side of weft.pool.  Each worker thread owns a Lua
 * state (standard libraries, the creator's package paths, the pool's init
 * module) and runs jobs in it: decode the function and its arguments, call
 * it, encode its results or its error.  thread.c is the loop's side. */
#include "lthread.h"

#include <stdlib.h>
#include <string.h>

#include <lualib.h>

/* Workers are numbered from 1, in the order any pool started them. */
static atomic_int next_thread_id;

/* What a worker keeps about itself, a light userdata under worker_key in
 * its Lua state's registry (not in thread-local variables: this module is
 * loaded with dlopen, and a thread-local that the main thread touches
 * outlives the module's dlclose in LeakSanitizer's books). */
typedef struct wstate {
  lua_State *L;
  char *init_error; /* why the init module failed, if it did */
  int id;           /* weft.thread.id() */
  weft_job_t *job;  /* the job it runs, for the hook's cancellation check */
  const lthread_cfg *cfg;
  int heap_kb; /* the state's size after its last full collection */
} wstate;

static const char worker_key = 0;

/* The traceback of the last error of a job that was not a string. */
static const char traceback_key = 0;

/* A job that leaves the worker's state bigger than its last full
 * collection did, by more than this (in KiB) and more than that size, is
 * followed by one: an idle worker never collects, and would keep what
 * large messages left (the strings a job received, as arguments or over
 * channels) until its next jobs.  Growth past the state's own size keeps
 * the cost of those collections in proportion to the memory they free,
 * as Lua's own pause does. */
#define BIG_GROWTH_KB 1024

/* The worker running L's state, or NULL outside workers. */
static wstate *worker_of(lua_State *L) {
  wstate *w;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
  w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return w;
}

int lthread_id(lua_State *L) {
  wstate *w = worker_of(L);
  return w ? w->id : 0;
}

int lweft_can_block(lua_State *L) {
  return !lua_isyieldable(L) && !weft_fiber_current() && worker_of(L);
}

/* Set on a worker's state by a cancellation: a hook left on the whole time
 * would slow every instruction of every job.  A stray one, arriving after
 * the job ended, removes itself. */
static void cancel_hook(lua_State *L, lua_Debug *ar) {
  wstate *w = worker_of(L);
  (void)ar;
  if (w && w->job && weft_job_cancelled(w->job)) lweft_raise_cancelled(L);
  lua_sethook(L, NULL, 0, 0);
}

void lthread_interrupt(lua_State *L) {
  lua_sethook(L, cancel_hook, LUA_MASKCOUNT, 1);
}

/* ---- the worker's Lua state -------------------------------------------------- */

static int worker_setup(lua_State *L) {
  const lthread_cfg *cfg = lua_touserdata(L, 1);
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

/* Makes w's Lua state (w->L stays NULL without memory); a failing init
 * module is kept as every job's error. */
static void open_state(wstate *w) {
  w->L = luaL_newstate();
  if (!w->L) return;
  lua_pushlightuserdata(w->L, w);
  lua_rawsetp(w->L, LUA_REGISTRYINDEX, &worker_key);
  lua_pushcfunction(w->L, worker_setup);
  lua_pushlightuserdata(w->L, (void *)w->cfg);
  if (lua_pcall(w->L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(w->L, -1);
    w->init_error = strdup(msg ? msg : "the worker's init failed");
    lua_settop(w->L, 0);
  }
  w->heap_kb = lua_gc(w->L, LUA_GCCOUNT);
}

static void close_state(wstate *w) {
  if (w->L) lua_close(w->L);
  w->L = NULL;
  free(w->init_error);
  w->init_error = NULL;
}

void *lthread_worker_init(void *ud) {
  wstate *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->id = atomic_fetch_add(&next_thread_id, 1) + 1;
  w->cfg = ud;
  open_state(w);
  return w;
}

void lthread_worker_exit(void *td, void *ud) {
  wstate *w = td;
  (void)ud;
  if (!w) return;
  close_state(w);
  free(w);
}

/* ---- running a job -------------------------------------------------------------- */

/* The job's message handler: a string error gets the worker's traceback
 * appended; another value is kept as it is, its traceback put aside for
 * the error's message (a table gets it in its field "traceback"). */
static int job_msgh(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
  }
  luaL_traceback(L, L, NULL, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &traceback_key);
  lua_settop(L, 1);
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

/* Keeps a message as the job's res (use of lweft_encode_with). */
static int keep_res(lua_State *L, void *ud, const char *p, size_t len,
                    lweft_msgbox *box) {
  ljob *j = ud;
  weft_chan_free(j->res);
  j->res = NULL;
  j->res = lweft_msg_take(L, p, len, box);
  j->rlen = len;
  return 0;
}

static void set_running(ljob *j, lua_State *L) {
  pthread_mutex_lock(&j->mu);
  j->running_on = L;
  pthread_mutex_unlock(&j->mu);
}

/* Runs the job at 1 (protected): decodes its function and arguments, calls
 * it, and keeps its results. */
static int run_protected(lua_State *L) {
  ljob *j = lua_touserdata(L, 1);
  int n, base;
  lua_settop(L, 0);
  lua_pushcfunction(L, job_msgh);
  lua_pushglobaltable(L);
  base = lua_gettop(L);
  n = lweft_decode(L, j->msg, j->len, 2);
  weft_chan_free(j->msg); /* (its copy is on the stack: give it back) */
  j->msg = NULL;
  if (n < 1) return luaL_error(L, "bad job");
  if (lua_type(L, base + 1) == LUA_TSTRING) resolve(L, base + 1);
  set_running(j, L);
  if (weft_job_cancelled(worker_of(L)->job)) /* cancelled before it got here */
    lthread_interrupt(L);
  if (lua_pcall(L, n - 1, LUA_MULTRET, 1) != LUA_OK) {
    set_running(j, NULL);
    return lua_error(L);
  }
  set_running(j, NULL);
  lweft_encode_with(L, base + 1, lua_gettop(L) - base, "results", keep_res, j);
  return 0;
}

/* Pushes the message of its arguments (protected). */
static int encode_all(lua_State *L) {
  return lweft_encode(L, 1, lua_gettop(L), "error");
}

/* Keeps the error at 2 as the job's res (protected, the job at 1): the
 * value and the traceback put aside for it when it can cross, else a
 * string naming its type and why it cannot. */
static int keep_error(lua_State *L) {
  ljob *j = lua_touserdata(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lweft_encode_with(L, 2, 1, "error", keep_res, j);
    return 0;
  }
  lua_settop(L, 2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &traceback_key); /* 3 */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &traceback_key);
  lua_pushcfunction(L, encode_all);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    keep_res(L, j, msg, len, NULL);
    return 0;
  }
  lua_pushfstring(L, "(error object is a %s value: %s)\n%s", luaL_typename(L, 2),
                  lua_tostring(L, -1), lua_isstring(L, 3) ? lua_tostring(L, 3) : "");
  lweft_encode_with(L, -1, 1, "error", keep_res, j);
  return 0;
}

int lthread_run_job(weft_job_t *job, void *td, void *arg) {
  wstate *w = td;
  ljob *j = arg;
  lua_State *L = w ? w->L : NULL;
  int cancelled;
  if (!L) return WEFT_ENOMEM;
  w->job = job;
  j->ok = 0;
  if (w->init_error) {
    lua_pushstring(L, w->init_error);
  } else {
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, j);
    j->ok = lua_pcall(L, 1, 0, 0) == LUA_OK;
  }
  if (!j->ok) { /* the error is on top */
    lua_pushcfunction(L, keep_error);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, j);
    lua_insert(L, -2);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) { /* out of memory */
      weft_chan_free(j->res);
      j->res = NULL;
    }
  }
  lua_settop(L, 0);
  w->job = NULL;
  cancelled = weft_job_cancelled(job);
  if (cancelled) {
    /* Whatever the job left in its state (tasks of a nested loop, their
     * waits on channels) must not outlive it and take values meant for
     * the next receivers: the worker starts afresh. */
    close_state(w);
    open_state(w);
  } else {
    int grown = lua_gc(L, LUA_GCCOUNT) - w->heap_kb;
    if (grown > BIG_GROWTH_KB && grown > w->heap_kb) {
      lua_gc(L, LUA_GCCOLLECT);
      w->heap_kb = lua_gc(L, LUA_GCCOUNT);
    }
  }
  return cancelled ? WEFT_ECANCELED : 0;
}
