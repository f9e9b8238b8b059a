// psionic: one executable for serving, training and GGUF tooling.
import { PsionicError } from "../util/errors.ts";
import type { Command } from "./command.ts";
import { notYetAvailable } from "./command.ts";
import { benchCommand } from "./bench.ts";
import { generateCommand } from "./generate.ts";
import { ggufCommand } from "./gguf.ts";
import { serveCommand } from "./serve.ts";
import { trainCommand } from "./train.ts";

const commands: Command[] = [
  ggufCommand,
  generateCommand,
  serveCommand,
  benchCommand,
  trainCommand,
  notYetAvailable("validate", "Replay a training contribution as a validator.", "psionic validate --manifest FILE", "validator replay has no issue yet"),
  notYetAvailable("mesh-lane", "Join this machine to an inference mesh.", "psionic mesh-lane install | run | status | export-join-bundle | uninstall", "the mesh has no issue yet"),
];

/** Version plus what this build can run on this machine: the CPU kernel variant and CUDA devices. */
async function versionReport(): Promise<string> {
  const { version } = await import("../../package.json");
  const lines = [`psionic ${version}`];
  const { cpuKernels } = await import("../../ffi/cpu.ts");
  try {
    lines.push(`cpu kernels: ${cpuKernels().psi_cpu_variant()}`);
  } catch (error) {
    lines.push(`cpu kernels: unavailable (${error instanceof Error ? error.message : error})`);
  }
  const { cudaDevices } = await import("../../ffi/cuda.ts");
  try {
    lines.push(...cudaDevices().map((d) => `cuda device ${d.index}: ${d.name}, ${(d.totalBytes / 2 ** 30).toFixed(1)} GiB, sm_${d.computeCapability.replace(".", "")}`));
  } catch (error) {
    lines.push(`cuda: ${error instanceof Error ? error.message : error}`);
  }
  return lines.join("\n");
}

function overview(): string {
  const rows = commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n");
  return `psionic: serve, train and inspect language models from one executable.\n\nusage: psionic COMMAND [flags]\n\ncommands:\n${rows}\n\nRun \`psionic COMMAND --help\` for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "version") {
    console.log(await versionReport());
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`psionic: unknown command "${name}"\nusage: psionic COMMAND [flags]; commands: ${commands.map((c) => c.name).join(", ")}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof PsionicError) {
      console.error(`psionic ${name}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
