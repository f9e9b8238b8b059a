// The `# Tools` section of a harmony developer message: function tools as
// TypeScript-like declarations inside `namespace functions { ... }`.
//
// The JSON-schema conversion follows the reference renderer (openai-harmony's
// encoding.rs, `json_schema_to_typescript`) rule for rule, quirks included,
// because gpt-oss was trained on exactly that text: property descriptions
// above the property, defaults as a trailing comment (enum defaults unquoted),
// `integer` as `number`, a union for enums, `oneOf` as one variant per line.
// Callers check the schema with checkTools first (depth and size are bounded).
import type { ChatTool } from "./chat-types.ts";

type Schema = Record<string, unknown>;

function asSchema(value: unknown): Schema | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Schema) : undefined;
}

function stringField(schema: Schema | undefined, key: string): string | undefined {
  const value = schema?.[key];
  return typeof value === "string" ? value : undefined;
}

function isEnum(schema: Schema | undefined): boolean {
  const values = schema?.enum;
  return Array.isArray(values) && values.length > 0;
}

/**
 * `default: ...` for a comment. A string default is quoted unless the schema
 * is an enum (`// default: celsius`, as in the format guide); inside a
 * top-level `oneOf` the reference always writes JSON, so `quoteEnumDefault`.
 */
function defaultComment(schema: Schema, quoteEnumDefault: boolean): string | undefined {
  if (!("default" in schema)) return undefined;
  const value = schema.default;
  if (typeof value === "string") {
    return !isEnum(schema) ? `default: "${value}"` : quoteEnumDefault ? `default: ${JSON.stringify(value)}` : `default: ${value}`;
  }
  return `default: ${JSON.stringify(value) ?? "null"}`;
}

function withNullable(variant: Schema | undefined, type: string): string {
  return variant?.nullable === true && !type.includes("null") ? `${type} | null` : type;
}

interface OneOfContext {
  /** The property's own description was written above its name: the first variant omits its own. */
  skipFirstDescription: boolean;
  /** A variant description equal to the property's is not repeated. */
  propertyDescription?: string;
  /** Top-level unions write enum string defaults as JSON; property-level ones bare. */
  quoteEnumDefault: boolean;
}

/** One `oneOf` as lines ` | A // comment`, each variant indented three more spaces. */
function oneOfVariants(variants: unknown[], indent: string, context: OneOfContext): string {
  let out = "";
  variants.forEach((raw, i) => {
    const variant = asSchema(raw);
    out += `\n${indent} | ` + withNullable(variant, schemaToTypeScript(raw, `${indent}   `));
    const comments: string[] = [];
    const description = stringField(variant, "description");
    if (description !== undefined && !(i === 0 && context.skipFirstDescription) && description !== context.propertyDescription) {
      comments.push(description);
    }
    const defaulted = variant && defaultComment(variant, context.quoteEnumDefault);
    if (defaulted) comments.push(defaulted);
    if (comments.length > 0) out += ` // ${comments.join(" ")}`;
  });
  return out;
}

function objectType(schema: Schema, indent: string): string {
  let out = "";
  const description = stringField(schema, "description");
  if (description !== undefined) out += `${indent}// ${description}\n`;
  out += "{\n";
  const properties = asSchema(schema.properties);
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === "string") : []);
  for (const [key, raw] of Object.entries(properties ?? {})) {
    const property = asSchema(raw);
    const optional = required.has(key) ? "" : "?";
    const title = stringField(property, "title");
    if (title !== undefined) out += `${indent}// ${title}\n${indent}//\n`;
    const propertyDescription = stringField(property, "description");
    const hasOneOf = property !== undefined && "oneOf" in property;
    if (!hasOneOf && propertyDescription !== undefined) out += `${indent}// ${propertyDescription}\n`;
    const examples = property?.examples;
    if (Array.isArray(examples) && examples.length > 0) {
      out += `${indent}// Examples:\n`;
      for (const example of examples) if (typeof example === "string") out += `${indent}// - "${example}"\n`;
    }
    const variants = property?.oneOf;
    if (property && Array.isArray(variants)) {
      // The property description goes above the name unless the first variant repeats it.
      const firstDescription = stringField(asSchema(variants[0]), "description");
      const above = propertyDescription !== undefined && propertyDescription !== firstDescription;
      if (above) out += `${indent}// ${propertyDescription}\n`;
      const defaulted = defaultComment(property, false);
      if (defaulted) out += `${indent}// ${defaulted}\n`;
      out += `${indent}${key}${optional}:`;
      out += oneOfVariants(variants, indent, { skipFirstDescription: above, propertyDescription, quoteEnumDefault: false });
      out += `\n${indent},\n`;
      continue;
    }
    out += `${indent}${key}${optional}: ` + withNullable(property, schemaToTypeScript(raw, `${indent}    `)) + ",";
    const defaulted = !hasOneOf && property ? defaultComment(property, false) : undefined;
    if (defaulted) out += ` // ${defaulted}`;
    out += "\n";
  }
  return out + `${indent}}`;
}

/** A JSON schema as the TypeScript-like type harmony shows the model. */
export function schemaToTypeScript(raw: unknown, indent: string): string {
  const schema = asSchema(raw);
  if (!schema) return "any";
  if (Array.isArray(schema.oneOf)) return oneOfVariants(schema.oneOf, indent, { skipFirstDescription: false, quoteEnumDefault: true });
  if (Array.isArray(schema.type)) {
    const names = schema.type.filter((t) => typeof t === "string").map((t) => (t === "integer" ? "number" : t));
    if (names.length > 0) return names.join(" | ");
  }
  switch (schema.type) {
    case "object":
      return objectType(schema, indent);
    case "string": {
      const values = Array.isArray(schema.enum) ? schema.enum.filter((v) => typeof v === "string") : [];
      return values.length > 0 ? values.map((v) => `"${v}"`).join(" | ") : "string";
    }
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return "items" in schema ? `${schemaToTypeScript(schema.items, indent)}[]` : "Array<any>";
    default:
      return "any";
  }
}

/** Rust's `str::lines`: no final empty line, a trailing `\r` dropped. */
function lines(text: string): string[] {
  if (text === "") return [];
  const parts = text.split("\n").map((line) => line.replace(/\r$/, ""));
  if (text.endsWith("\n")) parts.pop();
  return parts;
}

/** `# Tools\n\n## functions\n\nnamespace functions {...} // namespace functions`. */
export function harmonyToolsSection(tools: readonly ChatTool[]): string {
  const parts = ["## functions\n", "namespace functions {\n"];
  for (const { function: fn } of tools) {
    for (const line of lines(fn.description ?? "")) parts.push(`// ${line}`);
    parts.push(
      fn.parameters !== undefined
        ? `type ${fn.name} = (_: ${schemaToTypeScript(fn.parameters, "")}) => any;\n`
        : `type ${fn.name} = () => any;\n`,
    );
  }
  parts.push("} // namespace functions");
  return `# Tools\n\n${parts.join("\n")}`;
}
