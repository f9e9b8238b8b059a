// POST /v1/embeddings: each input's mean-pooled, normalised final hidden
// state (the engine computes it). `encoding_format: "base64"` (the openai
// client's default) sends each vector as little-endian float32 bytes.
import { readJson } from "./body.ts";
import { reject } from "./errors.ts";
import { findModel, type ServeContext } from "./job.ts";
import { EmbeddingRequest } from "./schemas.ts";

function inputsOf(input: EmbeddingRequest["input"]): ({ text: string } | { tokens: number[] })[] {
  if (typeof input === "string") return [{ text: input }];
  if (input.length > 0 && typeof input[0] === "number") return [{ tokens: input as number[] }];
  return (input as (string | number[])[]).map((item) => (typeof item === "string" ? { text: item } : { tokens: item }));
}

function base64Floats(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}

export async function embeddings(request: Request, context: ServeContext): Promise<Response> {
  const body = await readJson(request, EmbeddingRequest, context.maxBodyBytes);
  const model = findModel(context.engine, body.model);
  if (body.dimensions != null && body.dimensions !== model.embeddingLength) {
    reject(400, "unsupported_dimensions", `dimensions ${body.dimensions}: this model's embeddings have ${model.embeddingLength} dimensions and are not truncated`, "dimensions");
  }
  const inputs = inputsOf(body.input);
  inputs.forEach((input, i) => {
    if ("text" in input && input.text.length === 0) reject(400, "empty_input", `input[${i}] is empty`, "input");
    if ("tokens" in input) {
      const bad = input.tokens.find((t) => t >= model.vocabSize);
      if (bad !== undefined) reject(400, "invalid_token", `input[${i}] holds token id ${bad}, outside the vocabulary of ${model.vocabSize}`, "input");
    }
  });
  const result = await context.engine.embed({ id: context.nextId("embd"), model: model.id, inputs });
  const base64 = body.encoding_format === "base64";
  return Response.json({
    object: "list",
    model: model.id,
    data: result.vectors.map((vector, index) => ({ object: "embedding", index, embedding: base64 ? base64Floats(vector) : vector })),
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  }, { headers: { "x-psionic-backend": model.backend, "x-psionic-model-digest": model.digest } });
}
