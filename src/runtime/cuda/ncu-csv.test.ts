// The reader of Nsight Compute's CSV behind scripts/ncu-summary.ts, on a log
// shaped as device-check.sh's ncu steps leave one: the program's own output
// and ncu's messages between the CSV rows, two runs with their ids restarting,
// thousands separators, and units that differ between ncu versions.
import { describe, expect, it } from "bun:test";
import { formatNcuTable, parseNcuLog, reading } from "./ncu-csv.ts";

const header = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value","Rule Name","Rule Type","Rule Description","Estimated Speedup Type","Estimated Speedup"';
const row = (id: number, kernel: string, grid: string, section: string, metric: string, unit: string, value: string) =>
  `"${id}","4242","bun","gpu","${kernel}","1","13","(128, 1, 1)","${grid}","0","9.0","${section}","${metric}","${unit}","${value}","","","","",""`;
const mmv = "void mmv<39, 1, 1>(MatDesc, const signed char *, const float *, const float *, long, RowMap, const float *, long, float *)";
const log = [
  "=== ncu: decode, first 30 launches (limit 75s): bash -c ncu_kernels decode --launch-count 30 -- -p 0 -n 1",
  "==PROF== Connected to process 4242 (/tmp/bun/bun)",
  "psionic bench: loaded /tmp/gpt-oss-20b.gguf on cuda in 9120 ms",
  header,
  row(0, mmv, "(720, 4, 1)", "GPU Speed Of Light Throughput", "Duration", "usecond", "12.80"),
  row(0, mmv, "(720, 4, 1)", "GPU Speed Of Light Throughput", "DRAM Throughput", "%", "61.25"),
  row(0, mmv, "(720, 4, 1)", "GPU Speed Of Light Throughput", "Compute (SM) Throughput", "%", "22.5"),
  row(0, mmv, "(720, 4, 1)", "Command line profiler metrics", "dram__bytes_read.sum", "Mbyte", "25.47"),
  row(0, mmv, "(720, 4, 1)", "Occupancy", "Achieved Occupancy", "%", "40.1"),
  row(0, mmv, "(720, 4, 1)", "Occupancy", "Theoretical Occupancy", "%", "50"),
  row(0, mmv, "(720, 4, 1)", "Launch Statistics", "Registers Per Thread", "register/thread", "48"),
  row(1, "void rms_norm_kernel<true>(const float *, float *, int)", "(1, 1, 1)", "GPU Speed Of Light Throughput", "Duration", "nsecond", "3,456"),
  "| tg1  |   160.00 ± 0.00 |               - |     - |",
  "=== ncu: prefill, first tensor-core launches (limit 75s): bash -c ncu_kernels prefill",
  header,
  row(0, "void mmq_kernel<39, true>(MatDesc, const signed char *, const float *, long, RowMap, const float *, long, float *, Glu)", "(90, 1, 48)",
    "GPU Speed Of Light Throughput", "Duration", "ms", "1.5"),
  '"0","4242","bun","gpu","truncated row"',
  "==PROF== Disconnected from process 4242",
].join("\n");

describe("ncu CSV (scripts/ncu-summary.ts)", () => {
  const launches = parseNcuLog(log);

  it("finds each launch once, named by its run and kernel without parameters, with its grid", () => {
    expect(launches.map((l) => [l.run, l.id, l.kernel, l.grid])).toEqual([
      ["ncu: decode, first 30 launches", 0, "mmv<39, 1, 1>", "(720, 4, 1)"],
      ["ncu: decode, first 30 launches", 1, "rms_norm_kernel<true>", "(1, 1, 1)"],
      ["ncu: prefill, first tensor-core launches", 0, "mmq_kernel<39, true>", "(90, 1, 48)"],
    ]);
  });

  it("reads values through thousands separators and either spelling of a unit", () => {
    expect(reading(launches[0]!, "Duration", "second")).toBeCloseTo(12.8e-6, 12);
    expect(reading(launches[1]!, "Duration", "second")).toBeCloseTo(3.456e-6, 12);
    expect(reading(launches[2]!, "Duration", "second")).toBeCloseTo(1.5e-3, 12);
    expect(reading(launches[0]!, "dram__bytes_read.sum", "byte")).toBe(25.47e6);
    expect(reading(launches[0]!, "Registers Per Thread")).toBe(48);
    expect(reading(launches[1]!, "DRAM Throughput")).toBeNull();
  });

  it("tabulates time, DRAM bytes and rate, throughputs and occupancy; '-' where ncu gave none", () => {
    const table = formatNcuTable(launches).split("\n");
    expect(table).toHaveLength(2 + 3);
    // 25.47 MB in 12.8 us is 1990 GB/s.
    expect(table[2]).toBe("| ncu: decode, first 30 launches | 0 | mmv<39, 1, 1> | (720, 4, 1) | 48 | 12.8 | 0.025 | 1990 | 61.3 | 22.5 | 40.1 / 50.0 | - |");
    expect(table[3]).toBe("| ncu: decode, first 30 launches | 1 | rms_norm_kernel<true> | (1, 1, 1) | - | 3.5 | - | - | - | - | - / - | - |");
  });

  it("a log with no CSV (ncu refused the counters) gives no launches", () => {
    expect(parseNcuLog("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance Counters")).toEqual([]);
  });
});
