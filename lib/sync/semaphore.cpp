// The slow paths of weft::Semaphore: the waiter queue. The invariants are at the top of
// include/weft/sync/semaphore.hpp. Wakers are cloned and dropped under m_lock but only woken
// after it is released, because a wake may schedule a task, which may take other locks.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "sync/wake_batch.hpp"
#include "weft/detail/coop.hpp"
#include "weft/sync/semaphore.hpp"

namespace weft {
namespace {

using detail::SemaphoreWaiter;

}  // namespace

Semaphore::Semaphore(std::size_t permits) : m_state(0) {
  if (permits > k_max_permits) {
    throw std::invalid_argument("weft::Semaphore: more permits than k_max_permits");
  }
  // relaxed: the semaphore is not shared yet.
  m_state.store(permits << k_shift, std::memory_order_relaxed);
}

Semaphore::~Semaphore() {
  if (!m_waiters.empty()) {
    std::fputs("weft::Semaphore destroyed while an acquire still waits on it\n", stderr);
    std::abort();
  }
}

void Semaphore::unlink(SemaphoreWaiter& waiter) noexcept {
  m_waiters.unlink(waiter);
  if (m_waiters.empty()) {
    // relaxed: under m_lock, which orders it for the other slow paths; the fast paths only
    // test the bit with their CAS.
    m_state.fetch_and(~k_waiters, std::memory_order_relaxed);
  }
}

Semaphore::Enqueued Semaphore::take_or_enqueue(SemaphoreWaiter& waiter, std::size_t count,
                                               const Waker& waker) {
  std::optional<Waker> stored(waker);  // cloned before the lock
  std::lock_guard lock(m_lock);
  // relaxed: a guess for the CAS below.
  std::size_t state = m_state.load(std::memory_order_relaxed);
  std::size_t taken = 0;
  for (;;) {
    if ((state & k_closed) != 0) return Enqueued::closed;
    const std::size_t available = state >> k_shift;
    if ((state & k_waiters) == 0 && available >= count) {
      // acquire: pairs with the release in add_permits and release_to_waiters.
      if (m_state.compare_exchange_weak(state, state - (count << k_shift),
                                        std::memory_order_acquire, std::memory_order_relaxed)) {
        return Enqueued::taken;
      }
      continue;
    }
    // Take what there is and queue for the rest; available is 0 when k_waiters is set.
    taken = available;
    // acquire: as above, for the permits taken now.
    if (m_state.compare_exchange_weak(state, (state - (taken << k_shift)) | k_waiters,
                                      std::memory_order_acquire, std::memory_order_relaxed)) {
      break;
    }
  }
  waiter.requested = count;
  waiter.needed = count - taken;
  waiter.waker = std::move(stored);
  m_waiters.push_back(waiter);
  return Enqueued::queued;
}

std::uint8_t Semaphore::update_waker(SemaphoreWaiter& waiter, const Waker& waker) {
  std::optional<Waker> replaced;
  std::lock_guard lock(m_lock);
  // relaxed: under m_lock, which every writer of the outcome holds.
  const std::uint8_t outcome = waiter.outcome.load(std::memory_order_relaxed);
  if (outcome == SemaphoreWaiter::k_waiting && !waiter.waker->will_wake(waker)) {
    replaced = std::exchange(waiter.waker, waker);
  }
  return outcome;
}

void Semaphore::cancel(SemaphoreWaiter& waiter) noexcept {
  std::size_t give_back = 0;
  {
    std::lock_guard lock(m_lock);
    if (waiter.queued) {
      give_back = waiter.requested - waiter.needed;
      unlink(waiter);
    } else if (waiter.outcome.load(std::memory_order_relaxed) == SemaphoreWaiter::k_granted) {
      // relaxed: under m_lock, like every write of the outcome.
      give_back = waiter.requested;  // granted after the owner last looked; never handed out
    }
  }
  // Permits it was handed go to the waiters behind it, or back to the count.
  add_permits(give_back);
}

void Semaphore::move_waiter(SemaphoreWaiter& from, SemaphoreWaiter& to) noexcept {
  std::lock_guard lock(m_lock);
  to.requested = from.requested;
  to.needed = from.needed;
  // relaxed: under m_lock, like every write of the outcome.
  to.outcome.store(from.outcome.load(std::memory_order_relaxed), std::memory_order_relaxed);
  to.waker = std::move(from.waker);
  from.waker.reset();
  m_waiters.replace(from, to);
}

void Semaphore::release_to_waiters(std::size_t count) noexcept {
  WakeBatch batch;
  for (;;) {
    bool finished = false;
    {
      std::lock_guard lock(m_lock);
      while (!m_waiters.empty() && !batch.full()) {
        SemaphoreWaiter& head = *m_waiters.front();
        const std::size_t given = std::min(count, head.needed);
        head.needed -= given;
        count -= given;
        if (head.needed != 0) break;  // count is spent
        unlink(head);
        batch.add(std::move(head.waker));
        // release: the waiter's owner may read the outcome, then free the waiter, without
        // the lock; pairs with the acquire load in AcquireFuture::poll. The releaser's writes
        // travel with it.
        head.outcome.store(SemaphoreWaiter::k_granted, std::memory_order_release);
      }
      if (m_waiters.empty()) {
        // unlink cleared k_waiters; what is left goes back to the count.
        // release: pairs with the acquire CAS in try_take and take_or_enqueue.
        m_state.fetch_add(count << k_shift, std::memory_order_release);
        finished = true;
      } else if (!batch.full()) {
        finished = true;  // the head still needs more than there was
      }
    }
    batch.wake_all();
    if (finished) return;
  }
}

void Semaphore::close() noexcept {
  // In rounds of WakeBatch::k_capacity, so that no waker is woken under the lock and nothing
  // is allocated; no waiter can queue once the closed bit is set.
  WakeBatch batch;
  bool more = true;
  while (more) {
    {
      std::lock_guard lock(m_lock);
      // release: pairs with the acquire in is_closed; the fast paths see it in their CAS.
      m_state.fetch_or(k_closed, std::memory_order_release);
      while (!m_waiters.empty() && !batch.full()) {
        SemaphoreWaiter& head = *m_waiters.front();
        const std::size_t handed = head.requested - head.needed;
        unlink(head);
        // relaxed: under m_lock; the closed semaphore's count is only looked at.
        m_state.fetch_add(handed << k_shift, std::memory_order_relaxed);
        batch.add(std::move(head.waker));
        // release: pairs with the acquire load in AcquireFuture::poll (see release_to_waiters).
        head.outcome.store(SemaphoreWaiter::k_closed, std::memory_order_release);
      }
      more = !m_waiters.empty();
    }
    batch.wake_all();
  }
}

AcquireFuture::AcquireFuture(AcquireFuture&& other) noexcept
    : m_semaphore(other.m_semaphore),
      m_count(other.m_count),
      m_queued_once(std::exchange(other.m_queued_once, false)),
      m_done(std::exchange(other.m_done, true)) {
  if (m_queued_once) m_semaphore->move_waiter(other.m_waiter, m_waiter);
}

AcquireFuture::~AcquireFuture() {
  if (m_queued_once && !m_done) m_semaphore->cancel(m_waiter);
}

Poll<SemaphorePermit> AcquireFuture::poll(Context& cx) {
  if (m_done) throw std::logic_error("weft: poll of a semaphore acquire that already completed");
  if (!m_queued_once) {
    if (!detail::coop_proceed(cx)) return pending;
    if (m_semaphore->try_take(m_count)) {
      m_done = true;
      return Poll<SemaphorePermit>(SemaphorePermit(*m_semaphore, m_count));
    }
    switch (m_semaphore->take_or_enqueue(m_waiter, m_count, cx.waker())) {
      case Semaphore::Enqueued::taken:
        m_done = true;
        return Poll<SemaphorePermit>(SemaphorePermit(*m_semaphore, m_count));
      case Semaphore::Enqueued::closed:
        m_done = true;
        throw SemaphoreClosed();
      case Semaphore::Enqueued::queued:
        m_queued_once = true;
        return pending;
    }
  }
  // acquire: pairs with the release store of the outcome under the semaphore's lock.
  std::uint8_t outcome = m_waiter.outcome.load(std::memory_order_acquire);
  if (outcome == detail::SemaphoreWaiter::k_waiting) {
    outcome = m_semaphore->update_waker(m_waiter, cx.waker());
    // The lock taken by update_waker ordered us after the outcome's store, if any.
  }
  switch (outcome) {
    case detail::SemaphoreWaiter::k_granted:
      m_done = true;
      return Poll<SemaphorePermit>(SemaphorePermit(*m_semaphore, m_count));
    case detail::SemaphoreWaiter::k_closed:
      m_done = true;
      throw SemaphoreClosed();
    default:
      return pending;
  }
}

}  // namespace weft
