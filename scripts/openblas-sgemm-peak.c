/* The single-precision GEMM peak the training benchmark is judged against
 * (issue #5: "peak single-precision GEMM measured with OpenBLAS"): OpenBLAS's
 * cblas_sgemm on square matrices, best of 5, in GFLOP/s (2*M*N*K / time).
 * Not part of the build: OpenBLAS comes from Debian's libopenblas-dev.
 *
 *   cc -O2 scripts/openblas-sgemm-peak.c -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -o /tmp/sgemm-peak
 *   OPENBLAS_NUM_THREADS=2 /tmp/sgemm-peak 2048
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 2048;
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
  if (!a || !b || !c || n <= 0) return 1;
  for (long i = 0; i < (long)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.2f, c[i] = 0;
  double best = 1e30;
  for (int r = 0; r < 6; r++) {
    const double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    const double t = now() - t0;
    if (r > 0 && t < best) best = t; /* the first run warms caches and threads */
  }
  printf("openblas sgemm %dx%dx%d, %d threads: best %.1f GFLOP/s\n", n, n, n, openblas_get_num_threads(), 2.0 * n * n * (double)n / best / 1e9);
  free(a), free(b), free(c);
  return 0;
}
