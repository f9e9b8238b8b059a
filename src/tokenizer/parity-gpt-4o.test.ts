// Token-for-token parity with llama.cpp for a gpt-4o vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("gpt-4o", () => buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: 9800 }));
