// What a subcommand is: a name, one line of summary, a usage line, help text and a run function.
export interface Command {
  name: string;
  summary: string;
  usage: string;
  help: string;
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** A subcommand whose issue has not landed: says so plainly and exits non-zero. */
export function notYetAvailable(name: string, summary: string, usage: string, which: string): Command {
  const help = `${summary}\n\nNot available yet: ${which}.`;
  return {
    name, summary, usage, help,
    async run(argv) {
      if (argv.includes("--help") || argv.includes("-h")) {
        console.log(`usage: ${usage}\n\n${help}`);
        return 0;
      }
      console.error(`psionic ${name}: not available yet (${which}).`);
      return 2;
    },
  };
}
