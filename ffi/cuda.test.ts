import { describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PsionicError } from "../src/util/errors.ts";
import { cudaDevices } from "./cuda.ts";

const built = existsSync(join(import.meta.dir, "../build/libpsionic_cuda.so"));

describe.skipIf(!built)("CUDA device discovery (library built because nvcc exists)", () => {
  it("lists devices, or refuses with a reason when the machine has no usable GPU", () => {
    let devices;
    try {
      devices = cudaDevices();
    } catch (error) {
      expect(error).toBeInstanceOf(PsionicError);
      expect((error as PsionicError).code).toBe("cuda.unavailable");
      expect((error as PsionicError).message).toMatch(/CUDA/);
      return;
    }
    expect(devices.length).toBeGreaterThan(0);
    for (const device of devices) {
      expect(device.name.length).toBeGreaterThan(0);
      expect(device.totalBytes).toBeGreaterThan(0);
      expect(device.computeCapability).toMatch(/^\d+\.\d+$/);
    }
  });
});
