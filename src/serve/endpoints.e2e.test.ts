// The other endpoints through the official openai client against a real
// server: completions (text and token ids, whole and streamed), embeddings
// (float and base64), responses (with previous_response_id and streaming
// events), models, health and metrics.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { post, startTestServer, type TestServer } from "./test-server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ gpuLayers: 7 });
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
afterAll(() => server.close());

describe("completions", () => {
  it("continues text, and streams the same text with a usage chunk", async () => {
    const request = { model: "tiny", prompt: "The cat sat on", max_tokens: 10, temperature: 0 };
    const whole = await server.client.completions.create(request);
    expect(whole.object).toBe("text_completion");
    expect(whole.usage!.completion_tokens).toBeLessThanOrEqual(10);
    let text = "";
    let usage: unknown;
    for await (const chunk of await server.client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect((usage as { completion_tokens: number }).completion_tokens).toBe(whole.usage!.completion_tokens);
  });

  it("takes a prompt as token ids and reports per-token logprobs", async () => {
    const r = await server.client.completions.create({ model: "tiny", prompt: [10, 20, 30, 40], max_tokens: 4, temperature: 0, logprobs: 2 });
    expect(r.usage!.prompt_tokens).toBe(4);
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(r.usage!.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(r.usage!.completion_tokens);
    for (const alternatives of lp.top_logprobs!) expect(Object.keys(alternatives).length).toBeLessThanOrEqual(2);
  });

  it("stops at a stop string and leaves it out", async () => {
    const free = await server.client.completions.create({ model: "tiny", prompt: "a b c", max_tokens: 12, temperature: 0 });
    const text = free.choices[0]!.text;
    expect(text.length).toBeGreaterThan(5);
    const stop = text.slice(3, 5);
    const stopped = await server.client.completions.create({ model: "tiny", prompt: "a b c", max_tokens: 12, temperature: 0, stop });
    expect(stopped.choices[0]!.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
  });
});

describe("embeddings", () => {
  it("gives one unit-length vector per input, the same through base64 and float", async () => {
    const viaClient = await server.client.embeddings.create({ model: "tiny", input: ["hello world", "goodbye"] });
    expect(viaClient.data).toHaveLength(2);
    const model = server.engine.models.find((m) => m.id === "tiny")!;
    for (const item of viaClient.data) {
      expect(item.embedding).toHaveLength(model.embeddingLength);
      expect(Math.hypot(...item.embedding)).toBeCloseTo(1, 4);
    }
    const asFloat = await server.client.embeddings.create({ model: "tiny", input: ["hello world", "goodbye"], encoding_format: "float" });
    expect(asFloat.data[0]!.embedding.map((x) => Math.fround(x))).toEqual(viaClient.data[0]!.embedding);
    expect(asFloat.data[0]!.embedding).not.toEqual(asFloat.data[1]!.embedding);
    expect(viaClient.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("takes token ids and refuses ids outside the vocabulary", async () => {
    const r = await server.client.embeddings.create({ model: "tiny", input: [[1, 2, 3]], encoding_format: "float" });
    expect(r.usage.prompt_tokens).toBe(3);
    const bad = await post(`${server.url}/v1/embeddings`, JSON.stringify({ model: "tiny", input: [5, 1 << 20] }));
    expect(bad.status).toBe(400);
    expect(bad.json.error!.param).toBe("input");
  });
});

describe("responses", () => {
  it("answers input text as an output message and continues a stored conversation with previous_response_id", async () => {
    const first = await server.client.responses.create({ model: "tiny", input: "Name a color", instructions: "Be brief", max_output_tokens: 4, temperature: 0 });
    expect(first.object).toBe("response");
    expect(["completed", "incomplete"]).toContain(first.status!);
    const message = first.output.find((o) => o.type === "message");
    expect(message).toBeDefined();
    expect(typeof first.output_text).toBe("string");
    const second = await server.client.responses.create({ model: "tiny", input: "Another", previous_response_id: first.id, max_output_tokens: 4, temperature: 0 });
    expect(second.previous_response_id).toBe(first.id);
    // The follow-up's prompt holds the whole first exchange, so it is longer than the first's.
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    const unknown = await server.client.responses.create({ model: "tiny", input: "x", previous_response_id: "resp_missing" }).catch((e) => e);
    expect(unknown.status).toBe(404);
    expect(unknown.param).toBe("previous_response_id");
  });

  it("returns a forced function call as a function_call item, and takes its output back as the next input", async () => {
    const tool = { type: "function" as const, name: "lookup", strict: false, parameters: { type: "object", properties: { q: { type: "string", maxLength: 8 } }, required: ["q"], additionalProperties: false } };
    const first = await server.client.responses.create({ model: "tiny", input: "Look it up", tools: [tool], tool_choice: "required", max_output_tokens: 40, temperature: 0 });
    const call = first.output.find((o) => o.type === "function_call");
    if (call?.type !== "function_call") throw new Error(`no function_call item in ${JSON.stringify(first.output)}`);
    expect(call.name).toBe("lookup");
    expect(typeof JSON.parse(call.arguments).q).toBe("string");
    const second = await server.client.responses.create({
      model: "tiny", previous_response_id: first.id, tools: [tool], max_output_tokens: 4, temperature: 0,
      input: [{ type: "function_call_output", call_id: call.call_id, output: '{"answer":42}' }],
    });
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
  });

  it("streams response.created, output_text deltas and response.completed, matching the whole answer", async () => {
    const request = { model: "tiny", input: [{ role: "user" as const, content: "Say something" }], max_output_tokens: 6, temperature: 0 };
    const whole = await server.client.responses.create(request);
    const types: string[] = [];
    let text = "";
    let completed: { output_text?: string; status?: string } | undefined;
    for await (const event of await server.client.responses.create({ ...request, stream: true })) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed" || event.type === "response.incomplete") completed = event.response;
    }
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.output_item.added");
    expect(types).toContain("response.output_item.done");
    expect(["response.completed", "response.incomplete"]).toContain(types[types.length - 1]!);
    expect(text).toBe(whole.output_text);
    expect(completed!.status).toBe(whole.status);
  });
});

describe("models, health and metrics", () => {
  it("lists every model in OpenAI's shape with architecture, quant, context, backend, digest and -ngl", async () => {
    const list = await server.client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["tiny", "oss"]);
    const tiny = list.data[0] as unknown as Record<string, unknown>;
    expect(tiny).toMatchObject({ object: "model", owned_by: "psionic", architecture: "llama", quant: "Q8_0", context: 512, backend: "cpu", gpu_layers: 7 });
    expect(tiny.digest).toMatch(/^[0-9a-f]{64}$/);
    expect((list.data[1] as unknown as Record<string, unknown>).architecture).toBe("gpt-oss");
  });

  it("answers /health without auth", async () => {
    const r = await fetch(`${server.url}/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok", models: ["tiny", "oss"] });
  });

  it("exposes request counts, token totals, latency histograms and prefix-cache outcomes in Prometheus text", async () => {
    await server.client.completions.create({ model: "tiny", prompt: "metrics please", max_tokens: 3 });
    await post(`${server.url}/v1/completions`, "{broken");
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^psionic_requests_total\{route="\/v1\/completions",status="200"\} \d+$/m);
    expect(text).toMatch(/^psionic_requests_total\{route="\/v1\/completions",status="400"\} \d+$/m);
    const stats = await server.engine.stats();
    expect(text).toContain(`psionic_completion_tokens_total ${stats.completionTokens}`);
    expect(text).toMatch(/^psionic_time_to_first_token_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^psionic_inter_token_latency_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect(text).toMatch(/^psionic_prefix_cache_requests_total\{outcome="miss"\} [1-9]\d*$/m);
    expect(text).toContain("# TYPE psionic_queue_depth gauge");
    expect(text).toMatch(/^psionic_kv_capacity_tokens [1-9]\d*$/m);
  });
});
