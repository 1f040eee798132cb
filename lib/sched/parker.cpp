// The invariants (who owns what, which thread may call what, the atomics and their partners)
// are at the top of lib/sched/parker.hpp; the comments here name each operation's partner.
#include "sched/parker.hpp"

#include "io/reactor.hpp"
#include "sched/futex.hpp"

namespace weft::detail {

void Parker::park() noexcept {
  std::uint32_t expected = k_notified;
  // acquire: pairs with the release exchange in unpark(), so the unparker's writes are seen.
  if (m_state.compare_exchange_strong(expected, k_empty, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    return;
  }
  expected = k_empty;
  // relaxed: announcing the sleep publishes nothing; the token is taken with acquire below.
  if (!m_state.compare_exchange_strong(expected, k_parked, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
    // A token arrived between the two exchanges. acquire: pairs with unpark's release.
    m_state.exchange(k_empty, std::memory_order_acquire);
    return;
  }
  for (;;) {
    futex_wait(m_state, k_parked);
    expected = k_notified;
    // acquire: pairs with the release exchange in unpark().
    if (m_state.compare_exchange_strong(expected, k_empty, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
      return;
    }
  }
}

void Parker::unpark() noexcept {
  // acq_rel: release pairs with the acquire in park() and leave_loop(), publishing the work
  // that prompted the unpark; acquire pairs with enter_loop's release, so m_reactor is seen.
  const std::uint32_t previous = m_state.exchange(k_notified, std::memory_order_acq_rel);
  if (previous == k_parked) {
    futex_wake_one(m_state);
  } else if (previous == k_in_loop) {
    // relaxed: the acq_rel exchange above read enter_loop's release CAS, which followed the
    // store of m_reactor.
    m_reactor.load(std::memory_order_relaxed)->wake_loop();
  }
}

bool Parker::enter_loop(Reactor& reactor) noexcept {
  // relaxed: published by the release CAS below (its partner: unpark's acq_rel exchange).
  m_reactor.store(&reactor, std::memory_order_relaxed);
  std::uint32_t expected = k_empty;
  // release: publishes m_reactor to an unpark that sees IN_LOOP (its acquire).
  if (m_state.compare_exchange_strong(expected, k_in_loop, std::memory_order_release,
                                      std::memory_order_relaxed)) {
    return true;
  }
  // A token is waiting. acquire: pairs with unpark's release.
  m_state.exchange(k_empty, std::memory_order_acquire);
  return false;
}

bool Parker::leave_loop() noexcept {
  // acquire: pairs with unpark's release when a token arrived during the sleep.
  return m_state.exchange(k_empty, std::memory_order_acquire) == k_notified;
}

}  // namespace weft::detail
