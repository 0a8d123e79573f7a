/* threadpool.c - persistent worker threads for qf_parallel_for (see
 * threadpool.h).
 *
 * A call publishes the job and opens it by bumping a generation number in
 * one atomic state word (generation, "open" flag, count of joined workers).
 * Workers spin on that word for a short while (a layer launches several jobs
 * in quick succession, and waking a sleeping thread costs tens of
 * microseconds, milliseconds on a loaded virtual machine), then sleep on a
 * condition variable. A worker joins a job by
 * incrementing the count with a compare-and-swap that only succeeds while
 * the job is open; tasks come from atomic counters, one per thread's range
 * (run_tasks). When the caller has no
 * task left it closes the job and waits only for the workers that joined, so
 * a worker the OS has not scheduled yet (a busy machine) never delays the
 * caller, and a late worker can never pick up tasks of the next call. */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

/* Spinning: a bounded busy wait before sleeping. On x86 it is bounded by
 * the time-stamp counter (about 50-100 us at the usual 2-4 GHz) and does not use
 * `pause`: under KVM a pause loop triggers pause-loop exiting, and the
 * hypervisor then deschedules the spinning vCPU, which is exactly the
 * latency spinning is meant to avoid. Elsewhere it counts iterations. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
/* Short on purpose: back-to-back jobs of one layer follow within
 * microseconds, while a longer gap (a serial op on the caller) is better
 * spent asleep. A 2 ms budget (round 1) had both workers burning a core
 * between jobs; on a shared 2-core machine that stole the CPU from the
 * caller, which then ran its own share of the next job late. */
#define SPIN_BUDGET 200000ull /* TSC ticks */
typedef uint64_t spin_t;
static inline spin_t spin_start(void) { return __rdtsc(); }
static inline bool spin_more(spin_t t0) { return __rdtsc() - t0 < SPIN_BUDGET; }
#else
#define SPIN_BUDGET 100000ull /* iterations */
typedef uint64_t spin_t;
static inline spin_t spin_start(void) { return 0; }
static inline bool spin_more(spin_t t0) {
    (void)t0;
    static _Thread_local uint64_t n;
    return ++n % SPIN_BUDGET != 0;
}
#endif

/* A spinning thread yields its CPU every this many polls: when the OS put
 * it on the same CPU as the thread it waits for (more threads than free
 * CPUs), spinning on would hold that thread off for a whole time slice. On a
 * CPU of its own the yield returns at once, and this rarely (tens of
 * microseconds of polling) it costs nothing measurable. SqueezeNet 1.1,
 * batch 1, 2 threads pinned to one CPU: 6.6 ms per run without it, 2.6 ms
 * with it (1 thread: 2.5 ms). */
#define SPIN_YIELD_POLLS 4096u

/* state = generation << 17 | OPEN | joined workers (< 2^16) */
#define ST_OPEN ((uint64_t)1 << 16)
#define ST_COUNT ((uint64_t)0xFFFF)
#define ST_GEN_SHIFT 17

struct qf_threadpool {
    int n_threads;
    pthread_t threads[QF_THREADPOOL_MAX];
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* new job or stop */
    pthread_cond_t done; /* joined count dropped to 0 after close */
    _Atomic uint64_t state;
    atomic_int stop;
    atomic_int hold; /* qf_threadpool_hold: spin without a budget */
    /* current job, written before the job opens */
    qf_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    /* tasks come in n_threads contiguous ranges, range r first to thread
     * r (see run_tasks); next[r] is range r's next task, one cache line
     * each */
    struct {
        _Alignas(64) atomic_int_fast64_t next;
    } range[QF_THREADPOOL_MAX];
    int sleepers; /* workers blocked on `wake` (under mu) */
};

typedef struct worker_start {
    qf_threadpool *pool;
    int id;
} worker_start;

static int64_t range_end(const qf_threadpool *p, int r) {
    return p->n_tasks * (r + 1) / p->n_threads;
}

/* Thread id works through range id first, then takes what is left of the
 * others (a thread the OS runs late, or not at all, delays nobody). Kernels
 * number their tasks by where they write, so each thread tends to get the
 * same part of every layer: a layer's output stays in the cache of the core
 * that wrote it, which the next layer's same part then reads. With one
 * shared counter, consecutive tasks went to whichever thread came first, and
 * at batch 1 the activations moved between cores at every layer. */
static void run_tasks(qf_threadpool *p, int id) {
    for (int k = 0; k < p->n_threads; k++) {
        const int r = (id + k) % p->n_threads;
        const int64_t end = range_end(p, r);
        for (;;) {
            const int64_t t = atomic_fetch_add_explicit(&p->range[r].next, 1, memory_order_relaxed);
            if (t >= end) break;
            p->fn(p->ctx, t, id);
        }
    }
}

static uint64_t gen_of(uint64_t s) { return s >> ST_GEN_SHIFT; }

/* Join the open job of generation g; false when it closed meanwhile. */
static bool try_join(qf_threadpool *p, uint64_t g) {
    uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    while (gen_of(s) == g && (s & ST_OPEN)) {
        if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
    return false;
}

static void leave(qf_threadpool *p) {
    uint64_t s = atomic_fetch_sub_explicit(&p->state, 1, memory_order_acq_rel) - 1;
    if ((s & ST_COUNT) == 0 && !(s & ST_OPEN)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker_main(void *arg) {
    qf_threadpool *p = ((worker_start *)arg)->pool;
    int id = ((worker_start *)arg)->id;
    qf_free(arg);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = gen_of(atomic_load_explicit(&p->state, memory_order_acquire));
        const spin_t t0 = spin_start();
        unsigned polls = 0;
        while (g == seen &&
               (spin_more(t0) || atomic_load_explicit(&p->hold, memory_order_relaxed))) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
            g = gen_of(atomic_load_explicit(&p->state, memory_order_acquire));
            if (++polls % SPIN_YIELD_POLLS == 0) sched_yield();
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while ((g = gen_of(atomic_load_explicit(&p->state, memory_order_acquire))) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_relaxed))
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
        seen = g;
        if (try_join(p, g)) {
            run_tasks(p, id);
            leave(p);
        }
    }
    return NULL;
}

qf_status qf_threadpool_create(int n_threads, qf_threadpool **out, qf_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > QF_THREADPOOL_MAX)
        return qf_errf(err, QF_ERR_INVALID_ARG, "qf_threadpool_create: %d threads (1..%d)",
                       n_threads, QF_THREADPOOL_MAX);
    qf_threadpool *p = qf_malloc_aligned(sizeof *p); /* the ranges are cache-line aligned */
    if (p) memset(p, 0, sizeof *p);
    if (!p) return qf_errf(err, QF_ERR_NOMEM, "qf_threadpool_create: out of memory");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->state, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->hold, 0);
    for (int r = 0; r < QF_THREADPOOL_MAX; r++)
        atomic_init(&p->range[r].next, 0);
    for (int i = 1; i < n_threads; i++) {
        worker_start *ws = qf_malloc(sizeof *ws);
        if (!ws) {
            qf_threadpool_destroy(p);
            return qf_errf(err, QF_ERR_NOMEM, "qf_threadpool_create: out of memory");
        }
        ws->pool = p;
        ws->id = i;
        if (pthread_create(&p->threads[p->n_started], NULL, worker_main, ws) != 0) {
            qf_free(ws);
            qf_threadpool_destroy(p);
            return qf_errf(err, QF_ERR_IO, "qf_threadpool_create: cannot start thread %d", i);
        }
        p->n_started++;
    }
    *out = p;
    return QF_OK;
}

void qf_threadpool_destroy(qf_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    qf_free_aligned(p);
}

int qf_threadpool_size(const qf_threadpool *p) { return p ? p->n_threads : 1; }

int64_t qf_parallel_chunk(const qf_threadpool *pool, int64_t n, int per_thread) {
    if (n <= 0) return 0;
    int64_t tasks = (int64_t)per_thread * qf_threadpool_size(pool);
    if (tasks > n) tasks = n;
    if (tasks < 1) tasks = 1;
    return (n + tasks - 1) / tasks;
}

void qf_threadpool_hold(qf_threadpool *p, bool on) {
    if (p) atomic_store_explicit(&p->hold, on ? 1 : 0, memory_order_relaxed);
}

void qf_parallel_for(qf_threadpool *p, int64_t n_tasks, qf_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* no worker is inside a job here (the previous call waited for them),
     * so the job fields can be written; the release below publishes them */
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    for (int r = 0; r < p->n_threads; r++)
        atomic_store_explicit(&p->range[r].next, r ? range_end(p, r - 1) : 0, memory_order_relaxed);
    const uint64_t g = gen_of(atomic_load_explicit(&p->state, memory_order_relaxed)) + 1;
    atomic_store_explicit(&p->state, (g << ST_GEN_SHIFT) | ST_OPEN, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    /* close: from now on nobody joins; wait for those who did */
    uint64_t s = atomic_fetch_and_explicit(&p->state, ~ST_OPEN, memory_order_acq_rel) & ~ST_OPEN;
    const spin_t t0 = spin_start();
    unsigned polls = 0;
    while ((s & ST_COUNT) != 0 &&
           (spin_more(t0) || atomic_load_explicit(&p->hold, memory_order_relaxed))) {
        s = atomic_load_explicit(&p->state, memory_order_acquire);
        if (++polls % SPIN_YIELD_POLLS == 0) sched_yield();
    }
    if ((s & ST_COUNT) == 0) return;
    pthread_mutex_lock(&p->mu);
    while ((atomic_load_explicit(&p->state, memory_order_acquire) & ST_COUNT) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
