// cuBLAS, found at run time: the build machines have the CUDA runtime but no
// cuBLAS, while GPU machines (and users' machines with the CUDA toolkit or a
// driver bundle) do. Without it the products run on psionic's own kernels.
// Only the entry points used here are declared; their enum values are the
// stable ones from cublas_api.h / library_types.h.
#include <dlfcn.h>
#include <stdlib.h>
#include "matmul.cuh"

#ifdef PSI_EMULATE
// The CPU build: cublasGemmEx's arithmetic (fp16 operands, fp32 sums) in plain loops,
// so the fp16 expansion path around it is checked too.
bool psi_cublas_available() { return true; }
PSI_EXPORT const char *psi_cuda_cublas_status(void) { return "emulated (plain loops)"; }
int psi_cublas_gemm_f16(const __half *w, const __half *x, float *y, int64_t m, int64_t n, int64_t k) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < m; i++) {
      float sum = 0.f;
      for (int64_t l = 0; l < k; l++) sum += __half2float(w[i * k + l]) * __half2float(x[j * k + l]);
      y[j * m + i] = sum;
    }
  return 0;
}
#else

typedef void *cublasHandle_t;
typedef int (*create_fn)(cublasHandle_t *);
typedef int (*set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef int (*gemm_ex_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void *alpha,
                          const void *A, int Atype, int lda, const void *B, int Btype, int ldb, const void *beta,
                          void *C, int Ctype, int ldc, int computeType, int algo);

// CUDA_R_16F and CUDA_R_32F come from library_types.h (with the runtime headers).
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1 };

static int state = 0;  // 0 not tried, 1 loaded, -1 absent
static cublasHandle_t handle;
static gemm_ex_fn gemm_ex;
static char cublas_status[512] = "not loaded yet";

static void load_cublas() {
  if (state != 0) return;
  state = -1;
  const char *names[] = {getenv("PSIONIC_CUBLAS"), "libcublas.so.13", "libcublas.so.12", "libcublas.so", "/usr/local/cuda/lib64/libcublas.so"};
  void *lib = nullptr;
  for (const char *name : names) {
    if (name && *name && (lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  }
  if (!lib) { snprintf(cublas_status, sizeof cublas_status, "no libcublas.so found (set PSIONIC_CUBLAS to its path)"); return; }
  create_fn create = (create_fn)dlsym(lib, "cublasCreate_v2");
  set_stream_fn set_stream = (set_stream_fn)dlsym(lib, "cublasSetStream_v2");
  gemm_ex = (gemm_ex_fn)dlsym(lib, "cublasGemmEx");
  if (!create || !set_stream || !gemm_ex) { snprintf(cublas_status, sizeof cublas_status, "libcublas lacks cublasCreate_v2/cublasSetStream_v2/cublasGemmEx"); return; }
  int status = create(&handle);
  if (status != 0) { snprintf(cublas_status, sizeof cublas_status, "cublasCreate failed with status %d", status); return; }
  if ((status = set_stream(handle, psi_stream())) != 0) { snprintf(cublas_status, sizeof cublas_status, "cublasSetStream failed with status %d", status); return; }
  snprintf(cublas_status, sizeof cublas_status, "loaded");
  state = 1;
}

bool psi_cublas_available() {
  load_cublas();
  return state == 1;
}

// "loaded", or why cuBLAS is not used.
PSI_EXPORT const char *psi_cuda_cublas_status(void) {
  load_cublas();
  return cublas_status;
}

int psi_cublas_gemm_f16(const __half *w, const __half *x, float *y, int64_t m, int64_t n, int64_t k) {
  // Column-major view: W is k x m (lda k), X is k x n (ldb k), Y is m x n (ldc m); Y = W^T X.
  const float alpha = 1.f, beta = 0.f;
  const int status = gemm_ex(handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, (int)n, (int)k, &alpha, w, CUDA_R_16F, (int)k,
                             x, CUDA_R_16F, (int)k, &beta, y, CUDA_R_32F, (int)m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (status != 0) { psi_set_error("cublasGemmEx (%lld x %lld x %lld) failed with status %d", (long long)m, (long long)n, (long long)k, status); return -1; }
  return 0;
}
#endif
