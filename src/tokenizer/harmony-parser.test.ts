import { describe, expect, it } from "bun:test";
import { type HarmonyDelta, HarmonyParser, type HarmonyResult } from "./harmony-parser.ts";

/** Feeds the pieces in order; returns every delta (finish's included) and the result. */
function parse(pieces: string[]): { deltas: HarmonyDelta[]; result: HarmonyResult } {
  const parser = new HarmonyParser();
  const deltas = pieces.flatMap((p) => parser.push(p));
  const result = parser.finish();
  return { deltas: [...deltas, ...result.deltas], result };
}

function textOf(deltas: HarmonyDelta[], kind: "content" | "reasoning"): string {
  return deltas.map((d) => (d.kind === kind ? d.text : "")).join("");
}

/** Splits text into pieces the way a detokenizer would: special tokens whole, other text every `size` chars. */
function pieces(text: string, size: number): string[] {
  return text.split(/(<\|\w+\|>)/).filter(Boolean).flatMap((part) => {
    if (part.startsWith("<|")) return [part];
    const out: string[] = [];
    for (let i = 0; i < part.length; i += size) out.push(part.slice(i, i + size));
    return out;
  });
}

// The format guide's example output.
const answer =
  '<|channel|>analysis<|message|>User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.<|end|>' +
  "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>";
const toolCall =
  "<|channel|>analysis<|message|>Need to use function get_weather.<|end|>" +
  '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}<|call|>';

describe("HarmonyParser", () => {
  it("separates the analysis channel (reasoning) from the final channel (content)", () => {
    const { result } = parse(pieces(answer, 3));
    expect(result.reasoning).toBe('User asks: "What is 2 + 2?" Simple arithmetic. Provide answer.');
    expect(result.content).toBe("2 + 2 = 4.");
    expect(result.toolCalls).toEqual([]);
  });

  it("gives the same result however the text is split, even inside special tokens", () => {
    const whole = parse([answer + toolCall.replace("<|channel|>analysis", "<|start|>assistant<|channel|>analysis")]).result;
    for (const size of [1, 2, 5, 13]) {
      const text = answer + toolCall.replace("<|channel|>analysis", "<|start|>assistant<|channel|>analysis");
      const byChars = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size));
      expect(parse(byChars).result).toEqual(whole);
    }
    expect(whole.content).toBe("2 + 2 = 4.");
    expect(whole.toolCalls).toEqual([{ name: "get_weather", arguments: '{"location":"San Francisco"}' }]);
  });

  it("streams a function call as a start delta then argument deltas", () => {
    const { deltas, result } = parse(pieces(toolCall, 4));
    const calls = deltas.filter((d) => d.kind !== "reasoning");
    expect(calls[0]).toEqual({ kind: "tool-call-start", index: 0, name: "get_weather" });
    expect(calls.slice(1).every((d) => d.kind === "tool-call-arguments" && d.index === 0)).toBe(true);
    expect(calls.slice(1).map((d) => (d.kind === "tool-call-arguments" ? d.text : "")).join("")).toBe('{"location":"San Francisco"}');
    expect(result.reasoning).toBe("Need to use function get_weather.");
    expect(result.content).toBe("");
  });

  it("reads a recipient written before the channel", () => {
    const { result } = parse([" to=functions.lookup", "<|channel|>", "commentary json", "<|message|>", '{"q":', '"x"}', "<|call|>"]);
    expect(result.toolCalls).toEqual([{ name: "lookup", arguments: '{"q":"x"}' }]);
    expect(result.content).toBe("");
  });

  it("numbers several tool calls in order", () => {
    const text =
      "<|channel|>commentary to=functions.a <|constrain|>json<|message|>{}<|call|>" +
      "<|start|>assistant<|channel|>commentary to=functions.b <|constrain|>json<|message|>[1]<|call|>";
    const { deltas, result } = parse(pieces(text, 100));
    expect(deltas.filter((d) => d.kind === "tool-call-start")).toEqual([
      { kind: "tool-call-start", index: 0, name: "a" },
      { kind: "tool-call-start", index: 1, name: "b" },
    ]);
    expect(result.toolCalls).toEqual([{ name: "a", arguments: "{}" }, { name: "b", arguments: "[1]" }]);
  });

  it("shows a commentary preamble without a recipient to the user as content", () => {
    const { result } = parse(pieces("<|channel|>commentary<|message|>Plan: call a.<|end|><|start|>assistant<|channel|>commentary to=functions.a<|constrain|>json<|message|>{}<|call|>", 2));
    expect(result.content).toBe("Plan: call a.");
    expect(result.toolCalls).toEqual([{ name: "a", arguments: "{}" }]);
  });

  it("emits content as soon as a piece arrives", () => {
    const parser = new HarmonyParser();
    expect(parser.push("<|channel|>")).toEqual([]);
    expect(parser.push("final")).toEqual([]);
    expect(parser.push("<|message|>")).toEqual([]);
    expect(parser.push("Hel")).toEqual([{ kind: "content", text: "Hel" }]);
    expect(parser.push("lo <b>")).toEqual([{ kind: "content", text: "lo <b>" }]);
    // "<|" might begin a special token: held until it is known not to.
    expect(parser.push(" a<|")).toEqual([{ kind: "content", text: " a" }]);
    expect(parser.push("b")).toEqual([{ kind: "content", text: "<|b" }]);
    expect(parser.push("<|ret")).toEqual([]);
    expect(parser.push("urn|>")).toEqual([]);
    expect(parser.finish()).toEqual({ content: "Hello <b> a<|b", reasoning: "", toolCalls: [], deltas: [] });
  });

  it("surfaces output without any header as content, streamed", () => {
    const parser = new HarmonyParser();
    expect(parser.push("Hello")).toEqual([{ kind: "content", text: "Hello" }]);
    expect(parser.push(" world")).toEqual([{ kind: "content", text: " world" }]);
    expect(parser.push(" to=x")).toEqual([{ kind: "content", text: " to=x" }]);
    expect(parser.finish().content).toBe("Hello world to=x");
  });

  it("returns held-back text from finish as a delta", () => {
    const parser = new HarmonyParser();
    parser.push("<|channel|>final<|message|>1 <");
    const result = parser.finish();
    expect(result.content).toBe("1 <");
    expect(result.deltas).toEqual([{ kind: "content", text: "<" }]);
    expect(parse(["t"]).result.content).toBe("t");
  });

  it("surfaces a broken header instead of losing it and keeps parsing after it", () => {
    const { result } = parse(["<|start|>", "Sure! Here you go,\n", "the answer.", "<|end|>", "<|start|>assistant<|channel|>final<|message|>ok<|return|>"]);
    expect(result.content).toBe("Sure! Here you go,\nthe answer.ok");
  });

  it("reads a message that skipped <|end|><|start|> and ignores stray tokens", () => {
    const { result } = parse(["<|channel|>analysis<|message|>think", "<|channel|>final<|message|>done", "<|message|>", "!", "<|constrain|>"]);
    expect(result.reasoning).toBe("think");
    expect(result.content).toBe("done!");
  });

  it("keeps built-in tool calls and nameless function calls out of content and tool calls", () => {
    const { result } = parse(pieces(
      '<|channel|>analysis to=browser.search code<|message|>{"query":"x"}<|call|>' +
        "<|start|>assistant<|channel|>commentary to=functions. <|constrain|>json<|message|>{}<|call|>",
      3,
    ));
    expect(result.toolCalls).toEqual([]);
    expect(result.content).toBe("");
    expect(result.reasoning).toBe('{"query":"x"}{}');
  });

  it("never throws on random garbage and its deltas always add up to its result", () => {
    const alphabet = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>",
      "assistant", "analysis", "final", "commentary", " to=functions.f", "json", "<", "|", ">", "<|", "x", " ", "\n", "{}", "é"];
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let trial = 0; trial < 300; trial++) {
      const input = Array.from({ length: 1 + Math.floor(random() * 30) }, () => alphabet[Math.floor(random() * alphabet.length)]!);
      const { deltas, result } = parse(input);
      expect(textOf(deltas, "content")).toBe(result.content);
      expect(textOf(deltas, "reasoning")).toBe(result.reasoning);
      const args = result.toolCalls.map((_, i) =>
        deltas.map((d) => (d.kind === "tool-call-arguments" && d.index === i ? d.text : "")).join(""));
      expect(args).toEqual(result.toolCalls.map((c) => c.arguments));
      expect(deltas.filter((d) => d.kind === "tool-call-start").length).toBe(result.toolCalls.length);
    }
  });
});
