// `psionic gguf inspect|synth`: GGUF tooling.
import type { Command } from "./command.ts";
import { inspectCommand } from "./gguf-inspect.ts";
import { synthCommand } from "./gguf-synth.ts";

const subcommands: Command[] = [inspectCommand, synthCommand];
const usage = `psionic gguf ${subcommands.map((c) => c.name).join("|")} ...`;

export const ggufCommand: Command = {
  name: "gguf",
  summary: "Inspect GGUF files and synthesize models.",
  usage,
  help: subcommands.map((c) => `  ${c.name.padEnd(8)} ${c.summary}\n           ${c.usage}`).join("\n"),
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === undefined || name === "--help" || name === "-h") {
      console.log(`usage: ${usage}\n\n${this.help}`);
      return name === undefined ? 2 : 0;
    }
    const sub = subcommands.find((c) => c.name === name);
    if (!sub) {
      console.error(`psionic gguf: unknown subcommand "${name}"\nusage: ${usage}`);
      return 2;
    }
    return sub.run(rest);
  },
};
