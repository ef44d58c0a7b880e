/* Workload a (timers) on weft from C: N one-shot weft_once timers, random
 * delay 0..100 ms (the peers' xorshift32); each ends itself after firing.
 * usage: timers_weft [N=1000000] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "weft.h"

static uint64_t fired;

static void on_timer(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg, (void)data;
  fired++;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000, i, t0, t1, t2;
  uint32_t x = 2463534242u;
  weft_loop_t *loop;
  weft_id_t id;
  if (weft_loop_new(&loop)) return 1;
  t0 = uv_hrtime();
  for (i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    if (weft_once(loop, x % 101, on_timer, NULL, 0, &id)) return 1;
  }
  t1 = uv_hrtime();
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  t2 = uv_hrtime();
  if (fired != n) {
    fprintf(stderr, "fired %llu != %llu\n", (unsigned long long)fired,
            (unsigned long long)n);
    return 1;
  }
  printf("RESULT metric=wall_ms value=%.1f sched_ms=%.1f n=%llu\n",
         (t2 - t0) / 1e6, (t1 - t0) / 1e6, (unsigned long long)n);
  return weft_loop_free(loop) != 0;
}
