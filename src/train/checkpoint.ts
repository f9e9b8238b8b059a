// Checkpoints: checkpoints/step-N/ holds
//   model.safetensors      weights under Hugging Face llama names (hf-names.ts)
//   optimizer.safetensors  AdamW moments, `<name>.exp_avg` and `<name>.exp_avg_sq`
//   config.json            a transformers-style model config
//   manifest.json          step, data cursor, RNG state, config and data digests,
//                          the SHA-256 of every file above, and its own digest
// A checkpoint is built in a temp directory (every file fsynced), renamed into
// place, and only then named by checkpoints/latest.json. A reader verifies the
// manifest's own digest and every file's digest before it trusts a byte, so a
// torn, truncated or edited checkpoint is refused, never loaded.
import * as v from "valibot";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { refuse, PsionicError } from "../util/errors.ts";
import { fsyncDirectory, jsonDigest, sha256Hex, writeFileDurable, writeJsonAtomic } from "./atomic-files.ts";
import { fromHfTensors, hfConfig, toHfTensors } from "./hf-names.ts";
import { parseSafetensors, serializeSafetensors, type NamedTensor } from "./safetensors.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";
import type { ModelShape, ParameterInfo } from "./train-model.ts";

const FORMAT = 1;
const digest = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const count = v.pipe(v.number(), v.integer(), v.minValue(0));

const CheckpointManifestSchema = v.strictObject({
  format: v.literal(FORMAT),
  /** Optimizer steps completed; training resumes with step `step` (0-based). */
  step: count,
  laneDigest: digest,
  dataDigest: digest,
  /** The next training sample (batches.ts sample order) and its epoch. */
  dataCursor: v.strictObject({ nextSample: count, epoch: count }),
  /** The data order is a pure function of this seed and the step: no hidden generator state. */
  rng: v.strictObject({ algorithm: v.literal("xoshiro128** per epoch, seeded (seed, epoch)"), seed: count }),
  /** The loss of the step that produced this checkpoint. */
  loss: v.number(),
  files: v.record(v.picklist(["model.safetensors", "optimizer.safetensors", "config.json"]), digest),
  /** SHA-256 of this manifest's canonical JSON without this field. */
  digest,
});
export type CheckpointManifest = v.InferOutput<typeof CheckpointManifestSchema>;

const LatestSchema = v.strictObject({ step: count, dir: v.pipe(v.string(), v.regex(/^step-\d+$/)), manifestSha256: digest });

export interface TrainState {
  /** Optimizer steps completed. */
  step: number;
  params: Float32Array;
  /** AdamW first and second moments, laid out as params. */
  m: Float32Array;
  v: Float32Array;
}

export interface CheckpointContext {
  table: readonly ParameterInfo[];
  shape: ModelShape;
  laneDigest: string;
  dataDigest: string;
  seed: number;
  bosId: number;
  eosId: number;
}

export const checkpointDirName = (step: number) => `step-${step}`;
const stepOfDir = (name: string) => (/^step-(\d+)$/.exec(name) ? Number(name.slice(5)) : undefined);

function momentTensors(state: TrainState, ctx: CheckpointContext): NamedTensor[] {
  const named = (buffer: Float32Array, suffix: string) =>
    toHfTensors(buffer, ctx.table, ctx.shape).map((t) => ({ ...t, name: `${t.name}.${suffix}` }));
  return [...named(state.m, "exp_avg"), ...named(state.v, "exp_avg_sq")];
}

/** Writes checkpoints/step-N atomically, then points latest.json at it; keeps the newest `keep`. */
export function writeCheckpoint(
  checkpointsDir: string, state: TrainState, cursor: CheckpointManifest["dataCursor"], loss: number, ctx: CheckpointContext, keep: number,
  /** Fault injection for crash tests: called at "checkpoint-files" (data written, no manifest) and "checkpoint-renamed" (not yet pointed to). */
  atPoint?: (point: string, step: number) => void,
): string {
  mkdirSync(checkpointsDir, { recursive: true });
  const name = checkpointDirName(state.step);
  const tmp = join(checkpointsDir, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const files: Record<string, Uint8Array> = {
    "model.safetensors": serializeSafetensors(toHfTensors(state.params, ctx.table, ctx.shape), { format: "pt", step: String(state.step) }),
    "optimizer.safetensors": serializeSafetensors(momentTensors(state, ctx), { step: String(state.step) }),
    "config.json": new TextEncoder().encode(JSON.stringify(hfConfig(ctx.shape, ctx.bosId, ctx.eosId), null, 2) + "\n"),
  };
  const digests: Record<string, string> = {};
  for (const [file, bytes] of Object.entries(files)) {
    writeFileDurable(join(tmp, file), bytes);
    digests[file] = sha256Hex(bytes);
  }
  atPoint?.("checkpoint-files", state.step);
  const body = {
    format: FORMAT, step: state.step, laneDigest: ctx.laneDigest, dataDigest: ctx.dataDigest, dataCursor: cursor,
    rng: { algorithm: "xoshiro128** per epoch, seeded (seed, epoch)" as const, seed: ctx.seed }, loss, files: digests,
  };
  const manifest = { ...body, digest: jsonDigest(body) };
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";
  writeFileDurable(join(tmp, "manifest.json"), manifestText);
  fsyncDirectory(tmp);
  const final = join(checkpointsDir, name);
  // A directory of this step exists when an earlier copy was refused and training came back to this step.
  if (existsSync(final)) rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDirectory(checkpointsDir);
  atPoint?.("checkpoint-renamed", state.step);
  writeJsonAtomic(join(checkpointsDir, "latest.json"), { step: state.step, dir: name, manifestSha256: sha256Hex(manifestText) });
  pruneCheckpoints(checkpointsDir, keep, state.step);
  return final;
}

/** Deletes all but the newest `keep` checkpoints (never `current`) and leftover temp directories. */
function pruneCheckpoints(checkpointsDir: string, keep: number, current: number): void {
  const steps = listCheckpointSteps(checkpointsDir);
  for (const step of steps.slice(keep)) if (step !== current) rmSync(join(checkpointsDir, checkpointDirName(step)), { recursive: true, force: true });
  for (const name of readdirSync(checkpointsDir)) if (/^\.step-\d+\.tmp-\d+$/.test(name)) rmSync(join(checkpointsDir, name), { recursive: true, force: true });
}

/** Steps of the step-N directories, newest first. */
export function listCheckpointSteps(checkpointsDir: string): number[] {
  if (!existsSync(checkpointsDir)) return [];
  return readdirSync(checkpointsDir)
    .map(stepOfDir)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => b - a);
}

const tampered = (what: string): never => refuse("train.bad-checkpoint", what);

/** Reads and verifies a checkpoint's manifest and every file's digest; returns the manifest and the verified bytes. */
export function verifyCheckpoint(dir: string): { manifest: CheckpointManifest; files: Map<string, Uint8Array>; manifestSha256: string } {
  const manifestPath = join(dir, "manifest.json");
  const raw = readJsonFile(manifestPath, "train.bad-checkpoint");
  const manifest = parseWithSchema(CheckpointManifestSchema, raw, manifestPath, "train.bad-checkpoint");
  const { digest: claimed, ...body } = manifest;
  const actual = jsonDigest(body);
  if (actual !== claimed) tampered(`${manifestPath}: the manifest's digest is ${actual}, it claims ${claimed}; the manifest was edited`);
  if (dir.endsWith(checkpointDirName(manifest.step)) === false) tampered(`${manifestPath}: step ${manifest.step} does not match the directory name`);
  const files = new Map<string, Uint8Array>();
  for (const name of ["model.safetensors", "optimizer.safetensors", "config.json"] as const) {
    const want = manifest.files[name];
    if (!want) tampered(`${manifestPath}: no digest for ${name}`);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(dir, name));
    } catch (error) {
      return tampered(`${join(dir, name)}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const got = sha256Hex(bytes);
    if (got !== want) tampered(`${join(dir, name)}: SHA-256 ${got} does not match the manifest's ${want}; the file was changed or damaged`);
    files.set(name, bytes);
  }
  return { manifest, files, manifestSha256: sha256Hex(readFileSync(manifestPath)) };
}

/** A verified checkpoint loaded into `state`-shaped buffers; refuses one made for another lane or data. */
export function loadCheckpoint(dir: string, ctx: CheckpointContext, total: number): { manifest: CheckpointManifest; state: TrainState; manifestSha256: string } {
  const { manifest, files, manifestSha256 } = verifyCheckpoint(dir);
  if (manifest.laneDigest !== ctx.laneDigest) tampered(`${dir}: made for lane digest ${manifest.laneDigest}, this run's lane is ${ctx.laneDigest}`);
  if (manifest.dataDigest !== ctx.dataDigest) tampered(`${dir}: made for data digest ${manifest.dataDigest}, this run's data is ${ctx.dataDigest}`);
  const state: TrainState = { step: manifest.step, params: new Float32Array(total), m: new Float32Array(total), v: new Float32Array(total) };
  fromHfTensors(parseSafetensors(files.get("model.safetensors")!, join(dir, "model.safetensors")), ctx.table, ctx.shape, state.params, join(dir, "model.safetensors"));
  const optimizer = parseSafetensors(files.get("optimizer.safetensors")!, join(dir, "optimizer.safetensors"));
  for (const [suffix, buffer] of [["exp_avg", state.m], ["exp_avg_sq", state.v]] as const) {
    const part = new Map([...optimizer.tensors].filter(([n]) => n.endsWith(`.${suffix}`)).map(([n, t]) => [n.slice(0, -suffix.length - 1), { ...t, name: n.slice(0, -suffix.length - 1) }]));
    fromHfTensors({ tensors: part, metadata: {} }, ctx.table, ctx.shape, buffer, `${join(dir, "optimizer.safetensors")} (${suffix})`);
  }
  if (optimizer.tensors.size !== 2 * ctx.table.length) tampered(`${join(dir, "optimizer.safetensors")}: ${optimizer.tensors.size} tensors, expected ${2 * ctx.table.length}`);
  return { manifest, state, manifestSha256 };
}

export interface ResumePoint {
  /** The newest checkpoint that verified, or undefined (start from step 0). */
  loaded?: ReturnType<typeof loadCheckpoint> & { dir: string };
  /** Newer checkpoints that were refused, with why. */
  refused: { dir: string; reason: string }[];
}

/**
 * The newest complete checkpoint that verifies, falling back past refused ones.
 * latest.json, when it names the same step, must also agree on the manifest's
 * digest (a wholesale replacement of a checkpoint is refused too).
 */
export function findResumePoint(checkpointsDir: string, ctx: CheckpointContext, total: number): ResumePoint {
  const refused: ResumePoint["refused"] = [];
  let latest: v.InferOutput<typeof LatestSchema> | undefined;
  const latestPath = join(checkpointsDir, "latest.json");
  if (existsSync(latestPath)) {
    try {
      latest = parseWithSchema(LatestSchema, readJsonFile(latestPath, "train.bad-checkpoint"), latestPath, "train.bad-checkpoint");
    } catch (error) {
      if (!(error instanceof PsionicError)) throw error;
      refused.push({ dir: latestPath, reason: error.message });
    }
  }
  for (const step of listCheckpointSteps(checkpointsDir)) {
    const dir = join(checkpointsDir, checkpointDirName(step));
    try {
      const loaded = loadCheckpoint(dir, ctx, total);
      if (latest && latest.step === step && latest.manifestSha256 !== loaded.manifestSha256) {
        tampered(`${join(dir, "manifest.json")}: SHA-256 ${loaded.manifestSha256} differs from the ${latest.manifestSha256} that latest.json recorded; the checkpoint was replaced`);
      }
      return { loaded: { ...loaded, dir }, refused };
    } catch (error) {
      if (!(error instanceof PsionicError)) throw error;
      refused.push({ dir, reason: error.message });
    }
  }
  return { refused };
}
