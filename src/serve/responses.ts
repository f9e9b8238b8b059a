// POST /v1/responses: OpenAI's Responses API over the same chat path.
// `input` (text or items) extends the conversation stored under
// `previous_response_id`; `instructions` apply to this request only. The
// finished conversation is stored (unless `store: false`) for the next turn.
import type { ChatMessage, ChatTool } from "../tokenizer/chat-types.ts";
import { readJson } from "./body.ts";
import { contentText } from "./chat.ts";
import type { ChatDelta } from "./chat-output.ts";
import { reject } from "./errors.ts";
import { checkedSchema, collectJob, findModel, finishReason, generationHeaders, newJob, samplingFrom, startJob, timingHeaders, tokenBudget, type DoneEvent, type ServeContext } from "./job.ts";
import { planChat, type ToolChoice } from "./prompt.ts";
import { ResponseOutputBuilder, type OutputItem, type ResponseEvent } from "./response-events.ts";
import type { ResponseStore } from "./response-store.ts";
import { ResponseRequest, type ResponseInputItem } from "./schemas.ts";
import { sseEvent, sseResponse } from "./sse.ts";

/** Input items as chat messages; consecutive function calls are one assistant turn. */
export function inputMessages(input: ResponseRequest["input"]): ChatMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const messages: ChatMessage[] = [];
  input.forEach((item: ResponseInputItem, i) => {
    if (item.type === "function_call") {
      const call = { id: item.call_id, type: "function" as const, function: { name: item.name, arguments: item.arguments } };
      const last = messages[messages.length - 1];
      if (last?.role === "assistant" && last.tool_calls) last.tool_calls.push(call);
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    } else if (item.type === "function_call_output") {
      messages.push({ role: "tool", content: item.output, tool_call_id: item.call_id });
    } else {
      messages.push({ role: item.role, content: contentText(item.content, `input[${i}].content`) });
    }
  });
  return messages;
}

/** The output items as the assistant turn stored for the next request. */
function historyMessage(items: OutputItem[]): ChatMessage {
  let content = "", reasoning = "";
  const calls: NonNullable<ChatMessage["tool_calls"]> = [];
  for (const item of items) {
    if (item.type === "message") content += item.content.map((c) => c.text).join("");
    else if (item.type === "reasoning") reasoning += item.content.map((c) => c.text).join("");
    else calls.push({ id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } });
  }
  return {
    role: "assistant",
    content: content === "" && calls.length > 0 ? null : content,
    ...(reasoning ? { reasoning_content: reasoning } : {}),
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  };
}

export async function responses(request: Request, context: ServeContext, store: ResponseStore): Promise<Response> {
  const arrivedAt = performance.now();
  const body = await readJson(request, ResponseRequest, context.maxBodyBytes);
  const model = findModel(context.engine, body.model);
  let history: ChatMessage[] = [];
  if (body.previous_response_id != null) {
    const previous = store.get(body.previous_response_id);
    if (!previous) reject(404, "previous_response_not_found", `no stored response "${body.previous_response_id}" (responses are kept in memory, least recently used dropped first)`, "previous_response_id");
    history = previous.history;
  }
  const conversation = [...history, ...inputMessages(body.input)];
  const tools: ChatTool[] = (body.tools ?? []).map((t) => ({
    type: "function",
    function: { name: t.name, ...(t.description != null ? { description: t.description } : {}), ...(t.parameters != null ? { parameters: t.parameters } : {}) },
  }));
  const choice = body.tool_choice;
  const toolChoice: ToolChoice = choice == null ? "auto" : typeof choice === "string" ? choice : { name: choice.name };
  const format = body.text?.format;
  const plan = planChat(model, {
    messages: body.instructions != null ? [{ role: "system", content: body.instructions }, ...conversation] : conversation,
    tools,
    toolChoice,
    reasoningEffort: body.reasoning?.effort ?? context.reasoningEffort,
    constraint: !format || format.type === "text" ? undefined : format.type === "json_object" ? { kind: "json-object" } : checkedSchema(format.schema, "text.format.schema"),
  });
  const job = newJob(context, {
    model: model.id,
    prompt: { text: plan.prompt },
    maxTokens: tokenBudget(model, body.max_output_tokens),
    sampling: samplingFrom({ temperature: body.temperature, top_p: body.top_p, seed: body.seed }),
    stop: [],
    logprobs: false,
    topLogprobs: 0,
    constraint: plan.constraint,
  });
  const running = await startJob(context, job, arrivedAt);
  const id = context.nextId("resp");
  const createdAt = Math.floor(Date.now() / 1000);
  const output = new ResponseOutputBuilder();

  const response = (status: "in_progress" | "completed" | "incomplete", done?: DoneEvent) => ({
    id, object: "response", created_at: createdAt, status, model: model.id,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    previous_response_id: body.previous_response_id ?? null,
    temperature: body.temperature ?? null,
    top_p: body.top_p ?? null,
    tools: body.tools ?? [],
    tool_choice: body.tool_choice ?? "auto",
    parallel_tool_calls: true,
    text: { format: format ?? { type: "text" } },
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store !== false,
    metadata: {},
    output: structuredClone(output.items),
    usage: done ? {
      input_tokens: done.promptTokens,
      input_tokens_details: { cached_tokens: done.cachedTokens },
      output_tokens: done.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: done.promptTokens + done.completionTokens,
    } : null,
  });
  const finished = (done: DoneEvent) => {
    if (body.store !== false) store.put({ id, model: model.id, history: [...conversation, historyMessage(output.items)] });
    return response(finishReason(done) === "length" ? "incomplete" : "completed", done);
  };
  const headers = generationHeaders(model, running.started);

  if (body.stream) {
    let sequence = 0;
    const frame = (event: ResponseEvent) => sseEvent(event.type, { ...event, sequence_number: sequence++ });
    async function* events() {
      yield frame({ type: "response.created", response: response("in_progress") });
      yield frame({ type: "response.in_progress", response: response("in_progress") });
      const emit = function* (deltas: ChatDelta[]) {
        for (const event of output.add(deltas)) yield frame(event);
      };
      for await (const event of running.events()) {
        if (event.kind === "token") {
          yield* emit(plan.output.push(event.text));
          continue;
        }
        yield* emit(plan.output.finish());
        for (const closing of output.finish()) yield frame(closing);
        const final = finished(event);
        yield frame({ type: final.status === "incomplete" ? "response.incomplete" : "response.completed", response: final });
      }
    }
    return sseResponse(events(), { signal: request.signal, onCancel: () => running.cancel(), headers });
  }

  const { tokens, done } = await collectJob(running, request.signal);
  for (const event of tokens) output.add(plan.output.push(event.text));
  output.add(plan.output.finish());
  output.finish();
  return Response.json(finished(done), { headers: { ...headers, ...timingHeaders(done) } });
}
