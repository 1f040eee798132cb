// weft::DurationHistogram's arithmetic (include/weft/metrics.hpp).
#include <bit>
#include <cmath>

#include "weft/metrics.hpp"

namespace weft {
namespace {

constexpr unsigned k_first_bound_log2 = 6;  // bucket 0 ends at 64 ns

}  // namespace

std::size_t DurationHistogram::bucket_of(std::chrono::nanoseconds duration) noexcept {
  if (duration.count() <= 0) return 0;
  const auto units = static_cast<std::uint64_t>(duration.count()) >> k_first_bound_log2;
  const auto bucket = static_cast<std::size_t>(std::bit_width(units));
  return bucket < k_buckets ? bucket : k_buckets - 1;
}

std::chrono::nanoseconds DurationHistogram::upper_bound(std::size_t bucket) noexcept {
  if (bucket >= k_buckets) bucket = k_buckets - 1;
  return std::chrono::nanoseconds(std::int64_t{1} << (k_first_bound_log2 + bucket));
}

std::uint64_t DurationHistogram::total() const noexcept {
  std::uint64_t sum = 0;
  for (std::uint64_t count : counts)
    sum += count;
  return sum;
}

std::chrono::nanoseconds DurationHistogram::quantile(double q) const noexcept {
  const std::uint64_t all = total();
  if (all == 0) return std::chrono::nanoseconds::zero();
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The smallest bucket whose cumulative count reaches ceil(q * all), at least 1.
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(all)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < k_buckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return upper_bound(i);
  }
  return upper_bound(k_buckets - 1);
}

DurationHistogram& DurationHistogram::operator+=(const DurationHistogram& other) noexcept {
  for (std::size_t i = 0; i < k_buckets; ++i)
    counts[i] += other.counts[i];
  return *this;
}

}  // namespace weft
