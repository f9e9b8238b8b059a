// When generation stops, and which text the user gets before it does.
//
// Three rules: a stop token (end-of-generation ids from the tokenizer plus any
// the request names), a stop string in the decoded text, and a token budget.
// A stop string may arrive split over several tokens, so text that could be the
// start of one is held back until the next tokens settle it: released if the
// match fails, dropped (with everything after it) if the match completes. The
// stop string itself is never emitted. Generation ends at the first token by
// which some stop string is complete (as llama.cpp's server checks after each
// token); if several are complete then, the text is cut at the earliest start.
//
// Text comes from the tokenizer's streaming decoder, which yields only whole
// code points, so held-back and emitted pieces never split a character.

import { refuse } from "../util/errors.ts";

export type StopReason = "eog" | "stop-string" | "max-tokens";

export interface StopOptions {
  /** Strings that end generation; not emitted themselves. */
  stopStrings?: readonly string[];
  /** Token ids that end generation (the tokenizer's EOG ids plus user-given ones); their text is not emitted. */
  stopTokens?: Iterable<number>;
  /** Generate at most this many tokens (every pushed token counts, a stop token included). */
  maxTokens?: number;
}

export interface StopStep {
  /** Text safe to show now. */
  emit: string;
  /** Set on the step that ends generation. */
  stop?: StopReason;
  /** With stop "eog": the token id that ended it. */
  stopToken?: number;
  /** With stop "stop-string": the string that matched. */
  stopString?: string;
}

/** Bounds on what a request may ask for, so matching stays cheap per token. */
export const MAX_STOP_STRINGS = 64;
export const MAX_STOP_STRING_LENGTH = 1024;

export class StopChecker {
  private readonly stopStrings: readonly string[];
  private readonly stopTokens: ReadonlySet<number>;
  private readonly maxTokens: number;
  /** Longest stop string: a stop string can only end within the last (longest - 1) held chars plus new text. */
  private readonly longest: number;
  private held = "";
  private count = 0;
  private finished: StopReason | null = null;

  constructor(options: StopOptions = {}) {
    const strings = options.stopStrings ?? [];
    if (!Array.isArray(strings)) refuse("stop.bad-strings", "stop strings must be an array of strings");
    if (strings.length > MAX_STOP_STRINGS) {
      refuse("stop.bad-strings", `at most ${MAX_STOP_STRINGS} stop strings are accepted, got ${strings.length}`);
    }
    for (const s of strings) {
      if (typeof s !== "string" || s.length === 0) refuse("stop.bad-strings", `a stop string must be a non-empty string, got ${JSON.stringify(s)}`);
      if (s.length > MAX_STOP_STRING_LENGTH) {
        refuse("stop.bad-strings", `a stop string may be at most ${MAX_STOP_STRING_LENGTH} characters, got ${s.length}`);
      }
      if (!s.isWellFormed()) refuse("stop.bad-strings", `stop string ${JSON.stringify(s)} contains a lone surrogate`);
    }
    this.stopStrings = [...strings];
    this.longest = strings.reduce((m, s) => Math.max(m, s.length), 0);

    const tokens = new Set<number>();
    for (const t of options.stopTokens ?? []) {
      if (!Number.isInteger(t) || t < 0) refuse("stop.bad-token", `a stop token must be a non-negative integer id, got ${t}`);
      tokens.add(t);
    }
    this.stopTokens = tokens;

    const max = options.maxTokens ?? Infinity;
    if (max !== Infinity && (!Number.isInteger(max) || max < 1)) {
      refuse("stop.bad-max-tokens", `max tokens must be a positive integer, got ${max}`);
    }
    this.maxTokens = max;
  }

  /** Tokens pushed so far. */
  get tokenCount(): number {
    return this.count;
  }

  /** Why generation stopped, or null while it goes on. */
  get stopReason(): StopReason | null {
    return this.finished;
  }

  /** One generated token and its decoded text. */
  push(tokenId: number, text: string): StopStep {
    if (this.finished !== null) {
      refuse("stop.after-stop", `generation already stopped (${this.finished}); token ${tokenId} was pushed after it`);
    }
    this.count++;
    if (this.stopTokens.has(tokenId)) {
      // A partial stop string can no longer complete: release it.
      this.finished = "eog";
      return { emit: this.flush(), stop: "eog", stopToken: tokenId };
    }
    const searchFrom = Math.max(0, this.held.length - (this.longest - 1));
    const pending = this.held + text;
    const match = this.firstMatch(pending, searchFrom);
    if (match !== null) {
      this.held = "";
      this.finished = "stop-string";
      return { emit: pending.slice(0, match.at), stop: "stop-string", stopString: match.string };
    }
    const keep = this.partialMatchLength(pending);
    this.held = pending.slice(pending.length - keep);
    const emit = pending.slice(0, pending.length - keep);
    if (this.count >= this.maxTokens) {
      this.finished = "max-tokens";
      return { emit: emit + this.flush(), stop: "max-tokens" };
    }
    return { emit };
  }

  /** Release held-back text (the stream ended for another reason, e.g. the context is full). */
  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }

  /** Earliest-starting complete stop string in `text` at or after `from` (list order breaks ties). */
  private firstMatch(text: string, from: number): { at: number; string: string } | null {
    let best: { at: number; string: string } | null = null;
    for (const s of this.stopStrings) {
      const at = text.indexOf(s, from);
      if (at >= 0 && (best === null || at < best.at)) best = { at, string: s };
    }
    return best;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialMatchLength(text: string): number {
    const limit = Math.min(text.length, this.longest - 1);
    for (let k = limit; k > 0; k--) {
      const tail = text.slice(text.length - k);
      for (const s of this.stopStrings) if (s.length > k && s.startsWith(tail)) return k;
    }
    return 0;
  }
}
