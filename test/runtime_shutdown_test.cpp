// Runtime shutdown with tasks in every state. LeakSanitizer (the ASan build) checks that
// nothing is left behind.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <vector>

#include "support.hpp"

using namespace weft;
using weft::test::Blocker;
using weft::test::eventually;
using weft::test::Gate;
using weft::test::Tracked;

namespace {

Task<void> wait_on(Tracked /*guard*/, Gate* gate) {
  co_await gate->wait();
}

Task<void> receive(Tracked /*guard*/, OneshotReceiver<int> receiver) {
  (void)co_await receiver;
}

Task<void> respawn_forever(Tracked guard, std::atomic<long>* generations) {
  generations->fetch_add(1, std::memory_order_relaxed);  // relaxed: a progress count only
  spawn(respawn_forever(Tracked(*guard.m_live), generations));
  for (;;)
    co_await yield_now();
}

/// Spawns a task from its destructor, as cleanup code sometimes does.
struct SpawnsOnDestruction {
  std::atomic<int>* live;
  std::optional<JoinHandle<void>>* spawned;
  ~SpawnsOnDestruction() {
    auto noop = [](Tracked) -> Task<void> { co_return; };
    *spawned = spawn(noop(Tracked(*live)));
  }
};

}  // namespace

TEST_SUITE("shutdown") {
  TEST_CASE("shutdown cancels tasks that never ran") {
    std::atomic<int> live{0};
    std::vector<JoinHandle<void>> handles;
    Gate gate;
    {
      Runtime runtime(RuntimeOptions{.workers = 1});
      Blocker blocker;
      auto busy = runtime.spawn(blocker.occupy());
      REQUIRE(blocker.wait_running());
      for (int i = 0; i < 100; ++i)
        handles.push_back(runtime.spawn(wait_on(Tracked(live), &gate)));
      // relaxed: the frames were made on this thread and none has run (the worker is busy);
      // the second read is after the shutdown has joined the workers.
      CHECK(live.load(std::memory_order_relaxed) == 100);
      blocker.release();
      busy.join();
      runtime.shutdown();
      CHECK(live.load(std::memory_order_relaxed) == 0);
    }
    for (auto& handle : handles)
      CHECK_THROWS_AS(handle.join(), TaskCancelled);
  }

  TEST_CASE("shutdown cancels tasks sleeping on a waker and runs their destructors") {
    std::atomic<int> live{0};
    Gate gate;
    std::optional<OneshotSender<int>> sender;
    {
      Runtime runtime(RuntimeOptions{.workers = 2});
      auto [tx, rx] = oneshot<int>();
      sender.emplace(std::move(tx));
      runtime.spawn(receive(Tracked(live), std::move(rx)));
      runtime.spawn(wait_on(Tracked(live), &gate));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      // relaxed: both frames were made on this thread, and neither can finish yet.
      CHECK(live.load(std::memory_order_relaxed) == 2);
    }                                                  // the destructor shuts down
    CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the shutdown
    CHECK_FALSE(sender->send(1));                      // the receiver went with its task
  }

  TEST_CASE("shutdown stops tasks that keep respawning themselves") {
    std::atomic<int> live{0};
    std::atomic<long> generations{0};
    {
      Runtime runtime(RuntimeOptions{.workers = 2});
      runtime.spawn(respawn_forever(Tracked(live), &generations));
      // relaxed: a progress count that publishes nothing.
      REQUIRE(eventually([&] { return generations.load(std::memory_order_relaxed) > 1000; }));
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the shutdown
  }

  TEST_CASE("shutdown handles destructors that wake other tasks") {
    std::atomic<int> live{0};
    {
      Runtime runtime(RuntimeOptions{.workers = 2});
      // Each holder keeps the sender its partner waits on; cancelling the holder drops the
      // sender, which wakes the partner in the middle of shutdown.
      auto hold = [](Tracked, OneshotSender<int> /*keep*/, Gate* g) -> Task<void> {
        co_await g->wait();
      };
      std::vector<Gate> gates(50);
      for (auto& gate : gates) {
        auto [tx, rx] = oneshot<int>();
        runtime.spawn(receive(Tracked(live), std::move(rx)));
        runtime.spawn(hold(Tracked(live), std::move(tx), &gate));
      }
      REQUIRE(eventually([&] {
        for (auto& gate : gates) {
          if (!gate.has_waiter()) return false;
        }
        return true;
      }));
      // relaxed: every frame was made on this thread, and none can finish before the
      // shutdown; the later reads are after the shutdown has joined the workers.
      CHECK(live.load(std::memory_order_relaxed) == 100);
      runtime.shutdown();
      CHECK(live.load(std::memory_order_relaxed) == 0);
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a task spawned by a destructor during shutdown is cancelled at once") {
    std::atomic<int> live{0};
    std::optional<JoinHandle<void>> spawned;
    Gate gate;
    {
      Runtime runtime(RuntimeOptions{.workers = 1});
      auto body = [](std::atomic<int>* l, std::optional<JoinHandle<void>>* out,
                     Gate* g) -> Task<void> {
        SpawnsOnDestruction cleanup{l, out};
        co_await g->wait();
      };
      runtime.spawn(body(&live, &spawned, &gate));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      CHECK_FALSE(spawned.has_value());
    }
    REQUIRE(spawned.has_value());
    CHECK_THROWS_AS(spawned->join(), TaskCancelled);
    CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after shutdown and join
  }

  TEST_CASE("shutdown is idempotent and the destructor after it is a no-op") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    CHECK(runtime.block_on([]() -> Task<int> { co_return 1; }()) == 1);
    runtime.shutdown();
    runtime.shutdown();
  }

  TEST_CASE("a task spawned after shutdown is cancelled, not lost") {
    std::atomic<int> live{0};
    Runtime runtime(RuntimeOptions{.workers = 2});
    runtime.shutdown();
    auto body = [](Tracked) -> Task<int> { co_return 1; };
    auto handle = runtime.spawn(body(Tracked(live)));
    // relaxed: the shutdown joined the workers, so the frame is dropped on this thread.
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK_THROWS_AS(handle.join(), TaskCancelled);
  }

  TEST_CASE("shutdown from a worker thread is refused") {
    Runtime runtime(RuntimeOptions{.workers = 1});
    auto body = [](Runtime* rt) -> Task<bool> {
      try {
        rt->shutdown();
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    };
    CHECK(runtime.block_on(body(&runtime)));
  }
}
