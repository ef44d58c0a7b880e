/* test_task.c: tasks of any host, driven through the resume hook by
 * hand-written state machines (machine.h): starting, awaiting, sleeping,
 * the host's own waits, cancellation that completes, shields, and host
 * memory (retain / release, continuations in the consumer's memory). */
#include "machine.h"

#include <unistd.h>

static char log_[64];
static int log_n;
static void put(char c) {
  log_[log_n++] = c;
  log_[log_n] = 0;
}

static void say(machine *m, int status) {
  (void)status;
  put(*(const char *)m->arg);
  machine_end(m);
}

static void task_starts_from_the_loop_in_fifo_order(void) {
  weft_loop_t *loop;
  machine *a, *b;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  a = machine_new(loop, say, "a");
  b = machine_new(loop, say, "b");
  ASSERT_EQ(log_n, 0); /* nothing runs inside init */
  ASSERT_EQ(a->refs, 1); /* its queued start holds it */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "ab");
  ASSERT_EQ(weft_promise_state(weft_task_promise(a->task)),
            WEFT_PROMISE_FULFILLED);
  ASSERT(weft_promise_task(weft_task_promise(a->task)) == a->task);
  ASSERT_EQ(a->statuses[0], 0);
  machine_free(a);
  machine_free(b);
  test_free_loop(loop);
}

/* Awaits the promise in arg, then ends. */
static void awaiter(machine *m, int status) {
  weft_promise_t *p = m->arg;
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_await(m->task, p), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_promise_state(p), WEFT_PROMISE_FULFILLED);
    put('w');
    machine_end(m);
    return;
  }
}

static void task_await_resumes_from_the_loop_never_from_resolve(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  machine *m;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  log_n = 0;
  m = machine_new(loop, awaiter, p);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0); /* waits now */
  ASSERT(weft_task_waiting(m->task));
  ASSERT_EQ(m->refs, 0); /* a pending await holds nothing */
  ASSERT_OK(weft_promise_resolve(p, "v", NULL));
  ASSERT_EQ(log_n, 0); /* not from inside resolve */
  ASSERT_EQ(m->refs, 1); /* queued: held */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "w");
  /* Awaiting a settled promise does not wait at all. */
  ASSERT_EQ(weft_task_await(m->task, p), WEFT_EINVAL); /* it has ended */
  machine_free(m);
  weft_promise_unref(p);
  test_free_loop(loop);
}

/* Sleeps 5 ms, then waits with its own kind of wait (arg: a machine ** to
 * publish itself), then ends. */
static void sleeper(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_sleep(m->task, 5), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    put('s');
    ASSERT_EQ(weft_task_suspend(m->task, -1, NULL, NULL), 1);
    return;
  case 2:
    ASSERT_EQ(status, 42); /* what weft_task_wake passed */
    put('k');
    ASSERT_EQ(weft_task_suspend(m->task, 5, NULL, NULL), 1);
    return;
  case 3:
    ASSERT_EQ(status, WEFT_ETIMEDOUT);
    put('t');
    machine_end(m);
    return;
  }
}

static void task_sleep_and_host_waits(void) {
  weft_loop_t *loop;
  machine *m;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  m = machine_new(loop, sleeper, NULL);
  while (log_n < 1) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT_STR_EQ(log_, "s");
  ASSERT(weft_task_waiting(m->task));
  ASSERT_EQ(weft_task_wake(m->task, 42), 0);
  ASSERT_EQ(weft_task_wake(m->task, 43), WEFT_ENOENT); /* once */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(log_, "skt");
  machine_free(m);
  test_free_loop(loop);
}

/* Waits "forever"; once cancelled, cleans up over a shielded sleep, then
 * checks the cancellation is sticky, then ends. */
static int withdrawn;
static void on_withdraw(weft_task_t *t, void *data) {
  (void)t;
  ASSERT(data == &withdrawn);
  withdrawn++;
}

static void stubborn(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_suspend(m->task, -1, on_withdraw, &withdrawn), 1);
    return;
  case 1:
    ASSERT_EQ(status, WEFT_ECANCELED);
    ASSERT(weft_task_cancelled(m->task));
    /* Sticky: a wait fails at once... */
    ASSERT_EQ(weft_task_sleep(m->task, 1), WEFT_ECANCELED);
    /* ...unless shielded: a goodbye that must wait. */
    ASSERT_EQ(weft_task_shield(m->task, 1), 1);
    ASSERT_EQ(weft_task_sleep(m->task, 3), 1);
    return;
  case 2:
    ASSERT_EQ(status, 0);
    put('g');
    ASSERT_EQ(weft_task_shield(m->task, -1), 0);
    ASSERT_EQ(weft_task_sleep(m->task, 1), WEFT_ECANCELED);
    machine_end(m);
    return;
  }
}

/* Cancels the task in arg, checks it is still pending, awaits it. */
static void canceller(machine *m, int status) {
  machine *victim = m->arg;
  weft_promise_t *vp = weft_task_promise(victim->task);
  switch (m->pc++) {
  case 0:
    ASSERT_OK(weft_promise_cancel(vp));
    ASSERT_EQ(weft_promise_cancel(vp), WEFT_EBUSY);
    ASSERT_EQ(withdrawn, 1); /* its wait let go at once */
    ASSERT_EQ(weft_promise_state(vp), WEFT_PROMISE_PENDING);
    ASSERT(weft_promise_cancelling(vp));
    ASSERT_EQ(weft_task_await(m->task, vp), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    ASSERT(victim->ended); /* its cleanup is over */
    ASSERT_STR_EQ(log_, "g");
    ASSERT_EQ(weft_promise_state(vp), WEFT_PROMISE_CANCELLED);
    machine_end(m);
    return;
  }
}

static void task_cancel_completes_and_is_sticky_unless_shielded(void) {
  weft_loop_t *loop;
  machine *v, *c;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = withdrawn = 0;
  v = machine_new(loop, stubborn, NULL);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  c = machine_new(loop, canceller, v);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT(c->ended);
  ASSERT_EQ(withdrawn, 1);
  machine_free(v);
  machine_free(c);
  test_free_loop(loop);
}

/* A shielded sleep is not interrupted by a cancellation arriving
 * meanwhile; the first wait after the shield fails. */
static void shielded(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    weft_task_shield(m->task, 1);
    ASSERT_EQ(weft_task_sleep(m->task, 10), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    ASSERT(weft_task_cancelled(m->task));
    weft_task_shield(m->task, -1);
    ASSERT_EQ(weft_task_await(m->task, weft_task_promise(m->task)),
              WEFT_ECANCELED);
    machine_end(m);
    return;
  }
}

/* Started after the shielded one (so it waits): cancels it. */
static void cancels_arg(machine *m, int status) {
  (void)status;
  ASSERT(weft_task_waiting(((machine *)m->arg)->task));
  ASSERT_OK(weft_promise_cancel(weft_task_promise(((machine *)m->arg)->task)));
  machine_end(m);
}

static void task_shield_holds_a_cancellation_back(void) {
  weft_loop_t *loop;
  machine *m, *c;
  ASSERT_OK(weft_loop_new(&loop));
  m = machine_new(loop, shielded, NULL);
  c = machine_new(loop, cancels_arg, m);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(m->resumes, 2);
  ASSERT_EQ(weft_promise_state(weft_task_promise(m->task)),
            WEFT_PROMISE_CANCELLED);
  ASSERT_EQ(weft_task_shield(m->task, -1), WEFT_EINVAL); /* not shielded */
  /* Shields nest up to 2^21 - 1 deep; one more is refused. */
  ASSERT_EQ(weft_task_shield(m->task, (1 << 21) - 1), (1 << 21) - 1);
  ASSERT_EQ(weft_task_shield(m->task, 1), WEFT_EINVAL);
  ASSERT_EQ(weft_task_shield(m->task, 0), (1 << 21) - 1);
  ASSERT_EQ(weft_task_shield(m->task, -((1 << 21) - 1)), 0);
  machine_free(m);
  machine_free(c);
  test_free_loop(loop);
}

static void task_cancelled_before_it_started_runs_nothing(void) {
  weft_loop_t *loop;
  machine *m;
  ASSERT_OK(weft_loop_new(&loop));
  log_n = 0;
  m = machine_new(loop, say, "x");
  ASSERT_OK(weft_promise_cancel(weft_task_promise(m->task)));
  /* Nothing to clean up: cancelled at once. */
  ASSERT_EQ(weft_promise_state(weft_task_promise(m->task)),
            WEFT_PROMISE_CANCELLED);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(log_n, 0);
  ASSERT_EQ(m->resumes, 1);
  ASSERT_EQ(m->statuses[0], WEFT_ECANCELED);
  machine_free(m);
  test_free_loop(loop);
}

static void task_fini_withdraws_a_pending_wait(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  machine *m;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  m = machine_new(loop, awaiter, p);
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_NOWAIT), 0);
  ASSERT(weft_task_waiting(m->task));
  machine_free(m); /* the host collects it while it waits */
  ASSERT_OK(weft_promise_resolve(p, NULL, NULL)); /* reaches nobody */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0);
  weft_promise_unref(p);
  test_free_loop(loop);
}

static int conts_ran;
static void count_cont(weft_promise_t *p, void *data) {
  (void)p;
  conts_ran += *(int *)data;
}

static void task_continuations_in_the_consumers_memory(void) {
  weft_loop_t *loop;
  weft_promise_t *p;
  weft_cont_t *a = calloc(1, weft_cont_size()), *b = calloc(1, weft_cont_size());
  int one = 1, ten = 10;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &p));
  conts_ran = 0;
  ASSERT_OK(weft_promise_watch(p, a, count_cont, &one));
  ASSERT_EQ(weft_promise_watch(p, a, count_cont, &one), WEFT_EBUSY);
  ASSERT_OK(weft_promise_watch(p, b, count_cont, &ten));
  ASSERT(weft_promise_consumed(p, a)); /* b also waits */
  ASSERT_OK(weft_cont_cancel(b));       /* withdrawn while pending */
  ASSERT(!weft_promise_consumed(p, a));
  ASSERT_OK(weft_promise_resolve(p, NULL, NULL));
  ASSERT(weft_cont_pending(a)); /* queued */
  ASSERT_OK(weft_promise_watch(p, b, count_cont, &ten));
  ASSERT_OK(weft_cont_cancel(b)); /* withdrawn from the run queue */
  ASSERT_EQ(weft_cont_cancel(b), WEFT_ENOENT);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(conts_ran, 1);
  ASSERT(!weft_cont_pending(a));
  weft_promise_unref(p);
  free(a);
  free(b);
  test_free_loop(loop);
}

/* A promise in host memory: the core's references go to the host. */
static int host_refs;
static void host_retain(void *obj) { (void)obj, host_refs++; }
static void host_release(void *obj) { (void)obj, host_refs--; }
static void no_resume(weft_task_t *t, int status, void *obj) {
  (void)t, (void)status, (void)obj;
  ASSERT(0);
}
static const weft_host_t plain_host = {sizeof(weft_host_t), host_retain,
                                       host_release, no_resume};

static void task_host_promises_are_retained_while_queued(void) {
  weft_loop_t *loop;
  weft_promise_t *p = calloc(1, weft_promise_size());
  int one = 1;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_init(p, loop, &plain_host, NULL));
  conts_ran = host_refs = 0;
  ASSERT_OK(weft_promise_then(p, count_cont, &one));
  ASSERT_EQ(host_refs, 0); /* pending: nothing held */
  ASSERT_OK(weft_promise_reject_value(p, WEFT_EIO, "broke", &one, NULL));
  ASSERT_EQ(host_refs, 1); /* its continuation is queued */
  ASSERT(weft_promise_payload(p) == &one);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(host_refs, 0);
  ASSERT_EQ(conts_ran, 1);
  weft_promise_fini(p);
  weft_promise_fini(p); /* twice: no-op */
  free(p);
  ASSERT_EQ(weft_promise_init(NULL, loop, &plain_host, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_task_init(NULL, loop, &plain_host, NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_task_await(NULL, NULL), WEFT_EINVAL);
  test_free_loop(loop);
}

/* What every_wait waits on, in turn. */
static struct {
  weft_promise_t *p1, *p2;
  int rfd;
  weft_sem_t *sem;
} w8;

/* A wait of each kind after one of another kind: the kinds share the
 * task's bytes, so each must start from its own clean fields. */
static void every_wait(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_await(m->task, w8.p1), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_task_wait_fd(m->task, w8.rfd, WEFT_READABLE, 10000), 1);
    return;
  case 2:
    ASSERT_EQ(status, WEFT_READABLE);
    ASSERT_EQ(weft_sem_acquire(w8.sem, m->task, 10000), 1);
    return;
  case 3:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_task_await(m->task, w8.p2), 1);
    return;
  case 4:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_task_sleep(m->task, 1), 1);
    return;
  case 5:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_sem_acquire(w8.sem, m->task, -1), 1);
    return;
  case 6: /* woken with a permit, then cancelled before it ran */
    ASSERT_EQ(status, WEFT_ECANCELED);
    machine_end(m);
    return;
  }
}

static void task_waits_of_every_kind_in_turn(void) {
  weft_loop_t *loop;
  machine *m;
  int fds[2];
  char c = 'x';
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &w8.p1));
  ASSERT_OK(weft_promise_new(loop, &w8.p2));
  ASSERT_EQ(pipe(fds), 0);
  w8.rfd = fds[0];
  w8.sem = calloc(1, weft_sem_size());
  ASSERT_OK(weft_sem_init(w8.sem, loop, 0));
  m = machine_new(loop, every_wait, NULL);
  weft_loop_run(loop, WEFT_RUN_NOWAIT);
  ASSERT_EQ(m->pc, 1);
  ASSERT_OK(weft_promise_resolve(w8.p1, NULL, NULL));
  weft_loop_run(loop, WEFT_RUN_NOWAIT);
  ASSERT_EQ(m->pc, 2); /* in its fd wait */
  ASSERT_EQ(write(fds[1], &c, 1), 1);
  while (m->pc < 3) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT_OK(weft_sem_release(w8.sem));
  weft_loop_run(loop, WEFT_RUN_NOWAIT);
  ASSERT_EQ(m->pc, 4);
  ASSERT_OK(weft_promise_resolve(w8.p2, NULL, NULL));
  while (m->pc < 6) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT(weft_task_waiting(m->task));
  ASSERT_OK(weft_sem_release(w8.sem)); /* hands the permit over */
  ASSERT_EQ(weft_sem_count(w8.sem), 0);
  ASSERT_OK(weft_promise_cancel(weft_task_promise(m->task)));
  ASSERT_EQ(weft_sem_count(w8.sem), 1); /* given back */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* no stray watcher */
  ASSERT(m->ended);
  ASSERT_EQ(weft_promise_state(weft_task_promise(m->task)),
            WEFT_PROMISE_CANCELLED);
  machine_free(m);
  weft_sem_fini(w8.sem);
  free(w8.sem);
  weft_promise_unref(w8.p1);
  weft_promise_unref(w8.p2);
  close(fds[0]);
  close(fds[1]);
  test_free_loop(loop);
}

/* Cancelled in a descriptor wait that follows a promise wait (a), and in
 * a promise wait that follows a host wait whose timeout ran out (b): each
 * cancellation withdraws what its own wait armed, nothing else, so the
 * loop ends with no watcher left and p2 with no consumer. */
static void cancelled_in_fd_wait(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_await(m->task, w8.p1), 1);
    return;
  case 1:
    ASSERT_EQ(status, 0);
    ASSERT_EQ(weft_task_wait_fd(m->task, w8.rfd, WEFT_READABLE, -1), 1);
    return;
  case 2:
    ASSERT_EQ(status, WEFT_ECANCELED);
    machine_end(m);
    return;
  }
}

static void cancelled_in_await(machine *m, int status) {
  switch (m->pc++) {
  case 0:
    ASSERT_EQ(weft_task_suspend(m->task, 1, NULL, NULL), 1);
    return;
  case 1:
    ASSERT_EQ(status, WEFT_ETIMEDOUT);
    ASSERT_EQ(weft_task_await(m->task, w8.p2), 1);
    return;
  case 2:
    ASSERT_EQ(status, WEFT_ECANCELED);
    machine_end(m);
    return;
  }
}

static void task_cancel_withdraws_only_its_own_wait(void) {
  weft_loop_t *loop;
  machine *a, *b;
  int fds[2];
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_promise_new(loop, &w8.p1));
  ASSERT_OK(weft_promise_new(loop, &w8.p2));
  ASSERT_EQ(pipe(fds), 0);
  w8.rfd = fds[0];
  a = machine_new(loop, cancelled_in_fd_wait, NULL);
  b = machine_new(loop, cancelled_in_await, NULL);
  weft_loop_run(loop, WEFT_RUN_NOWAIT);
  ASSERT_OK(weft_promise_resolve(w8.p1, NULL, NULL));
  while (a->pc < 2 || b->pc < 2) weft_loop_run(loop, WEFT_RUN_ONCE);
  ASSERT(weft_task_waiting(a->task)); /* on a pipe nothing writes to */
  ASSERT(weft_task_waiting(b->task));
  ASSERT_EQ(weft_promise_consumed(w8.p2, NULL), 1);
  ASSERT_OK(weft_promise_cancel(weft_task_promise(a->task)));
  ASSERT_OK(weft_promise_cancel(weft_task_promise(b->task)));
  ASSERT_EQ(weft_promise_consumed(w8.p2, NULL), 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* ends: nothing armed */
  ASSERT(a->ended && b->ended);
  ASSERT_EQ(weft_promise_state(w8.p2), WEFT_PROMISE_PENDING);
  machine_free(a);
  machine_free(b);
  weft_promise_unref(w8.p1);
  weft_promise_unref(w8.p2);
  close(fds[0]);
  close(fds[1]);
  test_free_loop(loop);
}

/* Two machines that pass the turn to each other: each wakes the other and
 * waits; the one the loop resumed runs the other's resume through the
 * handoff, and goes on without suspending when its own comes up. */
static machine *peers[2];
static int hops, handed, refused;

static int refuse_all(weft_task_t *next, void *data) {
  (void)next, (void)data;
  refused++;
  return 0;
}

static void passer(machine *m, int status) {
  machine *other = m == peers[0] ? peers[1] : peers[0];
  int st = -1;
  ASSERT_EQ(status, 0);
  for (;;) {
    if (hops >= 10) {
      machine_end(m);
      weft_task_wake(other->task, 0); /* (WEFT_ENOENT if it is not waiting) */
      return;
    }
    hops++;
    weft_task_wake(other->task, 0);
    ASSERT_EQ(weft_task_suspend(m->task, -1, NULL, NULL), 1);
    if (!weft_task_handoff(m->task, m->arg ? refuse_all : NULL, NULL, &st))
      return; /* suspended: the loop resumes it */
    ASSERT_EQ(st, 0);
    ASSERT(!weft_task_waiting(m->task));
    handed++;
  }
}

static void task_handoff_runs_the_queue_ahead_of_its_own_resume(void) {
  weft_loop_t *loop;
  int st;
  ASSERT_OK(weft_loop_new(&loop));
  hops = handed = refused = 0;
  peers[0] = machine_new(loop, passer, NULL);
  peers[1] = machine_new(loop, passer, NULL);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(hops, 10);
  ASSERT(peers[0]->ended && peers[1]->ended);
  /* The first ran every hop of its own in one resume; the second's
   * resumes ran inside the first's handoffs, where it may not hand off
   * itself (it suspends as usual). */
  ASSERT_EQ(peers[0]->resumes, 1);
  ASSERT_EQ(handed, 5);
  ASSERT_EQ(peers[1]->resumes, 6); /* (the last to end it) */
  /* Outside the dispatch pass, nothing is handed off. */
  ASSERT_EQ(weft_task_handoff(peers[0]->task, NULL, NULL, &st), 0);
  ASSERT_EQ(weft_task_handoff(NULL, NULL, NULL, &st), 0);
  machine_free(peers[0]);
  machine_free(peers[1]);
  /* A host that refuses: every hop goes through the loop. */
  hops = handed = 0;
  peers[0] = machine_new(loop, passer, "refuse");
  peers[1] = machine_new(loop, passer, "refuse");
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(hops, 10);
  ASSERT_EQ(handed, 0);
  ASSERT_GT(refused, 0);
  ASSERT_EQ(peers[0]->resumes + peers[1]->resumes, 12);
  machine_free(peers[0]);
  machine_free(peers[1]);
  test_free_loop(loop);
}

static void queued_fn(weft_loop_t *loop, void *data) {
  (void)loop;
  put(*(const char *)data);
}

static void task_handoff_stops_at_what_is_not_a_task(void) {
  weft_loop_t *loop;
  ASSERT_OK(weft_loop_new(&loop));
  hops = handed = 0;
  log_n = 0;
  peers[0] = machine_new(loop, passer, NULL);
  ASSERT_OK(weft_loop_queue(loop, queued_fn, "q"));
  peers[1] = machine_new(loop, passer, NULL);
  ASSERT_EQ(weft_loop_ready(loop), 1);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(weft_loop_ready(loop), 0);
  ASSERT_EQ(hops, 10);
  ASSERT_STR_EQ(log_, "q");
  /* The first handoff met the queued function first: the loop ran it. */
  ASSERT_GT(peers[0]->resumes, 1);
  machine_free(peers[0]);
  machine_free(peers[1]);
  ASSERT_EQ(weft_loop_ready(NULL), 0);
  test_free_loop(loop);
}

TEST_MAIN(T(task_starts_from_the_loop_in_fifo_order)
          T(task_await_resumes_from_the_loop_never_from_resolve)
          T(task_sleep_and_host_waits)
          T(task_cancel_completes_and_is_sticky_unless_shielded)
          T(task_shield_holds_a_cancellation_back)
          T(task_cancelled_before_it_started_runs_nothing)
          T(task_fini_withdraws_a_pending_wait)
          T(task_continuations_in_the_consumers_memory)
          T(task_host_promises_are_retained_while_queued)
          T(task_waits_of_every_kind_in_turn)
          T(task_cancel_withdraws_only_its_own_wait)
          T(task_handoff_runs_the_queue_ahead_of_its_own_resume)
          T(task_handoff_stops_at_what_is_not_a_task))
