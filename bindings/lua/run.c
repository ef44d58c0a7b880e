/* run.c: weft.run, which runs the loop until no work is left (with a
 * function, as a task whose failure stops it at once), and the warning
 * for a loop that never ran.  It joins the reactor (reactor.c) and the
 * tasks (task.c): neither depends on the other for it. */
#include "lweft.h"

#include <stdio.h>

static int lw_run(lua_State *L) {
  lweft_state *st = lweft_state_of(L);
  int n = lua_gettop(L), r;
  if (n > 0) {
    lweft_checktype(L, 1, LUA_TFUNCTION, NULL);
    lweft_spawn(L, st, 1, n - 1); /* its promise, at 1 */
    lweft_mark_run_task(L, 1);
  }
  r = lweft_run_loop(L, st, WEFT_RUN_DEFAULT, "run");
  if (r > 0) {
    /* Stopped while work remains: fn's task failed (its error comes out
     * now; the rest stays for the next run), or weft.stop(). */
    if (n > 0 && lweft_promise_failed(L, 1))
      return lweft_settled_results(L, 1, "run");
    return 0;
  }
  if (n > 0) {
    lweft_settled_results(L, 1, "run"); /* marks fn's own outcome handled */
    lua_settop(L, 1);
  }
  /* The loop is done: rejections nobody handled are reported now. */
  lweft_report_unhandled(L);
  lweft_raise_pending(L, st);
  return n > 0 ? lweft_settled_results(L, 1, "run") : 0;
}

void lweft_warn_never_ran(lua_State *L, lweft_state *st) {
  int tasks, watchers, top = lua_gettop(L);
  if (st->ever_ran || !st->owns_loop || !lua_checkstack(L, 8)) return;
  tasks = lweft_unstarted_tasks(L, st); /* pushes where the first was */
  watchers = lweft_unfired_watchers(L, st); /* and where the first was */
  if (tasks && watchers) lua_pop(L, 1); /* the task's place is the one */
  if (!tasks && !watchers) return;
  if (tasks)
    lua_pushfstring(L, "%d task%s never started%s", tasks,
                    tasks == 1 ? "" : "s", watchers ? " and " : "");
  else
    lua_pushliteral(L, "");
  if (watchers)
    lua_pushfstring(L, "%d watcher%s never fired", watchers,
                    watchers == 1 ? "" : "s");
  else
    lua_pushliteral(L, "");
  fprintf(stderr,
          "weft: the loop never ran: %s%s (the first created at %s); "
          "call weft.run()\n",
          lua_tostring(L, -2), lua_tostring(L, -1), lua_tostring(L, -3));
  lua_settop(L, top);
}

void lweft_open_run(lua_State *L) {
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, lw_run, 1);
  lua_setfield(L, -3, "run");
}
