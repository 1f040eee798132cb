// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/task/frame_allocator.hpp; the comments here name each operation's partner.
#include "task/frame_allocator.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "weft/detail/tls_model.hpp"

namespace weft::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_FRAME_CACHE 0
#endif
#endif
#ifndef WEFT_FRAME_CACHE
#define WEFT_FRAME_CACHE 1
#endif

/// The size classes' step and the blocks' alignment: a pair of cache lines, the unit that
/// x86's adjacent-line prefetcher moves (see "Cached blocks" below).
constexpr std::size_t k_granule = 128;
constexpr std::size_t k_classes = 8;  // blocks up to 1 KiB are cached
constexpr std::uint32_t k_max_cached = 256;
constexpr std::size_t k_max_caches = 4096;  // caches are reused, so this bounds live threads

struct FreeBlock {
  FreeBlock* next;
  std::uint32_t size_class;
};

struct FrameCache {
  FreeBlock* local[k_classes] = {};
  std::uint32_t counts[k_classes] = {};
  std::uint16_t index = 0;
  /// Blocks other threads freed. Pushed with a release CAS, taken with an acquire exchange.
  alignas(64) std::atomic<FreeBlock*> remote{nullptr};
};

struct Registry {
  std::mutex mutex;
  std::vector<FrameCache*> orphans;  // caches of exited threads, for reuse
  FrameCache* caches[k_max_caches] = {};
  std::size_t count = 1;  // index 0 means "not from a cache"
};

Registry& registry() {
  static Registry* instance = new Registry();  // never destroyed: remote frees may come late
  return *instance;
}

WEFT_TLS thread_local FrameCache* t_cache = nullptr;

/// Hands the thread's cache to the registry when the thread exits.
struct CacheReleaser {
  ~CacheReleaser() {
    if (t_cache == nullptr) return;
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    reg.orphans.push_back(std::exchange(t_cache, nullptr));
  }
};
WEFT_TLS thread_local CacheReleaser t_releaser;

FrameCache* this_thread_cache() {
  if (t_cache != nullptr) return t_cache;
  (void)&t_releaser;  // odr-use, so the thread registers its releaser
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (!reg.orphans.empty()) {
    t_cache = reg.orphans.back();
    reg.orphans.pop_back();
  } else if (reg.count < k_max_caches) {
    auto* cache = new FrameCache();
    cache->index = static_cast<std::uint16_t>(reg.count);
    reg.caches[reg.count++] = cache;
    t_cache = cache;
  }
  return t_cache;  // null when too many threads: they use the system allocator
}

// Cached blocks start on a 128-byte boundary and are whole multiples of it, so no two tasks
// share a cache line, nor a pair of lines. From malloc they would (it packs 16-byte-aligned
// chunks): two workers polling neighbouring tasks then wrote to the same line on every poll,
// and yield_many with two workers took 44-50 ns a yield. Aligned to 64 bytes it took 12-22 ns
// with metrics off but 22-32 ns with them on, because the prefetcher still pulled a
// neighbour's line along with each task's; aligned to 128, 14.6 ns off and 14.8 on (as Tokio
// aligns its task cells to 128 bytes on x86-64). Aligned operator new (memalign) cost about
// 400 instructions more per block than malloc, which spawn_many pays for every block beyond
// what the cache keeps, so the block is placed by hand in a malloc chunk one granule larger:
// on the first boundary after the chunk's start, with the distance in the byte in front of it.

void* allocate_aligned(std::size_t bytes) {
  auto* chunk = static_cast<unsigned char*>(::operator new(bytes + k_granule));
  const std::size_t offset = k_granule - reinterpret_cast<std::uintptr_t>(chunk) % k_granule;
  unsigned char* block = chunk + offset;  // offset is 1..128, so block[-1] is in the chunk
  block[-1] = static_cast<unsigned char>(offset);
  return block;
}

void free_aligned(void* memory) noexcept {
  auto* block = static_cast<unsigned char*>(memory);
  ::operator delete(block - block[-1]);
}

void push_local(FrameCache& cache, void* memory, std::size_t size_class) noexcept {
  if (cache.counts[size_class] >= k_max_cached) {
    free_aligned(memory);
    return;
  }
  cache.local[size_class] =
      new (memory) FreeBlock{cache.local[size_class], static_cast<std::uint32_t>(size_class)};
  ++cache.counts[size_class];
}

/// Moves every remotely freed block into the local lists.
void collect_remote(FrameCache& cache) noexcept {
  // acquire: pairs with the release CAS in deallocate_block, so each block's links are seen.
  FreeBlock* block = cache.remote.exchange(nullptr, std::memory_order_acquire);
  while (block != nullptr) {
    FreeBlock* next = block->next;
    push_local(cache, block, block->size_class);
    block = next;
  }
}

}  // namespace

bool frame_cache_enabled() noexcept {
  return WEFT_FRAME_CACHE != 0;
}

FrameBlock allocate_block(std::size_t bytes) {
  const std::size_t size_class = (bytes - 1) / k_granule;
  if (WEFT_FRAME_CACHE && size_class < k_classes) {
    if (FrameCache* cache = this_thread_cache()) {
      if (cache->local[size_class] == nullptr &&
          cache->remote.load(std::memory_order_relaxed) != nullptr) {  // relaxed: a hint
        collect_remote(*cache);
      }
      if (FreeBlock* block = cache->local[size_class]) {
        cache->local[size_class] = block->next;
        --cache->counts[size_class];
        return {block, cache->index};
      }
      return {allocate_aligned((size_class + 1) * k_granule), cache->index};
    }
  }
  return {::operator new(bytes), 0};
}

void deallocate_block(void* memory, std::size_t bytes, std::uint16_t owner) noexcept {
  if (owner == 0) {
    ::operator delete(memory);
    return;
  }
  const std::size_t size_class = (bytes - 1) / k_granule;
  if (t_cache != nullptr && t_cache->index == owner) {
    push_local(*t_cache, memory, size_class);
    return;
  }
  FrameCache& cache = *registry().caches[owner];
  auto* block = new (memory) FreeBlock{nullptr, static_cast<std::uint32_t>(size_class)};
  // relaxed: only the head's value is needed here; the CAS below publishes.
  FreeBlock* head = cache.remote.load(std::memory_order_relaxed);
  do {
    block->next = head;
    // release: publishes the block's links to the owner (pairs with collect_remote's acquire).
  } while (!cache.remote.compare_exchange_weak(head, block, std::memory_order_release,
                                               std::memory_order_relaxed));
}

}  // namespace weft::detail
