/* machine.h: a second host for the core's tasks, besides C fibers and the
 * Lua binding: hand-written state machines.  A machine's body is a
 * function called with (machine, status) each time the loop resumes it; it
 * keeps its place in m->pc, and waits by calling a weft_task_* wait and
 * returning.  It proves that the core's tasks need nothing of a coroutine:
 * the Lua binding uses the very same resume hook. */
#ifndef WEFT_TEST_MACHINE_H
#define WEFT_TEST_MACHINE_H

#include "test.h"

typedef struct machine machine;
typedef void (*machine_fn)(machine *m, int status);

struct machine {
  weft_task_t *task; /* weft_task_size() bytes of this host's memory */
  machine_fn body;
  int pc;            /* where the body goes on */
  int refs;          /* the core's references (retain / release) */
  int resumes;
  int statuses[16];  /* what each resume passed */
  void *arg;
  void *got;         /* a channel's item lands here */
  int ended;
};

static void machine_retain(void *obj) { ((machine *)obj)->refs++; }

static void machine_release(void *obj) {
  machine *m = obj;
  ASSERT_GT(m->refs, 0);
  m->refs--;
}

static void machine_resume(weft_task_t *task, int status, void *obj) {
  machine *m = obj;
  ASSERT(m->task == task);
  ASSERT_LT(m->resumes, 16);
  m->statuses[m->resumes++] = status;
  if (status == WEFT_ECANCELED && m->resumes == 1 && m->pc == 0) {
    /* cancelled before it started: runs none of its body */
    m->ended = 1;
    weft_promise_resolve(weft_task_promise(task), NULL, NULL);
    return;
  }
  m->body(m, status);
}

static const weft_host_t machine_host = {sizeof(weft_host_t), machine_retain,
                                         machine_release, machine_resume};

static inline machine *machine_new(weft_loop_t *loop, machine_fn body,
                                   void *arg) {
  machine *m = calloc(1, sizeof *m);
  ASSERT(m != NULL);
  m->task = calloc(1, weft_task_size());
  ASSERT(m->task != NULL);
  m->body = body;
  m->arg = arg;
  ASSERT_OK(weft_task_init(m->task, loop, &machine_host, m));
  return m;
}

/* The body ends: settles the task's promise (fulfilled, or as it was
 * cancelled). */
static inline void machine_end(machine *m) {
  m->ended = 1;
  weft_promise_resolve(weft_task_promise(m->task), NULL, NULL);
}

static inline void machine_free(machine *m) {
  ASSERT_EQ(m->refs, 0); /* the core holds it no longer */
  weft_task_fini(m->task);
  free(m->task);
  free(m);
}

#endif /* WEFT_TEST_MACHINE_H */
