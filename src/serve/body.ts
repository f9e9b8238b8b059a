// Reading a request body: bounded in size, parsed as JSON whatever the
// content-type says (curl -d sends form encoding by default, llama-server
// accepts it as JSON too), validated against the endpoint's schema. Each
// failure is a 4xx naming what was wrong; none can become a 500.
import * as v from "valibot";
import { reject } from "./errors.ts";

/** Default body limit: a long chat history fits many times over. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Reads at most `limit` bytes; a longer body (declared or streamed) is refused with 413 before it is buffered. */
export async function readBodyText(request: Request, limit: number): Promise<string> {
  const tooLarge = () => reject(413, "body_too_large", `the request body is larger than the ${limit}-byte limit`);
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limit) tooLarge();
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** `messages.0.content` -> `messages[0].content`, the way OpenAI names fields in `param`. */
export function fieldPath(issue: v.BaseIssue<unknown>): string | null {
  if (!issue.path || issue.path.length === 0) return null;
  let path = "";
  for (const item of issue.path) {
    const key = item.key;
    if (typeof key === "number") path += `[${key}]`;
    else path += path === "" ? String(key) : `.${String(key)}`;
  }
  return path === "" ? null : path;
}

/** The first validation issue as a 400 naming the field. */
export function rejectIssues(issues: readonly v.BaseIssue<unknown>[]): never {
  const issue = issues[0]!;
  const param = fieldPath(issue);
  const missing = issue.input === undefined && param !== null;
  const message = missing ? `missing required field ${param}` : param ? `${param}: ${issue.message}` : issue.message;
  reject(400, missing ? "missing_required_parameter" : "invalid_type", message, param);
}

/** Validates a parsed value against `schema`, refusing with 400 naming the field. */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success) rejectIssues(result.issues);
  return result.output;
}

/** Reads, parses and validates a JSON request body. */
export async function readJson<S extends v.GenericSchema>(request: Request, schema: S, limit: number): Promise<v.InferOutput<S>> {
  const text = await readBodyText(request, limit);
  if (text.trim() === "") reject(400, "invalid_json", "the request body is empty; send a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    reject(400, "invalid_json", `the request body is not valid JSON: ${error instanceof Error ? error.message : error}`);
  }
  return validate(schema, value);
}
