import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import type { ChatTool } from "./chat-types.ts";
import { checkSchemaBounds, checkTools, MAX_SCHEMA_DEPTH } from "./tool-schema.ts";

function nested(depth: number): unknown {
  // `depth` levels of objects/arrays: {a: [{a: [...]}]}
  let value: unknown = "leaf";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { a: value };
  return value;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof PsionicError) return e.code;
    throw e;
  }
  return undefined;
}

describe("tool bounds", () => {
  it("accepts schemas nested exactly 32 levels and refuses 33", () => {
    expect(codeOf(() => checkSchemaBounds(nested(MAX_SCHEMA_DEPTH), "t"))).toBeUndefined();
    expect(codeOf(() => checkSchemaBounds(nested(MAX_SCHEMA_DEPTH + 1), "t"))).toBe("chat.bad-tool");
    // A nesting far past any stack: refused, not a RangeError.
    expect(codeOf(() => checkSchemaBounds(nested(1_000_000), "t"))).toBe("chat.bad-tool");
  });

  it("refuses names that could carry prompt syntax, and malformed tool entries", () => {
    const tool = (fn: unknown) => [{ type: "function", function: fn }] as ChatTool[];
    expect(codeOf(() => checkTools(tool({ name: "get_weather-2" })))).toBeUndefined();
    for (const name of ["", "a b", "f<|end|>", "x".repeat(65), "functions.f", 7, undefined]) {
      expect(codeOf(() => checkTools(tool({ name })))).toBe("chat.bad-tool");
    }
    expect(codeOf(() => checkTools(tool({ name: "f", parameters: [] })))).toBe("chat.bad-tool");
    expect(codeOf(() => checkTools(tool({ name: "f", description: 3 })))).toBe("chat.bad-tool");
    expect(codeOf(() => checkTools([{ type: "code" } as unknown as ChatTool]))).toBe("chat.bad-tool");
    expect(codeOf(() => checkTools([null as unknown as ChatTool]))).toBe("chat.bad-tool");
  });
});
