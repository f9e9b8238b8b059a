// `psionic serve --backend cuda` as a client sees it: the real server over the
// engine on the GPU streams chat completions from a synthesized gpt-oss model
// (harmony: reasoning then content) and a llama model, alone and six at once
// (continuous batching on the GPU), with the CPU backend's greedy tokens: a
// stream may part from the CPU's only at a near-tie, where the CPU's own
// logprob margin between its pick and the GPU's is under the logit tolerance
// (after that the texts differ entirely, as they would between any two
// summation orders). Needs a GPU (scripts/device-check.sh) or the CPU build
// of the kernels (cuda-emulated.test.ts).
import { describe, expect, it } from "bun:test";
import { QUANTIZED_WEIGHTS_TOLERANCE } from "../../model/parity-harness.ts";
import { startTestServer, type TestServer } from "../../serve/test-server.ts";

interface Streamed {
  text: string;
  finish: string | null;
  chunks: number;
  /** Per token: the pick and the alternatives with their logprobs. */
  tokens: { token: string; logprob: number; top: Map<string, number> }[];
}

async function stream(server: TestServer, model: string, text: string): Promise<Streamed> {
  const s = await server.client.chat.completions.create({
    model, messages: [{ role: "user", content: text }], max_tokens: 24, temperature: 0, stream: true, logprobs: true, top_logprobs: 5,
  });
  const out: Streamed = { text: "", finish: null, chunks: 0, tokens: [] };
  for await (const chunk of s) {
    out.chunks++;
    for (const c of chunk.choices) {
      const delta = c.delta as { content?: string | null; reasoning_content?: string | null };
      out.text += (delta.reasoning_content ?? "") + (delta.content ?? "");
      out.finish = c.finish_reason ?? out.finish;
      for (const t of c.logprobs?.content ?? []) out.tokens.push({ token: t.token, logprob: t.logprob, top: new Map(t.top_logprobs.map((a) => [a.token, a.logprob])) });
    }
  }
  return out;
}

/** null when the GPU's tokens are the CPU's, or part from them only at a near-tie; else what went wrong. */
function parting(cpu: Streamed, gpu: Streamed): string | null {
  const i = cpu.tokens.findIndex((t, k) => t.token !== gpu.tokens[k]?.token);
  if (i < 0) return gpu.tokens.length === cpu.tokens.length ? null : `the GPU stream has ${gpu.tokens.length} tokens, the CPU's ${cpu.tokens.length}`;
  const theirs = cpu.tokens[i]!, ours = gpu.tokens[i];
  if (!ours) return `the GPU stream ends at token ${i}`;
  const alternative = theirs.top.get(ours.token);
  if (alternative === undefined) return `token ${i}: GPU ${JSON.stringify(ours.token)} is not among the CPU's top 5`;
  const margin = theirs.logprob - alternative;
  return margin < QUANTIZED_WEIGHTS_TOLERANCE ? null : `token ${i}: GPU ${JSON.stringify(ours.token)}, CPU ${JSON.stringify(theirs.token)} by a margin of ${margin}`;
}

describe("psionic serve --backend cuda", () => {
  it("streams the CPU backend's greedy tokens (up to near-ties), alone and 6 streams at once", async () => {
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
    let same = 0;
    for (let i = 0; i < cpu.length; i++) {
      const problem = parting(cpu[i]!, gpu[i]!);
      if (cpu[i]!.text === gpu[i]!.text) same++;
      console.log(`stream ${i}: ${cpu[i]!.text === gpu[i]!.text ? "identical" : "parts at a near-tie"} | cuda ${JSON.stringify(gpu[i]!.text).slice(0, 70)}`);
      expect(gpu[i]!.chunks).toBeGreaterThan(1);
      expect(gpu[i]!.finish).not.toBeNull();
      expect({ stream: i, problem }).toEqual({ stream: i, problem: null });
    }
    console.log(`streams identical to the CPU backend's: ${same}/${cpu.length}`);
  }, 300_000);
});
