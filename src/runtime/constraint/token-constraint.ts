// Constrained decoding at the vocabulary level: which tokens may come next so
// that the output stays a prefix of a valid JSON document (json-automaton.ts)
// and can still be closed within the token budget.
//
// Budget rule: a token is allowed only if, after it, the fewest bytes that
// close the document fit in the tokens left, counting one token per byte. The
// vocabulary must hold a single-byte token for every byte such a closing uses
// (checked up front), so from any accepted state the closing's next byte is an
// allowed token: generation never runs into a dead end, even at max_tokens.
//
// `mask` walks a byte trie of every token piece (built once per tokenizer)
// with the recognizer, pruning a branch as soon as its bytes cannot continue a
// document; `allows` checks one token, for the fast path of `sampleConstrained`.
import type { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { refuse } from "../../util/errors.ts";
import type { SampledToken, Sampler } from "../sampler.ts";
import {
  canEndOf,
  JsonRecognizer,
  minBytesOf,
  plainStringOf,
  resumeString,
  stepAll,
  stepFrame,
  utf8Lead,
  type Frame,
  type StringFrame,
} from "./json-automaton.ts";
import { ANY_OBJECT, compileJsonSchema, type SchemaNode } from "./json-schema.ts";
import { buildVocabIndex, type VocabIndex } from "./vocab-trie.ts";

export type ConstraintSpec = { kind: "json-object" } | { kind: "json-schema"; schema: unknown };

export interface TokenConstraintOptions {
  /** The request's max_tokens: refused up front when even the shortest document needs more. */
  maxTokens?: number;
}

export interface TokenConstraint {
  /** May `token` come next, given that at most `remainingTokens` tokens (this one included) may still be generated? */
  allows(token: number, remainingTokens: number): boolean;
  /** Sets logits[t] = -Infinity for every token not allowed (the whole vocabulary; used when the fast path misses). */
  mask(logits: Float32Array, remainingTokens: number): void;
  accept(token: number): void;
  /** The output so far is a complete document: only end-of-generation tokens are allowed now. */
  isComplete(): boolean;
  /** Fewest tokens any document needs from here (the budget rule counts one token per byte). */
  minTokensToComplete(): number;
}

const indexes = new WeakMap<Tokenizer, VocabIndex>();

function vocabIndexOf(tokenizer: Tokenizer): VocabIndex {
  let index = indexes.get(tokenizer);
  if (index === undefined) {
    index = buildVocabIndex(tokenizer);
    indexes.set(tokenizer, index);
  }
  return index;
}

export function createTokenConstraint(
  tokenizer: Tokenizer,
  spec: ConstraintSpec,
  eogIds: Iterable<number>,
  options: TokenConstraintOptions = {},
): TokenConstraint {
  let node: SchemaNode;
  if (spec.kind === "json-object") node = ANY_OBJECT;
  else if (spec.kind === "json-schema") node = compileJsonSchema(spec.schema);
  else refuse("constraint.bad-spec", `unknown constraint kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  const index = vocabIndexOf(tokenizer);
  const eog = new Set(eogIds);
  if (eog.size === 0) refuse("constraint.unsatisfiable", "the vocabulary has no end-of-generation token to finish a JSON document with");
  for (const id of eog) {
    if (!Number.isInteger(id) || id < 0 || id >= index.size) refuse("constraint.bad-spec", `end-of-generation id ${id} is outside the vocabulary`);
  }
  checkClosingBytes(index, node);
  const constraint = new JsonTokenConstraint(index, node, eog);
  const needed = constraint.minTokensToComplete();
  if (options.maxTokens !== undefined && options.maxTokens >= 0 && options.maxTokens < needed) {
    refuse("constraint.unsatisfiable", `max_tokens ${options.maxTokens} is too small: the shortest valid JSON document here needs ${needed} tokens`);
  }
  return constraint;
}

/** Every byte a cheapest closing can use must exist as a single-byte token (see the budget rule above). */
function checkClosingBytes(index: VocabIndex, node: SchemaNode): void {
  const needed = new Set<number>();
  for (let b = 0x20; b < 0x7f; b++) needed.add(b);
  if (index.splitsCharacters) for (let b = 0x80; b < 0xc0; b++) needed.add(b);
  for (const text of literalTexts(node)) for (const b of text) needed.add(b);
  for (const b of needed) {
    if (index.singleByte[b]! < 0) {
      refuse("constraint.unsatisfiable", `the vocabulary has no single-byte token for byte 0x${b.toString(16).padStart(2, "0")}, which constrained JSON output may need to finish a document`);
    }
  }
}

function literalTexts(root: SchemaNode): Uint8Array[] {
  const seen = new Set<SchemaNode>();
  const out: Uint8Array[] = [];
  const visit = (n: SchemaNode): void => {
    if (seen.has(n)) return;
    seen.add(n);
    if (n.kind === "literal") out.push(...n.texts);
    else if (n.kind === "anyOf") n.options.forEach(visit);
    else if (n.kind === "array") visit(n.items);
    else if (n.kind === "object") {
      for (const p of n.properties) {
        out.push(p.key);
        visit(p.node);
      }
      if (n.additional) visit(n.additional);
    }
  };
  visit(root);
  return out;
}

class JsonTokenConstraint implements TokenConstraint {
  private configs: readonly Frame[];
  private complete: boolean | null = null;
  private ended = false;
  // mask scratch: allowed[t] === stamp marks token t allowed in the current call.
  private readonly allowed: Uint32Array;
  private stamp = 0;
  private readonly levels: Frame[][] = [];
  private budgetAfter = 0;

  constructor(private readonly index: VocabIndex, node: SchemaNode, private readonly eog: Set<number>) {
    this.configs = JsonRecognizer.start(node).state;
    this.allowed = new Uint32Array(index.size);
  }

  minTokensToComplete(): number {
    return minBytesOf(this.configs);
  }

  isComplete(): boolean {
    if (this.complete === null) {
      const r = this.configs;
      this.complete = canEndOf(r);
      for (let b = 0; b < 256 && this.complete; b++) if (stepAll(r, b).length > 0) this.complete = false;
    }
    return this.complete;
  }

  allows(token: number, remainingTokens: number): boolean {
    if (this.ended || !Number.isInteger(token) || token < 0 || token >= this.index.size || remainingTokens < 1) return false;
    if (this.eog.has(token)) return canEndOf(this.configs);
    if (!this.index.eligible[token] || this.isComplete()) return false;
    const after = this.stepToken(token);
    return after.length > 0 && minBytesOf(after) <= remainingTokens - 1;
  }

  mask(logits: Float32Array, remainingTokens: number): void {
    const { index } = this;
    if (logits.length !== index.size) refuse("constraint.bad-logits", `expected ${index.size} logits, got ${logits.length}`);
    const stamp = ++this.stamp;
    const allowed = this.allowed;
    let any = false;
    if (!this.ended && remainingTokens >= 1) {
      if (!this.isComplete()) {
        this.budgetAfter = remainingTokens - 1;
        any = this.walk(0, this.configs, 0, stamp);
      }
      if (canEndOf(this.configs)) {
        for (const id of this.eog) allowed[id] = stamp;
        any = true;
      }
    }
    if (!any) refuse("constraint.unsatisfiable", `no token can continue the JSON document within ${remainingTokens} remaining tokens`);
    for (let t = 0; t < logits.length; t++) if (allowed[t] !== stamp) logits[t] = -Infinity;
  }

  accept(token: number): void {
    if (this.ended) refuse("constraint.rejected-token", `token ${token} came after end of generation`);
    if (this.eog.has(token)) {
      if (!canEndOf(this.configs)) refuse("constraint.rejected-token", `end-of-generation token ${token} came before the JSON document was complete`);
      this.ended = true;
      return;
    }
    const after = this.index.eligible[token] ? this.stepToken(token) : [];
    if (after.length === 0) refuse("constraint.rejected-token", `token ${token} cannot continue the JSON document`);
    this.configs = after;
    this.complete = null;
  }

  private stepToken(token: number): Frame[] {
    const { pieceStart, pieceBytes } = this.index;
    let configs: readonly Frame[] = this.configs;
    for (let i = pieceStart[token]!; i < pieceStart[token + 1]! && configs.length > 0; i++) configs = stepAll(configs, pieceBytes[i]!);
    return configs as Frame[];
  }

  /** Marks the allowed tokens under trie node `node`, whose bytes led to `configs`; true if any. */
  private walk(node: number, configs: readonly Frame[], depth: number, stamp: number): boolean {
    const plain = plainStringOf(configs);
    if (plain !== null) {
      return this.walkString(node, plain, plain.length, plain.owedContinuation, plain.lo, plain.hi, depth, stamp);
    }
    const { firstChild, nextSibling, byte } = this.index.trie;
    const level = this.level(depth);
    let any = false;
    for (let child = firstChild[node]!; child >= 0; child = nextSibling[child]!) {
      level.length = 0;
      const b = byte[child]!;
      for (let i = 0; i < configs.length; i++) stepFrame(configs[i]!, b, level);
      if (level.length > 0 && this.visit(child, minBytesOf(level), level, depth, stamp)) any = true;
    }
    return any;
  }

  /**
   * `walk` inside a string value: plain characters only change the code-point
   * count and the UTF-8 bytes owed, so they are followed as integers; a quote,
   * backslash or control byte goes back to frames.
   */
  private walkString(node: number, f: StringFrame, length: number, need: number, lo: number, hi: number, depth: number, stamp: number): boolean {
    const { firstChild, nextSibling, byte, height } = this.index.trie;
    const { minLength, maxLength } = f;
    let any = false;
    for (let child = firstChild[node]!; child >= 0; child = nextSibling[child]!) {
      const b = byte[child]!;
      let n = length, owed = need, nextLo = 0x80, nextHi = 0xbf;
      if (owed > 0) {
        if (b < lo || b > hi) continue;
        owed--;
      } else if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
        if (n >= maxLength) continue;
        n++;
        if (b >= 0x80) {
          const lead = UTF8_LEAD[b]!;
          if (lead === 0) continue;
          owed = lead & 3;
          nextLo = lead >> 8 & 0xff;
          nextHi = lead >> 16;
        }
      } else {
        const level = this.level(depth);
        level.length = 0;
        stepFrame(resumeString(f, length, need, lo, hi), b, level);
        if (level.length > 0 && this.visit(child, minBytesOf(level), level, depth, stamp)) any = true;
        continue;
      }
      const cost = f.base + owed + Math.max(0, minLength - n) + 1;
      if (cost - height[child]! > this.budgetAfter) continue;
      if (cost <= this.budgetAfter && this.markTokens(child, stamp)) any = true;
      if (firstChild[child]! >= 0 && this.walkString(child, f, n, owed, nextLo, nextHi, depth + 1, stamp)) any = true;
    }
    return any;
  }

  /** A trie child reached with `configs` (closing cost `cost`): mark its tokens and walk below it. */
  private visit(child: number, cost: number, configs: readonly Frame[], depth: number, stamp: number): boolean {
    const { firstChild, height } = this.index.trie;
    // Each byte lowers the closing cost by at most one: a subtree too shallow to fit the budget holds nothing allowed.
    if (cost - height[child]! > this.budgetAfter) return false;
    let any = cost <= this.budgetAfter && this.markTokens(child, stamp);
    if (firstChild[child]! >= 0 && this.walk(child, configs, depth + 1, stamp)) any = true;
    return any;
  }

  private markTokens(node: number, stamp: number): boolean {
    const { tokenStart, tokenCount, tokens } = this.index.trie;
    const count = tokenCount[node]!;
    for (let k = tokenStart[node]!, end = k + count; k < end; k++) this.allowed[tokens[k]!] = stamp;
    return count > 0;
  }

  private level(depth: number): Frame[] {
    while (this.levels.length <= depth) this.levels.push([]);
    return this.levels[depth]!;
  }
}

/** Per byte: 0 if not a UTF-8 lead byte, else continuation count | first continuation range lo << 8 | hi << 16. */
const UTF8_LEAD = new Int32Array(256).map((_, b) => {
  const lead = b >= 0x80 ? utf8Lead(b) : null;
  return lead === null ? 0 : lead[0] | (lead[1] << 8) | (lead[2] << 16);
});

/**
 * Samples with a constraint the way llama.cpp samples with a grammar: draw from
 * the model's logits as usual (not recorded); if the constraint allows that
 * token, keep it; otherwise mask a copy of the logits and draw again. Logprobs
 * always describe the unmasked logits. The caller then calls `c.accept(token)`.
 */
export function sampleConstrained(sampler: Sampler, logits: Float32Array, c: TokenConstraint, remainingTokens: number): SampledToken {
  return pickConstrained(sampler, c, remainingTokens, () => sampler.sample(logits, { record: false }), () => logits);
}

/**
 * As sampleConstrained, from any source of the usual pick: `trial` draws it
 * (recording nothing; from a backend's top-k, say), and `row` gives the logits
 * to mask, asked only when the constraint refuses the trial's token.
 */
export function pickConstrained(sampler: Sampler, c: TokenConstraint, remainingTokens: number, trial: () => SampledToken, row: () => Float32Array): SampledToken {
  const first = trial();
  if (c.allows(first.token, remainingTokens)) {
    sampler.accept(first.token);
    return first;
  }
  const logits = row();
  const masked = new Float32Array(logits);
  c.mask(masked, remainingTokens);
  return sampler.sample(masked, { logprobsFrom: logits });
}
