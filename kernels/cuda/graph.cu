// CUDA graphs for decode steps. A step of up to 64 rows is recorded rather
// than launched (its kernels, copies and their argument bytes); when something
// needs the results (a download, the argmax, a host sync) the recording ends:
// a fingerprint of everything recorded picks a graph captured earlier from an
// identical step and replays it, or the recorded work is captured into a new
// graph. Only staged host data (token ids, positions) differs between steps
// with one fingerprint, and the graph's copies read it from the pinned staging
// ring at replay, where this step wrote it. The GPU then runs the step without
// a launch gap, and the host pays a few launches instead of hundreds.
// A step runs as a few graphs, not one: its first GRAPH_FIRST_NODES recorded
// launches and copies are cut off into a graph and launched at once, then
// recording goes on, each later cut four times longer, until the result is
// read. So the GPU starts on the first layers while the host still records
// the rest of the step (for a gpt-oss-20b token about 0.2 ms of TypeScript
// and FFI, which otherwise adds to every token); the host records a launch
// in well under a microsecond, far ahead of the GPU, so only the first cut's
// recording is on the critical path. Cuts fall at the same counts in every
// step, so identical steps give identical graphs.
// The CPU build keeps the first recording of a fingerprint and replays its
// closures the same way, so the emulated checks exercise replay too.
#include <unordered_map>
#include <vector>
#include "common.cuh"

void psi_ring_reset();
void psi_release_deferred();

static bool enabled = true, recording = false;
static std::vector<std::function<void()>> steps;  // recorded since the step began or its last cut
static uint64_t fingerprint = PSI_HASH_SEED;
static size_t cut_at = 0;        // the recorded count at which the step's next graph is cut off
static bool cut_failed = false;  // a cut's launch failed: the step's flush reports it
static const size_t MAX_GRAPHS = 256;
static uint64_t captured = 0, replayed = 0;
#ifdef PSI_EMULATE
static std::unordered_map<uint64_t, std::vector<std::function<void()>>> graphs;
#else
static std::unordered_map<uint64_t, cudaGraphExec_t> graphs;
#endif

bool psi_recording() { return recording; }

uint64_t psi_staging_copies();

// Graphs captured, graph launches that replayed one, and host-to-device staging
// copies (memory.cu: token ids, positions), since the library loaded.
PSI_EXPORT void psi_cuda_graph_stats(double *out) {
  out[0] = (double)captured;
  out[1] = (double)replayed;
  out[2] = (double)psi_staging_copies();
}

static int run_recorded(bool last);

void psi_record(uint64_t h, std::function<void()> work) {
  fingerprint = psi_hash(fingerprint, &h, sizeof h);
  steps.push_back(std::move(work));
  if (steps.size() >= cut_at && run_recorded(false)) cut_failed = true;
}

int psi_memcpy_async(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what) {
  if (recording) {
    uint64_t h = psi_hash(PSI_HASH_SEED, &dst, sizeof dst);
    h = psi_hash(h, &src, sizeof src);
    h = psi_hash(h, &bytes, sizeof bytes);
    h = psi_hash(h, &kind, sizeof kind);
    psi_record(h, [=]() { cudaMemcpyAsync(dst, src, bytes, kind, psi_stream()); });
    return 0;
  }
  return psi_failed(cudaMemcpyAsync(dst, src, bytes, kind, psi_stream()), what) ? -1 : 0;
}

// 1 on, 0 off (PSIONIC_CUDA_GRAPHS=0, or while profiling op by op).
PSI_EXPORT int psi_cuda_graphs(int on) {
  if (psi_flush_recording()) return -1;
  enabled = on != 0;
  return 0;
}

// Starts recording a step (the device is idle first, so the staging ring starts over).
PSI_EXPORT int psi_cuda_record_begin(void) {
  if (psi_flush_recording()) return -1;
  if (!enabled) return 0;
  if (psi_failed(cudaStreamSynchronize(psi_stream()), "step start (sync)")) return -1;
  psi_ring_reset();
  psi_release_deferred();
  steps.clear();
  fingerprint = PSI_HASH_SEED;
  cut_at = (size_t)GRAPH_FIRST_NODES;
  cut_failed = false;
  recording = true;
  return 0;
}

// A cut that failed stopped the recording (the rest of the step ran launch by
// launch): its error is reported here, where the step's result is read.
int psi_flush_recording() {
  const bool failed = cut_failed;
  cut_failed = false;
  if (recording && run_recorded(true)) return -1;
  return failed ? -1 : 0;
}

static void run_steps() {
  for (auto &f : steps) f();
}

// Ends the graph being recorded (the last of the step, or a cut): the steps
// recorded since the last cut run as that graph, and after a cut the step's
// recording goes on with the next.
static int launch_recorded();
static int run_recorded(bool last) {
  recording = false;  // the steps run for real now, and capture() must not record them again
  const int status = launch_recorded();
  steps.clear();
  fingerprint = PSI_HASH_SEED;
  cut_at *= 4;
  recording = !last && enabled && status == 0;
  return status;
}

#ifdef PSI_EMULATE
static int launch_recorded() {
  auto it = graphs.find(fingerprint);
  if (it == graphs.end()) {
    if (graphs.size() >= MAX_GRAPHS) graphs.clear();
    it = graphs.emplace(fingerprint, std::move(steps)).first;
    captured++;
  } else {
    replayed++;
  }
  for (auto &f : it->second) f();
  return 0;
}
#else
// Captures the recorded steps into a graph; on any failure graphs are turned off
// and the steps run as plain launches (same results, no graph).
static cudaGraphExec_t capture() {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (cudaStreamBeginCapture(psi_stream(), cudaStreamCaptureModeThreadLocal) != cudaSuccess) return nullptr;
  run_steps();
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t ended = cudaStreamEndCapture(psi_stream(), &graph);
  if (launched == cudaSuccess && ended == cudaSuccess && graph) {
    if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) exec = nullptr;
  }
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  return exec;
}

static int launch_recorded() {
  auto it = graphs.find(fingerprint);
  if (it == graphs.end()) {
    cudaGraphExec_t exec = capture();
    if (!exec) {
      fprintf(stderr, "psionic: CUDA graph capture failed; decode steps run as separate launches from now on\n");
      enabled = false;
      run_steps();
      return PSI_LAUNCHED("decode step");
    }
    if (graphs.size() >= MAX_GRAPHS) {
      // This step's earlier graphs may still run: an in-flight graph is freed when it completes.
      for (auto &g : graphs) cudaGraphExecDestroy(g.second);
      graphs.clear();
    }
    it = graphs.emplace(fingerprint, exec).first;
    captured++;
  } else {
    replayed++;
  }
  return psi_failed(cudaGraphLaunch(it->second, psi_stream()), "graph launch") ? -1 : 0;
}
#endif
