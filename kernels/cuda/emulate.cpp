// Fibers for the CPU build of the CUDA kernels (emulate.h): every thread of
// a block gets a stack and a saved stack pointer; the scheduler runs each
// runnable fiber until it waits (at __syncthreads or a warp shuffle) or
// ends, and releases a warp once all its live lanes wait, a block once all
// its live threads do. A block whose fibers all wait at different barriers
// is a kernel bug (deadlock on a GPU too): reported, then the process aborts.
// Blocks are shared out among one worker per core; a block's fibers all run
// on the worker that took it (so `__shared__` is thread_local). x86-64 only.
// Vector loads and stores check their alignment (emulate.h). Each block starts
// with its kernel's `__shared__` arrays filled with 0xff bytes (NaN as floats),
// as a GPU's shared memory starts with garbage: a kernel whose results depend on
// shared bytes no thread of its block wrote gets NaNs (the last, partial tile's
// block too, where such reads usually are).
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include "emulate.h"

#ifdef PSI_EMU_TRACE
// emulate_trace.cpp: which fiber runs (its accesses are recorded as its
// lane's), its barriers (for the race check), when a block and a launch begin and end.
void psi_trace_fiber(int thread);
void psi_trace_sync(bool block);
void psi_trace_block(int threads, bool begin);
void psi_trace_launch(bool begin);
void psi_trace_worker_done();
#define PSI_TRACE(call) call
#else
#define PSI_TRACE(call)
#endif

// Saves the callee-saved registers and stack pointer into *save, loads `load`'s.
extern "C" void psi_emu_switch(void **save, void *load);
asm(R"(
.text
.globl psi_emu_switch
.type psi_emu_switch, @function
psi_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size psi_emu_switch, .-psi_emu_switch
)");

namespace {

enum State { RUNNABLE, WAIT_WARP, WAIT_BLOCK, DONE };
// Each stack is aligned to its size and starts with its fiber's address, so code
// running on a fiber finds its Fiber from the stack pointer (running()) with no
// thread_local lookup: in a shared library each is a __tls_get_addr call, which
// AddressSanitizer intercepts, and threadIdx alone is read millions of times.
const size_t STACK_BYTES = 256 << 10;

struct Worker;
struct Fiber {
  void *sp = nullptr;
  char *stack = nullptr;
  Worker *worker = nullptr;
  State state = DONE;
  bool waited = false;  // called psi_grid_wait (common.cuh)
  int warp = 0, lane = 0;
  unsigned mask = 0;  // the lanes its warp-synchronous call names (while it waits at one)
  PsiFiberCoords coords;
};

// A worker thread's scheduler state and its warps' exchange slots.
struct Worker {
  std::vector<Fiber> fibers;
  Fiber *current = nullptr;  // the fiber running now (null between them)
  void *scheduler_sp = nullptr;
  const std::function<void()> *kernel_body = nullptr;
  uint64_t warp_values[32][32];
  uint32_t warp_words[32][32][8];
};

thread_local Worker here;
// This thread's thread_local block (not a function-local static: those are the ones poisoned).
thread_local char *tls_block = nullptr;

inline Fiber &running() {
  uintptr_t sp;
  asm volatile("movq %%rsp, %0" : "=r"(sp));
  return **(Fiber **)(sp & ~(uintptr_t)(STACK_BYTES - 1));
}

void yield(Fiber &f, State waiting) {
  f.state = waiting;
  psi_emu_switch(&f.sp, f.worker->scheduler_sp);
}

void warp_wait(Fiber &f, unsigned mask) {
  f.mask = mask;
  yield(f, WAIT_WARP);
}

[[noreturn]] void fiber_main() {
  Fiber &f = running();
  (*f.worker->kernel_body)();
  if (!f.waited) {
    const PsiFiberCoords &c = f.coords;
    fprintf(stderr, "psionic CUDA emulator: thread (%u,%u,%u) of block (%u,%u,%u) ended without calling psi_grid_wait(): "
            "with programmatic dependent launch it could read memory the previous kernel has not yet written\n",
            c.thread.x, c.thread.y, c.thread.z, c.block.x, c.block.y, c.block.z);
    abort();
  }
  yield(f, DONE);
  abort();  // a finished fiber is never resumed
}

void start(Fiber &f, Worker &w) {
  f.waited = false;
  f.worker = &w;
  if (!f.stack) f.stack = (char *)aligned_alloc(STACK_BYTES, STACK_BYTES);
  *(Fiber **)f.stack = &f;  // again each block: the fibers' vector may have moved
  // A frame psi_emu_switch can return into: six saved registers, then fiber_main as the return address.
  uintptr_t top = ((uintptr_t)(f.stack + STACK_BYTES)) & ~(uintptr_t)15;
  void **sp = (void **)top;
  *--sp = nullptr;                      // keeps fiber_main's entry alignment that of a call
  *--sp = (void *)&fiber_main;
  for (int i = 0; i < 6; i++) *--sp = nullptr;
  f.sp = sp;
  f.state = RUNNABLE;
}

}  // namespace

const PsiFiberCoords &psi_emu_coords() { return running().coords; }
void psi_grid_wait() { running().waited = true; }
int psi_emu_lane() { return running().lane; }

void psi_emu_barrier() {
  PSI_TRACE(psi_trace_sync(true));
  yield(running(), WAIT_BLOCK);
}
void psi_emu_warp_barrier(unsigned mask) {
  PSI_TRACE(psi_trace_sync(false));
  warp_wait(running(), mask);
}

uint64_t psi_emu_shuffle(uint64_t value, int src, unsigned mask) {
  Fiber &f = running();
  uint64_t *values = f.worker->warp_values[f.warp];
  values[f.lane] = value;
  warp_wait(f, mask);  // every lane has written
  const uint64_t out = values[src];
  warp_wait(f, mask);  // every lane has read before anyone writes again
  return out;
}

void psi_emu_warp_gather(const uint32_t *mine, int n, uint32_t all[32][8], unsigned mask) {
  Fiber &f = running();
  uint32_t(*words)[8] = f.worker->warp_words[f.warp];
  // Plain loops, not memcpy: AddressSanitizer's memcpy interceptor cost more than the copies.
  for (int i = 0; i < n; i++) words[f.lane][i] = mine[i];
  warp_wait(f, mask);  // every lane has written
  for (int l = 0; l < 32; l++) for (int i = 0; i < n; i++) all[l][i] = words[l][i];
  warp_wait(f, mask);  // every lane has read before anyone writes again
}

double psi_emu_now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Warp w's live lanes all wait at a warp-synchronous call: each names in its mask
// none of the lanes `gone` (exited, or missing from the block), as on a GPU the call
// is undefined otherwise.
static void check_warp_masks(const std::vector<Fiber> &fibers, int w, int threads, unsigned gone, unsigned bx, unsigned by, unsigned bz) {
  for (int t = w * 32; t < std::min(threads, w * 32 + 32); t++) {
    if (fibers[t].state != WAIT_WARP || !(fibers[t].mask & gone)) continue;
    const int l = __builtin_ctz(fibers[t].mask & gone);
    fprintf(stderr, "psionic CUDA emulator: block (%u,%u,%u): thread %d makes a warp-synchronous call (shuffle, vote, __syncwarp, mma) "
            "whose mask 0x%08x names lane %d, which %s: undefined on a GPU (a hang or garbage)\n",
            bx, by, bz, t, fibers[t].mask, l, w * 32 + l >= threads ? "the block does not have" : "has exited");
    abort();
  }
}

// Runs every fiber of block (bx, by, bz) to its end on this thread.
static void run_block(dim3 grid, dim3 block, unsigned bx, unsigned by, unsigned bz) {
  const int threads = (int)(block.x * block.y * block.z);
  Worker &w = here;
  std::vector<Fiber> &fibers = w.fibers;
  if ((int)fibers.size() < threads) fibers.resize(threads);
  for (int t = 0; t < threads; t++) {
    Fiber &f = fibers[t];
    f.coords = {{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)}, {bx, by, bz}, block, grid};
    f.warp = t / 32;
    f.lane = t % 32;
    start(f, w);
  }
  PSI_TRACE(psi_trace_block(threads, true));
  // PSIONIC_CUDA_EMU_ORDER=reverse runs the fibers last to first between waits. A
  // kernel that reads shared memory another thread wrote without a barrier
  // between gets the value only in one of the two orders (the GPU promises
  // neither), so running the checks both ways exposes the race.
  static const bool reverse = getenv("PSIONIC_CUDA_EMU_ORDER") && strcmp(getenv("PSIONIC_CUDA_EMU_ORDER"), "reverse") == 0;
  int live = threads;
  while (live > 0) {
    bool ran = false;
    for (int i = 0; i < threads; i++) {
      const int t = reverse ? threads - 1 - i : i;
      if (fibers[t].state != RUNNABLE) continue;
      w.current = &fibers[t];
      PSI_TRACE(psi_trace_fiber(t));
      psi_emu_switch(&w.scheduler_sp, fibers[t].sp);
      PSI_TRACE(psi_trace_fiber(-1));
      ran = true;
      if (fibers[t].state == DONE) live--;
    }
    bool released = false;
    // A warp goes on once all its live lanes wait at the shuffle.
    for (int warp = 0; warp * 32 < threads; warp++) {
      int waiting = 0, alive = 0;
      const int lanes = std::min(32, threads - warp * 32);
      unsigned gone = lanes == 32 ? 0u : ~0u << lanes;  // lanes the block lacks, then those exited
      for (int t = warp * 32; t < warp * 32 + lanes; t++) {
        if (fibers[t].state != DONE) alive++;
        else gone |= 1u << (t - warp * 32);
        if (fibers[t].state == WAIT_WARP) waiting++;
      }
      if (alive > 0 && waiting == alive) {
        if (gone) check_warp_masks(fibers, warp, threads, gone, bx, by, bz);
        for (int t = warp * 32; t < std::min(threads, warp * 32 + 32); t++) if (fibers[t].state == WAIT_WARP) fibers[t].state = RUNNABLE;
        released = true;
      }
    }
    if (!released) {
      int waiting = 0;
      for (int t = 0; t < threads; t++) waiting += fibers[t].state == WAIT_BLOCK;
      if (waiting > 0 && waiting == live) {
        for (int t = 0; t < threads; t++) if (fibers[t].state == WAIT_BLOCK) fibers[t].state = RUNNABLE;
        released = true;
      }
    }
    if (live > 0 && !ran && !released) {
      fprintf(stderr, "psionic CUDA emulator: block (%u,%u,%u) deadlocked: its threads wait at different barriers\n", bx, by, bz);
      abort();
    }
  }
  w.current = nullptr;
  PSI_TRACE(psi_trace_block(threads, false));
}

void psi_emu_misaligned(const void *p, int align, const char *type) {
  const PsiFiberCoords *c = here.current ? &here.current->coords : nullptr;
  fprintf(stderr, "psionic CUDA emulator: misaligned address: %s at %p needs %d-byte alignment", type, p, align);
  if (c) fprintf(stderr, " (block (%u,%u,%u), thread (%u,%u,%u))", c->block.x, c->block.y, c->block.z, c->thread.x, c->thread.y, c->thread.z);
  fprintf(stderr, "\n");
  abort();
}

// Helper threads, started once and kept for the process, so each keeps its
// fibers' stacks (and its __shared__ arrays) from one launch to the next: a
// thread per launch allocated 1024 stacks each time and lost them at its end.
class Pool {
  std::mutex m;
  std::condition_variable wake, finished;
  const std::function<void()> *job = nullptr;
  uint64_t generation = 0;
  unsigned started = 0, wanted = 0, running = 0;

  void loop(unsigned id, uint64_t seen) {
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      wake.wait(lock, [&] { return generation != seen; });
      seen = generation;
      if (id >= wanted) continue;
      const std::function<void()> *work = job;
      lock.unlock();
      (*work)();
      lock.lock();
      if (--running == 0) finished.notify_all();
    }
  }

 public:
  // Runs `work` on this thread and `helpers` others, and returns when all have.
  void run(unsigned helpers, const std::function<void()> &work) {
    {
      std::lock_guard<std::mutex> lock(m);
      for (; started < helpers; started++) std::thread(&Pool::loop, this, started, generation).detach();
      job = &work;
      wanted = running = helpers;
      generation++;
    }
    wake.notify_all();
    work();
    std::unique_lock<std::mutex> lock(m);
    finished.wait(lock, [&] { return running == 0; });
  }
};

static Pool &pool() {
  static Pool *p = new Pool;  // never destroyed: its detached threads wait on it until the process ends
  return *p;
}

namespace {
struct Symbol { std::string name; unsigned char type; uintptr_t value, size; };

// This library's ELF symbol table (read once).
const std::vector<Symbol> &symbols() {
  static const std::vector<Symbol> table = [] {
    std::vector<Symbol> out;
    Dl_info info;
    if (!dladdr((void *)&psi_emu_tls_symbols, &info)) return out;
    const int fd = open(info.dli_fname, O_RDONLY);
    if (fd < 0) return out;
    struct stat st;
    void *map = fstat(fd, &st) == 0 ? mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return out;
    const char *base = (const char *)map;
    const auto *header = (const Elf64_Ehdr *)base;
    const auto *sections = (const Elf64_Shdr *)(base + header->e_shoff);
    for (int i = 0; i < header->e_shnum; i++) {
      if (sections[i].sh_type != SHT_SYMTAB) continue;
      const auto *syms = (const Elf64_Sym *)(base + sections[i].sh_offset);
      const char *names = base + sections[sections[i].sh_link].sh_offset;
      for (size_t k = 0; k < sections[i].sh_size / sizeof(Elf64_Sym); k++) {
        const Elf64_Sym &sym = syms[k];
        const unsigned char type = ELF64_ST_TYPE(sym.st_info);
        if ((type == STT_TLS || type == STT_FUNC) && sym.st_size > 0) out.push_back({names + sym.st_name, type, sym.st_value, sym.st_size});
      }
    }
    munmap(map, st.st_size);
    return out;
  }();
  return table;
}

// A kernel's own __shared__ arrays: the thread_locals local to its function
// (_ZZ<its mangled name without _Z>E...), found on its first launch.
const std::vector<PsiTlsSymbol> &kernel_shared(const void *kernel) {
  static std::mutex lock;
  static std::unordered_map<const void *, std::vector<PsiTlsSymbol>> found;
  std::lock_guard<std::mutex> hold(lock);
  auto [it, fresh] = found.try_emplace(kernel);
  Dl_info info;
  if (!fresh || !dladdr(kernel, &info)) return it->second;
  const uintptr_t offset = (uintptr_t)kernel - (uintptr_t)info.dli_fbase;
  for (const Symbol &f : symbols()) {
    if (f.type != STT_FUNC || f.value != offset || f.name.compare(0, 2, "_Z") != 0) continue;
    const std::string prefix = "_ZZ" + f.name.substr(2) + "E";
    for (const Symbol &t : symbols()) if (t.type == STT_TLS && t.name.compare(0, prefix.size(), prefix) == 0) it->second.push_back({t.value, t.size});
    break;
  }
  return it->second;
}
}  // namespace

std::vector<PsiTlsSymbol> psi_emu_tls_symbols(const char *prefix) {
  std::vector<PsiTlsSymbol> out;
  for (const Symbol &t : symbols()) if (t.type == STT_TLS && t.name.compare(0, strlen(prefix), prefix) == 0) out.push_back({t.value, t.size});
  return out;
}

char *psi_emu_tls_block() {
  Dl_info info;
  void *block = nullptr;
  if (!dladdr((void *)&psi_emu_tls_block, &info)) return nullptr;
  void *self = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
  if (!self) return nullptr;
  if (dlinfo(self, RTLD_DI_TLS_DATA, &block) != 0) block = nullptr;
  dlclose(self);
  return (char *)block;
}

// Fills __shared__ arrays of the calling worker with 0xff bytes.
static void poison_shared(const std::vector<PsiTlsSymbol> &arrays) {
  if (!tls_block) tls_block = psi_emu_tls_block();  // touching tls_block makes the block exist
  if (!tls_block) return;
  for (const PsiTlsSymbol &a : arrays) memset(tls_block + a.offset, 0xff, a.size);
}

void psi_emu_run(dim3 grid, dim3 block, const std::function<void()> &body, const void *kernel) {
  // PSIONIC_CUDA_EMU_NO_KERNELS=1: launches return at once, so a run times the host side
  // alone (TypeScript, FFI, recording and graph bookkeeping); its results are meaningless.
  static const bool noKernels = getenv("PSIONIC_CUDA_EMU_NO_KERNELS") && *getenv("PSIONIC_CUDA_EMU_NO_KERNELS") == '1';
  if (noKernels) return;
  const int threads = (int)(block.x * block.y * block.z);
  if (threads <= 0 || threads > 1024) { fprintf(stderr, "psionic CUDA emulator: a block of %d threads\n", threads); abort(); }
  const uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
  std::atomic<uint64_t> next{0};
  // Every kernel's arrays at each launch (those of a __device__ function it calls
  // too), and the launched kernel's own before each block.
  static const std::vector<PsiTlsSymbol> everyArray = psi_emu_tls_symbols("_ZZ");
  const std::vector<PsiTlsSymbol> &own = kernel ? kernel_shared(kernel) : everyArray;
  auto work = [&]() {
    here.kernel_body = &body;
    poison_shared(everyArray);
    for (uint64_t b, done = 0; (b = next.fetch_add(1)) < blocks; done++) {
      if (done > 0) poison_shared(own);
      run_block(grid, block, (unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y), (unsigned)(b / ((uint64_t)grid.x * grid.y)));
    }
    PSI_TRACE(psi_trace_worker_done());
  };
  static const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  static std::mutex launch;  // host threads launching at once take turns, as on one stream
  std::lock_guard<std::mutex> turn(launch);
  PSI_TRACE(psi_trace_launch(true));
  pool().run((unsigned)std::min<uint64_t>(cores, blocks) - 1, work);
  PSI_TRACE(psi_trace_launch(false));
}
