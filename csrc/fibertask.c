/* fibertask.c: weft_spawn's tasks: C functions on fibers, one host of the
 * generic tasks (task.c).  The host's resume runs the fiber until it
 * suspends in a wait or returns; weft_await, weft_delay and weft_wait_fd
 * register the wait with the task and suspend the fiber.
 *
 * The struct is the core's: counted references (the caller's, the running
 * body's, the queued resumes') keep it, and the last one frees it. */
#include "internal.h"

typedef struct fibertask {
  weft_task_t task;
  weft_fiber_t *fiber;
  weft_task_fn fn;
  void *arg;
  size_t refs;
  int status; /* what the fiber's pending wait returns */
  weft__pext ext; /* its promise's extension, in the same block */
} fibertask;

static void retain(void *obj) { ((fibertask *)obj)->refs++; }

static void release(void *obj) {
  fibertask *ft = obj;
  if (--ft->refs > 0) return;
  weft_task_fini(&ft->task);
  weft_fiber_free(ft->fiber);
  weft__free(ft);
}

static fibertask *current(void) {
  return weft__fiber_task(weft_fiber_current());
}

weft_task_t *weft_task_self(void) {
  fibertask *ft = current();
  return ft ? &ft->task : NULL;
}

weft_loop_t *weft_task_loop(void) {
  fibertask *ft = current();
  return ft ? weft_task_get_loop(&ft->task) : NULL;
}

static void *fiber_main(weft_fiber_t *f, void *arg) {
  fibertask *ft = arg;
  (void)f;
  ft->fn(weft_task_get_loop(&ft->task), &ft->task.promise, ft->arg);
  return NULL;
}

static void resume(weft_task_t *task, int status, void *obj) {
  fibertask *ft = obj;
  (void)task;
  ft->status = status;
  /* (A task cancelled before it started runs nothing.) */
  if (!(status == WEFT_ECANCELED &&
        weft_fiber_status(ft->fiber) == WEFT_FIBER_INIT)) {
    weft_fiber_resume(ft->fiber, NULL, NULL);
    if (weft_fiber_status(ft->fiber) != WEFT_FIBER_TERMINATED) return;
  }
  /* No-op if fn settled it; cancelled if it was cancelled. */
  weft_promise_resolve(&ft->task.promise, NULL, NULL);
  release(ft); /* the body's reference */
}

static const weft_host_t fiber_host = {sizeof(weft_host_t), retain, release,
                                       resume};

int weft_spawn(weft_loop_t *loop, weft_task_fn fn, void *arg,
               size_t stack_size, weft_promise_t **out) {
  fibertask *ft;
  int err;
  if (!loop || !fn || !out) return WEFT_EINVAL;
  ft = weft__calloc(1, sizeof *ft);
  if (!ft) return WEFT_ENOMEM;
  err = weft_fiber_new(fiber_main, ft, stack_size, &ft->fiber);
  if (err) {
    weft__free(ft);
    return err;
  }
  ft->fn = fn;
  ft->arg = arg;
  ft->refs = 2; /* the body's, and the caller's */
  weft__fiber_set_task(ft->fiber, ft);
  weft_task_init(&ft->task, loop, &fiber_host, ft);
  /* (a C task's result or error often carries a payload: no second block
   * for it) */
  ft->task.promise.ext = &ft->ext;
  ft->task.promise.ext_inline = 1;
  *out = &ft->task.promise;
  return 0;
}

int weft_defer(weft_loop_t *loop, weft_task_fn fn, void *arg,
               size_t stack_size) {
  weft_promise_t *p;
  int err = weft_spawn(loop, fn, arg, stack_size, &p);
  if (!err) weft_promise_unref(p);
  return err;
}

/* Suspends the running fiber task in the wait that r (a weft_task_* wait's
 * result) registered; returns what the wait ended with. */
static int wait_here(fibertask *ft, int r) {
  if (r != 1) return r;
  weft_fiber_suspend(NULL, NULL);
  return ft->status;
}

int weft_wait(int registered) {
  fibertask *ft = current();
  if (!ft) return WEFT_EINVAL;
  return wait_here(ft, registered);
}

int weft_await(weft_promise_t *p) {
  fibertask *ft = current();
  int r;
  if (!ft || !p) return WEFT_EINVAL;
  weft_promise_ref(p);
  r = wait_here(ft, weft_task_await(&ft->task, p));
  if (r == 0) r = weft_promise_error(p, NULL);
  weft_promise_unref(p);
  return r;
}

int weft_delay(uint64_t ms) {
  fibertask *ft = current();
  if (!ft) return WEFT_EINVAL;
  return wait_here(ft, weft_task_sleep(&ft->task, ms));
}

int weft_wait_fd(int fd, int events, int64_t timeout_ms) {
  fibertask *ft = current();
  if (!ft) return WEFT_EINVAL;
  return wait_here(ft, weft_task_wait_fd(&ft->task, fd, events, timeout_ms));
}
