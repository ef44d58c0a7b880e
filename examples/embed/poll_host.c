/* poll_host.c: a host that keeps its own poll(2) loop and puts weft's
 * backend descriptor into it, with weft's next timeout as poll's, then
 * runs one non-blocking tick when poll returns.
 * usage: poll_host CPATH SCRIPT */
#include <poll.h>
#include <stdio.h>

#include <lua.h>

#include "host.h"

int main(int argc, char **argv) {
  weft_loop_t *loop;
  lua_State *L;
  int wakeups = 0, err;
  loop = host_new_loop(argc, argv);
  L = host_open_lua(loop, argv[1], argv[2]);
  while (!host_script_finished(L) && wakeups < 1000) {
    struct pollfd p = {weft_loop_backend_fd(loop), POLLIN, 0};
    /* Other descriptors of the host would sit in this array too. */
    poll(&p, 1, weft_loop_backend_timeout(loop));
    weft_loop_run(loop, WEFT_RUN_NOWAIT);
    wakeups++;
  }
  /* A busy loop would wake thousands of times; a waiting one a few dozen. */
  printf("host: script finished after %s wakeups\n",
         wakeups < 200 ? "few" : "TOO MANY");
  lua_close(L);
  err = weft_loop_free(loop);
  printf("host: loop freed: %s\n", err ? weft_err_name(err) : "ok");
  return err || wakeups >= 200;
}
