import { describe, expect, it } from "bun:test";
import { refusalOf as refusal } from "../util/refusal-of.ts";
import type { ChatMessage, ChatTool } from "./chat-types.ts";
import { renderChatTemplate, requireChatTemplate } from "./chat-template.ts";


const chatml =
  "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

const llama3 =
  "{{- bos_token }}{%- for message in messages %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

// A Hermes-style template with a tools preamble, tool calls, tool results and a role check.
const withTools = `{%- if tools %}<|im_start|>system
You may call these functions:
{%- for tool in tools %}

{{ tool.function.name }}: {{ tool.function.description }}
{%- endfor %}
<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role not in ['system', 'user', 'assistant', 'tool'] %}{{ raise_exception('Unsupported role: ' + message.role) }}{% endif %}
{%- if message.role == 'assistant' and message.tool_calls is defined %}<|im_start|>assistant
{%- for call in message.tool_calls %}
<tool_call>{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>tool
{{ message.content }}<|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content if message.content is not none else '' }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}`;

const base = { bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>" };
const conversation: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi!" },
];
const weather: ChatTool[] = [{ type: "function", function: { name: "get_weather", description: "Weather for a city.", parameters: { type: "object" } } }];

describe("renderChatTemplate", () => {
  it("renders a ChatML template with the generation prompt", () => {
    expect(renderChatTemplate(chatml, { ...base, messages: conversation })).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(renderChatTemplate(chatml, { ...base, messages: conversation, addGenerationPrompt: false })).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
    );
  });

  it("renders a llama-3 template with its BOS token and header tokens", () => {
    expect(renderChatTemplate(llama3, { ...base, messages: [{ role: "user", content: "  Hello \n" }] })).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("gives templates the tools, tool calls with object arguments and tool results", () => {
    const prompt = renderChatTemplate(withTools, {
      ...base,
      tools: weather,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } }] },
        { role: "tool", tool_call_id: "c1", content: "sunny" },
      ],
    });
    expect(prompt).toBe(
      // `{%-` eats the newline before it, and trim_blocks the one after a block tag.
      "<|im_start|>system\nYou may call these functions:\nget_weather: Weather for a city.<|im_end|>\n" +
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
        '<|im_start|>assistant<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>\n' +
        "<|im_start|>tool\nsunny<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  it("passes no tools as none and null content as none", () => {
    const prompt = renderChatTemplate(withTools, { ...base, messages: [{ role: "user", content: null }] });
    expect(prompt).toBe("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n");
  });

  it("turns raise_exception into chat.template-error naming the template's message", () => {
    const error = refusal(() => renderChatTemplate(withTools, { ...base, messages: [{ role: "developer", content: "x" }] }));
    expect(error.code).toBe("chat.template-error");
    expect(error.message).toContain("Unsupported role: developer");
  });

  it("refuses templates that fail to parse or to render with jinja's message", () => {
    const parse = refusal(() => renderChatTemplate("{% for m in messages %}{{ m.content }}", { ...base, messages: conversation }));
    expect(parse.code).toBe("chat.template-error");
    expect(parse.message).toContain("does not parse");
    const render = refusal(() => renderChatTemplate("{{ messages[0].content.nope() }}", { ...base, messages: conversation }));
    expect(render.code).toBe("chat.template-error");
    expect(render.message).toMatch(/chat template failed: .+/);
  });

  it("refuses unknown roles, non-text content and hostile tool schemas before rendering", () => {
    expect(refusal(() => renderChatTemplate(chatml, { ...base, messages: [{ role: "root", content: "x" } as unknown as ChatMessage] })).code).toBe("chat.bad-message");
    expect(refusal(() => renderChatTemplate(chatml, { ...base, messages: [{ role: "user", content: ["x"] } as unknown as ChatMessage] })).code).toBe("chat.bad-message");
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) deep = { items: deep };
    const tools: ChatTool[] = [{ type: "function", function: { name: "f", parameters: deep } }];
    expect(refusal(() => renderChatTemplate(chatml, { ...base, messages: conversation, tools })).code).toBe("chat.bad-tool");
  });

  it("lets extra variables through without overriding the standard ones", () => {
    const template = "{{ bos_token }}{% if enable_thinking %}think{% endif %}";
    expect(renderChatTemplate(template, { ...base, messages: [], extra: { enable_thinking: true, bos_token: "X" } })).toBe("<|begin_of_text|>think");
  });
});

describe("template globals", () => {
  it("formats strftime_now like Python with English month names", () => {
    const now = () => new Date(2024, 6, 26, 9, 5, 3);
    const template = "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %H:%M:%S %p %%') }}";
    expect(renderChatTemplate(template, { ...base, messages: [], now })).toBe("26 Jul 2024|Friday July 09:05:03 AM %");
  });

  it("bounds range() and keeps raise_exception out of reach of extra variables", () => {
    expect(renderChatTemplate("{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}", { ...base, messages: [] })).toBe("135");
    const huge = refusal(() => renderChatTemplate("{% for i in range(2000000000) %}{% endfor %}", { ...base, messages: [] }));
    expect(huge.code).toBe("chat.template-error");
    expect(huge.message).toContain("range()");
    const shadowed = refusal(() =>
      renderChatTemplate("{{ raise_exception('stop') }}", { ...base, messages: [], extra: { raise_exception: () => "ignored" } }));
    expect(shadowed.message).toContain("refused the conversation: stop");
  });
});

describe("requireChatTemplate", () => {
  it("returns the model's template or refuses with chat.no-template pointing to completions", () => {
    expect(requireChatTemplate({ id: "m", chatTemplate: chatml })).toBe(chatml);
    const error = refusal(() => requireChatTemplate({ id: "tiny.gguf" }));
    expect(error.code).toBe("chat.no-template");
    expect(error.message).toBe("model tiny.gguf has no tokenizer.chat_template; use /v1/completions with a plain prompt");
    expect(refusal(() => requireChatTemplate({ id: "m", chatTemplate: "  " })).code).toBe("chat.no-template");
  });
});
