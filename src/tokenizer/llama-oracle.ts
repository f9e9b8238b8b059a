// Test helper: llama.cpp's own tokenizer, from node-llama-cpp's prebuilt
// libllama, loaded vocab-only. llama_model_load_from_file takes its params
// struct by value, which bun:ffi cannot pass, so a tiny C shim (compiled here,
// declaring the few prototypes it needs; no llama.cpp headers) does the load.
// The shim checks the struct layout against llama_model_default_params() and
// refuses if the library does not match the layout it was written for.
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import { compileLlamaShim } from "../../ffi/llama-shim.ts";
import { kv } from "../gguf/metadata.ts";
import { writeGGUF } from "../gguf/writer.ts";
import { vocabToMetadata, type Vocab } from "./vocab.ts";
import { refuse } from "../util/errors.ts";

const SHIM_SOURCE = String.raw`
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* Mirror of llama.h's struct llama_model_params for libllama v0.4.0 (node-llama-cpp 3.21.1). */
struct model_params {
    void * devices;
    const void * tensor_buft_overrides;
    int32_t n_gpu_layers;
    int32_t split_mode;
    int32_t load_mode;
    int32_t lazy_mode;
    int32_t main_gpu;
    const float * tensor_split;
    void * progress_callback;
    void * progress_callback_user_data;
    const void * kv_overrides;
    bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
    char spare[64]; /* never read by the library; room in case the real struct is larger */
};

struct model_params llama_model_default_params(void);
void * llama_model_load_from_file(const char * path, struct model_params params);
void llama_model_free(void * model);
const void * llama_model_get_vocab(const void * model);
void llama_log_set(void (*cb)(int, const char *, void *), void * user);
int32_t llama_tokenize(const void * vocab, const char * text, int32_t len, int32_t * tokens, int32_t max, bool add_special, bool parse_special);
int32_t llama_token_to_piece(const void * vocab, int32_t token, char * buf, int32_t len, int32_t lstrip, bool special);
int32_t llama_detokenize(const void * vocab, const int32_t * tokens, int32_t n, char * text, int32_t max, bool remove_special, bool unparse_special);
int32_t llama_vocab_n_tokens(const void * vocab);
bool llama_vocab_is_eog(const void * vocab, int32_t token);
int32_t llama_vocab_get_attr(const void * vocab, int32_t token);
int32_t llama_vocab_bos(const void * vocab);
int32_t llama_vocab_eos(const void * vocab);
int32_t llama_vocab_eot(const void * vocab);

static void quiet(int level, const char * text, void * user) { (void) level; (void) text; (void) user; }

/* 0 ok; -1 struct layout differs from what this shim expects; -2 load failed. */
int32_t oracle_load(const char * path, void ** model_out) {
    llama_log_set(quiet, NULL);
    struct model_params p = llama_model_default_params();
    if (p.n_gpu_layers != -1 || p.split_mode != 1 || p.vocab_only || !p.use_extra_bufts || p.no_host || p.load_mtp) return -1;
    p.vocab_only = true;
    p.n_gpu_layers = 0;
    void * model = llama_model_load_from_file(path, p);
    if (!model) return -2;
    *model_out = model;
    return 0;
}
void oracle_free(void * model) { llama_model_free(model); }
const void * oracle_vocab(const void * model) { return llama_model_get_vocab(model); }
int32_t oracle_tokenize(const void * v, const char * text, int32_t len, int32_t * out, int32_t max, int32_t add_special, int32_t parse_special) {
    return llama_tokenize(v, text, len, out, max, add_special != 0, parse_special != 0);
}
int32_t oracle_piece(const void * v, int32_t token, char * buf, int32_t len, int32_t lstrip, int32_t special) {
    return llama_token_to_piece(v, token, buf, len, lstrip, special != 0);
}
int32_t oracle_detokenize(const void * v, const int32_t * tokens, int32_t n, char * buf, int32_t max, int32_t remove_special, int32_t unparse_special) {
    return llama_detokenize(v, tokens, n, buf, max, remove_special != 0, unparse_special != 0);
}
int32_t oracle_n_tokens(const void * v) { return llama_vocab_n_tokens(v); }
int32_t oracle_is_eog(const void * v, int32_t t) { return llama_vocab_is_eog(v, t) ? 1 : 0; }
int32_t oracle_attr(const void * v, int32_t t) { return llama_vocab_get_attr(v, t); }
int32_t oracle_bos(const void * v) { return llama_vocab_bos(v); }
int32_t oracle_eos(const void * v) { return llama_vocab_eos(v); }
int32_t oracle_eot(const void * v) { return llama_vocab_eot(v); }
`;


const buildShim = () => compileLlamaShim("llama-oracle", SHIM_SOURCE);

const I32 = FFIType.i32, P = FFIType.ptr;
let symbols: ReturnType<typeof openShim> | undefined;
function openShim() {
  return dlopen(buildShim(), {
    oracle_load: { args: [FFIType.cstring, P], returns: I32 },
    oracle_free: { args: [P], returns: FFIType.void },
    oracle_vocab: { args: [P], returns: P },
    oracle_tokenize: { args: [P, P, I32, P, I32, I32, I32], returns: I32 },
    oracle_piece: { args: [P, I32, P, I32, I32, I32], returns: I32 },
    oracle_detokenize: { args: [P, P, I32, P, I32, I32, I32], returns: I32 },
    oracle_n_tokens: { args: [P], returns: I32 },
    oracle_is_eog: { args: [P, I32], returns: I32 },
    oracle_attr: { args: [P, I32], returns: I32 },
    oracle_bos: { args: [P], returns: I32 },
    oracle_eos: { args: [P], returns: I32 },
    oracle_eot: { args: [P], returns: I32 },
  }).symbols;
}

/** A vocabulary loaded by llama.cpp itself. Call close() when done. */
export class LlamaVocabOracle {
  private constructor(private model: Pointer | null, private readonly vocab: Pointer) {}

  static load(path: string): LlamaVocabOracle {
    symbols ??= openShim();
    const out = new BigUint64Array(1);
    const rc = symbols.oracle_load(Buffer.from(path + "\0"), ptr(out));
    if (rc === -1) refuse("oracle.layout", "libllama's llama_model_params layout differs from the shim's mirror");
    if (rc !== 0) refuse("oracle.load", `llama.cpp could not load ${path}`);
    const model = Number(out[0]) as unknown as Pointer;
    return new LlamaVocabOracle(model, symbols.oracle_vocab(model)! as Pointer);
  }

  get size(): number {
    return symbols!.oracle_n_tokens(this.vocab);
  }

  tokenize(bytes: Uint8Array, addSpecial: boolean, parseSpecial: boolean): number[] {
    const input = bytes.length > 0 ? bytes : new Uint8Array(1); // a valid pointer even for ""
    let cap = bytes.length + 8;
    for (;;) {
      const out = new Int32Array(cap);
      const n = symbols!.oracle_tokenize(this.vocab, ptr(input), bytes.length, ptr(out), cap, addSpecial ? 1 : 0, parseSpecial ? 1 : 0);
      if (n >= 0) return Array.from(out.subarray(0, n));
      cap = -n;
    }
  }

  piece(token: number, special: boolean, lstrip = 0): Uint8Array {
    let buf = new Uint8Array(64);
    let n = symbols!.oracle_piece(this.vocab, token, ptr(buf), buf.length, lstrip, special ? 1 : 0);
    if (n < 0) {
      buf = new Uint8Array(-n);
      n = symbols!.oracle_piece(this.vocab, token, ptr(buf), buf.length, lstrip, special ? 1 : 0);
    }
    return buf.slice(0, n);
  }

  detokenize(tokens: number[], removeSpecial: boolean, unparseSpecial: boolean): Uint8Array {
    const ids = new Int32Array(tokens.length > 0 ? tokens : [0]);
    let buf = new Uint8Array(tokens.length * 16 + 16);
    let n = symbols!.oracle_detokenize(this.vocab, ptr(ids), tokens.length, ptr(buf), buf.length, removeSpecial ? 1 : 0, unparseSpecial ? 1 : 0);
    if (n < 0) {
      buf = new Uint8Array(-n);
      n = symbols!.oracle_detokenize(this.vocab, ptr(ids), tokens.length, ptr(buf), buf.length, removeSpecial ? 1 : 0, unparseSpecial ? 1 : 0);
    }
    return buf.slice(0, n);
  }

  isEog(token: number): boolean {
    return symbols!.oracle_is_eog(this.vocab, token) === 1;
  }

  attr(token: number): number {
    return symbols!.oracle_attr(this.vocab, token);
  }

  specialIds(): { bos: number; eos: number; eot: number } {
    return { bos: symbols!.oracle_bos(this.vocab), eos: symbols!.oracle_eos(this.vocab), eot: symbols!.oracle_eot(this.vocab) };
  }

  close(): void {
    if (this.model) symbols!.oracle_free(this.model);
    this.model = null;
  }
}

/**
 * A GGUF holding only a vocabulary, plus the few "llama" hyper-parameters
 * llama.cpp reads before it skips tensors in vocab-only mode.
 */
export function writeVocabOnlyGGUF(path: string, vocab: Vocab): void {
  const metadata = [
    kv.str("general.architecture", "llama"),
    kv.str("general.name", "psionic tokenizer parity"),
    kv.u32("llama.context_length", 2048),
    kv.u32("llama.embedding_length", 64),
    kv.u32("llama.block_count", 1),
    kv.u32("llama.feed_forward_length", 128),
    kv.u32("llama.attention.head_count", 4),
    kv.u32("llama.attention.head_count_kv", 4),
    kv.u32("llama.rope.dimension_count", 16),
    kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    ...vocabToMetadata(vocab),
  ];
  writeGGUF(path, { metadata, tensors: [] });
}
