// weft::Notify: one stored permit, FIFO notify_one, notify_waiters for everyone waiting, and
// cancelled waiters that pass their notification on.
#include <doctest/doctest.h>

#include <optional>
#include <thread>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using weft::test::poll_by_hand;
using weft::test::poll_with;
using weft::test::WakeCounter;

TEST_SUITE("notify") {
  TEST_CASE("a notify_one before the wait is stored, and only one is") {
    Notify notify;
    notify.notify_one();
    notify.notify_one();
    auto first = notify.notified();
    auto second = notify.notified();
    CHECK(poll_by_hand(first).is_ready());
    CHECK(poll_by_hand(second).is_pending());
  }

  TEST_CASE("notify_one wakes the waiter that has waited longest") {
    Notify notify;
    WakeCounter first_wakes, second_wakes;
    auto first = notify.notified();
    auto second = notify.notified();
    REQUIRE(poll_with(first, first_wakes).is_pending());
    REQUIRE(poll_with(second, second_wakes).is_pending());
    notify.notify_one();
    CHECK(first_wakes.wakes() == 1);
    CHECK(second_wakes.wakes() == 0);
    CHECK(poll_by_hand(first).is_ready());
    CHECK(poll_by_hand(second).is_pending());
  }

  TEST_CASE("notify_waiters completes every Notified that exists, polled or not, and no later") {
    Notify notify;
    WakeCounter polled_wakes;
    auto polled = notify.notified();
    auto unpolled = notify.notified();
    REQUIRE(poll_with(polled, polled_wakes).is_pending());
    notify.notify_waiters();
    auto later = notify.notified();
    CHECK(polled_wakes.wakes() == 1);
    CHECK(poll_by_hand(polled).is_ready());
    CHECK(poll_by_hand(unpolled).is_ready());
    CHECK(poll_by_hand(later).is_pending());  // and no permit was stored
  }

  TEST_CASE("a waiter destroyed after notify_one picked it passes the notification on") {
    Notify notify;
    std::optional<Notified> picked(notify.notified());
    WakeCounter next_wakes;
    auto next = notify.notified();
    REQUIRE(poll_by_hand(*picked).is_pending());
    REQUIRE(poll_with(next, next_wakes).is_pending());
    notify.notify_one();
    picked.reset();
    CHECK(next_wakes.wakes() == 1);
    CHECK(poll_by_hand(next).is_ready());
  }

  TEST_CASE("a picked waiter destroyed with nobody behind it leaves the permit stored") {
    Notify notify;
    std::optional<Notified> picked(notify.notified());
    REQUIRE(poll_by_hand(*picked).is_pending());
    notify.notify_one();
    picked.reset();
    auto later = notify.notified();
    CHECK(poll_by_hand(later).is_ready());
  }

  TEST_CASE("a waiter destroyed while queued does not take a later notification") {
    Notify notify;
    std::optional<Notified> gone(notify.notified());
    auto stays = notify.notified();
    REQUIRE(poll_by_hand(*gone).is_pending());
    REQUIRE(poll_by_hand(stays).is_pending());
    gone.reset();
    notify.notify_one();
    CHECK(poll_by_hand(stays).is_ready());
  }

  TEST_CASE("a task waiting on another worker is woken by a thread outside the runtime") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Notify notify;
    Notify started;
    auto waiter = [&]() -> Task<int> {
      auto notified = notify.notified();
      started.notify_one();
      co_await notified;
      co_return 7;
    };
    auto handle = runtime.spawn(waiter());
    runtime.block_on([&]() -> Task<void> { co_await started.notified(); }());
    std::thread([&notify] { notify.notify_waiters(); }).join();
    CHECK(handle.join() == 7);
  }
}
