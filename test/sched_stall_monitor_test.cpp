// The stall detector: a poll that holds its worker past the threshold is reported once, with
// the task's spawn site and worker, while the other workers go on; yielding tasks are not.
// The report says how the worker's thread spent the stall: running, asleep, or waiting for a
// core.
#include <doctest/doctest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>
#include "weft/source_location.hpp"

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using namespace std::chrono_literals;

namespace {

class StallLog {
 public:
  std::function<void(const StallReport&)> hook() {
    return [this](const StallReport& report) {
      std::lock_guard lock(m_mutex);
      m_reports.push_back(report);
      // release: pairs with the acquire in count(); the report is stored before the count.
      m_count.store(m_reports.size(), std::memory_order_release);
    };
  }
  // acquire: pairs with the release store in the hook.
  std::size_t count() const { return m_count.load(std::memory_order_acquire); }
  std::vector<StallReport> reports() {
    std::lock_guard lock(m_mutex);
    return m_reports;
  }

 private:
  std::mutex m_mutex;
  std::vector<StallReport> m_reports;
  std::atomic<std::size_t> m_count{0};
};

/// A task that holds its worker until the stall is reported (bounded), doing `each` in a loop.
template <class Body>
Task<void> hold_until_reported(const StallLog& log, Body each) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (log.count() == 0 && std::chrono::steady_clock::now() < deadline)
    each();
  co_return;
}

/// The report of one stall of `body`, held until reported, on a two-worker runtime.
template <class Body>
StallReport report_of_stall(Body body) {
  StallLog log;
  Runtime runtime(RuntimeOptions{.workers = 2, .stall_threshold = 80ms, .on_stall = log.hook()});
  runtime.spawn(hold_until_reported(log, std::move(body))).join();
  const std::vector<StallReport> reports = log.reports();
  REQUIRE(reports.size() == 1);
  const StallReport& report = reports[0];
  // The account covers the watched part of the stall, and its parts add up to it.
  REQUIRE(report.observed_for > 0ns);
  CHECK(report.observed_for <= report.stalled_for);
  CHECK(report.on_cpu + report.asleep + report.waiting_for_cpu == report.observed_for);
  return report;
}

}  // namespace

TEST_SUITE("stall") {
  TEST_CASE("a stall in a blocking call is accounted as time asleep") {
    const StallReport report =
        report_of_stall([] { std::this_thread::sleep_for(2ms); });  // the blocking call
    CHECK(report.asleep >= report.observed_for / 2);
    CHECK(report.on_cpu < report.observed_for / 4);
  }

  TEST_CASE("a stall that computes is accounted as running or waiting for a core, never asleep") {
    const StallReport report = report_of_stall([] {});
    CHECK(report.asleep <= report.observed_for / 4);
    CHECK(report.on_cpu > 0ns);
  }

  TEST_CASE("a stall whose thread shares its core with another is accounted as waiting") {
    // The worker and a spinning thread are pinned to one CPU, so each runs about half the
    // time and waits for the core the other half.
    StallLog log;
    Runtime runtime(RuntimeOptions{.workers = 2, .stall_threshold = 80ms, .on_stall = log.hook()});
    auto shared_core = [&]() -> Task<void> {
      cpu_set_t before;
      REQUIRE(::sched_getaffinity(0, sizeof before, &before) == 0);
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(::sched_getcpu(), &one);
      REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
      std::atomic<bool> rival_pinned{false};
      std::thread rival([&] {
        // relaxed: read after the join.
        rival_pinned.store(::sched_setaffinity(0, sizeof one, &one) == 0,
                           std::memory_order_relaxed);
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (log.count() == 0 && std::chrono::steady_clock::now() < deadline) {
        }
      });
      co_await hold_until_reported(log, [] {});
      rival.join();
      CHECK(rival_pinned.load(std::memory_order_relaxed));  // relaxed: after the join
      REQUIRE(::sched_setaffinity(0, sizeof before, &before) == 0);
    };
    runtime.spawn(shared_core()).join();
    const std::vector<StallReport> reports = log.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].waiting_for_cpu >= reports[0].observed_for / 5);
    CHECK(reports[0].asleep <= reports[0].observed_for / 4);
  }

  TEST_CASE("a stall that begins after the runtime sat idle is still reported") {
    // While every worker is idle the detector checks less often (up to once a threshold);
    // the first poll that then holds its worker must still be caught.
    constexpr auto k_threshold = 20ms;
    StallLog log;
    Runtime runtime(
        RuntimeOptions{.workers = 2, .stall_threshold = k_threshold, .on_stall = log.hook()});
    std::this_thread::sleep_for(10 * k_threshold);  // the idle stretch is the scenario
    auto hog = [&]() -> Task<void> {
      const auto deadline = std::chrono::steady_clock::now() + 20s;  // bounded
      while (log.count() == 0 && std::chrono::steady_clock::now() < deadline) {
      }
      co_return;
    };
    runtime.spawn(hog()).join();
    CHECK(log.count() == 1);
  }

  TEST_CASE("a task that holds its worker is reported once, with where it was spawned") {
    constexpr auto k_threshold = 50ms;
    StallLog log;
    Runtime runtime(
        RuntimeOptions{.workers = 2, .stall_threshold = k_threshold, .on_stall = log.hook()});
    std::atomic<bool> stop_ticking{false};
    std::atomic<int> ticks{0};
    auto ticker = [&]() -> Task<void> {
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      // acquire: pairs with the test's release store. relaxed on ticks: a progress count
      // that publishes nothing, and ticks_during_stall is read after the hog is joined.
      while (!stop_ticking.load(std::memory_order_acquire) &&
             std::chrono::steady_clock::now() < deadline) {
        ticks.fetch_add(1, std::memory_order_relaxed);
        co_await yield_now();
      }
    };
    std::atomic<int> ticks_during_stall{0};
    auto hog = [&]() -> Task<void> {
      // Holds the worker until the stall is reported and a few more check intervals have
      // passed (to see that it is reported only once); bounded in case it never is.
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      const int ticks_before = ticks.load(std::memory_order_relaxed);
      while (log.count() == 0 && std::chrono::steady_clock::now() < deadline) {
      }
      const auto reported_at = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() < reported_at + 3 * k_threshold) {
      }
      ticks_during_stall.store(ticks.load(std::memory_order_relaxed) - ticks_before,
                               std::memory_order_relaxed);
      co_return;
    };
    auto ticking = runtime.spawn(ticker());
    // relaxed: only the count matters; it publishes nothing.
    REQUIRE(test::eventually([&] { return ticks.load(std::memory_order_relaxed) > 0; }));
    const std::uint_least32_t hog_line = __LINE__ + 1;
    runtime.spawn(hog()).join();
    stop_ticking.store(true, std::memory_order_release);  // release: pairs with the ticker
    ticking.join();

    const std::vector<StallReport> reports = log.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].spawned_at.line() == hog_line);
    CHECK(std::string_view(reports[0].spawned_at.file_name())
              .ends_with("sched_stall_monitor_test.cpp"));
    CHECK(reports[0].worker < 2);
    CHECK(reports[0].stalled_for >= k_threshold);
    // relaxed: read after the hog is joined. The other worker kept running the ticker.
    CHECK(ticks_during_stall.load(std::memory_order_relaxed) > 0);
  }

  TEST_CASE("tasks that yield often are never reported") {
    StallLog log;
    {
      Runtime runtime(
          RuntimeOptions{.workers = 2, .stall_threshold = 500ms, .on_stall = log.hook()});
      auto yielder = []() -> Task<void> {
        for (int i = 0; i < 200; ++i)
          co_await yield_now();
      };
      std::vector<JoinHandle<void>> handles;
      for (int i = 0; i < 100; ++i)
        handles.push_back(runtime.spawn(yielder()));
      for (auto& handle : handles)
        handle.join();
    }
    CHECK(log.count() == 0);
  }
}
