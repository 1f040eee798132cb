// A log-linear latency histogram in the manner of HdrHistogram: 64 linear sub-buckets per
// power of two, so any recorded value is reported within 1/64 (1.6%) of itself, from 1 to
// 2^40 units, in a fixed 2,624 counters. Recording is one relaxed atomic increment, so every
// client task records into one shared histogram without a lock.
//
// Invariants: bucket_of is monotonic in the value, and lowest_of(bucket_of(v)) <= v <
// lowest_of(bucket_of(v) + 1); percentile() answers the upper end of the bucket holding the
// requested rank (never below the true value, at most 1/64 above it), clamped to max().
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft_load {

class Histogram {
 public:
  static constexpr unsigned k_sub_bits = 6;
  static constexpr std::uint64_t k_sub_count = std::uint64_t{1} << k_sub_bits;
  static constexpr unsigned k_max_bits = 40;
  static constexpr std::size_t k_buckets = (k_max_bits - k_sub_bits + 1) * k_sub_count;

  /// Any thread. Values at or above 2^40 are counted in the last bucket.
  void record(std::uint64_t value) noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept;
  [[nodiscard]] std::uint64_t max() const noexcept;
  /// The value at percentile `p` (0 < p <= 100); 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept;

  [[nodiscard]] static std::size_t bucket_of(std::uint64_t value) noexcept;
  [[nodiscard]] static std::uint64_t lowest_of(std::size_t bucket) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, k_buckets> m_counts{};
  std::atomic<std::uint64_t> m_max{0};
};

}  // namespace weft_load
