// POST /v1/completions: a raw prompt (text, or token ids) continued as it
// is, no chat template. Streams as `text_completion` chunks when asked.
import { readJson } from "./body.ts";
import { reject } from "./errors.ts";
import {
  collectJob, constraintFor, finishReason, findModel, generationHeaders, newJob, samplingFrom, startJob, stopStrings, timingHeaders, tokenBudget, usageOf,
  type ServeContext,
} from "./job.ts";
import { completionLogprobs } from "./logprobs.ts";
import { CompletionRequest } from "./schemas.ts";
import { SSE_DONE, sseData, sseResponse } from "./sse.ts";

function promptOf(prompt: CompletionRequest["prompt"]): { text: string } | { tokens: number[] } {
  if (typeof prompt === "string") return { text: prompt };
  const first = prompt[0];
  if (typeof first === "number") return { tokens: prompt as number[] };
  if (typeof first === "string") return { text: first };
  return { tokens: first as number[] };
}

export async function completions(request: Request, context: ServeContext): Promise<Response> {
  const arrivedAt = performance.now();
  const body = await readJson(request, CompletionRequest, context.maxBodyBytes);
  const model = findModel(context.engine, body.model);
  const prompt = promptOf(body.prompt);
  if ("tokens" in prompt) {
    const bad = prompt.tokens.find((t) => t >= model.vocabSize);
    if (bad !== undefined) reject(400, "invalid_token", `prompt holds token id ${bad}, outside the vocabulary of ${model.vocabSize}`, "prompt");
    if (prompt.tokens.length === 0) reject(400, "empty_prompt", "prompt must not be empty", "prompt");
  }
  const topLogprobs = body.logprobs ?? 0;
  const job = newJob(context, {
    model: model.id,
    prompt,
    // OpenAI's default for this endpoint is 16 tokens.
    maxTokens: tokenBudget(model, body.max_tokens ?? 16),
    sampling: samplingFrom(body),
    stop: stopStrings(body.stop),
    logprobs: body.logprobs != null,
    topLogprobs,
    constraint: constraintFor(body.response_format),
  });
  const running = await startJob(context, job, arrivedAt);
  const id = context.nextId("cmpl");
  const created = Math.floor(Date.now() / 1000);
  const headers = generationHeaders(model, running.started);
  const chunk = (choices: unknown[], usage?: unknown) => ({ id, object: "text_completion", created, model: model.id, choices, ...(usage === undefined ? {} : { usage }) });

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage === true;
    async function* events() {
      let offset = 0;
      for await (const event of running.events()) {
        if (event.kind === "token") {
          if (event.text === "" && !job.logprobs) continue;
          const logprobs = job.logprobs ? completionLogprobs([event], offset) : null;
          offset += event.text.length;
          yield sseData(chunk([{ text: event.text, index: 0, logprobs, finish_reason: null }], includeUsage ? null : undefined));
          continue;
        }
        yield sseData(chunk([{ text: "", index: 0, logprobs: null, finish_reason: finishReason(event) }], includeUsage ? null : undefined));
        if (includeUsage) yield sseData(chunk([], usageOf(event)));
      }
      yield SSE_DONE;
    }
    return sseResponse(events(), { signal: request.signal, onCancel: () => running.cancel(), headers });
  }

  const { text, tokens, done } = await collectJob(running, request.signal);
  return Response.json(chunk(
    [{ text, index: 0, logprobs: job.logprobs ? completionLogprobs(tokens) : null, finish_reason: finishReason(done) }],
    usageOf(done),
  ), { headers: { ...headers, ...timingHeaders(done) } });
}
