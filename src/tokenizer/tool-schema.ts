// Bounds on the tools a chat request declares. Tool names end up inside
// prompts (harmony's `namespace functions`, `to=functions.NAME` headers) and
// parameter schemas are walked recursively by the prompt renderer and by
// constrained decoding, so both are checked once here: a hostile name cannot
// smuggle prompt syntax in, and a deep or huge schema cannot exhaust the stack.
import { refuse } from "../util/errors.ts";
import type { ChatTool } from "./chat-types.ts";

/** OpenAI's rule for function names: letters, digits, `_` and `-`, at most 64. */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Nesting deeper than this is refused; real tool schemas stay under ~6. */
export const MAX_SCHEMA_DEPTH = 32;
/** Objects, arrays and values in one schema; a 100 KB schema has ~10k. */
export const MAX_SCHEMA_NODES = 50_000;

export function isToolName(name: unknown): name is string {
  return typeof name === "string" && TOOL_NAME.test(name);
}

export function checkToolName(name: unknown, where: string): string {
  if (!isToolName(name)) {
    refuse("chat.bad-tool", `${where}: tool name ${JSON.stringify(name) ?? String(name)} must be 1-64 letters, digits, '_' or '-'`);
  }
  return name;
}

/** Refuses a schema nested deeper than MAX_SCHEMA_DEPTH or larger than MAX_SCHEMA_NODES. */
export function checkSchemaBounds(schema: unknown, toolName: string): void {
  let nodes = 0;
  // Iterative walk: the check itself must not be the thing that overflows the stack.
  const stack: [unknown, number][] = [[schema, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++nodes > MAX_SCHEMA_NODES) {
      refuse("chat.bad-tool", `tool ${toolName}: parameters schema has more than ${MAX_SCHEMA_NODES} nodes`);
    }
    if (value === null || typeof value !== "object") continue;
    if (depth > MAX_SCHEMA_DEPTH) {
      refuse("chat.bad-tool", `tool ${toolName}: parameters schema nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
    }
    const children = Array.isArray(value) ? value : Object.values(value);
    for (const child of children) stack.push([child, depth + 1]);
  }
}

/** Checks every tool's name and schema, and that no name is declared twice. */
export function checkTools(tools: readonly ChatTool[]): void {
  const seen = new Set<string>();
  tools.forEach((tool, i) => {
    if (tool?.type !== "function" || typeof tool.function !== "object" || tool.function === null) {
      refuse("chat.bad-tool", `tools[${i}] must be {type: "function", function: {...}}`);
    }
    const name = checkToolName(tool.function.name, `tools[${i}]`);
    if (seen.has(name)) refuse("chat.bad-tool", `tools[${i}]: tool ${name} is declared twice`);
    seen.add(name);
    const { parameters, description } = tool.function;
    if (description !== undefined && typeof description !== "string") {
      refuse("chat.bad-tool", `tool ${name}: description must be a string`);
    }
    if (parameters !== undefined) {
      if (parameters === null || typeof parameters !== "object" || Array.isArray(parameters)) {
        refuse("chat.bad-tool", `tool ${name}: parameters must be a JSON schema object`);
      }
      checkSchemaBounds(parameters, name);
    }
  });
}
