// A CPU emulator of CUDA's thread model, for running the device code of lasgrad's kernels in tests on
// machines without a GPU. It checks a kernel's logic (indexing, tiling, masking, shared-memory use and
// the order of its reductions), not the hardware: timing, memory coalescing and the device's math
// library (expf and the like come from the host's libm) are out of its reach.
//
// Model: the blocks of a grid run one after another; the threads of a block are fibers on the calling
// thread (Context below), switched only at __syncthreads(), __shfl_xor_sync() and the warp-collective
// tensor-core instructions (mma_m16n8k16_bf16, ldmatrix_x4), so a run is deterministic. cp.async copies
// are performed at the cp_async_wait that lets them complete, never earlier.
//   __syncthreads():   every thread of the block waits there until all have arrived;
//   __shfl_xor_sync(): every lane of the warp waits until all 32 have arrived, then reads its partner's
//                      value (full mask only, blocks a multiple of 32 threads);
// a kernel that can never get past one of them (a barrier in divergent code) is reported as an error
// naming the threads, instead of hanging. `__shared__` variables are thread_local, hence shared by all
// fibers; the includer defines the dynamic shared-memory array that kernels declare `extern __shared__`,
// as a thread_local array in the kernels' namespace. Before each block it is filled with 0xFF bytes (NaN as float or
// double), so a read of shared memory the block never wrote poisons the result, and a write past the launch's byte
// count is caught after the block.
//
// Include this before the kernels' headers: it defines CUDA's keywords and built-ins as macros.
#pragma once
#include <math.h>
#include <ucontext.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace simt {

struct dim3 {
  unsigned x, y, z;
};

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Wait { None, Shuffle, Sync, Exited };

// A fiber's saved execution state, and the switch between two. On x86-64: a few instructions that save
// the callee-saved registers on the old stack and restore them from the new one. swapcontext, used
// elsewhere, also saves and restores the signal mask, a system call at every switch, which was most of
// the emulator's time (the emulated whole-model tests spent 40% of theirs in it).
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
extern "C" void simt_switch(void** save_sp, void* load_sp);
// In a COMDAT group, as the compiler emits an inline function: every file that includes this header
// defines it, and the linker keeps one.
asm(R"(
  .pushsection .text.simt_switch,"axG",@progbits,simt_switch,comdat
  .globl simt_switch
  .hidden simt_switch
  .type simt_switch, @function
simt_switch:
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
  .size simt_switch, .-simt_switch
  .popsection
)");
inline void switch_context(Context& from, const Context& to) { simt_switch(&from.sp, to.sp); }
// A context that, switched to, calls entry() on the given stack; entry must never return.
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  const auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t{15};
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                              // entry's return address: never used
  *--sp = reinterpret_cast<void*>(entry);       // simt_switch returns here, with rsp = top - 8 as after a call
  for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp, rbx, r12-r15
  c.sp = sp;
}
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context& from, const Context& to) { swapcontext(&from.uc, &to.uc); }
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

// One launched block: its fibers, the scheduler's context and the warps' shuffle exchange.
struct Block {
  static constexpr size_t kStack = 256 * 1024;  // per fiber; generous for sanitizer builds
  struct Fiber {
    Context ctx;
    std::unique_ptr<char[]> stack{new char[kStack]};
    Wait wait = Wait::None;
    unsigned shuffles = 0;  // shuffles done; their parity picks the exchange buffer
    // cp.async copies issued and not yet performed, and the ends of their committed groups in `copies`.
    struct AsyncCopy {
      void* dst;
      const void* src;
      unsigned bytes, src_bytes;
    };
    std::vector<AsyncCopy> copies;
    std::vector<size_t> groups;
  };
  const char* kernel = "";
  dim3 block_idx{0, 0, 0}, block_dim{1, 1, 1}, grid_dim{1, 1, 1};
  unsigned threads = 0;     // block_dim.x * .y * .z
  unsigned current = 0;     // the running thread's linear index: x + y * block_dim.x + z * block_dim.x * block_dim.y
  std::span<Fiber> fibers;  // the first `threads` of the thread's fiber pool
  // Per warp, two buffers of 32 lane slots: shuffle n writes buffer n % 2, so a lane that runs ahead into
  // shuffle n + 1 cannot overwrite a value that a slower lane of shuffle n has yet to read.
  std::vector<std::array<std::array<uint64_t, 32>, 2>> exchange;
  // The same for the tensor-core instructions, whose lanes exchange whole fragments.
  struct MmaLane {
    uint32_t a[4], b[2];
    float c[4];
  };
  std::vector<std::array<std::array<MmaLane, 32>, 2>> mma_exchange;
  std::vector<std::array<std::array<const uint16_t*, 32>, 2>> ldmatrix_exchange;  // the lanes' row addresses
  std::function<void()> body;
  std::exception_ptr error;
  Context scheduler;
#ifdef SIMT_ASAN
  const void* sched_stack = nullptr;
  size_t sched_size = 0;
#endif
};

// The fibers of this thread's launches, kept from one launch to the next: a block of 256 threads would
// otherwise map 64 MiB of fresh stacks and fault their pages in at every launch, which made a small
// model's training step on the emulator spend most of its time in the kernel.
inline std::vector<Block::Fiber>& fiber_pool() {
  static thread_local std::vector<Block::Fiber> pool;
  return pool;
}

inline Block*& active() {
  static Block* block = nullptr;
  return block;
}

inline Block& block() {
  Block* b = active();
  if (!b) throw Error("simt: a device built-in was used outside a launch");
  return *b;
}

inline dim3 thread_idx() {
  const Block& b = block();
  const unsigned t = b.current, bx = b.block_dim.x, by = b.block_dim.y;
  return {t % bx, t / bx % by, t / (bx * by)};
}
inline dim3 block_idx() { return block().block_idx; }
inline dim3 block_dim() { return block().block_dim; }
inline dim3 grid_dim() { return block().grid_dim; }

// Fiber -> scheduler. `exiting`: the fiber's stack is never returned to.
inline void to_scheduler(Block& b, bool exiting) {
  Block::Fiber& f = b.fibers[b.current];
#ifdef SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, b.sched_stack, b.sched_size);
  switch_context(f.ctx, b.scheduler);
  __sanitizer_finish_switch_fiber(fake, &b.sched_stack, &b.sched_size);
#else
  (void)exiting;
  switch_context(f.ctx, b.scheduler);
#endif
}

inline void fiber_main() {
  Block& b = *active();
#ifdef SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.sched_stack, &b.sched_size);
#endif
  try {
    b.body();
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  b.fibers[b.current].wait = Wait::Exited;
  to_scheduler(b, true);
}

inline void syncthreads() {
  Block& b = block();
  b.fibers[b.current].wait = Wait::Sync;
  to_scheduler(b, false);
}

template <class T>
T shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t));
  Block& b = block();
  if (mask != 0xffffffffu) throw Error(std::string("simt: ") + b.kernel + ": only full-warp shuffles are emulated");
  const unsigned t = b.current, lane = t % 32;
  Block::Fiber& f = b.fibers[t];
  auto& slots = b.exchange[t / 32][f.shuffles++ % 2];
  std::memcpy(&slots[lane], &v, sizeof(T));
  f.wait = Wait::Shuffle;
  to_scheduler(b, false);
  T r;
  std::memcpy(&r, &slots[(lane ^ static_cast<unsigned>(lane_mask)) % 32], sizeof(T));
  return r;
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {d}, {a}, {b}, {c}: D (16 x 8) = A (16 x 16) B (16 x 8)
// + C with bfloat16 A and B (two per 32-bit register, the lower index in the lower half) and float32 C
// and D, a warp-collective step like a shuffle: every lane waits until all 32 have arrived, then
// computes its part of D from all their fragments, products exact in float32 and summed over k in order,
// then C added. Each element is found in the lanes that hold it by the PTX ISA's fragment layout
// (mma.m16n8k16, floating point) inverted, with g = lane / 4 and t = lane % 4 of the holder:
//   A[r][k]: lane (r % 8) * 4 + (k % 8) / 2, element (k % 2) + 2 (r / 8) + 4 (k / 8) of a0..a7;
//   B[k][n]: lane n * 4 + (k % 8) / 2, element (k % 2) + 2 (k / 8) of b0..b3;
//   C[r][n], D[r][n]: lane (r % 8) * 4 + n / 2, element (n % 2) + 2 (r / 8) of c0..c3.
inline void mma_m16n8k16_bf16(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
  Block& b_ = block();
  const unsigned t = b_.current, lane = t % 32;
  Block::Fiber& f = b_.fibers[t];
  auto& slots = b_.mma_exchange[t / 32][f.shuffles++ % 2];
  Block::MmaLane& mine = slots[lane];
  std::memcpy(mine.a, a, sizeof mine.a);
  std::memcpy(mine.b, b, sizeof mine.b);
  std::memcpy(mine.c, c, sizeof mine.c);
  f.wait = Wait::Shuffle;
  to_scheduler(b_, false);
  auto half = [](uint32_t reg, unsigned e) {
    const uint32_t bits = (e % 2 ? reg >> 16 : reg) & 0xffffu;
    const uint32_t u = bits << 16;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
  };
  auto A = [&](unsigned r, unsigned k) {
    const unsigned e = k % 2 + 2 * (r / 8) + 4 * (k / 8);
    return half(slots[(r % 8) * 4 + (k % 8) / 2].a[e / 2], e);
  };
  auto B = [&](unsigned k, unsigned n) {
    const unsigned e = k % 2 + 2 * (k / 8);
    return half(slots[n * 4 + (k % 8) / 2].b[e / 2], e);
  };
  for (unsigned i = 0; i < 4; ++i) {
    const unsigned r = lane / 4 + 8 * (i / 2), n = 2 * (lane % 4) + i % 2;
    float sum = 0;
    for (unsigned k = 0; k < 16; ++k) sum += A(r, k) * B(k, n);
    d[i] = sum + slots[(r % 8) * 4 + n / 2].c[n % 2 + 2 * (r / 8)];
  }
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16 {r0, r1, r2, r3}, [row]: four 8 x 8 matrices of 16-bit
// elements from shared memory, a warp-collective step: lane l gives the address of row l % 8 of matrix
// l / 8 (16-byte aligned: 8 elements); when all 32 have arrived, every lane receives in r[m] two elements
// of matrix m, the first in the lower half: row lane / 4, columns 2 (lane % 4) and 2 (lane % 4) + 1; with
// .trans, column lane / 4 of rows 2 (lane % 4) and 2 (lane % 4) + 1 (the PTX ISA's ldmatrix fragment).
inline void ldmatrix_x4(uint32_t* r, const void* row, bool trans) {
  Block& b = block();
  const unsigned t = b.current, lane = t % 32;
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0)
    throw Error(std::string("simt: ") + b.kernel + ": ldmatrix row address of lane " + std::to_string(lane) +
                " is not 16-byte aligned");
  Block::Fiber& f = b.fibers[t];
  auto& slots = b.ldmatrix_exchange[t / 32][f.shuffles++ % 2];
  slots[lane] = static_cast<const uint16_t*>(row);
  f.wait = Wait::Shuffle;
  to_scheduler(b, false);
  const unsigned q = lane / 4, p = 2 * (lane % 4);
  for (unsigned m = 0; m < 4; ++m) {
    const uint32_t lo = trans ? slots[8 * m + p][q] : slots[8 * m + q][p];
    const uint32_t hi = trans ? slots[8 * m + p + 1][q] : slots[8 * m + q][p + 1];
    r[m] = lo | hi << 16;
  }
}

// cp.async.cg.shared.global [dst], [src], bytes, src_bytes: src_bytes of src, then zeros, to dst, done
// asynchronously. The emulator performs a copy as late as the PTX ISA allows: when cp_async_wait lets its
// group complete. A kernel that reads the destination before waiting for it reads what was there (the
// launch's 0xFF fill, NaN), so a missing wait shows in its results.
inline void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  Block& b = block();
  b.fibers[b.current].copies.push_back({dst, src, bytes, src_bytes});
}
// cp.async.commit_group: the copies issued since the last commit form one group.
inline void cp_async_commit() {
  Block::Fiber& f = block().fibers[block().current];
  f.groups.push_back(f.copies.size());
}
// cp.async.wait_group n: every committed group but the newest n completes.
inline void cp_async_wait(unsigned n) {
  Block::Fiber& f = block().fibers[block().current];
  if (f.groups.size() <= n) return;
  const size_t done = f.groups[f.groups.size() - 1 - n];
  for (size_t i = 0; i < done; ++i) {
    const Block::Fiber::AsyncCopy& c = f.copies[i];
    std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
  }
  f.copies.erase(f.copies.begin(), f.copies.begin() + static_cast<std::ptrdiff_t>(done));
  f.groups.erase(f.groups.begin(), f.groups.end() - n);
  for (size_t& e : f.groups) e -= done;
}

// A fresh thread at the kernel's entry. This and resume() are kept out of run_block: a switch returns
// twice, as setjmp does (where swapcontext is used), and the caller's locals should not live across it.
[[gnu::noinline]] inline void start(Block::Fiber& f) {
#ifdef SIMT_ASAN
  // A fiber exits by switching away, never returning from fiber_main: its frames' redzones stay
  // poisoned, and the next launch that reuses the stack would trip over them.
  __asan_unpoison_memory_region(f.stack.get(), Block::kStack);
#endif
  f.wait = Wait::None;
  f.shuffles = 0;
  f.copies.clear();
  f.groups.clear();
  make_context(f.ctx, f.stack.get(), Block::kStack, fiber_main);
}

// Scheduler -> fiber t, until it reaches a barrier or exits.
[[gnu::noinline]] inline void resume(Block& b, unsigned t) {
  b.current = t;
#ifdef SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, b.fibers[t].stack.get(), Block::kStack);
  switch_context(b.scheduler, b.fibers[t].ctx);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  switch_context(b.scheduler, b.fibers[t].ctx);
#endif
}

// Runs `body` as every thread of one block; returns when all have exited.
inline void run_block(Block& b) {
  const unsigned n = b.threads;
  for (unsigned t = 0; t < n; ++t) start(b.fibers[t]);
  for (;;) {
    for (unsigned t = 0; t < n; ++t)
      if (b.fibers[t].wait == Wait::None) resume(b, t);
    if (b.error) return;  // the other threads may wait forever for the one that threw
    unsigned exited = 0, syncing = 0;
    for (unsigned t = 0; t < n; ++t) {
      exited += b.fibers[t].wait == Wait::Exited;
      syncing += b.fibers[t].wait == Wait::Sync;
    }
    if (exited == n) return;
    if (syncing == n)
      for (auto& f : b.fibers) f.wait = Wait::None;
    for (unsigned w = 0; w < n / 32; ++w) {
      bool all = true;
      for (unsigned l = 0; l < 32; ++l) all = all && b.fibers[w * 32 + l].wait == Wait::Shuffle;
      if (all)
        for (unsigned l = 0; l < 32; ++l) b.fibers[w * 32 + l].wait = Wait::None;
    }
    bool ready = false;
    for (unsigned t = 0; t < n; ++t) ready = ready || b.fibers[t].wait == Wait::None;
    if (!ready) {
      // Name the first thread in each state: enough to see which barrier the others never reach.
      static const char* names[] = {"running", "at a shuffle", "at __syncthreads", "exited"};
      std::string what = std::string("simt: ") + b.kernel + ": block (" + std::to_string(b.block_idx.x) + ", " +
                         std::to_string(b.block_idx.y) + ", " + std::to_string(b.block_idx.z) + ")" +
                         " can never go on (a barrier in divergent code):";
      for (int s = 1; s < 4; ++s)
        for (unsigned t = 0; t < n; ++t)
          if (static_cast<int>(b.fibers[t].wait) == s) {
            what += std::string(" thread ") + std::to_string(t) + " " + names[s] + ";";
            break;
          }
      throw Error(what);
    }
  }
}

// A grid of `grid` blocks of `block` threads over the dynamic shared memory `smem` [capacity bytes], of
// which the launch asks for `smem_bytes`; `body` calls the kernel with its arguments. Blocks run in the
// order of their linear index (x fastest); warps are cut from the threads' linear index, as on a GPU.
inline void launch(const char* kernel, dim3 grid, dim3 block, size_t smem_bytes, unsigned char* smem, size_t capacity,
                   std::function<void()> body) {
  const std::string name = std::string("simt: ") + kernel;
  const uint64_t threads = uint64_t{block.x} * block.y * block.z, blocks = uint64_t{grid.x} * grid.y * grid.z;
  if (threads == 0 || threads > 1024 || threads % 32)
    throw Error(name + ": blocks of " + std::to_string(threads) + " threads (emulated: multiples of 32 up to 1024)");
  if (blocks == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    throw Error(name + ": a grid of (" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                std::to_string(grid.z) + ") blocks");
  if (smem_bytes > capacity)
    throw Error(name + ": asks for " + std::to_string(smem_bytes) +
                " bytes of dynamic shared memory, the emulator has " + std::to_string(capacity));
  Block b;
  b.kernel = kernel;
  b.block_dim = block;
  b.grid_dim = grid;
  b.threads = static_cast<unsigned>(threads);
  std::vector<Block::Fiber>& pool = fiber_pool();
  if (pool.size() < b.threads) pool.resize(b.threads);
  b.fibers = {pool.data(), b.threads};
  b.exchange.resize(b.threads / 32);
  b.mma_exchange.resize(b.threads / 32);
  b.ldmatrix_exchange.resize(b.threads / 32);
  b.body = std::move(body);
  active() = &b;
  try {
    for (uint64_t i = 0; i < blocks; ++i) {
      b.block_idx = {static_cast<unsigned>(i % grid.x), static_cast<unsigned>(i / grid.x % grid.y),
                     static_cast<unsigned>(i / (uint64_t{grid.x} * grid.y))};
      if (capacity) std::memset(smem, 0xFF, capacity);
      run_block(b);
      if (b.error) std::rethrow_exception(b.error);
      for (size_t j = smem_bytes; j < capacity; ++j)
        if (smem[j] != 0xFF)
          throw Error(name + ": block " + std::to_string(i) + " wrote shared memory byte " + std::to_string(j) +
                      ", past the " + std::to_string(smem_bytes) + " bytes of its launch");
    }
  } catch (...) {
    active() = nullptr;
    throw;
  }
  active() = nullptr;
}

// Launch extents: a count, or anything with x, y, z (the plans' Extent).
template <class E>
dim3 extent(const E& e) {
  if constexpr (std::is_integral_v<E>) return {static_cast<unsigned>(e), 1, 1};
  else return {static_cast<unsigned>(e.x), static_cast<unsigned>(e.y), static_cast<unsigned>(e.z)};
}

// The launcher of the kernels' launch plans (engine/cuda/*_kernels.cuh), on the emulator:
// launch(kernel, name, grid, block, smem_bytes, args...), with `smem` [capacity] the dynamic shared
// memory its kernels declare (null and 0 for kernels without any), and
// launch.copy(dst, src, bytes) for device-to-device copies.
struct Launch {
  unsigned char* smem;
  size_t capacity;
  template <class G, class B, class... P, class... A>
  void operator()(void (*kernel)(P...), const char* name, const G& grid, const B& block, size_t smem_bytes,
                  const A&... args) const {
    launch(name, extent(grid), extent(block), smem_bytes, smem, capacity, [&] { kernel(args...); });
  }
  void copy(void* dst, const void* src, size_t bytes) const {
    if (bytes && dst != src) std::memmove(dst, src, bytes);
  }
};

}  // namespace simt

// CUDA's atomics: a read-modify-write cannot be interleaved, as fibers switch only at barriers.
inline int atomicCAS(int* address, int compare, int value) {
  const int old = *address;
  if (old == compare) *address = value;
  return old;
}
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

// CUDA's keywords and built-ins, for device code compiled as host C++.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ thread_local
#define __align__(n) __attribute__((aligned(n)))
#define threadIdx (::simt::thread_idx())
#define blockIdx (::simt::block_idx())
#define blockDim (::simt::block_dim())
#define gridDim (::simt::grid_dim())
#define __syncthreads() ::simt::syncthreads()
#define __shfl_xor_sync(mask, v, lane_mask) ::simt::shfl_xor_sync(mask, v, lane_mask)
#define LASGRAD_SIMT 1  // engine/cuda/mma.cuh: the tensor-core instructions are the emulator's

// CUDA's 16-byte vector type (vector_types.h), for the kernels' 16-byte loads and stores.
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

// CUDA's integer min and max, found by unqualified calls in device code.
template <class A, class B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// The kernels' headers compiled here get their own inline namespace (see engine/cuda/kernel_common.cuh).
#define LASGRAD_CUDA_ABI emulator
