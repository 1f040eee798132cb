// A one-token parker for one thread, on a Linux futex.
//
// Invariants
// - Only the owning thread calls park(); any thread calls unpark().
// - m_state is EMPTY, NOTIFIED (a token is waiting) or PARKED (the owner sleeps or is about to).
// - An unpark before park() is not lost: park() consumes the token and returns at once.
// - Spurious futex wake-ups loop until a token is consumed.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

class Parker {
 public:
  /// Owner thread only. Returns once a token is available, consuming it.
  void park() noexcept;
  /// Any thread. Leaves a token and wakes the owner if it sleeps.
  void unpark() noexcept;

 private:
  static constexpr std::uint32_t k_empty = 0;
  static constexpr std::uint32_t k_notified = 1;
  static constexpr std::uint32_t k_parked = 2;

  alignas(64) std::atomic<std::uint32_t> m_state{k_empty};
};

}  // namespace weft::detail
