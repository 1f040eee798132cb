// weft::JoinHandle<T>: the right to a spawned task's result.
//
// - `co_await handle` (it is a Future) yields the value or rethrows the task's exception;
//   `join()` does the same from an ordinary thread, blocking it.
// - An aborted task, or one cancelled by runtime shutdown, makes both throw weft::TaskCancelled.
// - Destroying the handle detaches the task: it keeps running, and an exception escaping it
//   goes to the runtime's unhandled-exception handler.
// - While the handle exists, a finished task keeps its coroutine frame, because the result
//   lives there; the frame's parameters (a Sender, a socket) go with it when the handle is
//   joined or dropped. Move a parameter into a local when it must go as soon as the task ends.
// A handle is used by one thread at a time; the task behind it runs anywhere.
#pragma once

#include <utility>

#include "weft/detail/raw_task.hpp"
#include "weft/error.hpp"
#include "weft/task.hpp"

namespace weft {

template <class T>
class JoinHandle {
 public:
  using Output = T;

  JoinHandle() noexcept = default;
  explicit JoinHandle(detail::TaskHeader* task) noexcept : m_task(task) {}
  JoinHandle(JoinHandle&& other) noexcept : m_task(std::exchange(other.m_task, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      m_task = std::exchange(other.m_task, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return m_task != nullptr; }

  Poll<T> poll(Context& cx) {
    switch (detail::join_poll(m_task, cx)) {
      case detail::JoinStatus::pending:
        return pending;
      case detail::JoinStatus::cancelled:
        reset();
        throw TaskCancelled();
      case detail::JoinStatus::ready:
        break;
    }
    // The handle is spent whether the result is a value or an exception.
    struct Release {
      JoinHandle& handle;
      ~Release() { handle.reset(); }
    } release{*this};
    auto& promise = static_cast<detail::TaskPromise<T>&>(detail::promise_of(m_task));
    if constexpr (std::is_void_v<T>) {
      promise.take_result();
      return ready();
    } else {
      return Poll<T>(promise.take_result());
    }
  }

  /// Blocks this thread until the task finishes. Not allowed on a worker thread.
  T join() {
    detail::check_may_block("weft::JoinHandle::join");
    return detail::block_on_future(*this);
  }

  /// Cancels the task: its frame is destroyed at its next suspension and the joiner gets
  /// TaskCancelled. No effect on a task that has finished.
  void abort() noexcept {
    if (m_task != nullptr) detail::abort_task(m_task);
  }

  /// True once the task has finished, been cancelled, or the result was taken.
  [[nodiscard]] bool is_finished() const noexcept {
    return m_task == nullptr || detail::is_finished(m_task);
  }

 private:
  void reset() noexcept {
    if (m_task != nullptr) detail::join_drop(std::exchange(m_task, nullptr));
  }

  detail::TaskHeader* m_task = nullptr;
};

}  // namespace weft
