/* lthread.h: what thread.c (pools and jobs, on the loop's thread) and
 * worker.c (the workers' own Lua states) share; private to the two. */
#ifndef LTHREAD_H
#define LTHREAD_H

#include "lweft.h"

#include <pthread.h>
#include <stdatomic.h>

/* How a pool's workers make their Lua states: the creator's package paths
 * and the init module (NULL: none).  Freed once the pool's threads are
 * gone. */
typedef struct lthread_cfg {
  char *path, *cpath, *init;
} lthread_cfg;

/* A job: its message in, its results out, and the task that waits.  The
 * loop's thread owns it; the worker reads msg and writes res and ok
 * before its done callback runs. */
typedef struct ljob {
  lweft_state *st;
  weft_job_t *job;    /* NULL once its done callback ran */
  struct lpool *pool; /* the pool's userdata, while the job is live */
  struct ljob *prev, *next; /* in the pool's list of live jobs */
  /* the worker's state while the job's function runs there, under mu:
   * a cancellation sets its hook */
  pthread_mutex_t mu;
  lua_State *running_on;
  /* blocks of weft_chan_realloc (msg is freed by the worker once decoded,
   * res by the loop's side) */
  char *msg, *res;
  size_t len, rlen;
  int ok;       /* res holds results (else the error) */
  int status;   /* what the core's done callback got */
  int done_ran; /* its done callback ran */
  int lua_live; /* its handle is not collected */
  lweft_iowait iow; /* the task waiting for it */
} ljob;

/* The workers' side (worker.c), the pool's thread_init, thread_exit and
 * job function: ud is the pool's lthread_cfg, arg the ljob. */
void *lthread_worker_init(void *ud);
void lthread_worker_exit(void *thread_data, void *ud);
int lthread_run_job(weft_job_t *job, void *thread_data, void *arg);
/* Stops the Lua code running on a worker's state at its next instruction
 * (a count hook; lua_sethook may be called from another thread). */
void lthread_interrupt(lua_State *worker_L);
/* weft.thread.id() of L's state: 0 outside workers. */
int lthread_id(lua_State *L);

#endif /* LTHREAD_H */
