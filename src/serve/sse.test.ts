// SSE framing and the pull-driven stream: events leave one by one as they
// are produced, a cancelled stream stops its producer, and a failure after
// the headers travels as a final error event.
import { describe, expect, it } from "bun:test";
import { ApiError } from "./errors.ts";
import { SSE_DONE, sseData, sseEvent, sseResponse } from "./sse.ts";

describe("server-sent events", () => {
  it("frames data and named events the way OpenAI clients parse them", () => {
    expect(sseData({ a: 1 })).toBe('data: {"a":1}\n\n');
    expect(sseEvent("response.created", { b: "x\ny" })).toBe('event: response.created\ndata: {"b":"x\\ny"}\n\n');
    expect(SSE_DONE).toBe("data: [DONE]\n\n");
  });

  it("sends each event as soon as it is produced, not when the producer ends", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* produce() {
      yield sseData(1);
      await gate;
      yield sseData(2);
    }
    const response = sseResponse(produce(), { onCancel: () => undefined });
    expect(response.headers.get("content-type")).toStartWith("text/event-stream");
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("data: 1\n\n");
    release();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("data: 2\n\n");
    expect((await reader.read()).done).toBe(true);
  });

  it("runs onCancel once and stops the producer when the client cancels or the request aborts", async () => {
    for (const how of ["cancel", "abort"] as const) {
      let cancelled = 0;
      let produced = 0;
      async function* produce() {
        for (;;) {
          produced++;
          yield sseData(produced);
          await Bun.sleep(1);
        }
      }
      const abort = new AbortController();
      const response = sseResponse(produce(), { signal: abort.signal, onCancel: () => cancelled++ });
      const reader = response.body!.getReader();
      await reader.read();
      if (how === "cancel") await reader.cancel();
      else abort.abort();
      await Bun.sleep(20);
      const after = produced;
      await Bun.sleep(20);
      expect({ how, cancelled, stillProducing: produced > after }).toEqual({ how, cancelled: 1, stillProducing: false });
    }
  });

  it("ends with an error event in the OpenAI envelope when the producer fails mid-stream", async () => {
    async function* produce() {
      yield sseData("ok");
      throw new ApiError(503, "shutting-down", "the server is shutting down");
    }
    const text = await sseResponse(produce(), { onCancel: () => undefined }).text();
    expect(text).toBe('data: "ok"\n\ndata: {"error":{"message":"the server is shutting down","type":"server_busy_error","param":null,"code":"shutting-down"}}\n\n');
  });
});
