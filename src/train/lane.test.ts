import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { refusalOf } from "../util/refusal-of.ts";
import { LANES_DIR, laneDigest, loadLane, modelShapeOf, parseLane, totalSteps } from "./lane.ts";
import { parameterCount, parameterTable } from "./parameters.ts";

const tinyJson = () => JSON.parse(readFileSync(join(LANES_DIR, "brown-tiny.json"), "utf8"));

describe("lanes", () => {
  it("ships brown-tiny and brown-default, both valid", () => {
    expect(loadLane("brown-tiny").name).toBe("brown-tiny");
    expect(loadLane("brown-default").name).toBe("brown-default");
  });

  it("sizes brown-default at 10-20M parameters", () => {
    const n = parameterCount(parameterTable(modelShapeOf(loadLane("brown-default"))));
    expect(n).toBeGreaterThan(10e6);
    expect(n).toBeLessThan(20e6);
  });

  it("refuses a wrongly typed field, naming the file and the field", () => {
    const lane = tinyJson();
    lane.model.heads = "four";
    const e = refusalOf(() => parseLane(lane, "lanes/x.json"));
    expect(e.code).toBe("train.bad-lane");
    expect(e.message).toContain("lanes/x.json: field model.heads");
  });

  it("refuses a missing field and an unknown one", () => {
    const missing = tinyJson();
    delete missing.optimizer.lr;
    expect(refusalOf(() => parseLane(missing, "f")).message).toBe("f: field optimizer.lr: required but missing");
    const extra = tinyJson();
    extra.batch.microBatches = 2;
    expect(refusalOf(() => parseLane(extra, "f")).message).toContain("field batch.microBatches");
  });

  it("refuses cross-field contradictions", () => {
    const heads = tinyJson();
    heads.model.heads = 3;
    expect(refusalOf(() => parseLane(heads, "f")).message).toContain("field model.heads: width 64 is not a multiple of 3 heads");
    const vocab = tinyJson();
    vocab.tokenizer.vocabSize = 1000;
    expect(refusalOf(() => parseLane(vocab, "f")).message).toContain("field tokenizer.vocabSize");
    const seq = tinyJson();
    seq.batch.seqLen = 128;
    expect(refusalOf(() => parseLane(seq, "f")).message).toContain("field batch.seqLen: 128 exceeds the model context 64");
    const budget = tinyJson();
    budget.budget = { steps: 10, tokens: 100 };
    expect(refusalOf(() => parseLane(budget, "f")).message).toContain("field budget: give exactly one");
  });

  it("turns a token budget into whole steps", () => {
    const lane = tinyJson();
    lane.budget = { tokens: 8 * 64 * 10 + 1 };
    expect(totalSteps(parseLane(lane, "f"))).toBe(11);
  });

  it("refuses an unknown lane name", () => {
    expect(refusalOf(() => loadLane("no-such-lane")).code).toBe("train.no-lane");
  });

  it("gives equal lanes one digest and different lanes different ones", () => {
    const a = parseLane(tinyJson(), "a"), b = parseLane(tinyJson(), "b");
    expect(laneDigest(a)).toBe(laneDigest(b));
    const c = tinyJson();
    c.seed = 1;
    expect(laneDigest(parseLane(c, "c"))).not.toBe(laneDigest(a));
  });
});
