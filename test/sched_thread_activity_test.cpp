// Reading how a thread spends its time: its CPU clock advances only while it runs, and its
// state tells asleep from running; a thread that has exited, or an unknown one, reads empty.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sched/thread_activity.hpp"
#include "support.hpp"

using namespace weft::detail;
using namespace std::chrono_literals;

TEST_SUITE("thread_activity") {
  TEST_CASE("a thread that computes reads running, and its CPU time grows") {
    const ThreadHandle self = current_thread_handle();
    REQUIRE(self.tid != 0);
    CHECK(thread_is_asleep(self) == false);  // it is running the read itself
    const auto start = thread_cpu_time(self);
    REQUIRE(start.has_value());
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    auto now = start;
    while (now && *now - *start < 5ms && std::chrono::steady_clock::now() < deadline) {
      now = thread_cpu_time(self);
    }
    REQUIRE(now.has_value());
    CHECK(*now - *start >= 5ms);
  }

  TEST_CASE("a thread blocked on a condition variable reads asleep, and its CPU time stands") {
    std::mutex mutex;
    std::condition_variable released;
    bool release = false;
    std::atomic<ThreadHandle> handle{};
    std::thread sleeper([&] {
      // release: pairs with the acquire loads below.
      handle.store(current_thread_handle(), std::memory_order_release);
      std::unique_lock lock(mutex);
      released.wait(lock, [&] { return release; });
    });
    // acquire: pairs with the sleeper's release store.
    REQUIRE(
        weft::test::eventually([&] { return handle.load(std::memory_order_acquire).tid != 0; }));
    const ThreadHandle thread = handle.load(std::memory_order_acquire);
    CHECK(weft::test::eventually([&] { return thread_is_asleep(thread) == true; }));
    const auto before = thread_cpu_time(thread);
    // Time for the clock to move if the thread ran: the interval measured, not a wait for it.
    std::this_thread::sleep_for(50ms);
    const auto after = thread_cpu_time(thread);
    CHECK(thread_is_asleep(thread) == true);
    {
      std::lock_guard lock(mutex);
      release = true;
    }
    released.notify_one();
    sleeper.join();
    REQUIRE(before.has_value());
    REQUIRE(after.has_value());
    CHECK(*after - *before < 5ms);
  }

  TEST_CASE("a thread that has exited, or an unknown one, reads as not known") {
    ThreadHandle exited;
    std::thread([&] { exited = current_thread_handle(); }).join();
    REQUIRE(exited.tid != 0);
    CHECK_FALSE(thread_is_asleep(exited).has_value());
    CHECK_FALSE(thread_cpu_time(exited).has_value());
    CHECK_FALSE(thread_is_asleep(ThreadHandle{}).has_value());
    CHECK_FALSE(thread_cpu_time(ThreadHandle{}).has_value());
  }
}
