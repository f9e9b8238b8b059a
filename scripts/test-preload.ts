// Test preload: make sure build/libpsionic_cpu.so matches kernels/ before any test loads it.
// Without LD_PRELOAD: the sanitized emulator's checks preload libasan, which the compilers must not get.
const { LD_PRELOAD: _, ...env } = process.env;
const result = Bun.spawnSync([process.execPath, `${import.meta.dir}/../build.ts`, "--kernels-only", "--quiet"], { stdout: "inherit", stderr: "inherit", env });
if (result.exitCode !== 0) throw new Error("kernel build failed (see above); tests need build/libpsionic_cpu.so");

// The CUDA checks on the emulator's access-trace build (PSIONIC_CUDA_TRACE, scripts/cuda-access-report.ts):
// `bun test` runs no exit handlers, so the trace is written after the last test.
if (process.env.PSIONIC_CUDA_TRACE) {
  const { afterAll } = await import("bun:test");
  const { writeCudaTrace } = await import("../ffi/cuda.ts");
  afterAll(writeCudaTrace);
}
