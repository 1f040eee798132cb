// One armed timer: a uv_timer_t on the reactor's loop, and the waker of the task that sleeps.
//
// Protocol (see docs/design.md, "Timers"): the Sleep future creates the entry at its first
// pending poll and submits a start op; the loop's callback marks it fired and wakes the task.
// libuv counts time in whole milliseconds, so a timer may fire up to a millisecond before
// the deadline; the future compares with steady_clock and re-arms (restart) when early.
// Dropping the future cancels: a close op stops and closes the uv handle.
//
// Invariants
// - The handle (a uv_timer_t) and its lifetime follow LoopEntry; cancel() ends the owner's
//   reference.
// - m_waker, m_deadline and m_fired are guarded by m_lock, never held while waking.
#pragma once

#include <uv.h>

#include <chrono>
#include <optional>

#include "io/loop_entry.hpp"
#include "io/reactor.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class TimerEntry : public LoopEntry<TimerEntry, uv_timer_t> {
 public:
  using Clock = std::chrono::steady_clock;

  /// Arms a timer that wakes `waker` at `deadline`.
  TimerEntry(Reactor& reactor, Clock::time_point deadline, const Waker& waker);

  /// The owner's task, when polled again: true once the loop has fired the timer. Otherwise
  /// the stored waker is replaced by `waker`.
  [[nodiscard]] bool fired(const Waker& waker);
  /// The owner: fired too early (libuv's millisecond clock); arm again for `deadline`.
  void restart(Clock::time_point deadline, const Waker& waker);
  /// The owner is done with the timer (fired or not). Ends the owner's reference.
  void cancel() noexcept;

 private:
  friend class LoopEntry<TimerEntry, uv_timer_t>;
  ~TimerEntry() = default;

  static void apply_start(Reactor& reactor, void* self) noexcept;
  static void on_timer(uv_timer_t* handle) noexcept;

  SpinLock m_lock;
  std::optional<Waker> m_waker;
  Clock::time_point m_deadline;
  bool m_fired = false;
};

}  // namespace weft::detail
