#include "weft/socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace weft {
namespace {

[[noreturn]] void invalid(std::string_view text, const char* why) {
  throw std::invalid_argument("weft: invalid socket address \"" + std::string(text) + "\": " + why);
}

}  // namespace

SocketAddress::SocketAddress() noexcept {
  sockaddr_in any{};
  any.sin_family = AF_INET;
  std::memcpy(m_storage.data(), &any, sizeof any);
  m_size = sizeof any;
}

SocketAddress SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) invalid(text, "missing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') invalid(text, "missing :PORT");
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) invalid(text, "missing :PORT");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      invalid(text, "an IPv6 address must be written in brackets, as [::1]:PORT");
    }
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    invalid(text, "the port must be a number from 0 to 65535");
  }
  try {
    return from_host_port(host, static_cast<std::uint16_t>(port));
  } catch (const std::invalid_argument&) {
    invalid(text, "the host must be a numeric IPv4 or IPv6 address");
  }
}

SocketAddress SocketAddress::from_host_port(std::string_view host, std::uint16_t port) {
  const std::string host_string(host);
  SocketAddress address;
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, host_string.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(address.m_storage.data(), &v4, sizeof v4);
    address.m_size = sizeof v4;
    return address;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, host_string.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(address.m_storage.data(), &v6, sizeof v6);
    address.m_size = sizeof v6;
    return address;
  }
  throw std::invalid_argument("weft: not a numeric IP address: \"" + host_string + "\"");
}

SocketAddress SocketAddress::from_native(const void* native, std::size_t size) {
  SocketAddress address;
  sa_family_t family;
  if (size < sizeof family) throw std::invalid_argument("weft: truncated sockaddr");
  std::memcpy(&family, native, sizeof family);
  const std::size_t expected = family == AF_INET    ? sizeof(sockaddr_in)
                               : family == AF_INET6 ? sizeof(sockaddr_in6)
                                                    : 0;
  if (expected == 0 || size < expected) {
    throw std::invalid_argument("weft: not an IPv4 or IPv6 sockaddr");
  }
  std::memcpy(address.m_storage.data(), native, expected);
  address.m_size = expected;
  return address;
}

bool SocketAddress::is_ipv6() const noexcept {
  sa_family_t family;
  std::memcpy(&family, m_storage.data(), sizeof family);
  return family == AF_INET6;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (is_ipv6()) {
    sockaddr_in6 v6;
    std::memcpy(&v6, m_storage.data(), sizeof v6);
    return ntohs(v6.sin6_port);
  }
  sockaddr_in v4;
  std::memcpy(&v4, m_storage.data(), sizeof v4);
  return ntohs(v4.sin_port);
}

std::string SocketAddress::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (is_ipv6()) {
    sockaddr_in6 v6;
    std::memcpy(&v6, m_storage.data(), sizeof v6);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
  } else {
    sockaddr_in v4;
    std::memcpy(&v4, m_storage.data(), sizeof v4);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
  }
  return text;
}

std::string SocketAddress::to_string() const {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "[" + std::string.
  std::string text;
  if (is_ipv6()) text.push_back('[');
  text.append(host());
  if (is_ipv6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(port()));
  return text;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.m_size == b.m_size && std::memcmp(a.m_storage.data(), b.m_storage.data(), a.m_size) == 0;
}

}  // namespace weft
