// A one-token parker for one thread, on a Linux futex.
//
// Invariants
// - Only the owning thread calls park(); any thread calls unpark().
// - m_state is EMPTY, NOTIFIED (a token is waiting), PARKED (the owner sleeps on the futex or is
//   about to) or IN_LOOP (the owner sleeps in the reactor's loop: an unpark wakes the loop).
// - An unpark before park() is not lost: park() consumes the token and returns at once.
// - Spurious futex wake-ups loop until a token is consumed.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class Reactor;

class Parker {
 public:
  /// Owner thread only. Returns once a token is available, consuming it.
  void park() noexcept;
  /// Any thread. Leaves a token and wakes the owner if it sleeps.
  void unpark() noexcept;

  /// Owner thread only, around a sleep in `reactor`'s loop. enter_loop returns false (and
  /// consumes the token) when a token is already waiting: the owner must not sleep.
  /// leave_loop consumes a token that arrived meanwhile and returns whether there was one.
  [[nodiscard]] bool enter_loop(Reactor& reactor) noexcept;
  bool leave_loop() noexcept;

 private:
  static constexpr std::uint32_t k_empty = 0;
  static constexpr std::uint32_t k_notified = 1;
  static constexpr std::uint32_t k_parked = 2;
  static constexpr std::uint32_t k_in_loop = 3;

  alignas(64) std::atomic<std::uint32_t> m_state{k_empty};
  /// Written by the owner before it publishes IN_LOOP, read by an unpark that saw IN_LOOP
  /// (relaxed: ordered by m_state's release CAS and acq_rel exchange).
  std::atomic<Reactor*> m_reactor{nullptr};
};

}  // namespace weft::detail
