/* Memory read bandwidth, the ceiling of batch-1 decode: every thread of the
 * pool sums its contiguous share of a buffer (larger than the caches), so the
 * caller can time how fast the machine streams bytes from DRAM to the cores.
 *
 * buffer is `bytes` long (a multiple of 8; the tail past the last 64-byte
 * line is ignored); `passes` sweeps are made; `checksum` receives the sum of
 * every word read, which keeps the compiler from dropping the loads. Eight
 * independent accumulators let the loop vectorize and keep many loads in
 * flight; integer sums are exact, so the checksum does not depend on threads. */
#include "api.h"
#include "threadpool.h"

struct read_task {
  const uint64_t *words;
  int64_t n_words;
  int32_t passes;
  uint64_t sums[PSI_POOL_MAX_THREADS];
};

static void read_share(void *context, int ith, int nth) {
  struct read_task *t = context;
  int64_t begin, end;
  psi_pool_split(t->n_words, 8, ith, nth, &begin, &end);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (int32_t pass = 0; pass < t->passes; pass++) {
    const uint64_t *w = t->words;
    for (int64_t i = begin; i + 8 <= end; i += 8) {
      a0 += w[i]; a1 += w[i + 1]; a2 += w[i + 2]; a3 += w[i + 3];
      a4 += w[i + 4]; a5 += w[i + 5]; a6 += w[i + 6]; a7 += w[i + 7];
    }
  }
  t->sums[ith] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

int32_t PSI_IMPL(psi_read_memory)(const void *buffer, int64_t bytes, int32_t n_threads, int32_t passes, uint64_t *checksum) {
  if (!buffer || !checksum || bytes < 64 || bytes % 8 != 0 || passes < 1 || n_threads < 1) return -10;
  if (n_threads > PSI_POOL_MAX_THREADS) n_threads = PSI_POOL_MAX_THREADS;
  struct read_task task = { .words = buffer, .n_words = (bytes / 64) * 8, .passes = passes };
  psi_pool_run(n_threads, read_share, &task);
  uint64_t sum = 0;
  for (int i = 0; i < n_threads; i++) sum += task.sums[i];
  *checksum = sum;
  return 0;
}
