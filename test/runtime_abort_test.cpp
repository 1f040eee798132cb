// JoinHandle::abort at each point of a task's life, with the handle kept or dropped.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>

#include "support.hpp"

using namespace weft;
using weft::test::Blocker;
using weft::test::eventually;
using weft::test::Gate;
using weft::test::Tracked;

namespace {

enum class Handle { kept, dropped };

Task<int> guarded_wait(Tracked guard, Gate* gate, std::atomic<bool>* started) {
  started->store(true, std::memory_order_release);  // release: pairs with the test's acquire
  Tracked local(*guard.m_live);
  co_await gate->wait();
  co_return 1;
}

Task<int> guarded_value(Tracked /*guard*/, int value) {
  co_return value;
}

}  // namespace

TEST_SUITE("abort") {
  TEST_CASE("abort before the first poll destroys the task without running it") {
    for (Handle handle_fate : {Handle::kept, Handle::dropped}) {
      CAPTURE(static_cast<int>(handle_fate));
      Runtime runtime(RuntimeOptions{.workers = 1});
      Blocker blocker;
      auto busy = runtime.spawn(blocker.occupy());
      REQUIRE(blocker.wait_running());

      std::atomic<int> live{0};
      std::atomic<bool> started{false};
      Gate gate;
      std::optional<JoinHandle<int>> handle =
          runtime.spawn(guarded_wait(Tracked(live), &gate, &started));
      handle->abort();
      if (handle_fate == Handle::dropped) handle.reset();
      blocker.release();
      busy.join();
      if (handle) {
        CHECK_THROWS_AS(handle->join(), TaskCancelled);
      }
      // acquire: pairs with Tracked's acq_rel decrement as the frame is destroyed.
      CHECK(eventually([&] { return live.load(std::memory_order_acquire) == 0; }));
      // acquire: pairs with guarded_wait's release store, had the body run (it ran before
      // the frame's destruction, which the acquire above has seen).
      CHECK_FALSE(started.load(std::memory_order_acquire));
    }
  }

  TEST_CASE("abort while suspended destroys the frame and its locals at once") {
    for (Handle handle_fate : {Handle::kept, Handle::dropped}) {
      CAPTURE(static_cast<int>(handle_fate));
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> live{0};
      std::atomic<bool> started{false};
      Gate gate;
      std::optional<JoinHandle<int>> handle =
          runtime.spawn(guarded_wait(Tracked(live), &gate, &started));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      // relaxed: the gate's mutex, taken by has_waiter() after the task registered its waker,
      // orders both increments before this read. 2: the parameter and the local.
      CHECK(live.load(std::memory_order_relaxed) == 2);
      handle->abort();
      if (handle_fate == Handle::dropped) handle.reset();
      if (handle) {
        CHECK_THROWS_AS(handle->join(), TaskCancelled);
        CHECK(handle->is_finished());
      }
      // acquire: pairs with Tracked's acq_rel decrement as the frame is destroyed.
      CHECK(eventually([&] { return live.load(std::memory_order_acquire) == 0; }));
      CHECK(gate.polls() == 1);  // cancelled, not polled again
    }
  }

  TEST_CASE("abort after completion leaves the result in place") {
    for (Handle handle_fate : {Handle::kept, Handle::dropped}) {
      CAPTURE(static_cast<int>(handle_fate));
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> live{0};
      std::optional<JoinHandle<int>> handle = runtime.spawn(guarded_value(Tracked(live), 5));
      REQUIRE(eventually([&] { return handle->is_finished(); }));
      handle->abort();
      if (handle_fate == Handle::dropped) {
        handle.reset();
        // acquire: pairs with Tracked's acq_rel decrement, on whichever thread dropped the
        // frame. Dropping the handle released the finished frame.
        CHECK(live.load(std::memory_order_acquire) == 0);
      } else {
        CHECK(handle->join() == 5);
        CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the join
      }
    }
  }

  TEST_CASE("abort after the result was taken does nothing") {
    for (Handle handle_fate : {Handle::kept, Handle::dropped}) {
      CAPTURE(static_cast<int>(handle_fate));
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> live{0};
      std::optional<JoinHandle<int>> handle = runtime.spawn(guarded_value(Tracked(live), 6));
      CHECK(handle->join() == 6);
      CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the join
      handle->abort();
      CHECK(handle->is_finished());
      if (handle_fate == Handle::dropped) handle.reset();
      CHECK(runtime.block_on(guarded_value(Tracked(live), 8)) == 8);
    }
  }

  TEST_CASE("abort while the task is being polled cancels it at its next suspension") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<int> live{0};
    std::atomic<bool> in_body{false};
    std::atomic<bool> aborted{false};
    auto body = [](Tracked /*guard*/, std::atomic<bool>* in, std::atomic<bool>* ab,
                   std::atomic<int>* after) -> Task<void> {
      in->store(true, std::memory_order_release);  // release: pairs with the test's acquire
      // acquire: pairs with the test's release store, made after its abort().
      (void)eventually([&] { return ab->load(std::memory_order_acquire); });
      co_await yield_now();  // the next suspension: the frame is destroyed here
      after->fetch_add(100, std::memory_order_relaxed);  // relaxed: read after the join
    };
    std::atomic<int> after{0};
    auto handle = runtime.spawn(body(Tracked(live), &in_body, &aborted, &after));
    // acquire: pairs with the body's release store.
    REQUIRE(eventually([&] { return in_body.load(std::memory_order_acquire); }));
    handle.abort();
    // release: pairs with the body's acquire load; the abort is made before the flag.
    aborted.store(true, std::memory_order_release);
    CHECK_THROWS_AS(handle.join(), TaskCancelled);
    // relaxed: read after the join.
    CHECK(after.load(std::memory_order_relaxed) == 0);
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a task that finishes during the poll in which it was aborted keeps its value") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<bool> in_body{false};
    std::atomic<bool> aborted{false};
    auto body = [](std::atomic<bool>* in, std::atomic<bool>* ab) -> Task<int> {
      in->store(true, std::memory_order_release);  // release: pairs with the test's acquire
      // acquire: pairs with the test's release store, made after its abort().
      (void)eventually([&] { return ab->load(std::memory_order_acquire); });
      co_return 12;
    };
    auto handle = runtime.spawn(body(&in_body, &aborted));
    // acquire: pairs with the body's release store.
    REQUIRE(eventually([&] { return in_body.load(std::memory_order_acquire); }));
    handle.abort();
    // release: pairs with the body's acquire load; the abort is made before the flag.
    aborted.store(true, std::memory_order_release);
    CHECK(handle.join() == 12);
  }
}
