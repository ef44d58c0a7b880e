/* process.c: the C half of weft.process: a handle userdata over a core
 * process whose exit settles a promise.  process.lua builds the objects. */
#include "lweft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROC_MT "weft.process_handle"

typedef struct lproc {
  weft_process_t *p; /* NULL once released */
  lweft_state *st;
  int ref; /* the promise the exit settles, in the registry */
} lproc;

static int lw_proc_gc(lua_State *L) {
  lproc *lp = luaL_checkudata(L, 1, PROC_MT);
  if (lp->p) weft_process_close(lp->p);
  lp->p = NULL;
  if (lp->ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, lp->ref);
  lp->ref = LUA_NOREF;
  return 0;
}

/* The exit: settles the promise with (status, signal name or nil). */
static void on_child_exit(weft_process_t *p, int64_t status, int signo,
                    void *data) {
  lproc *lp = data;
  lua_State *L;
  int top;
  weft_process_close(p);
  lp->p = NULL;
  if (!(L = lweft_take_ref(lp->st, lp->ref))) return;
  lp->ref = LUA_NOREF;
  top = lua_gettop(L) - 1; /* below the promise */
  lua_pushinteger(L, (lua_Integer)status);
  if (signo) {
    const char *name = lweft_signal_name(signo);
    if (name) lua_pushstring(L, name);
    else lua_pushinteger(L, signo);
  } else {
    lua_pushnil(L);
  }
  lweft_settle(L, top + 1, 2);
  lua_settop(L, top);
}

/* Fills a NULL-terminated string list from the sequence at idx, in a
 * userdata left on the stack (freed with it). */
static char **string_list(lua_State *L, int idx, int from) {
  lua_Integer n = (lua_Integer)luaL_len(L, idx), i;
  char **list = lua_newuserdatauv(L, (size_t)(n - from + 2) * sizeof *list, 0);
  for (i = from; i <= n; i++) {
    lua_geti(L, idx, i);
    list[i - from] = (char *)lua_tostring(L, -1); /* the table keeps it */
    lua_pop(L, 1);
  }
  list[n - from + 1] = NULL;
  return list;
}

/* Why a child could not start in cwd, when the directory is the reason:
 * "ENOENT" or "ENOTDIR", else NULL.  The child's chdir and exec fail with
 * the same codes, so uv_spawn cannot tell them apart; one stat on this
 * failure path can (spawn forks and execs from the loop thread anyway). */
static const char *cwd_problem(const char *cwd) {
  struct stat sb;
  if (!cwd) return NULL;
  if (stat(cwd, &sb) < 0)
    return errno == ENOTDIR ? "ENOTDIR" : errno == ENOENT ? "ENOENT" : NULL;
  return S_ISDIR(sb.st_mode) ? NULL : "ENOTDIR";
}

/* spawn(argv, env|nil, cwd|nil, fd0, fd1, fd2, detached, promise) ->
 * handle, pid, or nil, message, code, and the code of cwd's problem if
 * that is why ("ENOENT", "ENOTDIR").  argv and env are lists of strings
 * without zero bytes (checked by process.lua). */
static int lw_spawn(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  weft_process_options o;
  lproc *lp;
  int i, err;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.args = string_list(L, 1, 1);
  o.file = o.args[0];
  if (!lua_isnil(L, 2)) o.env = string_list(L, 2, 1);
  o.cwd = luaL_optstring(L, 3, NULL);
  for (i = 0; i < 3; i++) o.stdio[i] = (int)luaL_checkinteger(L, 4 + i);
  if (lua_toboolean(L, 7)) o.flags |= WEFT_PROCESS_DETACHED;
  lp = lua_newuserdatauv(L, sizeof *lp, 0);
  lp->p = NULL;
  lp->st = st;
  lp->ref = LUA_NOREF;
  luaL_setmetatable(L, PROC_MT);
  o.exit_cb = on_child_exit;
  o.data = lp;
  err = weft_process_spawn(st->loop, &o, &lp->p);
  if (err) {
    lweft_push_fail(L, NULL, err);
    lua_pushstring(L, cwd_problem(o.cwd));
    return 4;
  }
  lua_pushvalue(L, 8);
  lp->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushinteger(L, weft_process_pid(lp->p));
  return 2;
}

/* Calls lweft_check_signal on argument 1 (for a protected call). */
static int check_signal_fn(lua_State *L) {
  lua_pushinteger(L, lweft_check_signal(L, 1, "kill"));
  return 1;
}

/* kill(handle, sig) -> true, or nil, message, code */
static int lw_kill(lua_State *L) {
  lproc *lp = luaL_checkudata(L, 1, PROC_MT);
  int signo = lweft_check_signal(L, 2, "kill");
  int err = lp->p ? weft_process_kill(lp->p, signo) : WEFT_ESRCH;
  if (err) {
    return lweft_push_fail(L, NULL, err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ref(handle, on): whether the running child keeps the loop alive */
static int lw_proc_ref(lua_State *L) {
  lproc *lp = luaL_checkudata(L, 1, PROC_MT);
  if (lp->p) {
    if (lua_toboolean(L, 2)) weft_process_ref(lp->p);
    else weft_process_unref(lp->p);
  }
  return 0;
}

/* signo(v) -> the signal number of a number or name, or nil */
static int lw_signo(lua_State *L) {
  lua_settop(L, 1);
  lua_pushcfunction(L, check_signal_fn);
  lua_insert(L, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) lua_pushnil(L);
  return 1;
}

void lweft_process_prims(lua_State *L) {
  static const luaL_Reg prims[] = {{"spawn", lw_spawn}, {"kill", lw_kill},
                                   {"signo", lw_signo}, {"proc_ref", lw_proc_ref},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, PROC_MT)) {
    lua_pushcfunction(L, lw_proc_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2); /* the state */
  luaL_setfuncs(L, prims, 1);
}
