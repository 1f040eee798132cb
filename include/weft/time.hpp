// Timers: weft::sleep_for, weft::sleep_until and weft::timeout.
//
// A Sleep is a Future that is ready once steady_clock reaches its deadline. It arms a timer on
// the runtime's libuv loop at its first pending poll, so it must be awaited inside a weft
// runtime. Dropping it before it is ready cancels the timer. Resolution: libuv counts whole
// milliseconds; a Sleep never completes before its deadline, and usually within a
// millisecond after it (later when every worker is busy).
//
// weft::timeout(duration, future) races `future` against a Sleep inside one task: the value
// if the future is ready first, otherwise weft::TimedOut is thrown and the future is dropped
// (cancelled) with the timeout.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "weft/error.hpp"
#include "weft/future.hpp"

namespace weft {

namespace detail {
class TimerEntry;
}

class [[nodiscard]] Sleep {
 public:
  using Clock = std::chrono::steady_clock;
  using Output = void;

  explicit Sleep(Clock::time_point deadline) noexcept : m_deadline(deadline) {}
  Sleep(Sleep&& other) noexcept
      : m_deadline(other.m_deadline), m_entry(std::exchange(other.m_entry, nullptr)) {}
  Sleep& operator=(Sleep&& other) noexcept;
  Sleep(const Sleep&) = delete;
  Sleep& operator=(const Sleep&) = delete;
  ~Sleep() { cancel(); }

  Poll<void> poll(Context& cx);

  [[nodiscard]] Clock::time_point deadline() const noexcept { return m_deadline; }
  [[nodiscard]] bool is_elapsed() const noexcept { return Clock::now() >= m_deadline; }

 private:
  void cancel() noexcept;

  Clock::time_point m_deadline;
  detail::TimerEntry* m_entry = nullptr;
};

/// Ready after `duration` (steady_clock).
[[nodiscard]] inline Sleep sleep_for(std::chrono::nanoseconds duration) {
  return Sleep(Sleep::Clock::now() + duration);
}

/// Ready once steady_clock reaches `deadline`.
[[nodiscard]] inline Sleep sleep_until(Sleep::Clock::time_point deadline) {
  return Sleep(deadline);
}

template <Future F>
class [[nodiscard]] Timeout {
 public:
  using Output = FutureOutput<F>;

  Timeout(F future, Sleep sleep) : m_future(std::move(future)), m_sleep(std::move(sleep)) {}

  /// The inner future is polled first, so a future that is ready at its deadline still wins.
  Poll<Output> poll(Context& cx) {
    auto result = m_future.poll(cx);
    if (result.is_ready()) return result;
    if (m_sleep.poll(cx).is_ready()) throw TimedOut();
    return pending;
  }

 private:
  F m_future;
  Sleep m_sleep;
};

/// `future`'s value, or weft::TimedOut if it is not ready within `duration`.
template <class F>
requires Future<std::decay_t<F>>
[[nodiscard]] Timeout<std::decay_t<F>> timeout(std::chrono::nanoseconds duration, F&& future) {
  return Timeout<std::decay_t<F>>(std::forward<F>(future), sleep_for(duration));
}

/// The same with an absolute deadline.
template <class F>
requires Future<std::decay_t<F>>
[[nodiscard]] Timeout<std::decay_t<F>> timeout_at(Sleep::Clock::time_point deadline, F&& future) {
  return Timeout<std::decay_t<F>>(std::forward<F>(future), sleep_until(deadline));
}

}  // namespace weft
