// weft::Task<T>: a lazily started, move-only coroutine.
//
// - `co_await task` inside another Task runs it like a call: control passes to the child and
//   back through the root's trampoline (detail/promise.hpp), so a chain of synchronous
//   completions of any length uses constant stack.
// - A Task is also a Future: polling it drives its chain of nested tasks and leaf futures.
//   This is how the runtime runs a spawned task, and how combinators run several at once.
// - Its result is a value or an exception, rethrown at co_await (or by poll).
// - Inside a Task, `co_await` accepts another Task and any weft::Future. Other awaitables are
//   rejected at compile time, because they could resume the coroutine behind the runtime's
//   back, on a thread of their choosing.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/detail/promise.hpp"
#include "weft/future.hpp"

namespace weft {

template <class T = void>
class Task;

namespace detail {

template <class T>
class TaskPromise;

template <class T>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};

template <class T>
class TaskPromiseStorage : public PromiseBase {
 public:
  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) { m_value.emplace(std::forward<U>(value)); }
  /// The result: the value, or the exception rethrown. Call once, after completion.
  T take_result() {
    if (m_exception) std::rethrow_exception(take_exception());
    return std::move(*m_value);
  }

 private:
  std::optional<T> m_value;
};

template <>
class TaskPromiseStorage<void> : public PromiseBase {
 public:
  void return_void() noexcept {}
  void take_result() {
    if (m_exception) std::rethrow_exception(take_exception());
  }
};

template <class T>
class TaskAwaiter {
 public:
  explicit TaskAwaiter(std::coroutine_handle<TaskPromise<T>> child, RootState& root) noexcept
      : m_child(child), m_root(root) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> parent) noexcept {
    m_child.promise().start_as_child(&m_root, parent);
    m_root.next = m_child;
  }
  T await_resume() { return m_child.promise().take_result(); }

 private:
  std::coroutine_handle<TaskPromise<T>> m_child;
  RootState& m_root;
};

/// The child's coroutine, after checking that it can be awaited: misuse throws
/// std::invalid_argument inside the awaiting task instead of dereferencing nothing.
template <class U>
std::coroutine_handle<TaskPromise<U>> checked_handle(const Task<U>& child) {
  if (!child.valid()) throw std::invalid_argument("weft: co_await on an empty (moved-from) Task");
  if (child.handle().promise().is_started()) {
    throw std::invalid_argument("weft: co_await on a Task that already ran");
  }
  return child.handle();
}

template <class T>
class TaskPromise final : public TaskPromiseStorage<T> {
 public:
  Task<T> get_return_object() noexcept;

  template <class U>
  TaskAwaiter<U> await_transform(Task<U>&& child) {
    return TaskAwaiter<U>(checked_handle(child), this->root());
  }
  template <class U>
  TaskAwaiter<U> await_transform(Task<U>& child) {
    return TaskAwaiter<U>(checked_handle(child), this->root());
  }

  template <class F>
  requires(Future<std::remove_reference_t<F>> && !IsTask<std::remove_cvref_t<F>>::value)
      FutureAwaiter<std::remove_reference_t<F>> await_transform(F&& future)
  noexcept { return FutureAwaiter<std::remove_reference_t<F>>(future, this->root()); }

  template <class A>
  requires(!Future<std::remove_reference_t<A>> &&
           !IsTask<std::remove_cvref_t<A>>::value) void await_transform(A&&) {
    static_assert(sizeof(A) == 0,
                  "weft::Task can only co_await a weft::Task or a weft::Future "
                  "(an object with poll(weft::Context&) -> weft::Poll<T>)");
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Output = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : m_handle(handle) {}
  Task(Task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      m_handle = std::exchange(other.m_handle, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_handle); }

  /// Polls the task as a root Future. The first poll starts it. Once ready, the value is
  /// moved out (or the exception rethrown) and the task must not be polled again.
  Poll<T> poll(Context& cx) {
    if (!m_handle) throw std::invalid_argument("weft: poll of an empty (moved-from) Task");
    promise_type& promise = m_handle.promise();
    if (!promise.is_started()) promise.start_as_root(m_handle);
    if (!promise.own_root().poll(cx)) return pending;
    if constexpr (std::is_void_v<T>) {
      promise.take_result();
      return ready();
    } else {
      return Poll<T>(promise.take_result());
    }
  }

  /// Gives up ownership of the coroutine (used by spawn).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(m_handle, {}); }
  [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return m_handle; }

 private:
  void reset() noexcept {
    if (m_handle) m_handle.destroy();
    m_handle = {};
  }

  std::coroutine_handle<promise_type> m_handle;
};

template <class T>
Task<T> detail::TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

}  // namespace weft
