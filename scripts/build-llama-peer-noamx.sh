#!/usr/bin/env bash
# Builds llama-bench (the CPU speed peer) from node-llama-cpp's bundled llama.cpp source,
# like ../shared/scripts/build-llama-peer.sh but with ggml's AMX kernels compiled out:
# on the Xeon (AMX) build machines the native build segfaults in ggml_backend_amx_mul_mat
# on every quantized model. Without AMX llama.cpp takes its AVX-512 VNNI path.
#   usage: scripts/build-llama-peer-noamx.sh   -> prints the llama-bench path
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=$root/node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "missing $bundle: npm install first" >&2; exit 1; }
dir=${PEER_DIR:-$HOME/.cache/psionic-peers}/llama.cpp-$(sha256sum "$bundle" | cut -c1-12)-noamx-cpu
if [ ! -x "$dir/build/bin/llama-bench" ] || [ ! -x "$dir/build/bin/llama-server" ]; then
  flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  echo "building llama-bench and llama-server (no AMX) in $dir (several minutes on 2 cores)..." >&2
  # A configured build from an earlier run only needs its missing targets built.
  if [ ! -f "$dir/build/CMakeCache.txt" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    git clone -q "$bundle" "$dir/src" 2>/dev/null
    cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >"$dir/cmake.log" 2>&1 \
      || { echo "cmake failed, see $dir/cmake.log" >&2; exit 1; }
  fi
  cmake --build "$dir/build" -j"$(nproc)" --target llama-bench llama-server >"$dir/build.log" 2>&1 \
    || { echo "build failed, see $dir/build.log" >&2; exit 1; }
fi
echo "$dir/build/bin/llama-bench"  # llama-server beside it
