// Token-for-token parity with llama.cpp for a qwen2 vocabulary trained on Brown.
import { describeParity } from "./parity-harness.ts";
import { buildSynthVocab } from "./vocab.ts";

describeParity("qwen2", () => buildSynthVocab({ kind: "bpe", pre: "qwen2", vocabSize: 8704 }));
