// `psionic serve --backend cuda` as a client sees it: the real server over the
// engine on the GPU streams chat completions from a synthesized gpt-oss model
// (harmony: reasoning then content) and a llama model, with the same greedy
// text as the CPU backend, also while six stream at once (continuous batching
// on the GPU). Needs a GPU (scripts/device-check.sh).
import { describe, expect, it } from "bun:test";
import { startTestServer, type TestServer } from "../../serve/test-server.ts";

type Streamed = { reasoning: string; content: string; finish: string | null; chunks: number };

async function stream(server: TestServer, model: string, text: string, maxTokens = 24): Promise<Streamed> {
  const s = await server.client.chat.completions.create({ model, messages: [{ role: "user", content: text }], max_tokens: maxTokens, temperature: 0, stream: true });
  const out: Streamed = { reasoning: "", content: "", finish: null, chunks: 0 };
  for await (const chunk of s) {
    out.chunks++;
    for (const c of chunk.choices) {
      const delta = c.delta as { content?: string | null; reasoning_content?: string | null };
      out.content += delta.content ?? "";
      out.reasoning += delta.reasoning_content ?? "";
      out.finish = c.finish_reason ?? out.finish;
    }
  }
  return out;
}

describe("psionic serve --backend cuda", () => {
  it("streams the CPU backend's greedy text, alone and 6 streams at once", async () => {
    const prompts = ["Tell me about the fox.", "Why is the sky blue?", "Count to five.", "Name a colour.", "Say hello.", "What is a dog?"];
    const results: Record<string, Streamed[]> = {};
    for (const backend of ["cpu", "cuda"] as const) {
      const server = await startTestServer({}, { backend, threads: 4, parallel: 8 });
      try {
        const alone = [await stream(server, "oss", prompts[0]!), await stream(server, "tiny", prompts[0]!)];
        const together = await Promise.all(prompts.map((p) => stream(server, "oss", p)));
        results[backend] = [...alone, ...together];
      } finally {
        await server.close();
      }
    }
    const [cpu, gpu] = [results.cpu!, results.cuda!];
    for (let i = 0; i < cpu.length; i++) {
      console.log(`stream ${i}: cpu  ${cpu[i]!.finish} ${JSON.stringify(cpu[i]!.reasoning + "|" + cpu[i]!.content).slice(0, 100)}\n          cuda ${gpu[i]!.finish} ${JSON.stringify(gpu[i]!.reasoning + "|" + gpu[i]!.content).slice(0, 100)}`);
      expect(gpu[i]!.chunks).toBeGreaterThan(2);
      expect(gpu[i]!.finish).not.toBeNull();
    }
    // Greedy text on random tiny models parts at the first near-tie (a routing
    // tie, or fp16 prefill products against the CPU's int8 ones), after which
    // the texts differ entirely: the agreement is counted and shown.
    const same = cpu.filter((c, i) => c.content === gpu[i]!.content && c.reasoning === gpu[i]!.reasoning).length;
    console.log(`streams identical to the CPU backend's: ${same}/${cpu.length}`);
    expect(same).toBeGreaterThanOrEqual(cpu.length / 2);
  }, 300_000);
});
