// A one-line progress report on stderr for long work (writing a large GGUF,
// quantizing): bytes done of total, rate and time left. It redraws in place,
// at most a few times a second, and stays silent when stderr is not a terminal
// (logs, CI, tests) or when the caller asks for quiet.

export interface ProgressOptions {
  /** Shown before the numbers, e.g. the file being written. */
  label: string;
  /** Total bytes expected; 0 when unknown (then no percentage or ETA). */
  total: number;
  /** Force silence even on a terminal. */
  quiet?: boolean;
  /** Where to draw; defaults to process.stderr. Tests pass their own. */
  stream?: { isTTY?: boolean; write(text: string): unknown };
  /** Clock in milliseconds; tests pass their own. */
  now?: () => number;
  /** Minimum milliseconds between redraws. */
  intervalMs?: number;
}

export interface Progress {
  /** Report that `done` bytes are finished; `total` updates the total when it becomes known. */
  update(done: number, total?: number): void;
  /** Draw the final line and move to the next line. */
  finish(): void;
  /** Whether anything is drawn at all. */
  readonly visible: boolean;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Bytes as a short human string: 1536 -> "1.5 KB" (powers of 1024). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

/** Seconds as "1h02m", "3m05s" or "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** The progress line for a state, without any terminal control characters. */
export function progressLine(label: string, done: number, total: number, elapsedSeconds: number): string {
  const rate = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
  const parts = [label];
  if (total > 0) {
    const percent = Math.min(100, (100 * done) / total);
    parts.push(`${percent.toFixed(1).padStart(5)}%`, `${formatBytes(done)} / ${formatBytes(total)}`);
  } else {
    parts.push(formatBytes(done));
  }
  parts.push(`${formatBytes(rate)}/s`);
  if (total > 0 && rate > 0 && done < total) parts.push(`ETA ${formatDuration((total - done) / rate)}`);
  return parts.join("  ");
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 200;
  const visible = !options.quiet && stream.isTTY === true;
  const start = now();
  let lastDraw = -Infinity;
  let done = 0;
  let total = options.total;
  let drawnWidth = 0;

  const draw = () => {
    const line = progressLine(options.label, done, total, (now() - start) / 1000);
    // Pad over the previous line so a shorter one leaves no stale characters.
    stream.write(`\r${line.padEnd(drawnWidth)}`);
    drawnWidth = line.length;
  };

  return {
    visible,
    update(value: number, newTotal?: number) {
      done = value;
      if (newTotal !== undefined) total = newTotal;
      if (!visible) return;
      const t = now();
      if (t - lastDraw < interval) return;
      lastDraw = t;
      draw();
    },
    finish() {
      if (!visible) return;
      draw();
      stream.write("\n");
    },
  };
}
