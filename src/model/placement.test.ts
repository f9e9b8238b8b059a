// -ngl: a model whose layers are split between two backends computes what it
// computes on one. Two CPU backends stand in for GPU + CPU (the CUDA backend
// runs the same code on a GPU machine): the split is plumbing only, so every
// logit must be bit-identical, for every split point, through prefill, decode
// and a two-sequence batch; each backend holds only its own layers' weights
// and KV, and a tied output head is loaded on the backend that multiplies it.
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../gguf/reader.ts";
import { GGMLType } from "../gguf/types.ts";
import { CpuBackend } from "../runtime/cpu/cpu-backend.ts";
import { Model } from "./model.ts";
import { LayerPlacement, sameBackendNext } from "./placement.ts";
import { synthesize } from "./synth.ts";

const dir = mkdtempSync(join(tmpdir(), "psionic-placement-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A CPU backend that records the names of the weights loaded onto it. */
function recordingBackend(): { backend: CpuBackend; names: string[] } {
  const backend = new CpuBackend({ threads: 1 });
  const names: string[] = [];
  const load = backend.loadWeight.bind(backend);
  backend.loadWeight = (name, type, dims, bytes) => {
    names.push(name);
    return load(name, type, dims, bytes);
  };
  return { backend, names };
}

function run(model: Model): Float32Array[] {
  const out: Float32Array[] = [];
  out.push(model.backend.download(model.forward(Int32Array.of(1, 5, 9, 14, 3, 7, 2, 11, 4, 8, 6, 12, 10, 13, 15, 16, 17, 18, 19, 20))));
  for (const t of [21, 22, 23]) out.push(model.backend.download(model.forward(Int32Array.of(t))));
  // Two sequences in one batch, each with its own cache.
  const a = model.newCache(), b = model.newCache();
  out.push(model.backend.download(model.forwardBatch([
    { cache: a, tokens: Int32Array.of(3, 1, 4, 1, 5), outputRows: [4] },
    { cache: b, tokens: Int32Array.of(9, 2, 6), outputRows: [0, 2] },
  ])));
  return out;
}

describe("-ngl: layers split between two backends", () => {
  for (const [arch, preset] of [["llama", "tiny"], ["llama", "tiny-tied"], ["gpt-oss", "tiny"]] as const) {
    it(`${arch} ${preset}: every split point gives the one-backend logits bit for bit`, () => {
      const path = join(dir, `${arch}-${preset}.gguf`);
      synthesize({ preset: { arch, name: preset }, type: GGMLType.Q8_0, seed: 3 }, path);
      const file = openGGUF(path);
      const whole = run(Model.load(file, new CpuBackend({ threads: 1 }), { contextLimit: 64 }));
      const layers = Model.load(file, new CpuBackend({ threads: 1 }), { contextLimit: 8 }).hparams.layers;
      for (let n = 0; n <= layers + 1; n++) {
        const first = recordingBackend(), rest = recordingBackend();
        const model = Model.load(file, first.backend, { contextLimit: 64, offload: { layers: n, rest: rest.backend } });
        expect(model.backend).toBe(n > layers ? first.backend : rest.backend);
        const split = run(model);
        split.forEach((logits, i) => expect({ n, i, logits: Array.from(logits) }).toEqual({ n, i, logits: Array.from(whole[i]!) }));
        // Each backend holds its own layers' weights only.
        for (let il = 0; il < layers; il++) {
          const on = il < n ? first.names : rest.names, off = il < n ? rest.names : first.names;
          expect(on.some((name) => name.startsWith(`blk.${il}.`))).toBe(true);
          expect(off.some((name) => name.startsWith(`blk.${il}.`))).toBe(false);
        }
        expect((n > 0 ? first : rest).names).toContain("token_embd.weight");
        expect((n > layers ? first : rest).names).toContain("output_norm.weight");
      }
    }, 60_000);
  }

  it("refuses a negative or fractional -ngl by name", () => {
    const cpu = new CpuBackend({ threads: 1 });
    expect(() => LayerPlacement.split(cpu, -1, cpu)).toThrow(/-ngl must be a non-negative integer/);
    expect(() => LayerPlacement.split(cpu, 1.5, cpu)).toThrow(/-ngl must be a non-negative integer/);
  });

  it("a layer's last add normalizes for the next layer only where one backend runs both (sameBackendNext)", () => {
    const gpu = new CpuBackend({ threads: 1 }), host = new CpuBackend({ threads: 1 });
    const layers = ["l0", "l1", "l2", "l3"];
    const nexts = (p: LayerPlacement) => layers.map((_, il) => sameBackendNext(p, layers, il));
    expect(nexts(LayerPlacement.single(gpu))).toEqual(["l1", "l2", "l3", undefined]);
    // -ngl 2: layer 1's sum crosses to the other backend, which normalizes it itself.
    expect(nexts(LayerPlacement.split(gpu, 2, host))).toEqual(["l1", undefined, "l3", undefined]);
    expect(nexts(LayerPlacement.split(gpu, 0, host))).toEqual(["l1", "l2", "l3", undefined]);
  });
});
