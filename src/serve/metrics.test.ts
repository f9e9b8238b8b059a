import { describe, expect, it } from "bun:test";
import { Histogram, ServerMetrics } from "./metrics.ts";

const stats = { queued: 2, active: 3, kvUsedTokens: 10, kvCapacityTokens: 100, prefixCache: { hits: 4, partial: 5, misses: 6, reusedTokens: 7 }, promptTokens: 8, completionTokens: 9 };

describe("metrics", () => {
  it("renders a cumulative histogram with +Inf, sum and count", () => {
    const h = new Histogram([0.1, 1]);
    for (const value of [0.05, 0.5, 0.7, 5]) h.observe(value);
    expect(h.render("t")).toEqual(['t_bucket{le="0.1"} 1', 't_bucket{le="1"} 3', 't_bucket{le="+Inf"} 4', "t_sum 6.25", "t_count 4"]);
  });

  it("counts requests by route and status and reports the engine's gauges and counters", () => {
    const metrics = new ServerMetrics();
    metrics.countRequest("/v1/completions", 200);
    metrics.countRequest("/v1/completions", 200);
    metrics.countRequest('we"ird', 404);
    const text = metrics.render(stats);
    expect(text).toContain('psionic_requests_total{route="/v1/completions",status="200"} 2');
    expect(text).toContain('psionic_requests_total{route="we\\"ird",status="404"} 1');
    for (const line of ["psionic_queue_depth 2", "psionic_active_sequences 3", 'psionic_prefix_cache_requests_total{outcome="partial"} 5', "psionic_kv_used_tokens 10", "psionic_completion_tokens_total 9"]) {
      expect(text).toContain(line);
    }
    expect(text.endsWith("\n")).toBe(true);
  });
});
