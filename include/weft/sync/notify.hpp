// weft::Notify: wakes tasks that wait for an event, without passing data.
//
//   weft::Notify ready;
//   // task A                      // task B
//   co_await ready.notified();      ready.notify_one();
//
// - notify_one() wakes the task that has waited longest. With nobody waiting it stores one
//   permit (at most one; more calls do not add up), which the next notified() consumes at
//   once, so a notification sent just before the wait is not lost.
// - notify_waiters() wakes every Notified that exists at the time of the call, whether or not
//   it has been polled yet, and stores no permit.
// - Cancellation-safe: a Notified destroyed while waiting leaves the queue. One destroyed after
//   notify_one picked it, but before it was polled to completion, passes the notification on to
//   the next waiter (or back to the stored permit), so it is never lost.
// - The Notify must outlive its Notified futures.
// Thread safety: every member may be called from any thread.
//
// Invariants
// - The waiter queue, m_permit and each queued waiter's links and waker are guarded by m_lock.
// - m_generation counts notify_waiters calls. It is written under m_lock; a Notified records
//   it when created and is complete once it has moved on.
// - A waiter's outcome is stored under m_lock as the Notify's last touch of it; the future
//   reads it without the lock (acquire, pairing with that store's release).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "weft/detail/spin_lock.hpp"
#include "weft/detail/waiter_list.hpp"
#include "weft/future.hpp"

namespace weft {

class Notify;

namespace detail {

struct NotifyWaiter {
  enum Outcome : std::uint8_t { k_waiting, k_notified_one, k_notified_all };

  NotifyWaiter* prev = nullptr;
  NotifyWaiter* next = nullptr;
  std::optional<Waker> waker;
  std::uint64_t generation = 0;  ///< its Notified's; queued waiters of older ones come first
  bool queued = false;
  std::atomic<std::uint8_t> outcome{k_waiting};
};

}  // namespace detail

/// The Future returned by Notify::notified; completes with no value.
class [[nodiscard]] Notified {
 public:
  using Output = void;

  explicit Notified(Notify& notify) noexcept;
  /// A queued Notified moves its place in the queue along with it.
  Notified(Notified&& other) noexcept;
  Notified& operator=(Notified&&) = delete;
  Notified(const Notified&) = delete;
  Notified& operator=(const Notified&) = delete;
  ~Notified();

  /// Ready once notified; throws std::logic_error when polled again after that.
  Poll<void> poll(Context& cx);

 private:
  Notify* m_notify;
  std::uint64_t m_generation;
  detail::NotifyWaiter m_waiter;
  bool m_queued_once = false;
  bool m_done = false;
};

class Notify {
 public:
  Notify() noexcept = default;
  /// Misuse check: aborts with a message if a Notified still waits on it.
  ~Notify();
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  [[nodiscard]] Notified notified() noexcept { return Notified(*this); }
  void notify_one() noexcept;
  void notify_waiters() noexcept;

 private:
  friend class Notified;

  /// Completes the waiter if a notification is available, else queues it (or refreshes its
  /// waker). Returns true when complete.
  bool poll_waiter(detail::NotifyWaiter& waiter, std::uint64_t generation, bool queued_once,
                   const Waker& waker);
  void cancel(detail::NotifyWaiter& waiter) noexcept;
  void move_waiter(detail::NotifyWaiter& from, detail::NotifyWaiter& to) noexcept;

  detail::SpinLock m_lock;
  std::atomic<std::uint64_t> m_generation{0};
  bool m_permit = false;                               // guarded by m_lock
  detail::WaiterList<detail::NotifyWaiter> m_waiters;  // guarded by m_lock
};

}  // namespace weft
