import { describe, expect, it } from "bun:test";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { buildSynthVocab } from "../tokenizer/vocab.ts";
import { SeededRng } from "./rng.ts";
import { StopChecker, type StopStep } from "./stop.ts";
import { refusalText as refusedWith } from "../util/refusal-of.ts";


/** Push pieces as tokens 100, 101, ...; return each step. */
function run(checker: StopChecker, pieces: string[]): StopStep[] {
  return pieces.map((p, i) => checker.push(100 + i, p));
}

describe("stop strings", () => {
  it("stop inside one token: emit what precedes it, never the stop string or what follows", () => {
    const steps = run(new StopChecker({ stopStrings: ["END"] }), ["Hello", " world END more"]);
    expect(steps).toEqual([{ emit: "Hello" }, { emit: " world ", stop: "stop-string", stopString: "END" }]);
  });

  it("a stop string spanning three tokens is held back, then dropped", () => {
    const steps = run(new StopChecker({ stopStrings: ["</stop>"] }), ["abc</", "st", "op>tail"]);
    expect(steps.map((s) => s.emit)).toEqual(["abc", "", ""]);
    expect(steps[2]!.stop).toBe("stop-string");
  });

  it("held-back text is released as soon as the match fails", () => {
    const c = new StopChecker({ stopStrings: ["</stop>"] });
    expect(run(c, ["a</", "sx", "y"]).map((s) => s.emit)).toEqual(["a", "</sx", "y"]);
    expect(c.stopReason).toBeNull();
  });

  it("overlapping partial matches: 'a' 'a' 'a' 'b' with stop 'aab' emits exactly 'a'", () => {
    const steps = run(new StopChecker({ stopStrings: ["aab"] }), ["a", "a", "a", "b"]);
    expect(steps.map((s) => s.emit)).toEqual(["", "", "a", ""]);
    expect(steps[3]!.stop).toBe("stop-string");
  });

  it("the earliest of several stop strings wins", () => {
    const steps = run(new StopChecker({ stopStrings: ["world", "o w"] }), ["hello world"]);
    expect(steps[0]).toEqual({ emit: "hell", stop: "stop-string", stopString: "o w" });
  });

  it("flush releases a partial match when the stream ends for another reason", () => {
    const c = new StopChecker({ stopStrings: ["###"] });
    expect(c.push(1, "text ##").emit).toBe("text ");
    expect(c.flush()).toBe("##");
    expect(c.flush()).toBe("");
  });
});

describe("multi-byte UTF-8 around stops", () => {
  it("a stop string made of accented and astral characters, split mid-character by byte-level tokens", () => {
    // Token bytes as a byte-level BPE would split them: 'é' (C3 A9) and '🙂' (F0 9F 99 82) cut across tokens.
    const text = "café🙂 ok🙂é! done";
    const bytes = new TextEncoder().encode(text);
    const cuts = [0, 3, 4, 6, 8, 9, 11, 14, 16, 19, 21, bytes.length];
    const decoder = new TextDecoder("utf-8");
    const c = new StopChecker({ stopStrings: ["🙂é!"] });
    let out = "";
    let stop: StopStep | undefined;
    for (let i = 0; i + 1 < cuts.length && !stop?.stop; i++) {
      const piece = decoder.decode(bytes.subarray(cuts[i]!, cuts[i + 1]!), { stream: true });
      const step = c.push(i, piece);
      expect(step.emit.isWellFormed()).toBe(true); // never half a surrogate pair
      out += step.emit;
      stop = step;
    }
    expect(stop?.stop).toBe("stop-string");
    expect(out).toBe("café🙂 ok");
  });

  it("an emoji that starts a stop string is held whole and released whole", () => {
    const c = new StopChecker({ stopStrings: ["🙂x"] });
    expect(c.push(1, "a🙂").emit).toBe("a");
    expect(c.push(2, "y").emit).toBe("🙂y");
  });
});

describe("with the real tokenizer's streaming decoder (byte-level BPE splits é and 🙂 into byte tokens)", () => {
  const tok = new Tokenizer(buildSynthVocab({ kind: "bpe", pre: "gpt-4o", vocabSize: 9800 }));
  const text = "Le café 🙂 est prêt. Ünïcödé! <|stop|> fin";

  /** Decode `ids` token by token through a StopChecker; the text it lets out and the last step. */
  function generate(ids: number[], checker: StopChecker): { out: string; last: StopStep } {
    const decoder = tok.createDecoder();
    let out = "";
    let last: StopStep = { emit: "" };
    for (const id of ids) {
      last = checker.push(id, decoder.push(id));
      expect(last.emit.isWellFormed()).toBe(true);
      out += last.emit;
      if (last.stop) return { out, last };
    }
    return { out: out + checker.flush() + decoder.flush(), last };
  }

  it("a multi-byte stop string spanning byte tokens cuts the text exactly before it", () => {
    const ids = tok.encode(text, { addSpecial: false });
    expect(ids.length).toBeGreaterThan(30);
    for (const stop of ["🙂 est", "é! <", "Ü", "<|stop|>", "prêt."]) {
      const { out, last } = generate(ids, new StopChecker({ stopStrings: [stop], stopTokens: tok.eogIds }));
      expect(last.stop).toBe("stop-string");
      expect(out).toBe(text.slice(0, text.indexOf(stop)));
    }
  });

  it("the tokenizer's EOG ids stop generation, and text never contains them", () => {
    const eog = [...tok.eogIds][0]!;
    const ids = [...tok.encode("Ünïcödé! <|sto", { addSpecial: false }), eog, ...tok.encode("after", { addSpecial: false })];
    const { out, last } = generate(ids, new StopChecker({ stopStrings: ["<|stop|>"], stopTokens: tok.eogIds }));
    expect(last).toMatchObject({ stop: "eog", stopToken: eog });
    expect(out).toBe("Ünïcödé! <|sto"); // the partial match is released when EOG ends the stream
  });
});

describe("stop tokens and max tokens", () => {
  it("a stop token ends generation, releases held text, and its own text is not emitted", () => {
    const c = new StopChecker({ stopStrings: ["<|"], stopTokens: [2, 50256] });
    expect(c.push(10, "Hi <").emit).toBe("Hi ");
    expect(c.push(2, "</s>")).toEqual({ emit: "<", stop: "eog", stopToken: 2 });
    expect(refusedWith(() => c.push(11, "more"))).toStartWith("stop.after-stop");
  });

  it("max tokens counts every token and releases held text on the last", () => {
    const c = new StopChecker({ stopStrings: ["STOP"], maxTokens: 3 });
    expect(c.push(1, "a").emit).toBe("a");
    expect(c.push(2, "ST").emit).toBe("");
    expect(c.push(3, "O")).toEqual({ emit: "STO", stop: "max-tokens" });
    expect(c.tokenCount).toBe(3);
  });

  it("a stop string completing on the last allowed token reports stop-string", () => {
    const c = new StopChecker({ stopStrings: ["STOP"], maxTokens: 2 });
    c.push(1, "ST");
    expect(c.push(2, "OP").stop).toBe("stop-string");
  });

  it("a stop token on the last allowed token reports eog", () => {
    const c = new StopChecker({ stopTokens: [0], maxTokens: 1 });
    expect(c.push(0, "").stop).toBe("eog");
  });
});

describe("validation", () => {
  it("refuses empty, too many, too long and malformed stop strings, bad tokens and bad max tokens", () => {
    expect(refusedWith(() => new StopChecker({ stopStrings: [""] }))).toContain("non-empty");
    expect(refusedWith(() => new StopChecker({ stopStrings: Array(65).fill("x") }))).toContain("at most 64");
    expect(refusedWith(() => new StopChecker({ stopStrings: ["x".repeat(1025)] }))).toContain("at most 1024");
    expect(refusedWith(() => new StopChecker({ stopStrings: ["a\uD800"] }))).toContain("lone surrogate");
    expect(refusedWith(() => new StopChecker({ stopTokens: [-1] }))).toStartWith("stop.bad-token");
    expect(refusedWith(() => new StopChecker({ maxTokens: 0 }))).toStartWith("stop.bad-max-tokens");
    expect(refusedWith(() => new StopChecker({ maxTokens: 1.5 }))).toStartWith("stop.bad-max-tokens");
  });
});

describe("against a plain reference on random streams", () => {
  it("emitted text is the text before the first stop string to complete, and nothing is emitted early", () => {
    const rng = new SeededRng(31337);
    const alphabet = ["a", "b", "c", "é", "🙂"];
    const pick = () => alphabet[Math.floor(rng.nextDouble() * alphabet.length)]!;
    const word = (max: number) => Array.from({ length: 1 + Math.floor(rng.nextDouble() * max) }, pick).join("");
    for (let trial = 0; trial < 2000; trial++) {
      const stops = Array.from({ length: 1 + Math.floor(rng.nextDouble() * 3) }, () => word(4));
      const pieces = Array.from({ length: 1 + Math.floor(rng.nextDouble() * 12) }, () =>
        rng.nextDouble() < 0.1 ? "" : word(3),
      );
      const text = pieces.join("");
      // Reference: generation stops at the first token by which some stop string is
      // complete; the text is cut at the earliest start among the stop strings complete then.
      const firstAt = stops.map((s) => text.indexOf(s));
      let cut = -1;
      let consumed = 0;
      for (const p of pieces) {
        consumed += p.length;
        const complete = stops.map((s, i) => firstAt[i]!).filter((at, i) => at >= 0 && at + stops[i]!.length <= consumed);
        if (complete.length) {
          cut = Math.min(...complete);
          break;
        }
      }
      const want = cut >= 0 ? text.slice(0, cut) : text;

      const c = new StopChecker({ stopStrings: stops });
      let out = "";
      let seen = "";
      let stopped = false;
      for (const [i, p] of pieces.entries()) {
        const step = c.push(i, p);
        seen += p;
        out += step.emit;
        // Never ahead of the reference; and whatever is held could still start a stop string.
        expect(want.startsWith(out)).toBe(true);
        if (step.stop) {
          stopped = true;
          break;
        }
        const held = seen.slice(out.length);
        if (held.length > 0) expect(stops.some((s) => s.startsWith(held) && s.length > held.length)).toBe(true);
      }
      if (!stopped) out += c.flush();
      expect(stopped).toBe(cut >= 0);
      expect(out).toBe(want);
    }
  });
});
