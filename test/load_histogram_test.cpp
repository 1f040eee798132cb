#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "histogram.hpp"

using weft_load::Histogram;

TEST_SUITE("load_histogram") {
  TEST_CASE("values below 64 are counted exactly") {
    for (std::uint64_t v = 0; v < 64; ++v) {
      CHECK(Histogram::bucket_of(v) == v);
      CHECK(Histogram::lowest_of(Histogram::bucket_of(v)) == v);
    }
  }

  TEST_CASE("every value lands in a bucket that spans it, within 1/64 of its size") {
    for (std::uint64_t v = 1; v < (std::uint64_t{1} << 39); v = v * 3 / 2 + 1) {
      const std::size_t bucket = Histogram::bucket_of(v);
      const std::uint64_t low = Histogram::lowest_of(bucket);
      const std::uint64_t next = Histogram::lowest_of(bucket + 1);
      CAPTURE(v);
      CHECK(low <= v);
      CHECK(v < next);
      CHECK((next - low) * 64 <= std::max<std::uint64_t>(v, 64));
      CHECK(Histogram::bucket_of(v + 1) >= bucket);  // monotonic
    }
  }

  TEST_CASE("percentiles of a uniform 1..10000 are within 1/64 above the truth") {
    auto histogram = std::make_unique<Histogram>();
    for (std::uint64_t v = 1; v <= 10000; ++v)
      histogram->record(v);
    CHECK(histogram->count() == 10000);
    CHECK(histogram->max() == 10000);
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
      const auto truth = static_cast<std::uint64_t>(p * 100);
      const auto reported = histogram->percentile(p);
      CAPTURE(p);
      CHECK(reported >= truth);
      CHECK(reported <= truth + truth / 64 + 1);
    }
    CHECK(histogram->percentile(100) == 10000);
  }

  TEST_CASE("a percentile's rank is exact where floating point would round it up") {
    // 99.9% of 1,000 samples is the 999th, which is 1 here; in doubles the rank comes out as
    // 999.0000000000001, whose ceiling is the 1,000th sample: the outlier.
    for (const std::uint64_t total : {1'000ULL, 10'000ULL, 30'000ULL, 100'000ULL}) {
      auto histogram = std::make_unique<Histogram>();
      for (std::uint64_t i = 0; i + total / 1000 < total; ++i)
        histogram->record(1);
      for (std::uint64_t i = 0; i < total / 1000; ++i)
        histogram->record(1'000'000);
      CAPTURE(total);
      CHECK(histogram->percentile(99.9) == 1);
      CHECK(histogram->percentile(99.95) > 1);
    }
  }

  TEST_CASE("an empty histogram reports zero, and huge values saturate the last bucket") {
    auto histogram = std::make_unique<Histogram>();
    CHECK(histogram->percentile(99) == 0);
    histogram->record(~std::uint64_t{0});
    CHECK(Histogram::bucket_of(~std::uint64_t{0}) == Histogram::k_buckets - 1);
    CHECK(histogram->percentile(50) == ~std::uint64_t{0});
  }
}
