/* fiber.c: stackful fibers: a C function on its own stack that can suspend
 * from any depth of its call stack and be resumed with a value.
 *
 * A resume switches from the resumer's context to the fiber's; a suspend
 * (or the function returning) switches back to whoever resumed it, so
 * fibers nest: a fiber may resume another.  Under AddressSanitizer every
 * switch is announced (__sanitizer_start_switch_fiber before,
 * __sanitizer_finish_switch_fiber after) so ASan tracks which stack is
 * live; a finishing fiber passes NULL so ASan drops its fake stack.
 * Valgrind learns each stack in stack.c. */
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#ifdef WEFT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

struct weft_fiber_s {
  weft__ctx ctx;      /* the fiber's saved context */
  weft__ctx caller;   /* the resumer's, while the fiber runs */
  weft__stack *stack;
  weft_fiber_fn fn;
  void *arg;
  void **in_ptr;      /* where the pending suspend wants its value */
  void **out_ptr;     /* where the running resume wants its value */
  weft_fiber_t *prev; /* the fiber current before this one resumed */
  int status;
  void *data; /* the host's */
  void *task; /* the scheduler's (sched.c), never the host's data */
#ifdef WEFT_ASAN
  const void *caller_bottom; /* the resumer's stack, for ASan */
  size_t caller_size;
#endif
};

/* initial-exec: libweft is loaded at start-up (or as a dependency of the
 * Lua module), and the default model would call __tls_get_addr on every
 * switch. */
#if defined(__GNUC__)
static _Thread_local weft_fiber_t *current
    __attribute__((tls_model("initial-exec")));
#else
static _Thread_local weft_fiber_t *current;
#endif

/* Switches into fiber f (entering) or out of it to its resumer.  Both
 * sides do their bookkeeping before switching, never after, so that
 * without ASan the switch is a tail call: it returns straight to the
 * caller of weft_fiber_resume or weft_fiber_suspend, which keeps the CPU's
 * return-address prediction in step (a round trip costs about half as
 * much as with work after the switch).  Under ASan each switch is
 * announced first and finished after. */
static int switch_ctx(weft_fiber_t *f, int entering, int dying) {
#ifdef WEFT_ASAN
  void *fake = NULL;
  const void *bottom = entering ? f->stack->lo : f->caller_bottom;
  size_t size = entering ? f->stack->size : f->caller_size;
  __sanitizer_start_switch_fiber(dying ? NULL : &fake, bottom, size);
  if (entering)
    weft__ctx_switch(&f->caller, &f->ctx);
  else
    weft__ctx_switch(&f->ctx, &f->caller);
  /* Back in this context.  On the fiber's side, ASan reports the stack we
   * came from: the resumer's, which may differ from last time. */
  __sanitizer_finish_switch_fiber(fake, entering ? NULL : &f->caller_bottom,
                                  entering ? NULL : &f->caller_size);
  return 0;
#else
  (void)dying;
  return entering ? weft__ctx_switch(&f->caller, &f->ctx)
                  : weft__ctx_switch(&f->ctx, &f->caller);
#endif
}

static void fiber_main(void *p) {
  weft_fiber_t *f = p;
  void *result;
#ifdef WEFT_ASAN
  __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
  result = f->fn(f, f->arg);
  if (f->out_ptr) *f->out_ptr = result;
  f->status = WEFT_FIBER_TERMINATED;
  current = f->prev;
  switch_ctx(f, 0, 1);
  /* Never resumed again: weft_fiber_resume refuses a finished fiber. */
}

int weft_fiber_new(weft_fiber_fn fn, void *arg, size_t stack_size,
                   weft_fiber_t **out) {
  weft_fiber_t *f;
  int err;
  if (!fn || !out) return WEFT_EINVAL;
  f = weft__calloc(1, sizeof *f);
  if (!f) return WEFT_ENOMEM;
  err = weft__stack_get(stack_size, &f->stack);
  if (err) {
    weft__free(f);
    return err;
  }
  f->fn = fn;
  f->arg = arg;
  f->status = WEFT_FIBER_INIT;
  weft__ctx_make(&f->ctx, f->stack->lo, f->stack->size, fiber_main, f);
  *out = f;
  return 0;
}

int weft_fiber_resume(weft_fiber_t *f, void *in, void **out) {
  if (!f) return WEFT_EINVAL;
  if (f->status == WEFT_FIBER_RUNNING) return WEFT_EBUSY;
  if (f->status == WEFT_FIBER_TERMINATED) return WEFT_ECLOSED;
  if (f->in_ptr) *f->in_ptr = in; /* the first resume has no taker */
  f->in_ptr = NULL;
  f->out_ptr = out;
  f->status = WEFT_FIBER_RUNNING;
  f->prev = current;
  current = f;
  return switch_ctx(f, 1, 0);
}

int weft_fiber_suspend(void *out, void **in) {
  weft_fiber_t *f = current;
  if (!f) return WEFT_EINVAL;
  if (f->out_ptr) *f->out_ptr = out;
  f->out_ptr = NULL;
  f->in_ptr = in;
  f->status = WEFT_FIBER_SUSPENDED;
  current = f->prev;
  return switch_ctx(f, 0, 0);
}

weft_fiber_t *weft_fiber_current(void) { return current; }

int weft_fiber_status(const weft_fiber_t *f) {
  return f ? f->status : WEFT_EINVAL;
}

void *weft_fiber_get_data(const weft_fiber_t *f) { return f ? f->data : NULL; }

void *weft__fiber_task(const weft_fiber_t *f) { return f ? f->task : NULL; }

void weft__fiber_set_task(weft_fiber_t *f, void *task) { f->task = task; }

void weft_fiber_set_data(weft_fiber_t *f, void *data) {
  if (f) f->data = data;
}

int weft_fiber_free(weft_fiber_t *f) {
  if (!f) return 0;
  if (f->status == WEFT_FIBER_RUNNING) return WEFT_EBUSY;
  weft__stack_put(f->stack);
  weft__free(f);
  return 0;
}
