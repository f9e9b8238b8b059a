// Token-for-token parity with llama.cpp for a gpt2-default vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("gpt2-default", () => buildSynthVocab({ kind: "bpe", pre: "default", vocabSize: 8704 }));
