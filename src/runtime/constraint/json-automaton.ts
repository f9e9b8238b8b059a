// A byte-level, incremental recognizer of JSON documents that satisfy a
// compiled schema (json-schema.ts). Tokens of byte-level vocabularies can end
// in the middle of a character, so it reads UTF-8 bytes, not characters.
//
// State is a small set of configurations (anyOf can leave several readings of
// the same bytes alive); each configuration is an immutable linked stack of
// frames, one per open value (object, array, string, number, literal). A step
// builds new top frames and shares everything beneath, so keeping a state for
// every node of a trie walk costs no copying.
//
// Every frame knows the fewest bytes that close it (`own`) and the fewest that
// close everything beneath it (`base`), so `minBytesToComplete` is one sum.
// These counts are exact: from any state, the cheapest closing's first byte
// lowers the count by exactly one. The token constraint relies on that to
// promise the document can always be finished within the token budget.
import type { ObjectNode, ObjectProperty, SchemaNode } from "./json-schema.ts";

/** Most consecutive whitespace bytes between JSON tokens (so output cannot stall in whitespace). */
export const MAX_WHITESPACE_RUN = 2;
/** Most readings kept alive at once; dropping extra readings only narrows what is accepted. */
export const MAX_CONFIGURATIONS = 32;
const MAX_INT_DIGITS = 15;
const MAX_FRAC_DIGITS = 15;
const MAX_EXP_DIGITS = 2;

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;
const OPEN_BRACE = 0x7b, CLOSE_BRACE = 0x7d, OPEN_BRACKET = 0x5b, CLOSE_BRACKET = 0x5d;
const isWhitespace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
/** The first two hex digits of a \\u escape, D8..DB, commit it to a high surrogate (its low half must follow). */
const isHighSurrogatePrefix = (top: number) => top >= 0xd8 && top <= 0xdb;
const hexValue = (b: number) => (isDigit(b) ? b - 0x30 : b >= 0x61 && b <= 0x66 ? b - 0x57 : b >= 0x41 && b <= 0x46 ? b - 0x37 : -1);

export type Frame = RootFrame | ObjectFrame | ArrayFrame | StringFrame | NumberFrame | LiteralFrame;

abstract class FrameBase {
  /** Fewest bytes that close every frame beneath this one (once this one is closed). */
  readonly base: number;
  /** Fewest bytes that close this frame. */
  own = 0;
  constructor(readonly up: Frame | null) {
    this.base = up === null ? 0 : up.base + up.own;
  }
}

class RootFrame extends FrameBase {
  readonly kind = "root";
  constructor(readonly node: SchemaNode, readonly done: boolean, readonly ws: number) {
    super(null);
    this.own = done ? 0 : node.minBytes;
  }
}

const enum ObjectPhase { Start, AfterComma, Key, Colon, Value, AfterValue }

class ObjectFrame extends FrameBase {
  readonly kind = "object";
  constructor(
    up: Frame,
    readonly node: ObjectNode,
    readonly phase: ObjectPhase,
    /** used[i]: declared property i already written. */
    readonly used: Uint8Array,
    /** Keys written that are not declared properties (UTF-8 as binary strings). */
    readonly freeKeys: readonly string[],
    /** Required properties not yet written, and the bytes their `"key":value` pairs need at least. */
    readonly requiredLeft: number,
    readonly requiredCost: number,
    /** The schema of the value after the current key. */
    readonly pending: SchemaNode | null,
    readonly ws: number,
  ) {
    super(up);
    const rest = requiredCost + requiredLeft + 1; // each remaining pair needs a comma; then "}"
    switch (phase) {
      case ObjectPhase.Start: this.own = requiredLeft === 0 ? 1 : rest - 1; break;
      case ObjectPhase.AfterValue: this.own = rest; break;
      case ObjectPhase.AfterComma: this.own = requiredLeft > 0 ? rest - 1 : cheapestOptionalPair(this) + 1; break;
      case ObjectPhase.Key: this.own = 0; break; // the key frame above counts everything
      case ObjectPhase.Colon: this.own = 1 + pending!.minBytes + rest; break;
      case ObjectPhase.Value: this.own = pending!.minBytes + rest; break;
    }
  }

  with(phase: ObjectPhase, ws = 0, pending: SchemaNode | null = null): ObjectFrame {
    return new ObjectFrame(this.up!, this.node, phase, this.used, this.freeKeys, this.requiredLeft, this.requiredCost, pending, ws);
  }
}

const enum ArrayPhase { Start, AfterComma, AfterValue }

class ArrayFrame extends FrameBase {
  readonly kind = "array";
  constructor(
    up: Frame,
    readonly node: Extract<SchemaNode, { kind: "array" }>,
    readonly phase: ArrayPhase,
    readonly count: number,
    readonly ws: number,
  ) {
    super(up);
    const { minItems } = node;
    const itemBytes = node.items.minBytes;
    const itemsLeft = Math.max(0, minItems - count);
    if (phase === ArrayPhase.Start) this.own = minItems === 0 ? 1 : minItems * itemBytes + minItems;
    else if (phase === ArrayPhase.AfterValue) this.own = itemsLeft * (itemBytes + 1) + 1;
    else this.own = Math.max(1, itemsLeft) * (itemBytes + 1); // the next item is owed even if minItems is met
  }

  with(phase: ArrayPhase, count = this.count, ws = 0): ArrayFrame {
    return new ArrayFrame(this.up!, this.node, phase, count, ws);
  }
}

const enum StringPhase { Normal, Escape, Hex, Utf8, LowBackslash, LowU, LowHex }

/** A free object key: its text so far (to refuse duplicates) and the cost after its closing quote. */
interface KeyContext {
  text: string;
  after: number;
}

class StringFrame extends FrameBase {
  readonly kind = "string";
  constructor(
    up: Frame,
    readonly minLength: number,
    readonly maxLength: number,
    /** Code points so far (an escape counts when its backslash is read). */
    readonly length: number,
    readonly phase: StringPhase,
    /** Hex digits read in a \u escape, and their value; continuation bytes still owed in UTF-8. */
    readonly digits: number,
    readonly value: number,
    readonly lo: number,
    readonly hi: number,
    readonly key: KeyContext | null,
  ) {
    super(up);
    let pending = 0;
    switch (phase) {
      case StringPhase.Escape: pending = 1; break;
      case StringPhase.Hex: pending = 4 - digits + (digits >= 2 && isHighSurrogatePrefix(value >> ((digits - 2) * 4)) ? 6 : 0); break;
      case StringPhase.Utf8: pending = digits; break;
      case StringPhase.LowBackslash: pending = 6; break;
      case StringPhase.LowU: pending = 5; break;
      case StringPhase.LowHex: pending = 4 - digits; break;
    }
    this.own = pending + Math.max(0, minLength - length) + 1;
    if (key !== null) this.own += key.after + (phase === StringPhase.Normal ? duplicateExtra(this.up as ObjectFrame, key.text) : 0);
  }

  /** UTF-8 continuation bytes still owed by the current character. */
  get owedContinuation(): number {
    return this.phase === StringPhase.Utf8 ? this.digits : 0;
  }

  with(phase: StringPhase, length: number, digits = 0, value = 0, lo = 0, hi = 0, key = this.key): StringFrame {
    return new StringFrame(this.up!, this.minLength, this.maxLength, length, phase, digits, value, lo, hi, key);
  }
}

const enum NumberPhase { Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits }

class NumberFrame extends FrameBase {
  readonly kind = "number";
  constructor(up: Frame, readonly integer: boolean, readonly phase: NumberPhase, readonly digits: number) {
    super(up);
    this.own = phase === NumberPhase.Minus || phase === NumberPhase.Dot || phase === NumberPhase.Exp || phase === NumberPhase.ExpSign ? 1 : 0;
  }
  get endable(): boolean {
    const p = this.phase;
    return p === NumberPhase.Zero || p === NumberPhase.Int || p === NumberPhase.Frac || p === NumberPhase.ExpDigits;
  }
}

/** Exact byte strings: enum/const values, or the declared keys of an object (with their quotes). */
class LiteralFrame extends FrameBase {
  readonly kind = "literal";
  constructor(
    up: Frame,
    readonly texts: Uint8Array[],
    readonly pos: number,
    /** For keys: the property each text names, and the bytes owed after it (colon, value, rest of the object). */
    readonly properties: ObjectProperty[] | null,
    readonly extras: number[] | null,
  ) {
    super(up);
    let best = Infinity;
    for (let i = 0; i < texts.length; i++) best = Math.min(best, texts[i]!.length - pos + (extras === null ? 0 : extras[i]!));
    this.own = best;
  }
  get endable(): boolean {
    return this.properties === null && this.texts.some((t) => t.length === this.pos);
  }
}

function emit(out: Frame[], f: Frame): void {
  if (out.length < MAX_CONFIGURATIONS) out.push(f);
}

/** Appends to `out` every configuration `f` becomes after reading byte `b` (none: `b` is not allowed). */
export function stepFrame(f: Frame, b: number, out: Frame[]): void {
  switch (f.kind) {
    case "root":
      if (f.done) return;
      if (isWhitespace(b)) {
        if (f.ws < MAX_WHITESPACE_RUN) emit(out, new RootFrame(f.node, false, f.ws + 1));
        return;
      }
      return startValue(f.node, b, new RootFrame(f.node, true, 0), out);
    case "object": return stepObject(f, b, out);
    case "array": return stepArray(f, b, out);
    case "string": return stepString(f, b, out);
    case "number": return stepNumber(f, b, out);
    case "literal": return stepLiteral(f, b, out);
  }
}

/** The value a container expects starts with byte `b`; `parent` is the container as it will be once that value is done. */
function startValue(node: SchemaNode, b: number, parent: Frame, out: Frame[]): void {
  switch (node.kind) {
    case "anyOf":
      for (const option of node.options) startValue(option, b, parent, out);
      return;
    case "object": {
      if (b !== OPEN_BRACE) return;
      const required = node.properties.filter((p) => p.required);
      const cost = required.reduce((sum, p) => sum + p.key.length + 1 + p.node.minBytes, 0);
      const used = new Uint8Array(node.properties.length);
      return emit(out, new ObjectFrame(parent, node, ObjectPhase.Start, used, [], required.length, cost, null, 0));
    }
    case "array":
      if (b === OPEN_BRACKET) emit(out, new ArrayFrame(parent, node, ArrayPhase.Start, 0, 0));
      return;
    case "string":
      if (b === QUOTE) emit(out, new StringFrame(parent, node.minLength, node.maxLength, 0, StringPhase.Normal, 0, 0, 0, 0, null));
      return;
    case "number":
      if (b === 0x2d) emit(out, new NumberFrame(parent, node.integer, NumberPhase.Minus, 0));
      else if (b === 0x30) emit(out, new NumberFrame(parent, node.integer, NumberPhase.Zero, 1));
      else if (isDigit(b)) emit(out, new NumberFrame(parent, node.integer, NumberPhase.Int, 1));
      return;
    case "literal": {
      const texts = node.texts.filter((t) => t[0] === b);
      if (texts.length === 0) return;
      if (texts.every((t) => t.length === 1)) return emit(out, parent);
      return emit(out, new LiteralFrame(parent, texts, 1, null, null));
    }
  }
}

function stepObject(f: ObjectFrame, b: number, out: Frame[]): void {
  if (isWhitespace(b) && f.phase !== ObjectPhase.Key) {
    if (f.ws < MAX_WHITESPACE_RUN) emit(out, f.with(f.phase, f.ws + 1, f.pending));
    return;
  }
  switch (f.phase) {
    case ObjectPhase.Start:
      if (b === CLOSE_BRACE && f.requiredLeft === 0) emit(out, f.up!);
      else if (b === QUOTE) startKey(f, out);
      return;
    case ObjectPhase.AfterValue:
      if (b === CLOSE_BRACE && f.requiredLeft === 0) emit(out, f.up!);
      else if (b === COMMA && cheapestOptionalPair(f) < Infinity) emit(out, f.with(ObjectPhase.AfterComma));
      return;
    case ObjectPhase.AfterComma:
      if (b === QUOTE) startKey(f, out);
      return;
    case ObjectPhase.Colon:
      if (b === COLON) emit(out, f.with(ObjectPhase.Value, 0, f.pending));
      return;
    case ObjectPhase.Value:
      return startValue(f.pending!, b, f.with(ObjectPhase.AfterValue), out);
    case ObjectPhase.Key:
      return; // never on top: its key frame is
  }
}

/** After the opening quote of a key: a declared key (exact bytes) or, where allowed, a free one. */
function startKey(f: ObjectFrame, out: Frame[]): void {
  const inKey = f.with(ObjectPhase.Key);
  const texts: Uint8Array[] = [];
  const properties: ObjectProperty[] = [];
  const extras: number[] = [];
  f.node.properties.forEach((p, i) => {
    if (f.used[i]) return;
    texts.push(p.key);
    properties.push(p);
    // After this key: colon, its value, then the other required pairs (each with a comma) and "}".
    const left = f.requiredLeft - (p.required ? 1 : 0);
    const cost = f.requiredCost - (p.required ? p.key.length + 1 + p.node.minBytes : 0);
    extras.push(1 + p.node.minBytes + cost + left + 1);
  });
  if (texts.length > 0) emit(out, new LiteralFrame(inKey, texts, 1, properties, extras));
  const additional = f.node.additional;
  if (additional !== null) {
    const after = 1 + additional.minBytes + f.requiredCost + f.requiredLeft + 1;
    emit(out, new StringFrame(inKey, 0, Infinity, 0, StringPhase.Normal, 0, 0, 0, 0, { text: "", after }));
  }
}

/** A key is complete: the object now expects its colon. */
function keyDone(obj: ObjectFrame, property: ObjectProperty | null, freeKey: string | null): ObjectFrame {
  let { used, freeKeys, requiredLeft, requiredCost } = obj;
  let pending: SchemaNode;
  if (property !== null) {
    used = used.slice();
    used[obj.node.properties.indexOf(property)] = 1;
    if (property.required) {
      requiredLeft--;
      requiredCost -= property.key.length + 1 + property.node.minBytes;
    }
    pending = property.node;
  } else {
    freeKeys = [...freeKeys, freeKey!];
    pending = obj.node.additional!;
  }
  return new ObjectFrame(obj.up!, obj.node, ObjectPhase.Colon, used, freeKeys, requiredLeft, requiredCost, pending, 0);
}

/** Fewest bytes for one more `"key":value` pair (without comma or brace); Infinity if none may follow. */
function cheapestOptionalPair(f: ObjectFrame): number {
  let best = Infinity;
  f.node.properties.forEach((p, i) => {
    if (!f.used[i]) best = Math.min(best, p.key.length + 1 + p.node.minBytes);
  });
  if (f.node.additional !== null) best = Math.min(best, 2 + duplicateExtra(f, "") + 1 + f.node.additional.minBytes);
  return best;
}

const declaredKeyTexts = new WeakMap<ObjectNode, Set<string>>();

/** A free key may not repeat a key already written, nor spell a declared property (those go through the declared path). */
function forbiddenKey(obj: ObjectFrame, text: string): boolean {
  let declared = declaredKeyTexts.get(obj.node);
  if (declared === undefined) {
    declared = new Set(obj.node.properties.map((p) => String.fromCharCode(...p.key.subarray(1, p.key.length - 1))));
    declaredKeyTexts.set(obj.node, declared);
  }
  return declared.has(text) || obj.freeKeys.includes(text);
}

/** Bytes a free key `text` must still grow by before its closing quote may come. */
function duplicateExtra(obj: ObjectFrame, text: string): number {
  if (!forbiddenKey(obj, text)) return 0;
  for (let c = 0x20; c < 0x7f; c++) {
    if (c !== QUOTE && c !== BACKSLASH && !forbiddenKey(obj, text + String.fromCharCode(c))) return 1;
  }
  return 2; // fewer than 93 forbidden keys start with any one-byte extension of `text` in practice
}

function stepArray(f: ArrayFrame, b: number, out: Frame[]): void {
  if (isWhitespace(b)) {
    if (f.ws < MAX_WHITESPACE_RUN) emit(out, f.with(f.phase, f.count, f.ws + 1));
    return;
  }
  const { minItems, maxItems } = f.node;
  switch (f.phase) {
    case ArrayPhase.Start:
      if (b === CLOSE_BRACKET) {
        if (minItems === 0) emit(out, f.up!);
      } else if (maxItems >= 1) {
        startValue(f.node.items, b, f.with(ArrayPhase.AfterValue, 1), out);
      }
      return;
    case ArrayPhase.AfterValue:
      if (b === CLOSE_BRACKET && f.count >= minItems) emit(out, f.up!);
      else if (b === COMMA && f.count < maxItems) emit(out, f.with(ArrayPhase.AfterComma));
      return;
    case ArrayPhase.AfterComma:
      return startValue(f.node.items, b, f.with(ArrayPhase.AfterValue, f.count + 1), out);
  }
}

function stepString(f: StringFrame, b: number, out: Frame[]): void {
  const key = f.key;
  const grow = (k: KeyContext | null) => (k === null ? null : { text: k.text + String.fromCharCode(b), after: k.after });
  switch (f.phase) {
    case StringPhase.Normal: {
      if (b === QUOTE) {
        if (f.length < f.minLength) return;
        if (key === null) return emit(out, f.up!);
        const obj = f.up as ObjectFrame;
        if (!forbiddenKey(obj, key.text)) emit(out, keyDone(obj, null, key.text));
        return;
      }
      if (b < 0x20 || f.length >= f.maxLength) return; // raw control characters are not JSON
      if (b === BACKSLASH) {
        if (key === null) emit(out, f.with(StringPhase.Escape, f.length + 1));
        return; // free keys are written without escapes, so duplicates can be told by their bytes
      }
      if (b < 0x80) return emit(out, f.with(StringPhase.Normal, f.length + 1, 0, 0, 0, 0, grow(key)));
      const lead = utf8Lead(b);
      if (lead !== null) emit(out, f.with(StringPhase.Utf8, f.length + 1, lead[0], 0, lead[1], lead[2], grow(key)));
      return;
    }
    case StringPhase.Utf8:
      if (b < f.lo || b > f.hi) return;
      if (f.digits === 1) emit(out, f.with(StringPhase.Normal, f.length, 0, 0, 0, 0, grow(key)));
      else emit(out, f.with(StringPhase.Utf8, f.length, f.digits - 1, 0, 0x80, 0xbf, grow(key)));
      return;
    case StringPhase.Escape:
      if (b === 0x75) emit(out, f.with(StringPhase.Hex, f.length));
      else if (b === QUOTE || b === BACKSLASH || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) {
        emit(out, f.with(StringPhase.Normal, f.length));
      }
      return;
    case StringPhase.Hex: {
      const h = hexValue(b);
      if (h < 0) return;
      const value = (f.value << 4) | h;
      const digits = f.digits + 1;
      if (digits === 2 && value >= 0xdc && value <= 0xdf) return; // a low surrogate without its high half
      if (digits < 4) return emit(out, f.with(StringPhase.Hex, f.length, digits, value));
      emit(out, f.with(value >= 0xd800 && value <= 0xdbff ? StringPhase.LowBackslash : StringPhase.Normal, f.length));
      return;
    }
    case StringPhase.LowBackslash:
      if (b === BACKSLASH) emit(out, f.with(StringPhase.LowU, f.length));
      return;
    case StringPhase.LowU:
      if (b === 0x75) emit(out, f.with(StringPhase.LowHex, f.length));
      return;
    case StringPhase.LowHex: {
      const h = hexValue(b);
      if (h < 0 || (f.digits === 0 && h !== 0xd) || (f.digits === 1 && h < 0xc)) return;
      emit(out, f.digits === 3 ? f.with(StringPhase.Normal, f.length) : f.with(StringPhase.LowHex, f.length, f.digits + 1));
      return;
    }
  }
}

/**
 * A string value (not a key) between characters or inside a UTF-8 character:
 * the token walker follows plain bytes from here with integers instead of
 * frames (see `resumeString`), since inside strings nearly every token is allowed.
 */
export function plainStringOf(configs: readonly Frame[]): StringFrame | null {
  const f = configs.length === 1 ? configs[0]! : null;
  if (f === null || f.kind !== "string" || f.key !== null) return null;
  return f.phase === StringPhase.Normal || f.phase === StringPhase.Utf8 ? f : null;
}

/** `f` after more plain bytes: `length` code points, `need` continuation bytes owed, the next one in [lo, hi]. */
export function resumeString(f: StringFrame, length: number, need: number, lo: number, hi: number): StringFrame {
  return need === 0 ? f.with(StringPhase.Normal, length) : f.with(StringPhase.Utf8, length, need, 0, lo, hi);
}

export type { StringFrame };

/** [continuation bytes, range of the first continuation byte] for a UTF-8 lead byte, or null. */
export function utf8Lead(b: number): [number, number, number] | null {
  if (b >= 0xc2 && b <= 0xdf) return [1, 0x80, 0xbf];
  if (b === 0xe0) return [2, 0xa0, 0xbf];
  if (b === 0xed) return [2, 0x80, 0x9f]; // no encoded surrogates
  if (b >= 0xe1 && b <= 0xef) return [2, 0x80, 0xbf];
  if (b === 0xf0) return [3, 0x90, 0xbf];
  if (b >= 0xf1 && b <= 0xf3) return [3, 0x80, 0xbf];
  if (b === 0xf4) return [3, 0x80, 0x8f];
  return null;
}

function stepNumber(f: NumberFrame, b: number, out: Frame[]): void {
  const next = (phase: NumberPhase, digits: number) => emit(out, new NumberFrame(f.up!, f.integer, phase, digits));
  const p = f.phase;
  if (isDigit(b)) {
    if (p === NumberPhase.Minus) return next(b === 0x30 ? NumberPhase.Zero : NumberPhase.Int, 1);
    if (p === NumberPhase.Int && f.digits < MAX_INT_DIGITS) return next(NumberPhase.Int, f.digits + 1);
    if (p === NumberPhase.Dot || (p === NumberPhase.Frac && f.digits < MAX_FRAC_DIGITS)) return next(NumberPhase.Frac, p === NumberPhase.Dot ? 1 : f.digits + 1);
    if (p === NumberPhase.Exp || p === NumberPhase.ExpSign || (p === NumberPhase.ExpDigits && f.digits < MAX_EXP_DIGITS)) {
      return next(NumberPhase.ExpDigits, p === NumberPhase.ExpDigits ? f.digits + 1 : 1);
    }
  } else if (!f.integer) {
    if (b === 0x2e && (p === NumberPhase.Zero || p === NumberPhase.Int)) return next(NumberPhase.Dot, 0);
    if ((b === 0x65 || b === 0x45) && (p === NumberPhase.Zero || p === NumberPhase.Int || p === NumberPhase.Frac)) return next(NumberPhase.Exp, 0);
    if ((b === 0x2b || b === 0x2d) && p === NumberPhase.Exp) return next(NumberPhase.ExpSign, 0);
  }
  // Not part of the number: if the number may end here, its container reads the byte.
  if (f.endable) stepFrame(f.up!, b, out);
}

function stepLiteral(f: LiteralFrame, b: number, out: Frame[]): void {
  const pos = f.pos;
  const keep: number[] = [];
  for (let i = 0; i < f.texts.length; i++) if (f.texts[i]!.length > pos && f.texts[i]![pos] === b) keep.push(i);
  if (f.properties !== null) {
    // Declared keys include their closing quote, so a finished key is never a prefix of another.
    if (keep.length === 1 && f.texts[keep[0]!]!.length === pos + 1) return emit(out, keyDone(f.up as ObjectFrame, f.properties[keep[0]!]!, null));
    if (keep.length > 0) {
      emit(out, new LiteralFrame(f.up!, keep.map((i) => f.texts[i]!), pos + 1, keep.map((i) => f.properties![i]!), keep.map((i) => f.extras![i]!)));
    }
    return;
  }
  if (keep.length > 0) {
    const texts = keep.map((i) => f.texts[i]!);
    if (texts.every((t) => t.length === pos + 1)) emit(out, f.up!);
    else emit(out, new LiteralFrame(f.up!, texts, pos + 1, null, null));
  }
  if (f.endable) stepFrame(f.up!, b, out);
}

/** Fewest bytes that complete the document from any of these configurations. */
export function minBytesOf(configs: readonly Frame[]): number {
  let best = Infinity;
  for (const f of configs) best = Math.min(best, f.base + f.own);
  return best;
}

/** May the document end after the bytes read so far? */
export function canEndOf(configs: readonly Frame[]): boolean {
  return configs.some((f) => {
    if (f.kind === "root") return f.done;
    return (f.kind === "number" || f.kind === "literal") && f.endable && f.up!.kind === "root";
  });
}

/** The cloneable recognizer over one document. */
export class JsonRecognizer {
  private constructor(private configs: readonly Frame[]) {}

  static start(node: SchemaNode): JsonRecognizer {
    return new JsonRecognizer([new RootFrame(node, false, 0)]);
  }

  /** The live configurations (for walkers that step them directly with `stepFrame`). */
  get state(): readonly Frame[] {
    return this.configs;
  }

  /** Reads one byte; false (and no change) when no valid document continues with it. */
  advance(byte: number): boolean {
    const next = stepAll(this.configs, byte);
    if (next.length === 0) return false;
    this.configs = next;
    return true;
  }

  clone(): JsonRecognizer {
    return new JsonRecognizer(this.configs);
  }

  /** The document may end here. */
  canEnd(): boolean {
    return canEndOf(this.configs);
  }

  /** The document may end here and no byte can extend it. */
  isComplete(): boolean {
    if (!this.canEnd()) return false;
    for (let b = 0; b < 256; b++) if (stepAll(this.configs, b).length > 0) return false;
    return true;
  }

  minBytesToComplete(): number {
    return minBytesOf(this.configs);
  }
}

export function stepAll(configs: readonly Frame[], byte: number, out: Frame[] = []): Frame[] {
  for (const f of configs) stepFrame(f, byte, out);
  return out;
}
