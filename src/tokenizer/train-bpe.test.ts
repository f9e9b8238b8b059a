import { describe, expect, it } from "bun:test";
import { brownFileSentences, brownFiles, brownText } from "./corpus.ts";
import { preTokenizerSpec } from "./pretokenize.ts";
import { countByteLevelWords, trainByteLevelBpe, trainSpmPieces } from "./train-bpe.ts";
import { BYTE_TO_CHAR } from "./unicode.ts";

/** The plain reference: recount every pair after every merge; same tie-break (count, then smaller ids). */
function referenceMerges(words: Map<string, number>, numMerges: number): [string, string][] {
  const symbols = [...BYTE_TO_CHAR];
  const ids = new Map(symbols.map((s, i) => [s, i]));
  const list = [...words].map(([w, count]) => ({ seq: [...w].map((c) => ids.get(c)!), count }));
  const merges: [string, string][] = [];
  while (merges.length < numMerges) {
    const counts = new Map<string, number>();
    for (const { seq, count } of list) for (let i = 0; i + 1 < seq.length; i++) {
      const k = `${seq[i]},${seq[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + count);
    }
    let best: [number, number] | undefined, bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(",").map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) (best = [a, b]), (bestCount = c);
    }
    if (!best) break;
    const text = symbols[best[0]]! + symbols[best[1]]!;
    let id = ids.get(text);
    if (id === undefined) ids.set(text, (id = symbols.push(text) - 1));
    merges.push([symbols[best[0]]!, symbols[best[1]]!]);
    for (const w of list) {
      const next: number[] = [];
      for (let i = 0; i < w.seq.length; i++) {
        if (i + 1 < w.seq.length && w.seq[i] === best[0] && w.seq[i + 1] === best[1]) next.push(id), i++;
        else next.push(w.seq[i]!);
      }
      w.seq = next;
    }
  }
  return merges;
}

describe("BPE training", () => {
  const small = brownFiles().slice(0, 6).map((f) => brownFileSentences(f).join("\n")).join("\n\n");
  const gpt2 = preTokenizerSpec("gpt-2");

  it("learns the same merges as the recount-everything reference", () => {
    const fast = trainByteLevelBpe(small, gpt2, 300).merges;
    expect(fast.length).toBe(300);
    expect(fast).toEqual(referenceMerges(countByteLevelWords(small, gpt2), 300));
  }, 30_000);

  it("is deterministic and prefix-stable (the first k of n merges are the k-merge run)", () => {
    const a = trainByteLevelBpe(small, gpt2, 500).merges;
    const b = trainByteLevelBpe(small, gpt2, 200).merges;
    expect(trainByteLevelBpe(small, gpt2, 500).merges).toEqual(a);
    expect(a.slice(0, 200)).toEqual(b);
  }, 30_000);

  it("learns 4000 merges on the whole Brown corpus in a few seconds", () => {
    const text = brownText();
    const t0 = performance.now();
    const r = trainByteLevelBpe(text, preTokenizerSpec("llama-bpe"), 4000);
    const seconds = (performance.now() - t0) / 1000;
    expect(r.merges.length).toBe(4000);
    expect(r.merges[0]).toEqual(["Ġ", "t"]);
    expect(seconds).toBeLessThan(10);
  }, 30_000);

  it("trains SentencePiece pieces with ▁ word starts", () => {
    const r = trainSpmPieces(small, 200);
    expect(r.symbols.slice(r.baseCount)).toContain("▁the");
    expect(r.merges.every(([a, b]) => a.length > 0 && b.length > 0 && !(a + b).includes(" "))).toBe(true);
  });
});
