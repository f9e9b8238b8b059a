// Test preload: make sure build/libpsionic_cpu.so matches kernels/ before any test loads it.
// Without LD_PRELOAD: the sanitized emulator's checks preload libasan, which the compilers must not get.
const { LD_PRELOAD: _, ...env } = process.env;
const result = Bun.spawnSync([process.execPath, `${import.meta.dir}/../build.ts`, "--kernels-only", "--quiet"], { stdout: "inherit", stderr: "inherit", env });
if (result.exitCode !== 0) throw new Error("kernel build failed (see above); tests need build/libpsionic_cpu.so");
