// Signals as futures: `co_await weft::signal(SIGTERM)`, `co_await weft::ctrl_c()`.
//
// A SignalFuture starts watching its signal when it is created on one of a runtime's threads
// (otherwise at its first poll), through the runtime's libuv loop, and is ready at the first
// delivery after that. While it watches, the signal's
// default action (for SIGINT and SIGTERM: terminating the process) is replaced; dropping the
// future restores it. Awaiting the same future again waits for the next delivery; deliveries
// that arrive in between are counted, not lost.
#pragma once

#include <utility>

#include "weft/future.hpp"

namespace weft {

namespace detail {
class SignalEntry;
}

class [[nodiscard]] SignalFuture {
 public:
  using Output = void;

  /// Throws std::system_error if the signal cannot be watched.
  explicit SignalFuture(int signum);
  SignalFuture(SignalFuture&& other) noexcept
      : m_signum(other.m_signum), m_entry(std::exchange(other.m_entry, nullptr)) {}
  SignalFuture& operator=(SignalFuture&&) = delete;
  SignalFuture(const SignalFuture&) = delete;
  SignalFuture& operator=(const SignalFuture&) = delete;
  ~SignalFuture();

  /// Ready once per delivery. Throws std::system_error if the signal cannot be watched.
  Poll<void> poll(Context& cx);

  [[nodiscard]] int signum() const noexcept { return m_signum; }

 private:
  int m_signum;
  detail::SignalEntry* m_entry = nullptr;
};

/// Completes when the process receives `signum`.
[[nodiscard]] inline SignalFuture signal(int signum) {
  return SignalFuture(signum);
}

/// Completes when the process receives SIGINT (Ctrl-C in a terminal).
[[nodiscard]] SignalFuture ctrl_c();

}  // namespace weft
