// Per-worker scheduler statistics behind Runtime::metrics() and the stall detector.
//
// Invariants
// - Every field is written only by its worker's thread (the owner), with relaxed
//   load-then-store increments (no read-modify-write: there is one writer). Other threads
//   read them with relaxed loads: a snapshot needs no ordering with the work it counts.
// - poll_sequence is odd while the owner polls a task and even otherwise. The owner stores
//   polling_site, then the odd sequence, both with release; the stall monitor loads the
//   sequence, the site and the sequence again, all with acquire. If both sequence loads agree,
//   the site is that poll's: a later poll's site would carry the later sequence with it.
// - thread is stored once, by the owner as it starts and before its first poll, with release;
//   the stall monitor loads it with acquire (a default handle: not started yet).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include "weft/source_location.hpp"

#include "sched/thread_activity.hpp"
#include "weft/metrics.hpp"

namespace weft::detail {

/// The metrics clock: steady_clock in nanoseconds.
[[nodiscard]] inline std::uint64_t metrics_now() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

/// A wake stamp for TaskHeader::woken_at: 16 ns units, wrapping every 68 s; never 0.
[[nodiscard]] inline std::uint32_t wake_stamp(std::uint64_t now) noexcept {
  const auto stamp = static_cast<std::uint32_t>(now >> 4);
  return stamp == 0 ? 1 : stamp;
}
/// Nanoseconds from a wake stamp to `now` (delays over 68 s wrap).
[[nodiscard]] inline std::uint64_t since_stamp(std::uint32_t stamp, std::uint64_t now) noexcept {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(wake_stamp(now) - stamp)) << 4;
}

class OwnerCounter {
 public:
  void add(std::uint64_t amount = 1) noexcept {
    // relaxed: single writer (the owner); readers only want a recent value.
    m_value.store(m_value.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
  }
  void set(std::uint64_t value) noexcept {
    // relaxed: as for add.
    m_value.store(value, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    // relaxed: see add.
    return m_value.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> m_value{0};
};

class OwnerHistogram {
 public:
  void record(std::uint64_t nanoseconds) noexcept {
    m_counts[DurationHistogram::bucket_of(std::chrono::nanoseconds(nanoseconds))].add();
  }
  void add_to(DurationHistogram& out) const noexcept {
    for (std::size_t i = 0; i < DurationHistogram::k_buckets; ++i)
      out.counts[i] += m_counts[i].get();
  }

 private:
  OwnerCounter m_counts[DurationHistogram::k_buckets];
};

struct alignas(64) WorkerStats {
  OwnerCounter steal_attempts;
  OwnerCounter steals;
  OwnerCounter parks;
  /// Busy time of the stretches that ended (the worker parked since).
  OwnerCounter busy_ns;
  /// When the open busy stretch began (metrics clock), or 0 while the worker is parked.
  OwnerCounter busy_since;
  /// Tasks this worker spawned, and tasks that finished on it. The spawn count is kept with
  /// metrics off too: it is the worker's position in its batch of core references.
  OwnerCounter spawned;
  OwnerCounter finished;
  OwnerHistogram poll_duration;
  OwnerHistogram scheduling_delay;

  /// Twice the polls finished, plus one during a poll: the stall monitor's view, and the
  /// metrics' poll count (polls begun: (sequence + 1) / 2).
  std::atomic<std::uint64_t> poll_sequence{0};
  std::atomic<SourceLocation> polling_site{};
  /// The owner's thread, for the stall monitor to read how it spends a stall.
  std::atomic<ThreadHandle> thread{};
};

}  // namespace weft::detail
