// Tool calls in the output of models that have no harmony channels, in the
// formats open models are trained on:
//   Hermes / Qwen:  text <tool_call>{"name": "f", "arguments": {...}}</tool_call> ...
//   llama 3.x:      {"name": "f", "parameters": {...}}   (the whole output, or an array of them)
// and the JSON schema that forces such a call under constrained decoding.
import { refuse } from "../util/errors.ts";
import type { ChatTool, ParsedToolCall } from "./chat-types.ts";
import { checkTools, isToolName } from "./tool-schema.ts";

export interface ParsedOutput {
  /** The text left once recognised tool calls are taken out. */
  content: string;
  toolCalls: ParsedToolCall[];
}

const TOOL_CALL_BLOCK = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON, or nested past the engine's limit
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * `{"name": ..., "arguments"|"parameters": {...}}` as a call with compact
 * argument text, or undefined. Arguments given as JSON text are accepted too.
 * `argumentsOptional`: Hermes blocks may leave them out for a function of no arguments.
 */
function asCall(value: unknown, argumentsOptional: boolean): ParsedToolCall | undefined {
  if (!isObject(value) || !isToolName(value.name)) return undefined;
  let args = value.arguments ?? value.parameters;
  if (args === undefined && argumentsOptional) args = {};
  if (typeof args === "string") args = parseJson(args);
  if (!isObject(args)) return undefined;
  try {
    return { name: value.name, arguments: JSON.stringify(args) };
  } catch {
    return undefined;
  }
}

/** Tool calls found in generated text; text that is not a well-formed call stays content. */
export function parseToolCalls(text: string): ParsedOutput {
  if (text.includes("<tool_call>")) {
    const toolCalls: ParsedToolCall[] = [];
    const content = text.replace(TOOL_CALL_BLOCK, (block, body: string) => {
      const call = asCall(parseJson(body.trim()), true);
      if (!call) return block;
      toolCalls.push(call);
      return "";
    });
    if (toolCalls.length > 0) return { content: content.trim(), toolCalls };
  }
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    const value = parseJson(trimmed);
    const candidates = Array.isArray(value) ? value : [value];
    const calls = candidates.map((c) => asCall(c, false));
    if (calls.length > 0 && calls.every((c) => c !== undefined)) return { content: "", toolCalls: calls };
  }
  return { content: text, toolCalls: [] };
}

function callSchema(tool: ChatTool): Record<string, unknown> {
  return {
    type: "object",
    properties: {
      name: { const: tool.function.name },
      arguments: tool.function.parameters ?? { type: "object" },
    },
    required: ["name", "arguments"],
    additionalProperties: false,
  };
}

/**
 * The JSON schema of `{"name": ..., "arguments": {...}}` for a call to one of
 * `tools` ("required") or to the named one, for constrained decoding.
 */
export function toolCallSchema(tools: readonly ChatTool[], choice: "required" | { name: string }): unknown {
  checkTools(tools);
  if (choice === "required") {
    if (tools.length === 0) refuse("chat.bad-tool-choice", 'tool_choice "required" needs at least one tool');
    return tools.length === 1 ? callSchema(tools[0]!) : { anyOf: tools.map(callSchema) };
  }
  const tool = tools.find((t) => t.function.name === choice?.name);
  if (!tool) {
    refuse("chat.bad-tool-choice", `tool_choice names ${JSON.stringify(choice?.name)}, which is not among the request's tools`);
  }
  return callSchema(tool);
}
