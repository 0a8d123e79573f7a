/* threadpool.h - a persistent pool of worker threads for data-parallel
 * kernels.
 *
 * qf_parallel_for(pool, n, fn, ctx) runs fn(ctx, task, thread_id) for every
 * task in [0, n) and returns when all have finished. The calling thread takes
 * part (thread_id 0); workers are 1 .. size - 1. The tasks are cut into
 * size contiguous ranges, and thread r works through range r first, then
 * helps with what is left of the others: number tasks by the part of the
 * output they write, and a thread tends to get the same part of every layer
 * (cache locality across layers). Which thread runs a task still varies,
 * but a kernel that gives each output element to exactly one task computes
 * the same bits for any thread count. No allocation per call. pool == NULL, a pool of
 * one thread or n == 1 run everything inline on the caller.
 *
 * One call at a time per pool: parallel_for is not reentrant (a task must
 * not call qf_parallel_for on the same pool) and the pool must not be shared
 * by threads that call it concurrently. */
#ifndef QF_BASE_THREADPOOL_H
#define QF_BASE_THREADPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

typedef struct qf_threadpool qf_threadpool;

/* Task body: ctx as given, task in [0, n_tasks), thread_id in [0, size). */
typedef void (*qf_task_fn)(void *ctx, int64_t task, int thread_id);

/* Most threads a pool may have (caller included). */
#define QF_THREADPOOL_MAX 64

/* A pool of n_threads threads in all (the caller counts as one, so
 * n_threads - 1 workers are started); n_threads in [1, QF_THREADPOOL_MAX].
 * *out owned by the caller, released with qf_threadpool_destroy. */
qf_status qf_threadpool_create(int n_threads, qf_threadpool **out, qf_err *err);
/* Joins the workers; NULL is a no-op. */
void qf_threadpool_destroy(qf_threadpool *pool);
/* Threads taking part in a call (1 for NULL). */
int qf_threadpool_size(const qf_threadpool *pool);

void qf_parallel_for(qf_threadpool *pool, int64_t n_tasks, qf_task_fn fn, void *ctx);
/* Items per task for n items cut into about per_thread tasks per thread of
 * pool (at least 1; 0 when n <= 0): task t takes items [t * chunk,
 * min(n, (t + 1) * chunk)), and there are ceil(n / chunk) tasks. */
int64_t qf_parallel_chunk(const qf_threadpool *pool, int64_t n, int per_thread);

/* While held, idle workers (and a caller waiting for them) keep spinning
 * instead of sleeping after the short spin budget: a session holds its pool
 * for the length of a run, whose jobs follow each other closely. Sleeping
 * between them made 2-thread runs slower than 1-thread ones on a virtual
 * machine, where waking a halted vCPU can take hundreds of microseconds.
 * Release it when the burst of work ends; NULL is a no-op. */
void qf_threadpool_hold(qf_threadpool *pool, bool on);

#endif /* QF_BASE_THREADPOOL_H */
