/* sched.c: the loop's run queue, and tasks: fibers the loop starts and
 * resumes.
 *
 * Everything that resumes a task goes through the run queue (a promise
 * settling, a timer firing, a descriptor getting ready, a cancellation),
 * which only the loop's dispatch pass drains: one task never resumes
 * another, and nothing resumes synchronously from inside the call that
 * made a task ready. */
#include "internal.h"

/* Runs per dispatch pass before the rest waits for the next iteration, so
 * tasks that keep each other busy cannot starve I/O. */
#define BUDGET 65536

void weft__sched_push(weft_loop_t *loop, weft__run *r) {
  weft__list_push(&loop->ready, &r->link);
  weft__loop_sched(loop);
}

void weft__sched_drain(weft_loop_t *loop) {
  unsigned budget = BUDGET;
  while (!weft__list_empty(&loop->ready) && budget-- > 0 &&
         !weft__loop_stopping(loop)) {
    weft__run *r = WEFT__CONTAINER(weft__list_pop(&loop->ready), weft__run,
                                   link);
    r->run(loop, r);
  }
}

typedef struct queued {
  weft__run run;
  weft_queue_cb cb;
  void *data;
} queued;

static void run_queued(weft_loop_t *loop, weft__run *r) {
  queued *q = WEFT__CONTAINER(r, queued, run);
  weft_queue_cb cb = q->cb;
  void *data = q->data;
  weft__free(q);
  loop->tasks--;
  cb(loop, data);
}

int weft_loop_queue(weft_loop_t *loop, weft_queue_cb cb, void *data) {
  queued *q;
  if (!loop || !cb) return WEFT_EINVAL;
  q = weft__malloc(sizeof *q);
  if (!q) return WEFT_ENOMEM;
  q->run.run = run_queued;
  q->cb = cb;
  q->data = data;
  loop->tasks++; /* weft_loop_free waits for it */
  weft__sched_push(loop, &q->run);
  return 0;
}

typedef struct weft__task {
  weft__run run; /* queued to be resumed */
  weft_loop_t *loop;
  weft_fiber_t *fiber;
  weft_promise_t *self;
  weft_task_fn fn;
  void *arg;
  int cancelled;
  int queued;
  int wake; /* what the pending wait returns */
  /* the pending wait, if any */
  weft__cont *awaiting;
  weft_id_t timer, rwatch, wwatch;
} weft__task;

static weft__task *current_task(void) {
  return weft__fiber_task(weft_fiber_current());
}

weft_loop_t *weft_task_loop(void) {
  weft__task *t = current_task();
  return t ? t->loop : NULL;
}

/* Ends the pending wait and queues the task to return code from it. */
static void wake(weft__task *t, int code) {
  if (t->queued) return;
  if (t->awaiting) weft__promise_unwatch(t->awaiting);
  t->awaiting = NULL;
  if (t->timer) weft_watch_cancel(t->loop, t->timer);
  if (t->rwatch) weft_watch_cancel(t->loop, t->rwatch);
  if (t->wwatch) weft_watch_cancel(t->loop, t->wwatch);
  t->timer = t->rwatch = t->wwatch = 0;
  t->wake = code;
  t->queued = 1;
  weft__sched_push(t->loop, &t->run);
}

/* Suspends the running task until wake(); returns wake's code. */
static int wait_here(weft__task *t) {
  weft_fiber_suspend(NULL, NULL);
  return t->wake;
}

static void task_body(weft_fiber_t *f, weft__task *t) {
  (void)f;
  t->fn(t->loop, t->self, t->arg);
}

static void *task_main(weft_fiber_t *f, void *arg) {
  task_body(f, arg);
  return NULL;
}

static void task_resume(weft_loop_t *loop, weft__run *r) {
  weft__task *t = WEFT__CONTAINER(r, weft__task, run);
  (void)loop;
  t->queued = 0;
  /* (A task cancelled before it started never runs.) */
  if (!t->cancelled || weft_fiber_status(t->fiber) != WEFT_FIBER_INIT) {
    weft_fiber_resume(t->fiber, NULL, NULL);
    if (weft_fiber_status(t->fiber) != WEFT_FIBER_TERMINATED) return;
  }
  /* No-op if fn settled it; cancelled if it was (see weft_spawn). */
  weft_promise_resolve(t->self, NULL, NULL);
  weft_fiber_free(t->fiber);
  weft_promise_unref(t->self);
  weft__free(t);
}

/* The task's promise was cancelled: end its wait with WEFT_ECANCELED; any
 * later wait returns it at once. */
static void task_cancel(weft_promise_t *self, void *data) {
  weft__task *t = data;
  (void)self;
  t->cancelled = 1;
  if (t->awaiting || t->timer || t->rwatch || t->wwatch)
    wake(t, WEFT_ECANCELED);
}

int weft_spawn(weft_loop_t *loop, weft_task_fn fn, void *arg,
               size_t stack_size, weft_promise_t **out) {
  weft__task *t;
  int err;
  if (!loop || !fn || !out) return WEFT_EINVAL;
  t = weft__calloc(1, sizeof *t);
  if (!t) return WEFT_ENOMEM;
  err = weft_promise_new(loop, &t->self);
  if (!err) {
    err = weft_fiber_new(task_main, t, stack_size, &t->fiber);
    if (err) weft_promise_unref(t->self);
  }
  if (err) {
    weft__free(t);
    return err;
  }
  t->loop = loop;
  t->fn = fn;
  t->arg = arg;
  weft__fiber_set_task(t->fiber, t);
  weft__promise_self_cancel(t->self);
  weft_promise_on_cancel(t->self, task_cancel, t);
  weft_promise_ref(t->self); /* the caller's */
  *out = t->self;
  t->queued = 1;
  t->run.run = task_resume;
  weft__sched_push(loop, &t->run);
  return 0;
}

int weft_defer(weft_loop_t *loop, weft_task_fn fn, void *arg,
               size_t stack_size) {
  weft_promise_t *p;
  int err = weft_spawn(loop, fn, arg, stack_size, &p);
  if (!err) weft_promise_unref(p);
  return err;
}

static void awaited(weft_promise_t *p, void *data) {
  weft__task *t = data;
  t->awaiting = NULL; /* this continuation is running: nothing to unwatch */
  wake(t, weft_promise_error(p, NULL));
}

int weft_await(weft_promise_t *p) {
  weft__task *t = current_task();
  int code;
  if (!t || !p) return WEFT_EINVAL;
  if (t->cancelled) return WEFT_ECANCELED;
  if (weft_promise_state(p) != WEFT_PROMISE_PENDING)
    return weft_promise_error(p, NULL);
  weft_promise_ref(p);
  t->awaiting = weft__promise_watch(p, awaited, t);
  code = t->awaiting ? wait_here(t) : WEFT_ENOMEM;
  weft_promise_unref(p);
  return code;
}

static void timer_fired(weft_loop_t *loop, weft_id_t id, int arg,
                        void *data) {
  weft__task *t = data;
  (void)loop, (void)id, (void)arg;
  t->timer = 0; /* a once timer is already gone */
  wake(t, t->rwatch || t->wwatch ? WEFT_ETIMEDOUT : 0);
}

int weft_delay(uint64_t ms) {
  weft__task *t = current_task();
  int err;
  if (!t) return WEFT_EINVAL;
  if (t->cancelled) return WEFT_ECANCELED;
  err = weft_once(t->loop, ms, timer_fired, t, 0, &t->timer);
  return err ? err : wait_here(t);
}

static void fd_ready(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  weft__task *t = data;
  (void)loop, (void)fd;
  wake(t, id == t->rwatch ? WEFT_READABLE : WEFT_WRITABLE);
}

int weft_wait_fd(int fd, int events, int64_t timeout_ms) {
  weft__task *t = current_task();
  int err = 0;
  if (!t || !(events & (WEFT_READABLE | WEFT_WRITABLE)) ||
      (events & ~(WEFT_READABLE | WEFT_WRITABLE)))
    return WEFT_EINVAL;
  if (t->cancelled) return WEFT_ECANCELED;
  if (events & WEFT_READABLE)
    err = weft_readable(t->loop, fd, fd_ready, t, 0, &t->rwatch);
  if (!err && (events & WEFT_WRITABLE))
    err = weft_writable(t->loop, fd, fd_ready, t, 0, &t->wwatch);
  if (!err && timeout_ms >= 0)
    err = weft_once(t->loop, (uint64_t)timeout_ms, timer_fired, t, 0,
                    &t->timer);
  if (err) {
    if (t->rwatch) weft_watch_cancel(t->loop, t->rwatch);
    if (t->wwatch) weft_watch_cancel(t->loop, t->wwatch);
    t->rwatch = t->wwatch = 0;
    return err;
  }
  return wait_here(t);
}
