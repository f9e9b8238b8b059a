// A listening server: the app bound to host and port, over an engine the
// caller started. Stopping closes the listener first (no new requests), then
// the engine (jobs in flight end with a 503 event).
import type { Engine } from "../runtime/engine/engine.ts";
import { buildApp, type AppOptions } from "./app.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./body.ts";

export interface ListenOptions extends AppOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface RunningServer {
  url: string;
  port: number;
  engine: Engine;
  stop(): Promise<void>;
}

export function listen(engine: Engine, options: ListenOptions): RunningServer {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = buildApp(engine, { ...options, maxBodyBytes }).listen({
    hostname: options.host,
    port: options.port,
    // Our own limit answers 413 in the error envelope (serve/body.ts); Bun's bare 413 is only a backstop.
    maxRequestBodySize: maxBodyBytes * 16,
    // Streams stay open while a long generation runs; the default 10 s idle timeout would cut them.
    idleTimeout: 0,
  });
  const server = app.server!;
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
  let stopped = false;
  return {
    url: `http://${host}:${server.port}`,
    port: server.port!,
    engine,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.stop(true);
      await engine.close();
    },
  };
}
