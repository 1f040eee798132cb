#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "task/frame_allocator.hpp"

using namespace weft::detail;

TEST_SUITE("frame_allocator") {
  TEST_CASE("a block freed on its own thread is reused by the next allocation of its size") {
    FrameBlock first = allocate_block(200);
    deallocate_block(first.memory, 200, first.owner);
    FrameBlock second = allocate_block(250);  // the same 128-byte size class (129..256)
    if (frame_cache_enabled()) {
      CHECK(second.memory == first.memory);
      CHECK(second.owner == first.owner);
      CHECK(first.owner != 0);
    } else {
      CHECK(second.owner == 0);
    }
    deallocate_block(second.memory, 250, second.owner);
  }

  TEST_CASE("a block freed on another thread returns to the cache that allocated it") {
    FrameBlock block = allocate_block(300);
    std::thread other([&] { deallocate_block(block.memory, 300, block.owner); });
    other.join();
    // The local list of this size holds at most 256 blocks, so within 257 allocations it runs
    // dry and the remotely freed block comes back.
    std::vector<FrameBlock> taken;
    bool returned = false;
    for (int i = 0; i < 257 && !returned; ++i) {
      taken.push_back(allocate_block(300));
      returned = taken.back().memory == block.memory;
    }
    CHECK(returned == frame_cache_enabled());
    for (auto& b : taken)
      deallocate_block(b.memory, 300, b.owner);
  }

  TEST_CASE("cached blocks never share a pair of cache lines, so neighbouring tasks do not") {
    if (!frame_cache_enabled()) return;
    // More blocks of one size than its local list holds (256), so most come fresh from the
    // system, where malloc would pack them 16 bytes apart.
    constexpr std::size_t k_size = 200;
    std::vector<FrameBlock> blocks;
    for (int i = 0; i < 300; ++i)
      blocks.push_back(allocate_block(k_size));
    for (const FrameBlock& block : blocks)
      CHECK(reinterpret_cast<std::uintptr_t>(block.memory) % 128 == 0);
    std::sort(blocks.begin(), blocks.end(), [](const FrameBlock& a, const FrameBlock& b) {
      return std::less<>()(a.memory, b.memory);
    });
    for (std::size_t i = 1; i < blocks.size(); ++i) {
      // The next block starts past this one's last line pair.
      CHECK(static_cast<char*>(blocks[i].memory) - static_cast<char*>(blocks[i - 1].memory) >= 256);
    }
    for (const FrameBlock& block : blocks)
      deallocate_block(block.memory, k_size, block.owner);
  }

  TEST_CASE("blocks larger than the cached sizes come from the system allocator") {
    FrameBlock big = allocate_block(64 * 1024);
    CHECK(big.owner == 0);
    deallocate_block(big.memory, 64 * 1024, big.owner);
  }

  TEST_CASE("a thread that exits leaves its cache to the next new thread") {
    if (!frame_cache_enabled()) return;
    FrameBlock first{};
    std::thread one([&] {
      first = allocate_block(100);
      deallocate_block(first.memory, 100, first.owner);
    });
    one.join();
    FrameBlock second{};
    std::thread two([&] {
      second = allocate_block(100);
      deallocate_block(second.memory, 100, second.owner);
    });
    two.join();
    CHECK(second.owner == first.owner);
    CHECK(second.memory == first.memory);
  }

  TEST_CASE("many threads freeing into one cache lose no block") {
    constexpr int k_blocks = 4000;
    std::vector<FrameBlock> blocks;
    for (int i = 0; i < k_blocks; ++i)
      blocks.push_back(allocate_block(128));
    std::vector<std::thread> freers;
    for (int t = 0; t < 4; ++t) {
      freers.emplace_back([&, t] {
        for (int i = t; i < k_blocks; i += 4)
          deallocate_block(blocks[i].memory, 128, blocks[i].owner);
      });
    }
    for (auto& thread : freers)
      thread.join();
    // Every block is reusable (or was released to the system): allocating them all again and
    // writing to each is safe under ASan and TSan, and distinct addresses come back.
    std::vector<FrameBlock> again;
    for (int i = 0; i < k_blocks; ++i) {
      again.push_back(allocate_block(128));
      static_cast<char*>(again.back().memory)[127] = 1;
    }
    std::sort(again.begin(), again.end(),
              [](const FrameBlock& a, const FrameBlock& b) { return a.memory < b.memory; });
    CHECK(std::adjacent_find(again.begin(), again.end(),
                             [](const FrameBlock& a, const FrameBlock& b) {
                               return a.memory == b.memory;
                             }) == again.end());
    for (auto& block : again)
      deallocate_block(block.memory, 128, block.owner);
  }
}
