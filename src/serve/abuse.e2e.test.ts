// 200 concurrent clients against one server: valid requests (plain and
// streaming) mixed with malformed, mistyped, oversized and invalid-UTF-8
// bodies, slow readers and clients that hang up mid-stream. Every valid
// request must get a correct answer, every bad one a 4xx in the OpenAI
// envelope, nothing a 5xx; afterwards every slot is free and memory is back
// near where it started.
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startTestServer, waitIdle, type TestServer } from "./test-server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: 256 * 1024 }, { parallel: 4, maxQueue: 256 });
}, 60_000); // synthesizing and loading models is slow on a loaded 2-core machine
afterAll(() => server.close());

type Kind = "chat" | "stream" | "completion" | "slow-reader" | "hang-up" | "bad-json" | "bad-type" | "oversized" | "bad-utf8" | "unknown-model" | "unknown-route";
const KINDS: Kind[] = ["chat", "stream", "completion", "slow-reader", "hang-up", "bad-json", "bad-type", "oversized", "bad-utf8", "unknown-model", "unknown-route"];
const VALID = new Set<Kind>(["chat", "stream", "completion", "slow-reader"]);

interface Outcome { kind: Kind; status: number; ok: boolean; detail: string }

async function client(i: number): Promise<Outcome> {
  const kind = KINDS[(i * 7) % KINDS.length]!;
  const url = `${server.url}/v1/chat/completions`;
  const json = { "content-type": "application/json" };
  const messages = [{ role: "user", content: `client ${i} says hello` }];
  const send = (body: BodyInit, path = url) => fetch(path, { method: "POST", headers: json, body });
  const refusal = async (r: Response): Promise<Outcome> => {
    const body = await r.json().catch(() => null) as { error?: { message?: unknown; type?: unknown } } | null;
    const ok = r.status >= 400 && r.status < 500 && typeof body?.error?.message === "string" && typeof body.error.type === "string";
    return { kind, status: r.status, ok, detail: JSON.stringify(body).slice(0, 200) };
  };
  const readStream = async (r: Response, delayMs: number, stopAfter = Infinity): Promise<{ chunks: number; done: boolean }> => {
    const reader = r.body!.getReader();
    const decoder = new TextDecoder();
    let text = "", chunks = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      chunks++;
      if (chunks >= stopAfter) {
        await reader.cancel();
        return { chunks, done: false };
      }
      if (delayMs) await Bun.sleep(delayMs);
    }
    return { chunks, done: text.includes("data: [DONE]") };
  };
  switch (kind) {
    case "chat": {
      const r = await send(JSON.stringify({ model: "tiny", messages, max_tokens: 4, temperature: 0 }));
      const body = await r.json() as { choices?: { message?: { role?: string; content?: unknown }; finish_reason?: string }[]; usage?: { completion_tokens?: number } };
      const ok = r.status === 200 && body.choices?.[0]?.message?.role === "assistant" && typeof body.choices[0].message.content === "string" && (body.usage?.completion_tokens ?? 0) >= 1;
      return { kind, status: r.status, ok, detail: JSON.stringify(body).slice(0, 200) };
    }
    case "completion": {
      const r = await send(JSON.stringify({ model: "tiny", prompt: `Completion ${i}`, max_tokens: 4 }), `${server.url}/v1/completions`);
      const body = await r.json() as { choices?: { text?: unknown }[] };
      return { kind, status: r.status, ok: r.status === 200 && typeof body.choices?.[0]?.text === "string", detail: JSON.stringify(body).slice(0, 200) };
    }
    case "stream":
    case "slow-reader": {
      const r = await send(JSON.stringify({ model: "tiny", messages, max_tokens: 6, stream: true }));
      const s = await readStream(r, kind === "slow-reader" ? 40 : 0);
      return { kind, status: r.status, ok: r.status === 200 && s.done, detail: `${s.chunks} chunks` };
    }
    case "hang-up": {
      const controller = new AbortController();
      const r = await fetch(url, { method: "POST", headers: json, body: JSON.stringify({ model: "tiny", messages, max_tokens: 200, stream: true }), signal: controller.signal });
      const s = await readStream(r, 0, 2).catch(() => ({ chunks: 0, done: false }));
      controller.abort();
      return { kind, status: r.status, ok: r.status === 200, detail: `hung up after ${s.chunks} chunks` };
    }
    case "bad-json":
      return refusal(await send(`{"model": "tiny", "messages": [{"role": "user", "content": "x${i}"`));
    case "bad-type":
      return refusal(await send(JSON.stringify({ model: "tiny", messages: [{ role: "user", content: { nested: i } }], max_tokens: "many" })));
    case "oversized":
      return refusal(await send(JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x".repeat(400 * 1024) }] })));
    case "bad-utf8":
      return refusal(await send(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])));
    case "unknown-model":
      return refusal(await send(JSON.stringify({ model: `nope-${i}`, messages })));
    case "unknown-route":
      return refusal(await send("{}", `${server.url}/v1/nothing-here`));
  }
}

function rssMiB(): number {
  Bun.gc(true);
  return process.memoryUsage().rss / 2 ** 20;
}

describe("abuse", () => {
  it("200 concurrent clients: every valid request answered, every bad one a 4xx, slots freed, memory back near baseline", async () => {
    // Warm up (allocations that happen once: arenas, caches, JIT) before the baseline.
    await Promise.all(Array.from({ length: 44 }, (_, i) => client(i)));
    await waitIdle(server);
    const baseline = rssMiB();

    for (let round = 0; round < 2; round++) {
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => client(round * 200 + i)));
      const wrong = outcomes.filter((o) => !o.ok || o.status >= 500);
      expect(wrong).toEqual([]);
      for (const kind of KINDS) expect(outcomes.some((o) => o.kind === kind)).toBe(true);
      expect(outcomes.filter((o) => VALID.has(o.kind)).every((o) => o.status === 200)).toBe(true);
      const idle = await waitIdle(server);
      expect(idle).toMatchObject({ active: 0, queued: 0 });
    }
    const after = rssMiB();
    console.log(`abuse: rss ${baseline.toFixed(0)} MiB before, ${after.toFixed(0)} MiB after 400 clients`);
    expect(after - baseline).toBeLessThan(96);
    // Still serving.
    const r = await client(0);
    expect(r).toMatchObject({ kind: "chat", status: 200, ok: true });
  }, 120_000);
});
