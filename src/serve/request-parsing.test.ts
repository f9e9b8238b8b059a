// Request bodies: size limits, JSON errors and schema issues mapped to the
// OpenAI error fields (status, code, param naming the field).
import { describe, expect, it } from "bun:test";
import { fieldPath, readJson } from "./body.ts";
import { ApiError } from "./errors.ts";
import { ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ResponseRequest } from "./schemas.ts";
import * as v from "valibot";

const request = (body: string | ReadableStream, headers: Record<string, string> = {}) =>
  new Request("http://x/v1/chat/completions", { method: "POST", body, headers });

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(() => undefined, (e) => e);
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe("request bodies", () => {
  it("parses a valid chat request, accepting null for optional fields and ignoring unknown ones", async () => {
    const body = await readJson(request(JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], temperature: null, user: "me" })), ChatCompletionRequest, 1000);
    expect(body.model).toBe("m");
    expect(body.temperature).toBeNull();
    expect("user" in body).toBe(false);
  });

  it("refuses a body over the limit with 413 before reading it all", async () => {
    const declared = await refusal(readJson(request("x".repeat(20), { "content-length": "20" }), ChatCompletionRequest, 10));
    expect([declared.status, declared.code]).toEqual([413, "body_too_large"]);
    let pulled = 0;
    const endless = new ReadableStream({ pull(c) { pulled++; c.enqueue(new Uint8Array(1000)); } });
    const streamed = await refusal(readJson(request(endless), ChatCompletionRequest, 5000));
    expect(streamed.status).toBe(413);
    expect(pulled).toBeLessThan(10);
  });

  it("refuses malformed JSON with 400 invalid_json", async () => {
    const e = await refusal(readJson(request("{nope"), ChatCompletionRequest, 1000));
    expect([e.status, e.code, e.param]).toEqual([400, "invalid_json", null]);
    expect(e.toBody().error.type).toBe("invalid_request_error");
  });

  it("names nested fields the way OpenAI does: messages[0].content", async () => {
    const e = await refusal(readJson(request(JSON.stringify({ model: "m", messages: [{ role: "user", content: 3 }] })), ChatCompletionRequest, 1000));
    expect(e.param).toBe("messages[0].content");
    expect(e.message).toStartWith("messages[0].content: ");
  });

  it("says which required field is missing", async () => {
    const e = await refusal(readJson(request(JSON.stringify({ messages: [] })), ChatCompletionRequest, 1000));
    expect([e.code, e.param, e.message]).toEqual(["missing_required_parameter", "model", "missing required field model"]);
  });

  it("maps a valibot issue path to a field path", () => {
    const result = v.safeParse(v.object({ a: v.array(v.object({ b: v.string() })) }), { a: [{ b: "x" }, { b: 1 }] });
    expect(result.success).toBe(false);
    expect(fieldPath(result.issues![0])).toBe("a[1].b");
  });

  it("accepts each endpoint's documented input shapes and refuses several prompts at once", () => {
    for (const prompt of ["text", [1, 2], ["text"], [[1, 2]]]) expect(v.safeParse(CompletionRequest, { model: "m", prompt }).success).toBe(true);
    expect(v.safeParse(CompletionRequest, { model: "m", prompt: ["a", "b"] }).success).toBe(false);
    for (const input of ["a", ["a", "b"], [1, 2], [[1], [2]]]) expect(v.safeParse(EmbeddingRequest, { model: "m", input }).success).toBe(true);
    expect(v.safeParse(EmbeddingRequest, { model: "m", input: [] }).success).toBe(false);
    expect(v.safeParse(ResponseRequest, { model: "m", input: [{ role: "user", content: "x" }, { type: "function_call_output", call_id: "c", output: "{}" }] }).success).toBe(true);
    expect(v.safeParse(ResponseRequest, { model: "m", input: [{ type: "web_search_call" }] }).success).toBe(false);
  });
});
