// Host names for the bundled apps' --host flag: a numeric address, or a name such as
// localhost, looked up with getaddrinfo before the runtime starts (the lookup may block).
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "weft/socket_address.hpp"

namespace weft_apps {

/// The address `host` names, with `port`. A numeric address is parsed by
/// SocketAddress::from_host_port, without a lookup. A name resolves to its first IPv4
/// address if it has one, else its first IPv6 one: IPv4 first because the greeter listens on
/// 127.0.0.1 by default, and glibc may list ::1 first for localhost. Throws
/// std::runtime_error with getaddrinfo's message when the name does not resolve.
inline weft::SocketAddress resolve_host(const std::string& host, std::uint16_t port) {
  try {
    return weft::SocketAddress::from_host_port(host, port);
  } catch (const std::invalid_argument&) {
    // Not numeric: a name to look up.
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve host '" + host + "': " + ::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
  const addrinfo* chosen = found;
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family == AF_INET) {
      chosen = entry;
      break;
    }
  }
  return weft::SocketAddress::from_native(chosen->ai_addr, chosen->ai_addrlen);
}

}  // namespace weft_apps
