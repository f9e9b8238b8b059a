// The reference matrix product: float64 accumulation of float32 values.

/** y = x W^T + b for x (rows x in) and W stored as `out` rows of `in` values. */
export function matmulRows(x: Float32Array, rows: number, w: Float32Array, inWidth: number, outWidth: number, bias: Float32Array | null): Float32Array {
  const y = new Float32Array(rows * outWidth);
  for (let r = 0; r < rows; r++) {
    const xOff = r * inWidth;
    for (let o = 0; o < outWidth; o++) {
      const wOff = o * inWidth;
      let sum = 0;
      for (let i = 0; i < inWidth; i++) sum += x[xOff + i]! * w[wOff + i]!;
      // ggml adds the bias as a separate float32 op after the product.
      y[r * outWidth + o] = bias ? Math.fround(sum) + bias[o]! : sum;
    }
  }
  return y;
}
