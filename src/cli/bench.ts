// `psionic bench`: prefill and decode throughput measured the way llama.cpp's
// llama-bench measures it (tools/llama-bench/llama-bench.cpp), optionally side
// by side with llama-bench itself on the same file, threads and sizes:
//   pp<P>: P random token ids (BOS first when the vocabulary adds one) from an
//          empty cache, in physical batches of 512 (llama-bench's n_ubatch);
//          one full untimed warm-up run first.
//   tg<N>: N single-token steps from an empty cache, each feeding a random id
//          (llama-bench samples nothing: it decodes and reads the logits);
//          one untimed 1-token warm-up run first.
// Each repetition clears the cache and is timed as a whole; the statistic is
// llama-bench's: mean and sample standard deviation of the per-run tok/s.
import { cpus, loadavg } from "node:os";
import { DownloadBuffer, type Activation } from "../runtime/backend.ts";
import { BACKEND_NAMES, createBackend, defaultThreads, MAX_THREADS, offloadFor, withUploadProgress } from "../runtime/backends.ts";
import { createProgress } from "../util/progress.ts";
import { loadModel, prefill, type LoadedModel } from "../runtime/generator.ts";
import { SeededRng } from "../runtime/rng.ts";
import { typeLayout } from "../gguf/types.ts";
import { PsionicError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import { findLlamaBench, runLlamaBench, testName, type PeerResult } from "./bench-llama.ts";
import { decodeTraffic, measureReadBandwidth, type DecodeTraffic, type ReadBandwidth } from "./bench-memory.ts";
import { describeFlags, parseFlags, type FlagTable } from "./flags.ts";
import { integerFlag, withUsage } from "./generate.ts";

const usage = "psionic bench -m FILE [-p 512] [-n 128] [-ub 512] [-r 5] [-t THREADS] [--backend cpu|cuda] [-ngl N] [--against llama-bench] [--llama-bench PATH] [--json]";
const summary = "Measure prefill (pp) and decode (tg) tok/s as llama-bench does, side by side with llama.cpp.";

/** llama-bench's default physical batch (n_ubatch): prompts are split into forward passes of this many tokens. */
const PHYSICAL_BATCH_DEFAULT = 512;
/** The most -ub takes: one forward pass of the longest prompt a test would sensibly run. */
const PHYSICAL_BATCH_MAX = 65536;

const flags: FlagTable = {
  model: { type: "string", short: "m", help: "GGUF model file" },
  "n-prompt": { type: "number", short: "p", help: "prompt tokens of the pp test; 0 skips it", default: 512 },
  "n-gen": { type: "number", short: "n", help: "generated tokens of the tg test; 0 skips it", default: 128 },
  "ubatch-size": { type: "number", short: "ub", help: "prompt tokens per forward pass of the pp test (llama-bench's -ub; the peer gets the same)", default: PHYSICAL_BATCH_DEFAULT },
  repetitions: { type: "number", short: "r", help: "timed runs per test", default: 5 },
  threads: { type: "number", short: "t", help: "CPU threads, for psionic and the peer (default: all cores)" },
  against: { type: "string", help: "also run this peer on the same file: llama-bench" },
  "llama-bench": { type: "string", help: "llama-bench binary (default: $PSIONIC_LLAMA_BENCH, then the most recently built ~/.cache/psionic-peers/*-cpu/build/bin/llama-bench)" },
  backend: { type: "string", help: `psionic backend: ${BACKEND_NAMES.join(" or ")}`, default: "cpu" },
  "n-gpu-layers": { type: "number", short: "ngl", help: "with --backend cuda: the first N layers on the GPU, the rest on the CPU (default: all)" },
  json: { type: "boolean", help: "print one JSON object to stdout instead of the table" },
  help: { type: "boolean", short: "h", help: "show this help" },
};


export interface Summary {
  mean: number;
  /** Sample standard deviation (n - 1), 0 for one run: llama-bench's stdev(). */
  stddev: number;
  median: number;
}

export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  if (n === 0) return { mean: 0, stddev: 0, median: 0 };
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const stddev = n > 1 ? Math.sqrt(samples.reduce((a, s) => a + (s - mean) ** 2, 0) / (n - 1)) : 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { mean, stddev, median };
}

export interface TestResult {
  test: string;
  nPrompt: number;
  nGen: number;
  /** Per-repetition tokens per second. */
  samples: number[];
  tokensPerSecond: Summary;
}

interface BenchRun {
  nPrompt: number;
  nGen: number;
  /** Prompt tokens per forward pass (llama-bench's n_ubatch). */
  ubatch: number;
  repetitions: number;
  onProgress?: (line: string) => void;
}

/** llama-bench's token stream: BOS first when the vocabulary adds it, then uniform random ids. */
function tokenSource(loaded: LoadedModel, rng: SeededRng): (first: boolean) => number {
  const vocab = loaded.model.vocabSize;
  const bos = loaded.tokenizer.addBos ? loaded.tokenizer.special.bos : undefined;
  return (first) => (first && bos !== undefined && bos < vocab ? bos : rng.nextUint32() % vocab);
}

/** Runs the pp and tg tests on psionic; the model's cache must hold max(nPrompt, nGen) positions. */
export function benchPsionic(loaded: LoadedModel, run: BenchRun): TestResult[] {
  const { model } = loaded;
  const next = tokenSource(loaded, new SeededRng(1));
  // Into one reused buffer, as llama.cpp copies into its output buffer: not an allocation per token.
  const logitsBuffer = new DownloadBuffer();
  const read = (logits: Activation) => logitsBuffer.read(model.backend, logits);
  const promptTest = () => {
    const tokens = new Int32Array(run.nPrompt);
    for (let i = 0; i < tokens.length; i++) tokens[i] = next(i === 0);
    model.cache.truncate(0);
    read(prefill(model, tokens, run.ubatch));
  };
  const genTest = (count: number) => {
    model.cache.truncate(0);
    let token = next(true);
    for (let i = 0; i < count; i++) {
      read(model.forward(Int32Array.of(token)));
      token = next(false);
    }
  };
  const tests: [number, number, () => void, () => void][] = [];
  if (run.nPrompt > 0) tests.push([run.nPrompt, 0, promptTest, promptTest]);
  if (run.nGen > 0) tests.push([0, run.nGen, () => genTest(1), () => genTest(run.nGen)]);
  return tests.map(([nPrompt, nGen, warmUp, timed]) => {
    const test = testName(nPrompt, nGen);
    run.onProgress?.(`psionic: ${test}: warm-up run`);
    warmUp();
    const samples: number[] = [];
    for (let r = 0; r < run.repetitions; r++) {
      run.onProgress?.(`psionic: ${test}: run ${r + 1}/${run.repetitions}`);
      const start = performance.now();
      timed();
      samples.push(((nPrompt + nGen) * 1000) / (performance.now() - start));
    }
    return { test, nPrompt, nGen, samples, tokensPerSecond: summarize(samples) };
  });
}

export interface BenchReport {
  model: { path: string; arch: string; weightType: string; parameters: number; fileBytes: number };
  /** Where it ran; the 1-minute load average before the runs says whether other work shared the cores. */
  machine: { cpu: string; cores: number; loadAverage: number };
  backend: string;
  threads: number;
  repetitions: number;
  /** Prompt tokens per forward pass of the pp test (-ub). */
  ubatch: number;
  statistic: "mean ± sample stddev of per-run tok/s (llama-bench's)";
  psionic: TestResult[];
  peer: { name: "llama-bench"; binary: string; results: PeerResult[] } | null;
  decode: (DecodeTraffic & { achievedBytesPerSecond: number; readBandwidth: ReadBandwidth; fractionOfBandwidth: number }) | null;
}

/** The weight type holding most of the bytes (what llama.cpp calls the model's type). */
function predominantType(loaded: LoadedModel): string {
  const bytes = new Map<number, number>();
  for (const t of loaded.file.tensors) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.nbytes);
  const [type] = [...bytes].sort((a, b) => b[1] - a[1])[0] ?? [0];
  return typeLayout(type)?.name ?? String(type);
}

const fixed = (v: number) => v.toFixed(2);
const plusMinus = (mean: number, stddev: number) => `${fixed(mean)} ± ${fixed(stddev)}`;

export function formatReport(r: BenchReport): string {
  const lines = [
    `model: ${r.model.path} (${r.model.arch}, ${r.model.weightType}, ${(r.model.parameters / 1e6).toFixed(1)}M parameters, ${(r.model.fileBytes / 2 ** 20).toFixed(1)} MiB)`,
    `machine: ${r.machine.cpu}, ${r.machine.cores} cores, 1-minute load average ${r.machine.loadAverage.toFixed(2)} before the runs`,
    `psionic backend ${r.backend}${r.backend === "reference" ? " (the plain TypeScript oracle, single-threaded)" : ""}, ${r.threads} threads, ${r.repetitions} runs per test, prompts in passes of ${r.ubatch} tokens; tok/s = ${r.statistic}`,
  ];
  if (r.peer) lines.push(`llama.cpp: ${r.peer.binary}, same file, threads, sizes and runs`);
  const rows = [["test", "psionic tok/s", "llama.cpp tok/s", "ratio"]];
  for (const p of r.psionic) {
    const peer = r.peer?.results.find((x) => x.nPrompt === p.nPrompt && x.nGen === p.nGen);
    rows.push([
      p.test,
      plusMinus(p.tokensPerSecond.mean, p.tokensPerSecond.stddev),
      peer ? plusMinus(peer.meanTokensPerSecond, peer.stddevTokensPerSecond) : "-",
      peer ? `${(p.tokensPerSecond.mean / peer.meanTokensPerSecond).toFixed(2)}x` : "-",
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ")} |`;
  lines.push("", line(rows[0]!), `|${widths.map((w, c) => (c === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`, ...rows.slice(1).map(line));
  if (r.decode) {
    const d = r.decode;
    const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
    const what = [d.tiedEmbedding ? "output head tied to token_embd, counted" : "token_embd excluded", d.expertShare < 1 ? `experts at ${d.expertShare.toFixed(3)} of their bytes` : null].filter(Boolean).join("; ");
    lines.push("", `decode weight traffic: ${(d.bytesPerToken / 2 ** 20).toFixed(2)} MiB per token (${what}) x ${fixed(r.psionic.find((p) => p.nGen > 0)!.tokensPerSecond.mean)} tok/s = ${gb(d.achievedBytesPerSecond)} GB/s`);
    lines.push(`machine read bandwidth: ${gb(d.readBandwidth.bytesPerSecond)} GB/s (${d.readBandwidth.threads} threads, best of ${d.readBandwidth.trials} sweeps of ${d.readBandwidth.bufferBytes / 2 ** 20} MiB); decode reaches ${(d.fractionOfBandwidth * 100).toFixed(0)}% of it`);
  }
  return lines.join("\n");
}

export const benchCommand: Command = {
  name: "bench",
  summary,
  usage,
  help: `${summary}\n\nflags:\n${describeFlags(flags)}`,
  run(argv) {
    return withUsage("bench", usage, async () => {
      const { flags: f, positionals } = parseFlags(argv, flags, usage);
      if (f.help) {
        console.log(`usage: ${usage}\n\n${this.help}`);
        return 0;
      }
      if (positionals.length > 0) throw new PsionicError("cli.bad-flag", `unexpected argument "${positionals[0]}"`);
      if (typeof f.model !== "string") throw new PsionicError("cli.bad-flag", "missing -m FILE");
      if (f.against !== undefined && f.against !== "llama-bench") throw new PsionicError("cli.bad-flag", `--against supports llama-bench only, got ${f.against}`);
      const nPrompt = integerFlag(f, "n-prompt", 0)!, nGen = integerFlag(f, "n-gen", 0)!;
      const repetitions = integerFlag(f, "repetitions", 1, 1000)!;
      const ubatch = integerFlag(f, "ubatch-size", 1, PHYSICAL_BATCH_MAX)!;
      const threads = integerFlag(f, "threads", 1, MAX_THREADS) ?? defaultThreads();
      if (nPrompt === 0 && nGen === 0) throw new PsionicError("cli.bad-flag", "-p and -n are both 0: nothing to measure");
      // Found before the long psionic run, so a missing peer fails fast.
      const peerBinary = f.against ? findLlamaBench(f["llama-bench"] as string | undefined) : undefined;
      if (f.against && !peerBinary) {
        throw new PsionicError("bench.peer-missing", "llama-bench not found: pass --llama-bench PATH, set PSIONIC_LLAMA_BENCH, or build it with ../shared/scripts/build-llama-peer.sh");
      }
      const progress = (line: string) => console.error(`psionic bench: ${line}`);
      const machine = { cpu: cpus()[0]?.model.trim() ?? "unknown", cores: cpus().length, loadAverage: loadavg()[0]! };

      const upload = createProgress({ label: "uploading weights to the GPU", total: 0 });
      const backend = await createBackend(f.backend as string, withUploadProgress(f.backend as string, f.model, { threads }, (done, total) => upload.update(done, total)));
      const offload = await offloadFor(backend.name, integerFlag(f, "n-gpu-layers", 0), threads);
      const loaded = loadModel(f.model, { backend, contextLimit: Math.max(nPrompt, nGen, 1), offload });
      if (backend.name === "cuda") upload.finish();
      progress(`loaded ${f.model} on ${backend.name} in ${loaded.loadMs.toFixed(0)} ms`);
      const psionic = benchPsionic(loaded, { nPrompt, nGen, ubatch, repetitions, onProgress: progress });

      let decode: BenchReport["decode"] = null;
      const tg = psionic.find((p) => p.nGen > 0);
      if (tg) {
        progress(`measuring memory read bandwidth with ${threads} threads`);
        const traffic = decodeTraffic(loaded.file);
        const readBandwidth = measureReadBandwidth(threads);
        const achievedBytesPerSecond = traffic.bytesPerToken * tg.tokensPerSecond.mean;
        decode = { ...traffic, achievedBytesPerSecond, readBandwidth, fractionOfBandwidth: achievedBytesPerSecond / readBandwidth.bytesPerSecond };
      }

      let peer: BenchReport["peer"] = null;
      if (peerBinary) {
        progress(`running ${peerBinary} -t ${threads} -p ${nPrompt} -n ${nGen} -ub ${ubatch} -r ${repetitions}`);
        peer = { name: "llama-bench", binary: peerBinary, results: await runLlamaBench(peerBinary, { model: f.model, threads, nPrompt, nGen, ubatch, repetitions }) };
      }

      const hp = loaded.model.hparams;
      const report: BenchReport = {
        model: {
          path: f.model, arch: hp.arch, weightType: predominantType(loaded),
          parameters: loaded.file.tensors.reduce((n, t) => n + t.elements, 0), fileBytes: loaded.file.size,
        },
        machine, backend: backend.name, threads, repetitions, ubatch,
        statistic: "mean ± sample stddev of per-run tok/s (llama-bench's)",
        psionic, peer, decode,
      };
      console.log(f.json ? JSON.stringify(report, null, 2) : formatReport(report));
      return 0;
    });
  },
};
