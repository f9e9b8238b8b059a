import { describe, expect, it } from "bun:test";
import { createProgress, formatBytes, formatDuration, progressLine } from "./progress.ts";

function fakeTerminal(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, write: (text: string) => void writes.push(text) }, writes };
}

describe("progress line", () => {
  it("shows done of total, percentage, rate and time left", () => {
    const line = progressLine("writing x.gguf", 512 * 1024 ** 2, 2 * 1024 ** 3, 4);
    expect(line).toBe("writing x.gguf   25.0%  512.0 MB / 2.0 GB  128.0 MB/s  ETA 12s");
  });

  it("omits percentage and ETA when the total is unknown, and ETA when done", () => {
    expect(progressLine("x", 2048, 0, 2)).toBe("x  2.0 KB  1.0 KB/s");
    expect(progressLine("x", 100, 100, 1)).toBe("x  100.0%  100 B / 100 B  100 B/s");
  });

  it("formats sizes and durations for people", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(12.1 * 1024 ** 3)).toBe("12.1 GB");
    expect(formatDuration(5)).toBe("5s");
    expect(formatDuration(185)).toBe("3m05s");
    expect(formatDuration(3720)).toBe("1h02m");
    expect(formatDuration(Infinity)).toBe("?");
  });

  it("redraws in place on a terminal, at most once per interval, and ends the line on finish", () => {
    const { stream, writes } = fakeTerminal(true);
    let clock = 0;
    const progress = createProgress({ label: "w", total: 1000, stream, now: () => clock, intervalMs: 100 });
    expect(progress.visible).toBe(true);
    clock = 1000;
    progress.update(100);
    clock = 1050;
    progress.update(200); // within the interval: not drawn
    clock = 1200;
    progress.update(300, 2000); // the total may arrive late
    progress.finish();
    expect(writes.length).toBe(4);
    expect(writes[0]!.startsWith("\r")).toBe(true);
    expect(writes[1]).toContain("15.0%");
    expect(writes[3]).toBe("\n");
  });

  it("stays silent when stderr is not a terminal or when asked to be quiet", () => {
    for (const [isTTY, quiet] of [[false, false], [true, true]] as const) {
      const { stream, writes } = fakeTerminal(isTTY);
      const progress = createProgress({ label: "w", total: 10, stream, quiet, intervalMs: 0 });
      progress.update(5);
      progress.finish();
      expect(progress.visible).toBe(false);
      expect(writes).toEqual([]);
    }
  });
});
