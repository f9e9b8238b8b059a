// Test helper: runs the CLI in-process and captures what it prints.
import { main } from "./main.ts";

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    return { code: await main(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}
