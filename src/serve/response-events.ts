// The Responses API's output: items (reasoning, message, function_call) built
// from chat deltas, and while streaming, the event sequence clients expect
// (response.output_item.added, response.output_text.delta, ...). One builder
// serves both: streaming reads the events it returns, non-streaming only the
// items at the end.
import type { ChatDelta } from "./chat-output.ts";

export type OutputItem =
  | { type: "reasoning"; id: string; summary: []; content: { type: "reasoning_text"; text: string }[]; status: "in_progress" | "completed" }
  | { type: "message"; id: string; role: "assistant"; status: "in_progress" | "completed"; content: { type: "output_text"; text: string; annotations: []; logprobs: [] }[] }
  | { type: "function_call"; id: string; call_id: string; name: string; arguments: string; status: "in_progress" | "completed" };

export interface ResponseEvent {
  type: string;
  [field: string]: unknown;
}

const itemId = (prefix: string) => `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;

export class ResponseOutputBuilder {
  readonly items: OutputItem[] = [];
  /** The item deltas currently append to, by the kind of delta it takes. */
  private open: { kind: "reasoning" | "content" | "tool"; index: number; toolIndex?: number } | undefined;

  /** Applies deltas; returns the stream events they make. */
  add(deltas: ChatDelta[]): ResponseEvent[] {
    const events: ResponseEvent[] = [];
    for (const d of deltas) {
      if (d.kind === "tool-call-start") {
        events.push(...this.close());
        const item: OutputItem = { type: "function_call", id: itemId("fc"), call_id: d.id, name: d.name, arguments: "", status: "in_progress" };
        events.push(...this.openItem(item, "tool", d.index));
        continue;
      }
      if (d.kind === "tool-call-arguments") {
        const current = this.open;
        if (current?.kind !== "tool" || current.toolIndex !== d.index) continue;
        const item = this.items[current.index] as Extract<OutputItem, { type: "function_call" }>;
        item.arguments += d.text;
        events.push({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: current.index, delta: d.text });
        continue;
      }
      if (this.open?.kind !== d.kind) {
        events.push(...this.close());
        const item: OutputItem = d.kind === "reasoning"
          ? { type: "reasoning", id: itemId("rs"), summary: [], content: [{ type: "reasoning_text", text: "" }], status: "in_progress" }
          : { type: "message", id: itemId("msg"), role: "assistant", status: "in_progress", content: [{ type: "output_text", text: "", annotations: [], logprobs: [] }] };
        events.push(...this.openItem(item, d.kind));
      }
      const index = this.open!.index;
      const item = this.items[index]!;
      if (item.type === "function_call") continue;
      item.content[0]!.text += d.text;
      const type = d.kind === "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta";
      events.push({ type, item_id: item.id, output_index: index, content_index: 0, delta: d.text, ...(d.kind === "content" ? { logprobs: [] } : {}) });
    }
    return events;
  }

  /** Closes the open item; returns its closing events. */
  finish(): ResponseEvent[] {
    return this.close();
  }

  private openItem(item: OutputItem, kind: "reasoning" | "content" | "tool", toolIndex?: number): ResponseEvent[] {
    const index = this.items.length;
    this.items.push(item);
    this.open = { kind, index, toolIndex };
    const events: ResponseEvent[] = [{ type: "response.output_item.added", output_index: index, item: structuredClone(item) }];
    if (item.type === "message") {
      events.push({ type: "response.content_part.added", item_id: item.id, output_index: index, content_index: 0, part: { ...item.content[0]! } });
    }
    return events;
  }

  private close(): ResponseEvent[] {
    const open = this.open;
    if (!open) return [];
    this.open = undefined;
    const item = this.items[open.index]!;
    item.status = "completed";
    const events: ResponseEvent[] = [];
    if (item.type === "message") {
      const part = item.content[0]!;
      events.push({ type: "response.output_text.done", item_id: item.id, output_index: open.index, content_index: 0, text: part.text, logprobs: [] });
      events.push({ type: "response.content_part.done", item_id: item.id, output_index: open.index, content_index: 0, part: { ...part } });
    } else if (item.type === "reasoning") {
      events.push({ type: "response.reasoning_text.done", item_id: item.id, output_index: open.index, content_index: 0, text: item.content[0]!.text });
    } else {
      events.push({ type: "response.function_call_arguments.done", item_id: item.id, output_index: open.index, arguments: item.arguments });
    }
    events.push({ type: "response.output_item.done", output_index: open.index, item: structuredClone(item) });
    return events;
  }
}
