import { describe, expect, it } from "bun:test";
import { PsionicError } from "../util/errors.ts";
import { parseFlags, type FlagTable } from "./flags.ts";

const table: FlagTable = {
  model: { type: "string", short: "m", repeat: true, help: "model file" },
  "n-predict": { type: "number", short: "n", help: "tokens", default: 128 },
  "gpu-layers": { type: "number", short: "ngl", help: "layers on the GPU" },
  json: { type: "boolean", help: "machine output" },
};
const usage = "psionic test -m FILE";

function refusal(argv: string[]): PsionicError {
  try {
    parseFlags(argv, table, usage);
  } catch (error) {
    expect(error).toBeInstanceOf(PsionicError);
    return error as PsionicError;
  }
  throw new Error(`expected ${argv.join(" ")} to be refused`);
}

describe("parseFlags", () => {
  it("reads long, short, inline and repeated flags, positionals and defaults", () => {
    const { flags, positionals } = parseFlags(["-m", "a.gguf", "--model=b.gguf", "-ngl", "12", "--json", "FILE", "--", "-x"], table, usage);
    expect(flags.model).toEqual(["a.gguf", "b.gguf"]);
    expect(flags["gpu-layers"]).toBe(12);
    expect(flags["n-predict"]).toBe(128);
    expect(flags.json).toBe(true);
    expect(positionals).toEqual(["FILE", "-x"]);
  });

  it("treats negative numbers as values, not flags", () => {
    expect(parseFlags(["-n", "-1"], table, usage).flags["n-predict"]).toBe(-1);
  });

  it("refuses unknown flags with the usage line", () => {
    const error = refusal(["--temperature", "0.5"]);
    expect(error.code).toBe("cli.bad-flag");
    expect(error.message).toContain("unknown flag --temperature");
    expect(error.message).toContain(`usage: ${usage}`);
  });

  it("refuses missing values, non-numbers and repeated single flags", () => {
    expect(refusal(["-n"]).message).toContain("-n needs a value");
    expect(refusal(["-n", "many"]).message).toContain('needs a number, got "many"');
    expect(refusal(["-ngl", "1", "-ngl", "2"]).message).toContain("given twice");
    expect(refusal(["--json=maybe"]).message).toContain("takes no value");
  });
});
