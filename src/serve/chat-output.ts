// What a chat model's generated text means for the client: reasoning,
// content and tool calls, as deltas while it streams and as one message at
// the end. gpt-oss output goes through the harmony parser; other models'
// output is content; with tools offered, text that may become a tool call is
// held until it is settled, and read as tool calls at the end (a partial tool
// call must never reach the client as content).
import type { ChatTool } from "../tokenizer/chat-types.ts";
import type { ParsedOutput } from "../tokenizer/tool-calls.ts";
import { HarmonyParser, type HarmonyDelta } from "../tokenizer/harmony-parser.ts";

export type ChatDelta =
  | { kind: "reasoning"; text: string }
  | { kind: "content"; text: string }
  | { kind: "tool-call-start"; index: number; id: string; name: string }
  | { kind: "tool-call-arguments"; index: number; text: string };

export interface ChatOutput {
  push(text: string): ChatDelta[];
  finish(): ChatDelta[];
}

/** The finished message, built from every delta. */
export interface ChatMessageResult {
  content: string;
  reasoning: string;
  toolCalls: { id: string; name: string; arguments: string }[];
}

export function newToolCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** Folds deltas into the final message. */
export class MessageBuilder {
  readonly result: ChatMessageResult = { content: "", reasoning: "", toolCalls: [] };

  add(deltas: ChatDelta[]): void {
    for (const d of deltas) {
      if (d.kind === "content") this.result.content += d.text;
      else if (d.kind === "reasoning") this.result.reasoning += d.text;
      else if (d.kind === "tool-call-start") this.result.toolCalls[d.index] = { id: d.id, name: d.name, arguments: "" };
      else this.result.toolCalls[d.index]!.arguments += d.text;
    }
  }
}

/** Output of a model without tools in play: all content. */
export class PlainOutput implements ChatOutput {
  push(text: string): ChatDelta[] {
    return text === "" ? [] : [{ kind: "content", text }];
  }

  finish(): ChatDelta[] {
    return [];
  }
}

/** gpt-oss: harmony channels. `prefix` is header text the prompt already wrote for the model (a forced tool call). */
export class HarmonyOutput implements ChatOutput {
  private readonly parser = new HarmonyParser();
  private readonly ids: string[] = [];

  constructor(prefix = "") {
    // The forced header's deltas (the tool call's start) belong to the response.
    this.pending = prefix === "" ? [] : this.convert(this.parser.push(prefix));
  }

  private pending: ChatDelta[];

  private convert(deltas: HarmonyDelta[]): ChatDelta[] {
    return deltas.map((d): ChatDelta => {
      if (d.kind !== "tool-call-start") return d;
      const id = newToolCallId();
      this.ids[d.index] = id;
      return { kind: "tool-call-start", index: d.index, id, name: d.name };
    });
  }

  push(text: string): ChatDelta[] {
    const out = [...this.pending, ...this.convert(this.parser.push(text))];
    this.pending = [];
    return out;
  }

  finish(): ChatDelta[] {
    const out = [...this.pending, ...this.convert(this.parser.finish().deltas)];
    this.pending = [];
    return out;
  }
}

/**
 * Other models with tools offered. Prose streams as content as it comes, but
 * for text that may still turn into a `<tool_call>` block (held from the
 * first `<tool_call>`, and any tail that could be the start of one); output
 * that opens with `{` or `[` may be a bare JSON call and is held whole. At
 * the end `parse` reads the output: calls to offered tools become tool-call
 * deltas, the rest is content.
 */
export class ToolCallOutput implements ChatOutput {
  private text = "";
  /** Characters of `text` already sent as content. */
  private sent = 0;
  private readonly offered: Set<string>;

  constructor(tools: readonly ChatTool[], private readonly parse: (text: string) => ParsedOutput) {
    this.offered = new Set(tools.map((t) => t.function.name));
  }

  push(text: string): ChatDelta[] {
    this.text += text;
    const start = this.text.trimStart();
    if (start === "" || start.startsWith("{") || start.startsWith("[")) return [];
    const block = this.text.indexOf(TOOL_CALL_OPEN);
    // Trailing whitespace waits too: it may only separate the text from a call.
    const safe = this.text.slice(0, block >= 0 ? block : this.text.length - heldTail(this.text)).trimEnd().length;
    if (safe <= this.sent) return [];
    const out: ChatDelta[] = [{ kind: "content", text: this.text.slice(this.sent, safe) }];
    this.sent = safe;
    return out;
  }

  finish(): ChatDelta[] {
    const { toolCalls } = this.parse(this.text);
    // A call to a tool the request did not offer is text that happens to look like one.
    if (toolCalls.length === 0 || !toolCalls.every((c) => this.offered.has(c.name))) {
      return this.sent < this.text.length ? [{ kind: "content", text: this.text.slice(this.sent) }] : [];
    }
    // What is left of the text once the calls are taken out, past what was already sent.
    const rest = this.parse(this.text.slice(this.sent)).content;
    const deltas: ChatDelta[] = rest.trim() === "" ? [] : [{ kind: "content", text: rest }];
    toolCalls.forEach((call, index) => {
      deltas.push({ kind: "tool-call-start", index, id: newToolCallId(), name: call.name }, { kind: "tool-call-arguments", index, text: call.arguments });
    });
    return deltas;
  }
}

const TOOL_CALL_OPEN = "<tool_call>";

/** Length of the longest tail of `text` that is a proper start of `<tool_call>`. */
function heldTail(text: string): number {
  for (let n = Math.min(TOOL_CALL_OPEN.length - 1, text.length); n > 0; n--) {
    if (TOOL_CALL_OPEN.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}
