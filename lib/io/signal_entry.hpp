// One signal watch: a uv_signal_t on the reactor's loop, and the waker of the task waiting
// for the signal.
//
// Protocol: the Signal future creates the entry (when created on a runtime thread, or at its
// first poll) and submits a start op;
// from then on every delivery of the signal is counted, so a signal that arrives between two
// polls is not lost. Dropping the future closes the uv handle, and libuv restores the
// signal's previous disposition once no handle watches it.
//
// Invariants
// - The handle (a uv_signal_t) and its lifetime follow LoopEntry; cancel() ends the owner's
//   reference.
// - m_waker, m_deliveries and m_error are guarded by m_lock, never held while waking.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <optional>

#include "io/loop_entry.hpp"
#include "io/reactor.hpp"
#include "weft/detail/spin_lock.hpp"
#include "weft/waker.hpp"

namespace weft::detail {

class SignalEntry : public LoopEntry<SignalEntry, uv_signal_t> {
 public:
  /// `waker` may be null: deliveries are counted until a task polls. Returns once libuv
  /// watches the signal (or refused to), so that a signal raised afterwards is caught: the
  /// start op may be queued behind the loop's current holder, which applies it within one
  /// turn. The wait gives up after a second rather than risk hanging (the op stays queued).
  SignalEntry(Reactor& reactor, int signum, const Waker* waker);

  /// The owner's task: consumes one delivery if any (returns true); otherwise stores `waker`.
  /// Throws std::system_error when libuv refused to watch the signal.
  [[nodiscard]] bool take_delivery(const Waker& waker);
  /// The owner is done. Ends the owner's reference.
  void cancel() noexcept;

 private:
  friend class LoopEntry<SignalEntry, uv_signal_t>;
  ~SignalEntry() = default;

  static void apply_start(Reactor& reactor, void* self) noexcept;
  static void on_signal(uv_signal_t* handle, int signum) noexcept;

  const int m_signum;

  SpinLock m_lock;
  std::optional<Waker> m_waker;
  std::uint64_t m_deliveries = 0;
  int m_error = 0;
  /// Set by the start op; the constructor waits for it.
  std::atomic<bool> m_started{false};
};

}  // namespace weft::detail
