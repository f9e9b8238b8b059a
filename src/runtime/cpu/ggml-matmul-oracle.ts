// Test-only: ggml's whole matrix product as llama.cpp runs it on this machine.
// A small C shim (compiled here, declaring the few ggml prototypes it needs)
// loads the CPU backend llama.cpp would load (ggml_backend_load_all_from_path
// scores node-llama-cpp's libggml-cpu-*.so builds: sapphirerapids with AMX on
// this Xeon), puts the weight in the first buffer type that accepts the op, in
// llama.cpp's order (the CPU device's extra buffer types, AMX then CPU_REPACK,
// then plain CPU), and runs ggml_mul_mat / ggml_mul_mat_id through
// ggml_backend_graph_compute. Uploading into an AMX or repack buffer converts
// the weight to that buffer's layout, exactly as when llama.cpp loads a model.
// docs/PARITY.md §2-§4 describes the paths this reaches.
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { compileLlamaShim, LLAMA_LIB_DIR } from "../../../ffi/llama-shim.ts";
import { typeLayout, type GGMLType } from "../../gguf/types.ts";
import { refuse } from "../../util/errors.ts";

const SHIM_SOURCE = String.raw`
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Prototypes and the two struct heads this shim needs, as ggml.h / ggml-backend.h
 * (libggml v0.4.0, node-llama-cpp 3.21.1) declare them. */
struct init_params { size_t mem_size; void * mem_buffer; bool no_alloc; };
struct tensor_head { int32_t type; void * buffer; };
enum { DEVICE_TYPE_CPU = 0, BUFFER_USAGE_WEIGHTS = 1, STATUS_SUCCESS = 0, TYPE_F32 = 0, TYPE_I32 = 26 };
void ggml_backend_load_all_from_path(const char * dir);
void * ggml_backend_dev_by_type(int type);
void * ggml_backend_dev_backend_reg(void * dev);
void * ggml_backend_reg_get_proc_address(void * reg, const char * name);
void * ggml_backend_dev_init(void * dev, const char * params);
void ggml_backend_free(void * backend);
bool ggml_backend_dev_supports_op(void * dev, const void * op);
const char * ggml_backend_buft_name(void * buft);
void * ggml_backend_buft_alloc_buffer(void * buft, size_t size);
void * ggml_backend_cpu_buffer_type(void);
void ggml_backend_buffer_free(void * buffer);
void ggml_backend_buffer_set_usage(void * buffer, int usage);
void * ggml_backend_alloc_ctx_tensors_from_buft(void * ctx, void * buft);
void ggml_backend_tensor_set(void * tensor, const void * data, size_t offset, size_t size);
void ggml_backend_tensor_get(const void * tensor, void * data, size_t offset, size_t size);
int ggml_backend_graph_compute(void * backend, void * graph);
void * ggml_init(struct init_params params);
void ggml_free(void * ctx);
void * ggml_new_tensor_2d(void * ctx, int type, int64_t ne0, int64_t ne1);
void * ggml_new_tensor_3d(void * ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2);
void * ggml_mul_mat(void * ctx, void * a, void * b);
void * ggml_mul_mat_id(void * ctx, void * as, void * b, void * ids);
void * ggml_new_graph(void * ctx);
void ggml_build_forward_expand(void * graph, void * tensor);
void ggml_log_set(void (*cb)(int, const char *, void *), void * user);
static void quiet(int level, const char * text, void * user) { (void) level; (void) text; (void) user; }

typedef void ** (*get_extra_bufts)(void * dev);
typedef void (*set_n_threads)(void * backend, int n);

/* y = W x as llama.cpp computes it. experts == 0: ggml_mul_mat, W k x n, x k x m.
 * experts > 0: ggml_mul_mat_id, W k x n x experts, token t uses expert ids[t].
 * Writes the chosen buffer type's name to buft_name; returns 0, or a negative step number. */
int psi_oracle_mul_mat(const char * bins, int type, const void * w, size_t w_bytes, int64_t k, int64_t n, int64_t experts,
                       const float * x, int64_t m, const int32_t * ids, float * y, int threads, char * buft_name) {
  ggml_log_set(quiet, NULL); /* the repack notices, one per upload */
  if (!ggml_backend_dev_by_type(DEVICE_TYPE_CPU)) ggml_backend_load_all_from_path(bins);
  void * dev = ggml_backend_dev_by_type(DEVICE_TYPE_CPU);
  if (!dev) return -1;
  void * reg = ggml_backend_dev_backend_reg(dev);
  get_extra_bufts extra = (get_extra_bufts) ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
  set_n_threads threads_fn = (set_n_threads) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
  if (!extra || !threads_fn) return -2;
  struct init_params ip = { 1 << 20, NULL, true };
  void * cw = ggml_init(ip), * cx = ggml_init(ip);
  void * W, * X, * I = NULL, * Y;
  if (experts > 0) {
    W = ggml_new_tensor_3d(cw, type, k, n, experts);
    X = ggml_new_tensor_3d(cx, TYPE_F32, k, 1, m);
    I = ggml_new_tensor_2d(cx, TYPE_I32, 1, m);
    Y = ggml_mul_mat_id(cx, W, X, I);
  } else {
    W = ggml_new_tensor_2d(cw, type, k, n);
    X = ggml_new_tensor_2d(cx, TYPE_F32, k, m);
    Y = ggml_mul_mat(cx, W, X);
  }
  /* llama.cpp's weight_buft_supported: a zero-size buffer of the type, then supports_op. */
  void * candidates[16];
  int count = 0;
  for (void ** b = extra(dev); b && *b && count < 15; b++) candidates[count++] = *b;
  candidates[count++] = ggml_backend_cpu_buffer_type();
  void * pick = NULL;
  for (int i = 0; i < count && !pick; i++) {
    void * probe = ggml_backend_buft_alloc_buffer(candidates[i], 0);
    ((struct tensor_head *) W)->buffer = probe;
    if (ggml_backend_dev_supports_op(dev, Y)) pick = candidates[i];
    ((struct tensor_head *) W)->buffer = NULL;
    ggml_backend_buffer_free(probe);
  }
  int status = 0;
  void * backend = NULL, * wb = NULL, * xb = NULL;
  if (!pick) { status = -3; goto done; }
  strncpy(buft_name, ggml_backend_buft_name(pick), 63);
  wb = ggml_backend_alloc_ctx_tensors_from_buft(cw, pick);
  xb = ggml_backend_alloc_ctx_tensors_from_buft(cx, ggml_backend_cpu_buffer_type());
  if (!wb || !xb) { status = -4; goto done; }
  ggml_backend_buffer_set_usage(wb, BUFFER_USAGE_WEIGHTS);
  ggml_backend_tensor_set(W, w, 0, w_bytes);
  ggml_backend_tensor_set(X, x, 0, sizeof(float) * (size_t) (k * m));
  if (I) ggml_backend_tensor_set(I, ids, 0, sizeof(int32_t) * (size_t) m);
  backend = ggml_backend_dev_init(dev, NULL);
  threads_fn(backend, threads);
  void * graph = ggml_new_graph(cx);
  ggml_build_forward_expand(graph, Y);
  if (ggml_backend_graph_compute(backend, graph) != STATUS_SUCCESS) { status = -5; goto done; }
  ggml_backend_tensor_get(Y, y, 0, sizeof(float) * (size_t) (n * m));
done:
  if (backend) ggml_backend_free(backend);
  if (wb) ggml_backend_buffer_free(wb);
  if (xb) ggml_backend_buffer_free(xb);
  ggml_free(cw);
  ggml_free(cx);
  return status;
}
`;

/** Whether this CPU has AMX-INT8, without which llama.cpp's products take other paths (docs/PARITY.md §5). */
export function cpuHasAmx(): boolean {
  if (!existsSync("/proc/cpuinfo")) return false;
  return /^flags\s*:.*\bamx_int8\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
}

let oracle: ((...args: unknown[]) => number) | undefined;

function shim(): (...args: unknown[]) => number {
  if (oracle) return oracle;
  const path = compileLlamaShim("ggml-matmul", SHIM_SOURCE, ["libggml.v0.4.0.so", "libggml-base.so"]);
  const { ptr, i32, i64, u64, cstring } = FFIType;
  const lib = dlopen(path, {
    psi_oracle_mul_mat: { args: [cstring, i32, ptr, u64, i64, i64, i64, ptr, i64, ptr, ptr, i32, ptr], returns: i32 },
  });
  oracle = lib.symbols.psi_oracle_mul_mat as unknown as (...args: unknown[]) => number;
  return oracle;
}

export interface GgmlProduct {
  /** m x n, token-major (psi_matmul's layout). */
  y: Float32Array;
  /** The buffer type the weight went to: "AMX", "CPU_REPACK" or "CPU". */
  buffer: string;
}

/**
 * llama.cpp's y = x W^T for W `rows` x `cols` of `type` (bytes as in a GGUF)
 * and x `nTokens` x `cols`; with `experts`, W holds that many such matrices and
 * token t is multiplied by matrix ids[t] (ggml_mul_mat_id, the MoE product).
 */
export function ggmlMatmul(type: GGMLType, weights: Uint8Array, rows: number, cols: number, x: Float32Array, nTokens: number,
                           options: { experts?: number; ids?: Int32Array; threads?: number } = {}): GgmlProduct {
  const experts = options.experts ?? 0;
  const layout = typeLayout(type)!;
  const expected = (cols / layout.blockSize) * layout.typeSize * rows * Math.max(1, experts);
  if (weights.byteLength !== expected || x.length !== cols * nTokens) refuse("oracle.shape", `ggml matmul: ${weights.byteLength} weight bytes (want ${expected}), ${x.length} inputs`);
  const ids = options.ids ?? new Int32Array(nTokens);
  const y = new Float32Array(rows * nTokens);
  const name = new Uint8Array(64);
  const status = shim()(Buffer.from(`${LLAMA_LIB_DIR}\0`), type, weights, weights.byteLength, cols, rows, experts, x, nTokens, ids, y, options.threads ?? 2, name);
  if (status !== 0) refuse("oracle.failed", `ggml matmul oracle failed at step ${-status}`);
  return { y, buffer: new TextDecoder().decode(name.subarray(0, name.indexOf(0))) };
}
