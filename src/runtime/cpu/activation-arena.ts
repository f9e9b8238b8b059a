// Reused activation buffers for the CPU backend, so a decode step allocates
// nothing. The Backend interface has no "free": a model just drops the
// activations it no longer needs. But every forward pass starts with `embed`
// and asks for its buffers in the same order each step, so the arena hands out
// slot 0, 1, 2, ... and starts over at slot 0 when the next step begins: step
// N+1 reuses step N's buffers (growing a slot when it needs more room).
//
// An activation therefore lives until the next step begins. Each one records
// its step, and the backend refuses a stale one (a typed error) rather than
// read numbers a later step overwrote. Past `budgetBytes` of slots (a long
// prefill), buffers are fresh allocations that never go stale; the garbage
// collector frees them.
import { PsionicError } from "../../util/errors.ts";
import { PERSISTENT } from "../backend.ts";

/** Default slot budget: a decode step of any preset (gpt-oss-20b included) fits many times over; a big prefill spills past it. */
export const DEFAULT_ARENA_BYTES = 64 * 1024 * 1024;


export class ActivationArena {
  private readonly slots: Float32Array[] = [];
  /** The last view handed out of each slot: a decode step asks for the same sizes every step, so it is reused. */
  private readonly views: Float32Array[] = [];
  private cursor = 0;
  private slotBytes = 0;
  /** The current step; activations taken in an earlier step are stale. */
  step = 0;
  /** Buffers allocated so far (slots created or grown, plus spills past the budget). */
  allocations = 0;

  constructor(private readonly budgetBytes = DEFAULT_ARENA_BYTES) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw new PsionicError("backend.bad-option", `arena budget must be a non-negative integer of bytes, got ${budgetBytes}`);
  }

  /** Starts a new step: every buffer handed out so far may now be overwritten. */
  beginStep(): void {
    this.step++;
    this.cursor = 0;
  }

  /** `n` floats (not zeroed) and the step that owns them (PERSISTENT when never reused). */
  take(n: number): { data: Float32Array; step: number } {
    const index = this.cursor++;
    const slot = this.slots[index];
    if (slot && slot.length >= n) {
      let view = this.views[index]!;
      if (view.length !== n) this.views[index] = view = slot.subarray(0, n);
      return { data: view, step: this.step };
    }
    this.allocations++;
    const grown = this.slotBytes - (slot?.byteLength ?? 0) + n * 4;
    // Slots are only created in order; past the budget the rest of the step spills.
    if (grown > this.budgetBytes || index > this.slots.length) return { data: new Float32Array(n), step: PERSISTENT };
    const data = new Float32Array(n);
    this.slots[index] = data;
    this.views[index] = data;
    this.slotBytes = grown;
    return { data, step: this.step };
  }

  /** Bytes held in reusable slots. */
  get bytes(): number {
    return this.slotBytes;
  }
}
