/* process.c: child processes over uv_spawn.
 *
 * A process owns one uv_process_t.  Its exit callback runs once, from the
 * loop; weft_process_close before that detaches it: the handle stays open
 * until the child exits, so that libuv still reaps it, and is then closed
 * and freed.  It stays referenced meanwhile, as libuv's and node's
 * children do: an unreferenced handle in an idle loop would never see the
 * exit, since uv_run does not poll a loop with nothing referenced.
 *
 * weft_process_unref makes a running child keep nothing alive, neither
 * the loop's run nor its free: it leaves the loop's task count and joins
 * the loop's list of unreferenced children, whose handles a loop being
 * freed closes (the child goes on; its exit is nobody's business). */
#include "internal.h"

#include <string.h>

struct weft_process_s {
  uv_process_t proc;
  weft_loop_t *loop;
  weft_exit_cb exit_cb;
  void *data;
  int exited;
  int detached;
  int unref;        /* in loop->unref_procs, not counted in loop->tasks */
  weft__link link;
};

static void on_closed(uv_handle_t *h) {
  weft_process_t *p = WEFT__CONTAINER(h, weft_process_t, proc);
  weft_loop_t *loop = p->loop;
  if (!p->unref) loop->tasks--;
  weft__list_remove(&p->link);
  weft__free(p);
  weft__loop_handle_closed(loop);
}

static void on_child_exit(uv_process_t *proc, int64_t status, int signo) {
  weft_process_t *p = WEFT__CONTAINER(proc, weft_process_t, proc);
  p->exited = 1;
  weft_process_ref(p); /* an exited child holds nothing: back to the count */
  if (p->detached) {
    uv_close((uv_handle_t *)&p->proc, on_closed);
    return;
  }
  if (p->exit_cb) p->exit_cb(p, status, signo, p->data);
}

int weft_process_spawn(weft_loop_t *loop, const weft_process_options *opts,
                       weft_process_t **out) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  weft_process_t *p;
  int i, err;
  if (!loop || !opts || !out || opts->size < sizeof *opts || !opts->file ||
      !opts->args || (opts->flags & ~WEFT_PROCESS_DETACHED))
    return WEFT_EINVAL;
  p = weft__calloc(1, sizeof *p);
  if (!p) return WEFT_ENOMEM;
  memset(&o, 0, sizeof o);
  o.file = opts->file;
  o.args = opts->args;
  o.env = opts->env;
  o.cwd = opts->cwd;
  o.exit_cb = on_child_exit;
  for (i = 0; i < 3; i++) {
    if (opts->stdio[i] >= 0) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = opts->stdio[i];
    } else {
      stdio[i].flags = UV_IGNORE; /* the child gets /dev/null */
    }
  }
  o.stdio = stdio;
  o.stdio_count = 3;
  if (opts->flags & WEFT_PROCESS_DETACHED) o.flags |= UV_PROCESS_DETACHED;
  p->loop = loop;
  weft__list_init(&p->link);
  p->exit_cb = opts->exit_cb;
  p->data = opts->data;
  p->proc.data = loop;
  err = uv_spawn(loop->uv, &p->proc, &o);
  if (err) {
    /* libuv leaves the handle initialised even when spawning failed. */
    p->detached = 1;
    loop->tasks++;
    loop->open_handles++;
    uv_close((uv_handle_t *)&p->proc, on_closed);
    return weft__err_from_uv(err);
  }
  loop->tasks++; /* weft_loop_free waits until it is closed */
  loop->open_handles++;
  *out = p;
  return 0;
}

int weft_process_pid(const weft_process_t *p) {
  return p ? p->proc.pid : WEFT_EINVAL;
}

int weft_process_kill(weft_process_t *p, int signo) {
  if (!p) return WEFT_EINVAL;
  if (p->exited) return WEFT_ESRCH;
  return weft__err_from_uv(uv_process_kill(&p->proc, signo));
}

void weft_process_close(weft_process_t *p) {
  if (!p || p->detached) return;
  p->detached = 1;
  if (p->exited) uv_close((uv_handle_t *)&p->proc, on_closed);
}

int weft_process_ref(weft_process_t *p) {
  if (!p) return WEFT_EINVAL;
  if (p->unref) {
    p->unref = 0;
    p->loop->nunref--;
    weft__list_remove(&p->link);
    p->loop->tasks++;
    uv_ref((uv_handle_t *)&p->proc);
  }
  return 0;
}

int weft_process_unref(weft_process_t *p) {
  if (!p) return WEFT_EINVAL;
  if (!p->unref && !p->exited) {
    p->unref = 1;
    p->loop->nunref++;
    weft__list_push(&p->loop->unref_procs, &p->link);
    p->loop->tasks--;
    uv_unref((uv_handle_t *)&p->proc);
  }
  return 0;
}

void weft__process_orphan_all(weft_loop_t *loop) {
  while (!weft__list_empty(&loop->unref_procs)) {
    weft_process_t *p = WEFT__CONTAINER(weft__list_pop(&loop->unref_procs),
                                        weft_process_t, link);
    weft__list_init(&p->link);
    loop->nunref--;
    p->detached = 1;
    uv_close((uv_handle_t *)&p->proc, on_closed);
  }
}
