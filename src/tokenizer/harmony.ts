// OpenAI chat messages rendered as a harmony prompt for gpt-oss, the way
// OpenAI's reference renderer (openai-harmony) renders a conversation for
// completion. The format guide (openai/harmony docs/format.md) is the spec;
// where the two differ, the guide wins and the spot says so.
//
//   <|start|>system<|message|>{identity, dates, reasoning, channels}<|end|>
//   <|start|>developer<|message|># Instructions\n\n{system prompt}\n\n# Tools ...<|end|>
//   <|start|>user<|message|>...<|end|>
//   <|start|>assistant<|channel|>final<|message|>...<|end|>            past answers
//   <|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{...}<|call|>
//   <|start|>functions.f to=assistant<|channel|>commentary<|message|>{result}<|end|>
//   <|start|>assistant                                                  generation prompt
import { refuse } from "../util/errors.ts";
import type { ChatMessage, ChatTool } from "./chat-types.ts";
import { harmonyToolsSection } from "./harmony-tools.ts";
import { checkToolName, checkTools } from "./tool-schema.ts";

export type ReasoningEffort = "low" | "medium" | "high";

export interface HarmonyOptions {
  reasoningEffort: ReasoningEffort;
  tools?: readonly ChatTool[];
  /** `Knowledge cutoff:` line; gpt-oss was trained with 2024-06. */
  knowledgeCutoff?: string;
  /** `Current date:` line (YYYY-MM-DD), left out when not given. */
  currentDate?: string;
  /** End with `<|start|>assistant` so the model writes the next turn (default true). */
  addGenerationPrompt?: boolean;
}

const MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI.";
const DEFAULT_KNOWLEDGE_CUTOFF = "2024-06";
const EFFORTS: readonly ReasoningEffort[] = ["low", "medium", "high"];

function message(header: string, body: string, end = "<|end|>"): string {
  return `<|start|>${header}<|message|>${body}${end}`;
}

/** A value placed inside the system message must not end a line or a message early. */
function headerValue(value: string | undefined, what: string): string | undefined {
  if (value !== undefined && (typeof value !== "string" || /[\r\n]|<\|/.test(value))) {
    refuse("chat.bad-option", `${what} ${JSON.stringify(value)} must be one line without '<|'`);
  }
  return value;
}

function systemMessage(options: HarmonyOptions, hasTools: boolean): string {
  if (!EFFORTS.includes(options.reasoningEffort)) {
    refuse("chat.bad-option", `reasoning effort ${JSON.stringify(options.reasoningEffort)} must be low, medium or high`);
  }
  const top = [MODEL_IDENTITY, `Knowledge cutoff: ${headerValue(options.knowledgeCutoff, "knowledge cutoff") ?? DEFAULT_KNOWLEDGE_CUTOFF}`];
  const date = headerValue(options.currentDate, "current date");
  if (date !== undefined) top.push(`Current date: ${date}`);
  let channels = "# Valid channels: analysis, commentary, final. Channel must be included for every message.";
  if (hasTools) channels += "\nCalls to these tools must go to the commentary channel: 'functions'.";
  return message("system", [top.join("\n"), `Reasoning: ${options.reasoningEffort}`, channels].join("\n\n"));
}

function developerMessage(instructions: string[], tools: readonly ChatTool[]): string {
  const sections: string[] = [];
  if (instructions.length > 0) sections.push("# Instructions", instructions.join("\n\n"));
  if (tools.length > 0) sections.push(harmonyToolsSection(tools));
  return message("developer", sections.join("\n\n"));
}

function checkMessage(m: ChatMessage, i: number): void {
  if (m === null || typeof m !== "object") refuse("chat.bad-message", `messages[${i}] must be an object`);
  if (m.content !== null && typeof m.content !== "string") {
    refuse("chat.bad-message", `messages[${i}].content must be a string or null`);
  }
  if (m.tool_calls !== undefined && !Array.isArray(m.tool_calls)) {
    refuse("chat.bad-message", `messages[${i}].tool_calls must be an array`);
  }
  m.tool_calls?.forEach((call, j) => {
    checkToolName(call?.function?.name, `messages[${i}].tool_calls[${j}]`);
    if (typeof call.function.arguments !== "string") {
      refuse("chat.bad-message", `messages[${i}].tool_calls[${j}].function.arguments must be JSON text`);
    }
  });
}

/** The harmony prompt for a chat request. Refuses unknown roles and tool results it cannot attribute. */
export function renderHarmony(messages: readonly ChatMessage[], options: HarmonyOptions): string {
  if (!Array.isArray(messages)) refuse("chat.bad-message", "messages must be an array");
  const tools = options.tools ?? [];
  checkTools(tools);
  messages.forEach(checkMessage);

  // Leading system/developer messages are the system prompt: harmony's developer `# Instructions`.
  let first = 0;
  const instructions: string[] = [];
  for (; first < messages.length; first++) {
    const m = messages[first]!;
    if (m.role !== "system" && m.role !== "developer") break;
    if (m.content) instructions.push(m.content);
  }

  // Chain of thought is dropped once a turn ended in a final answer; while the
  // model is still calling tools its reasoning goes back in (format guide,
  // "Handling reasoning output in subsequent sampling").
  let lastFinal = -1;
  messages.forEach((m, i) => {
    if (m.role === "assistant" && !m.tool_calls?.length && m.content !== null) lastFinal = i;
  });

  let out = systemMessage(options, tools.length > 0);
  if (instructions.length > 0 || tools.length > 0) out += developerMessage(instructions, tools);
  const toolNameOfCall = new Map<string, string>();
  for (let i = first; i < messages.length; i++) {
    const m = messages[i]!;
    switch (m.role) {
      case "system":
      case "developer":
        // A system message mid-conversation stays where it was said.
        if (m.content) out += message("developer", `# Instructions\n\n${m.content}`);
        break;
      case "user":
        out += message("user", m.content ?? "");
        break;
      case "assistant":
        out += renderAssistant(m, i > lastFinal, toolNameOfCall);
        break;
      case "tool": {
        const name = toolNameOfCall.get(m.tool_call_id ?? "") ?? m.name;
        if (name === undefined) {
          refuse("chat.bad-message", `messages[${i}] (role tool) answers tool call ${JSON.stringify(m.tool_call_id)}, which no earlier assistant message made`);
        }
        checkToolName(name, `messages[${i}].name`);
        out += message(`functions.${name} to=assistant<|channel|>commentary`, m.content ?? "");
        break;
      }
      default:
        refuse("chat.bad-message", `messages[${i}] has unknown role ${JSON.stringify((m as { role: unknown }).role)}`);
    }
  }
  return options.addGenerationPrompt === false ? out : `${out}<|start|>assistant`;
}

function renderAssistant(m: ChatMessage, keepReasoning: boolean, toolNameOfCall: Map<string, string>): string {
  const calls = m.tool_calls ?? [];
  if (calls.length === 0) {
    // A past answer: its final channel only, ended by <|end|> (not the <|return|> it was sampled with).
    return m.content === null ? "" : message("assistant<|channel|>final", m.content);
  }
  let out = "";
  if (keepReasoning && m.reasoning_content) out += message("assistant<|channel|>analysis", m.reasoning_content);
  // Text beside tool calls is a preamble: commentary without a recipient, shown to the user.
  if (m.content) out += message("assistant<|channel|>commentary", m.content);
  for (const call of calls) {
    toolNameOfCall.set(call.id, call.function.name);
    // The guide puts the recipient after the channel, as the model itself writes it;
    // the reference renderer puts it before (`assistant to=functions.f<|channel|>...`).
    out += message(`assistant<|channel|>commentary to=functions.${call.function.name} <|constrain|>json`, call.function.arguments, "<|call|>");
  }
  return out;
}
