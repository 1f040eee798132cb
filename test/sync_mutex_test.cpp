// weft::Mutex<T>: mutual exclusion, FIFO hand-off, and cancelled locks that block nobody.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using weft::test::poll_by_hand;
using weft::test::poll_with;
using weft::test::WakeCounter;

TEST_SUITE("mutex") {
  TEST_CASE("tasks on several workers never lose an increment") {
    constexpr int k_tasks = 8;
    constexpr int k_increments = 5'000;
    Runtime runtime(RuntimeOptions{.workers = 2});
    Mutex<long> counter(0);
    auto body = [&counter]() -> Task<void> {
      for (int i = 0; i < k_increments; ++i) {
        auto guard = co_await counter.lock();
        const long before = *guard;
        if (i % 64 == 0) co_await yield_now();  // hold it across a suspension now and then
        *guard = before + 1;
      }
    };
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < k_tasks; ++i)
      handles.push_back(runtime.spawn(body()));
    for (auto& handle : handles)
      handle.join();
    CHECK(counter.get_unshared() == long{k_tasks} * k_increments);
  }

  TEST_CASE("the lock passes to waiters in the order they arrived") {
    Mutex<std::vector<int>> order;
    std::optional<MutexGuard<std::vector<int>>> held = order.try_lock();
    REQUIRE(held);
    auto first = order.lock();
    auto second = order.lock();
    auto third = order.lock();
    REQUIRE(poll_by_hand(first).is_pending());
    REQUIRE(poll_by_hand(second).is_pending());
    REQUIRE(poll_by_hand(third).is_pending());
    CHECK_FALSE(order.try_lock());

    held.reset();
    CHECK(poll_by_hand(third).is_pending());
    CHECK(poll_by_hand(second).is_pending());
    {
      auto guard = poll_by_hand(first).take();
      guard->push_back(1);
    }
    CHECK(poll_by_hand(third).is_pending());
    {
      auto guard = poll_by_hand(second).take();
      guard->push_back(2);
    }
    {
      auto guard = poll_by_hand(third).take();
      guard->push_back(3);
    }
    CHECK(order.get_unshared() == std::vector<int>{1, 2, 3});
    CHECK(order.try_lock());
  }

  TEST_CASE("a lock destroyed after the mutex was handed to it passes the mutex on") {
    Mutex<int> mutex(0);
    std::optional<MutexGuard<int>> held = mutex.try_lock();
    std::optional<LockFuture<int>> abandoned(mutex.lock());
    WakeCounter next_wakes;
    auto next = mutex.lock();
    REQUIRE(poll_by_hand(*abandoned).is_pending());
    REQUIRE(poll_with(next, next_wakes).is_pending());
    held.reset();       // handed to `abandoned`, which never looks
    abandoned.reset();  // so it goes on to `next`
    CHECK(next_wakes.wakes() == 1);
    CHECK(poll_by_hand(next).is_ready());
  }

  TEST_CASE("a lock cancelled by timeout blocks nobody") {
    using namespace std::chrono_literals;
    Runtime runtime(RuntimeOptions{.workers = 2});
    Mutex<int> mutex(0);
    auto scenario = [&mutex]() -> Task<bool> {
      auto held = co_await mutex.lock();
      bool timed_out = false;
      try {
        (void)co_await timeout(1ms, mutex.lock());
      } catch (const TimedOut&) {
        timed_out = true;
      }
      { auto released = std::move(held); }
      auto again = mutex.try_lock();  // free, with nobody left queued
      co_return timed_out&& again.has_value();
    };
    CHECK(runtime.block_on(scenario()));
  }
}
