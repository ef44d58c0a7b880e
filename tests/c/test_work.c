/* test_work.c: blocking work on the thread pool. */
#include "test.h"

#include <pthread.h>

struct job {
  pthread_t loop_thread, work_thread;
  int ran, done, status;
};

static void work(void *data) {
  struct job *j = data;
  j->work_thread = pthread_self();
  j->ran++;
}

static void done(weft_loop_t *loop, int status, void *data) {
  struct job *j = data;
  (void)loop;
  ASSERT(pthread_equal(pthread_self(), j->loop_thread));
  j->done++;
  j->status = status;
}

static void work_runs_off_the_loop_thread(void) {
  weft_loop_t *loop;
  struct job j;
  memset(&j, 0, sizeof j);
  j.status = 1;
  j.loop_thread = pthread_self();
  ASSERT_OK(weft_loop_new(&loop));
  ASSERT_OK(weft_work(loop, work, done, &j));
  ASSERT_EQ(j.done, 0); /* never inside the call */
  ASSERT_EQ(weft_loop_free(loop), WEFT_EBUSY);
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(j.ran, 1);
  ASSERT_EQ(j.done, 1);
  ASSERT_EQ(j.status, 0);
  ASSERT(!pthread_equal(j.work_thread, j.loop_thread));
  /* done may be NULL */
  ASSERT_OK(weft_work(loop, work, NULL, &j));
  ASSERT_OK(weft_loop_run(loop, WEFT_RUN_DEFAULT));
  ASSERT_EQ(j.ran, 2);
  ASSERT_EQ(weft_work(loop, NULL, done, &j), WEFT_EINVAL);
  ASSERT_EQ(weft_work(NULL, work, done, &j), WEFT_EINVAL);
  test_free_loop(loop);
}

TEST_MAIN(T(work_runs_off_the_loop_thread))
