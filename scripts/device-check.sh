#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap and `bash -c` (export -f) look unreachable
# One-call check of the CUDA backend (issue #6) on the GPU machine, from the repo root, with the
# files scripts/device-pack.sh put in .device/ (carried: the machine has no Bun, npm or network):
#   1. unpack Bun (/tmp/bun/bun), node_modules (./node_modules) and llama.cpp's source (/tmp/llama)
#   2. background: build llama-bench and llama-batched-bench with CUDA (sm_90)
#   3. bun build.ts --kernels-only (libpsionic_cpu.so with cc, libpsionic_cuda.so with nvcc), then,
#      in the background, synthesize gpt-oss-20b (MXFP4 experts) into /tmp/gpt-oss-20b.gguf
#   4. the CUDA tests: every *.cuda-check.ts (bun test skips them elsewhere) and ffi/cuda.test.ts
#   5. the card's device-to-device copy bandwidth (scripts/cuda-copy-bandwidth.cu)
#   6. benchmarks, psionic (--backend cuda) beside llama.cpp on the same file: prefill/decode
#      (bench, llama-bench), aggregate decode at 1/8/32 sequences (scripts/bench-engine.ts,
#      llama-batched-bench), time to first token on a prompt-cache hit (scripts/bench-serve.ts);
#      then the A/Bs: decode as one graph a step and without graphs, prefill without mmq, the
#      per-op profile, pp in one forward pass (-ub 2048) on both sides, one output a warp, and the
#      ops checks and the benchmark again with programmatic dependent launch (PSIONIC_CUDA_PDL=1)
#   7. where time is left: Nsight Compute's counters (ncu) for the kernels of a decode token and of
#      a prompt's first layers; compute-sanitizer's racecheck and synccheck on the ops checks; 32
#      sampled streams with each row's top-k read back and with the whole rows (PSIONIC_CUDA_TOPK=0)
# A failing step does not stop the later ones; each is time-limited so the whole run ends inside
# DEVICE_CHECK_SECONDS (default 500). Logs land in $OUT (8 files); the summary table prints last.
#   usage: OUT=DIR scripts/device-check.sh [--quick | --no-peers]
#     --quick     no llama.cpp build, no 20b model, no peers: build, CUDA tests, copy bandwidth and a
#                 psionic bench on a synthesized gpt-oss-1b
#     --no-peers  every psionic step on the 20b model, no llama.cpp build (about 330 s of the run)
#                 and no peer runs: for tuning between full runs, whose side-by-side table is the
#                 issue's record
#   DEVICE_CHECK_SECONDS=500  the whole run's time (with peers, the benchmarks wait for the llama.cpp
#     build, ~330 s on 15 jobs: give a full run all of one call, 570 of timeout_s 600, so the bars'
#     runs, both sides first, still get time); DEVICE_CHECK_PRESET=NAME  another gpt-oss preset;
#   DEVICE_CHECK_BACKEND=cuda  psionic's backend in the benchmarks
set -uo pipefail # no -e: every step runs, and the summary says which failed
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
: "${OUT:?set OUT to the folder for the logs}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
quick=0 peers=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 peers=0 ;;
    --no-peers) peers=0 ;;
    *) echo "usage: OUT=DIR scripts/device-check.sh [--quick | --no-peers]" >&2; exit 2 ;;
  esac
done
mode=full
[ "$peers" = 0 ] && mode="full, no peers"
[ "$quick" = 1 ] && mode=quick
deadline=$((SECONDS + ${DEVICE_CHECK_SECONDS:-500}))
work=/tmp/device-check # status files and scratch; $OUT holds only what comes back
rm -rf "$work" && mkdir -p "$work"
export PATH=/tmp/bun:/usr/local/cuda/bin:$PATH
for d in /opt/nvidia/nsight-compute/*/; do [ -x "$d/ncu" ] && PATH=$PATH:${d%/}; done # where the toolkit's bin lacks ncu
export dev=$root/.device peers jobs=15 llama_src=/tmp/llama llama_build=/tmp/llama/build
preset=gpt-oss-20b
[ "$quick" = 1 ] && preset=gpt-oss-1b
preset=${DEVICE_CHECK_PRESET:-$preset}
backend=${DEVICE_CHECK_BACKEND:-cuda} # cpu: a dry run of the benchmark steps on a machine without a GPU
model=/tmp/$preset.gguf
# Logs (the device tool returns at most 8 files from $OUT).
build_log=$OUT/build.log          # unpack, GPU, bun build.ts
tests_log=$OUT/cuda-tests.log     # bun test on the CUDA checks
llama_log=$OUT/llama-build.log    # cmake configure + build of the llama.cpp peers
synth_log=$OUT/synth.log          # psionic gguf synth
bench_log=$OUT/bench.log          # copy bandwidth and every benchmark
bench_json=$OUT/psionic-bench.json
ncu_log=$OUT/ncu.log              # Nsight Compute's counters, CSV per run
summary=$OUT/summary.txt

rows=() # "step|status|seconds|note"
row() { rows+=("$1|$2|$3|$4"); echo "[$(date +%T)] $1: $2 (${3}s) $4"; }
left() { echo $((deadline - SECONDS)); }
# limit CAP: the step's time limit, CAP or what is left before the deadline less RESERVE seconds.
limit() {
  local cap=$1 reserve=${2:-0} l
  l=$(($(left) - reserve))
  [ "$l" -lt "$cap" ] && cap=$l
  echo "$cap"
}
# step NAME LOG CAP CMD...: runs CMD under timeout, appending to LOG; records the outcome.
step() {
  local name=$1 log=$2 cap=$3 l start rc status
  shift 3
  l=$(limit "$cap")
  if [ "$l" -lt 10 ]; then row "$name" skipped 0 "no time left"; return 1; fi
  printf '\n=== %s (limit %ss): %s\n' "$name" "$l" "$*" >>"$log"
  start=$SECONDS
  timeout -k 5 "$l" "$@" >>"$log" 2>&1
  rc=$?
  status=ok
  [ "$rc" -ne 0 ] && status="FAILED rc=$rc"
  [ "$rc" -eq 124 ] && status="TIMED OUT after ${l}s"
  [ "$rc" -eq 137 ] && status="KILLED (time or memory)"
  row "$name" "$status" $((SECONDS - start)) "$(basename "$log")"
  return "$rc"
}
# A background step: like step, its status lands in $work/NAME.rc when it ends.
bg_step() {
  local name=$1 log=$2 cap=$3
  shift 3
  printf '\n=== %s (limit %ss): %s\n' "$name" "$cap" "$*" >>"$log"
  (
    start=$SECONDS
    timeout -k 5 "$cap" "$@" >>"$log" 2>&1 &
    echo $! >"$work/$name.pid" # timeout's own: a TERM to it ends the command too
    wait $!
    echo "$? $((SECONDS - start))" >"$work/$name.rc"
  ) &
}
# wait_bg NAME: waits (until the deadline) for a background step and records it; 0 when it succeeded.
wait_bg() {
  local name=$1 log=$2 pid rc secs note
  if [ ! -f "$work/$name.rc" ]; then
    pid=$(cat "$work/$name.pid" 2>/dev/null) || { row "$name" "not started" 0 ""; return 1; }
    while [ ! -f "$work/$name.rc" ] && kill -0 "$pid" 2>/dev/null && [ "$(left)" -gt 5 ]; do sleep 2; done
    [ -f "$work/$name.rc" ] || sleep 1
    [ -f "$work/$name.rc" ] || { row "$name" "still running at the deadline" 0 "$(basename "$log")"; return 1; }
  fi
  read -r rc secs note <"$work/$name.rc"
  if [ "$rc" = 0 ]; then row "$name" ok "$secs" "$(basename "$log")${note:+; $note}"; return 0; fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then row "$name" "TIMED OUT" "$secs" "$(basename "$log")"; else row "$name" "FAILED rc=$rc" "$secs" "$(basename "$log")"; fi
  return 1
}
cleanup() { # background steps still running (their own timeouts end them anyway)
  local f
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  return 0
}
trap cleanup EXIT
# unpack ARCHIVE DIR: zstd where installed, else cmake's bundled libarchive, else pyarrow's zstd.
unpack() {
  mkdir -p "$2"
  if command -v zstd >/dev/null; then
    zstd -dc "$1" | tar -C "$2" -xf -
  elif (cd "$2" && cmake -E tar xf "$1"); then
    echo "unpacked $1 with cmake -E tar (no zstd program)"
  else
    echo "cmake -E tar failed on $1; trying python3 with pyarrow"
    python3 -c 'import pyarrow as pa, shutil, sys; shutil.copyfileobj(pa.CompressedInputStream(pa.OSFile(sys.argv[1]), "zstd"), sys.stdout.buffer, 1 << 20)' "$1" |
      tar -C "$2" -xf -
  fi
}

echo "device-check: $(date -u +%FT%TZ), $mode, $(left)s budget, logs in $OUT"

# --- 1. unpack ---------------------------------------------------------------------------------
setup() {
  set -e
  for f in bun.tar.zst node_modules.tar.zst llama-src.tar.zst; do
    [ -f "$dev/$f" ] || { echo "missing .device/$f: run scripts/device-pack.sh here and carry .device"; exit 1; }
  done
  unpack "$dev/bun.tar.zst" /tmp/bun
  mv -f /tmp/bun/bun.exe /tmp/bun/bun && chmod +x /tmp/bun/bun
  echo "bun $(bun --version) at $(command -v bun)"
  if [ -f node_modules/elysia/package.json ]; then
    echo "node_modules present: not unpacking (a local run)"
  else
    unpack "$dev/node_modules.tar.zst" node_modules
    echo "node_modules: unpacked $(find node_modules -maxdepth 3 -name package.json | wc -l) packages"
  fi
  if [ "$peers" = 1 ]; then
    local digest
    digest=$(sha256sum <"$dev/llama-src.tar.zst")
    if [ "$(cat "$llama_src/.archive" 2>/dev/null)" = "$digest" ]; then
      echo "llama.cpp source: unpacked by an earlier run on this machine, build kept"
    else
      rm -rf "$llama_src"
      unpack "$dev/llama-src.tar.zst" /tmp
      echo "$digest" >"$llama_src/.archive"
    fi
    cat "$llama_src/PSIONIC-SUBSET.txt"
  fi
  set +e # what follows only describes the machine
  echo "--- machine: $(nproc) cores"
  free -g | head -2; df -h /tmp | tail -1
  for tool in nvcc cmake ninja zstd ncu compute-sanitizer; do echo "$tool: $(command -v "$tool" || echo missing)"; done
  nvcc --version | tail -1; cmake --version | head -1
  # llama.cpp's CUDA build needs cuBLAS (headers and library) where CMake's FindCUDAToolkit looks.
  for f in /usr/local/cuda/include/cublas_v2.h /usr/local/cuda/lib64/libcublas.so; do
    if [ -e "$f" ]; then echo "cuBLAS: $f"; else echo "cuBLAS: no $f"; fi
  done
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || echo "nvidia-smi: not found"
  return 0
}
export -f unpack setup
step setup "$build_log" 60 bash -c setup
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "GPU: ${gpu:-none found (nvidia-smi)}"

# --- 2. background: the llama.cpp peers ------------------------------------------------------
if [ "$peers" = 1 ]; then
  llama_build() {
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$llama_src" -B "$llama_build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF &&
      cmake --build "$llama_build" --target llama-bench llama-batched-bench -j "$jobs"
  }
  # Leave about 75 s after it for the benchmarks (the build needs ~330 s on 15 jobs).
  export -f llama_build
  bg_step llama-build "$llama_log" "$(limit 400 75)" bash -c llama_build
fi

# --- 3. kernels, then the benchmark model in the background ----------------------------------
step "bun build.ts --kernels-only" "$build_log" 240 bun build.ts --kernels-only
ls -la build/*.so >>"$build_log" 2>&1

# The benchmark model, in the background (synth quantizes with the CPU kernels just built).
# synth writes atomically: a file there is whole (a warm machine keeps /tmp between calls).
if [ -s "$model" ]; then
  echo "$model: kept from an earlier run" >>"$synth_log"
  echo "0 0 kept from an earlier run" >"$work/synth.rc"
else
  bg_step synth "$synth_log" "$(limit 300 120)" bun src/cli/main.ts gguf synth --arch gpt-oss --preset "$preset" --type MXFP4 --text-output --quiet -o "$model"
fi

# --- 4. CUDA tests -----------------------------------------------------------------------------
mapfile -t checks < <(find src ffi -name '*.cuda-check.ts' 2>/dev/null | sort)
tests=()
for f in "${checks[@]}" ffi/cuda.test.ts; do [ -f "$f" ] && tests+=("./$f"); done
echo "CUDA tests: ${#checks[@]} *.cuda-check.ts file(s)${checks[*]:+: ${checks[*]}}" | tee -a "$tests_log"
if [ "${#tests[@]}" -eq 0 ]; then # bun test without files would run the whole suite
  row "CUDA tests" skipped 0 "no test files found"
else
  start=$SECONDS
  timeout -k 5 "$(limit 240 150)" bun test --timeout 600000 "${tests[@]}" 2>&1 | tee -a "$tests_log"
  rc=${PIPESTATUS[0]}
  counts=$(grep -E '^ *[0-9]+ (pass|fail|skip|todo)$' "$tests_log" | awk '{ printf "%s %s, ", $1, $2 }')
  status=ok
  [ "$rc" -ne 0 ] && status="FAILED rc=$rc"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && status="TIMED OUT"
  [ "${#checks[@]}" -eq 0 ] && counts="no *.cuda-check.ts yet; $counts"
  row "CUDA tests" "$status" $((SECONDS - start)) "${counts%, }"
fi

# --- 5. copy bandwidth -------------------------------------------------------------------------
copy_bw() {
  nvcc -O2 -o /tmp/device-check/cuda-copy-bandwidth scripts/cuda-copy-bandwidth.cu && /tmp/device-check/cuda-copy-bandwidth
}
export -f copy_bw
step "copy bandwidth" "$bench_log" 60 bash -c copy_bw
bandwidth=$(grep -o 'copy bandwidth: .*' "$bench_log" | tail -1)

# --- 6. benchmarks -----------------------------------------------------------------------------
model_ok=0
wait_bg synth "$synth_log" && model_ok=1
llama_ok=0
if [ "$peers" = 1 ]; then
  wait_bg llama-build "$llama_log" && llama_ok=1
  [ "$llama_ok" = 0 ] && echo "llama.cpp build failed or unfinished (see llama-build.log): psionic's benchmarks run alone" | tee -a "$bench_log"
fi
pp=2048 tg=256
[ "$quick" = 1 ] && pp=512 tg=128
# ncu_kernels NCU-ARGS... -- BENCH-ARGS...: one psionic bench run (graphs off: each launch profiled
# alone) under Nsight Compute, its CSV beside the program's output in the step's log.
ncu_kernels() {
  local filter=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do filter+=("$1"); shift; done
  shift
  ncu --clock-control none --target-processes all --csv --section SpeedOfLight --section Occupancy \
    --section LaunchStats --section WarpStateStats --metrics dram__bytes_read.sum \
    "${filter[@]}" env PSIONIC_CUDA_GRAPHS=0 bun src/cli/main.ts bench -m "$model" --backend cuda -r 1 "$@"
}
export -f ncu_kernels
export model
render_bench() { # the psionic bench table from its JSON
  bun -e "const { formatReport } = await import('$root/src/cli/bench.ts'); console.log(formatReport(JSON.parse(await Bun.file('$bench_json').text())));"
}
if [ "$model_ok" = 1 ]; then
  # --json: the report to psionic-bench.json; the table is rendered from it into bench.log.
  if step "psionic bench ($backend) pp$pp tg$tg" "$bench_log" 150 bash -c "bun src/cli/main.ts bench -m '$model' --backend $backend -p $pp -n $tg -r 3 --json >'$bench_json'"; then
    render_bench >>"$bench_log" 2>&1
  fi
  if [ "$llama_ok" = 1 ]; then
    step "llama-bench pp512,2048 tg256" "$bench_log" 90 "$llama_build/bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p 512,2048 -n 256 -r 3
  fi
  if [ "$quick" = 0 ]; then
    step "psionic engine ($backend) 1,8,32 seqs" "$bench_log" 120 bun scripts/bench-engine.ts -m "$model" --backend "$backend" \
      --counts 1,8,32 --parallel 32 -n 128 -c 512 --rounds 1 -t 8
  fi
  if [ "$llama_ok" = 1 ]; then
    step "llama-batched-bench npl 1,8,32" "$bench_log" 90 "$llama_build/bin/llama-batched-bench" -m "$model" -ngl 99 -fa on \
      -c 16384 -b 2048 -ub 512 -npp 128 -ntg 128 -npl 1,8,32
  fi
  if [ "$quick" = 0 ]; then
    # --psionic-only: cold, warm and prompt-cache-hit requests (~1k-token prompt), then 1-16 streams.
    if ! step "psionic serve ($backend) cache-hit TTFT" "$bench_log" 120 bun scripts/bench-serve.ts -m "$model" --psionic-only \
      --backend "$backend" -t 8 -n 32; then
      { echo "--- last lines of psionic serve's log"; tail -20 /tmp/bench-serve-psionic.log; } >>"$bench_log" 2>&1
    fi
  fi
  # The A/Bs, after the bars' measurements (each side's pp/tg, aggregate decode, TTFT) so those get
  # the time first. Where psionic's device time goes, op by op (PSIONIC_CUDA_PROFILE:
  # src/runtime/cuda/cuda-profile.ts), and decode without CUDA graphs (each op launched on its own).
  if [ "$backend" = cuda ]; then
    # Each decode step recorded whole and run as one graph when its result is read, instead of a few
    # graphs, the first launched after 8 recorded launches (kernels/cuda/graph.cu): the host's
    # recording time on the token's critical path, or off it.
    step "psionic bench (cuda, one graph a step) tg$tg" "$bench_log" 60 env PSIONIC_CUDA_GRAPH_FIRST_NODES=1048576 bun src/cli/main.ts bench -m "$model" --backend cuda -p 0 -n "$tg" -r 3
    step "psionic bench (cuda, graphs off) tg128" "$bench_log" 60 env PSIONIC_CUDA_GRAPHS=0 bun src/cli/main.ts bench -m "$model" --backend cuda -p 0 -n 128 -r 2
    # Prefill with every product on the matrix-vector int8 kernels (no tensor-core mmq.cuh, no cuBLAS).
    step "psionic bench (cuda, no mmq) pp512" "$bench_log" 60 env PSIONIC_CUDA_MOE_DEVICE_TOKENS=512 PSIONIC_CUDA_GEMM_MIN_ROWS=513 bun src/cli/main.ts bench -m "$model" --backend cuda -p 512 -n 0 -r 2
    step "psionic cuda profile pp512 tg64" "$bench_log" 60 env PSIONIC_CUDA_PROFILE=1 bun src/cli/main.ts bench -m "$model" --backend cuda -p 512 -n 64 -r 1
  fi
  # Prompts in one forward pass of 2048 tokens instead of four of 512 (-ub, llama-bench's n_ubatch), both sides.
  step "psionic bench ($backend) pp$pp ub$pp" "$bench_log" 60 bun src/cli/main.ts bench -m "$model" --backend "$backend" -p "$pp" -n 0 -ub "$pp" -r 2
  if [ "$llama_ok" = 1 ]; then
    step "llama-bench pp$pp ub$pp" "$bench_log" 60 "$llama_build/bin/llama-bench" -m "$model" -ngl 99 -fa 1 -p "$pp" -n 0 -ub "$pp" -b "$pp" -r 2
  fi
  # Batched decode with one output per matrix-vector warp (PSIONIC_CUDA_MMV_WARP_ROWS=1; the default
  # takes two from 4 rows, kernels/cuda/matmul_types.cuh with_warp_rows), for the A/B against the engine step above.
  if [ "$quick" = 0 ] && [ "$backend" = cuda ]; then
    step "psionic engine (cuda, one output a warp) 8,32 seqs" "$bench_log" 75 env PSIONIC_CUDA_MMV_WARP_ROWS=1 bun scripts/bench-engine.ts \
      -m "$model" --backend cuda --counts 8,32 --parallel 32 -n 128 -c 512 --rounds 1 -t 8
  fi
  # Programmatic dependent launch (PSIONIC_CUDA_PDL=1, kernels/cuda/common.cuh; off by default
  # until measured): the ops checks under it, then the main benchmark's tests again.
  if [ "$backend" = cuda ]; then
    step "CUDA ops checks with PDL" "$tests_log" 90 env PSIONIC_CUDA_PDL=1 bun test --timeout 600000 ./src/runtime/cuda/cuda-ops.cuda-check.ts
    step "psionic bench (cuda, PDL) pp$pp tg$tg" "$bench_log" 90 env PSIONIC_CUDA_PDL=1 bun src/cli/main.ts bench -m "$model" --backend cuda -p "$pp" -n "$tg" -r 3
  fi
  # Nsight Compute's counters per kernel (scripts/ncu-summary.ts prints them in the summary): a decode
  # token's first launches (graphs off, so each launch is profiled alone: the embedding, two layers and
  # the start of a third), its output head, and a 512-token prompt's first tensor-core and flash launches.
  # --clock-control none leaves the clocks as found; where the runtime denies the counters the steps fail.
  if [ "$backend" = cuda ] && command -v ncu >/dev/null; then
    # The head is its type's matrix-vector kernel after one launch per layer's output projection of that type.
    read -r head_skip head_type < <(bun src/cli/main.ts gguf inspect "$model" --json | bun -e '
      const { GGMLType } = await import("./src/gguf/types.ts");
      const g = JSON.parse(await Bun.stdin.text()), type = (t) => GGMLType[t.type.toUpperCase()];
      const head = type(g.tensors.find((t) => t.name === "output.weight") ?? g.tensors.find((t) => t.name === "token_embd.weight"));
      console.log(g.tensors.filter((t) => /^blk\.\d+\.attn_output\.weight$/.test(t.name) && type(t) === head).length, head);')
    # The weights' load-time kernels (repack_*) are left out by name.
    step "ncu: decode, first 30 launches" "$ncu_log" 75 bash -c "ncu_kernels --kernel-name \
      'regex:^(add|argmax|attend|flash|gather|get_rows|group|merge|mmq|mmv|quantize|rms|rope|route|scatter|store|swiglu|topk|weighted)' \
      --launch-count 30 -- -p 0 -n 1"
    step "ncu: decode, output head" "$ncu_log" 45 bash -c "ncu_kernels --kernel-name-base demangled \
      --kernel-name 'regex:mmv<$head_type, 1, 1>\\(' --launch-skip $head_skip --launch-count 1 -- -p 0 -n 1"
    step "ncu: prefill, first tensor-core launches" "$ncu_log" 75 bash -c "ncu_kernels \
      --kernel-name 'regex:^(mmq_kernel|flash_attend)' --launch-count 10 -- -p 512 -n 0"
  fi
else
  row benchmarks skipped 0 "no model (see synth.log)"
fi
# The CUDA toolkit's compute-sanitizer on the ops checks, where time is left: racecheck (shared-memory
# hazards) and synccheck (barriers; warp-synchronous calls naming exited lanes), the GPU's own word on
# what the emulator's race check (emulate_trace.cpp) and warp-mask check (emulate.cpp) look for.
if [ "$backend" = cuda ] && command -v compute-sanitizer >/dev/null; then
  for tool in racecheck synccheck; do
    step "compute-sanitizer $tool (ops checks)" "$tests_log" 90 env PSIONIC_CUDA_CHECK_SUBSET=ci compute-sanitizer --tool "$tool" \
      --error-exitcode 9 bun test --timeout 600000 ./src/runtime/cuda/cuda-ops.cuda-check.ts
  done
fi
# Sampled streams (temperature 0.8, top-k 40): each row's 40 best read back (topKRows, kernels/cuda/topk.cu)
# against the whole rows read back and sampled on the host (PSIONIC_CUDA_TOPK=0). Last: not a bar of the issue.
if [ "$model_ok" = 1 ] && [ "$quick" = 0 ] && [ "$backend" = cuda ]; then
  for topk in 1 0; do
    step "psionic engine (cuda, sampled, PSIONIC_CUDA_TOPK=$topk) 32 seqs" "$bench_log" 60 env PSIONIC_CUDA_TOPK=$topk bun scripts/bench-engine.ts \
      -m "$model" --backend cuda --counts 32 --parallel 32 -n 128 -c 512 --rounds 1 -t 8 --sample 40
  done
fi

# --- summary -----------------------------------------------------------------------------------
{
  echo
  echo "device-check summary ($mode, ${gpu:-no GPU found}, $((SECONDS))s)"
  printf '| %-36s | %-30s | %5s | %s\n' step status secs note
  printf '|%s|%s|%s|%s\n' "$(printf -- '-%.0s' {1..38})" "$(printf -- '-%.0s' {1..32})" "-------" "------"
  for r in "${rows[@]}"; do
    IFS='|' read -r name status secs note <<<"$r"
    printf '| %-36s | %-30s | %5s | %s\n' "$name" "$status" "$secs" "$note"
  done
  echo
  echo "results (details in bench.log, psionic-bench.json):"
  [ -n "$bandwidth" ] && echo "  card: $bandwidth"
  if [ -s "$bench_json" ]; then
    python3 - "$bench_json" "$bandwidth" <<'EOF' || true
import json, re, sys
r = json.load(open(sys.argv[1]))
for t in r.get("psionic", []):
    s = t["tokensPerSecond"]
    print(f"  psionic {r['backend']} {t['test']}: {s['mean']:.1f} ± {s['stddev']:.1f} tok/s")
d = r.get("decode")
if d:
    card = re.search(r"([0-9.]+) GB/s", sys.argv[2])
    share = f", {d['achievedBytesPerSecond'] / 1e9 / float(card.group(1)):.0%} of the card's copy bandwidth" if card else ""
    print(f"  psionic decode weight reads: {d['bytesPerToken'] / 2**20:.0f} MiB/token = {d['achievedBytesPerSecond'] / 1e9:.1f} GB/s{share}")
EOF
  fi
  # llama-bench's markdown rows: | model | size | params | backend | ngl | [n_ubatch |] fa | test | t/s |
  # (each step's output follows its "=== NAME" header in the log, which names the -ub runs)
  # psionic's rows: | pp2048 | mean ± stddev | ... under each psionic bench step (one graph, graphs off, no mmq, -ub, PDL).
  awk -F'|' '/^=== / { name = $0; sub(/^=== /, "", name); sub(/ \(limit .*/, "", name); ub = (name ~ / ub[0-9]+$/) ? " (one pass, -ub)" : "" }
    /^\| .*\| +(pp|tg)[0-9]+ +\|/ { t = $(NF-2); v = $(NF-1); gsub(/^ +| +$/, "", t); gsub(/^ +| +$/, "", v); printf "  llama.cpp %s%s: %s tok/s\n", t, ub, v }
    /^\| (pp|tg)[0-9]+ +\|/ { t = $2; v = $3; gsub(/^ +| +$/, "", t); gsub(/^ +| +$/, "", v); printf "  %s: %s %s tok/s\n", name, t, v }' "$bench_log"
  awk '/^=== / { name = $0; sub(/^=== /, "", name); sub(/ \(limit .*/, "", name) }
    /sequences: median/ { printf "  %s: %s\n", name, $0 }' "$bench_log"
  # llama-batched-bench rows: | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
  grep -E '^\| +128 \| +128 \|' "$bench_log" | awk -F'|' '{ v = $9; gsub(/ /, "", v); printf "  llama.cpp batched: %2d sequences: decode %s tok/s (aggregate)\n", $4, v }'
  grep -E '^psionic \(' "$bench_log" | sed 's/^/  /'
  if [ -s "$ncu_log" ]; then
    echo
    echo "Nsight Compute, per kernel launch (ncu.log; DRAM % and SM % of the card's peaks):"
    bun scripts/ncu-summary.ts "$ncu_log"
  fi
} | tee "$summary"
# Exit status: 0 only when every step succeeded.
for r in "${rows[@]}"; do
  IFS='|' read -r _ status _ <<<"$r"
  [ "$status" = ok ] || exit 1
done
exit 0
