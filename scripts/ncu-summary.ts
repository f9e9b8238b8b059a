// Nsight Compute's readings from scripts/device-check.sh's ncu steps as one
// table row per kernel launch (src/runtime/cuda/ncu-csv.ts reads the log).
//   bun scripts/ncu-summary.ts OUT/ncu.log
import { formatNcuTable, parseNcuLog } from "../src/runtime/cuda/ncu-csv.ts";

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error("usage: bun scripts/ncu-summary.ts NCU_LOG (the ncu.log device-check.sh writes)");
  process.exit(2);
}
const launches = parseNcuLog(await Bun.file(file).text());
if (launches.length === 0) {
  console.log(`no ncu readings in ${file} (see its end for ncu's message)`);
} else {
  console.log(formatNcuTable(launches));
}
