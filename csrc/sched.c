/* sched.c: the loop's run queue: promise continuations and task resumes,
 * in FIFO order.
 *
 * Everything that resumes a task goes through it (a promise settling, a
 * timer firing, a descriptor getting ready, a cancellation), and only the
 * loop's dispatch pass drains it: one task never resumes another, and
 * nothing resumes synchronously from inside the call that made a task
 * ready. */
#include "internal.h"

/* Runs per dispatch pass before the rest waits for the next iteration, so
 * tasks that keep each other busy cannot starve I/O. */
#define BUDGET 65536

void weft__sched_push(weft_loop_t *loop, weft__run *r) {
  int was_empty = weft__list_empty(&loop->ready);
  weft__list_push(&loop->ready, &r->link);
  /* (A queue that was not empty keeps the poll from blocking already, and
   * a dispatch pass rearms the loop when it ends.) */
  if (was_empty && !loop->in_dispatch) weft__loop_sched(loop);
}

/* Runs the queue up to the budget; 1 if entries are left.  (What an
 * error unwinding out of an earlier pass left is reset first.) */
static int drain(weft_loop_t *loop) {
  loop->budget = BUDGET;
  loop->resuming = NULL;
  loop->handing = 0;
  while (!weft__list_empty(&loop->ready) && loop->budget > 0 &&
         !weft__loop_stopping(loop)) {
    weft__run *r = WEFT__CONTAINER(weft__list_pop(&loop->ready), weft__run,
                                   link);
    loop->budget--;
    r->run(loop, r);
  }
  return !weft__list_empty(&loop->ready);
}

void weft__sched_drain(weft_loop_t *loop) {
  if (weft__list_empty(&loop->ready)) return; /* (no guard's call for nothing) */
  if (loop->guard && !loop->guarding) {
    loop->guarding = 1;
    loop->guard(loop, loop->guard_data);
    loop->guarding = 0;
    return;
  }
  drain(loop);
}

int weft_loop_drain(weft_loop_t *loop) {
  return loop ? drain(loop) : WEFT_EINVAL;
}

int weft_loop_set_guard(weft_loop_t *loop, weft_guard_cb guard, void *data) {
  if (!loop) return WEFT_EINVAL;
  if (!guard) { /* (only the one that set it removes it) */
    if (loop->guard_data != data || !loop->guard) return WEFT_ENOENT;
  } else if (loop->guard &&
             (loop->guard != guard || loop->guard_data != data)) {
    return WEFT_EBUSY;
  }
  loop->guard = guard;
  loop->guard_data = guard ? data : NULL;
  return 0;
}

int weft_loop_ready(const weft_loop_t *loop) {
  return loop && !weft__list_empty(&loop->ready);
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

