/* test_threadpool.c - base/threadpool.h: every task runs exactly once for
 * pools of 1..4 threads and for NULL, thread ids stay in range, the caller
 * takes part, the pool survives thousands of back-to-back calls (the
 * spin/sleep hand-off), and bad sizes are refused. Counts are checked against
 * sums computed independently in the test. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "qtest.h"

#define MAX_TASKS 5000

typedef struct job {
    atomic_int hits[MAX_TASKS];
    atomic_int bad_tid;
    atomic_int by_thread[QF_THREADPOOL_MAX];
    int size;
} job;

static void count_task(void *ctx, int64_t task, int tid) {
    job *j = ctx;
    if (tid < 0 || tid >= j->size)
        atomic_fetch_add(&j->bad_tid, 1);
    else
        atomic_fetch_add(&j->by_thread[tid], 1);
    atomic_fetch_add(&j->hits[task], 1);
    /* a little work so several threads get tasks */
    volatile uint32_t x = (uint32_t)task;
    for (int i = 0; i < 2000; i++)
        x = x * 1103515245u + 12345u;
}

static job g_job;

static int run_and_check(qf_threadpool *pool, int64_t n) {
    memset(&g_job, 0, sizeof g_job);
    g_job.size = qf_threadpool_size(pool);
    qf_parallel_for(pool, n, count_task, &g_job);
    if (atomic_load(&g_job.bad_tid)) return 0;
    for (int64_t t = 0; t < n; t++)
        if (atomic_load(&g_job.hits[t]) != 1) return 0;
    int64_t total = 0;
    for (int i = 0; i < QF_THREADPOOL_MAX; i++)
        total += atomic_load(&g_job.by_thread[i]);
    return total == n;
}

static void test_each_task_once(void) {
    static const int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, MAX_TASKS};
    CHECK(run_and_check(NULL, 17));
    CHECK_EQ_INT(qf_threadpool_size(NULL), 1);
    for (int threads = 1; threads <= 4; threads++) {
        qf_threadpool *p = NULL;
        CHECK_OK(qf_threadpool_create(threads, &p, NULL));
        CHECK_EQ_INT(qf_threadpool_size(p), threads);
        for (size_t i = 0; i < QF_ARRAY_LEN(sizes); i++) {
            int ok = run_and_check(p, sizes[i]);
            if (!ok) qf_threadpool_destroy(p);
            CHECK_MSG(ok, "%d threads, %lld tasks", threads, (long long)sizes[i]);
        }
        qf_threadpool_destroy(p);
    }
}

/* NULL pool and 1-thread pools run inline: everything on thread 0. */
static void test_inline(void) {
    qf_threadpool *p = NULL;
    CHECK_OK(qf_threadpool_create(1, &p, NULL));
    CHECK(run_and_check(p, 100));
    CHECK_EQ_INT(atomic_load(&g_job.by_thread[0]), 100);
    qf_threadpool_destroy(p);
    CHECK(run_and_check(NULL, 100));
    CHECK_EQ_INT(atomic_load(&g_job.by_thread[0]), 100);
}

typedef struct sum_job {
    int64_t out[64];
} sum_job;

static void sum_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    sum_job *s = ctx;
    s->out[task] += task + 1;
}

/* Back-to-back calls (workers spinning), then calls after the workers went
 * to sleep: no task lost or repeated. */
static void test_many_calls(void) {
    qf_threadpool *p = NULL;
    CHECK_OK(qf_threadpool_create(2, &p, NULL));
    sum_job s;
    memset(&s, 0, sizeof s);
    const int calls = 3000;
    for (int c = 0; c < calls; c++)
        qf_parallel_for(p, 1 + c % 64, sum_task, &s);
    /* sleep past the spin window, then once more */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    qf_parallel_for(p, 64, sum_task, &s);
    qf_threadpool_destroy(p);
    for (int t = 0; t < 64; t++) {
        /* task t runs in every call with more than t tasks */
        int64_t runs = 1;
        for (int c = 0; c < calls; c++)
            if (1 + c % 64 > t) runs++;
        CHECK_MSG(s.out[t] == runs * (t + 1), "task %d: %lld, want %lld", t, (long long)s.out[t],
                  (long long)(runs * (t + 1)));
    }
}

/* Held (workers spin past the budget, as during a session run): calls
 * separated by pauses longer than the spin window still run every task
 * once, and a pool destroyed while held (or released while idle) joins. */
static void test_hold(void) {
    for (int threads = 2; threads <= 3; threads++) {
        qf_threadpool *p = NULL;
        CHECK_OK(qf_threadpool_create(threads, &p, NULL));
        qf_threadpool_hold(p, true);
        struct timespec ts = {0, 2 * 1000 * 1000};
        for (int c = 0; c < 5; c++) {
            CHECK_MSG(run_and_check(p, 200), "%d threads held, call %d", threads, c);
            nanosleep(&ts, NULL);
        }
        qf_threadpool_hold(p, false);
        nanosleep(&ts, NULL);
        CHECK_MSG(run_and_check(p, 200), "%d threads released", threads);
        if (threads == 3) qf_threadpool_hold(p, true); /* destroyed while held */
        qf_threadpool_destroy(p);
    }
    qf_threadpool_hold(NULL, true); /* no-op */
}

static void test_bad_sizes(void) {
    qf_threadpool *p = (qf_threadpool *)&p;
    qf_err e;
    CHECK(qf_threadpool_create(0, &p, &e) == QF_ERR_INVALID_ARG);
    CHECK(p == NULL);
    CHECK(qf_threadpool_create(QF_THREADPOOL_MAX + 1, &p, &e) == QF_ERR_INVALID_ARG);
    qf_threadpool_destroy(NULL);
}

/* qf_parallel_chunk: the ranges it implies cover [0, n) exactly, about
 * per_thread of them a thread (fewer when n is smaller), 0 for no items. */
static void test_chunk(void) {
    qf_threadpool *pool = NULL;
    qf_err e;
    CHECK_OK(qf_threadpool_create(3, &pool, &e));
    CHECK(qf_parallel_chunk(pool, 0, 4) == 0);
    CHECK(qf_parallel_chunk(NULL, -5, 4) == 0);
    CHECK(qf_parallel_chunk(NULL, 10, 4) == 3); /* 4 tasks: 3 3 3 1 */
    CHECK(qf_parallel_chunk(pool, 2, 4) == 1);  /* one item a task */
    CHECK(qf_parallel_chunk(pool, 1200, 4) == 100);
    for (int64_t n = 1; n < 300; n += 7)
        for (int per = 1; per <= 8; per++) {
            const qf_threadpool *pp = per % 2 ? pool : NULL;
            const int64_t c = qf_parallel_chunk(pp, n, per);
            const int64_t tasks = (n + c - 1) / c;
            const int64_t want = (int64_t)per * qf_threadpool_size(pp);
            CHECK_MSG(c >= 1 && (tasks - 1) * c < n && tasks * c >= n &&
                          tasks <= (want < n ? want : n),
                      "n %lld per %d: chunk %lld, %lld tasks", (long long)n, per, (long long)c,
                      (long long)tasks);
        }
    qf_threadpool_destroy(pool);
}

QT_MAIN(QT_CASE(test_each_task_once), QT_CASE(test_inline), QT_CASE(test_many_calls),
        QT_CASE(test_hold), QT_CASE(test_bad_sizes), QT_CASE(test_chunk))
