// The CUDA backend's caching allocator policy (engine/cuda/device_allocator.h) over a fake device with a
// fixed capacity, on the host: bucket sizes, reuse across training steps, the out-of-memory retry that
// waits for queued work and hands the cache back, the error when even that is not enough, and the
// statistics the benchmarks report. CudaAllocator is the same template over cudaMalloc.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "engine/cuda/device_allocator.h"

using namespace lasgrad;

namespace {

// What the fake device saw; shared, since the allocator holds its Memory by value.
struct FakeDevice {
  size_t capacity = 0, used = 0;
  int mallocs = 0, frees = 0, syncs = 0;
  int frees_before_first_sync = -1;  // how many frees had happened when synchronize() was first called
  std::map<void*, size_t> live;
};

struct FakeMemory {
  std::shared_ptr<FakeDevice> dev;
  void* malloc(size_t bytes) {
    if (dev->used + bytes > dev->capacity) return nullptr;
    void* p = std::malloc(bytes);
    dev->used += bytes;
    dev->live[p] = bytes;
    ++dev->mallocs;
    return p;
  }
  void free(void* p) {
    dev->used -= dev->live.at(p);
    dev->live.erase(p);
    std::free(p);
    ++dev->frees;
  }
  void synchronize() {
    if (dev->syncs++ == 0) dev->frees_before_first_sync = dev->frees;
  }
  const char* name() const { return "fakeMalloc"; }
};

using Allocator = DeviceAllocator<FakeMemory>;

std::shared_ptr<FakeDevice> device_of(size_t capacity) {
  auto d = std::make_shared<FakeDevice>();
  d->capacity = capacity;
  return d;
}

}  // namespace

TEST_CASE("device allocator buckets: 512-byte steps to 4 KiB, then eight per power of two") {
  CHECK(Allocator::bucket_size(0) == 512);
  CHECK(Allocator::bucket_size(1) == 512);
  CHECK(Allocator::bucket_size(512) == 512);
  CHECK(Allocator::bucket_size(513) == 1024);
  CHECK(Allocator::bucket_size(4096) == 4096);
  CHECK(Allocator::bucket_size(4097) == 4608);    // 4096 + 4096/8
  CHECK(Allocator::bucket_size(10000) == 10240);  // steps of 8192/8 = 1024
  CHECK(Allocator::bucket_size(size_t{1} << 20) == size_t{1} << 20);
  CHECK(Allocator::bucket_size((size_t{1} << 20) + 1) == (size_t{1} << 20) + (size_t{1} << 17));
  size_t last = 0;
  for (size_t b = 1; b < (size_t{1} << 22); b = b * 3 / 2 + 7) {
    const size_t s = Allocator::bucket_size(b);
    INFO("bytes " << b << " bucket " << s);
    CHECK(s >= b);
    CHECK(s >= last);  // monotone: a larger request never gets a smaller block
    if (b > 4096) CHECK(s <= b + b / 8);
    last = s;
  }
}

TEST_CASE("device allocator: the second training step reuses every block of the first") {
  auto dev = device_of(size_t{1} << 30);
  Allocator a{FakeMemory{dev}};
  // One "step": activations allocated in forward order, freed in reverse; some sizes repeat.
  const std::vector<size_t> sizes = {4000, 123456, 4000, 1 << 20, 77, 123456, 65536, 3 << 20};
  auto step = [&] {
    std::vector<void*> blocks;
    std::set<void*> distinct;
    for (size_t s : sizes) {
      blocks.push_back(a.allocate(s));
      distinct.insert(blocks.back());
    }
    CHECK(distinct.size() == sizes.size());  // live blocks are never handed out twice
    for (size_t i = sizes.size(); i-- > 0;) a.deallocate(blocks[i], sizes[i]);
  };
  size_t buckets = 0;
  for (size_t s : sizes) buckets += Allocator::bucket_size(s);

  step();
  CHECK(dev->mallocs == int(sizes.size()));
  CHECK(a.stats().misses == sizes.size());
  CHECK(a.stats().peak_bytes == buckets);
  CHECK(a.stats().in_use_bytes == 0);
  CHECK(a.stats().cached_bytes == buckets);
  CHECK(a.stats().reserved_bytes == buckets);
  CHECK(dev->used == buckets);

  step();
  step();
  CHECK(dev->mallocs == int(sizes.size()));  // no device allocation after the first step
  CHECK(a.stats().hits == 2 * sizes.size());
  CHECK(a.stats().reserved_bytes == buckets);

  a.reset_peak();
  CHECK(a.stats().peak_bytes == 0);
  void* p = a.allocate(5000);
  CHECK(a.stats().peak_bytes == Allocator::bucket_size(5000));
  a.deallocate(p, 5000);

  a.release_cached();
  CHECK(dev->syncs == 1);
  CHECK(dev->frees_before_first_sync == 0);  // queued work finished before any block went back
  CHECK(dev->live.empty());
  CHECK(a.stats().cached_bytes == 0);
  CHECK(a.stats().reserved_bytes == 0);
}

TEST_CASE("device allocator: out of memory, it waits, hands the cache back and retries once") {
  auto dev = device_of(10 * 1024);
  Allocator a{FakeMemory{dev}};
  void* big = a.allocate(8 * 1024);
  a.deallocate(big, 8 * 1024);     // cached: the device is full of a free block
  void* p = a.allocate(6 * 1024);  // another bucket: 8 + 6 KiB > 10 KiB
  CHECK(p != nullptr);
  CHECK(dev->syncs == 1);
  CHECK(dev->frees_before_first_sync == 0);  // the wait came before the cached block was freed
  CHECK(dev->frees == 1);
  CHECK(dev->mallocs == 2);
  CHECK(a.stats().cached_bytes == 0);
  CHECK(a.stats().reserved_bytes == 6 * 1024);
  CHECK(a.stats().in_use_bytes == 6 * 1024);

  // Nothing cached and no room: an error naming the request and the usage; the state is unchanged.
  CHECK_THROWS_WITH_AS(
      a.allocate(8 * 1024),
      doctest::Contains("fakeMalloc(8192 bytes) found no free device memory; lasgrad holds 6144 bytes"), Error);
  CHECK(dev->syncs == 1);  // no cache to hand back: no wait
  CHECK(a.stats().in_use_bytes == 6 * 1024);
  CHECK(a.stats().reserved_bytes == 6 * 1024);
  a.deallocate(p, 6 * 1024);
  CHECK(a.allocate(6 * 1024) == p);  // still usable, and the freed block comes back
  a.deallocate(p, 6 * 1024);
  a.release_cached();
  CHECK(dev->live.empty());
}
