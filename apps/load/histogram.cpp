#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace weft_load {

std::size_t Histogram::bucket_of(std::uint64_t value) noexcept {
  if (value < k_sub_count) return static_cast<std::size_t>(value);        // exact below 64
  const unsigned top = static_cast<unsigned>(std::bit_width(value)) - 1;  // >= k_sub_bits
  if (top >= k_max_bits) return k_buckets - 1;
  const unsigned shift = top - k_sub_bits;
  // Row `shift + 1` holds [2^top, 2^(top+1)) in 64 steps of 2^shift.
  const std::uint64_t sub = (value >> shift) - k_sub_count;
  return static_cast<std::size_t>((shift + 1) * k_sub_count + sub);
}

std::uint64_t Histogram::lowest_of(std::size_t bucket) noexcept {
  const std::uint64_t row = bucket / k_sub_count;
  const std::uint64_t sub = bucket % k_sub_count;
  if (row == 0) return sub;
  return (k_sub_count + sub) << (row - 1);
}

void Histogram::record(std::uint64_t value) noexcept {
  // relaxed: counters are read only after every recording thread has been joined.
  m_counts[bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t seen = m_max.load(std::memory_order_relaxed);
  while (value > seen && !m_max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (const auto& bucket : m_counts)
    total += bucket.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t Histogram::max() const noexcept {
  return m_max.load(std::memory_order_relaxed);
}

std::uint64_t Histogram::percentile(double p) const noexcept {
  const std::uint64_t total = count();
  if (total == 0) return 0;
  // The rank is ceil(p% of total), in integers: in doubles, 99.9 / 100 * 1000 is
  // 999.0000000000001, whose ceiling would make p99.9 of 1,000 samples the largest one.
  // p is rounded to a billionth of a percent first.
  constexpr std::uint64_t k_scale = 100'000'000'000;  // 100% in billionths of a percent
  __extension__ using Wide = unsigned __int128;       // scaled * total needs more than 64 bits
  const auto scaled = static_cast<Wide>(
      std::llround(std::clamp(p, 0.0, 100.0) * static_cast<double>(k_scale / 100)));
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>((scaled * total + k_scale - 1) / k_scale));
  std::uint64_t seen = 0;
  for (std::size_t bucket = 0; bucket < k_buckets; ++bucket) {
    seen += m_counts[bucket].load(std::memory_order_relaxed);
    if (seen >= rank) {
      if (bucket + 1 == k_buckets) return max();  // the saturating bucket has no upper end
      return std::min(lowest_of(bucket + 1) - 1, max());
    }
  }
  return max();
}

}  // namespace weft_load
