import { describe, expect, it } from "bun:test";
import { seededRandom } from "../../util/seeded-random.ts";
import { JsonRecognizer, MAX_WHITESPACE_RUN } from "./json-automaton.ts";
import { ANY_OBJECT, compileJsonSchema, type SchemaNode } from "./json-schema.ts";

const utf8 = new TextEncoder();

/** Index of the first byte the recognizer refuses, or -1 when it reads them all. */
function firstRejected(node: SchemaNode, doc: string | Uint8Array): { at: number; r: JsonRecognizer } {
  const r = JsonRecognizer.start(node);
  const bytes = typeof doc === "string" ? utf8.encode(doc) : doc;
  for (let i = 0; i < bytes.length; i++) if (!r.advance(bytes[i]!)) return { at: i, r };
  return { at: -1, r };
}

const accepts = (node: SchemaNode, doc: string | Uint8Array) => {
  const { at, r } = firstRejected(node, doc);
  return at < 0 && r.canEnd();
};

const person = compileJsonSchema({
  type: "object",
  properties: { name: { type: "string", minLength: 1, maxLength: 4 }, age: { type: "integer" }, tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 2 } },
  required: ["name", "age"],
});

describe("JSON recognizer", () => {
  it("reads documents that satisfy the schema, with bounded whitespace between tokens", () => {
    expect(accepts(person, '{"name":"Ann","age":41}')).toBe(true);
    expect(accepts(person, '{ "age" : -7 ,\n"name": "Bo", "tags": ["x"] }')).toBe(true);
    expect(accepts(person, '{"tags":["a","b"],"name":"é","age":0}')).toBe(true);
    expect(accepts(ANY_OBJECT, '{"a":[1,2.5e-3,{"b":null}],"c":true,"d":"\\u00e9\\n"}')).toBe(true);
  });

  it("refuses each invalid document at the first byte that cannot lead anywhere valid", () => {
    const cases: [SchemaNode, string, number][] = [
      [person, '{"nam":', 5], // not a declared key
      [person, '{"name":"Ann"}', 13], // "age" is required before }
      [person, '{"name":"Ann","name"', 15], // a key only once: only "age" may start here
      [person, '{"name":"","age":1}', 9], // minLength 1
      [person, '{"name":"Annie"', 13], // maxLength 4
      [person, '{"age":1.5', 8], // integer: no fraction
      [person, '{"age":01', 8], // no leading zeros
      [person, '{"age":1,"tags":[]', 17], // minItems 1
      [person, '{"age":1,"tags":["a","b",', 24], // maxItems 2
      [ANY_OBJECT, "[1]", 0], // json_object: an object at the top
      [ANY_OBJECT, '{"a":1,"a"', 9], // duplicate free key
      [ANY_OBJECT, '{"a":1}x', 7], // nothing after the document
      [ANY_OBJECT, "{" + " ".repeat(MAX_WHITESPACE_RUN + 1), MAX_WHITESPACE_RUN + 1],
      [ANY_OBJECT, '{"a":"x\ty"}', 7], // raw control character in a string
      [ANY_OBJECT, '{"a":"\\x"}', 7], // not a JSON escape
      [ANY_OBJECT, '{"a":tru}', 8],
    ];
    for (const [node, doc, at] of cases) expect({ doc, at: firstRejected(node, doc).at }).toEqual({ doc, at });
  });

  it("validates UTF-8 inside strings, byte by byte, across split characters", () => {
    const s = compileJsonSchema({ type: "string", maxLength: 2 });
    const r = JsonRecognizer.start(s);
    for (const b of [0x22, 0xe2, 0x82]) expect(r.advance(b)).toBe(true); // '"' then two bytes of "€"
    expect(r.canEnd()).toBe(false);
    expect(r.advance(0x22)).toBe(false); // the character is unfinished
    expect(r.minBytesToComplete()).toBe(2); // its last byte, then the quote
    expect(r.advance(0xac)).toBe(true);
    expect(r.advance(0x22)).toBe(true);
    expect(r.isComplete()).toBe(true);
    expect(firstRejected(s, new Uint8Array([0x22, 0xc0, 0x80])).at).toBe(1); // overlong lead byte
    expect(firstRejected(s, new Uint8Array([0x22, 0x80])).at).toBe(1); // lone continuation byte
    expect(firstRejected(s, new Uint8Array([0x22, 0xe0, 0x80])).at).toBe(2); // overlong 3-byte form
    expect(firstRejected(s, new Uint8Array([0x22, 0xed, 0xa0])).at).toBe(2); // encoded surrogate
    expect(firstRejected(s, new Uint8Array([0x22, 0xf4, 0x90])).at).toBe(2); // beyond U+10FFFF
  });

  it("counts a surrogate-pair escape as one character and refuses a lone low surrogate", () => {
    const one = compileJsonSchema({ type: "string", maxLength: 1 });
    expect(accepts(one, '"\\ud83d\\ude00"')).toBe(true);
    expect(accepts(one, '"ab"')).toBe(false);
    expect(firstRejected(one, '"\\udc00"').at).toBe(4);
    expect(firstRejected(one, '"\\ud83dx').at).toBe(7); // the low half must follow
  });

  it("takes enum and const values as their exact JSON text, including numbers that prefix each other", () => {
    const e = compileJsonSchema({ type: "object", properties: { v: { enum: [1, 12, "x", null, { k: [true] }] } }, required: ["v"] });
    for (const v of ["1", "12", '"x"', "null", '{"k":[true]}']) expect(accepts(e, `{"v":${v}}`)).toBe(true);
    expect(accepts(e, '{"v":13}')).toBe(false);
    expect(accepts(e, '{"v":"y"}')).toBe(false);
  });

  it("keeps every anyOf reading alive until the bytes decide", () => {
    const a = compileJsonSchema({
      anyOf: [
        { type: "object", properties: { kind: { const: "circle" }, r: { type: "number" } }, required: ["kind", "r"] },
        { type: "object", properties: { kind: { const: "square" }, side: { type: "integer" } }, required: ["kind", "side"] },
      ],
    });
    expect(accepts(a, '{"kind":"circle","r":1.5}')).toBe(true);
    expect(accepts(a, '{"kind":"square","side":2}')).toBe(true);
    expect(accepts(a, '{"kind":"square","r":2}')).toBe(false);
  });

  it("reports the exact fewest closing bytes: some byte lowers the count by one and none by more", () => {
    const schemas = [
      person,
      ANY_OBJECT,
      compileJsonSchema({ type: "array", items: { type: "object", properties: { id: { type: "integer" }, s: { type: "string", minLength: 2 } }, required: ["id", "s"] }, minItems: 2, maxItems: 3 }),
      compileJsonSchema({ type: "object", properties: { a: { type: "string" } }, additionalProperties: { type: "boolean" }, required: ["a", "zz"] }),
      compileJsonSchema({ type: "object", properties: { x: { anyOf: [{ type: "null" }, { type: "string", minLength: 3 }, { enum: [123456] }] } }, required: ["x"] }),
    ];
    const rnd = seededRandom(11);
    for (const node of schemas) {
      for (let walk = 0; walk < 20; walk++) {
        const r = JsonRecognizer.start(node);
        // A random prefix: random bytes the recognizer accepts.
        for (let step = 0; step < 40 && !r.isComplete(); step++) {
          const options = acceptedBytes(r);
          r.advance(options[Math.floor(rnd() * options.length)]!);
        }
        // Then close along the cheapest path; it must take exactly the promised bytes.
        const promised = r.minBytesToComplete();
        let taken = 0;
        while (r.minBytesToComplete() > 0) {
          const m = r.minBytesToComplete();
          const costs = acceptedBytes(r).map((b) => {
            const next = r.clone();
            next.advance(b);
            return { b, cost: next.minBytesToComplete() };
          });
          expect(Math.min(...costs.map((c) => c.cost))).toBe(m - 1);
          r.advance(costs.find((c) => c.cost === m - 1)!.b);
          taken++;
        }
        expect(taken).toBe(promised);
        expect(r.canEnd()).toBe(true);
      }
    }
  });
});

function acceptedBytes(r: JsonRecognizer): number[] {
  const out: number[] = [];
  for (let b = 0; b < 256; b++) if (r.clone().advance(b)) out.push(b);
  return out;
}
