// The reference ops on hand-checkable inputs. (Their agreement with llama.cpp
// on whole models is in src/model/*-parity.test.ts.)
import { describe, expect, it } from "bun:test";
import type { AttentionParams, RopeParams } from "../backend.ts";
import { referenceAttention } from "./attention.ts";
import { roundActivations } from "./activation-rounding.ts";
import { swigluOai, topK } from "./moe.ts";
import { ropeCache, rotateHead } from "./rope.ts";

const rope = (mode: "normal" | "neox"): RopeParams => ({
  dims: 8, mode, freqBase: 10000, freqScale: 1, extFactor: 0, attnFactor: 1, betaFast: 32, betaSlow: 1, originalContext: 4096,
});

function rotated(position: number, p: RopeParams, head: number[]): Float32Array {
  const cache = new Float32Array(p.dims);
  ropeCache(position, p, null, cache);
  const x = Float32Array.from(head);
  rotateHead(x, 0, cache, p);
  return x;
}

describe("rope", () => {
  const head = [1, 2, 3, 4, 5, 6, 7, 8];
  it("is the identity at position 0 and keeps each rotated pair's length", () => {
    expect(Array.from(rotated(0, rope("normal"), head))).toEqual(head);
    const x = rotated(5, rope("neox"), head);
    // neox pairs (i, i + 4): pair 0 is (1, 5).
    expect(Math.hypot(x[0]!, x[4]!)).toBeCloseTo(Math.hypot(1, 5), 5);
    const y = rotated(5, rope("normal"), head);
    expect(Math.hypot(y[0]!, y[1]!)).toBeCloseTo(Math.hypot(1, 2), 5);
  });

  it("turns the first pair by the position in radians (theta_0 = p)", () => {
    const y = rotated(1, rope("normal"), [1, 0, 0, 0, 0, 0, 0, 0]);
    expect(y[0]).toBeCloseTo(Math.cos(1), 6);
    expect(y[1]).toBeCloseTo(Math.sin(1), 6);
  });
});

describe("attention", () => {
  const params: AttentionParams = { heads: 2, kvHeads: 1, headDimK: 2, headDimV: 2, scale: 1, window: 0 };
  const q = Float32Array.of(1, 0, 0, 1, 1, 0, 0, 1);
  const k = Float32Array.of(0, 0, 2, 0);
  const v = Float32Array.of(1, 1, 3, -1);

  it("a single key returns its value; a sink shrinks it by e^s / (e^s + e^sink)", () => {
    const one = referenceAttention({ q: q.subarray(0, 4), k, v, positions: Int32Array.of(0), sinks: null }, params);
    expect(Array.from(one)).toEqual([1, 1, 1, 1]);
    const sunk = referenceAttention({ q: q.subarray(0, 4), k, v, positions: Int32Array.of(0), sinks: Float32Array.of(0, 0) }, params);
    expect(sunk[0]).toBeCloseTo(0.5, 6);
  });

  it("is causal, shares the KV head across the group, and honours the window", () => {
    const full = referenceAttention({ q, k, v, positions: Int32Array.of(0, 1), sinks: null }, params);
    const w = Math.exp(2) / (1 + Math.exp(2)); // head 0 at position 1: scores 0 and 2
    expect(full[4]).toBeCloseTo((1 - w) * 1 + w * 3, 5);
    expect(full[6]).toBeCloseTo(2, 5); // head 1: q = (0, 1) scores 0 and 0
    const windowed = referenceAttention({ q, k, v, positions: Int32Array.of(0, 1), sinks: null }, { ...params, window: 1 });
    expect(Array.from(windowed.subarray(4))).toEqual([3, -1, 3, -1]);
  });

  it("ggml's F16 online path agrees with the float path to F16 precision", () => {
    const a = referenceAttention({ q, k, v, positions: Int32Array.of(0, 1), sinks: Float32Array.of(0.3, -1) }, params);
    const b = referenceAttention({ q, k, v, positions: Int32Array.of(0, 1), sinks: Float32Array.of(0.3, -1), f16Online: true }, params);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(2e-3);
  });
});

describe("activation rounding and MoE pieces", () => {
  it("Q8_0 rounding keeps 127 steps of amax/127 (F16 scale), half to even", () => {
    const x = new Float32Array(32);
    x[0] = 127; x[1] = 2.5; x[2] = -3.5; x[3] = 0.4;
    expect(Array.from(roundActivations(x, 32, "q8_0").subarray(0, 4))).toEqual([127, 2, -4, 0]);
  });

  it("Q8_K rounding scales by the value of largest magnitude, keeping its sign", () => {
    const x = new Float32Array(256);
    x[0] = -254; x[1] = 3; x[2] = 7;
    const y = roundActivations(x, 256, "q8_k");
    expect(y[0]).toBeCloseTo(-254, 4);
    // iscale = -127 / -254 = 0.5, d = 2: 3 -> 1.5 -> 2 (even) -> 4; 7 -> 3.5 -> 4 (even) -> 8.
    expect(y[1]).toBeCloseTo(4, 4);
    expect(y[2]).toBeCloseTo(8, 4);
  });

  it("swiglu-oai clamps the gate from above and the up value both ways", () => {
    expect(swigluOai(100, 0, 1.702, 7)).toBeCloseTo(7 / (1 + Math.exp(-1.702 * 7)), 5);
    expect(swigluOai(1, 100, 1.702, 7)).toBeCloseTo((1 / (1 + Math.exp(-1.702))) * 8, 5);
    expect(swigluOai(1, -100, 1.702, 7)).toBeCloseTo((1 / (1 + Math.exp(-1.702))) * -6, 5);
  });

  it("top-k picks the largest logits, largest first", () => {
    expect(topK(Float32Array.of(0.1, 3, -2, 2.5, 7), 2)).toEqual([4, 1]);
  });
});
