// weft::SocketAddress: an IPv4 or IPv6 address and port, parsed from and printed as text.
//
// Text forms: "127.0.0.1:6142" and "[::1]:6142". Host names are not resolved (name lookup
// blocks; resolve with spawn_blocking-style code of your own and pass the numeric address).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft {

class SocketAddress {
 public:
  /// The unspecified IPv4 address, port 0.
  SocketAddress() noexcept;

  /// Parses "A.B.C.D:PORT" or "[IPV6]:PORT". Throws std::invalid_argument with the reason.
  [[nodiscard]] static SocketAddress parse(std::string_view text);
  /// From a host in numeric form and a port: ("127.0.0.1", 80), ("::1", 80).
  [[nodiscard]] static SocketAddress from_host_port(std::string_view host, std::uint16_t port);
  /// From a struct sockaddr of `size` bytes (AF_INET or AF_INET6).
  [[nodiscard]] static SocketAddress from_native(const void* sockaddr, std::size_t size);

  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] std::string host() const;
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] bool is_ipv6() const noexcept;

  /// The struct sockaddr, for system calls.
  [[nodiscard]] const void* native() const noexcept { return m_storage.data(); }
  [[nodiscard]] std::size_t native_size() const noexcept { return m_size; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  // Large and aligned enough for a sockaddr_in6 (28 bytes).
  alignas(8) std::array<std::byte, 32> m_storage{};
  std::size_t m_size = 0;
};

}  // namespace weft
