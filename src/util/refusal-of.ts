// Test helper: the PsionicError a call refuses with. Any other error is rethrown;
// a call that does not throw fails the test.
import { PsionicError } from "./errors.ts";

export function refusalOf(fn: () => unknown): PsionicError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PsionicError) return error;
    throw error;
  }
  throw new Error("expected a refusal (PsionicError), but the call returned");
}

/** `code: message` of the refusal, for assertions that match on both. */
export function refusalText(fn: () => unknown): string {
  const error = refusalOf(fn);
  return `${error.code}: ${error.message}`;
}
