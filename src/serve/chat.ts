// POST /v1/chat/completions: messages rendered to a prompt (prompt.ts), the
// job run by the engine, its text read back as reasoning / content / tool
// calls (chat-output.ts), answered whole or streamed as chunks.
import type { ChatMessage, ChatTool } from "../tokenizer/chat-types.ts";
import { readJson } from "./body.ts";
import { MessageBuilder, type ChatDelta, type ChatMessageResult } from "./chat-output.ts";
import { reject } from "./errors.ts";
import {
  collectJob, constraintFor, finishReason, findModel, generationHeaders, newJob, samplingFrom, startJob, stopStrings, timingHeaders, tokenBudget, usageOf,
  type DoneEvent, type ServeContext,
} from "./job.ts";
import { chatLogprob, type ChatLogprob } from "./logprobs.ts";
import { planChat, type ToolChoice } from "./prompt.ts";
import { ChatCompletionRequest, type ChatMessageInput, type ContentPart, type ToolChoiceInput } from "./schemas.ts";
import { SSE_DONE, sseData, sseResponse } from "./sse.ts";

/** Content parts flattened to text; image and audio parts are refused, naming the part. */
export function contentText(content: string | ContentPart[] | null | undefined, where: string): string | null {
  if (content === null || content === undefined) return null;
  if (typeof content === "string") return content;
  return content.map((part, j) => {
    if (part.type !== "text" && part.type !== "input_text" && part.type !== "output_text") {
      reject(400, "unsupported_content", `${where}[${j}] is a "${part.type}" part; psionic serves text models and takes only text parts`, `${where}[${j}].type`);
    }
    if (part.text === undefined) reject(400, "missing_required_parameter", `${where}[${j}] has no text`, `${where}[${j}].text`);
    return part.text;
  }).join("");
}

export function chatMessages(messages: ChatMessageInput[]): ChatMessage[] {
  return messages.map((m, i) => ({
    role: m.role,
    content: contentText(m.content, `messages[${i}].content`),
    ...(m.name != null ? { name: m.name } : {}),
    ...(m.tool_calls != null ? { tool_calls: m.tool_calls } : {}),
    ...(m.tool_call_id != null ? { tool_call_id: m.tool_call_id } : {}),
    ...(m.reasoning_content != null ? { reasoning_content: m.reasoning_content } : {}),
  }));
}

export function toolChoiceOf(choice: ToolChoiceInput): ToolChoice {
  if (choice === null || choice === undefined) return "auto";
  return typeof choice === "string" ? choice : { name: choice.function.name };
}

/** The assistant message of a non-streaming response. */
function assistantMessage(result: ChatMessageResult) {
  return {
    role: "assistant" as const,
    content: result.content === "" && result.toolCalls.length > 0 ? null : result.content,
    ...(result.reasoning !== "" ? { reasoning_content: result.reasoning } : {}),
    ...(result.toolCalls.length > 0
      ? { tool_calls: result.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })) }
      : {}),
  };
}

/** A streaming delta in OpenAI's shape. */
function deltaOf(d: ChatDelta) {
  switch (d.kind) {
    case "content": return { content: d.text };
    case "reasoning": return { reasoning_content: d.text };
    case "tool-call-start": return { tool_calls: [{ index: d.index, id: d.id, type: "function", function: { name: d.name, arguments: "" } }] };
    case "tool-call-arguments": return { tool_calls: [{ index: d.index, function: { arguments: d.text } }] };
  }
}

function finishOf(done: DoneEvent, result: ChatMessageResult): "stop" | "length" | "tool_calls" {
  return result.toolCalls.length > 0 ? "tool_calls" : finishReason(done);
}

export async function chatCompletions(request: Request, context: ServeContext): Promise<Response> {
  const arrivedAt = performance.now();
  const body = await readJson(request, ChatCompletionRequest, context.maxBodyBytes);
  const model = findModel(context.engine, body.model);
  const tools: ChatTool[] = (body.tools ?? []).map((t) => ({
    type: "function",
    function: { name: t.function.name, ...(t.function.description != null ? { description: t.function.description } : {}), ...(t.function.parameters != null ? { parameters: t.function.parameters } : {}) },
  }));
  const plan = planChat(model, {
    messages: chatMessages(body.messages),
    tools,
    toolChoice: toolChoiceOf(body.tool_choice),
    reasoningEffort: body.reasoning_effort ?? context.reasoningEffort,
    constraint: constraintFor(body.response_format),
  });
  const logprobs = body.logprobs === true;
  const job = newJob(context, {
    model: model.id,
    prompt: { text: plan.prompt },
    maxTokens: tokenBudget(model, body.max_completion_tokens ?? body.max_tokens),
    sampling: samplingFrom(body),
    stop: stopStrings(body.stop),
    logprobs,
    topLogprobs: logprobs ? (body.top_logprobs ?? 0) : 0,
    constraint: plan.constraint,
  });
  const running = await startJob(context, job, arrivedAt);
  const id = context.nextId("chatcmpl");
  const created = Math.floor(Date.now() / 1000);
  const headers = generationHeaders(model, running.started);
  const builder = new MessageBuilder();

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: object, finish: string | null, lp: ChatLogprob[] | null) => sseData({
      id, object: "chat.completion.chunk", created, model: model.id,
      choices: [{ index: 0, delta, logprobs: lp ? { content: lp } : null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    async function* events() {
      yield chunk({ role: "assistant", content: "" }, null, null);
      // Logprobs of tokens whose text is still held back ride on the next chunk that leaves.
      let pendingLogprobs: ChatLogprob[] = [];
      const send = function* (deltas: ChatDelta[]) {
        builder.add(deltas);
        for (const d of deltas) {
          yield chunk(deltaOf(d), null, logprobs ? pendingLogprobs : null);
          pendingLogprobs = [];
        }
      };
      for await (const event of running.events()) {
        if (event.kind === "token") {
          if (logprobs) pendingLogprobs.push(chatLogprob(event));
          yield* send(plan.output.push(event.text));
          continue;
        }
        yield* send(plan.output.finish());
        yield chunk({}, finishOf(event, builder.result), logprobs && pendingLogprobs.length > 0 ? pendingLogprobs : null);
        if (includeUsage) yield sseData({ id, object: "chat.completion.chunk", created, model: model.id, choices: [], usage: usageOf(event) });
      }
      yield SSE_DONE;
    }
    return sseResponse(events(), { signal: request.signal, onCancel: () => running.cancel(), headers });
  }

  const { tokens, done } = await collectJob(running, request.signal);
  for (const event of tokens) builder.add(plan.output.push(event.text));
  builder.add(plan.output.finish());
  return Response.json({
    id, object: "chat.completion", created, model: model.id,
    choices: [{
      index: 0,
      message: assistantMessage(builder.result),
      logprobs: logprobs ? { content: tokens.map(chatLogprob) } : null,
      finish_reason: finishOf(done, builder.result),
    }],
    usage: usageOf(done),
  }, { headers: { ...headers, ...timingHeaders(done) } });
}
