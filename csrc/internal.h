/* internal.h: weft__ declarations shared by the core's files, by module.
 * Nothing here is part of the ABI. */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include "weft.h"

#include <stdint.h>
#include <uv.h>

#include "arch/context.h"

#define WEFT__CONTAINER(ptr, type, field)                                     \
  ((type *)((char *)(ptr) - offsetof(type, field)))

/* ---- list: intrusive circular doubly linked lists ---------------------- */

typedef struct weft__link {
  struct weft__link *prev, *next;
} weft__link;

static inline void weft__list_init(weft__link *head) {
  head->prev = head->next = head;
}

static inline int weft__list_empty(const weft__link *head) {
  return head->next == head;
}

/* Inserts node before pos (at the tail when pos is the head). */
static inline void weft__list_insert_before(weft__link *pos,
                                            weft__link *node) {
  node->prev = pos->prev;
  node->next = pos;
  pos->prev->next = node;
  pos->prev = node;
}

static inline void weft__list_push(weft__link *head, weft__link *node) {
  weft__list_insert_before(head, node);
}

static inline void weft__list_remove(weft__link *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = node;
}

static inline weft__link *weft__list_pop(weft__link *head) {
  weft__link *node = head->next;
  weft__list_remove(node);
  return node;
}

/* Moves every node of src to the end of dst (front when at_front); src
 * ends empty. */
static inline void weft__list_splice(weft__link *dst, weft__link *src,
                                     int at_front) {
  weft__link *first = src->next, *last = src->prev, *at;
  if (first == src) return;
  at = at_front ? dst->next : dst; /* insert before this node */
  first->prev = at->prev;
  at->prev->next = first;
  last->next = at;
  at->prev = last;
  weft__list_init(src);
}

/* ---- time -------------------------------------------------------------- */

#include <time.h>


/* The CLOCK_MONOTONIC time ms from now, for timed condition waits (their
 * condition variables are made with pthread_condattr_setclock). */
static inline struct timespec weft__deadline(uint64_t ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += (time_t)(ms / 1000);
  t.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

/* ---- alloc ------------------------------------------------------------- */

void *weft__malloc(size_t size);
void *weft__calloc(size_t count, size_t size);
void *weft__realloc(void *ptr, size_t size);
void weft__free(void *ptr);
/* Counts live loops so the allocator cannot change under them. */
void weft__alloc_loops(int delta);

/* ---- error ------------------------------------------------------------- */

/* Maps a libuv error code to a WEFT_E* code. */
int weft__err_from_uv(int uverr);
/* Maps an errno value (positive) to a WEFT_E* code. */
int weft__err_from_errno(int e);

/* ---- stack: fiber stacks and their pool --------------------------------- */

typedef struct weft__stack {
  void *base; /* the mapping, guard page first */
  void *lo;   /* the usable stack: [lo, lo + size) */
  size_t size;
  struct weft__stack *next; /* in the pool */
  unsigned vg_id;           /* valgrind's id for the stack */
} weft__stack;

/* A stack of size bytes (0: the default), from the pool or newly mapped.
 * Returns 0, WEFT_EINVAL for a size out of range, WEFT_ENOSTACK when the
 * kernel refuses another mapping, or WEFT_ENOMEM. */
int weft__stack_get(size_t size, weft__stack **out);
/* Returns a stack to the pool, or unmaps it when the pool is full. */
void weft__stack_put(weft__stack *s);

/* ---- fiber ------------------------------------------------------------- */

/* The task a fiber runs (sched.c), or NULL for a host's own fiber. */
void *weft__fiber_task(const weft_fiber_t *f);
void weft__fiber_set_task(weft_fiber_t *f, void *task);

/* ---- wheel: hierarchical timing wheel, 1 ms ticks, O(1) insert/fire --- */

#define WEFT__WHEEL_BITS 6
#define WEFT__WHEEL_SLOTS 64
#define WEFT__WHEEL_LEVELS 10
/* Due times are clamped to this (36 million years of loop time), so that
 * 10 levels of 6 bits hold every timer and block arithmetic cannot
 * overflow. */
#define WEFT__WHEEL_MAX_DUE (((uint64_t)1 << 60) - 1)

typedef struct weft__tnode {
  weft__link link;
  uint64_t due; /* absolute ms */
  uint64_t seq; /* orders nodes due at the same ms */
} weft__tnode;

typedef struct weft__wheel {
  uint64_t now; /* the first millisecond not yet processed */
  uint64_t bits[WEFT__WHEEL_LEVELS];
  weft__link slots[WEFT__WHEEL_LEVELS][WEFT__WHEEL_SLOTS];
} weft__wheel;

void weft__wheel_init(weft__wheel *w, uint64_t now);
int weft__wheel_empty(const weft__wheel *w);
/* Adds node; node->due must be >= w->now. */
void weft__wheel_insert(weft__wheel *w, weft__tnode *node);
/* Unlinks node from whatever list holds it, keeping the wheel's occupancy
 * bits exact when that list is one of the wheel's slots. */
void weft__wheel_unlink(weft__wheel *w, weft__tnode *node);
/* Moves every node due at or before now to the tail of out, ordered by
 * (due, seq), and marks the wheel processed through now. */
void weft__wheel_advance(weft__wheel *w, uint64_t now, weft__link *out);
/* A lower bound of the earliest due time (exact within 64 ms), or
 * UINT64_MAX when the wheel is empty. */
uint64_t weft__wheel_next(const weft__wheel *w);

/* ---- watch: the watcher registry --------------------------------------- */

enum {
  WEFT__W_ENABLED = 1,
  WEFT__W_REF = 2,
  /* a core-internal watcher (a stream's, a poll's timeout): no id of it
   * is ever handed out, and weft_loop_walk does not report it */
  WEFT__W_HIDDEN = 4
};

struct weft__fd;
struct weft__sig;

typedef struct weft__watch {
  weft_id_t id; /* 0 when the slot is free */
  uint8_t kind;
  uint8_t flags;
  weft_watch_cb cb;
  void *data;
  union {
    weft__link free_next;
    struct {
      weft__tnode node;
      uint64_t interval; /* once: the delay; every: the period */
    } timer;
    struct {
      weft__link link;
      uint64_t iter; /* first dispatch pass it may run in */
    } imm;
    struct {
      weft__link link; /* in the fd's watcher list */
      struct weft__fd *fdo;
      /* a poll: its timeout's hidden once watcher (0: none), the
       * WEFT_POLL* events asked, and what to report when that fires */
      weft_id_t timer;
      int events;
      int revents;
    } io;
    struct weft__sig *sig;
  } u;
} weft__watch;

/* 1 if a watcher with these flags keeps the loop alive. */
static inline int weft__watch_counts(int flags) {
  return (flags & (WEFT__W_ENABLED | WEFT__W_REF)) ==
         (WEFT__W_ENABLED | WEFT__W_REF);
}

/* Allocates a slot of the given kind; flags are WEFT_WATCH_* values.
 * Returns 0 or WEFT_ENOMEM. */
int weft__watch_new(weft_loop_t *loop, int kind, weft_watch_cb cb,
                    void *data, int flags, weft__watch **out);
/* Makes the id stale at once and returns the slot to the free list. */
void weft__watch_free(weft_loop_t *loop, weft__watch *w);
/* The live watcher with this id, or NULL. */
weft__watch *weft__watch_find(const weft_loop_t *loop, weft_id_t id);
/* Releases every slot chunk (the loop has no live watcher). */
void weft__watch_release(weft_loop_t *loop);

/* ---- sched: the loop's run queue ------------------------------------------ */

/* Something runnable from the loop's dispatch: a promise continuation or a
 * fiber to resume.  Queued in FIFO order, run only by the dispatch pass. */
typedef struct weft__run {
  weft__link link;
  void (*run)(weft_loop_t *loop, struct weft__run *r);
} weft__run;

/* Appends r to the loop's run queue. */
void weft__sched_push(weft_loop_t *loop, weft__run *r);
/* Runs the queue in FIFO order, including what the runs queue, up to a
 * budget per pass (the rest waits for the next iteration). */
void weft__sched_drain(weft_loop_t *loop);

/* ---- promise ------------------------------------------------------------ */

/* Where a continuation node is. */
enum { WEFT__CONT_IDLE = 0, WEFT__CONT_WAITING, WEFT__CONT_QUEUED };

struct weft_cont_s {
  weft__run run; /* run.link: in the promise's list, then the run queue */
  weft_promise_t *promise;
  weft_promise_cb cb;
  void *data;
  unsigned char where; /* WEFT__CONT_* */
  unsigned char owned; /* the core's (weft_promise_then): freed after */
  /* cb only queues a task's resume: run at once when the promise settles,
   * which puts the resume where the node would have gone, one hop
   * earlier (an await) */
  unsigned char at_settle;
};

/* What few promises need: a rejection's message, a payload, a cancel
 * hook.  A core promise has it in the same block; a host's gets it on
 * first use, so that a host promise that needs none of it (a Lua one) is
 * small. */
typedef struct weft__pext {
  char *message;
  void *payload; /* the value, or the error value */
  weft_free_cb free_payload;
  weft_promise_cb cancel_cb;
  void *cancel_data;
} weft__pext;

struct weft_promise_s {
  weft_loop_t *loop;
  const weft_host_t *host; /* NULL: the core's, reference counted */
  union {
    void *obj;     /* the host's object, for its hooks */
    size_t refs;   /* the core's: its reference count */
  };
  weft__pext *ext; /* NULL until needed (a host's) */
  int code;
  unsigned state : 2;
  /* A task, combinator or timeout settles itself once cancelled, when what
   * it runs or waits on has ended (self_cancel); meanwhile it is still
   * pending, and cancelling. */
  unsigned self_cancel : 1, cancelling : 1;
  unsigned finished : 1; /* a host's, after weft_promise_fini */
  unsigned is_task : 1;  /* the promise of a weft_task_t */
  unsigned ext_inline : 1; /* ext is in the promise's own block */
  weft__link conts;
};

/* Registers a continuation in a node of the core's, as weft_promise_then
 * does, and returns the node (NULL when out of memory), so that the
 * caller may withdraw it (weft_cont_cancel). */
weft_cont_t *weft__promise_then(weft_promise_t *p, weft_promise_cb cb,
                                void *data);
/* Makes p settle itself once cancelled (tasks, combinators, timeouts):
 * weft_promise_cancel runs its hook but leaves it pending, cancelling,
 * until its producer settles it; a fulfilment or a WEFT_ECANCELED
 * rejection then settles it as cancelled. */
void weft__promise_self_cancel(weft_promise_t *p);
/* Settles p as failed (state REJECTED or CANCELLED) with code and message
 * (copied; NULL: strerror), without running its cancel hook. */
int weft__promise_settle_failed(weft_promise_t *p, int state, int code,
                                const char *message);

/* ---- task --------------------------------------------------------------- */

enum { /* weft_task_t.state */
  WEFT__TASK_IDLE,    /* neither running, waiting nor queued */
  WEFT__TASK_RUNNING, /* in its host's resume */
  WEFT__TASK_WAITING,
  WEFT__TASK_QUEUED,  /* its resume is on the run queue */
  WEFT__TASK_DONE,    /* its promise has settled */
  WEFT__TASK_GONE     /* after weft_task_fini */
};

enum { /* weft_task_t.wait */
  WEFT__WAIT_NONE,
  WEFT__WAIT_PROMISE,
  WEFT__WAIT_TIMER,
  WEFT__WAIT_FD,
  WEFT__WAIT_CUSTOM /* weft_task_suspend, and the sync objects */
};

/* A task lives in its host's memory, one per coroutine or fiber, so it is
 * kept small: its host and object are its promise's, and the fields of
 * the two kinds of wait share their bytes (a wait starts by clearing its
 * own, see begin_wait in task.c). */
struct weft_task_s {
  weft_promise_t promise; /* its outcome, in the same memory */
  weft__run run;          /* its resume, while queued */
  int status; /* what the queued resume passes */
  unsigned state : 4, wait : 4;
  unsigned started : 1, cancelled : 1;
  unsigned keep : 1; /* a sync wake that a cancellation does not undo */
  unsigned shield : 21;
  union { /* the pending wait */
    weft_cont_t cont; /* WEFT__WAIT_PROMISE */
    struct {          /* every other wait */
      weft_id_t timer, wwatch;
      union {
        weft_id_t rwatch; /* a descriptor wait */
        /* after a sync wake, until the resume: gives back what the wake
         * handed over (a lock, a permit, a value), with wdata (a sync
         * wait has no descriptor; begin_wait clears both) */
        weft_withdraw_cb undo;
      };
      weft_withdraw_cb withdraw; /* WEFT__WAIT_CUSTOM: lets go of the task */
      void *wdata;
      /* a sync object's queue of waiting tasks (sync.c) */
      weft__link wlink;
      void *wslot; /* where a channel's value goes, or comes from */
    };
  };
};

/* The hook of a task's promise: cancels the task. */
void weft__task_cancel_hook(weft_promise_t *p, void *data);
/* The sync objects' waiting lists (sync.c): weft__sync_wait suspends t in
 * waiters (1, or why it cannot wait), weft__sync_first takes the first
 * waiter out (NULL: none), weft__sync_wake_all ends every wait. */
int weft__sync_wait(weft__link *waiters, weft_task_t *t, int64_t timeout_ms,
                    void *obj);
weft_task_t *weft__sync_first(weft__link *waiters);
void weft__sync_wake_all(weft__link *waiters, int status);
/* Ends a weft_task_suspend wait as weft_task_wake does, and records undo:
 * should the task be cancelled before its resume runs, undo(task, data)
 * gives back what the wake handed over (a lock, a permit, a value). */
int weft__task_wake_sync(weft_task_t *t, int status, weft_withdraw_cb undo);

/* ---- loop -------------------------------------------------------------- */

struct weft_loop_s {
  uv_loop_t *uv;
  uv_loop_t own_uv;
  int owns_uv;
  int running;      /* inside weft_loop_run */
  int open_handles; /* weft's handles not yet closed */
  int freeing;
  int walking;     /* weft_loop_walk in progress */
  int in_dispatch; /* inside a dispatch pass or I/O callback */
  void *data;
  uint64_t iter;      /* dispatch passes completed */
  uint64_t stop_iter; /* pass in which dispatch is stopped, or UINT64_MAX */

  uv_timer_t timer; /* wakes the loop for the wheel's next due time */
  uv_idle_t idle;   /* keeps the poll from blocking while work is due */
  uv_check_t check; /* the dispatch pass for timers and immediates */
  /* stops the loop when the pool job running it is cancelled (made the
   * first time a job runs the loop) */
  uv_async_t wake;
  int has_wake;
  uint64_t armed;   /* due time the uv timer is armed for, or UINT64_MAX */

  /* watcher slots, in chunks so their addresses never move */
  weft__watch **chunks;
  uint32_t nchunks;
  uint32_t used; /* slots ever handed out */
  weft__link free_slots;
  uint32_t live;

  weft__wheel wheel;
  weft__link expired; /* timers due before the wheel's now */
  weft__link imm;     /* enabled immediates, in order */
  weft__link sig_pending;
  weft__link ready;   /* the run queue (sched.c) */
  unsigned budget;    /* runs left in this dispatch pass (sched.c) */
  /* the task the dispatch pass is resuming, and whether it runs the queue
   * itself meanwhile (weft_task_handoff) */
  struct weft_task_s *resuming;
  int handing;
  /* what runs the queue inside a host's protected call (weft_loop_set_guard) */
  weft_guard_cb guard;
  void *guard_data;
  int guarding;
  uint64_t tasks;     /* live tasks and promises: weft_loop_free waits */
  weft__link unref_procs; /* running children that keep nothing alive */
  int nunref;             /* how many: their handles are open, not foreign */
  uint64_t seq;
  uint64_t nref; /* enabled, referenced timers and immediates */

  struct weft__fd **fds;
  int nfds;
  weft_unwatch_cb on_unwatch; /* told when a descriptor leaves the poller */
  void *unwatch_data;
};

/* Closes the handles of unreferenced children still running (process.c):
 * the loop is being freed, and nothing waits for them. */
void weft__process_orphan_all(weft_loop_t *loop);

/* True while dispatch is stopped for the current pass. */
static inline int weft__loop_stopping(const weft_loop_t *loop) {
  return loop->stop_iter == loop->iter;
}
/* Re-arms the uv timer, the idle handle and their refs after a change to
 * timers or immediates. */
void weft__loop_sched(weft_loop_t *loop);

/* ---- per-kind operations ----------------------------------------------- */
/* Each kind's sync applies a change of flags (enabled / ref) made by
 * watch.c; close ends the watcher's kind-specific state before the slot is
 * freed.  sync returns 0 or a WEFT_E* code. */

int weft__timer_sync(weft_loop_t *loop, weft__watch *w, int old_flags);
void weft__timer_close(weft_loop_t *loop, weft__watch *w);
/* Moves every due timer to out (expired ones first). */
void weft__timer_collect(weft_loop_t *loop, weft__link *out);
void weft__timer_fire(weft_loop_t *loop, weft__watch *w);

int weft__imm_sync(weft_loop_t *loop, weft__watch *w, int old_flags);
void weft__imm_close(weft_loop_t *loop, weft__watch *w);
void weft__imm_fire(weft_loop_t *loop, weft__watch *w);
/* Moves the queued immediates that may run in this pass to out. */
void weft__imm_collect(weft_loop_t *loop, weft__link *out);

int weft__io_sync(weft_loop_t *loop, weft__watch *w, int old_flags);
void weft__io_close(weft_loop_t *loop, weft__watch *w);
/* fd is about to be closed by weft: its pending polls fire with
 * WEFT_POLLNVAL from the next dispatch pass, and every other watcher on it
 * is cancelled, so that nothing watches a number the next open may reuse. */
void weft__io_fd_closing(weft_loop_t *loop, int fd);
/* Makes w (just created) internal: see WEFT__W_HIDDEN. */
void weft__watch_hide(weft_loop_t *loop, weft_id_t id);

int weft__signal_sync(weft_loop_t *loop, weft__watch *w, int old_flags);
void weft__signal_close(weft_loop_t *loop, weft__watch *w);
/* Delivers signals that arrived while dispatch was stopped. */
void weft__signal_flush(weft_loop_t *loop);

/* ---- stream: transports ------------------------------------------------ */
/* A transport sits between a stream's buffer and its descriptor (tls.c).
 * A stream with one reads and writes through it, and the transport moves
 * its own bytes with weft__stream_recv / weft__stream_send, so the read
 * buffer, the write queue, the waits and the close stay stream.c's. */
typedef struct weft__transport {
  /* Like read(2) into the stream's buffer: bytes, 0 at a clean end,
   * WEFT_EAGAIN (wait until readable), or an error. */
  int (*read)(void *data, void *buf, size_t len);
  /* weft_stream_write's contract. */
  int (*write)(void *data, const void *buf, size_t len, size_t *accepted);
  /* Whether a read may make progress without the descriptor. */
  int (*readable)(void *data);
  /* Before the stream's own shutdown: 0 or an error. */
  int (*shutdown)(void *data);
  /* The stream closes: last words (sent if the kernel takes them), then
   * free data. */
  void (*close)(void *data);
} weft__transport;

void weft__stream_set_transport(weft_stream_t *s, const weft__transport *t,
                                void *data);
/* The transport data of s if s is open and uses t, else NULL. */
void *weft__stream_transport(const weft_stream_t *s, const weft__transport *t);
/* One read(2) from the descriptor (none after a short one until it is
 * next reported readable): bytes, 0 at end of file, WEFT_EAGAIN, error. */
int weft__stream_recv(weft_stream_t *s, void *buf, size_t len);
/* Writes all of buf: to the kernel, the rest to the queue whatever its
 * limit.  Returns 0 or an error (one a queued write met, too). */
int weft__stream_send(weft_stream_t *s, const void *buf, size_t len);
/* The bytes the write queue can still take under its limit. */
size_t weft__stream_room(const weft_stream_t *s);

/* ---- jobs: a pool job's waits (thread.c, chan.c, loop.c) --------------- */
/* A thread running a pool job's function can be woken from its waits when
 * the job is cancelled: a blocking channel call returns WEFT_ECANCELED,
 * and weft_loop_run stops and returns it. */

/* The job this thread runs (a pool worker inside the job's function), or
 * NULL. */
weft_job_t *weft__job_current(void);
/* Notes that job blocks in ch (NULL: no longer), so that a cancellation
 * wakes it (weft__chan_interrupt); returns 1 if the job is cancelled. */
int weft__job_blocked(weft_job_t *job, weft_chan_t *ch);
/* Wakes every thread blocked in ch, to look at its job again. */
void weft__chan_interrupt(weft_chan_t *ch);
/* Notes that job runs loop (NULL: no longer), so that a cancellation stops
 * it (weft__loop_interrupt); returns 1 if the job is cancelled. */
int weft__job_runs(weft_job_t *job, weft_loop_t *loop);
/* Makes loop's wake handle (on its thread); 0 or a WEFT_E* code. */
int weft__loop_wake_init(weft_loop_t *loop);
/* Wakes loop from any thread: it stops if the job running it is cancelled. */
void weft__loop_interrupt(weft_loop_t *loop);

/* Every handle weft opens has data == loop and counts in open_handles; its
 * close callback calls this, which releases a loop whose free waited for
 * the host's loop. */
void weft__loop_handle_closed(weft_loop_t *loop);

#endif /* WEFT_INTERNAL_H */
