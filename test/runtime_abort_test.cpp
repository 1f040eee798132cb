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
  started->store(true);
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
      CHECK(eventually([&] { return live.load() == 0; }));
      CHECK_FALSE(started.load());
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
      CHECK(live == 2);  // the parameter and the local
      handle->abort();
      if (handle_fate == Handle::dropped) handle.reset();
      if (handle) {
        CHECK_THROWS_AS(handle->join(), TaskCancelled);
        CHECK(handle->is_finished());
      }
      CHECK(eventually([&] { return live.load() == 0; }));
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
        CHECK(live == 0);  // dropping the handle released the finished frame
      } else {
        CHECK(handle->join() == 5);
        CHECK(live == 0);
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
      CHECK(live == 0);
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
      in->store(true);
      (void)eventually([&] { return ab->load(); });
      co_await yield_now();  // the next suspension: the frame is destroyed here
      after->fetch_add(100);
    };
    std::atomic<int> after{0};
    auto handle = runtime.spawn(body(Tracked(live), &in_body, &aborted, &after));
    REQUIRE(eventually([&] { return in_body.load(); }));
    handle.abort();
    aborted.store(true);
    CHECK_THROWS_AS(handle.join(), TaskCancelled);
    CHECK(after == 0);
    CHECK(live == 0);
  }

  TEST_CASE("a task that finishes during the poll in which it was aborted keeps its value") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<bool> in_body{false};
    std::atomic<bool> aborted{false};
    auto body = [](std::atomic<bool>* in, std::atomic<bool>* ab) -> Task<int> {
      in->store(true);
      (void)eventually([&] { return ab->load(); });
      co_return 12;
    };
    auto handle = runtime.spawn(body(&in_body, &aborted));
    REQUIRE(eventually([&] { return in_body.load(); }));
    handle.abort();
    aborted.store(true);
    CHECK(handle.join() == 12);
  }
}
