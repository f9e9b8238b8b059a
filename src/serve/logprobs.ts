// Token log-probabilities in the two shapes OpenAI uses: chat's
// `{content: [{token, logprob, bytes, top_logprobs}]}` and the legacy
// completions' parallel arrays. A token's own text is its bytes decoded
// (a token may hold part of a character; its bytes are exact).
import type { TokenAlternative } from "../runtime/engine/protocol.ts";
import type { TokenEvent } from "./job.ts";

const decoder = new TextDecoder();

function tokenText(bytes: number[] | undefined, fallback: string): string {
  return bytes ? decoder.decode(new Uint8Array(bytes)) : fallback;
}

export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

function alternative(a: TokenAlternative) {
  return { token: tokenText(a.bytes, a.text), logprob: a.logprob, bytes: a.bytes };
}

export function chatLogprob(event: TokenEvent): ChatLogprob {
  const bytes = event.bytes ?? [...new TextEncoder().encode(event.text)];
  return {
    token: tokenText(event.bytes, event.text),
    logprob: event.logprob ?? 0,
    bytes,
    top_logprobs: (event.topLogprobs ?? []).map(alternative),
  };
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** Completions' logprobs for `events`, whose text starts at `offset` characters into the output. */
export function completionLogprobs(events: TokenEvent[], offset = 0): CompletionLogprobs {
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let position = offset;
  for (const event of events) {
    result.tokens.push(tokenText(event.bytes, event.text));
    result.token_logprobs.push(event.logprob ?? 0);
    result.top_logprobs.push(Object.fromEntries((event.topLogprobs ?? []).map((a) => [tokenText(a.bytes, a.text), a.logprob])));
    result.text_offset.push(position);
    position += event.text.length;
  }
  return result;
}
