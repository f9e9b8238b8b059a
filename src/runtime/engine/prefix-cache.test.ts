// Which cache entry a new prompt gets, and what it keeps.
import { describe, expect, it } from "bun:test";
import { KVCache } from "../../model/kv-cache.ts";
import { ReferenceBackend } from "../reference/reference-backend.ts";
import { PrefixCache } from "./prefix-cache.ts";

const backend = new ReferenceBackend();
const newCache = () => new KVCache(backend, { layers: 1, kWidth: 4, vWidth: 4, contextLimit: 64 });
const ids = (...xs: number[]) => Int32Array.from(xs);

/** Acquires for `prompt`, pretends the whole prompt was evaluated (with its last logits), and releases. */
function run(pc: PrefixCache, prompt: Int32Array) {
  const got = pc.acquire(prompt)!;
  const fresh = prompt.subarray(got.reused);
  if (fresh.length > 0) got.entry.cache.reserve(fresh.length);
  got.entry.tokens.push(...fresh);
  got.entry.logits = { position: prompt.length - 1, values: new Float32Array(2) };
  pc.release(got.entry);
  return got;
}

describe("PrefixCache", () => {
  it("an identical prompt is a hit that evaluates nothing; an extension is partial and keeps the whole old prompt", () => {
    const pc = new PrefixCache(newCache, 4);
    expect(run(pc, ids(1, 2, 3, 4)).outcome).toBe("miss");
    const hit = run(pc, ids(1, 2, 3, 4));
    expect(hit).toMatchObject({ outcome: "hit", reused: 4 });
    expect(hit.logits).toBeDefined();
    expect(run(pc, ids(1, 2, 3, 4, 5, 6))).toMatchObject({ outcome: "partial", reused: 4 });
  });

  it("an unrelated prompt does not destroy a cached one while the budget has room", () => {
    const pc = new PrefixCache(newCache, 4);
    run(pc, ids(1, 2, 3, 4, 5, 6, 7, 8));
    // Shares only the first token (a BOS): takes a fresh entry.
    expect(run(pc, ids(1, 9, 9, 9, 9, 9)).reused).toBeLessThanOrEqual(1);
    expect(pc.size).toBe(2);
    expect(run(pc, ids(1, 2, 3, 4, 5, 6, 7, 8))).toMatchObject({ outcome: "hit", reused: 8 });
  });

  it("past the budget, evicts the least recently used idle entry", () => {
    const pc = new PrefixCache(newCache, 2);
    run(pc, ids(10, 11, 12));
    run(pc, ids(20, 21, 22));
    run(pc, ids(10, 11, 12)); // 10.. is now the most recent
    run(pc, ids(30, 31, 32)); // evicts 20..
    expect(pc.size).toBe(2);
    expect(run(pc, ids(10, 11, 12)).outcome).toBe("hit");
    expect(run(pc, ids(20, 21, 22)).outcome).toBe("miss");
  });

  it("never hands out a busy entry, and says so when every entry is busy", () => {
    const pc = new PrefixCache(newCache, 1);
    const a = pc.acquire(ids(1, 2))!;
    expect(pc.acquire(ids(1, 2))).toBeUndefined();
    pc.release(a.entry);
    expect(pc.acquire(ids(1, 2))).toBeDefined();
  });
});
