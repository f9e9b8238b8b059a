// Nsight Compute's CSV (`ncu --csv`, the details page: one row per launch,
// section and metric) read back into one summary line per kernel launch, for
// scripts/device-check.sh's ncu steps (scripts/ncu-summary.ts prints them).
// A log holds the profiled program's own output beside ncu's, and several ncu
// runs one after another, each named by the device check's "=== NAME" line;
// everything that is not a CSV row of a header seen before is skipped.

export interface NcuLaunch {
  run: string; // the device check's step name ("" before any)
  id: number; // ncu's launch id within its run
  kernel: string; // "mmv<39, 1, 1>": return type and parameters dropped
  grid: string;
  metrics: Map<string, { unit: string; value: string }>; // by metric name (a section's or a raw one)
}

// Every launch in a log, in order.
export function parseNcuLog(text: string): NcuLaunch[] {
  const launches: NcuLaunch[] = [];
  let run = "", columns: string[] | null = null, current: NcuLaunch | null = null;
  for (const line of text.split("\n")) {
    const step = /^=== (.*?)(?: \(limit \d+s\).*)?$/.exec(line);
    if (step) {
      run = step[1]!;
      columns = null;
      current = null;
      continue;
    }
    if (!line.startsWith('"')) continue;
    const cells = splitCsv(line);
    if (cells[0] === "ID" && cells.includes("Kernel Name")) {
      columns = cells;
      current = null;
      continue;
    }
    if (!columns || cells.length !== columns.length) continue;
    const cell = (name: string) => cells[columns!.indexOf(name)] ?? "";
    const id = Number(cell("ID"));
    if (!Number.isInteger(id)) continue;
    if (!current || current.id !== id) {
      current = { run, id, kernel: shortName(cell("Kernel Name")), grid: cell("Grid Size"), metrics: new Map() };
      launches.push(current);
    }
    const metric = cell("Metric Name");
    if (metric && !current.metrics.has(metric)) current.metrics.set(metric, { unit: cell("Metric Unit"), value: cell("Metric Value") });
  }
  return launches;
}

// One CSV line's cells (quoted, "" for a quote inside).
function splitCsv(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === '"') {
      let cell = "";
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') { cell += '"'; i += 2; }
        else if (line[i] === '"') { i++; break; }
        else cell += line[i++];
      }
      cells.push(cell);
    } else {
      const end = line.indexOf(",", i);
      cells.push(line.slice(i, end < 0 ? line.length : end));
      i = end < 0 ? line.length : end;
    }
    if (line[i] === ",") {
      i++;
      if (i === line.length) cells.push("");
    }
  }
  return cells;
}

// "void mmv<39, 1, 1>(MatDesc, const signed char *, ...)" -> "mmv<39, 1, 1>".
function shortName(name: string): string {
  let depth = 0;
  for (let i = 0; i < name.length; i++) {
    if (name[i] === "<") depth++;
    else if (name[i] === ">") depth--;
    else if (name[i] === "(" && depth === 0) { name = name.slice(0, i); break; }
  }
  return name.replace(/^void /, "").trim();
}

// A reading as a number, in seconds or bytes where `base` asks: ncu writes "1,234.5"
// and scales units per reading (nsecond/usecond/msecond, or ns/us/ms; byte/Kbyte/...).
// Metrics go by the names the device check's sections give them ("Duration"), or
// by their raw name where it asks for one (--metrics dram__bytes_read.sum).
const SCALE: Record<string, number> = {
  ns: 1e-9, nsecond: 1e-9, us: 1e-6, usecond: 1e-6, ms: 1e-3, msecond: 1e-3, s: 1, second: 1,
  byte: 1, B: 1, Kbyte: 1e3, KB: 1e3, Mbyte: 1e6, MB: 1e6, Gbyte: 1e9, GB: 1e9, Tbyte: 1e12, TB: 1e12,
  KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3,
};
export function reading(launch: NcuLaunch, name: string, base?: "second" | "byte"): number | null {
  const m = launch.metrics.get(name);
  if (!m) return null;
  const v = Number(m.value.replace(/,/g, ""));
  if (!Number.isFinite(v)) return null;
  if (!base) return v;
  const scale = SCALE[m.unit];
  return scale === undefined ? null : v * scale;
}

// The summary table: per launch its time, DRAM traffic and the throughputs and
// occupancy ncu reports against the card's peaks.
export function formatNcuTable(launches: NcuLaunch[]): string {
  const fixed = (v: number | null, digits = 0) => (v === null ? "-" : v.toFixed(digits));
  const lines = [
    "| run | id | kernel | grid | regs | us | DRAM GB read | DRAM GB/s | DRAM % | SM % | occupancy % (achieved / theoretical) | cycles per issue |",
    "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const l of launches) {
    const seconds = reading(l, "Duration", "second");
    const read = reading(l, "dram__bytes_read.sum", "byte");
    const achieved = reading(l, "Achieved Occupancy");
    const theoretical = reading(l, "Theoretical Occupancy");
    lines.push(`| ${l.run} | ${l.id} | ${l.kernel} | ${l.grid} | ${fixed(reading(l, "Registers Per Thread"))} | ` +
      `${fixed(seconds === null ? null : seconds * 1e6, 1)} | ${fixed(read === null ? null : read / 1e9, 3)} | ` +
      `${fixed(read === null || !seconds ? null : read / seconds / 1e9)} | ` +
      `${fixed(reading(l, "DRAM Throughput"), 1)} | ` +
      `${fixed(reading(l, "Compute (SM) Throughput"), 1)} | ` +
      `${fixed(achieved, 1)} / ${fixed(theoretical, 1)} | ${fixed(reading(l, "Warp Cycles Per Issued Instruction"), 1)} |`);
  }
  return lines.join("\n");
}
