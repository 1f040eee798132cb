// weft::SourceLocation: where a task or a blocking call was spawned, for stall and shutdown
// reports. spawn() and spawn_blocking() capture it with a default argument.
//
// It wraps std::source_location where the standard library provides it (GCC 12). Clang 14
// with libstdc++ 12 lacks the builtin that std::source_location needs, so there it holds the
// file and line from __builtin_FILE/__builtin_LINE packed into one word, and function_name()
// is empty. Either way it is one word, trivially copyable, and points at static strings.
#pragma once

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace weft {

#if defined(__cpp_lib_source_location)

class SourceLocation {
 public:
  constexpr SourceLocation() noexcept = default;
  [[nodiscard]] static constexpr SourceLocation current(
      std::source_location where = std::source_location::current()) noexcept {
    return SourceLocation(where);
  }
  [[nodiscard]] constexpr const char* file_name() const noexcept { return m_where.file_name(); }
  [[nodiscard]] constexpr const char* function_name() const noexcept {
    return m_where.function_name();
  }
  [[nodiscard]] constexpr std::uint_least32_t line() const noexcept { return m_where.line(); }

 private:
  constexpr explicit SourceLocation(std::source_location where) noexcept : m_where(where) {}
  std::source_location m_where{};
};

#else

class SourceLocation {
 public:
  constexpr SourceLocation() noexcept = default;
  /// Lines above 65,535 are reported as 65,535.
  [[nodiscard]] static SourceLocation current(const char* file = __builtin_FILE(),
                                              unsigned line = __builtin_LINE()) noexcept {
    SourceLocation where;
    const auto address = reinterpret_cast<std::uintptr_t>(file);
    // User-space addresses fit in 48 bits on the platforms weft supports; keep the file
    // otherwise unknown rather than corrupt it.
    if (address < (std::uintptr_t{1} << 48)) {
      where.m_bits = (std::uint64_t{address} << 16) | (line > 0xffff ? 0xffff : line);
    }
    return where;
  }
  [[nodiscard]] const char* file_name() const noexcept {
    return m_bits == 0 ? "" : reinterpret_cast<const char*>(m_bits >> 16);
  }
  [[nodiscard]] const char* function_name() const noexcept { return ""; }
  [[nodiscard]] std::uint_least32_t line() const noexcept {
    return static_cast<std::uint_least32_t>(m_bits & 0xffff);
  }

 private:
  std::uint64_t m_bits = 0;
};

#endif

}  // namespace weft
