// weft::select(f1, f2, ...): race futures; the first to be ready wins and the rest are
// cancelled.
//
//   auto won = co_await weft::select(fetch(), weft::sleep_for(1s));
//   if (won.index() == 0) use(std::get<0>(won));
//
// - select takes two or more futures by value (Tasks, channel receivers, user leaf futures,
//   timers, other combinators) and returns a Select, itself a Future. Pass a Task as an
//   rvalue: the Select owns every child.
// - Its output is SelectResult<Out1, Out2, ...>, a std::variant with one alternative per child
//   in argument order, a void output being std::monostate. index() names the winner; the
//   alternatives may repeat a type, so read the value with std::get<I>, not std::get<T>.
// - Each poll polls every child, in argument order, with the caller's Context, and stops at
//   the first that is ready. There are no per-child wakers: a wake from any child polls all of
//   them again, which the Future protocol allows (a spurious poll is harmless).
// - Cancellation is destruction. When a child is ready, or throws, every child is destroyed
//   before poll returns (or rethrows): a Task's frame and the locals in it, a receiver's end
//   of its channel, a timer's registration. Destroying a pending Select destroys them too.
//   A losing JoinHandle detaches its task rather than aborting it, as destroying it would.
// - A child that throws while polled ends the select: the others are destroyed and poll
//   rethrows the exception.
// - Biased: argument order is priority, like tokio::select! with `biased;`. When several
//   children are ready in the same poll, the first argument wins. Rotating the first child
//   polled from one poll to the next would not make a loop of selects fair (each iteration
//   builds a fresh Select that would start from the first child again), and a random start
//   would make the winner unpredictable in tests. Put the branch that must not starve
//   (shutdown, a deadline) first.
// Invariants: until completion every child is present; after it none is, m_done is set, and
// a further poll throws std::logic_error. A Select is used by one thread at a time, like any
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
using SelectValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
}  // namespace detail

/// The output of select(f1, f2, ...) given the children's outputs: alternative I holds the
/// value of child I when child I won; void becomes std::monostate.
template <class... Outputs>
using SelectResult = std::variant<detail::SelectValue<Outputs>...>;

template <Future... Fs>
requires(sizeof...(Fs) >= 2) class [[nodiscard]] Select {
 public:
  using Output = SelectResult<FutureOutput<Fs>...>;

  template <class... Args>
  explicit Select(std::in_place_t, Args&&... children)
      : m_children(std::optional<Fs>(std::in_place, std::forward<Args>(children))...) {}

  Select(Select&&) noexcept(std::is_nothrow_move_constructible_v<Children>) = default;
  Select& operator=(Select&&) noexcept(std::is_nothrow_move_assignable_v<Children>) = default;
  Select(const Select&) = delete;
  Select& operator=(const Select&) = delete;
  ~Select() = default;

  /// Polls the children in argument order until one is ready. Ready with the winner's index
  /// and value; rethrows a child's exception; throws std::logic_error once complete.
  Poll<Output> poll(Context& cx) {
    if (m_done) throw std::logic_error("weft: poll of a select that already completed");
    return poll_children(cx, std::index_sequence_for<Fs...>{});
  }

 private:
  using Children = std::tuple<std::optional<Fs>...>;

  template <std::size_t... I>
  Poll<Output> poll_children(Context& cx, std::index_sequence<I...>) {
    std::optional<Output> winner;
    try {
      // Short-circuits at the first ready child.
      (void)(poll_child<I>(cx, winner) || ...);
    } catch (...) {
      finish(std::index_sequence<I...>{});
      throw;
    }
    if (!winner) return pending;
    finish(std::index_sequence<I...>{});
    return Poll<Output>(std::move(*winner));
  }

  /// Polls child I; on ready, stores its value as alternative I and returns true.
  template <std::size_t I>
  bool poll_child(Context& cx, std::optional<Output>& winner) {
    auto poll = std::get<I>(m_children)->poll(cx);
    if (poll.is_pending()) return false;
    if constexpr (std::is_void_v<FutureOutput<std::tuple_element_t<I, std::tuple<Fs...>>>>) {
      poll.take();
      winner.emplace(std::in_place_index<I>);
    } else {
      winner.emplace(std::in_place_index<I>, poll.take());
    }
    return true;
  }

  /// Destroys every child, the winner included, which cancels the losers.
  template <std::size_t... I>
  void finish(std::index_sequence<I...>) noexcept {
    m_done = true;
    (std::get<I>(m_children).reset(), ...);
  }

  Children m_children;
  bool m_done = false;
};

/// Races the futures (two or more, taken by value); see the top of this file.
template <class... Fs>
requires(sizeof...(Fs) >= 2 && (Future<std::decay_t<Fs>> && ...))
    [[nodiscard]] Select<std::decay_t<Fs>...> select(Fs&&... futures) {
  return Select<std::decay_t<Fs>...>(std::in_place, std::forward<Fs>(futures)...);
}

}  // namespace weft
