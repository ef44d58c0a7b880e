/* test_sync.c: mutex, semaphore, event, channel (weft_queue_t) and group,
 * from tasks of two hosts: hand-written state machines (machine.h) and C
 * fiber tasks (weft_spawn, with weft_task_self and weft_wait). */
#include "machine.h"

static char log_[128];
static int log_n;
static void put(char c) {
  log_[log_n++] = c;
  log_[log_n] = 0;
}

static weft_loop_t *new_loop(void) {
  weft_loop_t *loop;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  log_[0] = 0;
  return loop;
}

/* ---- mutex ------------------------------------------------------------------- */

static weft_mutex_t *mu;

/* Locks, holds it over a 2 ms sleep, unlocks; logs its letter. */
static void locker(machine *m, int status) {
  if (m->pc == 0) {
    m->pc = 1;
    status = weft_mutex_lock(mu, m->task, -1);
    if (status == 1) return; /* else: it got it at once */
  }
  if (m->pc == 1) {
    ASSERT_EQ(status, 0);
    ASSERT(weft_mutex_owner(mu) == m->task);
    put(*(const char *)m->arg);
    m->pc = 2;
    ASSERT_EQ(weft_task_sleep(m->task, 2), 1);
    return;
  }
  ASSERT_OK(weft_mutex_unlock(mu));
  machine_end(m);
}

/* Waits for the lock at most 1 ms. */
static void impatient(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_mutex_lock(mu, m->task, 1), 1);
    return;
  case 1:
    ASSERT_EQ(status, WEFT_ETIMEDOUT);
    put('t');
    machine_end(m);
    return;
  }
}

static void sync_mutex_serves_waiters_in_order(void) {
  weft_loop_t *loop = new_loop();
  machine *m[4];
  int i;
  mu = calloc(1, weft_mutex_size());
  ASSERT_OK(weft_mutex_init(mu, loop));
  m[0] = machine_new(loop, locker, "a");
  m[1] = machine_new(loop, impatient, NULL);
  m[2] = machine_new(loop, locker, "b");
  m[3] = machine_new(loop, locker, "c");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "atbc");
  ASSERT(!weft_mutex_locked(mu));
  ASSERT_EQ(weft_mutex_unlock(mu), WEFT_EPERM);
  for (i = 0; i < 4; i++) machine_free(m[i]);
  weft_mutex_fini(mu);
  free(mu);
  test_free_loop(loop);
}

static machine *victim;

/* Holds the lock over a sleep, then unlocks (handing it to the first
 * waiter, the victim) and cancels the victim in the same pass. */
static void hands_over_then_cancels(machine *m, int status) {
  (void)status;
  switch (m->pc++) {
  case 0:
    ASSERT_OK(weft_mutex_lock(mu, m->task, -1));
    ASSERT_EQ(weft_task_sleep(m->task, 2), 1);
    return;
  case 1:
    ASSERT_OK(weft_mutex_unlock(mu));
    ASSERT(weft_mutex_owner(mu) == victim->task);
    ASSERT_OK(weft_promise_cancel(weft_task_promise(victim->task)));
    machine_end(m);
    return;
  }
}

static void wants_lock(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_mutex_lock(mu, m->task, -1), 1);
    return;
  case 1:
    if (status == 0) {
      put(*(const char *)m->arg);
      ASSERT_OK(weft_mutex_unlock(mu));
    } else {
      ASSERT_EQ(status, WEFT_ECANCELED);
      put('x');
    }
    machine_end(m);
    return;
  }
}

static void sync_mutex_handed_to_a_cancelled_task_goes_on(void) {
  weft_loop_t *loop = new_loop();
  machine *h, *w;
  mu = calloc(1, weft_mutex_size());
  ASSERT_OK(weft_mutex_init(mu, loop));
  h = machine_new(loop, hands_over_then_cancels, NULL);
  victim = machine_new(loop, wants_lock, "v");
  w = machine_new(loop, wants_lock, "w");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  /* The victim got the cancellation instead of the lock, and the lock
   * went on to w: nothing is stuck. */
  ASSERT_STR_EQ(log_, "xw");
  ASSERT(!weft_mutex_locked(mu));
  machine_free(h);
  machine_free(victim);
  machine_free(w);
  weft_mutex_fini(mu);
  free(mu);
  test_free_loop(loop);
}

/* ---- semaphore and event, from C fiber tasks --------------------------------- */

static weft_sem_t *sem;
static weft_event_t *ev;
static int inside, most_inside, done;

static void sem_user(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self, (void)arg;
  ASSERT_OK(weft_wait(weft_sem_acquire(sem, weft_task_self(), -1)));
  if (++inside > most_inside) most_inside = inside;
  ASSERT_OK(weft_delay(2));
  inside--;
  ASSERT_OK(weft_sem_release(sem));
  done++;
}

static void sync_semaphore_bounds_fiber_tasks(void) {
  weft_loop_t *loop = new_loop();
  int i;
  sem = calloc(1, weft_sem_size());
  ASSERT_OK(weft_sem_init(sem, loop, 2));
  inside = most_inside = done = 0;
  for (i = 0; i < 5; i++) ASSERT_OK(weft_defer(loop, sem_user, NULL, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(done, 5);
  ASSERT_EQ(most_inside, 2);
  ASSERT_EQ(weft_sem_count(sem), 2);
  weft_sem_fini(sem);
  free(sem);
  test_free_loop(loop);
}

static void event_waiter(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self, (void)arg;
  ASSERT_OK(weft_wait(weft_event_wait(ev, weft_task_self(), -1)));
  put('w');
  /* set: at once */
  ASSERT_OK(weft_event_wait(ev, weft_task_self(), -1));
}

static void event_setter(machine *m, int status) {
  (void)status;
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_sleep(m->task, 2), 1);
    return;
  case 1:
    put('s');
    ASSERT_OK(weft_event_set(ev));
    machine_end(m);
    return;
  }
}

static void event_timeout(weft_loop_t *loop, weft_promise_t *self,
                          void *arg) {
  (void)loop, (void)self, (void)arg;
  ASSERT_EQ(weft_wait(weft_event_wait(ev, weft_task_self(), 1)),
            WEFT_ETIMEDOUT);
  put('t');
}

static void sync_event_wakes_every_waiter(void) {
  weft_loop_t *loop = new_loop();
  machine *m;
  ev = calloc(1, weft_event_size());
  ASSERT_OK(weft_event_init(ev, loop));
  ASSERT_OK(weft_defer(loop, event_waiter, NULL, 0));
  ASSERT_OK(weft_defer(loop, event_waiter, NULL, 0));
  m = machine_new(loop, event_setter, NULL);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "sww");
  ASSERT(weft_event_is_set(ev));
  ASSERT_OK(weft_event_clear(ev));
  ASSERT_OK(weft_defer(loop, event_timeout, NULL, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "swwt");
  machine_free(m);
  weft_event_fini(ev);
  free(ev);
  test_free_loop(loop);
}

/* ---- channel ------------------------------------------------------------------- */

static weft_queue_t *q;
static intptr_t got[16];
static int ngot;

static void producer(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  intptr_t i, n = (intptr_t)arg;
  (void)loop, (void)self;
  for (i = 1; i <= n; i++)
    ASSERT_OK(weft_wait(weft_queue_send(q, weft_task_self(), (void *)i, -1)));
  put('p');
}

/* Receives until the channel is closed and drained. */
static void consumer(machine *m, int status) {
  for (;;) {
    if (m->pc == 1) { /* a wait ended */
      if (status == WEFT_ECLOSED) break;
      ASSERT_EQ(status, 0);
      got[ngot++] = (intptr_t)m->got;
    }
    m->pc = 1;
    status = weft_queue_recv(q, m->task, &m->got, -1);
    if (status == 1) return;
  }
  put('c');
  machine_end(m);
}

static void sync_channel_buffers_and_rendezvous_in_order(void) {
  size_t caps[2] = {2, 0};
  int k, i;
  for (k = 0; k < 2; k++) {
    weft_loop_t *loop = new_loop();
    machine *c;
    q = calloc(1, weft_queue_size());
    ASSERT_OK(weft_queue_init(q, loop, caps[k]));
    ngot = 0;
    ASSERT_OK(weft_defer(loop, producer, (void *)(intptr_t)5, 0));
    c = machine_new(loop, consumer, NULL);
    /* (the producer fills the buffer, or waits for the consumer) */
    while (log_n == 0) weft_loop_run(loop, WEFT_RUN_ONCE);
    ASSERT_STR_EQ(log_, "p");
    ASSERT_OK(weft_queue_close(q));
    ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
    ASSERT_STR_EQ(log_, "pc");
    ASSERT_EQ(ngot, 5);
    for (i = 0; i < 5; i++) ASSERT_EQ(got[i], i + 1);
    ASSERT_EQ(weft_queue_send(q, NULL, (void *)1, -1), WEFT_ECLOSED);
    machine_free(c);
    weft_queue_fini(q);
    free(q);
    test_free_loop(loop);
  }
}

static machine *first_receiver;

/* Started after the two receivers (so both wait): sends one item and
 * cancels the first receiver in the same pass.  The item was handed to
 * it, so it must go on to the second. */
static void send_then_cancel(machine *m, int status) {
  (void)status;
  ASSERT_OK(weft_queue_send(q, m->task, (void *)(intptr_t)7, -1));
  ASSERT_OK(weft_promise_cancel(weft_task_promise(first_receiver->task)));
  machine_end(m);
}

static void receiver(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_queue_recv(q, m->task, &m->got, -1), 1);
    return;
  case 1:
    if (status == 0) {
      ASSERT_EQ((intptr_t)m->got, 7);
      put('r');
    } else {
      ASSERT_EQ(status, WEFT_ECANCELED);
      put('x');
    }
    machine_end(m);
    return;
  }
}

static void sync_channel_item_of_a_cancelled_receiver_goes_on(void) {
  weft_loop_t *loop = new_loop();
  machine *b, *s;
  void *item;
  q = calloc(1, weft_queue_size());
  ASSERT_OK(weft_queue_init(q, loop, WEFT_QUEUE_UNBOUNDED));
  first_receiver = machine_new(loop, receiver, NULL);
  b = machine_new(loop, receiver, NULL);
  s = machine_new(loop, send_then_cancel, NULL);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "xr"); /* exactly once, by the live receiver */
  ASSERT_EQ(weft_queue_count(q), 0);
  /* A receiver that gave up (timeout) leaves nothing behind either. */
  ASSERT_EQ(weft_queue_recv(q, NULL, &item, -1), WEFT_EAGAIN);
  ASSERT_EQ(weft_queue_send(q, NULL, (void *)(intptr_t)8, -1), 0);
  ASSERT_OK(weft_queue_peek(q, 0, &item));
  ASSERT_EQ((intptr_t)item, 8);
  ASSERT_OK(weft_queue_recv(q, NULL, &item, -1));
  machine_free(first_receiver);
  machine_free(b);
  machine_free(s);
  weft_queue_fini(q);
  free(q);
  test_free_loop(loop);
}

static void timed_receiver(weft_loop_t *loop, weft_promise_t *self,
                           void *arg) {
  void *item = NULL;
  (void)loop, (void)self, (void)arg;
  ASSERT_EQ(weft_wait(weft_queue_recv(q, weft_task_self(), &item, 1)),
            WEFT_ETIMEDOUT);
  put('t');
}

static void sync_channel_timeout_withdraws_the_receiver(void) {
  weft_loop_t *loop = new_loop();
  void *item;
  q = calloc(1, weft_queue_size());
  ASSERT_OK(weft_queue_init(q, loop, 1));
  ASSERT_OK(weft_defer(loop, timed_receiver, NULL, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "t");
  /* The send after is buffered, not handed to the receiver that left. */
  ASSERT_OK(weft_queue_send(q, NULL, (void *)(intptr_t)3, -1));
  ASSERT_EQ(weft_queue_send(q, NULL, (void *)(intptr_t)4, -1), WEFT_EAGAIN);
  ASSERT_EQ(weft_queue_count(q), 1);
  ASSERT_OK(weft_queue_recv(q, NULL, &item, -1));
  ASSERT_EQ((intptr_t)item, 3);
  weft_queue_fini(q);
  free(q);
  ASSERT_EQ(weft_queue_init(NULL, loop, 0), WEFT_EINVAL);
  test_free_loop(loop);
}

/* ---- group ---------------------------------------------------------------------- */

static weft_group_t *grp;

/* Sleeps (intptr_t)arg ms; a negative arg: fails after -arg ms; 0: ends
 * at once. */
static void child(machine *m, int status) {
  intptr_t ms = (intptr_t)m->arg;
  switch (m->pc++) {
  case 0:
    if (ms == 0) { /* done at once */
      put('d');
      machine_end(m);
      return;
    }
    ASSERT_EQ(weft_task_sleep(m->task, (uint64_t)(ms < 0 ? -ms : ms)), 1);
    return;
  case 1:
    if (status == WEFT_ECANCELED) {
      put('x');
      machine_end(m); /* (cancelled: the promise settles as cancelled) */
    } else if (ms < 0) {
      put('f');
      m->ended = 1;
      weft_promise_reject(weft_task_promise(m->task), WEFT_EIO, "child broke");
    } else {
      put('d');
      machine_end(m);
    }
    return;
  }
}

static int group_result;
static void group_waiter(weft_loop_t *loop, weft_promise_t *self, void *arg) {
  (void)loop, (void)self;
  group_result = weft_wait(weft_group_wait(grp, weft_task_self(),
                                           (int64_t)(intptr_t)arg));
  put('g');
}

static void run_group(intptr_t a, intptr_t b, intptr_t c, intptr_t timeout,
                      const char *expect_log, int expect) {
  weft_loop_t *loop = new_loop();
  machine *m[3];
  intptr_t ms[3] = {a, b, c};
  int i;
  grp = calloc(1, weft_group_size());
  ASSERT_OK(weft_group_init(grp, loop));
  for (i = 0; i < 3; i++) {
    m[i] = machine_new(loop, child, (void *)ms[i]);
    ASSERT_OK(weft_group_add(grp, weft_task_promise(m[i]->task)));
  }
  ASSERT_EQ(weft_group_live(grp), 3);
  ASSERT_OK(weft_defer(loop, group_waiter, (void *)timeout, 0));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, expect_log);
  ASSERT_EQ(group_result, expect);
  ASSERT_EQ(weft_group_live(grp), 0);
  if (expect == WEFT_EIO) {
    const char *msg;
    ASSERT_EQ(weft_promise_error(weft_group_failure(grp), &msg), WEFT_EIO);
    ASSERT_STR_EQ(msg, "child broke");
  }
  weft_group_fini(grp);
  free(grp);
  for (i = 0; i < 3; i++) machine_free(m[i]);
  test_free_loop(loop);
}

static void sync_group_waits_for_every_child(void) {
  run_group(3, 1, 2, -1, "dddg", 0);
}

static void sync_group_failure_cancels_the_siblings(void) {
  /* the second fails at 1 ms; the others, sleeping long, are cancelled,
   * and the wait ends once they have ended */
  run_group(100000, -1, 100000, -1, "fxxg", WEFT_EIO);
}

static void sync_group_timeout_cancels_and_waits_for_the_children(void) {
  run_group(100000, 0, 100000, 5, "dxxg", WEFT_ETIMEDOUT);
}

TEST_MAIN(T(sync_mutex_serves_waiters_in_order)
          T(sync_mutex_handed_to_a_cancelled_task_goes_on)
          T(sync_semaphore_bounds_fiber_tasks)
          T(sync_event_wakes_every_waiter)
          T(sync_channel_buffers_and_rendezvous_in_order)
          T(sync_channel_item_of_a_cancelled_receiver_goes_on)
          T(sync_channel_timeout_withdraws_the_receiver)
          T(sync_group_waits_for_every_child)
          T(sync_group_failure_cancels_the_siblings)
          T(sync_group_timeout_cancels_and_waits_for_the_children))
