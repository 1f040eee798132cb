// Runtime::metrics(): the counters match a known workload, and the histograms fill.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using namespace std::chrono_literals;

namespace {

std::uint64_t total_polls(const RuntimeMetrics& metrics) {
  std::uint64_t polls = 0;
  for (const WorkerMetrics& worker : metrics.workers)
    polls += worker.polls;
  return polls;
}

Task<void> yield_times(int yields) {
  for (int i = 0; i < yields; ++i)
    co_await yield_now();
}

/// Runs one task that yields `yields` times on `runtime`, spawned and joined from a fresh
/// thread (whose one wake is sampled only at an interval of 1), and returns the runtime's
/// metrics after the join.
RuntimeMetrics metrics_after_yields(Runtime& runtime, int yields) {
  std::thread([&] { runtime.spawn(yield_times(yields)).join(); }).join();
  return runtime.metrics();
}

}  // namespace

TEST_SUITE("metrics") {
  TEST_CASE("each poll of each task is counted once") {
    constexpr int k_tasks = 50;
    constexpr int k_yields = 9;
    Runtime runtime(RuntimeOptions{.workers = 2});
    const RuntimeMetrics before = runtime.metrics();
    REQUIRE(before.workers.size() == 2);
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < k_tasks; ++i)
      handles.push_back(runtime.spawn(yield_times(k_yields)));
    for (auto& handle : handles)
      handle.join();  // from this thread: no task polls for the join
    const RuntimeMetrics after = runtime.metrics();
    CHECK(total_polls(after) - total_polls(before) == k_tasks * (k_yields + 1));
    CHECK(after.tasks_alive == 0);
    CHECK(after.poll_duration.total() >= 1);  // sampled: a worker's first schedule is stamped
    CHECK(after.poll_duration.total() <= total_polls(after));
    CHECK(after.scheduling_delay.total() >= 1);
    for (const WorkerMetrics& worker : after.workers)
      CHECK(worker.steals <= worker.steal_attempts);
  }

  TEST_CASE("one schedule in the sample interval is stamped, and the poll it leads to timed") {
    // Workers=1: each of the task's 3,000 yields is a schedule on that worker, and at an
    // interval of 1,024 the worker's 1st, 1,025th and 2,049th are sampled. The spawn comes
    // from a fresh thread, whose one wake is too few to be sampled.
    constexpr int k_yields = 3000;
    Runtime runtime(RuntimeOptions{.workers = 1, .metrics_sample_interval = 1024});
    const RuntimeMetrics metrics = metrics_after_yields(runtime, k_yields);
    CHECK(total_polls(metrics) == k_yields + 1);
    CHECK(metrics.poll_duration.total() == 3);
    CHECK(metrics.scheduling_delay.total() == 3);  // every timed poll has its wake's delay
  }

  TEST_CASE("a sample interval of 1 times every poll") {
    constexpr int k_yields = 20;
    Runtime runtime(RuntimeOptions{.workers = 1, .metrics_sample_interval = 1});
    const RuntimeMetrics metrics = metrics_after_yields(runtime, k_yields);
    CHECK(total_polls(metrics) == k_yields + 1);
    CHECK(metrics.scheduling_delay.total() == k_yields + 1);  // the spawn's wake is sampled too
    // The last poll's duration is recorded after the task has finished, and so after the
    // join may have returned.
    CHECK(
        test::eventually([&] { return runtime.metrics().poll_duration.total() == k_yields + 1; }));
  }

  TEST_CASE("a sample interval that is not a power of two is refused") {
    CHECK_THROWS_AS(Runtime(RuntimeOptions{.metrics_sample_interval = 0}), std::invalid_argument);
    CHECK_THROWS_AS(Runtime(RuntimeOptions{.metrics_sample_interval = 1000}),
                    std::invalid_argument);
  }

  TEST_CASE("tasks alive counts tasks that have not finished") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    test::BroadcastGate gate;
    std::vector<JoinHandle<void>> handles;
    auto waiter = [&gate]() -> Task<void> { co_await gate.wait(); };
    for (int i = 0; i < 7; ++i)
      handles.push_back(runtime.spawn(waiter()));
    CHECK(runtime.metrics().tasks_alive == 7);
    gate.open();
    for (auto& handle : handles)
      handle.join();
    CHECK(runtime.metrics().tasks_alive == 0);
  }

  TEST_CASE("tasks spawned by a task count as alive until they finish") {
    // More children than a worker's batch of 256 core references, whose position is the
    // spawn count: the count crosses a batch boundary (a wrong settlement of the batch would
    // show as a leaked or early-freed core under ASan).
    constexpr std::size_t k_children = 300;
    Runtime runtime(RuntimeOptions{.workers = 2});
    test::BroadcastGate gate;
    auto waiter = [&gate]() -> Task<void> { co_await gate.wait(); };
    auto parent = [&]() -> Task<std::vector<JoinHandle<void>>> {
      std::vector<JoinHandle<void>> children;
      for (std::size_t i = 0; i < k_children; ++i)
        children.push_back(spawn(waiter()));
      co_return children;
    };
    std::vector<JoinHandle<void>> children = runtime.spawn(parent()).join();
    CHECK(runtime.metrics().tasks_alive == k_children);
    gate.open();
    for (auto& child : children)
      child.join();
    CHECK(runtime.metrics().tasks_alive == 0);
  }

  TEST_CASE("an idle worker parks, and the parks are counted") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    runtime.block_on(yield_times(1));
    CHECK(test::eventually([&] {
      std::uint64_t parks = 0;
      for (const WorkerMetrics& worker : runtime.metrics().workers)
        parks += worker.parks;
      return parks >= 2;  // both workers went to sleep at least once
    }));
  }

  TEST_CASE("blocking pool figures follow the pool") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    auto body = []() -> Task<int> { co_return co_await spawn_blocking([] { return 5; }); };
    CHECK(runtime.block_on(body()) == 5);
    const RuntimeMetrics metrics = runtime.metrics();
    CHECK(metrics.blocking_threads == 1);  // kept alive, idle, for the next call
    CHECK(metrics.blocking_queue_depth == 0);
  }

  TEST_CASE("with metrics off nothing is counted") {
    Runtime runtime(RuntimeOptions{.workers = 1, .enable_metrics = false});
    runtime.block_on(yield_times(3));
    test::BroadcastGate gate;
    auto waiter = [&gate]() -> Task<void> { co_await gate.wait(); };
    auto parent = [&]() -> Task<JoinHandle<void>> { co_return spawn(waiter()); };
    JoinHandle<void> child = runtime.spawn(parent()).join();  // spawned on a worker
    const RuntimeMetrics metrics = runtime.metrics();
    gate.open();
    child.join();
    CHECK(total_polls(metrics) == 0);
    CHECK(metrics.tasks_alive == 0);
    CHECK(metrics.poll_duration.total() == 0);
  }

  TEST_CASE("a histogram's quantile is the upper bound of the bucket that holds it") {
    DurationHistogram histogram;
    CHECK(histogram.quantile(0.5) == 0ns);
    histogram.counts[DurationHistogram::bucket_of(100ns)] += 9;  // [64, 128)
    histogram.counts[DurationHistogram::bucket_of(5us)] += 1;    // [4096, 8192)
    CHECK(DurationHistogram::bucket_of(63ns) == 0);
    CHECK(DurationHistogram::bucket_of(64ns) == 1);
    CHECK(DurationHistogram::bucket_of(1000s) == DurationHistogram::k_buckets - 1);
    CHECK(histogram.quantile(0.5) == 128ns);
    CHECK(histogram.quantile(0.9) == 128ns);
    CHECK(histogram.quantile(0.95) == 8192ns);
    CHECK(histogram.total() == 10);
  }
}
