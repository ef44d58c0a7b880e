/* test_thread.c: the worker pool and channels between threads. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

static pthread_t loop_thread;
static atomic_int inits, exits;

static void *thread_init(void *ud) {
  (void)ud;
  atomic_fetch_add(&inits, 1);
  return (void *)0x1234;
}

static void thread_exit(void *td, void *ud) {
  (void)ud;
  ASSERT(td == (void *)0x1234);
  atomic_fetch_add(&exits, 1);
}

static weft_pool_options options(unsigned min, unsigned max, uint64_t idle) {
  weft_pool_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.min = min;
  o.max = max;
  o.idle_ms = idle;
  o.thread_init = thread_init;
  o.thread_exit = thread_exit;
  return o;
}

struct job {
  int sleep_ms;
  int result;
  int ran_off_loop;
  int done, status;
  int saw_cancel;
  atomic_int started;
};

static int job_fn(weft_job_t *job, void *td, void *arg) {
  struct job *j = arg;
  ASSERT(td == (void *)0x1234);
  atomic_store(&j->started, 1);
  j->ran_off_loop = !pthread_equal(pthread_self(), loop_thread);
  for (int i = 0; i < j->sleep_ms; i++) {
    if (weft_job_cancelled(job)) {
      j->saw_cancel = 1;
      return WEFT_ECANCELED;
    }
    usleep(1000);
  }
  return j->result;
}

static void job_done(weft_loop_t *loop, weft_job_t *job, int status,
                     void *arg) {
  struct job *j = arg;
  (void)loop, (void)job;
  ASSERT(pthread_equal(pthread_self(), loop_thread));
  j->done++;
  j->status = status;
}

static void pool_runs_jobs_and_finishes_on_the_loop(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 2, 0);
  struct job jobs[8];
  int i;
  memset(jobs, 0, sizeof jobs);
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_EQ(weft_pool_threads(pool), 0);
  for (i = 0; i < 8; i++) {
    jobs[i].sleep_ms = 5;
    jobs[i].result = -i;
    ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &jobs[i], NULL));
  }
  ASSERT_LE(weft_pool_threads(pool), 2);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* the jobs kept it */
  for (i = 0; i < 8; i++) {
    ASSERT_EQ(jobs[i].done, 1);
    ASSERT_EQ(jobs[i].status, -i);
    ASSERT(jobs[i].ran_off_loop);
  }
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* the pool is open */
  ASSERT_OK(weft_pool_close(pool));
  
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
  ASSERT_EQ(atomic_load(&inits), atomic_load(&exits));
}

static void pool_reaps_idle_threads(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(1, 3, 20);
  struct job jobs[3];
  int i, spins = 0;
  memset(jobs, 0, sizeof jobs);
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_EQ(weft_pool_threads(pool), 1); /* min, at once */
  for (i = 0; i < 3; i++) {
    jobs[i].sleep_ms = 30;
    ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &jobs[i], NULL));
  }
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  while (weft_pool_threads(pool) > 1) {
    ASSERT_LT(spins++, (int)test_ms(5000));
    usleep(1000);
  }
  ASSERT_EQ(weft_pool_threads(pool), 1); /* never below min */
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static void pool_cancel_and_close(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 1, 0);
  struct job a, b, c;
  weft_job_t *ja, *jb;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  loop_thread = pthread_self();
  a.sleep_ms = 10000; /* runs until it sees the cancellation */
  c.sleep_ms = 1;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &a, &ja));
  ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &b, &jb));
  ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &c, NULL));
  ASSERT_OK(weft_job_cancel(jb)); /* queued: never runs */
  while (!atomic_load(&a.started)) usleep(100);
  ASSERT_OK(weft_job_cancel(ja)); /* running: flagged */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(b.done, 1);
  ASSERT_EQ(b.status, WEFT_ECANCELED);
  ASSERT(!atomic_load(&b.started));
  ASSERT(a.saw_cancel);
  ASSERT_EQ(a.status, WEFT_ECANCELED);
  ASSERT_EQ(c.status, 0);
  /* close: a queued job is cancelled, the running one finishes */
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.sleep_ms = 30;
  ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &a, NULL));
  ASSERT_OK(weft_pool_submit(pool, job_fn, job_done, &b, NULL));
  while (!atomic_load(&a.started)) usleep(100);
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_EQ(a.done, 1);
  ASSERT_EQ(a.status, 0);
  ASSERT_EQ(b.done, 1);
  ASSERT_EQ(b.status, WEFT_ECANCELED);
  ASSERT_EQ(weft_pool_submit(pool, job_fn, job_done, &c, NULL), WEFT_ECLOSED);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static uint64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A job whose end queues the next one, n times, from the loop. */
struct chain {
  weft_pool_t *pool;
  int left, failed;
};

static int quick_fn(weft_job_t *job, void *td, void *arg) {
  (void)job, (void)td, (void)arg;
  return 0;
}

static void chain_done(weft_loop_t *loop, weft_job_t *job, int status,
                       void *arg) {
  struct chain *c = arg;
  (void)loop, (void)job;
  if (status != 0) c->failed++;
  if (--c->left > 0 &&
      weft_pool_submit(c->pool, quick_fn, chain_done, c, NULL) != 0)
    c->failed++;
}

static void pool_workers_watch_for_the_next_job(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 4, 0);
  struct chain c = {NULL, 200, 0};
  uint64_t t0;
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  o.spin_us = 10u * 1000 * 1000; /* 10 s: longer than the test */
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  c.pool = pool;
  ASSERT_OK(weft_pool_submit(pool, quick_fn, chain_done, &c, NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(c.left, 0);
  ASSERT_EQ(c.failed, 0);
  /* A watching worker counts as idle: no second thread was started. */
  ASSERT_EQ(weft_pool_threads(pool), 1);
  /* Closing stops the watch at once, not after spin_us. */
  t0 = mono_ms();
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_LT(mono_ms() - t0, 5000);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static void pool_takes_an_older_options_struct(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 1, 0);
  struct chain c = {NULL, 3, 0};
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  /* A host built before spin_us existed: its size ends before it. */
  o.spin_us = 12345;
  o.size = offsetof(weft_pool_options, spin_us);
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  c.pool = pool;
  ASSERT_OK(weft_pool_submit(pool, quick_fn, chain_done, &c, NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(c.left, 0);
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

static void pool_rejects_bad_options(void) {
  weft_loop_t *loop;
  weft_pool_t *pool = NULL;
  weft_pool_options o = options(0, 0, 0);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_pool_new(loop, &o, &pool), WEFT_EINVAL);
  o = options(3, 2, 0);
  ASSERT_EQ(weft_pool_new(loop, &o, &pool), WEFT_EINVAL);
  o = options(0, 1, 0);
  o.size = offsetof(weft_pool_options, spin_us) - 1;
  ASSERT_EQ(weft_pool_new(loop, &o, &pool), WEFT_EINVAL);
  o.size = 4;
  ASSERT_EQ(weft_pool_new(loop, &o, &pool), WEFT_EINVAL);
  ASSERT(pool == NULL);
  ASSERT_EQ(weft_pool_submit(NULL, job_fn, job_done, NULL, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_job_cancel(NULL), WEFT_EINVAL);
  ASSERT_OK(weft_pool_close(NULL));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

/* A job that waits in weft until it is cancelled: in a channel (how 0:
 * recv, 1: send on a full one) or in a loop of its own (how 2). */
struct waiting_job {
  weft_chan_t *ch;
  int how;
  atomic_int waiting;
  int result, done, status;
};

static void never_fires(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg, (void)data;
  ASSERT(0);
}

static int waiting_fn(weft_job_t *job, void *td, void *arg) {
  struct waiting_job *w = arg;
  void *data;
  size_t len;
  (void)job, (void)td;
  if (w->how == 2) {
    weft_loop_t *own;
    weft_id_t id;
    ASSERT_OK(weft_loop_new(&own));
    ASSERT_OK(weft_once(own, 1000000, never_fires, NULL, 0, &id));
    atomic_store(&w->waiting, 1);
    w->result = weft_loop_run(own, WEFT_RUN_DEFAULT);
    /* and once more: a cancelled job's run returns at once */
    ASSERT_EQ(weft_loop_run(own, WEFT_RUN_ONCE), WEFT_ECANCELED);
    ASSERT_OK(weft_watch_cancel(own, id));
    ASSERT_OK(weft_loop_free(own));
    return 0;
  }
  atomic_store(&w->waiting, 1);
  if (w->how == 0) w->result = weft_chan_recv(w->ch, -1, &data, &len);
  else w->result = weft_chan_send(w->ch, "late", 4, -1);
  return 0;
}

static void waiting_done(weft_loop_t *loop, weft_job_t *job, int status,
                         void *arg) {
  struct waiting_job *w = arg;
  (void)loop, (void)job;
  w->done++;
  w->status = status;
}

static void pool_cancel_wakes_a_job_waiting_in_weft(void) {
  for (int how = 0; how < 3; how++) {
    weft_loop_t *loop;
    weft_pool_t *pool;
    weft_pool_options o = options(0, 1, 0);
    struct waiting_job w;
    weft_job_t *job;
    void *data;
    size_t len;
    memset(&w, 0, sizeof w);
    loop_thread = pthread_self();
    ASSERT_OK(weft_loop_new(&loop));
    ASSERT_OK(weft_pool_new(loop, &o, &pool));
    ASSERT_OK(weft_chan_new(1, &w.ch));
    if (how == 1) ASSERT_OK(weft_chan_send(w.ch, "full", 4, 0));
    w.how = how;
    ASSERT_OK(weft_pool_submit(pool, waiting_fn, waiting_done, &w, &job));
    while (!atomic_load(&w.waiting)) usleep(100);
    usleep(20000); /* most likely in its wait by now; either order works */
    ASSERT_OK(weft_job_cancel(job));
    ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* the job ends */
    ASSERT_EQ(w.done, 1);
    ASSERT_EQ(w.result, WEFT_ECANCELED);
    /* The wait took nothing and sent nothing. */
    if (how == 1) {
      ASSERT_OK(weft_chan_recv(w.ch, 0, &data, &len));
      ASSERT_EQ(len, 4u);
      ASSERT(memcmp(data, "full", 4) == 0);
      weft_chan_free(data);
    }
    ASSERT_EQ(weft_chan_recv(w.ch, 0, &data, &len), WEFT_EAGAIN);
    ASSERT_OK(weft_chan_send(w.ch, "next", 4, 0));
    ASSERT_EQ(weft_chan_count(w.ch), 1u);
    weft_chan_unref(w.ch);
    ASSERT_OK(weft_pool_close(pool));
    ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
    test_free_loop(loop);
  }
}

/* A cancelled job takes nothing from a channel, even a message that is
 * there at once: it goes to a live receiver. */
struct late_job {
  weft_chan_t *ch;
  atomic_int started, go;
  int result;
};

static int late_fn(weft_job_t *job, void *td, void *arg) {
  struct late_job *l = arg;
  void *data;
  size_t len, lens[4];
  void *many[4];
  (void)td;
  atomic_store(&l->started, 1);
  while (!atomic_load(&l->go)) usleep(100);
  ASSERT(weft_job_cancelled(job));
  l->result = weft_chan_recv(l->ch, 0, &data, &len);
  ASSERT_EQ(weft_chan_recv_many(l->ch, many, lens, 4), WEFT_ECANCELED);
  ASSERT_EQ(weft_chan_recv(l->ch, -1, &data, &len), WEFT_ECANCELED);
  return 0;
}

static void pool_cancelled_job_takes_nothing(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 1, 0);
  struct late_job l;
  weft_job_t *job;
  void *data;
  size_t len;
  memset(&l, 0, sizeof l);
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_OK(weft_chan_new(SIZE_MAX, &l.ch));
  ASSERT_OK(weft_pool_submit(pool, late_fn, NULL, &l, &job));
  while (!atomic_load(&l.started)) usleep(100);
  ASSERT_OK(weft_job_cancel(job));
  ASSERT_OK(weft_chan_send(l.ch, "late", 4, 0));
  atomic_store(&l.go, 1);
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_EQ(l.result, WEFT_ECANCELED);
  ASSERT_OK(weft_chan_recv(l.ch, 0, &data, &len)); /* still there */
  ASSERT_EQ(len, 4u);
  weft_chan_free(data);
  weft_chan_unref(l.ch);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
}

/* pool_close_async: the loop runs (a timer lets the job end) while the
 * pool closes, and the close's callback comes after the job's. */
struct closing {
  weft_chan_t *go;
  atomic_int started;
  char order[8];
  int n;
};

static int go_fn(weft_job_t *job, void *td, void *arg) {
  struct closing *c = arg;
  void *data;
  size_t len;
  (void)job, (void)td;
  atomic_store(&c->started, 1);
  ASSERT_OK(weft_chan_recv(c->go, -1, &data, &len));
  weft_chan_free(data);
  return 0;
}

static void go_done(weft_loop_t *loop, weft_job_t *job, int status,
                    void *arg) {
  struct closing *c = arg;
  (void)loop, (void)job;
  ASSERT_EQ(status, 0);
  c->order[c->n++] = 'J';
}

static void on_go_timer(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  struct closing *c = data;
  (void)loop, (void)id, (void)arg;
  c->order[c->n++] = 'T';
  ASSERT_OK(weft_chan_send(c->go, "go", 2, 0));
}

static void on_pool_closed_cb(weft_loop_t *loop, int status, void *data) {
  struct closing *c = data;
  (void)loop;
  ASSERT_EQ(status, 0);
  c->order[c->n++] = 'C';
}

static void pool_close_async_lets_the_loop_run(void) {
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_pool_options o = options(0, 2, 0);
  struct closing c;
  weft_id_t id;
  memset(&c, 0, sizeof c);
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_chan_new(SIZE_MAX, &c.go));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_OK(weft_pool_submit(pool, go_fn, go_done, &c, NULL));
  while (!atomic_load(&c.started)) usleep(100); /* (a queued one is cancelled) */
  ASSERT_OK(weft_pool_close_async(pool, on_pool_closed_cb, &c));
  ASSERT_EQ(weft_pool_close_async(pool, on_pool_closed_cb, &c), WEFT_ECLOSED);
  ASSERT_EQ(weft_pool_submit(pool, go_fn, go_done, &c, NULL), WEFT_ECLOSED);
  ASSERT_OK(weft_once(loop, 1, on_go_timer, &c, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* until closed */
  ASSERT_EQ(c.n, 3);
  ASSERT(memcmp(c.order, "TJC", 3) == 0);
  test_free_loop(loop);
  /* weft_pool_close finishes a close that began without blocking: the
   * callback runs inside it */
  memset(c.order, 0, sizeof c.order);
  c.n = 0;
  atomic_store(&c.started, 0);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_pool_new(loop, &o, &pool));
  ASSERT_OK(weft_pool_submit(pool, go_fn, go_done, &c, NULL));
  while (!atomic_load(&c.started)) usleep(100);
  ASSERT_OK(weft_pool_close_async(pool, on_pool_closed_cb, &c));
  ASSERT_OK(weft_chan_send(c.go, "go", 2, 0));
  ASSERT_OK(weft_pool_close(pool));
  ASSERT_EQ(c.n, 2);
  ASSERT(memcmp(c.order, "JC", 2) == 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  test_free_loop(loop);
  ASSERT_EQ(weft_pool_close_async(NULL, NULL, NULL), WEFT_EINVAL);
  weft_chan_unref(c.go);
}

/* ---- channels ----------------------------------------------------------- */

struct producer {
  weft_chan_t *ch;
  int n;
};

static void *produce(void *arg) {
  struct producer *p = arg;
  for (int i = 0; i < p->n; i++) ASSERT_OK(weft_chan_send(p->ch, &i, sizeof i, -1));
  weft_chan_close(p->ch);
  return NULL;
}

static void chan_passes_messages_between_threads(void) {
  weft_chan_t *ch;
  pthread_t t;
  struct producer p;
  void *data;
  size_t len;
  int expect = 0;
  ASSERT_OK(weft_chan_new(4, &ch)); /* small: the producer blocks */
  p.ch = ch;
  p.n = 10000;
  ASSERT_OK(pthread_create(&t, NULL, produce, &p));
  for (;;) {
    int r = weft_chan_recv(ch, -1, &data, &len);
    if (r == WEFT_ECLOSED) break;
    ASSERT_OK(r);
    ASSERT_EQ(len, sizeof(int));
    ASSERT_EQ(*(int *)data, expect++);
    weft_chan_free(data);
  }
  ASSERT_EQ(expect, 10000);
  pthread_join(t, NULL);
  weft_chan_unref(ch);
}

/* Message i: (i % 101) bytes, each (i + k) & 0xff: short ones go in the
 * ring's slots, long ones in their own blocks. */
static size_t fill_message(unsigned char *b, int i) {
  size_t n = (size_t)(i % 101);
  for (size_t k = 0; k < n; k++) b[k] = (unsigned char)((i + (int)k) & 0xff);
  return n;
}

static void check_message(const void *data, size_t len, int i) {
  unsigned char want[128];
  ASSERT_EQ(len, fill_message(want, i));
  ASSERT(memcmp(data, want, len) == 0);
}

static void chan_keeps_order_across_sizes_and_growth(void) {
  weft_chan_t *ch;
  unsigned char b[128];
  void *many[64];
  size_t lens[64];
  int sent = 0, got = 0;
  ASSERT_OK(weft_chan_new(SIZE_MAX, &ch));
  for (int round = 0; round < 3; round++) {
    /* 10,000 at once: the ring grows past the size it keeps when empty */
    for (int i = 0; i < 10000; i++, sent++)
      ASSERT_OK(weft_chan_send(ch, b, fill_message(b, sent), 0));
    ASSERT_EQ(weft_chan_count(ch), 10000u);
    while (got < sent) {
      if (got % 3 == 0) {
        void *data;
        size_t len;
        ASSERT_OK(weft_chan_recv(ch, 0, &data, &len));
        check_message(data, len, got++);
        weft_chan_free(data);
      } else {
        int n = weft_chan_recv_many(ch, many, lens, 64);
        ASSERT_GT(n, 0);
        for (int k = 0; k < n; k++) {
          check_message(many[k], lens[k], got++);
          weft_chan_free(many[k]);
        }
      }
    }
    ASSERT_EQ(weft_chan_count(ch), 0u);
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 64), WEFT_EAGAIN);
  }
  /* what is left when the last reference goes is freed with it */
  for (int i = 0; i < 100; i++, sent++)
    ASSERT_OK(weft_chan_send(ch, b, fill_message(b, sent), 0));
  weft_chan_unref(ch);
}

static void chan_limits_and_close(void) {
  weft_chan_t *ch;
  void *data;
  size_t len;
  ASSERT_EQ(weft_chan_new(0, &ch), WEFT_EINVAL);
  ASSERT_OK(weft_chan_new(1, &ch));
  ASSERT_EQ(weft_chan_recv(ch, 0, &data, &len), WEFT_EAGAIN);
  ASSERT_EQ(weft_chan_recv(ch, 10, &data, &len), WEFT_ETIMEDOUT);
  ASSERT_OK(weft_chan_send(ch, "a", 1, 0));
  ASSERT_EQ(weft_chan_send(ch, "b", 1, 0), WEFT_EAGAIN);
  ASSERT_EQ(weft_chan_send(ch, "b", 1, 10), WEFT_ETIMEDOUT);
  ASSERT_EQ(weft_chan_count(ch), 1);
  ASSERT_OK(weft_chan_close(ch));
  ASSERT_EQ(weft_chan_close(ch), WEFT_ECLOSED);
  ASSERT_EQ(weft_chan_send(ch, "c", 1, 0), WEFT_ECLOSED);
  ASSERT_OK(weft_chan_recv(ch, 0, &data, &len)); /* what was left */
  ASSERT_EQ(len, 1);
  ASSERT(*(char *)data == 'a');
  weft_chan_free(data);
  ASSERT_EQ(weft_chan_recv(ch, -1, &data, &len), WEFT_ECLOSED);
  weft_chan_unref(ch);
  /* a burst taken under one lock, in order */
  ASSERT_OK(weft_chan_new(SIZE_MAX, &ch));
  {
    void *many[8];
    size_t lens[8];
    for (int i = 0; i < 5; i++) ASSERT_OK(weft_chan_send(ch, &i, sizeof i, 0));
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 3), 3);
    for (int i = 0; i < 3; i++) {
      ASSERT_EQ(lens[i], sizeof(int));
      ASSERT_EQ(*(int *)many[i], i);
      weft_chan_free(many[i]);
    }
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 8), 2);
    ASSERT_EQ(*(int *)many[1], 4);
    weft_chan_free(many[0]);
    weft_chan_free(many[1]);
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 8), WEFT_EAGAIN);
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 0), WEFT_EINVAL);
    weft_chan_close(ch);
    ASSERT_EQ(weft_chan_recv_many(ch, many, lens, 8), WEFT_ECLOSED);
  }
  weft_chan_unref(ch);
  /* messages of every size come back whole */
  ASSERT_OK(weft_chan_new(SIZE_MAX, &ch));
  for (size_t n = 0; n < 300; n += 7) {
    char buf[300];
    for (size_t i = 0; i < n; i++) buf[i] = (char)(n + i);
    ASSERT_OK(weft_chan_send(ch, buf, n, 0));
  }
  for (size_t n = 0; n < 300; n += 7) {
    ASSERT_OK(weft_chan_recv(ch, 0, &data, &len));
    ASSERT_EQ(len, n);
    for (size_t i = 0; i < n; i++) ASSERT_EQ(((char *)data)[i], (char)(n + i));
    weft_chan_free(data);
  }
  weft_chan_unref(ch);
}

/* A block handed to weft_chan_send_block is the very block the receiver
 * gets (nothing copied), a short one arrives as a copy; a block a failed
 * send refused is still the sender's, and the channel works on. */
static void chan_send_block_hands_the_block_over(void) {
  weft_chan_t *ch;
  void *data;
  size_t len;
  char *big, *small, *grown;
  ASSERT_OK(weft_chan_new(1, &ch));
  ASSERT(big = weft_chan_realloc(NULL, 1000));
  memset(big, 'b', 1000);
  ASSERT(grown = weft_chan_realloc(big, 4000)); /* as realloc: kept bytes */
  big = grown;
  ASSERT_EQ(big[999], 'b');
  memset(big + 1000, 'c', 3000);
  ASSERT_EQ(weft_chan_send_block(NULL, big, 4000, 0), WEFT_EINVAL);
  ASSERT_EQ(weft_chan_send_block(ch, NULL, 4000, 0), WEFT_EINVAL);
  ASSERT_OK(weft_chan_send_block(ch, big, 3500, 0));
  ASSERT(small = weft_chan_realloc(NULL, 3));
  memcpy(small, "abc", 3);
  ASSERT_EQ(weft_chan_send_block(ch, small, 3, 0), WEFT_EAGAIN); /* full */
  ASSERT_EQ(weft_chan_send_block(ch, small, 3, 10), WEFT_ETIMEDOUT);
  ASSERT_OK(weft_chan_recv(ch, 0, &data, &len));
  ASSERT(data == big);
  ASSERT_EQ(len, 3500);
  ASSERT_EQ(((char *)data)[3499], 'c');
  weft_chan_free(data);
  ASSERT_OK(weft_chan_send_block(ch, small, 3, 0)); /* still the sender's */
  ASSERT_OK(weft_chan_recv(ch, 0, &data, &len));
  ASSERT_EQ(len, 3);
  ASSERT(memcmp(data, "abc", 3) == 0);
  weft_chan_free(data);
  ASSERT_OK(weft_chan_close(ch));
  ASSERT(small = weft_chan_realloc(NULL, 100));
  ASSERT_EQ(weft_chan_send_block(ch, small, 100, -1), WEFT_ECLOSED);
  weft_chan_free(small);
  weft_chan_unref(ch);
  /* a message left in a channel goes with its last reference */
  ASSERT_OK(weft_chan_new(SIZE_MAX, &ch));
  ASSERT(big = weft_chan_realloc(NULL, 5000));
  ASSERT_OK(weft_chan_send_block(ch, big, 5000, 0));
  weft_chan_unref(ch);
}

/* Many senders and many receivers on one channel: every message is
 * received exactly once, and each receiver sees each sender's messages in
 * the order they were sent.  Messages of every length cross the slot and
 * block boundaries. */
enum { PRODUCERS = 3, CONSUMERS = 3, EACH = 20000 };

struct party {
  weft_chan_t *ch;
  int id;
  atomic_int *seen; /* [PRODUCERS * EACH] */
  atomic_int *left; /* producers still sending */
};

static void *many_produce(void *arg) {
  struct party *p = arg;
  unsigned char b[100];
  for (int i = 0; i < EACH; i++) {
    size_t n = 8 + (size_t)(i % 90);
    memset(b, i & 0xff, n);
    memcpy(b, &p->id, sizeof p->id);
    memcpy(b + 4, &i, sizeof i);
    ASSERT_OK(weft_chan_send(p->ch, b, n, -1));
  }
  if (atomic_fetch_sub(p->left, 1) == 1) weft_chan_close(p->ch);
  return NULL;
}

static void *many_consume(void *arg) {
  struct party *p = arg;
  int last[PRODUCERS];
  void *data;
  size_t len;
  for (int k = 0; k < PRODUCERS; k++) last[k] = -1;
  for (;;) {
    int r = weft_chan_recv(p->ch, -1, &data, &len), from, i;
    if (r == WEFT_ECLOSED) break;
    ASSERT_OK(r);
    memcpy(&from, data, sizeof from);
    memcpy(&i, (char *)data + 4, sizeof i);
    ASSERT_EQ(len, 8 + (size_t)(i % 90));
    ASSERT(from >= 0 && from < PRODUCERS && i >= 0 && i < EACH);
    ASSERT_GT(i, last[from]); /* in each sender's order */
    last[from] = i;
    atomic_fetch_add(&p->seen[from * EACH + i], 1);
    weft_chan_free(data);
  }
  return NULL;
}

static void chan_delivers_each_message_once_to_many_receivers(void) {
  static atomic_int seen[PRODUCERS * EACH];
  size_t caps[] = {SIZE_MAX, 5};
  for (int c = 0; c < 2; c++) {
    weft_chan_t *ch;
    pthread_t t[PRODUCERS + CONSUMERS];
    struct party party[PRODUCERS + CONSUMERS];
    atomic_int left = PRODUCERS;
    for (int i = 0; i < PRODUCERS * EACH; i++) atomic_init(&seen[i], 0);
    ASSERT_OK(weft_chan_new(caps[c], &ch));
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
      party[i].ch = ch;
      party[i].id = i < PRODUCERS ? i : i - PRODUCERS;
      party[i].seen = seen;
      party[i].left = &left;
      ASSERT_OK(pthread_create(&t[i], NULL,
                               i < PRODUCERS ? many_produce : many_consume,
                               &party[i]));
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < PRODUCERS * EACH; i++) ASSERT_EQ(atomic_load(&seen[i]), 1);
    ASSERT_EQ(weft_chan_count(ch), 0u);
    weft_chan_unref(ch);
  }
}

static weft_loop_t *chan_loop;

struct waited {
  int calls, status, got;
  weft_chan_t *ch;
};

static void on_chan(weft_chan_t *ch, int event, int status, void *data) {
  struct waited *w = data;
  void *msg;
  size_t len;
  ASSERT(pthread_equal(pthread_self(), loop_thread));
  ASSERT_EQ(event, WEFT_CHAN_RECV);
  w->calls++;
  w->status = status;
  /* drain the burst, then wait again */
  while (weft_chan_recv(ch, 0, &msg, &len) == 0) {
    w->got++;
    weft_chan_free(msg);
  }
  if (status == 0)
    ASSERT_OK(weft_chan_wait(ch, chan_loop, WEFT_CHAN_RECV, on_chan,
                             w, NULL));
}

static void chan_wakes_a_loop_in_batches(void) {
  weft_chan_t *ch;
  pthread_t t;
  struct producer p;
  struct waited w = {0, 1, 0, NULL};
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&chan_loop));
  ASSERT_OK(weft_chan_new(SIZE_MAX, &ch));
  ASSERT_OK(weft_chan_wait(ch, chan_loop, WEFT_CHAN_RECV, on_chan, &w, NULL));
  p.ch = ch;
  p.n = 100000;
  ASSERT_OK(pthread_create(&t, NULL, produce, &p));
  ASSERT_OK(weft_loop_run(chan_loop, WEFT_RUN_DEFAULT)); /* until closed */
  pthread_join(t, NULL);
  ASSERT_EQ(w.got, 100000);
  ASSERT_EQ(w.status, WEFT_ECLOSED);
  ASSERT_LT(w.calls, 100000); /* woken in batches, not per message */
  weft_chan_unref(ch);
  test_free_loop(chan_loop);
}

static void chan_unwait_withdraws(void) {
  weft_chan_t *ch;
  weft_chan_wait_t *wt;
  struct waited w = {0, 1, 0, NULL};
  loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&chan_loop));
  ASSERT_OK(weft_chan_new(1, &ch));
  ASSERT_OK(weft_chan_wait(ch, chan_loop, WEFT_CHAN_RECV, on_chan, &w, &wt));
  ASSERT_OK(weft_chan_unwait(wt));
  ASSERT_OK(weft_chan_send(ch, "x", 1, 0));
  ASSERT_OK(weft_loop_run(chan_loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(w.calls, 0);
  /* a send wait on a full channel fires when room is made */
  ASSERT_EQ(weft_chan_wait(ch, chan_loop, 3, on_chan, &w, NULL), WEFT_EINVAL);
  weft_chan_unref(ch);
  ASSERT_OK(weft_loop_run(chan_loop, WEFT_RUN_DEFAULT));
  test_free_loop(chan_loop);
}

TEST_MAIN(T(pool_runs_jobs_and_finishes_on_the_loop) T(pool_reaps_idle_threads)
              T(pool_cancel_and_close) T(pool_workers_watch_for_the_next_job)
                  T(pool_takes_an_older_options_struct)
                      T(pool_rejects_bad_options)
                          T(pool_cancel_wakes_a_job_waiting_in_weft)
                              T(pool_cancelled_job_takes_nothing)
                              T(pool_close_async_lets_the_loop_run)
                  T(chan_passes_messages_between_threads)
                  T(chan_keeps_order_across_sizes_and_growth)
                      T(chan_limits_and_close)
                      T(chan_send_block_hands_the_block_over)
                          T(chan_delivers_each_message_once_to_many_receivers)
                              T(chan_wakes_a_loop_in_batches)
                          T(chan_unwait_withdraws))
