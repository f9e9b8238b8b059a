// The default model: a small llama the project trains itself (`psionic train
// --lane brown-default`, exported to fixtures/default-model.gguf). The
// executable embeds it, so `psionic serve` and `psionic generate` work with no
// -m; from source it is read from fixtures/.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { extractEmbedded } from "./embedded.ts";

/** Name of the embedded file, and its path relative to the repository root. */
export const DEFAULT_MODEL_FILE = "fixtures/default-model.gguf";

/** The name requests use for it in `model`. */
export const DEFAULT_MODEL_ID = "psionic-default";

/**
 * Path of the default model on disk, or undefined when this build has none.
 * $PSIONIC_DEFAULT_MODEL overrides it (a path; empty: no default model).
 */
export function defaultModelPath(): string | undefined {
  const override = process.env.PSIONIC_DEFAULT_MODEL;
  if (override !== undefined) return override === "" ? undefined : override;
  const embedded = extractEmbedded(DEFAULT_MODEL_FILE);
  if (embedded) return embedded;
  const fromSource = join(import.meta.dir, "../..", DEFAULT_MODEL_FILE);
  return existsSync(fromSource) ? fromSource : undefined;
}
