/* task.c: tasks whose body is a host's coroutine (a C fiber, a Lua
 * coroutine, a hand-written state machine): the core owns when they run,
 * what they wait on, and their cancellation; a host hook runs the body.
 *
 * A task is resumed only from the loop's run queue, never from inside the
 * call that ended its wait: a wait registers what should end it (a
 * continuation, a timer, a descriptor watcher, a sync object's queue) and
 * the host suspends the body; whatever ends the wait only queues the
 * resume.  A queued resume holds a reference to the task (the host's
 * retain), so a host's collector leaves it alone meanwhile.
 *
 * Cancellation is sticky and completes: the task's promise stays pending
 * until the host settles it once the body has ended, and every wait after
 * the cancellation fails at once with WEFT_ECANCELED, unless the task is
 * shielded (weft_task_shield), when its waits work and the cancellation
 * waits for the first wait after the shield. */
#include "internal.h"

#include <string.h>

size_t weft_task_size(void) { return sizeof(weft_task_t); }

weft_promise_t *weft_task_promise(weft_task_t *t) {
  return t ? &t->promise : NULL;
}

weft_task_t *weft_promise_task(weft_promise_t *p) {
  return p && p->is_task ? WEFT__CONTAINER(p, weft_task_t, promise) : NULL;
}

int weft_task_cancelled(const weft_task_t *t) { return t && t->cancelled; }

static void run_task(weft_loop_t *loop, weft__run *r) {
  weft_task_t *t = WEFT__CONTAINER(r, weft_task_t, run);
  weft_task_t *outer = loop->resuming;
  int status = t->status;
  t->state = WEFT__TASK_RUNNING;
  t->undo = NULL;
  t->keep = 0;
  t->started = 1;
  loop->resuming = t;
  t->promise.host->resume(t, status, t->promise.obj);
  loop->resuming = outer;
  if (t->state == WEFT__TASK_RUNNING)
    t->state = t->promise.state == WEFT_PROMISE_PENDING ? WEFT__TASK_IDLE
                                                        : WEFT__TASK_DONE;
  weft_promise_unref(&t->promise); /* the queued resume's reference */
}

int weft_task_handoff(weft_task_t *t, weft_handoff_cb may_run, void *data,
                      int *status) {
  weft_loop_t *loop;
  int resumed = 0;
  if (!t || !status || t->state != WEFT__TASK_WAITING) return 0;
  loop = t->promise.loop;
  /* Only the task the dispatch pass resumed, and not from inside another
   * handoff: a task that this one runs meanwhile suspends as usual. */
  if (loop->resuming != t || loop->handing) return 0;
  loop->handing = 1;
  while (!weft__list_empty(&loop->ready) && loop->budget > 0 &&
         !weft__loop_stopping(loop)) {
    weft__run *r = WEFT__CONTAINER(loop->ready.next, weft__run, link);
    if (r == &t->run) { /* its own resume: it goes on where it stands */
      weft__list_remove(&r->link);
      loop->budget--;
      *status = t->status;
      t->state = WEFT__TASK_RUNNING;
      t->undo = NULL;
      t->keep = 0;
      weft_promise_unref(&t->promise); /* the queued resume's reference */
      resumed = 1;
      break;
    }
    if (r->run != run_task ||
        (may_run && !may_run(WEFT__CONTAINER(r, weft_task_t, run), data)))
      break;
    weft__list_remove(&r->link);
    loop->budget--;
    r->run(loop, r);
    loop->resuming = t;
  }
  loop->handing = 0;
  return resumed;
}

/* Queues the task's resume with status. */
static void queue(weft_task_t *t, int status) {
  t->status = status;
  t->state = WEFT__TASK_QUEUED;
  weft_promise_ref(&t->promise);
  weft__sched_push(t->promise.loop, &t->run);
}

/* Clears the fields of the wait of this kind about to start: they share
 * their bytes with the other kind's (internal.h). */
static void begin_wait(weft_task_t *t, int kind) {
  if (kind == WEFT__WAIT_PROMISE) {
    memset(&t->cont, 0, sizeof t->cont);
  } else {
    t->timer = t->rwatch = t->wwatch = 0;
    t->withdraw = NULL;
    t->wdata = NULL;
  }
  t->wait = (unsigned char)kind;
}

/* Ends the pending wait: withdraws what would have ended it. */
static void end_wait(weft_task_t *t) {
  weft_loop_t *loop = t->promise.loop;
  switch (t->wait) {
  case WEFT__WAIT_NONE:
    break;
  case WEFT__WAIT_PROMISE:
    weft_cont_cancel(&t->cont);
    break;
  default:
    if (t->wait == WEFT__WAIT_CUSTOM && t->withdraw) t->withdraw(t, t->wdata);
    if (t->timer) weft_watch_cancel(loop, t->timer);
    if (t->rwatch) weft_watch_cancel(loop, t->rwatch);
    if (t->wwatch) weft_watch_cancel(loop, t->wwatch);
    t->timer = t->rwatch = t->wwatch = 0;
    t->withdraw = NULL;
  }
  t->wait = WEFT__WAIT_NONE;
}

/* The wait ended (its withdraw hook must not run: what ended it already
 * let go of the task) and the task resumes with status. */
static void woken(weft_task_t *t, int status) {
  if (t->state != WEFT__TASK_WAITING) return;
  if (t->wait != WEFT__WAIT_PROMISE) t->withdraw = NULL;
  end_wait(t);
  t->undo = NULL; /* (a sync wake sets it after: weft__task_wake_sync) */
  queue(t, status);
}

int weft_task_wake(weft_task_t *t, int status) {
  if (!t || t->state != WEFT__TASK_WAITING || t->wait != WEFT__WAIT_CUSTOM)
    return WEFT_ENOENT;
  woken(t, status);
  return 0;
}

int weft__task_wake_sync(weft_task_t *t, int status, weft_withdraw_cb undo) {
  if (weft_task_wake(t, status) != 0) return WEFT_ENOENT;
  t->undo = undo;
  t->keep = !undo && status >= 0;
  return 0;
}

/* The task's promise was cancelled. */
void weft__task_cancel_hook(weft_promise_t *p, void *data) {
  weft_task_t *t = data;
  (void)p;
  t->cancelled = 1;
  if (!t->started) {
    /* It never ran: cancelled at once; its first resume tells the host
     * (WEFT_ECANCELED), which runs none of the body. */
    t->status = WEFT_ECANCELED;
    weft__promise_settle_failed(&t->promise, WEFT_PROMISE_CANCELLED,
                                WEFT_ECANCELED, NULL);
    return;
  }
  if (t->shield) return; /* the first wait after the shield raises it */
  if (t->state == WEFT__TASK_WAITING) {
    end_wait(t);
    queue(t, WEFT_ECANCELED);
  } else if (t->state == WEFT__TASK_QUEUED && t->status >= 0 && !t->keep) {
    /* Woken, not resumed yet: it gets the cancellation instead, and what
     * a sync object handed it (a lock, a permit, a value) goes back.  (A
     * wake that cannot be given back, a value delivered for a sender,
     * stays: the cancellation comes at the next wait.) */
    if (t->undo) t->undo(t, t->wdata);
    t->undo = NULL;
    t->status = WEFT_ECANCELED;
  }
}

int weft_task_init(weft_task_t *t, weft_loop_t *loop, const weft_host_t *host,
                   void *obj) {
  int err;
  if (!t || !loop || !host || !host->resume) return WEFT_EINVAL;
  memset(t, 0, sizeof *t);
  err = weft_promise_init(&t->promise, loop, host, obj);
  if (err) return err;
  t->run.run = run_task;
  t->promise.is_task = 1;
  weft__promise_self_cancel(&t->promise);
  /* (weft_promise_cancel calls weft__task_cancel_hook for a task) */
  queue(t, 0);
  return 0;
}

void weft_task_fini(weft_task_t *t) {
  if (!t || t->state == WEFT__TASK_GONE) return;
  if (t->state == WEFT__TASK_WAITING) end_wait(t);
  if (t->state == WEFT__TASK_QUEUED) weft__list_remove(&t->run.link);
  t->state = WEFT__TASK_GONE;
  weft_promise_fini(&t->promise);
}

/* How deep shields may nest (weft_task_t.shield's bits). */
#define MAX_SHIELD ((1u << 21) - 1)

int weft_task_shield(weft_task_t *t, int delta) {
  if (!t || (delta < 0 && t->shield < (unsigned)-delta) ||
      (delta > 0 && MAX_SHIELD - t->shield < (unsigned)delta))
    return WEFT_EINVAL;
  t->shield += (unsigned)delta;
  return (int)t->shield;
}

/* Whether the task may start a wait: 0, or why not. */
static int may_wait(weft_task_t *t) {
  if (!t || t->state == WEFT__TASK_WAITING || t->state == WEFT__TASK_QUEUED ||
      t->state >= WEFT__TASK_DONE)
    return WEFT_EINVAL;
  if (t->cancelled && !t->shield) return WEFT_ECANCELED;
  return 0;
}

static void awaited(weft_promise_t *p, void *data) {
  (void)p;
  woken(data, 0);
}

int weft_task_await(weft_task_t *t, weft_promise_t *p) {
  int err = may_wait(t);
  if (err) return err;
  if (!p) return WEFT_EINVAL;
  if (p->state != WEFT_PROMISE_PENDING) return 0;
  begin_wait(t, WEFT__WAIT_PROMISE);
  t->state = WEFT__TASK_WAITING;
  weft_promise_watch(p, &t->cont, awaited, t);
  t->cont.at_settle = 1;
  return 1;
}

static void timer_fired(weft_loop_t *loop, weft_id_t id, int arg,
                        void *data) {
  weft_task_t *t = data;
  (void)loop, (void)id, (void)arg;
  t->timer = 0; /* a once timer is already gone */
  if (t->wait == WEFT__WAIT_CUSTOM && t->withdraw) t->withdraw(t, t->wdata);
  t->withdraw = NULL;
  woken(t, t->wait == WEFT__WAIT_TIMER ? 0 : WEFT_ETIMEDOUT);
}

int weft_task_sleep(weft_task_t *t, uint64_t ms) {
  int err = may_wait(t);
  if (err) return err;
  begin_wait(t, WEFT__WAIT_TIMER);
  err = weft_once(t->promise.loop, ms, timer_fired, t, 0, &t->timer);
  if (err) {
    t->timer = 0;
    end_wait(t);
    return err;
  }
  t->state = WEFT__TASK_WAITING;
  return 1;
}

static void fd_ready(weft_loop_t *loop, weft_id_t id, int fd, void *data) {
  weft_task_t *t = data;
  (void)loop, (void)fd;
  woken(t, id == t->rwatch ? WEFT_READABLE : WEFT_WRITABLE);
}

int weft_task_wait_fd(weft_task_t *t, int fd, int events, int64_t timeout_ms) {
  weft_loop_t *loop;
  int err = may_wait(t);
  if (err) return err;
  if (!(events & (WEFT_READABLE | WEFT_WRITABLE)) ||
      (events & ~(WEFT_READABLE | WEFT_WRITABLE)))
    return WEFT_EINVAL;
  loop = t->promise.loop;
  begin_wait(t, WEFT__WAIT_FD);
  if (events & WEFT_READABLE)
    err = weft_readable(loop, fd, fd_ready, t, 0, &t->rwatch);
  if (!err && (events & WEFT_WRITABLE))
    err = weft_writable(loop, fd, fd_ready, t, 0, &t->wwatch);
  if (!err && timeout_ms >= 0)
    err = weft_once(loop, (uint64_t)timeout_ms, timer_fired, t, 0, &t->timer);
  if (err) {
    end_wait(t);
    return err;
  }
  t->state = WEFT__TASK_WAITING;
  return 1;
}

int weft_task_suspend(weft_task_t *t, int64_t timeout_ms,
                      weft_withdraw_cb withdraw, void *data) {
  int err = may_wait(t);
  if (err) return err;
  begin_wait(t, WEFT__WAIT_CUSTOM);
  if (timeout_ms >= 0) {
    err = weft_once(t->promise.loop, (uint64_t)timeout_ms, timer_fired, t, 0,
                    &t->timer);
    if (err) {
      t->timer = 0;
      end_wait(t);
      return err;
    }
  }
  t->withdraw = withdraw;
  t->wdata = data;
  t->state = WEFT__TASK_WAITING;
  return 1;
}

int weft_task_waiting(const weft_task_t *t) {
  return t && t->state == WEFT__TASK_WAITING;
}

weft_loop_t *weft_task_get_loop(const weft_task_t *t) {
  return t ? t->promise.loop : NULL;
}

void *weft_task_get_obj(const weft_task_t *t) {
  return t ? t->promise.obj : NULL;
}
