// weft::mpsc: bounded multi-producer channels. Every message arrives once and in each
// sender's order; full channels make senders wait; closing works from both ends; cancelled
// sends and receives lose nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using weft::test::poll_by_hand;
using weft::test::poll_with;
using weft::test::Tracked;
using weft::test::WakeCounter;

namespace {

/// A message whose copy throws when asked to.
struct Fragile {
  int value = 0;
  bool throw_on_copy = false;
  Fragile(int v, bool fragile) : value(v), throw_on_copy(fragile) {}
  Fragile(const Fragile& other) : value(other.value), throw_on_copy(false) {
    if (other.throw_on_copy) throw std::runtime_error("copy refused");
  }
  Fragile(Fragile&&) noexcept = default;
};

}  // namespace

TEST_SUITE("mpsc") {
  TEST_CASE("many producers deliver every message once, each in its sender's order") {
    constexpr int k_producers = 4;
    constexpr int k_messages = 20'000;
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx, rx] = mpsc::channel<std::pair<int, int>>(16);
    auto producer = [](mpsc::Sender<std::pair<int, int>> sender_argument, int id) -> Task<void> {
      // A finished task's parameters live until its JoinHandle goes; a local goes at once.
      auto sender = std::move(sender_argument);
      for (int i = 0; i < k_messages; ++i)
        co_await sender.send(std::pair{id, i});
    };
    std::vector<JoinHandle<void>> producers;
    for (int id = 0; id < k_producers; ++id)
      producers.push_back(runtime.spawn(producer(tx, id)));
    { auto last = std::move(tx); }
    auto consumer = [](mpsc::Receiver<std::pair<int, int>> receiver) -> Task<bool> {
      std::vector<int> next(k_producers, 0);
      while (auto message = co_await receiver.recv()) {
        auto [id, sequence] = *message;
        if (sequence != next[id]) co_return false;  // lost, duplicated or reordered
        ++next[id];
      }
      for (int count : next)
        if (count != k_messages) co_return false;
      co_return true;
    };
    CHECK(runtime.block_on(consumer(std::move(rx))));
    for (auto& handle : producers)
      handle.join();
  }

  TEST_CASE("recv yields nullopt once every sender is gone and the queue is drained") {
    auto [tx, rx] = mpsc::channel<int>(4);
    CHECK(tx.try_send(1) == mpsc::TrySendStatus::sent);
    auto copy = tx;
    CHECK(copy.try_send(2) == mpsc::TrySendStatus::sent);
    { auto gone = std::move(tx); }
    CHECK_FALSE(rx.is_closed());
    { auto gone = std::move(copy); }
    CHECK(rx.is_closed());
    auto recv = rx.recv();
    CHECK(poll_by_hand(recv).take() == std::optional<int>(1));
    CHECK(poll_by_hand(recv).take() == std::optional<int>(2));
    CHECK(poll_by_hand(recv).take() == std::nullopt);
  }

  TEST_CASE("the last sender leaving wakes a waiting receiver") {
    auto [tx, rx] = mpsc::channel<int>(4);
    WakeCounter wakes;
    auto recv = rx.recv();
    REQUIRE(poll_with(recv, wakes).is_pending());
    { auto gone = std::move(tx); }
    CHECK(wakes.wakes() == 1);
    CHECK(poll_by_hand(recv).take() == std::nullopt);
  }

  TEST_CASE("send waits while the channel is full and goes through once a slot frees") {
    auto [tx, rx] = mpsc::channel<int>(1);
    auto first = tx.send(1);
    REQUIRE(poll_by_hand(first).is_ready());
    WakeCounter wakes;
    auto second = tx.send(2);
    REQUIRE(poll_with(second, wakes).is_pending());
    CHECK(rx.try_recv() == std::optional<int>(1));
    CHECK(wakes.wakes() == 1);
    REQUIRE(poll_by_hand(second).is_ready());
    CHECK(rx.try_recv() == std::optional<int>(2));
    CHECK(rx.try_recv() == std::nullopt);
  }

  TEST_CASE("try_send reports full and closed and leaves the value untouched") {
    auto [tx, rx_] = mpsc::channel<std::string>(1);
    std::optional<mpsc::Receiver<std::string>> rx(std::move(rx_));
    std::string first = "first";
    CHECK(tx.try_send(std::move(first)) == mpsc::TrySendStatus::sent);
    std::string second = "second";
    CHECK(tx.try_send(std::move(second)) == mpsc::TrySendStatus::full);
    CHECK(second == "second");
    rx.reset();
    CHECK(tx.is_closed());
    CHECK(tx.try_send(std::move(second)) == mpsc::TrySendStatus::closed);
    CHECK(second == "second");
  }

  TEST_CASE("dropping the receiver fails waiting senders and destroys queued messages") {
    std::atomic<int> live{0};
    auto [tx, rx_] = mpsc::channel<Tracked>(2);
    std::optional<mpsc::Receiver<Tracked>> rx(std::move(rx_));
    REQUIRE(tx.try_send(Tracked(live)) == mpsc::TrySendStatus::sent);
    REQUIRE(tx.try_send(Tracked(live)) == mpsc::TrySendStatus::sent);
    WakeCounter wakes;
    std::optional<mpsc::SendFuture<Tracked>> waiting(tx.send(Tracked(live)));
    REQUIRE(poll_with(*waiting, wakes).is_pending());
    // relaxed, here and below: no runtime, so the counts change only on this thread.
    CHECK(live.load(std::memory_order_relaxed) == 3);
    rx.reset();
    // The two queued ones went with the receiver; the third waits in `waiting`.
    CHECK(live.load(std::memory_order_relaxed) == 1);
    CHECK(wakes.wakes() == 1);
    CHECK_THROWS_AS((void)poll_by_hand(*waiting), ChannelClosed);
    waiting.reset();
    CHECK(live.load(std::memory_order_relaxed) == 0);
  }

  TEST_CASE("a queued reply channel is closed when the receiver goes, so its sender is told") {
    auto [tx, rx] = mpsc::channel<OneshotSender<int>>(4);
    auto [reply_tx, reply_rx] = oneshot<int>();
    REQUIRE(tx.try_send(std::move(reply_tx)) == mpsc::TrySendStatus::sent);
    { auto gone = std::move(rx); }  // the server goes without answering; tx keeps the channel
    CHECK_THROWS_AS((void)poll_by_hand(reply_rx), ChannelClosed);
  }

  TEST_CASE("a reserved permit counts as a sender and may outlive both ends") {
    auto [tx_, rx_] = mpsc::channel<int>(2);
    std::optional<mpsc::Sender<int>> tx(std::move(tx_));
    std::optional<mpsc::Receiver<int>> rx(std::move(rx_));
    auto reserve = tx->reserve();
    std::optional<mpsc::SendPermit<int>> permit(poll_by_hand(reserve).take());
    tx.reset();
    CHECK_FALSE(rx->is_closed());  // the permit may still send
    auto recv = rx->recv();
    CHECK(poll_by_hand(recv).is_pending());
    permit->send(42);
    permit.reset();
    CHECK(poll_by_hand(recv).take() == std::optional<int>(42));
    CHECK(poll_by_hand(recv).take() == std::nullopt);  // now every sender is gone

    auto [tx2, rx2_] = mpsc::channel<std::string>(1);
    std::optional<mpsc::Receiver<std::string>> rx2(std::move(rx2_));
    auto reserve2 = tx2.reserve();
    mpsc::SendPermit<std::string> lasting = poll_by_hand(reserve2).take();
    { auto gone = std::move(tx2); }
    rx2.reset();
    lasting.send(std::string(64, 'x'));  // the receiver is gone: destroyed, no use-after-free
  }

  TEST_CASE("a send destroyed while waiting for a slot holds no slot") {
    auto [tx, rx] = mpsc::channel<int>(1);
    REQUIRE(tx.try_send(1) == mpsc::TrySendStatus::sent);
    {
      auto cancelled = tx.send(2);
      REQUIRE(poll_by_hand(cancelled).is_pending());
    }
    CHECK(rx.try_recv() == std::optional<int>(1));
    CHECK(tx.try_send(3) == mpsc::TrySendStatus::sent);
    CHECK(rx.try_recv() == std::optional<int>(3));
  }

  TEST_CASE("a reserved slot is freed when its permit is dropped unused") {
    auto [tx, rx] = mpsc::channel<int>(1);
    auto reserve = tx.reserve();
    {
      auto permit = poll_by_hand(reserve).take();
      CHECK(tx.try_send(1) == mpsc::TrySendStatus::full);
    }
    CHECK(tx.try_send(1) == mpsc::TrySendStatus::sent);
    auto again = tx.reserve();
    CHECK(poll_by_hand(again).is_pending());
    CHECK(rx.try_recv() == std::optional<int>(1));
    poll_by_hand(again).take().send(2);
    CHECK(rx.try_recv() == std::optional<int>(2));
  }

  TEST_CASE("a message whose construction throws is skipped and its slot freed") {
    auto [tx, rx] = mpsc::channel<Fragile>(2);
    const Fragile bad(1, true);
    const Fragile good(2, false);
    CHECK_THROWS_AS((void)tx.try_send(bad), std::runtime_error);
    CHECK(tx.try_send(good) == mpsc::TrySendStatus::sent);
    auto received = rx.try_recv();
    REQUIRE(received);
    CHECK(received->value == 2);
    CHECK(tx.try_send(good) == mpsc::TrySendStatus::sent);
    CHECK(tx.try_send(good) == mpsc::TrySendStatus::sent);  // both slots are free again
  }

  TEST_CASE("receives and sends cancelled by timeout lose no message") {
    using namespace std::chrono_literals;
    constexpr int k_messages = 2'000;
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto [tx, rx] = mpsc::channel<int>(2);
    std::atomic<int> send_timeouts{0};
    // Both loops give up after 60 s, or a lost wake-up would hang the test instead of failing.
    auto producer = [&send_timeouts](mpsc::Sender<int> sender_argument) -> Task<void> {
      auto sender = std::move(sender_argument);  // see the first test
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      for (int i = 0; i < k_messages && std::chrono::steady_clock::now() < deadline;) {
        try {
          // reserve, not send: a timed-out reserve gives up no message.
          auto permit = co_await timeout(20us, sender.reserve());
          permit.send(i);
          ++i;
        } catch (const TimedOut&) {
          send_timeouts.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic only
        }
      }
    };
    auto consumer = [](mpsc::Receiver<int> receiver) -> Task<int> {
      int expected = 0;
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < deadline) {
        try {
          std::optional<int> message = co_await timeout(20us, receiver.recv());
          if (!message) co_return expected;
          if (*message != expected) co_return -1;
          ++expected;
        } catch (const TimedOut&) {
        }
      }
      co_return -2;
    };
    auto produced = runtime.spawn(producer(std::move(tx)));
    CHECK(runtime.block_on(consumer(std::move(rx))) == k_messages);
    produced.join();
  }
}
