// `psionic serve`: loads the models in the engine worker, listens, and runs
// until SIGINT/SIGTERM, then stops the listener and the engine.
import { MAX_THREADS } from "../runtime/backends.ts";
import { startEngine } from "../runtime/engine/engine-client.ts";
import { listen } from "../serve/server.ts";
import { DEFAULT_MODEL_ID, defaultModelPath } from "../util/default-model.ts";
import { PsionicError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import { describeFlags, parseFlags, type FlagTable } from "./flags.ts";
import { integerFlag, withUsage } from "./generate.ts";

const usage = "psionic serve -m FILE [-m FILE ...] [--backend cpu|reference|cuda|metal] [--host 127.0.0.1] [--port 8080] [-c CTX] [-ngl N] [-t THREADS] [--parallel N] [--api-key KEY] [--reasoning-budget low|medium|high]";
const summary = "Serve models over an OpenAI-compatible HTTP API.";

export const serveFlags: FlagTable = {
  model: { type: "string", short: "m", repeat: true, help: "GGUF model file; repeat to serve several (requests choose by `model`: the file name without .gguf); default: the embedded default model, as psionic-default" },
  backend: { type: "string", help: "compute backend: cpu, reference (plain TypeScript, slow), cuda or metal", default: "cpu" },
  host: { type: "string", help: "address to listen on", default: "127.0.0.1" },
  port: { type: "number", help: "port to listen on (0: any free port)", default: 8080 },
  "ctx-size": { type: "number", short: "c", help: "KV positions per sequence (default: the model's training context, capped at 4096)" },
  "n-gpu-layers": { type: "number", short: "ngl", help: "with --backend cuda: the first N layers on the GPU, the rest on the CPU (default: all; shown in /v1/models)" },
  threads: { type: "number", short: "t", help: "CPU threads for the kernels (default: all cores)" },
  parallel: { type: "number", help: "sequences decoded together", default: 4 },
  "api-key": { type: "string", help: "require `Authorization: Bearer KEY` on every route but /health" },
  "reasoning-budget": { type: "string", help: "gpt-oss reasoning effort when a request names none: low, medium or high", default: "medium" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

const GPU_BACKENDS = new Set(["metal"]);

/** Resolves when the process is asked to stop. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(signal);
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

export const serveCommand: Command = {
  name: "serve",
  summary,
  usage,
  help: `${summary}\n\nflags:\n${describeFlags(serveFlags)}\n\nEndpoints, headers and error codes: docs/SERVING.md.`,
  run(argv) {
    return withUsage("serve", usage, async () => {
      const { flags, positionals } = parseFlags(argv, serveFlags, usage);
      if (flags.help) {
        console.log(`usage: ${usage}\n\n${this.help}`);
        return 0;
      }
      if (positionals.length > 0) throw new PsionicError("cli.bad-flag", `unexpected argument "${positionals[0]}"`);
      const given = (flags.model as string[] | undefined) ?? [];
      const fallback = given.length === 0 ? defaultModelPath() : undefined;
      if (given.length === 0 && !fallback) throw new PsionicError("cli.bad-flag", "no model given (-m FILE), and this build embeds no default model (fixtures/default-model.gguf, made by `psionic train`)");
      const models = given.length > 0 ? given.map((path) => ({ path })) : [{ path: fallback!, id: DEFAULT_MODEL_ID }];
      const backend = flags.backend as string;
      if (GPU_BACKENDS.has(backend)) throw new PsionicError("cli.bad-flag", `the ${backend} backend is not available in this build; use --backend cpu`);
      if (backend !== "cpu" && backend !== "reference" && backend !== "cuda") throw new PsionicError("cli.bad-flag", `--backend must be cpu, reference, cuda or metal, got "${backend}"`);
      const effort = flags["reasoning-budget"];
      if (effort !== "low" && effort !== "medium" && effort !== "high") throw new PsionicError("cli.bad-flag", `--reasoning-budget must be low, medium or high, got "${effort}"`);
      const port = integerFlag(flags, "port", 0, 65535)!;
      const threads = integerFlag(flags, "threads", 1, MAX_THREADS);
      const contextLimit = integerFlag(flags, "ctx-size", 1);
      const parallel = integerFlag(flags, "parallel", 1, 256);
      const gpuLayers = integerFlag(flags, "n-gpu-layers", 0);
      const apiKey = flags["api-key"] as string | undefined;
      if (apiKey !== undefined && apiKey.trim() === "") throw new PsionicError("cli.bad-flag", "--api-key must not be empty");

      const engine = await startEngine({
        models,
        backend,
        threads,
        contextLimit,
        parallel,
        gpuLayers,
        onProgress: (text) => console.error(`psionic serve: ${text}`),
      });
      let server;
      try {
        server = listen(engine, {
          host: flags.host as string,
          port,
          apiKey,
          reasoningEffort: effort,
          gpuLayers,
          onInternalError: (error) => console.error(`psionic serve: internal error: ${error instanceof Error ? (error.stack ?? error.message) : error}`),
        });
      } catch (error) {
        await engine.close();
        throw new PsionicError("serve.listen-failed", `cannot listen on ${flags.host}:${port}: ${error instanceof Error ? error.message : error}`);
      }
      console.log(`psionic serve: listening on ${server.url} (models: ${engine.models.map((m) => m.id).join(", ")})`);
      const signal = await untilSignal();
      console.error(`psionic serve: ${signal}, stopping`);
      await server.stop();
      return 0;
    });
  },
};
