// `psionic gguf synth`: write a synthetic llama or gpt-oss GGUF (wiring only;
// the work is in src/model/synth.ts).
import { resolve } from "node:path";
import { typeByName } from "../gguf/types.ts";
import { presetsFor, type Architecture, ARCHITECTURES } from "../model/presets.ts";
import { describeFallbacks, planSynth, synthesize, type SynthOptions } from "../model/synth.ts";
import { TOKENIZER_KINDS, type TokenizerKind } from "../model/synth-vocab.ts";
import { PsionicError } from "../util/errors.ts";
import { createProgress, formatBytes } from "../util/progress.ts";
import type { Command } from "./command.ts";
import { describeFlags, parseFlags, type FlagTable } from "./flags.ts";

const usage = "psionic gguf synth --arch llama|gpt-oss --preset NAME --type F16|Q8_0|Q4_0|Q4_K|MXFP4|... [--seed N] [--tokenizer bpe|spm] -o FILE";

const flags: FlagTable = {
  arch: { type: "string", help: `architecture: ${ARCHITECTURES.join(" or ")}` },
  preset: { type: "string", help: "model shape (see --list)", default: "tiny" },
  type: { type: "string", help: "weight type; MXFP4 = MXFP4 experts, Q8_0 elsewhere (gpt-oss)", default: "F16" },
  seed: { type: "number", help: "random seed; the same seed writes the same bytes", default: 0 },
  tokenizer: { type: "string", help: "llama only: bpe (byte-level, Llama 3 style) or spm (SentencePiece style)", default: "bpe" },
  output: { type: "string", short: "o", help: "file to write (atomically)" },
  "text-output": { type: "boolean", help: "zero the output head for byte fragments and end tokens, so output is whole text (serving benchmarks)" },
  list: { type: "boolean", help: "list the presets with their parameter counts and exit" },
  quiet: { type: "boolean", short: "q", help: "no progress line" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

const summary = "Write a llama or gpt-oss GGUF with seeded random weights that llama.cpp runs.";

function presetList(): string {
  const lines: string[] = [];
  for (const arch of ARCHITECTURES) {
    for (const preset of presetsFor(arch as Architecture)) {
      const plan = planSynth({ preset, type: typeByName("F16")!.type, seed: 0 });
      lines.push(`  ${arch.padEnd(8)} ${preset.name.padEnd(12)} ${formatCount(plan.parameterCount).padStart(7)} params  ${preset.description}`);
    }
  }
  return lines.join("\n");
}

/** 20914757184 -> "20.91B". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export const synthCommand: Command = {
  name: "synth",
  summary,
  usage,
  get help() {
    return `${summary}\n\nflags:\n${describeFlags(flags)}\n\npresets:\n${presetList()}`;
  },
  async run(argv) {
    const { flags: f, positionals } = parseFlags(argv, flags, usage);
    if (f.help) {
      console.log(`usage: ${usage}\n\n${this.help}`);
      return 0;
    }
    if (f.list) {
      console.log(presetList());
      return 0;
    }
    if (positionals.length > 0) throw new PsionicError("cli.bad-flag", `unexpected argument "${positionals[0]}"\nusage: ${usage}`);
    if (f.arch === undefined) throw new PsionicError("cli.bad-flag", `--arch is required (${ARCHITECTURES.join(" or ")})\nusage: ${usage}`);
    if (f.output === undefined) throw new PsionicError("cli.bad-flag", `-o FILE is required\nusage: ${usage}`);
    const type = typeByName(String(f.type));
    if (!type) throw new PsionicError("cli.bad-flag", `--type ${f.type} is not a ggml type (e.g. F16, Q8_0, Q4_0, Q4_K, MXFP4)`);
    const tokenizer = String(f.tokenizer);
    if (!TOKENIZER_KINDS.includes(tokenizer as TokenizerKind)) throw new PsionicError("cli.bad-flag", `--tokenizer must be ${TOKENIZER_KINDS.join(" or ")}, got "${tokenizer}"`);

    const options: SynthOptions = {
      preset: { arch: String(f.arch), name: String(f.preset) },
      type: type.type,
      seed: f.seed as number,
      tokenizer: tokenizer as TokenizerKind,
      textOutput: f["text-output"] === true,
    };
    const plan = planSynth(options); // refuses bad combinations before any work
    const fallbacks = describeFallbacks(plan);
    if (fallbacks.length > 0) {
      console.error(`note: ${fallbacks.length} tensor(s) fall back to another type, as llama.cpp's quantizer would:`);
      for (const line of fallbacks.slice(0, 4)) console.error(`  ${line}`);
      if (fallbacks.length > 4) console.error(`  ... and ${fallbacks.length - 4} more`);
    }

    const path = resolve(String(f.output));
    const progress = createProgress({ label: `writing ${path}`, total: 0, quiet: f.quiet === true });
    const started = performance.now();
    const result = synthesize(options, path, (done, total) => progress.update(done, total));
    progress.finish();
    const seconds = (performance.now() - started) / 1000;
    const p = result.plan;
    console.log(`wrote ${result.path}`);
    console.log(`  ${p.preset.arch} ${p.preset.name}, type ${type.name}, seed ${p.seed}`);
    console.log(`  ${p.parameterCount.toLocaleString("en-US")} parameters (${formatCount(p.parameterCount)}; ${formatCount(p.activeParameterCount)} active per token)`);
    console.log(`  ${result.fileBytes.toLocaleString("en-US")} bytes (${formatBytes(result.fileBytes)}) in ${seconds.toFixed(1)} s`);
    return 0;
  },
};
