// Request bodies of the OpenAI-compatible endpoints, as valibot schemas: the
// single source of truth for each request's type, its validation and the
// message a client gets when a field is wrong. Optional fields accept `null`
// (many clients send null for "not set"); unknown fields are ignored, as
// OpenAI's own API ignores fields it does not use.
import * as v from "valibot";

const number = (name: string, min: number, max: number) =>
  v.nullish(v.pipe(v.number(`${name} must be a number`), v.minValue(min, `${name} must be at least ${min}`), v.maxValue(max, `${name} must be at most ${max}`)));
const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.nullish(v.pipe(v.number(`${name} must be an integer`), v.integer(`${name} must be an integer`), v.minValue(min, `${name} must be at least ${min}`), v.maxValue(max, `${name} must be at most ${max}`)));
const text = (name: string) => v.string(`${name} must be a string`);
const flag = (name: string) => v.nullish(v.boolean(`${name} must be true or false`));

/** Most stop strings a request may give (OpenAI allows 4; llama-server allows any). */
export const MAX_STOP_STRINGS = 16;
/** Sampling fields shared by chat, completions and responses. */
const samplingFields = {
  temperature: number("temperature", 0, 2),
  top_p: number("top_p", 0, 1),
  top_k: integer("top_k", 0),
  min_p: number("min_p", 0, 1),
  typical_p: number("typical_p", 0, 1),
  repeat_penalty: number("repeat_penalty", 0, 10),
  repeat_last_n: integer("repeat_last_n", -1),
  presence_penalty: number("presence_penalty", -2, 2),
  frequency_penalty: number("frequency_penalty", -2, 2),
  seed: integer("seed", Number.MIN_SAFE_INTEGER),
  stop: v.nullish(v.union(
    [text("stop"), v.pipe(v.array(text("stop[]")), v.maxLength(MAX_STOP_STRINGS, `stop takes at most ${MAX_STOP_STRINGS} strings`))],
    "stop must be a string or an array of strings",
  )),
};
export type SamplingFields = { [K in keyof typeof samplingFields]?: v.InferOutput<(typeof samplingFields)[K]> };

const streamOptions = v.nullish(v.object({ include_usage: flag("stream_options.include_usage") }, "stream_options must be an object"));
/** Only one choice per request: several would need several sequences, which the engine gives to other requests instead. */
const onlyOneChoice = v.nullish(v.pipe(v.number("n must be a number"), v.check((n) => n === 1, "only n=1 is supported")));
const reasoningEffort = v.picklist(["low", "medium", "high"], "reasoning effort must be low, medium or high");
export type ReasoningEffort = v.InferOutput<typeof reasoningEffort>;

// Chat messages ---------------------------------------------------------------

/** A content part; anything but text is refused when the message is flattened, naming the part. */
const contentPart = v.looseObject({ type: text("content part type"), text: v.optional(text("content part text")) }, "a content part must be an object");
export type ContentPart = v.InferOutput<typeof contentPart>;
const messageContent = v.nullish(v.union([v.string(), v.array(contentPart)], "content must be a string or an array of content parts"));

const toolCall = v.object({
  id: text("tool call id"),
  type: v.optional(v.literal("function", "tool call type must be \"function\""), "function"),
  function: v.object({ name: text("function name"), arguments: text("function arguments") }),
});

const chatMessage = v.object({
  role: v.picklist(["system", "developer", "user", "assistant", "tool"], "role must be system, developer, user, assistant or tool"),
  content: messageContent,
  name: v.nullish(text("name")),
  tool_calls: v.nullish(v.array(toolCall)),
  tool_call_id: v.nullish(text("tool_call_id")),
  reasoning_content: v.nullish(text("reasoning_content")),
}, "a message must be an object");
export type ChatMessageInput = v.InferOutput<typeof chatMessage>;

const jsonSchemaObject = v.record(v.string(), v.unknown(), "must be a JSON schema object");

export const chatTool = v.object({
  type: v.literal("function", "tool type must be \"function\""),
  function: v.object({ name: text("function name"), description: v.nullish(text("description")), parameters: v.nullish(jsonSchemaObject) }),
}, "a tool must be an object");

export const toolChoice = v.nullish(v.union([
  v.picklist(["none", "auto", "required"]),
  v.object({ type: v.literal("function"), function: v.object({ name: text("function name") }) }),
], "tool_choice must be none, auto, required or {type: \"function\", function: {name}}"));
export type ToolChoiceInput = v.InferOutput<typeof toolChoice>;

const responseFormat = v.nullish(v.variant("type", [
  v.object({ type: v.literal("text") }),
  v.object({ type: v.literal("json_object") }),
  v.object({
    type: v.literal("json_schema"),
    json_schema: v.object({ name: v.nullish(v.string()), schema: v.nullish(jsonSchemaObject), strict: flag("strict") }, "json_schema must be an object"),
  }),
], "response_format.type must be text, json_object or json_schema"));
export type ResponseFormatInput = v.InferOutput<typeof responseFormat>;

export const ChatCompletionRequest = v.object({
  model: text("model"),
  messages: v.pipe(v.array(chatMessage, "messages must be an array"), v.minLength(1, "messages must not be empty")),
  ...samplingFields,
  max_tokens: integer("max_tokens", 1),
  max_completion_tokens: integer("max_completion_tokens", 1),
  n: onlyOneChoice,
  logprobs: flag("logprobs"),
  top_logprobs: integer("top_logprobs", 0, 20),
  response_format: responseFormat,
  tools: v.nullish(v.array(chatTool, "tools must be an array")),
  tool_choice: toolChoice,
  stream: flag("stream"),
  stream_options: streamOptions,
  reasoning_effort: v.nullish(reasoningEffort),
}, "the request body must be a JSON object");
export type ChatCompletionRequest = v.InferOutput<typeof ChatCompletionRequest>;

// Completions -----------------------------------------------------------------

const tokenIds = v.array(v.pipe(v.number(), v.integer("token ids must be integers"), v.minValue(0, "token ids must not be negative")));
export const CompletionRequest = v.object({
  model: text("model"),
  prompt: v.union([
    v.string(),
    v.pipe(tokenIds, v.minLength(1, "prompt must not be empty")),
    v.pipe(v.array(v.string()), v.length(1, "only one prompt per request is supported")),
    v.pipe(v.array(tokenIds), v.length(1, "only one prompt per request is supported")),
  ], "prompt must be a string, an array of token ids, or a one-element array of either"),
  ...samplingFields,
  max_tokens: integer("max_tokens", 1),
  n: onlyOneChoice,
  logprobs: integer("logprobs", 0, 20),
  response_format: responseFormat,
  stream: flag("stream"),
  stream_options: streamOptions,
}, "the request body must be a JSON object");
export type CompletionRequest = v.InferOutput<typeof CompletionRequest>;

// Embeddings ------------------------------------------------------------------

/** Inputs per embeddings request: each is a full forward pass. */
export const MAX_EMBEDDING_INPUTS = 256;
export const EmbeddingRequest = v.object({
  model: text("model"),
  input: v.union([
    v.string(),
    v.pipe(v.array(v.string()), v.minLength(1, "input must not be empty"), v.maxLength(MAX_EMBEDDING_INPUTS, `input takes at most ${MAX_EMBEDDING_INPUTS} items`)),
    v.pipe(tokenIds, v.minLength(1, "input must not be empty")),
    v.pipe(v.array(tokenIds), v.minLength(1, "input must not be empty"), v.maxLength(MAX_EMBEDDING_INPUTS, `input takes at most ${MAX_EMBEDDING_INPUTS} items`)),
  ], "input must be a string, an array of strings, an array of token ids, or an array of those"),
  encoding_format: v.nullish(v.picklist(["float", "base64"], "encoding_format must be float or base64")),
  dimensions: integer("dimensions", 1),
}, "the request body must be a JSON object");
export type EmbeddingRequest = v.InferOutput<typeof EmbeddingRequest>;

// Responses -------------------------------------------------------------------

const responseContentPart = v.looseObject({ type: text("content part type"), text: v.optional(text("content part text")) }, "a content part must be an object");
const responseInputItem = v.variant("type", [
  v.object({
    type: v.optional(v.literal("message"), "message"),
    role: v.picklist(["system", "developer", "user", "assistant"], "role must be system, developer, user or assistant"),
    content: v.union([v.string(), v.array(responseContentPart)], "content must be a string or an array of content parts"),
  }),
  v.object({ type: v.literal("function_call"), call_id: text("call_id"), name: text("name"), arguments: text("arguments") }),
  v.object({ type: v.literal("function_call_output"), call_id: text("call_id"), output: text("output") }),
], "an input item must be a message, function_call or function_call_output");
export type ResponseInputItem = v.InferOutput<typeof responseInputItem>;

const responseTool = v.object({
  type: v.literal("function", "only function tools are supported"),
  name: text("name"),
  description: v.nullish(text("description")),
  parameters: v.nullish(jsonSchemaObject),
});

export const ResponseRequest = v.object({
  model: text("model"),
  input: v.union([v.string(), v.pipe(v.array(responseInputItem), v.minLength(1, "input must not be empty"))], "input must be a string or an array of input items"),
  instructions: v.nullish(text("instructions")),
  previous_response_id: v.nullish(text("previous_response_id")),
  max_output_tokens: integer("max_output_tokens", 1),
  temperature: samplingFields.temperature,
  top_p: samplingFields.top_p,
  seed: samplingFields.seed,
  stream: flag("stream"),
  store: flag("store"),
  reasoning: v.nullish(v.object({ effort: v.nullish(reasoningEffort) })),
  text: v.nullish(v.object({
    format: v.nullish(v.variant("type", [
      v.object({ type: v.literal("text") }),
      v.object({ type: v.literal("json_object") }),
      v.object({ type: v.literal("json_schema"), name: v.nullish(v.string()), schema: jsonSchemaObject, strict: flag("strict") }),
    ], "text.format.type must be text, json_object or json_schema")),
  })),
  tools: v.nullish(v.array(responseTool, "tools must be an array")),
  tool_choice: v.nullish(v.union([
    v.picklist(["none", "auto", "required"]),
    v.object({ type: v.literal("function"), name: text("name") }),
  ], "tool_choice must be none, auto, required or {type: \"function\", name}")),
}, "the request body must be a JSON object");
export type ResponseRequest = v.InferOutput<typeof ResponseRequest>;
