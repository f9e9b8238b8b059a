/* A persistent thread pool inside libpsionic_cpu.so.
 *
 * Workers are created once (on the first op that asks for them) and then
 * parked; an op wakes the nth-1 workers it needs by bumping a counter each of
 * them spins on for a short while and then sleeps on (condition variable).
 * The caller thread is always participant 0.
 *
 * Work is split by the task itself from (ith, nth) alone, never by who is
 * free first, so results do not depend on timing. One op runs at a time; a
 * second caller (another Bun Worker) waits for the first to finish. */
#ifndef PSI_THREADPOOL_H
#define PSI_THREADPOOL_H

#include <stdint.h>

#define PSI_POOL_MAX_THREADS 64

typedef void (*psi_pool_task)(void *context, int ith, int nth);

/* Runs task(context, i, nth) for every i in [0, nth) and returns when all are
 * done. nth is clamped to [1, PSI_POOL_MAX_THREADS]. If a worker cannot be
 * created, the caller runs that share itself (same split, same results). */
void psi_pool_run(int nth, psi_pool_task task, void *context);

/* Rows [begin, end) of `rows` that participant ith of nth owns: contiguous,
 * sizes differ by at most `granule`, boundaries on multiples of `granule`. */
static inline void psi_pool_split(int64_t rows, int64_t granule, int ith, int nth, int64_t *begin, int64_t *end) {
  int64_t units = (rows + granule - 1) / granule;
  int64_t first = units * ith / nth, last = units * (ith + 1) / nth;
  *begin = first * granule < rows ? first * granule : rows;
  *end = last * granule < rows ? last * granule : rows;
}

#endif
