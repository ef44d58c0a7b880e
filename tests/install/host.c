/* host.c: a C host that tests/installed_host.sh builds outside weft's source
 * tree against installed files only.  It beats a timer on a weft loop of
 * its own, opens the Lua module on that loop through weft_lua.h, and runs
 * a script that must see the host's watcher and whose timer the host's loop
 * must fire.  Exits 0 when all of that happened and the loop freed cleanly.
 * usage: host */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "weft_lua.h"

static const char script[] =
    "local weft = require 'weft'\n"
    "assert(weft == package.loaded.weft)\n"
    "for _, w in ipairs(weft.watchers()) do\n"
    "  if w.where == 'host' then\n"
    "    print('script: sees the host\\'s ' .. w.kind .. ' watcher')\n"
    "  end\n"
    "end\n"
    "weft.once(10, function()\n"
    "  print('script: timer fired')\n"
    "  done = true\n"
    "end)\n"
    "return weft._VERSION\n";

static void on_beat(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg;
  (*(int *)data)++;
}

/* Opens the module as a host that links weft.so does (in a protected
 * call: luaopen_weft raises on a core of another major version). */
static int open_weft(lua_State *L) {
  luaL_requiref(L, "weft", luaopen_weft, 0);
  return 0;
}

static int fail(lua_State *L, const char *what) {
  fprintf(stderr, "host: %s: %s\n", what, lua_tostring(L, -1));
  return 1;
}

int main(void) {
  weft_loop_t *loop;
  weft_id_t beat;
  lua_State *L;
  char expect[64];
  int beats = 0, done = 0, turns = 0, err;
  if (weft_version() >> 16 != WEFT_VERSION_MAJOR) {
    fprintf(stderr, "host: built for %d.x, runs libweft %s\n",
            WEFT_VERSION_MAJOR, weft_version_string());
    return 1;
  }
  if ((err = weft_loop_new(&loop)) != 0) {
    fprintf(stderr, "host: weft_loop_new: %s\n", weft_strerror(err));
    return 1;
  }
  weft_every(loop, 2, 2, on_beat, &beats, 0, &beat);

  L = luaL_newstate();
  luaL_openlibs(L);
  lua_pushlightuserdata(L, loop);
  lua_setfield(L, LUA_REGISTRYINDEX, WEFT_LUA_LOOP_KEY);
  lua_pushcfunction(L, open_weft);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) return fail(L, "luaopen_weft");
  if (luaL_dostring(L, script) != LUA_OK) return fail(L, "script");
  snprintf(expect, sizeof expect, "weft %s", weft_version_string());
  if (strcmp(lua_tostring(L, -1), expect) != 0) {
    fprintf(stderr, "host: the script runs %s, not %s\n",
            lua_tostring(L, -1), expect);
    return 1;
  }
  lua_pop(L, 1);

  /* The host drives the loop; the script's timer fires from it. */
  while (!done && turns++ < 1000) {
    weft_loop_run(loop, WEFT_RUN_ONCE);
    lua_getglobal(L, "done");
    done = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  printf("host: script done: %s; host timer beat: %s\n", done ? "yes" : "NO",
         beats > 0 ? "yes" : "NO");
  lua_close(L);
  weft_watch_cancel(loop, beat);
  err = weft_loop_free(loop);
  printf("host: loop freed: %s\n", err ? weft_err_name(err) : "ok");
  return !done || !beats || err;
}
