/* bench/fibers: weft's fibers, three measurements.
 *   switch N     N round trips (resume + suspend, one value each way)
 *   lifecycle N  N fibers created, run to the end and freed (pooled stacks)
 *   rss N        N suspended fibers that touched one page of their stack:
 *                resident memory per fiber (/proc/self/statm)
 * usage: fibers_weft switch|lifecycle|rss [N] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  if (f) fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *echo(weft_fiber_t *f, void *arg) {
  void *v = arg;
  (void)f;
  for (;;) weft_fiber_suspend(v, &v);
  return NULL;
}

static void *done(weft_fiber_t *f, void *arg) {
  (void)f;
  return arg;
}

static void *park(weft_fiber_t *f, void *arg) {
  volatile char page[512]; /* within the top page of the stack */
  (void)f;
  page[0] = 1;
  weft_fiber_suspend(arg, NULL);
  return (void *)(intptr_t)page[0];
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "switch";
  uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 0, i;
  double t0, t1;
  if (!strcmp(mode, "switch")) {
    weft_fiber_t *f;
    void *out;
    if (!n) n = 100000000;
    if (weft_fiber_new(echo, NULL, 0, &f)) return 1;
    weft_fiber_resume(f, NULL, &out);
    t0 = now_s();
    for (i = 0; i < n; i++) weft_fiber_resume(f, (void *)(uintptr_t)i, &out);
    t1 = now_s();
    if ((uintptr_t)out != n - 1) return 1;
    printf("RESULT metric=roundtrips_per_s value=%.0f ns_per_roundtrip=%.2f n=%llu\n",
           n / (t1 - t0), (t1 - t0) * 1e9 / n, (unsigned long long)n);
  } else if (!strcmp(mode, "lifecycle")) {
    if (!n) n = 2000000;
    t0 = now_s();
    for (i = 0; i < n; i++) {
      weft_fiber_t *f;
      void *out;
      if (weft_fiber_new(done, (void *)(uintptr_t)i, 0, &f)) return 1;
      weft_fiber_resume(f, NULL, &out);
      if ((uintptr_t)out != i || weft_fiber_free(f)) return 1;
    }
    t1 = now_s();
    printf("RESULT metric=lifecycles_per_s value=%.0f ns_each=%.1f n=%llu\n",
           n / (t1 - t0), (t1 - t0) * 1e9 / n, (unsigned long long)n);
  } else if (!strcmp(mode, "rss")) {
    weft_fiber_t **fs;
    long before, after;
    if (!n) n = 10000;
    fs = calloc(n, sizeof *fs);
    if (!fs) return 1;
    before = rss_kib();
    for (i = 0; i < n; i++) {
      if (weft_fiber_new(park, NULL, 0, &fs[i])) return 1;
      weft_fiber_resume(fs[i], NULL, NULL);
    }
    after = rss_kib();
    printf("RESULT metric=rss_kib_per_fiber value=%.2f fibers=%llu rss_delta_kib=%ld\n",
           (double)(after - before) / n, (unsigned long long)n, after - before);
    for (i = 0; i < n; i++) weft_fiber_free(fs[i]);
    free(fs);
  } else {
    fprintf(stderr, "mode?\n");
    return 2;
  }
  return 0;
}
