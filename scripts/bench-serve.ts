// psionic serve and llama-server side by side on the same GGUF (issue #4):
// the reference system's three cases — cold, warm non-hit, prompt-cache hit —
// on a ~1k-token prompt (tok/s = completion tokens / wall time, plus time to
// first token), and aggregate decode tok/s at 1, 4, 8 and 16 concurrent
// streams. The servers run one after the other on the same cores.
//
//   npx bun scripts/bench-serve.ts -m model.gguf [--llama-server PATH] [-t 2] [-n 64] [--psionic-only] [--backend cpu]
//
// --backend is psionic serve's (cpu, cuda, ...); llama-server runs as built.
//
// Use a model whose output is whole text (`psionic gguf synth ... --text-output`):
// llama-server fails requests whose output is not complete UTF-8.
import { spawn, type Subprocess } from "bun";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

const args = process.argv.slice(2);
const opt = (name: string, fallback?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const model = opt("-m");
const threads = Number(opt("-t", "2"));
const decodeTokens = Number(opt("-n", "64"));
const backend = opt("--backend", "cpu")!;
const llamaServer = opt("--llama-server", join(homedir(), ".cache/psionic-peers/llama.cpp-9336d8aab8f8-noamx-cpu/build/bin/llama-server"))!;
const CONTEXT = 2048, SLOTS = 16, CONCURRENCY = [1, 4, 8, 16];
if (!model) {
  console.error("usage: npx bun scripts/bench-serve.ts -m model.gguf [--llama-server PATH] [-t 2] [-n 64] [--psionic-only] [--backend cpu]");
  process.exit(2);
}

// About 1k tokens of varied text; `tag` makes the first tokens differ, so no cache shares a prefix.
const sentences = ["The committee met on Tuesday to review the budget for the coming year.", "Rain fell over the valley while the farmers waited for the harvest.", "She opened the letter slowly and read it twice before she spoke.", "Several new roads were planned to connect the towns along the river.", "The old clock in the hall struck nine as the guests arrived."];
const longPrompt = (tag: string) => `${tag}. ${Array.from({ length: 60 }, (_, i) => sentences[(i * 7 + tag.length) % sentences.length]).join(" ")}`;

interface Timed { ttftMs: number; wallMs: number; tokens: number }

let modelId = "";

async function complete(base: string, prompt: string, maxTokens: number): Promise<Timed> {
  const start = performance.now();
  const response = await fetch(`${base}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: modelId, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (!response.ok || !response.body) throw new Error(`${base}: HTTP ${response.status} ${await response.text()}`);
  let ttftMs = 0, tokens = 0, usage = 0, buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of response.body) {
    buffered += decoder.decode(bytes, { stream: true });
    let cut;
    while ((cut = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, cut).trim();
      buffered = buffered.slice(cut + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.usage?.completion_tokens) usage = chunk.usage.completion_tokens;
      if (chunk.choices?.[0]?.text) {
        if (tokens === 0) ttftMs = performance.now() - start;
        tokens++;
      }
    }
  }
  return { ttftMs, wallMs: performance.now() - start, tokens: usage || tokens };
}

async function waitHealthy(base: string, server: Subprocess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (server.exitCode !== null) throw new Error(`${base}: the server exited (${server.exitCode}); see its log`);
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch { /* not listening yet */ }
    await Bun.sleep(250);
  }
  throw new Error(`${base}: not healthy after 150 s`);
}

async function measure(name: string, command: string[], port: number) {
  // Logs go to a file: an unread pipe fills up and stalls a chatty server.
  const logPath = join(tmpdir(), `bench-serve-${name}.log`);
  const server = spawn(command, { stdout: "ignore", stderr: Bun.file(logPath) });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(base, server);
    // Requests name the served model (llama-server serves its one model whatever the name).
    modelId = ((await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] }).data[0]!.id;
    await complete(base, "Warm up.", 4);
    const cold = await complete(base, longPrompt("Cold start"), 32);
    const warm = await complete(base, longPrompt("A different request"), 32);
    const hit = await complete(base, longPrompt("Cold start"), 32);
    const aggregate: number[] = [];
    for (const c of CONCURRENCY) {
      const start = performance.now();
      const runs = await Promise.all(Array.from({ length: c }, (_, i) => complete(base, `Stream ${c}-${i} begins here and`, decodeTokens)));
      aggregate.push(runs.reduce((n, r) => n + r.tokens, 0) / ((performance.now() - start) / 1000));
      process.stderr.write(`${name}: ${c} streams ${aggregate.at(-1)!.toFixed(1)} tok/s\n`);
    }
    return { cold, warm, hit, aggregate };
  } finally {
    server.kill();
    await server.exited;
  }
}

const tps = (t: Timed) => (t.tokens * 1000) / t.wallMs;
// --psionic-only: skip llama-server (for profiling psionic alone).
const psionicOnly = args.includes("--psionic-only");
const psionic = await measure("psionic", [process.execPath, join(import.meta.dir, "../src/cli/main.ts"), "serve", "-m", model, "--backend", backend, "--port", "18181", "-t", String(threads), "-c", String(CONTEXT), "--parallel", String(SLOTS)], 18181);
if (psionicOnly) {
  console.log(`psionic (${backend}): cold TTFT ${psionic.cold.ttftMs.toFixed(0)} ms, hit TTFT ${psionic.hit.ttftMs.toFixed(1)} ms; aggregate ${CONCURRENCY.map((c, i) => `${c}: ${psionic.aggregate[i]!.toFixed(1)}`).join(", ")} tok/s`);
  process.exit(0);
}
const llama = await measure("llama-server", [llamaServer, "-m", model, "--host", "127.0.0.1", "--port", "18182", "-t", String(threads), "-c", String(CONTEXT * SLOTS), "-np", String(SLOTS), "--no-webui"], 18182);

const row = (label: string, p: number, l: number, unit: string) => console.log(`| ${label} | ${p.toFixed(1)} ${unit} | ${l.toFixed(1)} ${unit} | ${(p / l).toFixed(2)}x |`);
console.log(`\nmodel ${model}, ${threads} threads, prompt ~1k tokens, 32 completion tokens; streams of ${decodeTokens} tokens`);
console.log("| case | psionic | llama-server | psionic / llama-server |\n|---|---|---|---|");
for (const c of ["cold", "warm", "hit"] as const) {
  row(`${c}: tok/s`, tps(psionic[c]), tps(llama[c]), "tok/s");
  row(`${c}: time to first token`, psionic[c].ttftMs, llama[c].ttftMs, "ms");
}
CONCURRENCY.forEach((c, i) => row(`${c} streams: aggregate decode`, psionic.aggregate[i]!, llama.aggregate[i]!, "tok/s"));
console.log(`psionic: hit TTFT / cold TTFT = ${(psionic.hit.ttftMs / psionic.cold.ttftMs).toFixed(3)}; 8 streams / 1 stream = ${(psionic.aggregate[2]! / psionic.aggregate[0]!).toFixed(2)}x`);
console.log(`llama-server: hit TTFT / cold TTFT = ${(llama.hit.ttftMs / llama.cold.ttftMs).toFixed(3)}; 8 streams / 1 stream = ${(llama.aggregate[2]! / llama.aggregate[0]!).toFixed(2)}x`);
