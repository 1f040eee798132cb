// Wake semantics of spawned tasks, through the runtime, woken from raw threads and from tasks.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "support.hpp"
#include "task/state.hpp"

using namespace weft;
using weft::detail::TaskState;
using weft::test::Blocker;
using weft::test::eventually;
using weft::test::Gate;

namespace {

/// Wakes `waker` from a raw thread, or from a task spawned on `runtime`.
enum class Waker_from { raw_thread, task };

void wake_from(Waker_from from, Runtime& runtime, const Waker& waker, int times) {
  if (from == Waker_from::raw_thread) {
    std::thread thread([&] {
      for (int i = 0; i < times; ++i)
        waker.wake_by_ref();
    });
    thread.join();
  } else {
    auto body = [](Waker w, int n) -> Task<void> {
      for (int i = 0; i < n; ++i)
        w.wake_by_ref();
      co_return;
    };
    runtime.spawn(body(waker, times)).join();
  }
}

/// A future that, on its first poll, wakes itself from inside the poll and returns pending.
struct WakesItselfOnce {
  std::atomic<int>* polls;
  Poll<void> poll(Context& cx) {
    // relaxed: the runtime orders one task's polls, and the test reads after the join.
    if (polls->fetch_add(1, std::memory_order_relaxed) == 0) {
      cx.waker().wake_by_ref();
      return pending;
    }
    return ready();
  }
};

/// A future whose first poll waits (bounded) for another thread to wake it mid-poll.
struct WokenDuringPoll {
  std::atomic<int>* polls;
  std::atomic<bool>* in_poll;
  std::atomic<bool>* woken;
  std::optional<Waker>* waker_out;
  Poll<void> poll(Context& cx) {
    // relaxed: the runtime orders one task's polls, and the test reads after the join.
    if (polls->fetch_add(1, std::memory_order_relaxed) > 0) return ready();
    *waker_out = cx.waker();
    in_poll->store(true, std::memory_order_release);
    (void)eventually([&] { return woken->load(std::memory_order_acquire); });
    return pending;
  }
};

}  // namespace

TEST_SUITE("waker") {
  TEST_CASE("the state word coalesces wakes and defers a wake during a poll") {
    TaskState state;                                               // new: notified, not running
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // already scheduled
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // running: only NOTIFIED
    CHECK(state.transition_to_idle(false) == TaskState::IdleAction::requeue);
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.transition_to_idle(false) == TaskState::IdleAction::idle);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::submit);   // idle: schedule once
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // and only once
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    (void)state.transition_to_complete();
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // complete: no-op
  }

  TEST_CASE("the state word frees the task on the last reference, even from a late wake") {
    TaskState state;
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    (void)state.transition_to_complete();
    CHECK_FALSE(state.ref_dec(2));  // the poller's and the owned list's
    state.ref_inc();                // a waker's
    CHECK_FALSE(state.ref_dec());   // the join handle's
    CHECK(state.wake_by_val() == TaskState::WakeAction::deallocate);
  }

  TEST_CASE("a detached task completes and drops its references in one step") {
    TaskState state;
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK_FALSE(state.drop_join_interest());  // detached: the handle's reference goes too
    state.ref_inc();                          // a waker outlives the task
    CHECK_FALSE(state.complete_detached(2));  // the poller's and the owned list's
    CHECK(state.is_complete());
    CHECK((state.load(std::memory_order_relaxed) & TaskState::k_running) == 0);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);
    CHECK(state.wake_by_val() == TaskState::WakeAction::deallocate);
  }

  TEST_CASE("a task only its poller can reach goes through the same states without RMWs") {
    using Word = TaskState::Word;
    TaskState state;
    CHECK_FALSE(state.drop_join_interest());  // detached: the owned list's and the notified
    CHECK(TaskState::refs_of(state.load(std::memory_order_relaxed)) == 2);
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    Word word = state.load(std::memory_order_relaxed);
    CHECK((word & TaskState::k_running) != 0);
    CHECK((word & TaskState::k_notified) == 0);
    // A self-wake (yield_now): requeued with the poller's reference as the notified one.
    CHECK(state.transition_to_idle(true) == TaskState::IdleAction::requeue);
    word = state.load(std::memory_order_relaxed);
    CHECK((word & (TaskState::k_running | TaskState::k_notified)) == TaskState::k_notified);
    CHECK(TaskState::refs_of(word) == 2);
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.transition_to_idle(false) == TaskState::IdleAction::idle);
    CHECK(TaskState::refs_of(state.load(std::memory_order_relaxed)) == 1);  // the owned list's
    state.ref_inc();                                                        // a waker
    CHECK(state.wake_by_val() == TaskState::WakeAction::submit);
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.complete_detached(2));  // sole owner: the caller frees it
  }

  TEST_CASE("a self-wake and a wake from elsewhere in one poll make one more run") {
    TaskState state;
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // another thread: NOTIFIED
    CHECK(state.transition_to_idle(true) == TaskState::IdleAction::requeue);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);  // queued already
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.transition_to_idle(false) == TaskState::IdleAction::idle);
    CHECK(TaskState::refs_of(state.load(std::memory_order_relaxed)) == 2);  // list and handle
  }

  TEST_CASE("a handle dropped while its task waits in a private slot detaches it") {
    TaskState alone;  // only the spawn's three references: the load-and-store path
    CHECK_FALSE(alone.drop_join_interest(true));
    TaskState::Word word = alone.load(std::memory_order_relaxed);
    CHECK(TaskState::refs_of(word) == 2);
    CHECK((word & TaskState::k_join_interest) == 0);
    CHECK((word & TaskState::k_notified) != 0);

    TaskState shared;  // a waker exists too: the read-modify-write path, with the same result
    shared.ref_inc();
    CHECK_FALSE(shared.drop_join_interest(true));
    word = shared.load(std::memory_order_relaxed);
    CHECK(TaskState::refs_of(word) == 3);
    CHECK((word & TaskState::k_join_interest) == 0);
  }

  TEST_CASE("abort of an idle task schedules it once, marked cancelled") {
    TaskState state;
    CHECK(state.transition_to_running() == TaskState::RunAction::poll);
    CHECK(state.transition_to_idle(false) == TaskState::IdleAction::idle);
    CHECK(state.transition_to_cancelled() == TaskState::WakeAction::submit);
    CHECK(state.transition_to_cancelled() == TaskState::WakeAction::nothing);
    CHECK(state.wake_by_ref() == TaskState::WakeAction::nothing);
    CHECK(state.transition_to_running() == TaskState::RunAction::cancel);
  }

  TEST_CASE("a wake during the poll, by the task itself, runs the task once more after it") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    std::atomic<int> polls{0};
    auto body = [](std::atomic<int>* p) -> Task<void> { co_await WakesItselfOnce{p}; };
    runtime.block_on(body(&polls));
    CHECK(polls.load(std::memory_order_relaxed) == 2);  // relaxed: read after block_on
  }

  TEST_CASE("a wake during the poll, from another thread, runs the task once more after it") {
    for (Waker_from from : {Waker_from::raw_thread, Waker_from::task}) {
      CAPTURE(static_cast<int>(from));
      Runtime runtime(RuntimeOptions{.workers = 2});
      std::atomic<int> polls{0};
      std::atomic<bool> in_poll{false};
      std::atomic<bool> woken{false};
      std::optional<Waker> waker;
      auto body = [](WokenDuringPoll future) -> Task<void> { co_await future; };
      auto handle = runtime.spawn(body(WokenDuringPoll{&polls, &in_poll, &woken, &waker}));
      REQUIRE(eventually([&] { return in_poll.load(std::memory_order_acquire); }));
      if (from == Waker_from::raw_thread) {
        waker->wake_by_ref();
      } else {
        // The other worker is free: a task there wakes the one being polled.
        auto waking = [](Waker w) -> Task<void> {
          w.wake_by_ref();
          co_return;
        };
        runtime.spawn(waking(*waker)).join();
      }
      woken.store(true, std::memory_order_release);
      handle.join();
      CHECK(polls.load(std::memory_order_relaxed) == 2);  // relaxed: read after the join
    }
  }

  TEST_CASE("many wakes of an idle task coalesce into one run") {
    for (Waker_from from : {Waker_from::raw_thread, Waker_from::task}) {
      CAPTURE(static_cast<int>(from));
      // One worker, held busy, so every wake lands before the task can run again.
      Runtime runtime(RuntimeOptions{.workers = 1});
      Gate gate;
      auto body = [](Gate* g) -> Task<void> { co_await g->wait(); };
      auto handle = runtime.spawn(body(&gate));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      CHECK(gate.polls() == 1);

      std::optional<Waker> waker = gate.waker();
      Blocker blocker;
      auto busy = runtime.spawn(blocker.occupy());
      REQUIRE(blocker.wait_running());
      if (from == Waker_from::raw_thread) {
        wake_from(from, runtime, *waker, 1000);
      } else {
        // The only worker is busy, so wake from a task of a second runtime.
        Runtime other(RuntimeOptions{.workers = 1});
        wake_from(from, other, *waker, 1000);
      }
      blocker.release();
      busy.join();
      // The coalesced run polls the gate once and finds it closed; opening it polls once more.
      REQUIRE(eventually([&] { return gate.polls() >= 2; }));
      gate.open();
      handle.join();
      CHECK(gate.polls() == 3);
    }
  }

  TEST_CASE("a wake of an idle task from another thread schedules it exactly once") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    auto body = [](Gate* g) -> Task<void> { co_await g->wait(); };
    auto handle = runtime.spawn(body(&gate));
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    gate.wake_without_opening();
    REQUIRE(eventually([&] { return gate.polls() == 2; }));
    gate.open();
    handle.join();
    CHECK(gate.polls() == 3);
  }

  TEST_CASE("a wake after completion does nothing") {
    for (Waker_from from : {Waker_from::raw_thread, Waker_from::task}) {
      CAPTURE(static_cast<int>(from));
      Runtime runtime(RuntimeOptions{.workers = 2});
      Gate gate;
      auto body = [](Gate* g) -> Task<void> { co_await g->wait(); };
      auto handle = runtime.spawn(body(&gate));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      std::optional<Waker> kept = gate.waker();
      gate.open();
      handle.join();
      int polls = gate.polls();
      wake_from(from, runtime, *kept, 100);
      // Another task run to completion afterwards shows the scheduler kept going, and the
      // finished task was not polled again.
      runtime.block_on([]() -> Task<void> { co_return; }());
      CHECK(gate.polls() == polls);
    }
  }

  TEST_CASE("a waker may outlive its task and its runtime") {
    std::optional<Waker> kept;
    {
      Runtime runtime(RuntimeOptions{.workers = 2});
      Gate gate;
      auto body = [](Gate* g) -> Task<void> { co_await g->wait(); };
      auto handle = runtime.spawn(body(&gate));
      REQUIRE(eventually([&] { return gate.has_waiter(); }));
      kept = gate.waker();
      gate.open();
      handle.join();
    }
    kept->wake_by_ref();     // the task is complete: nothing happens
    Waker copy = *kept;      // cloning still works on the kept header
    std::move(copy).wake();  // a consuming wake drops its reference
    kept.reset();            // the last reference frees the task (LeakSanitizer checks)
    CHECK_FALSE(kept.has_value());
  }

  TEST_CASE("wakers cloned and dropped on many threads keep the count exact") {
    Runtime runtime(RuntimeOptions{.workers = 2});
    Gate gate;
    auto body = [](Gate* g) -> Task<void> { co_await g->wait(); };
    auto handle = runtime.spawn(body(&gate));
    REQUIRE(eventually([&] { return gate.has_waiter(); }));
    std::optional<Waker> waker = gate.waker();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10'000; ++i) {
          Waker copy = *waker;
          if (i % 100 == 0) {
            copy.wake_by_ref();
          }
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    gate.open();
    handle.join();
    CHECK(gate.polls() >= 2);
  }
}
