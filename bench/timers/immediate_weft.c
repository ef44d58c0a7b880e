/* Workload c (immediate chain) on weft from C: N weft_immediately
 * callbacks, each scheduling the next (one loop iteration per link).
 * usage: immediate_weft [N=1000000] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "weft.h"

static uint64_t n, count;

static void step(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)arg, (void)data;
  if (++count < n) weft_immediately(loop, step, NULL, 0, &id);
}

int main(int argc, char **argv) {
  weft_loop_t *loop;
  weft_id_t id;
  uint64_t t0;
  double s;
  n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  if (weft_loop_new(&loop)) return 1;
  t0 = uv_hrtime();
  weft_immediately(loop, step, NULL, 0, &id);
  weft_loop_run(loop, WEFT_RUN_DEFAULT);
  s = (uv_hrtime() - t0) / 1e9;
  if (count != n) return 1;
  printf("RESULT metric=wall_ms value=%.1f per_s=%.0f n=%llu\n", s * 1e3,
         n / s, (unsigned long long)n);
  return weft_loop_free(loop) != 0;
}
