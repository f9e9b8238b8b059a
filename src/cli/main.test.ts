import { describe, expect, it } from "bun:test";
import { runCli as run } from "./run-in-process.ts";


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
    const { code, err } = await run(["validate", "--manifest", "x"]);
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
