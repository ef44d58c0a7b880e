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

