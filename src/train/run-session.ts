// Opening a run root: a new run writes its manifests and prepares its data; an
// existing one is re-read and verified (the lane against the digest recorded
// at creation, the data against its manifest) before anything trusts it.
import { existsSync } from "node:fs";
import { refuse } from "../util/errors.ts";
import { writeJsonAtomic } from "./atomic-files.ts";
import type { CheckpointContext } from "./checkpoint.ts";
import { loadData, prepareData, type LoadedData } from "./dataset.ts";
import { laneDigest, modelShapeOf, parseLane, tokensPerStep, totalSteps, type Lane } from "./lane.ts";
import { parameterCount, parameterTable } from "./parameters.ts";
import { ConfigManifestSchema, RunRoot, type ConfigManifest } from "./run-root.ts";
import { parseWithSchema, readJsonFile } from "./schema-check.ts";
import type { ModelShape, ParameterInfo } from "./train-model.ts";

export interface RunSession {
  root: RunRoot;
  lane: Lane;
  config: ConfigManifest;
  data: LoadedData;
  shape: ModelShape;
  table: ParameterInfo[];
  parameterCount: number;
  checkpointContext: CheckpointContext;
}

function session(root: RunRoot, lane: Lane, config: ConfigManifest, data: LoadedData): RunSession {
  const shape = modelShapeOf(lane);
  const table = parameterTable(shape);
  return {
    root, lane, config, data, shape, table, parameterCount: parameterCount(table),
    checkpointContext: {
      table, shape, laneDigest: config.laneDigest, dataDigest: config.dataDigest, seed: lane.seed,
      bosId: data.manifest.bosId, eosId: data.manifest.eosId,
    },
  };
}

function configOf(lane: Lane, data: LoadedData): ConfigManifest {
  return {
    format: 1, lane: lane.name, laneDigest: laneDigest(lane), dataDigest: data.digest,
    parameterCount: parameterCount(parameterTable(modelShapeOf(lane))), totalSteps: totalSteps(lane), tokensPerStep: tokensPerStep(lane),
  };
}

/** Starts a run root for `lane` in `dir` (which must not hold a run already): manifests, then data. */
export function createRun(lane: Lane, dir: string, onPhase?: (what: string) => void): RunSession {
  const root = new RunRoot(dir);
  if (existsSync(root.laneManifest)) refuse("train.run-exists", `${dir} already holds a run (${root.laneManifest}); use \`psionic train resume --run-root ${dir}\` or another --run-root`);
  root.createLayout();
  writeJsonAtomic(root.laneManifest, lane);
  onPhase?.("training the tokenizer and tokenizing the corpus");
  prepareData(lane, root.dataDir, root.dataManifest);
  const data = loadData(root.dataDir, root.dataManifest);
  const config = configOf(lane, data);
  // Written last: a run root without config.json never finished preparing, and is prepared again on resume.
  writeJsonAtomic(root.configManifest, config);
  root.log(`created run: lane ${lane.name} (digest ${config.laneDigest}), data ${data.digest}, ${config.parameterCount} parameters`);
  return session(root, lane, config, data);
}

/** Re-opens and verifies an existing run root. */
export function openRun(dir: string): RunSession {
  const root = new RunRoot(dir);
  if (!existsSync(root.laneManifest)) refuse("train.no-run", `${dir} holds no run (no ${root.laneManifest}); start one with \`psionic train --lane NAME --run-root ${dir}\``);
  const lane = parseLane(readJsonFile(root.laneManifest, "train.bad-run"), root.laneManifest);
  if (!existsSync(root.configManifest)) {
    // Killed while preparing data: preparation is deterministic, so do it again.
    prepareData(lane, root.dataDir, root.dataManifest);
    const data = loadData(root.dataDir, root.dataManifest);
    const config = configOf(lane, data);
    writeJsonAtomic(root.configManifest, config);
    return session(root, lane, config, data);
  }
  const config = parseWithSchema(ConfigManifestSchema, readJsonFile(root.configManifest, "train.bad-run"), root.configManifest, "train.bad-run");
  const digest = laneDigest(lane);
  if (digest !== config.laneDigest) refuse("train.bad-run", `${root.laneManifest}: lane digest ${digest} differs from ${config.laneDigest} recorded in ${root.configManifest}; the lane was edited after the run started`);
  const data = loadData(root.dataDir, root.dataManifest);
  if (data.digest !== config.dataDigest) refuse("train.bad-run", `${root.dataManifest}: data digest ${data.digest} differs from ${config.dataDigest} recorded in ${root.configManifest}`);
  return session(root, lane, config, data);
}
