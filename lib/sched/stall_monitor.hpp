// The stall detector: a thread that notices a poll running longer than a threshold.
//
// Every threshold / k_checks_per_threshold it reads each worker's poll sequence (see
// sched/stats.hpp). A worker whose sequence is odd and unchanged since the check that first
// saw it has been inside one poll all that time; once that time reaches the threshold the
// poll is reported, once. Polls are not timed individually, so a poll is reported after it
// has run between the threshold and the threshold plus one check interval, and a poll shorter
// than that may go unreported. The interval is never below k_min_check_interval. While every
// worker is idle the interval backs off to the threshold itself, so a stall that begins after
// a quiet stretch is reported before two thresholds have passed. The workers pay three stores
// per poll for it (the spawn site, then the sequence, odd before the poll and even after).
// A poll still running at the second look is watched: the monitor reads the worker thread's
// CPU time then and at the report, and its state (asleep or not) at every look between, which
// the report turns into time on a core, asleep and waiting for a core. Those reads are system
// calls on the monitor's thread, made only while a poll outlasts a check interval.
// Thread safety: start and stop are called by the core, once each; the hook runs on the
// monitor's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "sched/thread_activity.hpp"
#include "weft/metrics.hpp"

namespace weft::detail {

class Core;

class StallMonitor {
 public:
  static constexpr int k_checks_per_threshold = 8;
  /// The shortest check interval, whatever the threshold.
  static constexpr std::chrono::microseconds k_min_check_interval{100};

  StallMonitor(Core& core, std::chrono::nanoseconds threshold,
               std::function<void(const StallReport&)> hook);
  ~StallMonitor();
  StallMonitor(const StallMonitor&) = delete;
  StallMonitor& operator=(const StallMonitor&) = delete;

  void start();
  /// Joins the thread; idempotent.
  void stop();

 private:
  /// How the worker's thread spends a poll under watch (see the header comment).
  struct Watch {
    std::chrono::steady_clock::time_point since{};
    std::chrono::nanoseconds cpu_at_start{0};
    unsigned looks = 0;
    unsigned looks_asleep = 0;
  };
  struct Seen {
    std::uint64_t sequence = 0;
    std::chrono::steady_clock::time_point since{};
    bool reported = false;
    /// Empty until the second look at this poll, and where the kernel does not say.
    std::optional<Watch> watch{};
  };

  void run();
  /// One look at every worker. Returns whether any polled since the last look (or polls now).
  bool check(std::vector<Seen>& seen);
  /// Takes one look at the thread of a poll still running: starts the watch, or adds a look.
  static void watch(Seen& worker, const ThreadHandle& thread,
                    std::chrono::steady_clock::time_point now) noexcept;
  /// Fills the report's account of how the thread spent the watched part of the stall.
  static void account(const Seen& worker, const ThreadHandle& thread,
                      std::chrono::steady_clock::time_point now, StallReport& report) noexcept;

  Core& m_core;
  const std::chrono::nanoseconds m_threshold;
  std::function<void(const StallReport&)> m_hook;
  std::mutex m_mutex;
  std::condition_variable m_stop_requested;
  bool m_stopping = false;  // guarded by m_mutex
  std::thread m_thread;
};

}  // namespace weft::detail
