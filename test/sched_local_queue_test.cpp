// Tests for weft::detail::LocalQueue (lib/sched/local_queue.hpp).
//
// The concurrent tests never sleep. Threads meet through atomics: they spin briefly so that
// they really race, and then block on a futex. Every thread loop has a fixed bound.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "sched/futex.hpp"
#include "sched/local_queue.hpp"

namespace {

using weft::detail::LocalQueue;

constexpr std::uint32_t k_u32_max = std::numeric_limits<std::uint32_t>::max();

// Items in the one-million-item test. A stress build may raise this.
#ifndef WEFT_LOCAL_QUEUE_STRESS_ITEMS
#define WEFT_LOCAL_QUEUE_STRESS_ITEMS 1'000'000
#endif
constexpr std::uint32_t k_stress_items = WEFT_LOCAL_QUEUE_STRESS_ITEMS;

// Counts live objects and catches a second destruction of the same object.
struct Tracked {
  static constexpr std::uint32_t k_alive = 0xA11CE5EDu;
  static constexpr std::uint32_t k_dead = 0xDEADDEADu;
  static inline std::atomic<long> live{0};
  static inline std::atomic<long> bad_destroys{0};  // destroyed twice, or never constructed
  static inline std::atomic<long> moves_from_dead{0};

  int value;
  std::uint32_t magic = k_alive;

  explicit Tracked(int v) noexcept : value(v) { live.fetch_add(1, std::memory_order_relaxed); }
  Tracked(Tracked&& other) noexcept : value(other.value) {
    if (other.magic != k_alive) moves_from_dead.fetch_add(1, std::memory_order_relaxed);
    other.value = -1;
    live.fetch_add(1, std::memory_order_relaxed);
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    if (magic != k_alive) bad_destroys.fetch_add(1, std::memory_order_relaxed);
    magic = k_dead;
    live.fetch_sub(1, std::memory_order_relaxed);
  }

  // relaxed: reset and read by one test thread between tests, with no other thread running.
  static void reset() {
    live.store(0, std::memory_order_relaxed);
    bad_destroys.store(0, std::memory_order_relaxed);
    moves_from_dead.store(0, std::memory_order_relaxed);
  }
};

// Spins briefly (so that two threads arrive together and really race), then blocks on a
// futex until `flag` holds `want`. It is not a sleep: it returns once the store is visible.
//
// Not std::atomic::wait: libstdc++ 12's notify_all enters the kernel only when its count of
// waiters reads non-zero, and nothing orders that read after the caller's release store to
// the flag (on x86 a load may pass an earlier store), so a waiter that counted itself in and
// then read the old value can sleep with nobody left to wake it. The stress suite hung once
// in the owner-against-thief test with both threads asleep in futex_wait; attaching gdb
// interrupted the waits, and both found their values already published and went on. A raw
// futex wake always enters the kernel (sched/futex.hpp), so no wake can fall between a
// waiter's check of the value and its sleep.
void await_value(const std::atomic<std::uint32_t>& flag, std::uint32_t want) {
  constexpr int k_spins = 1 << 14;
  for (int i = 0; i < k_spins; ++i) {
    if (flag.load(std::memory_order_acquire) == want) return;
  }
  // acquire: pairs with the release store in publish.
  for (std::uint32_t v = flag.load(std::memory_order_acquire); v != want;
       v = flag.load(std::memory_order_acquire)) {
    weft::detail::futex_wait(flag, v);
  }
}

void publish(std::atomic<std::uint32_t>& flag, std::uint32_t value) {
  // release: pairs with the acquire loads in await_value.
  flag.store(value, std::memory_order_release);
  weft::detail::futex_wake_all(flag);
}

/// Counts one more arrival at `flag`, for a thread that awaits the count with await_value.
void arrive(std::atomic<std::uint32_t>& flag) {
  // release: pairs with the acquire loads in await_value.
  flag.fetch_add(1, std::memory_order_release);
  weft::detail::futex_wake_all(flag);
}

// An item whose move constructor, once armed, blocks the first thread that moves it. This
// holds a thief mid-steal (steal != real) so the owner can act meanwhile.
struct Gated {
  static inline std::atomic<std::uint32_t> armed{0};
  static inline std::atomic<std::uint32_t> thief_inside{0};
  static inline std::atomic<std::uint32_t> release{0};

  int value;

  explicit Gated(int v) noexcept : value(v) {}
  Gated(Gated&& other) noexcept : value(other.value) {
    if (armed.exchange(0, std::memory_order_acq_rel) == 1) {
      publish(thief_inside, 1);
      await_value(release, 1);
    }
  }
};

auto no_overflow(int& calls) {
  return [&calls](auto) { ++calls; };
}

}  // namespace

TEST_SUITE("local_queue") {
  TEST_CASE("pop from an empty queue returns nothing, at index zero and after the indices wrap") {
    LocalQueue<int, 4> fresh;
    CHECK_FALSE(fresh.pop().has_value());
    CHECK(fresh.is_empty());
    CHECK(fresh.len() == 0);

    LocalQueue<int, 4> at_max(k_u32_max);
    CHECK_FALSE(at_max.pop().has_value());

    // Start two positions before the wrap point and push three items, so that tail passes 2^32.
    LocalQueue<int, 4> wrapped(k_u32_max - 1);
    int overflow_calls = 0;
    for (int v = 0; v < 3; ++v)
      wrapped.push_back(v, no_overflow(overflow_calls));
    CHECK(wrapped.len() == 3);
    for (int v = 0; v < 3; ++v)
      CHECK(wrapped.pop() == v);
    CHECK_FALSE(wrapped.pop().has_value());
    CHECK_FALSE(wrapped.pop().has_value());  // a second empty pop must not "wrap" to full
    CHECK(wrapped.len() == 0);
    CHECK(wrapped.is_empty());
    CHECK(overflow_calls == 0);
  }

  TEST_CASE("items pop in the order they were pushed") {
    LocalQueue<int, 8> q;
    static_assert(LocalQueue<int, 8>::capacity() == 8);
    int overflow_calls = 0;
    for (int v = 0; v < 8; ++v)
      q.push_back(v, no_overflow(overflow_calls));
    CHECK(q.len() == 8);
    for (int v = 0; v < 5; ++v)
      CHECK(q.pop() == v);
    for (int v = 8; v < 13; ++v)
      q.push_back(v, no_overflow(overflow_calls));
    for (int v = 5; v < 13; ++v)
      CHECK(q.pop() == v);
    CHECK_FALSE(q.pop().has_value());
    CHECK(overflow_calls == 0);
  }

  TEST_CASE("pushing into a full queue hands the two oldest items and the new one to overflow") {
    Tracked::reset();
    {
      LocalQueue<Tracked, 4> q;
      std::vector<Tracked> overflowed;
      int calls = 0;
      auto overflow = [&](std::span<Tracked> items) {
        ++calls;
        for (Tracked& t : items)
          overflowed.push_back(std::move(t));
      };
      for (int v = 0; v < 4; ++v)
        q.push_back(Tracked(v), overflow);
      CHECK(calls == 0);
      CHECK(q.len() == 4);

      q.push_back(Tracked(4), overflow);
      CHECK(calls == 1);
      REQUIRE(overflowed.size() == 3);
      CHECK(overflowed[0].value == 0);
      CHECK(overflowed[1].value == 1);
      CHECK(overflowed[2].value == 4);
      CHECK(q.len() == 2);
      // The moved-from objects in the span were destroyed once push_back returned. (relaxed:
      // Tracked's counts, here and below, change only on this thread.)
      CHECK(Tracked::live.load(std::memory_order_relaxed) == 3 + 2);

      std::optional<Tracked> a = q.pop();
      std::optional<Tracked> b = q.pop();
      REQUIRE(a.has_value());
      REQUIRE(b.has_value());
      CHECK(a->value == 2);
      CHECK(b->value == 3);
      CHECK_FALSE(q.pop().has_value());
    }
    CHECK(Tracked::live.load(std::memory_order_relaxed) == 0);
    CHECK(Tracked::bad_destroys.load(std::memory_order_relaxed) == 0);
    CHECK(Tracked::moves_from_dead.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("indices wrap past 2^32 without losing, duplicating or reordering items") {
    // A reference model checks every push, pop and overflow across the wrap.
    constexpr int k_cycles = 10'000;
    LocalQueue<int, 4> q(k_u32_max - 5'000);
    std::deque<int> model;
    int next = 0;
    int overflow_calls = 0;
    bool overflow_matched_model = true;
    auto overflow = [&](std::span<int> items) {
      ++overflow_calls;
      // Two oldest queued items, then the new one (which is not in the model yet).
      overflow_matched_model = overflow_matched_model && items.size() == 3 && model.size() == 4 &&
                               items[0] == model[0] && items[1] == model[1] && items[2] == next;
      model.pop_front();
      model.pop_front();
    };
    int expected_overflows = 0;
    for (int cycle = 0; cycle < k_cycles; ++cycle) {
      const int pushes = cycle % 6;  // 0..5: the 5th push into a full queue overflows
      for (int i = 0; i < pushes; ++i) {
        const bool full = model.size() == 4;
        q.push_back(next, overflow);
        if (full) {
          ++expected_overflows;  // the overflow took the new item too
        } else {
          model.push_back(next);
        }
        ++next;
      }
      REQUIRE(q.len() == model.size());
      const int pops = (cycle * 7) % 5;
      for (int i = 0; i < pops; ++i) {
        std::optional<int> got = q.pop();
        if (model.empty()) {
          REQUIRE_FALSE(got.has_value());
        } else {
          REQUIRE(got == model.front());
          model.pop_front();
        }
      }
    }
    CHECK(overflow_matched_model);
    CHECK(overflow_calls == expected_overflows);
    CHECK(overflow_calls > 0);
    while (!model.empty()) {
      CHECK(q.pop() == model.front());
      model.pop_front();
    }
    CHECK_FALSE(q.pop().has_value());
    // ~5,000 positions before 2^32 and far more than that pushed: the indices did wrap.
    CHECK(next > 5'000 + 4);

    // A steal whose victim and destination slots both straddle the wrap point.
    LocalQueue<int, 8> victim(k_u32_max - 2);
    LocalQueue<int, 8> dst(k_u32_max - 1);
    for (int v = 0; v < 7; ++v)
      victim.push_back(v, no_overflow(overflow_calls));
    CHECK(victim.steal_into(dst) == 3);
    for (int v = 0; v < 3; ++v)
      CHECK(dst.pop() == v);
    for (int v = 4; v < 7; ++v)
      CHECK(victim.pop() == v);
    CHECK(victim.is_empty());
    CHECK(dst.is_empty());
  }

  TEST_CASE("steal_into refuses when the destination lacks room and otherwise steals half") {
    int overflow_calls = 0;
    LocalQueue<int, 8> victim;
    LocalQueue<int, 8> dst;

    CHECK_FALSE(victim.steal_into(dst).has_value());  // empty victim

    for (int v = 0; v < 5; ++v)
      victim.push_back(v, no_overflow(overflow_calls));
    // dst holds 5, so 3 slots are free, fewer than Capacity/2 = 4: refuse, change nothing.
    for (int v = 100; v < 105; ++v)
      dst.push_back(v, no_overflow(overflow_calls));
    CHECK_FALSE(victim.steal_into(dst).has_value());
    CHECK(victim.len() == 5);
    CHECK(dst.len() == 5);

    // dst holds 4: exactly Capacity/2 free is enough. ceil(5/2) = 3 items are claimed, the
    // newest of them (2) is returned, and 0 and 1 land behind dst's own items.
    CHECK(dst.pop() == 100);
    CHECK(victim.steal_into(dst) == 2);
    CHECK(victim.len() == 2);
    CHECK(dst.len() == 6);
    for (int v : {101, 102, 103, 104, 0, 1})
      CHECK(dst.pop() == v);

    // One item left after a pop: ceil(1/2) = 1, returned directly, dst stays empty.
    CHECK(victim.pop() == 3);
    CHECK(victim.steal_into(dst) == 4);
    CHECK(victim.is_empty());
    CHECK(dst.is_empty());

    // A full victim gives up exactly half.
    for (int v = 0; v < 8; ++v)
      victim.push_back(v, no_overflow(overflow_calls));
    CHECK(victim.steal_into(dst) == 3);
    CHECK(dst.len() == 3);
    CHECK(victim.len() == 4);
    CHECK(overflow_calls == 0);
  }

  TEST_CASE("a full queue with a steal in progress sends only the new item to overflow") {
    LocalQueue<Gated, 4> victim;
    LocalQueue<Gated, 4> dst;
    std::vector<int> overflowed;
    auto overflow = [&](std::span<Gated> items) {
      for (Gated& g : items)
        overflowed.push_back(g.value);
    };
    for (int v = 0; v < 4; ++v)
      victim.push_back(Gated(v), overflow);

    publish(Gated::armed, 1);
    std::optional<int> stolen;
    std::thread thief([&] {
      std::optional<Gated> got = victim.steal_into(dst);
      if (got) stolen = got->value;
    });
    await_value(Gated::thief_inside, 1);  // the thief has claimed items 0 and 1

    CHECK(victim.len() == 2);
    victim.push_back(Gated(4), overflow);  // full, steal in progress: only the new item goes
    CHECK(overflowed == std::vector<int>{4});
    std::optional<Gated> popped = victim.pop();  // the owner still pops past the claim
    REQUIRE(popped.has_value());
    CHECK(popped->value == 2);

    publish(Gated::release, 1);
    thief.join();
    CHECK(stolen == 1);
    std::optional<Gated> in_dst = dst.pop();
    REQUIRE(in_dst.has_value());
    CHECK(in_dst->value == 0);
    CHECK_FALSE(dst.pop().has_value());
    std::optional<Gated> rest = victim.pop();
    REQUIRE(rest.has_value());
    CHECK(rest->value == 3);
    CHECK_FALSE(victim.pop().has_value());
  }

  TEST_CASE("the queue destructor destroys every item still queued exactly once") {
    Tracked::reset();
    // relaxed: single-threaded, so Tracked's counts change only on this thread.
    {
      LocalQueue<Tracked, 4> plain;
      plain.push_back(Tracked(1), [](auto) {});
      plain.push_back(Tracked(2), [](auto) {});
      CHECK(Tracked::live.load(std::memory_order_relaxed) == 2);
    }
    CHECK(Tracked::live.load(std::memory_order_relaxed) == 0);
    {
      // Items straddle the wrap, the ring is reused, and items were overflowed and stolen.
      LocalQueue<Tracked, 4> victim(k_u32_max - 1);
      LocalQueue<Tracked, 4> dst(k_u32_max);
      std::vector<Tracked> sink;
      auto overflow = [&](std::span<Tracked> items) {
        for (Tracked& t : items)
          sink.push_back(std::move(t));
      };
      for (int v = 0; v < 7; ++v)
        victim.push_back(Tracked(v), overflow);  // overflows once
      CHECK(sink.size() == 3);
      std::optional<Tracked> got = victim.steal_into(dst);  // 4 queued: claims 2, returns 1
      REQUIRE(got.has_value());
      CHECK(dst.len() == 1);
      CHECK(victim.len() == 2);
      CHECK(Tracked::live.load(std::memory_order_relaxed) == 3 + 1 + 1 + 2);
    }
    CHECK(Tracked::live.load(std::memory_order_relaxed) == 0);
    CHECK(Tracked::bad_destroys.load(std::memory_order_relaxed) == 0);
    CHECK(Tracked::moves_from_dead.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("when the owner pops the last item while a thief steals, exactly one gets it") {
    constexpr std::uint32_t k_rounds = 20'000;
    LocalQueue<std::uint32_t, 4> victim;
    LocalQueue<std::uint32_t, 4> thief_queue;
    std::atomic<std::uint32_t> go{0};          // round the thief may start
    std::atomic<std::uint32_t> thief_done{0};  // last round the thief finished
    std::vector<std::uint8_t> thief_got(k_rounds, 0);
    std::atomic<bool> thief_queue_dirty{false};

    std::thread thief([&] {
      for (std::uint32_t round = 1; round <= k_rounds; ++round) {
        await_value(go, round);
        std::optional<std::uint32_t> got = victim.steal_into(thief_queue);
        if (got) thief_got[*got] = 1;
        if (!thief_queue.is_empty()) thief_queue_dirty.store(true, std::memory_order_relaxed);
        publish(thief_done, round);
      }
    });

    std::atomic<std::uint32_t> delay{0};  // only the owner touches it
    std::uint32_t owner_wins = 0;
    std::uint32_t both = 0;
    std::uint32_t neither = 0;
    for (std::uint32_t round = 1; round <= k_rounds; ++round) {
      const std::uint32_t item = round - 1;
      victim.push_back(item, [](auto) {});
      publish(go, round);
      // A varying delay so the pop lands before, during and after the steal.
      for (std::uint32_t i = 0; i < (round * 37) % 32; ++i) {
        delay.fetch_add(1, std::memory_order_relaxed);  // busy work, not a sleep
      }
      const bool owner_got = victim.pop() == item;
      await_value(thief_done, round);
      owner_wins += owner_got ? 1 : 0;
      both += (owner_got && thief_got[item] == 1) ? 1 : 0;
      neither += (!owner_got && thief_got[item] == 0) ? 1 : 0;
    }
    thief.join();
    CHECK(both == 0);
    CHECK(neither == 0);
    CHECK_FALSE(thief_queue_dirty.load(std::memory_order_relaxed));  // relaxed: after the join
    CHECK(victim.is_empty());
    MESSAGE("owner won " << owner_wins << " of " << k_rounds << " rounds");
  }

  TEST_CASE("a steal racing an overflow loses no item and duplicates none") {
    constexpr std::uint32_t k_items = 200'000;
    constexpr int k_thieves = 2;
    constexpr std::uint32_t k_thief_attempts = 20'000'000;
    LocalQueue<std::uint32_t, 4> victim;
    std::vector<std::atomic<std::uint8_t>> seen(k_items);
    std::mutex overflow_mutex;
    std::vector<std::uint32_t> overflowed;
    std::atomic<bool> producer_done{false};
    std::atomic<std::uint32_t> thieves_ready{0};
    std::atomic<std::uint32_t> stolen_total{0};
    std::atomic<std::uint32_t> thieves_left_items{0};

    auto mark = [&](std::uint32_t v) { seen[v].fetch_add(1, std::memory_order_relaxed); };
    std::vector<std::thread> thieves;
    for (int t = 0; t < k_thieves; ++t) {
      thieves.emplace_back([&] {
        LocalQueue<std::uint32_t, 4> mine;
        arrive(thieves_ready);
        std::uint32_t stolen = 0;
        for (std::uint32_t i = 0;
             i < k_thief_attempts && !producer_done.load(std::memory_order_acquire); ++i) {
          if (std::optional<std::uint32_t> got = victim.steal_into(mine)) {
            mark(*got);
            ++stolen;
            for (std::uint32_t k = 0; k < mine.capacity(); ++k) {
              std::optional<std::uint32_t> more = mine.pop();
              if (!more) break;
              mark(*more);
              ++stolen;
            }
          }
        }
        if (!mine.is_empty()) thieves_left_items.fetch_add(1, std::memory_order_relaxed);
        stolen_total.fetch_add(stolen, std::memory_order_relaxed);
      });
    }
    await_value(thieves_ready, k_thieves);

    auto overflow = [&](std::span<std::uint32_t> items) {
      std::lock_guard<std::mutex> lock(overflow_mutex);
      overflowed.insert(overflowed.end(), items.begin(), items.end());
    };
    std::uint32_t owner_pops = 0;
    for (std::uint32_t v = 0; v < k_items; ++v) {
      victim.push_back(v, overflow);
      if (v % 7 == 0) {  // mostly pushes, so the queue keeps hitting full
        if (std::optional<std::uint32_t> got = victim.pop()) {
          mark(*got);
          ++owner_pops;
        }
      }
    }
    producer_done.store(true, std::memory_order_release);
    for (std::thread& t : thieves)
      t.join();
    for (std::uint32_t k = 0; k < victim.capacity(); ++k) {
      std::optional<std::uint32_t> got = victim.pop();
      if (!got) break;
      mark(*got);
    }
    CHECK(victim.is_empty());
    for (std::uint32_t v : overflowed)
      mark(v);

    // relaxed: the counts are read after the thieves are joined.
    std::uint32_t wrong = 0;
    for (std::uint32_t v = 0; v < k_items; ++v)
      wrong += seen[v].load(std::memory_order_relaxed) == 1 ? 0 : 1;
    CHECK(wrong == 0);
    CHECK(thieves_left_items.load(std::memory_order_relaxed) == 0);
    CHECK_FALSE(overflowed.empty());
    MESSAGE("overflowed " << overflowed.size() << ", stolen "
                          << stolen_total.load(std::memory_order_relaxed) << ", owner pops "
                          << owner_pops);
  }

  TEST_CASE("a million items pass through the owner and three thieves and each is taken once") {
    constexpr int k_thieves = 3;
    constexpr std::uint32_t k_thief_attempts = 100'000'000;
    LocalQueue<std::uint32_t> owner;
    // Thieves also steal from each other, so a queue is robbed while its owner steals.
    std::vector<std::unique_ptr<LocalQueue<std::uint32_t>>> thief_queues;
    for (int t = 0; t < k_thieves; ++t) {
      thief_queues.push_back(std::make_unique<LocalQueue<std::uint32_t>>());
    }
    std::vector<std::atomic<std::uint8_t>> seen(k_stress_items);
    std::mutex overflow_mutex;
    std::vector<std::uint32_t> overflowed;
    std::atomic<bool> producer_done{false};
    std::atomic<std::uint32_t> thieves_ready{0};

    auto mark = [&](std::uint32_t v) { seen[v].fetch_add(1, std::memory_order_relaxed); };
    std::vector<std::thread> thieves;
    for (int t = 0; t < k_thieves; ++t) {
      thieves.emplace_back([&, t] {
        LocalQueue<std::uint32_t>& mine = *thief_queues[t];
        LocalQueue<std::uint32_t>& neighbour = *thief_queues[(t + 1) % k_thieves];
        arrive(thieves_ready);
        auto drain = [&] {
          for (std::uint32_t k = 0; k < mine.capacity(); ++k) {
            std::optional<std::uint32_t> got = mine.pop();
            if (!got) break;
            mark(*got);
          }
        };
        for (std::uint32_t i = 0;
             i < k_thief_attempts && !producer_done.load(std::memory_order_acquire); ++i) {
          std::optional<std::uint32_t> got = owner.steal_into(mine);
          if (!got) got = neighbour.steal_into(mine);
          if (got) {
            mark(*got);
            // Take only part of our queue, so the neighbour has something to steal.
            for (int k = 0; k < 4; ++k) {
              if (std::optional<std::uint32_t> more = mine.pop()) mark(*more);
            }
          }
        }
        drain();
      });
    }
    await_value(thieves_ready, k_thieves);

    auto overflow = [&](std::span<std::uint32_t> items) {
      std::lock_guard<std::mutex> lock(overflow_mutex);
      overflowed.insert(overflowed.end(), items.begin(), items.end());
    };
    for (std::uint32_t v = 0; v < k_stress_items; ++v) {
      owner.push_back(v, overflow);
      if (v % 2 == 0) {
        if (std::optional<std::uint32_t> got = owner.pop()) mark(*got);
      }
    }
    producer_done.store(true, std::memory_order_release);
    for (std::thread& t : thieves)
      t.join();
    // After the joins this thread may act as the owner of every queue.
    for (std::uint32_t k = 0; k < owner.capacity(); ++k) {
      std::optional<std::uint32_t> got = owner.pop();
      if (!got) break;
      mark(*got);
    }
    for (auto& q : thief_queues) {
      for (std::uint32_t k = 0; k < q->capacity(); ++k) {
        std::optional<std::uint32_t> got = q->pop();
        if (!got) break;
        mark(*got);
      }
      CHECK(q->is_empty());
    }
    CHECK(owner.is_empty());
    for (std::uint32_t v : overflowed)
      mark(v);

    std::uint32_t missing = 0;
    std::uint32_t duplicated = 0;
    for (std::uint32_t v = 0; v < k_stress_items; ++v) {
      const std::uint8_t count = seen[v].load(std::memory_order_relaxed);
      missing += count == 0 ? 1 : 0;
      duplicated += count > 1 ? 1 : 0;
    }
    CHECK(missing == 0);
    CHECK(duplicated == 0);
  }
}
