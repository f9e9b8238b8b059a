// Flag parsing shared by every subcommand: a declarative table per command,
// unknown flags and bad values are errors that print the usage line.
import { PsionicError } from "../util/errors.ts";

export interface FlagSpec {
  type: "string" | "number" | "boolean";
  /** One-letter or short alias used with a single dash, e.g. `m` for `-m`, `ngl` for `-ngl`. */
  short?: string;
  /** May be given several times; the value is then an array. */
  repeat?: boolean;
  help: string;
  default?: string | number | boolean;
}

export type FlagTable = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | (string | number)[] | undefined>;

export interface CommandLine {
  flags: FlagValues;
  positionals: string[];
}

export function parseFlags(argv: string[], table: FlagTable, usage: string): CommandLine {
  const flags: FlagValues = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(table).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]));
  const fail = (message: string): never => {
    throw new PsionicError("cli.bad-flag", `${message}\nusage: ${usage}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") { positionals.push(...argv.slice(i + 1)); break; }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) { positionals.push(arg); continue; }
    const [rawName, inlineValue] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const name = rawName.startsWith("--") ? rawName.slice(2) : byShort.get(rawName.slice(1));
    const spec = name === undefined ? undefined : table[name];
    if (name === undefined || !spec) fail(`unknown flag ${rawName}`);
    let value: string | number | boolean;
    if (spec!.type === "boolean") {
      if (inlineValue !== undefined && !["true", "false"].includes(inlineValue)) fail(`${rawName} takes no value (or =true/=false)`);
      value = inlineValue !== "false";
    } else {
      const text = inlineValue ?? argv[++i];
      if (text === undefined) fail(`${rawName} needs a value`);
      if (spec!.type === "number") {
        value = Number(text);
        if (text!.trim() === "" || !Number.isFinite(value)) fail(`${rawName} needs a number, got "${text}"`);
      } else value = text!;
    }
    if (spec!.repeat) ((flags[name!] ??= []) as (string | number)[]).push(value as string | number);
    else if (flags[name!] !== undefined) fail(`${rawName} given twice`);
    else flags[name!] = value;
  }
  for (const [name, spec] of Object.entries(table)) if (flags[name] === undefined && spec.default !== undefined) flags[name] = spec.default;
  return { flags, positionals };
}

/** The flag table as help text lines. */
export function describeFlags(table: FlagTable): string {
  return Object.entries(table)
    .map(([name, s]) => {
      const names = [s.short ? `-${s.short}` : null, `--${name}`].filter(Boolean).join(", ");
      const value = s.type === "boolean" ? "" : s.type === "number" ? " N" : " VALUE";
      const extra = s.default !== undefined ? ` (default ${s.default})` : "";
      return `  ${(names + value).padEnd(28)} ${s.help}${extra}`;
    })
    .join("\n");
}
