// weft::join: every child runs to completion and the outputs come back in argument order; a
// child's exception cancels the rest at once. Most cases poll by hand so that the order of
// events is the test's; the rest run on a Runtime and are woken from other threads.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "combinator_support.hpp"
#include "support.hpp"

using namespace weft;
using weft::test::eventually;
using weft::test::finish_now;
using weft::test::Gate;
using weft::test::Never;
using weft::test::poll_by_hand;
using weft::test::poll_with;
using weft::test::Ready;
using weft::test::throw_after;
using weft::test::Tracked;
using weft::test::value_after;
using weft::test::value_now;
using weft::test::WakeCounter;

namespace {

/// Keeps `held` in its frame until the frame is destroyed, which is after the body finishes:
/// a parameter copy outlives the coroutine's final suspension.
Task<int> value_after_holding([[maybe_unused]] Tracked held, Gate& gate, int value) {
  co_await gate.wait();
  co_return value;
}

}  // namespace

TEST_SUITE("join") {
  TEST_CASE("the output is a tuple of the children's outputs with void as std::monostate") {
    static_assert(std::is_same_v<JoinResult<int, void, std::string>,
                                 std::tuple<int, std::monostate, std::string>>);
    static_assert(std::is_same_v<FutureOutput<Join<Task<void>>>, std::tuple<std::monostate>>);
    static_assert(Future<Join<Task<int>, Never<>>>);
    static_assert(!std::is_copy_constructible_v<Join<Never<>, Never<>>>);
    static_assert(std::is_move_constructible_v<Join<Task<int>, Task<void>>>);
  }

  TEST_CASE("join collects every child's output in argument order, void as std::monostate") {
    int polls = 0;
    auto all = weft::join(value_now(1), finish_now(), Ready{3, &polls});
    auto poll = poll_by_hand(all);
    REQUIRE(poll.is_ready());
    auto [one, nothing, three] = poll.take();
    CHECK(one == 1);
    CHECK(nothing == std::monostate{});
    CHECK(three == 3);
  }

  TEST_CASE("a join of one child yields a one-element tuple") {
    auto all = weft::join(value_now(9));
    auto poll = poll_by_hand(all);
    REQUIRE(poll.is_ready());
    CHECK(std::get<0>(poll.take()) == 9);
  }

  TEST_CASE("children that finish in reverse order are returned in argument order") {
    WakeCounter counter;
    auto [tx_a_, rx_a_] = oneshot<int>();
    auto [tx_b_, rx_b_] = oneshot<std::string>();
    auto [tx_c_, rx_c_] = oneshot<void>();
    auto tx_a = std::move(tx_a_);
    auto tx_b = std::move(tx_b_);
    auto tx_c = std::move(tx_c_);
    auto all = weft::join(std::move(rx_a_), std::move(rx_b_), std::move(rx_c_));
    CHECK(poll_with(all, counter).is_pending());
    CHECK(tx_c.send());
    CHECK(counter.wakes() == 1);
    CHECK(poll_with(all, counter).is_pending());
    CHECK(tx_b.send("b"));
    CHECK(counter.wakes() == 2);
    CHECK(poll_with(all, counter).is_pending());
    CHECK(tx_a.send(1));
    CHECK(counter.wakes() == 3);
    auto poll = poll_with(all, counter);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == std::tuple<int, std::string, std::monostate>(1, "b", std::monostate{}));
  }

  TEST_CASE("a task awaiting join is woken by sends from another thread in reverse order") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx_a_, rx_a_] = oneshot<int>();
    auto [tx_b_, rx_b_] = oneshot<int>();
    auto [tx_c_, rx_c_] = oneshot<int>();
    auto tx_a = std::move(tx_a_);
    auto tx_b = std::move(tx_b_);
    auto tx_c = std::move(tx_c_);
    auto body = [](OneshotReceiver<int> a, OneshotReceiver<int> b,
                   OneshotReceiver<int> c) -> Task<int> {
      auto [x, y, z] = co_await weft::join(std::move(a), std::move(b), std::move(c));
      co_return x * 100 + y * 10 + z;
    };
    auto handle = runtime.spawn(body(std::move(rx_a_), std::move(rx_b_), std::move(rx_c_)));
    std::thread sender([&] {
      CHECK(tx_c.send(3));
      CHECK(tx_b.send(2));
      CHECK(tx_a.send(1));
    });
    sender.join();
    CHECK(handle.join() == 123);
  }

  TEST_CASE("a finished child is destroyed at once and never polled again") {
    std::atomic<int> live{0};
    int polls = 0;
    Gate first;
    Gate last;
    auto all =
        weft::join(value_after_holding(Tracked(live), first, 1), Ready{2, &polls}, last.wait());
    // relaxed: polled by hand, so every change to `live` happens on this thread.
    CHECK(poll_by_hand(all).is_pending());
    CHECK(live.load(std::memory_order_relaxed) == 1);
    first.open();
    CHECK(poll_by_hand(all).is_pending());
    // The finished task's frame is gone while the join is pending.
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(polls == 1);
    CHECK(last.polls() == 2);
    last.open();
    auto poll = poll_by_hand(all);
    REQUIRE(poll.is_ready());
    CHECK(polls == 1);
    CHECK(std::get<0>(poll.take()) == 1);
  }

  TEST_CASE("a child that throws cancels the others at once and the exception propagates") {
    std::atomic<int> live{0};
    std::atomic<int> dropped{0};
    int polls = 0;
    Gate slow;
    Gate trigger;
    auto all = weft::join(Ready{0, &polls}, value_after(slow, 1, live), throw_after(trigger),
                          Never(dropped));
    // relaxed: polled by hand, so the counts change only on this thread.
    CHECK(poll_by_hand(all).is_pending());
    CHECK(live.load(std::memory_order_relaxed) == 1);
    trigger.open();
    CHECK_THROWS_WITH_AS((void)poll_by_hand(all), "child failed", std::runtime_error);
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);
    CHECK_THROWS_AS((void)poll_by_hand(all), std::logic_error);
  }

  TEST_CASE("a child's exception is rethrown at co_await join inside the awaiting task") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    std::atomic<int> live{0};
    auto body = [](Gate& g, std::atomic<int>& l) -> Task<std::string> {
      Gate trigger;
      trigger.open();
      try {
        (void)co_await weft::join(value_after(g, 1, l), throw_after(trigger));
      } catch (const std::runtime_error& e) {
        co_return std::string(e.what());
      }
      co_return std::string("no exception");
    };
    CHECK(runtime.block_on(body(gate, live)) == "child failed");
    // relaxed: read after block_on has returned.
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a user leaf future woken from another thread completes the join") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    auto body = [](Gate& g) -> Task<int> {
      auto [value, nothing] = co_await weft::join(value_now(5), g.wait());
      (void)nothing;
      co_return value;
    };
    auto handle = runtime.spawn(body(gate));
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    std::thread opener([&gate] { gate.open(); });
    opener.join();
    CHECK(handle.join() == 5);
  }

  TEST_CASE("polling a join after it completed throws std::logic_error") {
    auto all = weft::join(value_now(1), finish_now());
    CHECK(poll_by_hand(all).is_ready());
    CHECK_THROWS_AS((void)poll_by_hand(all), std::logic_error);
  }

  TEST_CASE("destroying a pending join destroys every unfinished child") {
    std::atomic<int> live{0};
    std::atomic<int> dropped{0};
    Gate gate;
    // relaxed: polled and destroyed by hand, so the counts change only on this thread.
    {
      auto all = weft::join(value_after(gate, 1, live), Never(dropped));
      CHECK(poll_by_hand(all).is_pending());
      CHECK(live.load(std::memory_order_relaxed) == 1);
      CHECK(dropped.load(std::memory_order_relaxed) == 0);
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);
  }

  TEST_CASE("joins and selects nest inside each other") {
    std::atomic<int> dropped{0};
    auto nested = weft::select(
        Never(dropped), weft::join(value_now(1), weft::select(Never(dropped), value_now(2))));
    auto poll = poll_by_hand(nested);
    REQUIRE(poll.is_ready());
    auto won = poll.take();
    REQUIRE(won.index() == 1);
    auto [one, inner] = std::get<1>(won);
    CHECK(one == 1);
    CHECK(inner.index() == 1);
    CHECK(std::get<1>(inner) == 2);
    // relaxed: polled by hand, so the count changes only on this thread.
    CHECK(dropped.load(std::memory_order_relaxed) == 2);
  }
}
