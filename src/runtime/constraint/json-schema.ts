// Compiles a JSON schema (the subset below) into the node graph that the
// byte-level recognizer (json-automaton.ts) and the validator
// (schema-validate.ts) both walk. Everything the subset cannot enforce is
// refused up front, naming the keyword and where it sits, so a request never
// gets output that merely looks constrained.
//
// Supported keywords:
//   type            object, array, string, number, integer, boolean, null, or a list of them
//   properties, required
//   additionalProperties   false, true or a schema. Absent: only the declared
//                   properties are generated (OpenAI strict mode).
//   items, minItems, maxItems
//   enum, const     any JSON values; generated as their compact JSON text
//   anyOf, oneOf    both treated as anyOf (not combined with other validation keywords)
//   minLength, maxLength   counted in Unicode code points, as JSON Schema does
//   $ref            "#/$defs/NAME" or "#/definitions/NAME"; recursive references are refused
// Ignored (annotations): description, title, default, examples, format, $comment,
//   $schema, $id, deprecated, readOnly, writeOnly; $defs/definitions are read through $ref.
// Everything else (pattern, minimum, allOf, not, ...) is refused with
// `constraint.unsupported-schema`. A schema without `type` is typed by its
// keywords (properties -> object, items -> array, ...); `{}` or `true` is any value.
// Limits: nesting depth 32, 10,000 schema nodes, 64 KiB of enum/const text.
//
// Generated numbers are bounded so they survive a round trip through a
// double: at most 15 integer digits, 15 fraction digits and 2 exponent digits.
import { refuse } from "../../util/errors.ts";
import { deepEqual, matchesSchema } from "./schema-validate.ts";

export interface ObjectProperty {
  name: string;
  /** JSON.stringify(name) as UTF-8: the exact bytes the recognizer accepts for this key. */
  key: Uint8Array;
  node: SchemaNode;
  required: boolean;
}

export type SchemaNode =
  | { kind: "object"; properties: ObjectProperty[]; additional: SchemaNode | null; minBytes: number }
  | { kind: "array"; items: SchemaNode; minItems: number; maxItems: number; minBytes: number }
  | { kind: "string"; minLength: number; maxLength: number; minBytes: number }
  | { kind: "number"; integer: boolean; minBytes: number }
  /** enum/const/boolean/null: exactly one of these values, written as `texts` (compact JSON, UTF-8). */
  | { kind: "literal"; values: unknown[]; texts: Uint8Array[]; minBytes: number }
  /** One of the options (never itself an anyOf). */
  | { kind: "anyOf"; options: SchemaNode[]; minBytes: number };

export type ObjectNode = Extract<SchemaNode, { kind: "object" }>;

export const MAX_SCHEMA_DEPTH = 32;
export const MAX_SCHEMA_NODES = 10_000;
export const MAX_LITERAL_BYTES = 64 * 1024;
/** Largest minItems/minLength/maxItems/maxLength taken literally; larger bounds are refused. */
const MAX_COUNT = 10_000_000;

const utf8 = new TextEncoder();
const literal = (values: unknown[]): SchemaNode => {
  const texts = values.map((v) => utf8.encode(JSON.stringify(v)));
  return { kind: "literal", values, texts, minBytes: Math.min(...texts.map((t) => t.length)) };
};

/** Any JSON value: the graph json_object mode and `{}` use (it refers to itself). */
export const ANY_VALUE: SchemaNode = { kind: "anyOf", options: [], minBytes: 1 };
/** Any JSON object with any keys and values: `response_format: {type: "json_object"}`. */
export const ANY_OBJECT: ObjectNode = { kind: "object", properties: [], additional: ANY_VALUE, minBytes: 2 };
const ANY_ARRAY: SchemaNode = { kind: "array", items: ANY_VALUE, minItems: 0, maxItems: Infinity, minBytes: 2 };
(ANY_VALUE as { options: SchemaNode[] }).options.push(
  ANY_OBJECT,
  ANY_ARRAY,
  { kind: "string", minLength: 0, maxLength: Infinity, minBytes: 2 },
  { kind: "number", integer: false, minBytes: 1 },
  literal([true, false, null]),
);

const ANNOTATIONS = new Set([
  "description", "title", "default", "examples", "format", "$comment", "$schema", "$id", "deprecated",
  "readOnly", "writeOnly", "$defs", "definitions",
]);
const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties"];
const ARRAY_KEYWORDS = ["items", "minItems", "maxItems"];
const STRING_KEYWORDS = ["minLength", "maxLength"];
const HANDLED = new Set([...OBJECT_KEYWORDS, ...ARRAY_KEYWORDS, ...STRING_KEYWORDS, "type", "enum", "const", "anyOf", "oneOf", "$ref"]);
const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;
type TypeName = (typeof TYPES)[number];

type Json = Record<string, unknown>;

class Compiler {
  private nodes = 0;
  private literalBytes = 0;
  private readonly refsInProgress = new Set<string>();
  private readonly refCache = new Map<string, SchemaNode>();
  constructor(private readonly root: unknown) {}

  compile(schema: unknown, path: string, depth: number): SchemaNode {
    if (depth > MAX_SCHEMA_DEPTH) unsupported(path, `nests deeper than ${MAX_SCHEMA_DEPTH} levels`);
    if (++this.nodes > MAX_SCHEMA_NODES) unsupported(path, `the schema has more than ${MAX_SCHEMA_NODES} subschemas`);
    if (schema === true) return ANY_VALUE;
    if (schema === false) unsatisfiable(path, "the schema `false` allows no value");
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) invalid(path, "a schema must be an object or a boolean");
    const s = schema as Json;
    for (const key of Object.keys(s)) {
      if (!HANDLED.has(key) && !ANNOTATIONS.has(key)) {
        unsupported(`${path}/${escapePointer(key)}`, `keyword "${key}" is not supported (psionic cannot enforce it while generating)`);
      }
    }
    const validating = Object.keys(s).filter((k) => HANDLED.has(k));
    if (s.$ref !== undefined) {
      if (validating.length > 1) unsupported(path, `"$ref" cannot be combined with ${others(validating, "$ref")}`);
      return this.ref(s.$ref, `${path}/$ref`, depth);
    }
    for (const combinator of ["anyOf", "oneOf"] as const) {
      if (s[combinator] === undefined) continue;
      if (validating.length > 1) unsupported(path, `"${combinator}" cannot be combined with ${others(validating, combinator)}`);
      return this.anyOf(s[combinator], `${path}/${combinator}`, depth);
    }
    if (s.enum !== undefined || s.const !== undefined) return this.enumeration(s, path, depth);
    return this.typed(s, path, depth);
  }

  private typed(s: Json, path: string, depth: number): SchemaNode {
    let types: TypeName[];
    if (s.type === undefined) {
      const has = (list: string[]) => list.some((k) => s[k] !== undefined);
      const implied = [has(OBJECT_KEYWORDS) && "object", has(ARRAY_KEYWORDS) && "array", has(STRING_KEYWORDS) && "string"]
        .filter((t): t is TypeName => t !== false);
      if (implied.length > 1) unsupported(path, `keywords of several types (${implied.join(", ")}) without "type"; say which type`);
      if (implied.length === 0) return ANY_VALUE;
      types = implied;
    } else {
      const list = Array.isArray(s.type) ? s.type : [s.type];
      if (list.length === 0) invalid(`${path}/type`, "an empty type list allows no value");
      types = list.map((t, i) => {
        if (!TYPES.includes(t as TypeName)) invalid(`${path}/type${Array.isArray(s.type) ? `/${i}` : ""}`, `unknown type ${JSON.stringify(t)}`);
        return t as TypeName;
      });
    }
    const options = [...new Set(types)].map((t) => this.ofType(t, s, path, depth));
    return options.length === 1 ? options[0]! : anyOfNode(options);
  }

  private ofType(type: TypeName, s: Json, path: string, depth: number): SchemaNode {
    switch (type) {
      case "object":
        return this.object(s, path, depth);
      case "array":
        return this.array(s, path, depth);
      case "string": {
        const minLength = count(s.minLength, `${path}/minLength`, 0);
        const maxLength = count(s.maxLength, `${path}/maxLength`, Infinity);
        if (minLength > maxLength) unsatisfiable(path, `minLength ${minLength} exceeds maxLength ${maxLength}`);
        return { kind: "string", minLength, maxLength, minBytes: 2 + minLength };
      }
      case "number":
      case "integer":
        return { kind: "number", integer: type === "integer", minBytes: 1 };
      case "boolean":
        return literal([true, false]);
      case "null":
        return literal([null]);
    }
  }

  private object(s: Json, path: string, depth: number): SchemaNode {
    const props = s.properties ?? {};
    if (typeof props !== "object" || props === null || Array.isArray(props)) invalid(`${path}/properties`, "must be an object");
    const required = s.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) invalid(`${path}/required`, "must be a list of strings");
    const requiredSet = new Set(required as string[]);
    let additional: SchemaNode | null = null;
    const ap = s.additionalProperties;
    if (ap !== undefined && ap !== false) additional = this.compile(ap, `${path}/additionalProperties`, depth + 1);
    const properties: ObjectProperty[] = Object.entries(props as Json).map(([name, sub]) => ({
      name,
      key: utf8.encode(JSON.stringify(name)),
      node: this.compile(sub, `${path}/properties/${escapePointer(name)}`, depth + 1),
      required: requiredSet.has(name),
    }));
    for (const name of requiredSet) {
      if (properties.some((p) => p.name === name)) continue;
      if (additional === null) unsatisfiable(`${path}/required`, `"${name}" is required but not a property, and additionalProperties is not allowed`);
      properties.push({ name, key: utf8.encode(JSON.stringify(name)), node: additional, required: true });
    }
    const req = properties.filter((p) => p.required);
    const minBytes = 2 + req.reduce((sum, p) => sum + p.key.length + 1 + p.node.minBytes, 0) + Math.max(0, req.length - 1);
    return { kind: "object", properties, additional, minBytes };
  }

  private array(s: Json, path: string, depth: number): SchemaNode {
    const minItems = count(s.minItems, `${path}/minItems`, 0);
    let maxItems = count(s.maxItems, `${path}/maxItems`, Infinity);
    if (minItems > maxItems) unsatisfiable(path, `minItems ${minItems} exceeds maxItems ${maxItems}`);
    let items = ANY_VALUE;
    if (s.items === false) {
      if (minItems > 0) unsatisfiable(path, `"items": false allows no item but minItems is ${minItems}`);
      maxItems = 0;
    } else if (s.items !== undefined) {
      if (Array.isArray(s.items)) unsupported(`${path}/items`, "tuple \"items\" (a list of schemas) is not supported");
      items = this.compile(s.items, `${path}/items`, depth + 1);
    }
    return { kind: "array", items, minItems, maxItems, minBytes: 2 + minItems * items.minBytes + Math.max(0, minItems - 1) };
  }

  private enumeration(s: Json, path: string, depth: number): SchemaNode {
    let values: unknown[];
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum)) invalid(`${path}/enum`, "must be a list");
      values = s.enum;
      if (s.const !== undefined) values = values.filter((v) => deepEqual(v, s.const));
    } else {
      values = [s.const];
    }
    const rest: Json = { ...s };
    delete rest.enum;
    delete rest.const;
    const restNode = Object.keys(rest).some((k) => HANDLED.has(k)) ? this.typed(rest, path, depth) : ANY_VALUE;
    const kept: unknown[] = [];
    for (const v of values) {
      if (!isJson(v, 0)) invalid(path, `enum/const value ${String(v)} is not JSON`);
      if (matchesSchema(v, restNode) && !kept.some((k) => deepEqual(k, v))) kept.push(v);
    }
    if (kept.length === 0) unsatisfiable(path, "no enum/const value satisfies the rest of the schema");
    const node = literal(kept);
    if (node.kind === "literal") {
      this.literalBytes += node.texts.reduce((sum, t) => sum + t.length, 0);
      if (this.literalBytes > MAX_LITERAL_BYTES) unsupported(path, `enum/const values exceed ${MAX_LITERAL_BYTES} bytes of JSON`);
    }
    return node;
  }

  private anyOf(list: unknown, path: string, depth: number): SchemaNode {
    if (!Array.isArray(list) || list.length === 0) invalid(path, "must be a non-empty list of schemas");
    const options: SchemaNode[] = [];
    list.forEach((sub, i) => {
      const node = this.compile(sub, `${path}/${i}`, depth + 1);
      for (const option of node.kind === "anyOf" ? node.options : [node]) if (!options.includes(option)) options.push(option);
    });
    return options.length === 1 ? options[0]! : anyOfNode(options);
  }

  private ref(ref: unknown, path: string, depth: number): SchemaNode {
    if (typeof ref !== "string") invalid(path, "must be a string");
    const cached = this.refCache.get(ref);
    if (cached) return cached;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    if (!m) unsupported(path, `only "#/$defs/NAME" and "#/definitions/NAME" references are supported, got ${JSON.stringify(ref)}`);
    if (this.refsInProgress.has(ref)) unsupported(path, `recursive reference ${JSON.stringify(ref)} is not supported`);
    const name = m[2]!.replaceAll("~1", "/").replaceAll("~0", "~");
    const defs = (this.root as Json)[m[1]!];
    const target = typeof defs === "object" && defs !== null ? (defs as Json)[name] : undefined;
    if (target === undefined) invalid(path, `reference ${JSON.stringify(ref)} names no definition`);
    this.refsInProgress.add(ref);
    const node = this.compile(target, `#/${m[1]}/${m[2]}`, depth + 1);
    this.refsInProgress.delete(ref);
    this.refCache.set(ref, node);
    return node;
  }
}

/** Compiles `schema` (the subset at the top of this file) or refuses it, naming the keyword and its path. */
export function compileJsonSchema(schema: unknown): SchemaNode {
  return new Compiler(schema).compile(schema, "#", 0);
}

function anyOfNode(options: SchemaNode[]): SchemaNode {
  return { kind: "anyOf", options, minBytes: Math.min(...options.map((o) => o.minBytes)) };
}

function count(v: unknown, path: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) invalid(path, `must be a non-negative integer, got ${JSON.stringify(v)}`);
  if (v > MAX_COUNT) unsupported(path, `${v} is larger than the supported ${MAX_COUNT}`);
  return v;
}

function isJson(v: unknown, depth: number): boolean {
  if (depth > MAX_SCHEMA_DEPTH) return false;
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  if (typeof v === "object") return Object.values(v as Json).every((x) => isJson(x, depth + 1));
  return false;
}

function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function others(keys: string[], except: string): string {
  return keys.filter((k) => k !== except).map((k) => `"${k}"`).join(", ");
}

function unsupported(path: string, why: string): never {
  return refuse("constraint.unsupported-schema", `JSON schema at ${path}: ${why}`);
}

function invalid(path: string, why: string): never {
  return refuse("constraint.invalid-schema", `JSON schema at ${path}: ${why}`);
}

function unsatisfiable(path: string, why: string): never {
  return refuse("constraint.unsatisfiable", `JSON schema at ${path}: ${why}`);
}
