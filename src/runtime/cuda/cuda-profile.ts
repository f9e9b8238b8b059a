// PSIONIC_CUDA_PROFILE=1: device time per backend op, printed to stderr when
// the process exits. Each op is bracketed by events on the stream
// (kernels/cuda/profile.cu): "busy" is the op's own device time, "idle" the
// time the GPU waited before it started (the host had not launched it yet),
// "host" the wall time the call took on the host. Products are split by
// weight name (blk.N. removed) so the table says which matrix costs what. An op
// that falls back to another wrapped op (matmuls of mixed types) is counted as
// the inner op. Dense products also get "GB/s": their weights' bytes, summed
// over the calls, over the op's busy time, to set beside the card's copy bandwidth (a product
// that reads each weight byte once from memory can reach it; one that runs
// below it is bound by something else).
import { cudaKernels } from "../../../ffi/cuda.ts";
import { tensorBytes, typeLayout } from "../../gguf/types.ts";
import type { Product, Weight } from "../backend.ts";
import type { CudaBackend } from "./cuda-backend.ts";

const OPS = ["embed", "takeRows", "concatRows", "rmsNorm", "addRmsNorm", "matmul", "matmuls", "rope", "ropeQK", "add", "swiglu", "moe", "moeAdd", "moeAddRmsNorm",
  "storeKV", "attention", "attendSegments", "ropeAttendSegments", "argmaxRows", "topKRows", "download", "upload"] as const;
const weightName = (w: Weight) => w.name.replace(/^blk\.\d+\./, "");
const weightBytes = (w: Weight) => tensorBytes(typeLayout(w.type)!, w.dims.reduce((a, b) => a * b, 1));
const COLLECT_EVERY = 50_000;
// Ops that wait for the device anyway: collecting the marks (a sync) before one costs nothing extra.
const SYNCING = new Set<string>(["download", "argmaxRows", "topKRows"]);

export function profileBackend(backend: CudaBackend): void {
  const lib = cudaKernels();
  // Events around each op need the ops launched one by one, not recorded into graphs.
  backend.useGraphs(false);
  const labels: string[] = [];
  const ids = new Map<string, number>();
  const host: number[] = [];
  // Weight bytes the op's calls read in all (dense products; 0 for the rest).
  const weightBytesRead: number[] = [];
  let marks = 0;
  const busy: number[] = [], idle: number[] = [], count: number[] = [];
  const collect = () => {
    const n = labels.length;
    const b = new Float64Array(n), i = new Float64Array(n), c = new Float64Array(n);
    if (n === 0 || lib.psi_cuda_prof_collect(b, i, c, n) !== 0) return;
    for (let k = 0; k < n; k++) {
      busy[k] = (busy[k] ?? 0) + b[k]!; idle[k] = (idle[k] ?? 0) + i[k]!; count[k] = (count[k] ?? 0) + c[k]!;
    }
    marks = 0;
  };
  const idOf = (label: string) => {
    let id = ids.get(label);
    if (id === undefined) {
      ids.set(label, (id = labels.length));
      labels.push(label);
      host.push(0);
      weightBytesRead.push(0);
    }
    return id;
  };
  const target = backend as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const op of OPS) {
    const original = target[op]!.bind(backend);
    target[op] = (...args: unknown[]) => {
      const label = op === "matmul" ? `matmul ${weightName(args[1] as Weight)}`
        : op === "matmuls" ? `matmuls ${(args[1] as Product[]).map((p) => weightName(p.w).replace(/\.weight$/, "")).join("+")}` : op;
      const id = idOf(label);
      // Summed per call: one label's layers may hold different types (a Q4_K_M file's ffn_down).
      if (op === "matmul") weightBytesRead[id]! += weightBytes(args[1] as Weight);
      else if (op === "matmuls") weightBytesRead[id]! += (args[1] as Product[]).reduce((sum, p) => sum + weightBytes(p.w), 0);
      if (SYNCING.has(op) && marks > COLLECT_EVERY) collect();
      const start = performance.now();
      lib.psi_cuda_prof_begin(id);
      marks++;
      try {
        return original(...args);
      } finally {
        lib.psi_cuda_prof_end();
        host[id]! += performance.now() - start;
      }
    };
  }
  process.on("exit", () => {
    collect();
    const rows = labels.map((label, k) => ({ label, calls: count[k] ?? 0, busy: busy[k] ?? 0, idle: idle[k] ?? 0, host: host[k]!, bytes: weightBytesRead[k]! }))
      .filter((r) => r.calls > 0).sort((a, b) => b.busy + b.idle - (a.busy + a.idle));
    const total = rows.reduce((s, r) => s + r.busy + r.idle, 0);
    const lines = [`psionic cuda profile (ms; idle = GPU waiting for the launch before the op)`,
      `${"op".padEnd(34)} ${"calls".padStart(8)} ${"busy".padStart(10)} ${"idle".padStart(10)} ${"host".padStart(10)} ${"us/call".padStart(9)} ${"share".padStart(6)} ${"GB/s".padStart(8)}`];
    for (const r of rows) {
      lines.push(`${r.label.padEnd(34)} ${String(r.calls).padStart(8)} ${r.busy.toFixed(1).padStart(10)} ${r.idle.toFixed(1).padStart(10)} ${r.host.toFixed(1).padStart(10)} ${((r.busy * 1000) / r.calls).toFixed(1).padStart(9)} ${((100 * (r.busy + r.idle)) / total).toFixed(1).padStart(5)}% ${(r.bytes && r.busy ? (r.bytes / (r.busy * 1e6)).toFixed(1) : "-").padStart(8)}`);
    }
    console.error(lines.join("\n"));
  });
}
