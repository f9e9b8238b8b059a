// Test helper: llama.cpp itself (node-llama-cpp 3.21.1's prebuilt libllama,
// CPU backend) as the logits oracle. node-llama-cpp's JS API only exposes
// sampled probabilities, so a small C shim (compiled here, declaring the few
// prototypes it needs) loads the model, makes a context with llama.cpp's
// default parameters (flash attention "auto", which resolves to on for the CPU;
// K and V cache F16; n_ubatch 512) except n_ctx and threads, and returns raw
// logits of the last token of each decoded batch. The shim checks its mirror
// of the params structs against the library's defaults and refuses on mismatch.
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import { compileLlamaShim, LLAMA_LIB_DIR } from "../../ffi/llama-shim.ts";
import { refuse } from "../util/errors.ts";

const SHIM_SOURCE = String.raw`
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Mirrors of llama.h (libllama v0.4.0, node-llama-cpp 3.21.1). */
struct model_params {
    void * devices; const void * tensor_buft_overrides;
    int32_t n_gpu_layers, split_mode, load_mode, lazy_mode, main_gpu;
    const float * tensor_split; void * progress_callback; void * progress_callback_user_data;
    const void * kv_overrides;
    bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
    char spare[64];
};
struct context_params {
    uint32_t n_ctx, n_batch, n_ubatch, n_seq_max, n_rs_seq, n_outputs_max, n_outputs_max_per_seq;
    int32_t n_threads, n_threads_batch;
    int32_t ctx_type, rope_scaling_type, pooling_type, attention_type, flash_attn_type;
    float rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    void * cb_eval; void * cb_eval_user_data;
    int32_t type_k, type_v;
    void * abort_callback; void * abort_callback_data;
    bool embeddings, offload_kqv, no_perf, op_offload, swa_full, kv_unified;
    void * samplers; size_t n_samplers; void * ctx_other;
    char spare[64];
};
struct batch { int32_t n_tokens; int32_t * token; float * embd; int32_t * pos; int32_t * n_seq_id; int32_t ** seq_id; int8_t * logits; };

void ggml_backend_load_all_from_path(const char * dir);
struct model_params llama_model_default_params(void);
struct context_params llama_context_default_params(void);
void * llama_model_load_from_file(const char * path, struct model_params params);
void llama_model_free(void * model);
void * llama_init_from_model(void * model, struct context_params params);
void llama_free(void * ctx);
const void * llama_model_get_vocab(const void * model);
int32_t llama_vocab_n_tokens(const void * vocab);
void llama_log_set(void (*cb)(int, const char *, void *), void * user);
int32_t llama_tokenize(const void * vocab, const char * text, int32_t len, int32_t * tokens, int32_t max, bool add_special, bool parse_special);
struct batch llama_batch_get_one(int32_t * tokens, int32_t n);
int32_t llama_decode(void * ctx, struct batch b);
float * llama_get_logits_ith(void * ctx, int32_t i);

static void quiet(int level, const char * text, void * user) { (void) level; (void) text; (void) user; }

/* 0 ok; -1 a params struct differs from its mirror; -2 model load failed; -3 context failed. */
int32_t logits_open(const char * backend_dir, const char * path, uint32_t n_ctx, int32_t threads, void ** out) {
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(backend_dir);
    struct model_params mp = llama_model_default_params();
    if (mp.n_gpu_layers != -1 || mp.split_mode != 1 || mp.vocab_only || !mp.use_extra_bufts || mp.no_host || mp.load_mtp) return -1;
    mp.n_gpu_layers = 0;
    struct context_params cp = llama_context_default_params();
    if (cp.n_ctx != 512 || cp.n_batch != 2048 || cp.n_ubatch != 512 || cp.n_seq_max != 1 || cp.flash_attn_type != -1
        || cp.type_k != 1 || cp.type_v != 1 || cp.yarn_ext_factor != -1.0f || cp.yarn_orig_ctx != 0
        || !cp.offload_kqv || !cp.swa_full || cp.kv_unified || cp.embeddings) return -1;
    void * model = llama_model_load_from_file(path, mp);
    if (!model) return -2;
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    void * ctx = llama_init_from_model(model, cp);
    if (!ctx) { llama_model_free(model); return -3; }
    out[0] = model;
    out[1] = ctx;
    return 0;
}
void logits_close(void * model, void * ctx) { llama_free(ctx); llama_model_free(model); }
int32_t logits_n_vocab(const void * model) { return llama_vocab_n_tokens(llama_model_get_vocab(model)); }
int32_t logits_tokenize(const void * model, const char * text, int32_t len, int32_t * out, int32_t max, int32_t add_special) {
    return llama_tokenize(llama_model_get_vocab(model), text, len, out, max, add_special != 0, true);
}
/* Decodes n tokens at the next positions; copies the last token's logits to out. */
int32_t logits_decode(void * ctx, int32_t * tokens, int32_t n, float * out, int32_t n_vocab) {
    int32_t rc = llama_decode(ctx, llama_batch_get_one(tokens, n));
    if (rc != 0) return rc;
    float * logits = llama_get_logits_ith(ctx, -1);
    if (!logits) return -100;
    memcpy(out, logits, sizeof(float) * (size_t) n_vocab);
    return 0;
}
`;


const buildShim = () => compileLlamaShim("logits-oracle", SHIM_SOURCE, ["libggml.v0.4.0.so"]);

const I32 = FFIType.i32, U32 = FFIType.u32, P = FFIType.ptr;
let symbols: ReturnType<typeof openShim> | undefined;
function openShim() {
  return dlopen(buildShim(), {
    logits_open: { args: [FFIType.cstring, FFIType.cstring, U32, I32, P], returns: I32 },
    logits_close: { args: [P, P], returns: FFIType.void },
    logits_n_vocab: { args: [P], returns: I32 },
    logits_tokenize: { args: [P, P, I32, P, I32, I32], returns: I32 },
    logits_decode: { args: [P, P, I32, P, I32], returns: I32 },
  }).symbols;
}

const cstr = (s: string) => Buffer.from(s + "\0");

/** A model and one context (one sequence) in llama.cpp. Call close() when done. */
export class LlamaLogitsOracle {
  readonly vocabSize: number;

  private constructor(private model: Pointer | null, private ctx: Pointer | null) {
    this.vocabSize = symbols!.logits_n_vocab(model);
  }

  static open(path: string, options: { contextSize: number; threads?: number }): LlamaLogitsOracle {
    symbols ??= openShim();
    const out = new BigUint64Array(2);
    const rc = symbols.logits_open(cstr(LLAMA_LIB_DIR), cstr(path), options.contextSize, options.threads ?? 2, ptr(out));
    if (rc === -1) refuse("oracle.layout", "libllama's params structs differ from the shim's mirrors");
    if (rc === -2) refuse("oracle.load", `llama.cpp could not load ${path}`);
    if (rc !== 0) refuse("oracle.context", `llama.cpp could not create a context for ${path}`);
    return new LlamaLogitsOracle(Number(out[0]) as unknown as Pointer, Number(out[1]) as unknown as Pointer);
  }

  /** llama.cpp's tokenization, special tokens parsed; `addSpecial` adds BOS as the vocab says. */
  tokenize(text: string, addSpecial = true): Int32Array {
    const bytes = new TextEncoder().encode(text);
    const out = new Int32Array(bytes.length + 8);
    const n = symbols!.logits_tokenize(this.model, ptr(bytes.length > 0 ? bytes : new Uint8Array(1)), bytes.length, ptr(out), out.length, addSpecial ? 1 : 0);
    if (n < 0) refuse("oracle.tokenize", `tokenizing ${bytes.length} bytes needs ${-n} tokens`);
    return out.slice(0, n);
  }

  /** Decodes `tokens` at the next positions and returns the last one's logits. */
  decode(tokens: Int32Array): Float32Array {
    if (tokens.length === 0) refuse("oracle.decode", "nothing to decode: the batch is empty");
    const logits = new Float32Array(this.vocabSize);
    const rc = symbols!.logits_decode(this.ctx, ptr(tokens), tokens.length, ptr(logits), this.vocabSize);
    if (rc !== 0) refuse("oracle.decode", `llama_decode returned ${rc}`);
    return logits;
  }

  close(): void {
    if (this.model) symbols!.logits_close(this.model, this.ctx);
    this.model = this.ctx = null;
  }
}
