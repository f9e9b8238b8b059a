// GET /metrics in the Prometheus text format (version 0.0.4). The HTTP layer
// counts requests and measures latencies it sees; token totals, queue depth,
// active sequences, prefix-cache outcomes and KV use come from the engine's
// own counters at scrape time.
import type { EngineStats } from "../runtime/engine/protocol.ts";

/** A cumulative histogram with fixed upper bounds (seconds). */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private total = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.total++;
    const index = this.bounds.findIndex((b) => value <= b);
    if (index >= 0) this.counts[index]!++;
  }

  /** The `_bucket`, `_sum` and `_count` lines for metric `name`. */
  render(name: string): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${name}_bucket{le="${bound}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{le="+Inf"} ${this.total}`, `${name}_sum ${this.sum}`, `${name}_count ${this.total}`);
    return lines;
  }
}

const TTFT_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const INTER_TOKEN_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Label values may hold any text; Prometheus wants `\`, `"` and newlines escaped. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  readonly timeToFirstToken = new Histogram(TTFT_BOUNDS);
  readonly interTokenLatency = new Histogram(INTER_TOKEN_BOUNDS);

  /** Counts one answered request by route pattern (not raw path, so label sets stay bounded) and status. */
  countRequest(route: string, status: number): void {
    const key = `route="${label(route)}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(stats: EngineStats): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, values: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values);
    };
    metric("psionic_requests_total", "counter", "HTTP requests answered, by route and status.",
      [...this.requests].map(([labels, count]) => `psionic_requests_total{${labels}} ${count}`));
    metric("psionic_prompt_tokens_total", "counter", "Prompt tokens evaluated or reused.", [`psionic_prompt_tokens_total ${stats.promptTokens}`]);
    metric("psionic_completion_tokens_total", "counter", "Tokens generated.", [`psionic_completion_tokens_total ${stats.completionTokens}`]);
    metric("psionic_queue_depth", "gauge", "Generation jobs waiting for a sequence slot.", [`psionic_queue_depth ${stats.queued}`]);
    metric("psionic_active_sequences", "gauge", "Sequences being generated.", [`psionic_active_sequences ${stats.active}`]);
    metric("psionic_prefix_cache_requests_total", "counter", "Prompt prefix-cache lookups by outcome.", [
      `psionic_prefix_cache_requests_total{outcome="hit"} ${stats.prefixCache.hits}`,
      `psionic_prefix_cache_requests_total{outcome="partial"} ${stats.prefixCache.partial}`,
      `psionic_prefix_cache_requests_total{outcome="miss"} ${stats.prefixCache.misses}`,
    ]);
    metric("psionic_prefix_cache_reused_tokens_total", "counter", "Prompt tokens whose KV came from the prefix cache.", [`psionic_prefix_cache_reused_tokens_total ${stats.prefixCache.reusedTokens}`]);
    metric("psionic_kv_used_tokens", "gauge", "KV positions in use over all cached sequences.", [`psionic_kv_used_tokens ${stats.kvUsedTokens}`]);
    metric("psionic_kv_capacity_tokens", "gauge", "KV positions available.", [`psionic_kv_capacity_tokens ${stats.kvCapacityTokens}`]);
    metric("psionic_time_to_first_token_seconds", "histogram", "From request arrival to the first generated token.", this.timeToFirstToken.render("psionic_time_to_first_token_seconds"));
    metric("psionic_inter_token_latency_seconds", "histogram", "Time between consecutive generated tokens of one sequence.", this.interTokenLatency.render("psionic_inter_token_latency_seconds"));
    return `${lines.join("\n")}\n`;
  }
}
