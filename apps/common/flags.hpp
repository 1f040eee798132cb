// Command-line flags for the bundled apps: "--name value", "--name=value" and short aliases,
// numbers with a bound, and durations with a unit. A malformed command line prints one line
// naming the problem and exits 2.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace weft_apps {

class Flags {
 public:
  Flags(const char* program, int argc, char** argv)
      : m_program(program), m_argc(argc), m_argv(argv) {}

  /// Moves to the next flag; false when there is none.
  bool next() {
    if (++m_index >= m_argc) return false;
    m_name = m_argv[m_index];
    m_inline_value = {};
    m_has_inline_value = false;
    if (auto eq = m_name.find('='); m_name.starts_with("--") && eq != std::string_view::npos) {
      m_inline_value = m_name.substr(eq + 1);
      m_name = m_name.substr(0, eq);
      m_has_inline_value = true;
    }
    return true;
  }

  [[nodiscard]] std::string_view name() const { return m_name; }
  [[nodiscard]] bool is(std::string_view flag) const { return m_name == flag; }

  /// The flag's value: after '=', or the next argument.
  std::string_view value() {
    if (m_has_inline_value) return m_inline_value;
    if (m_index + 1 >= m_argc) fail(std::string(m_name) + " needs a value");
    return m_argv[++m_index];
  }

  /// A whole number from 0 to `max`.
  unsigned long long number(unsigned long long max) { return parse_number(value(), max); }

  /// A duration: 250ms, 10s, 2m; a bare number means seconds. At most k_max_duration, so
  /// that a deadline of now() plus the duration cannot overflow the clocks' nanoseconds.
  std::chrono::milliseconds duration() {
    const std::string_view text = value();
    const auto digits_end = text.find_first_not_of("0123456789");
    const std::string_view unit =
        digits_end == std::string_view::npos ? "s" : text.substr(digits_end);
    const auto amount = parse_number(text.substr(0, digits_end), ~0ULL);
    std::chrono::milliseconds per_unit;
    if (unit == "ms") {
      per_unit = std::chrono::milliseconds(1);
    } else if (unit == "s") {
      per_unit = std::chrono::seconds(1);
    } else if (unit == "m") {
      per_unit = std::chrono::minutes(1);
    } else {
      fail(std::string(m_name) + " wants a duration such as 250ms, 10s or 2m, got '" +
           std::string(text) + "'");
    }
    if (amount > static_cast<unsigned long long>(k_max_duration / per_unit)) {
      fail(std::string(m_name) + " is at most 365 days, got '" + std::string(text) + "'");
    }
    return per_unit * static_cast<long long>(amount);
  }

  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", m_program, message.c_str(), m_program);
    std::exit(2);
  }

 private:
  static constexpr std::chrono::milliseconds k_max_duration = std::chrono::hours(365 * 24);

  unsigned long long parse_number(std::string_view text, unsigned long long max) const {
    if (text.empty() || text.size() > 15 ||
        text.find_first_not_of("0123456789") != std::string_view::npos) {
      fail(std::string(m_name) + " wants a number, got '" + std::string(text) + "'");
    }
    const unsigned long long parsed = std::stoull(std::string(text));
    if (parsed > max) fail(std::string(m_name) + " is at most " + std::to_string(max));
    return parsed;
  }

  const char* m_program;
  int m_argc;
  char** m_argv;
  int m_index = 0;
  std::string_view m_name;
  std::string_view m_inline_value;
  bool m_has_inline_value = false;
};

}  // namespace weft_apps
