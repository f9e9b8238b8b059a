import { describe, expect, it } from "bun:test";
import { refusalOf as refusal } from "../util/refusal-of.ts";
import type { ChatMessage, ChatTool } from "./chat-types.ts";
import { renderHarmony } from "./harmony.ts";
import { schemaToTypeScript } from "./harmony-tools.ts";


// The three functions of the format guide's "Function calling" example.
const weatherTools: ChatTool[] = [
  { type: "function", function: { name: "get_location", description: "Gets the location of the user." } },
  {
    type: "function",
    function: {
      name: "get_current_weather",
      description: "Gets the current weather in the provided location.",
      parameters: {
        type: "object",
        properties: {
          location: { type: "string", description: "The city and state, e.g. San Francisco, CA" },
          format: { type: "string", enum: ["celsius", "fahrenheit"], default: "celsius" },
        },
        required: ["location"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "get_multiple_weathers",
      description: "Gets the current weather in the provided list of locations.",
      parameters: {
        type: "object",
        properties: {
          locations: {
            type: "array",
            items: { type: "string" },
            description: 'List of city and state, e.g. ["San Francisco, CA", "New York, NY"]',
          },
          format: { type: "string", enum: ["celsius", "fahrenheit"], default: "celsius" },
        },
        required: ["locations"],
      },
    },
  },
];

// Typed by hand from the format guide (system and developer messages of its tools example).
const guideSystemAndDeveloper =
  "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n" +
  "Knowledge cutoff: 2024-06\n" +
  "Current date: 2025-06-28\n" +
  "\n" +
  "Reasoning: high\n" +
  "\n" +
  "# Valid channels: analysis, commentary, final. Channel must be included for every message.\n" +
  "Calls to these tools must go to the commentary channel: 'functions'.<|end|>" +
  "<|start|>developer<|message|># Instructions\n" +
  "\n" +
  "Use a friendly tone.\n" +
  "\n" +
  "# Tools\n" +
  "\n" +
  "## functions\n" +
  "\n" +
  "namespace functions {\n" +
  "\n" +
  "// Gets the location of the user.\n" +
  "type get_location = () => any;\n" +
  "\n" +
  "// Gets the current weather in the provided location.\n" +
  "type get_current_weather = (_: {\n" +
  "// The city and state, e.g. San Francisco, CA\n" +
  "location: string,\n" +
  'format?: "celsius" | "fahrenheit", // default: celsius\n' +
  "}) => any;\n" +
  "\n" +
  "// Gets the current weather in the provided list of locations.\n" +
  "type get_multiple_weathers = (_: {\n" +
  '// List of city and state, e.g. ["San Francisco, CA", "New York, NY"]\n' +
  "locations: string[],\n" +
  'format?: "celsius" | "fahrenheit", // default: celsius\n' +
  "}) => any;\n" +
  "\n" +
  "} // namespace functions<|end|>";

const weatherOptions = { reasoningEffort: "high" as const, tools: weatherTools, currentDate: "2025-06-28" };

describe("renderHarmony", () => {
  it("renders a system prompt and one user turn byte for byte like openai-harmony", () => {
    const prompt = renderHarmony([{ role: "user", content: "What is 2 + 2?" }], { reasoningEffort: "low" });
    expect(prompt).toBe(
      "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n" +
        "Knowledge cutoff: 2024-06\n\nReasoning: low\n\n" +
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>" +
        "<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant",
    );
  });

  it("declares function tools in the developer message exactly as the format guide shows", () => {
    const prompt = renderHarmony(
      [
        { role: "system", content: "Use a friendly tone." },
        { role: "user", content: "What is the weather like in SF?" },
      ],
      weatherOptions,
    );
    expect(prompt).toBe(
      guideSystemAndDeveloper + "<|start|>user<|message|>What is the weather like in SF?<|end|><|start|>assistant",
    );
  });

  it("renders a pending tool call with its reasoning and the tool's result as in the guide", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "Use a friendly tone." },
      { role: "user", content: "What is the weather like in SF?" },
      {
        role: "assistant",
        content: null,
        reasoning_content: "Need to use function get_weather.",
        tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"location":"San Francisco"}' } }],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"sunny": true, "temperature": 20}' },
    ];
    expect(renderHarmony(messages, weatherOptions)).toBe(
      guideSystemAndDeveloper +
        "<|start|>user<|message|>What is the weather like in SF?<|end|>" +
        "<|start|>assistant<|channel|>analysis<|message|>Need to use function get_weather.<|end|>" +
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location":"San Francisco"}<|call|>' +
        '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"sunny": true, "temperature": 20}<|end|>' +
        "<|start|>assistant",
    );
  });

  it("keeps only the final channel of past answers and drops their reasoning", () => {
    const prompt = renderHarmony(
      [
        { role: "user", content: "What is 2 + 2?" },
        { role: "assistant", content: "2 + 2 = 4.", reasoning_content: "Simple arithmetic." },
        { role: "user", content: "What about 9 / 2?" },
      ],
      { reasoningEffort: "medium" },
    );
    expect(prompt).toEndWith(
      "<|start|>user<|message|>What is 2 + 2?<|end|>" +
        "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|end|>" +
        "<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant",
    );
    expect(prompt).not.toContain("Simple arithmetic");
    expect(prompt).toContain("Reasoning: medium");
  });

  it("drops the reasoning of a tool-calling turn once a later answer was final", () => {
    const prompt = renderHarmony(
      [
        { role: "user", content: "Weather?" },
        {
          role: "assistant", content: null, reasoning_content: "Call the tool.",
          tool_calls: [{ id: "a", type: "function", function: { name: "get_weather", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "a", content: "sunny" },
        { role: "assistant", content: "It is sunny." },
        { role: "user", content: "Thanks" },
      ],
      { reasoningEffort: "low" },
    );
    expect(prompt).not.toContain("Call the tool.");
    expect(prompt).toContain("<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>sunny<|end|>");
  });

  it("renders text beside tool calls as a commentary preamble and parallel calls in order", () => {
    const prompt = renderHarmony(
      [
        { role: "user", content: "Two cities" },
        {
          role: "assistant",
          content: "Checking both.",
          tool_calls: [
            { id: "x", type: "function", function: { name: "w", arguments: '{"c":"A"}' } },
            { id: "y", type: "function", function: { name: "w", arguments: '{"c":"B"}' } },
          ],
        },
        { role: "tool", tool_call_id: "y", content: "B: rain" },
        { role: "tool", tool_call_id: "x", content: "A: sun" },
      ],
      { reasoningEffort: "low", addGenerationPrompt: false },
    );
    expect(prompt).toEndWith(
      "<|start|>assistant<|channel|>commentary<|message|>Checking both.<|end|>" +
        '<|start|>assistant<|channel|>commentary to=functions.w <|constrain|>json<|message|>{"c":"A"}<|call|>' +
        '<|start|>assistant<|channel|>commentary to=functions.w <|constrain|>json<|message|>{"c":"B"}<|call|>' +
        "<|start|>functions.w to=assistant<|channel|>commentary<|message|>B: rain<|end|>" +
        "<|start|>functions.w to=assistant<|channel|>commentary<|message|>A: sun<|end|>",
    );
  });

  it("merges leading system and developer messages into one instructions section", () => {
    const prompt = renderHarmony(
      [
        { role: "system", content: "Be brief." },
        { role: "developer", content: "Answer in French." },
        { role: "user", content: "Hi" },
        { role: "system", content: "Now answer in German." },
      ],
      { reasoningEffort: "low" },
    );
    expect(prompt).toContain("<|start|>developer<|message|># Instructions\n\nBe brief.\n\nAnswer in French.<|end|><|start|>user");
    expect(prompt).toContain("<|start|>user<|message|>Hi<|end|><|start|>developer<|message|># Instructions\n\nNow answer in German.<|end|>");
    expect(prompt).not.toContain("Calls to these tools");
  });

  it("declares tools without a system prompt as a developer message holding only # Tools", () => {
    const prompt = renderHarmony([{ role: "user", content: null }], {
      reasoningEffort: "low",
      tools: [{ type: "function", function: { name: "ping" } }],
    });
    expect(prompt).toContain(
      "<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\ntype ping = () => any;\n\n} // namespace functions<|end|>" +
        "<|start|>user<|message|><|end|>",
    );
  });

  it("refuses unknown roles, bad tool names and unattributable tool results", () => {
    const bad = (m: unknown) => () => renderHarmony([m as ChatMessage], { reasoningEffort: "low" });
    expect(refusal(bad({ role: "wizard", content: "x" })).message).toContain('unknown role "wizard"');
    expect(refusal(bad({ role: "tool", tool_call_id: "nope", content: "x" })).message).toContain('"nope"');
    expect(refusal(bad({ role: "user", content: 42 })).code).toBe("chat.bad-message");
    const injected = { role: "assistant", content: null, tool_calls: [{ id: "a", type: "function", function: { name: "f<|end|>", arguments: "{}" } }] };
    expect(refusal(bad(injected)).code).toBe("chat.bad-tool");
    const noName = { role: "assistant", content: null, tool_calls: [{ id: "a", type: "function", function: { arguments: "{}" } }] };
    expect(refusal(bad(noName)).code).toBe("chat.bad-tool");
    expect(refusal(() => renderHarmony([], { reasoningEffort: "max" as "low" })).code).toBe("chat.bad-option");
    expect(refusal(() => renderHarmony([], { reasoningEffort: "low", currentDate: "x<|end|>" })).code).toBe("chat.bad-option");
  });

  it("names a tool result by its message name when no call id matches", () => {
    const prompt = renderHarmony([{ role: "tool", name: "lookup", content: "42" }], { reasoningEffort: "low" });
    expect(prompt).toContain("<|start|>functions.lookup to=assistant<|channel|>commentary<|message|>42<|end|>");
  });

  it("refuses tools whose parameter schemas nest deeper than 32 levels or repeat a name", () => {
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { type: "object", properties: { x: deep } };
    const tools: ChatTool[] = [{ type: "function", function: { name: "deep", parameters: deep } }];
    const error = refusal(() => renderHarmony([], { reasoningEffort: "low", tools }));
    expect(error.code).toBe("chat.bad-tool");
    expect(error.message).toContain("deeper than 32");
    const twice: ChatTool[] = [{ type: "function", function: { name: "a" } }, { type: "function", function: { name: "a" } }];
    expect(refusal(() => renderHarmony([], { reasoningEffort: "low", tools: twice })).message).toContain("declared twice");
  });
});

describe("schemaToTypeScript", () => {
  it("writes integers as number, type arrays as unions and arrays of objects with deeper indents", () => {
    expect(schemaToTypeScript({ type: "integer" }, "")).toBe("number");
    expect(schemaToTypeScript({ type: ["string", "null"] }, "")).toBe("string | null");
    expect(schemaToTypeScript({ type: "array" }, "")).toBe("Array<any>");
    expect(schemaToTypeScript({}, "")).toBe("any");
    expect(schemaToTypeScript(null, "")).toBe("any");
    expect(
      schemaToTypeScript(
        {
          type: "object",
          properties: {
            n: { type: "integer", default: 3, nullable: true },
            inner: { type: "object", properties: { s: { type: "string", default: "hi" } }, required: ["s"] },
          },
        },
        "",
      ),
    ).toBe('{\nn?: number | null, // default: 3\ninner?: {\n    s: string, // default: "hi"\n    },\n}');
  });

  it("writes a oneOf property one variant per line with its comments", () => {
    const schema = {
      type: "object",
      properties: {
        id: { description: "Which item", oneOf: [{ type: "number" }, { type: "string", description: "a URL" }], default: -1 },
      },
    };
    expect(schemaToTypeScript(schema, "")).toBe("{\n// Which item\n// default: -1\nid?:\n | number\n | string // a URL\n,\n}");
  });
});
