/* frame_host.c: a host with its own frame loop (a game, say) that gives the
 * reactor one non-blocking tick per frame.  The Lua script it loads runs
 * on the host's loop: its timers fire from the host's ticks, and it sees
 * the host's own C watcher in weft.watchers().
 * usage: frame_host CPATH SCRIPT */
#include <stdio.h>
#include <time.h>

#include <lua.h>

#include "host.h"

static void on_host_timer(weft_loop_t *loop, weft_id_t id, int arg,
                          void *data) {
  (void)loop, (void)id, (void)arg;
  (*(int *)data)++;
}

int main(int argc, char **argv) {
  weft_loop_t *loop;
  weft_id_t host_timer;
  lua_State *L;
  int host_beats = 0, frames = 0, err;
  struct timespec frame = {0, 2 * 1000 * 1000}; /* 2 ms of "rendering" */
  loop = host_new_loop(argc, argv);
  weft_every(loop, 5, 5, on_host_timer, &host_beats, 0, &host_timer);
  L = host_open_lua(loop, argv[1], argv[2]);
  while (!host_script_finished(L) && frames < 5000) {
    weft_loop_run(loop, WEFT_RUN_NOWAIT); /* never blocks the frame */
    nanosleep(&frame, NULL);
    frames++;
  }
  printf("host: script finished after %d frames; host timer beat %s\n",
         frames, host_beats > 0 ? "too" : "NEVER");
  lua_close(L); /* cancels every watcher the script left */
  weft_watch_cancel(loop, host_timer);
  err = weft_loop_free(loop);
  printf("host: loop freed: %s\n", err ? weft_err_name(err) : "ok");
  return err || !host_beats;
}
