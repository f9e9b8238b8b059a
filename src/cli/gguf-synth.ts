import { notYetAvailable } from "./command.ts";
// Placeholder until the synth command lands in this same change.
export const synthCommand = notYetAvailable("synth", "GGUF synth", "psionic gguf synth", "in progress");
