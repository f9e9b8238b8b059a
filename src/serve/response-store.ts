// Stored responses for `previous_response_id`: each keeps the whole
// conversation up to and including its own output, so a follow-up renders the
// full history. Bounded: past `capacity` the least recently used is dropped
// (a Map iterates in insertion order; a read re-inserts).
import type { ChatMessage } from "../tokenizer/chat-types.ts";

export interface StoredResponse {
  id: string;
  model: string;
  /** Instructions are per request (OpenAI does not carry them over), so they are not part of the history. */
  history: ChatMessage[];
}

export class ResponseStore {
  private readonly entries = new Map<string, StoredResponse>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: string): StoredResponse | undefined {
    const entry = this.entries.get(id);
    if (entry) {
      this.entries.delete(id);
      this.entries.set(id, entry);
    }
    return entry;
  }

  put(entry: StoredResponse): void {
    this.entries.delete(entry.id);
    this.entries.set(entry.id, entry);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
