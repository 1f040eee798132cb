// One armed timer: a uv_timer_t on the reactor's loop, and the waker of the task that sleeps.
//
// Protocol (see docs/design.md, "Timers"): the Sleep future creates the entry at its first
// pending poll and submits a start op; the loop's callback marks it fired and wakes the task.
// libuv counts time in whole milliseconds, so a timer may fire up to a millisecond before
// the deadline; the future compares with steady_clock and re-arms (restart) when early.
// Dropping the future cancels: a close op stops and closes the uv handle.
//
// Invariants
// - m_timer and m_initialized belong to the reactor's token holder.
// - m_waker, m_deadline and m_fired are guarded by m_lock, never held while waking.
// - Two references: the owner's (ended by cancel()) and the loop's (ended in the close
//   callback, or in the close op if the timer never reached the loop).
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <optional>

#include "io/reactor.hpp"
#include "task/spin_lock.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class TimerEntry {
 public:
  using Clock = std::chrono::steady_clock;

  /// Arms a timer that wakes `waker` at `deadline`.
  TimerEntry(Reactor& reactor, Clock::time_point deadline, const Waker& waker);
  TimerEntry(const TimerEntry&) = delete;
  TimerEntry& operator=(const TimerEntry&) = delete;

  /// The owner's task, when polled again: true once the loop has fired the timer. Otherwise
  /// the stored waker is replaced by `waker`.
  [[nodiscard]] bool fired(const Waker& waker);
  /// The owner: fired too early (libuv's millisecond clock); arm again for `deadline`.
  void restart(Clock::time_point deadline, const Waker& waker);
  /// The owner is done with the timer (fired or not). Ends the owner's reference.
  void cancel() noexcept;

 private:
  ~TimerEntry() = default;

  void release() noexcept;
  static void apply_start(Reactor& reactor, void* self) noexcept;
  static void apply_close(Reactor& reactor, void* self) noexcept;
  static void on_timer(uv_timer_t* handle) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;

  Reactor& m_reactor;
  uv_timer_t m_timer;
  bool m_initialized = false;
  bool m_active = false;

  SpinLock m_lock;
  std::optional<Waker> m_waker;
  Clock::time_point m_deadline;
  bool m_fired = false;
  std::atomic<int> m_refs{2};
};

}  // namespace weft::detail
