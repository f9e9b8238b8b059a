// Validation of JSON files the trainer reads (lanes, manifests, checkpoint
// pointers) against their valibot schema: the refusal names the file and the
// first offending field, e.g. `lanes/x.json: field model.heads: ...`.
import * as v from "valibot";
import { readFileSync } from "node:fs";
import { refuse } from "../util/errors.ts";

function issuePath(issue: v.BaseIssue<unknown>): string {
  if (!issue.path || issue.path.length === 0) return "(top level)";
  return issue.path.map((item) => String(item.key)).join(".");
}

/** The schema's output, or a refusal with `code` naming `where` and the field. */
export function parseWithSchema<S extends v.GenericSchema>(schema: S, value: unknown, where: string, code: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0]!;
  const field = issuePath(issue);
  const what = issue.input === undefined && issue.path?.length ? "required but missing" : issue.message;
  return refuse(code, `${where}: field ${field}: ${what}`);
}

/** Reads and parses a JSON file; a missing or unparsable file is refused with `code`. */
export function readJsonFile(path: string, code: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return refuse(code, `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    return refuse(code, `${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
}
