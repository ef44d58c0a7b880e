/* The floor under a job's round trip on this machine: a thread hands a
 * token to a sleeping thread and sleeps until it comes back, through a
 * mutex and two condition variables, N times.  A pool job whose worker
 * sleeps between jobs pays at least this; the printed p50 / p99 are µs.
 * usage: bench_wake_c [N=20000] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_worker = PTHREAD_COND_INITIALIZER;
static pthread_cond_t to_main = PTHREAD_COND_INITIALIZER;
static int turn, n = 20000;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *worker(void *arg) {
  for (int i = 0; i < n; i++) {
    pthread_mutex_lock(&mu);
    while (turn != 1) pthread_cond_wait(&to_worker, &mu);
    turn = 0;
    pthread_cond_signal(&to_main);
    pthread_mutex_unlock(&mu);
  }
  return arg;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  pthread_t t;
  double *rt;
  if (argc > 1) n = atoi(argv[1]);
  if (n < 1 || !(rt = malloc(sizeof *rt * (size_t)n))) return 1;
  pthread_create(&t, NULL, worker, NULL);
  for (int i = 0; i < n; i++) {
    double t0 = now_us();
    pthread_mutex_lock(&mu);
    turn = 1;
    pthread_cond_signal(&to_worker);
    while (turn != 0) pthread_cond_wait(&to_main, &mu);
    pthread_mutex_unlock(&mu);
    rt[i] = now_us() - t0;
  }
  pthread_join(t, NULL);
  qsort(rt, (size_t)n, sizeof *rt, cmp);
  printf("RESULT metric=p50_us value=%.1f p99_us=%.1f rounds=%d\n", rt[n / 2],
         rt[(size_t)n * 99 / 100], n);
  free(rt);
  return 0;
}
