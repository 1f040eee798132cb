// weft::Notify; the protocol and invariants are at the top of include/weft/sync/notify.hpp.
// Wakers are woken only after m_lock is released.
#include "weft/sync/notify.hpp"

#include "sync/wake_batch.hpp"
#include "weft/detail/coop.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace weft {

using detail::NotifyWaiter;

Notify::~Notify() {
  if (!m_waiters.empty()) {
    std::fputs("weft::Notify destroyed while a Notified still waits on it\n", stderr);
    std::abort();
  }
}

void Notify::notify_one() noexcept {
  std::optional<Waker> waker;
  {
    std::lock_guard lock(m_lock);
    if (m_waiters.empty()) {
      m_permit = true;
      return;
    }
    NotifyWaiter& head = *m_waiters.front();
    m_waiters.unlink(head);
    waker = std::exchange(head.waker, std::nullopt);
    // release: pairs with the acquire load in Notified::poll; after it the waiter may be freed.
    head.outcome.store(NotifyWaiter::k_notified_one, std::memory_order_release);
  }
  if (waker) std::move(*waker).wake();
}

void Notify::notify_waiters() noexcept {
  // In rounds, waking after each (see WakeBatch). The waiters to wake are the queued ones
  // whose Notified predates the new generation (a smaller one: concurrent calls may bump it
  // further meanwhile). They are all ahead of any that queued later:
  // a Notified from before the bump that is first polled after it completes without queueing.
  WakeBatch batch;
  std::uint64_t generation;
  {
    std::lock_guard lock(m_lock);
    // release: a Notified created after this sees the new generation and waits for the next
    // call; one created before compares unequal. Pairs with the acquire load in Notified.
    generation = m_generation.fetch_add(1, std::memory_order_release) + 1;
  }
  bool more = true;
  while (more) {
    {
      std::lock_guard lock(m_lock);
      while (!m_waiters.empty() && m_waiters.front()->generation < generation && !batch.full()) {
        NotifyWaiter& head = *m_waiters.front();
        m_waiters.unlink(head);
        batch.add(std::move(head.waker));
        // release: pairs with the acquire load in Notified::poll.
        head.outcome.store(NotifyWaiter::k_notified_all, std::memory_order_release);
      }
      more = !m_waiters.empty() && m_waiters.front()->generation < generation;
    }
    batch.wake_all();
  }
}

bool Notify::poll_waiter(NotifyWaiter& waiter, std::uint64_t generation, bool queued_once,
                         const Waker& waker) {
  std::optional<Waker> stored(waker);  // cloned, and any replaced one dropped, outside the lock
  std::lock_guard lock(m_lock);
  // relaxed: under m_lock, which every writer of the outcome and the generation holds.
  if (waiter.outcome.load(std::memory_order_relaxed) != NotifyWaiter::k_waiting) return true;
  if (m_generation.load(std::memory_order_relaxed) != generation) {
    if (waiter.queued) m_waiters.unlink(waiter);
    return true;
  }
  if (m_permit) {
    m_permit = false;
    if (waiter.queued) m_waiters.unlink(waiter);
    return true;
  }
  if (!queued_once) {
    waiter.waker.swap(stored);
    waiter.generation = generation;
    m_waiters.push_back(waiter);
  } else if (!waiter.waker->will_wake(waker)) {
    waiter.waker.swap(stored);
  }
  return false;
}

void Notify::cancel(NotifyWaiter& waiter) noexcept {
  bool pass_on = false;
  {
    std::lock_guard lock(m_lock);
    if (waiter.queued) {
      m_waiters.unlink(waiter);
    } else {
      // relaxed: under m_lock, like every write of the outcome.
      pass_on = waiter.outcome.load(std::memory_order_relaxed) == NotifyWaiter::k_notified_one;
    }
  }
  if (pass_on) notify_one();  // it was picked but never completed: the next one gets it
}

void Notify::move_waiter(NotifyWaiter& from, NotifyWaiter& to) noexcept {
  std::lock_guard lock(m_lock);
  // relaxed: under m_lock, like every write of the outcome.
  to.outcome.store(from.outcome.load(std::memory_order_relaxed), std::memory_order_relaxed);
  to.waker = std::exchange(from.waker, std::nullopt);
  to.generation = from.generation;
  m_waiters.replace(from, to);
}

Notified::Notified(Notify& notify) noexcept
    : m_notify(&notify),
      // acquire: pairs with the release in notify_waiters.
      m_generation(notify.m_generation.load(std::memory_order_acquire)) {}

Notified::Notified(Notified&& other) noexcept
    : m_notify(other.m_notify),
      m_generation(other.m_generation),
      m_queued_once(std::exchange(other.m_queued_once, false)),
      m_done(std::exchange(other.m_done, true)) {
  if (m_queued_once) m_notify->move_waiter(other.m_waiter, m_waiter);
}

Notified::~Notified() {
  if (m_queued_once && !m_done) m_notify->cancel(m_waiter);
}

Poll<void> Notified::poll(Context& cx) {
  if (m_done) throw std::logic_error("weft: poll of a Notified that already completed");
  // acquire: pairs with the release stores of the outcome in notify_one / notify_waiters.
  if (m_queued_once &&
      m_waiter.outcome.load(std::memory_order_acquire) != NotifyWaiter::k_waiting) {
    m_done = true;
    return ready();
  }
  if (!m_queued_once && !detail::coop_proceed(cx)) return pending;
  const bool complete = m_notify->poll_waiter(m_waiter, m_generation, m_queued_once, cx.waker());
  if (!complete) {
    m_queued_once = true;  // queued now, or already
    return pending;
  }
  m_done = true;
  return ready();
}

}  // namespace weft
