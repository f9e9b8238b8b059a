import { describe, expect, it } from "bun:test";
import { brownFileSentences, brownFiles, brownText, untagSentence } from "./corpus.ts";

describe("Brown corpus text", () => {
  it("strips tags and restores spacing around punctuation and quotes", () => {
    expect(untagSentence("\t``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./."))
      .toBe('"Only a handful", the jury said.');
    expect(untagSentence("(/( see/vb p./nn 3/cd )/) 1/2/cd Jr./np ./.")).toBe("(see p. 3) 1/2 Jr.");
  });

  it("reads all 500 files in name order, a sentence per line, no tags left", () => {
    const files = brownFiles();
    expect(files.length).toBe(500);
    expect(files[0]).toBe("ca01");
    expect(files.at(-1)).toBe("cr09");
    const first = brownFileSentences("ca01")[0]!;
    expect(first).toBe(
      "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place.",
    );
    const text = brownText();
    expect(text.length).toBeGreaterThan(5_000_000);
    // One source token really is "hr./*0F./in." (a unit); nothing else looks like a tag.
    expect((text.match(/\/(nn|vbd|at|in|jj|np)\b/g) ?? []).length).toBeLessThanOrEqual(1);
    expect(text.split("\n\n").length).toBe(500);
  });

  it("is deterministic", () => {
    const a = Bun.hash(brownText());
    expect(Bun.hash(brownFiles().map((f) => brownFileSentences(f).join("\n")).join("\n\n"))).toBe(a);
  });
});
