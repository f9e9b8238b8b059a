// Every refusal a client can meet, against a real server: the OpenAI error
// envelope with the right status, the field named in `param`, and never a 500
// for client input. Also: auth, a full queue, and a client that hangs up.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import OpenAI from "openai";
import { post, startTestServer, waitIdle, type TestServer } from "./test-server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 64 * 1024 });
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
afterAll(() => server.close());

const chat = (body: unknown) => post(`${server.url}/v1/chat/completions`, JSON.stringify(body));
const hello = [{ role: "user", content: "hello" }];

function expectEnvelope(json: { error?: unknown }) {
  const error = json.error as Record<string, unknown>;
  expect(Object.keys(error).sort()).toEqual(["code", "message", "param", "type"]);
  expect([typeof error.message, typeof error.type, typeof error.code]).toEqual(["string", "string", "string"]);
  expect(error.param === null || typeof error.param === "string").toBe(true);
}

describe("refusals in the OpenAI error envelope", () => {
  it("answers malformed JSON with 400 invalid_json, whatever the content-type", async () => {
    for (const headers of [{ "content-type": "application/json" }, { "content-type": "text/plain" }, {} as Record<string, string>]) {
      const r = await post(`${server.url}/v1/chat/completions`, '{"model": "tiny", "messages": [', headers);
      expect(r.status).toBe(400);
      expect(r.json.error!.code).toBe("invalid_json");
      expect(r.json.error!.type).toBe("invalid_request_error");
    }
    const empty = await post(`${server.url}/v1/completions`, "");
    expect(empty.status).toBe(400);
    expect(empty.json.error!.message).toContain("empty");
  });

  it("names the wrong field in param and the message", async () => {
    const cases: [unknown, string][] = [
      [{ model: 5, messages: hello }, "model"],
      [{ model: "tiny", messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
      [{ model: "tiny", messages: [{ role: "user", content: 7 }] }, "messages[0].content"],
      [{ model: "tiny", messages: hello, temperature: "hot" }, "temperature"],
      [{ model: "tiny", messages: hello, temperature: 9 }, "temperature"],
      [{ model: "tiny", messages: hello, max_tokens: 0 }, "max_tokens"],
      [{ model: "tiny", messages: hello, top_logprobs: 50 }, "top_logprobs"],
      [{ model: "tiny", messages: hello, n: 2 }, "n"],
      [{ model: "tiny", messages: hello, stop: [1, 2] }, "stop"],
      [{ model: "tiny", messages: hello, response_format: { type: "xml" } }, "response_format.type"],
      [{ model: "tiny" }, "messages"],
      [{ model: "tiny", messages: [] }, "messages"],
    ];
    for (const [body, param] of cases) {
      const r = await chat(body);
      expect({ body, status: r.status, param: r.json.error?.param }).toEqual({ body, status: 400, param });
      expect(r.json.error!.message).toContain(param);
    }
    const n = await chat({ model: "tiny", messages: hello, n: 2 });
    expect(n.json.error!.message).toContain("only n=1 is supported");
    const missing = await chat({ messages: hello });
    expect(missing.json.error!.message).toBe("missing required field model");
    expect(missing.json.error!.code).toBe("missing_required_parameter");
  });

  it("refuses an image content part, naming the part", async () => {
    const r = await chat({ model: "tiny", messages: [{ role: "user", content: [{ type: "text", text: "see" }, { type: "image_url", image_url: { url: "http://x/y.png" } }] }] });
    expect(r.status).toBe(400);
    expect(r.json.error!.param).toBe("messages[0].content[1].type");
    expect(r.json.error!.message).toContain("image_url");
  });

  it("answers an unknown model with 404 listing the served ones", async () => {
    for (const path of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]) {
      const r = await post(`${server.url}${path}`, JSON.stringify({ model: "gpt-5", messages: hello, prompt: "x", input: "x" }));
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expect(r.json.error!.param).toBe("model");
      expect(r.json.error!.message).toContain("tiny, oss");
    }
  });

  it("answers a prompt longer than the context with 400 giving both numbers", async () => {
    const r = await post(`${server.url}/v1/completions`, JSON.stringify({ model: "tiny", prompt: "word ".repeat(1200) }));
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(/the prompt is \d+ tokens but the context holds 512/);
  });

  it("the openai client sees the same refusals as typed errors", async () => {
    const error = await server.client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.status).toBe(404);
    expect(error.param).toBe("model");
  });

  it("answers a body over the limit with 413, declared or streamed in chunks", async () => {
    const big = JSON.stringify({ model: "tiny", prompt: "x".repeat(100 * 1024) });
    const declared = await post(`${server.url}/v1/completions`, big);
    expect(declared.status).toBe(413);
    expectEnvelope(declared.json);
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("x".repeat(8 * 1024)));
        controller.close();
      },
    });
    const streamed = await fetch(`${server.url}/v1/completions`, { method: "POST", body: chunks });
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
  });

  it("answers an unknown route with 404 and a wrong method with 405 and Allow", async () => {
    const unknown = await fetch(`${server.url}/v1/nothing`);
    expect(unknown.status).toBe(404);
    expectEnvelope((await unknown.json()) as { error: unknown });
    const wrong = await fetch(`${server.url}/v1/chat/completions`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    const wrongGet = await fetch(`${server.url}/v1/models`, { method: "POST" });
    expect(wrongGet.status).toBe(405);
  });

  it("never answers 500 to a barrage of malformed bodies", async () => {
    const bodies = ["null", "[]", "42", '"text"', "{}", '{"model":null}', '{"model":"tiny","messages":null}', '{"model":"tiny","messages":[null]}',
      '{"model":"tiny","messages":[{"role":"user"}],"stream":"yes"}', '{"model":"tiny","prompt":[[1,2],[3]]}', '{"model":"tiny","prompt":[-1]}',
      '{"model":"tiny","prompt":[99999999]}', '{"model":"tiny","input":[]}', "\u0000\u0001", '{"model":"tiny","prompt":"x","stop":{"a":1}}'];
    for (const path of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]) {
      for (const body of bodies) {
        const r = await post(`${server.url}${path}`, body);
        expect({ path, body, status: r.status >= 400 && r.status < 500 }).toEqual({ path, body, status: true });
        expectEnvelope(r.json);
      }
    }
  });
});

describe("client disconnects", () => {
  it("a client that hangs up mid-stream frees its slot, and generation stops early", async () => {
    const before = await server.engine.stats();
    const abort = new AbortController();
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "tiny", prompt: "Once upon a time", max_tokens: 200, stream: true, temperature: 1, seed: 3 }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    expect((await server.engine.stats()).active).toBe(1);
    abort.abort();
    const idle = await waitIdle(server);
    expect(idle.active).toBe(0);
    const after = await server.engine.stats();
    expect(after.completionTokens - before.completionTokens).toBeLessThan(200);
  });
});

describe("auth and a full queue", () => {
  it("asks for the API key on every route but /health, with 401 in the envelope", async () => {
    const guarded = await startTestServer({ apiKey: "s3cret" });
    try {
      expect((await fetch(`${guarded.url}/health`)).status).toBe(200);
      for (const [path, method] of [["/v1/models", "GET"], ["/metrics", "GET"], ["/v1/chat/completions", "POST"], ["/v1/nothing", "GET"]] as const) {
        const none = await fetch(`${guarded.url}${path}`, { method });
        expect({ path, status: none.status }).toEqual({ path, status: 401 });
        expect(((await none.json()) as { error: { type: string } }).error.type).toBe("authentication_error");
        const wrong = await fetch(`${guarded.url}${path}`, { method, headers: { authorization: "Bearer s3cre" } });
        expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
      }
      const models = await guarded.client.models.list();
      expect(models.data.map((m) => m.id)).toEqual(["tiny", "oss"]);
      const denied = await new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: "wrong", maxRetries: 0 }).models.list().catch((e) => e);
      expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    } finally {
      await guarded.close();
    }
  });

  it("answers 429 with Retry-After when every slot is busy and the queue is full", async () => {
    const small = await startTestServer({}, { parallel: 1, maxQueue: 0 });
    try {
      const abort = new AbortController();
      const first = await fetch(`${small.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "tiny", prompt: "Once upon a time", max_tokens: 200, stream: true, temperature: 1, seed: 3 }),
        signal: abort.signal,
      });
      await first.body!.getReader().read();
      const second = await post(`${small.url}/v1/completions`, JSON.stringify({ model: "tiny", prompt: "x", max_tokens: 2 }));
      expect(second.status).toBe(429);
      expect(second.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(second.json.error!.type).toBe("rate_limit_error");
      abort.abort();
      await waitIdle(small);
      const third = await post(`${small.url}/v1/completions`, JSON.stringify({ model: "tiny", prompt: "x", max_tokens: 2 }));
      expect(third.status).toBe(200);
    } finally {
      await small.close();
    }
  });
});
