// The reactor's op queue: a submitter that takes the driver token applies the ops queued
// before its own, but at most Reactor::k_submit_drain_budget of them, so that one task's poll
// never applies thousands; the rest stay queued, in order, for the loop's next driver.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

#include "io/reactor.hpp"
#include "support.hpp"

using weft::detail::Reactor;

namespace {

constexpr std::size_t k_queued = 1'000;

/// Ops applied on this thread, so that a thread can count what its own submit applied.
thread_local std::size_t t_applied_here = 0;

/// Ops that record their index when applied. Only the token's holder applies ops, one at a
/// time, so `applied` needs no lock; the test reads it after joining the thread that applied
/// them, or on the thread that did.
struct Recorder {
  struct Entry {
    Recorder* recorder;
    std::size_t index;
  };
  std::vector<std::size_t> applied;
  std::vector<Entry> entries;

  explicit Recorder(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      entries.push_back({this, i});
    applied.reserve(count);
  }

  Reactor::Op op(std::size_t index) {
    return {[](Reactor&, void* target) noexcept {
              auto* entry = static_cast<Entry*>(target);
              entry->recorder->applied.push_back(entry->index);
              ++t_applied_here;
            },
            &entries[index]};
  }
};

/// An op that holds the token until released, so that other submits must queue.
struct Blocker {
  std::atomic<bool> entered{false};
  std::atomic<bool> released{false};

  Reactor::Op op() {
    return {[](Reactor&, void* target) noexcept {
              auto* self = static_cast<Blocker*>(target);
              // release/acquire: pair with the test's load of `entered` and its store of
              // `released`.
              self->entered.store(true, std::memory_order_release);
              while (!self->released.load(std::memory_order_acquire))
                std::this_thread::yield();
            },
            this};
  }
};

/// Queues k_queued recording ops behind a blocker held by another thread, then lets that
/// thread's submit finish. Returns with the blocker's thread joined.
void queue_behind_a_blocker(Reactor& reactor, Recorder& recorder) {
  Blocker blocker;
  std::thread holder([&] { reactor.submit(blocker.op()); });
  // acquire: pairs with the blocker's release store of `entered`.
  const bool entered =
      weft::test::eventually([&] { return blocker.entered.load(std::memory_order_acquire); });
  bool applied_while_held = false;
  if (entered) {
    for (std::size_t i = 0; i < k_queued; ++i)
      reactor.submit(recorder.op(i));
    applied_while_held = !recorder.applied.empty();
  }
  // Released before any check, so that a failing one does not leave the holder spinning.
  blocker.released.store(true, std::memory_order_release);
  holder.join();
  REQUIRE(entered);
  REQUIRE_FALSE(applied_while_held);  // the token was held throughout
}

bool in_submission_order(const std::vector<std::size_t>& applied) {
  for (std::size_t i = 0; i < applied.size(); ++i)
    if (applied[i] != i) return false;
  return true;
}

}  // namespace

TEST_SUITE("reactor") {
  TEST_CASE("a submit applies at most its budget of queued ops and the loop's turn the rest") {
    auto* reactor = new Reactor();
    Recorder recorder(k_queued + 1);

    queue_behind_a_blocker(*reactor, recorder);
    // The blocker's submit gave the token up with ops queued: it drained one budget's worth.
    CHECK(recorder.applied.size() == Reactor::k_submit_drain_budget);

    // A later submit takes the token, drains one more budget's worth and, with older ops
    // still queued, queues its own op behind them instead of applying it first.
    reactor->submit(recorder.op(k_queued));
    CHECK(recorder.applied.size() == 2 * Reactor::k_submit_drain_budget);

    // A worker's loop turn drains everything left, its own op last.
    reactor->poll_without_blocking();
    CHECK(recorder.applied.size() == k_queued + 1);
    CHECK(in_submission_order(recorder.applied));

    reactor->release();
  }

  TEST_CASE("a submit that queued its op and then took the token applies at most its budget") {
    // A submitter that finds the token held queues its op and tries again; if the holder has
    // left meanwhile, it drains on its own task's poll, and must keep the budget there too.
    // When the holder leaves is not the test's to choose, so a racing thread submits over and
    // over as the holder lets go, and every one of its submits is counted.
    constexpr int k_scenarios = 20;
    constexpr std::size_t k_racing = 2'000;
    std::size_t most_in_one_submit = 0;
    bool all_in_order = true;
    for (int scenario = 0; scenario < k_scenarios; ++scenario) {
      auto* reactor = new Reactor();
      Recorder recorder(k_queued + k_racing);
      Blocker blocker;
      std::thread holder([&] { reactor->submit(blocker.op()); });
      // acquire: pairs with the blocker's release store of `entered`.
      REQUIRE(
          weft::test::eventually([&] { return blocker.entered.load(std::memory_order_acquire); }));
      for (std::size_t i = 0; i < k_queued; ++i)
        reactor->submit(recorder.op(i));
      std::atomic<bool> racing{false};
      std::size_t most_by_racer = 0;
      std::thread racer([&] {
        // release: pairs with the test's acquire load below.
        racing.store(true, std::memory_order_release);
        for (std::size_t i = k_queued; i < k_queued + k_racing; ++i) {
          const std::size_t before = t_applied_here;
          reactor->submit(recorder.op(i));
          most_by_racer = std::max(most_by_racer, t_applied_here - before);
        }
      });
      // acquire: pairs with the racer's release store; it is submitting as the holder leaves.
      const bool started =
          weft::test::eventually([&] { return racing.load(std::memory_order_acquire); });
      blocker.released.store(true, std::memory_order_release);  // pairs with the blocker
      holder.join();
      racer.join();
      REQUIRE(started);
      reactor->poll_without_blocking();  // a loop turn drains what the submits left
      most_in_one_submit = std::max(most_in_one_submit, most_by_racer);
      all_in_order = all_in_order && recorder.applied.size() == k_queued + k_racing &&
                     in_submission_order(recorder.applied);
      reactor->release();
    }
    // Its budget of older ops, or fewer and then its own.
    CHECK(most_in_one_submit <= Reactor::k_submit_drain_budget + 1);
    CHECK(all_in_order);
  }

  TEST_CASE("after the runtime stopped a submit drains every queued op") {
    auto* reactor = new Reactor();
    Recorder recorder(k_queued);
    reactor->mark_runtime_stopped();

    queue_behind_a_blocker(*reactor, recorder);
    // No worker will take a loop turn any more, so the budget no longer applies.
    CHECK(recorder.applied.size() == k_queued);
    CHECK(in_submission_order(recorder.applied));

    reactor->release();
  }
}
