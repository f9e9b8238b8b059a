// `psionic gguf inspect FILE [--json]`: what a GGUF file holds, for people and for scripts.
import { PsionicError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import { describeFlags, parseFlags, type FlagTable } from "./flags.ts";
import { GGUFValueType, isArray, metaStringArrayOptional, metaStringOptional, type GGUFEntry, type GGUFValue } from "../gguf/metadata.ts";
import { openGGUF, type GGUFFile } from "../gguf/reader.ts";
import { typeLayout } from "../gguf/types.ts";

const usage = "psionic gguf inspect FILE [--json]";
const flags: FlagTable = {
  json: { type: "boolean", help: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", help: "show this help" },
};
const summary = "Show a GGUF file's architecture, hyper-parameters, tokenizer, tensors and metadata.";

/** Arrays longer than this print as `[N items]`. */
const MAX_ARRAY_SHOWN = 8;
/** Strings longer than this (chat templates) print truncated, with their length. */
const MAX_STRING_SHOWN = 120;

export interface Inspection {
  file: string;
  fileBytes: number;
  version: number;
  alignment: number;
  architecture: string | null;
  name: string | null;
  hyperParameters: Record<string, unknown>;
  tokenizer: {
    model: string | null;
    pre: string | null;
    vocabSize: number | null;
    merges: number | null;
    specialTokens: Record<string, { id: number; text: string | null }>;
  } | null;
  tensors: { name: string; type: string; shape: number[]; bytes: number; offset: number }[];
  totals: { tensors: number; parameters: number; tensorBytes: number; fileBytes: number };
  metadata: Record<string, unknown>;
}

/** Everything `inspect` reports, as data; shared by the text and JSON outputs. */
export function inspectGGUF(file: GGUFFile, path: string): Inspection {
  const meta = file.meta;
  const shown = new Set<string>();
  const take = (key: string) => { shown.add(key); return meta.get(key); };
  const architecture = take("general.architecture") ? metaStringOptional(meta, "general.architecture")! : null;
  const name = take("general.name") ? metaStringOptional(meta, "general.name")! : null;
  take("general.alignment");

  const hyperParameters: Record<string, unknown> = {};
  if (architecture) {
    for (const entry of file.metadata) {
      if (!entry.key.startsWith(`${architecture}.`)) continue;
      shown.add(entry.key);
      hyperParameters[entry.key.slice(architecture.length + 1)] = summarize(entry);
    }
  }

  let tokenizer: Inspection["tokenizer"] = null;
  if (file.metadata.some((e) => e.key.startsWith("tokenizer.ggml."))) {
    const tokens = take("tokenizer.ggml.tokens") ? metaStringArrayOptional(meta, "tokenizer.ggml.tokens")! : null;
    const merges = take("tokenizer.ggml.merges") ? metaStringArrayOptional(meta, "tokenizer.ggml.merges")! : null;
    const specialTokens: Record<string, { id: number; text: string | null }> = {};
    for (const entry of file.metadata) {
      const match = /^tokenizer\.ggml\.(.+)_token_id$/.exec(entry.key);
      if (!match || (typeof entry.value !== "number" && typeof entry.value !== "bigint")) continue;
      shown.add(entry.key);
      const id = Number(entry.value);
      specialTokens[match[1]!] = { id, text: tokens?.[id] ?? null };
    }
    tokenizer = {
      model: take("tokenizer.ggml.model") ? metaStringOptional(meta, "tokenizer.ggml.model")! : null,
      pre: take("tokenizer.ggml.pre") ? metaStringOptional(meta, "tokenizer.ggml.pre")! : null,
      vocabSize: tokens?.length ?? null,
      merges: merges?.length ?? null,
      specialTokens,
    };
  }

  const tensors = file.tensors.map((t) => ({ name: t.name, type: typeLayout(t.type)!.name, shape: t.dims, bytes: t.nbytes, offset: t.offset }));
  const metadata: Record<string, unknown> = {};
  for (const entry of file.metadata) if (!shown.has(entry.key)) metadata[entry.key] = summarize(entry);
  return {
    file: path, fileBytes: file.size, version: file.version, alignment: file.alignment, architecture, name, hyperParameters, tokenizer, tensors,
    totals: {
      tensors: tensors.length,
      parameters: file.tensors.reduce((n, t) => n + t.elements, 0),
      tensorBytes: file.tensors.reduce((n, t) => n + t.nbytes, 0),
      fileBytes: file.size,
    },
    metadata,
  };
}

/** A value as it should print: f32 at its own precision, 64-bit ints exact, long arrays and strings summarized. */
function summarize(entry: GGUFEntry): unknown {
  return summarizeValue(entry.type, entry.value);
}

/** A long array, shown by its length only; JSON gets the same text. */
class ArraySummary {
  constructor(readonly length: number) {}
  toString() { return `[${this.length} items]`; }
  toJSON() { return this.toString(); }
}

function summarizeValue(type: GGUFValueType, value: GGUFValue): unknown {
  if (isArray(value)) {
    if (value.items.length > MAX_ARRAY_SHOWN) return new ArraySummary(value.items.length);
    return value.items.map((item) => summarizeValue(value.itemType, item));
  }
  if (type === GGUFValueType.FLOAT32) return Number((value as number).toPrecision(7));
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === "string" && value.length > MAX_STRING_SHOWN) return `${value.slice(0, MAX_STRING_SHOWN)}... (${value.length} chars)`;
  return value;
}

const count = (n: number) => n.toLocaleString("en-US");

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

function table(rows: string[][], indent = "  "): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => indent + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd()).join("\n");
}

export function formatInspection(x: Inspection): string {
  const out: string[] = [];
  out.push(`file          ${x.file}`);
  out.push(`format        GGUF v${x.version}, alignment ${x.alignment}, ${count(x.fileBytes)} bytes`);
  out.push(`architecture  ${x.architecture ?? "(not stated)"}`);
  out.push(`name          ${x.name ?? "(not stated)"}`);

  const hyper = Object.entries(x.hyperParameters);
  if (hyper.length > 0) {
    out.push("", `hyper-parameters (${x.architecture}.*)`);
    out.push(table(hyper.map(([k, v]) => [k, formatValue(v)])));
  }

  if (x.tokenizer) {
    const t = x.tokenizer;
    out.push("", "tokenizer");
    const rows = [
      ["model", t.model ?? "(not stated)"],
      ["pre", t.pre ?? "(not stated)"],
      ["vocab size", t.vocabSize === null ? "(no tokens)" : count(t.vocabSize)],
      ["merges", t.merges === null ? "(none)" : count(t.merges)],
      ...Object.entries(t.specialTokens).map(([kind, s]) => [`${kind} token`, `${s.id} ${s.text === null ? "(out of vocabulary)" : JSON.stringify(s.text)}`]),
    ];
    out.push(table(rows));
  }

  out.push("", `tensors (${x.tensors.length})`);
  if (x.tensors.length > 0) {
    out.push(table([["name", "type", "shape", "bytes"], ...x.tensors.map((t) => [t.name, t.type, `[${t.shape.join(", ")}]`, count(t.bytes)])]));
  }
  out.push("", "totals");
  out.push(table([
    ["parameters", count(x.totals.parameters)],
    ["tensor bytes", count(x.totals.tensorBytes)],
    ["file bytes", count(x.totals.fileBytes)],
  ]));

  const other = Object.entries(x.metadata);
  if (other.length > 0) {
    out.push("", `other metadata (${other.length})`);
    out.push(table(other.map(([k, v]) => [k, formatValue(v)])));
  }
  return out.join("\n");
}

function usageError(message: string): number {
  console.error(`psionic gguf inspect: ${message}\nusage: ${usage}`);
  return 2;
}

export const inspectCommand: Command = {
  name: "inspect",
  summary,
  usage,
  help: `${summary}\n\nflags:\n${describeFlags(flags)}`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseFlags(argv, flags, usage);
    } catch (error) {
      if (error instanceof PsionicError && error.code === "cli.bad-flag") return usageError(error.message.split("\n")[0]!);
      throw error;
    }
    if (parsed.flags.help) {
      console.log(`usage: ${usage}\n\n${this.help}`);
      return 0;
    }
    if (parsed.positionals.length === 0) return usageError("missing FILE");
    if (parsed.positionals.length > 1) return usageError(`expected one FILE, got ${parsed.positionals.length}`);
    const path = parsed.positionals[0]!;
    const inspection = inspectGGUF(openGGUF(path), path);
    console.log(parsed.flags.json ? JSON.stringify(inspection, null, 2) : formatInspection(inspection));
    return 0;
  },
};
