// Typed refusals: every error a user can meet names what was refused and why.
// `code` is stable (machines branch on it), `message` is for people.

export class PsionicError extends Error {
  constructor(
    /** Stable machine-readable class, e.g. `gguf.truncated`, `cli.unknown-flag`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "PsionicError";
  }
}

/** A file, request or flag was malformed; the message says which part. */
export function refuse(code: string, message: string): never {
  throw new PsionicError(code, message);
}
