// The HTTP app: Elysia routes over an Engine. Every route passes through
// `answer`, which checks the API key, turns any refusal into the OpenAI error
// envelope and counts the request for /metrics. Bodies are read by the routes
// themselves (serve/body.ts), so Elysia's own parser never runs and a
// malformed body can only ever be a 4xx.
import { Elysia } from "elysia";
import type { Engine } from "../runtime/engine/engine.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./body.ts";
import { chatCompletions } from "./chat.ts";
import { completions } from "./completions.ts";
import { embeddings } from "./embeddings.ts";
import { ApiError, errorResponse, toApiError } from "./errors.ts";
import type { ServeContext } from "./job.ts";
import { ServerMetrics } from "./metrics.ts";
import { listModels } from "./models.ts";
import { ResponseStore } from "./response-store.ts";
import { responses } from "./responses.ts";

export interface AppOptions {
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** gpt-oss reasoning effort when a request names none. */
  reasoningEffort?: "low" | "medium" | "high";
  /** -ngl as given, shown in /v1/models. */
  gpuLayers?: number;
  maxBodyBytes?: number;
  /** Stored responses kept for previous_response_id (least recently used go first). */
  storedResponses?: number;
  /** Called when a handler fails in a way that is ours (status 500), for the server log. */
  onInternalError?: (error: unknown) => void;
}

type Handler = (request: Request, context: ServeContext) => Promise<Response> | Response;

/** Routes by path and method; the table also answers 405 for a known path with the wrong method. */
interface Route {
  method: "GET" | "POST";
  path: string;
  handler: Handler;
}

/** Constant-time comparison, so response timing does not reveal how much of a key matched. */
function sameKey(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let difference = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) difference |= (a[i % Math.max(a.length, 1)] ?? 0) ^ b[i]!;
  return difference === 0;
}

function checkAuth(request: Request, apiKey: string | undefined): ApiError | undefined {
  if (apiKey === undefined) return undefined;
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) return new ApiError(401, "invalid_api_key", "missing API key: send `Authorization: Bearer <key>`");
  if (!sameKey(match[1]!, apiKey)) return new ApiError(401, "invalid_api_key", "incorrect API key");
  return undefined;
}

export function buildApp(engine: Engine, options: AppOptions = {}) {
  const metrics = new ServerMetrics();
  let counter = 0;
  const context: ServeContext = {
    engine,
    metrics,
    reasoningEffort: options.reasoningEffort ?? "medium",
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    nextId: (prefix) => `${prefix}-${Date.now().toString(36)}${(counter++).toString(36)}${crypto.randomUUID().slice(0, 8)}`,
  };
  const store = new ResponseStore(options.storedResponses ?? 1000);

  const routes: Route[] = [
    { method: "GET", path: "/health", handler: () => Response.json({ status: "ok", models: engine.models.map((m) => m.id) }) },
    { method: "GET", path: "/v1/models", handler: () => Response.json(listModels(engine.models, options.gpuLayers)) },
    { method: "GET", path: "/metrics", handler: async () => new Response(metrics.render(await engine.stats()), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } }) },
    { method: "POST", path: "/v1/chat/completions", handler: chatCompletions },
    { method: "POST", path: "/v1/completions", handler: completions },
    { method: "POST", path: "/v1/embeddings", handler: embeddings },
    { method: "POST", path: "/v1/responses", handler: (request, ctx) => responses(request, ctx, store) },
  ];

  const answer = async (route: string, request: Request, handler: Handler | undefined): Promise<Response> => {
    let response: Response;
    try {
      const denied = route === "/health" ? undefined : checkAuth(request, options.apiKey);
      if (denied) throw denied;
      if (!handler) throw unmatched(request);
      response = await handler(request, context);
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.status >= 500) options.onInternalError?.(error);
      response = errorResponse(apiError);
    }
    metrics.countRequest(route, response.status);
    return response;
  };

  const unmatched = (request: Request): ApiError => {
    const path = new URL(request.url).pathname;
    const allowed = routes.filter((r) => r.path === path).map((r) => r.method);
    if (allowed.length > 0) {
      return new ApiError(405, "method_not_allowed", `${request.method} is not allowed on ${path}; use ${allowed.join(" or ")}`, null, { allow: allowed.join(", ") });
    }
    return new ApiError(404, "unknown_route", `no route ${request.method} ${path}`);
  };

  let app = new Elysia();
  for (const route of routes) {
    const handle = ({ request }: { request: Request }) => answer(route.path, request, route.handler);
    app = route.method === "GET" ? app.get(route.path, handle) : app.post(route.path, handle, { parse: "none" });
  }
  return app.onError(({ request, code, error }) => {
    if (code === "NOT_FOUND") return answer("unmatched", request, undefined);
    // Handlers catch everything themselves (answer); reaching here is a fault of ours.
    options.onInternalError?.(error);
    return errorResponse(toApiError(error));
  });
}
