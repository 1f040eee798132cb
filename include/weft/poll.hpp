// weft::Poll<T>: the answer of one poll of a future, either ready with a value or pending.
//
// A future that returns pending must have arranged for the waker of the Context it was polled
// with to be woken when it can make progress; otherwise it is never polled again.
#pragma once

#include <optional>
#include <utility>

namespace weft {

/// Tag for a pending poll: `return weft::pending;`.
struct Pending {
  explicit constexpr Pending() = default;
};
inline constexpr Pending pending{};

template <class T>
class [[nodiscard]] Poll {
 public:
  using Output = T;

  constexpr Poll(Pending) noexcept {}
  constexpr Poll(T value) : m_value(std::move(value)) {}

  [[nodiscard]] constexpr bool is_ready() const noexcept { return m_value.has_value(); }
  [[nodiscard]] constexpr bool is_pending() const noexcept { return !m_value.has_value(); }

  /// The value; only valid when is_ready().
  [[nodiscard]] constexpr T& value() & { return *m_value; }
  [[nodiscard]] constexpr T take() { return std::move(*m_value); }

 private:
  std::optional<T> m_value;
};

template <>
class [[nodiscard]] Poll<void> {
 public:
  using Output = void;

  constexpr Poll(Pending) noexcept {}
  constexpr Poll() noexcept : m_ready(true) {}

  [[nodiscard]] constexpr bool is_ready() const noexcept { return m_ready; }
  [[nodiscard]] constexpr bool is_pending() const noexcept { return !m_ready; }
  constexpr void take() const noexcept {}

 private:
  bool m_ready = false;
};

/// `return weft::ready();` for a Poll<void>.
constexpr Poll<void> ready() noexcept {
  return Poll<void>{};
}

template <class T>
constexpr Poll<std::decay_t<T>> ready(T&& value) {
  return Poll<std::decay_t<T>>(std::forward<T>(value));
}

}  // namespace weft
