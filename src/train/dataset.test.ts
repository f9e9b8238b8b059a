import { afterAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brownFiles } from "../tokenizer/corpus.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { refusalOf } from "../util/refusal-of.ts";
import { brownDocument, loadData, splitBrownFiles } from "./dataset.ts";
import { trainLaneVocab } from "./lane-tokenizer.ts";
import { preparedRunRoot, removeTestRuns } from "./test-run-fixture.ts";

afterAll(removeTestRuns);

describe("training data", () => {
  it("holds out whole documents: every 20th corpus file, from every category", () => {
    const files = brownFiles();
    const { train, heldOut } = splitBrownFiles(files, 20);
    expect(files.length).toBe(500);
    expect(heldOut.length).toBe(25);
    expect(heldOut.slice(0, 3)).toEqual([files[19]!, files[39]!, files[59]!]);
    expect(new Set([...train, ...heldOut]).size).toBe(500);
    expect(train.some((f) => heldOut.includes(f))).toBe(false);
    expect(new Set(heldOut.map((f) => f[1])).size).toBeGreaterThan(10);
  });

  it("keeps a document's sentences, one per line", () => {
    const doc = brownDocument("ca01");
    expect(doc.startsWith("The Fulton County Grand Jury said Friday")).toBe(true);
    expect(doc.split("\n").length).toBeGreaterThan(50);
    expect(doc).not.toMatch(/\/[a-z]+\b/); // no word/tag left
  });

  it("learns a vocabulary of exactly the lane's size, the same every time, ending in BOS and EOS", () => {
    const text = ["ca01", "ca02", "ca03"].map(brownDocument).join("\n\n");
    const a = trainLaneVocab(text, 400), b = trainLaneVocab(text, 400);
    expect(a.tokens.length).toBe(400);
    expect(a).toEqual(b);
    expect(a.tokens[a.bosId!]).toBe("<|begin_of_text|>");
    expect(a.tokens[a.eosId!]).toBe("<|end_of_text|>");
    const tok = new Tokenizer(a);
    const ids = tok.encode("The jury said", { addSpecial: true });
    expect(ids[0]).toBe(a.bosId);
    expect(tok.createDecoder().push(ids[1]!)).toBe("The");
  }, 30_000);

  it("stores each document as BOS, text, EOS in shards whose digests the manifest lists", () => {
    const dir = preparedRunRoot();
    const data = loadData(join(dir, "data"), join(dir, "manifests", "data.json"));
    expect(data.train[0]).toBe(data.manifest.bosId);
    expect(data.heldOut[data.heldOut.length - 1]).toBe(data.manifest.eosId);
    const eos = data.train.reduce((n, id) => n + (id === data.manifest.eosId ? 1 : 0), 0);
    expect(eos).toBe(data.manifest.trainFiles.length);
    expect(data.manifest.trainTokens).toBeGreaterThan(1_000_000);
  }, 60_000);

  it("refuses a shard whose bytes no longer match the manifest", () => {
    const dir = preparedRunRoot();
    const shard = join(dir, "data", "heldout-000.bin");
    const bytes = readFileSync(shard);
    bytes[8]! ^= 1;
    writeFileSync(shard, bytes);
    const e = refusalOf(() => loadData(join(dir, "data"), join(dir, "manifests", "data.json")));
    expect(e.code).toBe("train.bad-data");
    expect(e.message).toContain("heldout-000.bin: SHA-256");
  }, 60_000);
});
