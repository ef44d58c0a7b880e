/* c_tasks.c: the C async API from a host's point of view.  Three "fetches"
 * run as tasks with different latencies; a reporter awaits all of them
 * with a deadline; a slow one is cancelled by the deadline and cleans up.
 * Everything is straight-line C: each wait suspends only its own task. */
#include <stdio.h>

#include "weft.h"

struct fetch {
  const char *name;
  uint64_t latency_ms;
};

static void fetch(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  struct fetch *f = arg;
  int r = weft_delay(f->latency_ms); /* stands in for network I/O */
  (void)loop;
  if (r == WEFT_ECANCELED) {
    printf("  %s: cancelled after the deadline, cleaning up\n", f->name);
    return; /* the promise is already settled as cancelled */
  }
  printf("  %s: done after %llu ms\n", f->name,
         (unsigned long long)f->latency_ms);
  weft_promise_resolve(self, f, NULL);
}

static void report(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  weft_promise_t **fetches = arg, *all, *deadline;
  int r;
  (void)self;
  /* Wait for the two fast ones together... */
  weft_promise_all(loop, fetches, 2, &all);
  r = weft_await(all);
  printf("report: first two %s\n", r == 0 ? "arrived" : weft_strerror(r));
  weft_promise_unref(all);
  /* ...and give the slow one 50 ms more. */
  weft_promise_timeout(fetches[2], 50, &deadline);
  r = weft_await(deadline);
  printf("report: third one %s\n", r == 0 ? "arrived" : weft_strerror(r));
  weft_promise_unref(deadline);
}

int main(void) {
  struct fetch jobs[3] = {{"a", 30}, {"b", 10}, {"slow", 500}};
  weft_promise_t *p[3];
  weft_loop_t *loop;
  uint64_t start;
  int i, err;
  if ((err = weft_loop_new(&loop)) != 0) {
    fprintf(stderr, "weft_loop_new: %s\n", weft_strerror(err));
    return 1;
  }
  start = weft_loop_now(loop);
  for (i = 0; i < 3; i++) weft_spawn(loop, fetch, &jobs[i], 0, &p[i]);
  weft_defer(loop, report, p, 0);
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  printf("all settled in %s\n",
         weft_loop_now(loop) - start < 200 ? "well under 500 ms" : "too long");
  for (i = 0; i < 3; i++) weft_promise_unref(p[i]);
  return weft_loop_free(loop) != 0;
}
