// weft::yield_now(): gives other tasks a turn.
//
// The task goes to the back of its worker's queue, behind every task already waiting there.
#pragma once

#include "weft/future.hpp"

namespace weft {

class YieldNow {
 public:
  using Output = void;
  Poll<void> poll(Context& cx) noexcept {
    if (m_yielded) return ready();
    m_yielded = true;
    cx.waker().wake_by_ref();
    return pending;
  }

 private:
  bool m_yielded = false;
};

[[nodiscard]] inline YieldNow yield_now() noexcept {
  return {};
}

}  // namespace weft
