// Token-for-token parity with llama.cpp for a llama-bpe vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("llama-bpe", () => buildSynthVocab({ kind: "bpe", pre: "llama-bpe", vocabSize: 8704 }));
