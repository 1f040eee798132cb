// weft::Mutex<T>: an async mutex that owns the value it guards and hands it over in FIFO order.
//
//   weft::Mutex<std::vector<int>> shared;
//   {
//     auto guard = co_await shared.lock();
//     guard->push_back(1);
//   }  // unlocked here
//
// - lock() is a Future that yields a MutexGuard<T>; destroying the guard unlocks. A task may
//   hold the guard across co_await: waiting tasks are parked, not spinning.
// - Fair: when the holder unlocks with tasks waiting, the lock passes directly to the one that
//   has waited longest. A newcomer cannot barge in ahead of them. Uncontended lock and unlock
//   are one compare-and-swap each.
// - Cancellation-safe: a lock() destroyed while waiting (abort, select, timeout) leaves the
//   queue; one destroyed after the lock was handed to it passes the lock on. Neither blocks
//   anyone.
// - The mutex must outlive its guards and pending locks. It is built on weft::Semaphore with
//   one permit (see sync/semaphore.hpp for the protocol).
// Thread safety: lock() and try_lock() may be called from any thread; a guard is used by one
// thread at a time and may be destroyed on another.
#pragma once

#include <optional>
#include <utility>

#include "weft/future.hpp"
#include "weft/sync/semaphore.hpp"

namespace weft {

template <class T>
class Mutex;

/// Exclusive access to a Mutex's value; unlocks when destroyed.
template <class T>
class [[nodiscard]] MutexGuard {
 public:
  explicit MutexGuard(Mutex<T>& mutex) noexcept : m_mutex(&mutex) {}
  MutexGuard(MutexGuard&& other) noexcept : m_mutex(std::exchange(other.m_mutex, nullptr)) {}
  MutexGuard& operator=(MutexGuard&& other) noexcept {
    if (this != &other) {
      unlock();
      m_mutex = std::exchange(other.m_mutex, nullptr);
    }
    return *this;
  }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() { unlock(); }

  T& operator*() const noexcept { return m_mutex->m_value; }
  T* operator->() const noexcept { return &m_mutex->m_value; }

 private:
  void unlock() noexcept {
    if (m_mutex != nullptr) std::exchange(m_mutex, nullptr)->m_semaphore.add_permits(1);
  }

  Mutex<T>* m_mutex;
};

/// The Future returned by Mutex::lock.
template <class T>
class [[nodiscard]] LockFuture {
 public:
  using Output = MutexGuard<T>;

  explicit LockFuture(Mutex<T>& mutex) noexcept
      : m_mutex(mutex), m_acquire(mutex.m_semaphore.acquire(1)) {}

  Poll<MutexGuard<T>> poll(Context& cx) {
    auto permit = m_acquire.poll(cx);
    if (permit.is_pending()) return pending;
    permit.take().forget();  // the guard gives it back
    return Poll<MutexGuard<T>>(MutexGuard<T>(m_mutex));
  }

 private:
  Mutex<T>& m_mutex;
  AcquireFuture m_acquire;
};

template <class T>
class Mutex {
 public:
  template <class... Args>
  explicit Mutex(Args&&... args) : m_semaphore(1), m_value(std::forward<Args>(args)...) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Waits for the lock, in arrival order.
  LockFuture<T> lock() noexcept { return LockFuture<T>(*this); }
  /// The lock if it is free and nobody is waiting for it; nullopt otherwise.
  [[nodiscard]] std::optional<MutexGuard<T>> try_lock() noexcept {
    if (!m_semaphore.try_take(1)) return std::nullopt;
    return std::optional<MutexGuard<T>>(std::in_place, *this);
  }
  /// The value, without locking: for when the caller has the mutex to itself (before sharing
  /// it, or after every other user is gone).
  T& get_unshared() noexcept { return m_value; }

 private:
  friend class MutexGuard<T>;
  friend class LockFuture<T>;

  Semaphore m_semaphore;
  T m_value;
};

}  // namespace weft
