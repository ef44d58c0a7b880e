/* loop.c: the weft loop over one uv_loop_t, and its dispatch pass.
 *
 * Timers and immediates fire from one uv_check handle, after the poll for
 * I/O, so that each pass takes a batch (every due timer, every queued
 * immediate) and anything created by its callbacks waits for the next
 * iteration.  A uv_timer armed for the wheel's next due time wakes the poll,
 * and a uv_idle handle keeps the poll from blocking while work is already
 * due.  The same pass then drains the run queue (sched.c): promise
 * continuations and tasks to resume.  The timer is never armed with a zero timeout: libuv 1.44 would run
 * it again in the same timer pass, starving I/O. */
#include "internal.h"

#include <stdlib.h>

static void on_timer(uv_timer_t *h) {
  weft_loop_t *loop = h->data;
  loop->armed = UINT64_MAX; /* libuv stopped the one-shot timer */
  weft__loop_sched(loop);
}

static void on_idle(uv_idle_t *h) { (void)h; }

static void on_check(uv_check_t *h) {
  weft_loop_t *loop = h->data;
  weft__link timers, imms;
  loop->in_dispatch++;
  if (!weft__loop_stopping(loop)) {
    weft__signal_flush(loop);
    weft__list_init(&timers);
    weft__list_init(&imms);
    weft__timer_collect(loop, &timers);
    weft__imm_collect(loop, &imms);
    while (!weft__list_empty(&timers) && !weft__loop_stopping(loop))
      weft__timer_fire(loop, WEFT__CONTAINER(weft__list_pop(&timers),
                                             weft__watch, u.timer.node.link));
    /* After a stop, what was due stays due and goes first next time. */
    weft__list_splice(&loop->expired, &timers, 1);
    while (!weft__list_empty(&imms) && !weft__loop_stopping(loop))
      weft__imm_fire(loop, WEFT__CONTAINER(weft__list_pop(&imms),
                                           weft__watch, u.imm.link));
    weft__list_splice(&loop->imm, &imms, 1);
    weft__sched_drain(loop);
  }
  loop->iter++;
  loop->in_dispatch--;
  weft__loop_sched(loop);
}

void weft__loop_sched(weft_loop_t *loop) {
  uint64_t now, next;
  if (loop->freeing) return;
  now = uv_now(loop->uv);
  next = weft__wheel_next(&loop->wheel);
  if (!weft__list_empty(&loop->expired) || !weft__list_empty(&loop->imm) ||
      !weft__list_empty(&loop->sig_pending) ||
      !weft__list_empty(&loop->ready) || next <= now) {
    if (!uv_is_active((uv_handle_t *)&loop->idle))
      uv_idle_start(&loop->idle, on_idle);
  } else if (uv_is_active((uv_handle_t *)&loop->idle)) {
    uv_idle_stop(&loop->idle);
  }
  if (next == UINT64_MAX || next <= now) {
    if (loop->armed != UINT64_MAX) {
      uv_timer_stop(&loop->timer);
      loop->armed = UINT64_MAX;
    }
  } else if (next != loop->armed) {
    uv_timer_start(&loop->timer, on_timer, next - now, 0);
    loop->armed = next;
  }
  if (loop->nref || !weft__list_empty(&loop->ready)) {
    uv_ref((uv_handle_t *)&loop->timer);
    uv_ref((uv_handle_t *)&loop->idle);
  } else {
    uv_unref((uv_handle_t *)&loop->timer);
    uv_unref((uv_handle_t *)&loop->idle);
  }
}

static int init(weft_loop_t *loop, uv_loop_t *uv) {
  loop->uv = uv;
  loop->armed = UINT64_MAX;
  loop->stop_iter = UINT64_MAX;
  weft__list_init(&loop->free_slots);
  weft__list_init(&loop->expired);
  weft__list_init(&loop->imm);
  weft__list_init(&loop->sig_pending);
  weft__list_init(&loop->ready);
  weft__list_init(&loop->unref_procs);
  weft__wheel_init(&loop->wheel, uv_now(uv));
  uv_timer_init(uv, &loop->timer);
  uv_idle_init(uv, &loop->idle);
  uv_check_init(uv, &loop->check);
  loop->timer.data = loop->idle.data = loop->check.data = loop;
  loop->open_handles = 3;
  /* The check handle runs every iteration but never keeps a loop alive:
   * watchers do that through the timer and idle refs. */
  uv_check_start(&loop->check, on_check);
  uv_unref((uv_handle_t *)&loop->check);
  uv_unref((uv_handle_t *)&loop->timer);
  uv_unref((uv_handle_t *)&loop->idle);
  weft__alloc_loops(1);
  return 0;
}

int weft_loop_new(weft_loop_t **out) {
  weft_loop_t *loop;
  int err;
  if (!out) return WEFT_EINVAL;
  loop = weft__calloc(1, sizeof *loop);
  if (!loop) return WEFT_ENOMEM;
  err = uv_loop_init(&loop->own_uv);
  if (err) {
    weft__free(loop);
    return weft__err_from_uv(err);
  }
  loop->owns_uv = 1;
  init(loop, &loop->own_uv);
  *out = loop;
  return 0;
}

int weft_loop_new_uv(void *uv_loop, weft_loop_t **out) {
  weft_loop_t *loop;
  if (!uv_loop || !out) return WEFT_EINVAL;
  loop = weft__calloc(1, sizeof *loop);
  if (!loop) return WEFT_ENOMEM;
  init(loop, uv_loop);
  *out = loop;
  return 0;
}

static void release(weft_loop_t *loop) {
  weft__watch_release(loop);
  weft__free(loop->fds);
  weft__free(loop);
  weft__alloc_loops(-1);
}

void weft__loop_handle_closed(weft_loop_t *loop) {
  if (--loop->open_handles == 0 && loop->freeing && !loop->owns_uv)
    release(loop);
}

static void on_close(uv_handle_t *h) {
  weft__loop_handle_closed(h->data);
}

struct foreign {
  weft_loop_t *loop;
  int count;
};

/* Counts open libuv handles on our own uv loop that weft did not create.
 * With no live watcher, weft's only open handles are these three (the
 * descriptor and signal ones are closing); a host's handle may leave its
 * data field uninitialised, so it cannot tell them apart. */
static void count_foreign(uv_handle_t *h, void *arg) {
  struct foreign *f = arg;
  if (uv_is_closing(h) || h == (uv_handle_t *)&f->loop->timer ||
      h == (uv_handle_t *)&f->loop->idle ||
      h == (uv_handle_t *)&f->loop->check ||
      (f->loop->has_wake && h == (uv_handle_t *)&f->loop->wake))
    return;
  f->count++;
}

int weft_loop_free(weft_loop_t *loop) {
  if (!loop) return 0;
  if (loop->running || loop->in_dispatch || loop->freeing) return WEFT_EBUSY;
  if (loop->live || loop->tasks) return WEFT_EBUSY;
  if (loop->owns_uv) {
    struct foreign f = {loop, 0};
    uv_walk(loop->uv, count_foreign, &f);
    if (f.count > loop->nunref)
      return WEFT_EBUSY; /* the host's handles on weft_loop_uv */
  }
  loop->freeing = 1;
  weft__process_orphan_all(loop);
  uv_close((uv_handle_t *)&loop->timer, on_close);
  uv_close((uv_handle_t *)&loop->idle, on_close);
  uv_close((uv_handle_t *)&loop->check, on_close);
  if (loop->has_wake) uv_close((uv_handle_t *)&loop->wake, on_close);
  if (loop->owns_uv) {
    while (loop->open_handles > 0) uv_run(loop->uv, UV_RUN_DEFAULT);
    uv_loop_close(loop->uv);
    release(loop);
  }
  return 0;
}

/* A pool job's thread runs the loop: a cancellation of the job stops it
 * (the wake handle) and the run returns WEFT_ECANCELED. */
static void on_wake(uv_async_t *h) {
  weft_job_t *job = weft__job_current();
  if (job && weft_job_cancelled(job)) weft_loop_stop(h->data);
}

int weft__loop_wake_init(weft_loop_t *loop) {
  int err;
  if (loop->has_wake) return 0;
  err = uv_async_init(loop->uv, &loop->wake, on_wake);
  if (err) return weft__err_from_uv(err);
  loop->wake.data = loop;
  uv_unref((uv_handle_t *)&loop->wake);
  loop->has_wake = 1;
  loop->open_handles++;
  return 0;
}

void weft__loop_interrupt(weft_loop_t *loop) { uv_async_send(&loop->wake); }

int weft_loop_run(weft_loop_t *loop, weft_run_mode mode) {
  /* (A run that cannot block has no wait to interrupt: a cancelled job
   * may still tick its loop, to close what it leaves.) */
  weft_job_t *job = mode == WEFT_RUN_NOWAIT ? NULL : weft__job_current();
  int r;
  if (!loop || (mode != WEFT_RUN_DEFAULT && mode != WEFT_RUN_ONCE &&
                mode != WEFT_RUN_NOWAIT))
    return WEFT_EINVAL;
  if (loop->running || loop->in_dispatch || loop->freeing) return WEFT_EBUSY;
  if (job) {
    if ((r = weft__loop_wake_init(loop))) return r;
    if (weft__job_runs(job, loop)) return WEFT_ECANCELED;
  }
  loop->running = 1;
  r = uv_run(loop->uv, mode == WEFT_RUN_ONCE     ? UV_RUN_ONCE
                       : mode == WEFT_RUN_NOWAIT ? UV_RUN_NOWAIT
                                                 : UV_RUN_DEFAULT);
  loop->running = 0;
  loop->stop_iter = UINT64_MAX;
  if (job && weft__job_runs(job, NULL)) return WEFT_ECANCELED;
  return r ? 1 : 0;
}

int weft_loop_stop(weft_loop_t *loop) {
  if (!loop) return WEFT_EINVAL;
  loop->stop_iter = loop->iter;
  uv_stop(loop->uv);
  return 0;
}

uint64_t weft_loop_now(const weft_loop_t *loop) {
  return loop ? uv_now(loop->uv) : 0;
}

void weft_loop_update_time(weft_loop_t *loop) {
  if (loop) uv_update_time(loop->uv);
}

int weft_loop_alive(const weft_loop_t *loop) {
  if (!loop) return WEFT_EINVAL;
  return uv_loop_alive(loop->uv) ? 1 : 0;
}

int weft_loop_backend_fd(const weft_loop_t *loop) {
  if (!loop) return WEFT_EINVAL;
  return uv_backend_fd(loop->uv);
}

int weft_loop_backend_timeout(const weft_loop_t *loop) {
  if (!loop) return WEFT_EINVAL;
  return uv_backend_timeout(loop->uv);
}

void *weft_loop_uv(const weft_loop_t *loop) {
  return loop ? loop->uv : NULL;
}

void *weft_loop_get_data(const weft_loop_t *loop) {
  return loop ? loop->data : NULL;
}

void weft_loop_set_data(weft_loop_t *loop, void *data) {
  if (loop) loop->data = data;
}
