// `psionic generate`: streams a model's continuation of a prompt to stdout,
// then prints llama.cpp-style timing lines to stderr. Sampling defaults are
// llama.cpp's (common/common.h): temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05, repeat window 64 with the penalties off; --temp 0 is greedy.
import { BACKEND_NAMES, createBackend, defaultThreads, MAX_THREADS, offloadFor, withUploadProgress } from "../runtime/backends.ts";
import { createProgress } from "../util/progress.ts";
import { DEFAULT_BATCH_SIZE, formatTimings, generate, loadModel, tokensPerSecond, type GenerationRequest } from "../runtime/generator.ts";
import { defaultModelPath } from "../util/default-model.ts";
import { PsionicError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import { describeFlags, parseFlags, type FlagTable, type FlagValues } from "./flags.ts";

const usage = "psionic generate -m FILE -p TEXT [-n 128] [--temp 0.8] [--top-k 40] [--top-p 0.95] [--min-p 0.05] [--seed N] [--stop STR] [-t THREADS] [-c CTX] [--backend cpu|reference|cuda] [-ngl N] ...";
const summary = "Generate text from a GGUF model, streaming tokens as they are produced.";

export const generateFlags: FlagTable = {
  model: { type: "string", short: "m", help: "GGUF model file (default: the embedded default model)" },
  prompt: { type: "string", short: "p", help: "prompt text (BOS is added when the vocabulary asks for it)" },
  "n-predict": { type: "number", short: "n", help: "tokens to generate; -1: until end of generation or the context end", default: 128 },
  temp: { type: "number", help: "temperature; 0 or less is greedy", default: 0.8 },
  "top-k": { type: "number", help: "keep the k most likely tokens; 0 disables", default: 40 },
  "top-p": { type: "number", help: "nucleus mass; 1 disables", default: 0.95 },
  "min-p": { type: "number", help: "drop tokens below min-p times the best one's probability; 0 disables", default: 0.05 },
  "typical-p": { type: "number", help: "locally typical mass; 1 disables", default: 1 },
  "repeat-penalty": { type: "number", help: "penalty for tokens in the recent window; 1 disables", default: 1 },
  "repeat-last-n": { type: "number", help: "window of recent tokens the penalties see; 0 disables, -1 the context", default: 64 },
  "presence-penalty": { type: "number", help: "subtracted once from tokens in the window", default: 0 },
  "frequency-penalty": { type: "number", help: "subtracted per occurrence in the window", default: 0 },
  seed: { type: "number", help: "sampling seed; -1 or absent: random (printed to stderr)" },
  stop: { type: "string", repeat: true, help: "stop when this text appears (not printed); may repeat" },
  threads: { type: "number", short: "t", help: "CPU threads (default: all cores)" },
  "ctx-size": { type: "number", short: "c", help: "context size in tokens (default: the model's training context)" },
  "kv-type": { type: "string", help: "KV cache precision: f16 or f32", default: "f16" },
  "batch-size": { type: "number", help: "prompt tokens per forward pass", default: DEFAULT_BATCH_SIZE },
  backend: { type: "string", help: `compute backend: ${BACKEND_NAMES.join(" or ")}`, default: "cpu" },
  "n-gpu-layers": { type: "number", short: "ngl", help: "with --backend cuda: the first N layers on the GPU, the rest on the CPU (default: all)" },
  "ignore-eos": { type: "boolean", help: "never stop at an end-of-generation token (they are never sampled)" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** A flag that must be an integer in [min, max]; usage-class error otherwise. */
export function integerFlag(flags: FlagValues, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new PsionicError("cli.bad-flag", `--${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** Prints a usage error (exit 2) for flag problems; other refusals go on to main's one-line handler (exit 1). */
export async function withUsage(command: string, cmdUsage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof PsionicError && error.code === "cli.bad-flag") {
      console.error(`psionic ${command}: ${error.message.split("\n")[0]}\nusage: ${cmdUsage}`);
      return 2;
    }
    throw error;
  }
}

/**
 * Writes to stdout and yields to the event loop, so the text reaches a pipe or
 * terminal before the next forward pass blocks the thread (Bun flushes stdout
 * writes from the loop).
 */
async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once("drain", resolve));
  else await new Promise((resolve) => setImmediate(resolve));
}

export const generateCommand: Command = {
  name: "generate",
  summary,
  usage,
  help: `${summary}\n\nflags:\n${describeFlags(generateFlags)}`,
  run(argv) {
    return withUsage("generate", usage, async () => {
      const { flags, positionals } = parseFlags(argv, generateFlags, usage);
      if (flags.help) {
        console.log(`usage: ${usage}\n\n${this.help}`);
        return 0;
      }
      if (positionals.length > 0) throw new PsionicError("cli.bad-flag", `unexpected argument "${positionals[0]}"`);
      const modelPath = typeof flags.model === "string" ? flags.model : defaultModelPath();
      if (modelPath === undefined) throw new PsionicError("cli.bad-flag", "missing -m FILE (this build embeds no default model: fixtures/default-model.gguf, made by `psionic train`)");
      if (typeof flags.prompt !== "string") throw new PsionicError("cli.bad-flag", "missing -p TEXT");
      const kvType = flags["kv-type"];
      if (kvType !== "f16" && kvType !== "f32") throw new PsionicError("cli.bad-flag", `--kv-type must be f16 or f32, got ${kvType}`);
      const threads = integerFlag(flags, "threads", 1, MAX_THREADS) ?? defaultThreads();
      const contextLimit = integerFlag(flags, "ctx-size", 1);
      const seed = integerFlag(flags, "seed", -1);
      const request: GenerationRequest = {
        prompt: flags.prompt,
        maxTokens: integerFlag(flags, "n-predict", -1)!,
        batchSize: integerFlag(flags, "batch-size", 1)!,
        stopStrings: (flags.stop as string[] | undefined) ?? [],
        ignoreEos: flags["ignore-eos"] === true,
        sampling: {
          temperature: flags.temp as number,
          topK: integerFlag(flags, "top-k", 0),
          topP: flags["top-p"] as number,
          minP: flags["min-p"] as number,
          typicalP: flags["typical-p"] as number,
          repeatPenalty: flags["repeat-penalty"] as number,
          penaltyLastN: integerFlag(flags, "repeat-last-n", -1),
          presencePenalty: flags["presence-penalty"] as number,
          frequencyPenalty: flags["frequency-penalty"] as number,
          seed: seed === undefined || seed === -1 ? undefined : seed,
        },
      };

      const upload = createProgress({ label: "uploading weights to the GPU", total: 0 });
      const backend = await createBackend(flags.backend as string, withUploadProgress(flags.backend as string, modelPath, { threads }, (done, total) => upload.update(done, total)));
      const offload = await offloadFor(backend.name, integerFlag(flags, "n-gpu-layers", 0), threads);
      const loaded = loadModel(modelPath, { backend, contextLimit, kvPrecision: kvType, offload });
      if (backend.name === "cuda") upload.finish();
      const hp = loaded.model.hparams;
      console.error(`psionic generate: ${loaded.path}: ${hp.arch}, ${hp.layers} layers, vocab ${loaded.model.vocabSize}, context ${loaded.model.cache.contextLimit}; backend ${backend.name}, ${threads} threads`);
      for await (const event of generate(loaded, request)) {
        if (event.kind === "text") {
          await writeOut(event.text);
          continue;
        }
        await writeOut("\n");
        const t = event.timings;
        console.error(`\npsionic generate: stopped (${event.reason}) after ${event.tokens.length} tokens; seed ${event.seed}`);
        console.error(formatTimings(t, loaded.loadMs));
        console.error(`prompt tokens ${t.promptTokens}, prefill ${tokensPerSecond(t.promptTokens, t.prefillMs).toFixed(2)} tok/s, decode ${tokensPerSecond(t.decodeTokens, t.decodeMs).toFixed(2)} tok/s`);
      }
      return 0;
    });
  },
};
