// weft::RuntimeMetrics: a snapshot of what a runtime's scheduler has been doing, and the
// stall reports of its stall detector.
//
//   weft::RuntimeMetrics m = runtime.metrics();
//   for (const auto& w : m.workers) std::printf("%llu polls\n", (unsigned long long)w.polls);
//
// - Counters count from the runtime's start. Take two snapshots and subtract for a rate.
// - A snapshot is not atomic across fields: each value is read once, while workers run.
// - Histograms are sampled: one wake in RuntimeOptions::metrics_sample_interval (default
//   4,096) on each thread is stamped, and the poll it leads to adds its scheduling delay (from
//   that wake to the poll) and its duration. Their counts are samples, their shape is the
//   distribution's.
// - RuntimeOptions::enable_metrics = false turns all of it off (the snapshot is then zeros
//   except the queue depths and blocking-pool figures, which cost nothing to collect).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>
#include "weft/source_location.hpp"

namespace weft {

/// Counts of durations in 32 buckets of doubling width: bucket 0 holds durations below
/// 64 ns, bucket i (1..30) those in [upper_bound(i - 1), upper_bound(i)), and bucket 31
/// everything from upper_bound(30) (about 69 s) up.
struct DurationHistogram {
  static constexpr std::size_t k_buckets = 32;

  std::array<std::uint64_t, k_buckets> counts{};

  [[nodiscard]] static std::size_t bucket_of(std::chrono::nanoseconds duration) noexcept;
  /// The exclusive upper bound of bucket i (the last bucket has none; this returns its lower
  /// bound times two).
  [[nodiscard]] static std::chrono::nanoseconds upper_bound(std::size_t bucket) noexcept;
  [[nodiscard]] std::uint64_t total() const noexcept;
  /// The upper bound of the bucket that holds quantile q (0..1), or zero when empty: the
  /// true quantile is below it and at least half of it.
  [[nodiscard]] std::chrono::nanoseconds quantile(double q) const noexcept;
  DurationHistogram& operator+=(const DurationHistogram& other) noexcept;
};

struct WorkerMetrics {
  std::uint64_t polls = 0;
  /// Visits to another worker's queue, and those that took work.
  std::uint64_t steal_attempts = 0;
  std::uint64_t steals = 0;
  std::uint64_t parks = 0;
  /// Tasks waiting in the worker's own queue (its LIFO slot not included).
  std::size_t local_queue_depth = 0;
  /// Time spent out of park, up to the worker's last park.
  std::chrono::nanoseconds busy_time{0};
};

struct RuntimeMetrics {
  std::vector<WorkerMetrics> workers;
  std::size_t inject_queue_depth = 0;
  /// Spawned and not yet finished (or cancelled).
  std::size_t tasks_alive = 0;
  std::size_t blocking_threads = 0;
  std::size_t blocking_idle_threads = 0;
  std::size_t blocking_queue_depth = 0;
  std::size_t blocking_running = 0;
  DurationHistogram poll_duration;
  DurationHistogram scheduling_delay;
};

/// A poll that ran longer than RuntimeOptions::stall_threshold, reported once per stall.
struct StallReport {
  /// Where the stalled task was spawned.
  SourceLocation spawned_at;
  /// The worker it stalls (0-based).
  std::size_t worker = 0;
  /// How long the poll had been running when the stall was noticed (at least the threshold).
  std::chrono::nanoseconds stalled_for{0};
  /// How the worker's thread spent the stall, as the kernel accounts it, which tells a task
  /// that computes from one that blocks, and both from a machine short of cores. The
  /// detector watches from its second look at the poll (about one check interval in) to the
  /// report: `observed_for`, at most `stalled_for`. Of that time the thread ran for `on_cpu`
  /// (measured) and slept for `asleep` (blocked in a system call, on a lock or in a page
  /// fault; estimated from its state at each check, eight a threshold). It spent the rest,
  /// `waiting_for_cpu`, runnable while other threads held the cores. All four are zero
  /// where the system does not say (no /proc, or no CPU clock for the thread). On a kernel
  /// built without IRQ time accounting (CONFIG_IRQ_TIME_ACCOUNTING), `on_cpu` also holds the
  /// interrupt work that ran on the thread's stack, such as other sockets' packets over
  /// loopback, which its system calls picked up.
  std::chrono::nanoseconds observed_for{0};
  std::chrono::nanoseconds on_cpu{0};
  std::chrono::nanoseconds asleep{0};
  std::chrono::nanoseconds waiting_for_cpu{0};
};

}  // namespace weft
