// Shared helpers for the tests: futures whose readiness the test controls, and bounded waits.
#pragma once

#include <dirent.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "weft.hpp"

namespace weft::test {

/// Waits until `predicate` holds, for at most `limit`. Returns whether it held. This is a
/// bounded wait for an event another thread will cause, not a sleep standing in for one.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Inside a task: yields until `predicate` holds, for at most `limit`. Returns whether it
/// held. The task-side twin of `eventually`, for waits that must let the runtime run.
template <class Predicate>
Task<bool> yield_until(Predicate predicate, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    co_await yield_now();
  }
  co_return true;
}

/// A leaf future that is pending until complete() is called from any thread. It counts its
/// polls and keeps the latest waker.
class Gate {
 public:
  class Wait {
   public:
    explicit Wait(Gate& gate) : m_gate(gate) {}
    Poll<void> poll(Context& cx) {
      std::lock_guard lock(m_gate.m_mutex);
      // Counted under the lock: a test that sees the count and then opens the gate (which
      // takes the lock) opens it after this poll has decided, never between the count and
      // the check, where the poll would see the gate open and the count would be one short.
      m_gate.m_polls.fetch_add(1, std::memory_order_acq_rel);
      if (m_gate.m_open) return ready();
      m_gate.m_waker = cx.waker();
      return pending;
    }

   private:
    Gate& m_gate;
  };

  Wait wait() { return Wait(*this); }

  /// Opens the gate and wakes the waiter.
  void open() {
    std::optional<Waker> waker;
    {
      std::lock_guard lock(m_mutex);
      m_open = true;
      waker.swap(m_waker);
    }
    if (waker) std::move(*waker).wake();
  }

  /// Wakes the waiter without opening the gate (a spurious wake for the future).
  void wake_without_opening() {
    std::optional<Waker> waker;
    {
      std::lock_guard lock(m_mutex);
      waker = m_waker;
    }
    if (waker) waker->wake_by_ref();
  }

  /// A copy of the latest waker, if any.
  std::optional<Waker> waker() {
    std::lock_guard lock(m_mutex);
    return m_waker;
  }

  int polls() const { return m_polls.load(std::memory_order_acquire); }
  bool has_waiter() {
    std::lock_guard lock(m_mutex);
    return m_waker.has_value();
  }

 private:
  std::mutex m_mutex;
  bool m_open = false;
  std::optional<Waker> m_waker;
  std::atomic<int> m_polls{0};
};

/// A waker that counts its wakes; it must outlive every copy of the waker it makes.
class WakeCounter {
 public:
  Waker waker() const noexcept { return Waker(this, &k_vtable); }
  int wakes() const { return m_wakes.load(std::memory_order_acquire); }

 private:
  // acq_rel/acquire: a test that sees the count also sees what the waker published.
  static void add(const void* data) noexcept {
    static_cast<const WakeCounter*>(data)->m_wakes.fetch_add(1, std::memory_order_acq_rel);
  }
  static const void* clone(const void* data) noexcept { return data; }
  static void drop(const void*) noexcept {}
  static constexpr WakerVTable k_vtable{&clone, &add, &add, &drop};

  mutable std::atomic<int> m_wakes{0};
};

/// Polls once with a waker that does nothing.
template <class F>
auto poll_by_hand(F& future) {
  Waker waker = noop_waker();
  Context cx(waker);
  return future.poll(cx);
}

/// Polls once with `counter`'s waker.
template <class F>
auto poll_with(F& future, const WakeCounter& counter) {
  Waker waker = counter.waker();
  Context cx(waker);
  return future.poll(cx);
}

/// Like Gate, for any number of waiting tasks: open() wakes them all.
class BroadcastGate {
 public:
  class Wait {
   public:
    explicit Wait(BroadcastGate& gate) : m_gate(gate) {}
    Poll<void> poll(Context& cx) {
      std::lock_guard lock(m_gate.m_mutex);
      if (m_gate.m_open) return ready();
      m_gate.m_wakers.push_back(cx.waker());
      return pending;
    }

   private:
    BroadcastGate& m_gate;
  };

  Wait wait() { return Wait(*this); }

  void open() {
    std::vector<Waker> wakers;
    {
      std::lock_guard lock(m_mutex);
      m_open = true;
      wakers.swap(m_wakers);
    }
    for (auto& waker : wakers)
      std::move(waker).wake();
  }

 private:
  std::mutex m_mutex;
  bool m_open = false;
  std::vector<Waker> m_wakers;
};

/// Counts live instances; put one in a task's frame to see when the frame is destroyed.
/// acq_rel: tests poll the count from another thread (eventually(live == 0)) while workers
/// run; a test that sees the count also sees what the frame did before it changed it.
struct Tracked {
  explicit Tracked(std::atomic<int>& live) : m_live(&live) {
    live.fetch_add(1, std::memory_order_acq_rel);
  }
  Tracked(Tracked&& other) noexcept : m_live(other.m_live) {
    m_live->fetch_add(1, std::memory_order_acq_rel);
  }
  Tracked(const Tracked&) = delete;
  ~Tracked() { m_live->fetch_sub(1, std::memory_order_acq_rel); }
  std::atomic<int>* m_live;
};

/// Holds a worker busy until released, so a test can queue work behind it deterministically.
/// The spin is bounded: a test that never releases it fails instead of hanging.
class Blocker {
 public:
  Task<void> occupy() {
    m_running.store(true, std::memory_order_release);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!m_released.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    co_return;
  }
  bool wait_running() {
    return eventually([this] { return m_running.load(std::memory_order_acquire); });
  }
  void release() { m_released.store(true, std::memory_order_release); }

 private:
  std::atomic<bool> m_running{false};
  std::atomic<bool> m_released{false};
};

/// How many descriptors a process has open: this one by default, else process `pid`.
inline int open_fd_count(int pid = 0) {
  const std::string path = pid == 0 ? "/proc/self/fd" : "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (::readdir(dir) != nullptr)
    ++count;
  ::closedir(dir);
  // "." and "..", and for this process the directory's own descriptor.
  return count - (pid == 0 ? 3 : 2);
}

}  // namespace weft::test
