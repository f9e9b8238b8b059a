// The global names chat templates may call, set up by psionic rather than by
// @huggingface/jinja's Template.render, because its globals cannot be
// replaced: its raise_exception throws a plain Error, ours a PsionicError
// naming the template's message, and its range() would build a list of any
// length a template asks for.
import { Environment } from "@huggingface/jinja";
import { refuse } from "../util/errors.ts";

/** Longer than any conversation a template loops over; bounds memory. */
const MAX_RANGE = 1_000_000;
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isInteger) || step === 0) {
    refuse("chat.template-error", `chat template called range(${start}, ${stop}, ${step}): arguments must be integers, step not 0`);
  }
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > MAX_RANGE) refuse("chat.template-error", `chat template asked for range() of ${count} numbers (at most ${MAX_RANGE})`);
  return Array.from({ length: count }, (_, i) => start + i * step);
}

/** Python's strftime for the codes chat templates use (llama 3.x writes "%d %b %Y"); English names. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%[YymdbBaAHMSp%]/g, (code) => {
    switch (code) {
      case "%Y": return String(date.getFullYear());
      case "%y": return pad(date.getFullYear() % 100);
      case "%m": return pad(date.getMonth() + 1);
      case "%d": return pad(date.getDate());
      case "%b": return MONTHS[date.getMonth()]!.slice(0, 3);
      case "%B": return MONTHS[date.getMonth()]!;
      case "%a": return DAYS[date.getDay()]!.slice(0, 3);
      case "%A": return DAYS[date.getDay()]!;
      case "%H": return pad(date.getHours());
      case "%M": return pad(date.getMinutes());
      case "%S": return pad(date.getSeconds());
      case "%p": return date.getHours() < 12 ? "AM" : "PM";
      default: return "%";
    }
  });
}

/**
 * Jinja's constants and the functions templates call, in a scope above
 * `variables` so that no request variable can shadow them; `now` fixes strftime_now.
 */
export function templateGlobals(variables: Environment, now: () => Date = () => new Date()): Environment {
  const env = new Environment(variables);
  for (const [name, value] of [["true", true], ["false", false], ["none", null], ["True", true], ["False", false], ["None", null]] as const) {
    env.set(name, value);
  }
  env.set("range", range);
  env.set("strftime_now", (format: unknown) => strftime(now(), String(format)));
  env.set("raise_exception", (message: unknown) => {
    refuse("chat.template-error", `chat template refused the conversation: ${String(message)}`);
  });
  return env;
}
