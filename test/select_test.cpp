// weft::select: the first ready child wins, the others are destroyed before poll returns, and
// a child's exception ends the select. Most cases poll by hand so that the order of events is
// the test's; the rest run on a Runtime and are woken from other threads.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
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

TEST_SUITE("select") {
  TEST_CASE("the output is a variant of the children's outputs with void as std::monostate") {
    static_assert(
        std::is_same_v<SelectResult<int, void, int>, std::variant<int, std::monostate, int>>);
    static_assert(std::is_same_v<FutureOutput<Select<Task<std::string>, Task<void>>>,
                                 std::variant<std::string, std::monostate>>);
    static_assert(Future<Select<Task<int>, Never<int>>>);
    static_assert(!std::is_copy_constructible_v<Select<Never<int>, Never<int>>>);
    static_assert(std::is_move_constructible_v<Select<Task<int>, Task<void>>>);
  }

  TEST_CASE("the first child to be ready wins and its index names it") {
    std::atomic<int> dropped{0};
    int polls = 0;
    auto race = weft::select(Never<int>(dropped), Ready{5, &polls});
    auto poll = poll_by_hand(race);
    REQUIRE(poll.is_ready());
    auto won = poll.take();
    CHECK(won.index() == 1);
    CHECK(std::get<1>(won) == 5);
  }

  TEST_CASE("when several children are ready in one poll the earliest argument wins") {
    int first_polls = 0;
    int second_polls = 0;
    auto race = weft::select(Ready{1, &first_polls}, Ready{2, &second_polls});
    auto poll = poll_by_hand(race);
    REQUIRE(poll.is_ready());
    auto won = poll.take();
    CHECK(won.index() == 0);
    CHECK(std::get<0>(won) == 1);
    CHECK(first_polls == 1);
    CHECK(second_polls == 0);  // polling stops at the winner
  }

  TEST_CASE("the losers are destroyed before the winning poll returns") {
    std::atomic<int> live{0};
    std::atomic<int> dropped{0};
    Gate slow;
    Gate fast;
    auto race = weft::select(value_after(slow, 1, live), fast.wait(), Never<int>(dropped));
    CHECK(poll_by_hand(race).is_pending());
    // relaxed, here and below: polled by hand, so the counts change only on this thread.
    // The losing task has started and holds its local.
    CHECK(live.load(std::memory_order_relaxed) == 1);
    CHECK(dropped.load(std::memory_order_relaxed) == 0);
    fast.open();
    auto poll = poll_by_hand(race);
    REQUIRE(poll.is_ready());
    CHECK(poll.take().index() == 1);
    // The select itself is still alive; its children are not.
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);
  }

  TEST_CASE("a task racing a never-ready future completes with the task's value") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<int> dropped{0};
    auto child = []() -> Task<int> {
      co_await yield_now();  // pending once: the wake must reach the task through select
      co_await yield_now();
      co_return 42;
    };
    auto body = [](Task<int> task, std::atomic<int>& drops) -> Task<SelectResult<int, int>> {
      co_return co_await weft::select(std::move(task), Never<int>(drops));
    };
    auto won = runtime.block_on(body(child(), dropped));
    CHECK(won.index() == 0);
    CHECK(std::get<0>(won) == 42);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);  // relaxed: read after block_on
  }

  TEST_CASE("a void child wins with std::monostate") {
    std::atomic<int> dropped{0};
    auto race = weft::select(Never<void>(dropped), finish_now());
    auto poll = poll_by_hand(race);
    REQUIRE(poll.is_ready());
    auto won = poll.take();
    static_assert(std::is_same_v<decltype(won), std::variant<std::monostate, std::monostate>>);
    CHECK(won.index() == 1);  // a repeated type: only the index tells the branches apart
    CHECK(dropped.load(std::memory_order_relaxed) == 1);  // relaxed: polled by hand, on this thread
  }

  TEST_CASE("every child is polled with the select's waker, so any child's wake reaches it") {
    WakeCounter counter;
    Gate first;
    Gate second;
    auto race = weft::select(first.wait(), second.wait());
    CHECK(poll_with(race, counter).is_pending());
    Waker expected = counter.waker();
    REQUIRE(first.waker().has_value());
    REQUIRE(second.waker().has_value());
    CHECK(first.waker()->will_wake(expected));
    CHECK(second.waker()->will_wake(expected));
    second.wake_without_opening();
    CHECK(counter.wakes() == 1);
    CHECK(poll_with(race, counter).is_pending());  // a spurious wake: still pending
    CHECK(first.polls() == 2);
    CHECK(second.polls() == 2);
  }

  TEST_CASE("a send on one oneshot from another thread wakes the select and its branch wins") {
    WakeCounter counter;
    auto [tx_a_, rx_a_] = oneshot<int>();
    auto [tx_b_, rx_b_] = oneshot<std::string>();
    auto tx_a = std::move(tx_a_);
    auto tx_b = std::move(tx_b_);
    auto race = weft::select(std::move(rx_a_), std::move(rx_b_));
    CHECK(poll_with(race, counter).is_pending());
    std::thread sender([&tx_b] { CHECK(tx_b.send("from b")); });
    sender.join();
    CHECK(counter.wakes() == 1);
    auto poll = poll_with(race, counter);
    REQUIRE(poll.is_ready());
    auto won = poll.take();
    REQUIRE(won.index() == 1);
    CHECK(std::get<1>(won) == "from b");
    CHECK(tx_a.is_closed());  // the losing receiver was destroyed
  }

  TEST_CASE("a task awaiting select over oneshot receivers takes the branch that was sent") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx_a_, rx_a_] = oneshot<int>();
    auto [tx_b_, rx_b_] = oneshot<int>();
    auto tx_a = std::move(tx_a_);
    auto tx_b = std::move(tx_b_);
    auto body = [](OneshotReceiver<int> a, OneshotReceiver<int> b) -> Task<SelectResult<int, int>> {
      co_return co_await weft::select(std::move(a), std::move(b));
    };
    auto handle = runtime.spawn(body(std::move(rx_a_), std::move(rx_b_)));
    std::thread sender([&tx_b] { CHECK(tx_b.send(7)); });
    sender.join();
    auto won = handle.join();
    REQUIRE(won.index() == 1);
    CHECK(std::get<1>(won) == 7);
    CHECK(tx_a.is_closed());
  }

  TEST_CASE("a user leaf future woken from another thread wins for the task awaiting select") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    std::atomic<int> live{0};
    Gate never_opened;
    auto body = [](Gate& g, Gate& other, std::atomic<int>& l) -> Task<std::size_t> {
      auto won = co_await weft::select(value_after(other, 1, l), g.wait());
      co_return won.index();
    };
    auto handle = runtime.spawn(body(gate, never_opened, live));
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    // acquire: pairs with Tracked's acq_rel increment on the worker (the gate's mutex, taken
    // after it, already orders it before this read).
    CHECK(live.load(std::memory_order_acquire) == 1);
    std::thread opener([&gate] { gate.open(); });
    opener.join();
    CHECK(handle.join() == 1);
    CHECK(live.load(std::memory_order_relaxed) == 0);  // relaxed: read after the join
  }

  TEST_CASE("a child that throws ends the select with its exception after destroying the rest") {
    std::atomic<int> live{0};
    std::atomic<int> dropped{0};
    Gate slow;
    Gate trigger;
    auto race = weft::select(value_after(slow, 1, live), throw_after(trigger), Never<int>(dropped));
    CHECK(poll_by_hand(race).is_pending());
    // relaxed, here and below: polled by hand, so the counts change only on this thread.
    CHECK(live.load(std::memory_order_relaxed) == 1);
    trigger.open();
    CHECK_THROWS_WITH_AS((void)poll_by_hand(race), "child failed", std::runtime_error);
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);
    CHECK_THROWS_AS((void)poll_by_hand(race), std::logic_error);
  }

  TEST_CASE("a child's exception is rethrown at co_await select inside the awaiting task") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto body = []() -> Task<std::string> {
      std::atomic<int> dropped{0};
      Gate trigger;
      trigger.open();
      try {
        (void)co_await weft::select(Never<int>(dropped), throw_after(trigger));
      } catch (const std::runtime_error& e) {
        // relaxed: the select destroyed the loser on this thread before it rethrew.
        const bool other_dropped = dropped.load(std::memory_order_relaxed) == 1;
        co_return std::string(e.what()) + (other_dropped ? ", other dropped" : ", other alive");
      }
      co_return std::string("no exception");
    };
    CHECK(runtime.block_on(body()) == "child failed, other dropped");
  }

  TEST_CASE("polling a select after it completed throws std::logic_error") {
    int polls = 0;
    std::atomic<int> dropped{0};
    auto race = weft::select(Ready{3, &polls}, Never<int>(dropped));
    CHECK(poll_by_hand(race).is_ready());
    CHECK_THROWS_AS((void)poll_by_hand(race), std::logic_error);
    CHECK(polls == 1);
  }

  TEST_CASE("destroying a pending select destroys every child") {
    std::atomic<int> live{0};
    std::atomic<int> dropped{0};
    Gate gate;
    // relaxed: polled and destroyed by hand, so the counts change only on this thread.
    {
      auto race = weft::select(value_after(gate, 1, live), Never<int>(dropped));
      CHECK(poll_by_hand(race).is_pending());
      CHECK(live.load(std::memory_order_relaxed) == 1);
      CHECK(dropped.load(std::memory_order_relaxed) == 0);
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);
    CHECK(dropped.load(std::memory_order_relaxed) == 1);
  }
}
