// A plain validator: does a parsed JSON value satisfy a compiled schema? It
// shares nothing with the byte-level recognizer but the node graph, so tests
// (and the server, double-checking constrained output) get an independent
// opinion. Semantics are JSON Schema's for the supported subset, with the
// generator's one narrowing: objects without additionalProperties accept only
// their declared properties (OpenAI strict mode).
import type { SchemaNode } from "./json-schema.ts";

/** Problems with `value` against `node`, each "path: what"; empty when it validates. */
export function schemaErrors(value: unknown, node: SchemaNode, path = "$"): string[] {
  const out: string[] = [];
  check(value, node, path, out);
  return out;
}

export function matchesSchema(value: unknown, node: SchemaNode): boolean {
  return schemaErrors(value, node).length === 0;
}

function check(value: unknown, node: SchemaNode, path: string, out: string[]): void {
  switch (node.kind) {
    case "anyOf": {
      if (!node.options.some((o) => schemaErrors(value, o, path).length === 0)) out.push(`${path}: matches none of ${node.options.length} options`);
      return;
    }
    case "literal": {
      if (!node.values.some((v) => deepEqual(v, value))) out.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(node.values)}`);
      return;
    }
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) out.push(`${path}: expected a number`);
      else if (node.integer && !Number.isInteger(value)) out.push(`${path}: expected an integer, got ${value}`);
      return;
    }
    case "string": {
      if (typeof value !== "string") return void out.push(`${path}: expected a string`);
      const length = [...value].length;
      if (length < node.minLength) out.push(`${path}: ${length} characters, fewer than minLength ${node.minLength}`);
      if (length > node.maxLength) out.push(`${path}: ${length} characters, more than maxLength ${node.maxLength}`);
      return;
    }
    case "array": {
      if (!Array.isArray(value)) return void out.push(`${path}: expected an array`);
      if (value.length < node.minItems) out.push(`${path}: ${value.length} items, fewer than minItems ${node.minItems}`);
      if (value.length > node.maxItems) out.push(`${path}: ${value.length} items, more than maxItems ${node.maxItems}`);
      value.forEach((item, i) => check(item, node.items, `${path}[${i}]`, out));
      return;
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return void out.push(`${path}: expected an object`);
      const record = value as Record<string, unknown>;
      for (const p of node.properties) {
        if (Object.hasOwn(record, p.name)) check(record[p.name], p.node, `${path}.${p.name}`, out);
        else if (p.required) out.push(`${path}: missing required property "${p.name}"`);
      }
      for (const key of Object.keys(record)) {
        if (node.properties.some((p) => p.name === key)) continue;
        if (node.additional === null) out.push(`${path}: property "${key}" is not allowed`);
        else check(record[key], node.additional, `${path}.${key}`, out);
      }
      return;
    }
  }
}

/** Structural equality of JSON values (object key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
