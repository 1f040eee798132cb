// A test-and-test-and-set spin lock for critical sections of a few instructions.
//
// Why not std::mutex: the owned-task list locks twice per task (spawn and completion). Under
// contention std::mutex sleeps in futex_wait, and on a virtual machine the wake-up costs far
// more than the critical section; a few pause instructions cost almost nothing.
// Invariants: lock() and unlock() pair on one thread; never held across a call that may block.
#pragma once

#include <atomic>

namespace weft::detail {

class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      // acquire: pairs with the release in unlock(), so the previous holder's writes are seen.
      if (!m_locked.exchange(true, std::memory_order_acquire)) return;
      // relaxed: only waiting for the lock to look free; the exchange above decides.
      while (m_locked.load(std::memory_order_relaxed))
        relax();
    }
  }
  void unlock() noexcept {
    // release: pairs with the acquire exchange in lock().
    m_locked.store(false, std::memory_order_release);
  }

 private:
  static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
  }

  std::atomic<bool> m_locked{false};
};

}  // namespace weft::detail
