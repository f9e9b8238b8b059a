// Where the device time goes, per backend op (PSIONIC_CUDA_PROFILE=1,
// cuda-profile.ts): an event pair around each op on the stream gives its busy
// time, and the distance from one op's end to the next op's start is time the
// GPU waited for the host to launch work (the launch-bound part of decode).
#include <vector>
#include "common.cuh"

struct Mark { int op; cudaEvent_t start, end; };
static std::vector<Mark> marks;
static std::vector<cudaEvent_t> spare;
static int open_op = -1;

static cudaEvent_t take_event() {
  if (!spare.empty()) { cudaEvent_t e = spare.back(); spare.pop_back(); return e; }
  cudaEvent_t e = nullptr;
  if (psi_failed(cudaEventCreate(&e), "profile event")) return nullptr;
  return e;
}

PSI_EXPORT int psi_cuda_prof_begin(int op) {
  cudaEvent_t e = take_event();
  if (!e) return -1;
  marks.push_back({op, e, nullptr});
  open_op = (int)marks.size() - 1;
  return psi_failed(cudaEventRecord(e, psi_stream()), "profile record") ? -1 : 0;
}

PSI_EXPORT int psi_cuda_prof_end(void) {
  if (open_op < 0) return 0;
  cudaEvent_t e = take_event();
  if (!e) return -1;
  marks[open_op].end = e;
  open_op = -1;
  return psi_failed(cudaEventRecord(e, psi_stream()), "profile record") ? -1 : 0;
}

// Adds each op's busy milliseconds to busy[op], the wait before it to idle[op],
// and one to count[op]; then forgets the marks. Synchronizes the stream.
PSI_EXPORT int psi_cuda_prof_collect(double *busy, double *idle, double *count, int ops) {
  if (psi_flush_recording() || psi_failed(cudaStreamSynchronize(psi_stream()), "profile sync")) return -1;
  cudaEvent_t previous_end = nullptr;
  for (Mark &m : marks) {
    if (m.op >= 0 && m.op < ops && m.end) {
      float ms = 0.f;
      cudaEventElapsedTime(&ms, m.start, m.end);
      busy[m.op] += ms;
      count[m.op] += 1;
      if (previous_end) {
        float gap = 0.f;
        cudaEventElapsedTime(&gap, previous_end, m.start);
        idle[m.op] += gap;
      }
    }
    previous_end = m.end;
  }
  for (Mark &m : marks) {
    spare.push_back(m.start);
    if (m.end) spare.push_back(m.end);
  }
  marks.clear();
  open_op = -1;
  return 0;
}
