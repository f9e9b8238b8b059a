// The access-trace build of the emulator (build/libpsionic_cuda_emu_trace.so,
// `bun build.ts --cuda-trace`; scripts/cuda-access-report.ts runs and reads it).
// The kernel sources are compiled with -fsanitize=thread, so g++ calls
// __tsan_{read,write}N(address) before every load and store they make (thread-local
// __shared__ arrays included, at constant indices too) and __tsan_atomic* for
// atomics; this file supplies those calls, in place of ThreadSanitizer's
// runtime. An access to a device buffer (global memory)
// or to the worker's thread_local block (where emulate.h puts __shared__) is
// recorded as its fiber's; fiber stacks, kernel arguments and constant tables
// are left out. At the end of a block, the n-th access of one instruction by
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
// The block's accesses are also checked for races (checkRaces): two threads of
// the block touching the same bytes, at least one writing, with no barrier
// between them that orders the two on the hardware.
// psi_emu_trace_write() writes the totals per kernel and per instruction, and
// the races, to $PSIONIC_CUDA_TRACE (ffi/cuda.ts calls it at exit). This says how a kernel uses memory, not how fast it runs.
#ifdef PSI_EMU_TRACE
#include <dlfcn.h>
#include <link.h>
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include "emulate.h"

namespace {

// blockSyncs / warpSyncs: the __syncthreads / __syncwarp calls its thread had passed.
struct Access { uintptr_t site, addr; uint32_t size, blockSyncs, warpSyncs; uint8_t store, shared, atomic; };
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
// A race between two instructions: `first` writes, `second` reads or writes, in
// two lanes of one warp, two warps of one block, or two blocks of one launch.
enum Scope : uint8_t { WARP, BLOCK, GRID };
struct RaceKey {
  uintptr_t kernel, first, second;
  uint8_t shared, write, scope;
  bool operator<(const RaceKey &o) const { return std::tie(kernel, first, second, shared, write, scope) < std::tie(o.kernel, o.first, o.second, o.shared, o.write, o.scope); }
};
struct RaceStats { uint64_t pairs = 0, blocks = 0, lastBlock = 0; uint32_t threadA = 0, threadB = 0; };

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
std::map<RaceKey, RaceStats> races;

// One thread's touches of one 4-byte word between two of its barriers.
struct Touch {
  uintptr_t word, site;
  uint32_t blockSyncs, thread, warpSyncs;
  uint8_t atomic, store, bytes, shared;  // bytes: a mask of the word's 4 bytes
  auto key() const { return std::tie(word, blockSyncs, thread, warpSyncs, atomic, store); }
};

// Offsets in the thread_local block of the guard variables g++ gives function-local
// thread_local arrays of the emulator's vector types (their copies are user-provided):
// bookkeeping of the emulator, not shared memory, so their 1-byte accesses are left out.
const std::vector<PsiTlsSymbol> guards = psi_emu_tls_symbols("_ZGV");

// A plain store to a global word: which block (numbered across the launches), thread and instruction.
struct Writer { uint64_t block; uintptr_t site; uint32_t thread; };
// The global words the launch's blocks have written so far (a second block writing one is a race).
std::mutex launchWritesLock;
std::unordered_map<uintptr_t, Writer> launchWrites;
std::atomic<uint64_t> blocksStarted{1};  // from 1: RaceStats.lastBlock 0 is none

// Addresses [begin, end): one device buffer, or a gap between two (buffer null).
struct Span { uintptr_t begin = 0, end = 0; const Buffer *buffer = nullptr; };

// A worker thread's state, behind one thread_local pointer: each thread_local
// access in a shared library is a __tls_get_addr call (and one of a class type
// with a constructor, a call to its initializer too), and record() runs at every access.
struct Worker {
  int fiber = -1;
  std::vector<std::vector<Access>> events;  // per thread of the running block
  std::vector<uint32_t> blockSyncs, warpSyncs;  // per thread of the running block
  uint64_t block = 0;  // the running block's number, unique across workers and launches
  uintptr_t tlsBegin = 0, tlsEnd = 0;
  Span recent[4] = {};  // the spans find() looked up last, most recent first
  uint64_t recentGeneration = ~0ull;
  std::unordered_map<Key, Stats, KeyHash> local;
  std::map<RaceKey, RaceStats> localRaces;
  uint64_t localBlocks = 0, localReadSectors = 0;
  std::vector<Touch> touches;  // checkRaces' scratch, kept between blocks
  std::vector<std::tuple<uint32_t, uint32_t, uint8_t>> screen;  // mayRace's scratch
  std::unordered_map<uintptr_t, Writer> written;  // global word -> its first plain (not atomic) store
};
thread_local Worker *worker = nullptr;
Worker &self() {
  if (!worker) worker = new Worker;  // kept for the thread's life, as the pool's threads are
  return *worker;
}

// The device buffer holding addr, or null; the spans found last are kept, gaps
// between buffers too (fiber stacks and kernel arguments are looked up at every access).
const Buffer *find(Worker &me, uintptr_t addr) {
  const uint64_t generation = buffersGeneration.load(std::memory_order_relaxed);
  if (me.recentGeneration != generation) std::fill(std::begin(me.recent), std::end(me.recent), Span{}), me.recentGeneration = generation;
  for (const Span &r : me.recent) {
    if (addr >= r.begin && addr < r.end) return r.buffer;
  }
  auto next = buffers.upper_bound(addr);
  Span found = {next == buffers.begin() ? 0 : std::prev(next)->second.end, next == buffers.end() ? UINTPTR_MAX : next->first, nullptr};
  if (next != buffers.begin() && addr < std::prev(next)->second.end) {
    const Buffer &b = std::prev(next)->second;
    found = {b.begin, b.end, &b};
  }
  std::copy_backward(me.recent, me.recent + 3, me.recent + 4);
  me.recent[0] = found;
  return found.buffer;
}

inline void record(uintptr_t addr, uint32_t size, bool store, uintptr_t site, bool atomic = false) {
  if (!worker || worker->fiber < 0) return;
  Worker &me = *worker;
  bool shared = addr >= me.tlsBegin && addr < me.tlsEnd;
  if (shared && size == 1) {
    for (const PsiTlsSymbol &g : guards) if (addr - me.tlsBegin - g.offset < g.size) return;
  }
  if (!shared) {
    const Buffer *b = find(me, addr);
    if (!b) return;
    if (!store) {
      for (uintptr_t s = (addr - b->begin) >> 5, last = (addr + size - 1 - b->begin) >> 5; s <= last; s++) {
        // A plain load first: most reads find their sector marked, and skip the locked exchange.
        std::atomic<uint32_t> &epoch = b->readEpoch[s];
        if (epoch.load(std::memory_order_relaxed) != launchId && epoch.exchange(launchId, std::memory_order_relaxed) != launchId) me.localReadSectors++;
      }
    }
  }
  me.events[me.fiber].push_back({site - 1, addr, size, me.blockSyncs[me.fiber], me.warpSyncs[me.fiber], store, shared, atomic});  // site - 1: inside the call, for the line lookup
}

// This library's thread_local block for the calling thread, where the __shared__ arrays live.
void findTls() {
  Worker &me = self();
  Dl_info info;
  char *block = psi_emu_tls_block();
  if (!block || !dladdr((void *)&findTls, &info)) return;
  struct Search { uintptr_t base; size_t bytes; } search = {(uintptr_t)info.dli_fbase, 0};
  dl_iterate_phdr([](dl_phdr_info *p, size_t, void *data) {
    auto *s = (Search *)data;
    if (p->dlpi_addr != s->base) return 0;
    for (int i = 0; i < p->dlpi_phnum; i++) if (p->dlpi_phdr[i].p_type == PT_TLS) s->bytes = p->dlpi_phdr[i].p_memsz;
    return 1;
  }, &search);
  me.tlsBegin = (uintptr_t)block;
  me.tlsEnd = me.tlsBegin + search.bytes;
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
  Worker &me = self();
  struct Request { uintptr_t site; uint8_t store, shared; };
  std::vector<Request> requests;
  std::vector<Part> parts;
  std::unordered_map<uint64_t, uint32_t> index;      // (site, occurrence) -> request
  std::unordered_map<uintptr_t, uint32_t> occurrences;
  for (int lane = 0; lane < count; lane++) {
    occurrences.clear();
    for (const Access &a : me.events[first + lane]) {
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
    Stats &s = me.local[{launchKernel, r.site, r.shared, r.store}];
    s.requests++;
    s.lanes += j - i;
    if (r.shared) measureShared(&parts[i], j - i, s);
    else measureGlobal(&parts[i], j - i, s);
    i = j;
  }
}

// Whether touches t[0..n) of one word between the same two __syncthreads (sorted
// by thread, at least one a store) can hold a race: two warps, or a store and a
// second thread of its warp in one __syncwarp epoch. A quick screen before the
// pairwise count, which is quadratic: a warp-synchronous kernel (topk's lists)
// touches one word thousands of times between barriers, most of them reads.
bool mayRace(const Touch *t, size_t n, std::vector<std::tuple<uint32_t, uint32_t, uint8_t>> &epochs) {
  if (t[0].thread == t[n - 1].thread) return false;
  if (t[0].thread / 32 != t[n - 1].thread / 32) return true;
  epochs.clear();  // (warpSyncs, thread, store)
  for (size_t k = 0; k < n; k++) epochs.emplace_back(t[k].warpSyncs, t[k].thread, t[k].store);
  std::sort(epochs.begin(), epochs.end());
  for (size_t k = 0; k < n;) {
    size_t end = k;
    bool store = false;
    for (; end < n && std::get<0>(epochs[end]) == std::get<0>(epochs[k]); end++) store |= std::get<2>(epochs[end]);
    if (store && std::get<1>(epochs[k]) != std::get<1>(epochs[end - 1])) return true;
    k = end;
  }
  return false;
}

// Races inside the block just run: two threads touching the same bytes, at least one
// writing (an atomic against an atomic is none), with no __syncthreads between them,
// and for two lanes of one warp no __syncwarp either. Shuffles and votes are no
// barrier here: they order no memory (the CUDA programming guide's warp shuffle and
// vote functions). Global memory is checked between the block's own threads, and
// for plain stores of two blocks of one launch to the same word (a write-write
// race whichever runs first); a block reading another's writes is not followed
// (that takes a fence and an atomic, as the last block of router_route does).
void checkRaces(int threads) {
  Worker &me = self();
  auto &written = me.written;  // the global words the block writes: only those can race
  written.clear();
  for (int t = 0; t < threads; t++) {
    for (const Access &a : me.events[t]) {
      if (!a.store || a.shared) continue;
      for (uintptr_t w = a.addr >> 2; w <= (a.addr + a.size - 1) >> 2; w++) {
        // Site 0 until a plain store: an atomic races with no other block's.
        auto it = written.try_emplace(w, Writer{me.block, 0, 0}).first;
        if (!a.atomic && !it->second.site) it->second = {me.block, a.site, (uint32_t)t};
      }
    }
  }
  {  // another block of the launch that wrote the same word
    std::lock_guard<std::mutex> lock(launchWritesLock);
    for (const auto &[w, mine] : written) {
      if (!mine.site) continue;
      auto [it, fresh] = launchWrites.try_emplace(w, mine);
      if (fresh || it->second.block == mine.block) continue;
      RaceStats &r = me.localRaces[{launchKernel, it->second.site, mine.site, 0, 1, GRID}];
      if (r.pairs == 0) r.threadA = it->second.thread, r.threadB = mine.thread;
      r.pairs++;
      if (r.lastBlock != me.block) r.lastBlock = me.block, r.blocks++;
    }
  }
  auto &touches = me.touches;
  touches.clear();
  for (int t = 0; t < threads; t++) {
    for (const Access &a : me.events[t]) {
      for (uintptr_t w = a.addr >> 2; w <= (a.addr + a.size - 1) >> 2; w++) {
        if (!a.shared && !written.count(w)) continue;
        const uintptr_t lo = std::max(a.addr, w << 2), hi = std::min<uintptr_t>(a.addr + a.size, (w + 1) << 2);
        const uint8_t bytes = (uint8_t)(((1u << (hi - lo)) - 1) << (lo - (w << 2)));
        touches.push_back({w, a.site, a.blockSyncs, (uint32_t)t, a.warpSyncs, a.atomic, a.store, bytes, a.shared});
      }
    }
  }
  std::sort(touches.begin(), touches.end(), [](const Touch &x, const Touch &y) { return x.key() < y.key(); });
  size_t kept = 0;  // one touch per key, its bytes the union
  for (size_t i = 0; i < touches.size(); i++) {
    if (kept > 0 && touches[kept - 1].key() == touches[i].key()) touches[kept - 1].bytes |= touches[i].bytes;
    else touches[kept++] = touches[i];
  }
  touches.resize(kept);
  for (size_t i = 0; i < touches.size();) {
    size_t j = i;
    bool stores = false;
    while (j < touches.size() && touches[j].word == touches[i].word && touches[j].blockSyncs == touches[i].blockSyncs) stores |= touches[j++].store;
    if (!stores || !mayRace(touches.data() + i, j - i, me.screen)) { i = j; continue; }
    for (size_t x = i; x < j; x++) {
      const Touch &a = touches[x];
      if (!a.store) continue;
      for (size_t y = i; y < j; y++) {
        const Touch &b = touches[y];
        if (b.thread == a.thread || !(a.bytes & b.bytes) || (a.atomic && b.atomic)) continue;
        if (b.store && b.thread < a.thread) continue;  // the pair is counted from b's side
        const bool sameWarp = a.thread / 32 == b.thread / 32;
        if (sameWarp && a.warpSyncs != b.warpSyncs) continue;
        RaceStats &r = me.localRaces[{launchKernel, a.site, b.site, a.shared, b.store, sameWarp ? WARP : BLOCK}];
        if (r.pairs == 0) r.threadA = a.thread, r.threadB = b.thread;
        r.pairs++;
        if (r.lastBlock != me.block) r.lastBlock = me.block, r.blocks++;
      }
    }
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
  for (auto &[k, r] : races) {
    fprintf(f, "race\t%lx\t%lx\t%lx\t%s\t%s\t%s\t%lu\t%lu\t%u\t%u\n", k.kernel - base, k.first - base, k.second - base, k.shared ? "shared" : "global",
            k.write ? "write" : "read", k.scope == WARP ? "warp" : k.scope == BLOCK ? "block" : "grid", r.pairs, r.blocks, r.threadA, r.threadB);
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

void psi_trace_fiber(int thread) { self().fiber = thread; }

void psi_trace_sync(bool block) {
  Worker &me = self();
  if (me.fiber >= 0) (block ? me.blockSyncs : me.warpSyncs)[me.fiber]++;
}

void psi_trace_block(int threads, bool begin) {
  Worker &me = self();
  if (begin) {
    if (!me.tlsEnd) findTls();
    if ((int)me.events.size() < threads) me.events.resize(threads);
    for (int t = 0; t < threads; t++) me.events[t].clear();
    me.blockSyncs.assign(threads, 0);
    me.warpSyncs.assign(threads, 0);
    me.block = blocksStarted++;
    me.localBlocks++;
    return;
  }
  checkRaces(threads);
  for (int w = 0; w < threads; w += 32) measureWarp(w, std::min(32, threads - w));
}

void psi_trace_launch(bool begin) {
  if (begin) {
    launchKernel = (uintptr_t)pendingKernel;
    launchId++;
    launchWrites.clear();
    return;
  }
  std::lock_guard<std::mutex> lock(mergeLock);
  kernels[launchKernel].launches++;
}

void psi_trace_worker_done() {
  Worker &me = self();
  std::lock_guard<std::mutex> lock(mergeLock);
  for (auto &[k, s] : me.local) {
    Stats &t = totals[k];
    t.requests += s.requests, t.lanes += s.lanes, t.bytes += s.bytes, t.units += s.units, t.ideal += s.ideal;
  }
  me.local.clear();
  for (auto &[k, r] : me.localRaces) {
    RaceStats &t = races[k];
    if (t.pairs == 0) t.threadA = r.threadA, t.threadB = r.threadB;
    t.pairs += r.pairs, t.blocks += r.blocks;
  }
  me.localRaces.clear();
  KernelStats &k = kernels[launchKernel];
  k.blocks += me.localBlocks;
  k.readSectors += me.localReadSectors;
  me.localBlocks = me.localReadSectors = 0;
}

// What g++ calls under -fsanitize=thread, before each access of the kernel sources
// (the atomics do the operation too, as one on the host: blocks run on several threads).
#define PSI_RET (uintptr_t)__builtin_return_address(0)
#define PSI_TRACE_ACCESS(N)                                                                               \
  extern "C" void __tsan_read##N(void *a) { record((uintptr_t)a, N, false, PSI_RET); }                  \
  extern "C" void __tsan_write##N(void *a) { record((uintptr_t)a, N, true, PSI_RET); }                  \
  extern "C" void __tsan_unaligned_read##N(void *a) { record((uintptr_t)a, N, false, PSI_RET); }        \
  extern "C" void __tsan_unaligned_write##N(void *a) { record((uintptr_t)a, N, true, PSI_RET); }
PSI_TRACE_ACCESS(1)
PSI_TRACE_ACCESS(2)
PSI_TRACE_ACCESS(4)
PSI_TRACE_ACCESS(8)
PSI_TRACE_ACCESS(16)
extern "C" void __tsan_read_range(void *a, size_t n) { if (n) record((uintptr_t)a, (uint32_t)n, false, PSI_RET); }
extern "C" void __tsan_write_range(void *a, size_t n) { if (n) record((uintptr_t)a, (uint32_t)n, true, PSI_RET); }
extern "C" void __tsan_init() {}
extern "C" void __tsan_func_entry(void *) {}
extern "C" void __tsan_func_exit() {}
extern "C" int __tsan_atomic32_fetch_add(volatile int *a, int v, int) {
  record((uintptr_t)a, 4, true, PSI_RET, true);
  return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);
}
extern "C" int __tsan_atomic32_load(const volatile int *a, int) {
  record((uintptr_t)a, 4, false, PSI_RET, true);
  return __atomic_load_n(a, __ATOMIC_SEQ_CST);
}
extern "C" void __tsan_atomic32_store(volatile int *a, int v, int) {
  record((uintptr_t)a, 4, true, PSI_RET, true);
  __atomic_store_n(a, v, __ATOMIC_SEQ_CST);
}
extern "C" void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
extern "C" void __tsan_atomic_signal_fence(int) {}
#endif
