// Errors from libuv and from system calls, as the std::system_error that weft's I/O throws.
//
// Convention (see include/weft/error.hpp): I/O failures throw std::system_error whose code()
// is the errno value in std::system_category(), and whose what() names the operation, e.g.
// "weft: connect 127.0.0.1:1: Connection refused". libuv reports -errno, so both map alike.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace weft::detail {

[[nodiscard]] inline std::system_error errno_error(int error, const std::string& what) {
  return std::system_error(error, std::system_category(), "weft: " + what);
}

[[nodiscard]] inline std::system_error uv_error(int uv_code, const std::string& what) {
  return errno_error(-uv_code, what);
}

}  // namespace weft::detail
