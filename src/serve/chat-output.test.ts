// Reading generated text back as a chat message: harmony channels for
// gpt-oss, tool calls for other models, and the Responses API items and
// events built from the same deltas.
import { describe, expect, it } from "bun:test";
import { parseToolCalls } from "../tokenizer/tool-calls.ts";
import { HarmonyOutput, MessageBuilder, ToolCallOutput, type ChatDelta, type ChatOutput } from "./chat-output.ts";
import { ResponseOutputBuilder } from "./response-events.ts";

const TOOLS = [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object" } } }];

/** Feeds text in small pieces, as tokens arrive, and returns every delta. */
function run(output: ChatOutput, text: string, piece = 3): ChatDelta[] {
  const deltas: ChatDelta[] = [];
  for (let i = 0; i < text.length; i += piece) deltas.push(...output.push(text.slice(i, i + piece)));
  return [...deltas, ...output.finish()];
}

function message(deltas: ChatDelta[]) {
  const builder = new MessageBuilder();
  builder.add(deltas);
  return builder.result;
}

describe("chat output", () => {
  it("splits harmony analysis into reasoning, final into content, and commentary calls into tool calls", () => {
    const text = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Oslo\"}";
    const result = message(run(new HarmonyOutput(), text));
    expect(result.reasoning).toBe("Think.");
    expect(result.content).toBe("");
    expect(result.toolCalls).toEqual([{ id: expect.stringMatching(/^call_/), name: "get_weather", arguments: '{"city":"Oslo"}' }]);
    const final = message(run(new HarmonyOutput(), "<|channel|>final<|message|>Hello there"));
    expect([final.content, final.reasoning]).toEqual(["Hello there", ""]);
  });

  it("reads a forced harmony tool call: the prompt's header opens the call, the output is its arguments", () => {
    const header = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>";
    const result = message(run(new HarmonyOutput(header), '{"city":"Rome"}'));
    expect(result.toolCalls.map((c) => [c.name, c.arguments])).toEqual([["get_weather", '{"city":"Rome"}']]);
  });

  it("streams other models' prose while tools are offered, holding only what may become a tool call", () => {
    const call = run(new ToolCallOutput(TOOLS, parseToolCalls), 'Sure. <tool_call>{"name":"get_weather","arguments":{"city":"Nice"}}</tool_call>');
    // "Sure." went out as it came; the call arrived whole at the end.
    expect(call.filter((d) => d.kind === "content").map((d) => (d as { text: string }).text).join("")).toBe("Sure.");
    expect(call.slice(-2).map((d) => d.kind)).toEqual(["tool-call-start", "tool-call-arguments"]);
    const result = message(call);
    expect(result.content).toBe("Sure.");
    expect(result.toolCalls.map((c) => [c.name, c.arguments])).toEqual([["get_weather", '{"city":"Nice"}']]);

    const prose = new ToolCallOutput(TOOLS, parseToolCalls);
    expect(prose.push("no tools ")).toEqual([{ kind: "content", text: "no tools" }]);
    expect(prose.push("today <tool")).toEqual([{ kind: "content", text: " today" }]);
    expect(prose.push("box> ok")).toEqual([{ kind: "content", text: " <toolbox> ok" }]);
    expect(message([...prose.finish()]).content).toBe("");
    expect(message(run(new ToolCallOutput(TOOLS, parseToolCalls), "no tools today")).content).toBe("no tools today");
  });

  it("holds output that opens like a bare JSON call until the end", () => {
    const json = new ToolCallOutput(TOOLS, parseToolCalls);
    expect(json.push(' {"name":"get_weather",')).toEqual([]);
    expect(json.push('"arguments":{"city":"Oslo"}}')).toEqual([]);
    expect(message(json.finish()).toolCalls.map((c) => c.name)).toEqual(["get_weather"]);
  });

  it("keeps a call to a tool the request did not offer as content", () => {
    const text = '{"name":"rm_rf","arguments":{}}';
    const result = message(run(new ToolCallOutput(TOOLS, parseToolCalls), text));
    expect(result).toEqual({ content: text, reasoning: "", toolCalls: [] });
  });
});

describe("responses output items and events", () => {
  it("opens and closes one item per kind of output, in the order the Responses API streams them", () => {
    const builder = new ResponseOutputBuilder();
    const events = [
      ...builder.add([{ kind: "reasoning", text: "hm" }, { kind: "content", text: "Hi" }, { kind: "content", text: "!" }]),
      ...builder.add([{ kind: "tool-call-start", index: 0, id: "call_1", name: "f" }, { kind: "tool-call-arguments", index: 0, text: "{}" }]),
      ...builder.finish(),
    ];
    expect(events.map((e) => e.type)).toEqual([
      "response.output_item.added", "response.reasoning_text.delta", "response.reasoning_text.done", "response.output_item.done",
      "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
      "response.output_text.done", "response.content_part.done", "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
    ]);
    expect(builder.items.map((i) => i.type)).toEqual(["reasoning", "message", "function_call"]);
    const message = builder.items[1]!;
    expect(message.type === "message" && message.content[0]!.text).toBe("Hi!");
    expect(builder.items.every((i) => i.status === "completed")).toBe(true);
  });
});
