// GET /v1/models: OpenAI's list shape, plus what psionic knows about each
// model (architecture, weight type, context, backend, digest, -ngl).
import type { ServedModel } from "../runtime/engine/protocol.ts";

export interface ModelListing {
  object: "list";
  data: {
    id: string;
    object: "model";
    created: number;
    owned_by: "psionic";
    architecture: string;
    quant: string;
    context: number;
    backend: string;
    digest: string;
    gpu_layers: number | null;
  }[];
}

/** `gpuLayers` is -ngl as given: recorded and shown, used once a GPU backend serves. */
export function listModels(models: readonly ServedModel[], gpuLayers: number | undefined): ModelListing {
  return {
    object: "list",
    data: models.map((m) => ({
      id: m.id,
      object: "model",
      created: m.created,
      owned_by: "psionic",
      architecture: m.architecture,
      quant: m.quant,
      context: m.context,
      backend: m.backend,
      digest: m.digest,
      gpu_layers: gpuLayers ?? null,
    })),
  };
}
