// Greedy generation on the CUDA backend against the CPU backend (which
// matches llama.cpp: src/model/cpu-parity*.test.ts) on synthesized llama and
// gpt-oss models of every type the CUDA kernels take, teacher-forced as
// parity-harness.ts does: both sides are fed the CPU's pick, every step's
// picks must agree except at near-ties under the logit tolerance (gpt-oss
// with quantized weights: a few routing near-ties, see below). The gpt-oss
// prompt runs past its 16-token sliding window, and a 70-token prompt takes
// the prefill paths (cuBLAS products, experts grouped by id). Needs a GPU
// (scripts/device-check.sh); not collected by the default `bun test`.
import { describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLType } from "../../gguf/types.ts";
import { argmax, FLOAT_WEIGHTS_TOLERANCE, QUANTIZED_WEIGHTS_TOLERANCE } from "../../model/parity-harness.ts";
import { synthesize } from "../../model/synth.ts";
import { CpuBackend } from "../cpu/cpu-backend.ts";
import { startEngine } from "../engine/engine-client.ts";
import type { OutputConstraint, SamplingParams } from "../engine/protocol.ts";
import { generate, loadModel, promptTokens } from "../generator.ts";
import { CudaBackend } from "./cuda-backend.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-cuda-parity-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const cuda = new CudaBackend();

const PROMPTS = {
  llama: "The quick brown fox jumps over the lazy dog",
  "gpt-oss": "<|start|>user<|message|>The quick brown fox jumps over the lazy dog, and then the dog runs after the fox through the field and over the hill.<|end|><|start|>assistant",
};
const LONG = " Then the fox and the dog sleep under the old tree until the morning sun wakes them, and they run again.".repeat(3);
const TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
const ROUTING_TIES_ALLOWED = 4;
// PSIONIC_CUDA_CHECK_SUBSET=ci: the cases cuda-emulated.test.ts runs on the CPU build of the kernels
// (one legacy and one K-quant llama, MXFP4 gpt-oss: every decode layout and both MoE paths).
const CI_SUBSET = process.env.PSIONIC_CUDA_CHECK_SUBSET === "ci" ? new Set(["llama Q8_0", "llama Q4_K", "gpt-oss MXFP4"]) : null;
const FLOAT = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);

function compare(path: string, prompt: string, generate: number, gpuLayers?: number) {
  const offload = gpuLayers === undefined ? undefined : { layers: gpuLayers, rest: new CpuBackend({ threads: 4 }) };
  const ours = loadModel(path, { backend: cuda, contextLimit: 512, offload });
  const theirs = loadModel(path, { backend: new CpuBackend({ threads: 4 }), contextLimit: 512 });
  const tokens = Int32Array.from(theirs.tokenizer.encode(prompt));
  let a = ours.model.backend.download(ours.model.forward(tokens));
  let b = theirs.model.backend.download(theirs.model.forward(tokens));
  let maxDiff = 0;
  const disagreements: { step: number; margin: number }[] = [];
  for (let step = 0; step < generate; step++) {
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    const mine = argmax(a), next = argmax(b);
    if (mine !== next) disagreements.push({ step, margin: b[next]! - b[mine]! });
    if (step + 1 === generate) break;
    a = ours.model.backend.download(ours.model.forward(Int32Array.of(next)));
    b = theirs.model.backend.download(theirs.model.forward(Int32Array.of(next)));
  }
  return { promptTokens: tokens.length, maxDiff, disagreements };
}

describe("CUDA backend against the CPU backend: teacher-forced greedy generation", () => {
  const cases = [
    ...TYPES.map((t) => ["llama", t] as const),
    ...[...TYPES, GGMLType.MXFP4].map((t) => ["gpt-oss", t] as const),
  ];
  for (const [arch, type] of cases.filter(([a, t]) => !CI_SUBSET || CI_SUBSET.has(`${a} ${GGMLType[t]}`))) {
    it(`tiny ${arch} ${GGMLType[type]}: 48 greedy picks identical except near-ties`, () => {
      const path = join(dir, `${arch}-${GGMLType[type]}.gguf`);
      synthesize({ preset: { arch, name: "tiny" }, type, seed: 7 }, path);
      const tolerance = FLOAT.has(type) ? FLOAT_WEIGHTS_TOLERANCE * 10 : QUANTIZED_WEIGHTS_TOLERANCE;
      for (const prompt of [PROMPTS[arch], PROMPTS[arch] + LONG]) {
        const r = compare(path, prompt, 48);
        const real = r.disagreements.filter((d) => d.margin >= tolerance);
        console.log(`cuda vs cpu | ${arch} ${GGMLType[type]} | ${r.promptTokens}-token prompt | max |diff| ${r.maxDiff.toExponential(2)} | ${48 - r.disagreements.length}/48 identical${r.disagreements.length ? `, near-ties at ${r.disagreements.map((d) => `${d.step} (${d.margin.toExponential(1)})`).join(", ")}` : ""}`);
        if (arch === "gpt-oss") expect(r.promptTokens).toBeGreaterThan(16);
        if (arch === "gpt-oss" && !FLOAT.has(type)) {
          // Expert routing is a top-k over router logits: when two are within
          // rounding of each other the backends may run different experts at
          // that step, which moves its logits by more than the tolerance. Such
          // steps are rare and isolated (teacher forcing realigns the next one).
          expect(r.disagreements.length).toBeLessThanOrEqual(ROUTING_TIES_ALLOWED);
        } else {
          expect(real).toEqual([]);
        }
      }
    }, 120_000);
  }
});

describe("CUDA backend: the device profile", () => {
  it("PSIONIC_CUDA_PROFILE=1 prints device time per op at exit, the fused ops by name", async () => {
    const path = join(dir, "oss-profile.gguf");
    synthesize({ preset: { arch: "gpt-oss", name: "tiny" }, type: GGMLType.MXFP4, seed: 7 }, path);
    const root = join(import.meta.dir, "../../..");
    const child = Bun.spawn([process.execPath, "src/cli/main.ts", "generate", "--backend", "cuda", "-m", path, "-p", "The fox", "-n", "3", "--temp", "0"], {
      cwd: root, stdout: "pipe", stderr: "pipe", env: { ...process.env, PSIONIC_CUDA_PROFILE: "1" },
    });
    const [err, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(code).toBe(0);
    expect(err).toContain("psionic cuda profile");
    for (const op of ["matmuls attn_q+attn_k+attn_v", "addRmsNorm", "moeAdd", "moeAddRmsNorm", "ropeAttendSegments", "matmul output.weight"]) {
      expect(err).toMatch(new RegExp(`^${op.replace(/[.+]/g, "\\$&")} +\\d+ `, "m"));
    }
    // Dense products end with their weights' GB/s; other ops with "-".
    expect(err).toMatch(/^matmul output\.weight .* \d+\.\d$/m);
    expect(err).toMatch(/^addRmsNorm .* -$/m);
  }, 300_000);
});

describe("CUDA backend: -ngl, batches, greedy on the device", () => {
  it("the engine's batched steps pick on the device (argmax, top-k, JSON trials, logprobs) what host sampling of the logits picks", async () => {
    const path = join(dir, "oss-engine.gguf");
    synthesize({ preset: { arch: "gpt-oss", name: "tiny" }, type: GGMLType.MXFP4, seed: 7 }, path);
    const engine = await startEngine({ models: [{ path, id: "m" }], backend: "cuda", contextLimit: 256, parallel: 4 });
    try {
      // onHost: 129 alternatives, more than the device's top-k holds (MAX_DEVICE_TOP_K), so every row comes back whole.
      const run = async (text: string, onHost: boolean, sampling: SamplingParams = { temperature: 0 }, constraint?: OutputConstraint) => {
        const job = { id: `${text}-${onHost}-${sampling.temperature}-${constraint?.kind}`, model: "m", prompt: { text }, maxTokens: 16, sampling, stop: [], logprobs: onHost, topLogprobs: onHost ? 129 : 0, constraint };
        const tokens: number[] = [];
        for await (const e of engine.generate(job)) if (e.kind === "token") tokens.push(e.token);
        return tokens;
      };
      const prompts = ["The fox", "A dog runs", "Over the hill the", "Once"];
      // Greedy: every sequence picks by argmax on the device, or on the host from the logits.
      const onDevice = await Promise.all(prompts.map((p) => run(p, false)));
      const onHost = await Promise.all(prompts.map((p) => run(p, true)));
      expect(onDevice.every((t) => t.length === 16)).toBe(true);
      expect(onDevice).toEqual(onHost);
      // Sampled from top-k 40 with a seed: each row's 40 best come back (topKRows), or the logits.
      const sampling = (i: number) => ({ temperature: 0.9, topK: 40, seed: 100 + i });
      const fromTop = await Promise.all(prompts.map((p, i) => run(p, false, sampling(i))));
      const fromLogits = await Promise.all(prompts.map((p, i) => run(p, true, sampling(i))));
      expect(fromTop.every((t) => t.length === 16)).toBe(true);
      expect(fromTop).toEqual(fromLogits);
      // JSON mode: the trial pick from the top-k, the row read only when the constraint refuses it.
      const json: OutputConstraint = { kind: "json-object" };
      const jsonFromTop = await Promise.all(prompts.map((p, i) => run(p, false, sampling(i), json)));
      const jsonFromLogits = await Promise.all(prompts.map((p, i) => run(p, true, sampling(i), json)));
      expect(jsonFromTop.every((t) => t.length > 0)).toBe(true);
      expect(jsonFromTop).toEqual(jsonFromLogits);
      // Logprobs from the device's top-k and log Z agree with the host's from the whole row.
      const logprobsOf = async (text: string, topLogprobs: number) => {
        const job = { id: `${text}-logprobs-${topLogprobs}`, model: "m", prompt: { text }, maxTokens: 8, sampling: { temperature: 0 }, stop: [], logprobs: true, topLogprobs };
        const out: { token: number; logprob: number; top: { token: number; logprob: number }[] }[] = [];
        for await (const e of engine.generate(job)) {
          if (e.kind === "token") out.push({ token: e.token, logprob: e.logprob!, top: e.topLogprobs!.slice(0, 5).map(({ token, logprob }) => ({ token, logprob })) });
        }
        return out;
      };
      const device = await logprobsOf("The fox", 5), host = await logprobsOf("The fox", 129);
      expect(device.map((t) => [t.token, t.top.map((a) => a.token)])).toEqual(host.map((t) => [t.token, t.top.map((a) => a.token)]));
      device.forEach((t, i) => {
        expect(Math.abs(t.logprob - host[i]!.logprob)).toBeLessThan(1e-4);
        t.top.forEach((a, j) => expect(Math.abs(a.logprob - host[i]!.top[j]!.logprob)).toBeLessThan(1e-4));
      });
    } finally {
      await engine.close();
    }
  }, 300_000);

  it("generate() at temperature 0 picks on the device (argmaxRows) the tokens the downloaded logits give; decode steps replay CUDA graphs", async () => {
    const path = join(dir, "llama-greedy.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
    const loaded = loadModel(path, { backend: cuda, contextLimit: 512 });
    const prompt = PROMPTS.llama;
    const picked: number[] = [];
    let onDevice = 0;
    const before = cuda.graphStats();
    const argmaxRows = cuda.argmaxRows.bind(cuda);
    cuda.argmaxRows = (x) => (onDevice++, argmaxRows(x));
    for await (const e of generate(loaded, { prompt, maxTokens: 24, ignoreEos: false, sampling: { temperature: 0 } })) if (e.kind === "done") picked.push(...e.tokens);
    // The same steps by hand: download the logits and take their argmax.
    const { model } = loaded;
    model.cache.truncate(0);
    let logits = model.backend.download(model.forward(promptTokens(loaded, prompt)));
    const expected: number[] = [];
    for (let i = 0; i < picked.length; i++) {
      expected.push(argmax(logits));
      if (i + 1 < picked.length) logits = model.backend.download(model.forward(Int32Array.of(expected[i]!)));
    }
    cuda.argmaxRows = argmaxRows;
    // Decode steps run as graphs: captured once per step shape, then replayed. Each forward pass
    // (picked.length in generate(), as many by hand) runs as at least two: its first launches are
    // cut off and start on the device while the rest of the step is recorded (kernels/cuda/graph.cu).
    const after = cuda.graphStats();
    const copies = after.stagingCopies - before.stagingCopies;
    const launched = after.captured - before.captured + after.replayed - before.replayed;
    console.log(`graphs: ${after.captured - before.captured} captured, ${after.replayed - before.replayed} replayed over ${picked.length} steps; ${copies} staging copies`);
    expect(after.replayed - before.replayed).toBeGreaterThan(picked.length / 2);
    expect(launched).toBeGreaterThanOrEqual(2 * 2 * picked.length);
    // Each forward pass stages its token ids, positions and output rows once, not once per layer:
    // every layer's copy would sit in the step's kernel chain.
    expect(copies).toBeLessThanOrEqual(3 * 2 * picked.length);
    expect(onDevice).toBe(picked.length);
    expect(picked.length).toBeGreaterThan(0);
    expect(picked).toEqual(expected);
  }, 120_000);

  it("generate() sampling from top-k 40 (with penalties too) reads each step's best (topKRows) and picks what the downloaded logits give", async () => {
    const path = join(dir, "llama-sampled.gguf");
    synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
    const loaded = loadModel(path, { backend: cuda, contextLimit: 512 });
    for (const sampling of [{ temperature: 0.9, topK: 40, seed: 9 }, { temperature: 0.9, topK: 40, seed: 9, repeatPenalty: 1.5, presencePenalty: 0.5 }]) {
      const tokens = async () => {
        for await (const e of generate(loaded, { prompt: PROMPTS.llama, maxTokens: 24, ignoreEos: false, sampling })) if (e.kind === "done") return e.tokens;
        return [];
      };
      const topKRows = cuda.topKRows.bind(cuda);
      let fromTop = 0;
      cuda.topKRows = (x, k) => (fromTop++, topKRows(x, k));
      const picked = await tokens();
      // Without the method (an own property shadowing the class's), every step downloads its logits.
      Object.assign(cuda, { topKRows: undefined });
      const fromLogits = await tokens();
      delete (cuda as { topKRows?: unknown }).topKRows;
      expect(picked.length).toBeGreaterThan(0);
      expect(fromTop).toBe(picked.length);
      expect(picked).toEqual(fromLogits);
    }
  }, 120_000);

  for (const arch of ["llama", "gpt-oss"] as const) {
    it(`tiny ${arch} Q8_0 with -ngl 1 (layer 0 on the GPU, the rest on the CPU) follows the CPU backend`, () => {
      const path = join(dir, `${arch}-ngl.gguf`);
      synthesize({ preset: { arch, name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
      const r = compare(path, PROMPTS[arch], 32, 1);
      console.log(`cuda -ngl 1 vs cpu | ${arch} Q8_0 | max |diff| ${r.maxDiff.toExponential(2)} | ${32 - r.disagreements.length}/32 identical`);
      expect(r.disagreements.filter((d) => d.margin >= QUANTIZED_WEIGHTS_TOLERANCE).length).toBeLessThanOrEqual(arch === "gpt-oss" ? ROUTING_TIES_ALLOWED : 0);
    }, 120_000);

    it(`tiny ${arch} Q8_0: two sequences in one forwardBatch get the logits each gets alone`, () => {
      const path = join(dir, `${arch}-batch.gguf`);
      synthesize({ preset: { arch, name: "tiny" }, type: GGMLType.Q8_0, seed: 7 }, path);
      const { model } = loadModel(path, { backend: cuda, contextLimit: 512 });
      const a = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 200), b = Int32Array.from({ length: 9 }, (_, i) => (i * 5 + 1) % 200);
      const alone = [a, b].map((t) => {
        const cache = model.newCache();
        return model.backend.download(model.forwardBatch([{ cache, tokens: t, outputRows: [t.length - 1] }]));
      });
      const [ca, cb] = [model.newCache(), model.newCache()];
      const both = model.backend.download(model.forwardBatch([
        { cache: ca, tokens: a, outputRows: [a.length - 1] }, { cache: cb, tokens: b, outputRows: [b.length - 1] },
      ]));
      const vocab = alone[0]!.length;
      let worst = 0;
      for (const [i, logits] of alone.entries()) {
        for (let j = 0; j < vocab; j++) worst = Math.max(worst, Math.abs(both[i * vocab + j]! - logits[j]!));
      }
      // The batch of 49 rows takes the cuBLAS path where the 9-token prompt alone does not.
      console.log(`cuda batch vs alone | ${arch} | max |diff| ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(QUANTIZED_WEIGHTS_TOLERANCE);
    }, 120_000);
  }
});
