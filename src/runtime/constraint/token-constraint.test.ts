import { describe, expect, it } from "bun:test";
import { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { buildSynthVocab, HARMONY_VOCAB_SIZE } from "../../tokenizer/synth-vocab.ts";
import { BYTE_TO_CHAR } from "../../tokenizer/unicode.ts";
import { TokenType } from "../../tokenizer/vocab.ts";
import { refusalText } from "../../util/refusal-of.ts";
import { seededRandom } from "../../util/seeded-random.ts";
import { Sampler } from "../sampler.ts";
import { compileJsonSchema, ANY_OBJECT, type SchemaNode } from "./json-schema.ts";
import { schemaErrors } from "./schema-validate.ts";
import { createTokenConstraint, sampleConstrained, type ConstraintSpec, type TokenConstraint } from "./token-constraint.ts";

const bpe = new Tokenizer(buildSynthVocab({ kind: "bpe", pre: "gpt-2", vocabSize: 3000 }));
const spm = new Tokenizer(buildSynthVocab({ kind: "spm", vocabSize: 3000 }));

const SCHEMAS: Record<string, unknown> = {
  nested: {
    type: "object",
    properties: {
      user: { type: "object", properties: { name: { type: "string", maxLength: 12 }, id: { type: "integer" } }, required: ["name", "id"] },
      score: { type: "number" },
      ok: { type: "boolean" },
    },
    required: ["user", "ok"],
  },
  arrays: { type: "object", properties: { xs: { type: "array", items: { type: "integer" }, minItems: 2, maxItems: 4 }, tags: { type: "array", items: { type: "string", minLength: 1, maxLength: 3 }, maxItems: 2 } }, required: ["xs", "tags"] },
  enums: { type: "object", properties: { color: { enum: ["red", "green", "blue"] }, size: { enum: [1, 10, 100] }, mode: { const: "fast" } }, required: ["color", "size", "mode"] },
  anyOf: {
    type: "array",
    minItems: 1,
    maxItems: 3,
    items: { anyOf: [{ type: "null" }, { type: "object", properties: { k: { type: "integer" } }, required: ["k"] }, { type: "string", minLength: 2, maxLength: 4 }] },
  },
  defs: {
    $defs: { point: { type: "object", properties: { x: { type: "number" }, y: { type: "number" } }, required: ["x", "y"] } },
    type: "object",
    properties: { from: { $ref: "#/$defs/point" }, to: { $ref: "#/$defs/point" }, label: { type: ["string", "null"] } },
    required: ["from", "to"],
  },
  open: { type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: { type: "boolean" } },
};

function byteToken(t: Tokenizer, b: number): number {
  for (let id = 0; id < t.size; id++) {
    const piece = t.tokenPieceBytes(id, false);
    if (piece.length === 1 && piece[0] === b && !t.isEog(id)) return id;
  }
  throw new Error(`no single-byte token for ${b}`);
}

interface Run {
  text: string;
  tokens: number[];
  mismatches: string[];
}

/** Generates with random logits standing in for a model, checking mask and allows agree on every sampled token. */
function generate(tokenizer: Tokenizer, spec: ConstraintSpec, budget: number, seed: number, temperature: number): Run {
  const c = createTokenConstraint(tokenizer, spec, tokenizer.eogIds, { maxTokens: budget });
  const sampler = new Sampler({ vocabSize: tokenizer.size, temperature, seed, topK: 0, topP: 1, minP: 0 });
  const rnd = seededRandom(seed * 7919 + 1);
  const logits = new Float32Array(tokenizer.size);
  const tokens: number[] = [];
  const mismatches: string[] = [];
  for (let remaining = budget; remaining > 0; remaining--) {
    for (let i = 0; i < logits.length; i++) logits[i] = rnd() * 6;
    const { token } = sampleConstrained(sampler, logits, c, remaining);
    const masked = new Float32Array(logits);
    c.mask(masked, remaining);
    if (masked[token] === -Infinity || !c.allows(token, remaining)) mismatches.push(`step ${tokens.length}: token ${token}`);
    // A few random tokens too: the mask allows exactly what `allows` allows.
    for (let k = 0; k < 8; k++) {
      const t = Math.floor(rnd() * tokenizer.size);
      if ((masked[t] !== -Infinity) !== c.allows(t, remaining)) mismatches.push(`step ${tokens.length}: random token ${t}`);
    }
    if (tokenizer.isEog(token)) break;
    c.accept(token);
    tokens.push(token);
  }
  const decoder = tokenizer.createDecoder();
  const text = tokens.map((t) => decoder.push(t)).join("") + decoder.flush();
  return { text, tokens, mismatches };
}

function expectValid(run: Run, node: SchemaNode, what: string): void {
  let value: unknown;
  try {
    value = JSON.parse(run.text);
  } catch {
    throw new Error(`${what}: output does not parse: ${JSON.stringify(run.text)}`);
  }
  expect({ what, errors: schemaErrors(value, node), mismatches: run.mismatches }).toEqual({ what, errors: [], mismatches: [] });
}

describe("constrained decoding with random logits", () => {
  it("always produces JSON that parses and validates, for 50 seeds, every schema, tight to generous budgets", () => {
    const names = Object.keys(SCHEMAS);
    for (let seed = 0; seed < 50; seed++) {
      for (const name of names) {
        const spec: ConstraintSpec = { kind: "json-schema", schema: SCHEMAS[name] };
        const node = compileJsonSchema(SCHEMAS[name]);
        const least = createTokenConstraint(bpe, spec, bpe.eogIds).minTokensToComplete();
        const budget = least + [0, 3, 25, 100][seed % 4]!;
        const temperature = seed % 2 === 0 ? 0 : 1;
        const run = generate(bpe, spec, budget, seed, temperature);
        expect(run.tokens.length).toBeLessThanOrEqual(budget);
        expectValid(run, node, `${name} seed ${seed} budget ${budget} temperature ${temperature}: ${run.text}`);
      }
    }
    // About 5 s on a 2-core machine, over bun's 5 s default when the machine is busy.
  }, 60_000);

  it("produces an object in json_object mode, also with a SentencePiece vocabulary", () => {
    for (let seed = 0; seed < 20; seed++) {
      const tokenizer = seed % 2 === 0 ? bpe : spm;
      const run = generate(tokenizer, { kind: "json-object" }, [2, 30, 100][seed % 3]!, seed, seed % 4 < 2 ? 0 : 1);
      expectValid(run, ANY_OBJECT, `json_object seed ${seed}: ${run.text}`);
    }
  });
});

describe("token constraint", () => {
  it("follows a character split across tokens inside a string", () => {
    for (const t of [bpe, spm]) {
      const c = createTokenConstraint(t, { kind: "json-schema", schema: { type: "string", maxLength: 1 } }, t.eogIds);
      c.accept(byteToken(t, 0x22));
      c.accept(byteToken(t, 0xe2)); // "€" is e2 82 ac
      expect(c.allows(byteToken(t, 0x22), 10)).toBe(false);
      expect(c.allows(byteToken(t, 0x41), 10)).toBe(false);
      c.accept(byteToken(t, 0x82));
      expect(c.allows(byteToken(t, 0xac), 2)).toBe(true);
      expect(c.allows(byteToken(t, 0xac), 1)).toBe(false); // the closing quote would not fit
      c.accept(byteToken(t, 0xac));
      expect(c.isComplete()).toBe(false);
      expect(c.allows(byteToken(t, 0x41), 10)).toBe(false); // maxLength 1
      c.accept(byteToken(t, 0x22));
      expect(c.isComplete()).toBe(true);
      const eog = [...t.eogIds][0]!;
      expect(c.allows(eog, 1)).toBe(true);
      expect(c.allows(byteToken(t, 0x20), 5)).toBe(false);
    }
  });

  it("allows end-of-generation only once the document is complete, and never control tokens", () => {
    const c = createTokenConstraint(bpe, { kind: "json-object" }, bpe.eogIds);
    const eog = [...bpe.eogIds][0]!;
    expect(c.allows(eog, 10)).toBe(false);
    expect(refusalText(() => c.accept(eog))).toStartWith("constraint.rejected-token:");
    const logits = new Float32Array(bpe.size);
    c.mask(logits, 10);
    for (const id of bpe.eogIds) expect(logits[id]).toBe(-Infinity);
    for (let id = 0; id < bpe.size; id++) if (bpe.tokenAttributes(id) & 8 /* CONTROL */) expect(logits[id]).toBe(-Infinity);
    expect(refusalText(() => c.accept(byteToken(bpe, 0x5b)))).toStartWith("constraint.rejected-token:");
  });

  it("refuses up front a budget too small for the shortest document", () => {
    const schema = { type: "object", properties: { answer: { type: "integer" } }, required: ["answer"] };
    // {"answer":0} is 12 bytes.
    expect(createTokenConstraint(bpe, { kind: "json-schema", schema }, bpe.eogIds).minTokensToComplete()).toBe(12);
    expect(refusalText(() => createTokenConstraint(bpe, { kind: "json-schema", schema }, bpe.eogIds, { maxTokens: 11 }))).toStartWith("constraint.unsatisfiable:");
    const run = generate(bpe, { kind: "json-schema", schema }, 12, 3, 1);
    expect(JSON.parse(run.text)).toHaveProperty("answer");
  });

  it("refuses a vocabulary without the single-byte tokens a closing may need", () => {
    const tokens = BYTE_TO_CHAR.filter((ch) => ch !== "}");
    tokens.push("<|endoftext|>");
    const types = tokens.map((_, i) => (i === tokens.length - 1 ? TokenType.CONTROL : TokenType.NORMAL));
    const t = new Tokenizer({ model: "gpt2", pre: "gpt-2", tokens, tokenTypes: types, merges: [], eosId: tokens.length - 1, eotId: tokens.length - 1 });
    expect(refusalText(() => createTokenConstraint(t, { kind: "json-object" }, t.eogIds))).toMatch(/^constraint\.unsatisfiable: .*0x7d/);
  });

  it("samples without recording the rejected trial draw, and reports logprobs of the unmasked logits", () => {
    const open = byteToken(bpe, 0x7b);
    const space = byteToken(bpe, 0x20);
    const letter = byteToken(bpe, 0x61);
    const logits = new Float32Array(bpe.size).fill(-5);
    logits[letter] = 3; // the model's favourite, but not allowed at the start
    logits[open] = 2;
    logits[space] = 0.6;
    const sampler = new Sampler({ vocabSize: bpe.size, temperature: 0, frequencyPenalty: 1, logprobs: true, seed: 1 });
    const c: TokenConstraint = createTokenConstraint(bpe, { kind: "json-object" }, bpe.eogIds);
    const first = sampleConstrained(sampler, logits, c, 50);
    expect(first.token).toBe(open);
    let z = 0;
    for (const v of logits) z += Math.exp(v);
    expect(first.logprob!).toBeCloseTo(2 - Math.log(z), 4);
    expect(sampler.sample(logits, { record: false }).token).toBe(letter); // `letter` was never recorded
    const probe = new Float32Array(bpe.size).fill(-5);
    probe[open] = 2;
    probe[space] = 0.5;
    expect(sampler.sample(probe).token).toBe(open); // 2 - 1 (one record) > 0.5; two records would give 0
  });
});

/** 201,088 distinct word-like tokens (ASCII, JSON punctuation, spaces): as many real pieces as gpt-oss has, unlike the synthesized vocabulary's filler. */
function denseVocabulary(): Tokenizer {
  const rnd = seededRandom(5);
  const set = new Set<string>(BYTE_TO_CHAR);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789Ġ.,\"{}:[]-_Ċé";
  while (set.size < HARMONY_VOCAB_SIZE - 1) {
    let piece = rnd() < 0.5 ? "Ġ" : "";
    for (let i = 2 + Math.floor(rnd() * 8); i > 0; i--) piece += alphabet[Math.floor(rnd() * (rnd() < 0.9 ? 52 : alphabet.length))];
    set.add(piece);
  }
  const tokens = [...set, "<|endoftext|>"];
  const types = tokens.map((_, i) => (i === tokens.length - 1 ? TokenType.CONTROL : TokenType.NORMAL));
  return new Tokenizer({ model: "gpt2", pre: "gpt-2", tokens, tokenTypes: types, merges: [], eosId: tokens.length - 1, eotId: tokens.length - 1 });
}

describe("mask speed on 201,088-token vocabularies", () => {
  it("masks the whole vocabulary in milliseconds per step, inside strings too", () => {
    const schema = { type: "object", properties: { text: { type: "string" }, n: { type: "number" } }, required: ["text", "n"] };
    const states: Record<string, string> = { "after {": "{", "inside a string": '{"text":"abc', "in a number": '{"text":"a","n":12' };
    const vocabularies: Record<string, Tokenizer> = {
      "gpt-oss synthesized": new Tokenizer(buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: HARMONY_VOCAB_SIZE })),
      "dense word-like": denseVocabulary(),
    };
    for (const [vocabName, tokenizer] of Object.entries(vocabularies)) {
      const timings: Record<string, number> = {};
      for (const [name, prefix] of Object.entries(states)) {
        const c = createTokenConstraint(tokenizer, { kind: "json-schema", schema }, tokenizer.eogIds);
        for (const b of new TextEncoder().encode(prefix)) c.accept(byteToken(tokenizer, b));
        const logits = new Float32Array(tokenizer.size);
        c.mask(logits, 1000); // warm up (and build the trie on first use)
        const runs = 10;
        const start = performance.now();
        for (let i = 0; i < runs; i++) c.mask(logits, 1000);
        timings[name] = +((performance.now() - start) / runs).toFixed(2);
        let allowed = 0;
        for (const v of logits) if (v !== -Infinity) allowed++;
        expect(allowed).toBeGreaterThan(0);
      }
      console.log(`mask ms per call, ${vocabName} vocabulary: ${JSON.stringify(timings)}`);
      for (const ms of Object.values(timings)) expect(ms).toBeLessThan(100);
    }
    // Building two 201,088-token vocabularies takes about 3 s on a 2-core machine.
  }, 60_000);
});
