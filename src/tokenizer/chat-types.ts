// The OpenAI chat message shapes that prompt rendering accepts. The HTTP layer
// validates requests and flattens content parts to text before these are built.

export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool";

export interface ChatToolCall {
  id: string;
  type: "function";
  /** `arguments` is JSON text, exactly as OpenAI sends it. */
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: ChatRole;
  content: string | null;
  name?: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  /** Reasoning a client echoes back from an earlier turn (dropped by harmony). */
  reasoning_content?: string;
}

export interface ChatTool {
  type: "function";
  /** `parameters` is a JSON schema for the arguments object. */
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** A tool call recovered from generated text; `arguments` is compact JSON text. */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}
