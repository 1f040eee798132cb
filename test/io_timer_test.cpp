#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "support.hpp"

using namespace weft;
using namespace std::chrono_literals;
using weft::test::eventually;
using weft::test::Gate;
using weft::test::Tracked;

namespace {

using Clock = std::chrono::steady_clock;

Task<Clock::duration> measure_sleep(Clock::duration duration) {
  const auto start = Clock::now();
  co_await sleep_for(duration);
  co_return Clock::now() - start;
}

Task<void> sleep_long(std::atomic<int>& live, std::atomic<bool>& started) {
  Tracked tracked(live);
  started.store(true);
  co_await sleep_for(1h);
}

Task<int> wait_forever(Gate& gate, std::atomic<int>& live) {
  Tracked tracked(live);
  co_await gate.wait();
  co_return 1;
}

Task<void> spin_until(std::atomic<bool>& flag, std::atomic<int>& polls) {
  const auto limit = Clock::now() + 20s;
  while (!flag.load() && Clock::now() < limit) {
    polls.fetch_add(1);
    co_await yield_now();
  }
}

Task<void> set_after(Clock::duration duration, std::atomic<bool>& flag) {
  co_await sleep_for(duration);
  flag.store(true);
}

/// Arms `count` hour-long sleeps owned by the caller's vector, then returns.
class ArmSleeps {
 public:
  using Output = void;
  ArmSleeps(std::vector<Sleep>& sleeps, int count) : m_sleeps(sleeps), m_count(count) {}
  Poll<void> poll(Context& cx) {
    for (int i = 0; i < m_count; ++i) {
      m_sleeps.push_back(sleep_for(1h));
      (void)m_sleeps.back().poll(cx);
    }
    return ready();
  }

 private:
  std::vector<Sleep>& m_sleeps;
  int m_count;
};

Task<void> arm_sleeps(std::vector<Sleep>& sleeps, int count) {
  co_await ArmSleeps(sleeps, count);
}

}  // namespace

TEST_SUITE("timer") {
  TEST_CASE("a sleep never completes before its deadline") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    for (auto duration : {1ms, 7ms, 25ms}) {
      CHECK(runtime.block_on(measure_sleep(duration)) >= duration);
    }
  }

  TEST_CASE("a sleep whose deadline has passed is ready at its first poll") {
    Sleep sleep = sleep_until(Clock::now() - 1s);
    Waker waker = noop_waker();
    Context cx(waker);
    // Ready without touching a reactor, so this works outside a runtime too.
    CHECK(sleep.poll(cx).is_ready());
  }

  TEST_CASE("a pending sleep polled outside a runtime throws logic_error") {
    Sleep sleep = sleep_for(1h);
    Waker waker = noop_waker();
    Context cx(waker);
    CHECK_THROWS_AS((void)sleep.poll(cx), std::logic_error);
  }

  TEST_CASE("timer_cancel: aborting a sleeping task destroys it and its timer") {
    std::atomic<int> live{0};
    std::atomic<bool> started{false};
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto handle = runtime.spawn(sleep_long(live, started));
    REQUIRE(eventually([&] { return started.load(); }));
    handle.abort();
    CHECK_THROWS_AS(handle.join(), TaskCancelled);
    CHECK(live.load() == 0);
    // The hour-long timer must not keep the runtime from shutting down; LeakSanitizer (in
    // the ASan build) checks that the timer's memory is freed.
    runtime.shutdown();
  }

  TEST_CASE("timer_cancel: runtime shutdown cancels many pending sleeps") {
    std::atomic<int> live{0};
    std::atomic<bool> started{false};
    {
      Runtime runtime(RuntimeOptions{.workers = 2});
      for (int i = 0; i < 100; ++i)
        (void)runtime.spawn(sleep_long(live, started));
      REQUIRE(eventually([&] { return started.load(); }));
    }
    CHECK(live.load() == 0);
  }

  TEST_CASE("timeout_expires: timeout throws TimedOut and drops the future") {
    std::atomic<int> live{0};
    Gate gate;
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto body = [](Gate& g, std::atomic<int>& l) -> Task<bool> {
      try {
        (void)co_await timeout(20ms, wait_forever(g, l));
      } catch (const TimedOut&) {
        co_return l.load() == 0;  // the Task inside was destroyed with the timeout
      }
      co_return false;
    };
    CHECK(runtime.block_on(body(gate, live)));
  }

  TEST_CASE("timeout yields the value of a future that is ready in time") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto body = []() -> Task<int> {
      co_return co_await timeout(10s, []() -> Task<int> {
        co_await sleep_for(1ms);
        co_return 42;
      }());
    };
    CHECK(runtime.block_on(body()) == 42);
  }

  TEST_CASE("many concurrent sleeps all complete, none early") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto body = []() -> Task<int> {
      std::vector<JoinHandle<Clock::duration>> handles;
      for (int i = 0; i < 500; ++i)
        handles.push_back(spawn(measure_sleep(std::chrono::milliseconds(i % 20))));
      int early = 0;
      for (int i = 0; i < 500; ++i) {
        if (co_await handles[i] < std::chrono::milliseconds(i % 20)) ++early;
      }
      co_return early;
    };
    CHECK(runtime.block_on(body()) == 0);
  }

  TEST_CASE("timers still fire while a thread outside the runtime keeps closing timers") {
    // Dropping a Sleep on the main thread submits a loop op from outside the runtime. A
    // worker that found the driver token taken by such a passing holder once went to sleep
    // on its futex, leaving nobody in the loop: the 1 ms sleep below then never ended.
    for (std::size_t workers : {1, 2}) {
      Runtime runtime(RuntimeOptions{.workers = workers});
      for (int round = 0; round < 1000; ++round) {
        std::vector<Sleep> sleeps;
        sleeps.reserve(64);
        runtime.block_on(arm_sleeps(sleeps, 64));
        std::atomic<bool> woke{false};
        auto sleeper = runtime.spawn(set_after(1ms, woke));
        sleeps.clear();  // 64 close ops from this thread, racing the workers for the token
        REQUIRE_MESSAGE(eventually([&] { return woke.load(); }, 10s),
                        "a 1 ms sleep did not end within 10 s, in round " << round);
        sleeper.join();
      }
    }
  }

  TEST_CASE("busy workers still see a timer fire") {
    // Both workers spin through yield_now until the timer's task sets the flag: no worker
    // ever parks in the loop, so only the busy workers' periodic loop turns can fire it.
    std::atomic<bool> fired{false};
    std::atomic<int> polls{0};
    Runtime runtime(RuntimeOptions{.workers = 2});
    auto first = runtime.spawn(spin_until(fired, polls));
    auto second = runtime.spawn(spin_until(fired, polls));
    auto timer = runtime.spawn(set_after(5ms, fired));
    timer.join();
    first.join();
    second.join();
    CHECK(fired.load());
  }
}
