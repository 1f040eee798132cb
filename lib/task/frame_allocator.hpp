// Coroutine frames (with their task headers) come from per-thread caches with remote frees.
//
// Why: in spawn-heavy work a task is allocated on one worker and freed on another. glibc's
// per-thread cache keeps only 7 blocks per size, so most such frees lock the allocating
// arena, and the two workers then contend on it (measured: futex waits under _int_free and
// malloc in weft-bench spawn_many_local). Here a block freed on another thread goes back to
// the cache that allocated it through a lock-free list, the way mimalloc returns remote frees.
//
// Invariants
// - A FrameCache's local lists belong to the one thread that uses it; its `remote` list takes
//   pushes from any thread, and only the owner takes from it (all at once, by exchange).
// - Caches are never destroyed: a thread that exits leaves its cache to the next new thread,
//   so a remote free never reaches freed memory. Their blocks stay reachable (no leak report).
// - A block records the index of the cache that allocated it (0: plain operator new).
// - Local lists hold at most k_max_cached blocks per size class; the rest go to the system.
// - Cached blocks are whole multiples of 128 bytes (a pair of cache lines) and start on such a
//   boundary (placed by hand in a malloc chunk 128 bytes larger; see allocate_aligned): tasks
//   never share a line, nor a pair that the adjacent-line prefetcher moves together.
// - Under AddressSanitizer every block comes from plain operator new, so ASan sees each free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

struct FrameBlock {
  void* memory;
  std::uint16_t owner;  ///< the cache to return the block to; 0 for the system allocator
};

/// False in AddressSanitizer builds, where every block comes from the system allocator.
[[nodiscard]] bool frame_cache_enabled() noexcept;

/// Any thread. At least `bytes` bytes, aligned for any fundamental type. Cached sizes (up to
/// 1 KiB) come in multiples of 128 bytes, aligned to 128, so no two tasks share a line.
FrameBlock allocate_block(std::size_t bytes);
/// Any thread; `bytes` and `owner` as given by allocate_block.
void deallocate_block(void* memory, std::size_t bytes, std::uint16_t owner) noexcept;

}  // namespace weft::detail
