// Internals of weft::Task<T> that its template needs inline: the promise base, the root state
// that drives a chain of nested tasks from a single poll, and the awaiter for leaf futures.
//
// How a chain of coroutines is polled (see docs/design.md, "Tasks and futures"):
// - A root is a Task polled as a Future: either the top-level task of a spawned task, or a
//   task polled by a combinator. Its RootState is a trampoline: it records the coroutine to
//   resume next, and RootState::poll resumes coroutines in a loop until the chain finishes or
//   blocks on a leaf future.
// - `co_await child_task` suspends the parent and names the child as next; at final_suspend
//   the child names its parent as next. Every transfer returns to the loop, so a chain of any
//   length of synchronous completions uses constant stack in every build (symmetric transfer
//   relies on the compiler emitting a tail call, which GCC at -O0 and under ASan or TSan
//   does not).
// - `co_await leaf` polls the leaf once; if pending, the awaiter registers itself as the
//   root's leaf and the loop ends with the poll pending. The next poll of the root polls the
//   leaf first and resumes the coroutine only once the leaf is ready, so a spurious wake never
//   resumes a coroutine early.
// All of this state is touched only by the thread currently polling the root.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/future.hpp"

namespace weft::detail {

/// Allocates a coroutine frame with room for a task header in front of it (lib/task/header.hpp)
/// so that spawning a task costs no allocation beyond its frame.
void* allocate_frame(std::size_t size);
void deallocate_frame(void* frame, std::size_t size) noexcept;

struct RootState {
  using LeafPoll = bool (*)(void* awaiter, Context& cx) noexcept;

  /// The coroutine the loop resumes next (the root itself before the first poll).
  std::coroutine_handle<> next;
  /// Set while the chain waits on a leaf future: poll it, then resume `blocked`.
  std::coroutine_handle<> blocked;
  void* leaf = nullptr;
  LeafPoll leaf_poll = nullptr;
  /// The context of the poll in progress; valid only during a poll.
  Context* cx = nullptr;
  bool done = false;

  /// One poll of the whole chain. Returns true once the root coroutine has finished.
  bool poll(Context& context) {
    if (leaf_poll != nullptr) {
      if (!leaf_poll(leaf, context)) return false;
      leaf_poll = nullptr;
      leaf = nullptr;
      next = blocked;
    }
    cx = &context;
    while (next) {
      std::coroutine_handle<> current = next;
      next = {};
      current.resume();
    }
    cx = nullptr;
    return done;
  }
};

class PromiseBase {
 public:
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    deallocate_frame(frame, size);
  }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> self) noexcept {
      PromiseBase& promise = self.promise();
      if (promise.m_continuation) {
        promise.m_root->next = promise.m_continuation;
      } else {
        promise.m_root->done = true;
      }
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { m_exception = std::current_exception(); }

  /// Makes this task the root of its chain; `self` is this promise's coroutine.
  void start_as_root(std::coroutine_handle<> self) noexcept {
    m_root = &m_root_state;
    m_root_state.next = self;
  }
  void start_as_child(RootState* root, std::coroutine_handle<> continuation) noexcept {
    m_root = root;
    m_continuation = continuation;
  }

  [[nodiscard]] bool is_started() const noexcept { return m_root != nullptr; }
  [[nodiscard]] RootState& root() noexcept { return *m_root; }
  [[nodiscard]] RootState& own_root() noexcept { return m_root_state; }
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return m_exception; }
  [[nodiscard]] std::exception_ptr take_exception() noexcept { return std::move(m_exception); }

 protected:
  std::exception_ptr m_exception;

 private:
  std::coroutine_handle<> m_continuation;
  RootState* m_root = nullptr;
  RootState m_root_state;
};

/// Awaits a leaf Future from inside a task (see the protocol at the top of this file).
template <class F>
class FutureAwaiter {
 public:
  using Output = FutureOutput<F>;

  FutureAwaiter(F& future, RootState& root) noexcept : m_future(future), m_root(root) {}

  bool await_ready() {
    auto poll = m_future.poll(*m_root.cx);
    if (poll.is_pending()) return false;
    store(poll);
    return true;
  }

  void await_suspend(std::coroutine_handle<> self) noexcept {
    m_root.leaf = this;
    m_root.leaf_poll = &FutureAwaiter::poll_leaf;
    m_root.blocked = self;
  }

  Output await_resume() {
    if (m_error) std::rethrow_exception(std::move(m_error));
    if constexpr (!std::is_void_v<Output>) return std::move(*m_value);
  }

 private:
  template <class P>
  void store(P& poll) {
    if constexpr (std::is_void_v<Output>) {
      poll.take();
    } else {
      m_value.emplace(poll.take());
    }
  }

  // A leaf that throws when polled from the root's poll completes with that exception, which
  // await_resume rethrows inside the coroutine that awaited it.
  static bool poll_leaf(void* self, Context& cx) noexcept {
    auto* awaiter = static_cast<FutureAwaiter*>(self);
    try {
      auto poll = awaiter->m_future.poll(cx);
      if (poll.is_pending()) return false;
      awaiter->store(poll);
    } catch (...) {
      awaiter->m_error = std::current_exception();
    }
    return true;
  }

  struct Empty {};
  F& m_future;
  RootState& m_root;
  std::conditional_t<std::is_void_v<Output>, Empty, std::optional<Output>> m_value;
  std::exception_ptr m_error;
};

}  // namespace weft::detail
