// Test preload: make sure build/libpsionic_cpu.so matches kernels/ before any test loads it.
const result = Bun.spawnSync([process.execPath, `${import.meta.dir}/../build.ts`, "--kernels-only", "--quiet"], { stdout: "inherit", stderr: "inherit" });
if (result.exitCode !== 0) throw new Error("kernel build failed (see above); tests need build/libpsionic_cpu.so");
