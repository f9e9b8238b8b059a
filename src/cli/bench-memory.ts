// The memory side of the decode benchmark: how many weight bytes one token
// reads, and how fast this machine can read memory at all. Batch-1 decode is
// memory-bound, so achieved weight bytes/s against the measured read
// bandwidth says how close to the physical limit decode runs.
import { ptr } from "bun:ffi";
import { cpuKernels } from "../../ffi/cpu.ts";
import type { GGUFFile } from "../gguf/reader.ts";
import { metaIntegerOptional, metaStringOptional } from "../gguf/metadata.ts";
import { refuse } from "../util/errors.ts";

export interface DecodeTraffic {
  /** Weight bytes one decode step reads. */
  bytesPerToken: number;
  /** True when the output head is token_embd (no output.weight), so the table is read every token. */
  tiedEmbedding: boolean;
  /** expert_used_count / expert_count for MoE files, else 1. */
  expertShare: number;
}

/**
 * Bytes of weights one token's forward pass reads: every tensor except the
 * embedding table (a one-row lookup, unless it doubles as the output head),
 * and for mixture-of-experts only the share of each expert stack the router
 * picks (expert_used_count of expert_count slabs).
 */
export function decodeTraffic(file: GGUFFile): DecodeTraffic {
  const arch = metaStringOptional(file.meta, "general.architecture") ?? "";
  const experts = metaIntegerOptional(file.meta, `${arch}.expert_count`) ?? 0;
  const used = metaIntegerOptional(file.meta, `${arch}.expert_used_count`) ?? 0;
  const expertShare = experts > 0 && used > 0 ? used / experts : 1;
  const tiedEmbedding = !file.tensorsByName.has("output.weight");
  let bytes = 0;
  for (const t of file.tensors) {
    if (t.name === "token_embd.weight" && !tiedEmbedding) continue;
    // llama.cpp names expert stacks ffn_{gate,up,down}_exps (and their biases).
    bytes += /_exps\./.test(t.name) ? t.nbytes * expertShare : t.nbytes;
  }
  return { bytesPerToken: bytes, tiedEmbedding, expertShare };
}

export interface ReadBandwidth {
  /** Best of the trials, bytes per second. */
  bytesPerSecond: number;
  bufferBytes: number;
  threads: number;
  trials: number;
}

/**
 * Times psi_read_memory (kernels/cpu/membw.c) sweeping a buffer far larger
 * than the caches with `threads` threads; the best of `trials` sweeps counts,
 * as a bandwidth is a ceiling and noise only ever lowers it.
 */
export function measureReadBandwidth(threads: number, bufferBytes = 256 * 2 ** 20, trials = 5): ReadBandwidth {
  if (!Number.isInteger(bufferBytes) || bufferBytes < 64 || bufferBytes % 64 !== 0) refuse("bench.bad-buffer", `bandwidth buffer must be a positive multiple of 64 bytes, got ${bufferBytes}`);
  const lib = cpuKernels();
  // Written, so every page is backed by its own memory (untouched pages all map the one zero page, which caches).
  const buffer = new Uint8Array(bufferBytes).fill(1);
  const checksum = new BigUint64Array(1);
  const sweep = () => {
    const status = lib.psi_read_memory(ptr(buffer), bufferBytes, threads, 1, ptr(checksum));
    if (status !== 0) refuse("bench.kernel-refused", `psi_read_memory refused (${status})`);
  };
  sweep(); // warm-up: wakes the pool's workers and faults in the page tables
  let best = 0;
  for (let i = 0; i < trials; i++) {
    const start = performance.now();
    sweep();
    const seconds = (performance.now() - start) / 1000;
    best = Math.max(best, bufferBytes / seconds);
  }
  // Each word is 0x0101..01; a wrong sum means the kernel skipped memory and the number would be a lie.
  const expected = BigInt(bufferBytes / 8) * 0x0101010101010101n & 0xffffffffffffffffn;
  if (checksum[0] !== expected) refuse("bench.bad-checksum", `psi_read_memory read a checksum of ${checksum[0]}, expected ${expected}`);
  return { bytesPerSecond: best, bufferBytes, threads, trials };
}
