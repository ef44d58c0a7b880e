/* test_fswatch.c: watching files and directories, bursts coalesced. */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct seen {
  weft_fswatch_t *w;
  char dir[64];
  int calls, b_calls, events, status;
  char name[64];
};

static void write_file(const char *dir, const char *name, const char *data) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data, strlen(data)), (ssize_t)strlen(data));
  close(fd);
}

static void make_dir(struct seen *s) {
  strcpy(s->dir, "/tmp/weft-fswatch-XXXXXX");
  ASSERT(mkdtemp(s->dir) != NULL);
}

static void remove_dir(struct seen *s) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
  ASSERT_OK(system(cmd));
}

/* Records the first change and closes the watcher. */
static void on_first(weft_fswatch_t *w, const char *name, int events,
                     int status, void *data) {
  struct seen *s = data;
  s->calls++;
  s->events = events;
  s->status = status;
  snprintf(s->name, sizeof s->name, "%s", name ? name : "(null)");
  ASSERT_OK(weft_fswatch_close(w));
  ASSERT_EQ(weft_fswatch_close(w), WEFT_ECLOSED); /* twice */
}

static void write_a(weft_loop_t *loop, weft_id_t id, int arg, void *data) {
  (void)loop, (void)id, (void)arg;
  write_file(((struct seen *)data)->dir, "a", "x");
}

static void fswatch_reports_a_new_entry_of_a_directory(void) {
  weft_loop_t *loop;
  struct seen s = {0};
  weft_id_t id;
  make_dir(&s);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_fswatch_start(loop, s.dir, 0, 10, on_first, &s, &s.w));
  ASSERT_OK(weft_once(loop, 1, write_a, &s, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* until it closed */
  ASSERT_EQ(s.calls, 1); /* the creation and the write: one call */
  ASSERT_STR_EQ(s.name, "a");
  ASSERT_EQ(s.events & WEFT_FSWATCH_RENAME, WEFT_FSWATCH_RENAME);
  ASSERT_EQ(s.status, 0);
  test_free_loop(loop);
  remove_dir(&s);
}

/* Counts b's deliveries; b's first delivery writes z, and z's delivery
 * (which comes after every event b had) closes. */
static void on_burst(weft_fswatch_t *w, const char *name, int events,
                     int status, void *data) {
  struct seen *s = data;
  (void)events;
  ASSERT_EQ(status, 0);
  s->calls++;
  if (!strcmp(name, "b")) {
    if (s->b_calls++ == 0) write_file(s->dir, "z", "!");
  } else if (!strcmp(name, "z")) {
    weft_fswatch_close(w);
  }
}

static void write_b_1000(weft_loop_t *loop, weft_id_t id, int arg,
                         void *data) {
  struct seen *s = data;
  char path[128];
  int fd, i;
  (void)loop, (void)id, (void)arg;
  snprintf(path, sizeof path, "%s/b", s->dir);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  for (i = 0; i < 1000; i++) ASSERT_EQ(write(fd, "0123456789", 10), 10);
  close(fd);
}

static void fswatch_coalesces_a_burst_of_writes(void) {
  weft_loop_t *loop;
  struct seen s = {0};
  weft_id_t id;
  make_dir(&s);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_fswatch_start(loop, s.dir, 0, 50, on_burst, &s, &s.w));
  ASSERT_OK(weft_once(loop, 1, write_b_1000, &s, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(s.b_calls, 1); /* 1,000 writes, one call */
  ASSERT_EQ(s.calls, 2);   /* b, then z */
  test_free_loop(loop);
  remove_dir(&s);
}

/* Without a window every change comes on its own. */
static void on_each(weft_fswatch_t *w, const char *name, int events,
                    int status, void *data) {
  struct seen *s = data;
  (void)events, (void)status;
  s->calls++;
  if (!strcmp(name, "c")) weft_fswatch_close(w);
}

static void write_a_then_c(weft_loop_t *loop, weft_id_t id, int arg,
                           void *data) {
  struct seen *s = data;
  (void)loop, (void)id, (void)arg;
  write_file(s->dir, "a", "1");
  write_file(s->dir, "a", "2");
  write_file(s->dir, "c", "3");
}

static void fswatch_window_zero_reports_each_change(void) {
  weft_loop_t *loop;
  struct seen s = {0};
  weft_id_t id;
  make_dir(&s);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_fswatch_start(loop, s.dir, 0, 0, on_each, &s, &s.w));
  ASSERT_OK(weft_once(loop, 1, write_a_then_c, &s, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_GT(s.calls, 2); /* a's several events, then c */
  test_free_loop(loop);
  remove_dir(&s);
}

static void fswatch_watches_a_file_by_its_name(void) {
  weft_loop_t *loop;
  struct seen s = {0};
  weft_id_t id;
  char path[96];
  make_dir(&s);
  write_file(s.dir, "a", "before");
  snprintf(path, sizeof path, "%s/a", s.dir);
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_fswatch_start(loop, path, 0, 10, on_first, &s, &s.w));
  ASSERT_OK(weft_once(loop, 1, write_a, &s, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_STR_EQ(s.name, "a");
  ASSERT_EQ(s.events, WEFT_FSWATCH_CHANGE);
  test_free_loop(loop);
  remove_dir(&s);
}

static void never(weft_fswatch_t *w, const char *name, int events, int status,
                  void *data) {
  (void)w, (void)name, (void)events, (void)status, (void)data;
  ASSERT(0);
}

static void fswatch_bad_arguments_and_missing_paths(void) {
  weft_loop_t *loop;
  weft_fswatch_t *w = NULL;
  int fired = 0;
  weft_id_t id;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_EQ(weft_fswatch_start(loop, "/nonexistent/weft", 0, 10, never, NULL, &w),
            WEFT_ENOENT);
  ASSERT(w == NULL);
  ASSERT_EQ(weft_fswatch_start(NULL, "/tmp", 0, 10, never, NULL, &w), WEFT_EINVAL);
  ASSERT_EQ(weft_fswatch_start(loop, "", 0, 10, never, NULL, &w), WEFT_EINVAL);
  ASSERT_EQ(weft_fswatch_start(loop, "/tmp", 0, 10, NULL, NULL, &w), WEFT_EINVAL);
  ASSERT_EQ(weft_fswatch_start(loop, "/tmp", 8, 10, never, NULL, &w), WEFT_EINVAL);
  ASSERT_EQ(weft_fswatch_start(loop, "/tmp", 0, 10, never, NULL, NULL), WEFT_EINVAL);
#ifdef __linux__
  ASSERT_EQ(weft_fswatch_start(loop, "/tmp", WEFT_FSWATCH_RECURSIVE, 10, never,
                               NULL, &w), WEFT_ENOSYS);
#endif
  ASSERT_OK(weft_fswatch_close(NULL));
  /* the loop still works */
  ASSERT_OK(weft_once(loop, 1, test_count_cb, &fired, 0, &id));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(fired, 1);
  test_free_loop(loop);
}

static void fswatch_open_watcher_keeps_the_loop(void) {
  weft_loop_t *loop;
  weft_fswatch_t *w;
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_fswatch_start(loop, "/tmp", 0, 10, never, NULL, &w));
  ASSERT_EQ(weft_loop_alive(loop), 1);
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  ASSERT_OK(weft_fswatch_close(w));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT)); /* the handles close */
  test_free_loop(loop);
}

TEST_MAIN(T(fswatch_reports_a_new_entry_of_a_directory)
              T(fswatch_coalesces_a_burst_of_writes)
                  T(fswatch_window_zero_reports_each_change)
                      T(fswatch_watches_a_file_by_its_name)
                          T(fswatch_bad_arguments_and_missing_paths)
                              T(fswatch_open_watcher_keeps_the_loop))
