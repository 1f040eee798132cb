#include <doctest/doctest.h>

#include <atomic>
#include <csignal>

#include "support.hpp"

using namespace weft;
using weft::test::eventually;

namespace {

Task<int> count_deliveries(std::atomic<bool>& watching, std::atomic<bool>& raise_again) {
  auto usr2 = weft::signal(SIGUSR2);  // watched from here: created on a worker
  // release: pairs with the test's acquire load; the watch is installed before the flag.
  watching.store(true, std::memory_order_release);
  co_await usr2;
  // release: pairs with the test's acquire load; the first delivery was consumed before it.
  raise_again.store(true, std::memory_order_release);
  co_await usr2;  // the same future waits for the next delivery
  co_return 2;
}

}  // namespace

TEST_SUITE("signal") {
  TEST_CASE("a signal future completes at each delivery of its signal") {
    std::atomic<bool> watching{false};
    std::atomic<bool> raise_again{false};
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto handle = runtime.spawn(count_deliveries(watching, raise_again));
    // acquire: pairs with the release store after the watch is made in count_deliveries.
    REQUIRE(eventually([&] { return watching.load(std::memory_order_acquire); }));
    // Without the watch, SIGUSR2's default action would kill the test process here.
    ::raise(SIGUSR2);
    // acquire: pairs with the release store after the first delivery in count_deliveries.
    REQUIRE(eventually([&] { return raise_again.load(std::memory_order_acquire); }));
    ::raise(SIGUSR2);
    CHECK(handle.join() == 2);
  }

  TEST_CASE("deliveries that arrive before the task polls are counted, not lost") {
    std::atomic<bool> watching{false};
    weft::test::Gate raised;
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto handle = runtime.spawn([](std::atomic<bool>& w, weft::test::Gate& g) -> Task<int> {
      auto usr2 = weft::signal(SIGUSR2);
      w.store(true, std::memory_order_release);  // release: pairs with the acquire below
      co_await g.wait();                         // both deliveries happen while the task waits here
      co_await usr2;
      co_await usr2;
      co_return 2;
    }(watching, raised));
    // acquire: pairs with the task's release store once its watch is made.
    REQUIRE(eventually([&] { return watching.load(std::memory_order_acquire); }));
    // raise() runs libuv's handler before it returns, so each call is one delivery.
    ::raise(SIGUSR2);
    ::raise(SIGUSR2);
    raised.open();
    CHECK(handle.join() == 2);
  }

  TEST_CASE("ctrl_c watches SIGINT") {
    std::atomic<bool> watching{false};
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto handle = runtime.spawn([](std::atomic<bool>& w) -> Task<bool> {
      auto interrupt = ctrl_c();
      w.store(true, std::memory_order_release);  // release: pairs with the acquire below
      co_await interrupt;
      co_return interrupt.signum() == SIGINT;
    }(watching));
    // acquire: pairs with the task's release store once its watch is made.
    REQUIRE(eventually([&] { return watching.load(std::memory_order_acquire); }));
    ::raise(SIGINT);
    CHECK(handle.join());
  }
}
