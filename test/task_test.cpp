#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>

#include "support.hpp"

using namespace weft;
using weft::test::Gate;
using weft::test::Tracked;

namespace {

constexpr int k_chain = 1'000'000;

/// Polls a task by hand, as the runtime would, with a waker that does nothing.
template <class T>
Poll<T> poll_once(Task<T>& task) {
  Waker waker = noop_waker();
  Context cx(waker);
  return task.poll(cx);
}

Task<int> answer() {
  co_return 42;
}

Task<int> add_one(Task<int> inner) {
  co_return 1 + co_await inner;
}

Task<int> throws() {
  throw std::runtime_error("boom");
  co_return 0;
}

Task<void> sync_void() {
  co_return;
}

Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

struct ThrowingFuture {
  Poll<int> poll(Context&) { throw std::logic_error("leaf failed"); }
};

/// Pending on the first poll (without waking anyone), ready after.
struct PendingOnce {
  bool polled = false;
  Poll<int> poll(Context&) {
    if (polled) return Poll<int>(7);
    polled = true;
    return pending;
  }
};

}  // namespace

TEST_SUITE("task") {
  TEST_CASE("a task does not start until it is first polled") {
    bool started = false;
    auto make = [&]() -> Task<void> {
      started = true;
      co_return;
    };
    Task<void> task = make();
    CHECK_FALSE(started);
    CHECK(poll_once(task).is_ready());
    CHECK(started);
  }

  TEST_CASE("co_await on a child task returns its value") {
    Task<int> task = add_one(answer());
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == 43);
  }

  TEST_CASE("an exception thrown in a child task is rethrown at co_await") {
    auto outer = []() -> Task<std::string> {
      try {
        co_await throws();
      } catch (const std::runtime_error& e) {
        co_return std::string(e.what());
      }
      co_return std::string("not thrown");
    };
    Task<std::string> task = outer();
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == "boom");
  }

  TEST_CASE("an exception escaping the root task is rethrown by poll") {
    Task<int> task = throws();
    CHECK_THROWS_AS((void)poll_once(task), std::runtime_error);
  }

  TEST_CASE("a million synchronous completions in a loop do not overflow the stack") {
    auto loop = []() -> Task<int> {
      int count = 0;
      for (int i = 0; i < k_chain; ++i) {
        co_await sync_void();
        ++count;
      }
      co_return count;
    };
    Task<int> task = loop();
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == k_chain);
  }

  TEST_CASE("a chain of a million nested awaits completes without overflowing the stack") {
    Task<int> task = nested(k_chain);
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == k_chain);
  }

  TEST_CASE("a pending leaf suspends the task until a later poll finds it ready") {
    auto body = []() -> Task<int> {
      PendingOnce leaf;
      int value = co_await leaf;
      co_return value * 2;
    };
    Task<int> task = body();
    CHECK(poll_once(task).is_pending());
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == 14);
  }

  TEST_CASE("a spurious poll checks the leaf again without resuming the coroutine") {
    Gate gate;
    int resumed = 0;
    auto body = [&]() -> Task<void> {
      co_await gate.wait();
      ++resumed;
    };
    Task<void> task = body();
    CHECK(poll_once(task).is_pending());
    CHECK(poll_once(task).is_pending());
    CHECK(gate.polls() == 2);
    CHECK(resumed == 0);
    gate.open();
    CHECK(poll_once(task).is_ready());
    CHECK(resumed == 1);
  }

  TEST_CASE("a leaf that throws when polled makes co_await rethrow inside the task") {
    auto body = []() -> Task<std::string> {
      try {
        co_await ThrowingFuture{};
      } catch (const std::logic_error& e) {
        co_return std::string(e.what());
      }
      co_return std::string();
    };
    Task<std::string> task = body();
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == "leaf failed");
  }

  TEST_CASE("a leaf that throws on a later poll is rethrown inside the task") {
    struct ThrowsSecond {
      int polls = 0;
      Poll<int> poll(Context&) {
        if (polls++ == 0) return pending;
        throw std::out_of_range("late");
      }
    };
    auto body = []() -> Task<bool> {
      try {
        co_await ThrowsSecond{};
      } catch (const std::out_of_range&) {
        co_return true;
      }
      co_return false;
    };
    Task<bool> task = body();
    CHECK(poll_once(task).is_pending());
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take());
  }

  TEST_CASE("destroying a suspended task runs the destructors of its locals and children") {
    std::atomic<int> live{0};
    Gate gate;
    auto child = [&]() -> Task<void> {
      Tracked inner(live);
      co_await gate.wait();
    };
    auto parent = [&]() -> Task<void> {
      Tracked outer(live);
      co_await child();
    };
    {
      Task<void> task = parent();
      CHECK(poll_once(task).is_pending());
      // relaxed: polled and destroyed by hand, so the count changes only on this thread.
      CHECK(live.load(std::memory_order_relaxed) == 2);
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("co_await on a moved-from task throws inside the awaiting task") {
    auto body = []() -> Task<bool> {
      Task<int> child = answer();
      Task<int> taken = std::move(child);
      bool refused = false;
      try {
        (void)co_await child;
      } catch (const std::invalid_argument&) {
        refused = true;
      }
      co_return refused&& co_await taken == 42;
    };
    Task<bool> task = body();
    auto poll = poll_once(task);
    REQUIRE(poll.is_ready());
    CHECK(poll.take());
  }

  TEST_CASE("a moved task keeps its progress") {
    Gate gate;
    auto body = [&]() -> Task<int> {
      co_await gate.wait();
      co_return 5;
    };
    Task<int> first = body();
    CHECK(poll_once(first).is_pending());
    Task<int> second = std::move(first);
    CHECK_FALSE(first.valid());
    gate.open();
    auto poll = poll_once(second);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == 5);
  }
}
