/* sync.c: mutex, semaphore and event for the tasks of every host.
 *
 * Each keeps a FIFO of waiting tasks (linked through the task's wlink) and
 * waits through weft_task_suspend, so a timeout or a cancellation withdraws
 * the task from the FIFO.  A wake hands the lock or the permit over to the
 * first waiter; should that task be cancelled before its resume runs, the
 * task machinery calls the undo, and the lock or permit goes on to the
 * next one: nothing is lost. */
#include "internal.h"

#include <string.h>

/* ---- waiting lists ------------------------------------------------------ */

static void withdraw(weft_task_t *t, void *data) {
  (void)data;
  weft__list_remove(&t->wlink);
}

int weft__sync_wait(weft__link *waiters, weft_task_t *t, int64_t timeout_ms,
                    void *obj) {
  int r = weft_task_suspend(t, timeout_ms, withdraw, obj);
  if (r == 1) weft__list_push(waiters, &t->wlink);
  return r;
}

weft_task_t *weft__sync_first(weft__link *waiters) {
  if (weft__list_empty(waiters)) return NULL;
  return WEFT__CONTAINER(weft__list_pop(waiters), weft_task_t, wlink);
}

/* Ends every wait of the list with status. */
void weft__sync_wake_all(weft__link *waiters, int status) {
  weft_task_t *t;
  while ((t = weft__sync_first(waiters)) != NULL)
    weft__task_wake_sync(t, status, NULL);
}

/* ---- mutex ------------------------------------------------------------------ */

struct weft_mutex_s {
  weft_loop_t *loop;
  weft_task_t *owner;
  int locked;
  weft__link waiters;
};

size_t weft_mutex_size(void) { return sizeof(weft_mutex_t); }

int weft_mutex_init(weft_mutex_t *m, weft_loop_t *loop) {
  if (!m || !loop) return WEFT_EINVAL;
  memset(m, 0, sizeof *m);
  m->loop = loop;
  weft__list_init(&m->waiters);
  return 0;
}

void weft_mutex_fini(weft_mutex_t *m) {
  if (m) weft__sync_wake_all(&m->waiters, WEFT_ECLOSED);
}

int weft_mutex_lock(weft_mutex_t *m, weft_task_t *t, int64_t timeout_ms) {
  if (!m || !t) return WEFT_EINVAL;
  if (m->locked) return weft__sync_wait(&m->waiters, t, timeout_ms, m);
  if (weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
  m->locked = 1;
  m->owner = t;
  return 0;
}

static void hand_lock(weft_mutex_t *m);

/* The task handed the lock was cancelled before it resumed: it goes on. */
static void undo_lock(weft_task_t *t, void *data) {
  (void)t;
  hand_lock(data);
}

static void hand_lock(weft_mutex_t *m) {
  weft_task_t *next = weft__sync_first(&m->waiters);
  if (!next) {
    m->locked = 0;
    m->owner = NULL;
    return;
  }
  m->owner = next;
  next->wdata = m;
  weft__task_wake_sync(next, 0, undo_lock);
}

int weft_mutex_unlock(weft_mutex_t *m) {
  if (!m) return WEFT_EINVAL;
  if (!m->locked) return WEFT_EPERM;
  hand_lock(m);
  return 0;
}

int weft_mutex_locked(const weft_mutex_t *m) { return m && m->locked; }

weft_task_t *weft_mutex_owner(const weft_mutex_t *m) {
  return m && m->locked ? m->owner : NULL;
}

/* ---- semaphore ----------------------------------------------------------- */

struct weft_sem_s {
  weft_loop_t *loop;
  size_t count;
  weft__link waiters;
};

size_t weft_sem_size(void) { return sizeof(weft_sem_t); }

int weft_sem_init(weft_sem_t *s, weft_loop_t *loop, size_t count) {
  if (!s || !loop) return WEFT_EINVAL;
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->count = count;
  weft__list_init(&s->waiters);
  return 0;
}

void weft_sem_fini(weft_sem_t *s) {
  if (s) weft__sync_wake_all(&s->waiters, WEFT_ECLOSED);
}

int weft_sem_acquire(weft_sem_t *s, weft_task_t *t, int64_t timeout_ms) {
  if (!s || !t) return WEFT_EINVAL;
  if (s->count == 0) return weft__sync_wait(&s->waiters, t, timeout_ms, s);
  if (weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
  s->count--;
  return 0;
}

static void undo_permit(weft_task_t *t, void *data) {
  (void)t;
  weft_sem_release(data);
}

int weft_sem_release(weft_sem_t *s) {
  weft_task_t *next;
  if (!s) return WEFT_EINVAL;
  next = weft__sync_first(&s->waiters);
  if (!next) {
    s->count++;
    return 0;
  }
  next->wdata = s;
  weft__task_wake_sync(next, 0, undo_permit);
  return 0;
}

size_t weft_sem_count(const weft_sem_t *s) { return s ? s->count : 0; }

/* ---- event ----------------------------------------------------------------- */

struct weft_event_s {
  weft_loop_t *loop;
  int set;
  weft__link waiters;
};

size_t weft_event_size(void) { return sizeof(weft_event_t); }

int weft_event_init(weft_event_t *e, weft_loop_t *loop) {
  if (!e || !loop) return WEFT_EINVAL;
  memset(e, 0, sizeof *e);
  e->loop = loop;
  weft__list_init(&e->waiters);
  return 0;
}

void weft_event_fini(weft_event_t *e) {
  if (e) weft__sync_wake_all(&e->waiters, WEFT_ECLOSED);
}

int weft_event_wait(weft_event_t *e, weft_task_t *t, int64_t timeout_ms) {
  if (!e || !t) return WEFT_EINVAL;
  if (!e->set) return weft__sync_wait(&e->waiters, t, timeout_ms, e);
  if (weft_task_cancelled(t) && !t->shield) return WEFT_ECANCELED;
  return 0;
}

int weft_event_set(weft_event_t *e) {
  if (!e) return WEFT_EINVAL;
  e->set = 1;
  weft__sync_wake_all(&e->waiters, 0);
  return 0;
}

int weft_event_clear(weft_event_t *e) {
  if (!e) return WEFT_EINVAL;
  e->set = 0;
  return 0;
}

int weft_event_is_set(const weft_event_t *e) { return e && e->set; }
