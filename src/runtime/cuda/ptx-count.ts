// Instruction counts per kernel from nvcc's PTX (scripts/cuda-ptx-count.ts):
// a static measure of a kernel's work that needs no GPU, for comparing two
// versions of the same kernel (an unrolled loop shows every copy of its body).
// PTX is ptxas's input, not the machine code: ptxas merges some operations
// (and/or into one LOP3, address arithmetic into load offsets) and expands
// others (64-bit and video instructions), so counts compare kernels, they do
// not predict cycles.

export interface KernelCount {
  entry: string; // the mangled .entry name
  total: number;
  ops: Map<string, number>; // opcode with its type suffixes (e.g. "cvt.rn.f32.s32") -> count
}

// Every .entry of a PTX module with its instruction counts. Labels, directives,
// braces and comments are not instructions; a guard predicate (@%p1, @!%p2) is
// dropped so the opcode is counted the same guarded or not.
export function countPtx(ptx: string): KernelCount[] {
  const kernels: KernelCount[] = [];
  let current: KernelCount | null = null;
  let depth = 0;
  for (const raw of ptx.split("\n")) {
    const line = raw.trim();
    const entry = /^(?:\.visible\s+)?\.entry\s+([A-Za-z0-9_$]+)/.exec(line);
    if (entry) {
      current = { entry: entry[1]!, total: 0, ops: new Map() };
      kernels.push(current);
      depth = 0;
      continue;
    }
    if (!current) continue;
    if (line.startsWith("{")) { depth++; continue; }
    if (line.startsWith("}")) {
      if (--depth === 0) current = null;
      continue;
    }
    if (depth === 0 || line === "" || line.startsWith("//") || line.startsWith(".") || line.endsWith(":")) continue;
    const op = line.replace(/^@!?%\w+\s+/, "").split(/[\s;]/)[0]!;
    current.ops.set(op, (current.ops.get(op) ?? 0) + 1);
    current.total++;
  }
  return kernels;
}

// Counts of the opcodes that start with `prefix` ("cvt" counts every conversion).
export function opsStartingWith(kernel: KernelCount, prefix: string): number {
  let n = 0;
  for (const [op, count] of kernel.ops) if (op === prefix || op.startsWith(prefix + ".")) n += count;
  return n;
}
