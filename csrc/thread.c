/* thread.c: a pool of worker threads whose jobs finish on the loop.
 *
 * Workers are POSIX threads that take jobs from one FIFO.  The
 * pool starts a thread when a job finds none idle (up to max), and a
 * thread idle for idle_ms leaves while more than min remain.  A finished
 * job goes to the done list and one uv_async wakes the loop, which runs
 * every finished job's callback in one pass: many jobs ending close
 * together cost one wake-up.
 *
 * Threads are joined, never detached: a thread that leaves parks itself
 * on the exited list, and the next submit or the close joins it.  Only a
 * join proves a thread has stopped running weft's code, which a host that
 * unloads the library after closing the pool (Lua's lua_close does)
 * relies on. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

enum { QUEUED, RUNNING, DONE };

struct weft_job_s {
  weft__link link;
  weft_pool_t *pool;
  weft_job_fn fn;
  weft_job_done done;
  void *arg;
  int status;
  int state;
  atomic_int cancelled;
  /* what its function waits in, under the pool's lock: a cancellation
   * wakes it there */
  weft_chan_t *blocked_in;
  weft_loop_t *running;
};

typedef struct wthread {
  weft__link link; /* in the pool's exited list once it leaves */
  pthread_t t;
  struct weft_pool_s *pool;
} wthread;

struct weft_pool_s {
  weft_loop_t *loop;
  uv_async_t async;
  pthread_mutex_t mu;
  pthread_cond_t work;   /* a job was queued, or the pool is closing */
  pthread_cond_t gone;   /* a thread left */
  weft__link queue, done, exited;
  unsigned min, max, idle;
  unsigned threads; /* workers not leaving: what min and max count */
  unsigned alive;   /* threads not yet parked on the exited list */
  uint64_t idle_ms;
  unsigned spin_us;
  atomic_uint queued; /* jobs in queue, for workers watching without mu */
  atomic_int stop_watching; /* closing: watching workers look no more */
  void *(*thread_init)(void *ud);
  void (*thread_exit)(void *thread_data, void *ud);
  void *ud;
  int closing;
  uint64_t inflight; /* jobs submitted whose callback has not run */
  /* weft_pool_close_async: its callback, run once every thread is gone */
  weft_done_fn closed_cb;
  void *closed_data;
  int finished; /* every thread joined, every callback run */
};

/* The job this thread runs.  initial-exec: libweft is loaded at start-up
 * or as a dependency of the Lua module (see fiber.c), and weft_loop_run
 * reads it on every run. */
#if defined(__GNUC__)
static _Thread_local weft_job_t *current
    __attribute__((tls_model("initial-exec")));
#else
static _Thread_local weft_job_t *current;
#endif

weft_job_t *weft__job_current(void) { return current; }

int weft__job_blocked(weft_job_t *job, weft_chan_t *ch) {
  int cancelled;
  pthread_mutex_lock(&job->pool->mu);
  job->blocked_in = ch;
  cancelled = atomic_load(&job->cancelled);
  pthread_mutex_unlock(&job->pool->mu);
  return cancelled;
}

int weft__job_runs(weft_job_t *job, weft_loop_t *loop) {
  int cancelled;
  pthread_mutex_lock(&job->pool->mu);
  job->running = loop;
  cancelled = atomic_load(&job->cancelled);
  pthread_mutex_unlock(&job->pool->mu);
  return cancelled;
}

/* The pause a busy-wait loop takes between two looks: it lets the other
 * hyperthread run and saves power. */
static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Watches the queue, without the lock, for up to spin_us: sleeping and
 * being woken for the next job costs tens of microseconds on some
 * machines.  Stops early for a job, or when the pool closes. */
static void watch_queue(weft_pool_t *p) {
  uint64_t end = uv_hrtime() + (uint64_t)p->spin_us * 1000;
  do {
    for (int i = 0; i < 64; i++) {
      if (atomic_load_explicit(&p->queued, memory_order_relaxed) > 0 ||
          atomic_load_explicit(&p->stop_watching, memory_order_relaxed))
        return;
      cpu_relax();
    }
  } while (uv_hrtime() < end);
}

static void *worker(void *arg) {
  wthread *self = arg;
  weft_pool_t *p = self->pool;
  void *td = p->thread_init ? p->thread_init(p->ud) : NULL;
  int watched = 0; /* since its last job */
  pthread_mutex_lock(&p->mu);
  for (;;) {
    weft_job_t *job;
    while (weft__list_empty(&p->queue) && !p->closing) {
      int r;
      p->idle++; /* (a watching worker counts as idle: no thread starts) */
      if (p->spin_us && !watched) {
        watched = 1;
        pthread_mutex_unlock(&p->mu);
        watch_queue(p);
        pthread_mutex_lock(&p->mu);
        p->idle--;
        continue;
      }
      if (p->threads > p->min && p->idle_ms > 0) {
        struct timespec t = weft__deadline((uint64_t)p->idle_ms);
        r = pthread_cond_timedwait(&p->work, &p->mu, &t);
      } else {
        r = pthread_cond_wait(&p->work, &p->mu);
      }
      p->idle--;
      if (r == ETIMEDOUT && weft__list_empty(&p->queue) &&
          p->threads > p->min) {
        p->threads--; /* decided under the lock: never below min */
        goto leave;
      }
    }
    if (weft__list_empty(&p->queue)) { /* closing */
      p->threads--;
      break;
    }
    job = WEFT__CONTAINER(weft__list_pop(&p->queue), weft_job_t, link);
    atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
    watched = 0;
    job->state = RUNNING;
    pthread_mutex_unlock(&p->mu);
    current = job;
    job->status = job->fn(job, td, job->arg);
    current = NULL;
    pthread_mutex_lock(&p->mu);
    job->state = DONE;
    weft__list_push(&p->done, &job->link);
    uv_async_send(&p->async);
  }
leave:
  pthread_mutex_unlock(&p->mu);
  if (p->thread_exit) p->thread_exit(td, p->ud);
  pthread_mutex_lock(&p->mu);
  p->alive--;
  weft__list_push(&p->exited, &self->link);
  pthread_cond_broadcast(&p->gone);
  /* The last one out of a closing pool lets the loop finish the close. */
  if (p->closing && p->alive == 0) uv_async_send(&p->async);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Joins the threads that left; the pool's lock is not held. */
static void join_exited(weft_pool_t *p) {
  weft__link gone;
  weft__list_init(&gone);
  pthread_mutex_lock(&p->mu);
  weft__list_splice(&gone, &p->exited, 0);
  pthread_mutex_unlock(&p->mu);
  while (!weft__list_empty(&gone)) {
    wthread *w = WEFT__CONTAINER(weft__list_pop(&gone), wthread, link);
    pthread_join(w->t, NULL);
    weft__free(w);
  }
}

/* Starts a worker; the pool's lock is held.  Returns 0 or a code. */
static int spawn_worker(weft_pool_t *p) {
  wthread *w = weft__calloc(1, sizeof *w);
  int r;
  if (!w) return WEFT_ENOMEM;
  w->pool = p;
  r = pthread_create(&w->t, NULL, worker, w);
  if (r) {
    weft__free(w);
    return r == EAGAIN ? WEFT_EAGAIN : weft__err_from_errno(r);
  }
  p->threads++;
  p->alive++;
  return 0;
}

/* Runs the callbacks of finished jobs (loop thread). */
static void run_done(weft_pool_t *p) {
  weft__link done;
  weft__list_init(&done);
  pthread_mutex_lock(&p->mu);
  weft__list_splice(&done, &p->done, 0);
  pthread_mutex_unlock(&p->mu);
  while (!weft__list_empty(&done)) {
    weft_job_t *job = WEFT__CONTAINER(weft__list_pop(&done), weft_job_t, link);
    p->inflight--;
    p->loop->tasks--;
    if (job->done) job->done(p->loop, job, job->status, job->arg);
    weft__free(job);
  }
  /* (A close in progress keeps the loop alive until it ends.) */
  if (p->inflight == 0 && !(p->closing && !p->finished))
    uv_unref((uv_handle_t *)&p->async);
}

static void finish_close(weft_pool_t *p);

static void on_async(uv_async_t *h) {
  weft_pool_t *p = WEFT__CONTAINER(h, weft_pool_t, async);
  int gone;
  run_done(p);
  if (!p->closing || p->finished) return;
  pthread_mutex_lock(&p->mu);
  gone = p->alive == 0;
  pthread_mutex_unlock(&p->mu);
  if (gone) finish_close(p);
}

int weft_pool_new(weft_loop_t *loop, const weft_pool_options *opts,
                  weft_pool_t **out) {
  weft_pool_t *p;
  pthread_condattr_t ca;
  int err;
  /* (A host built against an older header passes a smaller size: the
   * fields it lacks keep their defaults.) */
  if (!loop || !opts || !out ||
      opts->size < offsetof(weft_pool_options, spin_us) || opts->max == 0 ||
      opts->min > opts->max)
    return WEFT_EINVAL;
  p = weft__calloc(1, sizeof *p);
  if (!p) return WEFT_ENOMEM;
  p->loop = loop;
  p->min = opts->min;
  p->max = opts->max;
  p->idle_ms = opts->idle_ms;
  if (opts->size >= offsetof(weft_pool_options, spin_us) + sizeof opts->spin_us)
    p->spin_us = opts->spin_us;
  p->thread_init = opts->thread_init;
  p->thread_exit = opts->thread_exit;
  p->ud = opts->ud;
  weft__list_init(&p->queue);
  weft__list_init(&p->done);
  weft__list_init(&p->exited);
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->work, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&p->gone, NULL);
  err = uv_async_init(loop->uv, &p->async, on_async);
  if (err) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->gone);
    weft__free(p);
    return weft__err_from_uv(err);
  }
  p->async.data = loop;
  uv_unref((uv_handle_t *)&p->async);
  loop->open_handles++;
  loop->tasks++; /* weft_loop_free waits for weft_pool_close */
  pthread_mutex_lock(&p->mu);
  while (p->threads < p->min && spawn_worker(p) == 0) {
  }
  pthread_mutex_unlock(&p->mu);
  *out = p;
  return 0;
}

int weft_pool_submit(weft_pool_t *p, weft_job_fn fn, weft_job_done done,
                     void *arg, weft_job_t **out) {
  weft_job_t *job;
  int err = 0;
  if (!p || !fn || p->closing) return p && p->closing ? WEFT_ECLOSED
                                                      : WEFT_EINVAL;
  join_exited(p);
  job = weft__calloc(1, sizeof *job);
  if (!job) return WEFT_ENOMEM;
  job->pool = p;
  job->fn = fn;
  job->done = done;
  job->arg = arg;
  job->state = QUEUED;
  atomic_init(&job->cancelled, 0);
  pthread_mutex_lock(&p->mu);
  if (p->idle == 0 && p->threads < p->max) {
    err = spawn_worker(p);
    if (err && p->threads > 0) err = 0; /* the others will take it */
  }
  if (!err) {
    weft__list_push(&p->queue, &job->link);
    atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
    pthread_cond_signal(&p->work);
  }
  pthread_mutex_unlock(&p->mu);
  if (err) {
    weft__free(job);
    return err;
  }
  if (p->inflight++ == 0) uv_ref((uv_handle_t *)&p->async);
  p->loop->tasks++;
  if (out) *out = job;
  return 0;
}

int weft_job_cancel(weft_job_t *job) {
  weft_pool_t *p;
  int r = 0;
  if (!job) return WEFT_EINVAL;
  p = job->pool;
  pthread_mutex_lock(&p->mu);
  if (job->state == QUEUED) {
    weft__list_remove(&job->link);
    atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
    job->status = WEFT_ECANCELED;
    job->state = DONE;
    weft__list_push(&p->done, &job->link);
    uv_async_send(&p->async);
  } else if (job->state == RUNNING) {
    atomic_store(&job->cancelled, 1);
    /* Wake it where it waits; it sees the flag there. */
    if (job->blocked_in) weft__chan_interrupt(job->blocked_in);
    if (job->running) weft__loop_interrupt(job->running);
  } else {
    r = WEFT_ENOENT;
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

int weft_job_cancelled(const weft_job_t *job) {
  return job ? atomic_load(&((weft_job_t *)job)->cancelled) : 0;
}

unsigned weft_pool_threads(weft_pool_t *p) {
  unsigned n;
  if (!p) return 0;
  pthread_mutex_lock(&p->mu);
  n = p->threads;
  pthread_mutex_unlock(&p->mu);
  return n;
}

static void on_pool_closed(uv_handle_t *h) {
  weft_pool_t *p = WEFT__CONTAINER(h, weft_pool_t, async);
  weft_loop_t *loop = p->loop;
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->gone);
  weft__free(p);
  weft__loop_handle_closed(loop);
}

/* Starts closing: queued jobs are cancelled, idle threads leave, busy
 * ones once their job ends. */
static void start_close(weft_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  p->closing = 1;
  while (!weft__list_empty(&p->queue)) {
    weft_job_t *job =
        WEFT__CONTAINER(weft__list_pop(&p->queue), weft_job_t, link);
    job->status = WEFT_ECANCELED;
    job->state = DONE;
    weft__list_push(&p->done, &job->link);
  }
  atomic_store_explicit(&p->queued, 0, memory_order_relaxed);
  atomic_store_explicit(&p->stop_watching, 1, memory_order_relaxed);
  pthread_cond_broadcast(&p->work);
  uv_async_send(&p->async); /* the cancelled jobs' callbacks, from the loop */
  pthread_mutex_unlock(&p->mu);
}

/* Every thread is gone: joins them, runs what is left, tells the
 * closer, and lets the loop free the pool. */
static void finish_close(weft_pool_t *p) {
  join_exited(p);
  run_done(p);
  p->finished = 1;
  p->loop->tasks--;
  if (p->closed_cb) p->closed_cb(p->loop, 0, p->closed_data);
  uv_close((uv_handle_t *)&p->async, on_pool_closed);
}

int weft_pool_close_async(weft_pool_t *p, weft_done_fn cb, void *data) {
  if (!p) return WEFT_EINVAL;
  if (p->closing) return WEFT_ECLOSED;
  p->closed_cb = cb;
  p->closed_data = data;
  uv_ref((uv_handle_t *)&p->async); /* the loop lives until it ends */
  start_close(p);
  return 0;
}

int weft_pool_close(weft_pool_t *p) {
  if (!p) return 0;
  if (p->finished) return WEFT_ECLOSED;
  if (!p->closing) start_close(p);
  pthread_mutex_lock(&p->mu);
  while (p->alive > 0) pthread_cond_wait(&p->gone, &p->mu);
  pthread_mutex_unlock(&p->mu);
  finish_close(p); /* running jobs finished; queued ones were cancelled */
  return 0;
}
