// A chat request as what the engine runs: the prompt text, the output
// constraint, and how to read the output back. gpt-oss speaks harmony; every
// other model gets its own chat template. Forced tool calls and JSON output
// are constrained decoding, arranged so the model's format stays intact:
// for gpt-oss the prompt opens the message the constraint then fills
// (a `commentary to=functions.NAME` call, or the `final` channel).
import type { OutputConstraint, ServedModel } from "../runtime/engine/protocol.ts";
import type { ChatMessage, ChatTool } from "../tokenizer/chat-types.ts";
import { renderChatTemplate, requireChatTemplate } from "../tokenizer/chat-template.ts";
import { renderHarmony, type ReasoningEffort } from "../tokenizer/harmony.ts";
import { parseToolCalls, toolCallSchema } from "../tokenizer/tool-calls.ts";
import { HarmonyOutput, PlainOutput, ToolCallOutput, type ChatOutput } from "./chat-output.ts";
import { reject } from "./errors.ts";

export type ToolChoice = "none" | "auto" | "required" | { name: string };

export interface ChatPromptRequest {
  messages: ChatMessage[];
  tools: ChatTool[];
  toolChoice: ToolChoice;
  reasoningEffort: ReasoningEffort;
  /** From response_format. */
  constraint?: OutputConstraint;
}

export interface ChatPlan {
  prompt: string;
  constraint?: OutputConstraint;
  output: ChatOutput;
}

export function isHarmonyModel(model: ServedModel): boolean {
  return model.architecture === "gpt-oss";
}

/** The tool a choice forces, when it forces one: a named tool, or `required` with exactly one offered. */
function forcedTool(tools: ChatTool[], choice: ToolChoice): ChatTool | undefined {
  if (typeof choice === "object") {
    const tool = tools.find((t) => t.function.name === choice.name);
    if (!tool) reject(400, "invalid_tool_choice", `tool_choice names "${choice.name}", which is not among the tools`, "tool_choice");
    return tool;
  }
  return choice === "required" && tools.length === 1 ? tools[0] : undefined;
}

/** A tool's arguments schema as an output constraint (any JSON object when it gives none). */
function argumentsConstraint(tool: ChatTool): OutputConstraint {
  return tool.function.parameters ? { kind: "json-schema", schema: tool.function.parameters } : { kind: "json-object" };
}

function planHarmony(request: ChatPromptRequest, tools: ChatTool[]): ChatPlan {
  const base = renderHarmony(request.messages, { reasoningEffort: request.reasoningEffort, tools });
  const forced = forcedTool(tools, request.toolChoice);
  if (forced) {
    const header = `<|channel|>commentary to=functions.${forced.function.name} <|constrain|>json<|message|>`;
    return { prompt: base + header, constraint: argumentsConstraint(forced), output: new HarmonyOutput(header) };
  }
  if (request.toolChoice === "required") {
    // Several tools and one must be called: the call is one JSON object naming its tool.
    return { prompt: `${base}<|channel|>commentary<|message|>`, constraint: { kind: "json-schema", schema: toolCallSchema(tools, "required") }, output: new ToolCallOutput(tools, parseToolCalls) };
  }
  if (request.constraint) {
    // JSON output is the final answer; reasoning is skipped so the constraint covers the whole message.
    const header = "<|channel|>final<|message|>";
    return { prompt: base + header, constraint: request.constraint, output: new HarmonyOutput(header) };
  }
  return { prompt: base, output: new HarmonyOutput() };
}

function planTemplate(model: ServedModel, request: ChatPromptRequest, tools: ChatTool[]): ChatPlan {
  const rendered = renderChatTemplate(requireChatTemplate(model), {
    messages: request.messages,
    tools,
    addGenerationPrompt: true,
    bosToken: model.bosText ?? "",
    eosToken: model.eosText ?? "",
  });
  // The engine adds BOS by the vocabulary's rule; a template that prints it too would double it.
  const prompt = model.bosText && rendered.startsWith(model.bosText) ? rendered.slice(model.bosText.length) : rendered;
  if (tools.length === 0) return { prompt, constraint: request.constraint, output: new PlainOutput() };
  const choice = request.toolChoice;
  if (choice === "required" || typeof choice === "object") {
    return { prompt, constraint: { kind: "json-schema", schema: toolCallSchema(tools, choice) }, output: new ToolCallOutput(tools, parseToolCalls) };
  }
  return { prompt, constraint: request.constraint, output: new ToolCallOutput(tools, parseToolCalls) };
}

/** Renders a chat request for `model`. Template and tool problems are refusals (400), never crashes. */
export function planChat(model: ServedModel, request: ChatPromptRequest): ChatPlan {
  // tool_choice "none": the model is not told about the tools, so it cannot call them.
  const tools = request.toolChoice === "none" ? [] : request.tools;
  if (tools.length === 0 && (request.toolChoice === "required" || typeof request.toolChoice === "object")) {
    reject(400, "invalid_tool_choice", "tool_choice asks for a tool call but the request offers no tools", "tool_choice");
  }
  const choice = request.toolChoice;
  if (typeof choice === "object" && !tools.some((t) => t.function.name === choice.name)) {
    reject(400, "invalid_tool_choice", `tool_choice names "${choice.name}", which is not among the tools`, "tool_choice");
  }
  const forcing = choice === "required" || typeof choice === "object";
  if (forcing && request.constraint) {
    reject(400, "invalid_request", "response_format and a forced tool call would both constrain the output; give one", "response_format");
  }
  return isHarmonyModel(model) ? planHarmony(request, tools) : planTemplate(model, request, tools);
}
