// weft::join(f1, f2, ...): run futures concurrently and wait for all of them.
//
//   auto [user, orders] = co_await weft::join(load_user(id), load_orders(id));
//
// - join takes one or more futures by value (Tasks, channel receivers, user leaf futures,
//   timers, other combinators) and returns a Join, itself a Future. Pass a Task as an rvalue:
//   the Join owns every child.
// - Its output is JoinResult<Out1, Out2, ...> = std::tuple of the children's outputs in
//   argument order, a void output being std::monostate, whatever order they finish in.
// - Concurrent, not parallel: the children run on the thread polling the Join, interleaved at
//   their suspension points. Spawn them and join the JoinHandles to use several workers.
// - Each poll polls every unfinished child, in argument order, with the caller's Context.
//   There are no per-child wakers: a wake from any child polls all the unfinished ones again,
//   which the Future protocol allows (a spurious poll is harmless).
// - A child that finishes has its output stored and is destroyed at once, so a finished
//   Task's frame is freed while the others still run, and it is never polled again.
// - Fail-fast: a child that throws while polled ends the join. Every other child is destroyed
//   before poll rethrows (which cancels it: a Task's frame and its locals, a receiver's end of
//   its channel, a timer's registration), and the outputs already stored are dropped.
//   Destroying a pending Join cancels its children the same way. A JoinHandle child detaches
//   its task rather than aborting it, as destroying it would.
// Invariants: a child is present until it finishes or the join ends; its output slot is set
// exactly when it finished; after completion nothing is present, m_done is set, and a
// further poll throws std::logic_error. A Join is used by one thread at a time, like any
// future. Moving it moves its children, so move it only while they allow that (a Task and a
// channel receiver may be moved at any time).
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "weft/future.hpp"

namespace weft {

namespace detail {
/// What a combinator stores for a child that outputs T: T itself, or std::monostate for void.
template <class T>
using JoinValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
}  // namespace detail

/// The output of join(f1, f2, ...) given the children's outputs: element I is the output of
/// child I; void becomes std::monostate.
template <class... Outputs>
using JoinResult = std::tuple<detail::JoinValue<Outputs>...>;

template <Future... Fs>
requires(sizeof...(Fs) >= 1) class [[nodiscard]] Join {
 public:
  using Output = JoinResult<FutureOutput<Fs>...>;

  template <class... Args>
  explicit Join(std::in_place_t, Args&&... children)
      : m_children(std::optional<Fs>(std::in_place, std::forward<Args>(children))...) {}

  Join(Join&&) noexcept(std::is_nothrow_move_constructible_v<Children>) = default;
  Join& operator=(Join&&) noexcept(std::is_nothrow_move_assignable_v<Children>) = default;
  Join(const Join&) = delete;
  Join& operator=(const Join&) = delete;
  ~Join() = default;

  /// Polls every unfinished child. Ready with all outputs once every child has finished;
  /// rethrows the first exception a child throws; throws std::logic_error once complete.
  Poll<Output> poll(Context& cx) {
    if (m_done) throw std::logic_error("weft: poll of a join that already completed");
    return poll_children(cx, std::index_sequence_for<Fs...>{});
  }

 private:
  using Children = std::tuple<std::optional<Fs>...>;

  template <std::size_t... I>
  Poll<Output> poll_children(Context& cx, std::index_sequence<I...>) {
    try {
      (poll_child<I>(cx), ...);
    } catch (...) {
      finish(std::index_sequence<I...>{});
      throw;
    }
    if (!(std::get<I>(m_outputs).has_value() && ...)) return pending;
    Output output(std::move(*std::get<I>(m_outputs))...);
    finish(std::index_sequence<I...>{});
    return Poll<Output>(std::move(output));
  }

  /// Polls child I if it has not finished; on ready, stores its output and destroys it.
  template <std::size_t I>
  void poll_child(Context& cx) {
    auto& child = std::get<I>(m_children);
    if (!child) return;
    auto poll = child->poll(cx);
    if (poll.is_pending()) return;
    if constexpr (std::is_void_v<FutureOutput<std::tuple_element_t<I, std::tuple<Fs...>>>>) {
      poll.take();
      std::get<I>(m_outputs).emplace();
    } else {
      std::get<I>(m_outputs).emplace(poll.take());
    }
    child.reset();
  }

  /// Destroys every child still present, which cancels it, and every stored output.
  template <std::size_t... I>
  void finish(std::index_sequence<I...>) noexcept {
    m_done = true;
    (std::get<I>(m_children).reset(), ...);
    (std::get<I>(m_outputs).reset(), ...);
  }

  Children m_children;
  std::tuple<std::optional<detail::JoinValue<FutureOutput<Fs>>>...> m_outputs;
  bool m_done = false;
};

/// Runs the futures (one or more, taken by value) until all finish; see the top of this file.
template <class... Fs>
requires(sizeof...(Fs) >= 1 && (Future<std::decay_t<Fs>> && ...))
    [[nodiscard]] Join<std::decay_t<Fs>...> join(Fs&&... futures) {
  return Join<std::decay_t<Fs>...>(std::in_place, std::forward<Fs>(futures)...);
}

}  // namespace weft
