import { describe, expect, it, spyOn } from "bun:test";
import { main } from "./main.ts";

async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = spyOn(console, "log").mockImplementation((...a) => void out.push(a.join(" ")));
  const error = spyOn(console, "error").mockImplementation((...a) => void err.push(a.join(" ")));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe("psionic CLI", () => {
  it("lists every subcommand in its overview", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    for (const name of ["gguf", "generate", "serve", "bench", "train", "validate", "mesh-lane"]) expect(out).toContain(`  ${name}`);
  });

  it("gives --help for every subcommand", async () => {
    for (const name of ["gguf", "generate", "serve", "bench", "train", "validate", "mesh-lane"]) {
      const { code, out } = await run([name, "--help"]);
      expect(code).toBe(0);
      expect(out).toContain("usage: psionic");
    }
  });

  it("says plainly when a subcommand has not landed yet, and exits non-zero", async () => {
    const { code, err } = await run(["serve", "-m", "x.gguf"]);
    expect(code).not.toBe(0);
    expect(err).toContain("not available yet");
  });

  it("refuses an unknown command with the list of commands", async () => {
    const { code, err } = await run(["frobnicate"]);
    expect(code).toBe(2);
    expect(err).toContain('unknown command "frobnicate"');
    expect(err).toContain("gguf");
  });
});
