// How the CUDA kernels use memory, measured without a GPU: runs a psionic
// command on the emulator's access-trace build (kernels/cuda/emulate_trace.cpp)
// and prints, per kernel and per load/store instruction, how much of each
// 32-byte sector a warp request fetches it uses (coalescing), the distinct
// bytes each launch reads (what DRAM must supply at least), and shared-memory
// bank conflicts. Counts and ratios, not times. First, any races: two threads of
// a block touching the same bytes, one writing, with no barrier between them, or
// two blocks of a launch writing the same global bytes (emulate_trace.cpp
// checkRaces); it exits with status 1 when it finds one.
//
//   npx bun scripts/cuda-access-report.ts [--top 15] [--trace FILE] -- bench --backend cuda -m model.gguf -p 0 -n 2 -r 1
//
// --trace FILE reads a trace written earlier instead of running a command.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RACE_BETWEEN, readAccessTrace, sectorUse, type SiteTotals } from "../src/runtime/cuda/access-trace.ts";

const root = join(import.meta.dir, "..");
const args = process.argv.slice(2);
const split = args.indexOf("--");
const own = split < 0 ? args : args.slice(0, split);
const command = split < 0 ? [] : args.slice(split + 1);
let top = 15, tracePath: string | undefined;
for (let i = 0; i < own.length; i++) {
  if (own[i] === "--top") top = Number(own[++i]);
  else if (own[i] === "--trace") tracePath = own[++i];
  else usage(`unknown flag ${own[i]}`);
}
if (!(top > 0)) usage("--top needs a positive number");
if (!tracePath && command.length === 0) usage("give a psionic command after --, or --trace FILE");

if (!tracePath) {
  const build = Bun.spawnSync([process.execPath, join(root, "build.ts"), "--cuda-trace", "--quiet"], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) process.exit(1);
  tracePath = join(mkdtempSync(join(tmpdir(), "psionic-trace-")), "trace.tsv");
  console.error(`running psionic ${command.join(" ")} on the access-trace build ...`);
  const run = Bun.spawnSync([process.execPath, join(root, "src/cli/main.ts"), ...command], {
    stdout: "inherit", stderr: "inherit",
    env: { ...process.env, PSIONIC_CUDA_LIB: join(root, "build/libpsionic_cuda_emu_trace.so"), PSIONIC_CUDA_TRACE: tracePath },
  });
  if (run.exitCode !== 0) process.exit(run.exitCode ?? 1);
}

const trace = readAccessTrace(tracePath);
const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const sum = (rows: SiteTotals[], f: (s: SiteTotals) => number) => rows.reduce((a, s) => a + f(s), 0);

console.log(`\naccess trace: ${tracePath}\n`);
if (trace.races.length === 0) {
  console.log("races: none\n");
} else {
  console.log(`races: ${trace.races.length} (a write and another thread's access of the same bytes, no barrier between)\n`);
  console.log("| kernel | write | other access | space | between | thread pairs | blocks | e.g. threads |");
  console.log("|---|---|---|---|---|---:|---:|---|");
  for (const r of trace.races) {
    console.log(`| ${r.kernel} | ${r.first} | ${r.second} (${r.op}) | ${r.space} | ${RACE_BETWEEN[r.between]} | ${r.pairs} | ${r.blocks} | ${r.threads.join(", ")} |`);
  }
  console.log();
}
console.log("| kernel | launches | blocks/launch | global load requests | MB asked | MB fetched | sector use | distinct MB read | stores: sector use | shared: wavefronts / fewest |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
const byKernel = trace.kernels.map((k) => {
  const sites = trace.sites.filter((s) => s.kernel === k.kernel);
  const loads = sites.filter((s) => s.space === "global" && s.op === "load");
  const stores = sites.filter((s) => s.space === "global" && s.op === "store");
  const shared = sites.filter((s) => s.space === "shared");
  return { k, loads, stores, shared, fetched: sum(loads, (s) => s.units * 32) };
}).sort((a, b) => b.fetched - a.fetched);
for (const { k, loads, stores, shared, fetched } of byKernel) {
  const asked = sum(loads, (s) => s.bytes);
  const storeUse = sectorUse({ bytes: sum(stores, (s) => s.bytes), units: sum(stores, (s) => s.units) });
  const wave = sum(shared, (s) => s.units), fewest = sum(shared, (s) => s.ideal);
  console.log(`| ${k.kernel} | ${k.launches} | ${(k.blocks / k.launches).toFixed(0)} | ${sum(loads, (s) => s.requests)} | ${mb(asked)} | ${mb(fetched)} | ${pct(sectorUse({ bytes: asked, units: fetched / 32 }))} | ${mb(k.readSectors * 32)} | ${stores.length ? pct(storeUse) : "-"} | ${shared.length ? `${(wave / fewest).toFixed(2)}x` : "-"} |`);
}

const globalSites = trace.sites.filter((s) => s.space === "global").map((s) => ({ s, waste: (s.units * 32 - s.bytes) }));
console.log(`\nglobal instructions fetching the most unused sector bytes (top ${top}):\n`);
console.log("| line | kernel | op | requests | lanes/request | bytes/request | sectors/request | sector use | unused MB |");
console.log("|---|---|---|---:|---:|---:|---:|---:|---:|");
for (const { s, waste } of globalSites.sort((a, b) => b.waste - a.waste).slice(0, top)) {
  console.log(`| ${s.line} | ${s.kernel} | ${s.op} | ${s.requests} | ${(s.lanes / s.requests).toFixed(1)} | ${(s.bytes / s.requests).toFixed(1)} | ${(s.units / s.requests).toFixed(2)} | ${pct(sectorUse(s))} | ${mb(waste)} |`);
}

const sharedSites = trace.sites.filter((s) => s.space === "shared" && s.units > s.ideal).sort((a, b) => (b.units - b.ideal) - (a.units - a.ideal));
console.log(`\nshared-memory instructions with the most extra wavefronts (bank conflicts; top ${top}):\n`);
console.log("| line | kernel | op | requests | wavefronts/request | fewest/request |");
console.log("|---|---|---|---:|---:|---:|");
for (const s of sharedSites.slice(0, top)) {
  console.log(`| ${s.line} | ${s.kernel} | ${s.op} | ${s.requests} | ${(s.units / s.requests).toFixed(2)} | ${(s.ideal / s.requests).toFixed(2)} |`);
}
if (trace.races.length > 0) process.exit(1);

function usage(problem: string): never {
  console.error(`${problem}\nusage: bun scripts/cuda-access-report.ts [--top 15] [--trace FILE] -- <psionic command>`);
  process.exit(2);
}
