// A test-and-test-and-set spin lock for critical sections of a few instructions. It lives
// under include/weft/detail because the sync primitives (weft/sync/) embed one inline.
//
// Why not std::mutex: the owned-task list locks twice per task (spawn and completion). Under
// contention std::mutex sleeps in futex_wait, and on a virtual machine the wake-up costs far
// more than the critical section; a few pause instructions cost almost nothing.
// Invariants: lock() and unlock() pair on one thread; never held across a call that may block.
#pragma once

#include <atomic>
#include <thread>

namespace weft::detail {

class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      // acquire: pairs with the release in unlock(), so the previous holder's writes are seen.
      if (!m_locked.exchange(true, std::memory_order_acquire)) return;
      // relaxed: only waiting for the lock to look free; the exchange above decides.
      for (unsigned spins = 0; m_locked.load(std::memory_order_relaxed); ++spins) {
        // A holder the OS preempted keeps the lock for a whole time slice; after a short spin
        // give the CPU away so that it can run (on 2 vCPUs it may need ours).
        if (spins < k_spins_before_yield) {
          relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() noexcept {
    // release: pairs with the acquire exchange in lock().
    m_locked.store(false, std::memory_order_release);
  }

 private:
  static constexpr unsigned k_spins_before_yield = 128;

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
