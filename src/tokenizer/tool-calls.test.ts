import { describe, expect, it } from "bun:test";
import { compileJsonSchema } from "../runtime/constraint/json-schema.ts";
import { matchesSchema } from "../runtime/constraint/schema-validate.ts";
import { refusalOf as refusal } from "../util/refusal-of.ts";
import type { ChatTool } from "./chat-types.ts";
import { parseToolCalls, toolCallSchema } from "./tool-calls.ts";


describe("parseToolCalls", () => {
  it("takes Hermes/Qwen <tool_call> blocks out of the text as calls with compact arguments", () => {
    const text = 'Let me check both.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}\n</tool_call>\n' +
      '<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"CET\\"}"}</tool_call>';
    expect(parseToolCalls(text)).toEqual({
      content: "Let me check both.",
      toolCalls: [
        { name: "get_weather", arguments: '{"city":"Paris","days":[1,2]}' },
        { name: "get_time", arguments: '{"tz":"CET"}' },
      ],
    });
  });

  it("accepts an unclosed last block (generation stopped at the closing tag) and a call without arguments", () => {
    expect(parseToolCalls('<tool_call>{"name": "now"}')).toEqual({ content: "", toolCalls: [{ name: "now", arguments: "{}" }] });
  });

  it("keeps malformed blocks as content while taking out the good ones", () => {
    const text = '<tool_call>{"name": "a", "arguments": {</tool_call> then <tool_call>{"name": "b", "arguments": {}}</tool_call>';
    expect(parseToolCalls(text)).toEqual({
      content: '<tool_call>{"name": "a", "arguments": {</tool_call> then',
      toolCalls: [{ name: "b", arguments: "{}" }],
    });
    const noName = '<tool_call>{"arguments": {}}</tool_call>';
    expect(parseToolCalls(noName)).toEqual({ content: noName, toolCalls: [] });
  });

  it("reads a bare llama-3 style JSON call filling the whole output, or an array of them", () => {
    expect(parseToolCalls(' {"name": "search", "parameters": {"q": "gguf"}}\n')).toEqual({
      content: "",
      toolCalls: [{ name: "search", arguments: '{"q":"gguf"}' }],
    });
    expect(parseToolCalls('[{"name": "a", "arguments": {}}, {"name": "b", "parameters": {"x": 1}}]').toolCalls).toEqual([
      { name: "a", arguments: "{}" },
      { name: "b", arguments: '{"x":1}' },
    ]);
  });

  it("leaves ordinary answers, JSON answers and partial matches as content", () => {
    for (const text of [
      "The weather is fine.",
      '{"name": "Bob", "age": 3}',
      '{"name": "a", "arguments": {}} and more',
      '[{"name": "a", "arguments": {}}, 3]',
      '{"name": "bad name!", "arguments": {}}',
      '{"name": "a", "arguments": [1]}',
      "[]",
      "",
    ]) {
      expect(parseToolCalls(text)).toEqual({ content: text, toolCalls: [] });
    }
  });

  it("survives hostile output: deep nesting and huge text", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(parseToolCalls(deep)).toEqual({ content: deep, toolCalls: [] });
    const huge = "<tool_call>" + "x".repeat(1_000_000);
    expect(parseToolCalls(huge).toolCalls).toEqual([]);
  });
});

const tools: ChatTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
    },
  },
  { type: "function", function: { name: "now" } },
];

describe("toolCallSchema", () => {
  it("describes exactly a call to the named tool with its parameters", () => {
    const schema = compileJsonSchema(toolCallSchema(tools, { name: "get_weather" }));
    expect(matchesSchema({ name: "get_weather", arguments: { city: "Paris" } }, schema)).toBe(true);
    expect(matchesSchema({ name: "now", arguments: {} }, schema)).toBe(false);
    expect(matchesSchema({ name: "get_weather", arguments: {} }, schema)).toBe(false);
    expect(matchesSchema({ name: "get_weather", arguments: { city: "Paris" }, extra: 1 }, schema)).toBe(false);
  });

  it("allows any declared tool when a call is required, and round-trips through parseToolCalls", () => {
    const schema = compileJsonSchema(toolCallSchema(tools, "required"));
    expect(matchesSchema({ name: "now", arguments: {} }, schema)).toBe(true);
    expect(matchesSchema({ name: "get_weather", arguments: { city: "Oslo" } }, schema)).toBe(true);
    expect(matchesSchema({ name: "other", arguments: {} }, schema)).toBe(false);
    const generated = JSON.stringify({ name: "get_weather", arguments: { city: "Oslo" } });
    expect(parseToolCalls(generated).toolCalls).toEqual([{ name: "get_weather", arguments: '{"city":"Oslo"}' }]);
  });

  it("refuses a choice of an undeclared tool, no tools, and schemas nested past 32 levels", () => {
    expect(refusal(() => toolCallSchema(tools, { name: "missing" })).code).toBe("chat.bad-tool-choice");
    expect(refusal(() => toolCallSchema([], "required")).code).toBe("chat.bad-tool-choice");
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { type: "array", items: deep };
    const error = refusal(() => toolCallSchema([{ type: "function", function: { name: "d", parameters: deep } }], "required"));
    expect(error.code).toBe("chat.bad-tool");
    expect(error.message).toContain("deeper than 32");
    const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`p${i}`, { type: "string" }])) };
    expect(refusal(() => toolCallSchema([{ type: "function", function: { name: "w", parameters: wide } }], "required")).message).toContain("nodes");
  });
});
