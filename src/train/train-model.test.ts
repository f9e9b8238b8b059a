import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { seededRandom } from "../util/seeded-random.ts";
import { CpuTrainModel } from "./cpu-train-model.ts";
import { ReferenceTrainModel } from "./reference-train-model.ts";
import type { ModelShape, TrainModel } from "./train-model.ts";

const tiny = (tiedEmbeddings: boolean): ModelShape => ({
  layers: 2, width: 16, heads: 4, kvHeads: 2, ffnWidth: 32, vocab: 64, context: 8,
  tiedEmbeddings, ropeBase: 10000, normEps: 1e-5,
});
const BATCH = 2, SEQ = 8;

function tokensFor(shape: ModelShape, seed: number, batch = BATCH, seqLen = SEQ): Int32Array {
  const random = seededRandom(seed);
  return Int32Array.from({ length: batch * (seqLen + 1) }, () => Math.floor(random() * shape.vocab));
}

/** Parameters large enough that every op is far from linear (the seeded init's 0.02 would hide mistakes). */
function randomize(model: TrainModel, seed: number): void {
  const random = seededRandom(seed);
  for (const p of model.parameters) {
    for (let i = p.offset; i < p.offset + p.size; i++) model.params[i] = p.dims.length === 1 ? 1 + 0.4 * (random() - 0.5) : 0.8 * (random() - 0.5);
  }
}

/** Indices spread over every tensor: a few from each, at seeded places. */
function sampleIndices(model: TrainModel, perTensor: number, seed: number): number[] {
  const random = seededRandom(seed);
  return model.parameters.flatMap((p) => Array.from({ length: perTensor }, () => p.offset + Math.floor(random() * p.size)));
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe.each([false, true])("whole-model gradients (tied embeddings: %p)", (tied) => {
  const shape = tiny(tied);
  const tokens = tokensFor(shape, 7);

  /** d(loss)/d(params[i]) by float64 central differences (step 1e-5) of the reference forward; params is restored. */
  const centralDifference = (reference: ReferenceTrainModel, params: Float64Array, i: number): number => {
    const h = 1e-5, saved = params[i]!;
    params[i] = saved + h;
    const up = reference.lossAt(params, tokens, BATCH, SEQ);
    params[i] = saved - h;
    const down = reference.lossAt(params, tokens, BATCH, SEQ);
    params[i] = saved;
    return (up - down) / (2 * h);
  };

  it("the float64 reference gradient matches central finite differences within 1e-6 relative to the largest gradient", () => {
    const model = new ReferenceTrainModel(shape);
    randomize(model, 1);
    const params = Float64Array.from(model.params);
    const grad = model.gradientAt(params, tokens, BATCH, SEQ);
    const scale = maxAbs(grad);
    for (const i of sampleIndices(model, 6, 2)) {
      expect(Math.abs(centralDifference(model, params, i) - grad[i]!)).toBeLessThan(1e-6 * scale);
    }
  });

  it.each([0, 1, 2])("the C model (threads %p) matches the float64 reference's loss, and each tensor's gradient within 1e-5 of that tensor's largest", (threads) => {
    const reference = new ReferenceTrainModel(shape);
    randomize(reference, 3);
    const model = new CpuTrainModel(shape, { threads });
    model.params.set(reference.params);
    const expected = reference.gradientAt(Float64Array.from(reference.params), tokens, BATCH, SEQ);
    const loss = model.forwardBackward(tokens, BATCH, SEQ);
    expect(Math.abs(loss - reference.lossAt(Float64Array.from(reference.params), tokens, BATCH, SEQ))).toBeLessThan(1e-5);
    for (const p of model.parameters) {
      const want = expected.subarray(p.offset, p.offset + p.size), got = model.grads.subarray(p.offset, p.offset + p.size);
      const scale = maxAbs(want);
      expect(scale).toBeGreaterThan(1e-3); // every tensor takes part
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect({ tensor: p.name, error: worst / scale < 1e-5 }).toEqual({ tensor: p.name, error: true });
    }
  });

  it("the C model's gradient matches float64 finite differences of the reference forward", () => {
    const reference = new ReferenceTrainModel(shape);
    randomize(reference, 5);
    const model = new CpuTrainModel(shape, { threads: 2 });
    model.params.set(reference.params);
    model.forwardBackward(tokens, BATCH, SEQ);
    const params = Float64Array.from(reference.params);
    const scale = maxAbs(model.grads);
    for (const i of sampleIndices(model, 3, 6)) {
      expect(Math.abs(centralDifference(reference, params, i) - model.grads[i]!)).toBeLessThan(2e-4 * scale);
    }
  });
});

describe("CpuTrainModel", () => {
  const shape = tiny(false);

  it("initializes bit-identically from the same seed and differently from another", () => {
    const a = new CpuTrainModel(shape), b = new CpuTrainModel(shape), c = new CpuTrainModel(shape);
    a.initialize(11); b.initialize(11); c.initialize(12);
    expect(Buffer.from(a.params.buffer).equals(Buffer.from(b.params.buffer))).toBe(true);
    expect(Buffer.from(a.params.buffer).equals(Buffer.from(c.params.buffer))).toBe(false);
  });

  it("gives bit-identical loss and gradients on repeated runs and across 1, 2 and 3 threads", () => {
    const tokens = tokensFor(shape, 9);
    const runs = [1, 2, 2, 3].map((threads) => {
      const model = new CpuTrainModel(shape, { threads });
      model.initialize(4);
      const loss = model.forwardBackward(tokens, BATCH, SEQ);
      return { loss, grads: Buffer.from(model.grads.buffer) };
    });
    for (const run of runs.slice(1)) {
      expect(run.loss).toBe(runs[0]!.loss);
      expect(run.grads.equals(runs[0]!.grads)).toBe(true);
    }
  });

  it("accumulates: two half-scaled micro-batches add up to one full-scale one", () => {
    const tokens = tokensFor(shape, 13);
    const once = new CpuTrainModel(shape), twice = new CpuTrainModel(shape);
    once.initialize(2); twice.initialize(2);
    once.forwardBackward(tokens, BATCH, SEQ, 1);
    twice.forwardBackward(tokens, BATCH, SEQ, 0.5);
    twice.forwardBackward(tokens, BATCH, SEQ, 0.5);
    const scale = maxAbs(once.grads);
    for (let i = 0; i < once.grads.length; i++) expect(Math.abs(once.grads[i]! - twice.grads[i]!)).toBeLessThan(1e-6 * scale);
    twice.zeroGrads();
    expect(maxAbs(twice.grads)).toBe(0);
  });

  it("loss() equals forwardBackward's loss, leaves gradients alone, and handles a shorter sequence after a longer one", () => {
    const model = new CpuTrainModel(shape);
    model.initialize(3);
    const tokens = tokensFor(shape, 17);
    const evalLoss = model.loss(tokens, BATCH, SEQ);
    expect(maxAbs(model.grads)).toBe(0);
    expect(model.forwardBackward(tokens, BATCH, SEQ)).toBe(evalLoss);
    const short = tokensFor(shape, 18, 3, 5);
    const reference = new ReferenceTrainModel(shape);
    reference.params.set(model.params);
    expect(Math.abs(model.loss(short, 3, 5) - reference.loss(short, 3, 5))).toBeLessThan(1e-5);
    // An untrained model predicts roughly uniformly: the loss is near ln(vocab).
    expect(Math.abs(evalLoss - Math.log(shape.vocab))).toBeLessThan(0.1);
  });

  it("refuses tokens outside the vocabulary, sequences past the context, and short token buffers", () => {
    const model = new CpuTrainModel(shape);
    const bad = tokensFor(shape, 1);
    bad[5] = shape.vocab;
    const code = (f: () => unknown) => { try { f(); } catch (e) { return e instanceof PsionicError ? e.code : String(e); } return "accepted"; };
    expect(code(() => model.forwardBackward(bad, BATCH, SEQ))).toBe("train.bad-token");
    expect(code(() => model.loss(tokensFor(shape, 1, 1, 9), 1, 9))).toBe("train.bad-batch");
    expect(code(() => model.loss(tokensFor(shape, 1).subarray(1), BATCH, SEQ))).toBe("train.bad-batch");
  });
});
