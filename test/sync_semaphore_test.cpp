// weft::Semaphore: FIFO hand-off, permits that go back on destruction, close, and
// cancellation that loses no permit. Most cases poll by hand so that the order of events is
// the test's; the rest run on a Runtime.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "support.hpp"
#include "weft.hpp"

using namespace weft;
using weft::test::poll_by_hand;
using weft::test::poll_with;
using weft::test::WakeCounter;

TEST_SUITE("semaphore") {
  TEST_CASE("a permit gives its permits back when destroyed") {
    Semaphore semaphore(3);
    {
      std::optional<SemaphorePermit> two = semaphore.try_acquire(2);
      REQUIRE(two);
      CHECK(two->count() == 2);
      CHECK(semaphore.available_permits() == 1);
      CHECK_FALSE(semaphore.try_acquire(2));
    }
    CHECK(semaphore.available_permits() == 3);
  }

  TEST_CASE("a forgotten permit stays out of the semaphore") {
    Semaphore semaphore(2);
    semaphore.try_acquire(1)->forget();
    CHECK(semaphore.available_permits() == 1);
  }

  TEST_CASE("an acquire with enough permits free is ready on its first poll") {
    Semaphore semaphore(1);
    auto acquire = semaphore.acquire();
    auto poll = poll_by_hand(acquire);
    REQUIRE(poll.is_ready());
    CHECK(poll.take().count() == 1);
    CHECK(semaphore.available_permits() == 1);  // the permit was destroyed with the poll
  }

  TEST_CASE("waiters are served in arrival order even when a later one wants fewer permits") {
    Semaphore semaphore(0);
    WakeCounter first_wakes, second_wakes;
    auto first = semaphore.acquire(2);
    auto second = semaphore.acquire(1);
    REQUIRE(poll_with(first, first_wakes).is_pending());
    REQUIRE(poll_with(second, second_wakes).is_pending());

    semaphore.add_permits(1);  // handed to the head, which still needs one more
    CHECK(first_wakes.wakes() == 0);
    CHECK(second_wakes.wakes() == 0);
    CHECK_FALSE(semaphore.try_acquire(1));  // no barging past the queue

    semaphore.add_permits(1);
    CHECK(first_wakes.wakes() == 1);
    CHECK(second_wakes.wakes() == 0);
    auto granted = poll_by_hand(first);
    REQUIRE(granted.is_ready());
    CHECK(poll_with(second, second_wakes).is_pending());

    { SemaphorePermit released = granted.take(); }
    CHECK(second_wakes.wakes() == 1);
    REQUIRE(poll_by_hand(second).is_ready());
    CHECK(semaphore.available_permits() == 2);
  }

  TEST_CASE("a waiter destroyed while queued gives back the permits it was handed") {
    Semaphore semaphore(0);
    WakeCounter behind_wakes;
    std::optional<AcquireFuture> big(semaphore.acquire(3));
    auto behind = semaphore.acquire(2);
    REQUIRE(poll_by_hand(*big).is_pending());
    REQUIRE(poll_with(behind, behind_wakes).is_pending());
    semaphore.add_permits(2);  // both go to the head
    CHECK(behind_wakes.wakes() == 0);

    big.reset();  // its two permits pass to the waiter behind
    CHECK(behind_wakes.wakes() == 1);
    auto poll = poll_by_hand(behind);
    REQUIRE(poll.is_ready());
    CHECK(semaphore.available_permits() == 0);
  }

  TEST_CASE("a waiter destroyed after its grant but before its poll gives the permits back") {
    Semaphore semaphore(0);
    std::optional<AcquireFuture> waiter(semaphore.acquire(2));
    REQUIRE(poll_by_hand(*waiter).is_pending());
    semaphore.add_permits(2);
    CHECK(semaphore.available_permits() == 0);  // granted to the waiter
    waiter.reset();
    CHECK(semaphore.available_permits() == 2);
  }

  TEST_CASE("a queued acquire keeps its place when moved") {
    Semaphore semaphore(0);
    WakeCounter wakes;
    auto original = semaphore.acquire();
    REQUIRE(poll_by_hand(original).is_pending());
    auto behind = semaphore.acquire();
    REQUIRE(poll_by_hand(behind).is_pending());
    AcquireFuture moved(std::move(original));
    REQUIRE(poll_with(moved, wakes).is_pending());
    semaphore.add_permits(1);
    CHECK(wakes.wakes() == 1);
    auto granted = poll_by_hand(moved);
    REQUIRE(granted.is_ready());
    CHECK(poll_by_hand(behind).is_pending());
    semaphore.add_permits(1);
    CHECK(poll_by_hand(behind).is_ready());
  }

  TEST_CASE("close wakes every waiter with SemaphoreClosed and refuses later acquires") {
    Semaphore semaphore(1);
    std::optional<SemaphorePermit> held = semaphore.try_acquire();
    WakeCounter wakes;
    auto waiter = semaphore.acquire();
    REQUIRE(poll_with(waiter, wakes).is_pending());
    semaphore.close();
    CHECK(semaphore.is_closed());
    CHECK(wakes.wakes() == 1);
    CHECK_THROWS_AS((void)poll_by_hand(waiter), SemaphoreClosed);
    auto later = semaphore.acquire();
    CHECK_THROWS_AS((void)poll_by_hand(later), SemaphoreClosed);
    CHECK_FALSE(semaphore.try_acquire());
    held.reset();  // a permit from before the close still goes back
    CHECK(semaphore.available_permits() == 1);
  }

  TEST_CASE("a completed acquire refuses another poll") {
    Semaphore semaphore(1);
    auto acquire = semaphore.acquire();
    REQUIRE(poll_by_hand(acquire).is_ready());
    CHECK_THROWS_AS((void)poll_by_hand(acquire), std::logic_error);
  }

  TEST_CASE("no more tasks than permits hold the semaphore at once") {
    constexpr int k_tasks = 32;
    constexpr int k_rounds = 200;
    constexpr std::size_t k_permits = 3;
    Runtime runtime(RuntimeOptions{.workers = 2});
    Semaphore semaphore(k_permits);
    std::atomic<int> holders{0};
    std::atomic<int> most{0};
    auto body = [&]() -> Task<void> {
      for (int i = 0; i < k_rounds; ++i) {
        SemaphorePermit permit = co_await semaphore.acquire();
        // relaxed: each counter is one atomic, whose read-modify-writes all see one
        // modification order; the semaphore's hand-off orders a holder's fetch_sub before
        // the next holder's fetch_add, and `most` is read after the join.
        const int now = holders.fetch_add(1, std::memory_order_relaxed) + 1;
        int seen = most.load(std::memory_order_relaxed);
        while (now > seen && !most.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
        co_await yield_now();
        holders.fetch_sub(1, std::memory_order_relaxed);
      }
    };
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < k_tasks; ++i)
      handles.push_back(runtime.spawn(body()));
    for (auto& handle : handles)
      handle.join();
    // relaxed: read after the tasks are joined.
    CHECK(most.load(std::memory_order_relaxed) <= static_cast<int>(k_permits));
    CHECK(most.load(std::memory_order_relaxed) >= 1);
    CHECK(semaphore.available_permits() == k_permits);
  }

  TEST_CASE("acquires cancelled by timeout lose no permit") {
    using namespace std::chrono_literals;
    constexpr int k_tasks = 8;
    constexpr int k_rounds = 100;
    Runtime runtime(RuntimeOptions{.workers = 2});
    Semaphore semaphore(1);
    std::atomic<int> timed_out{0};
    std::atomic<int> acquired{0};
    auto body = [&]() -> Task<void> {
      for (int i = 0; i < k_rounds; ++i) {
        try {
          SemaphorePermit permit = co_await timeout(50us, semaphore.acquire());
          // relaxed: counts read only after the tasks are joined.
          acquired.fetch_add(1, std::memory_order_relaxed);
          co_await yield_now();
        } catch (const TimedOut&) {
          timed_out.fetch_add(1, std::memory_order_relaxed);
        }
      }
    };
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < k_tasks; ++i)
      handles.push_back(runtime.spawn(body()));
    for (auto& handle : handles)
      handle.join();
    // relaxed: read after the tasks are joined.
    CHECK(acquired.load(std::memory_order_relaxed) + timed_out.load(std::memory_order_relaxed) ==
          k_tasks * k_rounds);
    CHECK(acquired.load(std::memory_order_relaxed) > 0);
    CHECK(semaphore.available_permits() == 1);
    CHECK(semaphore.try_acquire());  // and nobody is left queued in front
  }
}
