// Chat requests rendered through a model's own Jinja chat template
// (`tokenizer.chat_template` in the GGUF), with the variables Hugging Face
// `apply_chat_template` gives real templates: messages, tools,
// add_generation_prompt, bos_token, eos_token, and the functions
// raise_exception, strftime_now and range (chat-template-globals.ts).
// Used for every model but gpt-oss (see harmony.ts).
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { PsionicError, refuse } from "../util/errors.ts";
import type { ChatMessage, ChatRole, ChatTool } from "./chat-types.ts";
import { templateGlobals } from "./chat-template-globals.ts";
import { checkToolName, checkTools } from "./tool-schema.ts";

export interface ChatTemplateInput {
  messages: readonly ChatMessage[];
  tools?: readonly ChatTool[];
  /** End with the opening of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
  bosToken: string;
  eosToken: string;
  /** Further variables some templates read (e.g. `enable_thinking`); the ones above take precedence. */
  extra?: Record<string, unknown>;
  /** The clock strftime_now reads (tests fix it). */
  now?: () => Date;
}

const ROLES: readonly ChatRole[] = ["system", "developer", "user", "assistant", "tool"];

/** Parsed templates by source: a server renders the same one for every request. */
const parsed = new Map<string, Template>();
const PARSED_KEPT = 8;

function parseTemplate(source: string): Template {
  const cached = parsed.get(source);
  if (cached) return cached;
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    refuse("chat.template-error", `chat template does not parse: ${(e as Error).message}`);
  }
  if (parsed.size >= PARSED_KEPT) parsed.delete(parsed.keys().next().value!);
  parsed.set(source, template);
  return template;
}

/** Tool-call arguments as the object templates expect (`tool_call.arguments | tojson`); text if not a JSON object. */
function argumentsValue(text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : text;
  } catch {
    return text;
  }
}

/** A message as a plain object, fields the client did not send left out (templates test `is defined`). */
function templateMessage(m: ChatMessage, i: number): Record<string, unknown> {
  if (m === null || typeof m !== "object") refuse("chat.bad-message", `messages[${i}] must be an object`);
  if (!ROLES.includes(m.role)) refuse("chat.bad-message", `messages[${i}] has unknown role ${JSON.stringify(m.role)}`);
  if (m.content !== null && typeof m.content !== "string") {
    refuse("chat.bad-message", `messages[${i}].content must be a string or null`);
  }
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.name !== undefined) out.name = m.name;
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  if (m.reasoning_content !== undefined) out.reasoning_content = m.reasoning_content;
  if (m.tool_calls !== undefined) {
    if (!Array.isArray(m.tool_calls)) refuse("chat.bad-message", `messages[${i}].tool_calls must be an array`);
    out.tool_calls = m.tool_calls.map((call, j) => {
      const name = checkToolName(call?.function?.name, `messages[${i}].tool_calls[${j}]`);
      if (typeof call.function.arguments !== "string") {
        refuse("chat.bad-message", `messages[${i}].tool_calls[${j}].function.arguments must be JSON text`);
      }
      return { id: call.id, type: "function", function: { name, arguments: argumentsValue(call.function.arguments) } };
    });
  }
  return out;
}

/** The prompt a model's chat template makes of a conversation. */
export function renderChatTemplate(template: string, input: ChatTemplateInput): string {
  if (!Array.isArray(input.messages)) refuse("chat.bad-message", "messages must be an array");
  const tools = input.tools ?? [];
  checkTools(tools);
  const messages = input.messages.map(templateMessage);
  const compiled = parseTemplate(template);
  const variables: Record<string, unknown> = {
    ...input.extra,
    messages,
    // As transformers: `none` without tools, so `tools is not none` works.
    tools: tools.length > 0 ? structuredClone(tools) : null,
    add_generation_prompt: input.addGenerationPrompt ?? true,
    bos_token: input.bosToken,
    eos_token: input.eosToken,
  };
  try {
    // The globals are looked up first, so a template's `raise_exception` and
    // `range` are always ours, whatever `extra` holds.
    const scope = new Environment();
    for (const [name, value] of Object.entries(variables)) scope.set(name, value);
    const result = new Interpreter(templateGlobals(scope, input.now)).run(compiled.parsed).value;
    return typeof result === "string" ? result : String(result);
  } catch (e) {
    if (e instanceof PsionicError) throw e;
    refuse("chat.template-error", `chat template failed: ${(e as Error).message ?? String(e)}`);
  }
}

/** The model's chat template, or a refusal that points to plain completions. */
export function requireChatTemplate(model: { id: string; chatTemplate?: string }): string {
  if (typeof model.chatTemplate !== "string" || model.chatTemplate.trim() === "") {
    refuse("chat.no-template", `model ${model.id} has no tokenizer.chat_template; use /v1/completions with a plain prompt`);
  }
  return model.chatTemplate;
}
