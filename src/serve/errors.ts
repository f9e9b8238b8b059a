// Errors as OpenAI clients expect them: `{"error":{"message","type","param","code"}}`
// with the matching HTTP status. Every refusal the server gives passes through
// `ApiError`, so no client input can surface as a 500.
import { EngineError } from "../runtime/engine/engine.ts";
import { PsionicError } from "../util/errors.ts";

/** OpenAI's error `type` for each status class psionic answers with. */
function typeForStatus(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "server_busy_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A refusal with its HTTP status; `param` names the request field at fault, when one is. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  get type(): string {
    return typeForStatus(this.status);
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Refuses the request: throws an ApiError (400 unless said otherwise). */
export function reject(status: number, code: string, message: string, param: string | null = null, headers: Record<string, string> = {}): never {
  throw new ApiError(status, code, message, param, headers);
}

/** Seconds a client told "queue full" should wait before retrying. */
export const RETRY_AFTER_SECONDS = 1;

/** An engine refusal (first "error" event or a rejected embed) as an ApiError. */
export function fromEngine(status: number, code: string, message: string): ApiError {
  const param = code === "model.unknown" || status === 404 ? "model" : null;
  const headers: Record<string, string> = status === 429 || status === 503 ? { "retry-after": String(RETRY_AFTER_SECONDS) } : {};
  return new ApiError(status, code, message, param, headers);
}

/**
 * Any thrown value as an ApiError. PsionicErrors are refusals of the request
 * (a template that cannot render these messages, a tool schema that cannot be
 * compiled), so they answer 400; anything else is a fault of ours and 500.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof EngineError) return fromEngine(error.status, error.code, error.message);
  if (error instanceof PsionicError) return new ApiError(400, error.code, error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, "internal", `internal error: ${message}`);
}

/** The JSON response for an error, with its headers. */
export function errorResponse(error: ApiError, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(error.toBody()), {
    status: error.status,
    headers: { "content-type": "application/json", ...error.headers, ...extraHeaders },
  });
}
