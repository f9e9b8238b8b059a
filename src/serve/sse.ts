// Server-sent events: the framing OpenAI clients parse, and a response whose
// body is pulled chunk by chunk from an async iterator, so each event leaves
// as soon as it is produced (nothing is buffered on our side) and a client
// that goes away stops the producer.
import { toApiError } from "./errors.ts";

/** One `data:` event carrying JSON. */
export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** A named event (the Responses API names each event by its type). */
export function sseEvent(event: string, value: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(value)}\n\n`;
}

/** The chat/completions stream terminator. */
export const SSE_DONE = "data: [DONE]\n\n";

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  // Tells nginx-style proxies not to buffer the stream.
  "x-accel-buffering": "no",
} as const;

/**
 * A streaming response over `chunks`. `onCancel` runs once when the client
 * disconnects (the stream is cancelled or the request's signal aborts) before
 * the iterator is exhausted.
 */
export function sseResponse(chunks: AsyncIterable<string>, options: { signal?: AbortSignal; onCancel: () => void; headers?: Record<string, string>; status?: number }): Response {
  const iterator = chunks[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  let finished = false;
  const cancel = () => {
    if (finished) return;
    finished = true;
    options.onCancel();
    void iterator.return?.();
  };
  options.signal?.addEventListener("abort", cancel, { once: true });
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done) {
          finished = true;
          options.signal?.removeEventListener("abort", cancel);
          controller.close();
        } else if (!finished) controller.enqueue(encoder.encode(next.value));
      } catch (error) {
        // Headers are gone already: the refusal travels as a last event in the error envelope.
        finished = true;
        controller.enqueue(encoder.encode(sseData(toApiError(error).toBody())));
        controller.close();
      }
    },
    cancel,
  });
  return new Response(body, { status: options.status ?? 200, headers: { ...SSE_HEADERS, ...options.headers } });
}
