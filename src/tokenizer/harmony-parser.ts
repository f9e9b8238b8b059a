// Streaming parser for what gpt-oss writes after `<|start|>assistant`:
//
//   <|channel|>analysis<|message|>thinking...<|end|>
//   <|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a":1}<|call|>
//   <|start|>assistant<|channel|>final<|message|>the answer<|return|>
//
// Text arrives in arbitrary pieces. Each message's header (between a message
// start and `<|message|>`) says where its body goes: analysis is reasoning,
// final and recipient-less commentary (a preamble) are content, a recipient
// `functions.NAME` makes the body a tool call's arguments. Body text streams
// out as soon as it cannot be the start of a special token. The parser never
// throws: output with no headers at all (an untrained model) is content, and
// a header that cannot be one is surfaced as content rather than lost.
import type { ParsedToolCall } from "./chat-types.ts";

export type HarmonyDelta =
  | { kind: "reasoning"; text: string }
  | { kind: "content"; text: string }
  | { kind: "tool-call-start"; index: number; name: string }
  | { kind: "tool-call-arguments"; index: number; text: string };

export interface HarmonyResult {
  content: string;
  reasoning: string;
  toolCalls: ParsedToolCall[];
  /** Deltas for text held back until the end (a trailing `<` that never became a special token). */
  deltas: HarmonyDelta[];
}

const SPECIALS = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>", "<|endoftext|>"];
const MESSAGE_ENDS = new Set(["<|end|>", "<|return|>", "<|call|>", "<|endoftext|>"]);
/** Real headers are a few words; anything longer was never one. */
const MAX_HEADER_CHARS = 256;
/** Header words: roles, channels, `to=functions.name`, content types. */
const HEADER_TEXT = /^[\w.:=\- ]*$/;
/** Before any special token, the only header text the model writes is a recipient (` to=functions.f`). */
const LEADING_RECIPIENT_PREFIX = /^ ?(?:t|to|to=[^\s<]*)?$/;

type Body = { kind: "reasoning" } | { kind: "content" } | { kind: "tool"; index: number };

type State =
  | { mode: "header"; text: string; initial: boolean; sawSpecial: boolean }
  | { mode: "body"; body: Body }
  | { mode: "between"; text: string };

export class HarmonyParser {
  private state: State = { mode: "header", text: "", initial: true, sawSpecial: false };
  /** Text that may be the beginning of a special token split across pieces. */
  private held = "";
  private out: HarmonyDelta[] = [];
  private content = "";
  private reasoning = "";
  private toolCalls: ParsedToolCall[] = [];

  /** Feeds the next piece of generated text; returns what it adds to the message. */
  push(text: string): HarmonyDelta[] {
    this.out = [];
    let rest = this.held + text;
    this.held = "";
    while (rest.length > 0) {
      const at = rest.indexOf("<");
      if (at < 0) {
        this.onText(rest);
        break;
      }
      if (at > 0) this.onText(rest.slice(0, at));
      rest = rest.slice(at);
      const special = SPECIALS.find((s) => rest.startsWith(s));
      if (special) {
        this.onSpecial(special);
        rest = rest.slice(special.length);
      } else if (SPECIALS.some((s) => s.startsWith(rest))) {
        this.held = rest;
        break;
      } else {
        this.onText("<");
        rest = rest.slice(1);
      }
    }
    return this.out;
  }

  /** Ends the stream: flushes held-back text and returns the whole message. */
  finish(): HarmonyResult {
    this.out = [];
    if (this.held) this.onText(this.held);
    this.held = "";
    if (this.state.mode === "header") this.abandonHeader(this.state);
    const deltas = this.out;
    this.out = [];
    return { content: this.content, reasoning: this.reasoning, toolCalls: this.toolCalls.map((c) => ({ ...c })), deltas };
  }

  private onText(text: string): void {
    const state = this.state;
    if (state.mode === "body") return this.emitBody(state.body, text);
    if (state.mode === "between") {
      // Whitespace between messages is formatting; anything else is surfaced.
      state.text += text;
      if (state.text.trim() !== "") this.startRawContent(state.text);
      return;
    }
    state.text += text;
    const plausible = state.initial && !state.sawSpecial
      ? LEADING_RECIPIENT_PREFIX.test(state.text)
      : HEADER_TEXT.test(state.text.replaceAll(/<\|\w+\|>/g, "")) && state.text.length <= MAX_HEADER_CHARS;
    if (!plausible) this.startRawContent(headerWords(state.text));
  }

  private onSpecial(special: string): void {
    const state = this.state;
    if (special === "<|start|>") {
      if (state.mode === "header") this.abandonHeader(state);
      this.state = { mode: "header", text: "", initial: false, sawSpecial: false };
    } else if (MESSAGE_ENDS.has(special)) {
      if (state.mode === "header") this.abandonHeader(state);
      this.state = { mode: "between", text: "" };
    } else if (special === "<|message|>") {
      if (state.mode === "header") this.openMessage(state.text);
      else if (state.mode === "between") this.state = { mode: "body", body: { kind: "content" } };
      // A stray <|message|> inside a body carries nothing.
    } else if (state.mode === "header") {
      state.text += special;
      state.sawSpecial = true;
    } else {
      // <|channel|> or <|constrain|> outside a header: the model began a new
      // message without <|end|><|start|>assistant; read it as one.
      this.state = { mode: "header", text: special, initial: false, sawSpecial: true };
    }
  }

  private openMessage(header: string): void {
    const recipient = /\bto=([^\s<]+)/.exec(header)?.[1];
    const channel = /<\|channel\|>\s*([^\s<]+)/.exec(header)?.[1];
    let body: Body;
    if (recipient?.startsWith("functions.") && recipient.length > "functions.".length) {
      const index = this.toolCalls.length;
      const name = recipient.slice("functions.".length);
      this.toolCalls.push({ name, arguments: "" });
      this.out.push({ kind: "tool-call-start", index, name });
      body = { kind: "tool", index };
    } else if (channel === "analysis" || (recipient !== undefined && recipient !== "assistant" && recipient !== "all")) {
      // Built-in tool calls (browser, python) and nameless function calls are not
      // for the user; keep them with the reasoning rather than drop them.
      body = { kind: "reasoning" };
    } else {
      body = { kind: "content" };
    }
    this.state = { mode: "body", body };
  }

  /** A header that never reached <|message|>: header syntax is dropped, anything else surfaced. */
  private abandonHeader(state: { text: string; initial: boolean; sawSpecial: boolean }): void {
    if (state.initial && !state.sawSpecial && state.text !== "") this.emitBody({ kind: "content" }, state.text);
  }

  private startRawContent(text: string): void {
    const body: Body = { kind: "content" };
    this.state = { mode: "body", body };
    if (text !== "") this.emitBody(body, text);
  }

  private emitBody(body: Body, text: string): void {
    const last = this.out[this.out.length - 1];
    if (body.kind === "tool") {
      this.toolCalls[body.index]!.arguments += text;
      if (last?.kind === "tool-call-arguments" && last.index === body.index) last.text += text;
      else this.out.push({ kind: "tool-call-arguments", index: body.index, text });
      return;
    }
    if (body.kind === "content") this.content += text;
    else this.reasoning += text;
    if (last?.kind === body.kind) last.text += text;
    else this.out.push({ kind: body.kind, text });
  }
}

/** Header text with its special-token markers removed, for surfacing a broken header. */
function headerWords(text: string): string {
  return text.replaceAll(/<\|\w+\|>/g, "");
}
