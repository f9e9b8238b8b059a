// `psionic bench`: the llama-bench method (tests, statistic, JSON), the weight
// bytes a decode step reads, the read-bandwidth probe, and a small real run's
// table. The side-by-side run needs a llama-bench binary; without one that
// part is skipped (and reported as skipped), never passed silently.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { synthesize } from "../model/synth.ts";
import { findLlamaBench, parseLlamaBenchJson, testName } from "./bench-llama.ts";
import { decodeTraffic, measureReadBandwidth } from "./bench-memory.ts";
import { summarize } from "./bench.ts";
import { createBackend } from "../runtime/backends.ts";
import { runCli as run } from "./run-in-process.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-bench-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function synth(arch: "llama" | "gpt-oss", name: string, type: GGMLType): string {
  const path = join(dir, `${arch}-${name}-${type}.gguf`);
  synthesize({ preset: { arch, name }, type, seed: 9 }, path);
  return path;
}
const tinyQ8 = synth("llama", "tiny", GGMLType.Q8_0);


// Two lines of real `llama-bench -o json` output (most fields trimmed), run on a tiny F16 model.
const LLAMA_BENCH_JSON = `[
  { "build_commit": "80fb11a", "n_threads": 2, "n_prompt": 16, "n_gen": 0, "n_depth": 0, "avg_ns": 524882, "stddev_ns": 20721,
    "avg_ts": 30506.728088, "stddev_ts": 1202.891413, "samples_ns": [ 539517, 510248 ], "samples_ts": [ 29656.2, 31357.3 ] },
  { "build_commit": "80fb11a", "n_threads": 2, "n_prompt": 0, "n_gen": 8, "n_depth": 0, "avg_ns": 1041757, "stddev_ns": 190966,
    "avg_ts": 7810.564872, "stddev_ts": 1431.772929, "samples_ns": [ 1176791, 906723 ], "samples_ts": [ 6798.15, 8822.98 ] }
]`;

describe("the llama-bench method", () => {
  it("reads llama-bench's JSON into pp/tg rows with its mean, stddev and samples", () => {
    const rows = parseLlamaBenchJson(LLAMA_BENCH_JSON);
    expect(rows.map((r) => r.test)).toEqual(["pp16", "tg8"]);
    expect(rows[1]).toMatchObject({ nPrompt: 0, nGen: 8, meanTokensPerSecond: 7810.564872, stddevTokensPerSecond: 1431.772929, samplesTokensPerSecond: [6798.15, 8822.98] });
    expect(() => parseLlamaBenchJson("main: error: failed to load model")).toThrow("llama-bench printed no JSON");
    expect(() => parseLlamaBenchJson('[{"n_prompt": 1}]')).toThrow("n_gen");
  });

  it("summarizes runs with llama-bench's statistic: its own samples give its own mean and sample stddev", () => {
    for (const row of parseLlamaBenchJson(LLAMA_BENCH_JSON)) {
      const s = summarize(row.samplesTokensPerSecond);
      // llama-bench prints samples rounded to 6 significant digits, so agreement is to that precision.
      expect(Math.abs(s.mean - row.meanTokensPerSecond) / row.meanTokensPerSecond).toBeLessThan(1e-5);
      expect(Math.abs(s.stddev - row.stddevTokensPerSecond) / row.stddevTokensPerSecond).toBeLessThan(1e-4);
    }
    expect(summarize([4, 1, 3, 2])).toEqual({ mean: 2.5, stddev: Math.sqrt(5 / 3), median: 2.5 });
    expect(summarize([7])).toEqual({ mean: 7, stddev: 0, median: 7 });
  });

  it("names tests as llama-bench does", () => {
    expect([testName(512, 0), testName(0, 128), testName(512, 128)]).toEqual(["pp512", "tg128", "pp512+tg128"]);
  });
});

describe("decode weight traffic", () => {
  it("counts every tensor but token_embd for a model with its own output matrix", () => {
    const file = openGGUF(tinyQ8);
    const all = file.tensors.reduce((n, t) => n + t.nbytes, 0);
    const traffic = decodeTraffic(file);
    expect(traffic.tiedEmbedding).toBe(false);
    expect(traffic.bytesPerToken).toBe(all - file.tensorsByName.get("token_embd.weight")!.nbytes);
  });

  it("counts token_embd when it is the output head (tied)", () => {
    const file = openGGUF(synth("llama", "tiny-tied", GGMLType.Q8_0));
    const traffic = decodeTraffic(file);
    expect(traffic.tiedEmbedding).toBe(true);
    expect(traffic.bytesPerToken).toBe(file.tensors.reduce((n, t) => n + t.nbytes, 0));
  });

  it("counts expert_used_count / expert_count of each MoE expert stack", () => {
    const file = openGGUF(synth("gpt-oss", "tiny", GGMLType.Q8_0));
    const used = Number(file.meta.get("gpt-oss.expert_used_count")!.value), experts = Number(file.meta.get("gpt-oss.expert_count")!.value);
    const expertBytes = file.tensors.filter((t) => t.name.includes("_exps.")).reduce((n, t) => n + t.nbytes, 0);
    const otherBytes = file.tensors.filter((t) => !t.name.includes("_exps.") && t.name !== "token_embd.weight").reduce((n, t) => n + t.nbytes, 0);
    expect(expertBytes).toBeGreaterThan(0);
    const traffic = decodeTraffic(file);
    expect(traffic.expertShare).toBe(used / experts);
    expect(traffic.bytesPerToken).toBeCloseTo(otherBytes + (expertBytes * used) / experts, 6);
  });
});

describe("read bandwidth", () => {
  it("sweeps a buffer with 1 and 2 threads, checks the checksum, and reports a plausible rate", () => {
    for (const threads of [1, 2]) {
      const r = measureReadBandwidth(threads, 32 * 2 ** 20, 2);
      expect(r.threads).toBe(threads);
      // Above 100 MB/s (any machine) and below 10 TB/s (no machine): a broken timer or an elided loop fails.
      expect(r.bytesPerSecond).toBeGreaterThan(1e8);
      expect(r.bytesPerSecond).toBeLessThan(1e13);
    }
  });
});

const cpuLoads = await createBackend("cpu", { threads: 1 }).then(() => true, () => false);

describe("psionic bench", () => {
  for (const backend of ["reference", "cpu"]) {
    it.skipIf(backend === "cpu" && !cpuLoads)(`prints the pp/tg table with mean ± stddev, and decode bytes/s against the measured bandwidth (${backend} backend)`, async () => {
      const { code, out, err } = await run(["bench", "-m", tinyQ8, "-r", "2", "-p", "16", "-n", "8", "-t", "2", "--backend", backend]);
      expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
      expect(err).toContain("psionic bench: psionic: tg8: run 2/2");
      expect(out).toContain("tok/s = mean ± sample stddev of per-run tok/s (llama-bench's)");
      expect(out).toMatch(/\| test +\| +psionic tok\/s \| llama\.cpp tok\/s \| ratio \|/);
      expect(out).toMatch(/\| pp16 +\| +[\d.]+ ± [\d.]+ \| +- \| +- \|/);
      expect(out).toMatch(/\| tg8 +\| +[\d.]+ ± [\d.]+ \| +- \| +- \|/);
      expect(out).toMatch(/decode weight traffic: [\d.]+ MiB per token \(token_embd excluded\) x [\d.]+ tok\/s = [\d.]+ GB\/s/);
      expect(out).toMatch(/machine read bandwidth: [\d.]+ GB\/s \(2 threads, best of 5 sweeps of 256 MiB\); decode reaches \d+% of it/);
    }, 60_000);
  }

  it("--json gives every run's samples, and the decode bytes/s is bytes per token times the tg mean", async () => {
    const { code, out } = await run(["bench", "-m", tinyQ8, "-r", "2", "-p", "8", "-n", "4", "-t", "1", "--backend", "reference", "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.psionic.map((t: { test: string; samples: number[] }) => [t.test, t.samples.length])).toEqual([["pp8", 2], ["tg4", 2]]);
    expect(report.peer).toBeNull();
    const tg = report.psionic[1];
    expect(report.decode.achievedBytesPerSecond).toBeCloseTo(report.decode.bytesPerToken * tg.tokensPerSecond.mean, 3);
    expect(report.model).toMatchObject({ arch: "llama", weightType: "q8_0" });
    expect(report.ubatch).toBe(512);
  }, 60_000);

  it("-ub sets the prompt tokens per forward pass (llama-bench's -ub) and refuses a size below 1", async () => {
    const { code, out } = await run(["bench", "-m", tinyQ8, "-r", "1", "-p", "12", "-n", "0", "-ub", "5", "-t", "1", "--backend", "reference", "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.ubatch).toBe(5);
    expect(report.psionic.map((t: { test: string }) => t.test)).toEqual(["pp12"]);
    const zero = await run(["bench", "-m", tinyQ8, "-p", "12", "-ub", "0"]);
    expect(zero.code).toBe(2);
    expect(zero.err).toContain("--ubatch-size must be an integer in [1, 65536], got 0");
  }, 60_000);

  it("answers bad flags with usage (exit 2) and a missing peer binary with a clear error (exit 1)", async () => {
    expect((await run(["bench", "-m", tinyQ8, "--nope"])).code).toBe(2);
    expect((await run(["bench", "-p", "8"])).err).toContain("missing -m FILE");
    expect((await run(["bench", "-m", tinyQ8, "--against", "vllm"])).err).toContain("--against supports llama-bench only");
    const missing = await run(["bench", "-m", tinyQ8, "--against", "llama-bench", "--llama-bench", join(dir, "nope")]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("no such file");
  });

  const peer = findLlamaBench();
  // F16: this llama.cpp build's AMX path crashes on quantized weights on some CPUs (see docs/PERFORMANCE.md).
  it.skipIf(peer === undefined)(`runs llama-bench side by side and prints both columns and the ratio (peer: ${peer ?? "not found, skipped"})`, async () => {
    const f16 = synth("llama", "tiny", GGMLType.F16);
    const { code, out, err } = await run(["bench", "-m", f16, "-r", "2", "-p", "16", "-n", "8", "-t", "2", "--backend", "reference", "--against", "llama-bench"]);
    expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
    expect(out).toMatch(/\| pp16 +\| +[\d.]+ ± [\d.]+ \| +[\d.]+ ± [\d.]+ \| +[\d.]+x \|/);
    expect(out).toMatch(/\| tg8 +\| +[\d.]+ ± [\d.]+ \| +[\d.]+ ± [\d.]+ \| +[\d.]+x \|/);
  }, 60_000);
});
