/* work.c: blocking work on libuv's thread pool, finished on the loop. */
#include "internal.h"

typedef struct work_req {
  uv_work_t req;
  weft_loop_t *loop;
  weft_work_fn work;
  weft_done_fn done;
  void *data;
} work_req;

static void run_work(uv_work_t *req) {
  work_req *w = WEFT__CONTAINER(req, work_req, req);
  w->work(w->data);
}

static void after_work(uv_work_t *req, int status) {
  work_req *w = WEFT__CONTAINER(req, work_req, req);
  weft_loop_t *loop = w->loop;
  weft_done_fn done = w->done;
  void *data = w->data;
  weft__free(w);
  loop->tasks--;
  if (done) done(loop, weft__err_from_uv(status), data);
}

int weft_work(weft_loop_t *loop, weft_work_fn work, weft_done_fn done,
              void *data) {
  work_req *w;
  int err;
  if (!loop || !work) return WEFT_EINVAL;
  w = weft__malloc(sizeof *w);
  if (!w) return WEFT_ENOMEM;
  w->loop = loop;
  w->work = work;
  w->done = done;
  w->data = data;
  err = uv_queue_work(loop->uv, &w->req, run_work, after_work);
  if (err) {
    weft__free(w);
    return weft__err_from_uv(err);
  }
  loop->tasks++; /* weft_loop_free waits for it */
  return 0;
}
