// Wakers collected under a primitive's lock and woken after it is released, a fixed number
// at a time: a wake may schedule a task (taking other locks), and collecting must not
// allocate, so a primitive that wakes many waiters does it in rounds.
// Thread safety: a batch belongs to the one thread that fills and empties it.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <utility>

#include "weft/waker.hpp"

namespace weft {

class WakeBatch {
 public:
  static constexpr std::size_t k_capacity = 16;

  [[nodiscard]] bool full() const noexcept { return m_size == k_capacity; }
  /// Takes the waker (if any) out of `waker`, which is left empty.
  void add(std::optional<Waker>&& waker) noexcept {
    if (waker) m_wakers[m_size++].emplace(std::move(*waker));
    waker.reset();
  }
  void wake_all() noexcept {
    for (std::size_t i = 0; i < m_size; ++i) {
      std::move(*m_wakers[i]).wake();
      m_wakers[i].reset();
    }
    m_size = 0;
  }

 private:
  std::array<std::optional<Waker>, k_capacity> m_wakers;
  std::size_t m_size = 0;
};

}  // namespace weft
