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
  weft__ctx ctx;        /* the fiber's saved context */
  weft__ctx caller;     /* the resumer's, while the fiber runs */
  weft__stack *stack;
  weft_fiber_fn fn;
  void *arg;
  void *transfer;       /* the value crossing the current switch */
  weft_fiber_t *prev;   /* the fiber current before this one resumed */
  int status;
  void *data;
#ifdef WEFT_ASAN
  const void *caller_bottom; /* the resumer's stack, for ASan */
  size_t caller_size;
#endif
};

static _Thread_local weft_fiber_t *current;

/* Switches from the running context (saved in save) to to: into fiber f
 * when entering, else out of it to its resumer; dying is set when the
 * running fiber will never be resumed. */
static void switch_ctx(weft_fiber_t *f, weft__ctx *save, weft__ctx *to,
                       int entering, int dying) {
#ifdef WEFT_ASAN
  void *fake = NULL;
  const void *bottom = entering ? f->stack->lo : f->caller_bottom;
  size_t size = entering ? f->stack->size : f->caller_size;
  __sanitizer_start_switch_fiber(dying ? NULL : &fake, bottom, size);
  weft__ctx_switch(save, to);
  /* Back in this context.  On the fiber's side, ASan reports the stack we
   * came from: the resumer's, which may differ from last time. */
  __sanitizer_finish_switch_fiber(fake, entering ? NULL : &f->caller_bottom,
                                  entering ? NULL : &f->caller_size);
#else
  (void)f, (void)entering, (void)dying;
  weft__ctx_switch(save, to);
#endif
}

static void fiber_main(void *p) {
  weft_fiber_t *f = p;
#ifdef WEFT_ASAN
  __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
  f->transfer = f->fn(f, f->arg);
  f->status = WEFT_FIBER_TERMINATED;
  switch_ctx(f, &f->ctx, &f->caller, 0, 1);
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
  f->transfer = in;
  f->status = WEFT_FIBER_RUNNING;
  f->prev = current;
  current = f;
  switch_ctx(f, &f->caller, &f->ctx, 1, 0);
  current = f->prev;
  f->prev = NULL;
  if (out) *out = f->transfer;
  return 0;
}

int weft_fiber_suspend(void *out, void **in) {
  weft_fiber_t *f = current;
  if (!f) return WEFT_EINVAL;
  f->transfer = out;
  f->status = WEFT_FIBER_SUSPENDED;
  switch_ctx(f, &f->ctx, &f->caller, 0, 0);
  if (in) *in = f->transfer;
  return 0;
}

weft_fiber_t *weft_fiber_current(void) { return current; }

int weft_fiber_status(const weft_fiber_t *f) {
  return f ? f->status : WEFT_EINVAL;
}

void *weft_fiber_get_data(const weft_fiber_t *f) { return f ? f->data : NULL; }

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
