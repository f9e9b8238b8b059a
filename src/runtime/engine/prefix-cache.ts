// KV caches for concurrent sequences, kept after their request ends so a
// later request that starts with the same tokens reuses them (a prefix cache).
//
// Each entry is one KV cache plus the tokens whose K/V it holds. A new
// request takes the idle entry sharing its longest prefix (when that prefix
// is worth more than what the entry would lose), keeps that much and
// evaluates only the rest. If the entry also remembers the logits at the
// last prompt position (stored when an earlier request's prompt ended there),
// an identical prompt skips evaluation entirely. Entries are created on
// demand up to a byte budget; past it, the least recently used idle entry is
// emptied and reused.
import type { KVCache } from "../../model/kv-cache.ts";
import type { PrefixCacheOutcome } from "./protocol.ts";

export interface CacheEntry {
  readonly cache: KVCache;
  /** Token ids whose K/V sit in the cache, position by position. */
  tokens: number[];
  /** Logits after the token at `position` (the end of an earlier prompt), while tokens[0..position] are unchanged. */
  logits?: { position: number; values: Float32Array };
  busy: boolean;
  lastUsed: number;
}

export interface Acquired {
  entry: CacheEntry;
  /** Prompt tokens whose K/V are already in the cache. */
  reused: number;
  /** Logits for the last prompt token when nothing needs evaluating (an exact hit). */
  logits?: Float32Array;
  outcome: PrefixCacheOutcome;
}

export interface PrefixCacheStats {
  hits: number;
  partial: number;
  misses: number;
  reusedTokens: number;
}

function commonPrefix(a: readonly number[], b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class PrefixCache {
  private readonly entries: CacheEntry[] = [];
  private clock = 0;
  readonly stats: PrefixCacheStats = { hits: 0, partial: 0, misses: 0, reusedTokens: 0 };

  /**
   * @param newCache makes an empty KV cache
   * @param maxEntries entries the byte budget allows (at least the number of concurrent sequences)
   */
  constructor(private readonly newCache: () => KVCache, readonly maxEntries: number) {}

  get size(): number {
    return this.entries.length;
  }

  /** KV positions filled and available over all entries. */
  usage(): { used: number; capacity: number } {
    let used = 0;
    for (const e of this.entries) used += e.cache.length;
    return { used, capacity: this.entries.length * (this.entries[0]?.cache.contextLimit ?? 0) };
  }

  /** An idle entry for `prompt` (non-empty), its reusable prefix trimmed in, or undefined when every entry is busy. */
  acquire(prompt: Int32Array): Acquired | undefined {
    let best: CacheEntry | undefined, bestShared = 0, oldest: CacheEntry | undefined;
    for (const e of this.entries) {
      if (e.busy) continue;
      const shared = commonPrefix(e.tokens, prompt);
      if (!best || shared > bestShared || (shared === bestShared && e.lastUsed > best.lastUsed)) {
        best = e;
        bestShared = shared;
      }
      if (!oldest || e.lastUsed < oldest.lastUsed) oldest = e;
    }
    // Reusing an entry truncates what it holds past the shared prefix. Worth it when
    // nothing is lost or the prefix is most of the prompt; otherwise keep that entry
    // for a later hit and take a fresh one, or past the budget the least recently used.
    const worthIt = best !== undefined && bestShared > 0 && (bestShared >= best.tokens.length || 2 * bestShared >= prompt.length);
    if (!worthIt) {
      if (this.entries.length < this.maxEntries) {
        best = { cache: this.newCache(), tokens: [], busy: false, lastUsed: 0 };
        this.entries.push(best);
      } else {
        best = oldest;
      }
      bestShared = best ? commonPrefix(best.tokens, prompt) : 0;
    }
    if (!best) return undefined;
    best.busy = true;
    best.lastUsed = ++this.clock;

    const last = prompt.length - 1;
    const exact = bestShared >= prompt.length && best.logits?.position === last;
    // Otherwise at least the last prompt token is evaluated, to get its logits.
    const reused = exact ? prompt.length : Math.min(bestShared, last);
    best.cache.truncate(reused);
    best.tokens.length = reused;
    if (best.logits && best.logits.position >= reused && !exact) best.logits = undefined;
    const outcome: PrefixCacheOutcome = exact ? "hit" : reused > 0 ? "partial" : "miss";
    this.stats[outcome === "hit" ? "hits" : outcome === "partial" ? "partial" : "misses"]++;
    this.stats.reusedTokens += reused;
    return { entry: best, reused, logits: exact ? best.logits!.values : undefined, outcome };
  }

  /** The entry's sequence ended; its K/V stay for later requests. */
  release(entry: CacheEntry): void {
    entry.busy = false;
    entry.lastUsed = ++this.clock;
  }
}
