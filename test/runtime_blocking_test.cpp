// weft::spawn_blocking: results and exceptions, workers that keep running, back-pressure when
// the pool is saturated, and shutdown with a call still running.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using namespace std::chrono_literals;
using weft::test::poll_by_hand;

namespace {

/// Blocks pool threads until opened; the wait is bounded so a failing test cannot hang.
class ThreadGate {
 public:
  void wait() {
    std::unique_lock lock(m_mutex);
    m_entered += 1;
    m_changed.notify_all();
    m_changed.wait_for(lock, 20s, [this] { return m_open; });
  }
  /// Waits (bounded) until `count` threads are inside wait().
  bool wait_for_entered(int count) {
    std::unique_lock lock(m_mutex);
    return m_changed.wait_for(lock, 20s, [&] { return m_entered >= count; });
  }
  void open() {
    std::lock_guard lock(m_mutex);
    m_open = true;
    m_changed.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  int m_entered = 0;
  bool m_open = false;
};

Task<void> set_true(std::atomic<bool>& flag) {
  flag.store(true, std::memory_order_release);  // release: pairs with the waiter's acquire load
  co_return;
}

}  // namespace

TEST_SUITE("blocking") {
  TEST_CASE("a blocking call runs off the workers and its value comes back") {
    std::mutex ids_mutex;
    std::set<std::thread::id> worker_ids;
    Runtime runtime(RuntimeOptions{.workers = 2, .on_thread_start = [&] {
                                     std::lock_guard lock(ids_mutex);
                                     worker_ids.insert(std::this_thread::get_id());
                                   }});
    auto body = []() -> Task<std::thread::id> {
      co_return co_await spawn_blocking([] { return std::this_thread::get_id(); });
    };
    const std::thread::id ran_on = runtime.block_on(body());
    // The start hooks run on the workers' own threads, perhaps after the call finished.
    REQUIRE(weft::test::eventually([&] {
      std::lock_guard lock(ids_mutex);
      return worker_ids.size() == 2;
    }));
    std::lock_guard lock(ids_mutex);
    CHECK(worker_ids.count(ran_on) == 0);
  }

  TEST_CASE("an exception thrown by a blocking call is rethrown at co_await") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    auto body = []() -> Task<void> {
      co_await spawn_blocking([]() -> int { throw std::runtime_error("disk on fire"); });
    };
    CHECK_THROWS_WITH_AS(runtime.block_on(body()), "disk on fire", std::runtime_error);
  }

  TEST_CASE("a worker keeps running tasks while a blocking call waits on one of them") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    // The call waits for a flag set by a task spawned after it, on the only worker.
    std::atomic<bool> task_ran{false};
    auto scenario = [&task_ran]() -> Task<bool> {
      auto call = spawn_blocking([&task_ran] {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        // acquire: pairs with set_true's release store.
        while (!task_ran.load(std::memory_order_acquire) &&
               std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
        return task_ran.load(std::memory_order_acquire);
      });
      co_await spawn(set_true(task_ran));
      co_return co_await call;
    };
    CHECK(runtime.block_on(scenario()));
  }

  TEST_CASE("a saturated pool makes spawn_blocking wait and try_spawn_blocking say so") {
    ThreadGate gate;  // before the runtime, which waits for the calls that use it
    Runtime runtime(
        RuntimeOptions{.workers = 1, .max_blocking_threads = 1, .blocking_queue_capacity = 0});
    auto busy = runtime.spawn_blocking([&gate] { gate.wait(); });
    REQUIRE(gate.wait_for_entered(1));
    CHECK_FALSE(runtime.try_spawn_blocking([] { return 1; }).has_value());
    auto waiting = runtime.spawn_blocking([] { return 2; });
    CHECK(poll_by_hand(waiting).is_pending());
    gate.open();
    detail::block_on_future(busy);
    CHECK(detail::block_on_future(waiting) == 2);
  }

  TEST_CASE("shutdown drops queued calls and reports the one still running at its deadline") {
    std::vector<BlockingJobReport> reports;
    ThreadGate gate;
    std::uint_least32_t spawned_line = 0;
    std::optional<BlockingFuture<void>> running;
    std::optional<BlockingFuture<int>> queued;
    {
      Runtime runtime(RuntimeOptions{
          .workers = 1,
          .max_blocking_threads = 1,
          .blocking_queue_capacity = 1,
          .blocking_shutdown_timeout = 50ms,
          .on_blocking_shutdown_timeout =
              [&reports](const std::vector<BlockingJobReport>& jobs) { reports = jobs; },
      });
      spawned_line = __LINE__ + 1;
      running.emplace(runtime.spawn_blocking([&gate] { gate.wait(); }));
      REQUIRE(gate.wait_for_entered(1));
      queued.emplace(runtime.spawn_blocking([] { return 3; }));
      runtime.shutdown();
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].spawned_at.line() == spawned_line);
    CHECK(reports[0].running_for >= 50ms);
    CHECK_THROWS_AS((void)poll_by_hand(*queued), TaskCancelled);
    gate.open();
    detail::block_on_future(*running);  // the call finishes in the background and reports
  }

  TEST_CASE("a blocking call that shuts its runtime down does not wait for itself") {
    std::optional<std::vector<BlockingJobReport>> reports;
    std::optional<Runtime> runtime;
    runtime.emplace(RuntimeOptions{
        .workers = 1,
        .blocking_shutdown_timeout = 2s,
        .on_blocking_shutdown_timeout =
            [&reports](const std::vector<BlockingJobReport>& jobs) { reports = jobs; },
    });
    auto call = runtime->spawn_blocking([&runtime] {
      runtime->shutdown();
      return 7;
    });
    CHECK(detail::block_on_future(call) == 7);
    // Waiting for itself, shutdown would have sat out the deadline and reported this call.
    CHECK((!reports || reports->empty()));
    runtime.reset();
  }

  TEST_CASE("two calls submitted while one thread idles get a thread each") {
    ThreadGate gate;  // before the runtime, which waits for the calls that use it
    Runtime runtime(
        RuntimeOptions{.workers = 1, .max_blocking_threads = 2, .blocking_queue_capacity = 0});
    auto warm_up = runtime.spawn_blocking([] {});
    detail::block_on_future(warm_up);  // leaves one idle thread
    // The result comes back before the thread gives its slot back and goes idle; until then
    // the second call below would find the pool full and wait for its first poll.
    REQUIRE(weft::test::eventually([&] { return runtime.metrics().blocking_idle_threads == 1; }));
    auto first = runtime.spawn_blocking([&gate] { gate.wait(); });
    auto second = runtime.spawn_blocking([&gate] { gate.wait(); });
    CHECK(gate.wait_for_entered(2));  // both run at once, not one after the other
    gate.open();
    detail::block_on_future(first);
    detail::block_on_future(second);
  }

  TEST_CASE("spawn_blocking off a worker is refused with a clear error") {
    CHECK_THROWS_AS((void)spawn_blocking([] { return 1; }), std::logic_error);
  }

  TEST_CASE("a blocking call whose future was dropped still finishes and frees its slot") {
    ThreadGate gate;  // before the runtime, which waits for the calls that use it
    Runtime runtime(
        RuntimeOptions{.workers = 1, .max_blocking_threads = 1, .blocking_queue_capacity = 0});
    std::atomic<bool> finished{false};
    {
      auto dropped = runtime.spawn_blocking([&] {
        gate.wait();
        finished.store(true, std::memory_order_release);  // release: pairs with the acquire below
      });
      REQUIRE(gate.wait_for_entered(1));
    }
    gate.open();
    // acquire: pairs with the blocking call's release store.
    CHECK(weft::test::eventually([&] { return finished.load(std::memory_order_acquire); }));
    CHECK(weft::test::eventually(
        [&] { return runtime.try_spawn_blocking([] { return 0; }).has_value(); }));
  }
}
