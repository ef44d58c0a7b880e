/* game_host.c: a game-style host.  Its frame loop ticks weft once a frame
 * (60 frames/s); it loads assets on weft's worker pool and hands each load
 * to the script as a promise to await (a core promise the host made); it
 * awaits a task of the script (a dialog that ends with the player's
 * choice); and every error the script does not handle reaches the host's
 * callback with its traceback.  The script (game.lua) keeps animating
 * while its asset loads.
 * usage: game_host SCRIPT */
#include <lauxlib.h>
#include <lualib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft_lua.h"

static weft_loop_t *loop;
static weft_pool_t *pool;
static int script_errors;
static atomic_int frames_drawn; /* read by the loads on the workers */

/* ---- an asset load on the worker pool, as a promise ------------------- */

typedef struct load {
  char name[64];
  size_t bytes; /* what the "decoder" produced */
  weft_promise_t *promise;
} load;

/* On a worker: stands in for reading and decoding a file, work that
 * lasts a few frames.  It ends once the host has drawn three frames since
 * it began (counted, not timed, so the example shows the same on a loaded
 * machine: the script animates while its asset loads). */
static int decode(weft_job_t *job, void *thread_data, void *arg) {
  load *l = arg;
  struct timespec t = {0, 1000 * 1000};
  int until = atomic_load(&frames_drawn) + 3;
  (void)job, (void)thread_data;
  while (atomic_load(&frames_drawn) < until) nanosleep(&t, NULL);
  l->bytes = 1024 * strlen(l->name);
  return 0;
}

/* On the loop's thread: the load's promise settles with the asset. */
static void decoded(weft_loop_t *lp, weft_job_t *job, int status, void *arg) {
  load *l = arg;
  (void)lp, (void)job;
  if (status == 0) weft_promise_resolve(l->promise, l, free);
  else weft_promise_reject(l->promise, status, "the asset did not load");
  weft_promise_unref(l->promise);
}

/* What a script receives of a loaded asset: its name and size. */
static int push_asset(lua_State *L, weft_promise_t *p, void *data) {
  load *l = weft_promise_value(p);
  (void)data;
  lua_pushstring(L, l->name);
  lua_pushinteger(L, (lua_Integer)l->bytes);
  return 2;
}

/* host.load_asset(name) -> a promise of (name, bytes) */
static int lw_load_asset(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  weft_promise_t *p;
  load *l = calloc(1, sizeof *l);
  if (!l || weft_promise_new(loop, &p) != 0) return luaL_error(L, "no memory");
  snprintf(l->name, sizeof l->name, "%s", name);
  l->promise = p;
  weft_promise_ref(p); /* the job's, until decoded */
  if (weft_pool_submit(pool, decode, decoded, l, NULL) != 0)
    return luaL_error(L, "load_asset: cannot queue the job");
  if (weft_lua_push_promise(L, p, push_asset, NULL) != 0)
    return luaL_error(L, "load_asset: no memory");
  weft_promise_unref(p); /* (the binding and the job hold it) */
  return 1;
}

/* ---- the host awaits a task of the script --------------------------------- */

static char choice[64];

static void dialog_over(weft_promise_t *p, void *data) {
  lua_State *L = data;
  int top = lua_gettop(L), n = weft_lua_push_outcome(L, p);
  if (n >= 2 && lua_toboolean(L, top + 1))
    snprintf(choice, sizeof choice, "%s", lua_tostring(L, top + 2));
  lua_settop(L, top);
  weft_promise_unref(p);
}

static void on_script_error(lua_State *L, const char *msg, void *data) {
  (void)L, (void)data;
  script_errors++;
  printf("host: a script error reached the host: %.*s\n",
         (int)strcspn(msg, "\n"), msg);
  if (strstr(msg, "stack traceback:")) printf("host: with its traceback\n");
}

int main(int argc, char **argv) {
  weft_pool_options opts = {sizeof opts, 0, 2, 1000, NULL, NULL, NULL, 0};
  struct timespec frame = {0, 16666667}; /* 60 frames/s */
  weft_promise_t *dialog;
  lua_State *L;
  int frames = 0, err;
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT\n", argv[0]);
    return 2;
  }
  if (weft_loop_new(&loop) != 0 || weft_pool_new(loop, &opts, &pool) != 0)
    return 1;
  L = luaL_newstate();
  luaL_openlibs(L);
  weft_lua_open(L, loop); /* the scripts share the host's loop */
  lua_pop(L, 1);
  weft_lua_on_error(L, on_script_error, NULL);
  lua_newtable(L);
  lua_pushcfunction(L, lw_load_asset);
  lua_setfield(L, -2, "load_asset");
  lua_setglobal(L, "host");
  if (luaL_dofile(L, argv[1]) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  /* The script's dialog is a task; the host waits for its choice. */
  lua_getglobal(L, "dialog");
  lua_call(L, 0, 1);
  dialog = weft_lua_to_promise(L, -1);
  lua_pop(L, 1);
  weft_promise_then(dialog, dialog_over, L);
  while (!choice[0] && frames < 600) { /* at most 10 s of frames */
    weft_loop_run(loop, WEFT_RUN_NOWAIT); /* one tick, never blocking */
    lua_getglobal(L, "animate");
    lua_pushinteger(L, frames);
    lua_call(L, 1, 0);
    atomic_fetch_add(&frames_drawn, 1);
    nanosleep(&frame, NULL);
    frames++;
  }
  lua_getglobal(L, "report");
  lua_call(L, 0, 1);
  printf("host: %s\n", lua_tostring(L, -1));
  printf("host: the player chose %s after %s frames\n",
         choice[0] ? choice : "NOTHING", frames < 600 ? "a few" : "TOO MANY");
  printf("host: %d script error%s reached the host\n", script_errors,
         script_errors == 1 ? "" : "s");
  lua_close(L);
  weft_pool_close(pool);
  err = weft_loop_free(loop);
  printf("host: loop freed: %s\n", err ? weft_err_name(err) : "ok");
  return err || !choice[0] || script_errors != 1;
}
