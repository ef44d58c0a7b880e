/* test_embed.c: the embedding API of the Lua binding (weft_lua.h), from a
 * C host that drives the loop itself: promises both ways, cancellation
 * across, errors nobody handles, a Lua state closing under the host's
 * promises, and bad input. */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "weft_lua.h"

static lua_State *open_state(weft_loop_t *loop) {
  lua_State *L = luaL_newstate();
  ASSERT(L != NULL);
  luaL_openlibs(L);
  ASSERT_EQ(weft_lua_open(L, loop), 1);
  ASSERT(lua_istable(L, -1));
  lua_pop(L, 1);
  return L;
}

static void run_lua(lua_State *L, const char *code) {
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    ASSERT(0);
  }
}

static int push_int(lua_State *L, weft_promise_t *p, void *data) {
  (void)data;
  lua_pushinteger(L, *(int *)weft_promise_value(p));
  lua_pushliteral(L, "second");
  return 2;
}

static void embed_a_script_awaits_the_hosts_promise(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  lua_State *L;
  int v = 7;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  ASSERT_OK(weft_promise_new(loop, &p));
  run_lua(L, "weft = require 'weft'; got = nil");
  lua_getglobal(L, "weft");
  lua_getfield(L, -1, "async");
  run_lua(L, "return function(p) got = { weft.await(p) } end");
  ASSERT_OK(weft_lua_push_promise(L, p, push_int, NULL));
  lua_call(L, 2, 1); /* weft.async(fn, p) */
  lua_pop(L, 2);
  weft_loop_run(loop, WEFT_RUN_NOWAIT); /* the task awaits */
  ASSERT_OK(weft_promise_resolve(p, &v, NULL));
  weft_promise_unref(p); /* the binding keeps it until it settled */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  run_lua(L, "assert(got[1] == 7 and got[2] == 'second', 'got ' .. tostring(got[1]))");
  lua_close(L);
  test_free_loop(loop);
}

static void embed_the_host_awaits_a_script_task(void) {
  weft_loop_t *loop;
  weft_promise_t *t, *bad;
  lua_State *L;
  const char *msg;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  run_lua(L, "local weft = require 'weft'\n"
             "ok_task = weft.async(function() weft.delay(1) return 'a', 2 end)\n"
             "bad_task = weft.async(function() error({ code = 9 }) end)\n");
  lua_getglobal(L, "bad_task"); /* (taken before it fails: handled) */
  bad = weft_lua_to_promise(L, -1);
  lua_pop(L, 1);
  lua_getglobal(L, "ok_task");
  t = weft_lua_to_promise(L, -1);
  lua_pop(L, 1);
  ASSERT(t != NULL);
  ASSERT_EQ(weft_lua_push_outcome(L, t), 2); /* still pending */
  ASSERT(!lua_toboolean(L, -2));
  ASSERT_STR_EQ(lua_tostring(L, -1), "still pending");
  lua_pop(L, 2);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_promise_state(t), WEFT_PROMISE_FULFILLED);
  ASSERT_EQ(weft_lua_push_outcome(L, t), 3);
  ASSERT(lua_toboolean(L, -3));
  ASSERT_STR_EQ(lua_tostring(L, -2), "a");
  ASSERT_EQ(lua_tointeger(L, -1), 2);
  lua_pop(L, 3);
  weft_promise_unref(t);
  /* A failed task: rejected with WEFT_EHOST and the error as text; the
   * error value itself is the outcome. */
  t = bad;
  ASSERT_EQ(weft_promise_error(t, &msg), WEFT_EHOST);
  ASSERT(strstr(msg, "table:") != NULL);
  ASSERT_EQ(weft_lua_push_outcome(L, t), 2);
  ASSERT(!lua_toboolean(L, -2));
  lua_getfield(L, -1, "code");
  ASSERT_EQ(lua_tointeger(L, -1), 9);
  lua_pop(L, 3);
  weft_promise_unref(t);
  lua_close(L);
  test_free_loop(loop);
}

static void embed_cancellation_crosses_both_ways(void) {
  weft_loop_t *loop;
  weft_promise_t *hosts, *scripts;
  lua_State *L;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  ASSERT_OK(weft_promise_new(loop, &hosts));
  /* The script cancels the promise the host gave it: the host's is. */
  ASSERT_OK(weft_lua_push_promise(L, hosts, NULL, NULL));
  lua_setglobal(L, "given");
  run_lua(L, "assert(given:cancel())");
  ASSERT_EQ(weft_promise_state(hosts), WEFT_PROMISE_CANCELLED);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  run_lua(L, "assert(given:status() == 'cancelled', given:status())");
  weft_promise_unref(hosts);
  /* The host cancels a script's task: the task gets the cancellation
   * where it waits, and cleans up. */
  run_lua(L, "local weft = require 'weft'\n"
             "cleaned = false\n"
             "sleeper = weft.async(function()\n"
             "  local _ <close> = setmetatable({}, { __close = function() cleaned = true end })\n"
             "  weft.delay(100000)\n"
             "end)\n");
  lua_getglobal(L, "sleeper");
  scripts = weft_lua_to_promise(L, -1);
  lua_pop(L, 1);
  weft_loop_run(loop, WEFT_RUN_NOWAIT);
  ASSERT_OK(weft_promise_cancel(scripts));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* no 100 s wait */
  run_lua(L, "assert(cleaned and sleeper:status() == 'cancelled')");
  weft_promise_unref(scripts);
  lua_close(L);
  test_free_loop(loop);
}

static void embed_closing_the_state_cancels_what_the_host_holds(void) {
  weft_loop_t *loop;
  weft_promise_t *t, *given;
  lua_State *L;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  run_lua(L, "never = require('weft').promise()");
  lua_getglobal(L, "never");
  t = weft_lua_to_promise(L, -1);
  lua_pop(L, 1);
  ASSERT_OK(weft_promise_new(loop, &given));
  ASSERT_OK(weft_lua_push_promise(L, given, NULL, NULL));
  lua_pop(L, 1);
  lua_close(L);
  ASSERT_EQ(weft_promise_state(t), WEFT_PROMISE_CANCELLED);
  /* The host's own promise settles later: it reaches no closed state. */
  ASSERT_OK(weft_promise_resolve(given, NULL, NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  weft_promise_unref(given);
  weft_promise_unref(t);
  test_free_loop(loop);
}

static int errors_seen;
static char errors[1024];
static void on_error(lua_State *L, const char *msg, void *data) {
  ASSERT(data == &errors_seen);
  ASSERT(lua_gettop(L) >= 1); /* the error value, at -1 */
  errors_seen++;
  strncat(errors, msg, sizeof errors - strlen(errors) - 1);
}

static void embed_errors_reach_the_host_or_stderr(void) {
  weft_loop_t *loop;
  lua_State *L;
  FILE *err;
  char buf[512] = {0};
  int saved;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  weft_lua_on_error(L, on_error, &errors_seen);
  errors_seen = 0;
  errors[0] = 0;
  run_lua(L, "local weft = require 'weft'\n"
             "weft.once(1, function() error('in a callback') end)\n"
             "weft.async(function() error('in a task nobody awaits') end)\n");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(errors_seen, 2);
  ASSERT(strstr(errors, "in a callback") != NULL);
  ASSERT(strstr(errors, "in a task nobody awaits") != NULL);
  ASSERT(strstr(errors, "stack traceback") != NULL);
  /* No handler, no weft.run of a script: stderr, never dropped. */
  weft_lua_on_error(L, NULL, NULL);
  err = tmpfile();
  ASSERT(err != NULL);
  fflush(stderr);
  saved = dup(2);
  ASSERT(dup2(fileno(err), 2) >= 0);
  run_lua(L, "require('weft').once(1, function() error('to stderr') end)");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  fflush(stderr);
  ASSERT(dup2(saved, 2) >= 0);
  close(saved);
  rewind(err);
  ASSERT(fread(buf, 1, sizeof buf - 1, err) > 0);
  fclose(err);
  ASSERT(strstr(buf, "weft: unhandled error:") != NULL);
  ASSERT(strstr(buf, "to stderr") != NULL);
  ASSERT_EQ(errors_seen, 2);
  lua_close(L);
  test_free_loop(loop);
}

static void embed_closing_the_state_lets_go_of_the_hosts_promise(void) {
  weft_loop_t *loop;
  weft_promise_t *given;
  lua_State *L;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  ASSERT_OK(weft_promise_new(loop, &given));
  ASSERT_OK(weft_lua_push_promise(L, given, push_int, NULL));
  lua_setglobal(L, "given");
  run_lua(L, "local weft = require 'weft'\n"
             "waiter = weft.async(function() return weft.await(given) end)\n");
  weft_loop_run(loop, WEFT_RUN_NOWAIT); /* the task awaits given */
  lua_close(L);
  /* Nothing waits for it any more: the host's reference was the last, so
   * it goes, and the loop can be freed. */
  weft_promise_unref(given);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static int push_raises(lua_State *L, weft_promise_t *p, void *data) {
  (void)p, (void)data;
  return luaL_error(L, "the host could not convert it");
}

static int raises_seen;
static void on_error_raises(lua_State *L, const char *msg, void *data) {
  (void)data, (void)msg;
  raises_seen++;
  luaL_error(L, "the host's handler failed");
}

static void embed_a_raising_host_callback_is_an_error_not_an_abort(void) {
  weft_loop_t *loop;
  weft_promise_t *given;
  lua_State *L;
  FILE *err;
  char buf[1024] = {0};
  int saved, v = 1;
  ASSERT_OK(weft_loop_new(&loop));
  L = open_state(loop);
  /* A push callback that raises rejects the script's promise with it. */
  ASSERT_OK(weft_promise_new(loop, &given));
  ASSERT_OK(weft_lua_push_promise(L, given, push_raises, NULL));
  lua_setglobal(L, "given");
  run_lua(L, "local weft = require 'weft'\n"
             "waiter = weft.async(function() return pcall(weft.await, given) end)\n");
  ASSERT_OK(weft_promise_resolve(given, &v, NULL));
  weft_promise_unref(given);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  run_lua(L, "local ok, ok2, e = pcall(waiter.await, waiter)\n"
             "assert(ok and not ok2 and e:find('the host could not convert it'), tostring(e))");
  /* An error handler that raises, and an error value whose __tostring
   * raises: both reach stderr, and the loop goes on. */
  weft_lua_on_error(L, on_error_raises, NULL);
  raises_seen = 0;
  err = tmpfile();
  ASSERT(err != NULL);
  fflush(stderr);
  saved = dup(2);
  ASSERT(dup2(fileno(err), 2) >= 0);
  run_lua(L, "local weft = require 'weft'\n"
             "weft.once(1, function() error('first') end)\n"
             "weft.once(2, function() error(setmetatable({}, { __tostring =\n"
             "  function() error('no text') end })) end)\n"
             "weft.once(3, function() done = true end)\n");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  weft_lua_on_error(L, NULL, NULL);
  run_lua(L, "require('weft').once(1, function() error(setmetatable({},\n"
             "  { __tostring = function() error('no text') end })) end)");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  fflush(stderr);
  ASSERT(dup2(saved, 2) >= 0);
  close(saved);
  rewind(err);
  ASSERT(fread(buf, 1, sizeof buf - 1, err) > 0);
  fclose(err);
  ASSERT_EQ(raises_seen, 2);
  ASSERT(strstr(buf, "first") != NULL);
  ASSERT(strstr(buf, "the host's handler failed") != NULL);
  ASSERT(strstr(buf, "(error object is a table value)") != NULL);
  run_lua(L, "assert(done)");
  lua_close(L);
  test_free_loop(loop);
}

static int bad_input_value = 5;

static void embed_bad_input(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  /* the module is not open yet */
  ASSERT_EQ(weft_lua_push_promise(L, p, NULL, NULL), WEFT_EINVAL);
  lua_pushinteger(L, 1);
  ASSERT(weft_lua_to_promise(L, -1) == NULL);
  lua_pop(L, 1);
  ASSERT_EQ(weft_lua_open(L, loop), 1);
  lua_pop(L, 1);
  ASSERT_EQ(weft_lua_push_promise(L, NULL, NULL, NULL), WEFT_EINVAL);
  lua_pushliteral(L, "not a promise");
  ASSERT(weft_lua_to_promise(L, -1) == NULL);
  lua_pop(L, 1);
  ASSERT_EQ(weft_lua_push_outcome(L, NULL), 2);
  ASSERT_STR_EQ(lua_tostring(L, -1), "not a promise");
  lua_pop(L, 2);
  /* the host's own promise, whose payload is the host's (an int) */
  ASSERT_OK(weft_promise_resolve(p, &bad_input_value, NULL));
  ASSERT_EQ(weft_lua_push_outcome(L, p), 2);
  ASSERT(!lua_toboolean(L, -2));
  ASSERT_STR_EQ(lua_tostring(L, -1), "not a promise of this Lua state");
  lua_pop(L, 2);
  ASSERT_EQ(lua_gettop(L), 0);
  weft_promise_unref(p);
  lua_close(L);
  test_free_loop(loop);
}

static int errors_seen;
static void count_error(lua_State *L, const char *msg, void *data) {
  (void)L, (void)data;
  ASSERT(strstr(msg, "boom") != NULL);
  errors_seen++;
}

static const char pingpong[] =
  "local weft = require 'weft'\n"
  "local a, b = weft.channel(0), weft.channel(0)\n"
  "trips = 0\n"
  "weft.async(function() for i = 1, 1000 do b:send(a:recv()) end end)\n"
  "done = weft.async(function()\n"
  "  for i = 1, 1000 do a:send(i); assert(b:recv() == i); trips = trips + 1 end\n"
  "  weft.delay(5)\n"
  "  return trips\n"
  "end)\n"
  "weft.defer(function() error('boom') end)\n"
  "weft.async(function() error('boom, unhandled') end)\n"
  "local caught = weft.async(function() error('handled') end)\n"
  "weft.async(function() assert(not pcall(weft.await, caught)) end)\n";

/* Two Lua states on one host loop: the first sets the loop's guard (one
 * protected call a pass), the second protects each resume itself; both
 * run their tasks, each error reaches its own state's handler (a state's
 * report of unhandled rejections waits for its own queued work only: two
 * reports once waited for each other for ever), and the second goes on
 * after the first has closed. */
static void embed_two_states_share_one_loop(void) {
  weft_loop_t *loop;
  lua_State *L1, *L2;
  ASSERT_OK(weft_loop_new(&loop));
  L1 = open_state(loop);
  L2 = open_state(loop);
  errors_seen = 0;
  weft_lua_on_error(L1, count_error, NULL);
  weft_lua_on_error(L2, count_error, NULL);
  run_lua(L1, pingpong);
  run_lua(L2, pingpong);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  run_lua(L1, "assert(trips == 1000 and done:status() == 'fulfilled')");
  run_lua(L2, "assert(trips == 1000 and done:status() == 'fulfilled')");
  ASSERT_EQ(errors_seen, 4);
  lua_close(L1);
  run_lua(L2, pingpong);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  run_lua(L2, "assert(trips == 1000 and done:status() == 'fulfilled')");
  ASSERT_EQ(errors_seen, 6);
  lua_close(L2);
  test_free_loop(loop);
}

TEST_MAIN(T(embed_a_script_awaits_the_hosts_promise)
          T(embed_the_host_awaits_a_script_task)
          T(embed_cancellation_crosses_both_ways)
          T(embed_closing_the_state_cancels_what_the_host_holds)
          T(embed_errors_reach_the_host_or_stderr)
          T(embed_closing_the_state_lets_go_of_the_hosts_promise)
          T(embed_a_raising_host_callback_is_an_error_not_an_abort)
          T(embed_bad_input) T(embed_two_states_share_one_loop))
