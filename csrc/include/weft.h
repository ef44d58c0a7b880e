/* weft.h: the one public header of the weft core, and its stable C ABI.
 *
 * No struct layouts, no libuv or Lua types cross this header: handles are
 * opaque, results are int codes (>= 0 success, < 0 a WEFT_E* code), and every
 * callback carries a void *data supplied by the caller.  Within a major
 * version symbols are only ever added; a changed contract gets a new name.
 * docs/c-api.md is the reference built from these comments. */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_EXTERN __attribute__((visibility("default")))
#else
#define WEFT_EXTERN /* nothing */
#endif

/* ---- Version ---------------------------------------------------------- */

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_HEX                                                      \
  ((WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH)

/* The version of the library actually loaded, as WEFT_VERSION_HEX would give
 * it.  Compare its major part (>> 16) with WEFT_VERSION_MAJOR to detect a
 * binary built against another major version. */
WEFT_EXTERN unsigned int weft_version(void);

/* The same version as a static string, "MAJOR.MINOR.PATCH". */
WEFT_EXTERN const char *weft_version_string(void);

/* ---- Errors ----------------------------------------------------------- */

/* Every error code weft returns, with its message.  Codes that have an errno
 * equivalent are that errno negated, as in libuv; weft's own codes start at
 * -5000.  Use the codes by name, never by number. */
#define WEFT_ERRNO_MAP(XX)                                                    \
  XX(E2BIG, "argument list too long")                                         \
  XX(EAGAIN, "resource temporarily unavailable")                              \
  XX(EBADF, "bad file descriptor")                                            \
  XX(EBUSY, "resource busy or locked")                                        \
  XX(ECANCELED, "operation canceled")                                         \
  XX(EEXIST, "already exists")                                                \
  XX(EINVAL, "invalid argument")                                              \
  XX(EIO, "i/o error")                                                        \
  XX(EMFILE, "too many open files")                                           \
  XX(ENFILE, "file table overflow")                                           \
  XX(ENOENT, "not found")                                                     \
  XX(ENOMEM, "not enough memory")                                             \
  XX(ENOSYS, "function not implemented")                                      \
  XX(ENOTSUP, "operation not supported")                                      \
  XX(EPERM, "operation not permitted")                                        \
  XX(ERANGE, "result out of range")                                           \
  XX(ETIMEDOUT, "timed out")                                                  \
  XX(EACCES, "permission denied")                                             \
  XX(EADDRINUSE, "address already in use")                                    \
  XX(EADDRNOTAVAIL, "address not available")                                  \
  XX(EAFNOSUPPORT, "address family not supported")                            \
  XX(ECONNABORTED, "software caused connection abort")                        \
  XX(ECONNREFUSED, "connection refused")                                      \
  XX(ECONNRESET, "connection reset by peer")                                  \
  XX(EHOSTUNREACH, "host is unreachable")                                     \
  XX(EINTR, "interrupted system call")                                        \
  XX(EISDIR, "illegal operation on a directory")                              \
  XX(EMSGSIZE, "message too long")                                            \
  XX(ENAMETOOLONG, "name too long")                                           \
  XX(ENETUNREACH, "network is unreachable")                                   \
  XX(ENOBUFS, "no buffer space available")                                    \
  XX(ENOSPC, "no space left on device")                                       \
  XX(ENOTCONN, "socket is not connected")                                     \
  XX(ENOTDIR, "not a directory")                                              \
  XX(ENOTEMPTY, "directory not empty")                                        \
  XX(ENOTSOCK, "socket operation on non-socket")                              \
  XX(EPIPE, "broken pipe")                                                    \
  XX(EROFS, "read-only file system")                                          \
  XX(ESPIPE, "invalid seek")                                                  \
  XX(ESRCH, "no such process")                                                \
  XX(EXDEV, "cross-device link not permitted")                                \
  XX(ECLOSED, "handle is closed")                                             \
  XX(EUNKNOWN, "unknown error")                                               \
  XX(ENOSTACK, "no fiber stack could be mapped (vm.max_map_count?)")          \
  XX(EAI_NONAME, "unknown node or service")                                   \
  XX(EAI_AGAIN, "temporary failure in name resolution")                       \
  XX(EAI_FAIL, "permanent failure in name resolution")                        \
  XX(EAI_FAMILY, "address family not supported by the resolver")             \
  XX(EAI_SERVICE, "service not available for socket type")                   \
  XX(ETLS, "TLS handshake or protocol failure")                              \
  XX(ECERT, "certificate verify failed")                                     \
  XX(ETRUNCATED, "stream truncated: end without TLS close_notify")        \
  XX(EHOST, "the host's code raised an error")

/* The codes.  The values come from the platform's errno.h (negated); the
 * weft-specific ones are fixed. */
enum {
  WEFT_E2BIG = -E2BIG,
  WEFT_EAGAIN = -EAGAIN,
  WEFT_EBADF = -EBADF,
  WEFT_EBUSY = -EBUSY,
  WEFT_ECANCELED = -ECANCELED,
  WEFT_EEXIST = -EEXIST,
  WEFT_EINVAL = -EINVAL,
  WEFT_EIO = -EIO,
  WEFT_EMFILE = -EMFILE,
  WEFT_ENFILE = -ENFILE,
  WEFT_ENOENT = -ENOENT,
  WEFT_ENOMEM = -ENOMEM,
  WEFT_ENOSYS = -ENOSYS,
  WEFT_ENOTSUP = -ENOTSUP,
  WEFT_EPERM = -EPERM,
  WEFT_ERANGE = -ERANGE,
  WEFT_ETIMEDOUT = -ETIMEDOUT,
  WEFT_EACCES = -EACCES,
  WEFT_EADDRINUSE = -EADDRINUSE,
  WEFT_EADDRNOTAVAIL = -EADDRNOTAVAIL,
  WEFT_EAFNOSUPPORT = -EAFNOSUPPORT,
  WEFT_ECONNABORTED = -ECONNABORTED,
  WEFT_ECONNREFUSED = -ECONNREFUSED,
  WEFT_ECONNRESET = -ECONNRESET,
  WEFT_EHOSTUNREACH = -EHOSTUNREACH,
  WEFT_EINTR = -EINTR,
  WEFT_EISDIR = -EISDIR,
  WEFT_EMSGSIZE = -EMSGSIZE,
  WEFT_ENAMETOOLONG = -ENAMETOOLONG,
  WEFT_ENETUNREACH = -ENETUNREACH,
  WEFT_ENOBUFS = -ENOBUFS,
  WEFT_ENOSPC = -ENOSPC,
  WEFT_ENOTCONN = -ENOTCONN,
  WEFT_ENOTDIR = -ENOTDIR,
  WEFT_ENOTEMPTY = -ENOTEMPTY,
  WEFT_ENOTSOCK = -ENOTSOCK,
  WEFT_EPIPE = -EPIPE,
  WEFT_EROFS = -EROFS,
  WEFT_ESPIPE = -ESPIPE,
  WEFT_ESRCH = -ESRCH,
  WEFT_EXDEV = -EXDEV,
  WEFT_ECLOSED = -5000,
  WEFT_EUNKNOWN = -5001,
  WEFT_ENOSTACK = -5002,
  WEFT_EAI_NONAME = -5003,
  WEFT_EAI_AGAIN = -5004,
  WEFT_EAI_FAIL = -5005,
  WEFT_EAI_FAMILY = -5006,
  WEFT_EAI_SERVICE = -5007,
  WEFT_ETLS = -5008,
  WEFT_ECERT = -5009,
  WEFT_ETRUNCATED = -5010,
  WEFT_EHOST = -5011 /* the error value is the host's (weft_promise_payload) */
};

/* The message for an error code ("bad file descriptor"); a static string.
 * An unknown code gives "unknown error". */
WEFT_EXTERN const char *weft_strerror(int err);

/* The name of an error code ("EBADF"); a static string.  An unknown code
 * gives "EUNKNOWN". */
WEFT_EXTERN const char *weft_err_name(int err);

/* ---- Allocator -------------------------------------------------------- */

typedef void *(*weft_malloc_func)(size_t size);
typedef void *(*weft_realloc_func)(void *ptr, size_t size);
typedef void *(*weft_calloc_func)(size_t count, size_t size);
typedef void (*weft_free_func)(void *ptr);

/* Routes every allocation weft makes through the given functions, which
 * must behave like their C library namesakes.  Call it before the first
 * weft_loop_new (or once every loop is freed): it returns WEFT_EBUSY while a
 * loop exists, WEFT_EINVAL if a function is NULL, and 0 on success.  libuv's
 * own allocations are not affected: a host that wants those too calls
 * uv_replace_allocator itself. */
WEFT_EXTERN int weft_replace_allocator(weft_malloc_func malloc_func,
                                       weft_realloc_func realloc_func,
                                       weft_calloc_func calloc_func,
                                       weft_free_func free_func);

/* ---- Types ------------------------------------------------------------ */

/* A reactor: one weft loop over one libuv loop. */
typedef struct weft_loop_s weft_loop_t;

/* A watcher id: slot and generation in one 64-bit value.  Ids are never
 * reused, so an id kept after its watcher ended is harmlessly "not found".
 * 0 is never a valid id. */
typedef uint64_t weft_id_t;

/* How weft_loop_run runs. */
typedef enum {
  WEFT_RUN_DEFAULT = 0, /* until no enabled, referenced watcher remains */
  WEFT_RUN_ONCE = 1,    /* one iteration, blocking for I/O if nothing is due */
  WEFT_RUN_NOWAIT = 2   /* one iteration that never blocks */
} weft_run_mode;

/* The kind of a watcher, as weft_watch_kind reports it. */
typedef enum {
  WEFT_KIND_IMMEDIATELY = 1,
  WEFT_KIND_ONCE = 2,
  WEFT_KIND_EVERY = 3,
  WEFT_KIND_READABLE = 4,
  WEFT_KIND_WRITABLE = 5,
  WEFT_KIND_SIGNAL = 6,
  WEFT_KIND_POLL = 7
} weft_kind;

/* Flags for the watcher constructors. */
enum {
  WEFT_WATCH_DISABLED = 1, /* create disabled; weft_watch_enable starts it */
  WEFT_WATCH_UNREF = 2     /* create without keeping the loop alive */
};

/* Called when a watcher fires.  arg is the descriptor for readable and
 * writable watchers, the signal number for signal watchers, and 0 for
 * timers and immediates.  data is the pointer given at creation. */
typedef void (*weft_watch_cb)(weft_loop_t *loop, weft_id_t id, int arg,
                              void *data);

/* Called once by weft_poll: revents holds the WEFT_POLL* events that are
 * ready, 0 when the timeout passed first. */
typedef void (*weft_poll_cb)(weft_loop_t *loop, weft_id_t id, int fd,
                             int revents, void *data);

/* Called when a descriptor leaves the loop's poller (weft_loop_on_unwatch). */
typedef void (*weft_unwatch_cb)(weft_loop_t *loop, int fd, void *data);

/* Called by weft_loop_walk once per live watcher. */
typedef void (*weft_walk_cb)(weft_loop_t *loop, weft_id_t id, void *data);

/* ---- Loop ------------------------------------------------------------- */

/* Creates a loop with its own libuv loop and stores it in *out.  Returns 0,
 * WEFT_EINVAL if out is NULL, or WEFT_ENOMEM. */
WEFT_EXTERN int weft_loop_new(weft_loop_t **out);

/* Creates a loop over a uv_loop_t the host already owns, passed as a
 * void * so this header stays free of libuv types.  weft adds a few
 * unreferenced handles to it: they never keep the host's loop alive.  The
 * host's loop must outlive the weft loop.  Returns 0, WEFT_EINVAL, or
 * WEFT_ENOMEM. */
WEFT_EXTERN int weft_loop_new_uv(void *uv_loop, weft_loop_t **out);

/* Frees a loop.  Refuses with WEFT_EBUSY, leaving the loop intact, while
 * any watcher is live: cancel them first (weft_loop_walk finds them).  Must
 * not be called from inside a callback of the same loop (WEFT_EBUSY).  For a
 * loop over a host's uv_loop_t the memory is released once the host's loop
 * has run the close callbacks of weft's handles; the host's loop itself is
 * left open.  weft_loop_free(NULL) returns 0. */
WEFT_EXTERN int weft_loop_free(weft_loop_t *loop);

/* Runs the loop in the given mode.  Returns 1 if referenced work remains
 * (RUN_ONCE / RUN_NOWAIT, or RUN_DEFAULT ended by weft_loop_stop), 0 if the
 * loop has nothing left to do, WEFT_EINVAL for a bad argument, or
 * WEFT_EBUSY when called from inside one of the loop's own callbacks.
 * Called by a pool job's function (on its worker), a run that may block
 * (RUN_DEFAULT, RUN_ONCE) stops as soon as the job is cancelled and returns
 * WEFT_ECANCELED (at once if it already is). */
WEFT_EXTERN int weft_loop_run(weft_loop_t *loop, weft_run_mode mode);

/* Asks the running loop to return.  No further callbacks run in the current
 * iteration; watchers that were due stay due and fire first when the loop
 * runs again, so nothing is lost.  Returns 0 or WEFT_EINVAL. */
WEFT_EXTERN int weft_loop_stop(weft_loop_t *loop);

/* The loop's time in milliseconds, cached at the start of each iteration
 * (and after each poll), as libuv's uv_now.  All delays count from it.
 * Returns 0 for a NULL loop. */
WEFT_EXTERN uint64_t weft_loop_now(const weft_loop_t *loop);

/* Refreshes the cached time from the monotonic clock, for a host that did
 * long work outside the loop before creating timers. */
WEFT_EXTERN void weft_loop_update_time(weft_loop_t *loop);

/* 1 if the loop has enabled, referenced watchers (or the host's own
 * referenced libuv handles, for a wrapped loop), else 0; WEFT_EINVAL for
 * NULL. */
WEFT_EXTERN int weft_loop_alive(const weft_loop_t *loop);

/* The loop's backend descriptor (epoll, kqueue...): readable whenever the
 * loop has something to do, so a host can put it in its own poller and call
 * weft_loop_run(loop, WEFT_RUN_NOWAIT) when it is.  WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_loop_backend_fd(const weft_loop_t *loop);

/* How long, in milliseconds, a host's poller may wait on the backend fd
 * before the loop has work due: 0 when something is ready now (and, as
 * libuv reports it, before the loop's first iteration or when nothing
 * referenced is alive), -1 when only I/O can wake it.  WEFT_EINVAL for
 * NULL. */
WEFT_EXTERN int weft_loop_backend_timeout(const weft_loop_t *loop);

/* The uv_loop_t under the loop, as a void *, for hosts that add their own
 * libuv handles to it.  NULL for a NULL loop. */
WEFT_EXTERN void *weft_loop_uv(const weft_loop_t *loop);

/* The host's pointer attached to the loop; NULL until set. */
WEFT_EXTERN void *weft_loop_get_data(const weft_loop_t *loop);

/* Attaches a host pointer to the loop.  weft never reads it. */
WEFT_EXTERN void weft_loop_set_data(weft_loop_t *loop, void *data);

/* Sets the function told each time a descriptor leaves the loop's poller:
 * its last watcher ended, or a stream on it was closed.  A host that polls
 * descriptors itself learns this way that one is weft's no more.  cb runs
 * inside the call that ended the watching; NULL removes it.  Returns 0 or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_loop_on_unwatch(weft_loop_t *loop, weft_unwatch_cb cb,
                                     void *data);

/* A function queued with weft_loop_queue. */
typedef void (*weft_queue_cb)(weft_loop_t *loop, void *data);

/* Queues cb(loop, data) on the loop's run queue, which its dispatch pass
 * drains in FIFO order together with promise continuations and tasks (a
 * binding resumes its own tasks this way).  Never runs cb from inside this
 * call.  Returns 0, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_loop_queue(weft_loop_t *loop, weft_queue_cb cb,
                                void *data);

/* 1 while the loop's run queue holds something to run, else 0. */
WEFT_EXTERN int weft_loop_ready(const weft_loop_t *loop);

/* What runs a pass of the run queue inside a host's protected call. */
typedef void (*weft_guard_cb)(weft_loop_t *loop, void *data);

/* For a host whose hooks may unwind (a Lua error, a C++ exception): each
 * dispatch pass calls guard(loop, data) instead of running the run queue,
 * and the guard calls weft_loop_drain inside its protected call, so that
 * one protected call covers a whole pass instead of one per resume.  An
 * error the guard catches ends the pass (what is left runs in the next).
 * One guard per loop: WEFT_EBUSY if another is set; guard NULL removes it
 * (data must be the one it was set with: else WEFT_ENOENT).  Returns 0 or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_loop_set_guard(weft_loop_t *loop, weft_guard_cb guard,
                                    void *data);

/* Runs the run queue as a dispatch pass does, up to its budget: for a
 * guard.  Returns 1 if entries are left for the next pass, 0, or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_loop_drain(weft_loop_t *loop);

/* Calls cb once for every live watcher, in slot order.  The callback may
 * cancel watchers (any of them); watchers it creates are not visited.
 * Returns the number of watchers visited, or WEFT_EINVAL. */
WEFT_EXTERN int weft_loop_walk(weft_loop_t *loop, weft_walk_cb cb,
                               void *data);

/* ---- Watchers --------------------------------------------------------- */
/* Every constructor stores the new watcher's id in *out and returns 0, or
 * returns a negative code and stores nothing: a failed call never runs its
 * callback.  flags is a combination of WEFT_WATCH_* values.  Callbacks run
 * from the loop's dispatch, never from inside the constructor; a watcher
 * created inside a callback never runs in the same dispatch pass. */

/* Runs cb once, in the loop's next iteration (after its poll for I/O);
 * the watcher is then gone.  One created inside any callback of the loop
 * waits for the following iteration, never the current one, so a chain of
 * them takes one iteration per link and never starves I/O. */
WEFT_EXTERN int weft_immediately(weft_loop_t *loop, weft_watch_cb cb,
                                 void *data, int flags, weft_id_t *out);

/* Runs cb once, delay_ms after weft_loop_now; the watcher is then gone.
 * Timers due at the same millisecond fire in the order they were armed.
 * Armed outside the loop's callbacks (after blocking work, between a
 * host's ticks), a timer first refreshes the loop's time, as
 * weft_loop_update_time does, so it counts from when it was asked for;
 * inside them, from the time cached for the pass (likewise weft_every and
 * weft_watch_enable). */
WEFT_EXTERN int weft_once(weft_loop_t *loop, uint64_t delay_ms,
                          weft_watch_cb cb, void *data, int flags,
                          weft_id_t *out);

/* Runs cb every interval_ms (> 0, else WEFT_EINVAL), the first time
 * first_ms after weft_loop_now.  Beats do not drift: each is due one
 * interval after the previous due time, and beats missed by a slow callback
 * are skipped rather than run in a burst. */
WEFT_EXTERN int weft_every(weft_loop_t *loop, uint64_t interval_ms,
                           uint64_t first_ms, weft_watch_cb cb, void *data,
                           int flags, weft_id_t *out);

/* Runs cb(loop, id, fd, data) in every iteration while fd is readable, and
 * at end of file or hang-up.  Any number of watchers may share one fd.
 * While watched, fd is in non-blocking mode; its original mode is restored
 * when its last watcher is cancelled, so cancel before closing the
 * descriptor (a closed number may be reused by the next open).  WEFT_EBADF
 * for a descriptor that is not open, WEFT_EPERM for one that cannot be
 * polled (a regular file). */
WEFT_EXTERN int weft_readable(weft_loop_t *loop, int fd, weft_watch_cb cb,
                              void *data, int flags, weft_id_t *out);

/* As weft_readable, while fd is writable.  A writable watcher left enabled
 * fires every iteration: enable it only while there is data to write. */
WEFT_EXTERN int weft_writable(weft_loop_t *loop, int fd, weft_watch_cb cb,
                              void *data, int flags, weft_id_t *out);

/* Events for weft_poll, with poll(2)'s meanings.  WEFT_POLLERR,
 * WEFT_POLLHUP and WEFT_POLLNVAL are reported whether asked or not. */
enum {
  WEFT_POLLIN = 0x001,
  WEFT_POLLPRI = 0x002,
  WEFT_POLLOUT = 0x004,
  WEFT_POLLERR = 0x008,
  WEFT_POLLHUP = 0x010,
  WEFT_POLLNVAL = 0x020
};

/* Runs cb(loop, id, fd, revents, data) once: when any of events
 * (WEFT_POLLIN, WEFT_POLLOUT, WEFT_POLLPRI; at least one) is ready on fd,
 * or after timeout_ms (-1: none) with revents 0; the watcher is then gone.
 * weft_watch_cancel stops it before.  If weft closes fd first (a stream's
 * close), it fires with WEFT_POLLNVAL.  The descriptor is checked before
 * anything is armed, even when it is ready at once: WEFT_EBADF if it is
 * not open, WEFT_EPERM for a kind that cannot report readiness (a regular
 * file), WEFT_EINVAL for bad events.  Its kind is WEFT_KIND_POLL. */
WEFT_EXTERN int weft_poll(weft_loop_t *loop, int fd, int events,
                          int64_t timeout_ms, weft_poll_cb cb, void *data,
                          weft_id_t *out);

/* Runs cb(loop, id, signo, data) each time signal signo arrives.
 * WEFT_EINVAL for a signal that cannot be caught (SIGKILL, SIGSTOP) or out
 * of range. */
WEFT_EXTERN int weft_signal(weft_loop_t *loop, int signo, weft_watch_cb cb,
                            void *data, int flags, weft_id_t *out);

/* Starts a disabled watcher.  A once timer waits its full delay again from
 * now; an every timer's next beat is one interval from now.  Enabling an
 * enabled watcher does nothing.  Returns 0, or WEFT_ENOENT for an unknown,
 * cancelled or finished id (WEFT_EINVAL for a NULL loop). */
WEFT_EXTERN int weft_watch_enable(weft_loop_t *loop, weft_id_t id);

/* Stops a watcher without forgetting it; it no longer keeps the loop alive.
 * Returns 0 or WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_disable(weft_loop_t *loop, weft_id_t id);

/* Ends a watcher: its callback never runs again and its id becomes stale.
 * Safe from any callback, including the watcher's own.  Returns 0 or
 * WEFT_ENOENT (also for a once or immediately watcher that already ran). */
WEFT_EXTERN int weft_watch_cancel(weft_loop_t *loop, weft_id_t id);

/* Makes an enabled watcher keep the loop alive again (the default).
 * Returns 0 or WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_ref(weft_loop_t *loop, weft_id_t id);

/* Lets the loop end while this watcher is its only work.  Returns 0 or
 * WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_unref(weft_loop_t *loop, weft_id_t id);

/* The watcher's kind (a weft_kind value, > 0) or WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_kind(const weft_loop_t *loop, weft_id_t id);

/* 1 if the watcher is enabled, 0 if disabled, or WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_is_enabled(const weft_loop_t *loop, weft_id_t id);

/* 1 if the watcher keeps the loop alive while enabled, 0 if not, or
 * WEFT_ENOENT. */
WEFT_EXTERN int weft_watch_has_ref(const weft_loop_t *loop, weft_id_t id);

/* Stores the data pointer given at the watcher's creation in *out.
 * Returns 0 or WEFT_ENOENT (WEFT_EINVAL if out is NULL). */
WEFT_EXTERN int weft_watch_data(const weft_loop_t *loop, weft_id_t id,
                                void **out);

/* ---- Fibers ----------------------------------------------------------- */
/* A fiber runs a C function on its own stack and can suspend from any
 * depth of that function's calls, to be resumed later with a value (the
 * model of PHP 8.1 Fibers).  Fibers belong to the thread that runs them;
 * resuming is synchronous (the resumer waits until the fiber suspends or
 * finishes), so fibers nest.  Stacks are mmap'd with a PROT_NONE guard
 * page below and committed page by page as they are touched; freed stacks
 * are pooled (up to 64) for reuse.  Each live stack costs two kernel
 * mappings, so vm.max_map_count (65530 by default) allows about 32,000
 * live fibers per process; past that, creation fails with WEFT_ENOSTACK. */

/* The default stack size (WEFT_FIBER_DEFAULT_STACK, changeable with
 * weft_fiber_set_default_stack_size), and the accepted range. */
#define WEFT_FIBER_DEFAULT_STACK ((size_t)256 * 1024)
#define WEFT_FIBER_MIN_STACK ((size_t)16 * 1024)
#define WEFT_FIBER_MAX_STACK ((size_t)1024 * 1024 * 1024)

typedef struct weft_fiber_s weft_fiber_t;

/* A fiber's function: its return value is what the last resume receives
 * in *out when the fiber finishes. */
typedef void *(*weft_fiber_fn)(weft_fiber_t *fiber, void *arg);

/* What weft_fiber_status reports. */
typedef enum {
  WEFT_FIBER_INIT = 0,      /* created, not yet started */
  WEFT_FIBER_SUSPENDED = 1, /* waiting in weft_fiber_suspend */
  WEFT_FIBER_RUNNING = 2,   /* running, or resuming another fiber */
  WEFT_FIBER_TERMINATED = 3 /* its function returned */
} weft_fiber_state;

/* Creates a fiber that will run fn(fiber, arg) on a stack of stack_size
 * bytes (0: the default; rounded up to whole pages).  Nothing runs until
 * the first weft_fiber_resume.  Returns 0, WEFT_EINVAL (NULL fn or out, a
 * size outside [WEFT_FIBER_MIN_STACK, WEFT_FIBER_MAX_STACK]),
 * WEFT_ENOSTACK, or WEFT_ENOMEM. */
WEFT_EXTERN int weft_fiber_new(weft_fiber_fn fn, void *arg,
                               size_t stack_size, weft_fiber_t **out);

/* Starts or resumes fiber and waits until it suspends or finishes.  in is
 * what the fiber's pending weft_fiber_suspend returns in *in (the first
 * resume has no pending suspend: its in is dropped).  *out, if out is not
 * NULL, receives the value the fiber passed to weft_fiber_suspend, or fn's
 * return value when it finished.  Returns 0, WEFT_EINVAL for NULL,
 * WEFT_EBUSY for a running fiber (including the caller itself), or
 * WEFT_ECLOSED for a finished one. */
WEFT_EXTERN int weft_fiber_resume(weft_fiber_t *fiber, void *in, void **out);

/* Suspends the running fiber, from any depth of its call stack, handing
 * out to its resumer; returns when the fiber is resumed, with the
 * resumer's value in *in (if in is not NULL).  Returns 0, or WEFT_EINVAL
 * when called outside any fiber. */
WEFT_EXTERN int weft_fiber_suspend(void *out, void **in);

/* The fiber running on this thread, or NULL outside any fiber. */
WEFT_EXTERN weft_fiber_t *weft_fiber_current(void);

/* The fiber's weft_fiber_state, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_fiber_status(const weft_fiber_t *fiber);

/* The host's pointer attached to a fiber; NULL until set. */
WEFT_EXTERN void *weft_fiber_get_data(const weft_fiber_t *fiber);

/* Attaches a host pointer to a fiber.  weft never reads it. */
WEFT_EXTERN void weft_fiber_set_data(weft_fiber_t *fiber, void *data);

/* Frees a fiber that is not running and returns its stack to the pool.
 * A suspended fiber is discarded where it stands: code after its pending
 * suspend never runs, so resume it to let it clean up first.  Returns 0,
 * or WEFT_EBUSY for a running fiber.  weft_fiber_free(NULL) returns 0. */
WEFT_EXTERN int weft_fiber_free(weft_fiber_t *fiber);

/* The stack size fibers get when created with stack_size 0. */
WEFT_EXTERN size_t weft_fiber_default_stack_size(void);

/* Sets the default stack size for fibers created afterwards (rounded up
 * to whole pages).  Returns 0 or WEFT_EINVAL outside the accepted range. */
WEFT_EXTERN int weft_fiber_set_default_stack_size(size_t size);

/* Unmaps every pooled stack (live fibers keep theirs). */
WEFT_EXTERN void weft_fiber_trim_pool(void);

/* ---- Promises --------------------------------------------------------- */
/* A promise is a settle-once cell: pending, then fulfilled (with an opaque
 * payload and its destructor), rejected (with an error code and a
 * message), or cancelled.  Continuations registered with weft_promise_then
 * run from the loop's dispatch, never from inside the call that settles
 * the promise, in registration order.  Promises are reference counted: the
 * creator holds one reference, a pending await or a scheduled continuation
 * holds its own, and the last weft_promise_unref frees the promise and its
 * payload.  A promise that never settles can simply be unreferenced. */

typedef struct weft_promise_s weft_promise_t;
typedef struct weft_task_s weft_task_t;

/* What weft_promise_state reports. */
typedef enum {
  WEFT_PROMISE_PENDING = 0,
  WEFT_PROMISE_FULFILLED = 1,
  WEFT_PROMISE_REJECTED = 2,
  WEFT_PROMISE_CANCELLED = 3
} weft_promise_state_t;

/* Frees a payload when its promise is freed. */
typedef void (*weft_free_cb)(void *payload);

/* A continuation: called from the loop once the promise has settled. */
typedef void (*weft_promise_cb)(weft_promise_t *promise, void *data);

/* Creates a pending promise on loop, with one reference for the caller.
 * Returns 0, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_promise_new(weft_loop_t *loop, weft_promise_t **out);

/* Takes another reference.  NULL is ignored. */
WEFT_EXTERN void weft_promise_ref(weft_promise_t *promise);

/* Drops a reference; the last one frees the promise, its message and (via
 * its destructor) its payload.  NULL is ignored. */
WEFT_EXTERN void weft_promise_unref(weft_promise_t *promise);

/* Fulfills a pending promise with payload, which the promise then owns
 * (free_payload may be NULL).  Returns 0, or WEFT_EBUSY if the promise had
 * already settled, or WEFT_ENOMEM (a host's promise given a payload,
 * which keeps it pending): the payload then stays the caller's. */
WEFT_EXTERN int weft_promise_resolve(weft_promise_t *promise, void *payload,
                                     weft_free_cb free_payload);

/* Rejects a pending promise with code (< 0, a WEFT_E* value) and a message
 * (copied; NULL gives weft_strerror(code)).  Returns 0, WEFT_EINVAL, or
 * WEFT_EBUSY if it had already settled. */
WEFT_EXTERN int weft_promise_reject(weft_promise_t *promise, int code,
                                    const char *message);

/* Cancels a pending promise: it settles as cancelled (code WEFT_ECANCELED)
 * and its producer's cancel hook runs, at once, so the producer can stop.
 * A promise whose producer settles it once what it runs or waits on has
 * ended (a task, a combinator, weft_promise_timeout) stays pending until
 * then, and settles as cancelled: whoever awaits it sees the cancellation
 * only once that cleanup is done.  Returns 0, or WEFT_EBUSY if it had
 * already settled or is being cancelled. */
WEFT_EXTERN int weft_promise_cancel(weft_promise_t *promise);

/* The promise's weft_promise_state_t, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_promise_state(const weft_promise_t *promise);

/* The payload of a fulfilled promise, else NULL. */
WEFT_EXTERN void *weft_promise_value(const weft_promise_t *promise);

/* The error code of a rejected or cancelled promise (< 0), else 0; its
 * message in *message when message is not NULL. */
WEFT_EXTERN int weft_promise_error(const weft_promise_t *promise,
                                   const char **message);

/* Registers cb(promise, data) to run from the loop's dispatch once the
 * promise has settled (in the next dispatch pass if it already has).
 * Returns 0, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_promise_then(weft_promise_t *promise, weft_promise_cb cb,
                                  void *data);

/* For producers: registers the hook weft_promise_cancel calls while the
 * promise is pending (one hook; a later call replaces it).  Returns 0,
 * WEFT_EINVAL (also for a task's promise, whose hook cancels the task),
 * WEFT_ENOMEM (a host's promise), or WEFT_EBUSY if the promise has
 * settled. */
WEFT_EXTERN int weft_promise_on_cancel(weft_promise_t *promise,
                                       weft_promise_cb cb, void *data);

/* Combinators.  Each creates a promise (one reference for the caller) that
 * settles from the loop according to the n input promises, which it
 * references until then.  all: fulfilled when every input is fulfilled,
 * its value (weft_promise_value) an array of the n inputs in order
 * (weft_promise_t **, each referenced until the result is freed: read
 * their values), else rejected like the first input to fail.  any:
 * fulfilled by the first input fulfilled (payload: that input, referenced
 * until the result is freed), rejected like the last input if all fail.
 * race: settles like the first input to settle (payload: that input, as
 * for any).  settle: fulfilled once every input has settled, with the
 * inputs as all's value.  An input that was cancelled makes a result that settles
 * like it cancelled.  Once race or any is decided, or all has failed, the
 * inputs still pending whose only continuation is the combinator's (no
 * await, no other then) are cancelled.  Cancelling the result cancels the
 * inputs still pending, and it settles as cancelled once every input has
 * settled.  With n = 0: all and settle fulfil at once, any rejects
 * (WEFT_ENOENT), race stays pending.  Returns 0, WEFT_EINVAL or
 * WEFT_ENOMEM. */
WEFT_EXTERN int weft_promise_all(weft_loop_t *loop, weft_promise_t **promises,
                                 size_t n, weft_promise_t **out);
WEFT_EXTERN int weft_promise_any(weft_loop_t *loop, weft_promise_t **promises,
                                 size_t n, weft_promise_t **out);
WEFT_EXTERN int weft_promise_race(weft_loop_t *loop, weft_promise_t **promises,
                                  size_t n, weft_promise_t **out);
WEFT_EXTERN int weft_promise_settle(weft_loop_t *loop,
                                    weft_promise_t **promises, size_t n,
                                    weft_promise_t **out);

/* A promise that settles like promise, unless ms pass first: promise is
 * then cancelled, and once it has settled the result is rejected with
 * WEFT_ETIMEDOUT.  Cancelling the result cancels promise; it settles once
 * promise has.  Returns 0, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_promise_timeout(weft_promise_t *promise, uint64_t ms,
                                     weft_promise_t **out);

/* Rejects a pending promise as weft_promise_reject does, with an error
 * value besides the code and message: payload, which the promise then owns
 * (free_payload may be NULL); weft_promise_payload reads it.  Returns 0,
 * WEFT_EINVAL, WEFT_EBUSY, or WEFT_ENOMEM (a host's promise, which stays
 * pending); the payload then stays the caller's. */
WEFT_EXTERN int weft_promise_reject_value(weft_promise_t *promise, int code,
                                          const char *message, void *payload,
                                          weft_free_cb free_payload);

/* The payload of a settled promise: its value, or its error value; NULL
 * while pending. */
WEFT_EXTERN void *weft_promise_payload(const weft_promise_t *promise);

/* 1 while a cancelled promise waits for its producer to end (a task
 * cleaning up, a combinator or timeout waiting for its inputs), else 0. */
WEFT_EXTERN int weft_promise_cancelling(const weft_promise_t *promise);

/* For a producer that ends its own promise once cancelled, as a task, a
 * combinator or a timeout does: from now on weft_promise_cancel runs the
 * cancel hook and leaves the promise pending, cancelling, until the
 * producer settles it (a fulfilment, or a WEFT_ECANCELED rejection, then
 * settles it as cancelled).  Returns 0, WEFT_EINVAL, or WEFT_EBUSY if it
 * has settled. */
WEFT_EXTERN int weft_promise_defer_cancel(weft_promise_t *promise);

/* Settles a pending promise as cancelled without running its cancel hook:
 * for a producer that ended because of a cancellation (its own, or one it
 * met in what it awaited).  Returns 0, WEFT_EINVAL, or WEFT_EBUSY if it
 * had settled. */
WEFT_EXTERN int weft_promise_settle_cancelled(weft_promise_t *promise);

/* ---- Hosts: promises and tasks in a host's own objects ------------------ */
/* A host (a language binding, an engine) keeps promises and tasks inside
 * its own objects, so that its garbage collector owns them: a pending
 * promise that nothing the host can reach holds is collected, with what
 * it holds.  The core asks the host to keep such an object while it needs
 * it beyond a call (a queued continuation, a queued resume) through
 * retain and release, and the host calls weft_promise_fini or
 * weft_task_fini when it frees the memory.  Continuations may live in the
 * consumer's memory too (weft_cont_t), so that an await allocates
 * nothing. */

/* What a host supplies.  size is sizeof(weft_host_t) (the struct may grow
 * at its end); retain and release (either may be NULL) count the core's
 * references to obj; resume runs a task's body (see weft_task_init). */
typedef struct weft_host_s {
  size_t size;
  void (*retain)(void *obj);
  void (*release)(void *obj);
  void (*resume)(weft_task_t *task, int status, void *obj);
} weft_host_t;

/* The bytes a host reserves for a promise, a task or a continuation
 * (pointer-aligned). */
WEFT_EXTERN size_t weft_promise_size(void);
WEFT_EXTERN size_t weft_task_size(void);
WEFT_EXTERN size_t weft_cont_size(void);

/* Makes a pending promise in host memory (weft_promise_size bytes) on
 * loop, owned by the host object obj: weft_promise_ref and _unref call
 * host->retain and host->release with obj instead of counting, and the
 * memory is the host's to free after weft_promise_fini.  Returns 0 or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_promise_init(weft_promise_t *promise, weft_loop_t *loop,
                                  const weft_host_t *host, void *obj);

/* The host is freeing a promise of weft_promise_init: its pending
 * continuations are dropped (they never run) and its payload freed.  The
 * core holds no reference then (it would have retained obj).  NULL or a
 * second call: no-op. */
WEFT_EXTERN void weft_promise_fini(weft_promise_t *promise);

/* A continuation in the consumer's own memory (weft_cont_size bytes,
 * zeroed before its first use). */
typedef struct weft_cont_s weft_cont_t;

/* As weft_promise_then, in the node cont: cb(promise, data) runs from the
 * loop once promise has settled.  The node is the caller's again once cb
 * has started (it may watch another promise from cb) or after
 * weft_cont_cancel.  Returns 0, WEFT_EINVAL, or WEFT_EBUSY if the node is
 * still pending. */
WEFT_EXTERN int weft_promise_watch(weft_promise_t *promise, weft_cont_t *cont,
                                   weft_promise_cb cb, void *data);

/* Withdraws a pending continuation, before its promise settles or after
 * (from the run queue).  Returns 0, or WEFT_ENOENT if it was not
 * pending. */
WEFT_EXTERN int weft_cont_cancel(weft_cont_t *cont);

/* 1 if the node waits on a promise or for its turn to run, else 0. */
WEFT_EXTERN int weft_cont_pending(const weft_cont_t *cont);

/* 1 if a continuation other than except (NULL: none) waits on the pending
 * promise: whether anything else still awaits or chains it. */
WEFT_EXTERN int weft_promise_consumed(const weft_promise_t *promise,
                                      const weft_cont_t *except);

/* ---- Tasks of any host -------------------------------------------------- */
/* A task is a body of host code (a C fiber, a coroutine of a scripting
 * language, a state machine) that the loop runs.  The core owns when it
 * runs: it starts from the loop's dispatch and is resumed only from there,
 * in FIFO order with every other task and continuation, never from inside
 * the call that ended its wait.  The body waits by calling a
 * weft_task_* wait, which returns 1 ("registered"), and then giving control
 * back (returning from resume, yielding its coroutine, suspending its
 * fiber); the loop calls host->resume again once the wait has ended.
 *
 * A task's promise (weft_task_promise) is its outcome: the host settles it
 * when the body ends.  Cancelling that promise cancels the task: its
 * pending wait ends with WEFT_ECANCELED, as does every later one at once
 * (unless weft_task_shield holds the cancellation back), and the promise
 * stays pending until the host settles it; it then settles as cancelled
 * (weft_promise_resolve or a WEFT_ECANCELED rejection), so that an await
 * of a cancelled task returns once it has cleaned up.  A task cancelled
 * before it started is cancelled at once; its first resume comes with
 * WEFT_ECANCELED and the host runs none of its body. */

/* Undoes a wait for a task that gives it up (see weft_task_suspend). */
typedef void (*weft_withdraw_cb)(weft_task_t *task, void *data);

/* Makes a task in host memory (weft_task_size bytes), owned by obj as
 * weft_promise_init's promises are, and queues its first resume:
 * host->resume(task, 0, obj) from the loop.  host->resume is then called
 * each time a wait has ended, with the wait's result: 0 or more, or an
 * error code (WEFT_ECANCELED, WEFT_ETIMEDOUT...).  Returns 0 or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_task_init(weft_task_t *task, weft_loop_t *loop,
                               const weft_host_t *host, void *obj);

/* The host is freeing the task's memory: a pending wait is withdrawn, a
 * queued resume dropped, its promise finished as with weft_promise_fini.
 * NULL or a second call: no-op. */
WEFT_EXTERN void weft_task_fini(weft_task_t *task);

/* The task's promise, which starts its memory ((weft_promise_t *)task is
 * the same); the task whose promise promise is, or NULL. */
WEFT_EXTERN weft_promise_t *weft_task_promise(weft_task_t *task);
WEFT_EXTERN weft_task_t *weft_promise_task(weft_promise_t *promise);

/* The task's loop, and its host object. */
WEFT_EXTERN weft_loop_t *weft_task_get_loop(const weft_task_t *task);
WEFT_EXTERN void *weft_task_get_obj(const weft_task_t *task);

/* Waits until promise settles: returns 1 (suspend; the resume's status is
 * 0 once promise has settled, or WEFT_ECANCELED), 0 if it had settled
 * already (no wait), WEFT_ECANCELED if the task is cancelled, or
 * WEFT_EINVAL (a task that waits, is queued or has ended; NULL). */
WEFT_EXTERN int weft_task_await(weft_task_t *task, weft_promise_t *promise);

/* Waits ms milliseconds: 1 (the resume's status is 0 or WEFT_ECANCELED),
 * or as weft_task_await. */
WEFT_EXTERN int weft_task_sleep(weft_task_t *task, uint64_t ms);

/* Waits until fd is readable and/or writable (WEFT_READABLE,
 * WEFT_WRITABLE), or timeout_ms pass (< 0: no timeout): 1 (the resume's
 * status is the ready event, WEFT_ETIMEDOUT or WEFT_ECANCELED), or as
 * weft_task_await; WEFT_EBADF or WEFT_EPERM for a descriptor that cannot
 * be watched. */
WEFT_EXTERN int weft_task_wait_fd(weft_task_t *task, int fd, int events,
                                  int64_t timeout_ms);

/* A wait of the host's own making (an I/O operation of its binding): 1,
 * or as weft_task_await.  weft_task_wake(task, status) ends it, and the
 * resume gets status; past timeout_ms (< 0: none) it ends with
 * WEFT_ETIMEDOUT, and a cancellation ends it with WEFT_ECANCELED; in
 * those two cases withdraw(task, data) runs first (may be NULL), so the
 * host lets go of the task. */
WEFT_EXTERN int weft_task_suspend(weft_task_t *task, int64_t timeout_ms,
                                  weft_withdraw_cb withdraw, void *data);

/* Ends a weft_task_suspend wait: the task's resume is queued with status.
 * Returns 0, or WEFT_ENOENT if the task is not in such a wait. */
WEFT_EXTERN int weft_task_wake(weft_task_t *task, int status);

/* 1 while the task waits, else 0. */
WEFT_EXTERN int weft_task_waiting(const weft_task_t *task);

/* Whether weft_task_handoff may run the queued resume of next here. */
typedef int (*weft_handoff_cb)(weft_task_t *next, void *data);

/* For a host whose task has just started a wait and is about to suspend
 * its body: runs the resumes queued ahead of the task's own, as the
 * loop's dispatch pass would, from where the task stands, until its own
 * comes to the head of the run queue.  Then that one is taken off the
 * queue, *status gets what it would have passed to the host's resume, and
 * 1 is returned: the body goes on without suspending, which saves a
 * switch out and back when two tasks hand values to each other.  Returns
 * 0 (suspend as usual) when the queue runs out, the pass's budget ends,
 * the loop stops, an entry that is not a task's resume comes first, or
 * may_run (NULL: any) refuses a task; and for any task but the one the
 * dispatch pass resumed, or from inside another handoff (a task this one
 * runs suspends as usual). */
WEFT_EXTERN int weft_task_handoff(weft_task_t *task, weft_handoff_cb may_run,
                                  void *data, int *status);

/* 1 once the task's cancellation was asked for, else 0. */
WEFT_EXTERN int weft_task_cancelled(const weft_task_t *task);

/* Adds delta (+1 or -1) to the task's shield: while it is above 0, a
 * cancellation interrupts no wait and waits work in a cancelled task
 * (Trio's shielded cancel scope), for a cleanup that must wait; the first
 * wait after the shield ends fails with the cancellation.  Returns the new
 * depth (delta 0 reads it), or WEFT_EINVAL (below 0, or past 2,097,151
 * deep). */
WEFT_EXTERN int weft_task_shield(weft_task_t *task, int delta);

/* ---- Sync objects for tasks of every host -------------------------------- */
/* Mutex, semaphore, event, channel (weft_queue_t) and group (a nursery) for
 * the tasks of one loop, in host or core memory (weft_*_size bytes).  A
 * call that would wait registers the task (as weft_task_suspend does) and
 * returns 1; the task's resume then gets 0 (it got what it waited for),
 * WEFT_ETIMEDOUT past timeout_ms (< 0: no timeout), WEFT_ECANCELED, or
 * WEFT_ECLOSED when the object was closed or finished.  Waiters are served
 * in arrival order; what a wake hands to a task cancelled before its
 * resume runs (a lock, a permit, an item) goes on to the next waiter, so
 * nothing is lost.  A call that need not wait returns 0 (or an error) at
 * once.  A cancelled task (not shielded) gets WEFT_ECANCELED at once. */
typedef struct weft_mutex_s weft_mutex_t;
typedef struct weft_sem_s weft_sem_t;
typedef struct weft_event_s weft_event_t;
typedef struct weft_queue_s weft_queue_t;
typedef struct weft_group_s weft_group_t;

WEFT_EXTERN size_t weft_mutex_size(void);
WEFT_EXTERN size_t weft_sem_size(void);
WEFT_EXTERN size_t weft_event_size(void);
WEFT_EXTERN size_t weft_queue_size(void);
WEFT_EXTERN size_t weft_group_size(void);

/* A mutex: lock takes it for task (0) or waits (1); unlock hands it to the
 * first waiter, or frees it (WEFT_EPERM if it was not locked); owner is
 * the task holding it (NULL: none).  fini wakes the waiters with
 * WEFT_ECLOSED. */
WEFT_EXTERN int weft_mutex_init(weft_mutex_t *mutex, weft_loop_t *loop);
WEFT_EXTERN void weft_mutex_fini(weft_mutex_t *mutex);
WEFT_EXTERN int weft_mutex_lock(weft_mutex_t *mutex, weft_task_t *task,
                                int64_t timeout_ms);
WEFT_EXTERN int weft_mutex_unlock(weft_mutex_t *mutex);
WEFT_EXTERN int weft_mutex_locked(const weft_mutex_t *mutex);
WEFT_EXTERN weft_task_t *weft_mutex_owner(const weft_mutex_t *mutex);

/* A counting semaphore of count permits: acquire takes one (0) or waits
 * (1); release gives one back, to the first waiter if any. */
WEFT_EXTERN int weft_sem_init(weft_sem_t *sem, weft_loop_t *loop,
                              size_t count);
WEFT_EXTERN void weft_sem_fini(weft_sem_t *sem);
WEFT_EXTERN int weft_sem_acquire(weft_sem_t *sem, weft_task_t *task,
                                 int64_t timeout_ms);
WEFT_EXTERN int weft_sem_release(weft_sem_t *sem);
WEFT_EXTERN size_t weft_sem_count(const weft_sem_t *sem);

/* An event: wait returns 0 while it is set, else waits (1); set wakes
 * every waiter and keeps it set until clear. */
WEFT_EXTERN int weft_event_init(weft_event_t *event, weft_loop_t *loop);
WEFT_EXTERN void weft_event_fini(weft_event_t *event);
WEFT_EXTERN int weft_event_wait(weft_event_t *event, weft_task_t *task,
                                int64_t timeout_ms);
WEFT_EXTERN int weft_event_set(weft_event_t *event);
WEFT_EXTERN int weft_event_clear(weft_event_t *event);
WEFT_EXTERN int weft_event_is_set(const weft_event_t *event);

/* The capacity of a channel without bound. */
#define WEFT_QUEUE_UNBOUNDED ((size_t)-1)

/* A channel of opaque items (void *: pointers, or keys of the host's own
 * values) between the tasks of a loop, in FIFO order.  capacity: the items
 * it buffers (0: a rendezvous, a send waits for its receiver;
 * WEFT_QUEUE_UNBOUNDED).  send hands item to a waiting receiver, buffers
 * it, or waits (1) with it until a receiver or room takes it; recv stores
 * the next item in *out (0) or waits (1) and stores it there before the
 * resume (out must stay valid meanwhile).  With task NULL, neither waits:
 * WEFT_EAGAIN instead (try_send / try_recv).  close wakes every receiver
 * and sender with WEFT_ECLOSED; items buffered can still be received, then
 * recv returns WEFT_ECLOSED.  peek reads the buffered item i without
 * taking it.  fini closes it and frees the ring (the host frees the items
 * it owns first, through peek). */
WEFT_EXTERN int weft_queue_init(weft_queue_t *queue, weft_loop_t *loop,
                                size_t capacity);
WEFT_EXTERN void weft_queue_fini(weft_queue_t *queue);
WEFT_EXTERN int weft_queue_send(weft_queue_t *queue, weft_task_t *task,
                                void *item, int64_t timeout_ms);
WEFT_EXTERN int weft_queue_recv(weft_queue_t *queue, weft_task_t *task,
                                void **out, int64_t timeout_ms);
WEFT_EXTERN int weft_queue_close(weft_queue_t *queue);
WEFT_EXTERN size_t weft_queue_count(const weft_queue_t *queue);
WEFT_EXTERN int weft_queue_closed(const weft_queue_t *queue);
WEFT_EXTERN int weft_queue_peek(const weft_queue_t *queue, size_t i,
                                void **item);

/* A group (a nursery) watches the promises added to it (its children,
 * usually tasks), referencing each until it has settled.  The first child
 * rejected cancels the others at once.  wait returns, or ends a wait (1)
 * with, once every child has ended: 0; the failure's code (the failed
 * child is weft_group_failure, referenced until fini); or WEFT_ETIMEDOUT
 * when timeout_ms passed first (the children were cancelled then, and have
 * ended too).  A child added after a failure or a timeout is cancelled at
 * once.  cancel cancels every live child; live counts them.  fini drops
 * the children (not cancelled) and wakes waiters with WEFT_ECLOSED. */
WEFT_EXTERN int weft_group_init(weft_group_t *group, weft_loop_t *loop);
WEFT_EXTERN void weft_group_fini(weft_group_t *group);
WEFT_EXTERN int weft_group_add(weft_group_t *group, weft_promise_t *child);
WEFT_EXTERN int weft_group_wait(weft_group_t *group, weft_task_t *task,
                                int64_t timeout_ms);
WEFT_EXTERN int weft_group_cancel(weft_group_t *group);
WEFT_EXTERN size_t weft_group_live(const weft_group_t *group);
WEFT_EXTERN weft_promise_t *weft_group_failure(const weft_group_t *group);

/* ---- Tasks: fibers scheduled by the loop ------------------------------- */
/* A task runs a function in its own fiber, started from the loop's
 * dispatch in FIFO order.  Inside it, weft_await, weft_delay and
 * weft_wait_fd suspend only the task; the loop resumes it (never another
 * task, never the call that settled what it waited for).  Outside a task,
 * including in a host's own fiber, they return WEFT_EINVAL.  A task must
 * not call weft_fiber_suspend itself: nothing would resume it. */

/* A task's function.  self is the task's own promise: settle it with a
 * result, or return and it is fulfilled with NULL. */
typedef void (*weft_task_fn)(weft_loop_t *loop, weft_promise_t *self,
                             void *arg);

/* Runs fn(loop, self, arg) as a new task on a stack of stack_size bytes
 * (0: the fiber default), and stores its promise (one reference for the
 * caller) in *out.  Cancelling that promise cancels the task: its pending
 * wait returns WEFT_ECANCELED, as does every later one, so the function
 * can clean up and return; the promise stays pending until then, and
 * settles as cancelled when fn returns (whatever fn resolved it with), or
 * rejected if fn rejected it with another code.  A task cancelled before
 * it started never runs.  Returns 0, WEFT_EINVAL, WEFT_ENOSTACK or
 * WEFT_ENOMEM. */
WEFT_EXTERN int weft_spawn(weft_loop_t *loop, weft_task_fn fn, void *arg,
                           size_t stack_size, weft_promise_t **out);

/* As weft_spawn, without a promise for the caller. */
WEFT_EXTERN int weft_defer(weft_loop_t *loop, weft_task_fn fn, void *arg,
                           size_t stack_size);

/* Suspends the running task until promise settles.  Returns 0 if it was
 * fulfilled (read weft_promise_value), its error code if it was rejected
 * or cancelled, WEFT_ECANCELED if the task itself was cancelled, or
 * WEFT_EINVAL outside a task. */
WEFT_EXTERN int weft_await(weft_promise_t *promise);

/* Suspends the running task for ms milliseconds.  Returns 0,
 * WEFT_ECANCELED, or WEFT_EINVAL outside a task. */
WEFT_EXTERN int weft_delay(uint64_t ms);

/* Events for weft_wait_fd. */
enum { WEFT_READABLE = 1, WEFT_WRITABLE = 2 };

/* Suspends the running task until fd is readable and/or writable (events)
 * or timeout_ms pass (< 0: no timeout).  Returns the events that are
 * ready (> 0), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF, WEFT_EPERM, or
 * WEFT_EINVAL (outside a task, no events). */
WEFT_EXTERN int weft_wait_fd(int fd, int events, int64_t timeout_ms);

/* The loop of the running task, or NULL outside a task. */
WEFT_EXTERN weft_loop_t *weft_task_loop(void);

/* The running fiber task (to shield it, or to wait on a sync object), or
 * NULL outside one. */
WEFT_EXTERN weft_task_t *weft_task_self(void);

/* For a fiber task that started a wait with weft_task_self() (a sync
 * object's call, weft_task_suspend...), given what that call returned: 1
 * suspends the fiber until the wait ends and returns the wait's status;
 * anything else is returned as it is.  So
 * weft_wait(weft_mutex_lock(m, weft_task_self(), -1)) is 0 once the mutex
 * is held, or an error.  WEFT_EINVAL outside a fiber task. */
WEFT_EXTERN int weft_wait(int registered);

/* ---- Streams ---------------------------------------------------------- */
/* A stream is a descriptor that can report readiness (a socket, a pipe, a
 * terminal), made non-blocking, with a read buffer and a bounded write
 * queue.  Reads and writes try the syscall first and never block; when one
 * would, the caller waits with weft_stream_wait and tries again.  A C task
 * may instead suspend in weft_wait_fd on weft_stream_fd, after a read said
 * WEFT_EAGAIN (a TLS stream may hold bytes the descriptor does not show:
 * see weft_stream_pending). */

typedef struct weft_stream_s weft_stream_t;

/* Flags for weft_stream_open. */
enum {
  WEFT_STREAM_KEEP_FD = 1 /* closing leaves fd open, in its original mode */
};

/* What a stream waits for. */
enum {
  WEFT_STREAM_READ = 1, /* the descriptor is readable (data, EOF, error) */
  WEFT_STREAM_WRITE = 2 /* the write queue is flushed and fd is writable */
};

/* Called once when a wait ends: status 0 when ready, WEFT_ETIMEDOUT,
 * WEFT_ECLOSED when the stream was closed meanwhile, or the error a
 * queued write met (WEFT_EPIPE, WEFT_ECONNRESET...) for WEFT_STREAM_WRITE. */
typedef void (*weft_stream_cb)(weft_stream_t *stream, int event, int status,
                               void *data);

/* Makes a stream of fd on loop and stores it in *out; the stream owns fd
 * (weft_stream_close closes it) unless flags has WEFT_STREAM_KEEP_FD.
 * Returns 0, WEFT_EBADF if fd is not open, WEFT_EPERM for a regular file
 * or a directory (they cannot be polled), WEFT_EINVAL or WEFT_ENOMEM.  The
 * first non-socket stream sets SIGPIPE to be ignored if it was at its
 * default, so that a write to a pipe whose reader is gone fails with
 * WEFT_EPIPE instead of killing the process. */
WEFT_EXTERN int weft_stream_open(weft_loop_t *loop, int fd, int flags,
                                 weft_stream_t **out);

/* The stream's descriptor, WEFT_ECLOSED once closed, or WEFT_EINVAL. */
WEFT_EXTERN int weft_stream_fd(const weft_stream_t *stream);

/* The loop the stream was opened on (NULL for NULL). */
WEFT_EXTERN weft_loop_t *weft_stream_loop(const weft_stream_t *stream);

/* Reads up to len bytes into buf: from the read buffer if it holds any,
 * else with one read(2).  Returns the bytes read (> 0), 0 at end of file,
 * WEFT_EAGAIN when nothing is there yet, WEFT_ECLOSED, or the read's
 * error.  A read error is kept: every later read (this and
 * weft_stream_fill) returns it, so a reset connection (WEFT_ECONNRESET,
 * also when a write met the reset first) never reads as a clean end of
 * file. */
WEFT_EXTERN int weft_stream_read(weft_stream_t *stream, void *buf,
                                 size_t len);

/* Reads once from the descriptor into the read buffer, growing it when
 * needed.  Returns the bytes added (> 0), 0 at end of file, WEFT_EAGAIN,
 * WEFT_ENOMEM, WEFT_ECLOSED, or the read's error (kept, as for
 * weft_stream_read; the bytes already buffered stay).  After a read that
 * filled less than the room it had, the kernel most likely holds nothing
 * more, so reads (this and weft_stream_read) say WEFT_EAGAIN without a
 * system call until the descriptor is next reported readable: wait for
 * WEFT_STREAM_READ, which fires at once if data is there. */
WEFT_EXTERN int weft_stream_fill(weft_stream_t *stream);

/* The buffered bytes, not yet consumed: stores their count in *len (if not
 * NULL) and returns where they start (NULL when there are none).  Valid
 * until the next fill, read or consume. */
WEFT_EXTERN const char *weft_stream_buffered(const weft_stream_t *stream,
                                             size_t *len);

/* Whether a read can go on without waiting for the descriptor: the read
 * buffer holds bytes, or the stream's TLS holds what it received (records
 * read ahead with others, the rest of one a read took part of, the peer's
 * close_notify, a failure), which the descriptor's readiness does not
 * show.  A host that polls weft_stream_fd itself (weft.socket's select)
 * asks this first; weft_stream_wait does.  Returns 1, 0, WEFT_ECLOSED or
 * WEFT_EINVAL. */
WEFT_EXTERN int weft_stream_pending(const weft_stream_t *stream);

/* Drops the first n buffered bytes.  Returns 0, or WEFT_EINVAL if fewer
 * are buffered. */
WEFT_EXTERN int weft_stream_consume(weft_stream_t *stream, size_t n);

/* Writes len bytes of buf: what the kernel takes at once, the rest copied
 * to the write queue as far as its limit allows; stores the bytes taken
 * in *accepted (if not NULL).  When fewer than len were taken, wait for
 * WEFT_STREAM_WRITE and write the rest.  Returns 0, WEFT_ECLOSED, or a
 * write error (WEFT_EPIPE, WEFT_ECONNRESET...), including one a queued
 * write met earlier. */
WEFT_EXTERN int weft_stream_write(weft_stream_t *stream, const void *buf,
                                  size_t len, size_t *accepted);

/* The bytes waiting in the write queue. */
WEFT_EXTERN size_t weft_stream_queued(const weft_stream_t *stream);

/* Sets the write queue's limit in bytes (> 0; the default is 256 KiB).
 * Returns 0 or WEFT_EINVAL. */
WEFT_EXTERN int weft_stream_set_queue_limit(weft_stream_t *stream,
                                            size_t bytes);

/* Runs cb(stream, event, status, data) once, when event (WEFT_STREAM_READ
 * or WEFT_STREAM_WRITE) is ready or after timeout_ms (-1: none).  A TLS
 * stream whose TLS holds received bytes is ready to read at once (from
 * the next dispatch pass), whatever its descriptor says.  One wait per
 * event at a time: WEFT_EBUSY for a second.  A pending wait keeps the
 * loop alive.  The callback runs from the loop, never from inside this
 * call.  Returns 0, WEFT_ECLOSED, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_stream_wait(weft_stream_t *stream, int event,
                                 int64_t timeout_ms, weft_stream_cb cb,
                                 void *data);

/* Withdraws a pending wait; its callback will not run.  Returns 0, or
 * WEFT_ENOENT if none was pending. */
WEFT_EXTERN int weft_stream_unwait(weft_stream_t *stream, int event);

/* Half-closes a socket stream for writing, once its queue is flushed: the
 * peer reads end of file, and reading goes on.  Returns 0, WEFT_ENOTSOCK
 * for a stream that is not a socket, WEFT_ECLOSED, or the error. */
WEFT_EXTERN int weft_stream_shutdown(weft_stream_t *stream);

/* Closes the stream: its watchers and pending polls on the descriptor end
 * (polls fire with WEFT_POLLNVAL), the descriptor is closed (unless
 * WEFT_STREAM_KEEP_FD), queued bytes not yet written are dropped, and
 * pending waits run their callbacks with WEFT_ECLOSED from the loop.  The
 * stream is freed after those callbacks, at once when there are none;
 * until then it may only be passed to weft_stream_fd.  Returns 0, or
 * WEFT_ECLOSED if it was already closed; weft_stream_close(NULL) is 0. */
WEFT_EXTERN int weft_stream_close(weft_stream_t *stream);

/* ---- TLS -------------------------------------------------------------- */
/* TLS over OpenSSL 3, as a transport of a stream: after weft_tls_start the
 * stream's reads return decrypted bytes and its writes encrypt, with the
 * same contract as before (WEFT_EAGAIN, waits, the queue and its limit,
 * close).  A weft_tls_t is a configuration shared by many streams: the
 * role, what is trusted, the certificate, ALPN, versions and ciphers, and
 * a client's sessions to resume.  It is not thread-safe: use it from the
 * loop's thread.  Renegotiation is refused; TLS 1.2 is the least version
 * by default. */

typedef struct weft_tls_s weft_tls_t;

/* Roles for weft_tls_new. */
enum { WEFT_TLS_CLIENT = 0, WEFT_TLS_SERVER = 1 };

/* Versions for weft_tls_set_min_version. */
enum { WEFT_TLS_1_2 = 0x0303, WEFT_TLS_1_3 = 0x0304 };

/* Creates a configuration for role and stores it in *out.  A client
 * verifies its peer against the system's trust store (OpenSSL's default
 * paths, /etc/ssl/certs on Debian) and checks the name given to
 * weft_tls_start; a server asks no certificate of its clients until
 * weft_tls_set_client_ca.  Returns 0, WEFT_EINVAL, WEFT_ENOMEM or
 * WEFT_ETLS. */
WEFT_EXTERN int weft_tls_new(int role, weft_tls_t **out);

/* Releases the caller's reference: the configuration is freed once no
 * stream uses it.  weft_tls_free(NULL) does nothing. */
WEFT_EXTERN void weft_tls_free(weft_tls_t *tls);

/* Turns a client's verification of its peer on (the default) or off.
 * Off, any certificate (or a mismatched name) is accepted: the
 * connection is encrypted but not authenticated.  Returns 0 or
 * WEFT_EINVAL (NULL, or a server: see weft_tls_set_client_ca). */
WEFT_EXTERN int weft_tls_set_verify(weft_tls_t *tls, int on);

/* Trusts the certificates in the PEM file cafile and/or the hashed
 * directory capath (either may be NULL, not both) instead of the system
 * store.  Returns 0, WEFT_ENOENT or WEFT_EACCES when a file cannot be
 * read, WEFT_ETLS when it holds no certificate, or WEFT_EINVAL;
 * weft_tls_error names the file and the reason. */
WEFT_EXTERN int weft_tls_set_ca(weft_tls_t *tls, const char *cafile,
                                const char *capath);

/* Uses the certificate chain in the PEM file certfile and the private key
 * in keyfile (NULL: the key is in certfile too): a server's identity, or
 * a client's certificate.  Returns 0, WEFT_ENOENT or WEFT_EACCES when a
 * file cannot be read, WEFT_ETLS when it does not parse or the key does
 * not match the certificate, or WEFT_EINVAL; weft_tls_error names the
 * file and the reason.  A server needs one before weft_tls_start. */
WEFT_EXTERN int weft_tls_set_cert(weft_tls_t *tls, const char *certfile,
                                  const char *keyfile);

/* Makes a server require a certificate of every client, signed by one of
 * the CAs in the PEM file cafile.  Returns as weft_tls_set_ca, or
 * WEFT_EINVAL for a client. */
WEFT_EXTERN int weft_tls_set_client_ca(weft_tls_t *tls, const char *cafile);

/* Sets the application protocols (ALPN) to offer (a client) or to accept
 * (a server, which picks the first of its own list that the client
 * offers, and goes on without one if none matches): count names of 1 to
 * 255 bytes.  Returns 0, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_tls_set_alpn(weft_tls_t *tls,
                                  const char *const *protocols, size_t count);

/* Sets the least protocol version: WEFT_TLS_1_2 (the default) or
 * WEFT_TLS_1_3.  Returns 0 or WEFT_EINVAL. */
WEFT_EXTERN int weft_tls_set_min_version(weft_tls_t *tls, int version);

/* Restricts the cipher suites to an OpenSSL cipher string (TLS 1.2, such
 * as "ECDHE+AESGCM") and/or TLS 1.3 suites ("TLS_AES_128_GCM_SHA256"),
 * separated by ':' in one list.  Returns 0, WEFT_ETLS when nothing in it
 * is known, or WEFT_EINVAL. */
WEFT_EXTERN int weft_tls_set_ciphers(weft_tls_t *tls, const char *ciphers);

/* Words for the last failure of a weft_tls_set_* call on tls ("cert
 * 'srv.pem': not found"), or "" if none failed.  Valid until the next
 * call on tls. */
WEFT_EXTERN const char *weft_tls_error(const weft_tls_t *tls);

/* Makes stream a TLS stream in tls's role (the stream takes a reference
 * to tls).  A client sends servername as SNI (unless it is an IP
 * address) and, verifying, requires the peer's certificate to match it;
 * NULL skips both (and needs verification off).  Bytes already read into
 * the stream's buffer count as TLS bytes (STARTTLS); bytes already
 * queued are sent first.  The handshake follows: reads and writes return
 * WEFT_ENOTCONN until weft_tls_handshake has returned 0.  Returns 0,
 * WEFT_EINVAL (a server without a certificate, a stream already TLS),
 * WEFT_ECLOSED, WEFT_ENOMEM or WEFT_ETLS. */
WEFT_EXTERN int weft_tls_start(weft_stream_t *stream, weft_tls_t *tls,
                               const char *servername);

/* Drives the handshake of a TLS stream.  Returns 0 once it is complete,
 * WEFT_EAGAIN while it waits for the peer (wait for WEFT_STREAM_READ and
 * call again: what it must send is queued and flushed by the stream),
 * WEFT_ECERT when the peer's certificate was refused, WEFT_ETLS for any
 * other TLS failure (weft_tls_reason says which), a socket error, or
 * WEFT_EINVAL for a stream that is not TLS.  A failed handshake leaves the
 * stream fit only to be closed. */
WEFT_EXTERN int weft_tls_handshake(weft_stream_t *stream);

/* OpenSSL's reason, in words, for the last TLS failure of stream
 * ("certificate verify failed: self-signed certificate"), or NULL when
 * none happened (or stream is not TLS).  Valid until the stream is
 * closed. */
WEFT_EXTERN const char *weft_tls_reason(const weft_stream_t *stream);

/* What weft_tls_get reads about a TLS stream. */
enum {
  WEFT_TLS_VERSION = 1,  /* "TLSv1.3" */
  WEFT_TLS_CIPHER,       /* "TLS_AES_256_GCM_SHA384" */
  WEFT_TLS_ALPN,         /* the protocol agreed, if any */
  WEFT_TLS_SERVERNAME,   /* the SNI name: sent (client) or received */
  WEFT_TLS_RESUMED,      /* "1" if the session was resumed, else "0" */
  WEFT_TLS_PEER_SUBJECT, /* the peer's certificate: "CN=localhost,O=x" */
  WEFT_TLS_PEER_ISSUER,  /* its issuer, the same way */
  WEFT_TLS_PEER_SERIAL,  /* its serial number in hexadecimal */
  WEFT_TLS_PEER_NOT_BEFORE, /* validity, in seconds since 1970, decimal */
  WEFT_TLS_PEER_NOT_AFTER,
  WEFT_TLS_PEER_FINGERPRINT, /* SHA-256 of its DER, "AB:CD:..." */
  WEFT_TLS_PEER_SAN,     /* its DNS names and IP addresses, one a line */
  WEFT_TLS_PEER_PEM      /* the certificate itself, PEM */
};

/* Copies field (a WEFT_TLS_* above) of an established TLS stream into
 * buf as a NUL-terminated string, truncated to size bytes.  Returns the
 * field's whole length (as snprintf: a result >= size was truncated),
 * WEFT_ENOENT when there is no such value (no ALPN agreed, no
 * certificate sent), WEFT_ENOTCONN before the handshake completed, or
 * WEFT_EINVAL (not a TLS stream, an unknown field). */
WEFT_EXTERN int weft_tls_get(const weft_stream_t *stream, int field,
                             char *buf, size_t size);

/* ---- Sockets ---------------------------------------------------------- */
/* Descriptor-level helpers: each returns a non-blocking, close-on-exec
 * socket, ready to wrap with weft_stream_open, or a negative code. */

struct sockaddr;
struct addrinfo;

/* Options for weft_socket_listen. */
enum {
  WEFT_SOCKET_REUSEADDR = 1, /* SO_REUSEADDR: rebind while TIME_WAIT */
  WEFT_SOCKET_REUSEPORT = 2, /* SO_REUSEPORT: several listeners, one port */
  WEFT_SOCKET_V6ONLY = 4     /* an IPv6 socket that refuses IPv4 */
};

/* Creates a socket of socktype (SOCK_STREAM or SOCK_DGRAM) bound to addr
 * (addrlen bytes); for SOCK_STREAM it also listens with backlog.  Returns
 * the descriptor or a negative code (WEFT_EADDRINUSE, WEFT_EACCES...). */
WEFT_EXTERN int weft_socket_listen(const struct sockaddr *addr,
                                   unsigned addrlen, int socktype,
                                   int backlog, int flags);

/* Creates a socket of socktype and starts connecting it to addr.  Returns
 * the descriptor at once: wait until it is writable (WEFT_STREAM_WRITE),
 * then weft_socket_error tells how the connect ended.  A negative code for
 * a connect that failed at once. */
WEFT_EXTERN int weft_socket_connect(const struct sockaddr *addr,
                                    unsigned addrlen, int socktype);

/* The pending error of a socket (SO_ERROR) as a WEFT_E* code, or 0. */
WEFT_EXTERN int weft_socket_error(int fd);

/* Accepts a connection on the listening socket fd.  Returns the new
 * descriptor, WEFT_EAGAIN when none is waiting, or an error (WEFT_EMFILE
 * or WEFT_ENFILE when out of descriptors, WEFT_ENOBUFS or WEFT_ENOMEM when
 * out of kernel memory: the connection stays queued, and the socket stays
 * readable, so wait on a timer, not for readability, before trying
 * again). */
WEFT_EXTERN int weft_socket_accept(int fd);

/* Sends one datagram of len bytes to addr (addrlen bytes; NULL for a
 * connected socket).  Returns the bytes sent, WEFT_EAGAIN when the socket
 * cannot take it now (wait until writable), or an error (WEFT_EMSGSIZE...). */
WEFT_EXTERN int weft_socket_sendto(int fd, const void *buf, size_t len,
                                   const struct sockaddr *addr,
                                   unsigned addrlen);

/* Receives one datagram into buf (len bytes) and its sender's address
 * into from (*fromlen bytes of room, updated; from may be NULL).  Returns
 * its length, WEFT_EAGAIN when none is waiting, WEFT_EMSGSIZE when it was
 * longer than len (the rest is lost), or an error. */
WEFT_EXTERN int weft_socket_recvfrom(int fd, void *buf, size_t len,
                                     struct sockaddr *from,
                                     unsigned *fromlen);

/* ---- Processes -------------------------------------------------------- */

typedef struct weft_process_s weft_process_t;

/* Called once when the child exits: its exit status, and the signal that
 * ended it (0 if none). */
typedef void (*weft_exit_cb)(weft_process_t *process, int64_t exit_status,
                             int term_signal, void *data);

/* Options for weft_process_spawn.  size must be sizeof(weft_process_options):
 * fields are only ever appended, and weft reads those the caller's size
 * covers. */
typedef struct weft_process_options {
  size_t size;
  const char *file;  /* the program, looked up in PATH if it has no slash */
  char **args;       /* argv, NULL-terminated; args[0] is the program name */
  char **env;        /* "NAME=value" list, NULL-terminated; NULL: inherit */
  const char *cwd;   /* NULL: the parent's */
  int stdio[3];      /* descriptor for the child's 0, 1, 2; -1: /dev/null */
  int flags;         /* WEFT_PROCESS_* */
  weft_exit_cb exit_cb;
  void *data;
} weft_process_options;

/* Flags for weft_process_options. */
enum {
  WEFT_PROCESS_DETACHED = 1 /* the child leads its own session */
};

/* Starts a child process and stores it in *out.  The descriptors in
 * stdio are duplicated into the child; the caller keeps (and closes) its
 * own.  exit_cb runs from the loop when the child exits; a running child
 * keeps the loop alive.  Returns 0, WEFT_EINVAL, WEFT_ENOMEM, or why the
 * program could not start (WEFT_ENOENT, WEFT_EACCES...): a failed call
 * never runs exit_cb. */
WEFT_EXTERN int weft_process_spawn(weft_loop_t *loop,
                                   const weft_process_options *options,
                                   weft_process_t **out);

/* The child's process id, or WEFT_EINVAL. */
WEFT_EXTERN int weft_process_pid(const weft_process_t *process);

/* Sends signo to the child.  Returns 0, WEFT_ESRCH once it has exited,
 * or WEFT_EINVAL. */
WEFT_EXTERN int weft_process_kill(weft_process_t *process, int signo);

/* Whether the running child keeps the loop alive: weft_process_ref (the
 * default) makes weft_loop_run wait for it and weft_loop_free refuse
 * (WEFT_EBUSY) until it exits; after weft_process_unref it does neither,
 * as libuv's uv_unref: its exit is still seen (exit_cb runs) while
 * something else keeps the loop running, and a loop freed meanwhile
 * releases it (the child runs on, unreaped by weft; exit_cb never runs and
 * the process pointer is no longer valid).  Calls after the exit do
 * nothing.  Returns 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_process_ref(weft_process_t *process);
WEFT_EXTERN int weft_process_unref(weft_process_t *process);

/* Releases the process.  After its exit that frees it; before, its
 * exit_cb will not run, but the running child still keeps the loop alive
 * (as in libuv and node) and weft reaps it when it exits, then frees it.
 * NULL is a no-op. */
WEFT_EXTERN void weft_process_close(weft_process_t *process);

/* ---- Watching files --------------------------------------------------- */

typedef struct weft_fswatch_s weft_fswatch_t;

/* Kinds of change, or'ed in a callback's events: a name appeared,
 * disappeared or was renamed (RENAME), or its contents or metadata
 * changed (CHANGE). */
enum { WEFT_FSWATCH_RENAME = 1, WEFT_FSWATCH_CHANGE = 2 };

/* Flags for weft_fswatch_start. */
enum {
  WEFT_FSWATCH_RECURSIVE = 1 /* a directory's whole tree: not on Linux */
};

/* Called from the loop for each name that changed in a window: name is
 * the entry's name inside a watched directory, or the watched file's own
 * name; events is a WEFT_FSWATCH_* set.  On a failure, name is NULL,
 * events 0 and status the negative code; status is 0 otherwise. */
typedef void (*weft_fswatch_cb)(weft_fswatch_t *watch, const char *name,
                                int events, int status, void *data);

/* Watches path (a file, or a directory and its entries) and stores the
 * watcher in *out.  Changes are coalesced: the first change of a burst
 * opens a window of window_ms (0: none, every change is reported at once;
 * at most one hour), and when it ends cb runs once per name that changed
 * in it, in the order the names first changed, with the union of their
 * kinds.  The watcher keeps the loop alive until weft_fswatch_close.
 * Returns 0, WEFT_EINVAL (NULL or empty arguments, unknown flags),
 * WEFT_ENOMEM, WEFT_ENOENT for a path that does not exist, WEFT_ENOSYS
 * for WEFT_FSWATCH_RECURSIVE where the platform cannot (Linux's inotify
 * watches one directory level), or the system's reason (WEFT_EACCES,
 * WEFT_ENOSPC when inotify's watch limit is reached); a failed call never
 * runs cb. */
WEFT_EXTERN int weft_fswatch_start(weft_loop_t *loop, const char *path,
                                   int flags, uint64_t window_ms,
                                   weft_fswatch_cb cb, void *data,
                                   weft_fswatch_t **out);

/* Stops the watcher: cb never runs again, also for changes already in
 * the window, and the watcher is freed from the loop.  Safe from its own
 * callback.  Returns 0, or WEFT_ECLOSED if it was closed before; NULL is
 * 0. */
WEFT_EXTERN int weft_fswatch_close(weft_fswatch_t *watch);

/* ---- Blocking work ---------------------------------------------------- */

/* Runs on a thread of libuv's pool: must not touch the loop. */
typedef void (*weft_work_fn)(void *data);

/* Runs on the loop's thread once the work is done: status 0. */
typedef void (*weft_done_fn)(weft_loop_t *loop, int status, void *data);

/* Runs work(data) on libuv's thread pool (UV_THREADPOOL_SIZE threads, 4 by
 * default), then done(loop, 0, data) from the loop; done may be NULL.  The
 * pending work keeps the loop alive, and weft_loop_free waits for it.
 * Blocking calls (files, CPU-heavy C) go here so the loop stays
 * responsive.  Returns 0, WEFT_EINVAL or WEFT_ENOMEM; a failed call never
 * runs either function. */
WEFT_EXTERN int weft_work(weft_loop_t *loop, weft_work_fn work,
                          weft_done_fn done, void *data);

/* ---- Threads: a worker pool ------------------------------------------- */
/* A pool runs jobs on its own worker threads and finishes each on the
 * loop's thread.  Workers start when a job finds none idle (up to max) and
 * leave after idle_ms without work while more than min remain.  Each
 * worker may carry host state made by thread_init (a Lua binding gives
 * each its own lua_State). */

typedef struct weft_pool_s weft_pool_t;
typedef struct weft_job_s weft_job_t;

/* Runs on a worker: thread_data is what thread_init returned.  Returns the
 * job's status (0 or a negative code), handed to the done callback. */
typedef int (*weft_job_fn)(weft_job_t *job, void *thread_data, void *arg);

/* Runs on the loop's thread when the job ended (status from the job's
 * function, or WEFT_ECANCELED for a job cancelled before it ran); the job
 * is freed after it returns. */
typedef void (*weft_job_done)(weft_loop_t *loop, weft_job_t *job,
                              int status, void *arg);

/* Options for weft_pool_new; size = sizeof(weft_pool_options), fields are
 * only ever appended. */
typedef struct weft_pool_options {
  size_t size;
  unsigned min;     /* threads kept even when idle */
  unsigned max;     /* threads at most (> 0) */
  uint64_t idle_ms; /* how long a thread beyond min waits for work; 0: forever */
  void *(*thread_init)(void *ud);                  /* in each new worker */
  void (*thread_exit)(void *thread_data, void *ud); /* before it leaves */
  void *ud;
  /* how long a worker that ran out of jobs watches the queue before it
   * sleeps, in µs (0: it sleeps at once).  A sleeping worker costs a
   * wake-up per job, tens of µs on some machines; a watching one takes
   * the next job at once, at the price of a busy core meanwhile. */
  unsigned spin_us;
} weft_pool_options;

/* Creates a pool finishing its jobs on loop, starting min workers now.
 * Returns 0, WEFT_EINVAL (max 0, min > max, a size that ends before
 * spin_us) or WEFT_ENOMEM.  The loop
 * cannot be freed before weft_pool_close. */
WEFT_EXTERN int weft_pool_new(weft_loop_t *loop,
                              const weft_pool_options *options,
                              weft_pool_t **out);

/* Queues fn(job, thread_data, arg) to run on a worker (FIFO), then
 * done(loop, job, status, arg) on the loop; stores the job in *out (if not
 * NULL), valid until done returns.  A pending job keeps the loop alive.
 * Returns 0, WEFT_ECLOSED for a closed pool, WEFT_EAGAIN when no thread
 * could be started, WEFT_EINVAL or WEFT_ENOMEM. */
WEFT_EXTERN int weft_pool_submit(weft_pool_t *pool, weft_job_fn fn,
                                 weft_job_done done, void *arg,
                                 weft_job_t **out);

/* Cancels a job: a queued one never runs and its done gets
 * WEFT_ECANCELED; a running one is flagged (weft_job_cancelled), which its
 * function may poll to stop early, and woken where it waits in weft: a
 * blocking weft_chan_send / weft_chan_recv returns WEFT_ECANCELED, and so
 * does a weft_loop_run it is in.  Call it on the loop's thread.  Returns
 * 0, or WEFT_ENOENT once it has finished. */
WEFT_EXTERN int weft_job_cancel(weft_job_t *job);

/* 1 if the job was cancelled while it ran; for the job's own function. */
WEFT_EXTERN int weft_job_cancelled(const weft_job_t *job);

/* The pool's current number of threads. */
WEFT_EXTERN unsigned weft_pool_threads(weft_pool_t *pool);

/* Closes the pool and blocks the calling thread until it is closed:
 * queued jobs are cancelled, running ones finish (cancel them first to
 * have them stop where they wait), every thread leaves, then every pending
 * done callback runs, inside this call.  This is for a caller with no loop
 * to run meanwhile (a host shutting down); a caller on the loop's thread
 * that can return to its loop uses weft_pool_close_async, so that timers
 * and I/O keep running while jobs finish.  Also finishes a close that
 * weft_pool_close_async began (its callback runs inside this call).  The
 * pool is freed once the loop has closed its handle.  Returns 0, or
 * WEFT_ECLOSED once closed; NULL is a no-op. */
WEFT_EXTERN int weft_pool_close(weft_pool_t *pool);

/* Begins closing the pool without blocking: queued jobs are cancelled
 * (their done callbacks run from the loop), running ones finish, threads
 * leave as they become idle; once every thread has left and every done
 * callback has run, cb(loop, 0, data) runs from the loop (cb may be NULL)
 * and the pool is freed after it: do not use it then.  The close keeps the
 * loop alive until it ends.  Call it on the loop's thread.  Returns 0,
 * WEFT_ECLOSED if the pool is already closing, or WEFT_EINVAL; a failed
 * call never runs cb. */
WEFT_EXTERN int weft_pool_close_async(weft_pool_t *pool, weft_done_fn cb,
                                      void *data);

/* ---- Threads: channels ------------------------------------------------ */
/* A channel carries byte messages between threads, in order.  A thread
 * without a loop blocks in weft_chan_send / weft_chan_recv; a loop waits
 * with weft_chan_wait instead, and is woken through libuv (bursts of
 * messages cost one wake-up). */

typedef struct weft_chan_s weft_chan_t;
typedef struct weft_chan_wait_s weft_chan_wait_t;

/* What a loop-side wait is for. */
enum {
  WEFT_CHAN_RECV = 1, /* a message to receive, or the channel closed */
  WEFT_CHAN_SEND = 2  /* room to send, or the channel closed */
};

/* Called once from the loop when a wait ends: status 0, or WEFT_ECLOSED
 * (closed, and for WEFT_CHAN_RECV drained). */
typedef void (*weft_chan_cb)(weft_chan_t *chan, int event, int status,
                             void *data);

/* Creates a channel holding at most capacity messages (SIZE_MAX:
 * unbounded; 0 is WEFT_EINVAL), with one reference for the caller. */
WEFT_EXTERN int weft_chan_new(size_t capacity, weft_chan_t **out);

/* Takes and drops references; the last unref frees the channel and any
 * message still in it.  Thread-safe. */
WEFT_EXTERN void weft_chan_ref(weft_chan_t *chan);
WEFT_EXTERN void weft_chan_unref(weft_chan_t *chan);

/* Copies len bytes of data into the channel, waiting while it is full up
 * to timeout_ms (-1: no limit; 0: never wait).  Returns 0, WEFT_EAGAIN
 * (full, timeout 0), WEFT_ETIMEDOUT, WEFT_ECLOSED, WEFT_ECANCELED (the pool
 * job running it was cancelled while it waited), WEFT_EINVAL or
 * WEFT_ENOMEM.  Thread-safe; blocks the calling thread. */
WEFT_EXTERN int weft_chan_send(weft_chan_t *chan, const void *data,
                               size_t len, int64_t timeout_ms);

/* Resizes a message block as realloc does (block NULL: a new one), with
 * the allocator weft uses (weft_replace_allocator): returns the block, or
 * NULL without memory (block is then unchanged).  A block goes to
 * weft_chan_send_block or to weft_chan_free. */
WEFT_EXTERN void *weft_chan_realloc(void *block, size_t len);

/* Sends the first len bytes of block, a block from weft_chan_realloc,
 * without copying them: a large message crosses at the cost of one block.
 * On success the channel owns block, and the receiver gets it from
 * weft_chan_recv as its message (a message of a few dozen bytes is copied
 * and its block freed at once); on failure block is still the caller's.
 * Waits and returns as weft_chan_send; WEFT_EINVAL for a NULL chan or
 * block. */
WEFT_EXTERN int weft_chan_send_block(weft_chan_t *chan, void *block,
                                     size_t len, int64_t timeout_ms);

/* Takes the oldest message, waiting while there is none up to timeout_ms
 * (-1: no limit; 0: never wait); stores its bytes (free them with
 * weft_chan_free) and length.  Each message goes to exactly one receiver.
 * Returns 0, WEFT_EAGAIN, WEFT_ETIMEDOUT, WEFT_ECLOSED once closed and
 * drained, WEFT_ECANCELED (the pool job running it is cancelled: it takes
 * nothing from then on, and a wait ends at once), WEFT_ENOMEM (nothing
 * taken) or WEFT_EINVAL. */
WEFT_EXTERN int weft_chan_recv(weft_chan_t *chan, int64_t timeout_ms,
                               void **data, size_t *len);

/* Takes up to max (at most 64) waiting messages at once, without
 * waiting: one lock for a burst.  Stores each one's bytes (free with
 * weft_chan_free) and length in data[i] and len[i].  Returns how many
 * (> 0), WEFT_EAGAIN when none is waiting, WEFT_ECLOSED once closed and
 * drained, WEFT_ECANCELED (a cancelled pool job's), WEFT_ENOMEM (nothing
 * taken) or WEFT_EINVAL. */
WEFT_EXTERN int weft_chan_recv_many(weft_chan_t *chan, void **data,
                                    size_t *len, size_t max);

/* Frees a message weft_chan_recv returned, or a block from
 * weft_chan_realloc; NULL is a no-op. */
WEFT_EXTERN void weft_chan_free(void *data);

/* Closes the channel: sends fail with WEFT_ECLOSED, receivers get the
 * messages left and then WEFT_ECLOSED; every waiter wakes.  Returns 0, or
 * WEFT_ECLOSED if it was closed already. */
WEFT_EXTERN int weft_chan_close(weft_chan_t *chan);

/* The number of messages waiting: a snapshot read without the channel's
 * lock, so polling it never slows senders down. */
WEFT_EXTERN size_t weft_chan_count(weft_chan_t *chan);

/* Runs cb(chan, event, status, data) once from loop when event holds
 * (at once, from the loop, if it holds now), and stores the wait in *out
 * (if not NULL) for weft_chan_unwait.  Call it on the loop's thread.  A
 * pending wait keeps the loop alive.  Returns 0, WEFT_EINVAL or
 * WEFT_ENOMEM. */
WEFT_EXTERN int weft_chan_wait(weft_chan_t *chan, weft_loop_t *loop,
                               int event, weft_chan_cb cb, void *data,
                               weft_chan_wait_t **out);

/* Withdraws a wait whose callback has not run (on the loop's thread); its
 * callback will not run.  Returns 0 or WEFT_EINVAL. */
WEFT_EXTERN int weft_chan_unwait(weft_chan_wait_t *wait);

/* ---- DNS -------------------------------------------------------------- */

/* Called once when a lookup ends: status 0 and res (free it with
 * weft_freeaddrinfo), or a negative code (WEFT_EAI_NONAME...) and NULL. */
typedef void (*weft_addrinfo_cb)(weft_loop_t *loop, int status,
                                 struct addrinfo *res, void *data);

/* Resolves node and/or service with getaddrinfo(3) on libuv's thread pool
 * and runs cb from the loop.  hints may be NULL.  Returns 0, WEFT_EINVAL
 * or WEFT_ENOMEM; a failed call never runs cb.  A pending lookup keeps the
 * loop alive (and weft_loop_free waits for it). */
WEFT_EXTERN int weft_getaddrinfo(weft_loop_t *loop, const char *node,
                                 const char *service,
                                 const struct addrinfo *hints,
                                 weft_addrinfo_cb cb, void *data);

/* Frees a result of weft_getaddrinfo; NULL is a no-op. */
WEFT_EXTERN void weft_freeaddrinfo(struct addrinfo *res);

/* Called once when a reverse lookup ends: status 0 with host and service,
 * or a negative code and NULLs.  The strings live until cb returns. */
typedef void (*weft_nameinfo_cb)(weft_loop_t *loop, int status,
                                 const char *host, const char *service,
                                 void *data);

/* Turns addr back into a host name and a service with getnameinfo(3)
 * (flags: NI_* values) on libuv's thread pool.  As weft_getaddrinfo. */
WEFT_EXTERN int weft_getnameinfo(weft_loop_t *loop,
                                 const struct sockaddr *addr, int flags,
                                 weft_nameinfo_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
