#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "support.hpp"

using namespace weft;
using weft::test::eventually;
using weft::test::Tracked;

using weft::test::poll_by_hand;

TEST_SUITE("oneshot") {
  TEST_CASE("a value sent before the receive is received") {
    auto [tx_, rx_] = oneshot<std::string>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    CHECK(tx.send("hello"));
    auto poll = poll_by_hand(rx);
    REQUIRE(poll.is_ready());
    CHECK(poll.take() == "hello");
  }

  TEST_CASE("a receiver waiting in a task is woken by a send from another thread") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx_, rx_] = oneshot<int>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    auto body = [](OneshotReceiver<int> r) -> Task<int> { co_return co_await r; };
    auto handle = runtime.spawn(body(std::move(rx)));
    std::thread sender([&tx] { CHECK(tx.send(41)); });
    sender.join();
    CHECK(handle.join() == 41);
  }

  TEST_CASE("a dropped sender wakes the receiver with ChannelClosed") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx_, rx_] = oneshot<int>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    auto body = [](OneshotReceiver<int> r) -> Task<bool> {
      try {
        (void)co_await r;
      } catch (const ChannelClosed&) {
        co_return true;
      }
      co_return false;
    };
    auto handle = runtime.spawn(body(std::move(rx)));
    std::thread dropper(
        [sender = std::move(tx)]() mutable { OneshotSender<int> gone = std::move(sender); });
    dropper.join();
    CHECK(handle.join());
  }

  TEST_CASE("a send to a dropped receiver fails and drops the value once") {
    std::atomic<int> live{0};
    auto [tx_, rx_] = oneshot<Tracked>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    { auto gone = std::move(rx); }
    CHECK(tx.is_closed());
    CHECK_FALSE(tx.send(Tracked(live)));
    // relaxed: no other thread, so the count changes only on this one.
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a value nobody received is destroyed with the channel") {
    std::atomic<int> live{0};
    {
      auto [tx_, rx_] = oneshot<Tracked>();
      auto tx = std::move(tx_);
      auto rx = std::move(rx_);
      CHECK(tx.send(Tracked(live)));
      // relaxed, here and below: no other thread, so the count changes only on this one.
      CHECK(live.load(std::memory_order_relaxed) == 1);
    }
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a oneshot of void signals completion") {
    auto [tx_, rx_] = oneshot<void>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    CHECK(poll_by_hand(rx).is_pending());
    CHECK(tx.send());
    CHECK(poll_by_hand(rx).is_ready());
  }

  TEST_CASE("receiving twice reports a closed channel") {
    auto [tx_, rx_] = oneshot<int>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    CHECK(tx.send(1));
    CHECK(poll_by_hand(rx).is_ready());
    CHECK_THROWS_AS((void)poll_by_hand(rx), ChannelClosed);
  }

  TEST_CASE("a receiver polled from a new task replaces the stored waker") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx_, rx_] = oneshot<int>();
    auto tx = std::move(tx_);
    auto rx = std::move(rx_);
    CHECK(poll_by_hand(rx).is_pending());  // stores a noop waker first
    auto body = [](OneshotReceiver<int> r) -> Task<int> { co_return co_await r; };
    auto handle = runtime.spawn(body(std::move(rx)));
    // The task must have replaced the noop waker, or this send would never wake it.
    std::thread sender([&tx] { CHECK(tx.send(5)); });
    sender.join();
    CHECK(handle.join() == 5);
  }

  TEST_CASE("sends and receives race across threads without losing a value") {
    for (int round = 0; round < 2000; ++round) {
      auto [tx_, rx_] = oneshot<int>();
      auto tx = std::move(tx_);
      auto rx = std::move(rx_);
      std::thread sender([&tx, round] { CHECK(tx.send(round)); });
      Waker waker = noop_waker();
      Context cx(waker);
      int received = -1;
      CHECK(eventually([&] {
        auto poll = rx.poll(cx);
        if (poll.is_ready()) received = poll.take();
        return received >= 0;
      }));
      sender.join();
      CHECK(received == round);
    }
  }
}
