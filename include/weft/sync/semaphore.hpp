// weft::Semaphore: an async counting semaphore that hands permits over in arrival order.
//
//   weft::Semaphore slots(100);
//   weft::SemaphorePermit permit = co_await slots.acquire();  // given back when it goes
//
// - acquire(n) is a Future that yields a SemaphorePermit holding n permits; destroying the
//   permit gives them back (forget() keeps them out for good).
// - Fair: waiters are served first come, first served. A waiter at the head holds back those
//   behind it even when they want fewer permits, so a large request is never starved, and a
//   newcomer never overtakes a queued waiter.
// - Cancellation-safe: destroying a pending acquire (abort, select, timeout) takes it out of
//   the queue and gives back any permits already handed to it. Nothing is lost.
// - close() makes every pending and later acquire throw weft::SemaphoreClosed.
// - The semaphore must outlive its pending acquires and its permits.
// Thread safety: every member may be called from any thread. A future or permit is used by
// one thread at a time, like any future.
//
// Invariants (m_state = permits << 2 | k_waiters | k_closed)
// - k_waiters is set exactly while the waiter queue is non-empty; it changes only under m_lock.
// - While k_waiters is set the permit count is 0: a release hands its permits to the queued
//   waiters first (under m_lock), and a waiter takes whatever the count holds before it
//   queues. So the lock-free fast paths (try_take: a CAS that needs enough permits; release:
//   a CAS that needs k_waiters clear) can never overtake a queued waiter.
// - A queued waiter's links, `needed` and waker are guarded by m_lock. Its outcome is stored
//   under m_lock as the semaphore's last touch of it; the waiting future reads it without the
//   lock (acquire, pairing with that store's release).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "weft/detail/spin_lock.hpp"
#include "weft/detail/waiter_list.hpp"
#include "weft/error.hpp"
#include "weft/future.hpp"

namespace weft {

class Semaphore;

namespace detail {

/// One pending acquire, embedded in its future.
struct SemaphoreWaiter {
  enum Outcome : std::uint8_t { k_waiting, k_granted, k_closed };

  SemaphoreWaiter* prev = nullptr;
  SemaphoreWaiter* next = nullptr;
  std::size_t requested = 0;
  std::size_t needed = 0;  ///< permits still missing; requested - needed were handed over
  std::optional<Waker> waker;
  bool queued = false;
  std::atomic<std::uint8_t> outcome{k_waiting};
};

}  // namespace detail

/// Permits taken from a Semaphore; they go back when the permit is destroyed.
class SemaphorePermit {
 public:
  SemaphorePermit() noexcept = default;
  SemaphorePermit(Semaphore& semaphore, std::size_t count) noexcept
      : m_semaphore(&semaphore), m_count(count) {}
  SemaphorePermit(SemaphorePermit&& other) noexcept
      : m_semaphore(std::exchange(other.m_semaphore, nullptr)),
        m_count(std::exchange(other.m_count, 0)) {}
  SemaphorePermit& operator=(SemaphorePermit&& other) noexcept {
    if (this != &other) {
      reset();
      m_semaphore = std::exchange(other.m_semaphore, nullptr);
      m_count = std::exchange(other.m_count, 0);
    }
    return *this;
  }
  SemaphorePermit(const SemaphorePermit&) = delete;
  SemaphorePermit& operator=(const SemaphorePermit&) = delete;
  ~SemaphorePermit() { reset(); }

  [[nodiscard]] std::size_t count() const noexcept { return m_count; }
  /// Keeps the permits out of the semaphore for good.
  void forget() noexcept {
    m_semaphore = nullptr;
    m_count = 0;
  }

 private:
  inline void reset() noexcept;

  Semaphore* m_semaphore = nullptr;
  std::size_t m_count = 0;
};

/// The Future returned by Semaphore::acquire; yields a SemaphorePermit.
class [[nodiscard]] AcquireFuture {
 public:
  using Output = SemaphorePermit;

  AcquireFuture(Semaphore& semaphore, std::size_t count) noexcept
      : m_semaphore(&semaphore), m_count(count) {}
  /// A queued acquire moves its place in the queue along with it.
  AcquireFuture(AcquireFuture&& other) noexcept;
  AcquireFuture& operator=(AcquireFuture&&) = delete;
  AcquireFuture(const AcquireFuture&) = delete;
  AcquireFuture& operator=(const AcquireFuture&) = delete;
  /// A pending acquire leaves the queue and gives back what it was handed.
  ~AcquireFuture();

  /// Ready with the permit; throws SemaphoreClosed once the semaphore is closed, and
  /// std::logic_error when polled again after completion.
  Poll<SemaphorePermit> poll(Context& cx);

 private:
  Semaphore* m_semaphore;
  std::size_t m_count;
  detail::SemaphoreWaiter m_waiter;
  bool m_queued_once = false;  ///< the waiter went into the queue (owner's view)
  bool m_done = false;         ///< the permit was handed out, or the error thrown
};

class Semaphore {
 public:
  static constexpr std::size_t k_max_permits = std::numeric_limits<std::size_t>::max() >> 2;

  /// Throws std::invalid_argument above k_max_permits.
  explicit Semaphore(std::size_t permits);
  /// Misuse check: aborts with a message if an acquire is still queued, since it would
  /// otherwise touch freed memory.
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Waits for `count` permits (0 is ready at once).
  AcquireFuture acquire(std::size_t count = 1) noexcept { return AcquireFuture(*this, count); }
  /// The permits if they are free now and nobody is queued before us; nullopt otherwise
  /// (including after close()).
  [[nodiscard]] std::optional<SemaphorePermit> try_acquire(std::size_t count = 1) noexcept {
    if (!try_take(count)) return std::nullopt;
    return SemaphorePermit(*this, count);
  }
  /// Adds permits, handing them to queued waiters first. The total must stay within
  /// k_max_permits.
  void add_permits(std::size_t count) noexcept {
    if (count == 0) return;
    // relaxed: only a guess for the CAS below.
    std::size_t state = m_state.load(std::memory_order_relaxed);
    while ((state & k_waiters) == 0) {
      // release: the writes made while holding the permits are visible to the next taker;
      // pairs with the acquire CAS in try_take and take_or_enqueue.
      if (m_state.compare_exchange_weak(state, state + (count << k_shift),
                                        std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
    release_to_waiters(count);
  }
  /// Wakes every queued acquire with SemaphoreClosed; later acquires throw it at once.
  /// Permits already handed out stay valid and may still be given back.
  void close() noexcept;
  [[nodiscard]] bool is_closed() const noexcept {
    // acquire: pairs with the release in close().
    return (m_state.load(std::memory_order_acquire) & k_closed) != 0;
  }
  [[nodiscard]] std::size_t available_permits() const noexcept {
    // relaxed: a snapshot for callers to look at, not to act on.
    return m_state.load(std::memory_order_relaxed) >> k_shift;
  }

  /// Takes `count` permits without waiting, or returns false (also when closed). The lock-free
  /// fast path of acquire, for primitives built on the semaphore.
  [[nodiscard]] bool try_take(std::size_t count) noexcept {
    // relaxed: only a guess for the CAS below.
    std::size_t state = m_state.load(std::memory_order_relaxed);
    for (;;) {
      if ((state & k_closed) != 0 || (state >> k_shift) < count) return false;
      // acquire: the previous holder's writes are visible; pairs with the release in
      // add_permits and release_to_waiters.
      if (m_state.compare_exchange_weak(state, state - (count << k_shift),
                                        std::memory_order_acquire, std::memory_order_relaxed)) {
        return true;
      }
    }
  }

 private:
  friend class AcquireFuture;

  static constexpr std::size_t k_waiters = 1;
  static constexpr std::size_t k_closed = 2;
  static constexpr unsigned k_shift = 2;

  enum class Enqueued { taken, queued, closed };
  Enqueued take_or_enqueue(detail::SemaphoreWaiter& waiter, std::size_t count, const Waker& waker);
  /// The waiter's outcome, after storing `waker` if it is still waiting.
  std::uint8_t update_waker(detail::SemaphoreWaiter& waiter, const Waker& waker);
  void cancel(detail::SemaphoreWaiter& waiter) noexcept;
  void move_waiter(detail::SemaphoreWaiter& from, detail::SemaphoreWaiter& to) noexcept;
  void release_to_waiters(std::size_t count) noexcept;
  void unlink(detail::SemaphoreWaiter& waiter) noexcept;

  std::atomic<std::size_t> m_state;
  detail::SpinLock m_lock;
  detail::WaiterList<detail::SemaphoreWaiter> m_waiters;  // guarded by m_lock
};

inline void SemaphorePermit::reset() noexcept {
  if (m_semaphore != nullptr) std::exchange(m_semaphore, nullptr)->add_permits(m_count);
  m_count = 0;
}

}  // namespace weft
