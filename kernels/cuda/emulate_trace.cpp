// The access-trace build of the emulator (build/libpsionic_cuda_emu_trace.so,
// `bun build.ts --cuda-trace`; scripts/cuda-access-report.ts runs and reads it).
// The kernel sources are compiled with -fsanitize=kernel-address, so g++ calls
// __asan_{load,store}N_noabort(address) before every load and store they make;
// this file supplies those calls. An access to a device buffer (global memory)
// or to the worker's thread_local block (where emulate.h puts __shared__) is
// recorded as its fiber's; fiber stacks, kernel arguments and constant tables
// are left out (and g++ checks no access it can prove in bounds at compile
// time, such as s[0] of a __shared__ array s: those are missing). At the end of a block, the n-th access of one instruction by
// each lane of a warp make up one warp request, as the hardware issues it, and
// each request is measured:
//   global: the 32-byte sectors it touches against the distinct bytes it asks
//           for (coalescing; 100% when every fetched sector is fully used),
//           and each launch's distinct sectors read (what DRAM must supply at
//           least, with a perfect cache);
//   shared: the bank wavefronts it takes (32 banks of 4 bytes; 8- and 16-byte
//           accesses split into half- and quarter-warp phases) against the
//           fewest it can take: one per phase with lanes in it, and no fewer
//           than its distinct words need (bank conflicts).
// psi_emu_trace_write() writes the totals per kernel and per instruction to
// $PSIONIC_CUDA_TRACE (ffi/cuda.ts calls it at exit). This says how a kernel uses memory, not how fast it runs.
#ifdef PSI_EMU_TRACE
#include <dlfcn.h>
#include <link.h>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>
#include "emulate.h"

namespace {

struct Access { uintptr_t site, addr; uint32_t size; uint8_t store, shared; };
struct Buffer { uintptr_t begin, end; std::atomic<uint32_t> *readEpoch; };  // one epoch per 32-byte sector

struct Key {
  uintptr_t kernel, site;
  uint8_t shared, store;
  bool operator==(const Key &o) const { return kernel == o.kernel && site == o.site && shared == o.shared && store == o.store; }
};
struct KeyHash {
  size_t operator()(const Key &k) const { return std::hash<uintptr_t>()(k.site * 31 + k.kernel) ^ (k.shared << 1 | k.store); }
};
struct Stats { uint64_t requests = 0, lanes = 0, bytes = 0, units = 0, ideal = 0; };
struct KernelStats { uint64_t launches = 0, blocks = 0, readSectors = 0; };

// Buffers change only on the host thread between launches (a launch returns
// when it is done), so the workers read the map without a lock while a launch runs.
std::map<uintptr_t, Buffer> buffers;
std::atomic<uint64_t> buffersGeneration{0};
const void *pendingKernel = nullptr;
uintptr_t launchKernel = 0;
uint32_t launchId = 0;

std::mutex mergeLock;
std::unordered_map<Key, Stats, KeyHash> totals;
std::map<uintptr_t, KernelStats> kernels;

thread_local int fiber = -1;
thread_local std::vector<std::vector<Access>> events;  // per thread of the running block
thread_local uintptr_t tlsBegin = 0, tlsEnd = 0;
thread_local const Buffer *lastBuffer = nullptr;
thread_local uint64_t lastGeneration = ~0ull;
thread_local std::unordered_map<Key, Stats, KeyHash> local;
thread_local uint64_t localBlocks = 0, localReadSectors = 0;

const Buffer *find(uintptr_t addr) {
  if (lastGeneration == buffersGeneration.load(std::memory_order_relaxed) && lastBuffer && addr >= lastBuffer->begin && addr < lastBuffer->end) return lastBuffer;
  auto it = buffers.upper_bound(addr);
  if (it == buffers.begin()) return nullptr;
  --it;
  if (addr >= it->second.end) return nullptr;
  lastBuffer = &it->second;
  lastGeneration = buffersGeneration.load(std::memory_order_relaxed);
  return lastBuffer;
}

inline void record(uintptr_t addr, uint32_t size, bool store, uintptr_t site) {
  if (fiber < 0) return;
  bool shared = addr >= tlsBegin && addr < tlsEnd;
  if (!shared) {
    const Buffer *b = find(addr);
    if (!b) return;
    if (!store) {
      for (uintptr_t s = (addr - b->begin) >> 5, last = (addr + size - 1 - b->begin) >> 5; s <= last; s++) {
        if (b->readEpoch[s].exchange(launchId, std::memory_order_relaxed) != launchId) localReadSectors++;
      }
    }
  }
  events[fiber].push_back({site - 1, addr, size, store, shared});  // site - 1: inside the call, for the line lookup
}

// This library's thread_local block for the calling thread (dlinfo), where the __shared__ arrays live.
void findTls() {
  Dl_info info;
  if (!dladdr((void *)&findTls, &info)) return;
  void *self = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
  void *block = nullptr;
  if (!self || dlinfo(self, RTLD_DI_TLS_DATA, &block) != 0 || !block) return;
  struct Search { uintptr_t base; size_t bytes; } search = {(uintptr_t)info.dli_fbase, 0};
  dl_iterate_phdr([](dl_phdr_info *p, size_t, void *data) {
    auto *s = (Search *)data;
    if (p->dlpi_addr != s->base) return 0;
    for (int i = 0; i < p->dlpi_phnum; i++) if (p->dlpi_phdr[i].p_type == PT_TLS) s->bytes = p->dlpi_phdr[i].p_memsz;
    return 1;
  }, &search);
  tlsBegin = (uintptr_t)block;
  tlsEnd = tlsBegin + search.bytes;
  dlclose(self);
}

struct Part { uint32_t request, lane; uintptr_t addr; uint32_t size; };

void measureGlobal(const Part *p, size_t n, Stats &s) {
  std::vector<std::pair<uintptr_t, uintptr_t>> spans;  // [begin, end)
  std::vector<uintptr_t> sectors;
  for (size_t i = 0; i < n; i++) {
    spans.push_back({p[i].addr, p[i].addr + p[i].size});
    for (uintptr_t sec = p[i].addr >> 5; sec <= (p[i].addr + p[i].size - 1) >> 5; sec++) sectors.push_back(sec);
  }
  std::sort(spans.begin(), spans.end());
  uintptr_t coveredTo = 0;
  for (auto [b, e] : spans) {
    if (e > coveredTo) s.bytes += e - std::max(b, coveredTo), coveredTo = e;
  }
  std::sort(sectors.begin(), sectors.end());
  s.units += std::unique(sectors.begin(), sectors.end()) - sectors.begin();
}

void measureShared(const Part *p, size_t n, Stats &s) {
  uint32_t size = 0;
  for (size_t i = 0; i < n; i++) size = std::max(size, p[i].size);
  const uint32_t phaseLanes = size <= 4 ? 32 : size == 8 ? 16 : 8;
  std::vector<uintptr_t> words;
  size_t phases = 0;  // with lanes in them: an 8- or 16-byte access takes one wavefront per phase at least
  for (uint32_t phase = 0; phase < 32 / phaseLanes; phase++) {
    std::vector<uintptr_t> bank[32];
    bool any = false;
    for (size_t i = 0; i < n; i++) {
      if (p[i].lane / phaseLanes != phase) continue;
      any = true;
      for (uintptr_t w = p[i].addr >> 2; w <= (p[i].addr + p[i].size - 1) >> 2; w++) {
        auto &b = bank[w & 31];
        if (std::find(b.begin(), b.end(), w) == b.end()) b.push_back(w);
        words.push_back(w);
      }
    }
    size_t most = 0;
    for (auto &b : bank) most = std::max(most, b.size());
    s.units += most;
    phases += any;
  }
  std::sort(words.begin(), words.end());
  const size_t distinct = std::unique(words.begin(), words.end()) - words.begin();
  s.ideal += std::max<size_t>(phases, (distinct + 31) / 32);
  s.bytes += distinct * 4;
}

// One warp's accesses as warp requests: lane l's k-th access from instruction i
// joins the other lanes' k-th accesses from i.
void measureWarp(int first, int count) {
  struct Request { uintptr_t site; uint8_t store, shared; };
  std::vector<Request> requests;
  std::vector<Part> parts;
  std::unordered_map<uint64_t, uint32_t> index;      // (site, occurrence) -> request
  std::unordered_map<uintptr_t, uint32_t> occurrences;
  for (int lane = 0; lane < count; lane++) {
    occurrences.clear();
    for (const Access &a : events[first + lane]) {
      const uint64_t key = (uint64_t)a.site * 0x9E3779B97F4A7C15ull + occurrences[a.site]++;
      auto [it, fresh] = index.try_emplace(key, (uint32_t)requests.size());
      if (fresh) requests.push_back({a.site, a.store, a.shared});
      parts.push_back({it->second, (uint32_t)lane, a.addr, a.size});
    }
  }
  std::stable_sort(parts.begin(), parts.end(), [](const Part &x, const Part &y) { return x.request < y.request; });
  for (size_t i = 0; i < parts.size();) {
    size_t j = i;
    while (j < parts.size() && parts[j].request == parts[i].request) j++;
    const Request &r = requests[parts[i].request];
    Stats &s = local[{launchKernel, r.site, r.shared, r.store}];
    s.requests++;
    s.lanes += j - i;
    if (r.shared) measureShared(&parts[i], j - i, s);
    else measureGlobal(&parts[i], j - i, s);
    i = j;
  }
}

}  // namespace

// Called at exit (ffi/cuda.ts, when $PSIONIC_CUDA_TRACE is set).
extern "C" __attribute__((visibility("default"))) void psi_emu_trace_write() {
  const char *path = getenv("PSIONIC_CUDA_TRACE");
  if (!path || !*path) return;
  FILE *f = fopen(path, "w");
  if (!f) { fprintf(stderr, "psionic CUDA emulator: cannot write the access trace to %s\n", path); return; }
  Dl_info info;
  dladdr((void *)&psi_emu_trace_write, &info);
  const uintptr_t base = (uintptr_t)info.dli_fbase;
  std::lock_guard<std::mutex> lock(mergeLock);
  fprintf(f, "lib\t%s\n", info.dli_fname);
  for (auto &[k, s] : kernels) fprintf(f, "kernel\t%lx\t%lu\t%lu\t%lu\n", k - base, s.launches, s.blocks, s.readSectors);
  for (auto &[k, s] : totals) {
    fprintf(f, "site\t%lx\t%lx\t%s\t%s\t%lu\t%lu\t%lu\t%lu\t%lu\n", k.kernel - base, k.site - base, k.shared ? "shared" : "global",
            k.store ? "store" : "load", s.requests, s.lanes, s.bytes, s.units, s.ideal);
  }
  fclose(f);
}

void psi_emu_trace_alloc(void *p, size_t bytes) {
  const uintptr_t begin = (uintptr_t)p;
  buffers[begin] = {begin, begin + bytes, (std::atomic<uint32_t> *)calloc(bytes / 32 + 2, sizeof(uint32_t))};
  buffersGeneration++;
}

void psi_emu_trace_free(void *p) {
  auto it = buffers.find((uintptr_t)p);
  if (it == buffers.end()) return;
  free(it->second.readEpoch);
  buffers.erase(it);
  buffersGeneration++;
}

void psi_emu_trace_kernel(const void *kernel) { pendingKernel = kernel; }

void psi_trace_fiber(int thread) { fiber = thread; }

void psi_trace_block(int threads, bool begin) {
  if (begin) {
    if (!tlsEnd) findTls();
    if ((int)events.size() < threads) events.resize(threads);
    for (int t = 0; t < threads; t++) events[t].clear();
    localBlocks++;
    return;
  }
  for (int w = 0; w < threads; w += 32) measureWarp(w, std::min(32, threads - w));
}

void psi_trace_launch(bool begin) {
  if (begin) {
    launchKernel = (uintptr_t)pendingKernel;
    launchId++;
    return;
  }
  std::lock_guard<std::mutex> lock(mergeLock);
  kernels[launchKernel].launches++;
}

void psi_trace_worker_done() {
  std::lock_guard<std::mutex> lock(mergeLock);
  for (auto &[k, s] : local) {
    Stats &t = totals[k];
    t.requests += s.requests, t.lanes += s.lanes, t.bytes += s.bytes, t.units += s.units, t.ideal += s.ideal;
  }
  local.clear();
  KernelStats &k = kernels[launchKernel];
  k.blocks += localBlocks;
  k.readSectors += localReadSectors;
  localBlocks = localReadSectors = 0;
}

// What g++ calls under -fsanitize=kernel-address, before each access of the kernel sources.
#define PSI_TRACE_ACCESS(N)                                                                                    \
  extern "C" void __asan_load##N##_noabort(uintptr_t a) { record(a, N, false, (uintptr_t)__builtin_return_address(0)); } \
  extern "C" void __asan_store##N##_noabort(uintptr_t a) { record(a, N, true, (uintptr_t)__builtin_return_address(0)); }
PSI_TRACE_ACCESS(1)
PSI_TRACE_ACCESS(2)
PSI_TRACE_ACCESS(4)
PSI_TRACE_ACCESS(8)
PSI_TRACE_ACCESS(16)
extern "C" void __asan_loadN_noabort(uintptr_t a, size_t n) { if (n) record(a, (uint32_t)n, false, (uintptr_t)__builtin_return_address(0)); }
extern "C" void __asan_storeN_noabort(uintptr_t a, size_t n) { if (n) record(a, (uint32_t)n, true, (uintptr_t)__builtin_return_address(0)); }
extern "C" void __asan_handle_no_return() {}
extern "C" void __asan_before_dynamic_init(const char *) {}
extern "C" void __asan_after_dynamic_init() {}
#endif
