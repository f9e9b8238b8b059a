import { notYetAvailable } from "./command.ts";
// Placeholder until the inspect command lands in this same change.
export const inspectCommand = notYetAvailable("inspect", "GGUF inspect", "psionic gguf inspect", "in progress");
