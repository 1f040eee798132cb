// read_until when memory runs out. This file replaces the global operator new, so it is a
// test program of its own (weft-oom-tests): on request, the next allocation of one chosen
// size throws std::bad_alloc, and every other allocation goes to malloc as usual.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "weft.hpp"

namespace {

/// 0: allocate normally. N: the next allocation of exactly N bytes, on any thread, fails.
std::atomic<std::size_t> g_fail_size{0};

}  // namespace

void* operator new(std::size_t size) {
  // relaxed (both): the test's store is sequenced before the read's first poll, which
  // co_await runs inline on the same thread; a later poll on another worker follows the
  // task's hand-off through a run queue (release/acquire). The exchange lets exactly one
  // allocation take the failure.
  std::size_t armed = g_fail_size.load(std::memory_order_relaxed);
  if (armed != 0 && armed == size &&
      g_fail_size.compare_exchange_strong(armed, 0, std::memory_order_relaxed,
                                          std::memory_order_relaxed)) {
    throw std::bad_alloc();
  }
  if (void* block = std::malloc(size == 0 ? 1 : size)) return block;
  throw std::bad_alloc();
}

// The other forms of plain new and delete, so that every one of them pairs malloc with free
// (a sanitizer's own nothrow new, freed here, would be a mismatch). The aligned forms keep
// their defaults, which pair with each other.
void* operator new[](std::size_t size) {
  return ::operator new(size);
}

void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(size);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, tag);
}

void operator delete(void* block) noexcept {
  std::free(block);
}

void operator delete[](void* block) noexcept {
  std::free(block);
}

void operator delete(void* block, std::size_t) noexcept {
  std::free(block);
}

void operator delete[](void* block, std::size_t) noexcept {
  std::free(block);
}

void operator delete(void* block, const std::nothrow_t&) noexcept {
  std::free(block);
}

void operator delete[](void* block, const std::nothrow_t&) noexcept {
  std::free(block);
}

using namespace weft;

namespace {

/// Reads two lines after a read_until that fails for want of `fail_size` bytes; yields
/// whether it failed with bad_alloc, then the two lines, separated by '|'.
Task<std::string> read_after_failure(TcpListener& listener, std::string sent,
                                     std::size_t fail_size) {
  auto client = co_await TcpStream::connect(listener.local_addr());
  auto accepted = co_await listener.accept();
  co_await client.write_all(sent);
  std::string seen;
  // relaxed: the read below is first polled on this thread (see operator new).
  g_fail_size.store(fail_size, std::memory_order_relaxed);
  try {
    (void)co_await accepted.stream.read_until('\n', 1024);
    seen = "no failure|";
  } catch (const std::bad_alloc&) {
    seen = "bad_alloc|";
  }
  // relaxed: as above; disarms the failure if no allocation took it.
  g_fail_size.store(0, std::memory_order_relaxed);
  // Bounded: bytes lost by the failure would leave these reads waiting for ever.
  using namespace std::chrono_literals;
  seen += (co_await timeout(10s, accepted.stream.read_until('\n', 1024))).bytes + "|";
  seen += (co_await timeout(10s, accepted.stream.read_until('\n', 1024))).bytes;
  co_return seen;
}

}  // namespace

TEST_SUITE("tcp_oom") {
  // A std::string of 100 characters allocates 101 bytes (GCC's libstdc++), a size nothing
  // else in these tests allocates while the read runs.
  const std::string k_long_line = std::string(99, 'x') + "\n";

  TEST_CASE("read_until keeps the bytes it read when the line cannot be allocated") {
    auto listener = TcpListener::bind("127.0.0.1:0");
    Runtime runtime(RuntimeOptions{.workers = 2});
    CHECK(runtime.block_on(read_after_failure(listener, k_long_line + "rest\n", 101)) ==
          "bad_alloc|" + k_long_line + "|rest\n");
  }

  TEST_CASE("read_until keeps the bytes it read when the bytes after the line cannot be kept") {
    auto listener = TcpListener::bind("127.0.0.1:0");
    Runtime runtime(RuntimeOptions{.workers = 2});
    // The short line needs no allocation; the 100 bytes after it do.
    const std::string leftover = std::string(99, 'y') + "\n";
    CHECK(runtime.block_on(read_after_failure(listener, "ab\n" + leftover, 101)) ==
          "bad_alloc|ab\n|" + leftover);
  }
}
