/* The persistent worker pool (see threadpool.h for the contract).
 *
 * build.ts compiles every kernel source once per instruction-set variant; the
 * pool must exist once per process, so only the portable compile emits it and
 * the avx2/avx512 kernels link against that copy. */
#include "psi.h"

#define PSI_POOL_IS_portable 1
#if PSI_CAT(PSI_POOL_IS, PSI_VARIANT)

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long a parked worker spins before it sleeps: long enough to catch the
 * next op of a decode step (microseconds apart), short enough not to burn a
 * core while the model is idle. Longer spins backfire on a busy machine: a
 * spinning worker uses up its scheduler share, and once preempted it waits
 * behind other processes, while a sleeping one is woken at once (measured
 * here: 2-thread ops took 0.2 ms with a 200 us spin, 5 us with 50 us). */
#define SPIN_NANOSECONDS 50000

static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER; /* one op at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

/* Bumped once per op for each worker that takes part in it. A worker counter
 * of its own (not one shared generation) means a worker left out of an op
 * never wakes for it, so it cannot read the next op's parameters half-written. */
static _Atomic uint32_t generation[PSI_POOL_MAX_THREADS];
static _Atomic int sleepers;        /* workers parked on `wake` */
static _Atomic int pending;         /* workers still running the current op */
static int workers;                 /* workers created so far: ids 1..workers */
/* The generation each worker was created at. A new worker must wait for the
 * next bump after that point, even if it first runs after the bump. */
static uint32_t created_at[PSI_POOL_MAX_THREADS];

/* The current op, written by the caller before it bumps the generations. */
static psi_pool_task current_task;
static void *current_context;
static int current_nth; /* the split every participant uses */

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint32_t wait_for_generation_change(int id, uint32_t seen) {
  int64_t deadline = now_ns() + SPIN_NANOSECONDS;
  for (int i = 0;; i++) {
    uint32_t g = atomic_load_explicit(&generation[id], memory_order_acquire);
    if (g != seen) return g;
    cpu_relax();
    if ((i & 255) == 255 && now_ns() > deadline) break;
  }
  /* Sleep. `sleepers` is raised before the final check, and the caller bumps
   * the generations before reading `sleepers` (all sequentially consistent),
   * so either the caller sees us and broadcasts, or we see the new generation. */
  pthread_mutex_lock(&sleep_lock);
  atomic_fetch_add(&sleepers, 1);
  uint32_t g;
  while ((g = atomic_load(&generation[id])) == seen) pthread_cond_wait(&wake, &sleep_lock);
  atomic_fetch_sub(&sleepers, 1);
  pthread_mutex_unlock(&sleep_lock);
  return g;
}

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg;
  uint32_t seen = created_at[id]; /* written before pthread_create, so visible here */
  for (;;) {
    seen = wait_for_generation_change(id, seen);
    current_task(current_context, id, current_nth);
    atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
  }
  return NULL;
}

/* Creates workers up to id nth-1; returns how many exist (may be fewer on failure). */
static int ensure_workers(int nth) {
  while (workers < nth - 1) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    created_at[workers + 1] = atomic_load(&generation[workers + 1]);
    int failed = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)(workers + 1));
    pthread_attr_destroy(&attr);
    if (failed) break;
    workers++;
  }
  return workers;
}

void psi_pool_run(int nth, psi_pool_task task, void *context) {
  if (nth < 1) nth = 1;
  if (nth > PSI_POOL_MAX_THREADS) nth = PSI_POOL_MAX_THREADS;
  if (nth == 1) { task(context, 0, 1); return; }
  pthread_mutex_lock(&op_lock);
  int available = ensure_workers(nth);
  int helped = available < nth - 1 ? available : nth - 1; /* workers 1..helped run their share */
  current_task = task;
  current_context = context;
  current_nth = nth;
  atomic_store(&pending, helped);
  for (int id = 1; id <= helped; id++) atomic_fetch_add(&generation[id], 1);
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&sleep_lock);
  }
  task(context, 0, nth);
  for (int id = helped + 1; id < nth; id++) task(context, id, nth); /* shares the pool could not staff */
  int64_t yield_after = 0;
  for (int i = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0; i++) {
    cpu_relax();
    if ((i & 63) != 63) continue;
    /* Workers still busy after SPIN_NANOSECONDS were probably descheduled: stop competing with them. */
    if (yield_after == 0) yield_after = now_ns() + SPIN_NANOSECONDS;
    else if (now_ns() > yield_after) sched_yield();
  }
  pthread_mutex_unlock(&op_lock);
}

#endif
