// Token-for-token parity with llama.cpp for a gpt-2 vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("gpt-2", () => buildSynthVocab({ kind: "bpe", pre: "gpt-2", vocabSize: 6000 }));
