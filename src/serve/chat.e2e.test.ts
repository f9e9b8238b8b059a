// /v1/chat/completions through the official openai client against a real
// server: whole and streamed answers agree, usage and logprobs add up, JSON
// output validates, tool calls come back as tool_calls, and gpt-oss output
// is split by harmony channels exactly as the parser reads the raw text.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { compileJsonSchema } from "../runtime/constraint/json-schema.ts";
import { schemaErrors } from "../runtime/constraint/schema-validate.ts";
import { renderHarmony } from "../tokenizer/harmony.ts";
import { HarmonyParser } from "../tokenizer/harmony-parser.ts";
import { startTestServer, type TestServer } from "./test-server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
afterAll(() => server.close());

const user = (content: string) => [{ role: "user" as const, content }];

const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer" } }, required: ["city", "days"], additionalProperties: false },
  },
};

describe("chat completions", () => {
  it("answers with one assistant message, usage, and psionic headers", async () => {
    const { data, response } = await server.client.chat.completions
      .create({ model: "tiny", messages: user("Tell me a story"), max_tokens: 6, temperature: 0 })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe("tiny");
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]!.message.role).toBe("assistant");
    expect(typeof data.choices[0]!.message.content).toBe("string");
    expect(["stop", "length"]).toContain(data.choices[0]!.finish_reason);
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(data.usage!.completion_tokens).toBeLessThanOrEqual(6);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    const model = server.engine.models.find((m) => m.id === "tiny")!;
    expect(response.headers.get("x-psionic-backend")).toBe("cpu");
    expect(response.headers.get("x-psionic-model-digest")).toBe(model.digest);
    expect(["hit", "partial", "miss"]).toContain(response.headers.get("x-psionic-prefix-cache")!);
    expect(Number(response.headers.get("x-psionic-prompt-ms"))).toBeGreaterThanOrEqual(0);
    expect(Number(response.headers.get("x-psionic-decode-ms"))).toBeGreaterThanOrEqual(0);
  });

  it("reports a prefix-cache hit with the reused token count when the same prompt comes again", async () => {
    const request = { model: "tiny", messages: user("The same words twice over"), max_tokens: 2, temperature: 0 };
    await server.client.chat.completions.create(request);
    const { data, response } = await server.client.chat.completions.create(request).withResponse();
    expect(response.headers.get("x-psionic-prefix-cache")).toBe("hit");
    expect(Number(response.headers.get("x-psionic-cached-tokens"))).toBe(data.usage!.prompt_tokens);
  });

  it("streams the same text it answers whole, then a usage chunk and [DONE]", async () => {
    const request = { model: "tiny", messages: user("Once upon a time"), max_tokens: 12, temperature: 0 };
    const whole = await server.client.chat.completions.create(request);
    const stream = await server.client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: unknown;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
    }
    expect(text).toBe(whole.choices[0]!.message.content!);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    const { prompt_tokens, completion_tokens, total_tokens } = whole.usage!;
    // The second run finds the whole prompt in the prefix cache.
    expect(usage).toEqual({ prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details: { cached_tokens: prompt_tokens } });
    expect(chunks).toBeGreaterThan(2);
  });

  it("gives one logprob entry per generated token, with the asked number of alternatives", async () => {
    const r = await server.client.chat.completions.create({ model: "tiny", messages: user("Numbers"), max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
    const entries = r.choices[0]!.logprobs!.content!;
    expect(entries).toHaveLength(r.usage!.completion_tokens);
    for (const entry of entries) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(entry.logprob).toBeCloseTo(entry.top_logprobs[0]!.logprob, 5);
    }
  });

  it("constrains json_schema output so it parses and validates", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer" } }, required: ["name", "age"], additionalProperties: false };
    for (const model of ["tiny", "oss"]) {
      const r = await server.client.chat.completions.create({
        model, messages: user("A person as JSON"), max_tokens: 60, temperature: 0.8, seed: 11,
        response_format: { type: "json_schema", json_schema: { name: "person", schema } },
      });
      const value = JSON.parse(r.choices[0]!.message.content!);
      expect({ model, errors: schemaErrors(value, compileJsonSchema(schema)) }).toEqual({ model, errors: [] });
    }
  }, 20_000);

  it("refuses a json_schema the constraint compiler cannot take, naming the field", async () => {
    const error = await server.client.chat.completions.create({
      model: "tiny", messages: user("x"), response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "object", properties: 5 } as never } },
    }).catch((e) => e);
    expect(error.status).toBe(400);
    expect(error.param).toBe("response_format.json_schema.schema");
  });
});

describe("tool calls", () => {
  for (const model of ["tiny", "oss"]) {
    it(`${model}: a required tool call comes back as tool_calls with arguments that validate`, async () => {
      const r = await server.client.chat.completions.create({
        model, messages: user("Weather in Paris?"), max_tokens: 60, temperature: 0.8, seed: 2, tools: [WEATHER_TOOL], tool_choice: "required",
      });
      const choice = r.choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      const call = choice.message.tool_calls![0]!;
      expect(call.type).toBe("function");
      expect(call.id).toMatch(/^call_/);
      if (call.type !== "function") throw new Error("not a function call");
      expect(call.function.name).toBe("get_weather");
      const args = JSON.parse(call.function.arguments);
      expect(schemaErrors(args, compileJsonSchema(WEATHER_TOOL.function.parameters))).toEqual([]);
    }, 20_000);

    it(`${model}: a streamed tool call arrives as tool_call deltas that assemble to valid arguments`, async () => {
      const stream = await server.client.chat.completions.create({
        model, messages: user("Weather?"), max_tokens: 60, temperature: 0.8, seed: 4, tools: [WEATHER_TOOL],
        tool_choice: { type: "function", function: { name: "get_weather" } }, stream: true,
      });
      let name = "", args = "", finish: string | null = null;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue;
        for (const call of choice.delta.tool_calls ?? []) {
          name += call.function?.name ?? "";
          args += call.function?.arguments ?? "";
        }
        finish = choice.finish_reason ?? finish;
      }
      expect(name).toBe("get_weather");
      expect(finish).toBe("tool_calls");
      expect(schemaErrors(JSON.parse(args), compileJsonSchema(WEATHER_TOOL.function.parameters))).toEqual([]);
    }, 20_000);
  }

  it("refuses a tool_choice naming a tool the request does not offer", async () => {
    const error = await server.client.chat.completions.create({
      model: "tiny", messages: user("x"), tools: [WEATHER_TOOL], tool_choice: { type: "function", function: { name: "launch" } },
    }).catch((e) => e);
    expect(error.status).toBe(400);
    expect(error.param).toBe("tool_choice");
  });
});

describe("gpt-oss harmony", () => {
  it("splits output into reasoning_content and content exactly as the harmony parser reads the raw completion", async () => {
    const messages = user("Why is the sky blue?");
    const settings = { max_tokens: 24, temperature: 0 };
    const chat = await server.client.chat.completions.create({ model: "oss", messages, reasoning_effort: "low", ...settings });
    const prompt = renderHarmony(messages, { reasoningEffort: "low" });
    const raw = await server.client.completions.create({ model: "oss", prompt, ...settings });
    const parser = new HarmonyParser();
    parser.push(raw.choices[0]!.text);
    const expected = parser.finish();
    const message = chat.choices[0]!.message as { content: string | null; reasoning_content?: string };
    expect(message.content ?? "").toBe(expected.content);
    expect(message.reasoning_content ?? "").toBe(expected.reasoning);
    expect(chat.usage!.prompt_tokens).toBe(raw.usage!.prompt_tokens);
  });

  it("renders the request's reasoning_effort, else the server's default, into the system message", async () => {
    const low = await server.client.chat.completions.create({ model: "oss", messages: user("Hi"), max_tokens: 1, reasoning_effort: "low" });
    const byDefault = await server.client.chat.completions.create({ model: "oss", messages: user("Hi"), max_tokens: 1 });
    const raw = async (effort: "low" | "medium") =>
      (await server.client.completions.create({ model: "oss", prompt: renderHarmony(user("Hi"), { reasoningEffort: effort }), max_tokens: 1 })).usage!.prompt_tokens;
    expect(low.usage!.prompt_tokens).toBe(await raw("low"));
    expect(byDefault.usage!.prompt_tokens).toBe(await raw("medium"));
  });
});
