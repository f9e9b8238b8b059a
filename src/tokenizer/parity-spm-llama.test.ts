// Token-for-token parity with llama.cpp for a spm-llama vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("spm-llama", () => buildSynthVocab({ kind: "spm", vocabSize: 8704 }));
