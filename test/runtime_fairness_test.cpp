// No task starves: not behind a pair of tasks that keep spawning each other through the LIFO
// slot, and not in the inject queue while the worker's own queue stays busy.
#include <doctest/doctest.h>

#include <atomic>

#include "support.hpp"

using namespace weft;
using weft::test::eventually;
using weft::test::Gate;

namespace {

// Bounded: a starved third task shows as the pair reaching this many spawns first.
constexpr long k_spawn_limit = 2'000'000;

struct PingPong {
  std::atomic<bool> stop{false};
  std::atomic<long> spawns{0};
};

Task<void> bounce(PingPong* game) {
  if (game->stop.load(std::memory_order_acquire)) co_return;
  if (game->spawns.fetch_add(1, std::memory_order_relaxed) >= k_spawn_limit) co_return;
  spawn(bounce(game));
}

/// Starts the pair of tasks that keep respawning each other.
Task<void> start_pair(PingPong* game) {
  spawn(bounce(game));
  spawn(bounce(game));
  co_return;
}

Task<void> mark(std::atomic<long>* seen_at, PingPong* game) {
  seen_at->store(game->spawns.load(std::memory_order_relaxed), std::memory_order_release);
  co_return;
}

}  // namespace

TEST_SUITE("fairness") {
  TEST_CASE("two tasks that keep respawning each other do not starve a third task") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    PingPong game;
    std::atomic<long> seen_at{-1};
    auto start = [](PingPong* g, std::atomic<long>* seen) -> Task<void> {
      // Each spawn takes the LIFO slot and pushes the previous one back, so the marker ends up
      // queued behind the pair: only the LIFO cap lets it run.
      spawn(mark(seen, g));
      spawn(bounce(g));
      spawn(bounce(g));
      co_return;
    };
    runtime.spawn(start(&game, &seen_at));
    REQUIRE(eventually([&] { return seen_at.load(std::memory_order_acquire) >= 0; }));
    game.stop.store(true, std::memory_order_release);
    // relaxed: written once, and that store was already seen by the acquire load above.
    CHECK(seen_at.load(std::memory_order_relaxed) < k_spawn_limit);
  }

  TEST_CASE("a task woken from outside runs while local tasks keep respawning") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    PingPong game;
    Gate gate;
    std::atomic<long> seen_at{-1};
    auto waiter = [](Gate* g, std::atomic<long>* seen, PingPong* p) -> Task<void> {
      co_await g->wait();
      seen->store(p->spawns.load(std::memory_order_relaxed), std::memory_order_release);
    };
    runtime.spawn(waiter(&gate, &seen_at, &game));
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    runtime.spawn(start_pair(&game));
    // relaxed: a progress count that publishes nothing.
    REQUIRE(eventually([&] { return game.spawns.load(std::memory_order_relaxed) > 1000; }));
    long opened_at = game.spawns.load(std::memory_order_relaxed);  // relaxed: as above
    gate.open();  // the wake goes through the inject queue
    REQUIRE(eventually([&] { return seen_at.load(std::memory_order_acquire) >= 0; }));
    game.stop.store(true, std::memory_order_release);
    CHECK(opened_at < k_spawn_limit);
    // relaxed: written once, and that store was already seen by the acquire load above.
    CHECK(seen_at.load(std::memory_order_relaxed) < k_spawn_limit);
  }

  TEST_CASE("a task spawned from outside runs while local tasks keep respawning") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    PingPong game;
    runtime.spawn(start_pair(&game));
    // relaxed: a progress count that publishes nothing.
    REQUIRE(eventually([&] { return game.spawns.load(std::memory_order_relaxed) > 1000; }));
    std::atomic<long> seen_at{-1};
    runtime.spawn(mark(&seen_at, &game));
    REQUIRE(eventually([&] { return seen_at.load(std::memory_order_acquire) >= 0; }));
    game.stop.store(true, std::memory_order_release);
    // relaxed: written once, and that store was already seen by the acquire load above.
    CHECK(seen_at.load(std::memory_order_relaxed) < k_spawn_limit);
  }
}
