/* test_process.c: child processes. */
#include "test.h"

#include <signal.h>
#include <unistd.h>

struct exited {
  int calls;
  int64_t status;
  int signo;
};

static void on_exit_cb(weft_process_t *p, int64_t status, int signo,
                       void *data) {
  struct exited *e = data;
  e->calls++;
  e->status = status;
  e->signo = signo;
  weft_process_close(p);
}

static weft_process_options options(char **args, struct exited *e) {
  weft_process_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.file = args[0];
  o.args = args;
  o.stdio[0] = o.stdio[1] = o.stdio[2] = -1;
  o.exit_cb = on_exit_cb;
  o.data = e;
  return o;
}

static void process_reports_exit_status(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sh", "-c", "exit 3", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  ASSERT_GT(weft_process_pid(p), 0);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* the child kept it */
  ASSERT_EQ(e.calls, 1);
  ASSERT_EQ(e.status, 3);
  ASSERT_EQ(e.signo, 0);
  test_free_loop(loop);
}

static void process_kill_ends_it_with_the_signal(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sleep", "10", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  ASSERT_OK(weft_process_kill(p, SIGTERM));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(e.calls, 1);
  ASSERT_EQ(e.signo, SIGTERM);
  test_free_loop(loop);
}

static void process_pipes_its_output(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sh", "-c", "echo hello", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  char buf[16];
  int fds[2], n = 0, r;
  ASSERT_OK(pipe(fds));
  o.stdio[1] = fds[1];
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  close(fds[1]); /* the child has its own copy */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  while ((r = (int)read(fds[0], buf + n, sizeof buf - (size_t)n)) > 0) n += r;
  ASSERT_EQ(n, 6);
  ASSERT(memcmp(buf, "hello\n", 6) == 0);
  ASSERT_EQ(e.status, 0);
  test_free_loop(loop);
  close(fds[0]);
}

static void process_spawn_failures(void) {
  weft_loop_t *loop;
  weft_process_t *p = NULL;
  char *args[] = {"/nonexistent/program", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_process_spawn(loop, &o, &p), WEFT_ENOENT);
  ASSERT(p == NULL);
  o.size = 4;
  ASSERT_EQ(weft_process_spawn(loop, &o, &p), WEFT_EINVAL);
  o.size = sizeof o;
  o.flags = 0x100;
  ASSERT_EQ(weft_process_spawn(loop, &o, &p), WEFT_EINVAL);
  ASSERT_EQ(weft_process_spawn(loop, NULL, &p), WEFT_EINVAL);
  ASSERT_EQ(weft_process_kill(NULL, SIGTERM), WEFT_EINVAL);
  weft_process_close(NULL);
  /* The failed spawn's handle closes in the next iteration. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(e.calls, 0);
  test_free_loop(loop);
}

static void process_closed_early_is_still_reaped(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sleep", "0.05", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  weft_process_close(p);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY); /* the child still runs */
  /* The running child keeps the loop until it is reaped. */
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(e.calls, 0);
  test_free_loop(loop);
}

/* An unreferenced child keeps neither the run nor the free; referenced
 * again, it keeps both. */
static void process_unref_keeps_nothing_alive(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sleep", "10", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  ASSERT_OK(weft_process_unref(p));
  ASSERT_OK(weft_process_unref(p)); /* twice: the same */
  ASSERT_EQ(weft_loop_run(loop, WEFT_RUN_DEFAULT), 0); /* returns at once */
  ASSERT_EQ(weft_loop_alive(loop), 0);
  ASSERT_OK(weft_process_ref(p));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  ASSERT_OK(weft_process_kill(p, SIGTERM));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* waits for the exit */
  ASSERT_EQ(e.calls, 1);
  ASSERT_EQ(e.signo, SIGTERM);
  ASSERT_EQ(weft_process_ref(NULL), WEFT_EINVAL);
  ASSERT_EQ(weft_process_unref(NULL), WEFT_EINVAL);
  test_free_loop(loop);
}

/* An unreferenced child's exit is still seen while something else runs
 * the loop. */
static void process_unref_still_reports_exit(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sh", "-c", "exit 5", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  weft_id_t keep;
  int fired = 0;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  ASSERT_OK(weft_process_unref(p));
  /* (a referenced timer keeps the loop polling until the exit is seen) */
  ASSERT_OK(weft_once(loop, 3600000, test_count_cb, &fired, 0, &keep));
  while (e.calls == 0) ASSERT_GE(weft_loop_run(loop, WEFT_RUN_ONCE), 0);
  ASSERT_EQ(e.status, 5);
  ASSERT_EQ(fired, 0);
  ASSERT_OK(weft_watch_cancel(loop, keep));
  test_free_loop(loop);
}

/* A loop freed while an unreferenced child runs releases it; the child
 * runs on. */
static void process_unref_child_outlives_the_loop(void) {
  weft_loop_t *loop;
  weft_process_t *p;
  char *args[] = {"sleep", "10", NULL};
  struct exited e = {0, -1, -1};
  weft_process_options o = options(args, &e);
  int pid;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_process_spawn(loop, &o, &p));
  pid = weft_process_pid(p);
  ASSERT_OK(weft_process_unref(p));
  test_free_loop(loop);
  ASSERT_EQ(e.calls, 0);
  ASSERT_OK(kill(pid, 0)); /* still running */
  ASSERT_OK(kill(pid, SIGKILL));
}

TEST_MAIN(T(process_reports_exit_status) T(process_kill_ends_it_with_the_signal)
              T(process_pipes_its_output) T(process_spawn_failures)
                  T(process_closed_early_is_still_reaped)
                      T(process_unref_keeps_nothing_alive)
                          T(process_unref_still_reports_exit)
                              T(process_unref_child_outlives_the_loop))
