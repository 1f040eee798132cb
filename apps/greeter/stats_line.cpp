#include "stats_line.hpp"

#include <cinttypes>
#include <cstdio>
#include <string>

#include "log.hpp"

namespace greeter {
namespace {

struct Totals {
  std::uint64_t polls = 0;
  std::uint64_t steal_attempts = 0;
  std::uint64_t steals = 0;
  std::uint64_t parks = 0;
  std::chrono::nanoseconds busy{0};
};

Totals totals(const weft::RuntimeMetrics& metrics) {
  Totals sum;
  for (const weft::WorkerMetrics& worker : metrics.workers) {
    sum.polls += worker.polls;
    sum.steal_attempts += worker.steal_attempts;
    sum.steals += worker.steals;
    sum.parks += worker.parks;
    sum.busy += worker.busy_time;
  }
  return sum;
}

weft::DurationHistogram since(const weft::DurationHistogram& now,
                              const weft::DurationHistogram& before) {
  weft::DurationHistogram delta;
  for (std::size_t i = 0; i < weft::DurationHistogram::k_buckets; ++i)
    delta.counts[i] = now.counts[i] >= before.counts[i] ? now.counts[i] - before.counts[i] : 0;
  return delta;
}

/// "< 17us": the bucket bound (16,384 ns here), rounded up in the largest unit that keeps
/// three digits or fewer, so the label never understates it; "-" without samples.
std::string bound(const weft::DurationHistogram& histogram) {
  if (histogram.total() == 0) return "-";
  const auto ns = static_cast<long long>(histogram.quantile(0.99).count());
  const auto ceil_div = [ns](long long unit) { return (ns + unit - 1) / unit; };
  char text[32];
  if (ns >= 10'000'000) {
    std::snprintf(text, sizeof text, "< %lldms", ceil_div(1'000'000));
  } else if (ns >= 10'000) {
    std::snprintf(text, sizeof text, "< %lldus", ceil_div(1'000));
  } else {
    std::snprintf(text, sizeof text, "< %lldns", ns);
  }
  return text;
}

}  // namespace

std::string stats_line(const weft::RuntimeMetrics& now, const weft::RuntimeMetrics& before,
                       std::chrono::nanoseconds elapsed, std::uint64_t dialogs_now,
                       std::uint64_t dialogs_before, std::uint64_t open_dialogs) {
  const double seconds = elapsed.count() > 0 ? std::chrono::duration<double>(elapsed).count() : 1;
  const Totals a = totals(now);
  const Totals b = totals(before);
  auto rate = [seconds](std::uint64_t later, std::uint64_t earlier) {
    return later >= earlier ? static_cast<double>(later - earlier) / seconds : 0.0;
  };
  const double busy_percent = now.workers.empty()
                                  ? 0.0
                                  : 100.0 * std::chrono::duration<double>(a.busy - b.busy).count() /
                                        (seconds * static_cast<double>(now.workers.size()));
  std::string local;
  for (const weft::WorkerMetrics& worker : now.workers) {
    if (!local.empty()) local += '+';
    local += std::to_string(worker.local_queue_depth);
  }
  return format("stats: %.0f dialogs/s, %" PRIu64 " open | polls %.0f/s, steals %" PRIu64
                "/%" PRIu64
                " tries, parks %.0f/s, busy %.0f%% | queued: inject %zu, local %s |"
                " tasks %zu | blocking %zu/%zu busy, %zu queued | poll p99 %s, delay p99 %s",
                rate(dialogs_now, dialogs_before), open_dialogs, rate(a.polls, b.polls),
                a.steals - b.steals, a.steal_attempts - b.steal_attempts, rate(a.parks, b.parks),
                busy_percent, now.inject_queue_depth, local.c_str(), now.tasks_alive,
                now.blocking_running, now.blocking_threads, now.blocking_queue_depth,
                bound(since(now.poll_duration, before.poll_duration)).c_str(),
                bound(since(now.scheduling_delay, before.scheduling_delay)).c_str());
}

}  // namespace greeter
