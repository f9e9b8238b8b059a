// The whole project type-checks (tsconfig.json: strict, noUncheckedIndexedAccess).
// Bun runs TypeScript without checking it, so this is where type errors surface.
import { expect, it } from "bun:test";
import { join } from "node:path";

it("type-checks with tsc --noEmit", () => {
  const root = join(import.meta.dir, "..");
  const tsc = Bun.spawnSync([process.execPath, join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", root], { cwd: root });
  const report = tsc.stdout.toString() + tsc.stderr.toString();
  expect(report).toBe("");
  expect(tsc.exitCode).toBe(0);
}, 180_000);
