// Timers: weft::sleep_for, weft::sleep_until and weft::timeout.
//
// A Sleep is a Future that is ready once steady_clock reaches its deadline. At its first
// pending poll it joins the runtime's timer queue, which one libuv timer watches, so it must
// be awaited inside a weft runtime; it allocates nothing. Dropping it before it is ready
// takes it out of the queue. Resolution: libuv counts whole milliseconds; a Sleep never
// completes before its deadline, and usually within a millisecond after it (later when
// every worker is busy).
//
// weft::timeout(duration, future) races `future` against a Sleep inside one task: the value
// if the future is ready first, otherwise weft::TimedOut is thrown and the future is dropped
// (cancelled) with the timeout.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "weft/detail/timer_node.hpp"
#include "weft/error.hpp"
#include "weft/future.hpp"

namespace weft {

class [[nodiscard]] Sleep {
 public:
  using Clock = std::chrono::steady_clock;
  using Output = void;

  explicit Sleep(Clock::time_point deadline) noexcept { m_node.deadline = deadline; }
  /// A pending Sleep may be moved (its registration moves with it), by its owner's thread.
  Sleep(Sleep&& other) noexcept;
  Sleep& operator=(Sleep&& other) noexcept;
  Sleep(const Sleep&) = delete;
  Sleep& operator=(const Sleep&) = delete;
  ~Sleep() { cancel(); }

  Poll<void> poll(Context& cx);

  [[nodiscard]] Clock::time_point deadline() const noexcept { return m_node.deadline; }
  [[nodiscard]] bool is_elapsed() const noexcept { return Clock::now() >= m_node.deadline; }

 private:
  void cancel() noexcept {
    if (m_node.queue != nullptr) deregister();
  }
  void deregister() noexcept;
  /// This Sleep is unregistered: takes `other`'s deadline and registration.
  void take(Sleep& other) noexcept;

  detail::TimerNode m_node;
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
