import { describe, expect, it } from "bun:test";
import { refusalText } from "../../util/refusal-of.ts";
import { compileJsonSchema, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES } from "./json-schema.ts";
import { matchesSchema, schemaErrors } from "./schema-validate.ts";

describe("compiling JSON schemas", () => {
  it("refuses pattern, naming the keyword and its JSON path", () => {
    const text = refusalText(() => compileJsonSchema({ type: "object", properties: { id: { type: "string", pattern: "^a" } } }));
    expect(text).toStartWith("constraint.unsupported-schema:");
    expect(text).toContain("#/properties/id/pattern");
    expect(text).toContain('"pattern"');
  });

  it("refuses keywords that change validity and that it cannot enforce", () => {
    for (const [schema, keyword] of [
      [{ type: "integer", minimum: 0 }, "minimum"],
      [{ allOf: [{ type: "string" }] }, "allOf"],
      [{ type: "array", items: { type: "string" }, uniqueItems: true }, "uniqueItems"],
      [{ type: "object", patternProperties: { x: {} } }, "patternProperties"],
      [{ not: { type: "null" } }, "not"],
      [{ type: "string", flavour: "mild" }, "flavour"],
    ] as const) {
      expect(refusalText(() => compileJsonSchema(schema))).toContain(`"${keyword}"`);
    }
    expect(refusalText(() => compileJsonSchema({ type: "string", anyOf: [{ maxLength: 2 }] }))).toStartWith("constraint.unsupported-schema:");
  });

  it("refuses hostile schemas: too deep, too many subschemas, recursive references", () => {
    let deep: unknown = { type: "string" };
    for (let i = 0; i < MAX_SCHEMA_DEPTH + 2; i++) deep = { type: "array", items: deep };
    expect(refusalText(() => compileJsonSchema(deep))).toMatch(/^constraint\.unsupported-schema: .*deeper than 32/);

    const wide = { type: "object", properties: Object.fromEntries(Array.from({ length: MAX_SCHEMA_NODES + 1 }, (_, i) => [`p${i}`, { type: "null" }])) };
    expect(refusalText(() => compileJsonSchema(wide))).toMatch(/^constraint\.unsupported-schema: .*more than 10000 subschemas/);

    const recursive = { $defs: { node: { type: "object", properties: { next: { $ref: "#/$defs/node" } } } }, $ref: "#/$defs/node" };
    expect(refusalText(() => compileJsonSchema(recursive))).toMatch(/^constraint\.unsupported-schema: .*recursive reference/);

    // A diamond of references (2^15 paths) compiles each definition once and repeats no anyOf option.
    const defs: Record<string, unknown> = { d0: { type: "integer" } };
    for (let i = 1; i <= 15; i++) defs[`d${i}`] = { anyOf: [{ $ref: `#/$defs/d${i - 1}` }, { $ref: `#/$defs/d${i - 1}` }] };
    expect(compileJsonSchema({ $defs: defs, $ref: "#/$defs/d15" })).toMatchObject({ kind: "number", integer: true });
  });

  it("refuses schemas no value satisfies, and malformed ones", () => {
    expect(refusalText(() => compileJsonSchema({ type: "string", minLength: 5, maxLength: 2 }))).toStartWith("constraint.unsatisfiable:");
    expect(refusalText(() => compileJsonSchema({ type: "array", minItems: 3, maxItems: 1 }))).toStartWith("constraint.unsatisfiable:");
    expect(refusalText(() => compileJsonSchema({ type: "integer", enum: ["a", 1.5] }))).toStartWith("constraint.unsatisfiable:");
    expect(refusalText(() => compileJsonSchema({ type: "object", required: ["x"] }))).toStartWith("constraint.unsatisfiable:");
    expect(refusalText(() => compileJsonSchema({ type: "strin" }))).toStartWith("constraint.invalid-schema:");
    expect(refusalText(() => compileJsonSchema({ $ref: "#/$defs/missing" }))).toStartWith("constraint.invalid-schema:");
    expect(refusalText(() => compileJsonSchema({ $ref: "https://example.com/s.json" }))).toStartWith("constraint.unsupported-schema:");
    expect(refusalText(() => compileJsonSchema({ type: "array", minItems: -1 }))).toStartWith("constraint.invalid-schema:");
  });

  it("resolves $defs and definitions references and ignores annotations", () => {
    const node = compileJsonSchema({
      title: "t",
      description: "d",
      $defs: { pt: { type: "object", properties: { x: { type: "number", format: "double" } }, required: ["x"] } },
      definitions: { color: { enum: ["red", "blue"], default: "red" } },
      type: "object",
      properties: { at: { $ref: "#/$defs/pt" }, c: { $ref: "#/definitions/color" } },
      required: ["at", "c"],
    });
    expect(matchesSchema({ at: { x: 1.5 }, c: "red" }, node)).toBe(true);
    expect(schemaErrors({ at: {}, c: "green" }, node)).toEqual(['$.at: missing required property "x"', '$.c: "green" is not one of ["red","blue"]']);
  });
});

describe("validating parsed JSON against a compiled schema", () => {
  it("applies each supported keyword", () => {
    const node = compileJsonSchema({
      type: "object",
      properties: {
        n: { type: "integer" },
        s: { type: ["string", "null"], minLength: 2, maxLength: 3 },
        a: { type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 2 },
        e: { oneOf: [{ const: 7 }, { type: "string", maxLength: 1 }] },
      },
      required: ["n"],
    });
    expect(matchesSchema({ n: 3, s: null, a: [true], e: 7 }, node)).toBe(true);
    expect(matchesSchema({ n: 3, s: "😀😀", e: "x" }, node)).toBe(true); // lengths count code points
    expect(matchesSchema({ n: 3.5 }, node)).toBe(false);
    expect(matchesSchema({ n: 1, s: "abcd" }, node)).toBe(false);
    expect(matchesSchema({ n: 1, a: [] }, node)).toBe(false);
    expect(matchesSchema({ n: 1, a: [1] }, node)).toBe(false);
    expect(matchesSchema({ n: 1, e: 8 }, node)).toBe(false);
    expect(matchesSchema({ n: 1, extra: 1 }, node)).toBe(false); // strict: only declared properties
    expect(matchesSchema({}, node)).toBe(false);
    const open = compileJsonSchema({ type: "object", additionalProperties: { type: "integer" } });
    expect(matchesSchema({ any: 1 }, open)).toBe(true);
    expect(matchesSchema({ any: "1" }, open)).toBe(false);
  });
});
