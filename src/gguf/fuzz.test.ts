// Seeded mutation fuzzing of the reader: every mutated file either parses and then rewrites
// to exactly the same bytes, or is refused with a PsionicError. Anything else (a RangeError,
// a TypeError, a hang, a huge allocation) fails the test and prints the seed and mutation.
import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { contentsOf, parseGGUF } from "./reader.ts";
import { pick, randInt, randomContents, seededRng, type Rng } from "./sample-files.ts";
import { serializeGGUF } from "./writer.ts";

const HOSTILE_U64 = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 60n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const HOSTILE_U32 = [0, 1, 3, 4, 5, 7, 8, 9, 12, 13, 31, 64, 0x7fffffff, 0xffffffff];

type Mutation = { name: string; apply: (b: Uint8Array) => Uint8Array };

/** One random mutation; positions mostly fall in the header (where the structure is), sometimes anywhere. */
function mutation(rng: Rng, bytes: Uint8Array, headerEnd: number): Mutation {
  const pos = () => (rng() < 0.85 ? randInt(rng, 0, Math.max(0, headerEnd - 1)) : randInt(rng, 0, bytes.length - 1));
  const kind = randInt(rng, 0, 6);
  const p = pos();
  switch (kind) {
    case 0: {
      const bit = 1 << randInt(rng, 0, 7);
      return { name: `flip bit ${bit} at ${p}`, apply: (b) => { const o = new Uint8Array(b); o[p]! ^= bit; return o; } };
    }
    case 1: {
      const v = randInt(rng, 0, 255);
      return { name: `set byte ${p} to ${v}`, apply: (b) => { const o = new Uint8Array(b); o[p] = v; return o; } };
    }
    case 2: {
      const n = randInt(rng, 1, 9);
      const ins = Array.from({ length: n }, () => randInt(rng, 0, 255));
      return { name: `insert ${n} bytes at ${p}`, apply: (b) => new Uint8Array([...b.subarray(0, p), ...ins, ...b.subarray(p)]) };
    }
    case 3: {
      const n = randInt(rng, 1, 9);
      return { name: `delete ${n} bytes at ${p}`, apply: (b) => new Uint8Array([...b.subarray(0, p), ...b.subarray(p + n)]) };
    }
    case 4:
      return { name: `truncate at ${p}`, apply: (b) => b.slice(0, p) };
    case 5: {
      const v = pick(rng, HOSTILE_U64);
      return { name: `splice u64 ${v} at ${p}`, apply: (b) => { const o = new Uint8Array(b); if (p + 8 <= o.length) new DataView(o.buffer).setBigUint64(p, v, true); return o; } };
    }
    default: {
      const v = pick(rng, HOSTILE_U32);
      return { name: `splice u32 ${v} at ${p}`, apply: (b) => { const o = new Uint8Array(b); if (p + 4 <= o.length) new DataView(o.buffer).setUint32(p, v, true); return o; } };
    }
  }
}

describe("GGUF reader under mutation fuzzing", () => {
  it("parses-and-round-trips or refuses with a PsionicError, for 60,000 seeded mutations of 60 valid files", () => {
    const rng = seededRng(20251126);
    const tally = { parsed: 0, refused: new Map<string, number>() };
    const start = performance.now();
    for (let f = 0; f < 60; f++) {
      const original = serializeGGUF(randomContents(rng, { maxKeys: 10, maxTensors: 4 }));
      const headerEnd = parseGGUF(original).dataOffset;
      for (let m = 0; m < 1000; m++) {
        // Stack one to three mutations so that damage combines.
        const steps = Array.from({ length: randInt(rng, 1, 3) }, () => mutation(rng, original, headerEnd));
        const mutated = steps.reduce((b, s) => s.apply(b), original);
        const label = `file ${f}, mutations: ${steps.map((s) => s.name).join("; ")}`;
        let parsed;
        try {
          parsed = parseGGUF(mutated, "fuzz");
        } catch (error) {
          if (!(error instanceof PsionicError)) throw new Error(`${label}: threw ${String(error)}`);
          tally.refused.set(error.code, (tally.refused.get(error.code) ?? 0) + 1);
          continue;
        }
        tally.parsed++;
        let rewritten: Uint8Array;
        try {
          rewritten = serializeGGUF(contentsOf(parsed));
        } catch (error) {
          throw new Error(`${label}: parsed but the rewrite threw ${String(error)}`);
        }
        if (Buffer.compare(rewritten, mutated) !== 0) throw new Error(`${label}: parsed but did not rewrite to the same bytes`);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    console.log(`fuzz: ${tally.parsed} parsed and round-tripped, refusals by code: ${JSON.stringify(Object.fromEntries(tally.refused))}, ${seconds.toFixed(1)} s`);
    // The mix must exercise both sides and many distinct refusals, or the fuzzer is not reaching the checks.
    expect(tally.parsed).toBeGreaterThan(1000);
    expect(tally.refused.size).toBeGreaterThanOrEqual(12);
  }, 60_000);

  it("survives every hostile 64-bit count spliced at every header offset of 3 files", () => {
    const rng = seededRng(7);
    let cases = 0;
    for (let f = 0; f < 3; f++) {
      const original = serializeGGUF(randomContents(rng, { maxKeys: 8, maxTensors: 3 }));
      const headerEnd = parseGGUF(original).dataOffset;
      for (let p = 0; p + 8 <= headerEnd; p++) {
        for (const v of HOSTILE_U64) {
          const mutated = new Uint8Array(original);
          new DataView(mutated.buffer).setBigUint64(p, v, true);
          cases++;
          try {
            const parsed = parseGGUF(mutated);
            expect(Buffer.compare(serializeGGUF(contentsOf(parsed)), mutated)).toBe(0);
          } catch (error) {
            if (!(error instanceof PsionicError)) throw new Error(`file ${f}, u64 ${v} at ${p}: threw ${String(error)}`);
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(5000);
  }, 60_000);
});
