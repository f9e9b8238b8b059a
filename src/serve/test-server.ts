// Test helper: a real server on 127.0.0.1 (port 0) over the real engine,
// serving two synthesized tiny models: "tiny" (llama, with the chat template
// synthesized llama files carry) and "oss" (gpt-oss, harmony). Weights are random, so output text is arbitrary; tests assert
// structure, constraints and agreement between endpoints, not wording.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { GGMLType } from "../gguf/types.ts";
import { synthesize } from "../model/synth.ts";
import { startEngine } from "../runtime/engine/engine-client.ts";
import type { EngineOptions } from "../runtime/engine/engine.ts";
import type { AppOptions } from "./app.ts";
import { listen, type RunningServer } from "./server.ts";

export interface TestServer extends RunningServer {
  client: OpenAI;
  dir: string;
  llamaPath: string;
  ossPath: string;
  close(): Promise<void>;
}

/** Writes the two test models into a fresh temp dir. */
export function writeTestModels(): { dir: string; llamaPath: string; ossPath: string } {
  const dir = mkdtempSync(join(tmpdir(), "psionic-serve-"));
  const llamaPath = join(dir, "tiny.gguf");
  synthesize({ preset: { arch: "llama", name: "tiny" }, type: GGMLType.Q8_0, seed: 5 }, llamaPath);
  const ossPath = join(dir, "oss.gguf");
  synthesize({ preset: { arch: "gpt-oss", name: "tiny" }, type: GGMLType.Q8_0, seed: 5 }, ossPath);
  return { dir, llamaPath, ossPath };
}

export async function startTestServer(app: AppOptions = {}, engine: Partial<EngineOptions> = {}): Promise<TestServer> {
  const { dir, llamaPath, ossPath } = writeTestModels();
  const started = await startEngine({
    models: [{ path: llamaPath }, { path: ossPath }],
    backend: "cpu",
    threads: 1,
    contextLimit: 512,
    parallel: 2,
    ...engine,
  });
  const server = listen(started, { host: "127.0.0.1", port: 0, ...app });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: app.apiKey ?? "unused", maxRetries: 0 });
  return {
    ...server,
    client,
    dir,
    llamaPath,
    ossPath,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs a raw body (any bytes, any content-type) and returns status, headers and parsed JSON (or text). */
export async function post(url: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) {
  const response = await fetch(url, { method: "POST", body, headers });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as { error?: { message: string; type: string; param: string | null; code: string | null } } & Record<string, unknown> };
}

/** Polls engine stats until `active` and `queued` are 0 (a cancelled job frees its slot within a step). */
export async function waitIdle(server: RunningServer, timeoutMs = 5000): Promise<{ active: number; queued: number }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await server.engine.stats();
    if ((stats.active === 0 && stats.queued === 0) || performance.now() > deadline) return stats;
    await Bun.sleep(10);
  }
}
