// PTX instruction counts per CUDA kernel, without a GPU: compiles each .cu file
// to PTX with nvcc and prints, per kernel whose demangled name matches
// --kernel, its instruction total and the counts of the --ops opcodes (an
// opcode counts every type suffix after it: "cvt" takes cvt.rn.f32.s32 and
// the rest). A static measure for comparing versions of a kernel, not a timing
// (src/runtime/cuda/ptx-count.ts says what PTX leaves out).
//
//   npx bun scripts/cuda-ptx-count.ts --kernel 'mmv<39, 1, 1>' kernels/cuda/matmul_mxfp4.cu
//   npx bun scripts/cuda-ptx-count.ts --ops cvt.rn.f32.s32,mma,ld.shared --kernel mmq_kernel kernels/cuda/matmul_*.cu
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { countPtx, opsStartingWith } from "../src/runtime/cuda/ptx-count.ts";

const args = process.argv.slice(2);
let arch = "sm_90", kernel = /./, ops = ["dp4a", "mma", "prmt", "cvt", "ld.global", "ld.shared", "st.shared"];
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--arch") arch = args[++i] ?? usage("--arch needs a value (sm_80, sm_90)");
  else if (a === "--kernel") kernel = new RegExp(args[++i] ?? usage("--kernel needs a pattern"));
  else if (a === "--ops") ops = (args[++i] ?? usage("--ops needs a comma-separated list")).split(",").filter(Boolean);
  else if (a.startsWith("--")) usage(`unknown flag ${a}`);
  else files.push(a);
}
if (files.length === 0) usage("give one or more .cu files");
const nvcc = Bun.which("nvcc") ?? "/usr/local/cuda/bin/nvcc";
const cxxfilt = Bun.which("c++filt");

const dir = mkdtempSync(join(tmpdir(), "psionic-ptx-"));
try {
  console.log(`| kernel | instructions | ${ops.join(" | ")} |`);
  console.log(`|---|---:|${ops.map(() => "---:").join("|")}|`);
  for (const file of files) {
    const out = join(dir, `${basename(file)}.ptx`);
    console.error(`nvcc -arch=${arch} -ptx ${file} ...`);
    const run = Bun.spawnSync([nvcc, "-O3", "-std=c++17", `-arch=${arch}`, "-ptx", file, "-o", out], { stderr: "pipe" });
    if (run.exitCode !== 0) throw new Error(`nvcc failed on ${file}:\n${run.stderr.toString()}`);
    const kernels = countPtx(await Bun.file(out).text());
    const names = demangle(kernels.map((k) => k.entry));
    kernels.forEach((k, i) => {
      if (!kernel.test(names[i]!)) return;
      console.log(`| ${names[i]} | ${k.total} | ${ops.map((op) => opsStartingWith(k, op)).join(" | ")} |`);
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Mangled names -> "mmv<39, 1, 1>" (return type and parameters dropped); as they are without c++filt.
function demangle(entries: string[]): string[] {
  if (!cxxfilt || entries.length === 0) return entries;
  const run = Bun.spawnSync([cxxfilt], { stdin: new TextEncoder().encode(entries.join("\n") + "\n") });
  const lines = run.stdout.toString().split("\n");
  return entries.map((e, i) => (lines[i] ?? e).replace(/^void /, "").replace(/\(.*\)$/, ""));
}

function usage(message: string): never {
  console.error(`cuda-ptx-count: ${message}\nusage: npx bun scripts/cuda-ptx-count.ts [--arch sm_90] [--kernel REGEX] [--ops op,op] FILE.cu...`);
  process.exit(2);
}
